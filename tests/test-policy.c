/* SPDX-License-Identifier: MIT */
/*
 * The policy stage (policy/stage.h) between a trace and the exporters:
 * exporters with different views get their own copies (the plain view the
 * spans as they came, unchanged by the others), a single changing view
 * works in place, a dropped trace reaches nobody, and the content key list.
 */
#include "ss-check.h"

#include <string.h>

#include "base/log.h"
#include "fixture.h"
#include "policy/stage.h"

#define HELD 16

/* An exporter that keeps a reference to what it is given. */
typedef struct keeper {
        ss_exporter base;
        ss_span *spans[HELD];
        size_t n;
} keeper;

static void keeper_add(ss_exporter *e, ss_span *const *spans, size_t n)
{
        keeper *k = (keeper *)e;

        for (size_t i = 0; i < n; i++) {
                ck_assert_uint_lt(k->n, HELD);
                k->spans[k->n++] = ss_span_ref(spans[i]);
        }
}

static void keeper_flush(ss_exporter *e)
{
        (void)e;
}

static bool keeper_busy(const ss_exporter *e)
{
        (void)e;
        return false;
}

static void keeper_destroy(ss_exporter *e)
{
        keeper *k = (keeper *)e;

        for (size_t i = 0; i < k->n; i++)
                ss_span_unref(k->spans[i]);
        ss_exporter_free(e, k);
}

static const ss_exporter_ops keeper_ops = {
    .add = keeper_add, .flush = keeper_flush, .busy = keeper_busy, .destroy = keeper_destroy};

static uv_loop_t loop;
static ss_pipeline *pl;
static keeper *ex[2];
static ss_resource *res;

static void setup(void)
{
        ss_log_set_level(SS_LOG_ERR);
        ck_assert_int_eq(uv_loop_init(&loop), 0);
        ck_assert_int_eq(ss_pipeline_new(&loop, &pl), 0);
        for (int i = 0; i < 2; i++) {
                ex[i] = calloc(1, sizeof(*ex[i]));
                ck_assert_ptr_nonnull(ex[i]);
                ex[i]->base = (ss_exporter){.ops = &keeper_ops, .name = i ? "two" : "one"};
                ck_assert_int_eq(ss_pipeline_add(pl, &ex[i]->base), 0);
        }
        res = mp_resource("svc", "sdk", "1");
}

