/* SPDX-License-Identifier: MIT */
/*
 * The prefilter: which built-in alternatives a text can match at all,
 * decided with a cheap look at its bytes before PCRE2 runs (redact.c).
 */
#include <string.h>
#include <strings.h>

#include "policy/redact-internal.h"

/*
 * What the prefilter looks at in a byte: a digit, or the anchor of a built-in secret's
 * literal, a byte of it that is rare in prose: '-' ("-----BEGIN", "sk-", "xox?-"), '_'
 * ("gh?_", "github_pat_"), 'J' ("eyJ"), 'A' ("AKIA", "ASIA"), 'b' and 'B' ("bearer" in
 * any case). Every other byte is skipped without a test of its own.
 */
enum { B_DIGIT = 1, B_SECRET = 2 };
static const uint8_t byte_class[256] = {
    ['0'] = B_DIGIT,  ['1'] = B_DIGIT,  ['2'] = B_DIGIT,  ['3'] = B_DIGIT,
    ['4'] = B_DIGIT,  ['5'] = B_DIGIT,  ['6'] = B_DIGIT,  ['7'] = B_DIGIT,
    ['8'] = B_DIGIT,  ['9'] = B_DIGIT,  ['-'] = B_SECRET, ['_'] = B_SECRET,
    ['J'] = B_SECRET, ['A'] = B_SECRET, ['b'] = B_SECRET, ['B'] = B_SECRET,
};

/* True when p[0..n) holds lit starting off bytes before p[i]. */
static bool lit_at(const char *p, size_t n, size_t i, const char *lit, size_t off)
{
        size_t len = strlen(lit);

        return i >= off && n - (i - off) >= len && memcmp(p + i - off, lit, len) == 0;
}

static bool one_of(char ch, const char *set)
{
        return memchr(set, ch, strlen(set)) != NULL;
}

/*
 * True when the anchor p[i] is part of a built-in secret pattern's literal (all of them
 * start with one: "-----BEGIN", "bearer" in any case, "eyJ", "sk-", "gh[pousr]_",
 * "github_pat_", "xox[baprs]-", "AKIA", "ASIA"). A superset of where they match, so the
 * alternation is run only on text that holds one: most text holds none, and the JIT would
 * otherwise try every common letter.
 */
static bool secret_at(const char *p, size_t n, size_t i)
{
        switch (p[i]) {
        case '-':
                return lit_at(p, n, i, "-----BEGIN", 0) || lit_at(p, n, i, "sk-", 2) ||
                       (lit_at(p, n, i, "xox", 4) && one_of(p[i - 1], "baprs"));
        case '_':
                return (lit_at(p, n, i, "gh", 3) && one_of(p[i - 1], "pousr")) ||
                       lit_at(p, n, i, "github_pat_", 6);
        case 'J':
                return lit_at(p, n, i, "eyJ", 2);
        case 'A':
                return lit_at(p, n, i, "AKIA", 0) || lit_at(p, n, i, "ASIA", 0);
        default: /* 'b', 'B' */
                return n - i >= 6 && strncasecmp(p + i, "bearer", 6) == 0;
        }
}

/* Which built-in alternatives the text can match at all, in one pass over it. */
/*
 * Every digit pattern (ssn, card, phone) holds at least DIGIT_CHAIN_MIN digits
 * with at most DIGIT_GAP_MAX other characters between two of them ("(212) 555"
 * has two): text without such a chain (prose with a time or a temperature in
 * it) is not handed to them.
 */
#define DIGIT_CHAIN_MIN 7u
#define DIGIT_GAP_MAX   2u

unsigned ss_redact_filter(unsigned kinds, const char *p, size_t n)
{
        bool secrets = kinds & SS_REDACT_SECRETS, digits = kinds & SS_REDACT_PERSONAL;
        uint8_t want = (uint8_t)((secrets ? B_SECRET : 0) | (digits ? B_DIGIT : 0));
        unsigned set = 0, chain = 0;
        size_t last_digit = 0;

        for (size_t i = 0; i < n && want; i++) {
                uint8_t c = byte_class[(unsigned char)p[i]] & want;

                if (!c)
                        continue;
                if (c == B_DIGIT) {
                        /* More than DIGIT_GAP_MAX others since the last digit: a new chain. */
                        chain = chain && i - last_digit <= DIGIT_GAP_MAX + 1 ? chain + 1 : 1;
                        last_digit = i;
                        if (chain >= DIGIT_CHAIN_MIN) {
                                set |= NEED_DIGIT;
                                want &= (uint8_t)~B_DIGIT;
                        }
                } else if (secret_at(p, n, i)) {
                        set |= NEED_SECRET;
                        want &= (uint8_t)~B_SECRET;
                }
        }
        return set;
}
