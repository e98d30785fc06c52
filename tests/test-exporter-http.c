/* SPDX-License-Identifier: MIT */
/*
 * The OTLP/HTTP exporter against the real receiver (tests/otlp_receiver.py),
 * which decodes every request with protobuf's own Python classes compiled
 * from proto/. Each test spawns its receiver, runs a libuv loop with the
 * exporter, then reads what arrived from the receiver's /_sidespan/summary.
 */
#include "ss-check.h"
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "export/exporter-http.h"
#include "fixture-export.h"
#include "model/span.h"
#include "ss-id.h"
#include "ss-macro.h"

/* ---- the receiver process ---- */

static fx_rx receiver;
static char rx_url[128];

static void rx_start_args(const char *const *extra)
{
        fx_rx_start(&receiver, "otlp_receiver.py", extra);
        snprintf(rx_url, sizeof(rx_url), "http://127.0.0.1:%d/v1/traces", receiver.port);
}

static void rx_start(void)
{
        rx_start_args(NULL);
}

static char *rx_summary(void)
{
        return fx_rx_call(&receiver, "/_sidespan/summary", false);
}

static void rx_control(const char *path)
{
        free(fx_rx_call(&receiver, path, true));
}

/* ---- the loop ---- */

static uv_loop_t loop;

static bool exported_two(const ss_exporter *e)
{
        return e->stats.spans_exported >= 2;
}

static ss_exporter *exporter_new(ss_http_config *cfg)
{
        ss_exporter *e = NULL;

        if (!cfg->endpoint)
                cfg->endpoint = rx_url;
        ck_assert_int_eq(ss_http_exporter_new(&loop, cfg, &e), 0);
        ck_assert_ptr_nonnull(e);
        ck_assert_str_eq(e->name, "otlp-http");
        return e;
}

static void setup(void)
{
        ck_assert_int_eq(uv_loop_init(&loop), 0);
        rx_start();
}

static void setup_no_rx(void)
{
        ck_assert_int_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
        fx_rx_stop(&receiver);
}

static void config(ss_http_config *cfg)
{
        ss_http_config_defaults(cfg);
        cfg->batch_delay_ms = 60000; /* tests flush, unless they test the delay */
        cfg->retry.backoff_initial_ms = 20;
        cfg->retry.backoff_max_ms = 100;
        /* Tests that park a request with a 600 s backoff must not see it given up: full
         * jitter draws up to the backoff, and a draw past max_elapsed ends the retries. */
        cfg->retry.max_elapsed_ms = 3600000;
}

/* ---- tests ---- */

START_TEST(test_export_decoded)
{
        ss_http_config cfg;
        ss_exporter *e;
        char *sum;

        config(&cfg);
        e = exporter_new(&cfg);
        sum = fx_export_trace_through(&loop, e, &receiver);
        fx_assert_has(sum, "header content-type: application/x-protobuf\n");
        fx_assert_has(sum, "header user-agent: sidespan/");
        fx_assert_lacks(sum, "header content-encoding");
        free(sum);
        fx_export_end(&loop, e);
}
END_TEST

START_TEST(test_gzip)
{
        ss_http_config cfg;
        ss_exporter *e;
        char *sum;

        config(&cfg);
        cfg.gzip = true;
        e = exporter_new(&cfg);
        fx_export_add(e, "zipped", 3);
        e->ops->flush(e);
        ck_assert(fx_export_run_until(&loop, e, fx_export_idle));
        ck_assert_uint_eq(e->stats.spans_exported, 3);
        sum = rx_summary();
        fx_assert_has(sum, "decode_errors=0\n");
        fx_assert_has(sum, "request status=200 encoding=gzip spans=3 ");
        fx_assert_has(sum, "header content-encoding: gzip\n");
        fx_assert_has(sum, "span name=zipped-2 ");
        fx_assert_has(sum, "attr zipped-0 gen_ai.request.model=\"gpt-4o\"\n");
        free(sum);
        fx_export_end(&loop, e);
}
END_TEST

