/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One metrics snapshot built by hand, with every shape the OTLP metrics
 * encoder writes: integer and double sums, monotonic and not, a gauge, a
 * histogram with bounds and min/max and one with no values, points with
 * several attribute sets (one value empty). test-otlp-metrics.c decodes it
 * with protobuf-c; otlp-metrics-dump.c writes it for otlp_metrics.py, which
 * checks the same values in the Python receivers. Change the three together.
 * Header-only, static data: valid for the whole program.
 */

#include "metrics/metrics.h"

#define FXM_START 1700000000000000000ull
#define FXM_TIME  1700000060000000000ull

static const ss_metric_attr fxm_resource[] = {
    {"service.name", "sidespand"},
    {"service.version", "0.1.0"},
    {"host.name", "build-host"},
};

static const ss_metric_attr fxm_attrs_otlp[] = {{"exporter", "otlp"}};
static const ss_metric_attr fxm_attrs_file[] = {{"exporter", "file"}, {"format", "json"}};
static const ss_metric_attr fxm_attrs_model[] = {
    {"gen_ai.system", "openai"},
    {"gen_ai.request.model", "gpt-4o"},
};
static const ss_metric_attr fxm_attrs_empty_value[] = {{"spool", ""}};

static const ss_metric_point fxm_spans_points[] = {
    {.attrs = fxm_attrs_otlp,
     .n_attrs = 1,
     .start_ns = FXM_START,
     .time_ns = FXM_TIME,
     .value = 42},
    {.attrs = fxm_attrs_file,
     .n_attrs = 2,
     .start_ns = FXM_START,
     .time_ns = FXM_TIME,
     .value = 9007199254740991.0}, /* 2^53 - 1: the largest exact integer */
};

static const ss_metric_point fxm_cost_points[] = {
    {.attrs = fxm_attrs_model,
     .n_attrs = 2,
     .start_ns = FXM_START,
     .time_ns = FXM_TIME,
     .value = 0.125},
};

static const ss_metric_point fxm_open_points[] = {
    {.start_ns = FXM_START, .time_ns = FXM_TIME, .value = -3},
};

static const ss_metric_point fxm_fill_points[] = {
    {.attrs = fxm_attrs_empty_value, .n_attrs = 1, .time_ns = FXM_TIME, .value = 0.5},
};

static const double fxm_bounds[] = {0.1, 1, 10};
static const uint64_t fxm_buckets_a[] = {1, 2, 2, 0};
static const uint64_t fxm_buckets_b[] = {0, 0, 0, 0};

static const ss_metric_point fxm_duration_points[] = {
    {.attrs = fxm_attrs_model,
     .n_attrs = 2,
     .start_ns = FXM_START,
     .time_ns = FXM_TIME,
     .count = 5,
     .sum = 7.5,
     .min = 0.05,
     .max = 4,
     .bucket_counts = fxm_buckets_a},
    {.attrs = fxm_attrs_otlp,
     .n_attrs = 1,
     .start_ns = FXM_START,
     .time_ns = FXM_TIME,
     .count = 0,
     .bucket_counts = fxm_buckets_b},
};

static const ss_metric fxm_metrics[] = {
    {.name = "sidespan.spans.exported",
     .description = "Spans handed to an exporter",
     .unit = "{span}",
     .kind = SS_METRIC_SUM,
     .monotonic = true,
     .is_int = true,
     .points = fxm_spans_points,
     .n_points = 2},
    {.name = "gen_ai.client.cost",
     .description = "Cost of model calls",
     .unit = "USD",
     .kind = SS_METRIC_SUM,
     .monotonic = true,
     .points = fxm_cost_points,
     .n_points = 1},
    {.name = "sidespan.traces.open",
     .description = "",
     .unit = "{trace}",
     .kind = SS_METRIC_SUM,
     .is_int = true,
     .points = fxm_open_points,
     .n_points = 1},
    {.name = "sidespan.spool.fill",
     .description = "Share of the spool in use",
     .unit = "1",
     .kind = SS_METRIC_GAUGE,
     .points = fxm_fill_points,
     .n_points = 1},
    {.name = "gen_ai.client.operation.duration",
     .description = "Model call duration",
     .unit = "s",
     .kind = SS_METRIC_HISTOGRAM,
     .bounds = fxm_bounds,
     .n_bounds = 3,
     .points = fxm_duration_points,
     .n_points = 2},
};

static const ss_metrics_snapshot fxm_snapshot = {
    .metrics = fxm_metrics,
    .n = sizeof(fxm_metrics) / sizeof(fxm_metrics[0]),
    .temporality = SS_TEMPORALITY_CUMULATIVE,
    .resource = fxm_resource,
    .n_resource = 3,
    .scope_name = "sidespand",
    .scope_version = "0.1.0",
};
