/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The trace table of the assembler (internal to trace/): finished spans wait
 * in their trace until its last open span ends, then go to the sink whole.
 * Two bounds keep a trace from holding them for ever: max_trace_spans (a
 * large trace goes out in chunks) and, when one client's spans under a trace
 * are all done but another client's are still open, foreign_wait (then what
 * is done goes out, so no stranger can pin a client's trace by opening a
 * child under its id). Loop thread only; never blocks.
 */

#include <stdbool.h>
#include <stdint.h>

#include "base/hashmap.h"
#include "model/sink.h"
#include "model/span.h"
#include "trace/assembler.h"

/* One client's open spans in a trace; owner is its session, compared, never read. */
typedef struct ss_trace_part {
        const void *owner;
        uint32_t open;
} ss_trace_part;

typedef struct ss_trace {
        uint8_t id[SS_TRACE_ID_LEN];
        uint32_t open; /* spans of this trace still open, in any session */
        uint32_t n_parts;
        uint32_t cap_parts;
        uint32_t n_done;
        uint32_t cap_done;
        bool decided;         /* the head decision is made */
        bool head_drop;       /* ... and it drops the trace */
        bool discard;         /* ... with no tail policy to keep it: spans hold nothing */
        ss_trace_part *parts; /* &one while one client has spans open, else malloc'd */
        ss_trace_part one;
        ss_span **done;               /* finished spans, one reference each */
        uint64_t done_bytes;          /* ss_span_size() of the done spans */
        double head_rate;             /* the head decision's rate; < 0: a remote parent's */
        uint64_t release_at_ns;       /* waiting for strangers' spans until then; 0: not */
        const void *waiter;           /* whose spans are done and wait */
        struct ss_trace *prev, *next; /* the table's list of waiting traces */
} ss_trace;

typedef struct ss_trace_table {
        ss_map traces;  /* trace id -> ss_trace */
        ss_trace *last; /* the trace ss_tt_get() found or made last; NULL once freed */
        uint8_t last_id[SS_TRACE_ID_LEN]; /* its id, compared without touching it */
        ss_trace *waiting, *waiting_tail;
        ss_sink *out;
        uint32_t max_trace_spans;
        uint64_t max_trace_bytes; /* 0: no bound */
        uint64_t foreign_wait_ns;
        ss_assembler_stats *n; /* the assembler's, where the table counts */
} ss_trace_table;

void ss_tt_init(ss_trace_table *tt, ss_sink *out, uint32_t max_trace_spans,
                uint64_t max_trace_bytes, uint64_t foreign_wait_ms, ss_assembler_stats *n);

/* The trace of id, created when asked; NULL when absent or on out-of-memory. */
ss_trace *ss_tt_get(ss_trace_table *tt, const uint8_t *id, bool create);

/* A span of owner opened in t. 0 or -ENOMEM (nothing changed). */
int ss_tt_opened(ss_trace_table *tt, ss_trace *t, const void *owner);

/* Forget t if nothing is open or waiting in it (after a start that failed). */
void ss_tt_discard(ss_trace_table *tt, ss_trace *t);

/*
 * A span of owner finished in t: takes the caller's reference to s. was_open
 * says whether it was counted by ss_tt_opened() (a whole SPAN message was
 * not). Hands t on when it is complete, or a chunk of it at the bounds
 * (max_trace_spans, max_trace_bytes). A discarded span is only counted.
 */
void ss_tt_finished(ss_trace_table *tt, ss_trace *t, const void *owner, bool was_open, ss_span *s,
                    uint64_t now_ns);

/* Hand on the done spans of traces whose wait for strangers is over, while room(ctx) (room
 * NULL: always) says the stages after have room; the others wait for a later call. */
void ss_tt_release_due(ss_trace_table *tt, uint64_t now_ns, bool (*room)(void *ctx), void *ctx);

/* Hand on every finished span still held and free the table. */
void ss_tt_free(ss_trace_table *tt);
