/* SPDX-License-Identifier: MIT */
#include "ingest/control.h"

#include <errno.h>
#include <stdlib.h>

#include "ss-wire.h"

typedef struct source {
        ss_counters_fn fn;
        const void *ctx;
} source;

struct ss_control {
        ss_sink *flush_target;
        ss_tap *tap;
        source sources[SS_CONTROL_MAX_SOURCES];
        size_t n;
};

int ss_control_new(ss_sink *flush_target, ss_control **ret)
{
        ss_control *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->flush_target = flush_target;
        *ret = c;
        return 0;
}

void ss_control_free(ss_control *c)
{
        free(c);
}

int ss_control_add_counters(ss_control *c, ss_counters_fn fn, const void *ctx)
{
        if (c->n == SS_CONTROL_MAX_SOURCES)
                return -E2BIG;
        c->sources[c->n++] = (source){.fn = fn, .ctx = ctx};
        return 0;
}

void ss_control_collect(const ss_control *c, ss_counters *out)
{
        for (size_t i = 0; i < c->n; i++)
                c->sources[i].fn(c->sources[i].ctx, out);
}

int ss_control_flush(ss_control *c, uint64_t seq, ss_buf *out)
{
        /* Every earlier message of the connection has been applied: what completed is with
         * the next stage; make it hand on what it batches. */
        ss_sink_flush(c->flush_target);
        return ss_wire_put_seq(out, SS_CONTROL_MAX_REPLY, SS_MSG_FLUSHED, seq);
}

int ss_control_stats(const ss_control *c, uint64_t id, ss_buf *out)
{
        ss_counters all;
        int r;

        ss_counters_init(&all);
        ss_control_collect(c, &all);
        r = all.err ? all.err : ss_wire_put_stats(out, SS_CONTROL_MAX_REPLY, id, all.v, all.n);
        ss_counters_free(&all);
        return r;
}

void ss_control_set_tap(ss_control *c, ss_tap *tap)
{
        c->tap = tap;
}

ss_tap *ss_control_tap(const ss_control *c)
{
        return c->tap;
}
