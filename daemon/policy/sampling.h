/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Daemon-side sampling of whole traces.
 *
 * Head: consistent probability sampling on the trace id (the low 56 bits
 * against a threshold, common/ss-id.h, as libsidespan does), at the
 * stricter of the daemon's rate and the client's HELLO sample_rate; a span
 * whose parent is remote follows that parent's sampled flag. The assembler
 * decides when a trace's first span starts and marks its spans head_drop;
 * with no tail policy such a trace is discarded at once and costs little.
 *
 * Tail: when a trace (or a part of it, at the assembler's memory bounds) is
 * handed on, a trace the head dropped is kept if any span is ERROR, if its
 * root took longer than a threshold, or if a span carries a listed
 * attribute value; tail-kept traces are capped per service per second. A
 * decision made before the trace's root was seen (an early decision) is
 * remembered, so later parts follow it and the root is marked
 * sidespan.sampling.early_decision=true. Loop thread only; never blocks.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/counters.h"
#include "model/span.h"

#define SS_TAIL_MAX_MATCHES 16u

typedef struct ss_tail_match {
        const char *key;   /* an attribute of any span of the trace */
        const char *value; /* its value as text (strings, integers, booleans, doubles) */
} ss_tail_match;

typedef struct ss_sampling_config {
        double rate; /* head, daemon-wide: 0..1 */
        bool keep_errors;
        uint64_t keep_slower_than_ms; /* the root's duration; 0: off */
        ss_tail_match match[SS_TAIL_MAX_MATCHES];
        size_t n_match;
        uint32_t max_kept_per_second; /* tail-kept traces per service per second; 0: no cap */
        uint32_t remember;            /* early decisions remembered for a trace's later parts */
} ss_sampling_config;

typedef struct ss_sampling_stats {
        uint64_t kept_head;      /* traces (parts) kept by the head decision */
        uint64_t kept_error;     /* ... rescued by a tail policy: an ERROR span */
        uint64_t kept_latency;   /* ... the root's duration */
        uint64_t kept_attribute; /* ... an attribute value */
        uint64_t capped;         /* tail-kept traces over max_kept_per_second: dropped */
        uint64_t dropped_traces; /* traces (parts) dropped */
        uint64_t dropped_spans;
        uint64_t early;    /* decisions made before the root was seen */
        uint64_t followed; /* later parts that followed a remembered decision */
} ss_sampling_stats;

typedef struct ss_sampler ss_sampler;

/* True when any tail policy is on (head-dropped traces must then be assembled whole). */
bool ss_sampling_tail_active(const ss_sampling_config *c);

/*
 * The head decision for a trace whose first span is seen: flags are that
 * span's OTLP flags (a remote parent's sampled flag in bit 0, with
 * HAS_IS_REMOTE and IS_REMOTE set); rates are clamped to [0, 1].
 */
bool ss_sampling_head_keep(const uint8_t *trace_id, double daemon_rate, double client_rate,
                           uint32_t flags, bool has_parent);

/* True when s is the root of its trace here: no parent, or a remote one. */
bool ss_span_is_local_root(const ss_span *s);

/*
 * The tracestate ts (len bytes) with the "ot" entry's th sub-key set to
 * th_hex (NULL: removed), the ot entry first, other entries as they were;
 * written NUL-terminated to out (size >= SS_TRACE_STATE_MAX + 1). Returns
 * the length, or -EINVAL when the result would pass SS_TRACE_STATE_MAX.
 */
int ss_tracestate_set_th(const char *ts, size_t len, const char *th_hex, char *out, size_t size);

int ss_sampler_new(const ss_sampling_config *cfg, ss_sampler **ret);
void ss_sampler_free(ss_sampler *s); /* accepts NULL */

/*
 * Decide for spans (n > 0, one trace: all of it, or a part): true to keep.
 * Kept spans get their tracestate's th (the head rate's threshold, or none
 * when a tail policy kept them); a root decided early gets
 * sidespan.sampling.early_decision=true. Counts into the stats.
 */
bool ss_sampler_decide(ss_sampler *s, ss_span *const *spans, size_t n, uint64_t now_ns);

const ss_sampling_stats *ss_sampler_stats(const ss_sampler *s);

/* "sampling.<stat>"; an ss_counters_fn. */
void ss_sampler_counters(const void *sampler, ss_counters *out);
