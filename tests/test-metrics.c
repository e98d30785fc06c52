/* SPDX-License-Identifier: MIT */
/*
 * The metrics modules below the stage: the registry (series per attribute
 * set, the overflow series past the cap, delta resets, observed totals), the
 * GenAI recording of a finished span, the per-model headline and its minute
 * window, and the health read from counters. The stage end to end, with real
 * receivers, is tests/genai_metrics.py.
 */
#include "ss-check.h"
#include <math.h>
#include <string.h>

#include "fixture.h"
#include "metrics/genai.h"
#include "metrics/headline.h"
#include "metrics/health.h"
#include "metrics/registry.h"

#define SEC 1000000000ull

static const double bounds[] = {1, 10, 100};

/* The point of metric name with attribute key=value (key NULL: the first point). */
static const ss_metric_point *point(const ss_metrics_snapshot *s, const char *name, const char *key,
                                    const char *value)
{
        for (size_t i = 0; i < s->n; i++) {
                if (strcmp(s->metrics[i].name, name))
                        continue;
                for (size_t p = 0; p < s->metrics[i].n_points; p++) {
                        const ss_metric_point *pt = &s->metrics[i].points[p];

                        if (!key)
                                return pt;
                        for (uint32_t a = 0; a < pt->n_attrs; a++)
                                if (!strcmp(pt->attrs[a].key, key) &&
                                    !strcmp(pt->attrs[a].value, value))
                                        return pt;
                }
        }
        return NULL;
}

static size_t n_points(const ss_metrics_snapshot *s, const char *name)
{
        for (size_t i = 0; i < s->n; i++)
                if (!strcmp(s->metrics[i].name, name))
                        return s->metrics[i].n_points;
        return 0;
}

static const char *attr(const ss_metric_point *p, const char *key)
{
        for (uint32_t a = 0; a < p->n_attrs; a++)
                if (!strcmp(p->attrs[a].key, key))
                        return p->attrs[a].value;
        return NULL;
}

/* ---- registry --------------------------------------------------------------------------- */

