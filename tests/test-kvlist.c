/* SPDX-License-Identifier: MIT */
/* OpenTelemetry k=v,k=v lists: resource attributes and OTLP headers. */
#include "ss-check.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ss-kvlist.h"

typedef struct seen {
        char text[256];
        int calls;
} seen;

static int record(char *key, char *value, void *ctx)
{
        seen *s = ctx;
        size_t n = strlen(s->text);

        snprintf(s->text + n, sizeof(s->text) - n, "[%s|%s]", key, value);
        s->calls++;
        return 0;
}

static int parse(const char *in, seen *s)
{
        char buf[256];

        memset(s, 0, sizeof(*s));
        snprintf(buf, sizeof(buf), "%s", in);
        return ss_kvlist_parse(buf, record, s);
}

START_TEST(pairs_trimmed_and_decoded)
{
        seen s;

        ck_assert_int_eq(parse("service.name=shop, deployment.environment = prod%2Ceu ", &s), 0);
        ck_assert_str_eq(s.text, "[service.name|shop][deployment.environment|prod,eu]");
        ck_assert_int_eq(parse("authorization=Basic%20abc==", &s), 0);
        ck_assert_str_eq(s.text, "[authorization|Basic abc==]");
        ck_assert_int_eq(parse("k=", &s), 0);
        ck_assert_str_eq(s.text, "[k|]");
}
END_TEST

START_TEST(blank_items_skipped)
{
        seen s;

        ck_assert_int_eq(parse("a=1,, ,b=2", &s), 0);
        ck_assert_int_eq(s.calls, 2);
        ck_assert_int_eq(parse("", &s), 0);
        ck_assert_int_eq(s.calls, 0);
}
END_TEST

START_TEST(malformed_is_einval)
{
        seen s;

        ck_assert_int_eq(parse("novalue", &s), -EINVAL);
        ck_assert_int_eq(parse("=v", &s), -EINVAL);
        ck_assert_int_eq(parse(" =v", &s), -EINVAL);
        ck_assert_int_eq(parse("k=%zz", &s), -EINVAL);
        ck_assert_int_eq(parse("k=%4", &s), -EINVAL);
        ck_assert_int_eq(parse("a=1,broken", &s), -EINVAL);
        ck_assert_int_eq(s.calls, 1);
}
END_TEST

static int refuse(char *key, char *value, void *ctx)
{
        return -E2BIG;
}

START_TEST(callback_error_stops)
{
        char buf[] = "a=1,b=2";

        ck_assert_int_eq(ss_kvlist_parse(buf, refuse, NULL), -E2BIG);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("kvlist");
        TCase *tc = tcase_create("kvlist");

        tcase_add_test(tc, pairs_trimmed_and_decoded);
        tcase_add_test(tc, blank_items_skipped);
        tcase_add_test(tc, malformed_is_einval);
        tcase_add_test(tc, callback_error_stops);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
