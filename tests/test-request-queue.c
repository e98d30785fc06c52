/* SPDX-License-Identifier: MIT */
/* The request queue: creation order, in-flight slots, due times, the byte bound. */
#include "ss-check.h"
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/log.h"
#include "export/request-queue.h"

static ss_req_queue q;

static void setup(void)
{
        ss_log_set_level(SS_LOG_ERR); /* the drop warnings are expected here */
}

/* A request of n_spans spans whose body holds len bytes; not queued yet. */
static ss_req *mkreq(size_t n_spans, size_t len)
{
        ss_req *r = ss_req_new(&q, n_spans, len);

        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(ss_buf_reserve(&r->body, len), 0);
        memset(r->body.data, 'x', len);
        r->body.len = len;
        return r;
}

/* Push r: want is what ss_reqq_push() returns, want_dropped the spans it drops to make
 * room; a refusal must leave *ret_dropped alone. */
static void push_req(ss_req *r, int want, size_t want_dropped)
{
        size_t dropped = 77;

        ck_assert_int_eq(ss_reqq_push(&q, r, &dropped), want);
        ck_assert_uint_eq(dropped, want == 0 ? want_dropped : 77);
}

/* A request queued that fits without dropping anything. */
static ss_req *push(size_t n_spans, size_t len)
{
        ss_req *r = mkreq(n_spans, len);

        push_req(r, 0, 0);
        return r;
}

/* Queue n requests of one span and len bytes each into r[0..n). */
static void push_n(ss_req **r, size_t n, size_t len)
{
        for (size_t i = 0; i < n; i++)
                r[i] = push(1, len);
}

/* Starting at now_ms moves exactly want[0..n) in flight, in that order. */
static void ck_starts(uint64_t now_ms, ss_req *const *want, size_t n)
{
        for (size_t i = 0; i < n; i++)
                ck_assert_ptr_eq(ss_reqq_start_next(&q, now_ms), want[i]);
        ck_assert_ptr_null(ss_reqq_start_next(&q, now_ms));
}

/* A request queued and started at once, on a queue with one slot. */
static ss_req *push_started(size_t n_spans, size_t len)
{
        ss_req *r = push(n_spans, len);

        ck_starts(0, &r, 1);
        return r;
}

/* A queue with max_inflight slots and n requests of 10 bytes in r[0..n), as many of them
 * in flight as the slots take, oldest first. */
static void queue_started(ss_req **r, size_t n, uint32_t max_inflight)
{
        ss_reqq_init(&q, "test", 1000, max_inflight);
        push_n(r, n, 10);
        ck_starts(0, r, n < max_inflight ? n : max_inflight);
}

/* The list holds exactly want[0..n), in that order, linked both ways. */
static void ck_list(const ss_req_list *l, ss_req *const *want, size_t n)
{
        const ss_req *r = l->head;

        ck_assert_uint_eq(l->n, n);
        for (size_t i = 0; i < n; i++, r = r->next) {
                ck_assert_ptr_eq(r, want[i]);
                ck_assert_ptr_eq(r->prev, i ? want[i - 1] : NULL);
        }
        ck_assert_ptr_null(r);
        ck_assert_ptr_eq(l->tail, n ? want[n - 1] : NULL);
}

/* Finish whatever is left; the queue is then empty and holds no bytes. */
static void drain(void)
{
        while (q.waiting.head)
                ss_reqq_finish(&q, q.waiting.head);
        while (q.inflight.head)
                ss_reqq_finish(&q, q.inflight.head);
        ck_assert_uint_eq(q.bytes, 0);
        ck_assert(!ss_reqq_busy(&q));
}

/* ---- order -------------------------------------------------------------------------------- */

START_TEST(test_push_keeps_creation_order)
{
        ss_req *r[4];

        ss_reqq_init(&q, "test", 1000, 8);
        ck_assert(!ss_reqq_busy(&q));
        for (int i = 0; i < 4; i++) {
                r[i] = push((size_t)i + 1, 10);
                ck_assert_uint_eq(r[i]->seq, (uint64_t)i);
                ck_assert_uint_eq(r[i]->due_ms, 0);
                ck_assert_uint_eq(r[i]->attempts, 0);
        }
        ck_list(&q.waiting, r, 4);
        ck_list(&q.inflight, NULL, 0);
        ck_assert_uint_eq(q.bytes, 40);
        ck_assert(ss_reqq_busy(&q));

        /* they start oldest first, each counting its attempt */
        ck_starts(0, r, 4);
        for (int i = 0; i < 4; i++)
                ck_assert_uint_eq(r[i]->attempts, 1);
        ck_list(&q.waiting, NULL, 0);
        ck_list(&q.inflight, r, 4);
        ck_assert_uint_eq(q.bytes, 40);
        ck_assert(ss_reqq_busy(&q)); /* in flight only is still busy */
        drain();
}
END_TEST

