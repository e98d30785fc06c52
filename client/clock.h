/* SPDX-License-Identifier: MIT */
#pragma once

/* CLOCK_MONOTONIC for deadlines, timers and backoff (the wall clock may jump). */

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. Any thread; a vDSO call, no system call. */
static inline uint64_t ssc_mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
