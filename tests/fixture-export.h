/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the network exporters' suites (test-exporter-http.c,
 * test-exporter-grpc.c) share: a real receiver process, tests/otlp_receiver.py
 * or tests/otlp_grpc_receiver.py, on a free port of 127.0.0.1, and its
 * /_sidespan/ control calls over curl (fx_rx_*); whole spans with
 * attributes, an event and a resource (fx_export_*); a loop run until an
 * exporter predicate holds. Header-only, like fixture.h; the suite owns
 * curl_global_init().
 */

#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "export/exporter.h"
#include "fixture.h"
#include "otlp/otlp.h"
#include "ss-id.h"
#include "ss-macro.h"

/* A liveness bound for a loop run, not an assertion on time. */
#define FX_EXPORT_WAIT_MS 20000

typedef struct fx_rx {
        pid_t pid;
        int port;         /* where the exporter sends */
        int control_port; /* the /_sidespan/ HTTP port: port itself for otlp_receiver.py */
        char dir[64];
} fx_rx;

/* Read "<port>" or "<port> <control port>" once the receiver has written it. */
static inline void fx_rx_wait_port(fx_rx *rx, const char *port_file)
{
        for (int i = 0; i < 3000 && rx->port <= 0; i++) {
                FILE *f = fopen(port_file, "r");
                int status;

                if (f) {
                        int n = fscanf(f, "%d %d", &rx->port, &rx->control_port);

                        fclose(f);
                        if (n == 1)
                                rx->control_port = rx->port;
                        if (n < 1)
                                rx->port = 0;
                }
                ck_assert_msg(waitpid(rx->pid, &status, WNOHANG) == 0, "receiver died at start");
                if (rx->port <= 0)
                        usleep(10000);
        }
        ck_assert_int_gt(rx->port, 0);
        unlink(port_file);
}

/* Start tests/<script> with --port-file and extra (NULL-terminated, may be NULL) as its
 * arguments, and wait until it listens. */
static inline void fx_rx_start(fx_rx *rx, const char *script, const char *const *extra)
{
        const char *py = getenv("PYTHON3"), *root = getenv("SIDESPAN_SOURCE_ROOT");
        char path[4096], port_file[128];
        const char *argv[24] = {0};
        size_t n = 0;

        ck_assert_msg(py && root, "PYTHON3 and SIDESPAN_SOURCE_ROOT must be set (meson test)");
        *rx = (fx_rx){0};
        snprintf(path, sizeof(path), "%s/tests/%s", root, script);
        fx_tmpdir(rx->dir, sizeof(rx->dir), "rx");
        snprintf(port_file, sizeof(port_file), "%s/port", rx->dir);
        argv[n++] = py;
        argv[n++] = path;
        argv[n++] = "--port-file";
        argv[n++] = port_file;
        for (; extra && *extra && n < SS_ELEMENTSOF(argv) - 1; extra++)
                argv[n++] = *extra;
        rx->pid = fork();
        ck_assert_int_ge(rx->pid, 0);
        if (rx->pid == 0) {
                /* A failed assertion ends this test process without teardown: the
                 * receiver must not outlive it. */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                execv(py, (char *const *)argv);
                _exit(127);
        }
        fx_rx_wait_port(rx, port_file);
}

