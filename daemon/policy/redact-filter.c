/* SPDX-License-Identifier: MIT */
/*
 * The prefilter: which built-in patterns a text can match at all, decided
 * with a cheap look at its bytes before PCRE2 runs (redact.c). One pass, 16
 * bytes a step (SSE2), or 32 where the processor has AVX2.
 */
#include <stdbool.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h> /* SSE2, and AVX2 for the functions built for it */
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "policy/redact-internal.h"

/*
 * What the prefilter looks at in a byte: a digit, the anchor of a built-in secret's literal,
 * a byte of it that is rare in prose: '-' ("-----BEGIN", "sk-", "xox?-"), '_' ("gh?_",
 * "github_pat_"), 'J' ("eyJ"), 'A' ("AKIA", "ASIA"), 'b' and 'B' ("bearer" in any case),
 * and the '@' of an e-mail address. Every other byte is skipped without a test of its own.
 */
enum { B_DIGIT = 1, B_SECRET = 2, B_AT = 4 };
static const uint8_t byte_class[256] = {
    ['0'] = B_DIGIT,  ['1'] = B_DIGIT,  ['2'] = B_DIGIT,  ['3'] = B_DIGIT,  ['4'] = B_DIGIT,
    ['5'] = B_DIGIT,  ['6'] = B_DIGIT,  ['7'] = B_DIGIT,  ['8'] = B_DIGIT,  ['9'] = B_DIGIT,
    ['-'] = B_SECRET, ['_'] = B_SECRET, ['J'] = B_SECRET, ['A'] = B_SECRET, ['b'] = B_SECRET,
    ['B'] = B_SECRET, ['@'] = B_AT,
};

/* True when p[0..n) holds lit starting off bytes before p[i]. Inline: with a literal lit, its
 * length and the comparison are constants, not calls. */
static inline __attribute__((always_inline)) bool lit_at(const char *p, size_t n, size_t i,
                                                         const char *lit, size_t off)
{
        size_t len = strlen(lit);

        return i >= off && n - (i - off) >= len && memcmp(p + i - off, lit, len) == 0;
}

/* Whether ch is in set; inline for the same reason. */
static inline __attribute__((always_inline)) bool one_of(char ch, const char *set)
{
        for (; *set; set++)
                if (*set == ch)
                        return true;
        return false;
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
        default: /* 'b', 'B': "bearer" in any case, each letter tested with its case bit set */
                return n - i >= 6 && ((p[i + 1] | 0x20) == 'e') && ((p[i + 2] | 0x20) == 'a') &&
                       ((p[i + 3] | 0x20) == 'r') && ((p[i + 4] | 0x20) == 'e') &&
                       ((p[i + 5] | 0x20) == 'r');
        }
}

/*
 * Every digit pattern (ssn, card, phone) holds at least DIGIT_CHAIN_MIN digits
 * with at most DIGIT_GAP_MAX characters between two of them, each one that
 * digit_gap_byte() takes ("(212) 555" has two; the E.164, card and SSN forms one): text
 * without such a chain (prose with a time, a date or a temperature in it,
 * "21:04", "12/05", "18C") is not handed to them.
 */
#define DIGIT_CHAIN_MIN 7u
#define DIGIT_GAP_MAX   2u

/* Whether c may stand between two digits of one number: one of " .-()". */
static inline bool digit_gap_byte(char c)
{
        return c == ' ' || c == '.' || c == '-' || c == '(' || c == ')';
}

/* One pass over a text: what it found, what it still looks for, the digits it counts. */
typedef struct pass {
        const char *p;
        size_t n;
        uint8_t want; /* the B_* classes still looked for */
        unsigned set; /* the NEED_* found */
        unsigned chain;
        size_t last_digit;
        bool dense; /* digits are looked at one by one (past a dense stretch, see scan()) */
} pass;

