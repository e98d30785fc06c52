/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the files of trace/ share: the assembler (assembler.c: messages,
 * lifetime, counters), its sessions and peer processes (session.c) and its
 * trace table (table.c). Nothing outside trace/ includes this. Loop thread.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "base/hashmap.h"
#include "trace/assembler.h"
#include "trace/table.h"

#define SS_SESSION_KEY_LEN 16u /* instance, peer pid, peer uid */
#define SS_PROC_KEY_LEN    8u  /* peer pid, peer uid */

/* A peer process: what its sessions hold together, and a pidfd that says when it exits. */
typedef struct ss_proc {
        uv_poll_t poll; /* on pidfd while polling; first: the handle's address is the proc's */
        ss_assembler *a;
        uint8_t key[SS_PROC_KEY_LEN];
        pid_t pid;
        uid_t uid;
        uint32_t sessions;
        uint32_t open_spans;
        int pidfd; /* -1: none (an unknown pid, or an old kernel) */
        bool polling;
        bool gone; /* the process exited */
} ss_proc;

struct ss_session {
        ss_assembler *a;
        uint8_t key[SS_SESSION_KEY_LEN];
        ss_proc *proc;
        ss_resource *resource;
        ss_map open; /* span id -> ss_span (one reference) */
        unsigned attached;
        uint64_t detached_ns;  /* when its last connection closed: an orphan's end */
        uint64_t orphan_at_ns; /* when detached: the end of the grace period */
        uint64_t spans_started;
        uint64_t spans_finished;
        double sample_rate;   /* HELLO's, 1 when not said */
        bool include_content; /* HELLO's, true when not said */
};

struct ss_assembler {
        uv_loop_t *loop;
        uv_timer_t sweep; /* grace periods, and traces waiting for strangers' spans */
        ss_assembler_config cfg;
        ss_limits span_limits;     /* cfg.limits, counting into hits */
        ss_limits resource_limits; /* the same for HELLO attributes */
        ss_limit_hits hits;
        ss_trace_table tt;
        ss_map sessions; /* key -> ss_session */
        ss_map procs;    /* key -> ss_proc */
        size_t open_spans;
        ss_assembler_stats stats;
        ss_rollup_stats rollup;
        ss_span_observer observe; /* NULL: none */
        void *observe_ctx;
        bool (*room)(const void *ctx); /* NULL: always room (ss_assembler_set_room()) */
        const void *room_ctx;
};

/* ---- assembler.c ---- */

/* sp of s finished (ended or orphaned), before it is handed to the trace table: feed it to
 * the roll-up of the run it is under, or apply the run's roll-up when it is one. Spans of s
 * that are open are looked up for the parent chain, so call it before removing them. */
void ss_assembler_finishing(ss_assembler *a, ss_session *s, ss_span *sp);

/* Whether the stages after have room for a timer's hand-off now; when not, counted as a
 * hand-off left for later. */
bool ss_assembler_room(ss_assembler *a);

/* Free the roll-ups of runs s still has open. */
void ss_assembler_drop_runs(ss_session *s);

/* ---- session.c ---- */

/* The session of HELLO options from a peer, new or found again (a reconnect). NULL: ENOMEM. */
ss_session *ss_session_attach(ss_assembler *a, const msgpack_object_map *options, pid_t pid,
                              uid_t uid);

/* A span of s opened or finished: the counts of its process follow. */
void ss_session_span_opened(ss_session *s);
void ss_session_span_closed(ss_session *s);

/* End every open span of every session past its grace period (or whose process exited
 * while there was no room), while ss_assembler_room() says there is room. */
void ss_sessions_sweep(ss_assembler *a, uint64_t now_ns);

/* A detached session restored from the state file (trace/state.c), with no spans yet: key,
 * peer and resource (its reference moves) as saved. NULL: ENOMEM. */
ss_session *ss_session_restore(ss_assembler *a, const uint8_t *key, pid_t pid, uid_t uid,
                               ss_resource *resource);

/* The spans of a restored session are in: when its process is gone, they end now as
 * orphans (the session is freed); else they wait for the client's return, at worst until
 * orphan_at_ns. */
void ss_session_restored(ss_session *s);

/* End every session's open spans as orphaned (reason given; NULL: they were saved, and are
 * let go unsent) and free sessions and procs; the procs' handles close in a later loop
 * iteration. */
void ss_sessions_free(ss_assembler *a, const char *reason);
