/* SPDX-License-Identifier: MIT */
/* The retry policy: which HTTP statuses and gRPC codes are retried, Retry-After, RetryInfo,
 * and the backoff with its jitter. */
#include "ss-check.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_details.pb-c.h"
#include "export/retry.h"
#include "ss-macro.h"
#include "status.pb-c.h"

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
            /* an HTTP-date is GMT, whole, and nothing after it */
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Nov 1994 08:49:37 GMT later",
            "Sun, 06 Nov 1994",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun Nov  6 08:49:37",
        };

        for (size_t i = 0; i < SS_ELEMENTSOF(bad); i++)
                ck_assert_msg(ss_retry_after_parse(bad[i], RFC_DATE_T) == -1, "'%s' gave %ld",
                              bad[i], ss_retry_after_parse(bad[i], RFC_DATE_T));
}
END_TEST

/* A Retry-After value is the peer's: any bytes, valid dates with bytes changed, cut or added,
 * give a wait within the cap or -1, never anything else. */
START_TEST(test_after_random)
{
        static const char *const seeds[] = {
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "120",
        };
        static const char alphabet[] = "0123456789 ,:-\tSunNovGMTday\xff";
        uint64_t x = 0x9e3779b97f4a7c15ull;
        int parsed = 0, refused = 0;
        char v[64];

        for (int i = 0; i < 50000; i++) {
                size_t n;

                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                snprintf(v, sizeof(v), "%s", seeds[x % SS_ELEMENTSOF(seeds)]);
                n = strlen(v);
                for (int k = (int)(x >> 8) % 4; k >= 0; k--) {
                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                        size_t at = n ? (x >> 16) % n : 0;
                        char c = alphabet[(x >> 40) % (sizeof(alphabet) - 1)];

                        switch ((x >> 4) % 3) {
                        case 0: /* change a byte */
                                if (n)
                                        v[at] = c;
                                break;
                        case 1: /* cut the rest */
                                v[n = at] = '\0';
                                break;
                        default: /* add a byte */
                                if (n + 1 < sizeof(v)) {
                                        memmove(v + at + 1, v + at, n - at + 1);
                                        v[at] = c;
                                        n++;
                                }
                        }
                }
                long r = ss_retry_after_parse(v, RFC_DATE_T - 30);

                ck_assert_msg(r == -1 || (r >= 0 && r <= (long)SS_RETRY_AFTER_MAX_MS),
                              "'%s' gave %ld", v, r);
                parsed += r >= 0;
                refused += r < 0;
        }
        /* both ways, many times: the changes reach past the dates' first bytes */
        ck_assert_int_gt(parsed, 5000);
        ck_assert_int_gt(refused, 5000);
}
END_TEST

/* ---- ss_retry_grpc_status ---------------------------------------------------------------- */

START_TEST(test_grpc_status)
{
        /* grpc_status_code: OK 0 .. UNAUTHENTICATED 16 */
        static const bool retried[17] = {[1] = true,  /* CANCELLED */
                                         [4] = true,  /* DEADLINE_EXCEEDED */
                                         [10] = true, /* ABORTED */
                                         [11] = true, /* OUT_OF_RANGE */
                                         [14] = true, /* UNAVAILABLE */
                                         [15] = true /* DATA_LOSS */};

        for (int c = 0; c <= 16; c++) {
                bool with_info = retried[c] || c == 8; /* RESOURCE_EXHAUSTED */

                ck_assert_msg(ss_retry_grpc_status(c, false) == retried[c], "code %d", c);
                ck_assert_msg(ss_retry_grpc_status(c, true) == with_info, "code %d + RetryInfo", c);
        }
        ck_assert(!ss_retry_grpc_status(-1, true));
        ck_assert(!ss_retry_grpc_status(17, true));
}
END_TEST

/* ---- ss_retry_info_parse ------------------------------------------------------------------ */

/* A serialized google.rpc.Status with code 8 and the given details, malloc'd; *ret_len. */
static uint8_t *status_bytes(Google__Protobuf__Any **details, size_t n, size_t *ret_len)
{
        Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
        uint8_t *buf;

        st.code = 8;
        st.message = "slow down";
        st.n_details = n;
        st.details = details;
        *ret_len = google__rpc__status__get_packed_size(&st);
        buf = malloc(*ret_len ? *ret_len : 1);
        ck_assert_ptr_nonnull(buf);
        ck_assert_uint_eq(google__rpc__status__pack(&st, buf), *ret_len);
        return buf;
}

