/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The metrics stage: GenAI metrics derived from every finished span, before
 * sampling and content removal (metrics/genai.c), the daemon's own health
 * read from its counters at each collection (metrics/health.c), and the
 * per-model headline `sidespan status` shows (metrics/headline.c). Every
 * interval the registry is collected: the snapshot goes, encoded as an OTLP
 * ExportMetricsServiceRequest, to the metrics exporter (an OTLP/HTTP or
 * OTLP/gRPC exporter of export/, with its retries and spool), and, rendered
 * as Prometheus text, to the scrape endpoint.
 *
 * The assembler shows each finished span to ss_metrics_span() through the
 * observer main.c sets (trace/ knows nothing of metrics/). Loop thread only;
 * nothing blocks (the scrape endpoint has its own thread).
 */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/counters.h"
#include "export/pipeline.h"
#include "metrics/metrics.h"
#include "model/span.h"

#define SS_METRICS_INTERVAL_MS_DEFAULT 60000u
#define SS_METRICS_NAME                "metrics" /* the exporter's, in logs and counters */

typedef struct ss_metrics_config {
        bool enabled;                  /* derive metrics from spans; default true */
        uint64_t interval_ms;          /* export and scrape refresh; default 60000 */
        int temporality;               /* SS_TEMPORALITY_* of the OTLP export; default cumulative */
        uint32_t max_series;           /* attribute sets per instrument; 0: the default (2000) */
        const char *prometheus_listen; /* "HOST:PORT" of the scrape endpoint; NULL: none */
        bool export_otlp;              /* exporter below is configured */
        ss_exporter_def exporter;      /* SS_EXPORT_OTLP_HTTP (endpoint the full .../v1/metrics URL)
                                          or SS_EXPORT_OTLP_GRPC; name SS_METRICS_NAME */
} ss_metrics_config;

/* Fill cfg with the defaults: enabled, 60 s, cumulative, no export, no scrape endpoint. */
void ss_metrics_config_defaults(ss_metrics_config *cfg);

typedef struct ss_metrics ss_metrics;

/*
 * A new stage (cfg is copied; its strings must outlive the stage). health
 * reads every counter of the daemon (ctx its argument) at each collection;
 * NULL: no health metrics. 0, or -errno logged: the exporter or the scrape
 * endpoint could not start. Loop thread.
 */
int ss_metrics_new(uv_loop_t *loop, const ss_metrics_config *cfg, ss_counters_fn health,
                   const void *health_ctx, ss_metrics **ret);

/* One finished span (ended, whole or orphaned), roll-ups applied; an observer of the
 * assembler. Does nothing when the stage is not enabled. */
void ss_metrics_span(void *metrics, const ss_span *s);

/* The headline counters (genai.model.<model>.*) and the stage's own; an ss_counters_fn. */
void ss_metrics_counters(const void *metrics, ss_counters *out);

/* The last collection, exported, then the exporter drained for at most timeout_ms; done(ctx)
 * once everything is closed and m freed. Accepts NULL (done is called at once). */
void ss_metrics_drain(ss_metrics *m, uint32_t timeout_ms, void (*done)(void *ctx), void *ctx);
