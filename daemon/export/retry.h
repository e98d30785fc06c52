/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The retry policy every network exporter shares: which failures are worth
 * another attempt, how long the backend asked us to wait, and the backoff
 * otherwise (exponential with jitter). Pure functions (the jitter draws from
 * the per-thread generator of ss-id.h); any thread.
 */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define SS_RETRY_MAX_ATTEMPTS_DEFAULT       5u
#define SS_RETRY_BACKOFF_INITIAL_MS_DEFAULT 1000u
#define SS_RETRY_BACKOFF_MAX_MS_DEFAULT     30000u
/* Retry-After comes from the peer: obeyed up to this, so a hostile value cannot park a request. */
#define SS_RETRY_AFTER_MAX_MS 300000u

typedef struct ss_retry_config {
        uint32_t max_attempts;       /* per request before giving up */
        uint32_t backoff_initial_ms; /* doubles with jitter per attempt... */
        uint32_t backoff_max_ms;     /* ...up to this */
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

/* The wait before attempt attempts + 1: initial * 2^(attempts-1) capped at the
 * maximum, then "equal jitter" (between half and all of it). */
uint64_t ss_retry_backoff_ms(const ss_retry_config *c, uint32_t attempts);
