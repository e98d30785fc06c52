/* SPDX-License-Identifier: MIT */
/*
 * The redactor's prefilter (policy/redact-filter.c), which decides whether
 * PCRE2 runs at all on a text: it must let through every text a built-in
 * pattern matches. Each text is redacted twice, with the prefilter and with
 * every pattern run on it (ss_redactor_prefilter(r, false)), as text and
 * inside a JSON document, and the two must agree byte for byte, count for
 * count, with the prefilter 32 bytes a step (AVX2, where the processor has it) and 16
 * (SSE2). The texts: every example of each kind at every alignment of the
 * scan, cut short at every length, at the start and the end, next to
 * multibyte UTF-8; then random text biased to the bytes the patterns start
 * with, with examples dropped in.
 */
#include "ss-check.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "policy/redact-internal.h"
#include "ss-buf.h"

/* At least one example of every built-in kind, in the forms the patterns allow. */
static const char *const examples[] = {
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----\nMIIEv",
    "Bearer abc123xyz789",
    "bearer\tABCDEFGHIJKLMNOPQRSTUVWX",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcDEF123_-xyz",
    "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345",
    "sk-proj-abc123DEF456ghi789JKL012mno345",
    "sk-abcdefghij0123456789klmno",
    "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "gho_0123456789abcdefghijABCDEFGHIJ012345",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "xoxb-1234567890-abcdefghij",
    "xoxs-1234567890-0987654321-abc",
    "AKIAIOSFODNN7EXAMPLE",
    "ASIAIOSFODNN7EXAMPLE",
    "jane.doe+x@mail.example.co.uk",
    "a@b.io",
    "123-45-6789",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "5555555555554444",
    "378282246310005",
    "(555) 123-4567",
    "555.123.4567",
    "1-800-555-1234",
    "1 (555) 123-4567",
    "+14155552671",
    "+44 20 7946 0958",
    "+1 555 123 4567",
    "+12345678",
    /* digits at the ends of their range, each needed for the chain */
    "+10000000",
    "+19999999",
    "4000 0000 0000 0002",
};

static const char *const kinds_seen[] = {
    "private_key", "bearer",  "jwt",   "anthropic_key", "openai_key", "github_token",
    "slack_token", "aws_key", "email", "ssn",           "card",       "phone",
};

/* What sits next to an example: nothing, ASCII of a word, multibyte UTF-8, a lone byte. */
static const char *const neighbours[] = {
    "", " ", "x", "_", "-", "7", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x80", "\n"};

#define TEXT_MAX 512u

typedef struct pair {
        ss_redactor *r[2]; /* with the prefilter, without */
        uint64_t texts;
} pair;

/* Both ways of the prefilter are checked: _i 0 takes the widest one the processor has
 * (AVX2, 32 bytes a step, where it has it), _i 1 16 bytes a step (SSE2). */
static void pair_init(pair *pr, int narrow)
{
        char err[256] = "";

        ss_redact_filter_narrow(narrow);

        for (int i = 0; i < 2; i++)
                ck_assert_msg(ss_redactor_new(NULL, &pr->r[i], err, sizeof(err)) == 0, "%s", err);
        ss_redactor_prefilter(pr->r[1], false);
        pr->texts = 0;
}

/* Every kind was found at least once: the texts did reach the patterns. */
static void pair_free(pair *pr)
{
        for (size_t i = 0; i < sizeof(kinds_seen) / sizeof(kinds_seen[0]); i++) {
                char name[64];

                snprintf(name, sizeof(name), "redaction.%s", kinds_seen[i]);
                ck_assert_msg(fx_counter(ss_redactor_counters, pr->r[0], name) > 0, "no %s",
                              kinds_seen[i]);
        }
        ss_redactor_free(pr->r[0]);
        ss_redactor_free(pr->r[1]);
}

/* p[0..n) printable, for a failure message. */
static const char *shown(const char *p, size_t n)
{
        static char s[4 * TEXT_MAX * 6 + 1];
        size_t k = 0;

        for (size_t i = 0; i < n && k + 5 < sizeof(s); i++) {
                unsigned char ch = (unsigned char)p[i];

                if (ch >= 0x20 && ch < 0x7f && ch != '\\')
                        s[k++] = (char)ch;
                else
                        k += (size_t)snprintf(s + k, sizeof(s) - k, "\\x%02x", ch);
        }
        s[k] = '\0';
        return s;
}

typedef int (*redact_fn)(ss_redactor *, unsigned, const char *, size_t, ss_buf *, uint32_t *);

/* The two redactors agree on p for the classes in kinds: the matches they found. */
static uint32_t agree(pair *pr, redact_fn fn, unsigned kinds, const char *p, size_t n)
{
        ss_buf out[2];
        uint32_t count[2] = {0, 0};
        int rc[2];

        for (int i = 0; i < 2; i++) {
                ss_buf_init(&out[i], 1 << 20);
                rc[i] = fn(pr->r[i], kinds, p, n, &out[i], &count[i]);
        }
        ck_assert_msg(rc[0] == rc[1] && count[0] == count[1] && out[0].len == out[1].len &&
                          (out[0].len == 0 || memcmp(out[0].data, out[1].data, out[0].len) == 0),
                      "%s, classes %u: %d with %u matches, want %d with %u, for '%s'",
                      fn == ss_redact_json ? "json" : "text", kinds, rc[0], count[0], rc[1],
                      count[1], shown(p, n));
        ss_buf_free(&out[0]);
        ss_buf_free(&out[1]);
        return count[0];
}

/* text as a JSON string. Odd seeds: some characters written as \u escapes (seed picks
 * which), as are every control, quote and backslash. Even seeds: the short escapes where
 * JSON has one (the solidus sometimes escaped too), \u only for the other controls, so
 * that most documents hold none, as most chat messages do. */
static size_t json_quote(const char *p, size_t n, uint64_t seed, char *out)
{
        static const char shorts[] = "\"\\/\b\f\n\r\t", letters[] = "\"\\/bfnrt";
        bool unicode = seed & 1;
        size_t k = 0;

        out[k++] = '"';
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)p[i];
                const char *s = ch ? memchr(shorts, ch, sizeof(shorts) - 1) : NULL;

                if (!unicode && s && (ch != '/' || fx_below(&seed, 2) == 0)) {
                        out[k++] = '\\';
                        out[k++] = letters[s - shorts];
                } else if (ch < 0x20 || ch == '"' || ch == '\\' ||
                           (unicode && ch < 0x80 && fx_below(&seed, 8) == 0)) {
                        k += (size_t)sprintf(out + k, "\\u%04x", ch);
                } else {
                        out[k++] = (char)ch;
                }
        }
        out[k++] = '"';
        return k;
}

