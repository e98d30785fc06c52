/* SPDX-License-Identifier: MIT */
/* Ids, time, traceparent, consistent sampling and the content key list. */
#include "ss-check.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ss-id.h"

START_TEST(ids_are_random_and_non_zero)
{
        uint8_t a[16], b[16], zero[16] = {0};

        for (int i = 0; i < 1000; i++) {
                ss_id_random(a, 16);
                ss_id_random(b, 16);
                ck_assert(memcmp(a, zero, 16) != 0);
                ck_assert(memcmp(a, b, 16) != 0);
        }
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return (x > y) - (x < y);
}

/* The span ids of one thread: none repeats, and every bit is set about half the time (100 000
 * draws put a fair bit within 0.5 % of half 99.9 % of the time; 5 % is 30 deviations). */
START_TEST(span_ids_unique_and_balanced)
{
        enum { N = 100000 };
        uint64_t *ids = malloc(N * sizeof(*ids));
        unsigned ones[64] = {0};
        uint8_t trace[16], zero[16] = {0};

        ck_assert_ptr_nonnull(ids);
        for (int i = 0; i < N; i++) {
                ss_id_span(i % 100 ? NULL : trace, (uint8_t *)&ids[i]);
                ck_assert(ids[i] != 0);
                if (i % 100 == 0)
                        ck_assert(memcmp(trace, zero, 16) != 0);
                for (int b = 0; b < 64; b++)
                        ones[b] += (unsigned)(ids[i] >> b) & 1u;
        }
        for (int b = 0; b < 64; b++) {
                ck_assert_uint_gt(ones[b], N * 45 / 100);
                ck_assert_uint_lt(ones[b], N * 55 / 100);
        }
        qsort(ids, N, sizeof(*ids), cmp_u64);
        for (int i = 1; i < N; i++)
                ck_assert(ids[i] != ids[i - 1]);
        free(ids);
}
END_TEST

START_TEST(forked_child_gets_other_ids)
{
        uint8_t parent[8], child[8];
        int fds[2], status;
        pid_t pid;

        ss_id_random(parent, 8); /* seed this thread's generator before the fork */
        ck_assert_int_eq(pipe(fds), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                ss_id_random(child, 8);
                _exit(write(fds[1], child, 8) == 8 ? 0 : 1);
        }
        ss_id_random(parent, 8);
        ck_assert_int_eq(read(fds[0], child, 8), 8);
        waitpid(pid, &status, 0);
        ck_assert(memcmp(parent, child, 8) != 0);
        close(fds[0]);
        close(fds[1]);
}
END_TEST

START_TEST(now_is_wall_clock_ns)
{
        uint64_t a = ss_now_ns(), b = ss_now_ns();

        ck_assert_uint_ge(b, a);
        ck_assert_uint_gt(a, 1700000000ull * 1000000000ull); /* after 2023 */
}
END_TEST

START_TEST(traceparent_round_trip)
{
        const uint8_t tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
        const uint8_t sid[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
        uint8_t t2[16], s2[8];
        char buf[SS_TRACEPARENT_LEN + 1];
        bool sampled;

        ss_traceparent_format(buf, tid, sid, true);
        ck_assert_str_eq(buf, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        ck_assert_int_eq(ss_traceparent_parse(buf, t2, s2, &sampled), 0);
        ck_assert_mem_eq(t2, tid, 16);
        ck_assert_mem_eq(s2, sid, 8);
        ck_assert(sampled);
        ck_assert_int_eq(
            ss_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", t2, s2,
                                 &sampled),
            0);
        ck_assert(!sampled);
        /* A later version may append fields. */
        ck_assert_int_eq(
            ss_traceparent_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz", t2,
                                 s2, &sampled),
            0);
}
END_TEST

START_TEST(traceparent_rejects_malformed)
{
        static const char *const bad[] = {
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        };
        uint8_t t[16], s[8];
        bool sampled;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ck_assert_msg(ss_traceparent_parse(bad[i], t, s, &sampled) == -EINVAL,
                              "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(sampling_is_consistent_on_trace_id)
{
        uint8_t tid[16] = {0};
        unsigned kept = 0;

        ck_assert(!ss_sample_keep(tid, 0.0));
        ck_assert(ss_sample_keep(tid, 1.0));
        /* p = 0.5: threshold 2^55, so the decision is bit 55 of the low 56 bits (byte 9). */
        tid[9] = 0x80;
        ck_assert(ss_sample_keep(tid, 0.5));
        tid[9] = 0x7f;
        memset(tid + 10, 0xff, 6);
        ck_assert(!ss_sample_keep(tid, 0.5));
        for (int i = 0; i < 20000; i++) {
                ss_id_random(tid, 16);
                bool k = ss_sample_keep(tid, 0.25);

                ck_assert(k == ss_sample_keep(tid, 0.25));
                /* Keeping at 0.25 implies keeping at any higher rate. */
                if (k)
                        ck_assert(ss_sample_keep(tid, 0.5));
                kept += k;
        }
        ck_assert_uint_gt(kept, 4500);
        ck_assert_uint_lt(kept, 5500);
}
END_TEST

START_TEST(tracestate_records_the_threshold)
{
        char ts[32];

        ss_sample_tracestate(ts, sizeof(ts), 0.5);
        ck_assert_str_eq(ts, "ot=th:8");
        ss_sample_tracestate(ts, sizeof(ts), 0.25);
        ck_assert_str_eq(ts, "ot=th:c");
        ss_sample_tracestate(ts, sizeof(ts), 1.0);
        ck_assert_str_eq(ts, "");
        ss_sample_tracestate(ts, sizeof(ts), 0.0);
        ck_assert_str_eq(ts, "");
        ck_assert_uint_eq(ss_sample_threshold(0.5), 1ull << 55);
}
END_TEST

START_TEST(content_keys)
{
        static const char *const content[] = {
            "upsonic.input",
            "upsonic.output",
            "upsonic.tools_called",
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.system_instructions",
            "gen_ai.tool.call.arguments",
            "gen_ai.tool.call.result",
            "gen_ai.tool.definitions",
            "langfuse.trace.input",
            "langfuse.trace.output",
            "langfuse.observation.input",
            "langfuse.observation.output",
        };

        for (size_t i = 0; i < sizeof(content) / sizeof(content[0]); i++)
                ck_assert(ss_content_key(content[i], strlen(content[i])));
        ck_assert(!ss_content_key("gen_ai.request.model", 20));
        ck_assert(!ss_content_key("upsonic.inpu", 12));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("id");
        TCase *tc = tcase_create("id");

        tcase_add_test(tc, ids_are_random_and_non_zero);
        tcase_add_test(tc, span_ids_unique_and_balanced);
        tcase_add_test(tc, forked_child_gets_other_ids);
        tcase_add_test(tc, now_is_wall_clock_ns);
        tcase_add_test(tc, traceparent_round_trip);
        tcase_add_test(tc, traceparent_rejects_malformed);
        tcase_add_test(tc, sampling_is_consistent_on_trace_id);
        tcase_add_test(tc, tracestate_records_the_threshold);
        tcase_add_test(tc, content_keys);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
