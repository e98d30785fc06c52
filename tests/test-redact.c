/* SPDX-License-Identifier: MIT */
/*
 * The redactor (policy/redact.h): each kind's positive and negative cases,
 * precedence and overlaps, the keyed hash, custom patterns and their
 * errors, JSON kept valid, and whole spans with their store accounting.
 */
#include "ss-check.h"
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "fuzz/json-check.h" /* the fuzzers' strict JSON checker, apart from the code */
#include "model/span.h"
#include "policy/redact.h"
#include "ss-buf.h"

#define ALL (SS_REDACT_SECRETS | SS_REDACT_PERSONAL | SS_REDACT_CUSTOM)

/* Test tokens, built so that no real credential appears in the source. */
#define OPENAI    "sk-proj-abc123DEF456ghi789JKL012mno345"
#define ANTHROPIC "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345"
#define GITHUB    "ghp_0123456789abcdefghijABCDEFGHIJ012345"
#define JWT       "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcDEF123_-xyz"

static ss_redactor *redactor(const ss_redact_config *cfg)
{
        char err[256] = "";
        ss_redactor *r = NULL;

        ck_assert_msg(ss_redactor_new(cfg, &r, err, sizeof(err)) == 0, "%s", err);
        ck_assert_ptr_nonnull(r);
        return r;
}

/* The text redacted, or NULL when nothing matched; *count gets the matches. */
static char *redact(ss_redactor *r, unsigned kinds, const char *in, uint32_t *count)
{
        ss_buf b;
        char *s;
        int e;

        ss_buf_init(&b, 1 << 20);
        *count = 0;
        e = ss_redact_text(r, kinds, in, strlen(in), &b, count);
        ck_assert_int_ge(e, 0);
        if (e == 0) {
                ck_assert_uint_eq(b.len, 0);
                ck_assert_uint_eq(*count, 0);
                ss_buf_free(&b);
                return NULL;
        }
        s = strndup((const char *)b.data, b.len);
        ss_buf_free(&b);
        return s;
}

/* in redacted with kinds gives want (NULL: unchanged) with n matches. */
static void expect(ss_redactor *r, unsigned kinds, const char *in, const char *want, uint32_t n)
{
        uint32_t count;
        char *got = redact(r, kinds, in, &count);

        if (!want)
                ck_assert_msg(!got, "'%s' became '%s', want it unchanged", in, got);
        else
                ck_assert_msg(got && strcmp(got, want) == 0, "'%s' became '%s', want '%s'", in,
                              got ? got : "(unchanged)", want);
        ck_assert_msg(count == n, "'%s': %u matches, want %u", in, count, n);
        free(got);
}

/* ---- the built-in kinds ---------------------------------------------------------------- */

typedef struct row {
        const char *in;
        const char *want; /* NULL: unchanged */
        uint32_t n;
} row;

