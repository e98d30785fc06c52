/* SPDX-License-Identifier: MIT */
#include "export/exporter-http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/curl-uv.h"
#include "base/log.h"
#include "export/batcher.h"
#include "export/gzip.h"
#include "export/request-queue.h"
#include "otlp/otlp.h"
#include "sidespan-version.h"
#include "ss-macro.h"

/* OTLP's recommended maximum request size; a batch that encodes bigger is dropped. */
#define HTTP_MAX_REQUEST_BYTES ((size_t)64 << 20)
/* What is kept of a response body: plenty for any OTLP response or error text. */
#define HTTP_MAX_RESPONSE_BYTES ((size_t)64 << 10)
/* Bytes of a response body or partial_success message quoted in a log line. */
#define HTTP_LOG_TEXT_MAX 200

/* One attempt of a request: the curl handle and what the backend answered. */
typedef struct attempt {
        CURL *easy;
        ss_req *req;
        ss_buf resp;
        char errbuf[CURL_ERROR_SIZE];
} attempt;

typedef struct http_exporter {
        ss_exporter base;
        uv_loop_t *loop;
        ss_curl_uv curl;
        uv_timer_t retry_timer; /* when the earliest waiting request falls due */
        ss_batcher batcher;
        ss_req_queue queue;
        char *endpoint;
        struct curl_slist *headers;
        ss_http_config cfg;    /* the numbers; strings live above */
        unsigned open_handles; /* handles still to close before the free */
        bool destroyed;
} http_exporter;

void ss_http_config_defaults(ss_http_config *cfg)
{
        *cfg = (ss_http_config){
            .timeout_ms = SS_HTTP_TIMEOUT_MS_DEFAULT,
            .max_batch = SS_HTTP_MAX_BATCH_DEFAULT,
            .max_batch_bytes = SS_HTTP_MAX_BATCH_BYTES_DEFAULT,
            .batch_delay_ms = SS_HTTP_BATCH_DELAY_MS_DEFAULT,
            .max_queue_bytes = SS_HTTP_MAX_QUEUE_BYTES_DEFAULT,
            .max_inflight = SS_HTTP_MAX_INFLIGHT_DEFAULT,
        };
        ss_retry_config_defaults(&cfg->retry);
}

/* Give a request up: its spans count as dropped. */
static void req_drop(http_exporter *e, ss_req *r)
{
        e->base.stats.spans_dropped += ss_reqq_finish(&e->queue, r);
}

/* ---- encoding ---- */

static int encode_body(void *ctx, ss_span *const *spans, size_t n, ss_buf *out)
{
        const http_exporter *e = ctx;
        ss_buf raw;
        int r;

        if (!e->cfg.gzip)
                return ss_otlp_encode(spans, n, out);
        ss_buf_init(&raw, HTTP_MAX_REQUEST_BYTES);
        r = ss_otlp_encode(spans, n, &raw);
        if (r >= 0)
                r = ss_gzip_append(raw.data, raw.len, out);
        ss_buf_free(&raw);
        return r;
}

/* ---- sending ---- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *userdata)
{
        attempt *a = userdata;
        size_t n = size * nmemb;

        /* Past the bound the rest is ignored, not an error: the status decides. */
        (void)ss_buf_append(&a->resp, p, n);
        return n;
}

static void attempt_free(attempt *a)
{
        if (!a)
                return;
        if (a->easy)
                curl_easy_cleanup(a->easy);
        ss_buf_free(&a->resp);
        free(a);
}

static int easy_setup(http_exporter *e, attempt *a)
{
        CURL *c = a->easy;
        const ss_buf *body = &a->req->body;

        if (curl_easy_setopt(c, CURLOPT_URL, e->endpoint) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, e->headers) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)e->cfg.timeout_ms) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_USERAGENT, "sidespan/" SIDESPAN_VERSION_STRING) !=
                CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEDATA, a) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_ERRORBUFFER, a->errbuf) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PRIVATE, a) != CURLE_OK)
                return -ENOMEM;
        return 0;
}

/* Send r now: it is in flight in the queue. */
static int req_start(http_exporter *e, ss_req *r)
{
        attempt *a = calloc(1, sizeof(*a));
        int err = a ? 0 : -ENOMEM;

        if (a) {
                a->req = r;
                ss_buf_init(&a->resp, HTTP_MAX_RESPONSE_BYTES);
                a->easy = curl_easy_init();
                err = a->easy ? easy_setup(e, a) : -ENOMEM;
        }
        if (err == 0)
                err = ss_curl_uv_add(&e->curl, a->easy);
        if (err < 0) {
                attempt_free(a);
                return err;
        }
        r->transport = a;
        e->base.stats.requests++;
        return 0;
}

