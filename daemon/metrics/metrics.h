/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A snapshot of the daemon's metrics: what every metrics output reads (the
 * OTLP encoder in otlp/metrics.c, the Prometheus text in
 * metrics/prometheus.c). The registry (metrics/registry.c) builds one at
 * each collection; a snapshot owns nothing it points to and is valid until
 * the registry's next collection. Plain data: any thread may read a
 * snapshot the loop has handed it.
 *
 * The shapes follow OTLP's data model (opentelemetry.proto.metrics.v1): a
 * metric has a name, a description, a unit and one kind of points; points
 * carry string attributes (every attribute sidespand derives is a string).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ss_metric_kind {
        SS_METRIC_SUM = 1,       /* Sum: a counter (monotonic) or an up-down sum */
        SS_METRIC_GAUGE = 2,     /* Gauge: the value at time_ns */
        SS_METRIC_HISTOGRAM = 3, /* Histogram with explicit bounds */
} ss_metric_kind;

/* OTLP's AggregationTemporality values. */
enum {
        SS_TEMPORALITY_DELTA = 1,
        SS_TEMPORALITY_CUMULATIVE = 2,
};

typedef struct ss_metric_attr {
        const char *key;
        const char *value;
} ss_metric_attr;

typedef struct ss_metric_point {
        const ss_metric_attr *attrs;
        uint32_t n_attrs;
        uint64_t start_ns; /* cumulative: when the series began; delta: the last collection */
        uint64_t time_ns;  /* this collection */
        /* SUM and GAUGE: value (is_int on the metric: an integer, exact below 2^53) */
        double value;
        /* HISTOGRAM */
        uint64_t count;
        double sum;
        double min, max;               /* of the recorded values; meaningful when count > 0 */
        const uint64_t *bucket_counts; /* n_bounds + 1: (-inf, b0], (b0, b1], ..., (bn-1, +inf) */
} ss_metric_point;

typedef struct ss_metric {
        const char *name; /* OTel name, e.g. "gen_ai.client.token.usage" */
        const char *description;
        const char *unit; /* UCUM, e.g. "s", "{token}", "USD" */
        ss_metric_kind kind;
        bool monotonic;       /* SUM: a counter */
        bool is_int;          /* SUM and GAUGE: integer values (asInt in OTLP) */
        const double *bounds; /* HISTOGRAM: explicit bucket bounds, ascending */
        uint32_t n_bounds;
        const ss_metric_point *points;
        size_t n_points;
} ss_metric;

typedef struct ss_metrics_snapshot {
        const ss_metric *metrics;
        size_t n;
        int temporality; /* SS_TEMPORALITY_* of every SUM and HISTOGRAM */
        /* The daemon's own resource (service.name=sidespand, host, version) and scope. */
        const ss_metric_attr *resource;
        uint32_t n_resource;
        const char *scope_name;
        const char *scope_version;
} ss_metrics_snapshot;
