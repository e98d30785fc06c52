/* SPDX-License-Identifier: MIT */
/* The assembler: hierarchy, traces over several sessions, bad sequences, orphans, limits. */
#include "ss-check.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/assembler.h"
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

/* A session as HELLO with {instance: inst, service.name: svc} from pid/uid creates it. */
static ss_session *hello(uint64_t inst, const char *svc, pid_t pid)
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
        s = ss_assembler_hello(asm_, &u.data.via.map, pid, 1000);
        ck_assert_ptr_nonnull(s);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&b);
        return s;
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

int main(void)
{
        Suite *s = suite_create("assembler");
        TCase *tc = tcase_create("assembler");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, hierarchy_completes_when_last_span_ends);
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
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
