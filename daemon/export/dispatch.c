/* SPDX-License-Identifier: MIT */
#include "export/dispatch.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "otlp/otlp.h"
#include "ss-macro.h"

/* Bytes of a partial_success message quoted in a log line. */
#define DISPATCH_LOG_TEXT_MAX 200

/* Give a request up: its spans count as dropped, under *reason too, and its body goes to the
 * dead-letter file when there is one. A request read from the spool leaves it. */
static void req_drop(ss_dispatch *d, ss_req *r, uint64_t *reason)
{
        size_t n;

        ss_dead_letter_put(d->dead_letter, r->body.data, r->body.len, r->n_spans);
        if (r->spool_id)
                ss_spool_ack(d->spool, r->spool_id - 1);
        n = ss_reqq_finish(&d->queue, r);
        d->base.stats.spans_dropped += n;
        *reason += n;
}

/* The spool deleted its oldest records at its max_bytes: their spans are dropped. */
static void count_spool_losses(ss_dispatch *d)
{
        uint64_t lost = d->spool ? ss_spool_stats_get(d->spool)->dropped_full_spans : 0;

        if (lost > d->spool_lost) {
                d->base.stats.spans_dropped += lost - d->spool_lost;
                d->drops.spool_full += lost - d->spool_lost;
                d->spool_lost = lost;
        }
}

/* ---- the spool ---- */

/* Put body (n spans) on disk; the bytes move. False when the spool refused it (counted):
 * the caller keeps body. */
static bool spool_body(ss_dispatch *d, ss_buf *body, size_t n)
{
        int r = ss_spool_append(d->spool, body, (uint32_t)n);

        if (r < 0) {
                ss_log_rl(&d->rl_drop, SS_LOG_WARNING,
                          "%s: the spool refused %zu spans event=spool-refused "
                          "exporter=%s spans=%zu reason=%s",
                          d->base.name, n, d->base.name, n,
                          r == -EMSGSIZE ? "too-large" : "io-backlog");
                return false;
        }
        d->base.stats.spans_spooled += n;
        return true;
}

/* A request leaves memory for the spool: spooled, or dropped when it refuses. */
static void req_spool(ss_dispatch *d, ss_req *r)
{
        size_t len = r->body.len;

        if (spool_body(d, &r->body, r->n_spans)) {
                /* The body moved out: the queue's bytes let go of what it counted. */
                d->queue.bytes -= len;
                ss_reqq_finish(&d->queue, r);
                return;
        }
        req_drop(d, r, &d->drops.spool_refused);
}

/*
 * Whether the memory queue should take more from the spool: when it holds
 * little beside what is in flight, so that spooled requests wait on disk
 * rather than in memory. While the backend fails, one at a time and only
 * when nothing else is in memory: that one probes the backend, retried with
 * the backoff until it goes through.
 */
static bool wants_replay(const ss_dispatch *d)
{
        if (!d->spool || d->reading || d->destroyed || !ss_spool_has_more(d->spool))
                return false;
        if (d->failing)
                return !ss_reqq_busy(&d->queue) && uv_now(d->loop) >= d->probe_at;
        return d->queue.waiting.n < d->queue.max_inflight &&
               d->queue.bytes < d->queue.max_bytes / 2;
}

static void replay_next(ss_dispatch *d);

static void on_spool_read(void *ctx, uint64_t id, ss_buf *body, uint32_t n_spans, int err)
{
        ss_dispatch *d = ctx;
        size_t dropped = 0;
        ss_req *r;

        d->reading = false;
        if (err < 0 || d->destroyed) {
                if (err < 0 && err != -ENOENT)
                        ss_log_rl(&d->rl_error, SS_LOG_ERR,
                                  "%s: cannot read the spool event=spool-read-failed "
                                  "exporter=%s error=\"%s\"",
                                  d->base.name, d->base.name, strerror(-err));
                if (!d->destroyed && err < 0)
                        ss_spool_rewind(d->spool);
                return;
        }
        r = ss_req_new(&d->queue, n_spans, SS_DISPATCH_MAX_REQUEST_BYTES);
        if (!r) {
                ss_spool_rewind(d->spool); /* read again later */
                return;
        }
        r->body = *body;
        ss_buf_init(body, body->max);
        r->spool_id = id + 1;
        if (ss_reqq_push(&d->queue, r, &dropped) < 0) {
                ss_req_free(r);
                ss_spool_rewind(d->spool);
                return;
        }
        d->base.stats.spans_replayed += n_spans;
        d->base.stats.spans_dropped += dropped;
        d->drops.queue_full += dropped;
        ss_dispatch_kick(d);
}

