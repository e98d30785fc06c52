/* SPDX-License-Identifier: MIT */
/*
 * The contended halves of lock.h: a short spin, then futex sleeps. The lock
 * word says 2 once anyone may sleep, so that the releaser knows to wake one.
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lock.h"

#define SPINS 100 /* a holder copies one frame: a few hundred ns at most */

static long futex(atomic_uint *addr, int op, unsigned val, const struct timespec *timeout)
{
        return syscall(SYS_futex, (unsigned *)addr, op, val, timeout, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
}

void ssc_lock_wait(ssc_lock *l)
{
        for (int i = 0; i < SPINS; i++) {
                unsigned free = 0;

                cpu_relax();
                if (atomic_load_explicit(&l->v, memory_order_relaxed) == 0 &&
                    atomic_compare_exchange_weak_explicit(&l->v, &free, 1, memory_order_acquire,
                                                          memory_order_relaxed))
                        return;
        }
        /* Taken with 2: the next release wakes a sleeper, perhaps needlessly. */
        while (atomic_exchange_explicit(&l->v, 2, memory_order_acquire) != 0)
                (void)futex(&l->v, FUTEX_WAIT_PRIVATE, 2, NULL);
}

void ssc_lock_wake(ssc_lock *l)
{
        (void)futex(&l->v, FUTEX_WAKE_PRIVATE, 1, NULL);
}

void ssc_event_wait(ssc_event *e, ssc_lock *l, int64_t timeout_ns)
{
        unsigned seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
        struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000),
                              .tv_nsec = (long)(timeout_ns % 1000000000)};

        /* A broadcast between the release and the sleep moves seq: the futex returns. */
        e->waiters++;
        ssc_lock_release(l);
        (void)futex(&e->seq, FUTEX_WAIT_PRIVATE, seq, timeout_ns < 0 ? NULL : &ts);
        ssc_lock_take(l);
        e->waiters--;
}

void ssc_event_broadcast(ssc_event *e)
{
        atomic_fetch_add_explicit(&e->seq, 1, memory_order_relaxed);
        if (e->waiters)
                (void)futex(&e->seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}
