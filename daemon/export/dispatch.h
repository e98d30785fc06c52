/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the network exporters (OTLP/HTTP, OTLP/gRPC) do alike between add()
 * and their transport, written once: the batcher, one encoding per batch
 * (split when it does not fit a request), the request queue under its byte
 * bound and in-flight limit, the retry timer, what the outcome of an attempt
 * means for its request and the counters, and the teardown. An exporter
 * embeds an ss_dispatch as its first member, so that its ss_exporter is the
 * dispatch's, and brings its transport through ss_dispatch_ops. It reports
 * each attempt's outcome with ss_dispatch_succeeded() or
 * ss_dispatch_failed(), then calls ss_dispatch_kick() to start what may
 * start. Loop thread only; nothing blocks.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/log.h"
#include "export/batcher.h"
#include "export/dead-letter.h"
#include "export/exporter.h"
#include "export/request-queue.h"
#include "export/retry.h"
#include "export/spool.h"

/* OTLP's recommended maximum request size: a batch that encodes bigger is split. */
#define SS_DISPATCH_MAX_REQUEST_BYTES ((size_t)64 << 20)

#define SS_DISPATCH_MAX_BATCH_DEFAULT       512u
#define SS_DISPATCH_MAX_BATCH_BYTES_DEFAULT ((size_t)8 << 20)
#define SS_DISPATCH_BATCH_DELAY_MS_DEFAULT  1000u
#define SS_DISPATCH_MAX_QUEUE_BYTES_DEFAULT ((size_t)64 << 20)
#define SS_DISPATCH_MAX_INFLIGHT_DEFAULT    4u

/* The memory queue's bound for a configured max_queue_bytes (0: the default). */
static inline size_t ss_dispatch_queue_bytes(size_t configured)
{
        return configured ? configured : SS_DISPATCH_MAX_QUEUE_BYTES_DEFAULT;
}

typedef struct ss_dispatch ss_dispatch;

typedef struct ss_dispatch_ops {
        /* The bytes every attempt of one request for spans[0..n) sends, appended to out
         * (bounded by SS_DISPATCH_MAX_REQUEST_BYTES): 0, -ENOBUFS when they do not fit,
         * -ENOMEM. exporter is the ss_dispatch. */
        int (*encode)(void *exporter, ss_span *const *spans, size_t n, ss_buf *out);
        /* Optional: the bytes sent for raw, a body in the request's content type, appended to
         * out (compressed when so configured). 0, -ENOBUFS, -ENOMEM. */
        int (*wrap)(void *exporter, const ss_buf *raw, ss_buf *out);
        /* Start an attempt of r, which is in flight; r->transport is the exporter's. 0, or
         * -errno with nothing started (r is then dropped). */
        int (*start)(ss_dispatch *d, ss_req *r);
        /* At destroy, for each request in flight: r is about to be dropped; the transport
         * abandons its attempt, reports no outcome for it and never touches r again. */
        void (*abandon)(ss_dispatch *d, ss_req *r);
        /* At destroy, once nothing is in flight: shut the transport down. Each handle it
         * still has to close was counted with ss_dispatch_hold() and is released with
         * ss_dispatch_release(). Must accept a transport that was never fully set up. */
        void (*close)(ss_dispatch *d);
        /* Once the last hold is released: free what the exporter owns, then
         * ss_exporter_free() its allocation. */
        void (*free)(ss_dispatch *d);
} ss_dispatch_ops;

/* A zero field takes its SS_DISPATCH_*_DEFAULT (retry: export/retry.h's defaults). */
typedef struct ss_dispatch_config {
        size_t max_batch;        /* spans per request */
        size_t max_batch_bytes;  /* span bytes per request (ss_span_size()) */
        uint64_t batch_delay_ms; /* a batch goes this long after its first span */
        size_t max_queue_bytes;  /* encoded bytes waiting for retry or in flight */
        uint32_t max_inflight;   /* concurrent attempts */
        const char *dead_letter; /* file for the requests given up; NULL: none */
        ss_retry_config retry;
        ss_spool_config spool; /* dir NULL: no spool */
} ss_dispatch_config;

