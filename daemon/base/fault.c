/* SPDX-License-Identifier: MIT */
#include "base/fault.h"

#ifdef SIDESPAN_TEST
static unsigned armed[SS_FAULT_COUNT_];

bool ss_fault(enum ss_fault point)
{
        if (armed[point] == 0)
                return false;
        armed[point]--;
        return true;
}

void ss_fault_arm(enum ss_fault point, unsigned n)
{
        armed[point] = n;
}
#endif
