/* SPDX-License-Identifier: MIT */
/* The assembler: hierarchy, traces over several sessions, bad sequences, orphans, limits. */
#include "ss-check.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trace/assembler.h"
#include "trace/table.h"
#include "base/log.h"
#include "fixture.h"
#include "ss-id.h"

static uv_loop_t loop;
static fx_sink rec;
static ss_assembler *asm_;
static ss_assembler_config cfg;

static void setup(void)
{
        ss_log_set_level(SS_LOG_ERR);
        fx_sink_init(&rec);
        cfg = (ss_assembler_config){
            .limits = {.max_attrs = 16, .max_events = 16, .max_value_len = 1024},
            .max_open_spans = 100,
            .max_trace_spans = 1000,
            .sample_rate = 1.0,
            .orphan_grace_ms = 40,
        };
        ck_assert_int_eq(uv_loop_init(&loop), 0);
        ck_assert_int_eq(ss_assembler_new(&loop, &cfg, &rec.base, &asm_), 0);
}

static void teardown(void)
{
        ss_assembler_free(asm_, "test over");
        fx_sink_clear(&rec);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(uv_loop_close(&loop), 0);
}

/* A session as HELLO with {instance: inst, service.name: svc} from pid and uid creates it. */
static ss_session *hello_as(uint64_t inst, const char *svc, pid_t pid, uid_t uid)
{
        msgpack_unpacked u;
        msgpack_packer pk;
        ss_session *s;
        ss_buf b;
        size_t off = 0;

        ss_buf_init(&b, 1024);
        msgpack_packer_init(&pk, &b, ss_buf_msgpack_write);
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "instance", 8);
        msgpack_pack_uint64(&pk, inst);
        msgpack_pack_str_with_body(&pk, "service.name", 12);
        msgpack_pack_str_with_body(&pk, svc, strlen(svc));
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(msgpack_unpack_next(&u, (char *)b.data, b.len, &off),
                         MSGPACK_UNPACK_SUCCESS);
        s = ss_assembler_hello(asm_, &u.data.via.map, pid, uid);
        ck_assert_ptr_nonnull(s);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&b);
        return s;
}

/* The same from uid 1000. */
static ss_session *hello(uint64_t inst, const char *svc, pid_t pid)
{
        return hello_as(inst, svc, pid, 1000);
}

/* Encode one message with the client's encoder, decode it as the daemon does, apply it. */
static int apply_frame(ss_session *s, const ss_buf *b)
{
        msgpack_unpacked u;
        const uint8_t *p;
        size_t n;
        ss_msg m;
        int r;

        ck_assert_int_gt(ss_frame_parse(b->data, b->len, SS_MAX_FRAME_DEFAULT, &p, &n), 0);
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(ss_wire_decode(p, n, &u, &m), 0);
        r = ss_assembler_apply(asm_, s, &m);
        msgpack_unpacked_destroy(&u);
        return r;
}

static int start(ss_session *s, const uint8_t *tid, uint8_t sid_byte, int parent_byte,
                 const char *name)
{
        uint8_t sid[8] = {sid_byte, 1, 1, 1, 1, 1, 1, 1}, pid[8] = {0, 1, 1, 1, 1, 1, 1, 1};
        ss_span_head h = {.trace_id = tid,
                          .span_id = sid,
                          .name = name,
                          .name_len = strlen(name),
                          .kind = SS_KIND_INTERNAL,
                          .start_ns = 1000 + sid_byte};
        ss_buf b;
        int r;

        pid[0] = (uint8_t)parent_byte;
        h.parent_id = parent_byte ? pid : NULL;
        ss_buf_init(&b, 4096);
        ck_assert_int_eq(ss_wire_put_span_start(&b, 4096, &h, NULL, NULL), 0);
        r = apply_frame(s, &b);
        ss_buf_free(&b);
        return r;
}

static int end(ss_session *s, uint8_t sid_byte, int status)
{
        uint8_t sid[8] = {sid_byte, 1, 1, 1, 1, 1, 1, 1};
        ss_buf b;
        int r;

        ss_buf_init(&b, 4096);
        ck_assert_int_eq(ss_wire_put_span_end(&b, 4096, sid, 5000 + sid_byte, status,
                                              status == SS_STATUS_ERROR ? "bad" : NULL, NULL),
                         0);
        r = apply_frame(s, &b);
        ss_buf_free(&b);
        return r;
}

static const ss_span *find(const char *name)
{
        const ss_span *s = fx_sink_find(&rec, name);

        ck_assert_msg(s != NULL, "span %s not handed on", name);
        return s;
}

