/* SPDX-License-Identifier: MIT */
#include "exporter-http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "batcher.h"
#include "log.h"
#include "otlp.h"
#include "ss-macro.h"
#include "ss-buf.h"
#include "ss-id.h"

#ifndef SIDESPAN_VERSION_STRING
#define SIDESPAN_VERSION_STRING "0.1.0"
#endif

/* OTLP's recommended maximum request size; a batch that encodes bigger is dropped. */
#define HTTP_MAX_REQUEST_BYTES ((size_t)64 << 20)
/* What is kept of a response body: plenty for any OTLP response or error text. */
#define HTTP_MAX_RESPONSE_BYTES ((size_t)64 << 10)
/* Retry-After comes from the peer: obeyed up to this, so a hostile value cannot park a request. */
#define HTTP_RETRY_AFTER_MAX_MS 300000u
/* Bytes of a response body or partial_success message quoted in a log line. */
#define HTTP_LOG_TEXT_MAX 200

typedef struct http_exporter http_exporter;

/* One encoded request, from the batcher until the backend takes it or it is given up. */
typedef struct http_req {
        struct http_req *prev, *next;
        uint64_t seq; /* creation order: the lowest is the oldest */
        ss_buf body;  /* the exact bytes sent, kept as they are for retries */
        size_t n_spans;
        uint32_t attempts;
        uint64_t due_ms; /* uv_now() from which it may be sent */
        CURL *easy;      /* while in flight */
        ss_buf resp;
        char errbuf[CURL_ERROR_SIZE];
} http_req;

typedef struct req_list {
        http_req *head, *tail;
        size_t n;
} req_list;

/* One curl socket watched by the loop; freed in its close callback. */
typedef struct http_sock {
        uv_poll_t poll;
        curl_socket_t fd;
        http_exporter *owner;
        struct http_sock *prev, *next;
} http_sock;

struct http_exporter {
        ss_exporter base;
        uv_loop_t *loop;
        CURLM *multi;
        uv_timer_t curl_timer;  /* curl's CURLMOPT_TIMERFUNCTION deadline */
        uv_timer_t retry_timer; /* when the earliest waiting request falls due */
        ss_batcher batcher;
        char *endpoint;
        struct curl_slist *headers;
        ss_http_config cfg; /* the numbers; strings live above */
        req_list waiting;   /* not yet sent or backing off, in seq order */
        req_list inflight;
        http_sock *socks;
        size_t queued_bytes; /* bodies waiting or in flight */
        uint64_t next_seq;
        unsigned open_handles; /* handles still to close before the free */
        bool destroyed;
};

void ss_http_config_defaults(ss_http_config *cfg)
{
        *cfg = (ss_http_config){
            .timeout_ms = SS_HTTP_TIMEOUT_MS_DEFAULT,
            .max_batch = SS_HTTP_MAX_BATCH_DEFAULT,
            .batch_delay_ms = SS_HTTP_BATCH_DELAY_MS_DEFAULT,
            .max_queue_bytes = SS_HTTP_MAX_QUEUE_BYTES_DEFAULT,
            .max_inflight = SS_HTTP_MAX_INFLIGHT_DEFAULT,
            .max_attempts = SS_HTTP_MAX_ATTEMPTS_DEFAULT,
            .backoff_initial_ms = SS_HTTP_BACKOFF_INITIAL_MS_DEFAULT,
            .backoff_max_ms = SS_HTTP_BACKOFF_MAX_MS_DEFAULT,
        };
}

/* ---- request lists ---- */

static void list_unlink(req_list *l, http_req *r)
{
        if (r->prev)
                r->prev->next = r->next;
        else
                l->head = r->next;
        if (r->next)
                r->next->prev = r->prev;
        else
                l->tail = r->prev;
        r->prev = r->next = NULL;
        l->n--;
}

/* Insert keeping seq order; new requests land at the tail at once. */
static void list_insert(req_list *l, http_req *r)
{
        http_req *after = l->tail;

        while (after && after->seq > r->seq)
                after = after->prev;
        r->prev = after;
        r->next = after ? after->next : l->head;
        if (r->next)
                r->next->prev = r;
        else
                l->tail = r;
        if (after)
                after->next = r;
        else
                l->head = r;
        l->n++;
}

static void req_free(http_req *r)
{
        if (!r)
                return;
        if (r->easy)
                curl_easy_cleanup(r->easy);
        ss_buf_free(&r->body);
        ss_buf_free(&r->resp);
        free(r);
}

