/* SPDX-License-Identifier: MIT */
/*
 * The text scan: each source of matches (the built-in alternation, e-mail,
 * each custom pattern) keeps its next match as a candidate; the earliest
 * goes first and is replaced, and the sources look again from where it
 * ended.
 */
#include "policy/redact.h"

#include <errno.h>
#include <string.h>

#include "policy/redact-internal.h"

/* ---- SipHash-2-4 (Aumasson, Bernstein), for the correlatable tags ------------------------ */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
        do {                                                                                       \
                v0 += v1;                                                                          \
                v1 = ROTL(v1, 13);                                                                 \
                v1 ^= v0;                                                                          \
                v0 = ROTL(v0, 32);                                                                 \
                v2 += v3;                                                                          \
                v3 = ROTL(v3, 16);                                                                 \
                v3 ^= v2;                                                                          \
                v0 += v3;                                                                          \
                v3 = ROTL(v3, 21);                                                                 \
                v3 ^= v0;                                                                          \
                v2 += v1;                                                                          \
                v1 = ROTL(v1, 17);                                                                 \
                v1 ^= v2;                                                                          \
                v2 = ROTL(v2, 32);                                                                 \
        } while (0)

static uint64_t le64(const uint8_t *p, size_t n)
{
        uint64_t v = 0;

        for (size_t i = 0; i < n; i++)
                v |= (uint64_t)p[i] << (8 * i);
        return v;
}

static uint64_t siphash24(const uint8_t key[16], const uint8_t *m, size_t n)
{
        uint64_t k0 = le64(key, 8), k1 = le64(key + 8, 8);
        uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
        uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
        size_t i;
        uint64_t b;

        for (i = 0; i + 8 <= n; i += 8) {
                uint64_t w = le64(m + i, 8);

                v3 ^= w;
                SIPROUND;
                SIPROUND;
                v0 ^= w;
        }
        b = ((uint64_t)n << 56) | le64(m + i, n - i);
        v3 ^= b;
        SIPROUND;
        SIPROUND;
        v0 ^= b;
        v2 ^= 0xff;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- matching ----------------------------------------------------------------------------- */

/* A match of one source (the built-ins, or one custom pattern) at or after the scan. */
typedef struct cand {
        size_t s, e;
        unsigned kind; /* KIND_NONE: the source has no match left */
        bool fresh;
} cand;

static bool luhn(const char *p, size_t n)
{
        unsigned sum = 0, k = 0;

        for (size_t i = n; i-- > 0;) {
                unsigned d;

                if (p[i] < '0' || p[i] > '9')
                        continue;
                d = (unsigned)(p[i] - '0');
                if (k++ & 1)
                        d = d * 2 > 9 ? d * 2 - 9 : d * 2;
                sum += d;
        }
        return sum % 10 == 0;
}

/* One pcre2_match(): what it returned (the highest group set + 1), or 0 for no match. */
static int match_at(ss_redactor *r, const pcre2_code *c, pcre2_match_context *ctx, uint32_t opts,
                    const char *p, size_t n, size_t from)
{
        int rc = pcre2_match(c, (PCRE2_SPTR)p, n, from, opts, r->md, ctx);

        if (rc == PCRE2_ERROR_NOMATCH)
                return 0;
        if (rc < 0) { /* match or JIT stack limit: that source gives up on this text */
                r->match_errors++;
                return 0;
        }
        return rc ? rc : 1; /* 0: the ovector is too small for the groups, but it matched */
}

/* The next built-in match from from; a card number failing Luhn is passed over. The
 * alternatives do not nest, so the one that matched is the highest group set. */
static void next_builtin(ss_redactor *r, unsigned set, const char *p, size_t n, size_t from,
                         cand *c)
{
        int rc;

        while ((rc = match_at(r, r->slot[set], NULL, 0, p, n, from)) >= 2) {
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
                unsigned k = r->slot_kind[set][rc - 2];

                *c = (cand){.s = ov[0], .e = ov[1], .kind = k, .fresh = true};
                if (k != K_CARD || luhn(p + ov[0], ov[1] - ov[0]))
                        return;
                from = ov[1];
        }
        *c = (cand){.kind = KIND_NONE, .fresh = true};
}

static bool local_char(char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               ch == '.' || ch == '_' || ch == '%' || ch == '+' || ch == '-';
}

/* The next address from from: for each '@', the pattern anchored where the run of local-part
 * characters before it begins (a run begun before from cannot match from there on, as the
 * pattern's lookbehind says). */
static void next_email(ss_redactor *r, const char *p, size_t n, size_t from, cand *c)
{
        const char *at;

        *c = (cand){.kind = KIND_NONE, .fresh = true};
        for (size_t i = from; i < n && (at = memchr(p + i, '@', n - i)); i = (size_t)(at - p) + 1) {
                size_t a = (size_t)(at - p), s = a;

                while (s > 0 && local_char(p[s - 1]))
                        s--;
                if (s < a && s >= from && match_at(r, r->email, NULL, PCRE2_ANCHORED, p, n, s)) {
                        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);

                        *c = (cand){.s = ov[0], .e = ov[1], .kind = K_EMAIL, .fresh = true};
                        return;
                }
        }
}