/* p through both redactors, as text and as a string value of a JSON document: alone in an
 * array, or as a chat message's content beside keys and a number. The document's only
 * string that can match is p's: it must hold as many matches as p as text (a check that
 * does not lean on the code both redactors share). */
static void check_text(pair *pr, const char *p, size_t n)
{
        static const unsigned classes[] = {SS_REDACT_SECRETS, SS_REDACT_PERSONAL,
                                           SS_REDACT_SECRETS | SS_REDACT_PERSONAL};
        static const char head[] = "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":";
        static const char tail[] = ",\"index\":12}]}]";
        static char doc[6 * TEXT_MAX + 128];
        bool chat = pr->texts % 4 >= 2;
        size_t k;

        ck_assert_uint_le(n, TEXT_MAX);
        k = chat ? sizeof(head) - 1 : 1;
        memcpy(doc, chat ? head : "[", k);
        k += json_quote(p, n, pr->texts + 1, doc + k);
        memcpy(doc + k, chat ? tail : "]", chat ? sizeof(tail) - 1 : 1);
        k += chat ? sizeof(tail) - 1 : 1;
        for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
                uint32_t text = agree(pr, ss_redact_text, classes[i], p, n);

                ck_assert_msg(agree(pr, ss_redact_json, classes[i], doc, k) == text,
                              "json, classes %u: not the %u matches of the text, for '%s'",
                              classes[i], text, shown(doc, k));
        }
        pr->texts++;
}

/* Every example: after 0 to 40 bytes of padding (every alignment of a 16- or 32-byte step),
 * cut at every length, between every pair of neighbours. */
START_TEST(test_examples)
{
        const size_t n_nb = sizeof(neighbours) / sizeof(neighbours[0]);
        char t[TEXT_MAX];
        pair pr;

        pair_init(&pr, _i);
        for (size_t e = 0; e < sizeof(examples) / sizeof(examples[0]); e++) {
                size_t len = strlen(examples[e]);

                for (size_t pad = 0; pad <= 40; pad++) {
                        const char *before = neighbours[pad % n_nb];
                        const char *after = neighbours[(pad * 7 + e) % n_nb];
                        size_t b = strlen(before), a = strlen(after);

                        for (size_t cut = pad % 3 ? len : 1; cut <= len; cut++) {
                                size_t n = 0;

                                memset(t, ' ', pad);
                                n = pad;
                                if (pad >= b)
                                        memcpy(t + pad - b, before, b);
                                memcpy(t + n, examples[e], cut);
                                n += cut;
                                memcpy(t + n, after, a);
                                check_text(&pr, t, n + a);
                                check_text(&pr, t + pad, n - pad); /* at the very start */
                                check_text(&pr, t, n);             /* at the very end */
                        }
                }
        }
        pair_free(&pr);
}
END_TEST

/* Random text from bytes the patterns look for (their literals' letters, digits and
 * separators, '@', multibyte UTF-8), with examples, whole or cut, dropped in. */
static size_t random_text(uint64_t *seed, char *t)
{
        static const char alphabet[] = "abeghijkoprsuxyzABEIJKSRTW_-.()+@:/ \t\n0123456789";
        size_t n = 0, want = fx_below(seed, 300);

        while (n < want) {
                uint32_t pick = fx_below(seed, 100);

                if (pick < 4) {
                        const char *ex =
                            examples[fx_below(seed, sizeof(examples) / sizeof(examples[0]))];
                        size_t len = strlen(ex);

                        if (fx_below(seed, 3) == 0)
                                len = fx_below(seed, (uint32_t)len + 1);
                        memcpy(t + n, ex, len);
                        n += len;
                } else if (pick < 8) {
                        const char *nb =
                            neighbours[fx_below(seed, sizeof(neighbours) / sizeof(neighbours[0]))];

                        memcpy(t + n, nb, strlen(nb));
                        n += strlen(nb);
                } else if (pick < 9) {
                        t[n++] = (char)fx_below(seed, 256);
                } else {
                        t[n++] = alphabet[fx_below(seed, sizeof(alphabet) - 1)];
                }
        }
        return n;
}

START_TEST(test_random)
{
        uint64_t seed = 0x9e3779b97f4a7c15ull;
        char t[TEXT_MAX];
        pair pr;

        pair_init(&pr, _i);
        for (int i = 0; i < 4000; i++)
                check_text(&pr, t, random_text(&seed, t));
        pair_free(&pr);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("redact-filter");
        TCase *tc = tcase_create("all");

        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, test_examples, 0, 2);
        tcase_add_loop_test(tc, test_random, 0, 2);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
