/* SPDX-License-Identifier: MIT */
/*
 * The prefilter: which built-in alternatives a text can match at all,
 * decided with a cheap look at its bytes before PCRE2 runs (redact.c).
 */
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/*
 * Every digit pattern (ssn, card, phone) holds at least DIGIT_CHAIN_MIN digits
 * with at most DIGIT_GAP_MAX characters between two of them, each one of
 * DIGIT_GAP ("(212) 555" has two; the E.164, card and SSN forms one): text
 * without such a chain (prose with a time, a date or a temperature in it,
 * "21:04", "12/05", "18C") is not handed to them.
 */
#define DIGIT_CHAIN_MIN 7u
#define DIGIT_GAP_MAX   2u
#define DIGIT_GAP       " .-()"

/* One pass over a text: what it found, what it still looks for, the digits it counts. */
typedef struct pass {
        const char *p;
        size_t n;
        uint8_t want; /* the B_* classes still looked for */
        unsigned set; /* the NEED_* found */
        unsigned chain;
        size_t last_digit;
} pass;

/* True when p[s..e), between two digits, can separate two digits of one number. */
static bool digit_gap(const char *p, size_t s, size_t e)
{
        if (e - s > DIGIT_GAP_MAX)
                return false;
        for (size_t i = s; i < e; i++)
                if (!one_of(p[i], DIGIT_GAP))
                        return false;
        return true;
}

/* Look at p[i], a byte of interest or not. */
static void look(pass *f, size_t i)
{
        uint8_t c = byte_class[(unsigned char)f->p[i]] & f->want;

        if (c == B_DIGIT) {
                f->chain = f->chain && digit_gap(f->p, f->last_digit + 1, i) ? f->chain + 1 : 1;
                f->last_digit = i;
                if (f->chain >= DIGIT_CHAIN_MIN) {
                        f->set |= NEED_DIGIT;
                        f->want &= (uint8_t)~B_DIGIT;
                }
        } else if (c == B_SECRET && secret_at(f->p, f->n, i)) {
                f->set |= NEED_SECRET;
                f->want &= (uint8_t)~B_SECRET;
        }
}

#ifdef __SSE2__
#define BLOCK 16u

/* A bit for each byte of p[0..BLOCK) in a class of want (bit k: p[k]): byte_class[] at
 * BLOCK bytes a step. */
static unsigned block_classes(const char *p, uint8_t want)
{
        const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit = _mm_setzero_si128();

        if (want & B_DIGIT) /* signed compares: bytes from 0x80 are below '0' */
                hit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                    _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
        if (want & B_SECRET) {
                /* 'b' and 'B' differ in 0x20 alone; no other byte | 0x20 is 'b'. */
                __m128i b = _mm_or_si128(v, _mm_set1_epi8(0x20));

                hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
                hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, _mm_set1_epi8('_')));
                hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, _mm_set1_epi8('J')));
                hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, _mm_set1_epi8('A')));
                hit = _mm_or_si128(hit, _mm_cmpeq_epi8(b, _mm_set1_epi8('b')));
        }
        return (unsigned)_mm_movemask_epi8(hit);
}

/* Look at the bytes p[i + k] for each bit k of m. */
static void look_at(pass *f, size_t i, unsigned m)
{
        for (; m && f->want; m &= m - 1)
                look(f, i + (size_t)__builtin_ctz(m));
}

/* A digit chain spans at most this many bytes, so it lies within three blocks. */
#define DIGIT_CHAIN_SPAN (DIGIT_CHAIN_MIN + (DIGIT_CHAIN_MIN - 1) * DIGIT_GAP_MAX)
_Static_assert(DIGIT_CHAIN_SPAN <= 2 * BLOCK + 1, "a digit chain must fit in three blocks");

/* The bits set in a block's mask: inline, where x86-64's baseline has no popcnt and
 * __builtin_popcount() is a call into libgcc. */
static unsigned bits16(unsigned x)
{
        x = x - ((x >> 1) & 0x5555u);
        x = (x & 0x3333u) + ((x >> 2) & 0x3333u);
        x = (x + (x >> 4)) & 0x0f0fu;
        return (x + (x >> 8)) & 0x1fu;
}

/*
 * False when no three consecutive blocks of p[0..n) (n >= BLOCK) hold DIGIT_CHAIN_MIN digits
 * between them, so no chain can be there: prose with a number here and there is then not
 * looked at digit by digit. A popcount a block.
 */
static bool digits_dense(const char *p, size_t n)
{
        unsigned c0 = 0, c1 = 0, c2;
        size_t i;

        for (i = 0; n - i >= BLOCK; i += BLOCK) {
                unsigned m = block_classes(p + i, B_DIGIT);

                c2 = m ? bits16(m) : 0; /* prose: most blocks hold no digit */
                if (c0 + c1 + c2 >= DIGIT_CHAIN_MIN)
                        return true;
                c0 = c1;
                c1 = c2;
        }
        if (i == n)
                return false;
        c2 = bits16(block_classes(p + n - BLOCK, B_DIGIT) >> (BLOCK - (n - i)));
        return c0 + c1 + c2 >= DIGIT_CHAIN_MIN;
}

/*
 * Most blocks hold no byte of interest: one test for all of them. The tail is the last
 * BLOCK bytes again, the bits of those already seen shifted out.
 */
static void scan(pass *f)
{
        size_t i = 0, n = f->n;

        if (n < BLOCK) {
                /* A short value (a status, an id, a model name): one block, from a copy
                 * padded with zeros, which no class holds. */
                char block[BLOCK] = {0};

                memcpy(block, f->p, n);
                look_at(f, 0, block_classes(block, f->want));
                return;
        }
        if ((f->want & B_DIGIT) && !digits_dense(f->p, n))
                f->want &= (uint8_t)~B_DIGIT;
        for (; n - i >= BLOCK && f->want; i += BLOCK) {
                unsigned m = block_classes(f->p + i, f->want);

                if (m) /* most blocks: not a call */
                        look_at(f, i, m);
        }
        if (i < n && f->want)
                look_at(f, i, block_classes(f->p + n - BLOCK, f->want) >> (BLOCK - (n - i)));
}
#else
/* Byte by byte: where there is no SSE2. */
static void scan(pass *f)
{
        for (size_t i = 0; i < f->n && f->want; i++)
                if (byte_class[(unsigned char)f->p[i]] & f->want)
                        look(f, i);
}
#endif

unsigned ss_redact_filter(unsigned kinds, const char *p, size_t n)
{
        pass f = {.p = p, .n = n};

        f.want = (uint8_t)((kinds & SS_REDACT_SECRETS ? B_SECRET : 0) |
                           (kinds & SS_REDACT_PERSONAL ? B_DIGIT : 0));
        scan(&f);
        return f.set;
}
