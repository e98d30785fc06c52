/* SPDX-License-Identifier: MIT */
/*
 * The export pipeline with recording exporters: fan-out through its sink,
 * flush, counters, busy, and the drain (wait while busy, give up at the
 * deadline, destroy, done), and the bound on exporters.
 */
#include "ss-check.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "export/pipeline.h"
#include "fixture.h"

#define MAX_HELD 32

/* What a recording exporter did; outlives the exporter, which frees itself. */
typedef struct probe {
        unsigned adds, flushes, destroys;
        size_t held;
        bool busy_at_destroy;
        bool freed; /* its handle closed and its memory released */
        bool never_idle;
        uint64_t deliver_ms; /* flush() delivers after this long on the loop */
} probe;

/* An exporter that keeps what it is given and, once flushed, delivers it after
 * deliver_ms on a timer of the loop, so it is busy in between. */
typedef struct rec_exporter {
        ss_exporter base;
        uv_timer_t timer;
        probe *pr;
        ss_span *spans[MAX_HELD];
        size_t n;
        bool delivering;
} rec_exporter;

static void rec_add(ss_exporter *e, ss_span *const *spans, size_t n)
{
        rec_exporter *r = (rec_exporter *)e;

        r->pr->adds++;
        e->stats.spans_in += n;
        for (size_t i = 0; i < n; i++) {
                ck_assert_uint_lt(r->n, MAX_HELD);
                r->spans[r->n++] = ss_span_ref(spans[i]);
        }
        r->pr->held = r->n;
}

static void release_spans(rec_exporter *r)
{
        for (size_t i = 0; i < r->n; i++)
                ss_span_unref(r->spans[i]);
        r->n = 0;
        r->pr->held = 0;
}

static void on_delivered(uv_timer_t *t)
{
        rec_exporter *r = t->data;

        r->base.stats.requests++;
        r->base.stats.spans_exported += r->n;
        release_spans(r);
        r->delivering = false;
}

static void rec_flush(ss_exporter *e)
{
        rec_exporter *r = (rec_exporter *)e;

        r->pr->flushes++;
        if (r->n == 0 || r->delivering)
                return;
        r->delivering = true;
        ck_assert_int_eq(uv_timer_start(&r->timer, on_delivered, r->pr->deliver_ms, 0), 0);
}

static bool rec_busy(const ss_exporter *e)
{
        const rec_exporter *r = (const rec_exporter *)e;

        return r->pr->never_idle || r->n > 0;
}

static void on_rec_closed(uv_handle_t *h)
{
        rec_exporter *r = h->data;

        r->pr->freed = true;
        ss_exporter_free(&r->base, r);
}

static void rec_destroy(ss_exporter *e)
{
        rec_exporter *r = (rec_exporter *)e;

        r->pr->destroys++;
        r->pr->busy_at_destroy = rec_busy(e);
        e->stats.spans_dropped += r->n;
        release_spans(r);
        uv_close((uv_handle_t *)&r->timer, on_rec_closed);
}

static const ss_exporter_ops rec_ops = {
    .add = rec_add, .flush = rec_flush, .busy = rec_busy, .destroy = rec_destroy};

static uv_loop_t loop;
static ss_pipeline *pl;
static probe probes[SS_PIPELINE_MAX_EXPORTERS + 1];
static ss_resource *res;
static ss_span *spans[3];
static unsigned done_calls;
static bool all_freed_at_done;

static ss_exporter *rec_new(const char *name, probe *pr)
{
        rec_exporter *r = calloc(1, sizeof(*r));

        ck_assert_ptr_nonnull(r);
        r->base = (ss_exporter){.ops = &rec_ops, .name = name};
        r->pr = pr;
        ck_assert_int_eq(uv_timer_init(&loop, &r->timer), 0);
        r->timer.data = r;
        return &r->base;
}

static void setup(void)
{
        ss_log_set_level(SS_LOG_ERR);
        memset(probes, 0, sizeof(probes));
        done_calls = 0;
        ck_assert_int_eq(uv_loop_init(&loop), 0);
        ck_assert_int_eq(ss_pipeline_new(&loop, &pl), 0);
        res = mp_resource("pipe-svc", NULL, NULL);
        for (int i = 0; i < 3; i++)
                spans[i] = fx_finished_span(res, i == 0 ? "root" : "child", 2, (uint8_t)(i + 1),
                                            i == 0 ? -1 : 1);
}