/* An Any holding a RetryInfo of seconds and nanos (its value malloc'd into any->value). */
static void retry_info_any(Google__Protobuf__Any *any, const char *type_url, int64_t seconds,
                           int32_t nanos)
{
        Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
        Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;

        d.seconds = seconds;
        d.nanos = nanos;
        ri.retry_delay = &d;
        google__protobuf__any__init(any);
        any->type_url = (char *)type_url;
        any->value.len = google__rpc__retry_info__get_packed_size(&ri);
        any->value.data = malloc(any->value.len + 1);
        ck_assert_ptr_nonnull(any->value.data);
        google__rpc__retry_info__pack(&ri, any->value.data);
}

/* ss_retry_info_parse() of a Status whose one detail is a RetryInfo of seconds and nanos. */
static long info_ms(const char *type_url, int64_t seconds, int32_t nanos)
{
        Google__Protobuf__Any any, *details[] = {&any};
        size_t len;
        uint8_t *buf;
        long ms;

        retry_info_any(&any, type_url, seconds, nanos);
        buf = status_bytes(details, 1, &len);
        ms = ss_retry_info_parse(buf, len);
        free(buf);
        free(any.value.data);
        return ms;
}

#define RI_URL "type.googleapis.com/google.rpc.RetryInfo"

START_TEST(test_retry_info)
{
        ck_assert_int_eq(info_ms(RI_URL, 2, 0), 2000);
        ck_assert_int_eq(info_ms(RI_URL, 0, 250000000), 250);
        /* rounded up: never sooner than the server asked */
        ck_assert_int_eq(info_ms(RI_URL, 1, 1), 1001);
        ck_assert_int_eq(info_ms(RI_URL, 0, 0), 0);
        /* the type server's part of the URL plays no part */
        ck_assert_int_eq(info_ms("example.com/types/google.rpc.RetryInfo", 3, 0), 3000);
        /* capped, and negative means now */
        ck_assert_int_eq(info_ms(RI_URL, 299, 999000000), 299999);
        ck_assert_int_eq(info_ms(RI_URL, 300, 0), SS_RETRY_AFTER_MAX_MS);
        ck_assert_int_eq(info_ms(RI_URL, INT64_MAX, 999999999), SS_RETRY_AFTER_MAX_MS);
        ck_assert_int_eq(info_ms(RI_URL, -5, 0), 0);
        ck_assert_int_eq(info_ms(RI_URL, 0, -1), 0);
        /* another type is not a RetryInfo, whatever its bytes */
        ck_assert_int_eq(info_ms("type.googleapis.com/google.rpc.DebugInfo", 2, 0), -1);
        ck_assert_int_eq(info_ms("type.googleapis.com/google.rpc.RetryInfoX", 2, 0), -1);
        ck_assert_int_eq(info_ms("google.rpc.RetryInfo", 2, 0), -1);
}
END_TEST

START_TEST(test_retry_info_among_details)
{
        Google__Protobuf__Any other, info, *details[] = {&other, &info};
        size_t len;
        uint8_t *buf;

        google__protobuf__any__init(&other);
        other.type_url = "type.googleapis.com/google.rpc.ErrorInfo";
        retry_info_any(&info, RI_URL, 0, 40000000);
        buf = status_bytes(details, 2, &len);
        ck_assert_int_eq(ss_retry_info_parse(buf, len), 40);
        free(buf);
        /* no details at all */
        buf = status_bytes(NULL, 0, &len);
        ck_assert_int_eq(ss_retry_info_parse(buf, len), -1);
        free(buf);
        free(info.value.data);
}
END_TEST

START_TEST(test_retry_info_garbage)
{
        static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
        /* details (field 3) whose Any claims 100 bytes that are not there */
        static const uint8_t cut[] = {0x1a, 0x64, 0x0a, 0x02, 'x', 'y'};
        Google__Protobuf__Any bad, *details[] = {&bad};
        static uint8_t not_ri[] = {0x0a, 0x05, 0x08}; /* retry_delay cut short */
        size_t len;
        uint8_t *buf;

        ck_assert_int_eq(ss_retry_info_parse(NULL, 0), -1);
        ck_assert_int_eq(ss_retry_info_parse(junk, sizeof(junk)), -1);
        ck_assert_int_eq(ss_retry_info_parse(cut, sizeof(cut)), -1);
        google__protobuf__any__init(&bad);
        bad.type_url = RI_URL;
        bad.value.data = not_ri;
        bad.value.len = sizeof(not_ri);
        buf = status_bytes(details, 1, &len);
        ck_assert_int_eq(ss_retry_info_parse(buf, len), -1);
        free(buf);
}
END_TEST

/* ---- ss_retry_delay_ms -------------------------------------------------------------------- */

