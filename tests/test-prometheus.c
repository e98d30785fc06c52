/* SPDX-License-Identifier: MIT */
/* The Prometheus text from hand-built snapshots, compared byte for byte and parsed by
 * prometheus_client; the scrape server over a real socket. */
#include "ss-check.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics/prometheus.h"
#include "ss-macro.h"

#define SCOPE_LABELS "otel_scope_name=\"sidespand\",otel_scope_version=\"1.2.3\""

static ss_buf out;

static void setup(void)
{
        ss_buf_init(&out, 1 << 20);
}

static void teardown(void)
{
        ss_buf_free(&out);
}

static const char *text(void)
{
        ck_assert_int_eq(ss_buf_append(&out, "", 1), 0);
        out.len--;
        return (const char *)out.data;
}

/* Render a one-metric snapshot without scope or resource. */
static const char *render_one(const ss_metric *m)
{
        ss_metrics_snapshot s = {.metrics = m, .n = 1, .temporality = SS_TEMPORALITY_CUMULATIVE};

        ss_buf_reset(&out);
        ck_assert_int_eq(ss_prom_render(&s, &out), 0);
        return text();
}

/* Samples prometheus_client's parser reads from t; -1 when it does not parse. */
static int python_samples(const char *t)
{
        const char *py = getenv("PYTHON3"), *src = getenv("SIDESPAN_SOURCE_ROOT");
        char cmd[1024], line[512];
        int n = 0, st;
        FILE *f;

        ck_assert_ptr_nonnull(py);
        ck_assert_ptr_nonnull(src);
        snprintf(cmd, sizeof(cmd), "'%s' '%s/tests/prometheus_parse.py' < /tmp/ss-prom-%d.txt", py,
                 src, (int)getpid());
        snprintf(line, sizeof(line), "/tmp/ss-prom-%d.txt", (int)getpid());
        f = fopen(line, "w");
        ck_assert_ptr_nonnull(f);
        fputs(t, f);
        fclose(f);
        f = popen(cmd, "r");
        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof(line), f))
                n++;
        st = pclose(f);
        snprintf(line, sizeof(line), "/tmp/ss-prom-%d.txt", (int)getpid());
        unlink(line);
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? n : -1;
}

/* ---- ss_prom_render ----------------------------------------------------------------------- */

static const ss_metric_attr otlp_http[] = {{"exporter", "otlp-http"}};
static const ss_metric_attr console[] = {{"exporter", "console"}};
static const ss_metric_point exported_points[] = {
    {.attrs = otlp_http, .n_attrs = 1, .value = 42},
    {.attrs = console, .n_attrs = 1, .value = 7},
};
static const ss_metric exported = {
    .name = "sidespan.spans.exported",
    .description = "Spans handed to exporters.",
    .unit = "{span}",
    .kind = SS_METRIC_SUM,
    .monotonic = true,
    .is_int = true,
    .points = exported_points,
    .n_points = 2,
};

START_TEST(test_counter_with_attributes)
{
        ss_metrics_snapshot s = {.metrics = &exported,
                                 .n = 1,
                                 .temporality = SS_TEMPORALITY_CUMULATIVE,
                                 .scope_name = "sidespand",
                                 .scope_version = "1.2.3"};

        ck_assert_int_eq(ss_prom_render(&s, &out), 0);
        ck_assert_str_eq(
            text(), "# HELP sidespan_spans_exported_total Spans handed to exporters.\n"
                    "# TYPE sidespan_spans_exported_total counter\n"
                    "sidespan_spans_exported_total{" SCOPE_LABELS ",exporter=\"otlp-http\"} 42\n"
                    "sidespan_spans_exported_total{" SCOPE_LABELS ",exporter=\"console\"} 7\n");
        ck_assert_int_eq(python_samples(text()), 2);
}
END_TEST

