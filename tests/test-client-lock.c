/* SPDX-License-Identifier: MIT */
/*
 * The client queue's futex lock and event (client/lock.c): mutual exclusion
 * when threads outnumber the cores (so holders are preempted and waiters
 * sleep), broadcasts that wake sleepers, and waits that end at their timeout.
 * No assertion on a duration.
 */
#include "ss-check.h"
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "lock.h"

#define THREADS 6
#define ROUNDS  200000

typedef struct shared {
        ssc_lock lock;
        ssc_event event;
        uint64_t counter; /* plain: only the lock protects it */
        bool flag;
        int woken;
} shared;

static void *add_many(void *arg)
{
        shared *sh = arg;

        for (int i = 0; i < ROUNDS; i++) {
                uint64_t v;

                ssc_lock_take(&sh->lock);
                /* A read, a pause and a write: a second holder would lose updates. */
                v = sh->counter;
                if (i % 1000 == 0)
                        sched_yield();
                sh->counter = v + 1;
                ssc_lock_release(&sh->lock);
        }
        return NULL;
}

START_TEST(test_lock_excludes)
{
        shared sh = {.counter = 0};
        pthread_t t[THREADS];

        ssc_lock_init(&sh.lock);
        for (int i = 0; i < THREADS; i++)
                ck_assert_int_eq(pthread_create(&t[i], NULL, add_many, &sh), 0);
        for (int i = 0; i < THREADS; i++)
                pthread_join(t[i], NULL);
        ck_assert_uint_eq(sh.counter, (uint64_t)THREADS * ROUNDS);
        ck_assert_uint_eq(atomic_load(&sh.lock.v), 0);
}
END_TEST

static void *wait_flag(void *arg)
{
        shared *sh = arg;

        ssc_lock_take(&sh->lock);
        while (!sh->flag)
                ssc_event_wait(&sh->event, &sh->lock, -1);
        sh->woken++;
        ssc_lock_release(&sh->lock);
        return NULL;
}

START_TEST(test_event_broadcast_wakes_every_waiter)
{
        shared sh = {.flag = false};
        pthread_t t[THREADS];
        unsigned waiting = 0;

        ssc_lock_init(&sh.lock);
        ssc_event_init(&sh.event);
        for (int i = 0; i < THREADS; i++)
                ck_assert_int_eq(pthread_create(&t[i], NULL, wait_flag, &sh), 0);
        /* Broadcast once all of them wait (without it they would sleep for ever: the test's
         * timeout fails it). */
        while (waiting < THREADS) {
                sched_yield();
                ssc_lock_take(&sh.lock);
                waiting = sh.event.waiters;
                ssc_lock_release(&sh.lock);
        }
        ssc_lock_take(&sh.lock);
        sh.flag = true;
        ssc_event_broadcast(&sh.event);
        ssc_lock_release(&sh.lock);
        for (int i = 0; i < THREADS; i++)
                pthread_join(t[i], NULL);
        ck_assert_int_eq(sh.woken, THREADS);
        ck_assert_uint_eq(sh.event.waiters, 0);
}
END_TEST

START_TEST(test_event_wait_times_out_holding_the_lock)
{
        shared sh = {.flag = false};

        ssc_lock_init(&sh.lock);
        ssc_event_init(&sh.event);
        ssc_lock_take(&sh.lock);
        /* Nobody broadcasts: the wait ends at its timeout, with the lock taken again. */
        ssc_event_wait(&sh.event, &sh.lock, 20 * 1000000);
        ck_assert_uint_ne(atomic_load(&sh.lock.v), 0);
        ssc_lock_release(&sh.lock);
        ck_assert_uint_eq(atomic_load(&sh.lock.v), 0);
}
END_TEST

static Suite *lock_suite(void)
{
        Suite *s = suite_create("client-lock");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_lock_excludes);
        tcase_add_test(tc, test_event_broadcast_wakes_every_waiter);
        tcase_add_test(tc, test_event_wait_times_out_holding_the_lock);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(lock_suite());
}
