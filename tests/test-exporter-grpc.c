/* SPDX-License-Identifier: MIT */
/*
 * The OTLP/gRPC exporter against a real gRPC server (tests/otlp_grpc_receiver.py,
 * grpcio), which decodes every call with protobuf's own Python classes
 * compiled from proto/. Each test spawns its receiver, runs a libuv loop with
 * the exporter, then reads what arrived from the receiver's control port.
 * The TLS tests use a CA, server and client certificates that main() makes
 * with openssl for this run.
 */
#include "ss-check.h"
#include <curl/curl.h>
#include <errno.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "export/exporter-grpc.h"
#include "fixture-export.h"
#include "model/span.h"
#include "ss-id.h"
#include "ss-macro.h"

#define RX_SCRIPT "otlp_grpc_receiver.py"

/* gRPC status codes the tests make the receiver answer. */
enum {
        CODE_INVALID_ARGUMENT = 3,
        CODE_RESOURCE_EXHAUSTED = 8,
        CODE_UNAVAILABLE = 14,
};

static char pki[64]; /* main()'s certificates */

/* ---- the receiver process ---- */

static fx_rx receiver;
static char rx_endpoint[128];

static void rx_start_args(const char *const *extra)
{
        fx_rx_start(&receiver, RX_SCRIPT, extra);
        snprintf(rx_endpoint, sizeof(rx_endpoint), "http://127.0.0.1:%d", receiver.port);
}

static char *rx_summary(void)
{
        return fx_rx_call(&receiver, "/_sidespan/summary", false);
}

static void rx_control(const char *path)
{
        free(fx_rx_call(&receiver, path, true));
}

/* A PEM file of main()'s, as a path in buf. */
static const char *pki_file(char *buf, size_t size, const char *name)
{
        snprintf(buf, size, "%s/%s", pki, name);
        return buf;
}

/* The receiver over TLS with the test CA's server certificate; mTLS too when mtls. */
static void rx_start_tls(bool mtls)
{
        char cert[128], key[128], ca[128];
        const char *args[] = {"--tls-cert",
                              pki_file(cert, sizeof(cert), "server.pem"),
                              "--tls-key",
                              pki_file(key, sizeof(key), "server.key"),
                              mtls ? "--client-ca" : NULL,
                              pki_file(ca, sizeof(ca), "ca.pem"),
                              NULL};

        rx_start_args(args);
}

/* ---- the loop ---- */

static uv_loop_t loop;

static bool two_started(const ss_exporter *e)
{
        return e->stats.requests >= 2;
}

static ss_exporter *exporter_new(ss_grpc_config *cfg)
{
        ss_exporter *e = NULL;

        if (!cfg->endpoint)
                cfg->endpoint = rx_endpoint;
        ck_assert_int_eq(ss_grpc_exporter_new(&loop, cfg, &e), 0);
        ck_assert_ptr_nonnull(e);
        ck_assert_str_eq(e->name, "otlp-grpc");
        return e;
}

/* Whether grpc has shut down, waiting a little: the last grpc_shutdown() is not always the
 * exporter's. grpc drops internal references of its own (a subchannel torn down after a
 * failed handshake), and the one dropped last on its own thread finishes the shutdown on
 * a detached thread of grpc's, some tens of milliseconds later. A reference the exporter
 * kept would keep it initialised for ever. */
static bool grpc_gone(void)
{
        uint64_t deadline = fx_now_ms() + FX_WAIT_MS;

        while (grpc_is_initialized() && fx_now_ms() < deadline)
                usleep(1000);
        return !grpc_is_initialized();
}

/* Destroy, prove that no handle is left and that grpc has shut down. */
static void exporter_end(ss_exporter *e)
{
        fx_export_end(&loop, e);
        ck_assert(grpc_gone());
}

static void setup(void)
{
        ck_assert_int_eq(uv_loop_init(&loop), 0);
        rx_start_args(NULL);
}

static void setup_no_rx(void)
{
        ck_assert_int_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
        fx_rx_stop(&receiver);
}

static void config(ss_grpc_config *cfg)
{
        ss_grpc_config_defaults(cfg);
        cfg->insecure = true;
        cfg->batch_delay_ms = 60000; /* tests flush */
        cfg->retry.backoff_initial_ms = 20;
        cfg->retry.backoff_max_ms = 100;
        /* Tests that park a request with a 600 s backoff must not see it given up: full
         * jitter draws up to the backoff, and a draw past max_elapsed ends the retries. */
        cfg->retry.max_elapsed_ms = 3600000;
}

