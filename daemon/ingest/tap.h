/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The tap behind `sidespan tail`: connections that sent SUBSCRIBE get a
 * TRACE message (ss-wire.h) for every trace the policy stage keeps, as a
 * summary of its spans (ids, times, status, service and SS_TAP_KEYS, never
 * content). Each subscriber has its own filter and its own bound: while more
 * than SS_TAP_MAX_QUEUED bytes wait to be written to it, traces for it are
 * dropped and counted, and the next TRACE it gets says how many. Ingest and
 * export never wait for a reader. With no subscriber a trace costs one
 * test. Loop thread only; nothing blocks.
 */

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "base/counters.h"
#include "model/sink.h"

/* Bytes waiting to be written to one subscriber before traces for it are dropped. */
#define SS_TAP_MAX_QUEUED (1u << 20)
/* A TRACE message's body: spans past it are left out and counted in the message. */
#define SS_TAP_MAX_BODY        (512u << 10)
#define SS_TAP_MAX_SUBSCRIBERS 64u

typedef struct ss_tap ss_tap;
typedef struct ss_tap_sub ss_tap_sub;

int ss_tap_new(ss_tap **ret);
void ss_tap_free(ss_tap *t); /* accepts NULL; every subscriber must have left */

/* What the policy stage shows kept traces to: put() only, flush() does nothing. */
ss_sink *ss_tap_sink(ss_tap *t);

/*
 * Stream kept traces to stream (a connection, which must call
 * ss_tap_unsubscribe() before it closes) that pass filter (SS_SUB_* keys,
 * checked by the wire decoder; NULL: all). A subscriber that is not all sees
 * only the spans of clients of its own uid. 0, -ENOMEM, or -EUSERS past
 * SS_TAP_MAX_SUBSCRIBERS.
 */
int ss_tap_subscribe(ss_tap *t, uv_stream_t *stream, uid_t uid, bool all,
                     const msgpack_object_map *filter, ss_tap_sub **ret);
void ss_tap_unsubscribe(ss_tap *t, ss_tap_sub *s); /* accepts NULL */

/* tap.subscribers, tap.traces_sent, tap.traces_dropped, ...: an ss_counters_fn. */
void ss_tap_counters(const void *tap, ss_counters *out);
