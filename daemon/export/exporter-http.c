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
#include "export/dispatch.h"
#include "export/gzip.h"
#include "export/tls.h"
#include "otlp/otlp.h"
#include "sidespan-version.h"
#include "ss-macro.h"

#define HTTP_MAX_REQUEST_BYTES SS_DISPATCH_MAX_REQUEST_BYTES
/* What is kept of a response body: plenty for any OTLP response or error text. */
#define HTTP_MAX_RESPONSE_BYTES ((size_t)64 << 10)
/* Bytes of a response body quoted in a log line. */
#define HTTP_LOG_TEXT_MAX 200

/* One attempt of a request: the curl handle and what the backend answered. */
typedef struct attempt {
        CURL *easy;
        ss_req *req;
        ss_buf resp;
        char errbuf[CURL_ERROR_SIZE];
} attempt;

typedef struct http_exporter {
        ss_dispatch d; /* first: batching, queueing, retries; its ss_exporter is ours */
        ss_curl_uv curl;
        char *endpoint;
        char *ca_file, *cert_file, *key_file; /* TLS, or NULL */
        struct curl_slist *headers;
        ss_http_config cfg; /* the numbers; strings live above */
} http_exporter;

/* ---- encoding ---- */

/* What is sent for a body in the content type: gzipped, or as it is. */
static int wrap_body(void *ctx, const ss_buf *raw, ss_buf *out)
{
        const http_exporter *e = ctx;

        return e->cfg.gzip ? ss_gzip_append(raw->data, raw->len, out)
                           : ss_buf_append(out, raw->data, raw->len);
}