START_TEST(registry_series_buckets_and_overflow)
{
        ss_registry *r = ss_registry_new(SS_TEMPORALITY_CUMULATIVE, 3, NULL, 0, "t", "1");
        ss_instrument *c = ss_registry_counter(r, "c", "", "1", true);
        ss_instrument *g = ss_registry_gauge(r, "g", "", "1", true);
        ss_instrument *h = ss_registry_histogram(r, "h", "", "s", bounds, 3);
        ss_metrics_snapshot s;
        const ss_metric_point *p;
        char v[8];

        ck_assert_ptr_nonnull(h);
        ck_assert_int_eq(ss_instrument_record(c, 2, &(ss_metric_attr){"k", "a"}, 1), 0);
        ck_assert_int_eq(ss_instrument_record(c, 3, &(ss_metric_attr){"k", "a"}, 1), 0);
        ck_assert_int_eq(ss_instrument_record(c, NAN, &(ss_metric_attr){"k", "a"}, 1), 0);
        ck_assert_int_eq(ss_instrument_record(g, 7, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_record(g, 4, NULL, 0), 0);
        /* A value on a bound is in that bound's bucket: (b[i-1], b[i]]. */
        for (double x = 0; x <= 200; x += 50)
                ck_assert_int_eq(ss_instrument_record(h, x, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_record(h, 10, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_record(h, 100, NULL, 0), 0);
        /* Past 3 sets, the rest share the overflow series. */
        for (int i = 0; i < 6; i++) {
                snprintf(v, sizeof(v), "s%d", i);
                ck_assert_int_eq(ss_instrument_record(c, 1, &(ss_metric_attr){"k", v}, 1), 0);
        }
        ck_assert_int_eq(ss_registry_collect(r, 5 * SEC, &s), 0);
        ck_assert_double_eq(point(&s, "c", "k", "a")->value, 5);
        ck_assert_double_eq(point(&s, "g", NULL, NULL)->value, 4);
        p = point(&s, "h", NULL, NULL);
        ck_assert_uint_eq(p->count, 7);
        ck_assert_double_eq(p->sum, 0 + 50 + 100 + 150 + 200 + 10 + 100);
        ck_assert_double_eq(p->min, 0);
        ck_assert_double_eq(p->max, 200);
        ck_assert_uint_eq(p->bucket_counts[0], 1); /* 0 */
        ck_assert_uint_eq(p->bucket_counts[1], 1); /* 10 */
        ck_assert_uint_eq(p->bucket_counts[2], 3); /* 50, 100, 100 */
        ck_assert_uint_eq(p->bucket_counts[3], 2); /* 150, 200 */
        ck_assert_uint_eq(n_points(&s, "c"), 4);   /* a, s0, s1, and the overflow */
        p = point(&s, "c", "otel.metric.overflow", "true");
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(p->n_attrs, 1);
        ck_assert_double_eq(p->value, 4); /* s2 .. s5 */
        ck_assert_uint_eq(ss_registry_overflows(r), 4);
        ss_registry_free(r);
}
END_TEST

START_TEST(registry_delta_and_observed_totals)
{
        ss_registry *r = ss_registry_new(SS_TEMPORALITY_DELTA, 0, NULL, 0, "t", "1");
        ss_instrument *c = ss_registry_counter(r, "c", "", "1", true);
        ss_instrument *o = ss_registry_counter(r, "o", "", "1", true);
        ss_instrument *g = ss_registry_gauge(r, "g", "", "1", true);
        const double totals[] = {5, 7, 7, 3}, deltas[] = {5, 2, 0, 3};
        ss_metrics_snapshot s;

        ck_assert_int_eq(ss_instrument_record(c, 2, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_record(g, 9, NULL, 0), 0);
        for (int i = 0; i < 4; i++) {
                ck_assert_int_eq(ss_instrument_observe(o, totals[i], NULL, 0), 0);
                ck_assert_int_eq(ss_registry_collect(r, (uint64_t)(i + 1) * SEC, &s), 0);
                ck_assert_double_eq(point(&s, "o", NULL, NULL)->value, deltas[i]);
                ck_assert_double_eq(point(&s, "c", NULL, NULL)->value, i == 0 ? 2 : 0);
                ck_assert_double_eq(point(&s, "g", NULL, NULL)->value, 9); /* gauges keep */
                if (i > 0)
                        ck_assert_uint_eq(point(&s, "c", NULL, NULL)->start_ns, (uint64_t)i * SEC);
                ss_registry_reset(r, (uint64_t)(i + 1) * SEC);
        }
        ss_registry_free(r);
}
END_TEST

/* ---- GenAI spans ------------------------------------------------------------------------ */

typedef struct genai_fixture {
        ss_resource *res;
        ss_registry *reg;
        ss_genai_instruments g;
        ss_metrics_snapshot s;
} genai_fixture;

static void genai_init(genai_fixture *f)
{
        f->res = mp_resource("svc", NULL, NULL);
        f->reg = ss_registry_new(SS_TEMPORALITY_CUMULATIVE, 0, NULL, 0, "t", "1");
        ck_assert_int_eq(ss_genai_instruments_init(&f->g, f->reg), 0);
}

static void genai_record(genai_fixture *f, const char *name, int status, uint64_t dur_ms,
                         msgpack_object_kv *kv, uint32_t n, const msgpack_object_array *ev)
{
        msgpack_object_map attrs = {.size = n, .ptr = kv};
        ss_span *s = fx_span(&(fx_span_spec){.resource = f->res,
                                             .name = name,
                                             .seed = 1,
                                             .kind = SS_KIND_CLIENT,
                                             .start_ns = 10 * SEC,
                                             .end_ns = 10 * SEC + dur_ms * 1000000ull,
                                             .status_code = status,
                                             .attrs = &attrs,
                                             .events = ev,
                                             .whole = true});

        ck_assert_int_eq(ss_genai_record(&f->g, s), 0);
        ss_span_unref(s);
        ck_assert_int_eq(ss_registry_collect(f->reg, 20 * SEC, &f->s), 0);
}

static void genai_free(genai_fixture *f)
{
        ss_registry_free(f->reg);
        ss_resource_unref(f->res);
}

START_TEST(chat_span_records_tokens_duration_and_first_token)
{
        genai_fixture f;
        msgpack_object_kv kv[] = {fx_kv("gen_ai.operation.name", fx_str("chat")),
                                  fx_kv("gen_ai.provider.name", fx_str("openai")),
                                  fx_kv("gen_ai.request.model", fx_str("gpt-4o")),
                                  fx_kv("gen_ai.response.model", fx_str("gpt-4o-2024")),
                                  fx_kv("server.address", fx_str("api.openai.com")),
                                  fx_kv("gen_ai.usage.input_tokens", fx_uint(100)),
                                  fx_kv("gen_ai.usage.output_tokens", fx_uint(20))};
        msgpack_object ev_fields[] = {fx_str("gen_ai.first_token"), fx_uint(10 * SEC + 300000000),
                                      fx_map(NULL, 0)};
        msgpack_object ev = fx_array(ev_fields, 3);
        msgpack_object_array events = {.size = 1, .ptr = &ev};
        const ss_metric_point *p;

        genai_init(&f);
        genai_record(&f, "chat gpt-4o", SS_STATUS_OK, 2500, kv, 7, &events);
        p = point(&f.s, "gen_ai.client.token.usage", "gen_ai.token.type", "input");
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(p->count, 1);
        ck_assert_double_eq(p->sum, 100);
        ck_assert_str_eq(attr(p, "gen_ai.operation.name"), "chat");
        ck_assert_str_eq(attr(p, "gen_ai.provider.name"), "openai");
        ck_assert_str_eq(attr(p, "gen_ai.request.model"), "gpt-4o");
        ck_assert_str_eq(attr(p, "gen_ai.response.model"), "gpt-4o-2024");
        ck_assert_str_eq(attr(p, "server.address"), "api.openai.com");
        p = point(&f.s, "gen_ai.client.token.usage", "gen_ai.token.type", "output");
        ck_assert_double_eq(p->sum, 20);
        p = point(&f.s, "gen_ai.client.operation.duration", NULL, NULL);
        ck_assert_double_eq_tol(p->sum, 2.5, 1e-9);
        ck_assert_ptr_null(attr(p, "error.type"));
        ck_assert_ptr_null(attr(p, "gen_ai.token.type"));
        p = point(&f.s, "gen_ai.server.time_to_first_token", NULL, NULL);
        ck_assert_double_eq_tol(p->sum, 0.3, 1e-9);
        ck_assert_uint_eq(n_points(&f.s, "upsonic.agent.runs"), 0);
        genai_free(&f);
}
END_TEST

START_TEST(failed_and_odd_spans)
{
        genai_fixture f;
        msgpack_object_kv typed[] = {fx_kv("gen_ai.operation.name", fx_str("chat")),
                                     fx_kv("error.type", fx_str("timeout"))};
        msgpack_object_kv bad[] = {fx_kv("gen_ai.usage.input_tokens", fx_str("many")),
                                   fx_kv("gen_ai.usage.output_tokens", fx_uint(5))};
        msgpack_object_kv tool[] = {fx_kv("gen_ai.operation.name", fx_str("execute_tool")),
                                    fx_kv("gen_ai.usage.input_tokens", fx_uint(9))};

        genai_init(&f);
        genai_record(&f, "chat x", SS_STATUS_ERROR, 100, typed, 2, NULL);
        ck_assert_ptr_nonnull(
            point(&f.s, "gen_ai.client.operation.duration", "error.type", "timeout"));
        genai_record(&f, "chat x", SS_STATUS_ERROR, 100, NULL, 0, NULL);
        ck_assert_ptr_nonnull(
            point(&f.s, "gen_ai.client.operation.duration", "error.type", "_OTHER"));
        /* Named "chat ..." without the attribute: a chat; a string token count is none. */
        genai_record(&f, "chat y", SS_STATUS_OK, 100, bad, 2, NULL);
        ck_assert_ptr_null(point(&f.s, "gen_ai.client.token.usage", "gen_ai.token.type", "input"));
        ck_assert_double_eq(
            point(&f.s, "gen_ai.client.token.usage", "gen_ai.token.type", "output")->sum, 5);
        /* A tool call and a plain span record nothing more. */
        genai_record(&f, "tool.execute", SS_STATUS_OK, 100, tool, 2, NULL);
        genai_record(&f, "pipeline.step.x", SS_STATUS_OK, 100, NULL, 0, NULL);
        ck_assert_uint_eq(
            point(&f.s, "gen_ai.client.token.usage", "gen_ai.token.type", "output")->count, 1);
        genai_free(&f);
}
END_TEST

START_TEST(run_span_records_runs_cost_tools_and_steps)
{
        genai_fixture f;
        msgpack_object_kv kv[] = {
            fx_kv("upsonic.agent.name", fx_str("planner")),
            fx_kv("upsonic.agent.model", fx_str("gpt-4o")),
            fx_kv("upsonic.status", fx_str("COMPLETED")),
            fx_kv("upsonic.tool_call_count", fx_uint(3)),
            fx_kv("upsonic.pipeline.executed_steps", fx_uint(20)),
            fx_kv("upsonic.total_cost",
                  (msgpack_object){.type = MSGPACK_OBJECT_FLOAT64, .via.f64 = 0.0125})};
        const ss_metric_point *p;

        genai_init(&f);
        genai_record(&f, "agent.run", SS_STATUS_OK, 4000, kv, 6, NULL);
        genai_record(&f, "agent.run", SS_STATUS_ERROR, 1000, kv, 2, NULL);
        p = point(&f.s, "upsonic.agent.runs", "upsonic.status", "COMPLETED");
        ck_assert_double_eq(p->value, 1);
        ck_assert_str_eq(attr(p, "upsonic.agent.name"), "planner");
        /* No upsonic.status: the span's ERROR says it. */
        ck_assert_double_eq(point(&f.s, "upsonic.agent.runs", "upsonic.status", "ERROR")->value, 1);
        p = point(&f.s, "upsonic.cost", "gen_ai.request.model", "gpt-4o");
        ck_assert_double_eq_tol(p->value, 0.0125, 1e-12);
        ck_assert_str_eq(attr(p, "upsonic.agent.name"), "planner");
        ck_assert_double_eq(point(&f.s, "upsonic.agent.tool_calls", NULL, NULL)->sum, 3);
        ck_assert_double_eq(point(&f.s, "upsonic.agent.executed_steps", NULL, NULL)->sum, 20);
        p = point(&f.s, "upsonic.agent.run.duration", "upsonic.status", "COMPLETED");
        ck_assert_double_eq_tol(p->sum, 4.0, 1e-9);
        ck_assert_uint_eq(n_points(&f.s, "gen_ai.client.token.usage"), 0);
        genai_free(&f);
}
END_TEST

/* ---- headline --------------------------------------------------------------------------- */

static ss_span *chat(ss_resource *res, const char *model, uint64_t in, double cost)
{
        msgpack_object_kv kv[] = {
            fx_kv("gen_ai.operation.name", fx_str("chat")),
            fx_kv("gen_ai.usage.input_tokens", fx_uint(in)),
            fx_kv("gen_ai.usage.output_tokens", fx_uint(1)),
            fx_kv("gen_ai.usage.cost",
                  (msgpack_object){.type = MSGPACK_OBJECT_FLOAT64, .via.f64 = cost}),
            fx_kv("gen_ai.request.model", fx_str(model ? model : ""))};
        msgpack_object_map attrs = {.size = model ? 5 : 4, .ptr = kv};

        return fx_span(&(fx_span_spec){.resource = res,
                                       .name = "chat",
                                       .seed = 2,
                                       .start_ns = SEC,
                                       .end_ns = 2 * SEC,
                                       .status_code = SS_STATUS_OK,
                                       .attrs = &attrs,
                                       .whole = true});
}

static uint64_t headline_counter(const ss_headline *h, uint64_t now_ms, const char *name)
{
        ss_counters c;
        uint64_t v;

        ss_counters_init(&c);
        ss_headline_counters(h, now_ms, &c);
        ck_assert_int_eq(c.err, 0);
        v = ss_counters_get(&c, name);
        ss_counters_free(&c);
        return v;
}

START_TEST(headline_window_models_and_bounds)
{
        ss_resource *res = mp_resource("svc", NULL, NULL);
        ss_headline *h = ss_headline_new();
        char model[80], name[SS_COUNTER_NAME_MAX];
        ss_span *s;

        /* 0.0000015 USD twice: 3 micro-USD, rounded once (per span it would be 4). */
        for (int i = 0; i < 2; i++) {
                s = chat(res, "gpt-4o", 100, 0.0000015);
                ss_headline_record(h, s, 1000);
                ss_span_unref(s);
        }
        s = chat(res, "gpt-4o", 50, 0);
        ss_headline_record(h, s, 70000); /* 69 s later */
        ss_span_unref(s);
        ck_assert_uint_eq(headline_counter(h, 70000, "genai.model.gpt-4o.requests"), 3);
        ck_assert_uint_eq(headline_counter(h, 70000, "genai.model.gpt-4o.input_tokens"), 250);
        ck_assert_uint_eq(headline_counter(h, 70000, "genai.model.gpt-4o.cost_micro_usd"), 3);
        ck_assert_uint_eq(headline_counter(h, 70000, "genai.model.gpt-4o.requests_1m"), 1);
        ck_assert_uint_eq(headline_counter(h, 70000, "genai.model.gpt-4o.input_tokens_1m"), 50);
        ck_assert_uint_eq(headline_counter(h, 130000, "genai.model.gpt-4o.requests_1m"), 0);
        /* No model: "unknown". */
        s = chat(res, NULL, 1, 0);
        ss_headline_record(h, s, 1000);
        ss_span_unref(s);
        ck_assert_uint_eq(headline_counter(h, 1000, "genai.model.unknown.requests"), 1);
        /* A long name is cut; past the bound, "_other". */
        memset(model, 'm', sizeof(model) - 1);
        model[sizeof(model) - 1] = '\0';
        s = chat(res, model, 1, 0);
        ss_headline_record(h, s, 1000);
        ss_span_unref(s);
        snprintf(name, sizeof(name), "genai.model.%.*s.requests", (int)SS_HEADLINE_MODEL_MAX,
                 model);
        ck_assert_uint_eq(headline_counter(h, 1000, name), 1);
        for (unsigned i = 0; i < SS_HEADLINE_MAX_MODELS + 5; i++) {
                snprintf(model, sizeof(model), "model-%u", i);
                s = chat(res, model, 1, 0);
                ss_headline_record(h, s, 1000);
                ss_span_unref(s);
        }
        ck_assert_uint_eq(headline_counter(h, 1000, "genai.model._other.requests"), 3 + 5);
        ck_assert_uint_eq(headline_counter(h, 1000, "genai.model.model-40.requests"), 0);
        ss_headline_free(h);
        ss_resource_unref(res);
}
END_TEST

/* ---- health ----------------------------------------------------------------------------- */

START_TEST(health_reads_the_counters)
{
        ss_registry *r = ss_registry_new(SS_TEMPORALITY_CUMULATIVE, 0, NULL, 0, "t", "1");
        ss_health h;
        ss_counters c;
        ss_metrics_snapshot s;
        const ss_metric_point *p;

        ck_assert_int_eq(ss_health_init(&h, r), 0);
        ss_counters_init(&c);
        ss_counters_add(&c, "exporter.a.b.", "spans_exported", 12);
        ss_counters_add(&c, "exporter.a.b.", "dropped.queue_full", 3);
        ss_counters_add(&c, "exporter.a.b.", "queued_bytes", 4096);
        ss_counters_add(&c, "exporter.a.b.", "spool.bytes", 8192);
        ss_counters_add(&c, NULL, "connections_active", 2);
        ss_counters_add(&c, NULL, "spans_started", 40);
        ss_counters_add(&c, NULL, "spans_open", 5);
        ss_counters_add(&c, NULL, "open_span_limit", 1);
        ss_health_observe(&h, &c);
        ss_counters_free(&c);
        ck_assert_int_eq(ss_registry_collect(r, SEC, &s), 0);
        p = point(&s, "sidespan.spans.exported", "sidespan.exporter", "a.b");
        ck_assert_double_eq(p->value, 12);
        p = point(&s, "sidespan.spans.dropped", "reason", "queue_full");
        ck_assert_double_eq(p->value, 3);
        ck_assert_str_eq(attr(p, "sidespan.exporter"), "a.b");
        ck_assert_double_eq(point(&s, "sidespan.exporter.queue.size", NULL, NULL)->value, 4096);
        ck_assert_double_eq(point(&s, "sidespan.exporter.spool.size", NULL, NULL)->value, 8192);
        ck_assert_double_eq(point(&s, "sidespan.clients.connected", NULL, NULL)->value, 2);
        ck_assert_double_eq(point(&s, "sidespan.spans.received", NULL, NULL)->value, 40);
        ck_assert_double_eq(point(&s, "sidespan.spans.open", NULL, NULL)->value, 5);
        ck_assert_double_eq(point(&s, "sidespan.spans.refused", "reason", "open_span_limit")->value,
                            1);
        ss_registry_free(r);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("metrics");
        TCase *tc = tcase_create("metrics");

        tcase_add_test(tc, registry_series_buckets_and_overflow);
        tcase_add_test(tc, registry_delta_and_observed_totals);
        tcase_add_test(tc, chat_span_records_tokens_duration_and_first_token);
        tcase_add_test(tc, failed_and_odd_spans);
        tcase_add_test(tc, run_span_records_runs_cost_tools_and_steps);
        tcase_add_test(tc, headline_window_models_and_bounds);
        tcase_add_test(tc, health_reads_the_counters);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
