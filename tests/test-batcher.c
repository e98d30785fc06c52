/* SPDX-License-Identifier: MIT */
/* The batcher: the size trigger, the delay trigger on the loop's timer, flush, span references,
 * and what close drops. */
#include "ss-check.h"
#include <stdlib.h>
#include <string.h>

#include "export/batcher.h"
#include "fixture.h"

#define N_SPANS 16

/* What send() saw: one entry per call, the names in order and each span's reference count. */
typedef struct sent {
        size_t calls;
        size_t sizes[N_SPANS];
        char names[N_SPANS * 8];
        unsigned refs[N_SPANS];
        size_t n;
        bool keep; /* take a reference to every span, as an exporter with a queue does */
        ss_span *kept[N_SPANS];
        size_t n_kept;
} sent;

static uv_loop_t loop;
static ss_batcher b;
static bool b_open;
static sent got;
static ss_resource *res;
static ss_span *spans[N_SPANS];

static void on_send(void *ctx, ss_span *const *s, size_t n)
{
        sent *g = ctx;

        ck_assert_ptr_eq(g, &got);
        ck_assert_uint_lt(g->calls, N_SPANS);
        g->sizes[g->calls++] = n;
        for (size_t i = 0; i < n; i++) {
                ck_assert_uint_lt(g->n, N_SPANS);
                strncat(g->names, s[i]->name.ptr, s[i]->name.size);
                g->refs[g->n++] = s[i]->refs;
                if (g->keep)
                        g->kept[g->n_kept++] = ss_span_ref(s[i]);
        }
}

static void setup(void)
{
        char name[2] = "a";

        memset(&got, 0, sizeof(got));
        ck_assert_int_eq(uv_loop_init(&loop), 0);
        res = mp_resource("batch-svc", NULL, NULL);
        for (int i = 0; i < N_SPANS; i++) {
                name[0] = (char)('a' + i);
                spans[i] = fx_finished_span(res, name, 1, (uint8_t)i, -1);
        }
}

static void batcher_open(size_t max_batch, uint64_t delay_ms)
{
        ck_assert_int_eq(ss_batcher_init(&b, &loop, max_batch, delay_ms, on_send, &got), 0);
        b_open = true;
}

static unsigned timer_closed;

static void on_timer_closed(uv_handle_t *h)
{
        ck_assert_ptr_eq(h, &b.timer);
        timer_closed++;
}