START_TEST(test_gauges)
{
        ss_metric_point mem = {.value = 1048576}, ratio = {.value = 0.25}, big = {.value = 1e17};
        ss_metric_point depth = {.value = -3};
        ss_metric g = {.name = "process.memory.usage",
                       .unit = "By",
                       .kind = SS_METRIC_GAUGE,
                       .is_int = true,
                       .points = &mem,
                       .n_points = 1};

        ck_assert_str_eq(render_one(&g), "# TYPE process_memory_usage_bytes gauge\n"
                                         "process_memory_usage_bytes 1048576\n");
        g = (ss_metric){.name = "sampler.ratio",
                        .unit = "1",
                        .kind = SS_METRIC_GAUGE,
                        .points = &ratio,
                        .n_points = 1};
        ck_assert_str_eq(render_one(&g), "# TYPE sampler_ratio gauge\n"
                                         "sampler_ratio 0.25\n");
        /* integers never take an exponent */
        g = (ss_metric){.name = "big", .kind = SS_METRIC_GAUGE, .points = &big, .n_points = 1};
        ck_assert_str_eq(render_one(&g), "# TYPE big gauge\nbig 100000000000000000\n");
        /* an up-down sum is a gauge */
        g = (ss_metric){.name = "queue.depth",
                        .unit = "{request}",
                        .kind = SS_METRIC_SUM,
                        .points = &depth,
                        .n_points = 1};
        ck_assert_str_eq(render_one(&g), "# TYPE queue_depth gauge\nqueue_depth -3\n");
}
END_TEST

START_TEST(test_histogram)
{
        static const double bounds[] = {0.01, 0.1, 1, 10};
        static const uint64_t buckets[] = {1, 2, 0, 3, 1};
        static const ss_metric_attr model[] = {{"gen_ai.request.model", "gpt-4o"}};
        ss_metric_point pt = {.attrs = model,
                              .n_attrs = 1,
                              .count = 7,
                              .sum = 23.5,
                              .min = 0.005,
                              .max = 11,
                              .bucket_counts = buckets};
        ss_metric h = {.name = "gen_ai.client.operation.duration",
                       .description = "GenAI operation duration.",
                       .unit = "s",
                       .kind = SS_METRIC_HISTOGRAM,
                       .bounds = bounds,
                       .n_bounds = 4,
                       .points = &pt,
                       .n_points = 1};

#define H "gen_ai_client_operation_duration_seconds"
#define L "gen_ai_request_model=\"gpt-4o\""
        ck_assert_str_eq(render_one(&h),
                         "# HELP " H " GenAI operation duration.\n"
                         "# TYPE " H " histogram\n" H "_bucket{" L ",le=\"0.01\"} 1\n" H
                         "_bucket{" L ",le=\"0.1\"} 3\n" H "_bucket{" L ",le=\"1\"} 3\n" H
                         "_bucket{" L ",le=\"10\"} 6\n" H "_bucket{" L ",le=\"+Inf\"} 7\n" H
                         "_sum{" L "} 23.5\n" H "_count{" L "} 7\n");
        ck_assert_int_eq(python_samples(text()), 7);
        /* a negative value: no _sum, the specification keeps it to sums that only grow */
        pt.min = -1;
        ck_assert_ptr_null(strstr(render_one(&h), "_sum"));
#undef H
#undef L
}
END_TEST

/* The family name of a one-point metric, from its TYPE line. */
static const char *family(const char *name, const char *unit, ss_metric_kind kind, bool mono)
{
        static char ret[SS_PROM_NAME_MAX + 1];
        ss_metric_point pt = {.value = 1};
        ss_metric m = {.name = name,
                       .unit = unit,
                       .kind = kind,
                       .monotonic = mono,
                       .points = &pt,
                       .n_points = 1};
        const char *t = render_one(&m);

        ck_assert_int_eq(sscanf(t, "# TYPE %256s", ret), 1);
        return ret;
}

