/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The export pipeline: the last stage's entrance. It owns the exporters,
 * hands every trace it is given to each of them (each has its own queue, so
 * a slow backend never holds up a fast one), flushes them on a client's
 * FLUSH, exposes their counters, and on shutdown drains them: flush, wait
 * while any is busy up to a deadline, then destroy them with a summary of
 * what each delivered. Loop thread only; nothing blocks.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/counters.h"
#include "export/exporter-grpc.h"
#include "export/exporter-http.h"
#include "export/exporter.h"
#include "model/sink.h"

enum {
        SS_EXPORT_CONSOLE = 1u << 0,
        SS_EXPORT_FILE = 1u << 1,
        SS_EXPORT_OTLP_HTTP = 1u << 2,
        SS_EXPORT_OTLP_GRPC = 1u << 3,
};

#define SS_PIPELINE_MAX_EXPORTERS 8u

/* One exporter to build. */
typedef struct ss_exporter_def {
        const char *name;    /* in logs and counters: exporter.<name>.* */
        unsigned kind;       /* one SS_EXPORT_* */
        ss_http_config http; /* otlp-http; its batching numbers serve every kind */
        ss_grpc_config grpc; /* otlp-grpc */
        const char *file_path;
        const char *why; /* how the protocol was chosen, for the start-up line, or NULL */
} ss_exporter_def;

typedef struct ss_export_config {
        ss_exporter_def defs[SS_PIPELINE_MAX_EXPORTERS];
        size_t n;
        unsigned exporters;       /* the SS_EXPORT_* kinds among defs */
        bool exporters_defaulted; /* nothing was configured: the console */
        int console_fd;           /* standard output, normally */
} ss_export_config;

typedef struct ss_pipeline ss_pipeline;

/* An empty pipeline; 0 or -ENOMEM. */
int ss_pipeline_new(uv_loop_t *loop, ss_pipeline **ret);

/* Build the exporters of cfg and add them, logging what is exported where. 0 or the first
 * exporter's error (logged); what was built stays added. */
int ss_pipeline_add_configured(ss_pipeline *p, const ss_export_config *cfg);

/* Add an exporter, which the pipeline owns from now on (destroyed at drain). 0 or -E2BIG
 * past SS_PIPELINE_MAX_EXPORTERS (e is then destroyed). */
int ss_pipeline_add(ss_pipeline *p, ss_exporter *e);

/* The sink the stage before hands traces to. */
ss_sink *ss_pipeline_sink(ss_pipeline *p);

/* Exporters added, numbered from 0 in the order added (the configuration's order). */
size_t ss_pipeline_exporters(const ss_pipeline *p);

/* Hand spans to exporter i alone (the policy stage, when exporters see a trace
 * differently). The caller keeps its references. */
void ss_pipeline_put_one(ss_pipeline *p, size_t i, ss_span *const *spans, size_t n);

/* Hand exporter i a body of its own (ss_exporter_ops.push; the metrics stage's requests):
 * takes body's bytes. -ENOTSUP (body freed) for an exporter that takes none. */
int ss_pipeline_push_one(ss_pipeline *p, size_t i, ss_buf *body, size_t n);

/* True while any exporter holds spans not yet delivered or given up. */
bool ss_pipeline_busy(const ss_pipeline *p);

/* "exporter.<name>.<counter>" for every exporter; an ss_counters_fn. */
void ss_pipeline_counters(const void *pipeline, ss_counters *out);

/* The fullest exporter's memory, in percent of its bound (ss_exporter_ops.pressure); the
 * ingest stage's backpressure reads it through main.c. */
unsigned ss_pipeline_pressure(const void *pipeline);

/*
 * Flush every exporter and wait up to timeout_ms while any is busy, then
 * destroy them (what is left counts as not delivered, and is logged) and
 * free the pipeline; done(ctx), if not NULL, runs once everything is closed.
 */
void ss_pipeline_drain(ss_pipeline *p, uint32_t timeout_ms, void (*done)(void *ctx), void *ctx);