/* Spans given up, by reason (their sum is in base.stats.spans_dropped with the others:
 * too large to send, out of memory). */
typedef struct ss_dispatch_drops {
        uint64_t queue_full; /* the memory queue full and no spool to take them */
        uint64_t rejected;   /* a final answer: 4xx, a non-retryable gRPC code, partial_success */
        uint64_t exhausted;  /* retried past max_elapsed_ms or max_attempts, no spool */
        uint64_t spool_full; /* the spool's oldest, dropped at its max_bytes */
        uint64_t spool_refused; /* the spool could not take them (I/O backlog, too large) */
        uint64_t shutdown;      /* still held at shutdown with no spool */
} ss_dispatch_drops;

struct ss_dispatch {
        ss_exporter base;
        const ss_dispatch_ops *ops;
        uv_loop_t *loop;
        uv_timer_t retry_timer; /* when the earliest waiting request falls due */
        ss_batcher batcher;
        ss_req_queue queue;
        ss_retry_config retry;
        ss_spool *spool;     /* NULL: none */
        bool failing;        /* the backend's last answer asked to retry: spool new work */
        bool reading;        /* a spool read is pending */
        uint64_t probe_at;   /* while failing, no probe from the spool before this (uv_now):
                                the backoff, or what Retry-After or RetryInfo asked */
        uint64_t spool_lost; /* spool.dropped_full_spans already counted */
        ss_dispatch_drops drops;
        unsigned holds; /* handles still to close before the free */
        bool destroyed;
        ss_dead_letter *dead_letter; /* NULL: none */
        /* Per exporter, so that one backend's failures never silence another's. */
        ss_ratelimit rl_drop, rl_retry, rl_error;
};

/*
 * Set d up as exporter name ("otlp-http", a string that outlives d) with
 * base.ops the shared add/flush/busy/destroy. From this call on, d's
 * allocation belongs to the dispatch: on failure (-ENOMEM or a libuv error)
 * it is freed through ops->free(), maybe from a later loop iteration; once
 * set up, an exporter whose transport fails to start calls
 * base.ops->destroy(), which does the same. Loop thread.
 */
int ss_dispatch_init(ss_dispatch *d, uv_loop_t *loop, const char *name, const ss_dispatch_ops *ops,
                     const ss_dispatch_config *cfg);

/* One more handle of the transport to close before d is freed. */
void ss_dispatch_hold(ss_dispatch *d);

/* A handle counted with ss_dispatch_hold() is closed; the last one frees d (ops->free). */
void ss_dispatch_release(ss_dispatch *d);

/* Start the oldest due requests while in-flight slots are free, and wake for the next one
 * due. Calls ops->start(), so not from inside a transport callback that forbids it. */
void ss_dispatch_kick(ss_dispatch *d);

/*
 * The backend took r, answering resp[0..len) (an ExportTraceServiceResponse,
 * in the OTLP/JSON mapping when json; anything else counts as a full
 * success): its spans are exported but for those a partial_success
 * rejected, which are dropped and logged, never retried. r is freed.
 */
void ss_dispatch_succeeded(ss_dispatch *d, ss_req *r, const uint8_t *resp, size_t len, bool json);

/*
 * An attempt of r failed (counted): when retryable and within the retry
 * policy's time (and attempts, when limited), r waits again, after_ms when
 * the backend said how long (>= 0), else the backoff. A retryable request
 * past the policy goes to the spool when there is one (a request read from
 * the spool waits there: it is retried for as long as the spool keeps it);
 * otherwise it is dropped and counted by reason. why names the failure in
 * the log line.
 */
void ss_dispatch_failed(ss_dispatch *d, ss_req *r, bool retryable, long after_ms, const char *why);