START_TEST(test_names_and_units)
{
        ck_assert_str_eq(family("sidespan.cost", "USD", SS_METRIC_SUM, true),
                         "sidespan_cost_USD_total");
        ck_assert_str_eq(family("gen_ai.client.token.usage", "{token}", SS_METRIC_SUM, true),
                         "gen_ai_client_token_usage_total");
        ck_assert_str_eq(family("export.rate", "By/s", SS_METRIC_GAUGE, false),
                         "export_rate_bytes_per_second");
        ck_assert_str_eq(family("spans.rate", "{span}/s", SS_METRIC_GAUGE, false),
                         "spans_rate_per_second");
        ck_assert_str_eq(family("latency_seconds", "s", SS_METRIC_GAUGE, false), "latency_seconds");
        ck_assert_str_eq(family("requests_total", "", SS_METRIC_SUM, true), "requests_total");
        ck_assert_str_eq(family("cpu.time_total", "s", SS_METRIC_SUM, true),
                         "cpu_time_seconds_total");
        ck_assert_str_eq(family("(lambda).run..count#", NULL, SS_METRIC_GAUGE, false),
                         "_lambda_run_count_");
        ck_assert_str_eq(family("9lives", "ms", SS_METRIC_GAUGE, false), "_9lives_milliseconds");
        ck_assert_str_eq(family("ns:rule", "ns", SS_METRIC_GAUGE, false), "ns:rule_nanoseconds");
        ck_assert_str_eq(family("utilization", "1", SS_METRIC_GAUGE, false), "utilization_ratio");
        ck_assert_str_eq(family("heat", "Cel", SS_METRIC_GAUGE, false), "heat_celsius");
}
END_TEST

START_TEST(test_escaping_and_label_keys)
{
        static const ss_metric_attr attrs[] = {
            {"http.status-code", "200"},
            {"a.b", "dot"},
            {"path", "a\\b\"c\nd"},
            {"a-b", "dash"},
        };
        ss_metric_point pt = {.attrs = attrs, .n_attrs = 4, .value = 1.5};
        ss_metric g = {.name = "x",
                       .description = "back\\slash\nnew \"line\"",
                       .kind = SS_METRIC_GAUGE,
                       .points = &pt,
                       .n_points = 1};

        /* a.b and a-b sanitize alike: one label, values in the order of the original keys */
        ck_assert_str_eq(
            render_one(&g),
            "# HELP x back\\\\slash\\nnew \"line\"\n"
            "# TYPE x gauge\n"
            "x{http_status_code=\"200\",a_b=\"dash;dot\",path=\"a\\\\b\\\"c\\nd\"} 1.5\n");
        ck_assert_int_eq(python_samples(text()), 1);
        /* empty keys and names would not parse */
        static const ss_metric_attr empty[] = {{"", "v"}};
        pt = (ss_metric_point){.attrs = empty, .n_attrs = 1, .value = 1};
        g = (ss_metric){.name = "", .kind = SS_METRIC_GAUGE, .points = &pt, .n_points = 1};
        ck_assert_str_eq(render_one(&g), "# TYPE _ gauge\n_{_=\"v\"} 1\n");
        ck_assert_int_eq(python_samples(text()), 1);
}
END_TEST

START_TEST(test_empty_and_resource)
{
        static const ss_metric_attr res[] = {{"service.name", "sidespand"}, {"host.name", "box"}};
        ss_metrics_snapshot s = {.temporality = SS_TEMPORALITY_CUMULATIVE};

        ck_assert_int_eq(ss_prom_render(&s, &out), 0);
        ck_assert_uint_eq(out.len, 0);
        s.resource = res;
        s.n_resource = 2;
        ck_assert_int_eq(ss_prom_render(&s, &out), 0);
        ck_assert_str_eq(text(), "# HELP target_info Target metadata\n"
                                 "# TYPE target_info gauge\n"
                                 "target_info{service_name=\"sidespand\",host_name=\"box\"} 1\n");
        ck_assert_int_eq(python_samples(text()), 1);
}
END_TEST