/* True when p[s..e), between two digits, can separate two digits of one number. */
static bool digit_gap(const char *p, size_t s, size_t e)
{
        if (e - s > DIGIT_GAP_MAX)
                return false;
        for (size_t i = s; i < e; i++)
                if (!digit_gap_byte(p[i]))
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
        } else if (c == B_AT) {
                f->set |= NEED_EMAIL;
                f->want &= (uint8_t)~B_AT;
        }
}

#ifdef __SSE2__
#define BLOCK 16u

/* The bytes of a block in the classes looked for (bit k: byte k): digits, and the rest
 * (secret anchors, '@'). */
typedef struct block_masks {
        uint32_t digit, other;
} block_masks;

/* Of p[0..BLOCK), with SSE2 (x86-64's baseline): byte_class[] at BLOCK bytes a step. Every
 * class is compared, and what want lacks masked off after: most blocks hold none, and the
 * tests would cost more than the compares. */
static inline __attribute__((always_inline)) block_masks classes16(const char *p, uint8_t want)
{
        const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* 'b' and 'B' differ in 0x20 alone; no other byte | 0x20 is 'b'. */
        const __m128i b = _mm_or_si128(v, _mm_set1_epi8(0x20));
        /* Signed compares: bytes from 0x80 are below '0'. */
        __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
        __m128i secret = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('-')),
                                      _mm_cmpeq_epi8(v, _mm_set1_epi8('_')));
        __m128i at = _mm_cmpeq_epi8(v, _mm_set1_epi8('@'));
        block_masks m;

        secret = _mm_or_si128(secret, _mm_cmpeq_epi8(v, _mm_set1_epi8('J')));
        secret = _mm_or_si128(secret, _mm_cmpeq_epi8(v, _mm_set1_epi8('A')));
        secret = _mm_or_si128(secret, _mm_cmpeq_epi8(b, _mm_set1_epi8('b')));
        m.digit = (uint32_t)_mm_movemask_epi8(digit);
        m.other = (uint32_t)_mm_movemask_epi8(_mm_or_si128(secret, at));
        if (__builtin_expect((m.digit | m.other) != 0, 0) && want != (B_DIGIT | B_SECRET | B_AT)) {
                if (!(want & B_DIGIT))
                        m.digit = 0;
                if (!(want & B_SECRET))
                        m.other = want & B_AT ? (uint32_t)_mm_movemask_epi8(at) : 0;
                else if (!(want & B_AT))
                        m.other = (uint32_t)_mm_movemask_epi8(secret);
        }
        return m;
}

/* Look at the bytes p[i + k] for each bit k of m. */
static void look_at(pass *f, size_t i, uint32_t m)
{
        for (; m && f->want; m &= m - 1)
                look(f, i + (size_t)__builtin_ctz(m));
}

/* A digit chain spans at most this many bytes, so it lies within three blocks. */
#define DIGIT_CHAIN_SPAN (DIGIT_CHAIN_MIN + (DIGIT_CHAIN_MIN - 1) * DIGIT_GAP_MAX)
_Static_assert(DIGIT_CHAIN_SPAN <= 2 * BLOCK + 1, "a digit chain must fit in three blocks");

/* The bits set in a mask: inline, where x86-64's baseline has no popcnt and
 * __builtin_popcount() is a call into libgcc. */
static inline unsigned bits32(uint32_t x)
{
        x = x - ((x >> 1) & 0x55555555u);
        x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
        x = (x + (x >> 4)) & 0x0f0f0f0fu;
        return (x * 0x01010101u) >> 24;
}

/* The digits of the two blocks before the one being looked at, and how many. */
typedef struct window {
        uint32_t mask[2];
        unsigned count[2];
} window;

/*
 * The block at p[i..) (m: its classes). Digits are looked at one by one only
 * from the first stretch of three blocks holding DIGIT_CHAIN_MIN of them on: a chain's first
 * DIGIT_CHAIN_MIN digits lie within three blocks, the first such stretch ends no later than
 * theirs, and so begins no later than the chain. Prose with a number here and there (a
 * time, a date, a temperature) is not looked at digit by digit. popcnt: the caller may use
 * the instruction.
 */
