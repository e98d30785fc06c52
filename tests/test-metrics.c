/* SPDX-License-Identifier: MIT */
#include "ss-check.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "metrics/genai.h"
#include "metrics/headline.h"
#include "metrics/health.h"
#include "metrics/registry.h"
#include "ss-id.h"
#include "ss-macro.h"

/*
 * The metrics stage's parts without a loop: the registry (series, the overflow
 * series, temporality, observed totals), what a finished span records in the
 * GenAI instruments, the per-model headline counters and the health
 * instruments read from STATS counters. Every figure is read back the way the
 * outputs read it: from a snapshot, or from the counters STATS would send.
 */

#define N(a)  ((uint32_t)SS_ELEMENTSOF(a))
#define TOL   1e-9
#define T0    1700000000000000000ull
#define MS(x) (T0 + (uint64_t)(x)*1000000ull)

/* ---- reading a snapshot ------------------------------------------------------------------ */

static const ss_metric *metric_named(const ss_metrics_snapshot *snap, const char *name)
{
        for (size_t i = 0; i < snap->n; i++)
                if (strcmp(snap->metrics[i].name, name) == 0)
                        return &snap->metrics[i];
        ck_abort_msg("no metric %s", name);
        return NULL;
}

static const char *attr_of(const ss_metric_point *p, const char *key)
{
        for (uint32_t k = 0; k < p->n_attrs; k++)
                if (strcmp(p->attrs[k].key, key) == 0)
                        return p->attrs[k].value;
        return NULL;
}

/* The point of m whose attributes are exactly want, in any order; NULL when none. */
static const ss_metric_point *point_with(const ss_metric *m, const ss_metric_attr *want, uint32_t n)
{
        for (size_t i = 0; i < m->n_points; i++) {
                const ss_metric_point *p = &m->points[i];
                uint32_t k = 0;
                const char *v;

                if (p->n_attrs != n)
                        continue;
                while (k < n && (v = attr_of(p, want[k].key)) && strcmp(v, want[k].value) == 0)
                        k++;
                if (k == n)
                        return p;
        }
        return NULL;
}

static const ss_metric_point *must_point(const ss_metric *m, const ss_metric_attr *want, uint32_t n)
{
        const ss_metric_point *p = point_with(m, want, n);

        ck_assert_msg(p != NULL, "%s: no point with these %u attributes (first %s=%s)", m->name, n,
                      n ? want[0].key : "-", n ? want[0].value : "-");
        return p;
}

/* A histogram point holding count values summing to sum, all in bucket b. */
static void assert_hist(const ss_metric *m, const ss_metric_point *p, uint64_t count, double sum,
                        uint32_t b)
{
        ck_assert_uint_eq(p->count, count);
        ck_assert_double_eq_tol(p->sum, sum, TOL);
        for (uint32_t k = 0; k <= m->n_bounds; k++)
                ck_assert_msg(p->bucket_counts[k] == (k == b ? count : 0),
                              "%s: bucket %u holds %llu", m->name, k,
                              (unsigned long long)p->bucket_counts[k]);
}

static ss_registry *registry(int temporality, uint32_t max_series)
{
        ss_registry *r = ss_registry_new(temporality, max_series, NULL, 0, "test", "0");

        ck_assert_ptr_nonnull(r);
        return r;
}

/* The one metric of a registry holding one instrument, collected at now. */
static const ss_metric *collect_one(ss_registry *r, uint64_t now)
{
        ss_metrics_snapshot snap;

        ck_assert_int_eq(ss_registry_collect(r, now, &snap), 0);
        ck_assert_uint_eq(snap.n, 1);
        return &snap.metrics[0];
}

/* ---- the registry ------------------------------------------------------------------------ */

/* A counter sums per attribute set; the identity is the ordered pairs, so the same pairs in
 * another order are another series (every caller builds its sets in one order). */