static int encode_body(void *ctx, ss_span *const *spans, size_t n, ss_buf *out)
{
        const http_exporter *e = ctx;
        int (*encode)(ss_span *const *spans, size_t n, ss_buf *out) =
            e->cfg.json ? ss_otlp_json_encode : ss_otlp_encode;
        ss_buf raw;
        int r;

        if (!e->cfg.gzip)
                return encode(spans, n, out);
        ss_buf_init(&raw, HTTP_MAX_REQUEST_BYTES);
        r = encode(spans, n, &raw);
        if (r >= 0)
                r = wrap_body(ctx, &raw, out);
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

/* The CA bundle and client certificate of https:// endpoints, when configured. */
static int tls_setup(const http_exporter *e, CURL *c)
{
        if ((e->ca_file && curl_easy_setopt(c, CURLOPT_CAINFO, e->ca_file) != CURLE_OK) ||
            (e->cert_file && curl_easy_setopt(c, CURLOPT_SSLCERT, e->cert_file) != CURLE_OK) ||
            (e->key_file && curl_easy_setopt(c, CURLOPT_SSLKEY, e->key_file) != CURLE_OK))
                return -ENOMEM;
        return 0;
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
        return tls_setup(e, c);
}

/* The dispatch's start(): send r now, it is in flight in the queue. */
static int http_start(ss_dispatch *d, ss_req *r)
{
        http_exporter *e = (http_exporter *)d;
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
        return 0;
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

static void on_http_error(http_exporter *e, ss_req *r, long status, long after_ms,
                          const ss_buf *resp)
{
        char why[64 + HTTP_LOG_TEXT_MAX];
        char text[HTTP_LOG_TEXT_MAX + 1];
        bool retry = ss_retry_http_status(status);

        if (retry) {
                snprintf(why, sizeof(why), "HTTP %ld", status);
        } else {
                ss_log_text(text, sizeof(text), (const char *)resp->data, resp->len);
                snprintf(why, sizeof(why), "HTTP %ld (%s)", status, text);
        }
        ss_dispatch_failed(&e->d, r, retry, after_ms, why);
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
                snprintf(why, sizeof(why), "%s", a->errbuf[0] ? a->errbuf : curl_easy_strerror(rc));
                ss_dispatch_failed(&e->d, r, true, -1, why);
        } else if (status >= 200 && status < 300) {
                ss_dispatch_succeeded(&e->d, r, a->resp.data, a->resp.len, e->cfg.json);
        } else {
                on_http_error(e, r, status, after_ms, &a->resp);
        }
        attempt_free(a);
}

static void on_progress(void *ctx)
{
        ss_dispatch_kick(ctx);
}

/* ---- the dispatch's transport ops ---- */

static void http_abandon(ss_dispatch *d, ss_req *r)
{
        http_exporter *e = (http_exporter *)d;
        attempt *a = r->transport;

        ss_curl_uv_remove(&e->curl, a->easy);
        attempt_free(a);
        r->transport = NULL;
}

static void on_curl_closed(uv_handle_t *h)
{
        ss_dispatch_release(&ss_container_of(h, http_exporter, curl.timer)->d);
}

static void http_close(ss_dispatch *d)
{
        http_exporter *e = (http_exporter *)d;

        if (e->curl.multi) /* set up, and not closed yet */
                ss_curl_uv_close(&e->curl, on_curl_closed);
}

static void http_free(ss_dispatch *d)
{
        http_exporter *e = (http_exporter *)d;

        curl_slist_free_all(e->headers);
        free(e->endpoint);
        free(e->ca_file);
        free(e->cert_file);
        free(e->key_file);
        ss_exporter_free(&e->d.base, e);
}

static const ss_dispatch_ops http_ops = {
    .encode = encode_body,
    .wrap = wrap_body,
    .start = http_start,
    .abandon = http_abandon,
    .close = http_close,
    .free = http_free,
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
        const char *fixed[] = {cfg->json ? "Content-Type: application/json"
                                         : "Content-Type: application/x-protobuf",
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
            .retry = src->retry, /* the dispatch fills its zeros */
            .spool = src->spool,
            .json = src->json,
        };
#undef OR_DEFAULT
}

/* Copy s (NULL stays NULL) into *ret. */
static int dup_opt(const char *s, char **ret)
{
        *ret = s ? strdup(s) : NULL;
        return s && !*ret ? -ENOMEM : 0;
}

/* The TLS files, checked readable now rather than at the first request. */
static int tls_copy(http_exporter *e, const ss_http_config *cfg)
{
        ss_tls_files files = {cfg->ca_file, cfg->cert_file, cfg->key_file};
        int r = ss_tls_check("otlp-http", &files);

        if (r == 0)
                r = dup_opt(cfg->ca_file, &e->ca_file);
        if (r == 0)
                r = dup_opt(cfg->cert_file, &e->cert_file);
        if (r == 0)
                r = dup_opt(cfg->key_file, &e->key_file);
        return r;
}

int ss_http_exporter_new(uv_loop_t *loop, const ss_http_config *cfg, ss_exporter **ret)
{
        http_exporter *e;
        int r;

        if (!endpoint_ok(cfg->endpoint))
                return -EINVAL;
        /* The global set-up first: the first exporter's word on TLS is the process's, which
         * the pipeline gives every exporter alike (its own endpoint included). */
        r = ss_curl_uv_global_init(!cfg->no_tls_in_process);
        if (r < 0)
                return r;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        config_copy(&e->cfg, cfg);
        r = headers_build(cfg, &e->headers);
        if (r == 0)
                r = (e->endpoint = strdup(cfg->endpoint)) ? 0 : -ENOMEM;
        if (r == 0)
                r = tls_copy(e, cfg);
        if (r < 0) {
                http_free(&e->d);
                return r;
        }
        r = ss_dispatch_init(&e->d, loop, "otlp-http", &http_ops,
                             &(ss_dispatch_config){
                                 .max_batch = e->cfg.max_batch,
                                 .max_batch_bytes = e->cfg.max_batch_bytes,
                                 .batch_delay_ms = e->cfg.batch_delay_ms,
                                 .max_queue_bytes = e->cfg.max_queue_bytes,
                                 .max_inflight = e->cfg.max_inflight,
                                 .retry = e->cfg.retry,
                                 .spool = e->cfg.spool,
                                 .dead_letter = cfg->dead_letter,
                             });
        if (r < 0)
                return r; /* freed by the dispatch */
        r = ss_curl_uv_init(&e->curl, loop, on_done, on_progress, e);
        if (r < 0) {
                e->d.base.ops->destroy(&e->d.base); /* frees it, maybe later */
                return r;
        }
        ss_dispatch_hold(&e->d);
        *ret = &e->d.base;
        return 0;
}

void ss_module_exit(void)
{
        ss_curl_uv_global_cleanup();
}
