/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The queue's lock and the event its flush waiters sleep on, on futexes.
 * Every span takes the lock twice, so its uncontended path is one locked
 * instruction each way, inline, where glibc's adaptive mutex costs some 70
 * instructions a lock and unlock in calls. A caller that finds it taken
 * spins briefly (holders keep it for a copy) and then sleeps in the kernel,
 * so a preempted holder costs waiters no CPU. Not recursive; no owner check.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* 0 free, 1 held, 2 held and someone may sleep on it. */
typedef struct ssc_lock {
        atomic_uint v;
} ssc_lock;

/* A counter that moves on every broadcast; waiters sleep until it moves. */
typedef struct ssc_event {
        atomic_uint seq;
        unsigned waiters; /* in ssc_event_wait(); under the lock the waiters use */
} ssc_event;

_Static_assert(sizeof(atomic_uint) == 4, "a futex is 32 bits");

/* Contended paths, out of line: spin, then sleep (the only system calls). */
void ssc_lock_wait(ssc_lock *l);
void ssc_lock_wake(ssc_lock *l);

/* Free, as after a fork() in the child, whose other threads are gone. */
static inline void ssc_lock_init(ssc_lock *l)
{
        atomic_init(&l->v, 0);
}

static inline void ssc_lock_take(ssc_lock *l)
{
        unsigned free = 0;

        if (__builtin_expect(atomic_compare_exchange_strong_explicit(
                                 &l->v, &free, 1, memory_order_acquire, memory_order_relaxed),
                             1))
                return;
        ssc_lock_wait(l);
}

static inline void ssc_lock_release(ssc_lock *l)
{
        if (__builtin_expect(atomic_exchange_explicit(&l->v, 0, memory_order_release) == 2, 0))
                ssc_lock_wake(l);
}

/* No waiters, as after a fork() in the child, whose other threads are gone. */
static inline void ssc_event_init(ssc_event *e)
{
        atomic_init(&e->seq, 0);
        e->waiters = 0;
}

/*
 * Wait on e, under l: release l, sleep until ssc_event_broadcast() (or a spurious wake-up,
 * or timeout_ns passes; < 0 for no limit), take l again. The caller re-checks its
 * condition in a loop, as with a condition variable. Blocks.
 */
void ssc_event_wait(ssc_event *e, ssc_lock *l, int64_t timeout_ns);

/* Wake every waiter of e. Under the lock the waiters use; a system call only when one
 * sleeps. */
void ssc_event_broadcast(ssc_event *e);