/* Bring the oldest spooled request into memory when the backend takes requests. */
static void replay_next(ss_dispatch *d)
{
        if (!wants_replay(d))
                return;
        if (ss_spool_read(d->spool, on_spool_read, d) == 0)
                d->reading = true;
}

/* ---- queueing ---- */

static void on_retry_timer(uv_timer_t *t);

/* Wake when the earliest waiting request falls due, if a slot would be free for it. */
static void arm_retry_timer(ss_dispatch *d)
{
        uint64_t now = uv_now(d->loop), due = ss_reqq_next_due(&d->queue);
        int r;

        /* A probe from the spool waits for its time too. */
        if (d->failing && d->probe_at > now && d->probe_at < due && d->spool && !d->reading &&
            ss_spool_has_more(d->spool))
                due = d->probe_at;
        if (due == UINT64_MAX)
                r = uv_timer_stop(&d->retry_timer);
        else
                r = uv_timer_start(&d->retry_timer, on_retry_timer, due > now ? due - now : 0, 0);
        if (r < 0)
                ss_log_rl(&d->rl_error, SS_LOG_ERR,
                          "%s: retry timer failed event=timer-failed what=retry "
                          "exporter=%s error=\"%s\"",
                          d->base.name, d->base.name, uv_strerror(r));
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
                                  "%s: cannot start a request, dropping %zu spans "
                                  "event=export-dropped exporter=%s spans=%zu "
                                  "reason=start-failed",
                                  d->base.name, r->n_spans, d->base.name, r->n_spans);
                        req_drop(d, r, &d->drops.rejected);
                        continue;
                }
                d->base.stats.requests++;
        }
        count_spool_losses(d);
        replay_next(d);
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
        ss_req *r;
        size_t dropped = 0;

        /* To the spool while the backend fails, while older requests wait there (they go
         * first), or when memory has no room: nothing is dropped that disk can hold. */
        if (d->spool &&
            (d->failing || ss_spool_has_more(d->spool) || d->reading ||
             d->queue.bytes + body->len > d->queue.max_bytes) &&
            spool_body(d, body, n)) {
                count_spool_losses(d);
                return;
        }
        r = ss_req_new(&d->queue, n, SS_DISPATCH_MAX_REQUEST_BYTES);
        if (!r) {
                ss_exporter_dropped(&d->base, n, "out of memory for a request");
                return;
        }
        r->body = *body; /* the bytes move into the request */
        ss_buf_init(body, body->max);
        if (ss_reqq_push(&d->queue, r, &dropped) < 0) {
                ss_log_rl(&d->rl_drop, SS_LOG_WARNING,
                          "%s: queue full (%zu bytes queued), dropping %zu spans "
                          "event=export-dropped exporter=%s spans=%zu reason=queue-full "
                          "queued_bytes=%zu",
                          d->base.name, d->queue.bytes, n, d->base.name, n, d->queue.bytes);
                d->base.stats.spans_dropped += n;
                d->drops.queue_full += n;
                ss_req_free(r);
                return;
        }
        d->base.stats.spans_dropped += dropped;
        d->drops.queue_full += dropped;
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
                ss_log_rl(&d->rl_drop, SS_LOG_WARNING,
                          "%s: backend rejected %lld of %zu spans: %s "
                          "event=export-rejected exporter=%s spans=%lld of=%zu",
                          d->base.name, (long long)rejected, n, text, d->base.name,
                          (long long)rejected, n);
        }
        free(msg);
        d->base.stats.spans_dropped += (uint64_t)rejected;
        d->drops.rejected += (uint64_t)rejected;
        d->base.stats.spans_exported += n - (uint64_t)rejected;
        if (r->spool_id)
                ss_spool_ack(d->spool, r->spool_id - 1);
        ss_reqq_finish(&d->queue, r);
        d->failing = false; /* what waits on disk may come now */
}