/* ---- delivery ---- */

START_TEST(test_export_decoded)
{
        ss_grpc_config cfg;
        ss_exporter *e;
        char *sum;

        config(&cfg);
        e = exporter_new(&cfg);
        sum = fx_export_trace_through(&loop, e, &receiver);
        fx_assert_has(sum, "request code=0 encoding=identity spans=2 client=-\n");
        fx_assert_has(sum, "metadata user-agent: sidespan/");
        free(sum);
        exporter_end(e);
}
END_TEST

START_TEST(test_headers_as_metadata)
{
        const char *headers[] = {"X-Test-Token: abc123", "Authorization:   Bearer s3cr3t  ",
                                 "x-tenant:team-a"};
        ss_grpc_config cfg;
        ss_exporter *e;
        char *sum;

        config(&cfg);
        cfg.headers = headers;
        cfg.n_headers = SS_ELEMENTSOF(headers);
        e = exporter_new(&cfg);
        fx_export_send(&loop, e, "hdr", 1);
        ck_assert_uint_eq(e->stats.spans_exported, 1);
        sum = rx_summary();
        fx_assert_has(sum, "metadata x-test-token: abc123\n");
        fx_assert_has(sum, "metadata authorization: Bearer s3cr3t\n");
        fx_assert_has(sum, "metadata x-tenant: team-a\n");
        fx_assert_lacks(sum, "X-Test-Token");
        free(sum);
        exporter_end(e);
}
END_TEST

START_TEST(test_gzip)
{
        ss_grpc_config cfg;
        ss_exporter *e;
        char *sum;

        config(&cfg);
        cfg.gzip = true;
        e = exporter_new(&cfg);
        fx_export_send(&loop, e, "zipped", 3);
        ck_assert_uint_eq(e->stats.spans_exported, 3);
        sum = rx_summary();
        fx_assert_has(sum, "decode_errors=0\n");
        fx_assert_has(sum, "request code=0 encoding=gzip spans=3 ");
        fx_assert_has(sum, "span name=zipped-2 ");
        fx_assert_has(sum, "attr zipped-0 gen_ai.request.model=\"gpt-4o\"\n");
        free(sum);
        exporter_end(e);
}
END_TEST

START_TEST(test_partial_success)
{
        ss_grpc_config cfg;
        ss_exporter *e;

        rx_control("/_sidespan/partial?rejected=2&message=bad+span+ids");
        config(&cfg);
        e = exporter_new(&cfg);
        fx_export_assert_partial(&loop, e);
        exporter_end(e);
}
END_TEST

/* ---- status codes ---- */

START_TEST(test_unavailable_retried)
{
        ss_grpc_config cfg;
        ss_exporter *e;
        char *sum;

        rx_control("/_sidespan/fail?n=2&code=14");
        config(&cfg);
        e = exporter_new(&cfg);
        sum = fx_export_assert_retried(&loop, e, &receiver, 2);
        ck_assert_int_eq(fx_count_of(sum, "request code=14 encoding=identity spans=2 "), 2);
        ck_assert_int_eq(fx_count_of(sum, "request code=0 encoding=identity spans=2 "), 1);
        free(sum);
        exporter_end(e);
}
END_TEST

START_TEST(test_resource_exhausted_retry_info)
{
        ss_grpc_config cfg;
        ss_exporter *e;
        uint64_t failed_at;
        char *sum;

        rx_control("/_sidespan/fail?n=1&code=8&retry_delay_ms=1000");
        config(&cfg);
        /* The backoff alone would retry after ten minutes, far past the wait's bound:
         * delivery proves that RetryInfo was read. */
        cfg.retry.backoff_initial_ms = 600000;
        cfg.retry.backoff_max_ms = 600000;
        e = exporter_new(&cfg);
        fx_export_add(e, "patient", 1);
        e->ops->flush(e);
        ck_assert(fx_export_run_until(&loop, e, fx_export_failed_once));
        failed_at = uv_now(&loop);
        ck_assert_uint_eq(e->stats.spans_exported, 0);
        ck_assert(fx_export_run_until(&loop, e, fx_export_idle));
        /* ...and obeyed: not retried at once (half the delay, so no timing can flake). */
        ck_assert_uint_ge(uv_now(&loop) - failed_at, 500);
        ck_assert_uint_eq(e->stats.retries, 1);
        ck_assert_uint_eq(e->stats.requests, 2);
        ck_assert_uint_eq(e->stats.spans_exported, 1);
        sum = rx_summary();
        fx_assert_has(sum, "request code=8 ");
        fx_assert_has(sum, "accepted=1\n");
        fx_assert_has(sum, "span name=patient-0 ");
        free(sum);
        exporter_end(e);
}
END_TEST

