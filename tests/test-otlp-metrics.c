/* SPDX-License-Identifier: MIT */
#include "ss-check.h"
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fixture-metrics.h"
#include "metrics_service.pb-c.h"
#include "otlp/otlp.h"
#include "ss-buf.h"

/*
 * ss_otlp_metrics_encode: snapshots built by hand (fixture-metrics.h and a
 * few here), encoded, unpacked with protobuf-c's generated code, and every
 * field compared with what went in.
 */

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest Request;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistogramDataPoint;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;

#define REQUEST_FN(fn)                                                                             \
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__##fn
#define METRIC_CASE(x) OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_##x
#define NUMBER_CASE(x) OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_##x
#define HIST_CASE(x)   OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__##x
#define TEMPORALITY(x)                                                                             \
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_##x

/* ---- helpers ------------------------------------------------------------------------------ */

static Request *encode_decode(const ss_metrics_snapshot *s)
{
        Request *req;
        ss_buf b;

        ss_buf_init(&b, 1 << 20);
        ck_assert_int_eq(ss_otlp_metrics_encode(s, &b), 0);
        req = REQUEST_FN(unpack)(NULL, b.len, b.data);
        ck_assert_ptr_nonnull(req);
        ss_buf_free(&b);
        return req;
}

static void free_req(Request *req)
{
        REQUEST_FN(free_unpacked)(req, NULL);
}

