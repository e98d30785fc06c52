/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The encoded requests of one network exporter, from the batch that made
 * them until the backend takes them or they are given up: a waiting list
 * (new, or backing off before a retry) and an in-flight list, both in
 * creation order, under one bound on the bytes they hold. When a new request
 * does not fit, the oldest waiting ones are dropped first. The queue owns
 * its requests; the exporter keeps its per-attempt transport state in
 * ss_req.transport. Loop thread only; never blocks.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ss-buf.h"

typedef struct ss_req {
        struct ss_req *prev, *next;
        uint64_t seq; /* creation order: the lowest is the oldest */
        ss_buf body;  /* the exact bytes sent, kept as they are for retries */
        size_t n_spans;
        uint32_t attempts;
        uint64_t first_ms; /* uv_now() at its first attempt: retries end max_elapsed after */
        uint64_t due_ms;   /* uv_now() from which it may be sent */
        uint64_t spool_id; /* read back from the spool: its record's id + 1; 0: never spooled */
        void *transport;   /* the exporter's, while in flight */
} ss_req;

typedef struct ss_req_list {
        ss_req *head, *tail;
        size_t n;
} ss_req_list;

typedef struct ss_req_queue {
        const char *name; /* the exporter's, for log lines */
        ss_req_list waiting;
        ss_req_list inflight;
        size_t bytes; /* bodies waiting or in flight */
        size_t max_bytes;
        uint32_t max_inflight;
        uint64_t next_seq;
} ss_req_queue;

void ss_reqq_init(ss_req_queue *q, const char *name, size_t max_bytes, uint32_t max_inflight);

/* A new request whose body may grow to max_body bytes; NULL on out-of-memory. */
ss_req *ss_req_new(ss_req_queue *q, size_t n_spans, size_t max_body);

/* Free a request that is in no list (accepts NULL). */
void ss_req_free(ss_req *r);

/*
 * Queue r as waiting and due now, dropping the oldest waiting requests when
 * its body does not fit max_bytes; *ret_dropped gets the spans they held.
 * -ENOBUFS, changing nothing, when even an empty waiting list would leave too
 * little room beside what is in flight: the caller then drops r.
 */
int ss_reqq_push(ss_req_queue *q, ss_req *r, size_t *ret_dropped);

/* The oldest waiting request due at now_ms, moved in flight, when a slot is free; else NULL. */
ss_req *ss_reqq_start_next(ss_req_queue *q, uint64_t now_ms);

/* When the earliest waiting request falls due, or UINT64_MAX when nothing can start. */
uint64_t ss_reqq_next_due(const ss_req_queue *q);

/* An in-flight request waits again until due_ms, keeping its place by age. */
void ss_reqq_retry(ss_req_queue *q, ss_req *r, uint64_t due_ms);

/* Remove r from the list it is in and free it; returns its span count. */
size_t ss_reqq_finish(ss_req_queue *q, ss_req *r);

/* True while anything is waiting or in flight. */
static inline bool ss_reqq_busy(const ss_req_queue *q)
{
        return q->waiting.n > 0 || q->inflight.n > 0;
}
