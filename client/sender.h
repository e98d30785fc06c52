/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The sender: one background thread per client, the only code that touches
 * the daemon's socket. It drains the queue with few large writes, says HELLO
 * on every new connection, reads FLUSHED replies into the queue, and
 * reconnects with backoff. It calls the queue and nothing above it.
 */

#include <msgpack.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "options.h"
#include "queue.h"
#include "ss-buf.h"

#define SSC_SENDER_IN_SIZE 4096u /* replies are tiny; bigger ones are skipped */

typedef struct ssc_sender {
        /* Set at init, read-only afterwards; all outlive the sender. */
        ssc_queue *q;
        const ssc_config *cfg;
        ssc_counters *n;

        pthread_t thread; /* written under the queue lock when started */

        /* The sender thread's. Buffers change only under the queue lock, so that a fork()
         * child finds them consistent; the thread writes and reads them without it. */
        int fd;
        bool ever_connected;
        ss_buf out;      /* frames being written; swapped with the queue's pending */
        size_t out_off;  /* bytes of out written */
        size_t out_scan; /* start of the first frame of out not yet counted as sent */
        ss_buf hello;    /* HELLO frame, written before out on a new connection */
        size_t hello_off;
        ss_buf scratch;    /* HELLO options */
        msgpack_zone zone; /* replies decode into it; cleared after each */
        bool zone_ok;
        uint8_t in[SSC_SENDER_IN_SIZE];
        size_t in_len;
        size_t in_skip; /* bytes of an oversized reply still to discard */
        uint64_t backoff_ns;
        uint64_t next_connect_ns;
        uint64_t connected_at_ns;
        uint64_t linger_deadline_ns;
        uint64_t instance; /* 0: draw one at the next connection (after fork) */
} ssc_sender;

/* Initialise s to drain q, with the settings cfg, counting into n, and install it as q's
 * consumer (its thread starts when q asks). -EINVAL when HELLO cannot fit cfg->max_frame
 * (the daemon would refuse every connection), -ENOMEM. Free s with ssc_sender_free() also on
 * failure. Before the client is shared; starts no thread. */
int ssc_sender_init(ssc_sender *s, ssc_queue *q, const ssc_config *cfg, ssc_counters *n);

/* Stop the thread, if it runs, and wait for it: it leaves after its current round, with
 * what it has not written yet left behind (flush first for that). Any thread but the
 * sender's; blocks for the join. */
void ssc_sender_stop(ssc_sender *s);

/* Bytes taken from the queue and not written yet. Under the queue lock. */
size_t ssc_sender_buffered(const ssc_sender *s);

/* Bytes its buffer of frames being written holds allocated. Under the queue lock. */
size_t ssc_sender_capacity(const ssc_sender *s);

/* In a fork() child, under the queue lock: drop the parent's connection without a byte on
 * it, and the frames the parent will send itself; the next start begins afresh. */
void ssc_sender_after_fork(ssc_sender *s);

/* Release what s holds, after ssc_sender_stop() (or when it never started). Accepts a
 * half-initialised s. */
void ssc_sender_free(ssc_sender *s);
