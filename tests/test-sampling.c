/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <stdlib.h>

START_TEST(test_placeholder)
{
        ck_abort_msg("test-sampling: not written yet");
}
END_TEST

int main(void)
{
        Suite *s = suite_create("sampling");
        TCase *tc = tcase_create("all");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_placeholder);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