START_TEST(test_headers_and_path)
{
        const char *headers[] = {"X-Test-Token: abc123",
                                 "Authorization: Basic cHVibGljOnNlY3JldA=="};
        char url[160];
        ss_http_config cfg;
        ss_exporter *e;
        char *sum;

        config(&cfg);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/public/otel/v1/traces", receiver.port);
        cfg.endpoint = url;
        cfg.headers = headers;
        cfg.n_headers = 2;
        e = exporter_new(&cfg);
        fx_export_add(e, "hdr", 1);
        e->ops->flush(e);
        ck_assert(fx_export_run_until(&loop, e, fx_export_idle));
        ck_assert_uint_eq(e->stats.spans_exported, 1);
        sum = rx_summary();
        fx_assert_has(sum, "path=/api/public/otel/v1/traces\n");
        fx_assert_has(sum, "header x-test-token: abc123\n");
        fx_assert_has(sum, "header authorization: Basic cHVibGljOnNlY3JldA==\n");
        free(sum);
        fx_export_end(&loop, e);
}
END_TEST

START_TEST(test_max_batch)
{
        ss_http_config cfg;
        ss_exporter *e;
        char *sum;

        config(&cfg);
        cfg.max_batch = 2;
        e = exporter_new(&cfg);
        fx_export_add(e, "b", 5);
        /* Two full batches left at once; the fifth span waits for the flush. */
        ck_assert(e->ops->busy(e));
        e->ops->flush(e);
        ck_assert(fx_export_run_until(&loop, e, fx_export_idle));
        ck_assert_uint_eq(e->stats.requests, 3);
        ck_assert_uint_eq(e->stats.spans_exported, 5);
        sum = rx_summary();
        fx_assert_has(sum, "requests=3\n");
        fx_assert_has(sum, "spans=5\n");
        ck_assert_int_eq(fx_count_of(sum, "request status=200 encoding=identity spans=2 "), 2);
        ck_assert_int_eq(fx_count_of(sum, "request status=200 encoding=identity spans=1 "), 1);
        free(sum);
        fx_export_end(&loop, e);
}
END_TEST

START_TEST(test_batch_delay)
{
        ss_http_config cfg;
        ss_exporter *e;
        char *sum;

        config(&cfg);
        cfg.batch_delay_ms = 50;
        e = exporter_new(&cfg);
        fx_export_add(e, "late", 2);
        ck_assert_uint_eq(e->stats.requests, 0);
        /* No flush: the batch timer alone must send them. */
        ck_assert(fx_export_run_until(&loop, e, exported_two));
        ck_assert_uint_eq(e->stats.requests, 1);
        sum = rx_summary();
        fx_assert_has(sum, "requests=1\n");
        fx_assert_has(sum, "spans=2\n");
        free(sum);
        fx_export_end(&loop, e);
}
END_TEST

START_TEST(test_retry_503)
{
        ss_http_config cfg;
        ss_exporter *e;
        char *sum;

        /* The receiver's own command-line failure switch. */
        fx_rx_stop(&receiver);
        rx_start_args((const char *const[]){"--fail-first", "2", "--fail-status", "503", NULL});
        config(&cfg);
        e = exporter_new(&cfg);
        sum = fx_export_assert_retried(&loop, e, &receiver, 2);
        ck_assert_int_eq(fx_count_of(sum, "request status=503 encoding=identity spans=2 "), 2);
        ck_assert_int_eq(fx_count_of(sum, "request status=200 encoding=identity spans=2 "), 1);
        free(sum);
        fx_export_end(&loop, e);
}
END_TEST

