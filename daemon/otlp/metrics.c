/* SPDX-License-Identifier: MIT */
#include "otlp/otlp.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "metrics_service.pb-c.h"

/*
 * The OTLP metrics encoder, built like the trace encoder (protobuf.c): the
 * request tree lives in a scratch arena, points at the snapshot's strings
 * and arrays in place (protobuf-c only reads them while packing), is packed
 * once into the caller's ss_buf and dropped.
 */

#define REQUEST_FN(fn)                                                                             \
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__##fn

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest Request;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__Sum Sum;
typedef Opentelemetry__Proto__Metrics__V1__Gauge Gauge;
typedef Opentelemetry__Proto__Metrics__V1__Histogram Histogram;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistogramDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__AggregationTemporality Temporality;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

/* protobuf-c skips a oneof string that is its shared empty string; an empty
 * attribute value is still a value, so it points here instead. */
static const char empty_value[1];

/* protobuf-c's strings are char *; it never writes through them. NULL reads as "". */
static char *str(const char *s)
{
        return s ? (char *)s : (char *)protobuf_c_empty_string;
}

/* ---- attributes ------------------------------------------------------------------------- */

static int attr_list(ss_arena *a, const ss_metric_attr *src, uint32_t n, KeyValue ***ret,
                     size_t *ret_n)
{
        KeyValue **p = ss_arena_array(a, n, sizeof(*p));
        KeyValue *kv = ss_arena_array(a, n, sizeof(*kv));
        AnyValue *v = ss_arena_array(a, n, sizeof(*v));

        if (n && (!p || !kv || !v))
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
                v[i] = (AnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
                v[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                v[i].string_value =
                    src[i].value && src[i].value[0] ? (char *)src[i].value : (char *)empty_value;
                kv[i] = (KeyValue)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
                kv[i].key = str(src[i].key);
                kv[i].value = &v[i];
                p[i] = &kv[i];
        }
        *ret = p;
        *ret_n = n;
        return 0;
}

/* ---- points ----------------------------------------------------------------------------- */

/* An integer value as as_int: exact below 2^53 (metrics.h), clamped beyond int64 (a cast
 * of an out-of-range double is undefined), 0 for NaN. */
static int64_t as_int64(double v)
{
        if (isnan(v))
                return 0;
        if (v >= 0x1p63)
                return INT64_MAX;
        if (v < -0x1p63)
                return INT64_MIN;
        return (int64_t)v;
}

static int number_points(ss_arena *a, const ss_metric *m, NumberDataPoint ***ret, size_t *ret_n)
{
        NumberDataPoint **p = ss_arena_array(a, m->n_points, sizeof(*p));
        NumberDataPoint *dp = ss_arena_array(a, m->n_points, sizeof(*dp));

        if (m->n_points && (!p || !dp))
                return -ENOMEM;
        for (size_t i = 0; i < m->n_points; i++) {
                const ss_metric_point *src = &m->points[i];

                dp[i] = (NumberDataPoint)OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
                dp[i].start_time_unix_nano = src->start_ns;
                dp[i].time_unix_nano = src->time_ns;
                if (m->is_int) {
                        dp[i].value_case =
                            OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
                        dp[i].as_int = as_int64(src->value);
                } else {
                        dp[i].value_case =
                            OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
                        dp[i].as_double = src->value;
                }
                if (attr_list(a, src->attrs, src->n_attrs, &dp[i].attributes, &dp[i].n_attributes) <
                    0)
                        return -ENOMEM;
                p[i] = &dp[i];
        }
        *ret = p;
        *ret_n = m->n_points;
        return 0;
}

/* One HistogramDataPoint; its bounds and bucket counts are the snapshot's arrays. */
static int histogram_point(ss_arena *a, HistogramDataPoint *dp, const ss_metric *m,
                           const ss_metric_point *src)
{
        *dp = (HistogramDataPoint)OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
        dp->start_time_unix_nano = src->start_ns;
        dp->time_unix_nano = src->time_ns;
        dp->count = src->count;
        dp->sum_value_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_VALUE_SUM;
        dp->sum = src->sum;
        if (src->bucket_counts) {
                dp->bucket_counts = (uint64_t *)src->bucket_counts;
                dp->n_bucket_counts = (size_t)m->n_bounds + 1;
                dp->explicit_bounds = (double *)m->bounds;
                dp->n_explicit_bounds = m->bounds ? m->n_bounds : 0;
        }
        /* min and max of no values mean nothing: OTLP leaves them unset. */
        if (src->count > 0) {
                dp->min_value_case =
                    OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MIN_VALUE_MIN;
                dp->min = src->min;
                dp->max_value_case =
                    OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MAX_VALUE_MAX;
                dp->max = src->max;
        }
        return attr_list(a, src->attrs, src->n_attrs, &dp->attributes, &dp->n_attributes);
}

static int histogram_points(ss_arena *a, const ss_metric *m, HistogramDataPoint ***ret,
                            size_t *ret_n)
{
        HistogramDataPoint **p = ss_arena_array(a, m->n_points, sizeof(*p));
        HistogramDataPoint *dp = ss_arena_array(a, m->n_points, sizeof(*dp));

        if (m->n_points && (!p || !dp))
                return -ENOMEM;
        for (size_t i = 0; i < m->n_points; i++) {
                if (histogram_point(a, &dp[i], m, &m->points[i]) < 0)
                        return -ENOMEM;
                p[i] = &dp[i];
        }
        *ret = p;
        *ret_n = m->n_points;
        return 0;
}

/* ---- metrics ---------------------------------------------------------------------------- */

static int metric_sum(ss_arena *a, Metric *out, const ss_metric *m, int temporality)
{
        Sum *sum = ss_arena_alloc(a, sizeof(*sum));

        if (!sum)
                return -ENOMEM;
        *sum = (Sum)OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
        sum->aggregation_temporality = (Temporality)temporality;
        sum->is_monotonic = m->monotonic;
        out->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        out->sum = sum;
        return number_points(a, m, &sum->data_points, &sum->n_data_points);
}

static int metric_gauge(ss_arena *a, Metric *out, const ss_metric *m)
{
        Gauge *g = ss_arena_alloc(a, sizeof(*g));

        if (!g)
                return -ENOMEM;
        *g = (Gauge)OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
        out->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        out->gauge = g;
        return number_points(a, m, &g->data_points, &g->n_data_points);
}

static int metric_histogram(ss_arena *a, Metric *out, const ss_metric *m, int temporality)
{
        Histogram *h = ss_arena_alloc(a, sizeof(*h));

        if (!h)
                return -ENOMEM;
        *h = (Histogram)OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT;
        h->aggregation_temporality = (Temporality)temporality;
        out->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
        out->histogram = h;
        return histogram_points(a, m, &h->data_points, &h->n_data_points);
}

static int metric(ss_arena *a, Metric *out, const ss_metric *m, int temporality)
{
        *out = (Metric)OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
        out->name = str(m->name);
        out->description = str(m->description);
        out->unit = str(m->unit);
        switch (m->kind) {
        case SS_METRIC_SUM:
                return metric_sum(a, out, m, temporality);
        case SS_METRIC_GAUGE:
                return metric_gauge(a, out, m);
        case SS_METRIC_HISTOGRAM:
                return metric_histogram(a, out, m, temporality);
        }
        return -EINVAL;
}

/* ---- request ---------------------------------------------------------------------------- */

static ScopeMetrics *scope_metrics(ss_arena *a, const ss_metrics_snapshot *s)
{
        ScopeMetrics *sm = ss_arena_alloc(a, sizeof(*sm));
        Scope *sc = ss_arena_alloc(a, sizeof(*sc));
        Metric **p = ss_arena_array(a, s->n, sizeof(*p));

        if (!sm || !sc || (s->n && !p))
                return NULL;
        *sc = (Scope)OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
        sc->name = str(s->scope_name);
        sc->version = str(s->scope_version);
        *sm = (ScopeMetrics)OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
        sm->scope = sc;
        sm->metrics = p;
        sm->n_metrics = s->n;
        return sm;
}

static int add_metrics(ss_arena *a, ScopeMetrics *sm, const ss_metrics_snapshot *s)
{
        Metric *m = ss_arena_array(a, s->n, sizeof(*m));
        int r;

        if (s->n && !m)
                return -ENOMEM;
        for (size_t i = 0; i < s->n; i++) {
                r = metric(a, &m[i], &s->metrics[i], s->temporality);
                if (r < 0)
                        return r;
                sm->metrics[i] = &m[i];
        }
        return 0;
}

/* One ResourceMetrics (the daemon's resource) holding one ScopeMetrics. */
static int build_request(ss_arena *a, const ss_metrics_snapshot *s, Request *req)
{
        ResourceMetrics *rm = ss_arena_alloc(a, sizeof(*rm));
        ResourceMetrics **rmp = ss_arena_alloc(a, sizeof(*rmp));
        Resource *res = ss_arena_alloc(a, sizeof(*res));
        ScopeMetrics **smp = ss_arena_alloc(a, sizeof(*smp));

        if (!rm || !rmp || !res || !smp)
                return -ENOMEM;
        *res = (Resource)OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
        if (attr_list(a, s->resource, s->n_resource, &res->attributes, &res->n_attributes) < 0)
                return -ENOMEM;
        smp[0] = scope_metrics(a, s);
        if (!smp[0])
                return -ENOMEM;
        *rm = (ResourceMetrics)OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
        rm->resource = res;
        rm->scope_metrics = smp;
        rm->n_scope_metrics = 1;
        rmp[0] = rm;
        req->resource_metrics = rmp;
        req->n_resource_metrics = 1;
        return add_metrics(a, smp[0], s);
}

static int encode(const ss_metrics_snapshot *s, ss_buf *out, bool json)
{
        Request req =
            OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
        ss_arena a = {0};
        size_t size;
        int r;

        r = build_request(&a, s, &req);
        if (r >= 0 && json)
                r = ss_otlp_pb_json(&req.base, out);
        else if (r >= 0) {
                size = REQUEST_FN(get_packed_size)(&req);
                r = ss_buf_reserve(out, size);
                if (r >= 0)
                        out->len += REQUEST_FN(pack)(&req, out->data + out->len);
        }
        ss_arena_free(&a);
        return r;
}

int ss_otlp_metrics_encode(const ss_metrics_snapshot *s, ss_buf *out)
{
        return encode(s, out, false);
}

int ss_otlp_metrics_encode_json(const ss_metrics_snapshot *s, ss_buf *out)
{
        return encode(s, out, true);
}