/* Forget a request that is in no list any more, its bytes leaving the bound with it. */
static void req_release(http_exporter *e, http_req *r)
{
        e->queued_bytes -= r->body.len;
        req_free(r);
}

static void req_drop(http_exporter *e, http_req *r)
{
        e->base.stats.spans_dropped += r->n_spans;
        req_release(e, r);
}

/* Replace bytes a peer sent with '.' where they are not printable, for a log line. */
static void log_text(char *out, size_t out_size, const uint8_t *p, size_t n)
{
        size_t i;

        if (n > out_size - 1)
                n = out_size - 1;
        for (i = 0; i < n; i++)
                out[i] = isprint(p[i]) ? (char)p[i] : '.';
        out[i] = '\0';
}

/* ---- encoding ---- */

static int gzip_append(const ss_buf *in, ss_buf *out)
{
        z_stream z = {0};
        uLong bound;
        int r;

        if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK)
                return -ENOMEM;
        /* With the gzip wrapper set up, deflateBound() covers header and trailer too. */
        bound = deflateBound(&z, in->len);
        r = ss_buf_reserve(out, bound);
        if (r < 0)
                goto out;
        z.next_in = in->data;
        z.avail_in = (uInt)in->len;
        z.next_out = out->data + out->len;
        z.avail_out = (uInt)bound;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
                r = -EIO;
                goto out;
        }
        out->len += z.total_out;
out:
        deflateEnd(&z);
        return r;
}

static int encode_body(const http_exporter *e, ss_span *const *spans, size_t n, ss_buf *out)
{
        ss_buf raw;
        int r;

        if (!e->cfg.gzip)
                return ss_otlp_encode(spans, n, out);
        ss_buf_init(&raw, HTTP_MAX_REQUEST_BYTES);
        r = ss_otlp_encode(spans, n, &raw);
        if (r >= 0)
                r = gzip_append(&raw, out);
        ss_buf_free(&raw);
        return r;
}

/* ---- sending ---- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *userdata)
{
        http_req *r = userdata;
        size_t n = size * nmemb;

        /* Past the bound the rest is ignored, not an error: the status decides. */
        (void)ss_buf_append(&r->resp, p, n);
        return n;
}

static int req_setup(http_exporter *e, http_req *r)
{
        CURL *c = curl_easy_init();

        if (!c)
                return -ENOMEM;
        r->easy = c;
        ss_buf_reset(&r->resp);
        r->errbuf[0] = '\0';
        if (curl_easy_setopt(c, CURLOPT_URL, e->endpoint) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body.data) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, e->headers) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)e->cfg.timeout_ms) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_USERAGENT, "sidespan/" SIDESPAN_VERSION_STRING) !=
                CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEDATA, r) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_PRIVATE, r) != CURLE_OK)
                return -ENOMEM;
        return 0;
}

static int req_start(http_exporter *e, http_req *r)
{
        int err = req_setup(e, r);

        if (err < 0)
                return err;
        if (curl_multi_add_handle(e->multi, r->easy) != CURLM_OK)
                return -ENOMEM;
        r->attempts++;
        e->base.stats.requests++;
        list_insert(&e->inflight, r);
        return 0;
}

static void on_retry_timer(uv_timer_t *t);

/* Wake when the earliest waiting request falls due, if a slot would be free for it. */
static void arm_retry_timer(http_exporter *e)
{
        uint64_t now = uv_now(e->loop), due = UINT64_MAX;

        if (e->inflight.n >= e->cfg.max_inflight || !e->waiting.head) {
                uv_timer_stop(&e->retry_timer);
                return;
        }
        for (http_req *r = e->waiting.head; r; r = r->next)
                if (r->due_ms < due)
                        due = r->due_ms;
        uv_timer_start(&e->retry_timer, on_retry_timer, due > now ? due - now : 0, 0);
}