START_TEST(test_retry_after)
{
        ss_http_config cfg;
        ss_exporter *e;
        char *sum;

        rx_control("/_sidespan/fail?n=1&status=429&retry_after=1");
        config(&cfg);
        /* Without Retry-After the retry would come after ten minutes, far past run_until's
         * bound: delivery proves the header was obeyed. */
        cfg.retry.backoff_initial_ms = 600000;
        cfg.retry.backoff_max_ms = 600000;
        e = exporter_new(&cfg);
        fx_export_add(e, "patient", 1);
        e->ops->flush(e);
        ck_assert(fx_export_run_until(&loop, e, fx_export_idle));
        ck_assert_uint_eq(e->stats.retries, 1);
        ck_assert_uint_eq(e->stats.requests, 2);
        ck_assert_uint_eq(e->stats.spans_exported, 1);
        sum = rx_summary();
        fx_assert_has(sum, "request status=429 ");
        fx_assert_has(sum, "accepted=1\n");
        fx_assert_has(sum, "span name=patient-0 ");
        free(sum);
        fx_export_end(&loop, e);
}
END_TEST

START_TEST(test_retry_after_date)
{
        time_t when = time(NULL) + 2;
        char date[64], path[160];
        ss_http_config cfg;
        ss_exporter *e;

        /* An HTTP-date ("Sun,+06+Nov+1994+08:49:37+GMT" once URL-encoded) two seconds on. */
        ck_assert_uint_gt(strftime(date, sizeof(date), "%a,+%d+%b+%Y+%H:%M:%S+GMT", gmtime(&when)),
                          0);
        snprintf(path, sizeof(path), "/_sidespan/fail?n=1&status=503&retry_after=%s", date);
        rx_control(path);
        config(&cfg);
        cfg.retry.backoff_initial_ms = 600000; /* as above: only the date can bring the retry */
        cfg.retry.backoff_max_ms = 600000;
        e = exporter_new(&cfg);
        fx_export_add(e, "dated", 1);
        e->ops->flush(e);
        ck_assert(fx_export_run_until(&loop, e, fx_export_idle));
        ck_assert_uint_eq(e->stats.retries, 1);
        ck_assert_uint_eq(e->stats.spans_exported, 1);
        fx_export_end(&loop, e);
}
END_TEST

START_TEST(test_final_400)
{
        ss_http_config cfg;
        ss_exporter *e;

        rx_control("/_sidespan/fail?n=5&status=400");
        config(&cfg);
        e = exporter_new(&cfg);
        fx_export_assert_final(&loop, e, &receiver);
        fx_export_end(&loop, e);
}
END_TEST

START_TEST(test_partial_success)
{
        ss_http_config cfg;
        ss_exporter *e;

        rx_control("/_sidespan/partial?rejected=2&message=bad+span+ids");
        config(&cfg);
        e = exporter_new(&cfg);
        fx_export_assert_partial(&loop, e);
        fx_export_end(&loop, e);
}
END_TEST

START_TEST(test_queue_drops_oldest)
{
        size_t size = fx_export_span_size();
        ss_http_config cfg;
        ss_exporter *e;
        char *sum;

        rx_control("/_sidespan/fail?n=1&status=503");
        config(&cfg);
        cfg.max_inflight = 1;
        cfg.retry.backoff_initial_ms = 1000; /* a waits at least 500 ms: time enough for b..e */
        cfg.retry.backoff_max_ms = 1000;
        cfg.max_queue_bytes = 3 * size + size / 2;
        e = exporter_new(&cfg);
        fx_export_add(e, "a", 1);
        e->ops->flush(e);
        ck_assert(
            fx_export_run_until(&loop, e, fx_export_failed_once)); /* a now waits for its retry */
        fx_export_add(e, "b", 1);
        e->ops->flush(e); /* b takes the free slot: in flight, never dropped */
        fx_export_add(e, "c", 1);
        e->ops->flush(e); /* waits behind b; a, b and c fit */
        ck_assert_uint_eq(e->stats.spans_dropped, 0);
        fx_export_add(e, "d", 1);
        e->ops->flush(e); /* over the bound: a, the oldest waiting, goes */
        ck_assert_uint_eq(e->stats.spans_dropped, 1);
        fx_export_add(e, "e", 1);
        e->ops->flush(e); /* now c is the oldest waiting */
        ck_assert_uint_eq(e->stats.spans_dropped, 2);
        ck_assert(fx_export_run_until(&loop, e, fx_export_idle));
        ck_assert_uint_eq(e->stats.spans_exported, 3);
        ck_assert_uint_eq(e->stats.spans_dropped, 2);
        sum = rx_summary();
        fx_assert_has(sum, "span name=b-0 ");
        fx_assert_has(sum, "span name=d-0 ");
        fx_assert_has(sum, "span name=e-0 ");
        fx_assert_lacks(sum, "span name=a-0 ");
        fx_assert_lacks(sum, "span name=c-0 ");
        fx_assert_has(sum, "requests=4\n");
        free(sum);
        fx_export_end(&loop, e);
}
END_TEST

