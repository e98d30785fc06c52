/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The metrics stage's configuration (metrics/stage.h): the [metrics] section,
 * its flags and the OpenTelemetry metrics variables, into cfg->metrics and
 * the spec of its OTLP exporter (cfg->metrics_spec, named "metrics", whose
 * HTTP endpoint gets /v1/metrics). Errors name where the value came from.
 * Main thread, at start.
 */

#include <stdio.h>

#include "conf/config.h"

/* The defaults: on, 60 s, cumulative, no export, no scrape endpoint. */
void ss_conf_metrics_init(ss_config *cfg);

/* One key of [metrics]. 0; -EINVAL printed; -ENOENT for a key that does not exist. */
int ss_conf_metrics_key(ss_config *cfg, const char *key, const char *value, const char *where);

/* OTEL_EXPORTER_OTLP_METRICS_* (the general OTEL_EXPORTER_OTLP_ENDPOINT too, unless
 * OTEL_METRICS_EXPORTER leaves otlp out), OTEL_METRIC_EXPORT_INTERVAL, OTEL_METRICS_EXPORTER,
 * OTEL_EXPORTER_PROMETHEUS_HOST and _PORT, SIDESPAN_METRICS. 0 or -EINVAL printed. */
int ss_conf_metrics_env(ss_config *cfg);

/* The flags: --metrics-endpoint, --metrics-protocol, --metrics-interval,
 * --metrics-temporality, --prometheus-listen (name without dashes) and --no-metrics (value
 * NULL). 0 or -EINVAL printed. */
int ss_conf_metrics_flag(ss_config *cfg, const char *name, const char *value);

/* Resolve the exporter (when an endpoint is set) and link the strings. 0 or -EINVAL
 * printed. */
int ss_conf_metrics_finish(ss_config *cfg);

/* The [metrics] section of --check-config. */
void ss_conf_metrics_print(FILE *out, const ss_config *cfg);

void ss_conf_metrics_free(ss_config *cfg);