static const row secrets[] = {
    {"key " OPENAI " end", "key [REDACTED:openai_key] end", 1},
    {"sk-abcdefghij0123456789klmno", "[REDACTED:openai_key]", 1},
    {"sk-short123", NULL, 0},
    {"task-abcdefghij0123456789klmnopq", NULL, 0},      /* part of a word */
    {"see sk-learn-documentation-pages-here", NULL, 0}, /* no digit: prose */
    {ANTHROPIC, "[REDACTED:anthropic_key]", 1},         /* never openai_key */
    {"AKIAIOSFODNN7EXAMPLE.", "[REDACTED:aws_key].", 1},
    {"ASIAIOSFODNN7EXAMPLE", "[REDACTED:aws_key]", 1},
    {"AKIAIOSFODNN7EXAMPL", NULL, 0}, /* one short */
    {"AKIAIOSFODNN7EXAMPLEX", NULL, 0},
    {"token=" GITHUB, "token=[REDACTED:github_token]", 1},
    {"gho_0123456789abcdefghijABCDEFGHIJ012345 ghs_0123456789abcdefghijABCDEFGHIJ012345",
     "[REDACTED:github_token] [REDACTED:github_token]", 2},
    {"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "[REDACTED:github_token]", 1},
    {"ghp_short", NULL, 0},
    {"xoxb-1234567890-abcdefghij", "[REDACTED:slack_token]", 1},
    {"xoxp-1234567890-0987654321-abc", "[REDACTED:slack_token]", 1},
    {"xoxz-1234567890-abcdefghij", NULL, 0},
    {"Authorization: Bearer " JWT, "Authorization: [REDACTED:bearer]", 1},
    {"authorization: bearer abc123xyz789", "authorization: [REDACTED:bearer]", 1},
    {"Bearer authentication is required", NULL, 0},
    {"jwt " JWT " here", "jwt [REDACTED:jwt] here", 1},
    {"eyJnotajwt", NULL, 0},
    {"before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc+/=\n"
     "-----END RSA PRIVATE KEY-----\nafter",
     "before\n[REDACTED:private_key]\nafter", 1},
    {"-----BEGIN PRIVATE KEY-----\nMIIEv sk-ant-api03-abcdefghijklmnopqrstuvwxyz0", /* cut */
     "[REDACTED:private_key]", 1},
    {"-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----", NULL, 0},
};

static const row personal[] = {
    {"write to jane.doe+x@mail.example.co.uk or bob@b.io today.",
     "write to [REDACTED:email] or [REDACTED:email] today.", 2},
    {"john123@example.com", "[REDACTED:email]", 1},
    {"not an address: a@b, @handle, a@b.c", NULL, 0},
    {"Process SSN: 123-45-6789", "Process SSN: [REDACTED:ssn]", 1},
    {"000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000", NULL, 0},
    {"123-45-67890", NULL, 0},
    {"card 4111 1111 1111 1111 exp", "card [REDACTED:card] exp", 1},
    {"4111-1111-1111-1111", "[REDACTED:card]", 1},
    {"4111111111111111", "[REDACTED:card]", 1},
    {"amex 378282246310005, mc 5555555555554444", "amex [REDACTED:card], mc [REDACTED:card]", 2},
    {"4111 1111 1111 1112", NULL, 0}, /* Luhn fails */
    {"4111 1111 1111 1112 and 5555555555554444", "4111 1111 1111 1112 and [REDACTED:card]", 1},
    {"order number 1234567890123", NULL, 0},
    {"ts 1700000000123456789 id 17000000001234", NULL, 0},
    {"call (555) 123-4567", "call [REDACTED:phone]", 1},
    {"555-123-4567 or 555.123.4567", "[REDACTED:phone] or [REDACTED:phone]", 2},
    {"+1 555 123 4567", "[REDACTED:phone]", 1},
    {"1-800-555-1234", "[REDACTED:phone]", 1},
    {"+14155552671, +44 20 7946 0958", "[REDACTED:phone], [REDACTED:phone]", 2},
    {"order 5551234567 on 2024-01-15 at 12:30:45, v1.2.3", NULL, 0},
    {"123-456-7890", NULL, 0}, /* no area code starts with 1 */
    /* the shortest number a digit pattern takes: 8 digits (a chain of 7 and more is tried) */
    {"dial +12345678 now", "dial [REDACTED:phone] now", 1},
    /* prose with times and temperatures, then a number: still found */
    {"18C at 21:04, 19C at 22:15, 2 of 3 on 12/05: call (555) 123-4567",
     "18C at 21:04, 19C at 22:15, 2 of 3 on 12/05: call [REDACTED:phone]", 1},
};

static void run_rows(const row *rows, size_t n)
{
        ss_redactor *r = redactor(NULL);

        for (size_t i = 0; i < n; i++)
                expect(r, ALL, rows[i].in, rows[i].want, rows[i].n);
        ss_redactor_free(r);
}

START_TEST(test_secrets)
{
        run_rows(secrets, sizeof(secrets) / sizeof(secrets[0]));
}
END_TEST

START_TEST(test_personal)
{
        run_rows(personal, sizeof(personal) / sizeof(personal[0]));
}
END_TEST

/* Left to right, never overlapping; the first kind in the table wins at one start. */
START_TEST(test_overlaps)
{
        ss_redactor *r = redactor(NULL);

        expect(r, ALL, "a@b.com 123-45-6789 " ANTHROPIC " " OPENAI,
               "[REDACTED:email] [REDACTED:ssn] [REDACTED:anthropic_key] [REDACTED:openai_key]", 4);
        /* The JWT is part of the bearer credential: one redaction, not two. */
        expect(r, ALL, "Bearer " JWT " and " JWT, "[REDACTED:bearer] and [REDACTED:jwt]", 2);
        /* A key inside a PEM block is the block's. */
        expect(r, ALL, "-----BEGIN EC PRIVATE KEY-----\n" OPENAI "\n-----END EC PRIVATE KEY----- x",
               "[REDACTED:private_key] x", 1);
        /* Glued to a match, the next one is still found: the replaced text is a boundary, so
         * a second pass finds nothing more (found by fuzz-redact). */
        expect(r, ALL, "a@b.co+c@d.co", "[REDACTED:email][REDACTED:email]", 2);
        expect(r, ALL, "x@y.com,+z@w.org", "[REDACTED:email],[REDACTED:email]", 2);
        ss_redactor_free(r);
}
END_TEST

START_TEST(test_kinds_mask)
{
        ss_redactor *r = redactor(NULL);
        const char *in = "a@b.com " OPENAI;

        expect(r, SS_REDACT_SECRETS, in, "a@b.com [REDACTED:openai_key]", 1);
        expect(r, SS_REDACT_PERSONAL, in, "[REDACTED:email] " OPENAI, 1);
        expect(r, SS_REDACT_CUSTOM, in, NULL, 0);
        expect(r, 0, in, NULL, 0);
        ss_redactor_free(r);
}
END_TEST

/* ---- custom patterns and configuration errors -------------------------------------------- */

START_TEST(test_custom)
{
        ss_redact_config cfg = {.n_custom = 2};
        ss_redactor *r;

        cfg.custom[0] = (ss_redact_pattern){"acct", "ACCT-\\d{6}"};
        cfg.custom[1] = (ss_redact_pattern){"internal_url", "https://\\S+@corp\\.example\\S*"};
        r = redactor(&cfg);
        expect(r, ALL, "acct ACCT-123456, ACCT-12", "acct [REDACTED:acct], ACCT-12", 1);
        expect(r, SS_REDACT_SECRETS | SS_REDACT_PERSONAL, "ACCT-123456", NULL, 0);
        /* Built-ins still run beside them; at one start the longer match wins. */
        expect(r, ALL, "ACCT-123456 a@b.com", "[REDACTED:acct] [REDACTED:email]", 2);
        expect(r, ALL, "see https://u@corp.example/x", "see [REDACTED:internal_url]", 1);
        ss_redactor_free(r);
}
END_TEST

START_TEST(test_custom_invalid)
{
        ss_redact_config cfg = {.n_custom = 1};
        ss_redactor *r = NULL;
        char err[256] = "";

        cfg.custom[0] = (ss_redact_pattern){"acct", "(\\d+"};
        ck_assert_int_eq(ss_redactor_new(&cfg, &r, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_null(r);
        ck_assert_str_eq(err,
                         "redaction pattern \"acct\": missing closing parenthesis at offset 4");

        cfg.custom[0] = (ss_redact_pattern){"Bad-Kind", "x"};
        ck_assert_int_eq(ss_redactor_new(&cfg, &r, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, "\"Bad-Kind\""), "%s", err);
        cfg.custom[0] = (ss_redact_pattern){"abcdefghijklmnopqrstuvwxyz0123456", "x"}; /* 33 */
        ck_assert_int_eq(ss_redactor_new(&cfg, &r, err, sizeof(err)), -EINVAL);
        cfg.custom[0] = (ss_redact_pattern){"abcdefghijklmnopqrstuvwxyz012345", "x"}; /* 32 */
        ck_assert_int_eq(ss_redactor_new(&cfg, &r, err, sizeof(err)), 0);
        ss_redactor_free(r);
}
END_TEST

/* ---- the hash mode --------------------------------------------------------------------- */

/* The 8 hex digits of the one tag in the redaction of in. */
static void tag_of(ss_redactor *r, const char *in, char tag[9])
{
        uint32_t count;
        char *got = redact(r, ALL, in, &count);
        const char *t;

        ck_assert_ptr_nonnull(got);
        t = strstr(got, "[REDACTED:");
        ck_assert_ptr_nonnull(t);
        t = strchr(t + strlen("[REDACTED:"), ':');
        ck_assert_msg(t && strlen(t) >= 10 && t[9] == ']', "no tag in %s", got);
        memcpy(tag, t + 1, 8);
        tag[8] = '\0';
        ck_assert_uint_eq(strspn(tag, "0123456789abcdef"), 8);
        free(got);
}

START_TEST(test_hash)
{
        ss_redact_config cfg = {.hash = true};
        ss_redactor *r1, *r2;
        char a[9], b[9], c[9], d[9];

        memset(cfg.hash_key, 7, sizeof(cfg.hash_key));
        r1 = redactor(&cfg);
        cfg.hash_key[15] = 8;
        r2 = redactor(&cfg);
        tag_of(r1, "mail a@b.com", a);
        tag_of(r1, "again: a@b.com!", b);
        ck_assert_str_eq(a, b); /* same value, same tag */
        tag_of(r1, "mail c@b.com", c);
        ck_assert_str_ne(a, c); /* another value */
        tag_of(r2, "mail a@b.com", d);
        ck_assert_str_ne(a, d); /* another key */
        snprintf(c, sizeof(c), "%s", a);
        {
                char want[64];

                snprintf(want, sizeof(want), "x [REDACTED:email:%s]", a);
                expect(r1, ALL, "x a@b.com", want, 1);
        }
        ss_redactor_free(r1);
        ss_redactor_free(r2);
}
END_TEST

/* The SipHash paper's example (key 00..0f, message 00..0e: a129ca6149be45e5), whose first
 * four bytes little-endian are the tag. */
START_TEST(test_hash_vector)
{
        ss_redact_config cfg = {.hash = true, .n_custom = 1};
        char in[15], want[64];
        ss_redactor *r;
        ss_buf b;
        uint32_t count = 0;

        for (int i = 0; i < 16; i++)
                cfg.hash_key[i] = (uint8_t)i;
        for (int i = 0; i < 15; i++)
                in[i] = (char)i;
        cfg.custom[0] = (ss_redact_pattern){"vec", "[\\x00-\\x0e]{15}"};
        r = redactor(&cfg);
        ss_buf_init(&b, 1024);
        ck_assert_int_eq(ss_redact_text(r, ALL, in, sizeof(in), &b, &count), 1);
        snprintf(want, sizeof(want), "[REDACTED:vec:e545be49]");
        ck_assert_uint_eq(b.len, strlen(want));
        ck_assert_mem_eq(b.data, want, b.len);
        ss_buf_free(&b);
        ss_redactor_free(r);
}
END_TEST

/* ---- JSON -------------------------------------------------------------------------------- */

/* in through ss_redact_json(): want (NULL: unchanged), n matches, and valid JSON when want_json. */
static void expect_json(ss_redactor *r, const char *in, const char *want, uint32_t n,
                        bool want_json)
{
        const char *why = NULL;
        uint32_t count = 0;
        ss_buf b;
        int e;

        ss_buf_init(&b, 1 << 20);
        ss_buf_append(&b, "pre", 3); /* appended after what out holds */
        e = ss_redact_json(r, ALL, in, strlen(in), &b, &count);
        ck_assert_int_eq(e, want ? 1 : 0);
        ck_assert_uint_eq(count, n);
        ck_assert_mem_eq(b.data, "pre", 3);
        if (!want) {
                ck_assert_uint_eq(b.len, 3);
        } else {
                ck_assert_msg(b.len - 3 == strlen(want) && memcmp(b.data + 3, want, b.len - 3) == 0,
                              "'%s' became '%.*s', want '%s'", in, (int)(b.len - 3), b.data + 3,
                              want);
                if (want_json)
                        ck_assert_msg(fz_json_valid(b.data + 3, b.len - 3, &why), "%s: %s", want,
                                      why);
        }
        ss_buf_free(&b);
}

START_TEST(test_json)
{
        ss_redactor *r = redactor(NULL);

        expect_json(r, "[{\"role\":\"user\",\"content\":\"mail me at a@b.com, key " OPENAI "\"}]",
                    "[{\"role\":\"user\",\"content\":\"mail me at [REDACTED:email], key "
                    "[REDACTED:openai_key]\"}]",
                    2, true);
        /* Keys are names; untouched strings are copied as they were, escapes and all. */
        expect_json(r, "{\"a@b.com\": \"x\", \"n\": [1, -2.5e+3, true, false, null]}", NULL, 0,
                    false);
        expect_json(r, " {\"a\" : \"caf\\u00e9\\/\", \"b\":\"a@b.com\" } ",
                    " {\"a\" : \"caf\\u00e9\\/\", \"b\":\"[REDACTED:email]\" } ", 1, true);
        /* A redacted string is decoded and encoded again: same text, valid JSON. */
        expect_json(r, "{\"t\":\"say \\\"hi\\\" to a@b.com\\nthen caf\\u00e9 \\\\ \\t\\u0001\"}",
                    "{\"t\":\"say \\\"hi\\\" to [REDACTED:email]\\nthen caf\xc3\xa9 \\\\ "
                    "\\t\\u0001\"}",
                    1, true);
        expect_json(r, "[\"\\ud83d\\ude00 a@b.com\", \"\\ud800 x@y.org\"]",
                    "[\"\xf0\x9f\x98\x80 [REDACTED:email]\", \"\xef\xbf\xbd [REDACTED:email]\"]", 2,
                    true);
        /* An escape that spells the match is seen through. */
        expect_json(r, "\"a\\u0040b.com\"", "\"[REDACTED:email]\"", 1, true);
        /* A PEM block written with \n escapes. */
        expect_json(r,
                    "{\"k\":\"-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE "
                    "KEY-----\\n\"}",
                    "{\"k\":\"[REDACTED:private_key]\\n\"}", 1, true);
        ss_redactor_free(r);
}
END_TEST

/* Not JSON: redacted as text (the escape is then not decoded). */
START_TEST(test_json_invalid)
{
        ss_redactor *r = redactor(NULL);

        expect_json(r, "{\"a\": a@b.com}", "{\"a\": [REDACTED:email]}", 1, false);
        expect_json(r, "[\"a@b.com\",]", "[\"[REDACTED:email]\",]", 1, false);
        expect_json(r, "[\"a\\u0040b.com\",]", NULL, 0, false);
        expect_json(r, "[\"a\\x\"] a@b.com", "[\"a\\x\"] [REDACTED:email]", 1, false);
        expect_json(r, "\"a@b.com\" 1", "\"[REDACTED:email]\" 1", 1, false);
        expect_json(r, "", NULL, 0, false);
        ss_redactor_free(r);
}
END_TEST

/* What ends a run of plain characters in a string (an escape, a control, the closing quote)
 * is seen at every offset, the scanner's blocks of 16 bytes and their tails. */
START_TEST(test_json_offsets)
{
        ss_redactor *r = redactor(NULL);
        char in[128], want[128];

        for (int k = 0; k <= 40; k++) {
                snprintf(in, sizeof(in), "\"%*sa\\u0040b.com\"", k, "");
                snprintf(want, sizeof(want), "\"%*s[REDACTED:email]\"", k, "");
                expect_json(r, in, want, 1, true);
                /* A control in a string is not JSON: text, where it stays as it was. */
                snprintf(in, sizeof(in), "[\"%*s\x01 a@b.com\"]", k, "");
                snprintf(want, sizeof(want), "[\"%*s\x01 [REDACTED:email]\"]", k, "");
                expect_json(r, in, want, 1, false);
                snprintf(in, sizeof(in), "[\"%*s\", \"a@b.com\"]", k, "");
                snprintf(want, sizeof(want), "[\"%*s\", \"[REDACTED:email]\"]", k, "");
                expect_json(r, in, want, 1, true);
        }
        ss_redactor_free(r);
}
END_TEST

/* 64 levels are JSON; one more is text, where \u0040 is not an '@'. */
START_TEST(test_json_depth)
{
        ss_redactor *r = redactor(NULL);
        const char *s = "\"a\\u0040b.com\"";
        char in[256], want[256];

        for (int depth = 64; depth <= 65; depth++) {
                snprintf(
                    in, sizeof(in), "%.*s%s%.*s", depth,
                    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
                    s, depth,
                    "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
                snprintf(
                    want, sizeof(want), "%.*s\"[REDACTED:email]\"%.*s", depth,
                    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
                    depth,
                    "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
                expect_json(r, in, depth == 64 ? want : NULL, depth == 64 ? 1 : 0, false);
        }
        ss_redactor_free(r);
}
END_TEST

/* ---- spans ------------------------------------------------------------------------------- */

static uint64_t str_bytes(const msgpack_object_str *s)
{
        return s->size + 1ull;
}

static uint64_t attrs_bytes(const ss_attrs *a)
{
        uint64_t n = 0;

        for (uint32_t i = 0; i < a->n; i++)
                n += str_bytes(&a->kv[i].key.via.str) + ss_value_size(&a->kv[i].val);
        return n;
}

/* What the span references in its store (names are never empty in these tests). */
static uint64_t referenced(const ss_span *s)
{
        uint64_t n = str_bytes(&s->name) + attrs_bytes(&s->attrs);

        if (s->status_msg.size)
                n += str_bytes(&s->status_msg);
        if (s->trace_state.size)
                n += str_bytes(&s->trace_state);
        for (uint32_t i = 0; i < s->n_events; i++)
                n += str_bytes(&s->events[i].name) + attrs_bytes(&s->events[i].attrs);
        return n;
}

START_TEST(test_span)
{
        ss_resource *res = ss_resource_new(NULL);
        ss_redactor *r = redactor(NULL);
        msgpack_object inner[] = {fx_str("nested " ANTHROPIC)};
        msgpack_object list[] = {fx_str("ok"), fx_str("call 555-123-4567"), fx_array(inner, 1)};
        msgpack_object_kv kvl[] = {fx_kv("inner", fx_str("ssn 123-45-6789")),
                                   fx_kv("other@key.com", fx_str("x"))};
        msgpack_object_kv attrs[] = {
            fx_kv("user.email", fx_str("a@b.com")),
            fx_kv("plain", fx_str("nothing here")),
            fx_kv("n", fx_uint(42)),
            fx_kv("list", fx_array(list, 3)),
            fx_kv("kv", fx_map(kvl, 2)),
            fx_kv("gen_ai.input.messages",
                  fx_str("[{\"role\":\"user\",\"content\":\"I am \\u0063@d.org\"}]")),
        };
        msgpack_object_kv ev_attrs[] = {fx_kv("exception.message", fx_str("xoxb-1234567890-abc"))};
        msgpack_object ev_fields[] = {fx_str("exception"), fx_uint(1500), fx_map(ev_attrs, 1)};
        msgpack_object events[] = {fx_array(ev_fields, 3)};
        msgpack_object_map am = fx_map(attrs, 6).via.map;
        msgpack_object_array evs = fx_array(events, 1).via.array;
        fx_span_spec sp = {.resource = res,
                           .name = "chat",
                           .seed = 1,
                           .start_ns = 1000,
                           .end_ns = 2000,
                           .status_code = SS_STATUS_ERROR,
                           .status_msg = "failed for bob@example.org",
                           .attrs = &am,
                           .events = &evs,
                           .whole = true};
        ss_span *s = fx_span(&sp);
        const msgpack_object *l;
        uint64_t live = s->store.live, dead = s->store.dead;

        ck_assert_uint_eq(live, referenced(s));
        ck_assert_int_eq(ss_redact_span(r, ALL, s), 7);
        ck_assert_uint_eq(s->store.live, referenced(s));
        /* Exactly the seven replaced strings went dead, each with its NUL. */
        ck_assert_uint_eq(s->store.dead - dead,
                          strlen(attrs[0].val.via.str.ptr) + 1 + strlen(list[1].via.str.ptr) + 1 +
                              strlen(inner[0].via.str.ptr) + 1 + strlen(kvl[0].val.via.str.ptr) +
                              1 + strlen(attrs[5].val.via.str.ptr) + 1 +
                              strlen(ev_attrs[0].val.via.str.ptr) + 1 + strlen(sp.status_msg) + 1);

        fx_assert_str(ss_attrs_get(&s->attrs, "user.email"), "[REDACTED:email]");
        fx_assert_str(ss_attrs_get(&s->attrs, "plain"), "nothing here");
        ck_assert_uint_eq(ss_attrs_get(&s->attrs, "n")->via.u64, 42);
        l = ss_attrs_get(&s->attrs, "list");
        fx_assert_str(&l->via.array.ptr[0], "ok");
        fx_assert_str(&l->via.array.ptr[1], "call [REDACTED:phone]");
        fx_assert_str(&l->via.array.ptr[2].via.array.ptr[0], "nested [REDACTED:anthropic_key]");
        l = ss_attrs_get(&s->attrs, "kv");
        fx_assert_str(&l->via.map.ptr[0].val, "ssn [REDACTED:ssn]");
        fx_assert_str(&l->via.map.ptr[1].key, "other@key.com");
        fx_assert_str(&l->via.map.ptr[1].val, "x");
        fx_assert_str(ss_attrs_get(&s->attrs, "gen_ai.input.messages"),
                      "[{\"role\":\"user\",\"content\":\"I am [REDACTED:email]\"}]");
        fx_assert_str(ss_attrs_get(&s->events[0].attrs, "exception.message"),
                      "[REDACTED:slack_token]");
        ck_assert(fx_str_is(&s->status_msg, "failed for [REDACTED:email]"));
        ck_assert_int_eq(s->status_msg.ptr[s->status_msg.size], '\0');
        ck_assert_uint_eq(ss_attrs_get(&s->attrs, "sidespan.redacted_count")->via.u64, 7);

        ck_assert_uint_eq(fx_counter(ss_redactor_counters, r, "redaction.email"), 3);
        ck_assert_uint_eq(fx_counter(ss_redactor_counters, r, "redaction.phone"), 1);
        ck_assert_uint_eq(fx_counter(ss_redactor_counters, r, "redaction.slack_token"), 1);
        ck_assert_uint_eq(fx_counter(ss_redactor_counters, r, "redaction.spans"), 1);

        /* Again: nothing left to redact, nothing changes. */
        live = s->store.live;
        dead = s->store.dead;
        ck_assert_int_eq(ss_redact_span(r, ALL, s), 0);
        ck_assert_uint_eq(s->store.live, live);
        ck_assert_uint_eq(s->store.dead, dead);
        ck_assert_uint_eq(ss_attrs_get(&s->attrs, "sidespan.redacted_count")->via.u64, 7);
        ck_assert_uint_eq(fx_counter(ss_redactor_counters, r, "redaction.spans"), 1);
        ss_span_unref(s);
        ss_resource_unref(res);
        ss_redactor_free(r);
}
END_TEST

/* One string's exact accounting, and a count the span carries already is added to. */
START_TEST(test_span_count_added)
{
        ss_resource *res = ss_resource_new(NULL);
        ss_redactor *r = redactor(NULL);
        msgpack_object_kv attrs[] = {fx_kv("sidespan.redacted_count", fx_uint(2)),
                                     fx_kv("m", fx_str("a@b.com and c@d.com"))};
        msgpack_object_map am = fx_map(attrs, 2).via.map;
        fx_span_spec sp = {.resource = res, .name = "op", .seed = 2, .attrs = &am};
        ss_span *s = fx_span(&sp);
        uint64_t live = s->store.live, dead = s->store.dead;
        const char *want = "[REDACTED:email] and [REDACTED:email]";

        ck_assert_int_eq(ss_redact_span(r, SS_REDACT_PERSONAL, s), 2);
        /* The old string (19 bytes and its NUL) released, the new one stored. */
        ck_assert_uint_eq(s->store.dead - dead, strlen("a@b.com and c@d.com") + 1);
        ck_assert_uint_eq(s->store.live - live + strlen("a@b.com and c@d.com") + 1,
                          strlen(want) + 1);
        ck_assert_uint_eq(s->store.live, referenced(s));
        fx_assert_str(ss_attrs_get(&s->attrs, "m"), want);
        ck_assert_uint_eq(ss_attrs_get(&s->attrs, "sidespan.redacted_count")->via.u64, 4);
        ss_span_unref(s);
        ss_resource_unref(res);
        ss_redactor_free(r);
}
END_TEST

/* A class switched off leaves its matches, and the span, alone. */
START_TEST(test_span_disabled)
{
        ss_resource *res = ss_resource_new(NULL);
        ss_redactor *r = redactor(NULL);
        msgpack_object_kv attrs[] = {fx_kv("m", fx_str("a@b.com"))};
        msgpack_object_map am = fx_map(attrs, 1).via.map;
        fx_span_spec sp = {.resource = res, .name = "op", .seed = 3, .attrs = &am};
        ss_span *s = fx_span(&sp);
        uint64_t live = s->store.live;

        ck_assert_int_eq(ss_redact_span(r, SS_REDACT_SECRETS, s), 0);
        ck_assert_uint_eq(s->store.live, live);
        fx_assert_str(ss_attrs_get(&s->attrs, "m"), "a@b.com");
        ck_assert_ptr_null(ss_attrs_get(&s->attrs, "sidespan.redacted_count"));
        ss_span_unref(s);
        ss_resource_unref(res);
        ss_redactor_free(r);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("redact");
        TCase *tc = tcase_create("all");

        tcase_add_test(tc, test_secrets);
        tcase_add_test(tc, test_personal);
        tcase_add_test(tc, test_overlaps);
        tcase_add_test(tc, test_kinds_mask);
        tcase_add_test(tc, test_custom);
        tcase_add_test(tc, test_custom_invalid);
        tcase_add_test(tc, test_hash);
        tcase_add_test(tc, test_hash_vector);
        tcase_add_test(tc, test_json);
        tcase_add_test(tc, test_json_invalid);
        tcase_add_test(tc, test_json_offsets);
        tcase_add_test(tc, test_json_depth);
        tcase_add_test(tc, test_span);
        tcase_add_test(tc, test_span_count_added);
        tcase_add_test(tc, test_span_disabled);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