START_TEST(test_queue_drops_new)
{
        size_t size = fx_export_span_size();
        ss_http_config cfg;
        ss_exporter *e;
        char url[128];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/traces", fx_closed_port());
        config(&cfg);
        cfg.endpoint = url;
        cfg.retry.backoff_initial_ms = 600000;
        cfg.retry.backoff_max_ms = 600000;
        cfg.max_queue_bytes = size + size / 2;
        e = exporter_new(&cfg);
        fx_export_add(e, "a", 1);
        e->ops->flush(e);
        ck_assert(fx_export_run_until(&loop, e, fx_export_failed_once)); /* a waits for a retry */
        /* Sixteen spans would not fit even with a gone: they alone are dropped. */
        fx_export_add(e, "big", 16);
        e->ops->flush(e);
        ck_assert_uint_eq(e->stats.spans_dropped, 16);
        ck_assert_uint_eq(e->stats.requests, 1);
        ck_assert(e->ops->busy(e));
        fx_export_end(&loop, e);
}
END_TEST

static void on_after(uv_timer_t *t)
{
        *(bool *)t->data = true;
}

START_TEST(test_connection_refused)
{
        char url[128];
        ss_http_config cfg;
        ss_exporter *e;
        uv_timer_t after;
        bool fired = false;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/traces", fx_closed_port());
        config(&cfg);
        cfg.endpoint = url;
        cfg.retry.max_attempts = 2;
        cfg.retry.backoff_initial_ms = 10;
        cfg.retry.backoff_max_ms = 10;
        e = exporter_new(&cfg);
        fx_export_add(e, "lost", 3);
        e->ops->flush(e);
        ck_assert(fx_export_run_until(&loop, e, fx_export_idle));
        ck_assert_uint_eq(e->stats.requests, 2);
        ck_assert_uint_eq(e->stats.failures, 2);
        ck_assert_uint_eq(e->stats.retries, 1);
        ck_assert_uint_eq(e->stats.spans_dropped, 3);
        ck_assert_uint_eq(e->stats.spans_exported, 0);
        /* The loop goes on serving other handles. */
        uv_timer_init(&loop, &after);
        after.data = &fired;
        uv_timer_start(&after, on_after, 1, 0);
        while (!fired)
                uv_run(&loop, UV_RUN_ONCE);
        uv_close((uv_handle_t *)&after, NULL);
        fx_export_end(&loop, e);
}
END_TEST

START_TEST(test_destroy_pending)
{
        ss_http_config cfg;
        ss_exporter *e;

        rx_control("/_sidespan/fail?n=100&status=503");
        config(&cfg);
        cfg.max_inflight = 1;
        cfg.retry.backoff_initial_ms = 60000;
        cfg.retry.backoff_max_ms = 60000;
        e = exporter_new(&cfg);
        fx_export_add(e, "w", 2);
        e->ops->flush(e);
        ck_assert(fx_export_run_until(&loop, e, fx_export_failed_once)); /* waiting for a retry */
        fx_export_add(e, "f", 2);
        e->ops->flush(e); /* in flight */
        fx_export_add(e, "q", 2);
        e->ops->flush(e);         /* queued behind the busy slot */
        fx_export_add(e, "p", 3); /* batched */
        ck_assert(e->ops->busy(e));
        ck_assert_uint_eq(e->stats.spans_in, 9);
        ck_assert_uint_eq(e->stats.spans_dropped, 0);
        fx_export_end(&loop, e);
}
END_TEST

