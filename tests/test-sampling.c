/* SPDX-License-Identifier: MIT */
/*
 * Daemon-side sampling (policy/sampling.h): the head decision's rate and
 * its agreement with libsidespan's, remote parents, the tracestate's th,
 * and the tail policies, caps and early decisions of ss_sampler_decide().
 */
#include "ss-check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "policy/sampling.h"
#include "ss-id.h"

/* 5 standard deviations of a binomial count around n * p. */
static void assert_binomial(uint64_t kept, uint64_t n, double p)
{
        double mean = (double)n * p, sd = sqrt((double)n * p * (1.0 - p));

        ck_assert_msg(fabs((double)kept - mean) <= 5.0 * sd,
                      "kept %llu of %llu at rate %g: mean %.1f, 5 sigma %.1f",
                      (unsigned long long)kept, (unsigned long long)n, p, mean, 5.0 * sd);
}

START_TEST(test_head_rate)
{
        static const double rates[] = {0.25, 0.01};
        uint8_t id[SS_TRACE_ID_LEN];

        for (size_t r = 0; r < 2; r++) {
                uint64_t kept = 0;

                for (int i = 0; i < 100000; i++) {
                        bool keep;

                        ss_id_random(id, sizeof(id));
                        keep = ss_sampling_head_keep(id, rates[r], 1.0, 0x100, false);
                        /* The client library decides the same on the same id. */
                        ck_assert_int_eq(keep, ss_sample_keep(id, rates[r]));
                        kept += keep;
                }
                assert_binomial(kept, 100000, rates[r]);
        }
}
END_TEST

START_TEST(test_head_stricter_and_remote)
{
        uint8_t id[SS_TRACE_ID_LEN];
        unsigned differ = 0;

        for (int i = 0; i < 10000; i++) {
                ss_id_random(id, sizeof(id));
                /* The stricter of daemon and client wins, either way round. */
                ck_assert_int_eq(ss_sampling_head_keep(id, 0.5, 0.1, 0, false),
                                 ss_sample_keep(id, 0.1));
                ck_assert_int_eq(ss_sampling_head_keep(id, 0.1, 0.5, 0, false),
                                 ss_sample_keep(id, 0.1));
                differ += ss_sample_keep(id, 0.5) != ss_sample_keep(id, 0.1);
                /* A remote parent's flag decides, whatever the rates. */
                ck_assert(ss_sampling_head_keep(id, 0.0, 0.0, 0x301, true));
                ck_assert(!ss_sampling_head_keep(id, 1.0, 1.0, 0x300, true));
                /* A local parent's flags are not a remote decision. */
                ck_assert_int_eq(ss_sampling_head_keep(id, 0.1, 1.0, 0x101, true),
                                 ss_sample_keep(id, 0.1));
        }
        ck_assert_uint_gt(differ, 0); /* the rates do differ on some ids */
}
END_TEST

static void assert_th(const char *ts, const char *th, const char *want)
{
        char out[SS_TRACE_STATE_MAX + 1];
        int n = ss_tracestate_set_th(ts, strlen(ts), th, out, sizeof(out));

        ck_assert_int_eq(n, (int)strlen(want));
        ck_assert_str_eq(out, want);
}

START_TEST(test_tracestate)
{
        char big[SS_TRACE_STATE_MAX + 1], out[SS_TRACE_STATE_MAX + 1];

        assert_th("", "4", "ot=th:4");
        assert_th("vendor=x", "4", "ot=th:4,vendor=x");
        assert_th("a=1, ot=rv:abcdef01234567;th:8 ,b=2", "c", "ot=th:c;rv:abcdef01234567,a=1,b=2");
        assert_th("ot=th:8,a=1", NULL, "a=1");
        assert_th("ot=th:8", NULL, "");
        assert_th("ot=th:8;rv:12", NULL, "ot=rv:12");
        /* Too long with the new entry: refused, the caller keeps what it had. */
        memset(big, 'a', sizeof(big) - 1);
        big[0] = 'k';
        big[1] = '=';
        big[SS_TRACE_STATE_MAX - 2] = '\0';
        ck_assert_int_eq(ss_tracestate_set_th(big, strlen(big), "8", out, sizeof(out)), -EINVAL);
}
END_TEST

/* A trace of n spans (the first its root unless no_root), all head-dropped unless keep. */
static void make_trace(ss_resource *r, uint8_t seed, ss_span **spans, size_t n, bool no_root,
                       bool keep)
{
        for (size_t i = 0; i < n; i++) {
                spans[i] = fx_finished_span(r, i == 0 ? "agent.run" : "chat gpt-4o", seed,
                                            (uint8_t)(i + 1), i == 0 && !no_root ? -1 : 1);
                spans[i]->head_drop = !keep;
                spans[i]->head_rate = 0.25;
        }
}