static void teardown(void)
{
        ss_pipeline_drain(pl, 0, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(uv_loop_close(&loop), 0);
        ss_resource_unref(res);
}

/* A root with upsonic.input (content holding an SSN) and note (an e-mail address). */
static ss_span *span_with_secrets(uint8_t trace_seed)
{
        ss_span *s = fx_finished_span(res, "agent.run", trace_seed, 1, -1);
        mp m;

        mp_begin(&m);
        msgpack_pack_map(&m.pk, 2);
        pk_str(&m.pk, "upsonic.input");
        pk_str(&m.pk, "Process SSN: 123-45-6789");
        pk_str(&m.pk, "note");
        pk_str(&m.pk, "mail jane.doe@example.com");
        ck_assert_int_eq(ss_span_set_attrs(s, mp_map(&m), NULL), 0);
        mp_done(&m);
        return s;
}

static const char *str_attr(const ss_span *s, const char *key)
{
        const msgpack_object *v = ss_attrs_get(&s->attrs, key);

        if (!v)
                return NULL;
        ck_assert_int_eq(v->type, MSGPACK_OBJECT_STR);
        return v->via.str.ptr;
}

static ss_policy *policy_of(ss_view_config v0, ss_view_config v1, double rate)
{
        ss_policy_config cfg = {
            .sampling = {.rate = rate}, .include_content = true, .views = {v0, v1}, .n_views = 2};
        char err[256];
        ss_policy *p;

        ck_assert_int_eq(ss_policy_new(&cfg, pl, &p, err, sizeof(err)), 0);
        return p;
}

START_TEST(test_two_views)
{
        ss_policy *p = policy_of((ss_view_config){.include_content = true},
                                 (ss_view_config){.include_content = false,
                                                  .redact = SS_REDACT_SECRETS | SS_REDACT_PERSONAL},
                                 1.0);
        ss_span *s = span_with_secrets(1);

        ss_sink_put(ss_policy_sink(p), &s, 1);
        /* The plain exporter has the span itself, untouched by the other's view. */
        ck_assert_uint_eq(ex[0]->n, 1);
        ck_assert_ptr_eq(ex[0]->spans[0], s);
        ck_assert_str_eq(str_attr(s, "upsonic.input"), "Process SSN: 123-45-6789");
        ck_assert_str_eq(str_attr(s, "note"), "mail jane.doe@example.com");
        /* The other a copy, without content and redacted. */
        ck_assert_uint_eq(ex[1]->n, 1);
        ck_assert_ptr_ne(ex[1]->spans[0], s);
        ck_assert_ptr_null(str_attr(ex[1]->spans[0], "upsonic.input"));
        ck_assert_str_eq(str_attr(ex[1]->spans[0], "note"), "mail [REDACTED:email]");
        ck_assert_uint_eq(fx_counter(ss_policy_counters, p, "content.attrs_dropped"), 1);
        ck_assert_uint_eq(fx_counter(ss_policy_counters, p, "redaction.email"), 1);
        ck_assert_uint_eq(fx_counter(ss_policy_counters, p, "policy.span_copies"), 1);
        ss_span_unref(s);
        ss_policy_free(p);
}
END_TEST

START_TEST(test_two_changing_views)
{
        ss_policy *p =
            policy_of((ss_view_config){.include_content = false},
                      (ss_view_config){.include_content = true, .redact = SS_REDACT_PERSONAL}, 1.0);
        ss_span *s = span_with_secrets(5);

        ss_sink_put(ss_policy_sink(p), &s, 1);
        /* Each saw only its own change. */
        ck_assert_ptr_null(str_attr(ex[0]->spans[0], "upsonic.input"));
        ck_assert_str_eq(str_attr(ex[0]->spans[0], "note"), "mail jane.doe@example.com");
        ck_assert_str_eq(str_attr(ex[1]->spans[0], "upsonic.input"), "Process SSN: [REDACTED:ssn]");
        ck_assert_str_eq(str_attr(ex[1]->spans[0], "note"), "mail [REDACTED:email]");
        ck_assert_uint_eq(fx_counter(ss_policy_counters, p, "policy.span_copies"), 1);
        ss_span_unref(s);
        ss_policy_free(p);
}
END_TEST

START_TEST(test_one_view_in_place)
{
        ss_view_config v = {.include_content = false, .redact = SS_REDACT_PERSONAL};
        ss_policy *p = policy_of(v, v, 1.0);
        ss_span *s = span_with_secrets(2);

        ss_sink_put(ss_policy_sink(p), &s, 1);
        ck_assert_ptr_eq(ex[0]->spans[0], s);
        ck_assert_ptr_eq(ex[1]->spans[0], s);
        ck_assert_ptr_null(str_attr(s, "upsonic.input"));
        ck_assert_str_eq(str_attr(s, "note"), "mail [REDACTED:email]");
        ck_assert_uint_eq(fx_counter(ss_policy_counters, p, "policy.span_copies"), 0);
        ss_span_unref(s);
        ss_policy_free(p);
}
END_TEST

START_TEST(test_client_said_no_content)
{
        ss_policy *p = policy_of((ss_view_config){.include_content = true},
                                 (ss_view_config){.include_content = true}, 1.0);
        ss_span *s = span_with_secrets(3);

        s->no_content = true;
        ss_sink_put(ss_policy_sink(p), &s, 1);
        ck_assert_ptr_null(str_attr(ex[0]->spans[0], "upsonic.input"));
        ck_assert_ptr_null(str_attr(ex[1]->spans[0], "upsonic.input"));
        ss_span_unref(s);
        ss_policy_free(p);
}
END_TEST

START_TEST(test_dropped_reaches_nobody)
{
        ss_policy *p = policy_of((ss_view_config){.include_content = true},
                                 (ss_view_config){.include_content = false}, 0.0);
        ss_span *s = span_with_secrets(4);

        s->head_drop = true;
        ss_sink_put(ss_policy_sink(p), &s, 1);
        ck_assert_uint_eq(ex[0]->n + ex[1]->n, 0);
        ck_assert_uint_eq(fx_counter(ss_policy_counters, p, "sampling.dropped_spans"), 1);
        ss_span_unref(s);
        ss_policy_free(p);
}
END_TEST

START_TEST(test_config_errors)
{
        ss_policy_config cfg = {.include_content = true, .n_views = 3};
        char err[256];
        ss_policy *p;

        ck_assert_int_eq(ss_policy_new(&cfg, pl, &p, err, sizeof(err)), -EINVAL);
        ck_assert_str_eq(err, "3 exporter policies for 2 exporters");
        cfg.n_views = 1;
        cfg.views[0].redact = SS_REDACT_CUSTOM;
        cfg.redaction.custom[0] = (ss_redact_pattern){.kind = "acct", .regex = "ACCT-(\\d+"};
        cfg.redaction.n_custom = 1;
        ck_assert_int_eq(ss_policy_new(&cfg, pl, &p, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "acct"));
}
END_TEST

START_TEST(test_content_keys)
{
        ss_policy_config cfg = {0};
        msgpack_object_str k = {.ptr = "gen_ai.tool.definitions", .size = 23};

        /* The default list: TRACE-MODEL.md's, tool definitions included. */
        ck_assert(ss_policy_content_key(&cfg, &k));
        k = (msgpack_object_str){.ptr = "gen_ai.request.model", .size = 20};
        ck_assert(!ss_policy_content_key(&cfg, &k));
        cfg.content_keys[0] = "my.prompt";
        cfg.n_content_keys = 1;
        k = (msgpack_object_str){.ptr = "my.prompt", .size = 9};
        ck_assert(ss_policy_content_key(&cfg, &k));
        k = (msgpack_object_str){.ptr = "my.prompt2", .size = 10};
        ck_assert(!ss_policy_content_key(&cfg, &k));
}
END_TEST

static Suite *policy_suite(void)
{
        Suite *s = suite_create("policy");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_two_views);
        tcase_add_test(tc, test_two_changing_views);
        tcase_add_test(tc, test_one_view_in_place);
        tcase_add_test(tc, test_client_said_no_content);
        tcase_add_test(tc, test_dropped_reaches_nobody);
        tcase_add_test(tc, test_config_errors);
        tcase_add_test(tc, test_content_keys);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(policy_suite());
}
