/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Fault injection for tests: a failure path that the system cannot be made
 * to take on demand (an allocation failing at accept time) names a point
 * here, and a unit test arms it. Only the test build of the daemon's core
 * (compiled with SIDESPAN_TEST) has the hooks; in sidespand every point is a
 * constant false, so nothing of this reaches production.
 */

#include <stdbool.h>

enum ss_fault {
        SS_FAULT_ACCEPT_ALLOC, /* ingest: the connection object at accept time */
        SS_FAULT_COUNT_
};

#ifdef SIDESPAN_TEST
/* True (and one shot used) when a test armed point; loop thread. */
bool ss_fault(enum ss_fault point);
/* Make the next n passes through point fail. */
void ss_fault_arm(enum ss_fault point, unsigned n);
#else
static inline bool ss_fault(enum ss_fault point)
{
        (void)point;
        return false;
}
#endif