static void unref_all(ss_span **spans, size_t n)
{
        for (size_t i = 0; i < n; i++)
                ss_span_unref(spans[i]);
}

static const msgpack_object *attr(const ss_span *s, const char *key)
{
        return ss_attrs_get(&s->attrs, key);
}

START_TEST(test_tail_policies)
{
        ss_sampling_config cfg = {.rate = 0.0, .keep_errors = true, .keep_slower_than_ms = 500};
        ss_resource *r = mp_resource("svc", "sdk", "1");
        ss_sampler *s;
        ss_span *sp[3];
        mp m;

        cfg.match[0] = (ss_tail_match){.key = "upsonic.agent.name", .value = "billing"};
        cfg.n_match = 1;
        ck_assert_int_eq(ss_sampler_new(&cfg, &s), 0);

        /* Head-dropped, nothing special: dropped, every span counted. */
        make_trace(r, 1, sp, 3, false, false);
        ck_assert(!ss_sampler_decide(s, sp, 3, 0));
        unref_all(sp, 3);
        ck_assert_uint_eq(ss_sampler_stats(s)->dropped_spans, 3);

        /* An ERROR span keeps it; a tail-kept span has no th in its tracestate. */
        make_trace(r, 2, sp, 3, false, false);
        ss_span_end(sp[2], sp[2]->end_ns, SS_STATUS_ERROR, "boom", 4);
        ck_assert(ss_sampler_decide(s, sp, 3, 0));
        ck_assert_uint_eq(sp[0]->trace_state.size, 0);
        unref_all(sp, 3);
        ck_assert_uint_eq(ss_sampler_stats(s)->kept_error, 1);

        /* A slow root keeps it. */
        make_trace(r, 3, sp, 3, false, false);
        sp[0]->end_ns = sp[0]->start_ns + 600000000ull;
        ck_assert(ss_sampler_decide(s, sp, 3, 0));
        unref_all(sp, 3);
        ck_assert_uint_eq(ss_sampler_stats(s)->kept_latency, 1);

        /* An attribute value keeps it. */
        make_trace(r, 4, sp, 3, false, false);
        mp_begin(&m);
        msgpack_pack_map(&m.pk, 1);
        pk_str(&m.pk, "upsonic.agent.name");
        pk_str(&m.pk, "billing");
        ck_assert_int_eq(ss_span_set_attrs(sp[0], mp_map(&m), NULL), 0);
        mp_done(&m);
        ck_assert(ss_sampler_decide(s, sp, 3, 0));
        unref_all(sp, 3);
        ck_assert_uint_eq(ss_sampler_stats(s)->kept_attribute, 1);

        /* Head-kept: kept with the head rate's th. */
        make_trace(r, 5, sp, 3, false, true);
        ck_assert(ss_sampler_decide(s, sp, 3, 0));
        fx_assert_str(&(msgpack_object){.type = MSGPACK_OBJECT_STR, .via.str = sp[1]->trace_state},
                      "ot=th:c");
        unref_all(sp, 3);
        ss_sampler_free(s);
        ss_resource_unref(r);
}
END_TEST

START_TEST(test_tail_off_drops)
{
        ss_sampling_config cfg = {.rate = 0.0};
        ss_resource *r = mp_resource("svc", "sdk", "1");
        ss_sampler *s;
        ss_span *sp[2];

        ck_assert(!ss_sampling_tail_active(&cfg));
        ck_assert_int_eq(ss_sampler_new(&cfg, &s), 0);
        make_trace(r, 9, sp, 2, false, false);
        ss_span_end(sp[1], sp[1]->end_ns, SS_STATUS_ERROR, "boom", 4);
        ck_assert(!ss_sampler_decide(s, sp, 2, 0));
        unref_all(sp, 2);
        ss_sampler_free(s);
        ss_resource_unref(r);
}
END_TEST