/* A status every attempt gets once that drops the spans at once. */
static void assert_final(const char *fail_path)
{
        ss_grpc_config cfg;
        ss_exporter *e;

        rx_control(fail_path);
        config(&cfg);
        e = exporter_new(&cfg);
        fx_export_assert_final(&loop, e, &receiver);
        exporter_end(e);
}

START_TEST(test_resource_exhausted_without_info)
{
        assert_final("/_sidespan/fail?n=5&code=8");
}
END_TEST

START_TEST(test_invalid_argument_final)
{
        assert_final("/_sidespan/fail?n=5&code=3");
}
END_TEST

START_TEST(test_deadline)
{
        ss_grpc_config cfg;
        ss_exporter *e;

        rx_control("/_sidespan/delay?ms=1500");
        config(&cfg);
        cfg.timeout_ms = 200;
        cfg.retry.max_attempts = 2;
        e = exporter_new(&cfg);
        fx_export_send(&loop, e, "slow", 2);
        /* DEADLINE_EXCEEDED is retried, here until the attempts run out. */
        ck_assert_uint_eq(e->stats.requests, 2);
        ck_assert_uint_eq(e->stats.failures, 2);
        ck_assert_uint_eq(e->stats.retries, 1);
        ck_assert_uint_eq(e->stats.spans_dropped, 2);
        exporter_end(e);
}
END_TEST

/* ---- concurrency ---- */

/* n batches of one span with the receiver holding each call: how many it served at once. */
static void assert_concurrency(uint32_t max_inflight, unsigned batches, const char *want)
{
        ss_grpc_config cfg;
        ss_exporter *e;
        char *sum, name[32];

        rx_control("/_sidespan/delay?ms=300");
        config(&cfg);
        cfg.max_batch = 1;
        cfg.max_inflight = max_inflight;
        e = exporter_new(&cfg);
        for (unsigned i = 0; i < batches; i++) {
                snprintf(name, sizeof(name), "c%u", i);
                fx_export_add(e, name, 1);
        }
        ck_assert(fx_export_run_until(&loop, e, fx_export_idle));
        ck_assert_uint_eq(e->stats.spans_exported, batches);
        ck_assert_uint_eq(e->stats.requests, batches);
        sum = rx_summary();
        fx_assert_has(sum, want);
        free(sum);
        exporter_end(e);
}

START_TEST(test_calls_in_flight)
{
        assert_concurrency(4, 4, "max_concurrent=4\n");
}
END_TEST

START_TEST(test_in_flight_limit)
{
        assert_concurrency(2, 6, "max_concurrent=2\n");
}
END_TEST

/* ---- reconnection ---- */

START_TEST(test_receiver_starts_late)
{
        char port[16];
        const char *args[] = {"--port", port, NULL};
        ss_grpc_config cfg;
        ss_exporter *e;
        char *sum;

        snprintf(port, sizeof(port), "%d", fx_closed_port());
        snprintf(rx_endpoint, sizeof(rx_endpoint), "http://127.0.0.1:%s", port);
        config(&cfg);
        cfg.retry.max_attempts = 100;
        e = exporter_new(&cfg);
        fx_export_add(e, "early", 3);
        e->ops->flush(e);
        ck_assert(fx_export_run_until(&loop, e, fx_export_failed_once)); /* nobody there */
        ck_assert(e->ops->busy(e));
        rx_start_args(args);
        ck_assert(fx_export_run_until(&loop, e, fx_export_idle));
        ck_assert_uint_eq(e->stats.spans_exported, 3);
        ck_assert_uint_eq(e->stats.spans_dropped, 0);
        sum = rx_summary();
        fx_assert_has(sum, "spans=3\n");
        fx_assert_has(sum, "span name=early-2 ");
        free(sum);
        exporter_end(e);
}
END_TEST