/* SIGTERM, which the receivers answer with a clean exit 0. No-op when none runs. */
static inline void fx_rx_stop(fx_rx *rx)
{
        int status = 0;

        if (rx->pid <= 0)
                return;
        kill(rx->pid, SIGTERM);
        ck_assert_int_eq(waitpid(rx->pid, &status, 0), rx->pid);
        rx->pid = 0;
        fx_tmpdir_remove(rx->dir);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static inline size_t fx_rx_collect(char *p, size_t size, size_t nmemb, void *userdata)
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

/* GET or POST (empty body) a control path of the receiver; returns the malloc'd body. */
static inline char *fx_rx_call(const fx_rx *rx, const char *path, bool post)
{
        CURL *c = curl_easy_init();
        char url[512];
        char *body = NULL;
        long status = 0;

        ck_assert_ptr_nonnull(c);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", rx->control_port, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fx_rx_collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        if (post)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        ck_assert_int_eq(status, 200);
        curl_easy_cleanup(c);
        return body ? body : strdup("");
}

static inline void fx_assert_lacks(const char *hay, const char *needle)
{
        ck_assert_msg(!strstr(hay, needle), "unexpected \"%s\" in:\n%s", needle, hay);
}

static inline int fx_count_of(const char *hay, const char *needle)
{
        int n = 0;

        for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* A port of 127.0.0.1 nothing listens on: bound, then closed. */
static inline int fx_closed_port(void)
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

/* ---- spans ---- */

static inline ss_resource *fx_export_resource(void)
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
static inline ss_span *fx_export_span(ss_resource *r, const char *name, uint8_t seed,
                                      uint8_t parent_seed)
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
static inline void fx_export_add(ss_exporter *e, const char *prefix, unsigned n)
{
        ss_resource *r = fx_export_resource();
        ss_span *spans[16];
        char name[64];

        ck_assert_uint_le(n, 16);
        for (unsigned i = 0; i < n; i++) {
                snprintf(name, sizeof(name), "%s-%u", prefix, i);
                spans[i] = fx_export_span(r, name, (uint8_t)(i + 1), 0);
        }
        e->ops->add(e, spans, n);
        for (unsigned i = 0; i < n; i++)
                ss_span_unref(spans[i]);
        ss_resource_unref(r);
}

/* The ids of the trace fx_export_add_trace() sends, in hex. */
typedef struct fx_trace_hex {
        char trace[2 * SS_TRACE_ID_LEN + 1];
        char root[2 * SS_SPAN_ID_LEN + 1];
        char child[2 * SS_SPAN_ID_LEN + 1];
} fx_trace_hex;

/* Hand e one trace in one add(): "agent.run" (SERVER, the root) and "chat gpt-4o" (its CLIENT
 * child), with attributes, an event and the resource of fx_export_resource(). */
static inline void fx_export_add_trace(ss_exporter *e, fx_trace_hex *ids)
{
        ss_resource *r = fx_export_resource();
        ss_span *spans[2] = {fx_export_span(r, "agent.run", 1, 0),
                             fx_export_span(r, "chat gpt-4o", 2, 1)};

        ss_hex(ids->trace, spans[0]->trace_id, SS_TRACE_ID_LEN);
        ss_hex(ids->root, spans[0]->span_id, SS_SPAN_ID_LEN);
        ss_hex(ids->child, spans[1]->span_id, SS_SPAN_ID_LEN);
        e->ops->add(e, spans, 2);
        ss_span_unref(spans[0]);
        ss_span_unref(spans[1]);
        ss_resource_unref(r);
}

/* That the receiver decoded that trace whole: sum is its summary, json its /_sidespan/spans. */
static inline void fx_export_assert_trace(const char *sum, const char *json,
                                          const fx_trace_hex *ids)
{
        char line[256];

        fx_assert_has(sum, "requests=1\n");
        fx_assert_has(sum, "decode_errors=0\n");
        fx_assert_has(sum, "spans=2\n");
        snprintf(line, sizeof(line),
                 "span name=agent.run trace_id=%s span_id=%s parent=- kind=2 status=1 "
                 "service=test-svc\n",
                 ids->trace, ids->root);
        fx_assert_has(sum, line);
        snprintf(line, sizeof(line),
                 "span name=chat gpt-4o trace_id=%s span_id=%s parent=%s kind=3 status=1 "
                 "service=test-svc\n",
                 ids->trace, ids->child, ids->root);
        fx_assert_has(sum, line);
        fx_assert_has(sum, "attr chat gpt-4o gen_ai.request.model=\"gpt-4o\"\n");
        fx_assert_has(sum, "attr chat gpt-4o upsonic.tool_call_count=3\n");
        fx_assert_has(sum, "attr chat gpt-4o upsonic.tool.success=true\n");
        fx_assert_has(sum, "attr agent.run tags=[\"a\", \"b\"]\n");
        fx_assert_has(sum, "resource agent.run service.name=\"test-svc\"\n");
        fx_assert_has(sum, "resource agent.run deployment.environment=\"ci\"\n");
        fx_assert_has(sum, "event chat gpt-4o gen_ai.first_token\n");
        fx_assert_has(json, "\"start_time_unix_nano\": 1700000000000000000");
        fx_assert_has(json, "\"end_time_unix_nano\": 1700000000500000000");
        fx_assert_has(json, "\"time_unix_nano\": 1700000000100000000");
}

static inline bool fx_export_run_until(uv_loop_t *loop, const ss_exporter *e,
                                       bool (*pred)(const ss_exporter *e));
static inline bool fx_export_idle(const ss_exporter *e);

/* Send the trace of fx_export_add_trace() through a new e, wait, check e's counters (one
 * request, both spans exported) and that rx decoded the trace whole. Returns rx's summary
 * (malloc'd) for the transport's own checks. */
static inline char *fx_export_trace_through(uv_loop_t *loop, ss_exporter *e, const fx_rx *rx)
{
        fx_trace_hex ids;
        char *sum, *json;

        fx_export_add_trace(e, &ids);
        ck_assert(e->ops->busy(e));
        e->ops->flush(e);
        ck_assert(fx_export_run_until(loop, e, fx_export_idle));
        ck_assert_uint_eq(e->stats.spans_in, 2);
        ck_assert_uint_eq(e->stats.spans_exported, 2);
        ck_assert_uint_eq(e->stats.spans_dropped, 0);
        ck_assert_uint_eq(e->stats.requests, 1);
        ck_assert_uint_eq(e->stats.failures, 0);
        sum = fx_rx_call(rx, "/_sidespan/summary", false);
        json = fx_rx_call(rx, "/_sidespan/spans", false);
        fx_export_assert_trace(sum, json, &ids);
        free(json);
        return sum;
}

/* Send n spans named prefix-i through e in one flush and wait until nothing is pending. */
static inline void fx_export_send(uv_loop_t *loop, ss_exporter *e, const char *prefix, unsigned n)
{
        fx_export_add(e, prefix, n);
        e->ops->flush(e);
        ck_assert(fx_export_run_until(loop, e, fx_export_idle));
}

/* The receiver was told to fail the next calls in a way that is final: three spans sent
 * through e are dropped after one request, which rx did not accept. */
static inline void fx_export_assert_final(uv_loop_t *loop, ss_exporter *e, const fx_rx *rx)
{
        char *sum;

        fx_export_send(loop, e, "final", 3);
        ck_assert_uint_eq(e->stats.spans_dropped, 3);
        ck_assert_uint_eq(e->stats.spans_exported, 0);
        ck_assert_uint_eq(e->stats.requests, 1);
        ck_assert_uint_eq(e->stats.failures, 1);
        ck_assert_uint_eq(e->stats.retries, 0);
        sum = fx_rx_call(rx, "/_sidespan/summary", false);
        fx_assert_has(sum, "requests=1\n");
        fx_assert_has(sum, "accepted=0\n");
        free(sum);
}

/* The receiver was told to answer the next call with a partial_success rejecting 2: of three
 * spans sent through e, one counts exported and two dropped, and nothing is retried. */
static inline void fx_export_assert_partial(uv_loop_t *loop, ss_exporter *e)
{
        fx_export_send(loop, e, "part", 3);
        ck_assert_uint_eq(e->stats.spans_exported, 1);
        ck_assert_uint_eq(e->stats.spans_dropped, 2);
        ck_assert_uint_eq(e->stats.failures, 0);
        ck_assert_uint_eq(e->stats.retries, 0);
        ck_assert_uint_eq(e->stats.requests, 1);
}

/* The receiver was told to fail the next `failures` calls in a way that is retried: two
 * spans sent through e arrive after that many retries. Returns rx's summary (malloc'd). */
static inline char *fx_export_assert_retried(uv_loop_t *loop, ss_exporter *e, const fx_rx *rx,
                                             unsigned failures)
{
        char *sum;

        fx_export_send(loop, e, "again", 2);
        ck_assert_uint_eq(e->stats.spans_exported, 2);
        ck_assert_uint_eq(e->stats.spans_dropped, 0);
        ck_assert_uint_eq(e->stats.retries, failures);
        ck_assert_uint_eq(e->stats.failures, failures);
        ck_assert_uint_eq(e->stats.requests, failures + 1);
        sum = fx_rx_call(rx, "/_sidespan/summary", false);
        fx_assert_has(sum, "spans=2\n");
        return sum;
}

/* Encoded size of one span as fx_export_add() makes them, for sizing a queue bound. */
static inline size_t fx_export_span_size(void)
{
        ss_resource *r = fx_export_resource();
        ss_span *s = fx_export_span(r, "q-0", 1, 0);
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

/* ---- the loop ---- */

static inline void fx_export_on_tick(uv_timer_t *t)
{
}

/* Run loop until pred(e) holds; a ticking timer bounds every wait. */
static inline bool fx_export_run_until(uv_loop_t *loop, const ss_exporter *e,
                                       bool (*pred)(const ss_exporter *e))
{
        uv_timer_t tick;
        uint64_t deadline;
        bool ok;

        uv_update_time(loop);
        deadline = uv_now(loop) + FX_EXPORT_WAIT_MS;
        uv_timer_init(loop, &tick);
        uv_timer_start(&tick, fx_export_on_tick, 10, 10);
        while (!(ok = pred(e)) && uv_now(loop) < deadline)
                uv_run(loop, UV_RUN_ONCE);
        uv_close((uv_handle_t *)&tick, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        return ok;
}

static inline bool fx_export_idle(const ss_exporter *e)
{
        return !e->ops->busy(e);
}

static inline bool fx_export_failed_once(const ss_exporter *e)
{
        return e->stats.failures >= 1;
}

/* Destroy, let the close callbacks run, and prove that no handle is left. */
static inline void fx_export_end(uv_loop_t *loop, ss_exporter *e)
{
        e->ops->destroy(e);
        uv_run(loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(uv_loop_close(loop), 0);
}
