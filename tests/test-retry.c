/* SPDX-License-Identifier: MIT */
/* The retry policy: which statuses are retried, Retry-After, and the backoff with its jitter. */
#include "ss-check.h"
#include <stdint.h>

#include "export/retry.h"
#include "ss-macro.h"

/* Sun, 06 Nov 1994 08:49:37 GMT, the date of RFC 9110's examples. */
#define RFC_DATE_T ((time_t)784111777)

#define DRAWS 2000

/* ---- ss_retry_http_status ----------------------------------------------------------------- */

START_TEST(test_http_status)
{
        int retried = 0;

        for (long s = 100; s < 600; s++) {
                bool want = s == 429 || s == 502 || s == 503 || s == 504;

                ck_assert_msg(ss_retry_http_status(s) == want, "status %ld", s);
                retried += want;
        }
        ck_assert_int_eq(retried, 4);
        /* not HTTP statuses at all: curl's 0 for no response, nonsense */
        ck_assert(!ss_retry_http_status(0));
        ck_assert(!ss_retry_http_status(-503));
        ck_assert(!ss_retry_http_status(1503));
}
END_TEST

/* ---- ss_retry_after_parse ----------------------------------------------------------------- */

START_TEST(test_after_delta_seconds)
{
        ck_assert_int_eq(ss_retry_after_parse("120", 0), 120000);
        ck_assert_int_eq(ss_retry_after_parse("1", 0), 1000);
        ck_assert_int_eq(ss_retry_after_parse("0", 0), 0);
        /* the date argument plays no part in delta-seconds */
        ck_assert_int_eq(ss_retry_after_parse("120", RFC_DATE_T), 120000);
        /* leading blanks, and blanks after the number */
        ck_assert_int_eq(ss_retry_after_parse("  7", 0), 7000);
        ck_assert_int_eq(ss_retry_after_parse("\t 3", 0), 3000);
        ck_assert_int_eq(ss_retry_after_parse("5 ", 0), 5000);
        ck_assert_int_eq(ss_retry_after_parse("5\t", 0), 5000);
}
END_TEST

START_TEST(test_after_capped)
{
        ck_assert_int_eq(SS_RETRY_AFTER_MAX_MS % 1000, 0);
        ck_assert_int_eq(ss_retry_after_parse("299", 0), 299000);
        ck_assert_int_eq(ss_retry_after_parse("300", 0), SS_RETRY_AFTER_MAX_MS);
        ck_assert_int_eq(ss_retry_after_parse("301", 0), SS_RETRY_AFTER_MAX_MS);
        ck_assert_int_eq(ss_retry_after_parse("86400", 0), SS_RETRY_AFTER_MAX_MS);
        /* past what seconds * 1000 could hold in 32 bits, and in a long */
        ck_assert_int_eq(ss_retry_after_parse("4294968", 0), SS_RETRY_AFTER_MAX_MS);
        ck_assert_int_eq(ss_retry_after_parse("18446744073709551", 0), SS_RETRY_AFTER_MAX_MS);
        /* past what strtoull holds: still a number of seconds, so the longest wait */
        ck_assert_int_eq(ss_retry_after_parse("99999999999999999999999", 0), SS_RETRY_AFTER_MAX_MS);
        /* a date a day ahead */
        ck_assert_int_eq(ss_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_T - 86400),
                         SS_RETRY_AFTER_MAX_MS);
}
END_TEST

START_TEST(test_after_http_date)
{
        static const char *const forms[] = {
            "Sun, 06 Nov 1994 08:49:37 GMT",  /* IMF-fixdate, the preferred form */
            "Sunday, 06-Nov-94 08:49:37 GMT", /* obsolete RFC 850 form */
            "Sun Nov  6 08:49:37 1994",       /* obsolete asctime() form */
            "  Sun, 06 Nov 1994 08:49:37 GMT",
        };

        for (size_t i = 0; i < SS_ELEMENTSOF(forms); i++) {
                /* relative to the now argument, not to the clock */
                ck_assert_int_eq(ss_retry_after_parse(forms[i], RFC_DATE_T - 30), 30000);
                ck_assert_int_eq(ss_retry_after_parse(forms[i], RFC_DATE_T - 1), 1000);
        }
        ck_assert_int_eq(ss_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_T - 299),
                         299000);
        /* now or past: retry at once */
        ck_assert_int_eq(ss_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_T), 0);
        ck_assert_int_eq(ss_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_T + 10), 0);
        ck_assert_int_eq(ss_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", time(NULL)), 0);
}
END_TEST

