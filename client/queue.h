/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The queue between the threads that emit spans and the sender thread: the
 * pending frames under one short lock (lock.h), the event flush waiters
 * sleep on, the eventfd that wakes the sender, the flush handshake (asked,
 * queued, acknowledged) and the link state a flush needs to know when to
 * give up. Callers and the sender call the queue; the queue calls nobody but
 * the start callback its consumer installed (see ssc_queue_set_consumer()).
 *
 * "Under the lock" below means between ssc_queue_lock() and ssc_queue_unlock()
 * (or inside a function that takes the lock itself, as said).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "counters.h"
#include "lock.h"
#include "ss-buf.h"

#define SSC_QUEUE_WATERMARK (64u * 1024) /* the sender writes at once when this much waits */
#define SSC_QUEUE_WATCH_MS  1u           /* how often the sender looks while frames wait */

/* Start the consumer (the sender thread). Called under the lock when none runs: 0 once it
 * runs, or -errno (the queue retries no sooner than a second later). */
typedef int (*ssc_queue_start_fn)(void *ctx);

typedef struct ssc_queue {
        /* Set at init, read-only afterwards. */
        size_t limit;     /* bytes pending may hold (buffer_size) */
        size_t max_frame; /* for the FLUSH frame swap appends */
        ssc_counters *n;
        ssc_queue_start_fn start;
        void *start_ctx;

        ssc_lock lock;
        ssc_event cond; /* flush waiters: acks, connection outcomes */

        /* Under lock. */
        ss_buf pending; /* whole frames waiting for the sender */
        int wake_fd;    /* eventfd the sender polls, made with the first start */
        bool running;   /* the consumer was started (and not stopped, nor forked away) */
        bool stopping;
        bool idle;          /* the sender sleeps without a timer: wake it for new data */
        bool force_connect; /* a flush wants a connection attempt now */
        bool connected;
        uint64_t retry_ns; /* a failed start is retried from then */
        uint64_t connect_fail_gen;
        uint64_t flush_req;    /* highest FLUSH sequence asked for */
        uint64_t flush_queued; /* highest FLUSH sequence put in the stream */
        uint64_t flush_acked;  /* highest FLUSHED received */
} ssc_queue;

/* ---- the owner ------------------------------------------------------------------------ */

/* Initialise q for frames of at most max_frame bytes, holding at most limit bytes, counting
 * into n (which outlives q). 0, or -errno with nothing to free. Before q is shared. */
int ssc_queue_init(ssc_queue *q, size_t limit, size_t max_frame, ssc_counters *n);

/* Install the function that starts the consumer, before q is shared. The queue calls it
 * (under the lock) when a frame or a flush arrives and no consumer runs: at open, and in a
 * fork() child, whose first span or flush starts the sender again. A callback rather than
 * a call keeps the queue below the sender: the sender calls the queue, never the reverse. */
void ssc_queue_set_consumer(ssc_queue *q, ssc_queue_start_fn start, void *ctx);

/* Prepare b as a buffer the consumer swaps with the pending one (same maximum). */
void ssc_queue_buf_init(const ssc_queue *q, ss_buf *b);

/* Release q, whose consumer has stopped. Not concurrently with any other call. */
void ssc_queue_free(ssc_queue *q);

/* Take and release the lock. Any thread; the lock is held only briefly by everyone but a
 * flush waiting (which sleeps on the event, releasing it). */
static inline void ssc_queue_lock(ssc_queue *q)
{
        ssc_lock_take(&q->lock);
}

static inline void ssc_queue_unlock(ssc_queue *q)
{
        ssc_lock_release(&q->lock);
}

/* In a fork() child, under the lock taken before fork(): forget the parent's frames, wake
 * fd, flushes and link, and mark the consumer not running. The lock stays held. */
void ssc_queue_after_fork(ssc_queue *q);

/* ---- the producers (any thread) ------------------------------------------------------- */

/* Add n to one of the counters written only under the lock (frames_queued, started_queued):
 * a plain add, no locked instruction. */
static inline void ssc_queue_count(atomic_uint_fast64_t *v, uint64_t n)
{
        atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                              memory_order_relaxed);
}