START_TEST(test_receiver_restarts)
{
        char port[16];
        const char *args[] = {"--port", port, NULL};
        ss_grpc_config cfg;
        ss_exporter *e;
        char *sum;

        config(&cfg);
        cfg.retry.max_attempts = 100;
        e = exporter_new(&cfg);
        fx_export_send(&loop, e, "before", 1);
        ck_assert_uint_eq(e->stats.spans_exported, 1);
        snprintf(port, sizeof(port), "%d", receiver.port);
        fx_rx_stop(&receiver);
        fx_export_add(e, "after", 2);
        e->ops->flush(e);
        ck_assert(fx_export_run_until(&loop, e, fx_export_failed_once)); /* gone */
        rx_start_args(args);
        ck_assert(fx_export_run_until(&loop, e, fx_export_idle));
        ck_assert_uint_eq(e->stats.spans_exported, 3);
        ck_assert_uint_eq(e->stats.spans_dropped, 0);
        sum = rx_summary(); /* the new receiver's */
        fx_assert_has(sum, "spans=2\n");
        fx_assert_has(sum, "span name=after-1 ");
        free(sum);
        exporter_end(e);
}
END_TEST

/* ---- TLS ---- */

/* An https:// config for the TLS receiver, with host as the name in the URL. */
static void tls_config(ss_grpc_config *cfg, const char *host, char *url, size_t url_size, char *ca,
                       size_t ca_size)
{
        config(cfg);
        cfg->insecure = false;
        snprintf(url, url_size, "https://%s:%d", host, receiver.port);
        cfg->endpoint = url;
        cfg->ca_file = pki_file(ca, ca_size, "ca.pem");
}

START_TEST(test_tls)
{
        char url[128], ca[128];
        ss_grpc_config cfg;
        ss_exporter *e;
        char *sum;

        rx_start_tls(false);
        tls_config(&cfg, "127.0.0.1", url, sizeof(url), ca, sizeof(ca));
        e = exporter_new(&cfg);
        fx_export_send(&loop, e, "sealed", 2);
        ck_assert_uint_eq(e->stats.spans_exported, 2);
        ck_assert_uint_eq(e->stats.failures, 0);
        sum = rx_summary();
        fx_assert_has(sum, "request code=0 encoding=identity spans=2 client=-\n");
        free(sum);
        exporter_end(e);
}
END_TEST

START_TEST(test_mtls)
{
        char url[128], ca[128], cert[128], key[128];
        ss_grpc_config cfg;
        ss_exporter *e;
        char *sum;

        rx_start_tls(true);
        /* by name this time: the server certificate names localhost too */
        tls_config(&cfg, "localhost", url, sizeof(url), ca, sizeof(ca));
        cfg.cert_file = pki_file(cert, sizeof(cert), "client.pem");
        cfg.key_file = pki_file(key, sizeof(key), "client.key");
        cfg.gzip = true;
        e = exporter_new(&cfg);
        fx_export_send(&loop, e, "mutual", 2);
        ck_assert_uint_eq(e->stats.spans_exported, 2);
        sum = rx_summary();
        fx_assert_has(sum, "request code=0 encoding=gzip spans=2 client=sidespan-test-client\n");
        free(sum);
        exporter_end(e);
}
END_TEST

/* ---- what the exporter logs: stderr into a file for a while ---- */

typedef struct captured {
        char path[32];
        int saved;
} captured;

static void capture_begin(captured *c)
{
        int fd;

        snprintf(c->path, sizeof(c->path), "/tmp/ss-test-log-XXXXXX");
        fd = mkstemp(c->path);
        ck_assert_int_ge(fd, 0);
        c->saved = dup(STDERR_FILENO);
        fflush(stderr);
        ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
        close(fd);
}

/* Restore stderr; what was logged meanwhile, NUL-terminated, in log. */
static void capture_end(captured *c, char *log, size_t size)
{
        fflush(stderr);
        dup2(c->saved, STDERR_FILENO);
        close(c->saved);
        fx_read_file(c->path, log, size);
        unlink(c->path);
}

/* Every attempt fails in the handshake: the spans are dropped (and that is logged), nothing
 * reaches the receiver. */