START_TEST(test_cap)
{
        ss_sampling_config cfg = {.keep_errors = true, .max_kept_per_second = 3};
        ss_resource *a = mp_resource("a", "sdk", "1"), *b = mp_resource("b", "sdk", "1");
        ss_sampler *s;
        unsigned kept_a = 0, kept_b = 0;
        ss_span *sp[1];

        ck_assert_int_eq(ss_sampler_new(&cfg, &s), 0);
        for (int i = 0; i < 10; i++) {
                make_trace(i % 2 ? a : b, (uint8_t)(20 + i), sp, 1, false, false);
                ss_span_end(sp[0], sp[0]->end_ns, SS_STATUS_ERROR, "x", 1);
                if (ss_sampler_decide(s, sp, 1, 5000000000ull))
                        (*(i % 2 ? &kept_a : &kept_b))++;
                unref_all(sp, 1);
        }
        /* Three per service in one second, the rest capped. */
        ck_assert_uint_eq(kept_a, 3);
        ck_assert_uint_eq(kept_b, 3);
        ck_assert_uint_eq(ss_sampler_stats(s)->capped, 4);
        /* The next second has a new budget. */
        make_trace(a, 40, sp, 1, false, false);
        ss_span_end(sp[0], sp[0]->end_ns, SS_STATUS_ERROR, "x", 1);
        ck_assert(ss_sampler_decide(s, sp, 1, 6000000000ull));
        unref_all(sp, 1);
        ss_sampler_free(s);
        ss_resource_unref(a);
        ss_resource_unref(b);
}
END_TEST

START_TEST(test_early_decision)
{
        ss_sampling_config cfg = {.rate = 0.0, .keep_errors = true};
        ss_resource *r = mp_resource("svc", "sdk", "1");
        ss_sampler *s;
        ss_span *part[2], *root[1];
        const msgpack_object *v;

        ck_assert_int_eq(ss_sampler_new(&cfg, &s), 0);
        /* A part without its root, with an error: kept early and remembered. */
        make_trace(r, 50, part, 2, true, false);
        ss_span_end(part[1], part[1]->end_ns, SS_STATUS_ERROR, "x", 1);
        ck_assert(ss_sampler_decide(s, part, 2, 0));
        unref_all(part, 2);
        ck_assert_uint_eq(ss_sampler_stats(s)->early, 1);
        /* The root comes later, clean: it follows, marked. */
        make_trace(r, 50, root, 1, false, false);
        ck_assert(ss_sampler_decide(s, root, 1, 0));
        v = attr(root[0], "sidespan.sampling.early_decision");
        ck_assert_ptr_nonnull(v);
        ck_assert(v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean);
        unref_all(root, 1);
        /* A part dropped early: its root, with an error, is dropped too (the trace stays
         * whole: never a root without its children). */
        make_trace(r, 51, part, 2, true, false);
        ck_assert(!ss_sampler_decide(s, part, 2, 0));
        unref_all(part, 2);
        make_trace(r, 51, root, 1, false, false);
        ss_span_end(root[0], root[0]->end_ns, SS_STATUS_ERROR, "x", 1);
        ck_assert(!ss_sampler_decide(s, root, 1, 0));
        unref_all(root, 1);
        ck_assert_uint_eq(ss_sampler_stats(s)->followed, 2);
        ss_sampler_free(s);
        ss_resource_unref(r);
}
END_TEST

START_TEST(test_remember_bounded)
{
        ss_sampling_config cfg = {.keep_errors = true, .remember = 4};
        ss_resource *r = mp_resource("svc", "sdk", "1");
        ss_sampler *s;
        ss_span *sp[1];

        ck_assert_int_eq(ss_sampler_new(&cfg, &s), 0);
        for (int i = 0; i < 100; i++) {
                make_trace(r, (uint8_t)i, sp, 1, true, false);
                (void)ss_sampler_decide(s, sp, 1, 0);
                unref_all(sp, 1);
        }
        ck_assert_uint_eq(ss_sampler_stats(s)->early, 100);
        /* The oldest decisions are forgotten, the last 4 are not. */
        make_trace(r, 0, sp, 1, true, false);
        (void)ss_sampler_decide(s, sp, 1, 0);
        unref_all(sp, 1);
        ck_assert_uint_eq(ss_sampler_stats(s)->followed, 0);
        make_trace(r, 98, sp, 1, true, false);
        (void)ss_sampler_decide(s, sp, 1, 0);
        unref_all(sp, 1);
        ck_assert_uint_eq(ss_sampler_stats(s)->followed, 1);
        ss_sampler_free(s);
        ss_resource_unref(r);
}
END_TEST

static Suite *sampling_suite(void)
{
        Suite *s = suite_create("sampling");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_head_rate);
        tcase_add_test(tc, test_head_stricter_and_remote);
        tcase_add_test(tc, test_tracestate);
        tcase_add_test(tc, test_tail_policies);
        tcase_add_test(tc, test_tail_off_drops);
        tcase_add_test(tc, test_cap);
        tcase_add_test(tc, test_early_decision);
        tcase_add_test(tc, test_remember_bounded);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(sampling_suite());
}