void ss_dispatch_failed(ss_dispatch *d, ss_req *r, bool retryable, long after_ms, const char *why)
{
        uint64_t now = uv_now(d->loop), elapsed = now - r->first_ms;
        int64_t delay = -1;

        d->base.stats.failures++;
        if (retryable)
                d->failing = true;
        /* With a spool, a failing backend's requests wait on disk, in the order they came,
         * and the spool's oldest probes the backend: memory holds nothing for it. */
        if (retryable && d->spool && !r->spool_id) {
                d->probe_at = now + (after_ms >= 0 ? (uint64_t)after_ms
                                                   : ss_retry_backoff_ms(&d->retry, r->attempts));
                ss_log_rl(&d->rl_retry, SS_LOG_INFO,
                          "%s: %s: spooling %zu spans until it answers "
                          "event=export-spooled exporter=%s spans=%zu reason=\"%s\"",
                          d->base.name, why, r->n_spans, d->base.name, r->n_spans, why);
                req_spool(d, r);
                return;
        }
        if (retryable && r->spool_id) /* retried for as long as the spool keeps it */
                delay =
                    after_ms >= 0 ? after_ms : (int64_t)ss_retry_backoff_ms(&d->retry, r->attempts);
        else if (retryable)
                delay = ss_retry_delay_ms(&d->retry, r->attempts, elapsed, after_ms);
        if (delay < 0) {
                if (retryable)
                        ss_log_rl(&d->rl_drop, SS_LOG_WARNING,
                                  "%s: %s: giving up after %u attempts in %llu ms, dropping %zu "
                                  "spans event=export-dropped exporter=%s spans=%zu "
                                  "reason=retries-exhausted attempts=%u elapsed_ms=%llu",
                                  d->base.name, why, r->attempts, (unsigned long long)elapsed,
                                  r->n_spans, d->base.name, r->n_spans, r->attempts,
                                  (unsigned long long)elapsed);
                else
                        ss_log_rl(&d->rl_drop, SS_LOG_WARNING,
                                  "%s: %s: dropping %zu spans event=export-dropped "
                                  "exporter=%s spans=%zu reason=final-failure",
                                  d->base.name, why, r->n_spans, d->base.name, r->n_spans);
                req_drop(d, r, retryable ? &d->drops.exhausted : &d->drops.rejected);
                return;
        }
        ss_log_rl(&d->rl_retry, SS_LOG_INFO,
                  "%s: %s: retrying %zu spans in %lld ms event=export-retry "
                  "exporter=%s spans=%zu delay_ms=%lld attempt=%u reason=\"%s\"",
                  d->base.name, why, r->n_spans, (long long)delay, d->base.name, r->n_spans,
                  (long long)delay, r->attempts, why);
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

static void dispatch_push(ss_exporter *base, ss_buf *body, size_t n)
{
        ss_dispatch *d = (ss_dispatch *)base;
        ss_buf wire;
        int r = 0;

        d->base.stats.spans_in += n;
        if (!d->ops->wrap) {
                queue_body(d, NULL, n, body); /* takes the bytes when it keeps them */
                ss_buf_free(body);
                return;
        }
        ss_buf_init(&wire, SS_DISPATCH_MAX_REQUEST_BYTES);
        r = d->ops->wrap(d, body, &wire);
        if (r < 0)
                ss_exporter_dropped(&d->base, n,
                                    r == -ENOBUFS ? "request too large to send"
                                                  : "out of memory for a request");
        else
                queue_body(d, NULL, n, &wire);
        ss_buf_free(&wire);
        ss_buf_free(body);
}

static void dispatch_flush(ss_exporter *base)
{
        ss_dispatch *d = (ss_dispatch *)base;

        ss_batcher_flush(&d->batcher);
        ss_dispatch_kick(d);
}

/* Busy while anything is in memory, and while the spool has work the backend takes. */
static bool dispatch_busy(const ss_exporter *base)
{
        const ss_dispatch *d = (const ss_dispatch *)base;

        return d->batcher.n > 0 || ss_reqq_busy(&d->queue) || d->reading ||
               (d->spool && !d->failing && ss_spool_has_more(d->spool));
}

/*
 * The exporter's memory against its queue's bound: the encoded requests, and the spans
 * waiting in the batcher, which are the next request. Counting only the queue, a batch
 * filling while the queue sat just under the high watermark went out whole and found no
 * room when a request is more than the headroom above the watermark (the spans' stored
 * size is more than their encoding: the hold comes early rather than late).
 */
static unsigned dispatch_pressure(const ss_exporter *base)
{
        const ss_dispatch *d = (const ss_dispatch *)base;
        uint64_t held = (uint64_t)d->queue.bytes + d->batcher.bytes;

        if (d->failing || !d->queue.max_bytes)
                return 0;
        held = held * 100 / d->queue.max_bytes;
        return held > UINT_MAX ? UINT_MAX : (unsigned)held;
}

static void dispatch_counters(const ss_exporter *base, const char *prefix, ss_counters *out)
{
        const ss_dispatch *d = (const ss_dispatch *)base;
        const ss_dispatch_drops *x = &d->drops;

        ss_counters_add(out, prefix, "queued_requests", d->queue.waiting.n);
        ss_counters_add(out, prefix, "inflight_requests", d->queue.inflight.n);
        ss_counters_add(out, prefix, "queued_bytes", d->queue.bytes);
        ss_counters_add(out, prefix, "dropped.queue_full", x->queue_full);
        ss_counters_add(out, prefix, "dropped.rejected", x->rejected);
        ss_counters_add(out, prefix, "dropped.exhausted", x->exhausted);
        ss_counters_add(out, prefix, "dropped.spool_full", x->spool_full);
        ss_counters_add(out, prefix, "dropped.spool_refused", x->spool_refused);
        ss_counters_add(out, prefix, "dropped.shutdown", x->shutdown);
        ss_dead_letter_counters(d->dead_letter, prefix, out);
        if (d->spool) {
                const ss_spool_stats *s = ss_spool_stats_get(d->spool);
                char p[SS_COUNTER_NAME_MAX];

                snprintf(p, sizeof(p), "%sspool.", prefix);
                ss_counters_add(out, p, "records", s->records);
                ss_counters_add(out, p, "bytes", s->bytes);
                ss_counters_add(out, p, "spans", s->spans);
                ss_counters_add(out, p, "appended", s->appended);
                ss_counters_add(out, p, "replayed", s->replayed);
                ss_counters_add(out, p, "acked", s->acked);
                ss_counters_add(out, p, "dropped_full", s->dropped_full);
                ss_counters_add(out, p, "dropped_full_spans", s->dropped_full_spans);
                ss_counters_add(out, p, "refused", s->refused);
                ss_counters_add(out, p, "corrupt", s->corrupt);
                ss_counters_add(out, p, "io_errors", s->io_errors);
        }
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

/*
 * Shutdown: what is in memory goes to the spool when there is one (a request
 * in flight too: it may then arrive twice, the at-least-once the spool
 * promises), else it is dropped. A request read from the spool is still
 * there: it is left for the next start.
 */
static void put_away(ss_dispatch *d, ss_req *r)
{
        if (r->spool_id)
                ss_reqq_finish(&d->queue, r);
        else if (d->spool)
                req_spool(d, r);
        else
                req_drop(d, r, &d->drops.shutdown);
}

static void put_away_all(ss_dispatch *d)
{
        uint64_t spooled = d->base.stats.spans_spooled;
        ss_req *r;

        while ((r = d->queue.inflight.head)) {
                d->ops->abandon(d, r);
                put_away(d, r);
        }
        while ((r = d->queue.waiting.head))
                put_away(d, r);
        if (d->spool && ss_spool_stats_get(d->spool)->records)
                ss_log(SS_LOG_NOTICE,
                       "%s: %llu span(s) spooled now, %llu in %llu request(s) in all wait in the "
                       "spool for the next start event=spool-kept exporter=%s spans=%llu "
                       "records=%llu",
                       d->base.name, (unsigned long long)(d->base.stats.spans_spooled - spooled),
                       (unsigned long long)ss_spool_stats_get(d->spool)->spans,
                       (unsigned long long)ss_spool_stats_get(d->spool)->records, d->base.name,
                       (unsigned long long)ss_spool_stats_get(d->spool)->spans,
                       (unsigned long long)ss_spool_stats_get(d->spool)->records);
}

/* The spool or the dead-letter file is closed. */
static void on_spool_closed(void *ctx)
{
        ss_dispatch_release(ctx);
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
        put_away_all(d);
        if (d->base.stats.spans_dropped > before)
                ss_log(SS_LOG_WARNING,
                       "%s: closing with %llu spans not exported event=export-dropped "
                       "exporter=%s spans=%llu reason=shutdown",
                       d->base.name, (unsigned long long)(d->base.stats.spans_dropped - before),
                       d->base.name, (unsigned long long)(d->base.stats.spans_dropped - before));
        d->ops->close(d);
        uv_close((uv_handle_t *)&d->retry_timer, on_handle_closed);
        if (d->spool) {
                ss_dispatch_hold(d);
                ss_spool_close(d->spool, on_spool_closed, d);
                d->spool = NULL;
        }
        if (d->dead_letter) { /* after put_away_all(), whose drops it writes */
                ss_dispatch_hold(d);
                ss_dead_letter_close(d->dead_letter, on_spool_closed, d);
                d->dead_letter = NULL;
        }
}

static const ss_exporter_ops dispatch_exporter_ops = {
    .add = dispatch_add,
    .flush = dispatch_flush,
    .busy = dispatch_busy,
    .destroy = dispatch_destroy,
    .pressure = dispatch_pressure,
    .push = dispatch_push,
    .counters = dispatch_counters,
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
            .multiplier = cfg->retry.multiplier >= 1.0 ? cfg->retry.multiplier : rd.multiplier,
            .max_elapsed_ms = OR_DEFAULT(cfg->retry.max_elapsed_ms, rd.max_elapsed_ms),
        };
        ss_reqq_init(&d->queue, name, ss_dispatch_queue_bytes(cfg->max_queue_bytes),
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
        if (cfg->dead_letter &&
            (r = ss_dead_letter_open(loop, cfg->dead_letter, name, &d->dead_letter)) < 0) {
                dispatch_destroy(&d->base); /* set up: the teardown frees it */
                return r;
        }
        if (cfg->spool.dir) {
                char err[512];

                r = ss_spool_open(loop, &cfg->spool, name, &d->spool, err, sizeof(err));
                if (r < 0) {
                        ss_log(SS_LOG_ERR,
                               "%s: spool %s: %s event=spool-failed exporter=%s dir=\"%s\"", name,
                               cfg->spool.dir, err, name, cfg->spool.dir);
                        dispatch_destroy(&d->base); /* set up: the teardown frees it */
                        return r;
                }
                if (ss_spool_has_more(d->spool)) {
                        ss_log(SS_LOG_INFO,
                               "%s: %llu spooled request(s) of %llu spans to replay "
                               "event=spool-replay exporter=%s records=%llu spans=%llu",
                               name, (unsigned long long)ss_spool_stats_get(d->spool)->records,
                               (unsigned long long)ss_spool_stats_get(d->spool)->spans, name,
                               (unsigned long long)ss_spool_stats_get(d->spool)->records,
                               (unsigned long long)ss_spool_stats_get(d->spool)->spans);
                        /* The replay starts with the loop, once the transport is up. */
                        (void)uv_timer_start(&d->retry_timer, on_retry_timer, 0, 0);
                }
        }
        return 0;
}