static void assert_refused(ss_grpc_config *cfg, const char *why)
{
        char log[8192];
        captured c;
        ss_exporter *e;
        char *sum;

        cfg->retry.max_attempts = 2;
        e = exporter_new(cfg);
        capture_begin(&c);
        fx_export_send(&loop, e, "refused", 2);
        capture_end(&c, log, sizeof(log));
        fx_assert_has(log, "otlp-grpc: gRPC UNAVAILABLE (");
        fx_assert_has(log, why);
        fx_assert_has(log, "giving up after 2 attempts in ");
        fx_assert_has(log, "dropping 2 spans");
        ck_assert_uint_eq(e->stats.spans_exported, 0);
        ck_assert_uint_eq(e->stats.spans_dropped, 2);
        ck_assert_uint_eq(e->stats.requests, 2);
        ck_assert_uint_eq(e->stats.failures, 2);
        sum = rx_summary();
        fx_assert_has(sum, "requests=0\n");
        free(sum);
        exporter_end(e);
}

START_TEST(test_wrong_ca)
{
        char url[128], ca[128];
        ss_grpc_config cfg;

        rx_start_tls(false);
        tls_config(&cfg, "127.0.0.1", url, sizeof(url), ca, sizeof(ca));
        cfg.ca_file = pki_file(ca, sizeof(ca), "other-ca.pem");
        assert_refused(&cfg, "certificate verify failed");
}
END_TEST

START_TEST(test_mtls_without_client_cert)
{
        char url[128], ca[128];
        ss_grpc_config cfg;

        rx_start_tls(true);
        tls_config(&cfg, "127.0.0.1", url, sizeof(url), ca, sizeof(ca));
        assert_refused(&cfg, "127.0.0.1");
}
END_TEST

/* ---- teardown ---- */

START_TEST(test_destroy_in_flight)
{
        ss_grpc_config cfg;
        ss_exporter *e;

        rx_control("/_sidespan/delay?ms=3000");
        config(&cfg);
        cfg.max_batch = 2;
        cfg.max_inflight = 2;
        e = exporter_new(&cfg);
        fx_export_add(e, "f", 4); /* two calls in flight */
        fx_export_add(e, "q", 2); /* queued behind them */
        fx_export_add(e, "p", 1); /* batched */
        ck_assert(fx_export_run_until(&loop, e, two_started));
        ck_assert(e->ops->busy(e));
        ck_assert_uint_eq(e->stats.spans_in, 7);
        ck_assert_uint_eq(e->stats.spans_dropped, 0);
        e->ops->destroy(e);
        /* Counted at once; the rest of the teardown comes through the loop. */
        ck_assert_uint_eq(e->stats.spans_dropped, 7);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(uv_loop_close(&loop), 0);
        ck_assert(grpc_gone());
}
END_TEST

static void on_freed(void *ctx)
{
        (*(int *)ctx)++;
}

START_TEST(test_destroy_idle_tells_owner)
{
        ss_grpc_config cfg;
        ss_exporter *e;
        int freed = 0;

        config(&cfg);
        e = exporter_new(&cfg);
        fx_export_send(&loop, e, "done", 1);
        e->freed = on_freed;
        e->freed_ctx = &freed;
        e->ops->destroy(e);
        e->ops->destroy(e); /* once is enough; twice is harmless */
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(freed, 1);
        ck_assert_int_eq(uv_loop_close(&loop), 0);
        ck_assert(grpc_gone());
}
END_TEST

/* ---- configuration ---- */

/* ss_grpc_exporter_new() of cfg, which must fail with want and log a line holding needle. */
static void assert_refused_config(const ss_grpc_config *cfg, int want, const char *needle)
{
        char log[4096];
        captured c;
        ss_exporter *e = NULL;
        int r;

        capture_begin(&c);
        r = ss_grpc_exporter_new(&loop, cfg, &e);
        capture_end(&c, log, sizeof(log));
        ck_assert_msg(r == want, "%s: %d, not %d", cfg->endpoint, r, want);
        ck_assert_ptr_null(e);
        fx_assert_has(log, needle);
}

START_TEST(test_bad_endpoints)
{
        static const char *const bad[] = {
            NULL,
            "127.0.0.1:4317",
            "grpc://127.0.0.1:4317",
            "ftp://127.0.0.1:4317",
            "http://",
            "http://:4317",
            "http://127.0.0.1:",
            "http://127.0.0.1:0",
            "http://127.0.0.1:65536",
            "http://127.0.0.1:4317x",
            "http://127.0.0.1:4317/v1/traces",
            "http://user:pw@127.0.0.1:4317",
            "http://[::1:4317",
            "http://[]:4317",
            "http://bad host:4317",
        };
        ss_grpc_config cfg;

        config(&cfg);
        for (size_t i = 0; i < SS_ELEMENTSOF(bad); i++) {
                cfg.endpoint = bad[i];
                assert_refused_config(&cfg, -EINVAL, "otlp-grpc: endpoint ");
        }
}
END_TEST

