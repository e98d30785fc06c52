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
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "export/exporter-http.h"
#include "fixture.h"
#include "otlp/otlp.h"
#include "model/span.h"
#include "ss-id.h"
#include "ss-macro.h"

#define WAIT_MS 20000 /* liveness bound for a loop run, not an assertion on time */

/* ---- the receiver process ---- */

static pid_t rx_pid;
static int rx_port;
static char rx_dir[64];
static char rx_url[128];

static void rx_start_args(const char *const *extra)
{
        const char *py = getenv("PYTHON3"), *root = getenv("SIDESPAN_SOURCE_ROOT");
        char script[4096], port_file[128];
        const char *argv[16] = {0};
        size_t n = 0;

        ck_assert_msg(py && root, "PYTHON3 and SIDESPAN_SOURCE_ROOT must be set (meson test)");
        snprintf(script, sizeof(script), "%s/tests/otlp_receiver.py", root);
        snprintf(rx_dir, sizeof(rx_dir), "/tmp/ss-test-rx-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(rx_dir));
        snprintf(port_file, sizeof(port_file), "%s/port", rx_dir);
        argv[n++] = py;
        argv[n++] = script;
        argv[n++] = "--port-file";
        argv[n++] = port_file;
        for (; extra && *extra && n < 15; extra++)
                argv[n++] = *extra;
        rx_pid = fork();
        ck_assert_int_ge(rx_pid, 0);
        if (rx_pid == 0) {
                /* A failed assertion ends this test process without teardown: the
                 * receiver must not outlive it. */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                execv(py, (char *const *)argv);
                _exit(127);
        }
        for (int i = 0; i < 3000; i++) {
                FILE *f = fopen(port_file, "r");
                int status;

                if (f) {
                        int ok = fscanf(f, "%d", &rx_port);

                        fclose(f);
                        if (ok == 1 && rx_port > 0)
                                break;
                }
                ck_assert_msg(waitpid(rx_pid, &status, WNOHANG) == 0, "receiver died at start");
                usleep(10000);
        }
        ck_assert_int_gt(rx_port, 0);
        unlink(port_file);
        snprintf(rx_url, sizeof(rx_url), "http://127.0.0.1:%d/v1/traces", rx_port);
}

static void rx_start(void)
{
        rx_start_args(NULL);
}

static void rx_stop(void)
{
        int status = 0;

        if (rx_pid <= 0)
                return;
        kill(rx_pid, SIGTERM);
        ck_assert_int_eq(waitpid(rx_pid, &status, 0), rx_pid);
        rx_pid = 0;
        rmdir(rx_dir);
        /* SIGTERM is a clean exit for the receiver. */
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static size_t collect(char *p, size_t size, size_t nmemb, void *userdata)
{
        char **buf = userdata;
        size_t old = *buf ? strlen(*buf) : 0, n = size * nmemb;
        char *nb = realloc(*buf, old + n + 1);

        ck_assert_ptr_nonnull(nb);
        memcpy(nb + old, p, n);
        nb[old + n] = '\0';
        *buf = nb;
        return n;
}

/* GET or POST (empty body) a receiver control path; returns the malloc'd body. */
static char *rx_call(const char *path, bool post)
{
        CURL *c = curl_easy_init();
        char url[512];
        char *body = NULL;
        long status = 0;

        ck_assert_ptr_nonnull(c);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", rx_port, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        if (post)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        ck_assert_int_eq(status, 200);
        curl_easy_cleanup(c);
        return body ? body : strdup("");
}

static char *rx_summary(void)
{
        return rx_call("/_sidespan/summary", false);
}

static void rx_control(const char *path)
{
        free(rx_call(path, true));
}

static void assert_has(const char *hay, const char *needle)
{
        ck_assert_msg(strstr(hay, needle), "missing \"%s\" in:\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
        ck_assert_msg(!strstr(hay, needle), "unexpected \"%s\" in:\n%s", needle, hay);
}

static int count_of(const char *hay, const char *needle)
{
        int n = 0;

        for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* ---- spans ---- */

static ss_resource *test_resource(void)
{
        msgpack_object_kv kv[] = {
            fx_kv("service.name", fx_str("test-svc")),
            fx_kv("deployment.environment", fx_str("ci")),
        };
        msgpack_object m = fx_map(kv, SS_ELEMENTSOF(kv));
        ss_resource *r = ss_resource_new(&m.via.map);

        ck_assert_ptr_nonnull(r);
        return r;
}

/* A whole span with attributes and one event; ids derived from seed, a root (SERVER)
 * when parent_seed is 0, else a CLIENT child of that seed's span in the same trace. */
static ss_span *test_span(ss_resource *r, const char *name, uint8_t seed, uint8_t parent_seed)
{
        msgpack_object tags[] = {fx_str("a"), fx_str("b")};
        msgpack_object_kv kv[] = {
            fx_kv("gen_ai.request.model", fx_str("gpt-4o")),
            fx_kv("upsonic.tool_call_count", fx_uint(3)),
            fx_kv("upsonic.tool.success", fx_bool(true)),
            fx_kv("tags", fx_array(tags, SS_ELEMENTSOF(tags))),
        };
        msgpack_object_kv ev_kv[] = {fx_kv("gen_ai.token.index", fx_uint(0))};
        msgpack_object ev_fields[] = {fx_str("gen_ai.first_token"), fx_uint(1700000000100000000ull),
                                      fx_map(ev_kv, SS_ELEMENTSOF(ev_kv))};
        msgpack_object ev = fx_array(ev_fields, SS_ELEMENTSOF(ev_fields));
        msgpack_object events = fx_array(&ev, 1);
        msgpack_object attrs = fx_map(kv, SS_ELEMENTSOF(kv));
        ss_limits lim = {.max_attrs = 128, .max_events = 128, .max_value_len = 65536};

        return fx_span(&(fx_span_spec){.resource = r,
                                       .name = name,
                                       .seed = seed,
                                       .parent_seed = parent_seed,
                                       .kind = parent_seed ? SS_KIND_CLIENT : SS_KIND_SERVER,
                                       .start_ns = 1700000000000000000ull,
                                       .end_ns = 1700000000500000000ull,
                                       .status_code = SS_STATUS_OK,
                                       .attrs = &attrs.via.map,
                                       .events = &events.via.array,
                                       .limits = &lim,
                                       .whole = true});
}

/* Hand n spans named "<prefix>-<i>" to the exporter in one add(). */
static void add_spans(ss_exporter *e, const char *prefix, unsigned n)
{
        ss_resource *r = test_resource();
        ss_span *spans[16];
        char name[64];

        ck_assert_uint_le(n, 16);
        for (unsigned i = 0; i < n; i++) {
                snprintf(name, sizeof(name), "%s-%u", prefix, i);
                spans[i] = test_span(r, name, (uint8_t)(i + 1), 0);
        }
        e->ops->add(e, spans, n);
        for (unsigned i = 0; i < n; i++)
                ss_span_unref(spans[i]);
        ss_resource_unref(r);
}

/* ---- the loop ---- */

static uv_loop_t loop;

static void on_tick(uv_timer_t *t)
{
}

typedef bool (*pred_fn)(const ss_exporter *e);

/* Run the loop until pred holds; a ticking timer bounds every wait. */
static bool run_until(const ss_exporter *e, pred_fn pred)
{
        uv_timer_t tick;
        uint64_t deadline;
        bool ok;

        uv_update_time(&loop);
        deadline = uv_now(&loop) + WAIT_MS;
        uv_timer_init(&loop, &tick);
        uv_timer_start(&tick, on_tick, 10, 10);
        while (!(ok = pred(e)) && uv_now(&loop) < deadline)
                uv_run(&loop, UV_RUN_ONCE);
        uv_close((uv_handle_t *)&tick, NULL);
        uv_run(&loop, UV_RUN_NOWAIT);
        return ok;
}

static bool idle(const ss_exporter *e)
{
        return !e->ops->busy(e);
}

static bool failed_once(const ss_exporter *e)
{
        return e->stats.failures >= 1;
}

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

/* Destroy, let the close callbacks run, and prove that no handle is left. */
static void exporter_end(ss_exporter *e)
{
        e->ops->destroy(e);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(uv_loop_close(&loop), 0);
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
        rx_stop();
}

static void config(ss_http_config *cfg)
{
        ss_http_config_defaults(cfg);
        cfg->batch_delay_ms = 60000; /* tests flush, unless they test the delay */
        cfg->retry.backoff_initial_ms = 20;
        cfg->retry.backoff_max_ms = 100;
}

/* ---- tests ---- */

START_TEST(test_export_decoded)
{
        ss_resource *r = test_resource();
        ss_span *spans[2] = {test_span(r, "agent.run", 1, 0), test_span(r, "chat gpt-4o", 2, 1)};
        char tid[2 * SS_TRACE_ID_LEN + 1], sid[2 * SS_SPAN_ID_LEN + 1];
        char pid[2 * SS_SPAN_ID_LEN + 1], line[256];
        ss_http_config cfg;
        ss_exporter *e;
        char *sum, *json;

        ss_hex(tid, spans[0]->trace_id, SS_TRACE_ID_LEN);
        ss_hex(pid, spans[0]->span_id, SS_SPAN_ID_LEN);
        ss_hex(sid, spans[1]->span_id, SS_SPAN_ID_LEN);
        config(&cfg);
        e = exporter_new(&cfg);
        e->ops->add(e, spans, 2);
        ss_span_unref(spans[0]);
        ss_span_unref(spans[1]);
        ss_resource_unref(r);
        ck_assert(e->ops->busy(e));
        e->ops->flush(e);
        ck_assert(run_until(e, idle));
        ck_assert_uint_eq(e->stats.spans_in, 2);
        ck_assert_uint_eq(e->stats.spans_exported, 2);
        ck_assert_uint_eq(e->stats.spans_dropped, 0);
        ck_assert_uint_eq(e->stats.requests, 1);
        ck_assert_uint_eq(e->stats.failures, 0);

        sum = rx_summary();
        assert_has(sum, "requests=1\n");
        assert_has(sum, "decode_errors=0\n");
        assert_has(sum, "spans=2\n");
        assert_has(sum, "header content-type: application/x-protobuf\n");
        assert_has(sum, "header user-agent: sidespan/");
        assert_lacks(sum, "header content-encoding");
        snprintf(line, sizeof(line),
                 "span name=agent.run trace_id=%s span_id=%s parent=- kind=2 status=1 "
                 "service=test-svc\n",
                 tid, pid);
        assert_has(sum, line);
        snprintf(line, sizeof(line),
                 "span name=chat gpt-4o trace_id=%s span_id=%s parent=%s kind=3 status=1 "
                 "service=test-svc\n",
                 tid, sid, pid);
        assert_has(sum, line);
        assert_has(sum, "attr chat gpt-4o gen_ai.request.model=\"gpt-4o\"\n");
        assert_has(sum, "attr chat gpt-4o upsonic.tool_call_count=3\n");
        assert_has(sum, "attr chat gpt-4o upsonic.tool.success=true\n");
        assert_has(sum, "attr agent.run tags=[\"a\", \"b\"]\n");
        assert_has(sum, "resource agent.run service.name=\"test-svc\"\n");
        assert_has(sum, "resource agent.run deployment.environment=\"ci\"\n");
        assert_has(sum, "event chat gpt-4o gen_ai.first_token\n");
        free(sum);

        json = rx_call("/_sidespan/spans", false);
        assert_has(json, "\"start_time_unix_nano\": 1700000000000000000");
        assert_has(json, "\"end_time_unix_nano\": 1700000000500000000");
        assert_has(json, "\"time_unix_nano\": 1700000000100000000");
        free(json);
        exporter_end(e);
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
        add_spans(e, "zipped", 3);
        e->ops->flush(e);
        ck_assert(run_until(e, idle));
        ck_assert_uint_eq(e->stats.spans_exported, 3);
        sum = rx_summary();
        assert_has(sum, "decode_errors=0\n");
        assert_has(sum, "request status=200 encoding=gzip spans=3 ");
        assert_has(sum, "header content-encoding: gzip\n");
        assert_has(sum, "span name=zipped-2 ");
        assert_has(sum, "attr zipped-0 gen_ai.request.model=\"gpt-4o\"\n");
        free(sum);
        exporter_end(e);
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
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/public/otel/v1/traces", rx_port);
        cfg.endpoint = url;
        cfg.headers = headers;
        cfg.n_headers = 2;
        e = exporter_new(&cfg);
        add_spans(e, "hdr", 1);
        e->ops->flush(e);
        ck_assert(run_until(e, idle));
        ck_assert_uint_eq(e->stats.spans_exported, 1);
        sum = rx_summary();
        assert_has(sum, "path=/api/public/otel/v1/traces\n");
        assert_has(sum, "header x-test-token: abc123\n");
        assert_has(sum, "header authorization: Basic cHVibGljOnNlY3JldA==\n");
        free(sum);
        exporter_end(e);
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
        add_spans(e, "b", 5);
        /* Two full batches left at once; the fifth span waits for the flush. */
        ck_assert(e->ops->busy(e));
        e->ops->flush(e);
        ck_assert(run_until(e, idle));
        ck_assert_uint_eq(e->stats.requests, 3);
        ck_assert_uint_eq(e->stats.spans_exported, 5);
        sum = rx_summary();
        assert_has(sum, "requests=3\n");
        assert_has(sum, "spans=5\n");
        ck_assert_int_eq(count_of(sum, "request status=200 encoding=identity spans=2 "), 2);
        ck_assert_int_eq(count_of(sum, "request status=200 encoding=identity spans=1 "), 1);
        free(sum);
        exporter_end(e);
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
        add_spans(e, "late", 2);
        ck_assert_uint_eq(e->stats.requests, 0);
        /* No flush: the batch timer alone must send them. */
        ck_assert(run_until(e, exported_two));
        ck_assert_uint_eq(e->stats.requests, 1);
        sum = rx_summary();
        assert_has(sum, "requests=1\n");
        assert_has(sum, "spans=2\n");
        free(sum);
        exporter_end(e);
}
END_TEST

START_TEST(test_retry_503)
{
        ss_http_config cfg;
        ss_exporter *e;
        char *sum;

        /* The receiver's own command-line failure switch. */
        rx_stop();
        rx_start_args((const char *const[]){"--fail-first", "2", "--fail-status", "503", NULL});
        config(&cfg);
        e = exporter_new(&cfg);
        add_spans(e, "again", 2);
        e->ops->flush(e);
        ck_assert(run_until(e, idle));
        ck_assert_uint_eq(e->stats.spans_exported, 2);
        ck_assert_uint_eq(e->stats.spans_dropped, 0);
        ck_assert_uint_eq(e->stats.retries, 2);
        ck_assert_uint_eq(e->stats.failures, 2);
        ck_assert_uint_eq(e->stats.requests, 3);
        sum = rx_summary();
        ck_assert_int_eq(count_of(sum, "request status=503 encoding=identity spans=2 "), 2);
        ck_assert_int_eq(count_of(sum, "request status=200 encoding=identity spans=2 "), 1);
        assert_has(sum, "spans=2\n");
        free(sum);
        exporter_end(e);
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
        add_spans(e, "patient", 1);
        e->ops->flush(e);
        ck_assert(run_until(e, idle));
        ck_assert_uint_eq(e->stats.retries, 1);
        ck_assert_uint_eq(e->stats.requests, 2);
        ck_assert_uint_eq(e->stats.spans_exported, 1);
        sum = rx_summary();
        assert_has(sum, "request status=429 ");
        assert_has(sum, "accepted=1\n");
        assert_has(sum, "span name=patient-0 ");
        free(sum);
        exporter_end(e);
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
        add_spans(e, "dated", 1);
        e->ops->flush(e);
        ck_assert(run_until(e, idle));
        ck_assert_uint_eq(e->stats.retries, 1);
        ck_assert_uint_eq(e->stats.spans_exported, 1);
        exporter_end(e);
}
END_TEST

START_TEST(test_final_400)
{
        ss_http_config cfg;
        ss_exporter *e;
        char *sum;

        rx_control("/_sidespan/fail?n=5&status=400");
        config(&cfg);
        e = exporter_new(&cfg);
        add_spans(e, "rejected", 3);
        e->ops->flush(e);
        ck_assert(run_until(e, idle));
        ck_assert_uint_eq(e->stats.spans_dropped, 3);
        ck_assert_uint_eq(e->stats.spans_exported, 0);
        ck_assert_uint_eq(e->stats.requests, 1);
        ck_assert_uint_eq(e->stats.failures, 1);
        ck_assert_uint_eq(e->stats.retries, 0);
        sum = rx_summary();
        assert_has(sum, "requests=1\n");
        assert_has(sum, "accepted=0\n");
        free(sum);
        exporter_end(e);
}
END_TEST

START_TEST(test_partial_success)
{
        ss_http_config cfg;
        ss_exporter *e;

        rx_control("/_sidespan/partial?rejected=2&message=bad+span+ids");
        config(&cfg);
        e = exporter_new(&cfg);
        add_spans(e, "part", 3);
        e->ops->flush(e);
        ck_assert(run_until(e, idle));
        ck_assert_uint_eq(e->stats.spans_exported, 1);
        ck_assert_uint_eq(e->stats.spans_dropped, 2);
        ck_assert_uint_eq(e->stats.failures, 0);
        ck_assert_uint_eq(e->stats.retries, 0);
        exporter_end(e);
}
END_TEST

static int closed_port(void);

/* Encoded size of one span as add_spans() makes them, for sizing the queue bound. */
static size_t one_span_size(void)
{
        ss_resource *r = test_resource();
        ss_span *s = test_span(r, "q-0", 1, 0);
        ss_buf b;
        size_t n;

        ss_buf_init(&b, 1 << 20);
        ck_assert_int_eq(ss_otlp_encode(&s, 1, &b), 0);
        n = b.len;
        ss_buf_free(&b);
        ss_span_unref(s);
        ss_resource_unref(r);
        return n;
}

START_TEST(test_queue_drops_oldest)
{
        size_t size = one_span_size();
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
        add_spans(e, "a", 1);
        e->ops->flush(e);
        ck_assert(run_until(e, failed_once)); /* a now waits for its retry */
        add_spans(e, "b", 1);
        e->ops->flush(e); /* b takes the free slot: in flight, never dropped */
        add_spans(e, "c", 1);
        e->ops->flush(e); /* waits behind b; a, b and c fit */
        ck_assert_uint_eq(e->stats.spans_dropped, 0);
        add_spans(e, "d", 1);
        e->ops->flush(e); /* over the bound: a, the oldest waiting, goes */
        ck_assert_uint_eq(e->stats.spans_dropped, 1);
        add_spans(e, "e", 1);
        e->ops->flush(e); /* now c is the oldest waiting */
        ck_assert_uint_eq(e->stats.spans_dropped, 2);
        ck_assert(run_until(e, idle));
        ck_assert_uint_eq(e->stats.spans_exported, 3);
        ck_assert_uint_eq(e->stats.spans_dropped, 2);
        sum = rx_summary();
        assert_has(sum, "span name=b-0 ");
        assert_has(sum, "span name=d-0 ");
        assert_has(sum, "span name=e-0 ");
        assert_lacks(sum, "span name=a-0 ");
        assert_lacks(sum, "span name=c-0 ");
        assert_has(sum, "requests=4\n");
        free(sum);
        exporter_end(e);
}
END_TEST

START_TEST(test_queue_drops_new)
{
        size_t size = one_span_size();
        ss_http_config cfg;
        ss_exporter *e;
        char url[128];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/traces", closed_port());
        config(&cfg);
        cfg.endpoint = url;
        cfg.retry.backoff_initial_ms = 600000;
        cfg.retry.backoff_max_ms = 600000;
        cfg.max_queue_bytes = size + size / 2;
        e = exporter_new(&cfg);
        add_spans(e, "a", 1);
        e->ops->flush(e);
        ck_assert(run_until(e, failed_once)); /* a waits for a retry */
        /* Sixteen spans would not fit even with a gone: they alone are dropped. */
        add_spans(e, "big", 16);
        e->ops->flush(e);
        ck_assert_uint_eq(e->stats.spans_dropped, 16);
        ck_assert_uint_eq(e->stats.requests, 1);
        ck_assert(e->ops->busy(e));
        exporter_end(e);
}
END_TEST

/* A port nothing listens on: bound, then closed. */
static int closed_port(void)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        close(fd);
        return ntohs(a.sin_port);
}

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

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/traces", closed_port());
        config(&cfg);
        cfg.endpoint = url;
        cfg.retry.max_attempts = 2;
        cfg.retry.backoff_initial_ms = 10;
        cfg.retry.backoff_max_ms = 10;
        e = exporter_new(&cfg);
        add_spans(e, "lost", 3);
        e->ops->flush(e);
        ck_assert(run_until(e, idle));
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
        exporter_end(e);
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
        add_spans(e, "w", 2);
        e->ops->flush(e);
        ck_assert(run_until(e, failed_once)); /* waiting for a retry */
        add_spans(e, "f", 2);
        e->ops->flush(e); /* in flight */
        add_spans(e, "q", 2);
        e->ops->flush(e);     /* queued behind the busy slot */
        add_spans(e, "p", 3); /* batched */
        ck_assert(e->ops->busy(e));
        ck_assert_uint_eq(e->stats.spans_in, 9);
        ck_assert_uint_eq(e->stats.spans_dropped, 0);
        exporter_end(e);
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
        ck_assert_uint_eq(cfg.retry.max_attempts, 5);
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
        exporter_end(e);
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