static void on_retry_timer(uv_timer_t *t);

/* Wake when the earliest waiting request falls due, if a slot would be free for it. */
static void arm_retry_timer(http_exporter *e)
{
        uint64_t now = uv_now(e->loop), due = ss_reqq_next_due(&e->queue);
        int r;

        if (due == UINT64_MAX)
                r = uv_timer_stop(&e->retry_timer);
        else
                r = uv_timer_start(&e->retry_timer, on_retry_timer, due > now ? due - now : 0, 0);
        if (r < 0)
                ss_log_ratelimited(SS_LOG_ERR, "otlp-http: retry timer: %s", uv_strerror(r));
}

/* Send the oldest due requests while slots are free. */
static void start_ready(http_exporter *e)
{
        uint64_t now = uv_now(e->loop);
        ss_req *r;

        while ((r = ss_reqq_start_next(&e->queue, now))) {
                if (req_start(e, r) < 0) {
                        ss_log_ratelimited(SS_LOG_ERR,
                                           "otlp-http: cannot start a request, dropping %zu spans",
                                           r->n_spans);
                        req_drop(e, r);
                }
        }
        arm_retry_timer(e);
}

static void on_retry_timer(uv_timer_t *t)
{
        start_ready(t->data);
}

/* One encoded body, sent as it is on every attempt: into the queue with it. */
static void queue_body(void *ctx, ss_span *const *spans, size_t n, ss_buf *body)
{
        http_exporter *e = ctx;
        ss_req *r = ss_req_new(&e->queue, n, HTTP_MAX_REQUEST_BYTES);
        size_t dropped = 0;

        if (!r) {
                ss_exporter_dropped(&e->base, n, "out of memory for a request");
                return;
        }
        r->body = *body; /* the bytes move into the request */
        ss_buf_init(body, body->max);
        if (ss_reqq_push(&e->queue, r, &dropped) < 0) {
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "otlp-http: queue full (%zu bytes queued), dropping %zu spans",
                                   e->queue.bytes, n);
                e->base.stats.spans_dropped += n;
                ss_req_free(r);
                return;
        }
        e->base.stats.spans_dropped += dropped;
        start_ready(e);
}

/* The batcher's send(): encode once (in parts if it must); the bytes are kept for every
 * retry. */
static void on_batch(void *ctx, ss_span *const *spans, size_t n)
{
        http_exporter *e = ctx;

        (void)ss_exporter_encode_split(&e->base, spans, n, encode_body, queue_body, e,
                                       HTTP_MAX_REQUEST_BYTES);
}

/* ---- results ---- */

/* The server's Retry-After in milliseconds, or -1 when it gave none we understand. */
static long retry_after_ms(CURL *c)
{
        struct curl_header *h;

        if (curl_easy_header(c, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
                return -1;
        return ss_retry_after_parse(h->value, time(NULL));
}

static void retry_or_drop(http_exporter *e, ss_req *r, long after_ms, const char *why)
{
        uint64_t delay;

        if (r->attempts >= e->cfg.retry.max_attempts) {
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "otlp-http: %s: giving up after %u attempts, dropping %zu spans",
                                   why, r->attempts, r->n_spans);
                req_drop(e, r);
                return;
        }
        delay =
            after_ms >= 0 ? (uint64_t)after_ms : ss_retry_backoff_ms(&e->cfg.retry, r->attempts);
        ss_log_ratelimited(SS_LOG_INFO, "otlp-http: %s: retrying %zu spans in %llu ms", why,
                           r->n_spans, (unsigned long long)delay);
        e->base.stats.retries++;
        ss_reqq_retry(&e->queue, r, uv_now(e->loop) + delay);
}

static void on_success(http_exporter *e, ss_req *r, const ss_buf *resp)
{
        int64_t rejected = 0;
        char *msg = NULL;
        char text[HTTP_LOG_TEXT_MAX + 1];
        size_t n = r->n_spans;

        /* Some backends (Langfuse) answer JSON: a body that is no OTLP response is a success. */
        if (ss_otlp_parse_response(resp->data, resp->len, &rejected, &msg) < 0 || rejected < 0)
                rejected = 0;
        if ((uint64_t)rejected > n)
                rejected = (int64_t)n;
        if (rejected > 0) {
                ss_log_text(text, sizeof(text), msg, msg ? strlen(msg) : 0);
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "otlp-http: backend rejected %lld of %zu spans: %s",
                                   (long long)rejected, n, text);
        }
        free(msg);
        e->base.stats.spans_dropped += (uint64_t)rejected;
        e->base.stats.spans_exported += n - (uint64_t)rejected;
        ss_reqq_finish(&e->queue, r);
}