START_TEST(test_counter_sums)
{
        static const ss_metric_attr ab[] = {{"a", "1"}, {"b", "2"}};
        static const ss_metric_attr ba[] = {{"b", "2"}, {"a", "1"}};
        static const ss_metric_attr ab3[] = {{"a", "1"}, {"b", "3"}};
        ss_registry *r = registry(SS_TEMPORALITY_CUMULATIVE, 0);
        ss_instrument *c = ss_registry_counter(r, "c", "a counter", "{x}", true);
        const ss_metric *m;

        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(ss_instrument_record(c, 1, ab, 2), 0);
        ck_assert_int_eq(ss_instrument_record(c, 2, ab, 2), 0);
        ck_assert_int_eq(ss_instrument_record(c, 4, ba, 2), 0);
        ck_assert_int_eq(ss_instrument_record(c, 8, ab3, 2), 0);
        ck_assert_int_eq(ss_instrument_record(c, 16, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_record(c, 32, NULL, 0), 0);
        m = collect_one(r, MS(1));
        ck_assert_str_eq(m->name, "c");
        ck_assert_int_eq(m->kind, SS_METRIC_SUM);
        ck_assert(m->monotonic && m->is_int);
        ck_assert_uint_eq(m->n_points, 4);
        /* In order of creation, the attributes in the order they were given. */
        ck_assert_double_eq(m->points[0].value, 3);
        ck_assert_str_eq(m->points[0].attrs[0].key, "a");
        ck_assert_double_eq(m->points[1].value, 4);
        ck_assert_str_eq(m->points[1].attrs[0].key, "b");
        ck_assert_str_eq(m->points[1].attrs[1].value, "1");
        ck_assert_double_eq(m->points[2].value, 8);
        ck_assert_str_eq(m->points[2].attrs[1].value, "3");
        ck_assert_uint_eq(m->points[3].n_attrs, 0);
        ck_assert_double_eq(m->points[3].value, 48);
        ck_assert_uint_eq(m->points[3].time_ns, MS(1));
        ck_assert_uint_eq(ss_registry_overflows(r), 0);
        ss_registry_free(r);
        ss_registry_free(NULL);
}
END_TEST

START_TEST(test_gauge_last)
{
        static const ss_metric_attr x[] = {{"x", "1"}};
        ss_registry *r = registry(SS_TEMPORALITY_CUMULATIVE, 0);
        ss_instrument *g = ss_registry_gauge(r, "g", "a gauge", "By", false);
        const ss_metric *m;

        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(ss_instrument_record(g, 5, x, 1), 0);
        ck_assert_int_eq(ss_instrument_record(g, 9.5, x, 1), 0);
        ck_assert_int_eq(ss_instrument_record(g, -2.25, x, 1), 0);
        ck_assert_int_eq(ss_instrument_record(g, 7, NULL, 0), 0);
        m = collect_one(r, MS(1));
        ck_assert_int_eq(m->kind, SS_METRIC_GAUGE);
        ck_assert(!m->is_int);
        ck_assert_uint_eq(m->n_points, 2);
        ck_assert_double_eq(must_point(m, x, 1)->value, -2.25);
        ck_assert_double_eq(must_point(m, NULL, 0)->value, 7);
        ss_registry_free(r);
}
END_TEST

/* A value on a bound goes to that bound's bucket: (b[i-1], b[i]]. */
START_TEST(test_histogram_buckets)
{
        static const double bounds[] = {1, 2, 4};
        static const double values[] = {-3, 0.5, 1, 1.0000001, 2, 4, 4.0000001, 100};
        static const uint64_t want[] = {3, 2, 1, 2};
        ss_registry *r = registry(SS_TEMPORALITY_CUMULATIVE, 0);
        ss_instrument *h = ss_registry_histogram(r, "h", "a histogram", "s", bounds, N(bounds));
        const ss_metric_point *p;
        const ss_metric *m;
        double sum = 0;

        ck_assert_ptr_nonnull(h);
        for (uint32_t k = 0; k < N(values); k++) {
                ck_assert_int_eq(ss_instrument_record(h, values[k], NULL, 0), 0);
                sum += values[k];
        }
        m = collect_one(r, MS(1));
        ck_assert_int_eq(m->kind, SS_METRIC_HISTOGRAM);
        ck_assert_uint_eq(m->n_bounds, 3);
        ck_assert_ptr_eq(m->bounds, bounds);
        ck_assert_uint_eq(m->n_points, 1);
        p = &m->points[0];
        ck_assert_uint_eq(p->count, N(values));
        ck_assert_double_eq_tol(p->sum, sum, TOL);
        ck_assert_double_eq(p->min, -3);
        ck_assert_double_eq(p->max, 100);
        for (uint32_t k = 0; k < N(want); k++)
                ck_assert_msg(p->bucket_counts[k] == want[k], "bucket %u: %llu, want %llu", k,
                              (unsigned long long)p->bucket_counts[k], (unsigned long long)want[k]);
        ss_registry_free(r);
}
END_TEST

/* Past max_series a new set goes to the one overflow series; known sets keep their own. */
START_TEST(test_max_series)
{
        static const double bounds[] = {10};
        static const ss_metric_attr overflow[] = {{"otel.metric.overflow", "true"}};
        ss_registry *r = registry(SS_TEMPORALITY_CUMULATIVE, 3);
        ss_instrument *c = ss_registry_counter(r, "c", "", "1", true);
        ss_instrument *h = ss_registry_histogram(r, "h", "", "1", bounds, N(bounds));
        ss_metrics_snapshot snap;
        const ss_metric *m;
        char v[8];

        ck_assert_ptr_nonnull(c);
        ck_assert_ptr_nonnull(h);
        for (unsigned k = 0; k < 5; k++) {
                snprintf(v, sizeof(v), "%u", k);
                ck_assert_int_eq(ss_instrument_record(c, 1 << k, &(ss_metric_attr){"k", v}, 1), 0);
        }
        ck_assert_uint_eq(ss_registry_overflows(r), 2);
        /* A known set, and the cap is per instrument. */
        ck_assert_int_eq(ss_instrument_record(c, 100, &(ss_metric_attr){"k", "0"}, 1), 0);
        ck_assert_int_eq(ss_instrument_record(h, 20, &(ss_metric_attr){"k", "9"}, 1), 0);
        ck_assert_uint_eq(ss_registry_overflows(r), 2);
        for (unsigned k = 0; k < 4; k++) {
                snprintf(v, sizeof(v), "h%u", k);
                ck_assert_int_eq(ss_instrument_record(h, 5, &(ss_metric_attr){"k", v}, 1), 0);
        }
        ck_assert_uint_eq(ss_registry_overflows(r), 4); /* h2 and h3 */

        ck_assert_int_eq(ss_registry_collect(r, MS(1), &snap), 0);
        m = metric_named(&snap, "c");
        ck_assert_uint_eq(m->n_points, 4);
        ck_assert_double_eq(must_point(m, &(ss_metric_attr){"k", "0"}, 1)->value, 101);
        ck_assert_double_eq(must_point(m, &(ss_metric_attr){"k", "2"}, 1)->value, 4);
        ck_assert_ptr_null(point_with(m, &(ss_metric_attr){"k", "3"}, 1));
        ck_assert_double_eq(must_point(m, overflow, 1)->value, 8 + 16);
        m = metric_named(&snap, "h");
        ck_assert_uint_eq(m->n_points, 4);
        assert_hist(m, must_point(m, overflow, 1), 2, 10, 0);
        assert_hist(m, must_point(m, &(ss_metric_attr){"k", "9"}, 1), 1, 20, 1);
        ss_registry_free(r);
}
END_TEST

/* Attributes past SS_METRICS_MAX_ATTRS, or past SS_METRICS_MAX_ATTR_BYTES, are cut, in the
 * identity too. */
START_TEST(test_attr_cut)
{
        ss_metric_attr many[SS_METRICS_MAX_ATTRS + 1], big[2];
        char keys[SS_METRICS_MAX_ATTRS + 1][8], value[600];
        ss_registry *r = registry(SS_TEMPORALITY_CUMULATIVE, 0);
        ss_instrument *c = ss_registry_counter(r, "c", "", "1", true);
        ss_instrument *g = ss_registry_gauge(r, "g", "", "1", true);
        ss_metrics_snapshot snap;
        const ss_metric *m;

        for (uint32_t k = 0; k < N(many); k++) {
                snprintf(keys[k], sizeof(keys[k]), "k%u", k);
                many[k] = (ss_metric_attr){keys[k], "v"};
        }
        ck_assert_int_eq(ss_instrument_record(c, 1, many, N(many)), 0);
        ck_assert_int_eq(ss_instrument_record(c, 2, many, SS_METRICS_MAX_ATTRS), 0);
        memset(value, 'v', sizeof(value) - 1);
        value[sizeof(value) - 1] = '\0';
        big[0] = (ss_metric_attr){"a", value};
        big[1] = (ss_metric_attr){"b", value};
        ck_assert_int_eq(ss_instrument_record(g, 3, big, 2), 0);

        ck_assert_int_eq(ss_registry_collect(r, MS(1), &snap), 0);
        m = metric_named(&snap, "c");
        ck_assert_uint_eq(m->n_points, 1);
        ck_assert_uint_eq(m->points[0].n_attrs, SS_METRICS_MAX_ATTRS);
        ck_assert_double_eq(m->points[0].value, 3);
        ck_assert_str_eq(m->points[0].attrs[SS_METRICS_MAX_ATTRS - 1].key, "k15");
        m = metric_named(&snap, "g");
        ck_assert_uint_eq(m->n_points, 1);
        ck_assert_uint_eq(m->points[0].n_attrs, 1);
        ck_assert_str_eq(m->points[0].attrs[0].key, "a");
        ck_assert_str_eq(m->points[0].attrs[0].value, value);
        ss_registry_free(r);
}
END_TEST

/* Delta: once read, sums and histograms start again from zero at the reset, gauges keep
 * their value; a series first seen after a reset starts at it too. */
START_TEST(test_delta_reset)
{
        static const double bounds[] = {1, 10};
        static const ss_metric_attr x[] = {{"x", "1"}}, y[] = {{"y", "1"}};
        ss_registry *r = registry(SS_TEMPORALITY_DELTA, 0);
        ss_instrument *c = ss_registry_counter(r, "c", "", "1", true);
        ss_instrument *g = ss_registry_gauge(r, "g", "", "1", true);
        ss_instrument *h = ss_registry_histogram(r, "h", "", "s", bounds, N(bounds));
        ss_metrics_snapshot snap;
        const ss_metric *m;
        const ss_metric_point *p;
        uint64_t t1 = ss_now_ns() + 1000000000u, t2 = t1 + 1000000000u, t3 = t2 + 1000000000u;
        uint64_t start;

        ck_assert_int_eq(ss_instrument_record(c, 5, x, 1), 0);
        ck_assert_int_eq(ss_instrument_record(g, 42, x, 1), 0);
        ck_assert_int_eq(ss_instrument_record(h, 5, x, 1), 0);
        ck_assert_int_eq(ss_instrument_record(h, 50, x, 1), 0);
        ck_assert_int_eq(ss_registry_collect(r, t1, &snap), 0);
        ck_assert_int_eq(snap.temporality, SS_TEMPORALITY_DELTA);
        p = must_point(metric_named(&snap, "c"), x, 1);
        ck_assert_double_eq(p->value, 5);
        start = p->start_ns;
        ck_assert_uint_lt(start, t1);
        ck_assert_uint_eq(must_point(metric_named(&snap, "h"), x, 1)->count, 2);
        ss_registry_reset(r, t1);

        ck_assert_int_eq(ss_registry_collect(r, t2, &snap), 0);
        p = must_point(metric_named(&snap, "c"), x, 1);
        ck_assert_double_eq(p->value, 0);
        ck_assert_uint_eq(p->start_ns, t1);
        ck_assert_uint_eq(p->time_ns, t2);
        p = must_point(metric_named(&snap, "g"), x, 1);
        ck_assert_double_eq(p->value, 42);
        m = metric_named(&snap, "h");
        p = must_point(m, x, 1);
        ck_assert_uint_eq(p->start_ns, t1);
        assert_hist(m, p, 0, 0, 0);

        ck_assert_int_eq(ss_instrument_record(c, 2, x, 1), 0);
        ck_assert_int_eq(ss_instrument_record(c, 7, y, 1), 0);
        ck_assert_int_eq(ss_instrument_record(h, 0.5, x, 1), 0);
        ss_registry_reset(r, t2);
        ck_assert_int_eq(ss_instrument_record(c, 3, x, 1), 0);
        ck_assert_int_eq(ss_instrument_record(c, 4, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_record(h, 0.5, x, 1), 0);
        ck_assert_int_eq(ss_registry_collect(r, t3, &snap), 0);
        m = metric_named(&snap, "c");
        ck_assert_double_eq(must_point(m, x, 1)->value, 3);
        ck_assert_double_eq(must_point(m, y, 1)->value, 0);
        p = must_point(m, NULL, 0);
        ck_assert_double_eq(p->value, 4);
        ck_assert_uint_eq(p->start_ns, t2);
        m = metric_named(&snap, "h");
        p = must_point(m, x, 1);
        assert_hist(m, p, 1, 0.5, 0);
        ck_assert_double_eq(p->min, 0.5);
        ck_assert_double_eq(p->max, 0.5);
        ss_registry_free(r);
}
END_TEST

/* Cumulative: every series starts when the registry did, and sums keep growing. */
START_TEST(test_cumulative_start)
{
        uint64_t before = ss_now_ns();
        ss_registry *r = registry(SS_TEMPORALITY_CUMULATIVE, 0);
        uint64_t after = ss_now_ns();
        ss_instrument *c = ss_registry_counter(r, "c", "", "1", true);
        const ss_metric_point *p;
        const ss_metric *m;
        uint64_t start;

        ck_assert_int_eq(ss_instrument_record(c, 1, NULL, 0), 0);
        m = collect_one(r, after + 1000);
        ck_assert_uint_eq(m->n_points, 1);
        start = m->points[0].start_ns;
        ck_assert_uint_ge(start, before);
        ck_assert_uint_le(start, after);
        ck_assert_int_eq(ss_instrument_record(c, 2, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_record(c, 5, &(ss_metric_attr){"late", "1"}, 1), 0);
        m = collect_one(r, after + 2000);
        p = must_point(m, NULL, 0);
        ck_assert_double_eq(p->value, 3);
        ck_assert_uint_eq(p->start_ns, start);
        ck_assert_uint_eq(p->time_ns, after + 2000);
        p = must_point(m, &(ss_metric_attr){"late", "1"}, 1);
        ck_assert_double_eq(p->value, 5);
        ck_assert_uint_eq(p->start_ns, start);
        ss_registry_free(r);
}
END_TEST

/* Observed totals 5, 7, 7, 3 (a restart) make the sums 5, 7, 7, 10; a gauge takes them. */
START_TEST(test_observe)
{
        static const double totals[] = {5, 7, 7, 3};
        static const double sums[] = {5, 7, 7, 10};
        ss_registry *r = registry(SS_TEMPORALITY_CUMULATIVE, 0);
        ss_instrument *c = ss_registry_counter(r, "c", "", "1", true);
        ss_instrument *g = ss_registry_gauge(r, "g", "", "1", true);
        ss_metrics_snapshot snap;

        for (uint32_t k = 0; k < N(totals); k++) {
                ck_assert_int_eq(ss_instrument_observe(c, totals[k], NULL, 0), 0);
                ck_assert_int_eq(ss_instrument_observe(g, totals[k], NULL, 0), 0);
                ck_assert_int_eq(ss_registry_collect(r, MS(k), &snap), 0);
                ck_assert_double_eq(must_point(metric_named(&snap, "c"), NULL, 0)->value, sums[k]);
                ck_assert_double_eq(must_point(metric_named(&snap, "g"), NULL, 0)->value,
                                    totals[k]);
        }
        ss_registry_free(r);
}
END_TEST

/* Delta: an observed counter reports what it gained since the last collection. */
START_TEST(test_observe_delta)
{
        ss_registry *r = registry(SS_TEMPORALITY_DELTA, 0);
        ss_instrument *c = ss_registry_counter(r, "c", "", "1", true);

        ck_assert_int_eq(ss_instrument_observe(c, 5, NULL, 0), 0);
        ck_assert_double_eq(collect_one(r, MS(1))->points[0].value, 5);
        ss_registry_reset(r, MS(1));
        ck_assert_int_eq(ss_instrument_observe(c, 7, NULL, 0), 0);
        ck_assert_double_eq(collect_one(r, MS(2))->points[0].value, 2);
        ss_registry_reset(r, MS(2));
        ck_assert_int_eq(ss_instrument_observe(c, 3, NULL, 0), 0);
        ck_assert_double_eq(collect_one(r, MS(3))->points[0].value, 3);
        ss_registry_free(r);
}
END_TEST

/* NaN records nothing: no series, no change to one, not an observed total. */
START_TEST(test_nan_ignored)
{
        static const double bounds[] = {1};
        ss_registry *r = registry(SS_TEMPORALITY_CUMULATIVE, 0);
        ss_instrument *c = ss_registry_counter(r, "c", "", "1", false);
        ss_instrument *g = ss_registry_gauge(r, "g", "", "1", false);
        ss_instrument *h = ss_registry_histogram(r, "h", "", "1", bounds, N(bounds));
        ss_instrument *o = ss_registry_counter(r, "o", "", "1", false);
        ss_metrics_snapshot snap;
        const ss_metric *m;

        ck_assert_int_eq(ss_instrument_record(c, NAN, &(ss_metric_attr){"new", "1"}, 1), 0);
        ck_assert_int_eq(ss_instrument_record(c, 2, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_record(c, NAN, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_record(g, 4, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_record(g, NAN, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_record(h, 0.5, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_record(h, NAN, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_observe(o, 5, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_observe(o, NAN, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_observe(o, 7, NULL, 0), 0);
        ck_assert_int_eq(ss_instrument_observe(g, NAN, NULL, 0), 0);

        ck_assert_int_eq(ss_registry_collect(r, MS(1), &snap), 0);
        m = metric_named(&snap, "c");
        ck_assert_uint_eq(m->n_points, 1);
        ck_assert_double_eq(m->points[0].value, 2);
        ck_assert_double_eq(must_point(metric_named(&snap, "g"), NULL, 0)->value, 4);
        m = metric_named(&snap, "h");
        assert_hist(m, must_point(m, NULL, 0), 1, 0.5, 0);
        ck_assert_double_eq(must_point(metric_named(&snap, "o"), NULL, 0)->value, 7);
        ss_registry_free(r);
}
END_TEST

/* ---- spans ------------------------------------------------------------------------------- */

/* A finished span of r from T0, dur_ms long, with status, attributes kv and events ev. */
static ss_span *mk(ss_resource *r, const char *name, int32_t status, uint32_t dur_ms,
                   msgpack_object_kv *kv, uint32_t n_kv, const msgpack_object_array *ev)
{
        msgpack_object_map attrs = {.size = n_kv, .ptr = kv};

        return fx_span(&(fx_span_spec){.resource = r,
                                       .name = name,
                                       .seed = 1,
                                       .kind = SS_KIND_CLIENT,
                                       .start_ns = T0,
                                       .end_ns = MS(dur_ms),
                                       .status_code = status,
                                       .attrs = &attrs,
                                       .events = ev,
                                       .whole = true});
}

/* ---- GenAI instruments ------------------------------------------------------------------- */

typedef struct genai_fixture {
        ss_resource *res;
        ss_registry *reg;
        ss_genai_instruments g;
        ss_metrics_snapshot snap;
} genai_fixture;

static void genai_init(genai_fixture *f)
{
        f->res = mp_resource("agent", NULL, NULL);
        f->reg = registry(SS_TEMPORALITY_CUMULATIVE, 0);
        ck_assert_int_eq(ss_genai_instruments_init(&f->g, f->reg), 0);
}

static void genai_free(genai_fixture *f)
{
        ss_registry_free(f->reg);
        ss_resource_unref(f->res);
}

/* Record a span as mk() makes it, and drop it. */
static void genai_span(genai_fixture *f, const char *name, int32_t status, uint32_t dur_ms,
                       msgpack_object_kv *kv, uint32_t n_kv, const msgpack_object_array *ev)
{
        ss_span *s = mk(f->res, name, status, dur_ms, kv, n_kv, ev);

        ck_assert_int_eq(ss_genai_record(&f->g, s, ss_genai_kind_of(s)), 0);
        ss_span_unref(s);
}

static const ss_metric *genai_metric(genai_fixture *f, const char *name)
{
        ck_assert_int_eq(ss_registry_collect(f->reg, MS(60000), &f->snap), 0);
        return metric_named(&f->snap, name);
}

/* The attributes of the chat spans below, and the ones a chat's points carry. */
#define CHAT_KV                                                                                    \
        fx_kv("gen_ai.operation.name", fx_str("chat")),                                            \
            fx_kv("gen_ai.provider.name", fx_str("openai")),                                       \
            fx_kv("gen_ai.request.model", fx_str("gpt-4o")),                                       \
            fx_kv("gen_ai.response.model", fx_str("gpt-4o-2024-08-06")),                           \
            fx_kv("server.address", fx_str("api.openai.com"))
#define CHAT_ATTRS                                                                                 \
        {"gen_ai.operation.name", "chat"}, {"gen_ai.provider.name", "openai"},                     \
            {"gen_ai.request.model", "gpt-4o"}, {"gen_ai.response.model", "gpt-4o-2024-08-06"},    \
        {                                                                                          \
                "server.address", "api.openai.com"                                                 \
        }

/* Every GenAI instrument of f is empty. */
static void assert_genai_empty(genai_fixture *f)
{
        static const char *const names[] = {"gen_ai.client.token.usage",
                                            "gen_ai.client.operation.duration",
                                            "gen_ai.server.time_to_first_token",
                                            "upsonic.agent.run.duration",
                                            "upsonic.agent.tool_calls",
                                            "upsonic.agent.executed_steps",
                                            "upsonic.agent.runs",
                                            "upsonic.cost"};

        for (uint32_t k = 0; k < N(names); k++)
                ck_assert_msg(genai_metric(f, names[k])->n_points == 0, "%s has points", names[k]);
}

START_TEST(test_genai_chat)
{
        static const ss_metric_attr base[] = {CHAT_ATTRS};
        static const ss_metric_attr input[] = {CHAT_ATTRS, {"gen_ai.token.type", "input"}};
        static const ss_metric_attr output[] = {CHAT_ATTRS, {"gen_ai.token.type", "output"}};
        msgpack_object_kv kv[] = {CHAT_KV, fx_kv("gen_ai.usage.input_tokens", fx_uint(100)),
                                  fx_kv("gen_ai.usage.output_tokens", fx_uint(20))};
        msgpack_object ev_fields[] = {fx_str("gen_ai.first_token"), fx_uint(MS(300)),
                                      fx_map(NULL, 0)};
        msgpack_object ev = fx_array(ev_fields, 3);
        msgpack_object_array events = {.size = 1, .ptr = &ev};
        genai_fixture f;
        const ss_metric *m;

        genai_init(&f);
        genai_span(&f, "chat gpt-4o", SS_STATUS_OK, 2500, kv, N(kv), &events);
        m = genai_metric(&f, "gen_ai.client.token.usage");
        ck_assert_str_eq(m->unit, "{token}");
        ck_assert_uint_eq(m->n_points, 2);
        assert_hist(m, must_point(m, input, N(input)), 1, 100, 4);  /* (64, 256] */
        assert_hist(m, must_point(m, output, N(output)), 1, 20, 3); /* (16, 64] */
        m = genai_metric(&f, "gen_ai.client.operation.duration");
        ck_assert_str_eq(m->unit, "s");
        ck_assert_uint_eq(m->n_points, 1);
        assert_hist(m, must_point(m, base, N(base)), 1, 2.5, 8); /* (1.28, 2.56] */
        m = genai_metric(&f, "gen_ai.server.time_to_first_token");
        ck_assert_uint_eq(m->n_points, 1);
        assert_hist(m, must_point(m, base, N(base)), 1, 0.3, 9); /* (0.25, 0.5] */
        ck_assert_uint_eq(genai_metric(&f, "upsonic.agent.runs")->n_points, 0);
        ck_assert_uint_eq(genai_metric(&f, "upsonic.agent.run.duration")->n_points, 0);
        genai_free(&f);
}
END_TEST

/* A failed operation's duration carries error.type: the span's, else _OTHER. */
START_TEST(test_genai_error)
{
        static const ss_metric_attr other[] = {CHAT_ATTRS, {"error.type", "_OTHER"}};
        static const ss_metric_attr timeout[] = {CHAT_ATTRS, {"error.type", "timeout"}};
        msgpack_object_kv kv[] = {CHAT_KV};
        msgpack_object_kv typed[] = {CHAT_KV, fx_kv("error.type", fx_str("timeout"))};
        genai_fixture f;
        const ss_metric *m;

        genai_init(&f);
        genai_span(&f, "chat", SS_STATUS_ERROR, 1000, kv, N(kv), NULL);
        genai_span(&f, "chat", SS_STATUS_ERROR, 100, typed, N(typed), NULL);
        genai_span(&f, "chat", SS_STATUS_ERROR, 200, typed, N(typed), NULL);
        m = genai_metric(&f, "gen_ai.client.operation.duration");
        ck_assert_uint_eq(m->n_points, 2);
        assert_hist(m, must_point(m, other, N(other)), 1, 1.0, 7); /* (0.64, 1.28] */
        ck_assert_uint_eq(must_point(m, timeout, N(timeout))->count, 2);
        ck_assert_double_eq_tol(must_point(m, timeout, N(timeout))->sum, 0.3, TOL);
        /* No tokens, no first token: nothing there. */
        ck_assert_uint_eq(genai_metric(&f, "gen_ai.client.token.usage")->n_points, 0);
        ck_assert_uint_eq(genai_metric(&f, "gen_ai.server.time_to_first_token")->n_points, 0);
        genai_free(&f);
}
END_TEST

/* A span named "chat ..." is a chat without gen_ai.operation.name; "chatbot" is not; a tool
 * execution and a plain span record nothing. */
START_TEST(test_genai_which_spans)
{
        static const ss_metric_attr by_name[] = {{"gen_ai.operation.name", "chat"},
                                                 {"gen_ai.provider.name", "anthropic"},
                                                 {"gen_ai.request.model", "claude"},
                                                 {"gen_ai.token.type", "input"}};
        msgpack_object_kv chat[] = {fx_kv("gen_ai.system", fx_str("anthropic")),
                                    fx_kv("gen_ai.request.model", fx_str("claude")),
                                    fx_kv("gen_ai.usage.input_tokens", fx_uint(7))};
        msgpack_object_kv tool[] = {fx_kv("gen_ai.operation.name", fx_str("execute_tool")),
                                    fx_kv("gen_ai.request.model", fx_str("claude")),
                                    fx_kv("gen_ai.usage.input_tokens", fx_uint(7))};
        genai_fixture f;
        const ss_metric *m;
        ss_span *s;

        genai_init(&f);
        genai_span(&f, "execute_tool search", SS_STATUS_OK, 100, tool, N(tool), NULL);
        genai_span(&f, "http.request", SS_STATUS_OK, 100, NULL, 0, NULL);
        genai_span(&f, "chatbot", SS_STATUS_OK, 100, chat, N(chat), NULL);
        assert_genai_empty(&f);

        s = mk(f.res, "chat gpt-4o", SS_STATUS_OK, 100, chat, N(chat), NULL);
        ck_assert_int_eq(ss_genai_kind_of(s), SS_GENAI_OPERATION);
        ck_assert_int_eq(ss_genai_record(&f.g, s, ss_genai_kind_of(s)), 0);
        ss_span_unref(s);
        m = genai_metric(&f, "gen_ai.client.token.usage");
        ck_assert_uint_eq(m->n_points, 1);
        assert_hist(m, must_point(m, by_name, N(by_name)), 1, 7, 2); /* (4, 16] */
        ck_assert_uint_eq(genai_metric(&f, "gen_ai.client.operation.duration")->n_points, 1);
        genai_free(&f);
}
END_TEST

START_TEST(test_genai_run)
{
        static const ss_metric_attr agent[] = {{"upsonic.agent.name", "planner"}};
        static const ss_metric_attr completed[] = {{"upsonic.agent.name", "planner"},
                                                   {"upsonic.status", "COMPLETED"}};
        static const ss_metric_attr error[] = {{"upsonic.agent.name", "planner"},
                                               {"upsonic.status", "ERROR"}};
        static const ss_metric_attr cost[] = {{"upsonic.agent.name", "planner"},
                                              {"gen_ai.request.model", "gpt-4o"}};
        msgpack_object_kv kv[] = {fx_kv("upsonic.agent.name", fx_str("planner")),
                                  fx_kv("upsonic.agent.model", fx_str("gpt-4o")),
                                  fx_kv("upsonic.status", fx_str("COMPLETED")),
                                  fx_kv("upsonic.tool_call_count", fx_uint(3)),
                                  fx_kv("upsonic.pipeline.executed_steps", fx_uint(20)),
                                  fx_kv("upsonic.total_cost", fx_f64(0.0125))};
        msgpack_object_kv failed[] = {fx_kv("upsonic.agent.name", fx_str("planner"))};
        genai_fixture f;
        const ss_metric *m;
        ss_span *s;

        genai_init(&f);
        s = mk(f.res, "agent.run", SS_STATUS_OK, 4000, kv, N(kv), NULL);
        ck_assert_int_eq(ss_genai_kind_of(s), SS_GENAI_RUN);
        ck_assert_int_eq(ss_genai_record(&f.g, s, ss_genai_kind_of(s)), 0);
        ss_span_unref(s);
        m = genai_metric(&f, "upsonic.agent.run.duration");
        ck_assert_uint_eq(m->n_points, 1);
        assert_hist(m, must_point(m, completed, N(completed)), 1, 4.0, 9); /* (2.56, 5.12] */
        m = genai_metric(&f, "upsonic.agent.tool_calls");
        ck_assert_uint_eq(m->n_points, 1);
        assert_hist(m, must_point(m, agent, N(agent)), 1, 3, 3); /* (2, 4] */
        m = genai_metric(&f, "upsonic.agent.executed_steps");
        ck_assert_uint_eq(m->n_points, 1);
        assert_hist(m, must_point(m, agent, N(agent)), 1, 20, 6); /* (16, 32] */
        m = genai_metric(&f, "upsonic.agent.runs");
        ck_assert(m->monotonic && m->is_int);
        ck_assert_uint_eq(m->n_points, 1);
        ck_assert_double_eq(must_point(m, completed, N(completed))->value, 1);
        m = genai_metric(&f, "upsonic.cost");
        ck_assert_str_eq(m->unit, "USD");
        ck_assert(!m->is_int);
        ck_assert_uint_eq(m->n_points, 1);
        ck_assert_double_eq_tol(must_point(m, cost, N(cost))->value, 0.0125, TOL);
        ck_assert_uint_eq(genai_metric(&f, "gen_ai.client.operation.duration")->n_points, 0);

        /* Without upsonic.status: its span status says; no cost, no counts recorded. */
        genai_span(&f, "agent.run", SS_STATUS_ERROR, 100, failed, N(failed), NULL);
        genai_span(&f, "agent.run", SS_STATUS_OK, 100, failed, N(failed), NULL);
        m = genai_metric(&f, "upsonic.agent.runs");
        ck_assert_uint_eq(m->n_points, 2);
        ck_assert_double_eq(must_point(m, error, N(error))->value, 1);
        ck_assert_double_eq(must_point(m, completed, N(completed))->value, 2);
        ck_assert_uint_eq(must_point(genai_metric(&f, "upsonic.agent.tool_calls"), agent, 1)->count,
                          1);
        ck_assert_uint_eq(genai_metric(&f, "upsonic.cost")->n_points, 1);
        genai_free(&f);
}
END_TEST

/* A value a client got wrong records nothing for its figure; the others still count. */
START_TEST(test_genai_invalid)
{
        static const ss_metric_attr base[] = {CHAT_ATTRS};
        static const ss_metric_attr agent[] = {{"upsonic.agent.name", "a"}};
        msgpack_object_kv chat[] = {CHAT_KV, fx_kv("gen_ai.usage.input_tokens", fx_neg(-5)),
                                    fx_kv("gen_ai.usage.output_tokens", fx_str("20"))};
        msgpack_object_kv chat2[] = {CHAT_KV, fx_kv("gen_ai.usage.input_tokens", fx_f64(2.5)),
                                     fx_kv("gen_ai.usage.output_tokens", fx_f64(-1.0))};
        msgpack_object_kv run[] = {fx_kv("upsonic.agent.name", fx_str("a")),
                                   fx_kv("upsonic.tool_call_count", fx_str("3")),
                                   fx_kv("upsonic.pipeline.executed_steps", fx_neg(-1)),
                                   fx_kv("upsonic.total_cost", fx_f64(-0.5))};
        msgpack_object_kv run2[] = {fx_kv("upsonic.agent.name", fx_str("a")),
                                    fx_kv("upsonic.tool_call_count", fx_f64(1.5)),
                                    fx_kv("upsonic.pipeline.executed_steps", fx_uint(2)),
                                    fx_kv("upsonic.total_cost", fx_str("0.1"))};
        genai_fixture f;
        const ss_metric *m;

        genai_init(&f);
        genai_span(&f, "chat", SS_STATUS_OK, 100, chat, N(chat), NULL);
        genai_span(&f, "chat", SS_STATUS_OK, 100, chat2, N(chat2), NULL);
        genai_span(&f, "agent.run", SS_STATUS_OK, 100, run, N(run), NULL);
        genai_span(&f, "agent.run", SS_STATUS_OK, 100, run2, N(run2), NULL);
        ck_assert_uint_eq(genai_metric(&f, "gen_ai.client.token.usage")->n_points, 0);
        ck_assert_uint_eq(genai_metric(&f, "upsonic.agent.tool_calls")->n_points, 0);
        ck_assert_uint_eq(genai_metric(&f, "upsonic.cost")->n_points, 0);
        m = genai_metric(&f, "upsonic.agent.executed_steps");
        ck_assert_uint_eq(m->n_points, 1);
        assert_hist(m, must_point(m, agent, N(agent)), 1, 2, 2); /* (1, 2] */
        ck_assert_uint_eq(
            must_point(genai_metric(&f, "gen_ai.client.operation.duration"), base, N(base))->count,
            2);
        ck_assert_uint_eq(genai_metric(&f, "upsonic.agent.runs")->points[0].value, 2);
        genai_free(&f);
}
END_TEST

/* ---- the headline ------------------------------------------------------------------------ */

/* An instant well past the clock's start, so a minute before it is a time too. */
#define NOW_MS 1000000ull

typedef struct headline_at {
        const ss_headline *h;
        uint64_t now_ms;
} headline_at;

static void headline_counters(const void *ctx, ss_counters *out)
{
        const headline_at *a = ctx;

        ss_headline_counters(a->h, a->now_ms, out);
}

/* Counter genai.model.<model>.<figure> as STATS would send it at now_ms; absent fails. */
static uint64_t headline(const ss_headline *h, uint64_t now_ms, const char *model,
                         const char *figure)
{
        headline_at a = {h, now_ms};
        char name[SS_COUNTER_NAME_MAX];

        snprintf(name, sizeof(name), "genai.model.%s.%s", model, figure);
        return fx_counter(headline_counters, &a, name);
}

/* How many counters STATS would send. */
static size_t headline_n(const ss_headline *h)
{
        ss_counters c;
        size_t n;

        ss_counters_init(&c);
        ss_headline_counters(h, NOW_MS, &c);
        ck_assert_int_eq(c.err, 0);
        n = c.n;
        ss_counters_free(&c);
        return n;
}

/* A chat of model (response) with tokens and a cost, recorded at now_ms. */
static void headline_chat(ss_headline *h, ss_resource *res, const char *model, uint64_t in,
                          uint64_t out, double cost, uint64_t now_ms)
{
        msgpack_object_kv kv[] = {fx_kv("gen_ai.operation.name", fx_str("chat")),
                                  fx_kv("gen_ai.response.model", fx_str(model)),
                                  fx_kv("gen_ai.usage.input_tokens", fx_uint(in)),
                                  fx_kv("gen_ai.usage.output_tokens", fx_uint(out)),
                                  fx_kv("gen_ai.usage.cost", fx_f64(cost))};
        ss_span *s = mk(res, "chat", SS_STATUS_OK, 100, kv, N(kv), NULL);

        ss_headline_record(h, s, now_ms);
        ss_span_unref(s);
}

START_TEST(test_headline_models)
{
        static const char *const figures[] = {"requests", "input_tokens", "output_tokens",
                                              "cost_micro_usd"};
        static const uint64_t mini[] = {2, 30, 7, 3}, four[] = {1, 100, 20, 12500};
        ss_resource *res = mp_resource("agent", NULL, NULL);
        ss_headline *h = ss_headline_new();
        char name[32];

        ck_assert_ptr_nonnull(h);
        headline_chat(h, res, "gpt-4o", 100, 20, 0.0125, NOW_MS);
        headline_chat(h, res, "gpt-4o-mini", 10, 3, 0.0000024, NOW_MS - 500);
        headline_chat(h, res, "gpt-4o-mini", 20, 4, 0.0000006, NOW_MS);
        ck_assert_uint_eq(headline_n(h), 2 * 8);
        for (uint32_t k = 0; k < N(figures); k++) {
                snprintf(name, sizeof(name), "%s_1m", figures[k]);
                ck_assert_uint_eq(headline(h, NOW_MS, "gpt-4o", figures[k]), four[k]);
                ck_assert_uint_eq(headline(h, NOW_MS, "gpt-4o", name), four[k]);
                ck_assert_uint_eq(headline(h, NOW_MS, "gpt-4o-mini", figures[k]), mini[k]);
                ck_assert_uint_eq(headline(h, NOW_MS, "gpt-4o-mini", name), mini[k]);
        }
        ss_headline_free(h);
        ss_headline_free(NULL);
        ss_resource_unref(res);
}
END_TEST

/* Cost is summed in USD and rounded once, when read: two 1.5 micro-USD calls are 3, where
 * rounding each would make 4 (and 400 such calls 100 too many). */
START_TEST(test_headline_cost_rounded_once)
{
        ss_resource *res = mp_resource("agent", NULL, NULL);
        ss_headline *h = ss_headline_new();

        ck_assert_ptr_nonnull(h);
        headline_chat(h, res, "m", 1, 1, 0.0000015, NOW_MS);
        headline_chat(h, res, "m", 1, 1, 0.0000015, NOW_MS);
        ck_assert_uint_eq(headline(h, NOW_MS, "m", "cost_micro_usd"), 3);
        ck_assert_uint_eq(headline(h, NOW_MS, "m", "cost_micro_usd_1m"), 3);
        ss_headline_free(h);
        ss_resource_unref(res);
}
END_TEST

/* The last minute: a record 61 s earlier counts in the totals only. */
START_TEST(test_headline_window)
{
        ss_resource *res = mp_resource("agent", NULL, NULL);
        ss_headline *h = ss_headline_new();

        headline_chat(h, res, "m", 10, 1, 0.5, NOW_MS - 61000);
        headline_chat(h, res, "m", 20, 2, 0.25, NOW_MS - 30000);
        headline_chat(h, res, "m", 40, 4, 0.125, NOW_MS);
        ck_assert_uint_eq(headline(h, NOW_MS, "m", "requests"), 3);
        ck_assert_uint_eq(headline(h, NOW_MS, "m", "input_tokens"), 70);
        ck_assert_uint_eq(headline(h, NOW_MS, "m", "cost_micro_usd"), 875000);
        ck_assert_uint_eq(headline(h, NOW_MS, "m", "requests_1m"), 2);
        ck_assert_uint_eq(headline(h, NOW_MS, "m", "input_tokens_1m"), 60);
        ck_assert_uint_eq(headline(h, NOW_MS, "m", "output_tokens_1m"), 6);
        ck_assert_uint_eq(headline(h, NOW_MS, "m", "cost_micro_usd_1m"), 375000);
        /* The window counts whole seconds: 59 s on the last record is in it, 60 s on not. */
        ck_assert_uint_eq(headline(h, NOW_MS + 59999, "m", "requests_1m"), 1);
        ck_assert_uint_eq(headline(h, NOW_MS + 60000, "m", "requests_1m"), 0);
        /* A minute on, nothing is recent; the totals stay. */
        ck_assert_uint_eq(headline(h, NOW_MS + 61000, "m", "requests_1m"), 0);
        ck_assert_uint_eq(headline(h, NOW_MS + 61000, "m", "requests"), 3);
        /* The slot of 61 s ago, reused a minute later, starts empty. */
        headline_chat(h, res, "m", 1, 0, 0, NOW_MS - 1000);
        ck_assert_uint_eq(headline(h, NOW_MS, "m", "requests_1m"), 3);
        ck_assert_uint_eq(headline(h, NOW_MS, "m", "input_tokens_1m"), 61);
        ss_headline_free(h);
        ss_resource_unref(res);
}
END_TEST

/* Past SS_HEADLINE_MAX_MODELS models the rest count as "_other"; names are cut. */
START_TEST(test_headline_bounds)
{
        ss_resource *res = mp_resource("agent", NULL, NULL);
        ss_headline *h = ss_headline_new();
        char model[SS_HEADLINE_MODEL_MAX + 16], cut[SS_HEADLINE_MODEL_MAX + 1];

        for (unsigned k = 0; k < SS_HEADLINE_MAX_MODELS + 2; k++) {
                snprintf(model, sizeof(model), "m%u", k);
                headline_chat(h, res, model, k, 0, 0, NOW_MS);
        }
        ck_assert_uint_eq(headline_n(h), (SS_HEADLINE_MAX_MODELS + 1) * 8);
        ck_assert_uint_eq(headline(h, NOW_MS, "m31", "input_tokens"), 31);
        ck_assert_uint_eq(headline(h, NOW_MS, "_other", "requests"), 2);
        ck_assert_uint_eq(headline(h, NOW_MS, "_other", "input_tokens"), 32 + 33);
        ss_headline_free(h);

        h = ss_headline_new();
        memset(model, 'x', sizeof(model) - 1);
        model[sizeof(model) - 1] = '\0';
        headline_chat(h, res, model, 1, 0, 0, NOW_MS);
        model[SS_HEADLINE_MODEL_MAX + 2] = 'y'; /* past the cut: the same model */
        headline_chat(h, res, model, 2, 0, 0, NOW_MS);
        memcpy(cut, model, SS_HEADLINE_MODEL_MAX);
        cut[SS_HEADLINE_MODEL_MAX] = '\0';
        ck_assert_uint_eq(headline_n(h), 8);
        ck_assert_uint_eq(headline(h, NOW_MS, cut, "requests"), 2);
        ck_assert_uint_eq(headline(h, NOW_MS, cut, "input_tokens_1m"), 3);
        ss_headline_free(h);
        ss_resource_unref(res);
}
END_TEST

/* The model is the response's, else the request's, else "unknown". */
START_TEST(test_headline_fallback)
{
        msgpack_object_kv both[] = {fx_kv("gen_ai.request.model", fx_str("asked")),
                                    fx_kv("gen_ai.response.model", fx_str("served"))};
        msgpack_object_kv request[] = {fx_kv("gen_ai.request.model", fx_str("asked")),
                                       fx_kv("gen_ai.response.model", fx_str(""))};
        msgpack_object_kv neither[] = {fx_kv("gen_ai.usage.input_tokens", fx_uint(5))};
        ss_resource *res = mp_resource("agent", NULL, NULL);
        ss_headline *h = ss_headline_new();
        ss_span *s;

        s = mk(res, "chat", SS_STATUS_OK, 10, both, N(both), NULL);
        ss_headline_record(h, s, NOW_MS);
        ss_span_unref(s);
        s = mk(res, "chat", SS_STATUS_OK, 10, request, N(request), NULL);
        ss_headline_record(h, s, NOW_MS);
        ss_span_unref(s);
        s = mk(res, "chat", SS_STATUS_OK, 10, neither, N(neither), NULL);
        ss_headline_record(h, s, NOW_MS);
        ss_span_unref(s);
        ck_assert_uint_eq(headline_n(h), 3 * 8);
        ck_assert_uint_eq(headline(h, NOW_MS, "served", "requests"), 1);
        ck_assert_uint_eq(headline(h, NOW_MS, "asked", "requests"), 1);
        ck_assert_uint_eq(headline(h, NOW_MS, "unknown", "requests"), 1);
        ck_assert_uint_eq(headline(h, NOW_MS, "unknown", "input_tokens"), 5);
        ck_assert_uint_eq(headline(h, NOW_MS, "unknown", "cost_micro_usd"), 0);
        ss_headline_free(h);
        ss_resource_unref(res);
}
END_TEST

/* ---- health ------------------------------------------------------------------------------ */

/* A STATS counter's name is its prefix then its name, cut to SS_COUNTER_NAME_MAX - 1 bytes. */
START_TEST(test_counter_names)
{
        char longer[2 * SS_COUNTER_NAME_MAX], want[SS_COUNTER_NAME_MAX];
        ss_counters c;

        memset(longer, 'n', sizeof(longer) - 1);
        longer[sizeof(longer) - 1] = '\0';
        ss_counters_init(&c);
        ss_counters_add(&c, "exporter.otlp-http.", "spans_in", 7);
        ss_counters_add(&c, NULL, "spans", 8);
        ss_counters_add(&c, "", "", 9);
        ss_counters_add(&c, "p.", longer, 10);
        ss_counters_add(&c, longer, "tail", 11);
        ck_assert_uint_eq(c.n, 5);
        ck_assert_str_eq(c.v[0].name, "exporter.otlp-http.spans_in");
        ck_assert_str_eq(c.v[1].name, "spans");
        ck_assert_str_eq(c.v[2].name, "");
        memcpy(want, "p.", 2);
        memcpy(want + 2, longer, sizeof(want) - 3);
        want[sizeof(want) - 1] = '\0';
        ck_assert_uint_eq(strlen(want), SS_COUNTER_NAME_MAX - 1);
        ck_assert_str_eq(c.v[3].name, want);
        ck_assert_str_eq(c.v[4].name, longer + sizeof(longer) - SS_COUNTER_NAME_MAX);
        ck_assert_uint_eq(ss_counters_get(&c, "exporter.otlp-http.spans_in"), 7);
        ck_assert_uint_eq(c.v[4].value, 11);
        ss_counters_free(&c);
}
END_TEST

START_TEST(test_health)
{
        static const ss_metric_attr http[] = {{"sidespan.exporter", "otlp-http"}};
        static const ss_metric_attr eu[] = {{"sidespan.exporter", "otlp.eu"}};
        static const ss_metric_attr queue_full[] = {{"sidespan.exporter", "otlp-http"},
                                                    {"reason", "queue_full"}};
        static const ss_metric_attr rejected[] = {{"sidespan.exporter", "otlp.eu"},
                                                  {"reason", "rejected"}};
        static const struct {
                const char *name;
                uint64_t value;
        } stats[] = {
            {"exporter.otlp-http.spans_exported", 10},
            {"exporter.otlp-http.dropped.queue_full", 3},
            {"exporter.otlp-http.queued_bytes", 4096},
            {"exporter.otlp-http.queued_requests", 2},
            {"exporter.otlp-http.spool.bytes", 8192},
            {"exporter.otlp-http.spool.records", 4},
            {"exporter.otlp-http.dead_letter.bytes", 99},
            {"exporter.otlp.eu.spans_exported", 5},
            {"exporter.otlp.eu.dropped.rejected", 1},
            {"exporter.otlp.eu.queued_bytes", 0},
            {"connections_active", 2},
            {"spans_started", 50},
            {"spans_open", 7},
            {"open_span_limit", 1},
        };
        ss_registry *r = registry(SS_TEMPORALITY_CUMULATIVE, 0);
        ss_metrics_snapshot snap;
        const ss_metric *m;
        ss_counters c;
        ss_health h;

        ck_assert_int_eq(ss_health_init(&h, r), 0);
        ss_counters_init(&c);
        for (uint32_t k = 0; k < N(stats); k++)
                ss_counters_add(&c, NULL, stats[k].name, stats[k].value);
        ss_health_observe(&h, &c);
        ss_counters_free(&c);
        ck_assert_int_eq(ss_registry_collect(r, MS(1), &snap), 0);

        m = metric_named(&snap, "sidespan.spans.exported");
        ck_assert_uint_eq(m->n_points, 2);
        ck_assert_double_eq(must_point(m, http, 1)->value, 10);
        ck_assert_double_eq(must_point(m, eu, 1)->value, 5);
        m = metric_named(&snap, "sidespan.spans.dropped");
        ck_assert_uint_eq(m->n_points, 2);
        ck_assert_double_eq(must_point(m, queue_full, 2)->value, 3);
        ck_assert_double_eq(must_point(m, rejected, 2)->value, 1);
        m = metric_named(&snap, "sidespan.exporter.queue.size");
        ck_assert_int_eq(m->kind, SS_METRIC_GAUGE);
        ck_assert_uint_eq(m->n_points, 2);
        ck_assert_double_eq(must_point(m, http, 1)->value, 4096);
        ck_assert_double_eq(must_point(m, eu, 1)->value, 0);
        m = metric_named(&snap, "sidespan.exporter.spool.size");
        ck_assert_uint_eq(m->n_points, 1);
        ck_assert_double_eq(must_point(m, http, 1)->value, 8192);
        ck_assert_double_eq(
            must_point(metric_named(&snap, "sidespan.clients.connected"), NULL, 0)->value, 2);
        ck_assert_double_eq(must_point(metric_named(&snap, "sidespan.spans.open"), NULL, 0)->value,
                            7);
        ck_assert_double_eq(
            must_point(metric_named(&snap, "sidespan.spans.received"), NULL, 0)->value, 50);
        m = metric_named(&snap, "sidespan.spans.refused");
        ck_assert_uint_eq(m->n_points, 3);
        ck_assert_double_eq(must_point(m, &(ss_metric_attr){"reason", "open_span_limit"}, 1)->value,
                            1);
        ck_assert_double_eq(must_point(m, &(ss_metric_attr){"reason", "unknown_span"}, 1)->value,
                            0);

        /* Totals grow: the sums follow them, the gauges take them. */
        ss_counters_init(&c);
        ss_counters_add(&c, NULL, "exporter.otlp-http.spans_exported", 25);
        ss_counters_add(&c, NULL, "exporter.otlp-http.queued_bytes", 100);
        ss_counters_add(&c, NULL, "spans_open", 1);
        ss_health_observe(&h, &c);
        ss_counters_free(&c);
        ck_assert_int_eq(ss_registry_collect(r, MS(2), &snap), 0);
        ck_assert_double_eq(
            must_point(metric_named(&snap, "sidespan.spans.exported"), http, 1)->value, 25);
        ck_assert_double_eq(
            must_point(metric_named(&snap, "sidespan.exporter.queue.size"), http, 1)->value, 100);
        ck_assert_double_eq(must_point(metric_named(&snap, "sidespan.spans.open"), NULL, 0)->value,
                            1);
        ss_registry_free(r);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("metrics");
        TCase *tc = tcase_create("all");

        tcase_add_test(tc, test_counter_sums);
        tcase_add_test(tc, test_gauge_last);
        tcase_add_test(tc, test_histogram_buckets);
        tcase_add_test(tc, test_max_series);
        tcase_add_test(tc, test_attr_cut);
        tcase_add_test(tc, test_delta_reset);
        tcase_add_test(tc, test_cumulative_start);
        tcase_add_test(tc, test_observe);
        tcase_add_test(tc, test_observe_delta);
        tcase_add_test(tc, test_nan_ignored);
        tcase_add_test(tc, test_genai_chat);
        tcase_add_test(tc, test_genai_error);
        tcase_add_test(tc, test_genai_which_spans);
        tcase_add_test(tc, test_genai_run);
        tcase_add_test(tc, test_genai_invalid);
        tcase_add_test(tc, test_headline_models);
        tcase_add_test(tc, test_headline_cost_rounded_once);
        tcase_add_test(tc, test_headline_window);
        tcase_add_test(tc, test_headline_bounds);
        tcase_add_test(tc, test_headline_fallback);
        tcase_add_test(tc, test_health);
        tcase_add_test(tc, test_counter_names);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
