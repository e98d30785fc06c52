/* SPDX-License-Identifier: MIT */
#include "export/exporter-file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "export/batcher.h"
#include "export/writer.h"
#include "otlp/otlp.h"
#include "ss-macro.h"

/* A request line holds at most one batch; 64 MiB is OTLP's advice per request. */
#define FILE_MAX_LINE ((size_t)64 << 20)

typedef struct file_exporter {
        ss_exporter base;
        ss_batcher batcher;
        ss_writer writer;
        char *path;
        unsigned open_handles; /* the batcher's timer and the writer */
} file_exporter;

static int encode_line(void *ctx, ss_span *const *spans, size_t n, ss_buf *out)
{
        int r = ss_otlp_json_encode(spans, n, out);

        return r < 0 ? r : ss_buf_append(out, "\n", 1);
}

static void write_line(void *ctx, ss_span *const *spans, size_t n, ss_buf *line)
{
        file_exporter *f = ctx;
        int r;

        f->base.stats.requests++;
        r = ss_writer_write(&f->writer, line, n);
        if (r < 0)
                ss_exporter_dropped(&f->base, n,
                                    r == -ENOBUFS ? "the file is not keeping up (write queue full)"
                                                  : strerror(-r));
}

static void file_send(void *ctx, ss_span *const *spans, size_t n)
{
        file_exporter *f = ctx;

        (void)ss_exporter_encode_split(&f->base, spans, n, encode_line, write_line, f,
                                       FILE_MAX_LINE);
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
        const file_exporter *f = (const file_exporter *)e;

        return f->batcher.n > 0 || ss_writer_busy(&f->writer);
}

static void release(file_exporter *f)
{
        if (--f->open_handles > 0)
                return;
        free(f->path);
        ss_exporter_free(&f->base, f);
}

static void on_timer_closed(uv_handle_t *h)
{
        release(ss_container_of(h, file_exporter, batcher.timer));
}

static void on_writer_closed(void *ctx)
{
        release(ctx);
}

static void file_destroy(ss_exporter *e)
{
        file_exporter *f = (file_exporter *)e;

        e->stats.spans_dropped += ss_batcher_close(&f->batcher, on_timer_closed);
        ss_writer_close(&f->writer, on_writer_closed);
}

static unsigned file_pressure(const ss_exporter *e)
{
        return ss_writer_pressure(&((const file_exporter *)e)->writer);
}

static const ss_exporter_ops file_ops = {
    .add = file_add,
    .flush = file_flush,
    .busy = file_busy,
    .destroy = file_destroy,
    .pressure = file_pressure,
};

/* The output's fd: standard output for "-", else the file opened for appending. */
static int open_output(const char *path, bool *ret_own)
{
        int fd;

        if (strcmp(path, "-") == 0) {
                *ret_own = false;
                return STDOUT_FILENO;
        }
        /* O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of blocking the start. */
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
        if (fd < 0) {
                int r = -errno;

                ss_log(SS_LOG_ERR,
                       "file exporter: cannot open %s event=exporter-failed exporter=file "
                       "path=\"%s\" error=\"%s\"",
                       path, path, r == -ENXIO ? "a FIFO with no reader" : strerror(-r));
                return r;
        }
        *ret_own = true;
        return fd;
}

int ss_file_exporter_new(uv_loop_t *loop, const char *path, size_t max_batch, uint64_t delay_ms,
                         ss_exporter **ret)
{
        file_exporter *f = calloc(1, sizeof(*f));
        bool own = false;
        int fd = -1, r = -ENOMEM;

        if (!f)
                return -ENOMEM;
        f->base = (ss_exporter){.ops = &file_ops, .name = "file"};
        f->path = strdup(path);
        if (!f->path)
                goto fail;
        fd = r = open_output(path, &own);
        if (r < 0)
                goto fail;
        r = ss_writer_open(&f->writer, loop, fd, own, SS_WRITER_MAX_QUEUED_DEFAULT,
                           ss_exporter_written, f);
        if (r < 0) {
                ss_log(SS_LOG_ERR,
                       "file exporter: cannot write to %s event=exporter-failed "
                       "exporter=file path=\"%s\" error=\"%s\"",
                       path, path, uv_strerror(r));
                goto fail;
        }
        r = ss_batcher_init(&f->batcher, loop, max_batch, delay_ms, file_send, f);
        /* OTLP/JSON may take six times a span's bytes (escapes): keep a line under its bound. */
        f->batcher.max_bytes = FILE_MAX_LINE / 8;
        if (r < 0) {
                f->open_handles = 1;
                ss_writer_close(&f->writer, on_writer_closed);
                return r;
        }
        f->open_handles = 2;
        *ret = &f->base;
        return 0;
fail:
        if (own && fd >= 0)
                close(fd);
        free(f->path);
        free(f);
        return r;
}