static void on_http_error(http_exporter *e, ss_req *r, long status, long after_ms,
                          const ss_buf *resp)
{
        char why[64];
        char text[HTTP_LOG_TEXT_MAX + 1];

        e->base.stats.failures++;
        if (ss_retry_http_status(status)) {
                snprintf(why, sizeof(why), "HTTP %ld", status);
                retry_or_drop(e, r, after_ms, why);
                return;
        }
        ss_log_text(text, sizeof(text), (const char *)resp->data, resp->len);
        ss_log_ratelimited(SS_LOG_WARNING, "otlp-http: HTTP %ld, dropping %zu spans: %s", status,
                           r->n_spans, text);
        req_drop(e, r);
}

/* ss_curl_uv's done(): one attempt is over; the request is retried, dropped or done. */
static void on_done(void *ctx, CURL *easy, CURLcode rc)
{
        http_exporter *e = ctx;
        attempt *a = NULL;
        long status = 0, after_ms = -1;
        char why[CURL_ERROR_SIZE + 64];
        ss_req *r;

        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&a);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        r = a->req;
        r->transport = NULL;
        if (rc == CURLE_OK && ss_retry_http_status(status))
                after_ms = retry_after_ms(easy);
        if (rc != CURLE_OK) {
                e->base.stats.failures++;
                snprintf(why, sizeof(why), "%s", a->errbuf[0] ? a->errbuf : curl_easy_strerror(rc));
                retry_or_drop(e, r, -1, why);
        } else if (status >= 200 && status < 300) {
                on_success(e, r, &a->resp);
        } else {
                on_http_error(e, r, status, after_ms, &a->resp);
        }
        attempt_free(a);
}

static void on_progress(void *ctx)
{
        start_ready(ctx);
}

/* ---- exporter ops ---- */

static void http_add(ss_exporter *base, ss_span *const *spans, size_t n)
{
        http_exporter *e = (http_exporter *)base;

        e->base.stats.spans_in += n;
        ss_batcher_add(&e->batcher, spans, n);
}

static void http_flush(ss_exporter *base)
{
        http_exporter *e = (http_exporter *)base;

        ss_batcher_flush(&e->batcher);
        start_ready(e);
}

static bool http_busy(const ss_exporter *base)
{
        const http_exporter *e = (const http_exporter *)base;

        return e->batcher.n > 0 || ss_reqq_busy(&e->queue);
}

static void exporter_free(http_exporter *e)
{
        curl_slist_free_all(e->headers);
        free(e->endpoint);
        ss_exporter_free(&e->base, e);
}

static void release(http_exporter *e)
{
        if (--e->open_handles == 0)
                exporter_free(e);
}

static void on_retry_timer_closed(uv_handle_t *h)
{
        release(h->data);
}

static void on_curl_closed(uv_handle_t *h)
{
        release(ss_container_of(h, http_exporter, curl.timer));
}

static void on_batcher_closed(uv_handle_t *h)
{
        release(ss_container_of(h, http_exporter, batcher.timer));
}

static void drop_all(http_exporter *e)
{
        ss_req *r;

        while ((r = e->queue.inflight.head)) {
                attempt *a = r->transport;

                ss_curl_uv_remove(&e->curl, a->easy);
                attempt_free(a);
                req_drop(e, r);
        }
        while ((r = e->queue.waiting.head))
                req_drop(e, r);
}

static void http_destroy(ss_exporter *base)
{
        http_exporter *e = (http_exporter *)base;
        uint64_t before;

        if (!e || e->destroyed)
                return;
        e->destroyed = true;
        before = e->base.stats.spans_dropped;
        e->base.stats.spans_dropped += ss_batcher_close(&e->batcher, on_batcher_closed);
        drop_all(e);
        if (e->base.stats.spans_dropped > before)
                ss_log(SS_LOG_WARNING, "otlp-http: closing with %llu spans not exported",
                       (unsigned long long)(e->base.stats.spans_dropped - before));
        ss_curl_uv_close(&e->curl, on_curl_closed);
        uv_close((uv_handle_t *)&e->retry_timer, on_retry_timer_closed);
}