START_TEST(test_start_next_max_inflight)
{
        ss_req *r[3];

        queue_started(r, 3, 2);
        /* both slots taken: r[2] is due but waits */
        ck_assert_ptr_null(ss_reqq_start_next(&q, UINT64_MAX));
        ck_assert_uint_eq(ss_reqq_next_due(&q), UINT64_MAX);
        ck_list(&q.waiting, &r[2], 1);
        ck_assert_uint_eq(r[2]->attempts, 0);

        ck_assert_uint_eq(ss_reqq_finish(&q, r[0]), 1);
        ck_assert_uint_eq(ss_reqq_next_due(&q), 0);
        ck_starts(0, &r[2], 1);
        ck_list(&q.inflight, &r[1], 2);
        drain();
}
END_TEST

/* ---- due times and retries ---------------------------------------------------------------- */

START_TEST(test_start_next_honours_due)
{
        ss_req *r[2];

        queue_started(r, 2, 4);
        ss_reqq_retry(&q, r[0], 100);
        ss_reqq_retry(&q, r[1], 50);
        ck_assert_uint_eq(r[0]->due_ms, 100);
        ck_assert_uint_eq(r[1]->due_ms, 50);
        ck_list(&q.waiting, r, 2); /* by age, not by due time */
        ck_list(&q.inflight, NULL, 0);

        ck_assert_ptr_null(ss_reqq_start_next(&q, 49));
        ck_assert_uint_eq(ss_reqq_next_due(&q), 50);
        /* the older one is not due yet: the younger due one goes first */
        ck_assert_ptr_eq(ss_reqq_start_next(&q, 50), r[1]);
        ck_assert_uint_eq(r[1]->attempts, 2);
        ck_assert_ptr_null(ss_reqq_start_next(&q, 99));
        ck_assert_uint_eq(ss_reqq_next_due(&q), 100);
        ck_assert_ptr_eq(ss_reqq_start_next(&q, 100), r[0]);
        ck_assert_uint_eq(r[0]->attempts, 2);
        ck_assert_uint_eq(ss_reqq_next_due(&q), UINT64_MAX); /* nothing waits */
        drain();
}
END_TEST

START_TEST(test_retry_back_in_age_order)
{
        ss_req *r[5];

        queue_started(r, 4, 2);
        ck_list(&q.waiting, &r[2], 2);

        /* r[1] goes back ahead of the younger r[2], r[3]; then r[0] ahead of all */
        ss_reqq_retry(&q, r[1], 10);
        ck_list(&q.waiting, &r[1], 3);
        ck_list(&q.inflight, &r[0], 1);
        ss_reqq_retry(&q, r[0], 20);
        ck_list(&q.waiting, r, 4);
        ck_list(&q.inflight, NULL, 0);
        ck_assert_uint_eq(q.bytes, 40); /* a retry neither adds nor releases bytes */

        /* a new request lands behind them all, due at once */
        r[4] = push(1, 10);
        ck_list(&q.waiting, r, 5);
        ck_assert_uint_eq(ss_reqq_next_due(&q), 0);
        ck_starts(0, &r[2], 2); /* r[0], r[1] are not due yet */
        ck_assert_uint_eq(ss_reqq_next_due(&q), UINT64_MAX);
        drain();
}
END_TEST

START_TEST(test_next_due)
{
        ss_req *r[3];

        ss_reqq_init(&q, "test", 1000, 3);
        ck_assert_uint_eq(ss_reqq_next_due(&q), UINT64_MAX);
        push_n(r, 3, 10);
        ck_assert_uint_eq(ss_reqq_next_due(&q), 0);
        ck_starts(0, r, 3);
        ck_assert_uint_eq(ss_reqq_next_due(&q), UINT64_MAX); /* all in flight */
        ss_reqq_retry(&q, r[0], 700);
        ss_reqq_retry(&q, r[2], 300);
        ck_assert_uint_eq(ss_reqq_next_due(&q), 300); /* the earliest, not the oldest */
        ss_reqq_retry(&q, r[1], 500);
        ck_assert_uint_eq(ss_reqq_next_due(&q), 300);
        ck_assert_uint_eq(ss_reqq_finish(&q, r[2]), 1);
        ck_assert_uint_eq(ss_reqq_next_due(&q), 500);
        drain();
}
END_TEST

