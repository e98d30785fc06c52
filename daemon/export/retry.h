/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The retry policy every network exporter shares: which failures are worth
 * another attempt (OTLP/HTTP statuses, OTLP/gRPC status codes), how long the
 * backend asked us to wait (Retry-After, google.rpc.RetryInfo), and the
 * backoff otherwise (exponential with jitter). Pure functions (the jitter
 * draws from the per-thread generator of ss-id.h); any thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Retries end by time, as the OpenTelemetry Collector's do (max_elapsed_time 300 s): an
 * outage shorter than that loses nothing; no attempt limit unless one is set. */
#define SS_RETRY_MAX_ATTEMPTS_DEFAULT       0u
#define SS_RETRY_BACKOFF_INITIAL_MS_DEFAULT 1000u
#define SS_RETRY_BACKOFF_MAX_MS_DEFAULT     30000u
#define SS_RETRY_MULTIPLIER_DEFAULT         2.0
#define SS_RETRY_MAX_ELAPSED_MS_DEFAULT     300000u
/* Retry-After and RetryInfo come from the peer: obeyed up to this, so a hostile value cannot
 * park a request. */
#define SS_RETRY_AFTER_MAX_MS 300000u

typedef struct ss_retry_config {
        uint32_t max_attempts;       /* per request before giving up; 0: no limit */
        uint32_t backoff_initial_ms; /* the first wait's ceiling, times multiplier per attempt */
        uint32_t backoff_max_ms;     /* ...up to this */
        double multiplier;           /* >= 1 */
        uint32_t max_elapsed_ms;     /* from a request's first attempt: no retry after it */
} ss_retry_config;

/* The defaults above. */
void ss_retry_config_defaults(ss_retry_config *c);

/* OTLP/HTTP: only 429, 502, 503 and 504 are retried; other statuses are final. */
bool ss_retry_http_status(long status);

/*
 * A Retry-After value (delta-seconds or an HTTP-date, compared with now) in
 * milliseconds, capped at SS_RETRY_AFTER_MAX_MS; 0 for a date in the past;
 * -1 when the value is neither.
 */
long ss_retry_after_parse(const char *value, time_t now);

/*
 * OTLP/gRPC, by gRPC status code number (grpc_status_code): CANCELLED,
 * DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are
 * retried; RESOURCE_EXHAUSTED only when the server said when to come back
 * (has_retry_info); every other code is final.
 */
bool ss_retry_grpc_status(int code, bool has_retry_info);

/*
 * The RetryInfo.retry_delay in a serialized google.rpc.Status (what a gRPC
 * server sends in the grpc-status-details-bin trailer), in milliseconds
 * rounded up and capped at SS_RETRY_AFTER_MAX_MS; 0 for a negative delay;
 * -1 when the status carries no RetryInfo or does not decode.
 */
long ss_retry_info_parse(const uint8_t *status, size_t len);

/*
 * The wait before another attempt of a request that has failed attempts
 * times, elapsed_ms after its first attempt: after_ms when the backend gave
 * one (>= 0), else the backoff; -1 when it has had its c->max_attempts (when
 * set) or the attempt would come later than c->max_elapsed_ms (when set)
 * after the first.
 */
int64_t ss_retry_delay_ms(const ss_retry_config *c, uint32_t attempts, uint64_t elapsed_ms,
                          long after_ms);

/* The wait before attempt attempts + 1: "full jitter", a draw from [0, d] where
 * d = initial * multiplier^(attempts-1) capped at the maximum. */
uint64_t ss_retry_backoff_ms(const ss_retry_config *c, uint32_t attempts);