START_TEST(test_after_garbage)
{
        static const char *const bad[] = {
            "",
            "   ",
            "soon",
            "-5",
            "+5",
            "1.5",
            "0x10",
            "12abc",
            "5 seconds",
            "Nov",
            "tomorrow at noon",
        };

        for (size_t i = 0; i < SS_ELEMENTSOF(bad); i++)
                ck_assert_msg(ss_retry_after_parse(bad[i], RFC_DATE_T) == -1, "'%s' gave %ld",
                              bad[i], ss_retry_after_parse(bad[i], RFC_DATE_T));
}
END_TEST

/* ---- ss_retry_backoff_ms ------------------------------------------------------------------ */

/* Every draw lies in [d/2, d]; over many, both ends of the range are approached. */
static void ck_backoff_range(const ss_retry_config *c, uint32_t attempts, uint64_t d)
{
        uint64_t lo = UINT64_MAX, hi = 0;

        for (int i = 0; i < DRAWS; i++) {
                uint64_t b = ss_retry_backoff_ms(c, attempts);

                ck_assert_msg(b >= d / 2 && b <= d, "attempt %u: %llu outside [%llu, %llu]",
                              attempts, (unsigned long long)b, (unsigned long long)(d / 2),
                              (unsigned long long)d);
                lo = b < lo ? b : lo;
                hi = b > hi ? b : hi;
        }
        /* jitter, not a constant: the lowest and highest eighths are both reached */
        ck_assert_uint_le(lo, d / 2 + d / 16);
        ck_assert_uint_ge(hi, d - d / 16);
}

START_TEST(test_backoff_doubles_with_jitter)
{
        ss_retry_config c = {
            .max_attempts = 10, .backoff_initial_ms = 100, .backoff_max_ms = 30000};
        static const uint64_t want[11] = {0,    100,  200,   400,   800,  1600,
                                          3200, 6400, 12800, 25600, 30000};

        for (uint32_t a = 1; a <= 10; a++)
                ck_backoff_range(&c, a, want[a]);
}
END_TEST

START_TEST(test_backoff_capped)
{
        ss_retry_config c = {.max_attempts = 5, .backoff_initial_ms = 1000, .backoff_max_ms = 3000};
        ss_retry_config big = {.backoff_initial_ms = 60000, .backoff_max_ms = 5000};
        ss_retry_config d;

        /* 1000, 2000, then 4000 capped to 3000 for ever, however many attempts */
        ck_backoff_range(&c, 3, 3000);
        ck_backoff_range(&c, 40, 3000);
        ck_backoff_range(&c, UINT32_MAX, 3000);
        for (int i = 0; i < DRAWS; i++)
                ck_assert_uint_le(ss_retry_backoff_ms(&c, 1000), c.backoff_max_ms);
        /* an initial delay over the maximum is capped from the first attempt */
        ck_backoff_range(&big, 1, 5000);
        /* the defaults: 1 s doubling to 30 s */
        ss_retry_config_defaults(&d);
        ck_assert_uint_eq(d.max_attempts, SS_RETRY_MAX_ATTEMPTS_DEFAULT);
        ck_assert_uint_eq(d.backoff_initial_ms, SS_RETRY_BACKOFF_INITIAL_MS_DEFAULT);
        ck_assert_uint_eq(d.backoff_max_ms, SS_RETRY_BACKOFF_MAX_MS_DEFAULT);
        ck_backoff_range(&d, 1, 1000);
        ck_backoff_range(&d, 6, 30000);
}
END_TEST

static Suite *retry_suite(void)
{
        Suite *s = suite_create("retry");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_http_status);
        tcase_add_test(tc, test_after_delta_seconds);
        tcase_add_test(tc, test_after_capped);
        tcase_add_test(tc, test_after_http_date);
        tcase_add_test(tc, test_after_garbage);
        tcase_add_test(tc, test_backoff_doubles_with_jitter);
        tcase_add_test(tc, test_backoff_capped);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(retry_suite());
}
