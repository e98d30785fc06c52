/* SPDX-License-Identifier: MIT */
#include "export/exporter.h"

#include <stdlib.h>
#include <string.h>

#include <errno.h>

#include "base/log.h"

void ss_exporter_dropped(ss_exporter *e, size_t n, const char *why)
{
        e->stats.failures++;
        e->stats.spans_dropped += n;
        ss_log_ratelimited(SS_LOG_WARNING,
                           "%s exporter: spans dropped event=export-dropped exporter=%s "
                           "spans=%zu reason=\"%s\"",
                           e->name, e->name, n, why);
}

void ss_exporter_written(void *exporter, size_t n, int status)
{
        ss_exporter *e = exporter;

        if (status < 0) {
                ss_exporter_dropped(e, n, strerror(-status));
                return;
        }
        e->stats.spans_exported += n;
}

void ss_exporter_free(ss_exporter *e, void *mem)
{
        void (*freed)(void *ctx) = e->freed;
        void *ctx = e->freed_ctx;

        free(mem);
        if (freed)
                freed(ctx);
}

size_t
ss_exporter_encode_split(ss_exporter *e, ss_span *const *spans, size_t n,
                         int (*encode)(void *ctx, ss_span *const *spans, size_t n, ss_buf *out),
                         void (*emit)(void *ctx, ss_span *const *spans, size_t n, ss_buf *body),
                         void *ctx, size_t max_body)
{
        ss_buf body;
        size_t dropped = 0;
        int r;

        if (n == 0)
                return 0;
        ss_buf_init(&body, max_body);
        r = encode(ctx, spans, n, &body);
        if (r == 0)
                emit(ctx, spans, n, &body);
        ss_buf_free(&body);
        if (r == -ENOBUFS && n > 1)
                return ss_exporter_encode_split(e, spans, n / 2, encode, emit, ctx, max_body) +
                       ss_exporter_encode_split(e, spans + n / 2, n - n / 2, encode, emit, ctx,
                                                max_body);
        if (r < 0) {
                dropped = n;
                ss_exporter_dropped(
                    e, n, r == -ENOBUFS ? "a span too large for one request" : strerror(-r));
        }
        return dropped;
}