static void next_custom(ss_redactor *r, size_t i, const char *p, size_t n, size_t from, cand *c)
{
        PCRE2_SIZE *ov;

        *c = (cand){.kind = KIND_NONE, .fresh = true};
        if (!match_at(r, r->custom[i], r->custom_ctx, PCRE2_NOTEMPTY, p, n, from))
                return;
        ov = pcre2_get_ovector_pointer(r->md);
        *c = (cand){.s = ov[0], .e = ov[1], .kind = r->custom_kind[i], .fresh = true};
}

/* The candidate that goes first: earliest, then longest, then the built-ins. */
static const cand *best_of(const cand *c, size_t n)
{
        const cand *b = NULL;

        for (size_t i = 0; i < n; i++) {
                if (c[i].kind == KIND_NONE)
                        continue;
                if (!b || c[i].s < b->s || (c[i].s == b->s && c[i].e - c[i].s > b->e - b->s))
                        b = &c[i];
        }
        return b;
}

static int put_replacement(ss_redactor *r, ss_buf *out, unsigned kind, const char *m, size_t n)
{
        uint64_t h;

        if (!r->hash)
                return ss_buf_printf(out, "[REDACTED:%s]", r->kinds[kind]);
        /* The tag: the first four bytes of the 64-bit hash, as SipHash writes it (LE). */
        h = siphash24(r->key, (const uint8_t *)m, n);

        return ss_buf_printf(out, "[REDACTED:%s:%02x%02x%02x%02x]", r->kinds[kind],
                             (unsigned)(h & 0xff), (unsigned)(h >> 8 & 0xff),
                             (unsigned)(h >> 16 & 0xff), (unsigned)(h >> 24 & 0xff));
}

/* The sources of matches, each with its candidate in c[]: the built-in alternation, e-mail,
 * then the custom patterns. */
enum { SRC_BUILTIN, SRC_EMAIL, SRC_CUSTOM };

/*
 * Fill in (again) every source in use not fresh or whose match starts before pos. pos is where the
 * last replacement ended: the text from there is matched as a subject of its own, so that a
 * lookbehind does not see the replaced match as part of a word ("a@b.co+c@d.co" is two
 * addresses, and a second pass over the output finds nothing the first one left).
 */
static void refresh(ss_redactor *r, unsigned set, bool email, cand *c, size_t sources,
                    const char *p, size_t n, size_t pos)
{
        for (size_t i = 0; i < sources; i++) {
                if ((i == SRC_BUILTIN && !set) || (i == SRC_EMAIL && !email))
                        continue;
                if (c[i].fresh && (c[i].kind == KIND_NONE || c[i].s >= pos))
                        continue;
                if (i == SRC_BUILTIN)
                        next_builtin(r, set, p + pos, n - pos, 0, &c[i]);
                else if (i == SRC_EMAIL)
                        next_email(r, p + pos, n - pos, 0, &c[i]);
                else
                        next_custom(r, i - SRC_CUSTOM, p + pos, n - pos, 0, &c[i]);
                if (c[i].kind != KIND_NONE) {
                        c[i].s += pos;
                        c[i].e += pos;
                }
        }
}

