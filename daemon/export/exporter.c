/* SPDX-License-Identifier: MIT */
#include "export/exporter.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

void ss_exporter_dropped(ss_exporter *e, size_t n, const char *why)
{
        e->stats.failures++;
        e->stats.spans_dropped += n;
        ss_log_ratelimited(SS_LOG_WARNING, "%s exporter: %zu span(s) dropped: %s", e->name, n, why);
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