START_TEST(test_delta_and_duplicates)
{
        ss_metric_point pt = {.value = 2};
        ss_metric m[] = {
            {.name = "a.b", .kind = SS_METRIC_GAUGE, .points = &pt, .n_points = 1},
            {.name = "a_b", .kind = SS_METRIC_GAUGE, .points = &pt, .n_points = 1},
            {.name = "c", .kind = SS_METRIC_SUM, .monotonic = true, .points = &pt, .n_points = 1},
        };
        ss_metrics_snapshot s = {.metrics = m, .n = 3, .temporality = SS_TEMPORALITY_DELTA};

        /* the second a_b is dropped; the delta counter too */
        ck_assert_int_eq(ss_prom_render(&s, &out), 0);
        ck_assert_str_eq(text(), "# TYPE a_b gauge\na_b 2\n");
        s.temporality = SS_TEMPORALITY_CUMULATIVE;
        ss_buf_reset(&out);
        ck_assert_int_eq(ss_prom_render(&s, &out), 0);
        ck_assert_str_eq(text(), "# TYPE a_b gauge\na_b 2\n# TYPE c_total counter\nc_total 2\n");
}
END_TEST

START_TEST(test_nobufs_leaves_out_alone)
{
        ss_metrics_snapshot s = {
            .metrics = &exported, .n = 1, .temporality = SS_TEMPORALITY_CUMULATIVE};
        ss_buf small;

        ss_buf_init(&small, 64);
        ck_assert_int_eq(ss_buf_append(&small, "kept", 4), 0);
        ck_assert_int_eq(ss_prom_render(&s, &small), -ENOBUFS);
        ck_assert_uint_eq(small.len, 4);
        ck_assert_int_eq(memcmp(small.data, "kept", 4), 0);
        ss_buf_free(&small);
}
END_TEST

