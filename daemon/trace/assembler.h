/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The assembler turns wire messages into finished traces.
 *
 * A session is one client instance (HELLO's "instance"): it owns the
 * resource and the spans that client has open, so a client can only touch
 * spans it started itself. A session outlives its connections by a grace
 * period, so a client that reconnects with the same instance finishes its
 * spans; after the grace its open spans end with status ERROR and
 * sidespan.orphaned=true, never silently lost.
 *
 * The trace table groups spans by trace id across sessions. A trace is
 * handed to the next stage (an ss_sink) once its last open span ends; a
 * trace that collects max_trace_spans finished spans while still open is
 * handed on in chunks, so memory stays bounded. The assembler knows nothing
 * of what lies behind its sink.
 *
 * Loop thread only; nothing here blocks.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "base/counters.h"
#include "model/sink.h"
#include "model/span.h"
#include "ss-wire.h"
#include "trace/pricing.h"
#include "trace/rollup.h"

typedef struct ss_assembler ss_assembler;
typedef struct ss_session ss_session;

typedef struct ss_assembler_config {
        ss_limits limits;            /* per span and event; its hits pointer is ignored */
        uint32_t max_resource_attrs; /* per client (HELLO) */
        uint32_t max_open_spans;     /* per session */
        uint32_t max_open_process;   /* per peer process (pid and uid), all its sessions */
        uint32_t max_open_total;     /* across sessions, those in their grace period included */
        uint32_t max_trace_spans;    /* finished spans held per open trace */
        uint64_t orphan_grace_ms;
        uint64_t foreign_wait_ms;  /* how long a client's done spans wait for strangers' */
        uint64_t max_trace_bytes;  /* finished spans' bytes held per open trace */
        double sample_rate;        /* head sampling, daemon-wide (policy/sampling.h) */
        bool tail_active;          /* a tail policy may keep what the head drops */
        const ss_pricing *pricing; /* roll-up costs (borrowed); NULL: none */
} ss_assembler_config;

typedef struct ss_assembler_stats {
        uint64_t sessions; /* sessions created */
        uint64_t spans_started;
        uint64_t spans_finished; /* ended, whole, or orphaned */
        uint64_t spans_orphaned;
        uint64_t traces_completed;
        uint64_t chunks_early;            /* partial traces handed on at max_trace_spans */
        uint64_t traces_released;         /* done spans handed on after foreign_wait_ms */
        uint64_t sessions_gone;           /* orphaned at once: the peer process exited */
        uint64_t unknown_span;            /* ATTRS/EVENT/END for a span not open in the session */
        uint64_t duplicate_span;          /* START for a span id already open in the session */
        uint64_t open_span_limit;         /* START refused at any open span limit */
        uint64_t open_span_limit_process; /* ... of which at max_open_process */
        uint64_t resource_attrs_dropped;  /* HELLO attributes past the limits */
        uint64_t traces_discarded;        /* head-dropped at their first span, no tail policy */
        uint64_t spans_discarded;         /* ... their spans, which held nothing */
        uint64_t no_memory;
        uint64_t handoffs; /* times finished spans were handed on (ingest checks its hold) */
        uint64_t timer_handoffs_waited; /* a timer's hand-off left for later: no room after */
} ss_assembler_stats;

/* Shown each finished span (ended, whole or orphaned) once its roll-ups are applied, before
 * any sampling: the metrics stage's entry. */
typedef void (*ss_span_observer)(void *ctx, const ss_span *s);

/* Show every finished span to fn(ctx, span) from now on; fn NULL: none. With an observer,
 * spans of head-dropped traces keep their attributes (the policy stage drops them), so
 * the observer sees them whole. Set it before clients connect. */
void ss_assembler_set_observer(ss_assembler *a, ss_span_observer fn, void *ctx);

/*
 * What a timer hands on (a trace's done spans at the end of their wait for strangers', the
 * spans of a client that left or exited) waits while room(ctx) says the stages after have
 * no room: input is held then, and this cannot be, so the sweep leaves it for a later
 * sweep, which comes within a second. Without it (the default) there is always room.
 */
void ss_assembler_set_room(ss_assembler *a, bool (*room)(const void *ctx), const void *ctx);

/* A new assembler handing finished traces to out (borrowed: it must outlive the
 * assembler). 0, -ENOMEM or a libuv error. */
int ss_assembler_new(uv_loop_t *loop, const ss_assembler_config *cfg, ss_sink *out,
                     ss_assembler **ret);

/* End every open span as orphaned (reason given; NULL after ss_assembler_save(): they are
 * let go unsent, for the next start), hand every finished span on, free (its timer closes
 * in a later loop iteration). Accepts NULL. */
void ss_assembler_free(ss_assembler *a, const char *reason);

/*
 * A connection said HELLO: attach it to the session of that instance (a
 * reconnect) or to a new one. A session is only found again by the same
 * instance from the same peer process and user (SO_PEERCRED), so no client
 * can take over another's spans. Its resource carries the peer's real pid
 * and user (model/resource.h). The session stays until the matching
 * ss_session_detach() plus the grace period, or until the peer process is
 * seen to exit. NULL on out-of-memory.
 */
ss_session *ss_assembler_hello(ss_assembler *a, const msgpack_object_map *options, pid_t peer_pid,
                               uid_t peer_uid);

/* The connection of a session closed. */
void ss_session_detach(ss_session *s);

/* Spans the session has open. */
size_t ss_session_open_spans(const ss_session *s);

/* The resource of a session (borrowed). */
const ss_resource *ss_session_resource(const ss_session *s);

/*
 * Apply one span message (SPAN_START, SPAN_ATTRS, SPAN_EVENT, SPAN_END,
 * SPAN) of a session. 0, or a counted, non-fatal -errno for the caller to
 * log: -ENOENT unknown span, -EEXIST duplicate start, -ENOSPC open span
 * limit, -ENOMEM.
 */
int ss_assembler_apply(ss_assembler *a, ss_session *s, const ss_msg *m);

/* Open spans across all sessions. */
size_t ss_assembler_open_spans(const ss_assembler *a);

const ss_assembler_stats *ss_assembler_get_stats(const ss_assembler *a);

/* The counters of ss_assembler_stats, of the trace table and of the limits, and
 * "spans_open"; an ss_counters_fn. */
void ss_assembler_counters(const void *assembler, ss_counters *out);

/* A session's own counters (for a client that may not see the daemon's). */
void ss_session_counters(const ss_session *s, ss_counters *out);
