/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's own health as metrics, read from the counters STATS answers
 * with at each collection: spans received and refused, per exporter spans
 * exported and dropped by reason, its queue and spool bytes, the clients
 * connected and the spans open, its memory. Counters are observed (the registry turns
 * the totals into sums of either temporality); sizes are gauges. Loop thread.
 */

#include "base/counters.h"
#include "metrics/registry.h"

typedef struct ss_health {
        ss_instrument *received;      /* sidespan.spans.received, {span} */
        ss_instrument *refused;       /* sidespan.spans.refused, {span}, by reason */
        ss_instrument *exported;      /* sidespan.spans.exported, {span}, by exporter */
        ss_instrument *dropped;       /* sidespan.spans.dropped, {span}, by exporter and reason */
        ss_instrument *queue_bytes;   /* sidespan.exporter.queue.size, By */
        ss_instrument *spool_bytes;   /* sidespan.exporter.spool.size, By */
        ss_instrument *clients;       /* sidespan.clients.connected, {client} */
        ss_instrument *open_spans;    /* sidespan.spans.open, {span} */
        ss_instrument *memory;        /* process.memory.usage, By (VmRSS) */
        ss_instrument *heap;          /* sidespan.memory.heap, By, by state (used, free) */
        ss_instrument *input_buffers; /* sidespan.memory.input_buffers, By */
} ss_health;

/* The instruments, in r. 0 or -ENOMEM. */
int ss_health_init(ss_health *h, ss_registry *r);

/* Observe the daemon's counters c. */
void ss_health_observe(const ss_health *h, const ss_counters *c);