/* What can match in p[0..n): the NEED_* set of built-in alternatives, whether an e-mail
 * address can, and the number of sources to run (SRC_CUSTOM plus the custom patterns asked
 * for). */
static size_t what_can_match(ss_redactor *r, unsigned kinds, const char *p, size_t n, unsigned *set,
                             bool *email)
{
        if (!r->unfiltered && n < SS_REDACT_MIN_BUILTIN) {
                /* Many values (a status, a flag, an id) are this short. */
                *set = 0;
                *email = false;
        } else if (!r->unfiltered) {
                unsigned need = ss_redact_filter(kinds, p, n);

                *set = need & (NEED_SECRET | NEED_DIGIT);
                *email = need & NEED_EMAIL;
        } else {
                *set = (kinds & SS_REDACT_SECRETS ? NEED_SECRET : 0) |
                       (kinds & SS_REDACT_PERSONAL ? NEED_DIGIT : 0);
                *email = kinds & SS_REDACT_PERSONAL;
        }
        return SRC_CUSTOM + (kinds & SS_REDACT_CUSTOM ? r->n_custom : 0);
}

bool ss_redact_none(ss_redactor *r, unsigned kinds, const char *p, size_t n)
{
        unsigned set;
        bool email;

        return what_can_match(r, kinds, p, n, &set, &email) == SRC_CUSTOM && !set && !email;
}

int ss_redact_scan(ss_redactor *r, unsigned kinds, const char *p, size_t n, ss_buf *out,
                   uint32_t *count)
{
        cand c[SRC_CUSTOM + SS_REDACT_MAX_CUSTOM];
        size_t pos = 0, base = out->len, sources;
        uint32_t found = 0;
        const cand *b;
        unsigned set;
        bool email;
        int e = 0;

        if (n == 0)
                return 0;
        sources = what_can_match(r, kinds, p, n, &set, &email);
        if (!set && !email && sources == SRC_CUSTOM)
                return 0;
        for (size_t i = 0; i < sources; i++)
                c[i] = (cand){.kind = KIND_NONE, .fresh = false};
        for (;;) {
                refresh(r, set, email, c, sources, p, n, pos);
                b = best_of(c, sources);
                if (!b)
                        break;
                e = ss_buf_append(out, p + pos, b->s - pos);
                if (e == 0)
                        e = put_replacement(r, out, b->kind, p + b->s, b->e - b->s);
                if (e < 0) {
                        out->len = base;
                        return e;
                }
                r->pending[b->kind]++;
                r->n_pending++;
                found++;
                pos = b->e;
                /* Every source looks again from the new boundary: one whose lookbehind saw
                 * the replaced text may match right at it now. */
                for (size_t i = 0; i < sources; i++)
                        c[i].fresh = false;
        }
        if (!found)
                return 0;
        e = ss_buf_append(out, p + pos, n - pos);
        if (e < 0) {
                out->len = base;
                return e;
        }
        *count += found;
        return 1;
}

void ss_redact_commit(ss_redactor *r, bool keep)
{
        if (!r->n_pending)
                return;
        for (unsigned i = 0; i < r->n_kinds; i++) {
                if (keep)
                        r->counts[i] += r->pending[i];
                r->pending[i] = 0;
        }
        r->n_pending = 0;
}

int ss_redact_text(ss_redactor *r, unsigned kinds, const char *p, size_t n, ss_buf *out,
                   uint32_t *count)
{
        int e = ss_redact_scan(r, kinds, p, n, out, count);

        ss_redact_commit(r, e > 0);
        return e;
}