/* Send the oldest due requests while slots are free. */
static void start_ready(http_exporter *e)
{
        uint64_t now = uv_now(e->loop);
        http_req *r = e->waiting.head, *next;

        for (; r && e->inflight.n < e->cfg.max_inflight; r = next) {
                next = r->next;
                if (r->due_ms > now)
                        continue;
                list_unlink(&e->waiting, r);
                if (req_start(e, r) < 0) {
                        ss_log_ratelimited(SS_LOG_ERR,
                                           "otlp-http: cannot start a request, "
                                           "dropping %zu spans",
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

/*
 * Make room for size more bytes by dropping the oldest waiting requests. False,
 * dropping nothing, when even an empty waiting list would leave too little room
 * beside what is in flight: then the new request alone goes.
 */
static bool make_room(http_exporter *e, size_t size)
{
        size_t waiting = 0;

        if (e->queued_bytes + size <= e->cfg.max_queue_bytes)
                return true;
        for (http_req *r = e->waiting.head; r; r = r->next)
                waiting += r->body.len;
        if (e->queued_bytes - waiting + size > e->cfg.max_queue_bytes)
                return false;
        while (e->queued_bytes + size > e->cfg.max_queue_bytes) {
                http_req *old = e->waiting.head;

                ss_log_ratelimited(SS_LOG_WARNING,
                                   "otlp-http: queue over %zu bytes, dropping the oldest "
                                   "request (%zu spans)",
                                   e->cfg.max_queue_bytes, old->n_spans);
                list_unlink(&e->waiting, old);
                req_drop(e, old);
        }
        return true;
}

static void queue_request(http_exporter *e, http_req *r)
{
        if (!make_room(e, r->body.len)) {
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "otlp-http: queue full (%zu bytes queued), dropping "
                                   "%zu spans",
                                   e->queued_bytes, r->n_spans);
                e->base.stats.spans_dropped += r->n_spans;
                req_free(r);
                return;
        }
        e->queued_bytes += r->body.len;
        list_insert(&e->waiting, r);
        start_ready(e);
}

/* The batcher's send(): encode once; the bytes are kept for every retry. */
static void on_batch(void *ctx, ss_span *const *spans, size_t n)
{
        http_exporter *e = ctx;
        http_req *r = calloc(1, sizeof(*r));
        int err = r ? 0 : -ENOMEM;

        if (r) {
                r->seq = e->next_seq++;
                r->n_spans = n;
                ss_buf_init(&r->body, HTTP_MAX_REQUEST_BYTES);
                ss_buf_init(&r->resp, HTTP_MAX_RESPONSE_BYTES);
                err = encode_body(e, spans, n, &r->body);
        }
        if (err < 0) {
                ss_log_ratelimited(SS_LOG_ERR, "otlp-http: cannot encode %zu spans: %s", n,
                                   strerror(-err));
                e->base.stats.spans_dropped += n;
                req_free(r);
                return;
        }
        queue_request(e, r);
}

/* ---- results ---- */

static bool status_retryable(long status)
{
        return status == 429 || status == 502 || status == 503 || status == 504;
}

static long parse_retry_after(const char *v)
{
        unsigned long long s;
        char *end;
        time_t t, now;

        while (*v == ' ' || *v == '\t')
                v++;
        if (isdigit((unsigned char)*v)) {
                errno = 0;
                s = strtoull(v, &end, 10);
                if (errno == 0 && (*end == '\0' || *end == ' ' || *end == '\t'))
                        return s > HTTP_RETRY_AFTER_MAX_MS / 1000 ? (long)HTTP_RETRY_AFTER_MAX_MS
                                                                  : (long)(s * 1000);
        }
        t = curl_getdate(v, NULL);
        if (t == -1)
                return -1;
        now = time(NULL);
        if (t <= now)
                return 0;
        return t - now > HTTP_RETRY_AFTER_MAX_MS / 1000 ? (long)HTTP_RETRY_AFTER_MAX_MS
                                                        : (long)(t - now) * 1000;
}

/* The server's Retry-After in milliseconds, or -1 when it gave none we understand. */
static long retry_after_ms(CURL *c)
{
        struct curl_header *h;

        if (curl_easy_header(c, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
                return -1;
        return parse_retry_after(h->value);
}

/* Exponential backoff with "equal jitter": between half and all of the doubled delay. */
static uint64_t backoff_ms(const http_exporter *e, uint32_t attempts)
{
        uint64_t d = e->cfg.backoff_initial_ms;
        uint32_t rnd;

        for (uint32_t i = 1; i < attempts && d < e->cfg.backoff_max_ms; i++)
                d *= 2;
        if (d > e->cfg.backoff_max_ms)
                d = e->cfg.backoff_max_ms;
        ss_id_random((uint8_t *)&rnd, sizeof(rnd));
        return d / 2 + rnd % (d / 2 + 1);
}

static void retry_or_drop(http_exporter *e, http_req *r, long after_ms, const char *why)
{
        uint64_t delay;

        if (r->attempts >= e->cfg.max_attempts) {
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "otlp-http: %s: giving up after %u attempts, dropping "
                                   "%zu spans",
                                   why, r->attempts, r->n_spans);
                req_drop(e, r);
                return;
        }
        delay = after_ms >= 0 ? (uint64_t)after_ms : backoff_ms(e, r->attempts);
        ss_log_ratelimited(SS_LOG_INFO, "otlp-http: %s: retrying %zu spans in %llu ms", why,
                           r->n_spans, (unsigned long long)delay);
        r->due_ms = uv_now(e->loop) + delay;
        e->base.stats.retries++;
        list_insert(&e->waiting, r);
}

static void on_success(http_exporter *e, http_req *r)
{
        int64_t rejected = 0;
        char *msg = NULL;
        char text[HTTP_LOG_TEXT_MAX + 1];

        /* Some backends (Langfuse) answer JSON: a body that is no OTLP response is a success. */
        if (ss_otlp_parse_response(r->resp.data, r->resp.len, &rejected, &msg) < 0)
                rejected = 0;
        if (rejected < 0)
                rejected = 0;
        if ((uint64_t)rejected > r->n_spans)
                rejected = (int64_t)r->n_spans;
        if (rejected > 0) {
                log_text(text, sizeof(text), (const uint8_t *)(msg ? msg : ""),
                         msg ? strlen(msg) : 0);
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "otlp-http: backend rejected %lld of %zu spans: %s",
                                   (long long)rejected, r->n_spans, text);
        }
        free(msg);
        e->base.stats.spans_dropped += (uint64_t)rejected;
        e->base.stats.spans_exported += r->n_spans - (uint64_t)rejected;
        req_release(e, r);
}

static void on_http_error(http_exporter *e, http_req *r, long status, long after_ms)
{
        char why[64];
        char text[HTTP_LOG_TEXT_MAX + 1];

        e->base.stats.failures++;
        if (status_retryable(status)) {
                snprintf(why, sizeof(why), "HTTP %ld", status);
                retry_or_drop(e, r, after_ms, why);
                return;
        }
        log_text(text, sizeof(text), r->resp.data, r->resp.len);
        ss_log_ratelimited(SS_LOG_WARNING, "otlp-http: HTTP %ld, dropping %zu spans: %s", status,
                           r->n_spans, text);
        req_drop(e, r);
}

static void req_done(http_exporter *e, http_req *r, CURLcode rc)
{
        long status = 0, after_ms = -1;
        char why[CURL_ERROR_SIZE + 64];

        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (rc == CURLE_OK && status_retryable(status))
                after_ms = retry_after_ms(r->easy);
        list_unlink(&e->inflight, r);
        curl_multi_remove_handle(e->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        if (rc != CURLE_OK) {
                e->base.stats.failures++;
                snprintf(why, sizeof(why), "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
                retry_or_drop(e, r, -1, why);
        } else if (status >= 200 && status < 300) {
                on_success(e, r);
        } else {
                on_http_error(e, r, status, after_ms);
        }
}

/* Collect finished transfers after curl_multi_socket_action(), then refill the slots. */
static void check_done(http_exporter *e)
{
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(e->multi, &left))) {
                CURLcode rc = m->data.result;
                char *priv = NULL;

                if (m->msg != CURLMSG_DONE)
                        continue;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
                /* m is invalid once its handle is removed: read it all first. */
                req_done(e, (http_req *)priv, rc);
        }
        start_ready(e);
}

/* ---- curl on the loop ---- */

static void socket_action(http_exporter *e, curl_socket_t fd, int flags)
{
        int running;

        curl_multi_socket_action(e->multi, fd, flags, &running);
        check_done(e);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
        http_sock *s = p->data;
        int flags = 0;

        if (status < 0)
                flags = CURL_CSELECT_ERR;
        if (events & UV_READABLE)
                flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
                flags |= CURL_CSELECT_OUT;
        socket_action(s->owner, s->fd, flags);
}

static void on_curl_timeout(uv_timer_t *t)
{
        socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
        http_exporter *e = userp;

        if (timeout_ms < 0)
                uv_timer_stop(&e->curl_timer);
        else
                uv_timer_start(&e->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
        return 0;
}

static void on_sock_closed(uv_handle_t *h)
{
        free(h->data);
}

static void sock_close(http_exporter *e, http_sock *s)
{
        if (s->prev)
                s->prev->next = s->next;
        else
                e->socks = s->next;
        if (s->next)
                s->next->prev = s->prev;
        uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static http_sock *sock_new(http_exporter *e, curl_socket_t fd)
{
        http_sock *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        if (uv_poll_init_socket(e->loop, &s->poll, fd) < 0) {
                free(s);
                return NULL;
        }
        s->poll.data = s;
        s->fd = fd;
        s->owner = e;
        s->next = e->socks;
        if (s->next)
                s->next->prev = s;
        e->socks = s;
        curl_multi_assign(e->multi, fd, s);
        return s;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
        http_exporter *e = userp;
        http_sock *s = socketp;
        int events = 0;

        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        curl_multi_assign(e->multi, fd, NULL);
                        sock_close(e, s);
                }
                return 0;
        }
        if (!s && !(s = sock_new(e, fd)))
                return -1;
        if (what & CURL_POLL_IN)
                events |= UV_READABLE;
        if (what & CURL_POLL_OUT)
                events |= UV_WRITABLE;
        if (events)
                uv_poll_start(&s->poll, events, on_poll);
        else
                uv_poll_stop(&s->poll);
        return 0;
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

        return e->batcher.n > 0 || e->waiting.n > 0 || e->inflight.n > 0;
}

static void exporter_free(http_exporter *e)
{
        curl_slist_free_all(e->headers);
        free(e->endpoint);
        free(e);
}

static void on_timer_closed(uv_handle_t *h)
{
        http_exporter *e = h->data;

        if (--e->open_handles == 0)
                exporter_free(e);
}

static void on_batcher_closed(uv_handle_t *h)
{
        http_exporter *e = ss_container_of(h, http_exporter, batcher.timer);

        if (--e->open_handles == 0)
                exporter_free(e);
}

static void drop_all(http_exporter *e)
{
        http_req *r;

        while ((r = e->inflight.head)) {
                list_unlink(&e->inflight, r);
                curl_multi_remove_handle(e->multi, r->easy);
                req_drop(e, r);
        }
        while ((r = e->waiting.head)) {
                list_unlink(&e->waiting, r);
                req_drop(e, r);
        }
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
        /* Cleanup may still call the socket and timer functions for cached connections. */
        curl_multi_cleanup(e->multi);
        e->multi = NULL;
        while (e->socks)
                sock_close(e, e->socks);
        uv_close((uv_handle_t *)&e->curl_timer, on_timer_closed);
        uv_close((uv_handle_t *)&e->retry_timer, on_timer_closed);
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
        for (size_t i = 0; i < cfg->n_headers + 3; i++) {
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
            .batch_delay_ms = OR_DEFAULT(batch_delay_ms),
            .max_queue_bytes = OR_DEFAULT(max_queue_bytes),
            .max_inflight = OR_DEFAULT(max_inflight),
            .max_attempts = OR_DEFAULT(max_attempts),
            .backoff_initial_ms = OR_DEFAULT(backoff_initial_ms),
            .backoff_max_ms = OR_DEFAULT(backoff_max_ms),
        };
#undef OR_DEFAULT
}

static int multi_setup(http_exporter *e)
{
        e->multi = curl_multi_init();
        if (!e->multi)
                return -ENOMEM;
        curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
        curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
        curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
        curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
        return 0;
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
        r = headers_build(cfg, &e->headers);
        if (r < 0)
                goto fail;
        e->endpoint = strdup(cfg->endpoint);
        r = e->endpoint ? multi_setup(e) : -ENOMEM;
        if (r < 0)
                goto fail;
        /* The last fallible step: once the batcher's timer exists, freeing takes a close. */
        r = ss_batcher_init(&e->batcher, loop, e->cfg.max_batch, e->cfg.batch_delay_ms, on_batch,
                            e);
        if (r < 0)
                goto fail;
        uv_timer_init(loop, &e->curl_timer);
        uv_timer_init(loop, &e->retry_timer);
        e->curl_timer.data = e;
        e->retry_timer.data = e;
        e->open_handles = 3;
        *ret = &e->base;
        return 0;
fail:
        curl_multi_cleanup(e->multi);
        exporter_free(e);
        return r;
}
