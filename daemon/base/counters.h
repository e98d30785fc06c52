/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Named counters, the daemon's STATS answer: each stage appends its own
 * counters to an ss_counters list when asked (an ss_counters_fn), and the
 * control module sends them as they are. Names are copied, so a stage may
 * build them on the fly ("exporter.otlp-http.spans_in"). Loop thread only.
 */

#include <stddef.h>
#include <stdint.h>

#include "ss-wire.h"

#define SS_COUNTER_NAME_MAX 96u
/* Far more than the daemon has; a bound so a list can never grow without end. */
#define SS_COUNTERS_MAX 4096u

typedef struct ss_counters {
        ss_stat *v;  /* names point into names[] */
        char *names; /* SS_COUNTER_NAME_MAX bytes per counter */
        size_t n;
        size_t cap;
        int err; /* the first failure: -ENOMEM, -E2BIG past SS_COUNTERS_MAX */
} ss_counters;

/* A stage's counters appended to out; ctx is the stage. */
typedef void (*ss_counters_fn)(const void *ctx, ss_counters *out);

void ss_counters_init(ss_counters *c);

/* Append one counter named prefix + name (prefix may be NULL); a name too long is cut.
 * A failure is kept in c->err and later adds do nothing. */
void ss_counters_add(ss_counters *c, const char *prefix, const char *name, uint64_t value);

/* The value of name, for tests and logs; 0 when absent. */
uint64_t ss_counters_get(const ss_counters *c, const char *name);

/* The sum of every counter named prefix...suffix ("exporter." and ".spans_exported"): a
 * figure over all instances of a stage, for logs and systemd's STATUS=. */
uint64_t ss_counters_sum(const ss_counters *c, const char *prefix, const char *suffix);

void ss_counters_free(ss_counters *c);
