/* SPDX-License-Identifier: MIT */
#include "export/dispatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "otlp/otlp.h"
#include "ss-macro.h"

/* Bytes of a partial_success message quoted in a log line. */
#define DISPATCH_LOG_TEXT_MAX 200

/* Give a request up: its spans count as dropped. */
static void req_drop(ss_dispatch *d, ss_req *r)
{
        d->base.stats.spans_dropped += ss_reqq_finish(&d->queue, r);
}

/* ---- queueing ---- */

static void on_retry_timer(uv_timer_t *t);

/* Wake when the earliest waiting request falls due, if a slot would be free for it. */
static void arm_retry_timer(ss_dispatch *d)
{
        uint64_t now = uv_now(d->loop), due = ss_reqq_next_due(&d->queue);
        int r;

        if (due == UINT64_MAX)
                r = uv_timer_stop(&d->retry_timer);
        else
                r = uv_timer_start(&d->retry_timer, on_retry_timer, due > now ? due - now : 0, 0);
        if (r < 0)
                ss_log_rl(&d->rl_error, SS_LOG_ERR, "%s: retry timer: %s", d->base.name,
                          uv_strerror(r));
}

void ss_dispatch_kick(ss_dispatch *d)
{
        uint64_t now = uv_now(d->loop);
        ss_req *r;

        if (d->destroyed)
                return;
        while ((r = ss_reqq_start_next(&d->queue, now))) {
                if (d->ops->start(d, r) < 0) {
                        ss_log_rl(&d->rl_error, SS_LOG_ERR,
                                  "%s: cannot start a request, dropping %zu spans", d->base.name,
                                  r->n_spans);
                        req_drop(d, r);
                        continue;
                }
                d->base.stats.requests++;
        }
        arm_retry_timer(d);
}

static void on_retry_timer(uv_timer_t *t)
{
        ss_dispatch_kick(t->data);
}

/* One encoded body, sent as it is on every attempt: into the queue with it. */
static void queue_body(void *ctx, ss_span *const *spans, size_t n, ss_buf *body)
{
        ss_dispatch *d = ctx;
        ss_req *r = ss_req_new(&d->queue, n, SS_DISPATCH_MAX_REQUEST_BYTES);
        size_t dropped = 0;

        if (!r) {
                ss_exporter_dropped(&d->base, n, "out of memory for a request");
                return;
        }
        r->body = *body; /* the bytes move into the request */
        ss_buf_init(body, body->max);
        if (ss_reqq_push(&d->queue, r, &dropped) < 0) {
                ss_log_rl(&d->rl_drop, SS_LOG_WARNING,
                          "%s: queue full (%zu bytes queued), dropping %zu spans", d->base.name,
                          d->queue.bytes, n);
                d->base.stats.spans_dropped += n;
                ss_req_free(r);
                return;
        }
        d->base.stats.spans_dropped += dropped;
        ss_dispatch_kick(d);
}

/* The batcher's send(): encode once (in parts if it must); the bytes are kept for every
 * retry. */
static void on_batch(void *ctx, ss_span *const *spans, size_t n)
{
        ss_dispatch *d = ctx;

        (void)ss_exporter_encode_split(&d->base, spans, n, d->ops->encode, queue_body, d,
                                       SS_DISPATCH_MAX_REQUEST_BYTES);
}

/* ---- outcomes ---- */

void ss_dispatch_succeeded(ss_dispatch *d, ss_req *r, const uint8_t *resp, size_t len, bool json)
{
        int (*parse)(const uint8_t *, size_t, int64_t *, char **) =
            json ? ss_otlp_json_parse_response : ss_otlp_parse_response;
        int64_t rejected = 0;
        char *msg = NULL;
        char text[DISPATCH_LOG_TEXT_MAX + 1];
        size_t n = r->n_spans;

        /* Some backends (Langfuse) answer other JSON: a body that is no OTLP response is a
         * success. */
        if (parse(resp, len, &rejected, &msg) < 0 || rejected < 0)
                rejected = 0;
        if ((uint64_t)rejected > n)
                rejected = (int64_t)n;
        if (rejected > 0) {
                ss_log_text(text, sizeof(text), msg, msg ? strlen(msg) : 0);
                ss_log_rl(&d->rl_drop, SS_LOG_WARNING, "%s: backend rejected %lld of %zu spans: %s",
                          d->base.name, (long long)rejected, n, text);
        }
        free(msg);
        d->base.stats.spans_dropped += (uint64_t)rejected;
        d->base.stats.spans_exported += n - (uint64_t)rejected;
        ss_reqq_finish(&d->queue, r);
}