START_TEST(test_bad_config)
{
        const char *bad_header[] = {"NoColonHere"};
        const char *injected[] = {"X-A: b\r\nX-Evil: c"};
        ss_http_config cfg;
        ss_exporter *e = NULL;

        ss_http_config_defaults(&cfg);
        ck_assert_uint_eq(cfg.timeout_ms, 10000);
        ck_assert_uint_eq(cfg.max_batch, 512);
        ck_assert_uint_eq(cfg.max_queue_bytes, (size_t)64 << 20);
        ck_assert_uint_eq(cfg.retry.max_attempts, 0);
        cfg.endpoint = NULL;
        ck_assert_int_eq(ss_http_exporter_new(&loop, &cfg, &e), -EINVAL);
        cfg.endpoint = "ftp://127.0.0.1/v1/traces";
        ck_assert_int_eq(ss_http_exporter_new(&loop, &cfg, &e), -EINVAL);
        cfg.endpoint = "127.0.0.1:4318/v1/traces";
        ck_assert_int_eq(ss_http_exporter_new(&loop, &cfg, &e), -EINVAL);
        cfg.endpoint = "http://";
        ck_assert_int_eq(ss_http_exporter_new(&loop, &cfg, &e), -EINVAL);
        cfg.endpoint = "http://127.0.0.1:4318/v1/traces";
        cfg.headers = bad_header;
        cfg.n_headers = 1;
        ck_assert_int_eq(ss_http_exporter_new(&loop, &cfg, &e), -EINVAL);
        cfg.headers = injected;
        ck_assert_int_eq(ss_http_exporter_new(&loop, &cfg, &e), -EINVAL);
        ck_assert_ptr_null(e);
        cfg.endpoint = "HTTPS://collector.invalid/v1/traces";
        cfg.n_headers = 0;
        ck_assert_int_eq(ss_http_exporter_new(&loop, &cfg, &e), 0);
        ck_assert(!e->ops->busy(e));
        fx_export_end(&loop, e);
}
END_TEST

static Suite *exporter_http_suite(void)
{
        Suite *s = suite_create("exporter-http");
        TCase *rx = tcase_create("receiver");
        TCase *alone = tcase_create("no-receiver");

        tcase_add_checked_fixture(rx, setup, teardown);
        tcase_set_timeout(rx, 60);
        tcase_add_test(rx, test_export_decoded);
        tcase_add_test(rx, test_gzip);
        tcase_add_test(rx, test_headers_and_path);
        tcase_add_test(rx, test_max_batch);
        tcase_add_test(rx, test_batch_delay);
        tcase_add_test(rx, test_retry_503);
        tcase_add_test(rx, test_retry_after);
        tcase_add_test(rx, test_retry_after_date);
        tcase_add_test(rx, test_final_400);
        tcase_add_test(rx, test_partial_success);
        tcase_add_test(rx, test_queue_drops_oldest);
        tcase_add_test(rx, test_destroy_pending);
        suite_add_tcase(s, rx);

        tcase_add_checked_fixture(alone, setup_no_rx, NULL);
        tcase_add_test(alone, test_queue_drops_new);
        tcase_add_test(alone, test_connection_refused);
        tcase_add_test(alone, test_bad_config);
        suite_add_tcase(s, alone);
        return s;
}

int main(void)
{
        int r;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return EXIT_FAILURE;
        r = ss_check_run(exporter_http_suite());
        curl_global_cleanup();
        return r;
}