/* ssc_queue_enqueue()'s rare cases, entered under the lock, which it releases: a consumer to
 * start, a buffer to grow, a full queue (the frame is dropped and counted), a sender to wake. */
bool ssc_queue_enqueue_slow(ssc_queue *q, const uint8_t *frame, size_t len, bool start);

/*
 * Copy one encoded frame (len > 0) into the queue, or drop and count it when it does not
 * fit: true when queued. start: the frame is a span's SPAN_START, and the span is counted as
 * started under the same lock, queued or not. Wakes the sender (a system call) only when it sleeps
 * without a timer, i.e. the first frame after a quiet spell. Never blocks beyond the short lock.
 * Inline: every span calls it twice, and the common case is a copy into room the buffer has.
 */
static inline bool ssc_queue_enqueue(ssc_queue *q, const uint8_t *frame, size_t len, bool start)
{
        size_t before;

        ssc_queue_lock(q);
        before = q->pending.len;
        if (__builtin_expect(!q->running || len > q->pending.cap - before ||
                                 len > q->limit - before || (before == 0 && q->idle),
                             0))
                return ssc_queue_enqueue_slow(q, frame, len, start);
        memcpy(q->pending.data + before, frame, len);
        q->pending.len = before + len;
        ssc_queue_count(&q->n->frames_queued, 1);
        if (start)
                ssc_queue_count(&q->n->started_queued, 1);
        ssc_queue_unlock(q);
        return true;
}

/* Start the consumer unless it runs. Takes the lock. 0 or -errno (-EAGAIN within a second of
 * a failed start). */
int ssc_queue_start(ssc_queue *q);

/*
 * Ask for a FLUSH behind every frame queued so far and wait until the daemon acknowledges
 * it: 0; -ETIMEDOUT past timeout_ms (< 0: no limit) while connected; -ENOTCONN when a
 * connection attempt made meanwhile failed. Takes the lock; blocks up to timeout_ms.
 */
int ssc_queue_flush(ssc_queue *q, int timeout_ms);

/* Tell the consumer to stop and wake it. True when one was running: the caller joins it.
 * Takes the lock. */
bool ssc_queue_stop(ssc_queue *q);

/* Bytes pending. Under the lock. */
size_t ssc_queue_pending(const ssc_queue *q);

/* Bytes the buffer of pending frames holds allocated. Under the lock. */
size_t ssc_queue_capacity(const ssc_queue *q);

/* Whether the sender has a connection. Under the lock. */
bool ssc_queue_connected(const ssc_queue *q);

/* ---- the consumer (the sender thread, under the lock unless said) --------------------- */

/* ssc_queue_stop() was called. */
bool ssc_queue_stopping(const ssc_queue *q);

/* A FLUSH was asked for and is not in the stream yet. */
bool ssc_queue_flush_due(const ssc_queue *q);

/* A flush wants a connection attempt now, backoff or not. */
bool ssc_queue_connect_asked(const ssc_queue *q);

/* Hand the pending frames to the consumer: out (empty, from ssc_queue_buf_init()) and the
 * pending buffer change places; a FLUSH that is due is appended to out. */
void ssc_queue_swap(ssc_queue *q, ss_buf *out);

/* The consumer is about to sleep with no timer (idle) or has woken up (!idle): while idle, a
 * frame into an empty queue wakes it. */
void ssc_queue_idle(ssc_queue *q, bool idle);

/* The eventfd to poll for POLLIN; the consumer drains it with ssc_queue_wake_drain() without
 * the lock. */
int ssc_queue_wake_fd(const ssc_queue *q);
void ssc_queue_wake_drain(int fd);

/* A connection attempt begins (it answers the flush that asked for one). */
void ssc_queue_connect_begin(ssc_queue *q);

/* The attempt succeeded: connected; a FLUSH written to a broken connection is due again. */
void ssc_queue_link_up(ssc_queue *q);

/* The attempt failed: flush waiters that began before it give up. */
void ssc_queue_connect_failed(ssc_queue *q);

/* The connection broke. */
void ssc_queue_link_down(ssc_queue *q);

/* The daemon answered FLUSHED seq. Takes the lock (the sender reads without it). */
void ssc_queue_flushed(ssc_queue *q, uint64_t seq);
