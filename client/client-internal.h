/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * libsidespan internals shared by client.c (lifecycle, options, flush, fork),
 * sender.c (the background thread that owns the socket), span.c (the span
 * API and the hot path) and genai.c (GenAI helpers). Nothing here is
 * exported: the library is built with hidden visibility and a version script.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "options.h"
#include "registry.h"
#include "sidespan.h"
#include "ss-buf.h"
#include "ss-wire.h"

#define SSC_WATERMARK      (64u * 1024)       /* wake the sender when this much waits */
#define SSC_LINGER_NS      (10u * 1000000ull) /* otherwise it gathers frames this long */
#define SSC_BACKOFF_MIN_NS (50u * 1000000ull)
#define SSC_BACKOFF_MAX_NS (5000u * 1000000ull)
#define SSC_STABLE_NS      (1000u * 1000000ull) /* a connection this old resets the backoff */
#define SSC_FLUSH_SLACK    64u                  /* room past buffer_size for a FLUSH frame */
#define SSC_IN_SIZE        4096u                /* replies are tiny; bigger ones are skipped */
#define SSC_SYSTEM_SOCKET  "/run/sidespan/sidespan.sock"

/* The public values are the wire's (OTLP's): the span API passes them through. */
#define SSC_SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SSC_SAME(SIDESPAN_KIND_INTERNAL, SS_KIND_INTERNAL) &&
                   SSC_SAME(SIDESPAN_KIND_SERVER, SS_KIND_SERVER) &&
                   SSC_SAME(SIDESPAN_KIND_CLIENT, SS_KIND_CLIENT) &&
                   SSC_SAME(SIDESPAN_KIND_PRODUCER, SS_KIND_PRODUCER) &&
                   SSC_SAME(SIDESPAN_KIND_CONSUMER, SS_KIND_CONSUMER),
               "SIDESPAN_KIND_* must equal the wire's SpanKind values");
_Static_assert(SSC_SAME(SIDESPAN_STATUS_UNSET, SS_STATUS_UNSET) &&
                   SSC_SAME(SIDESPAN_STATUS_OK, SS_STATUS_OK) &&
                   SSC_SAME(SIDESPAN_STATUS_ERROR, SS_STATUS_ERROR),
               "SIDESPAN_STATUS_* must equal the wire's Status.code values");
#undef SSC_SAME

/* Counters, updated without the lock (relaxed atomics) so that the hot path stays short. */
typedef struct ssc_counters {
        atomic_uint_fast64_t spans_started;
        atomic_uint_fast64_t unsampled;
        atomic_uint_fast64_t frames_queued;
        atomic_uint_fast64_t frames_sent;
        atomic_uint_fast64_t bytes_sent;
        atomic_uint_fast64_t dropped;
        atomic_uint_fast64_t attrs_dropped;
        atomic_uint_fast64_t reconnects;
        atomic_uint_fast64_t connect_failures;
} ssc_counters;

struct sidespan_client {
        bool enabled;
        ssc_config cfg; /* set at open, read-only afterwards */

        pthread_mutex_t lock;
        pthread_cond_t cond; /* flush waiters: acks, connection outcomes */

        /* Under lock. */
        ss_buf pending; /* whole frames waiting for the sender */
        bool thread_running;
        bool stopping;
        bool sender_idle;   /* the sender sleeps without a timer: wake it for new data */
        bool force_connect; /* a flush wants a connection attempt now */
        bool connected;
        int wake_fd; /* eventfd the sender polls */
        uint64_t thread_retry_ns;
        uint64_t connect_fail_gen;
        uint64_t flush_req;    /* highest FLUSH sequence asked for */
        uint64_t flush_queued; /* highest FLUSH sequence put in the stream */
        uint64_t flush_acked;  /* highest FLUSHED received */
        uint64_t instance;     /* 0: draw one at the next connection (after fork) */
        uint64_t linger_deadline_ns;
        pthread_t thread;

        /* Sender thread. Its buffers only change under lock, so a forked child finds them
         * consistent. */
        int fd;
        bool ever_connected;
        ss_buf out;      /* frames being written; swapped with pending */
        size_t out_off;  /* bytes of out written */
        size_t out_scan; /* start of the first frame of out not yet counted as sent */
        ss_buf hello;    /* HELLO frame, written before out on a new connection */
        size_t hello_off;
        ss_buf scratch; /* HELLO options */
        uint8_t in[SSC_IN_SIZE];
        size_t in_len;
        size_t in_skip; /* bytes of an oversized reply still to discard */
        uint64_t backoff_ns;
        uint64_t next_connect_ns;
        uint64_t connected_at_ns;

        ssc_counters n;

        ssc_registry_entry reg; /* exit flush and fork */
};

/* The context a new span descends from. */
typedef struct ssc_parent {
        const uint8_t *trace_id;
        const uint8_t *span_id;
        bool sampled;
        bool remote;
        const char *trace_state;
} ssc_parent;

struct sidespan_span {
        sidespan_client *client;
        uint8_t trace_id[SS_TRACE_ID_LEN];
        uint8_t span_id[SS_SPAN_ID_LEN];
        bool sampled;
        const char *trace_state; /* the client's string or NULL; lives as long as the client */
        uint32_t n_attrs;
        ss_buf attrs; /* packed map body sent with SPAN_END */
};

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t ssc_mono_ns(void);

/*
 * Copy one encoded frame into the client's buffer, or drop and count it when
 * it does not fit. Wakes the sender only at the watermark or when it sleeps.
 * Never blocks beyond the client's short lock. Any thread.
 */
void ssc_enqueue(sidespan_client *c, const uint8_t *frame, size_t len);

/* Start the sender thread unless it runs (lazily again in a forked child).
 * Under c->lock. 0 or -errno. */
int ssc_ensure_thread(sidespan_client *c);

/* Wake the sender. Under c->lock. */
void ssc_kick(sidespan_client *c);

/* Encode the HELLO frame for a new connection into c->hello. Under c->lock (or before
 * the client is shared). 0, or -EMSGSIZE/-ENOBUFS when it cannot fit max_frame. */
int ssc_build_hello(sidespan_client *c);

/* The sender thread's body; arg is the client. */
void *ssc_sender_main(void *arg);

/* Reset sender state in a forked child (no I/O on the parent's connection). Under c->lock. */
void ssc_sender_after_fork(sidespan_client *c);

/* Free what the sender owns, after it stopped. */
void ssc_sender_free(sidespan_client *c);

/*
 * Start a span below parent (NULL: a new root) with attributes that travel in
 * SPAN_START. The name is prefix followed by suffix (suffix may be NULL).
 * On a NULL or disabled client, 0 with *ret NULL. Any thread.
 */
int ssc_span_start(sidespan_client *c, const ssc_parent *parent, const char *prefix,
                   const char *suffix, int kind, const sidespan_attr *attrs, size_t n,
                   sidespan_span **ret);

/* The parent context of a local span (NULL span: NULL). */
const ssc_parent *ssc_parent_of(const sidespan_span *s, ssc_parent *buf);