static inline __attribute__((always_inline)) void block(pass *f, size_t i, block_masks m, window *w,
                                                        bool popcnt)
{
        unsigned count;

        if (m.other) /* most blocks: not a call */
                look_at(f, i, m.other);
        if (!m.digit || !(f->want & B_DIGIT)) {
                m.digit = 0;
                count = 0;
        } else if (f->dense) {
                look_at(f, i, m.digit);
                return;
        } else {
                count = popcnt ? (unsigned)__builtin_popcount(m.digit) : bits32(m.digit);
                if (w->count[0] + w->count[1] + count >= DIGIT_CHAIN_MIN) {
                        f->dense = true;
                        if (w->mask[0])
                                look_at(f, i - 2 * BLOCK, w->mask[0]);
                        if (w->mask[1])
                                look_at(f, i - BLOCK, w->mask[1]);
                        look_at(f, i, m.digit);
                        return;
                }
        }
        w->mask[0] = w->mask[1];
        w->count[0] = w->count[1];
        w->mask[1] = m.digit;
        w->count[1] = count;
}

/*
 * One pass, a block at a time; most blocks hold no byte of interest, one test for all of
 * them. The tail is the last BLOCK bytes again, the bits of those already seen shifted out.
 */
static void scan16(pass *f)
{
        size_t i = 0, n = f->n, shift;
        window w = {{0, 0}, {0, 0}};
        block_masks m;

        if (n < BLOCK) {
                /* A short value (a status, an id, a model name): one block, from a copy
                 * padded with zeros, which no class holds; its digits looked at when there
                 * are enough of them for a chain. */
                char pad[BLOCK] = {0};

                ss_copy_small(pad, f->p, n);
                m = classes16(pad, f->want);
                if (m.digit && bits32(m.digit) < DIGIT_CHAIN_MIN)
                        m.digit = 0;
                if (m.digit | m.other) /* most short values: not a call */
                        look_at(f, 0, m.digit | m.other);
                return;
        }
        for (; n - i >= BLOCK && f->want; i += BLOCK)
                block(f, i, classes16(f->p + i, f->want), &w, false);
        if (i == n || !f->want)
                return;
        shift = BLOCK - (n - i);
        m = classes16(f->p + n - BLOCK, f->want);
        m.digit >>= shift;
        m.other >>= shift;
        block(f, i, m, &w, false);
}

#if defined(__x86_64__) && defined(__GNUC__)
/*
 * With AVX2, where the processor has it (most x86-64 servers since 2013): 32 bytes a step,
 * each byte's classes found by two table lookups (vpshufb), one by its low and one by its
 * high nibble, whose AND holds a bit for each class the byte is in. A text shorter than a
 * wide block takes scan16().
 */
#define WIDE (2 * BLOCK)

enum { C_DIGIT = 0x01, C_DASH = 0x02, C_UNDER = 0x04, C_UPPER = 0x08, C_AT = 0x10, C_B = 0x20 };
#define C_SECRET (C_DASH | C_UNDER | C_UPPER | C_B) /* '-', '_', 'A', 'B', 'J', 'b' */

/* By low nibble: '0'-'9', '@' (0x40), 'A' 'B' 'J' (0x41 0x42 0x4a), 'b' (0x62), '-' (0x2d),
 * '_' (0x5f). By high nibble: 0x2 '-', 0x3 digits, 0x4 '@' and capitals, 0x5 '_', 0x6 'b'. */
#define LO_NIBBLES                                                                                 \
        C_DIGIT | C_AT, C_DIGIT | C_UPPER, C_DIGIT | C_UPPER | C_B, C_DIGIT, C_DIGIT, C_DIGIT,     \
            C_DIGIT, C_DIGIT, C_DIGIT, C_DIGIT, C_UPPER, 0, 0, C_DASH, 0, C_UNDER
