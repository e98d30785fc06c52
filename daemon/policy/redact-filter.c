/* SPDX-License-Identifier: MIT */
/*
 * The prefilter: which built-in alternatives a text can match at all,
 * decided with a cheap look at its bytes before PCRE2 runs (redact.c).
 */
#include <string.h>
#include <strings.h>

#include "policy/redact-internal.h"

/* What the prefilter looks at in a byte: a digit, or a first byte of a built-in secret
 * pattern. Every other byte is skipped without a test of its own. */
enum { B_DIGIT = 1, B_SECRET = 2 };
static const uint8_t byte_class[256] = {
    ['0'] = B_DIGIT,  ['1'] = B_DIGIT,  ['2'] = B_DIGIT,  ['3'] = B_DIGIT,  ['4'] = B_DIGIT,
    ['5'] = B_DIGIT,  ['6'] = B_DIGIT,  ['7'] = B_DIGIT,  ['8'] = B_DIGIT,  ['9'] = B_DIGIT,
    ['-'] = B_SECRET, ['b'] = B_SECRET, ['B'] = B_SECRET, ['e'] = B_SECRET, ['s'] = B_SECRET,
    ['g'] = B_SECRET, ['x'] = B_SECRET, ['A'] = B_SECRET,
};

/*
 * True when a built-in secret pattern could start at p[i]: the literal each begins with
 * ("-----BEGIN", "bearer" in any case, "eyJ", "sk-", "gh[pousr]_", "github_pat_", "xox",
 * "AKIA", "ASIA"). A superset of where they match, so the alternation is run only on text
 * that holds one: most text holds none, and the JIT would otherwise try every common letter.
 */
static bool secret_at(const char *p, size_t n, size_t i)
{
        const char *s = p + i;
        size_t left = n - i;

        switch (s[0]) {
        case '-':
                return left >= 10 && memcmp(s, "-----BEGIN", 10) == 0;
        case 'b':
        case 'B':
                return left >= 6 && strncasecmp(s, "bearer", 6) == 0;
        case 'e':
                return left >= 3 && s[1] == 'y' && s[2] == 'J';
        case 's':
                return left >= 3 && s[1] == 'k' && s[2] == '-';
        case 'g':
                return (left >= 4 && s[1] == 'h' && s[2] && strchr("pousr", s[2]) && s[3] == '_') ||
                       (left >= 11 && memcmp(s, "github_pat_", 11) == 0);
        case 'x':
                return left >= 3 && s[1] == 'o' && s[2] == 'x';
        case 'A':
                return left >= 4 && (memcmp(s, "AKIA", 4) == 0 || memcmp(s, "ASIA", 4) == 0);
        default:
                return false;
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
