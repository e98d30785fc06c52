/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The exporter interface. The export pipeline hands each finished trace (or, for a
 * very large or long trace, a chunk of it) to every exporter through add();
 * the exporter takes its own span references and owns its queue, so a slow
 * backend never holds up a fast one. Loop thread only; nothing here blocks.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/counters.h"
#include "model/span.h"
#include "ss-buf.h"

typedef struct ss_exporter ss_exporter;

typedef struct ss_exporter_stats {
        uint64_t spans_in;       /* handed to add() */
        uint64_t spans_exported; /* accepted by the backend */
        uint64_t spans_dropped;  /* given up: queue full, final error, retries exhausted */
        uint64_t requests;       /* requests sent (retries included) */
        uint64_t failures;       /* requests that failed */
        uint64_t retries;        /* requests queued again after a retryable failure */
        uint64_t spans_spooled;  /* written to the disk spool (they are not lost) */
        uint64_t spans_replayed; /* read back from the spool to be sent */
} ss_exporter_stats;

typedef struct ss_exporter_ops {
        /* Take spans of one trace; the caller keeps its references. */
        void (*add)(ss_exporter *e, ss_span *const *spans, size_t n);
        /* Send what is batched now, without waiting for the batch triggers. */
        void (*flush)(ss_exporter *e);
        /* True while anything is batched, queued for retry or in flight. */
        bool (*busy)(const ss_exporter *e);
        /* Drop everything and free; uv handles are closed first, so this may
         * finish in a later loop iteration: the exporter then calls
         * ss_exporter_free(). Pending work is counted dropped. */
        void (*destroy)(ss_exporter *e);
        /* Optional: how full, in percent, the memory it holds for a backend that is keeping
         * up, only slowly, is; 0 while the backend fails (then its work goes to the spool or
         * is dropped, counted: slowing every client for it would stall the other exporters).
         * The ingest stage stops reading clients above a high watermark of it. */
        unsigned (*pressure)(const ss_exporter *e);
        /* Optional (the network exporters): send body, in the exporter's content type
         * (OTLP protobuf, or OTLP/JSON when so configured) and uncompressed, as one request
         * of its own, with the retries and the spool spans have; n is what it holds (the
         * metrics stage's data points), counted as spans are. Takes body's bytes. */
        void (*push)(ss_exporter *e, ss_buf *body, size_t n);
        /* Optional: counters beyond ss_exporter_stats, each name after prefix. */
        void (*counters)(const ss_exporter *e, const char *prefix, ss_counters *out);
} ss_exporter_ops;

struct ss_exporter {
        const ss_exporter_ops *ops;
        const char *name; /* "console", "file", "otlp-http" */
        ss_exporter_stats stats;
        /* Set by the owner before destroy(): told once the exporter is gone. */
        void (*freed)(void *ctx);
        void *freed_ctx;
};

/* The last step of destroy(): free mem (the exporter's allocation, which embeds e), then
 * tell the owner. */
void ss_exporter_free(ss_exporter *e, void *mem);

/* Count n spans given up (a failure, n dropped) and log why, rate-limited. Loop thread. */
void ss_exporter_dropped(ss_exporter *e, size_t n, const char *why);

/* export/writer.h's done() for an exporter whose ctx is its ss_exporter: n spans written
 * (exported) or given up with status (dropped). */
void ss_exporter_written(void *exporter, size_t n, int status);

/*
 * Encode spans[0..n) with encode() into one body and hand it to emit(); when
 * it does not fit its bound (-ENOBUFS), split the batch in halves and try
 * each, so that a span too large to send is dropped alone and never takes a
 * batch of other clients' spans with it. Returns the spans dropped (counted
 * and logged here). emit() takes the body's bytes (ss_buf) if it keeps them.
 */
size_t
ss_exporter_encode_split(ss_exporter *e, ss_span *const *spans, size_t n,
                         int (*encode)(void *ctx, ss_span *const *spans, size_t n, ss_buf *out),
                         void (*emit)(void *ctx, ss_span *const *spans, size_t n, ss_buf *body),
                         void *ctx, size_t max_body);