static void on_drained(void *ctx)
{
        ck_assert_ptr_eq(ctx, &done_calls);
        done_calls++;
        all_freed_at_done = true;
        for (size_t i = 0; i < SS_PIPELINE_MAX_EXPORTERS + 1; i++)
                if (probes[i].destroys && !probes[i].freed)
                        all_freed_at_done = false;
}

static bool drained(void *ctx)
{
        return done_calls > 0;
}

/* Drain with timeout_ms and wait for done(); the pipeline is gone afterwards. */
static void drain(uint32_t timeout_ms)
{
        ss_pipeline_drain(pl, timeout_ms, on_drained, &done_calls);
        pl = NULL;
        ck_assert(fx_run_until(&loop, drained, NULL));
}

static void teardown(void)
{
        if (pl)
                drain(0);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_uint_eq(done_calls, 1);
        ck_assert_int_eq(uv_loop_close(&loop), 0);
        for (size_t i = 0; i < SS_PIPELINE_MAX_EXPORTERS + 1; i++)
                if (probes[i].destroys) {
                        ck_assert_uint_eq(probes[i].destroys, 1);
                        ck_assert(probes[i].freed);
                        ck_assert_uint_eq(probes[i].held, 0);
                }
        for (int i = 0; i < 3; i++)
                ss_span_unref(spans[i]);
        ss_resource_unref(res);
}

static void add_two(void)
{
        ck_assert_int_eq(ss_pipeline_add(pl, rec_new("rec-a", &probes[0])), 0);
        ck_assert_int_eq(ss_pipeline_add(pl, rec_new("rec-b", &probes[1])), 0);
}

/* ---- the sink --------------------------------------------------------------------------- */

START_TEST(put_reaches_every_exporter)
{
        ss_sink *sink = ss_pipeline_sink(pl);

        add_two();
        ss_sink_put(sink, spans, 3);
        ck_assert_uint_eq(probes[0].adds, 1);
        ck_assert_uint_eq(probes[1].adds, 1);
        ck_assert_uint_eq(probes[0].held, 3);
        ck_assert_uint_eq(probes[1].held, 3);
        /* Each exporter took its own reference. */
        ck_assert_uint_eq(spans[0]->refs, 3);
        ss_sink_put(sink, spans + 1, 1);
        ck_assert_uint_eq(probes[0].held, 4);
        ck_assert_uint_eq(probes[1].held, 4);
        ck_assert_uint_eq(spans[1]->refs, 5);
}
END_TEST

START_TEST(sink_flush_flushes_every_exporter)
{
        add_two();
        ss_sink_flush(ss_pipeline_sink(pl));
        ck_assert_uint_eq(probes[0].flushes, 1);
        ck_assert_uint_eq(probes[1].flushes, 1);
}
END_TEST

START_TEST(empty_pipeline_takes_spans)
{
        ss_sink_put(ss_pipeline_sink(pl), spans, 3);
        ss_sink_flush(ss_pipeline_sink(pl));
        ck_assert(!ss_pipeline_busy(pl));
        ck_assert_uint_eq(spans[0]->refs, 1);
}
END_TEST

/* ---- counters and busy ------------------------------------------------------------------ */

static bool idle(void *ctx)
{
        return !ss_pipeline_busy(pl);
}

START_TEST(counters_per_exporter)
{
        ss_counters c;

        add_two();
        ss_sink_put(ss_pipeline_sink(pl), spans, 3);
        ss_sink_flush(ss_pipeline_sink(pl));
        ck_assert(fx_run_until(&loop, idle, NULL));
        ss_sink_put(ss_pipeline_sink(pl), spans, 1);
        ss_counters_init(&c);
        ss_pipeline_counters(pl, &c);
        ck_assert_int_eq(c.err, 0);
        ck_assert_uint_eq(c.n, 16); /* 8 each: in, exported, dropped, requests, failures,
                                     * retries, spooled, replayed */
        ck_assert_str_eq(c.v[0].name, "exporter.rec-a.spans_in");
        ck_assert_uint_eq(ss_counters_get(&c, "exporter.rec-a.spans_in"), 4);
        ck_assert_uint_eq(ss_counters_get(&c, "exporter.rec-a.spans_exported"), 3);
        ck_assert_uint_eq(ss_counters_get(&c, "exporter.rec-a.requests"), 1);
        ck_assert_uint_eq(ss_counters_get(&c, "exporter.rec-b.spans_in"), 4);
        ck_assert_uint_eq(ss_counters_get(&c, "exporter.rec-b.spans_exported"), 3);
        ck_assert_str_eq(c.v[8].name, "exporter.rec-b.spans_in");
        ck_assert_str_eq(c.v[13].name, "exporter.rec-b.retries");
        ck_assert_str_eq(c.v[15].name, "exporter.rec-b.spans_replayed");
        ss_counters_free(&c);
}
END_TEST

