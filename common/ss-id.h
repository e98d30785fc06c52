/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Identifiers, time and the trace-level decisions both sides share: random
 * non-zero trace and span ids, wall-clock nanoseconds, W3C traceparent, and
 * consistent probability sampling on the trace id. No system call on the
 * hot path: the generator is per thread and seeded once (again after fork).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SS_TRACEPARENT_LEN 55 /* "00-<32 hex>-<16 hex>-<2 hex>" without NUL */

/* Fill a trace id (16 bytes) or span id (8 bytes) with random, non-zero bytes. */
void ss_id_random(uint8_t *id, size_t len);

/* A new span's ids in one call: a trace id (16 bytes) unless trace_id is NULL, and a span
 * id (8 bytes), each random and non-zero. The calling thread's generator; no system call
 * but the first one of a thread (and of a fork() child) to seed it. */
void ss_id_span(uint8_t *trace_id, uint8_t *span_id);

/* Nanoseconds since the Unix epoch (CLOCK_REALTIME). Inline: twice a span on the client's
 * hot path, where the call around the vDSO's would cost a quarter as much again. */
static inline uint64_t ss_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Write 2*len lowercase hex digits and a NUL to out (2*len+1 bytes). */
void ss_hex(char *out, const uint8_t *in, size_t len);

/* Parse exactly 2*len hex digits. 0 or -EINVAL. */
int ss_unhex(uint8_t *out, const char *in, size_t len);

/* Format "00-trace-span-flags" into out (SS_TRACEPARENT_LEN + 1 bytes). */
void ss_traceparent_format(char *out, const uint8_t *trace_id, const uint8_t *span_id,
                           bool sampled);

/*
 * Parse a W3C traceparent (version 00, or a future version with the same
 * prefix). -EINVAL for a malformed value or an all-zero id.
 */
int ss_traceparent_parse(const char *s, uint8_t *ret_trace_id, uint8_t *ret_span_id,
                         bool *ret_sampled);

/*
 * Consistent probability sampling (OpenTelemetry): keep iff the low 56 bits
 * of the trace id are >= (1 - rate) * 2^56. rate is clamped to [0, 1].
 */
bool ss_sample_keep(const uint8_t *trace_id, double rate);

/* The threshold T = (1 - rate) * 2^56 that ss_sample_keep() compares with, for 0 < rate < 1. */
uint64_t ss_sample_threshold(double rate);

/*
 * The tracestate entry that records the threshold, "ot=th:<hex>" (up to 14 hex
 * digits, trailing zeros removed: rate 0.5 is "ot=th:8"); "" at rate 0 or 1.
 */
void ss_sample_tracestate(char *out, size_t size, double rate);

/*
 * True when an attribute key names content (prompts, completions, tool
 * arguments and results) that include_content=false must drop: the list of
 * TRACE-MODEL.md.
 */
bool ss_content_key(const char *key, size_t len);
