/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The seam between stages: a stage hands finished spans downstream through
 * an ss_sink and knows nothing of what is behind it. trace/ hands each
 * completed trace (or a chunk of a large one) to the sink main.c gave it;
 * the policy stage and the export pipeline are sinks. Loop thread only;
 * put() and flush() never block.
 */

#include <stddef.h>

#include "model/span.h"

typedef struct ss_sink ss_sink;

typedef struct ss_sink_ops {
        /* Take the finished spans of one trace (or a chunk of it). The caller keeps its
         * references: a sink that holds spans takes its own. */
        void (*put)(ss_sink *s, ss_span *const *spans, size_t n);
        /* Hand on at once what is held back for batching (a client's FLUSH). */
        void (*flush)(ss_sink *s);
} ss_sink_ops;

struct ss_sink {
        const ss_sink_ops *ops;
};

static inline void ss_sink_put(ss_sink *s, ss_span *const *spans, size_t n)
{
        s->ops->put(s, spans, n);
}

static inline void ss_sink_flush(ss_sink *s)
{
        s->ops->flush(s);
}