static const ss_exporter_ops http_ops = {
    .add = http_add,
    .flush = http_flush,
    .busy = http_busy,
    .destroy = http_destroy,
};

/* ---- construction ---- */

static bool endpoint_ok(const char *url)
{
        if (!url)
                return false;
        if (strncasecmp(url, "http://", 7) == 0)
                return url[7] != '\0';
        if (strncasecmp(url, "https://", 8) == 0)
                return url[8] != '\0';
        return false;
}

static bool header_ok(const char *h)
{
        const char *colon = h ? strchr(h, ':') : NULL;

        return colon && colon != h && !strpbrk(h, "\r\n");
}

static int headers_build(const ss_http_config *cfg, struct curl_slist **ret)
{
        struct curl_slist *l = NULL, *t;
        const char *fixed[] = {"Content-Type: application/x-protobuf",
                               /* A large body would otherwise wait for 100-continue. */
                               "Expect:", cfg->gzip ? "Content-Encoding: gzip" : NULL};

        for (size_t i = 0; i < cfg->n_headers; i++)
                if (!header_ok(cfg->headers[i]))
                        return -EINVAL;
        for (size_t i = 0; i < cfg->n_headers + SS_ELEMENTSOF(fixed); i++) {
                const char *h = i < cfg->n_headers ? cfg->headers[i] : fixed[i - cfg->n_headers];

                if (!h)
                        continue;
                t = curl_slist_append(l, h);
                if (!t) {
                        curl_slist_free_all(l);
                        return -ENOMEM;
                }
                l = t;
        }
        *ret = l;
        return 0;
}

/* The numbers of src, a zero taking its default; the strings are copied elsewhere. */
static void config_copy(ss_http_config *dst, const ss_http_config *src)
{
        ss_http_config d;

        ss_http_config_defaults(&d);
#define OR_DEFAULT(f) (src->f ? src->f : d.f)
        *dst = (ss_http_config){
            .timeout_ms = OR_DEFAULT(timeout_ms),
            .gzip = src->gzip,
            .max_batch = OR_DEFAULT(max_batch),
            .max_batch_bytes = OR_DEFAULT(max_batch_bytes),
            .batch_delay_ms = OR_DEFAULT(batch_delay_ms),
            .max_queue_bytes = OR_DEFAULT(max_queue_bytes),
            .max_inflight = OR_DEFAULT(max_inflight),
            .retry.max_attempts = OR_DEFAULT(retry.max_attempts),
            .retry.backoff_initial_ms = OR_DEFAULT(retry.backoff_initial_ms),
            .retry.backoff_max_ms = OR_DEFAULT(retry.backoff_max_ms),
        };
#undef OR_DEFAULT
}

/* The handles, last: once one exists, freeing the exporter takes a close. On failure
 * the ones made are closed again and the exporter goes with the last. */
static int handles_init(http_exporter *e, uv_loop_t *loop)
{
        int r = uv_timer_init(loop, &e->retry_timer);

        if (r < 0)
                return r;
        e->retry_timer.data = e;
        e->open_handles = 1;
        r = ss_curl_uv_init(&e->curl, loop, on_done, on_progress, e);
        if (r == 0) {
                e->open_handles++;
                r = ss_batcher_init(&e->batcher, loop, e->cfg.max_batch, e->cfg.batch_delay_ms,
                                    on_batch, e);
                e->batcher.max_bytes = e->cfg.max_batch_bytes;
                if (r < 0)
                        ss_curl_uv_close(&e->curl, on_curl_closed);
        }
        if (r < 0)
                uv_close((uv_handle_t *)&e->retry_timer, on_retry_timer_closed);
        else
                e->open_handles++;
        return r;
}

int ss_http_exporter_new(uv_loop_t *loop, const ss_http_config *cfg, ss_exporter **ret)
{
        http_exporter *e;
        int r;

        if (!endpoint_ok(cfg->endpoint))
                return -EINVAL;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->base.ops = &http_ops;
        e->base.name = "otlp-http";
        e->loop = loop;
        config_copy(&e->cfg, cfg);
        ss_reqq_init(&e->queue, "otlp-http", e->cfg.max_queue_bytes, e->cfg.max_inflight);
        r = headers_build(cfg, &e->headers);
        if (r == 0)
                r = (e->endpoint = strdup(cfg->endpoint)) ? 0 : -ENOMEM;
        if (r < 0) {
                exporter_free(e);
                return r;
        }
        r = handles_init(e, loop);
        if (r < 0)
                return r; /* freed once its handles have closed */
        *ret = &e->base;
        return 0;
}
