/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One client connection: reads frames (bounded by max_frame), decodes each
 * message and applies it: HELLO and span messages to the assembler, FLUSH
 * and STATS to control, whose replies it writes back. A frame over
 * max_frame, a frame that is not msgpack or a message of the wrong shape
 * closes this connection with a logged, counted reason; nothing a peer sends
 * touches another connection. Internal to ingest/: the listener creates and
 * lists connections. Loop thread only; nothing blocks.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "ingest/control.h"
#include "trace/assembler.h"

typedef struct ss_conn ss_conn;

/* Counters of every connection, kept by the listener. */
typedef struct ss_ingest_stats {
        uint64_t connections;                 /* accepted and served */
        uint64_t connections_refused;         /* over max_connections */
        uint64_t connections_refused_process; /* over max_connections_per_process */
        uint64_t connections_denied;          /* not in allow_uids / allow_gids */
        uint64_t connections_refused_fds;     /* too few file descriptors left */
        uint64_t connections_active;
        uint64_t accept_failures; /* accept errors (no descriptors), no memory */
        uint64_t timeouts_hello;  /* closed: no HELLO within hello_timeout */
        uint64_t timeouts_frame;  /* closed: a partial frame older than frame_timeout */
        uint64_t timeouts_idle;   /* closed: nothing open, silent for idle_timeout */
        uint64_t input_paused;    /* reads paused at max_input_bytes */
        uint64_t frames;
        uint64_t bytes;
        uint64_t protocol_errors; /* connections closed for bad input */
        uint64_t unknown_messages;
        uint64_t span_errors; /* unknown span, duplicate start, limits: counted, skipped */
        uint64_t flushes;
} ss_ingest_stats;

/* The bytes every connection's input buffer holds, against one bound. */
typedef struct ss_input_budget {
        uint64_t used;
        uint64_t max;    /* 0: none */
        ss_conn *paused; /* connections waiting for room, reading stopped */
} ss_input_budget;

/* What a connection works with: the listener's, shared by all of them. */
typedef struct ss_conn_env {
        size_t max_frame;
        ss_assembler *assembler;
        ss_control *control;
        ss_ingest_stats *stats;
        ss_input_budget *budget;
        msgpack_zone *zone; /* the decoded frame's objects, cleared after each frame */
        uid_t daemon_uid;   /* a peer of this uid or root may see every counter */
        /* Whether to stop reading c, after a read, until downstream has room again (the
         * listener's backpressure; it resumes c with ss_conn_resume()). NULL: never. */
        bool (*hold)(void *ctx, ss_conn *c);
        /* The connection's handle closed; it is freed after this returns. */
        void (*closed)(void *ctx, ss_conn *c);
        void *ctx;
} ss_conn_env;

struct ss_conn {
        uv_pipe_t pipe; /* first: the handle's address is the connection's */
        const ss_conn_env *env;
        ss_conn *prev, *next;               /* the listener's list */
        ss_conn *paused_prev, *paused_next; /* the budget's list, while paused */
        ss_buf in;
        size_t in_counted; /* of in.cap, what the budget holds */
        ss_session *session;
        uint64_t id;
        uint64_t frames;
        pid_t pid;
        uid_t uid;
        gid_t gid;
        uint64_t connected_ms;     /* uv_now() at accept */
        uint64_t last_read_ms;     /* the last bytes */
        uint64_t partial_since_ms; /* a frame begun and not complete since; 0: none */
        uint64_t grew_ms;          /* the input buffer last held a large frame */
        ss_tap_sub *sub;           /* SUBSCRIBE'd: traces stream to it; exempt from idle timeouts */
        bool paused;
        bool held;    /* reading stopped by the backpressure: exempt from frame and idle timeouts */
        bool counted; /* in the listener's count of its process */
        bool closing;
};

/* A connection ready for uv_accept() into c->pipe; NULL on out-of-memory. */
ss_conn *ss_conn_new(uv_loop_t *loop, const ss_conn_env *env, uint64_t id);

/* After uv_accept(): read the peer's credentials (pid, uid, gid). 0 or -errno. */
int ss_conn_identify(ss_conn *c);

/* Start reading. 0 or a libuv error (the caller closes). */
int ss_conn_start(ss_conn *c);

/* Read again a connection the backpressure held, after the frames it read before the hold
 * (while the exporters are still too full it stays held); its frame and idle deadlines
 * start anew. */
void ss_conn_resume(ss_conn *c);

/* The frames a held connection read and did not process yet, processed now: at the
 * listener's close, so that nothing read is lost. */
void ss_conn_process_held(ss_conn *c);

/* Whether the connection holds nothing: no open span, no partial frame. */
bool ss_conn_idle(const ss_conn *c);

/* Give back an input buffer that grew for large frames and has not needed it for a while,
 * and the whole of an empty one after a while without input. The listener calls it from its
 * timer. */
void ss_conn_shrink(ss_conn *c, uint64_t now_ms);

/* Close with a reason, logged (rate-limited). */
void ss_conn_close_because(ss_conn *c, const char *why);

/* Close (idempotent): the session detaches, env->closed() runs from the loop, then the
 * connection is freed. */
void ss_conn_close(ss_conn *c);
