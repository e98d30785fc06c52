/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A client's counters, the figures of sidespan_client_stats(). Updated with
 * relaxed atomics and no lock, from any thread, so that counting costs the
 * hot path one atomic add. Owned by the client (client.c reads them for
 * stats and zeroes them in a fork() child); the queue and the sender hold a
 * pointer to them, the span API reaches them through the client: all add.
 */

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

typedef struct ssc_counters {
        /* Spans started: sampled ones counted with their SPAN_START under the queue lock
         * (started_queued, see ssc_queue_enqueue()), the rest here; the stats add the two. */
        atomic_uint_fast64_t spans_started;
        atomic_uint_fast64_t started_queued;
        atomic_uint_fast64_t unsampled;
        atomic_uint_fast64_t frames_queued;
        atomic_uint_fast64_t frames_sent;
        atomic_uint_fast64_t bytes_sent;
        atomic_uint_fast64_t dropped;
        atomic_uint_fast64_t attrs_dropped;
        atomic_uint_fast64_t reconnects;
        atomic_uint_fast64_t connect_failures;
} ssc_counters;

/* Add n to one counter. Any thread, no lock. */
static inline void ssc_count(atomic_uint_fast64_t *v, uint64_t n)
{
        atomic_fetch_add_explicit(v, n, memory_order_relaxed);
}

/* Read one counter. Any thread, no lock. */
static inline uint64_t ssc_count_get(const atomic_uint_fast64_t *v)
{
        return atomic_load_explicit(v, memory_order_relaxed);
}

/* Start from zero, as a fork() child does: it reports its own traffic. Single-threaded. */
static inline void ssc_counters_reset(ssc_counters *n)
{
        memset(n, 0, sizeof(*n));
}