#define HI_NIBBLES 0, 0, C_DASH, C_DIGIT, C_UPPER | C_AT, C_UNDER, C_B, 0, 0, 0, 0, 0, 0, 0, 0, 0

typedef struct wide_consts {
        __m256i lo, hi, nibble, digit, other;
        uint8_t want;
} wide_consts;

__attribute__((target("avx2"))) static void wide_set(wide_consts *k, uint8_t want)
{
        k->lo = _mm256_setr_epi8(LO_NIBBLES, LO_NIBBLES);
        k->hi = _mm256_setr_epi8(HI_NIBBLES, HI_NIBBLES);
        k->nibble = _mm256_set1_epi8(0x0f);
        k->digit = _mm256_set1_epi8(want & B_DIGIT ? C_DIGIT : 0);
        k->other =
            _mm256_set1_epi8((char)((want & B_SECRET ? C_SECRET : 0) | (want & B_AT ? C_AT : 0)));
        k->want = want;
}

__attribute__((target("avx2"))) static inline block_masks classes32(const char *p,
                                                                    const wide_consts *k)
{
        const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
        const __m256i lo = _mm256_shuffle_epi8(k->lo, _mm256_and_si256(v, k->nibble));
        const __m256i hi =
            _mm256_shuffle_epi8(k->hi, _mm256_and_si256(_mm256_srli_epi16(v, 4), k->nibble));
        const __m256i c = _mm256_and_si256(lo, hi), zero = _mm256_setzero_si256();
        block_masks m;

        /* The class bits are below 0x80: a signed compare with zero finds them. */
        m.digit =
            (uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(_mm256_and_si256(c, k->digit), zero));
        m.other =
            (uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(_mm256_and_si256(c, k->other), zero));
        return m;
}

/* A wide block's classes, looked at as two blocks of BLOCK bytes: the stretch of three
 * blocks that decides whether digits are looked at (see block()) stays 48 bytes, which prose
 * with a number every sentence does not fill. */
__attribute__((target("avx2,popcnt"))) static inline void halves(pass *f, size_t i, block_masks m,
                                                                 window *w)
{
        block(f, i, (block_masks){m.digit & 0xffffu, m.other & 0xffffu}, w, true);
        block(f, i + BLOCK, (block_masks){m.digit >> 16, m.other >> 16}, w, true);
}

__attribute__((target("avx2,popcnt"))) static void scan32(pass *f)
{
        size_t i = 0, n = f->n, shift;
        window w = {{0, 0}, {0, 0}};
        wide_consts k;
        block_masks m;

        wide_set(&k, f->want);
        for (; n - i >= WIDE && f->want; i += WIDE) {
                if (__builtin_expect(f->want != k.want, 0)) /* something found */
                        wide_set(&k, f->want);
                halves(f, i, classes32(f->p + i, &k), &w);
        }
        if (i == n || !f->want)
                return;
        if (f->want != k.want)
                wide_set(&k, f->want);
        shift = WIDE - (n - i);
        m = classes32(f->p + n - WIDE, &k);
        m.digit >>= shift;
        m.other >>= shift;
        halves(f, i, m, &w);
}

#ifdef SIDESPAN_TEST
static bool narrow_only;

void ss_redact_filter_narrow(bool on)
{
        narrow_only = on;
}
#else
#define narrow_only false
#endif

static void scan(pass *f)
{
        if (f->n >= WIDE && !narrow_only && __builtin_cpu_supports("avx2") &&
            __builtin_cpu_supports("popcnt"))
                scan32(f);
        else
                scan16(f);
}
#else
#define scan scan16
#endif
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
                           (kinds & SS_REDACT_PERSONAL ? B_DIGIT | B_AT : 0));
        scan(&f);
        return f.set;
}
