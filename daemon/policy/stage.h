/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The policy stage: an ss_sink between the assembler and the export
 * pipeline that decides, once per trace, what leaves the daemon and how
 * each exporter sees it.
 *
 *   1. sampling (policy/sampling.h): the trace is kept or dropped whole;
 *   2. per exporter, a view: content (TRACE-MODEL.md's content keys, or the
 *      configured list) dropped from spans and events when the daemon,
 *      the exporter or the span's client says include_content=false (each
 *      can only tighten), then pattern redaction (policy/redact.h) of what
 *      remains, with the exporter's classes.
 *
 * Exporters with the same view share one copy of the spans; with a single
 * view the spans are changed in place. Loop thread only; never blocks.
 */

#include <stdbool.h>
#include <stddef.h>

#include "base/counters.h"
#include "export/pipeline.h"
#include "model/sink.h"
#include "policy/redact.h"
#include "policy/sampling.h"

#define SS_CONTENT_MAX_KEYS 64u

/* How one exporter sees traces. */
typedef struct ss_view_config {
        bool include_content; /* false: content keys dropped for this exporter */
        unsigned redact;      /* SS_REDACT_* classes applied for this exporter */
} ss_view_config;

typedef struct ss_policy_config {
        ss_sampling_config sampling;
        bool include_content; /* daemon-wide; false wins over every exporter */
        const char *content_keys[SS_CONTENT_MAX_KEYS]; /* none: TRACE-MODEL.md's list */
        size_t n_content_keys;
        ss_redact_config redaction;
        ss_view_config views[SS_PIPELINE_MAX_EXPORTERS]; /* per exporter, in pipeline order */
        size_t n_views;
} ss_policy_config;

typedef struct ss_policy ss_policy;

/*
 * A policy stage handing what it keeps to the exporters of out (borrowed).
 * 0, -ENOMEM, or -EINVAL with the reason (a bad redaction pattern, more
 * views than exporters) in err.
 */
int ss_policy_new(const ss_policy_config *cfg, ss_pipeline *out, ss_policy **ret, char *err,
                  size_t err_size);
void ss_policy_free(ss_policy *p); /* accepts NULL */

/* The sink the assembler hands traces to. */
ss_sink *ss_policy_sink(ss_policy *p);

/* An observer shown every kept trace before any view changes it (the tap of `sidespan
 * tail`); borrowed, NULL for none. Only its put() is called. */
void ss_policy_set_tap(ss_policy *p, ss_sink *tap);

/* True when s's attribute key is content under cfg (the configured list, or the default). */
bool ss_policy_content_key(const ss_policy_config *cfg, const msgpack_object_str *key);

/* "sampling.*", "content.*", "redaction.*" and "policy.*"; an ss_counters_fn. */
void ss_policy_counters(const void *policy, ss_counters *out);