/* ---- the byte bound ----------------------------------------------------------------------- */

START_TEST(test_push_drops_oldest_waiting)
{
        ss_req *a, *b, *c, *d, *e;

        ss_reqq_init(&q, "test", 300, 1);
        a = push_started(1, 100);
        b = push(2, 100);
        c = push(3, 100);
        ck_assert_uint_eq(q.bytes, 300); /* exactly at the bound: nothing dropped */
        ck_list(&q.waiting, (ss_req *[]){b, c}, 2);

        /* one more: b, the oldest waiting, goes; a in flight is never dropped */
        d = mkreq(4, 100);
        push_req(d, 0, 2);
        ck_list(&q.waiting, (ss_req *[]){c, d}, 2);
        ck_list(&q.inflight, &a, 1);
        ck_assert_uint_eq(q.bytes, 300);

        /* twice the size: both waiting go */
        e = mkreq(5, 200);
        push_req(e, 0, 3 + 4);
        ck_list(&q.waiting, &e, 1);
        ck_list(&q.inflight, &a, 1);
        ck_assert_uint_eq(q.bytes, 300);
        drain();
}
END_TEST

START_TEST(test_push_refused_changes_nothing)
{
        ss_req *a, *b, *c, *big;

        ss_reqq_init(&q, "test", 300, 1);
        a = push_started(1, 200);
        b = push(2, 50);

        /* 200 in flight + 150 > 300 even with b gone: refused, b kept */
        c = mkreq(3, 150);
        push_req(c, -ENOBUFS, 0);
        ck_list(&q.waiting, &b, 1);
        ck_list(&q.inflight, &a, 1);
        ck_assert_uint_eq(q.bytes, 250);
        ck_assert_ptr_null(c->prev);
        ck_assert_ptr_null(c->next);
        ss_req_free(c);

        /* larger than the whole bound, on an otherwise empty queue too */
        big = mkreq(9, 301);
        push_req(big, -ENOBUFS, 0);
        ck_assert_uint_eq(q.bytes, 250);
        drain();
        push_req(big, -ENOBUFS, 0);
        ck_assert_uint_eq(q.bytes, 0);
        ck_assert(!ss_reqq_busy(&q));
        ss_req_free(big);

        /* what exactly fits beside the in-flight bytes once b is dropped is taken */
        push_started(1, 200);
        push(2, 50);
        c = mkreq(3, 100);
        push_req(c, 0, 2);
        ck_list(&q.waiting, &c, 1);
        ck_assert_uint_eq(q.bytes, 300);
        drain();
}
END_TEST

START_TEST(test_finish_releases)
{
        ss_req *r[3];

        ss_reqq_init(&q, "test", 100, 1);
        r[0] = push_started(4, 30);
        r[1] = push(5, 30);
        r[2] = push(6, 30);
        ck_assert_uint_eq(q.bytes, 90);

        /* a waiting one from the middle of its list */
        ck_assert_uint_eq(ss_reqq_finish(&q, r[1]), 5);
        ck_assert_uint_eq(q.bytes, 60);
        ck_list(&q.waiting, &r[2], 1);
        ck_list(&q.inflight, &r[0], 1);

        /* the freed bytes take a request that would otherwise have dropped r[2] */
        r[1] = push(7, 40);
        ck_assert_uint_eq(q.bytes, 100);
        ck_list(&q.waiting, (ss_req *[]){r[2], r[1]}, 2);

        /* an in-flight one */
        ck_assert_uint_eq(ss_reqq_finish(&q, r[0]), 4);
        ck_assert_uint_eq(q.bytes, 70);
        ck_list(&q.inflight, NULL, 0);
        ck_assert(ss_reqq_busy(&q));
        ck_assert_uint_eq(ss_reqq_finish(&q, r[2]), 6);
        ck_assert_uint_eq(ss_reqq_finish(&q, r[1]), 7);
        ck_assert_uint_eq(q.bytes, 0);
        ck_assert(!ss_reqq_busy(&q));
        ss_req_free(NULL);
}
END_TEST

static Suite *request_queue_suite(void)
{
        Suite *s = suite_create("request-queue");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_push_keeps_creation_order);
        tcase_add_test(tc, test_start_next_max_inflight);
        tcase_add_test(tc, test_start_next_honours_due);
        tcase_add_test(tc, test_retry_back_in_age_order);
        tcase_add_test(tc, test_next_due);
        tcase_add_test(tc, test_push_drops_oldest_waiting);
        tcase_add_test(tc, test_push_refused_changes_nothing);
        tcase_add_test(tc, test_finish_releases);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(request_queue_suite());
}