START_TEST(test_name_too_long)
{
        char name[SS_PROM_NAME_MAX + 8];
        ss_metric_point pt = {.value = 1};
        ss_metric m = {.name = name, .kind = SS_METRIC_GAUGE, .points = &pt, .n_points = 1};
        ss_metrics_snapshot s = {.metrics = &m, .n = 1};

        memset(name, 'x', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        ck_assert_int_eq(ss_prom_render(&s, &out), -EINVAL);
        ck_assert_uint_eq(out.len, 0);
}
END_TEST

/* ---- the server --------------------------------------------------------------------------- */

/* One HTTP/1.0 request to 127.0.0.1:port; the whole response, NUL-terminated. */
static void http(uint16_t port, const char *request, char *resp, size_t size)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        size_t n = 0;
        ssize_t k;

        ck_assert_int_ge(fd, 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        ck_assert_int_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
        while (n + 1 < size && (k = read(fd, resp + n, size - 1 - n)) > 0)
                n += (size_t)k;
        resp[n] = '\0';
        close(fd);
}

static const char *body(const char *resp)
{
        const char *b = strstr(resp, "\r\n\r\n");

        ck_assert_ptr_nonnull(b);
        return b + 4;
}

START_TEST(test_server_serves_published_text)
{
        ss_prom_server *p = NULL;
        char resp[4096];
        ss_buf t;

        ck_assert_int_eq(ss_prom_server_start("127.0.0.1:0", &p), 0);
        ck_assert_uint_gt(ss_prom_server_port(p), 0);
        /* before the first publish: an empty exposition */
        http(ss_prom_server_port(p), "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof(resp));
        ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%s", resp);
        ck_assert_str_eq(body(resp), "");

        ss_buf_init(&t, 1 << 16);
        ck_assert_int_eq(ss_buf_printf(&t, "# TYPE up gauge\nup 1\n"), 0);
        ss_prom_server_publish(p, &t);
        ss_buf_reset(&t); /* the server serves its own copy */
        ck_assert_int_eq(ss_buf_printf(&t, "overwritten"), 0);
        http(ss_prom_server_port(p), "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof(resp));
        ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%s", resp);
        ck_assert_ptr_nonnull(
            strstr(resp, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        ck_assert_str_eq(body(resp), "# TYPE up gauge\nup 1\n");
        ss_prom_server_publish(p, &t);
        http(ss_prom_server_port(p), "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof(resp));
        ck_assert_str_eq(body(resp), "overwritten");
        ss_buf_free(&t);
        ss_prom_server_stop(p);
}
END_TEST

START_TEST(test_server_404_405)
{
        ss_prom_server *p = NULL;
        char resp[4096];

        ck_assert_int_eq(ss_prom_server_start("127.0.0.1:0", &p), 0);
        http(ss_prom_server_port(p), "GET / HTTP/1.0\r\n\r\n", resp, sizeof(resp));
        ck_assert_msg(strncmp(resp, "HTTP/1.1 404", 12) == 0, "%s", resp);
        http(ss_prom_server_port(p), "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", resp,
             sizeof(resp));
        ck_assert_msg(strncmp(resp, "HTTP/1.1 405", 12) == 0, "%s", resp);
        ck_assert_ptr_nonnull(strstr(resp, "Allow: GET, HEAD\r\n"));
        http(ss_prom_server_port(p), "HEAD /metrics HTTP/1.0\r\n\r\n", resp, sizeof(resp));
        ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%s", resp);
        ss_prom_server_stop(p);
}
END_TEST

START_TEST(test_server_bad_addresses)
{
        static const char *bad[] = {"",          "9464",          "localhost:9464",
                                    "127.0.0.1", "127.0.0.1:",    "127.0.0.1:99999",
                                    "1.2.3:80",  "127.0.0.1:80x", "[::1:80",
                                    "[::1]",     "[nope]:80",     "::1:80"};
        ss_prom_server *p = (ss_prom_server *)&p;

        for (size_t i = 0; i < SS_ELEMENTSOF(bad); i++)
                ck_assert_msg(ss_prom_server_start(bad[i], &p) == -EINVAL, "%s", bad[i]);
        ck_assert_ptr_eq(p, (ss_prom_server *)&p); /* ret written only on success */
        ss_prom_server_stop(NULL);
}
END_TEST

START_TEST(test_server_port_in_use)
{
        ss_prom_server *a = NULL, *b = NULL;
        char listen[32];

        ck_assert_int_eq(ss_prom_server_start("127.0.0.1:0", &a), 0);
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)ss_prom_server_port(a));
        ck_assert_int_lt(ss_prom_server_start(listen, &b), 0);
        ck_assert_ptr_null(b);
        ss_prom_server_stop(a);
}
END_TEST

/* Scrapes while the loop publishes: every body is one whole published text. */
typedef struct scraper {
        uint16_t port;
        atomic_bool stop;
        atomic_int scrapes;
        int torn;
} scraper;

static void *scrape_loop(void *arg)
{
        scraper *sc = arg;
        static char resp[4096];

        while (!atomic_load(&sc->stop)) {
                const char *b;

                http(sc->port, "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof(resp));
                b = body(resp);
                sc->torn += *b && !(strncmp(b, "up ", 3) == 0 && strlen(b) == 12);
                atomic_fetch_add(&sc->scrapes, 1);
        }
        return NULL;
}

START_TEST(test_server_publish_while_scraped)
{
        ss_prom_server *p = NULL;
        scraper sc = {0};
        pthread_t th;
        ss_buf t;

        ck_assert_int_eq(ss_prom_server_start("127.0.0.1:0", &p), 0);
        sc.port = ss_prom_server_port(p);
        ss_buf_init(&t, 64);
        ck_assert_int_eq(pthread_create(&th, NULL, scrape_loop, &sc), 0);
        for (int i = 0; i < 2000 || atomic_load(&sc.scrapes) < 20; i++) {
                ss_buf_reset(&t);
                ck_assert_int_eq(ss_buf_printf(&t, "up %08d\n", i), 0);
                ss_prom_server_publish(p, &t);
        }
        atomic_store(&sc.stop, true);
        pthread_join(th, NULL);
        ck_assert_int_eq(sc.torn, 0);
        ss_buf_free(&t);
        ss_prom_server_stop(p);
}
END_TEST

static void recv_timeout(int fd, long ms)
{
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

/* While 16 connections sit idle a 17th is not served; it is once one of them goes. */
START_TEST(test_server_connection_limit)
{
        static const char get[] = "GET /metrics HTTP/1.0\r\n\r\n";
        struct sockaddr_in a = {.sin_family = AF_INET};
        int fds[SS_PROM_CONNECTIONS + 1], last = SS_PROM_CONNECTIONS;
        ss_prom_server *p = NULL;
        char c[16];

        ck_assert_int_eq(ss_prom_server_start("127.0.0.1:0", &p), 0);
        a.sin_port = htons(ss_prom_server_port(p));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (size_t i = 0; i < SS_ELEMENTSOF(fds); i++) {
                fds[i] = socket(AF_INET, SOCK_STREAM, 0);
                ck_assert_int_eq(connect(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
                usleep(20000); /* accepted in order: the last one is the one over */
        }
        ck_assert_int_eq(write(fds[last], get, strlen(get)), (ssize_t)strlen(get));
        recv_timeout(fds[last], 300);
        ck_assert_int_eq(read(fds[last], c, sizeof(c)), -1);
        ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
        close(fds[0]);
        recv_timeout(fds[last], 5000);
        ck_assert_int_eq(read(fds[last], c, 12), 12);
        ck_assert_int_eq(memcmp(c, "HTTP/1.1 200", 12), 0);
        for (size_t i = 1; i < SS_ELEMENTSOF(fds); i++)
                close(fds[i]);
        ss_prom_server_stop(p);
}
END_TEST

START_TEST(test_server_ipv6)
{
        ss_prom_server *p = NULL;
        int r = ss_prom_server_start("[::1]:0", &p);

        /* a machine without IPv6 loopback cannot bind it; the address itself parsed */
        ck_assert_msg(r == 0 || r == -EADDRNOTAVAIL || r == -EIO, "%d", r);
        if (r == 0)
                ck_assert_uint_gt(ss_prom_server_port(p), 0);
        ss_prom_server_stop(p);
}
END_TEST

static Suite *prometheus_suite(void)
{
        Suite *s = suite_create("prometheus");
        TCase *tc = tcase_create("render");
        TCase *srv = tcase_create("server");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_counter_with_attributes);
        tcase_add_test(tc, test_gauges);
        tcase_add_test(tc, test_histogram);
        tcase_add_test(tc, test_names_and_units);
        tcase_add_test(tc, test_escaping_and_label_keys);
        tcase_add_test(tc, test_empty_and_resource);
        tcase_add_test(tc, test_delta_and_duplicates);
        tcase_add_test(tc, test_nobufs_leaves_out_alone);
        tcase_add_test(tc, test_name_too_long);
        suite_add_tcase(s, tc);
        tcase_add_test(srv, test_server_serves_published_text);
        tcase_add_test(srv, test_server_404_405);
        tcase_add_test(srv, test_server_bad_addresses);
        tcase_add_test(srv, test_server_port_in_use);
        tcase_add_test(srv, test_server_ipv6);
        tcase_add_test(srv, test_server_publish_while_scraped);
        tcase_add_test(srv, test_server_connection_limit);
        suite_add_tcase(s, srv);
        return s;
}

int main(void)
{
        return ss_check_run(prometheus_suite());
}