START_TEST(test_delay)
{
        ss_retry_config c = {.max_attempts = 3,
                             .backoff_initial_ms = 100,
                             .backoff_max_ms = 1000,
                             .multiplier = 2.0};

        /* the backend's wait wins, even 0 */
        ck_assert_int_eq(ss_retry_delay_ms(&c, 1, 0, 5000), 5000);
        ck_assert_int_eq(ss_retry_delay_ms(&c, 2, 0, 0), 0);
        /* else the backoff */
        for (int i = 0; i < DRAWS; i++) {
                int64_t d = ss_retry_delay_ms(&c, 2, 0, -1);

                ck_assert(d >= 0 && d <= 200);
        }
        /* all attempts had: no more, whatever the backend said */
        ck_assert_int_eq(ss_retry_delay_ms(&c, 3, 0, 5000), -1);
        ck_assert_int_eq(ss_retry_delay_ms(&c, 3, 0, -1), -1);
        ck_assert_int_eq(ss_retry_delay_ms(&c, 4, 0, -1), -1);
}
END_TEST

/* Retries end by time: none that would come after max_elapsed_ms, whatever the attempts. */
START_TEST(test_delay_bounded_by_time)
{
        ss_retry_config c;

        ss_retry_config_defaults(&c);
        ck_assert_uint_eq(c.max_attempts, 0); /* no attempt limit by default */
        ck_assert_uint_eq(c.max_elapsed_ms, 300000);
        ck_assert_int_ge(ss_retry_delay_ms(&c, 1000, 0, -1), 0);
        ck_assert_int_eq(ss_retry_delay_ms(&c, 1000, 290000, 5000), 5000);
        ck_assert_int_eq(ss_retry_delay_ms(&c, 1000, 296000, 5000), -1);
        ck_assert_int_eq(ss_retry_delay_ms(&c, 2, 300001, 0), -1);
        /* a backoff that would land past the bound ends it too */
        c.backoff_initial_ms = c.backoff_max_ms = 60000;
        for (int i = 0; i < DRAWS; i++) {
                int64_t d = ss_retry_delay_ms(&c, 3, 290000, -1);

                ck_assert(d == -1 || (d >= 0 && d <= 10000));
        }
}
END_TEST

/* ---- ss_retry_backoff_ms ------------------------------------------------------------------ */

/* Full jitter: every draw lies in [0, d]; over many, both ends of the range are approached. */
static void ck_backoff_range(const ss_retry_config *c, uint32_t attempts, uint64_t d)
{
        uint64_t lo = UINT64_MAX, hi = 0;

        for (int i = 0; i < DRAWS; i++) {
                uint64_t b = ss_retry_backoff_ms(c, attempts);

                ck_assert_msg(b <= d, "attempt %u: %llu outside [0, %llu]", attempts,
                              (unsigned long long)b, (unsigned long long)d);
                lo = b < lo ? b : lo;
                hi = b > hi ? b : hi;
        }
        /* jitter, not a constant: the lowest and highest sixteenths are both reached */
        ck_assert_uint_le(lo, d / 16);
        ck_assert_uint_ge(hi, d - d / 16);
}

START_TEST(test_backoff_doubles_with_jitter)
{
        ss_retry_config c = {.max_attempts = 10,
                             .backoff_initial_ms = 100,
                             .backoff_max_ms = 30000,
                             .multiplier = 2.0};
        ss_retry_config slow = {
            .backoff_initial_ms = 1000, .backoff_max_ms = 30000, .multiplier = 1.5};
        static const uint64_t want[11] = {0,    100,  200,   400,   800,  1600,
                                          3200, 6400, 12800, 25600, 30000};

        for (uint32_t a = 1; a <= 10; a++)
                ck_backoff_range(&c, a, want[a]);
        /* the multiplier is the configured one */
        ck_backoff_range(&slow, 3, 2250);
}
END_TEST

START_TEST(test_backoff_capped)
{
        ss_retry_config c = {.max_attempts = 5,
                             .backoff_initial_ms = 1000,
                             .backoff_max_ms = 3000,
                             .multiplier = 2.0};
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
        tcase_add_test(tc, test_after_random);
        tcase_add_test(tc, test_grpc_status);
        tcase_add_test(tc, test_retry_info);
        tcase_add_test(tc, test_retry_info_among_details);
        tcase_add_test(tc, test_retry_info_garbage);
        tcase_add_test(tc, test_delay);
        tcase_add_test(tc, test_delay_bounded_by_time);
        tcase_add_test(tc, test_backoff_doubles_with_jitter);
        tcase_add_test(tc, test_backoff_capped);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(retry_suite());
}
