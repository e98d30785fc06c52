/* SPDX-License-Identifier: MIT */
#include "exporter-file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batcher.h"
#include "log.h"
#include "otlp.h"
#include "ss-macro.h"

typedef struct file_exporter {
        ss_exporter base;
        ss_batcher batcher;
        FILE *out;
        char *path;
        ss_buf line;
} file_exporter;

static void file_send(void *ctx, ss_span *const *spans, size_t n)
{
        file_exporter *f = ctx;
        int r;

        ss_buf_reset(&f->line);
        r = ss_otlp_json_encode(spans, n, &f->line);
        if (r == 0)
                r = ss_buf_append(&f->line, "\n", 1);
        f->base.stats.requests++;
        if (r == 0 &&
            (fwrite(f->line.data, 1, f->line.len, f->out) != f->line.len || fflush(f->out) != 0))
                r = -errno;
        if (r < 0) {
                f->base.stats.failures++;
                f->base.stats.spans_dropped += n;
                ss_log_ratelimited(SS_LOG_ERR, "file exporter: cannot write %zu span(s) to %s: %s",
                                   n, f->path, strerror(-r));
                return;
        }
        f->base.stats.spans_exported += n;
}

static void file_add(ss_exporter *e, ss_span *const *spans, size_t n)
{
        file_exporter *f = (file_exporter *)e;

        e->stats.spans_in += n;
        ss_batcher_add(&f->batcher, spans, n);
}

static void file_flush(ss_exporter *e)
{
        ss_batcher_flush(&((file_exporter *)e)->batcher);
}

static bool file_busy(const ss_exporter *e)
{
        return ((const file_exporter *)e)->batcher.n > 0;
}

static void on_timer_closed(uv_handle_t *h)
{
        file_exporter *f = ss_container_of(h, file_exporter, batcher.timer);

        if (f->out && f->out != stdout)
                fclose(f->out);
        ss_buf_free(&f->line);
        free(f->path);
        free(f);
}

static void file_destroy(ss_exporter *e)
{
        file_exporter *f = (file_exporter *)e;

        e->stats.spans_dropped += ss_batcher_close(&f->batcher, on_timer_closed);
}

static const ss_exporter_ops file_ops = {
    .add = file_add,
    .flush = file_flush,
    .busy = file_busy,
    .destroy = file_destroy,
};

int ss_file_exporter_new(uv_loop_t *loop, const char *path, size_t max_batch, uint64_t delay_ms,
                         ss_exporter **ret)
{
        file_exporter *f = calloc(1, sizeof(*f));
        int r = -ENOMEM;

        if (!f)
                return -ENOMEM;
        f->base = (ss_exporter){.ops = &file_ops, .name = "file"};
        /* A request line holds at most one batch; 64 MiB is OTLP's advice per request. */
        ss_buf_init(&f->line, 64u << 20);
        f->path = strdup(path);
        if (!f->path)
                goto fail;
        f->out = strcmp(path, "-") == 0 ? stdout : fopen(path, "ae");
        if (!f->out) {
                r = -errno;
                ss_log(SS_LOG_ERR, "file exporter: cannot open %s: %s", path, strerror(errno));
                goto fail;
        }
        r = ss_batcher_init(&f->batcher, loop, max_batch, delay_ms, file_send, f);
        if (r < 0)
                goto fail;
        *ret = &f->base;
        return 0;
fail:
        if (f->out && f->out != stdout)
                fclose(f->out);
        free(f->path);
        free(f);
        return r;
}