static const uint8_t T1[16] = {0x11, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
static const uint8_t T2[16] = {0x22, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

START_TEST(hierarchy_completes_when_last_span_ends)
{
        ss_session *s = hello(7, "svc", 100);

        ck_assert_int_eq(start(s, T1, 1, 0, "agent.run"), 0);
        ck_assert_int_eq(start(s, T1, 2, 1, "pipeline.execute"), 0);
        ck_assert_int_eq(start(s, T1, 3, 2, "pipeline.step.model_execution"), 0);
        ck_assert_int_eq(end(s, 3, SS_STATUS_OK), 0);
        ck_assert_int_eq(end(s, 2, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.puts, 0);
        ck_assert_uint_eq(ss_assembler_open_spans(asm_), 1);
        ck_assert_int_eq(end(s, 1, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.puts, 1);
        ck_assert_uint_eq(rec.n, 3);
        ck_assert(!find("agent.run")->has_parent);
        ck_assert_uint_eq(find("pipeline.execute")->parent_id[0], 1);
        ck_assert_uint_eq(find("pipeline.step.model_execution")->parent_id[0], 2);
        ck_assert_uint_eq(find("agent.run")->end_ns, 5001);
        ck_assert_uint_eq(ss_assembler_get_stats(asm_)->traces_completed, 1);
        ck_assert_uint_eq(ss_assembler_open_spans(asm_), 0);
        ss_session_detach(s);
}
END_TEST

/* A trace that completed is gone: a span of its id afterwards starts a trace anew, right
 * after it or after another trace (the table remembers the trace it found last). */
START_TEST(completed_trace_starts_anew)
{
        ss_session *s = hello(7, "svc", 100);

        ck_assert_int_eq(start(s, T1, 1, 0, "first"), 0);
        ck_assert_int_eq(end(s, 1, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.puts, 1);
        ck_assert_int_eq(start(s, T1, 2, 0, "again"), 0);
        ck_assert_int_eq(end(s, 2, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.puts, 2);
        ck_assert_int_eq(start(s, T2, 3, 0, "other"), 0);
        ck_assert_int_eq(start(s, T1, 4, 0, "third"), 0);
        ck_assert_int_eq(end(s, 3, SS_STATUS_OK), 0);
        ck_assert_int_eq(end(s, 4, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.puts, 4);
        ck_assert_uint_eq(rec.n, 4);
        ck_assert(!find("again")->has_parent);
        ck_assert(!find("third")->has_parent);
        ck_assert_uint_eq(ss_assembler_get_stats(asm_)->traces_completed, 4);
        ck_assert_uint_eq(ss_assembler_open_spans(asm_), 0);
        ss_session_detach(s);
}
END_TEST

START_TEST(trace_over_two_sessions)
{
        ss_session *a = hello(1, "planner", 100), *b = hello(2, "worker", 101);
        const msgpack_object *svc;

        ck_assert_int_eq(start(a, T1, 1, 0, "agent.run"), 0);
        ck_assert_int_eq(start(b, T1, 2, 1, "tool.execute"), 0);
        ck_assert_int_eq(end(a, 1, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.puts, 0); /* the worker's span is still open */
        ck_assert_int_eq(end(b, 2, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.puts, 1);
        ck_assert_uint_eq(rec.n, 2);
        svc = ss_attrs_get(&find("tool.execute")->resource->attrs, "service.name");
        ck_assert_int_eq(svc->type, MSGPACK_OBJECT_STR);
        ck_assert_mem_eq(svc->via.str.ptr, "worker", 6);
        ck_assert_ptr_ne(find("tool.execute")->resource, find("agent.run")->resource);
        ss_session_detach(a);
        ss_session_detach(b);
}
END_TEST

START_TEST(session_cannot_touch_another_sessions_span)
{
        ss_session *a = hello(1, "a", 100), *b = hello(2, "b", 101);

        ck_assert_int_eq(start(a, T1, 1, 0, "mine"), 0);
        ck_assert_int_eq(end(b, 1, SS_STATUS_ERROR), -ENOENT);
        ck_assert_int_eq(end(a, 1, SS_STATUS_OK), 0);
        ck_assert_int_eq(find("mine")->status_code, SS_STATUS_OK);
        ss_session_detach(a);
        ss_session_detach(b);
}
END_TEST

START_TEST(ended_twice_and_unknown_span)
{
        ss_session *s = hello(7, "svc", 100);

        ck_assert_int_eq(start(s, T1, 1, 0, "once"), 0);
        ck_assert_int_eq(end(s, 1, SS_STATUS_OK), 0);
        ck_assert_int_eq(end(s, 1, SS_STATUS_ERROR), -ENOENT);
        ck_assert_int_eq(end(s, 9, SS_STATUS_OK), -ENOENT);
        ck_assert_uint_eq(ss_assembler_get_stats(asm_)->unknown_span, 2);
        ck_assert_uint_eq(rec.n, 1);
        ck_assert_int_eq(find("once")->status_code, SS_STATUS_OK);
        ss_session_detach(s);
}
END_TEST

START_TEST(duplicate_start_and_open_limit)
{
        ss_session *s = hello(7, "svc", 100);

        ck_assert_int_eq(start(s, T1, 1, 0, "a"), 0);
        ck_assert_int_eq(start(s, T1, 1, 0, "a-again"), -EEXIST);
        ck_assert_uint_eq(ss_assembler_get_stats(asm_)->duplicate_span, 1);
        for (int i = 2; i <= 100; i++)
                ck_assert_int_eq(start(s, T2, (uint8_t)i, 0, "many"), 0);
        ck_assert_int_eq(start(s, T2, 101, 0, "one-too-many"), -ENOSPC);
        ck_assert_uint_eq(ss_assembler_get_stats(asm_)->open_span_limit, 1);
        ss_session_detach(s);
}
END_TEST

static void stop_loop(uv_timer_t *t)
{
        uv_stop(t->loop);
}

static void run_ms(uint64_t ms)
{
        uv_timer_t t;

        uv_timer_init(&loop, &t);
        uv_timer_start(&t, stop_loop, ms, 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_close((uv_handle_t *)&t, NULL);
        uv_run(&loop, UV_RUN_NOWAIT);
}

START_TEST(total_open_limit_spans_sessions)
{
        ss_session *a, *b;

        ss_assembler_free(asm_, "restart");
        uv_run(&loop, UV_RUN_DEFAULT);
        cfg.max_open_total = 3;
        ck_assert_int_eq(ss_assembler_new(&loop, &cfg, &rec.base, &asm_), 0);
        a = hello(1, "a", 100);
        b = hello(2, "b", 101);
        ck_assert_int_eq(start(a, T1, 1, 0, "a1"), 0);
        ck_assert_int_eq(start(a, T1, 2, 1, "a2"), 0);
        ss_session_detach(a); /* in its grace period, its spans still count */
        ck_assert_int_eq(start(b, T2, 3, 0, "b1"), 0);
        ck_assert_int_eq(start(b, T2, 4, 3, "b2"), -ENOSPC);
        ck_assert_uint_eq(ss_assembler_get_stats(asm_)->open_span_limit, 1);
        ck_assert_int_eq(end(b, 3, SS_STATUS_OK), 0);
        ck_assert_int_eq(start(b, T2, 5, 0, "b3"), 0);
        ss_session_detach(b);
}
END_TEST

START_TEST(orphans_end_as_error_after_grace)
{
        ss_session *s = hello(7, "svc", 100);
        const msgpack_object *o;

        ck_assert_int_eq(start(s, T1, 1, 0, "run"), 0);
        ck_assert_int_eq(start(s, T1, 2, 1, "step"), 0);
        ck_assert_int_eq(end(s, 2, SS_STATUS_OK), 0);
        ss_session_detach(s);
        ck_assert_uint_eq(rec.n, 0);
        run_ms(200);
        ck_assert_uint_eq(rec.n, 2);
        ck_assert_int_eq(find("run")->status_code, SS_STATUS_ERROR);
        o = ss_attrs_get(&find("run")->attrs, "sidespan.orphaned");
        ck_assert_ptr_nonnull(o);
        ck_assert(o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean);
        ck_assert_int_eq(find("step")->status_code, SS_STATUS_OK);
        ck_assert_uint_eq(ss_assembler_get_stats(asm_)->spans_orphaned, 1);
}
END_TEST

START_TEST(reconnect_within_grace_keeps_spans)
{
        ss_session *s = hello(7, "svc", 100), *again;

        ck_assert_int_eq(start(s, T1, 1, 0, "run"), 0);
        ss_session_detach(s);
        again = hello(7, "svc", 100);
        ck_assert_ptr_eq(again, s);
        run_ms(120); /* past the grace: attached again, so nothing is orphaned */
        ck_assert_int_eq(end(again, 1, SS_STATUS_OK), 0);
        ck_assert_int_eq(find("run")->status_code, SS_STATUS_OK);
        ck_assert_uint_eq(ss_assembler_get_stats(asm_)->spans_orphaned, 0);
        ss_session_detach(again);
}
END_TEST

START_TEST(same_instance_other_process_is_another_session)
{
        ss_session *s = hello(7, "svc", 100), *other = hello(7, "svc", 999);

        ck_assert_ptr_ne(s, other);
        ck_assert_int_eq(start(s, T1, 1, 0, "run"), 0);
        ck_assert_int_eq(end(other, 1, SS_STATUS_OK), -ENOENT);
        ck_assert_int_eq(end(s, 1, SS_STATUS_OK), 0);
        ss_session_detach(s);
        ss_session_detach(other);
}
END_TEST

START_TEST(long_trace_is_handed_on_in_chunks)
{
        ss_session *s;

        ss_assembler_free(asm_, "restart");
        uv_run(&loop, UV_RUN_DEFAULT);
        cfg.max_trace_spans = 10;
        ck_assert_int_eq(ss_assembler_new(&loop, &cfg, &rec.base, &asm_), 0);
        s = hello(7, "svc", 100);
        ck_assert_int_eq(start(s, T1, 1, 0, "root"), 0);
        for (int i = 2; i < 27; i++) {
                ck_assert_int_eq(start(s, T1, (uint8_t)i, 1, "child"), 0);
                ck_assert_int_eq(end(s, (uint8_t)i, SS_STATUS_OK), 0);
        }
        ck_assert_uint_eq(rec.puts, 2); /* 20 of 25 children handed on early */
        ck_assert_uint_eq(rec.n, 20);
        ck_assert_int_eq(end(s, 1, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.puts, 3);
        ck_assert_uint_eq(rec.n, 26);
        ck_assert_uint_eq(ss_assembler_get_stats(asm_)->chunks_early, 2);
        ss_session_detach(s);
}
END_TEST

START_TEST(shutdown_orphans_open_spans)
{
        ss_session *s = hello(7, "svc", 100);

        ck_assert_int_eq(start(s, T1, 1, 0, "open-at-exit"), 0);
        ss_assembler_free(asm_, "daemon shutting down");
        ck_assert_uint_eq(rec.n, 1);
        ck_assert_int_eq(find("open-at-exit")->status_code, SS_STATUS_ERROR);
        ck_assert_mem_eq(find("open-at-exit")->status_msg.ptr, "daemon shutting down", 20);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(ss_assembler_new(&loop, &cfg, &rec.base, &asm_), 0);
}
END_TEST

/* A shutdown that keeps open spans for the state file (no reason) hands nothing on and frees
 * an open run's roll-up with its span, in either order of the run and its child. */
START_TEST(shutdown_for_state_frees_open_runs)
{
        ss_session *s = hello(7, "svc", 100);

        ck_assert_int_eq(start(s, T1, 1, 0, "agent.run"), 0);
        ck_assert_int_eq(start(s, T1, 2, 1, "chat gpt-4o"), 0);
        ck_assert_int_eq(start(s, T2, 3, 0, "agent.run"), 0);
        ck_assert_uint_eq(ss_assembler_open_spans(asm_), 3);
        ss_assembler_free(asm_, NULL);
        ck_assert_uint_eq(rec.n, 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(ss_assembler_new(&loop, &cfg, &rec.base, &asm_), 0);
}
END_TEST

/* ---- hostile clients ------------------------------------------------------------------ */

/* A new assembler with cfg as the test has changed it. */
static void restart(void)
{
        ss_assembler_free(asm_, "restart");
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(ss_assembler_new(&loop, &cfg, &rec.base, &asm_), 0);
}

/* A counter as STATS reports it; absent is a failure. */
static uint64_t counter(const char *name)
{
        return fx_counter(ss_assembler_counters, asm_, name);
}

/* Turn the loop until counter name has value. */
static void wait_counter(const char *name, uint64_t value)
{
        fx_wait_counter(&loop, ss_assembler_counters, asm_, name, value);
}

START_TEST(open_limit_per_process_spans_its_sessions)
{
        ss_session *a, *b, *other_pid, *other_uid;

        cfg.max_open_process = 3;
        restart();
        /* Two instances of one process share its limit. */
        a = hello(1, "a", 100);
        b = hello(2, "b", 100);
        other_pid = hello(3, "c", 101);
        other_uid = hello_as(4, "d", 100, 1001);
        ck_assert_int_eq(start(a, T1, 1, 0, "a1"), 0);
        ck_assert_int_eq(start(a, T1, 2, 1, "a2"), 0);
        ck_assert_int_eq(start(b, T2, 3, 0, "b1"), 0);
        ck_assert_int_eq(start(b, T2, 4, 3, "b2"), -ENOSPC);
        ck_assert_int_eq(start(a, T1, 5, 1, "a3"), -ENOSPC);
        ck_assert_uint_eq(counter("open_span_limit_process"), 2);
        ck_assert_uint_eq(counter("open_span_limit"), 2);
        /* Another pid, or the same pid number under another uid, is another process. */
        ck_assert_int_eq(start(other_pid, T2, 6, 0, "c1"), 0);
        ck_assert_int_eq(start(other_uid, T2, 7, 0, "d1"), 0);
        /* A span ended gives its slot back to any session of the process. */
        ck_assert_int_eq(end(a, 2, SS_STATUS_OK), 0);
        ck_assert_int_eq(start(b, T2, 4, 3, "b2"), 0);
        ck_assert_uint_eq(counter("open_span_limit_process"), 2);
        ss_session_detach(a);
        ss_session_detach(b);
        ss_session_detach(other_pid);
        ss_session_detach(other_uid);
}
END_TEST

START_TEST(resource_attributes_capped_and_counted)
{
        msgpack_object_kv kv[5] = {
            fx_kv("instance", fx_uint(5)),
            fx_kv("service.name", fx_str("svc")),
            fx_kv("deployment", fx_str("x")),
            fx_kv("team", fx_str("y")),
            fx_kv("this-key-is-too-long", fx_uint(1)),
        };
        msgpack_object m = fx_map(kv, 5);
        ss_session *s;

        cfg.max_resource_attrs = 2;
        cfg.limits.max_key_len = 16;
        restart();
        s = ss_assembler_hello(asm_, &m.via.map, 100, 1000);
        ck_assert_ptr_nonnull(s);
        ck_assert_ptr_nonnull(ss_attrs_get(&ss_session_resource(s)->attrs, "deployment"));
        ck_assert_ptr_null(ss_attrs_get(&ss_session_resource(s)->attrs, "team"));
        ck_assert_uint_eq(ss_session_resource(s)->dropped_attrs, 2);
        ck_assert_uint_eq(counter("resource_attrs_dropped"), 2);
        ck_assert_uint_eq(counter("attrs_dropped_count"), 1);
        ck_assert_uint_eq(counter("attrs_dropped_key_length"), 1);
        ss_session_detach(s);
}
END_TEST

/* ---- waiting for strangers: the trace table on a clock of the test's ---------------------- */

#define WAIT_MS 1000u
#define NS_MS   1000000ull
#define T0      (1000000ull * NS_MS) /* any time but 0, which means "not waiting" */

static ss_trace_table tt;
static ss_assembler_stats tstats;
static ss_resource *tres;
static const int owner_a, owner_b, owner_c; /* sessions, compared by address */

static void table_open(void)
{
        memset(&tstats, 0, sizeof(tstats));
        ss_tt_init(&tt, &rec.base, 1000, 0, WAIT_MS, &tstats);
        tres = mp_resource("table", NULL, NULL);
}

static void table_close(void)
{
        ss_tt_free(&tt);
        ss_resource_unref(tres);
}

/* The trace of seed tseed, as the table holds it. */
static ss_trace *trace_of(uint8_t tseed)
{
        uint8_t id[SS_TRACE_ID_LEN];
        ss_trace *t;

        fx_trace_id(tseed, id);
        t = ss_tt_get(&tt, id, true);
        ck_assert_ptr_nonnull(t);
        return t;
}

static void opened_in(uint8_t tseed, const void *owner)
{
        ck_assert_int_eq(ss_tt_opened(&tt, trace_of(tseed), owner), 0);
}

static void finished_in(uint8_t tseed, const void *owner, const char *name, uint8_t seed,
                        uint64_t now)
{
        ss_tt_finished(&tt, trace_of(tseed), owner, true,
                       fx_finished_span(tres, name, tseed, seed, 1), now);
}

/* In the trace of seed 1. */
static void opened(const void *owner)
{
        opened_in(1, owner);
}

static void finished(const void *owner, const char *name, uint8_t seed, uint64_t now)
{
        finished_in(1, owner, name, seed, now);
}

/* A room callback: room for *(unsigned *)ctx more hand-offs. */
static bool room_left(void *ctx)
{
        unsigned *n = ctx;

        return *n > 0 && (*n)--;
}

START_TEST(done_spans_wait_for_strangers_then_go)
{
        table_open();
        opened(&owner_a); /* A's root */
        opened(&owner_b); /* B's child under it, held open */
        finished(&owner_a, "a.root", 1, T0);
        ss_tt_release_due(&tt, T0 + WAIT_MS * NS_MS - 1, NULL, NULL);
        ck_assert_uint_eq(rec.puts, 0);
        /* A stranger's new span does not restart the clock. */
        opened(&owner_c);
        ss_tt_release_due(&tt, T0 + WAIT_MS * NS_MS - 1, NULL, NULL);
        ck_assert_uint_eq(rec.puts, 0);
        ss_tt_release_due(&tt, T0 + WAIT_MS * NS_MS, NULL, NULL);
        ck_assert_uint_eq(rec.puts, 1);
        ck_assert_uint_eq(rec.n, 1);
        ck_assert_ptr_nonnull(fx_sink_find(&rec, "a.root"));
        ck_assert_uint_eq(tstats.traces_released, 1);
        /* B's child comes later as its own chunk, once it too has waited for C. */
        finished(&owner_b, "b.child", 2, T0 + 2 * WAIT_MS * NS_MS);
        ss_tt_release_due(&tt, T0 + 3 * WAIT_MS * NS_MS - 1, NULL, NULL);
        ck_assert_uint_eq(rec.puts, 1);
        ss_tt_release_due(&tt, T0 + 3 * WAIT_MS * NS_MS, NULL, NULL);
        ck_assert_uint_eq(rec.puts, 2);
        ck_assert_ptr_eq(rec.spans[1], fx_sink_find(&rec, "b.child"));
        ck_assert_uint_eq(tstats.traces_released, 2);
        /* The last open span completes the trace. */
        finished(&owner_c, "c.child", 3, T0 + 4 * WAIT_MS * NS_MS);
        ck_assert_uint_eq(rec.puts, 3);
        ck_assert_uint_eq(rec.n, 3);
        ck_assert_uint_eq(tstats.traces_completed, 1);
        ck_assert_ptr_null(ss_tt_get(&tt, rec.spans[0]->trace_id, false));
        table_close();
}
END_TEST

START_TEST(owner_active_again_restarts_the_wait)
{
        table_open();
        opened(&owner_a);
        opened(&owner_b);
        finished(&owner_a, "a.root", 1, T0);
        /* A opens a new span in the trace: its spans wait no more for now. */
        opened(&owner_a);
        ss_tt_release_due(&tt, T0 + 10 * WAIT_MS * NS_MS, NULL, NULL);
        ck_assert_uint_eq(rec.puts, 0);
        /* Done again: a new wait from then. */
        finished(&owner_a, "a.again", 4, T0 + 10 * WAIT_MS * NS_MS);
        ss_tt_release_due(&tt, T0 + 11 * WAIT_MS * NS_MS - 1, NULL, NULL);
        ck_assert_uint_eq(rec.puts, 0);
        ss_tt_release_due(&tt, T0 + 11 * WAIT_MS * NS_MS, NULL, NULL);
        ck_assert_uint_eq(rec.puts, 1);
        ck_assert_uint_eq(rec.n, 2);
        ck_assert_ptr_nonnull(fx_sink_find(&rec, "a.root"));
        ck_assert_ptr_nonnull(fx_sink_find(&rec, "a.again"));
        ck_assert_uint_eq(tstats.traces_released, 1);
        table_close();
        /* ss_tt_free() hands on what is left: nothing of B's, which never finished. */
        ck_assert_uint_eq(rec.n, 2);
}
END_TEST

START_TEST(released_traces_wait_for_room)
{
        unsigned room = 0;

        table_open();
        for (uint8_t t = 1; t <= 2; t++) {
                opened_in(t, &owner_a);
                opened_in(t, &owner_b);
                finished_in(t, &owner_a, t == 1 ? "a.first" : "a.second", 1, T0);
        }
        /* Due, and no room: both stay. */
        ss_tt_release_due(&tt, T0 + WAIT_MS * NS_MS, room_left, &room);
        ck_assert_uint_eq(rec.puts, 0);
        /* Room for one: the first goes, the second waits for the next call. */
        room = 1;
        ss_tt_release_due(&tt, T0 + WAIT_MS * NS_MS, room_left, &room);
        ck_assert_uint_eq(rec.puts, 1);
        ck_assert_ptr_nonnull(fx_sink_find(&rec, "a.first"));
        room = 5;
        ss_tt_release_due(&tt, T0 + 2 * WAIT_MS * NS_MS, room_left, &room);
        ck_assert_uint_eq(rec.puts, 2);
        ck_assert_ptr_nonnull(fx_sink_find(&rec, "a.second"));
        ck_assert_uint_eq(tstats.traces_released, 2);
        ck_assert_uint_eq(room, 4);
        table_close();
}
END_TEST

/* ---- waiting for strangers: the assembler on the loop ------------------------------------ */

/* Under a wait of wait_ms: A's root ends in T1 while B holds a child of it open. */
static void a_done_b_open(uint64_t wait_ms, ss_session **a, ss_session **b)
{
        cfg.foreign_wait_ms = wait_ms;
        restart();
        *a = hello(1, "a", 100);
        *b = hello(2, "b", 101);
        ck_assert_int_eq(start(*a, T1, 1, 0, "agent.run"), 0);
        ck_assert_int_eq(start(*b, T1, 2, 1, "foreign.child"), 0);
        ck_assert_int_eq(end(*a, 1, SS_STATUS_OK), 0);
}

START_TEST(done_spans_held_while_the_wait_runs)
{
        ss_session *a, *b;

        a_done_b_open(3600000, &a, &b);
        run_ms(100); /* many sweeps, none of them due */
        ck_assert_uint_eq(rec.puts, 0);
        ck_assert_uint_eq(counter("traces_released"), 0);
        ck_assert_int_eq(end(b, 2, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.puts, 1);
        ck_assert_uint_eq(rec.n, 2);
        ss_session_detach(a);
        ss_session_detach(b);
}
END_TEST

typedef struct stranger {
        ss_session *s;
        unsigned spans;
} stranger;

/* A stranger busy in the trace: opens and ends one more span at every loop turn. */
static bool released_while_stranger_works(void *ctx)
{
        stranger *st = ctx;
        uint8_t sid = (uint8_t)(100 + st->spans++ % 100);

        ck_assert_int_eq(start(st->s, T1, sid, 1, "stranger"), 0);
        ck_assert_int_eq(end(st->s, sid, SS_STATUS_OK), 0);
        return counter("traces_released") >= 1;
}

START_TEST(done_spans_released_after_the_wait)
{
        ss_session *a, *b;
        stranger c;
        const ss_span *child;

        a_done_b_open(40, &a, &b);
        c = (stranger){.s = hello(3, "c", 102)};
        ck_assert_uint_eq(rec.puts, 0);
        /* Were a stranger's spans to restart the wait, it would never end. */
        ck_assert(fx_run_until(&loop, released_while_stranger_works, &c));
        ck_assert_uint_ge(c.spans, 1);
        ck_assert_uint_eq(rec.puts, 1);
        ck_assert_ptr_nonnull(fx_sink_find(&rec, "agent.run"));
        ck_assert_ptr_null(fx_sink_find(&rec, "foreign.child"));
        /* The foreign child arrives later, as a chunk of its own (with the stranger's spans
         * done since), when it ends the trace. */
        fx_sink_clear(&rec);
        rec.puts = 0;
        ck_assert_int_eq(end(b, 2, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.puts, 1);
        ck_assert_uint_eq(counter("traces_completed"), 1);
        child = fx_sink_find(&rec, "foreign.child");
        ck_assert_ptr_nonnull(child);
        ck_assert_ptr_null(fx_sink_find(&rec, "agent.run"));
        ck_assert_uint_eq(child->parent_id[0], 1);
        ss_session_detach(a);
        ss_session_detach(b);
        ss_session_detach(c.s);
}
END_TEST

START_TEST(owner_opening_again_stops_the_wait)
{
        ss_session *a, *b;

        a_done_b_open(20, &a, &b);
        ck_assert_int_eq(start(a, T1, 3, 1, "second.turn"), 0);
        run_ms(200); /* ten waits long: A is busy in the trace again, nothing goes */
        ck_assert_uint_eq(rec.puts, 0);
        ck_assert_int_eq(end(a, 3, SS_STATUS_OK), 0);
        wait_counter("traces_released", 1);
        ck_assert_uint_eq(rec.n, 2);
        ck_assert_ptr_nonnull(fx_sink_find(&rec, "second.turn"));
        ss_session_detach(a);
        ss_session_detach(b);
}
END_TEST

/* ---- a client process that exits --------------------------------------------------------- */

static bool pidfd_supported(void)
{
        int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

        if (fd < 0)
                return false;
        close(fd);
        return true;
}

/* A child process that sleeps until it is killed. */
static pid_t sleeper(void)
{
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                for (;;)
                        pause();
        }
        return pid;
}

static void kill_and_reap(pid_t pid)
{
        int status;

        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}

static void assert_orphaned_at_exit(const char *name)
{
        const ss_span *sp = find(name);
        const msgpack_object *o = ss_attrs_get(&sp->attrs, "sidespan.orphaned");

        ck_assert_int_eq(sp->status_code, SS_STATUS_ERROR);
        ck_assert(o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean);
        ck_assert_uint_eq(sp->status_msg.size, strlen("client process exited"));
        ck_assert_mem_eq(sp->status_msg.ptr, "client process exited", sp->status_msg.size);
}

/* A session of a sleeping child process with a span left open, under a grace period of an
 * hour: only the child's exit can end the span in a test's time. NULL without pidfd_open(). */
static ss_session *session_of_a_sleeper(const char *test, pid_t *ret_child)
{
        ss_session *s;

        if (!pidfd_supported()) {
                fprintf(stderr, "%s: skipped, no pidfd_open()\n", test);
                return NULL;
        }
        cfg.orphan_grace_ms = 3600000;
        restart();
        *ret_child = sleeper();
        s = hello_as(7, "svc", *ret_child, getuid());
        ck_assert_int_eq(start(s, T1, 1, 0, "left.open"), 0);
        return s;
}

START_TEST(exited_process_orphans_at_once)
{
        pid_t child;
        ss_session *s = session_of_a_sleeper("exited_process_orphans_at_once", &child);

        if (!s)
                return;
        ss_session_detach(s);
        ck_assert_uint_eq(rec.n, 0);
        kill_and_reap(child);
        wait_counter("sessions_gone", 1);
        ck_assert_uint_eq(rec.n, 1);
        assert_orphaned_at_exit("left.open");
        ck_assert_uint_eq(counter("spans_orphaned"), 1);
        ck_assert_uint_eq(counter("sessions"), 1);
        ck_assert_uint_eq(counter("spans_open"), 0);
        ck_assert_uint_eq(counter("processes"), 0);
}
END_TEST

START_TEST(process_gone_before_its_connection_closes)
{
        pid_t child;
        ss_session *s = session_of_a_sleeper("process_gone_before_its_connection_closes", &child);

        if (!s)
                return;
        kill_and_reap(child);
        /* The pidfd is readable now: one turn of the loop sees it. The session is still
         * attached, so its spans stay until its connection goes. */
        for (int i = 0; i < 3; i++)
                uv_run(&loop, UV_RUN_NOWAIT);
        ck_assert_uint_eq(rec.n, 0);
        ck_assert_uint_eq(counter("sessions_gone"), 0);
        ss_session_detach(s);
        /* No grace for a process seen gone: at once, no loop turn needed. */
        ck_assert_uint_eq(rec.n, 1);
        assert_orphaned_at_exit("left.open");
        ck_assert_uint_eq(counter("sessions_gone"), 1);
}
END_TEST

/* ---- policy hooks: head sampling, content flag, roll-ups, the trace byte bound ----------- */

/* A session whose HELLO says sample_rate and include_content. */
static ss_session *hello_policy(uint64_t inst, double rate, bool content)
{
        msgpack_unpacked u;
        msgpack_packer pk;
        ss_session *s;
        ss_buf b;
        size_t off = 0;

        ss_buf_init(&b, 1024);
        msgpack_packer_init(&pk, &b, ss_buf_msgpack_write);
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str_with_body(&pk, "instance", 8);
        msgpack_pack_uint64(&pk, inst);
        msgpack_pack_str_with_body(&pk, "sample_rate", 11);
        msgpack_pack_double(&pk, rate);
        msgpack_pack_str_with_body(&pk, "include_content", 15);
        if (content)
                msgpack_pack_true(&pk);
        else
                msgpack_pack_false(&pk);
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(msgpack_unpack_next(&u, (char *)b.data, b.len, &off),
                         MSGPACK_UNPACK_SUCCESS);
        s = ss_assembler_hello(asm_, &u.data.via.map, 4242, 1000);
        ck_assert_ptr_nonnull(s);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&b);
        return s;
}

/* Attributes {key: value} (unsigned) on an open span. */
static int set_u64(ss_session *s, uint8_t sid_byte, const char *key, uint64_t value)
{
        uint8_t sid[8] = {sid_byte, 1, 1, 1, 1, 1, 1, 1};
        msgpack_packer pk;
        ss_buf map, b;
        ss_msg m;
        msgpack_unpacked u;
        size_t off = 0;
        int r;

        ss_buf_init(&map, 1024);
        ss_buf_init(&b, 4096);
        msgpack_packer_init(&pk, &map, ss_buf_msgpack_write);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, key, strlen(key));
        msgpack_pack_uint64(&pk, value);
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(msgpack_unpack_next(&u, (char *)map.data, map.len, &off),
                         MSGPACK_UNPACK_SUCCESS);
        m = (ss_msg){.type = SS_MSG_SPAN_ATTRS};
        m.attrs.span_id = sid;
        m.attrs.attrs = &u.data.via.map;
        r = ss_assembler_apply(asm_, s, &m);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&map);
        ss_buf_free(&b);
        return r;
}

START_TEST(head_dropped_trace_is_discarded)
{
        uint8_t tid[16] = {7};
        ss_session *s;

        cfg.sample_rate = 0.0;
        restart();
        s = hello(1, "svc", 100);
        ck_assert_int_eq(start(s, tid, 1, 0, "root"), 0);
        ck_assert_int_eq(start(s, tid, 2, 1, "child"), 0);
        /* Attributes of a discarded span cost nothing and are no error. */
        ck_assert_int_eq(set_u64(s, 2, "k", 1), 0);
        ck_assert_int_eq(end(s, 2, SS_STATUS_ERROR), 0);
        ck_assert_int_eq(end(s, 1, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.puts, 0);
        ck_assert_uint_eq(counter("traces_discarded"), 1);
        ck_assert_uint_eq(counter("spans_discarded"), 2);
        ck_assert_uint_eq(counter("unknown_span"), 0);
        ck_assert_uint_eq(counter("spans_open"), 0);
}
END_TEST

START_TEST(head_dropped_trace_held_for_tail)
{
        uint8_t tid[16] = {8};
        ss_session *s;

        cfg.sample_rate = 0.0;
        cfg.tail_active = true;
        restart();
        s = hello(1, "svc", 100);
        ck_assert_int_eq(start(s, tid, 1, 0, "root"), 0);
        ck_assert_int_eq(start(s, tid, 2, 1, "child"), 0);
        ck_assert_int_eq(set_u64(s, 2, "k", 1), 0);
        ck_assert_int_eq(end(s, 2, SS_STATUS_ERROR), 0);
        ck_assert_int_eq(end(s, 1, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.n, 2);
        ck_assert(find("root")->head_drop);
        ck_assert_ptr_nonnull(ss_attrs_get(&find("child")->attrs, "k"));
        ck_assert_uint_eq(counter("traces_discarded"), 0);
}
END_TEST

START_TEST(hello_rate_and_content)
{
        uint8_t tid[16] = {9}, tid2[16] = {10};
        ss_session *strict = hello_policy(1, 0.0, true), *quiet = hello_policy(2, 1.0, false);

        /* The client's stricter rate wins over the daemon's 1. */
        ck_assert_int_eq(start(strict, tid, 1, 0, "dropped"), 0);
        ck_assert_int_eq(end(strict, 1, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.n, 0);
        /* include_content=false marks the client's spans. */
        ck_assert_int_eq(start(quiet, tid2, 2, 0, "quiet"), 0);
        ck_assert_int_eq(end(quiet, 2, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.n, 1);
        ck_assert(find("quiet")->no_content);
        ck_assert(find("quiet")->head_rate == 1.0);
}
END_TEST

START_TEST(run_gets_rollups)
{
        uint8_t tid[16] = {11};
        ss_session *s = hello(1, "svc", 100);
        const msgpack_object *v;

        ck_assert_int_eq(start(s, tid, 1, 0, "agent.run"), 0);
        ck_assert_int_eq(start(s, tid, 2, 1, "pipeline.step.model_execution"), 0);
        ck_assert_int_eq(start(s, tid, 3, 2, "chat gpt-4o"), 0);
        ck_assert_int_eq(set_u64(s, 3, "gen_ai.usage.input_tokens", 10), 0);
        ck_assert_int_eq(set_u64(s, 3, "gen_ai.usage.output_tokens", 5), 0);
        ck_assert_int_eq(start(s, tid, 4, 2, "tool.execute"), 0);
        ck_assert_int_eq(end(s, 3, SS_STATUS_OK), 0);
        ck_assert_int_eq(end(s, 4, SS_STATUS_OK), 0);
        ck_assert_int_eq(end(s, 2, SS_STATUS_OK), 0);
        ck_assert_int_eq(set_u64(s, 1, "upsonic.tool_call_count", 9), 0);
        ck_assert_int_eq(end(s, 1, SS_STATUS_OK), 0);
        v = ss_attrs_get(&find("agent.run")->attrs, "gen_ai.usage.input_tokens");
        ck_assert(v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 == 10);
        v = ss_attrs_get(&find("agent.run")->attrs, "upsonic.pipeline.executed_steps");
        ck_assert(v && v->via.u64 == 1);
        /* The client's own value stays. */
        v = ss_attrs_get(&find("agent.run")->attrs, "upsonic.tool_call_count");
        ck_assert(v && v->via.u64 == 9);
        ck_assert_uint_eq(counter("rollup.runs"), 1);
}
END_TEST

START_TEST(orphaned_run_gets_rollups)
{
        uint8_t tid[16] = {12};
        ss_session *s = hello(1, "svc", 100);
        const msgpack_object *v;

        ck_assert_int_eq(start(s, tid, 1, 0, "agent.run"), 0);
        ck_assert_int_eq(start(s, tid, 2, 1, "tool.execute"), 0);
        ck_assert_int_eq(start(s, tid, 3, 1, "tool.execute"), 0);
        ss_session_detach(s);
        run_ms(200);
        ck_assert_uint_eq(rec.n, 3);
        v = ss_attrs_get(&find("agent.run")->attrs, "upsonic.tool_call_count");
        ck_assert(v && v->via.u64 == 2);
}
END_TEST

START_TEST(trace_bytes_bound_chunks)
{
        uint8_t tid[16] = {13};
        ss_session *s;

        cfg.max_trace_bytes = 3 * SS_SPAN_OVERHEAD;
        restart();
        s = hello(1, "svc", 100);
        ck_assert_int_eq(start(s, tid, 1, 0, "root"), 0);
        for (uint8_t i = 2; i < 8; i++) {
                ck_assert_int_eq(start(s, tid, i, 1, "child"), 0);
                ck_assert_int_eq(end(s, i, SS_STATUS_OK), 0);
        }
        ck_assert_uint_eq(rec.puts, 2);
        ck_assert_uint_eq(counter("chunks_early"), 2);
        ck_assert_int_eq(end(s, 1, SS_STATUS_OK), 0);
        ck_assert_uint_eq(rec.n, 7);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("assembler");
        TCase *tc = tcase_create("assembler");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, hierarchy_completes_when_last_span_ends);
        tcase_add_test(tc, completed_trace_starts_anew);
        tcase_add_test(tc, trace_over_two_sessions);
        tcase_add_test(tc, session_cannot_touch_another_sessions_span);
        tcase_add_test(tc, ended_twice_and_unknown_span);
        tcase_add_test(tc, duplicate_start_and_open_limit);
        tcase_add_test(tc, total_open_limit_spans_sessions);
        tcase_add_test(tc, orphans_end_as_error_after_grace);
        tcase_add_test(tc, reconnect_within_grace_keeps_spans);
        tcase_add_test(tc, same_instance_other_process_is_another_session);
        tcase_add_test(tc, long_trace_is_handed_on_in_chunks);
        tcase_add_test(tc, shutdown_orphans_open_spans);
        tcase_add_test(tc, open_limit_per_process_spans_its_sessions);
        tcase_add_test(tc, resource_attributes_capped_and_counted);
        tcase_add_test(tc, done_spans_wait_for_strangers_then_go);
        tcase_add_test(tc, owner_active_again_restarts_the_wait);
        tcase_add_test(tc, released_traces_wait_for_room);
        tcase_add_test(tc, done_spans_held_while_the_wait_runs);
        tcase_add_test(tc, done_spans_released_after_the_wait);
        tcase_add_test(tc, owner_opening_again_stops_the_wait);
        tcase_add_test(tc, exited_process_orphans_at_once);
        tcase_add_test(tc, process_gone_before_its_connection_closes);
        tcase_add_test(tc, head_dropped_trace_is_discarded);
        tcase_add_test(tc, head_dropped_trace_held_for_tail);
        tcase_add_test(tc, hello_rate_and_content);
        tcase_add_test(tc, run_gets_rollups);
        tcase_add_test(tc, shutdown_for_state_frees_open_runs);
        tcase_add_test(tc, orphaned_run_gets_rollups);
        tcase_add_test(tc, trace_bytes_bound_chunks);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