START_TEST(test_plaintext_needs_insecure)
{
        char ca[128];
        ss_grpc_config cfg;

        config(&cfg);
        cfg.insecure = false;
        cfg.endpoint = "http://127.0.0.1:4317";
        assert_refused_config(&cfg, -EINVAL, "is plaintext: use https://, or set insecure");
        cfg.insecure = true;
        cfg.ca_file = pki_file(ca, sizeof(ca), "ca.pem");
        assert_refused_config(&cfg, -EINVAL, "it takes no ca_file");
}
END_TEST

START_TEST(test_bad_headers)
{
        static const struct {
                const char *line;
                const char *log;
        } bad[] = {
            {"NoColonHere", "not \"Name: value\""},
            {": value", "not \"Name: value\""},
            {"X Bad: v", "header x bad: not a legal gRPC metadata name"},
            {"X-Ok: line\r\nX-Evil: 1", "header x-ok: a value gRPC does not allow"},
            {"X-Bell: \a", "header x-bell: a value gRPC does not allow"},
            {"grpc-timeout: 1S", "header grpc-timeout: set by the transport"},
            {"Content-Type: text/plain", "header content-type: set by the transport"},
            {"TE: gzip", "header te: set by the transport"},
            {"User-Agent: me", "header user-agent: set by the transport"},
            {":authority: x", "not \"Name: value\""},
        };
        const char *one[1];
        ss_grpc_config cfg;

        config(&cfg);
        cfg.endpoint = "http://127.0.0.1:4317";
        cfg.headers = one;
        cfg.n_headers = 1;
        for (size_t i = 0; i < SS_ELEMENTSOF(bad); i++) {
                one[0] = bad[i].line;
                assert_refused_config(&cfg, -EINVAL, bad[i].log);
        }
}
END_TEST

START_TEST(test_bad_tls_files)
{
        char ca[128], cert[128], key[128], notpem[160];
        ss_grpc_config cfg;
        FILE *f;

        config(&cfg);
        cfg.insecure = false;
        cfg.endpoint = "https://127.0.0.1:4317";
        cfg.ca_file = "/nonexistent/ca.pem";
        assert_refused_config(&cfg, -ENOENT, "ca_file /nonexistent/ca.pem: No such file");
        cfg.ca_file = pki_file(ca, sizeof(ca), "ca.pem");
        cfg.cert_file = pki_file(cert, sizeof(cert), "client.pem");
        assert_refused_config(&cfg, -EINVAL, "needs both cert_file and key_file");
        cfg.key_file = "/nonexistent/client.key";
        assert_refused_config(&cfg, -ENOENT, "key_file /nonexistent/client.key");
        cfg.key_file = pki_file(key, sizeof(key), "client.key");
        cfg.ca_file = "/tmp";
        assert_refused_config(&cfg, -EISDIR, "ca_file /tmp: Is a directory");
        cfg.ca_file = "/dev/null";
        assert_refused_config(&cfg, -ENOTSUP, "ca_file /dev/null: not a regular file");
        snprintf(notpem, sizeof(notpem), "%s/notpem.txt", pki);
        f = fopen(notpem, "w");
        ck_assert_ptr_nonnull(f);
        fputs("hello\n", f);
        fclose(f);
        cfg.ca_file = notpem;
        assert_refused_config(&cfg, -EINVAL, "notpem.txt: not a PEM file");
}
END_TEST

