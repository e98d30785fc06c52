/* SPDX-License-Identifier: MIT */
#pragma once

/* The one way a Check suite runs here: CK_NORMAL, so "Checks: N, Failures: F" is printed. */

#include <check.h>
#include <stdlib.h>

static inline int ss_check_run(Suite *s)
{
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