/* Close the batcher, run the close callback: what it dropped. */
static size_t batcher_close(void)
{
        size_t dropped = ss_batcher_close(&b, on_timer_closed);

        b_open = false;
        ck_assert_ptr_null(b.spans);
        ck_assert_uint_eq(b.n, 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_uint_eq(timer_closed, 1);
        return dropped;
}

static void teardown(void)
{
        if (b_open)
                batcher_close();
        ck_assert_int_eq(uv_loop_close(&loop), 0);
        for (size_t i = 0; i < got.n_kept; i++)
                ss_span_unref(got.kept[i]);
        for (int i = 0; i < N_SPANS; i++)
                ss_span_unref(spans[i]);
        ss_resource_unref(res);
}

/* ---- triggers --------------------------------------------------------------------------- */

START_TEST(size_trigger_sends_full_batches)
{
        batcher_open(3, 60000);
        ss_batcher_add(&b, spans, 2);
        ck_assert_uint_eq(got.calls, 0);
        ck_assert_uint_eq(b.n, 2);
        ss_batcher_add(&b, spans + 2, 1);
        ck_assert_uint_eq(got.calls, 1);
        ck_assert_uint_eq(got.sizes[0], 3);
        ck_assert_uint_eq(b.n, 0);
        /* Seven at once: two full batches on the way, one span left waiting. */
        ss_batcher_add(&b, spans + 3, 7);
        ck_assert_uint_eq(got.calls, 3);
        ck_assert_uint_eq(got.sizes[1], 3);
        ck_assert_uint_eq(got.sizes[2], 3);
        ck_assert_uint_eq(b.n, 1);
        ck_assert_str_eq(got.names, "abcdefghi");
        ck_assert(uv_is_active((uv_handle_t *)&b.timer)); /* the delay runs for the one left */
}
END_TEST

START_TEST(bytes_trigger_sends_at_max_bytes)
{
        uint64_t one = ss_span_size(spans[0]);
        char *blob = malloc(16 << 10);
        ss_span *big;

        ck_assert_ptr_nonnull(blob);
        memset(blob, 'x', 16 << 10);
        blob[(16 << 10) - 1] = '\0';
        batcher_open(100, 60000);
        b.max_bytes = 3 * one;
        ss_batcher_add(&b, spans, 2);
        ck_assert_uint_eq(got.calls, 0);
        ck_assert_uint_eq(b.bytes, 2 * one);
        ss_batcher_add(&b, spans + 2, 1);
        ck_assert_uint_eq(got.calls, 1);
        ck_assert_uint_eq(got.sizes[0], 3);
        ck_assert_uint_eq(b.bytes, 0);
        /* Counting starts again with the next batch. */
        ss_batcher_add(&b, spans + 3, 5);
        ck_assert_uint_eq(got.calls, 2);
        ck_assert_uint_eq(got.sizes[1], 3);
        ck_assert_uint_eq(b.n, 2);
        ss_batcher_flush(&b);
        ck_assert_uint_eq(b.bytes, 0);
        ck_assert_str_eq(got.names, "abcdefgh");
        /* One span of more bytes than a batch goes at once, alone. */
        big = fx_finished_span(res, "Z", 2, 1, -1);
        ck_assert_int_eq(ss_span_set_str(big, "blob", blob), 0);
        ck_assert_uint_gt(ss_span_size(big), b.max_bytes);
        ss_batcher_add(&b, &big, 1);
        ck_assert_uint_eq(got.calls, 4);
        ck_assert_uint_eq(got.sizes[3], 1);
        ck_assert_uint_eq(b.n, 0);
        ss_span_unref(big);
        free(blob);
}
END_TEST

static bool sent_once(void *ctx)
{
        return got.calls >= 1;
}

START_TEST(delay_trigger_sends_on_the_timer)
{
        batcher_open(100, 20);
        ss_batcher_add(&b, spans, 2);
        ss_batcher_add(&b, spans + 2, 1);
        ck_assert_uint_eq(got.calls, 0);
        ck_assert(uv_is_active((uv_handle_t *)&b.timer));
        ck_assert(fx_run_until(&loop, sent_once, NULL));
        ck_assert_uint_eq(got.calls, 1);
        ck_assert_uint_eq(got.sizes[0], 3);
        ck_assert_str_eq(got.names, "abc");
        ck_assert_uint_eq(b.n, 0);
        ck_assert(!uv_is_active((uv_handle_t *)&b.timer));
        /* The next span starts the delay again. */
        ss_batcher_add(&b, spans + 3, 1);
        ck_assert(uv_is_active((uv_handle_t *)&b.timer));
}
END_TEST

START_TEST(no_delay_sends_each_span)
{
        batcher_open(10, 0);
        ss_batcher_add(&b, spans, 3);
        ck_assert_uint_eq(got.calls, 3);
        for (int i = 0; i < 3; i++)
                ck_assert_uint_eq(got.sizes[i], 1);
        ck_assert_uint_eq(b.n, 0);
        ck_assert(!uv_is_active((uv_handle_t *)&b.timer));
}
END_TEST

START_TEST(max_batch_zero_means_one)
{
        batcher_open(0, 60000);
        ck_assert_uint_eq(b.max_batch, 1);
        ss_batcher_add(&b, spans, 2);
        ck_assert_uint_eq(got.calls, 2);
        ck_assert_str_eq(got.names, "ab");
}
END_TEST

START_TEST(flush_sends_what_waits)
{
        batcher_open(10, 60000);
        ss_batcher_flush(&b); /* nothing waits: no empty send */
        ck_assert_uint_eq(got.calls, 0);
        ss_batcher_add(&b, spans, 4);
        ss_batcher_flush(&b);
        ck_assert_uint_eq(got.calls, 1);
        ck_assert_uint_eq(got.sizes[0], 4);
        ck_assert_uint_eq(b.n, 0);
        ck_assert(!uv_is_active((uv_handle_t *)&b.timer));
        ss_batcher_flush(&b);
        ck_assert_uint_eq(got.calls, 1);
}
END_TEST

/* ---- references ------------------------------------------------------------------------- */

START_TEST(batcher_holds_a_reference_until_sent)
{
        batcher_open(10, 60000);
        ss_batcher_add(&b, spans, 2);
        ck_assert_uint_eq(spans[0]->refs, 2);
        ck_assert_uint_eq(spans[1]->refs, 2);
        ss_batcher_flush(&b);
        /* In send(): the test's reference and the batcher's. */
        ck_assert_uint_eq(got.refs[0], 2);
        ck_assert_uint_eq(got.refs[1], 2);
        ck_assert_uint_eq(spans[0]->refs, 1);
        ck_assert_uint_eq(spans[1]->refs, 1);
}
END_TEST

START_TEST(spans_outlive_the_batch_by_the_senders_references)
{
        ss_span *mine[2] = {spans[0], spans[1]};

        got.keep = true;
        batcher_open(10, 60000);
        ss_batcher_add(&b, mine, 2);
        /* The caller lets go: the batcher's reference alone keeps them. */
        ss_span_unref(spans[0]);
        ss_span_unref(spans[1]);
        spans[0] = spans[1] = NULL;
        ck_assert_uint_eq(mine[0]->refs, 1);
        ss_batcher_flush(&b);
        ck_assert_uint_eq(got.refs[0], 1);
        /* Now only send()'s references hold them (teardown drops those). */
        ck_assert_uint_eq(got.n_kept, 2);
        ck_assert_ptr_eq(got.kept[0], mine[0]);
        ck_assert_uint_eq(got.kept[0]->refs, 1);
        ck_assert_uint_eq(got.kept[1]->refs, 1);
        ck_assert_mem_eq(got.kept[1]->name.ptr, "b", 1);
}
END_TEST

START_TEST(close_drops_and_counts_what_waits)
{
        batcher_open(10, 60000);
        ss_batcher_add(&b, spans, 5);
        ck_assert_uint_eq(spans[4]->refs, 2);
        ck_assert_uint_eq(batcher_close(), 5);
        ck_assert_uint_eq(got.calls, 0);
        for (int i = 0; i < 5; i++)
                ck_assert_uint_eq(spans[i]->refs, 1);
}
END_TEST

START_TEST(close_of_an_empty_batcher)
{
        batcher_open(10, 20);
        ss_batcher_add(&b, spans, 1);
        ss_batcher_flush(&b);
        ck_assert_uint_eq(batcher_close(), 0);
        ck_assert_uint_eq(got.calls, 1);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("batcher");
        TCase *tc = tcase_create("batcher");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, size_trigger_sends_full_batches);
        tcase_add_test(tc, bytes_trigger_sends_at_max_bytes);
        tcase_add_test(tc, delay_trigger_sends_on_the_timer);
        tcase_add_test(tc, no_delay_sends_each_span);
        tcase_add_test(tc, max_batch_zero_means_one);
        tcase_add_test(tc, flush_sends_what_waits);
        tcase_add_test(tc, batcher_holds_a_reference_until_sent);
        tcase_add_test(tc, spans_outlive_the_batch_by_the_senders_references);
        tcase_add_test(tc, close_drops_and_counts_what_waits);
        tcase_add_test(tc, close_of_an_empty_batcher);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