START_TEST(test_good_configs)
{
        static const char *const good[] = {
            "https://collector.invalid",
            "HTTPS://collector.invalid:4317/",
            "https://[::1]:4317",
            "https://127.0.0.1",
        };
        ss_grpc_config cfg;
        ss_exporter *e = NULL;

        ss_grpc_config_defaults(&cfg);
        ck_assert_uint_eq(cfg.timeout_ms, 10000);
        ck_assert_uint_eq(cfg.max_batch, 512);
        ck_assert_uint_eq(cfg.max_inflight, 4);
        ck_assert_uint_eq(cfg.max_queue_bytes, (size_t)64 << 20);
        ck_assert_uint_eq(cfg.retry.max_attempts, 0);
        ck_assert(!cfg.insecure);
        for (size_t i = 0; i < SS_ELEMENTSOF(good); i++) {
                cfg.endpoint = good[i];
                ck_assert_int_eq(ss_grpc_exporter_new(&loop, &cfg, &e), 0);
                ck_assert(!e->ops->busy(e));
                e->ops->destroy(e);
                uv_run(&loop, UV_RUN_DEFAULT);
        }
        ck_assert_int_eq(uv_loop_close(&loop), 0);
        ck_assert(grpc_gone());
}
END_TEST

/* ---- the suite ---- */

/* The CA, the receiver's certificate (127.0.0.1 and localhost), a client certificate, and
 * another CA that signed none of them, in pki. */
static int pki_make(void)
{
        char cmd[2048];
        const char *key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

        snprintf(pki, sizeof(pki), "/tmp/ss-test-pki-XXXXXX");
        if (!mkdtemp(pki))
                return -1;
        snprintf(cmd, sizeof(cmd),
                 "set -e; cd %s; exec 2>openssl.log\n"
                 "openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj '/CN=test CA'\n"
                 "openssl req %s -keyout server.key -out server.csr -subj '/CN=localhost'\n"
                 "echo 'subjectAltName=IP:127.0.0.1,DNS:localhost' >server.ext\n"
                 "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                 "-days 2 -extfile server.ext -out server.pem\n"
                 "openssl req %s -keyout client.key -out client.csr "
                 "-subj '/CN=sidespan-test-client'\n"
                 "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                 "-days 2 -out client.pem\n"
                 "openssl req -x509 %s -keyout other-ca.key -out other-ca.pem -days 2 "
                 "-subj '/CN=test CA'\n",
                 pki, key, key, key, key);
        return system(cmd) == 0 ? 0 : -1;
}

static void pki_remove(void)
{
        fx_tmpdir_remove(pki);
}

static Suite *exporter_grpc_suite(void)
{
        Suite *s = suite_create("exporter-grpc");
        TCase *with_rx = tcase_create("receiver");
        TCase *alone = tcase_create("no-receiver");

        tcase_add_checked_fixture(with_rx, setup, teardown);
        tcase_set_timeout(with_rx, 60);
        tcase_add_test(with_rx, test_export_decoded);
        tcase_add_test(with_rx, test_headers_as_metadata);
        tcase_add_test(with_rx, test_gzip);
        tcase_add_test(with_rx, test_partial_success);
        tcase_add_test(with_rx, test_unavailable_retried);
        tcase_add_test(with_rx, test_resource_exhausted_retry_info);
        tcase_add_test(with_rx, test_resource_exhausted_without_info);
        tcase_add_test(with_rx, test_invalid_argument_final);
        tcase_add_test(with_rx, test_deadline);
        tcase_add_test(with_rx, test_calls_in_flight);
        tcase_add_test(with_rx, test_in_flight_limit);
        tcase_add_test(with_rx, test_receiver_restarts);
        tcase_add_test(with_rx, test_destroy_in_flight);
        tcase_add_test(with_rx, test_destroy_idle_tells_owner);
        suite_add_tcase(s, with_rx);

        /* These start their own receiver, or none. */
        tcase_add_checked_fixture(alone, setup_no_rx, teardown);
        tcase_set_timeout(alone, 60);
        tcase_add_test(alone, test_receiver_starts_late);
        tcase_add_test(alone, test_tls);
        tcase_add_test(alone, test_mtls);
        tcase_add_test(alone, test_wrong_ca);
        tcase_add_test(alone, test_mtls_without_client_cert);
        tcase_add_test(alone, test_bad_endpoints);
        tcase_add_test(alone, test_plaintext_needs_insecure);
        tcase_add_test(alone, test_bad_headers);
        tcase_add_test(alone, test_bad_tls_files);
        tcase_add_test(alone, test_good_configs);
        suite_add_tcase(s, alone);
        return s;
}

int main(void)
{
        int r;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return EXIT_FAILURE;
        if (pki_make() < 0) {
                fprintf(stderr, "cannot make test certificates with openssl (see %s)\n", pki);
                return EXIT_FAILURE;
        }
        r = ss_check_run(exporter_grpc_suite());
        pki_remove();
        curl_global_cleanup();
        return r;
}