void ss_dispatch_failed(ss_dispatch *d, ss_req *r, bool retryable, long after_ms, const char *why)
{
        int64_t delay = retryable ? ss_retry_delay_ms(&d->retry, r->attempts, after_ms) : -1;

        d->base.stats.failures++;
        if (delay < 0) {
                if (retryable)
                        ss_log_rl(&d->rl_drop, SS_LOG_WARNING,
                                  "%s: %s: giving up after %u attempts, dropping %zu spans",
                                  d->base.name, why, r->attempts, r->n_spans);
                else
                        ss_log_rl(&d->rl_drop, SS_LOG_WARNING, "%s: %s: dropping %zu spans",
                                  d->base.name, why, r->n_spans);
                req_drop(d, r);
                return;
        }
        ss_log_rl(&d->rl_retry, SS_LOG_INFO, "%s: %s: retrying %zu spans in %lld ms", d->base.name,
                  why, r->n_spans, (long long)delay);
        d->base.stats.retries++;
        ss_reqq_retry(&d->queue, r, uv_now(d->loop) + (uint64_t)delay);
}

/* ---- exporter ops ---- */

static void dispatch_add(ss_exporter *base, ss_span *const *spans, size_t n)
{
        ss_dispatch *d = (ss_dispatch *)base;

        d->base.stats.spans_in += n;
        ss_batcher_add(&d->batcher, spans, n);
}

static void dispatch_flush(ss_exporter *base)
{
        ss_dispatch *d = (ss_dispatch *)base;

        ss_batcher_flush(&d->batcher);
        ss_dispatch_kick(d);
}

static bool dispatch_busy(const ss_exporter *base)
{
        const ss_dispatch *d = (const ss_dispatch *)base;

        return d->batcher.n > 0 || ss_reqq_busy(&d->queue);
}

void ss_dispatch_hold(ss_dispatch *d)
{
        d->holds++;
}

void ss_dispatch_release(ss_dispatch *d)
{
        if (--d->holds == 0)
                d->ops->free(d);
}

static void on_handle_closed(uv_handle_t *h)
{
        ss_dispatch_release(h->data);
}

static void on_batcher_closed(uv_handle_t *h)
{
        ss_dispatch_release(ss_container_of(h, ss_dispatch, batcher.timer));
}

static void drop_all(ss_dispatch *d)
{
        ss_req *r;

        while ((r = d->queue.inflight.head)) {
                d->ops->abandon(d, r);
                req_drop(d, r);
        }
        while ((r = d->queue.waiting.head))
                req_drop(d, r);
}

static void dispatch_destroy(ss_exporter *base)
{
        ss_dispatch *d = (ss_dispatch *)base;
        uint64_t before;

        if (!d || d->destroyed)
                return;
        d->destroyed = true;
        before = d->base.stats.spans_dropped;
        d->base.stats.spans_dropped += ss_batcher_close(&d->batcher, on_batcher_closed);
        drop_all(d);
        if (d->base.stats.spans_dropped > before)
                ss_log(SS_LOG_WARNING, "%s: closing with %llu spans not exported", d->base.name,
                       (unsigned long long)(d->base.stats.spans_dropped - before));
        d->ops->close(d);
        uv_close((uv_handle_t *)&d->retry_timer, on_handle_closed);
}

static const ss_exporter_ops dispatch_exporter_ops = {
    .add = dispatch_add,
    .flush = dispatch_flush,
    .busy = dispatch_busy,
    .destroy = dispatch_destroy,
};

/* ---- construction ---- */

#define OR_DEFAULT(v, def) ((v) ? (v) : (def))

int ss_dispatch_init(ss_dispatch *d, uv_loop_t *loop, const char *name, const ss_dispatch_ops *ops,
                     const ss_dispatch_config *cfg)
{
        ss_retry_config rd;
        int r;

        ss_retry_config_defaults(&rd);
        d->base.ops = &dispatch_exporter_ops;
        d->base.name = name;
        d->ops = ops;
        d->loop = loop;
        d->retry = (ss_retry_config){
            .max_attempts = OR_DEFAULT(cfg->retry.max_attempts, rd.max_attempts),
            .backoff_initial_ms = OR_DEFAULT(cfg->retry.backoff_initial_ms, rd.backoff_initial_ms),
            .backoff_max_ms = OR_DEFAULT(cfg->retry.backoff_max_ms, rd.backoff_max_ms),
        };
        ss_reqq_init(&d->queue, name,
                     OR_DEFAULT(cfg->max_queue_bytes, SS_DISPATCH_MAX_QUEUE_BYTES_DEFAULT),
                     OR_DEFAULT(cfg->max_inflight, SS_DISPATCH_MAX_INFLIGHT_DEFAULT));
        r = ss_batcher_init(
            &d->batcher, loop, OR_DEFAULT(cfg->max_batch, SS_DISPATCH_MAX_BATCH_DEFAULT),
            OR_DEFAULT(cfg->batch_delay_ms, SS_DISPATCH_BATCH_DELAY_MS_DEFAULT), on_batch, d);
        if (r < 0) {
                ops->free(d);
                return r;
        }
        d->batcher.max_bytes =
            OR_DEFAULT(cfg->max_batch_bytes, SS_DISPATCH_MAX_BATCH_BYTES_DEFAULT);
        r = uv_timer_init(loop, &d->retry_timer);
        if (r < 0) {
                d->holds = 1;
                (void)ss_batcher_close(&d->batcher, on_batcher_closed);
                return r;
        }
        d->retry_timer.data = d;
        d->holds = 2;
        return 0;
}