/* Every string attribute as it went in, in order. */
static void assert_attrs(KeyValue *const *kv, size_t n, const ss_metric_attr *want, uint32_t n_want)
{
        ck_assert_uint_eq(n, n_want);
        for (size_t i = 0; i < n; i++) {
                ck_assert_str_eq(kv[i]->key, want[i].key);
                ck_assert_ptr_nonnull(kv[i]->value);
                ck_assert_int_eq(kv[i]->value->value_case,
                                 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
                ck_assert_str_eq(kv[i]->value->string_value, want[i].value);
        }
}

static void assert_number_points(NumberDataPoint *const *dp, size_t n, const ss_metric *m)
{
        ck_assert_uint_eq(n, m->n_points);
        for (size_t i = 0; i < n; i++) {
                const ss_metric_point *want = &m->points[i];

                assert_attrs(dp[i]->attributes, dp[i]->n_attributes, want->attrs, want->n_attrs);
                ck_assert_uint_eq(dp[i]->start_time_unix_nano, want->start_ns);
                ck_assert_uint_eq(dp[i]->time_unix_nano, want->time_ns);
                ck_assert_uint_eq(dp[i]->flags, 0);
                ck_assert_uint_eq(dp[i]->n_exemplars, 0);
                if (m->is_int) {
                        ck_assert_int_eq(dp[i]->value_case, NUMBER_CASE(AS_INT));
                        ck_assert_int_eq(dp[i]->as_int, (int64_t)want->value);
                } else {
                        ck_assert_int_eq(dp[i]->value_case, NUMBER_CASE(AS_DOUBLE));
                        ck_assert_double_eq(dp[i]->as_double, want->value);
                }
        }
}

static void assert_histogram_point(const HistogramDataPoint *dp, const ss_metric *m,
                                   const ss_metric_point *want)
{
        assert_attrs(dp->attributes, dp->n_attributes, want->attrs, want->n_attrs);
        ck_assert_uint_eq(dp->start_time_unix_nano, want->start_ns);
        ck_assert_uint_eq(dp->time_unix_nano, want->time_ns);
        ck_assert_uint_eq(dp->count, want->count);
        ck_assert_int_eq(dp->sum_value_case, HIST_CASE(SUM_VALUE_SUM));
        ck_assert_double_eq(dp->sum, want->sum);
        ck_assert_uint_eq(dp->n_explicit_bounds, m->n_bounds);
        for (uint32_t k = 0; k < m->n_bounds; k++)
                ck_assert_double_eq(dp->explicit_bounds[k], m->bounds[k]);
        ck_assert_uint_eq(dp->n_bucket_counts, m->n_bounds + 1);
        for (uint32_t k = 0; k <= m->n_bounds; k++)
                ck_assert_uint_eq(dp->bucket_counts[k], want->bucket_counts[k]);
        if (want->count > 0) {
                ck_assert_int_eq(dp->min_value_case, HIST_CASE(MIN_VALUE_MIN));
                ck_assert_int_eq(dp->max_value_case, HIST_CASE(MAX_VALUE_MAX));
                ck_assert_double_eq(dp->min, want->min);
                ck_assert_double_eq(dp->max, want->max);
        } else {
                ck_assert_int_eq(dp->min_value_case, HIST_CASE(MIN_VALUE__NOT_SET));
                ck_assert_int_eq(dp->max_value_case, HIST_CASE(MAX_VALUE__NOT_SET));
        }
        ck_assert_uint_eq(dp->flags, 0);
        ck_assert_uint_eq(dp->n_exemplars, 0);
}

/* One Metric against the ss_metric it came from, under the snapshot's temporality. */
static void assert_metric(const Metric *got, const ss_metric *m, int temporality)
{
        ck_assert_str_eq(got->name, m->name);
        ck_assert_str_eq(got->description, m->description);
        ck_assert_str_eq(got->unit, m->unit);
        ck_assert_uint_eq(got->n_metadata, 0);
        switch (m->kind) {
        case SS_METRIC_SUM:
                ck_assert_int_eq(got->data_case, METRIC_CASE(SUM));
                ck_assert_int_eq(got->sum->aggregation_temporality, temporality);
                ck_assert(got->sum->is_monotonic == m->monotonic);
                assert_number_points(got->sum->data_points, got->sum->n_data_points, m);
                break;
        case SS_METRIC_GAUGE:
                ck_assert_int_eq(got->data_case, METRIC_CASE(GAUGE));
                assert_number_points(got->gauge->data_points, got->gauge->n_data_points, m);
                break;
        case SS_METRIC_HISTOGRAM:
                ck_assert_int_eq(got->data_case, METRIC_CASE(HISTOGRAM));
                ck_assert_int_eq(got->histogram->aggregation_temporality, temporality);
                ck_assert_uint_eq(got->histogram->n_data_points, m->n_points);
                for (size_t i = 0; i < m->n_points; i++)
                        assert_histogram_point(got->histogram->data_points[i], m, &m->points[i]);
                break;
        default:
                ck_abort_msg("unknown kind %d", m->kind);
        }
}

/* The whole request against the snapshot. */
static void assert_snapshot(const Request *req, const ss_metrics_snapshot *s)
{
        const ScopeMetrics *sm;

        ck_assert_uint_eq(req->n_resource_metrics, 1);
        ck_assert_ptr_nonnull(req->resource_metrics[0]->resource);
        assert_attrs(req->resource_metrics[0]->resource->attributes,
                     req->resource_metrics[0]->resource->n_attributes, s->resource, s->n_resource);
        ck_assert_uint_eq(req->resource_metrics[0]->n_scope_metrics, 1);
        sm = req->resource_metrics[0]->scope_metrics[0];
        ck_assert_ptr_nonnull(sm->scope);
        ck_assert_str_eq(sm->scope->name, s->scope_name);
        ck_assert_str_eq(sm->scope->version, s->scope_version);
        ck_assert_uint_eq(sm->n_metrics, s->n);
        for (size_t i = 0; i < s->n; i++)
                assert_metric(sm->metrics[i], &s->metrics[i], s->temporality);
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST(test_encode_fixture)
{
        Request *req = encode_decode(&fxm_snapshot);

        assert_snapshot(req, &fxm_snapshot);
        ck_assert_int_eq(TEMPORALITY(CUMULATIVE), SS_TEMPORALITY_CUMULATIVE);
        /* spot checks that do not go through the fixture's own numbers */
        ck_assert_int_eq(
            req->resource_metrics[0]->scope_metrics[0]->metrics[0]->sum->data_points[1]->as_int,
            9007199254740991ll);
        ck_assert_int_eq(
            req->resource_metrics[0]->scope_metrics[0]->metrics[2]->sum->data_points[0]->as_int,
            -3);
        ck_assert(!req->resource_metrics[0]->scope_metrics[0]->metrics[2]->sum->is_monotonic);
        free_req(req);
}
END_TEST

/* Delta temporality, an integer gauge, a histogram without bounds (one bucket), no
 * resource, NULL strings (read as ""). */
START_TEST(test_encode_delta_and_edges)
{
        static const uint64_t one_bucket[] = {3};
        static const ss_metric_attr a[] = {{"k1", "v1"}, {"k2", "v2"}, {"k3", "v3"}};
        const ss_metric_point gp[] = {
            {.attrs = a, .n_attrs = 3, .time_ns = 5, .value = 12},
            {.attrs = a, .n_attrs = 1, .time_ns = 6, .value = 0},
        };
        const ss_metric_point hp[] = {
            {.start_ns = 1,
             .time_ns = 2,
             .count = 3,
             .sum = -1.5,
             .min = -2,
             .max = 0.25,
             .bucket_counts = one_bucket},
        };
        const ss_metric m[] = {
            {.name = "g",
             .description = "d",
             .unit = "By",
             .kind = SS_METRIC_GAUGE,
             .is_int = true,
             .points = gp,
             .n_points = 2},
            {.name = "h",
             .description = "",
             .unit = "s",
             .kind = SS_METRIC_HISTOGRAM,
             .points = hp,
             .n_points = 1},
            {.name = "c", .description = "", .unit = "", .kind = SS_METRIC_SUM, .monotonic = true},
        };
        const ss_metrics_snapshot s = {.metrics = m,
                                       .n = 3,
                                       .temporality = SS_TEMPORALITY_DELTA,
                                       .scope_name = "sidespand",
                                       .scope_version = "1"};
        Request *req = encode_decode(&s);
        const Metric *c;

        assert_snapshot(req, &s);
        c = req->resource_metrics[0]->scope_metrics[0]->metrics[2];
        ck_assert_int_eq(c->sum->aggregation_temporality, TEMPORALITY(DELTA));
        ck_assert_uint_eq(c->sum->n_data_points, 0);
        free_req(req);

        /* NULL strings: a metric and a scope with no name still encode, as "" */
        const ss_metric nameless = {.kind = SS_METRIC_GAUGE};
        const ss_metrics_snapshot s2 = {.metrics = &nameless, .n = 1, .temporality = 2};

        req = encode_decode(&s2);
        c = req->resource_metrics[0]->scope_metrics[0]->metrics[0];
        ck_assert_str_eq(c->name, "");
        ck_assert_str_eq(c->unit, "");
        ck_assert_int_eq(c->data_case, METRIC_CASE(GAUGE));
        ck_assert_str_eq(req->resource_metrics[0]->scope_metrics[0]->scope->name, "");
        free_req(req);
}
END_TEST

START_TEST(test_encode_empty)
{
        const ss_metrics_snapshot s = {.temporality = SS_TEMPORALITY_CUMULATIVE,
                                       .resource = fxm_resource,
                                       .n_resource = 3,
                                       .scope_name = "sidespand",
                                       .scope_version = "0.1.0"};
        Request *req = encode_decode(&s);

        /* still one resource and scope: who is reporting, with nothing to report */
        assert_snapshot(req, &s);
        ck_assert_uint_eq(req->resource_metrics[0]->scope_metrics[0]->n_metrics, 0);
        free_req(req);
}
END_TEST

START_TEST(test_unknown_kind)
{
        const ss_metric m = {.name = "x", .kind = (ss_metric_kind)9};
        const ss_metrics_snapshot s = {.metrics = &m, .n = 1, .temporality = 2};
        ss_buf b;

        ss_buf_init(&b, 4096);
        ck_assert_int_eq(ss_otlp_metrics_encode(&s, &b), -EINVAL);
        ck_assert_uint_eq(b.len, 0);
        ss_buf_free(&b);
}
END_TEST

START_TEST(test_enobufs_and_append)
{
        Request *req;
        size_t need;
        ss_buf b;

        ss_buf_init(&b, 16);
        ck_assert_int_eq(ss_otlp_metrics_encode(&fxm_snapshot, &b), -ENOBUFS);
        ck_assert_uint_eq(b.len, 0);
        ss_buf_free(&b);

        /* appends after what is there */
        ss_buf_init(&b, 1 << 16);
        ck_assert_int_eq(ss_buf_append(&b, "xyz", 3), 0);
        ck_assert_int_eq(ss_otlp_metrics_encode(&fxm_snapshot, &b), 0);
        ck_assert_mem_eq(b.data, "xyz", 3);
        req = REQUEST_FN(unpack)(NULL, b.len - 3, b.data + 3);
        ck_assert_ptr_nonnull(req);
        assert_snapshot(req, &fxm_snapshot);
        free_req(req);
        need = b.len - 3;
        ss_buf_free(&b);

        /* too small by one byte, then exactly enough */
        ss_buf_init(&b, need - 1);
        ck_assert_int_eq(ss_otlp_metrics_encode(&fxm_snapshot, &b), -ENOBUFS);
        ck_assert_uint_eq(b.len, 0);
        ss_buf_free(&b);
        ss_buf_init(&b, need);
        ck_assert_int_eq(ss_otlp_metrics_encode(&fxm_snapshot, &b), 0);
        ck_assert_uint_eq(b.len, need);
        ss_buf_free(&b);
}
END_TEST

static Suite *otlp_metrics_suite(void)
{
        Suite *s = suite_create("otlp-metrics");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_encode_fixture);
        tcase_add_test(tc, test_encode_delta_and_edges);
        tcase_add_test(tc, test_encode_empty);
        tcase_add_test(tc, test_unknown_kind);
        tcase_add_test(tc, test_enobufs_and_append);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(otlp_metrics_suite());
}
