/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The metrics registry: instruments (counters, gauges, histograms) whose
 * points are kept per attribute set, aggregated in the daemon and read as
 * a snapshot (metrics/metrics.h) at each collection. Each instrument holds
 * at most max_series attribute sets; past them a recording goes to one
 * overflow series with the single attribute otel.metric.overflow=true, as
 * the OpenTelemetry SDK specification has it, so memory stays bounded
 * whatever attribute values clients send. Cumulative temporality keeps the
 * sums since start; delta resets them at each collection. Loop thread only.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/metrics.h"

#define SS_METRICS_MAX_SERIES_DEFAULT 2000u
/* Attributes of one recording, and the bytes of their keys and values. */
#define SS_METRICS_MAX_ATTRS      16u
#define SS_METRICS_MAX_ATTR_BYTES 1024u

typedef struct ss_registry ss_registry;
typedef struct ss_instrument ss_instrument;

/* A registry; temporality SS_TEMPORALITY_*; max_series per instrument (0: the default).
 * The resource and scope are borrowed. NULL on out-of-memory. */
ss_registry *ss_registry_new(int temporality, uint32_t max_series, const ss_metric_attr *resource,
                             uint32_t n_resource, const char *scope_name,
                             const char *scope_version);
void ss_registry_free(ss_registry *r); /* accepts NULL */

/* Instruments, owned by the registry; strings and bounds are borrowed (static). NULL on
 * out-of-memory. */
ss_instrument *ss_registry_counter(ss_registry *r, const char *name, const char *description,
                                   const char *unit, bool is_int);
ss_instrument *ss_registry_gauge(ss_registry *r, const char *name, const char *description,
                                 const char *unit, bool is_int);
ss_instrument *ss_registry_histogram(ss_registry *r, const char *name, const char *description,
                                     const char *unit, const double *bounds, uint32_t n_bounds);

/* Record v under attrs: a counter adds it, a gauge takes it, a histogram counts it in its
 * bucket. Attributes past SS_METRICS_MAX_ATTRS or SS_METRICS_MAX_ATTR_BYTES are cut; a new
 * series past max_series goes to the overflow series. -ENOMEM (nothing recorded). */
int ss_instrument_record(ss_instrument *i, double v, const ss_metric_attr *attrs, uint32_t n_attrs);

/* A counter read from elsewhere (the daemon's STATS): total is its value since it started,
 * and the sum grows by what it gained since the last observation (all of it when it went
 * back: it restarted). A gauge takes total. -ENOMEM (nothing recorded). */
int ss_instrument_observe(ss_instrument *i, double total, const ss_metric_attr *attrs,
                          uint32_t n_attrs);

/* Recordings that went to an overflow series, over all instruments. */
uint64_t ss_registry_overflows(const ss_registry *r);

/* Read every instrument into *ret at now_ns (valid until the next collect, reset or
 * free). 0 or -ENOMEM. */
int ss_registry_collect(ss_registry *r, uint64_t now_ns, ss_metrics_snapshot *ret);

/* Delta temporality, once a collection has been read: sums and histograms start again
 * from zero at now_ns; gauges keep their last value. */
void ss_registry_reset(ss_registry *r, uint64_t now_ns);