START_TEST(busy_while_any_exporter_is)
{
        add_two();
        ck_assert(!ss_pipeline_busy(pl));
        probes[1].never_idle = true;
        ck_assert(ss_pipeline_busy(pl));
        probes[1].never_idle = false;
        ss_sink_put(ss_pipeline_sink(pl), spans, 1);
        ck_assert(ss_pipeline_busy(pl));
        ss_sink_flush(ss_pipeline_sink(pl));
        ck_assert(fx_run_until(&loop, idle, NULL));
        ck_assert_uint_eq(probes[0].held, 0);
}
END_TEST

/* ---- drain ------------------------------------------------------------------------------ */

START_TEST(drain_waits_for_busy_exporters)
{
        add_two();
        probes[0].deliver_ms = 10;
        probes[1].deliver_ms = 120; /* a few drain polls */
        ss_sink_put(ss_pipeline_sink(pl), spans, 3);
        drain(FX_WAIT_MS);
        ck_assert_uint_eq(done_calls, 1);
        /* drain flushed them, waited for delivery and destroyed them idle */
        for (int i = 0; i < 2; i++) {
                ck_assert_uint_eq(probes[i].flushes, 1);
                ck_assert_uint_eq(probes[i].destroys, 1);
                ck_assert(!probes[i].busy_at_destroy);
        }
}
END_TEST

START_TEST(drain_gives_up_on_a_never_idle_exporter)
{
        add_two();
        probes[1].never_idle = true;
        ss_sink_put(ss_pipeline_sink(pl), spans, 2);
        drain(100);
        ck_assert_uint_eq(done_calls, 1);
        ck_assert_uint_eq(probes[0].destroys, 1);
        ck_assert_uint_eq(probes[1].destroys, 1);
        ck_assert(!probes[0].busy_at_destroy);
        ck_assert(probes[1].busy_at_destroy);
}
END_TEST

START_TEST(drain_of_an_empty_pipeline)
{
        drain(1000);
        ck_assert_uint_eq(done_calls, 1);
}
END_TEST

START_TEST(done_runs_after_the_exporters_closed)
{
        add_two();
        drain(0);
        /* done() waits for every exporter's ss_exporter_free(), not only for the drain timer:
         * libuv runs close callbacks last-closed first, which once made it run too early. */
        ck_assert(all_freed_at_done);
}
END_TEST

START_TEST(more_than_max_exporters)
{
        static const char *const names[] = {"e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8"};

        for (unsigned i = 0; i < SS_PIPELINE_MAX_EXPORTERS; i++)
                ck_assert_int_eq(ss_pipeline_add(pl, rec_new(names[i], &probes[i])), 0);
        ck_assert_int_eq(ss_pipeline_add(pl, rec_new(names[SS_PIPELINE_MAX_EXPORTERS],
                                                     &probes[SS_PIPELINE_MAX_EXPORTERS])),
                         -E2BIG);
        ck_assert_uint_eq(probes[SS_PIPELINE_MAX_EXPORTERS].destroys, 1);
        /* The refused one takes no spans; the others all do. */
        ss_sink_put(ss_pipeline_sink(pl), spans, 1);
        ck_assert_uint_eq(probes[SS_PIPELINE_MAX_EXPORTERS].adds, 0);
        for (unsigned i = 0; i < SS_PIPELINE_MAX_EXPORTERS; i++)
                ck_assert_uint_eq(probes[i].adds, 1);
        drain(0);
        for (unsigned i = 0; i < SS_PIPELINE_MAX_EXPORTERS; i++)
                ck_assert_uint_eq(probes[i].destroys, 1);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("pipeline");
        TCase *tc = tcase_create("pipeline");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, put_reaches_every_exporter);
        tcase_add_test(tc, sink_flush_flushes_every_exporter);
        tcase_add_test(tc, empty_pipeline_takes_spans);
        tcase_add_test(tc, counters_per_exporter);
        tcase_add_test(tc, busy_while_any_exporter_is);
        tcase_add_test(tc, drain_waits_for_busy_exporters);
        tcase_add_test(tc, drain_gives_up_on_a_never_idle_exporter);
        tcase_add_test(tc, drain_of_an_empty_pipeline);
        tcase_add_test(tc, done_runs_after_the_exporters_closed);
        tcase_add_test(tc, more_than_max_exporters);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
