/* SPDX-License-Identifier: MIT */
#include "policy/redact.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ss-macro.h"

/*
 * The built-in patterns run as one alternation compiled with JIT, so a
 * string is scanned once whatever the number of kinds; each alternative is
 * one capturing group, and the group that took part names the kind. At the
 * same start PCRE2 takes the first alternative that matches, so the table
 * is in order of precedence: a PEM block before anything inside it, "Bearer
 * <jwt>" before the JWT, sk-ant- before sk-. Every pattern either starts
 * with a literal or is anchored by a lookbehind at the start of its run, so
 * a scan stays linear in the length of the string.
 *
 * Which alternatives a string can match at all is decided first with a
 * cheap byte look (a digit for SSNs, cards and phones; a secret's literal
 * prefix for the secrets, see secret_at()): the alternation for each
 * combination is compiled once, up front, so most strings run only the
 * digit patterns, or nothing.
 * E-mail is not in the alternation: any letter may start an address, which
 * would make every word a start. It runs on its own, anchored where the
 * local part before each '@' begins, so it costs a memchr() when there is
 * no '@'.
 */

enum {
        NEED_SECRET = 1u << 0, /* secrets class */
        NEED_DIGIT = 1u << 1,  /* personal class and a chain of digits in the text */
        N_SLOTS = 4,
};

/* The built-in kinds, in order of precedence (see above). */
enum {
        K_PRIVATE_KEY,
        K_BEARER,
        K_JWT,
        K_ANTHROPIC_KEY,
        K_OPENAI_KEY,
        K_GITHUB_TOKEN,
        K_SLACK_TOKEN,
        K_AWS_KEY,
        K_EMAIL,
        K_SSN,
        K_CARD,
        K_PHONE,
        N_BUILTIN,
};

typedef struct builtin {
        const char *kind;
        unsigned need;
        const char *re;
} builtin;

/* Characters around a token that mean it is part of a longer word. */
#define TOKEN_BEFORE "(?<![A-Za-z0-9_-])"

static const builtin builtins[] = {
    [K_PRIVATE_KEY] =
        {"private_key", NEED_SECRET,
         /* A block cut short (a value cut to its limit) is still a key: to the end. */
         "-----BEGIN[ A-Z0-9]*PRIVATE KEY-----[\\s\\S]*?"
         "(?:-----END[ A-Z0-9]*PRIVATE KEY-----|\\z)"},
    [K_BEARER] = {"bearer", NEED_SECRET,
                  /* A credential has a digit or is long: "Bearer authentication" is prose. */
                  "(?<![A-Za-z0-9_])(?i:bearer)[ \\t]+"
                  "(?:(?=[A-Za-z._~+/-]*[0-9])[A-Za-z0-9._~+/-]{8,}|[A-Za-z0-9._~+/-]{20,})=*"},
    [K_JWT] = {"jwt", NEED_SECRET,
               TOKEN_BEFORE "eyJ[A-Za-z0-9_-]++\\.eyJ[A-Za-z0-9_-]++\\.[A-Za-z0-9_-]*+"},
    [K_ANTHROPIC_KEY] = {"anthropic_key", NEED_SECRET, TOKEN_BEFORE "sk-ant-[A-Za-z0-9_-]{20,}"},
    [K_OPENAI_KEY] =
        {"openai_key", NEED_SECRET,
         /* Keys are random base62 and hold a digit; "sk-learn-documentation" does not. */
         TOKEN_BEFORE "sk-(?:proj-|svcacct-|admin-)?(?=[A-Za-z_-]*[0-9])[A-Za-z0-9_-]{20,}"},
    [K_GITHUB_TOKEN] =
        {"github_token", NEED_SECRET,
         "(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"},
    [K_SLACK_TOKEN] = {"slack_token", NEED_SECRET, TOKEN_BEFORE "xox[baprs]-[A-Za-z0-9-]{10,}"},
    [K_AWS_KEY] = {"aws_key", NEED_SECRET,
                   "(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"},
    [K_EMAIL] =
        {"email", 0, /* apart: see above */
         /* Starts only where a local part starts, so a long word is read once. */
         "(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@"
         "(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}(?![A-Za-z0-9-])"},
    [K_SSN] = {"ssn", NEED_DIGIT,
               "(?<![0-9-])(?!000|666|9)[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}(?![0-9]|-[0-9])"},
    [K_CARD] = {"card", NEED_DIGIT,
                /* Networks' numbers start with 2-6: timestamps and ids starting 1 are not tried. */
                "(?<![0-9])[2-6][0-9](?:[ -]?[0-9]){11,17}(?![0-9])"},
    [K_PHONE] = {"phone", NEED_DIGIT,
                 /* E.164, optionally grouped; North-American with separators, never a bare run. */
                 "(?<![A-Za-z0-9_+])(?:\\+[1-9](?:[ .-]?[0-9]){7,14}(?![0-9])|"
                 "(?:1[ .-]?)?(?:\\([2-9][0-9]{2}\\)[ .-]?|[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}"
                 "(?![0-9]|[.-][0-9]))"},
};

#define N_KINDS_MAX (N_BUILTIN + SS_REDACT_MAX_CUSTOM)
#define KIND_NONE   UINT32_MAX
/* An operator's pattern that backtracks without end gives up: no match from there. */
#define CUSTOM_MATCH_LIMIT 1000000u
/* Decoded JSON strings and span values are msgpack strings: at most this long. */
#define STR_MAX        (UINT32_MAX - 1u)
#define JSON_DEPTH_MAX 64u

static const char *const json_keys[] = {"gen_ai.input.messages", "gen_ai.output.messages",
                                        "gen_ai.system_instructions"};

struct ss_redactor {
        pcre2_code *slot[N_SLOTS];             /* built-in alternation by NEED_* set; [0] unused */
        uint8_t slot_kind[N_SLOTS][N_BUILTIN]; /* capture group - 1 -> kind */
        pcre2_code *email;
        pcre2_code *custom[SS_REDACT_MAX_CUSTOM];
        unsigned custom_kind[SS_REDACT_MAX_CUSTOM];
        size_t n_custom;
        pcre2_match_data *md;
        pcre2_match_context *custom_ctx;
        bool hash;
        uint8_t key[16];
        char kinds[N_KINDS_MAX][SS_REDACT_KIND_MAX_LEN + 1];
        unsigned n_kinds;
        uint64_t counts[N_KINDS_MAX];
        uint32_t pending[N_KINDS_MAX]; /* of the call under way: counted once it succeeds */
        uint32_t n_pending;
        uint64_t spans;
        uint64_t match_errors;
        int jit_error;   /* the first failed pcre2_jit_compile(): 0 when every pattern has JIT */
        ss_buf decoded;  /* one JSON string, unescaped */
        ss_buf redacted; /* that string redacted */
        ss_buf value;    /* one span value redacted */
};

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

/* ---- compiling ---------------------------------------------------------------------------- */

static bool kind_valid(const char *k)
{
        size_t n = k ? strlen(k) : 0;

        if (n == 0 || n > SS_REDACT_KIND_MAX_LEN)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
                        return false;
        return true;
}

/* The index of kind k, added when new. */
static unsigned kind_index(ss_redactor *r, const char *k)
{
        for (unsigned i = 0; i < r->n_kinds; i++)
                if (strcmp(r->kinds[i], k) == 0)
                        return i;
        snprintf(r->kinds[r->n_kinds], sizeof(r->kinds[0]), "%s", k);
        return r->n_kinds++;
}

/*
 * Compile with JIT when it is there. A failed JIT compile leaves the
 * interpreter, which pcre2_match() then uses: same matches, only slower.
 * That is what happens under MemoryDenyWriteExecute=yes, where the kernel
 * refuses JIT its writable and executable memory (PCRE2_ERROR_NOMEMORY).
 */
static pcre2_code *compile(ss_redactor *r, const char *re, uint32_t opts, const char *what,
                           char *err, size_t err_size, int *ret)
{
        PCRE2_UCHAR msg[160];
        PCRE2_SIZE off;
        int code;
        pcre2_code *c =
            pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, opts, &code, &off, NULL);

        if (!c) {
                pcre2_get_error_message(code, msg, sizeof(msg));
                if (err && err_size)
                        snprintf(err, err_size, "redaction pattern \"%s\": %s at offset %zu", what,
                                 (const char *)msg, (size_t)off);
                *ret = code == PCRE2_ERROR_NOMEMORY ? -ENOMEM : -EINVAL;
                return NULL;
        }
        code = pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
        if (code < 0 && r->jit_error == 0)
                r->jit_error = code;
        return c;
}

/* The alternation of the built-ins whose need is in set. */
static int compile_slot(ss_redactor *r, unsigned set, char *err, size_t err_size)
{
        size_t len = 1, g = 0;
        char *re;
        int ret = 0;

        for (size_t i = 0; i < N_BUILTIN; i++)
                len += strlen(builtins[i].re) + 4;
        re = malloc(len);
        if (!re)
                return -ENOMEM;
        re[0] = '\0';
        for (size_t i = 0; i < N_BUILTIN; i++) {
                if (!(builtins[i].need & set))
                        continue;
                strcat(re, g ? "|(" : "(");
                strcat(re, builtins[i].re);
                strcat(re, ")");
                r->slot_kind[set][g++] = (uint8_t)i;
        }
        r->slot[set] = compile(r, re, 0, "built-in", err, err_size, &ret);
        free(re);
        return ret;
}

static int redactor_init(ss_redactor *r, const ss_redact_config *cfg, char *err, size_t err_size)
{
        int ret = 0;

        for (size_t i = 0; i < N_BUILTIN; i++)
                (void)kind_index(r, builtins[i].kind);
        for (unsigned set = 1; set < N_SLOTS && ret == 0; set++)
                ret = compile_slot(r, set, err, err_size);
        if (ret == 0)
                r->email = compile(r, builtins[K_EMAIL].re, 0, "email", err, err_size, &ret);
        for (size_t i = 0; ret == 0 && cfg && i < cfg->n_custom; i++) {
                const ss_redact_pattern *p = &cfg->custom[i];

                if (!kind_valid(p->kind) || !p->regex) {
                        if (err && err_size)
                                snprintf(err, err_size,
                                         "redaction pattern \"%s\": the kind must be 1 to %u "
                                         "of [a-z0-9_], with a regex",
                                         p->kind ? p->kind : "", SS_REDACT_KIND_MAX_LEN);
                        return -EINVAL;
                }
                r->custom[i] = compile(r, p->regex, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, p->kind,
                                       err, err_size, &ret);
                r->custom_kind[i] = kind_index(r, p->kind);
                r->n_custom = i + 1;
        }
        if (ret < 0)
                return ret;
        r->md = pcre2_match_data_create(N_BUILTIN + 1, NULL);
        r->custom_ctx = pcre2_match_context_create(NULL);
        if (!r->md || !r->custom_ctx)
                return -ENOMEM;
        pcre2_set_match_limit(r->custom_ctx, CUSTOM_MATCH_LIMIT);
        return 0;
}

int ss_redactor_new(const ss_redact_config *cfg, ss_redactor **ret, char *err, size_t err_size)
{
        ss_redactor *r;
        int e;

        if (cfg && cfg->n_custom > SS_REDACT_MAX_CUSTOM) {
                if (err && err_size)
                        snprintf(err, err_size, "more than %u redaction patterns",
                                 SS_REDACT_MAX_CUSTOM);
                return -EINVAL;
        }
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        ss_buf_init(&r->decoded, STR_MAX);
        ss_buf_init(&r->redacted, STR_MAX);
        ss_buf_init(&r->value, STR_MAX);
        e = redactor_init(r, cfg, err, err_size);
        if (e < 0) {
                ss_redactor_free(r);
                return e;
        }
        if (cfg && cfg->hash) {
                r->hash = true;
                memcpy(r->key, cfg->hash_key, sizeof(r->key));
        }
        *ret = r;
        return 0;
}

int ss_redactor_jit(const ss_redactor *r, char *why, size_t why_size)
{
        if (r->jit_error == 0)
                return 1;
        if (r->jit_error == PCRE2_ERROR_NOMEMORY) /* PCRE2 says "no more memory" */
                snprintf(why, why_size,
                         "no writable and executable memory, as under "
                         "MemoryDenyWriteExecute=yes");
        else
                pcre2_get_error_message(r->jit_error, (PCRE2_UCHAR *)why, why_size);
        return 0;
}

void ss_redactor_free(ss_redactor *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < N_SLOTS; i++)
                pcre2_code_free(r->slot[i]);
        pcre2_code_free(r->email);
        for (size_t i = 0; i < r->n_custom; i++)
                pcre2_code_free(r->custom[i]);
        pcre2_match_data_free(r->md);
        pcre2_match_context_free(r->custom_ctx);
        ss_buf_free(&r->decoded);
        ss_buf_free(&r->redacted);
        ss_buf_free(&r->value);
        free(r);
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

static unsigned slot_for(unsigned kinds, const char *p, size_t n)
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

/*
 * The scan under every public function: matches replaced left to right, never overlapping.
 * Counts go to r->pending, taken by commit() once the caller's whole job succeeded. 1 with
 * the text appended to out, 0 with out untouched, or a negative errno from out.
 */
static int redact_text(ss_redactor *r, unsigned kinds, const char *p, size_t n, ss_buf *out,
                       uint32_t *count)
{
        cand c[SRC_CUSTOM + SS_REDACT_MAX_CUSTOM];
        size_t pos = 0, base = out->len, sources = SRC_CUSTOM;
        uint32_t found = 0;
        const cand *b;
        unsigned set;
        bool email;
        int e = 0;

        if (n == 0)
                return 0;
        set = slot_for(kinds, p, n);
        email = kinds & SS_REDACT_PERSONAL && memchr(p, '@', n);
        if (kinds & SS_REDACT_CUSTOM)
                sources += r->n_custom;
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

/* Take (keep true) or forget the counts of the calls since the last commit. */
static void commit(ss_redactor *r, bool keep)
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
        int e = redact_text(r, kinds, p, n, out, count);

        commit(r, e > 0);
        return e;
}

/* ---- JSON --------------------------------------------------------------------------------- */

/* One document being copied: everything before copied is in out already (only once a string
 * needed redacting: a document without one is never copied). */
typedef struct jscan {
        ss_redactor *r;
        unsigned kinds;
        const char *p;
        size_t n, i, copied;
        ss_buf *out;
        uint32_t found;
} jscan;

#define J_INVALID 1 /* not JSON (or deeper than JSON_DEPTH_MAX): redact as text */

static void skip_ws(jscan *j)
{
        while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\n' ||
                               j->p[j->i] == '\r'))
                j->i++;
}

static int hex4(const char *p, unsigned *ret)
{
        unsigned v = 0;

        for (int k = 0; k < 4; k++) {
                char ch = p[k];

                v <<= 4;
                if (ch >= '0' && ch <= '9')
                        v |= (unsigned)(ch - '0');
                else if (ch >= 'a' && ch <= 'f')
                        v |= (unsigned)(ch - 'a' + 10);
                else if (ch >= 'A' && ch <= 'F')
                        v |= (unsigned)(ch - 'A' + 10);
                else
                        return -1;
        }
        *ret = v;
        return 0;
}

static int put_utf8(ss_buf *b, unsigned cp)
{
        uint8_t u[4];
        size_t n;

        if (cp < 0x80) {
                u[0] = (uint8_t)cp;
                n = 1;
        } else if (cp < 0x800) {
                u[0] = (uint8_t)(0xc0 | cp >> 6);
                u[1] = (uint8_t)(0x80 | (cp & 0x3f));
                n = 2;
        } else if (cp < 0x10000) {
                u[0] = (uint8_t)(0xe0 | cp >> 12);
                u[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
                u[2] = (uint8_t)(0x80 | (cp & 0x3f));
                n = 3;
        } else {
                u[0] = (uint8_t)(0xf0 | cp >> 18);
                u[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
                u[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
                u[3] = (uint8_t)(0x80 | (cp & 0x3f));
                n = 4;
        }
        return ss_buf_append(b, u, n);
}

/* The escape at p[0] == '\\' (n bytes left) decoded into b (NULL: only checked); the bytes it
 * took, or -J_INVALID, or a negative errno. A lone surrogate decodes to U+FFFD. */
static int unescape(const char *p, size_t n, ss_buf *b)
{
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *x = n >= 2 ? memchr(from, p[1], sizeof(from) - 1) : NULL;
        unsigned cp, lo;
        int used = 6;

        if (x)
                return b ? (ss_buf_append(b, &to[x - from], 1) < 0 ? -ENOMEM : 2) : 2;
        if (n < 6 || p[1] != 'u' || hex4(p + 2, &cp) < 0)
                return -J_INVALID;
        if (cp >= 0xd800 && cp <= 0xdbff && n >= 12 && p[6] == '\\' && p[7] == 'u' &&
            hex4(p + 8, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                used = 12;
        } else if (cp >= 0xd800 && cp <= 0xdfff) {
                cp = 0xfffd;
        }
        if (b && put_utf8(b, cp) < 0)
                return -ENOMEM;
        return used;
}

/* Append text as the body of a JSON string. */
static int put_json_str(ss_buf *out, const char *p, size_t n)
{
        size_t run = 0;
        int e = ss_buf_append(out, "\"", 1);

        for (size_t i = 0; e == 0 && i < n; i++) {
                unsigned char ch = (unsigned char)p[i];
                const char *esc = ch == '"'    ? "\\\""
                                  : ch == '\\' ? "\\\\"
                                  : ch == '\n' ? "\\n"
                                  : ch == '\r' ? "\\r"
                                  : ch == '\t' ? "\\t"
                                               : NULL;

                if (!esc && ch >= 0x20)
                        continue;
                e = ss_buf_append(out, p + run, i - run);
                if (e == 0)
                        e = esc ? ss_buf_append(out, esc, 2) : ss_buf_printf(out, "\\u%04x", ch);
                run = i + 1;
        }
        if (e == 0)
                e = ss_buf_append(out, p + run, n - run);
        return e == 0 ? ss_buf_append(out, "\"", 1) : e;
}

/* The string's text, unescaped when it has escapes (into r->decoded). */
static int json_text(jscan *j, size_t s, size_t e, bool escaped, const char **ret, size_t *len)
{
        ss_buf *d = &j->r->decoded;

        *ret = j->p + s;
        *len = e - s;
        if (!escaped)
                return 0;
        ss_buf_reset(d);
        for (size_t i = s; i < e;) {
                size_t run = i;
                int used;

                while (i < e && j->p[i] != '\\')
                        i++;
                if (ss_buf_append(d, j->p + run, i - run) < 0)
                        return -ENOMEM;
                if (i == e)
                        break;
                used = unescape(j->p + i, e - i, d);
                if (used < 0)
                        return used;
                i += (size_t)used;
        }
        *ret = (const char *)d->data;
        *len = d->len;
        return 0;
}

/* A string value redacted into out when anything in it matched. */
static int json_redact_str(jscan *j, size_t s, size_t e, bool escaped)
{
        ss_buf *red = &j->r->redacted;
        const char *t;
        size_t len;
        int rc = json_text(j, s, e, escaped, &t, &len);

        if (rc < 0)
                return rc;
        ss_buf_reset(red);
        rc = redact_text(j->r, j->kinds, t, len, red, &j->found);
        if (rc <= 0)
                return rc;
        rc = ss_buf_append(j->out, j->p + j->copied, s - 1 - j->copied);
        if (rc == 0)
                rc = put_json_str(j->out, (const char *)red->data, red->len);
        j->copied = e + 1;
        return rc < 0 ? rc : 0;
}

/* Bytes that end a run of plain string characters: the quote, an escape, a control. */
#define STOP4(c) [(c)] = true, [(c) + 1] = true, [(c) + 2] = true, [(c) + 3] = true
static const bool json_stop[256] = {
    STOP4(0x00), STOP4(0x04), STOP4(0x08), STOP4(0x0c),  STOP4(0x10),
    STOP4(0x14), STOP4(0x18), STOP4(0x1c), ['"'] = true, ['\\'] = true,
};
#undef STOP4

/* A string at j->i (its opening quote); redacted when it is a value. */
static int json_string(jscan *j, bool value)
{
        const char *p = j->p;
        size_t s = ++j->i, i = s, n = j->n;
        bool escaped = false;

        for (;;) {
                unsigned char ch;
                int used;

                /* Plain characters, the most of any text, without a test each. */
                while (i < n && !json_stop[(unsigned char)p[i]])
                        i++;
                if (i >= n)
                        break;
                ch = (unsigned char)p[i];
                if (ch == '"') {
                        j->i = i + 1;
                        return value ? json_redact_str(j, s, i, escaped) : 0;
                }
                if (ch < 0x20)
                        break;
                used = unescape(p + i, n - i, NULL);
                if (used < 0)
                        return used;
                escaped = true;
                i += (size_t)used;
        }
        j->i = i;
        return -J_INVALID;
}

static size_t digits(jscan *j)
{
        size_t s = j->i;

        while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
                j->i++;
        return j->i - s;
}

static int json_number(jscan *j)
{
        if (j->i < j->n && j->p[j->i] == '-')
                j->i++;
        if (j->i < j->n && j->p[j->i] == '0')
                j->i++;
        else if (!digits(j))
                return -J_INVALID;
        if (j->i < j->n && j->p[j->i] == '.') {
                j->i++;
                if (!digits(j))
                        return -J_INVALID;
        }
        if (j->i < j->n && (j->p[j->i] == 'e' || j->p[j->i] == 'E')) {
                j->i++;
                if (j->i < j->n && (j->p[j->i] == '+' || j->p[j->i] == '-'))
                        j->i++;
                if (!digits(j))
                        return -J_INVALID;
        }
        return 0;
}

static int json_literal(jscan *j, const char *lit)
{
        size_t n = strlen(lit);

        if (j->n - j->i < n || memcmp(j->p + j->i, lit, n) != 0)
                return -J_INVALID;
        j->i += n;
        return 0;
}

static int json_value(jscan *j, unsigned depth);

/* An array or object at j->i: its members, separated by ',', closed by close. */
static int json_container(jscan *j, unsigned depth, char close)
{
        bool object = close == '}';
        int e;

        if (depth >= JSON_DEPTH_MAX)
                return -J_INVALID;
        j->i++;
        skip_ws(j);
        if (j->i < j->n && j->p[j->i] == close) {
                j->i++;
                return 0;
        }
        for (;;) {
                if (object) {
                        if (j->i >= j->n || j->p[j->i] != '"')
                                return -J_INVALID;
                        if ((e = json_string(j, false)) < 0)
                                return e;
                        skip_ws(j);
                        if (j->i >= j->n || j->p[j->i++] != ':')
                                return -J_INVALID;
                }
                if ((e = json_value(j, depth + 1)) < 0)
                        return e;
                skip_ws(j);
                if (j->i >= j->n)
                        return -J_INVALID;
                if (j->p[j->i] == close) {
                        j->i++;
                        return 0;
                }
                if (j->p[j->i++] != ',')
                        return -J_INVALID;
                skip_ws(j);
        }
}

static int json_value(jscan *j, unsigned depth)
{
        skip_ws(j);
        if (j->i >= j->n)
                return -J_INVALID;
        switch (j->p[j->i]) {
        case '{':
                return json_container(j, depth, '}');
        case '[':
                return json_container(j, depth, ']');
        case '"':
                return json_string(j, true);
        case 't':
                return json_literal(j, "true");
        case 'f':
                return json_literal(j, "false");
        case 'n':
                return json_literal(j, "null");
        default:
                return json_number(j);
        }
}

int ss_redact_json(ss_redactor *r, unsigned kinds, const char *p, size_t n, ss_buf *out,
                   uint32_t *count)
{
        jscan j = {.r = r, .kinds = kinds, .p = p, .n = n, .out = out};
        size_t base = out->len;
        int e = json_value(&j, 0);

        if (e == 0) {
                skip_ws(&j);
                if (j.i != n)
                        e = -J_INVALID;
        }
        if (e == 0 && j.found)
                e = ss_buf_append(out, p + j.copied, n - j.copied);
        if (e < 0) {
                out->len = base;
                commit(r, false);
                return e == -J_INVALID ? ss_redact_text(r, kinds, p, n, out, count) : e;
        }
        commit(r, true);
        *count += j.found;
        return j.found ? 1 : 0;
}

/* ---- spans -------------------------------------------------------------------------------- */

/* Redact one stored string in place: the new text stored, the old bytes released. */
static int redact_str(ss_redactor *r, unsigned kinds, ss_store *st, msgpack_object_str *str,
                      bool json, uint32_t *count)
{
        msgpack_object_str n;
        int e;

        if (!str->size)
                return 0;
        ss_buf_reset(&r->value);
        e = json ? ss_redact_json(r, kinds, str->ptr, str->size, &r->value, count)
                 : ss_redact_text(r, kinds, str->ptr, str->size, &r->value, count);
        if (e <= 0)
                return e < 0 ? -ENOMEM : 0;
        if (ss_store_str(st, (const char *)r->value.data, r->value.len, 0, &n) < 0)
                return -ENOMEM;
        /* What ss_value_size() says a stored string takes: its bytes and the NUL. */
        ss_store_release(st, str->size + 1ull);
        *str = n;
        return 0;
}

static int redact_value(ss_redactor *r, unsigned kinds, ss_store *st, msgpack_object *o, bool json,
                        uint32_t *count)
{
        int e = 0;

        switch (o->type) {
        case MSGPACK_OBJECT_STR:
                return redact_str(r, kinds, st, &o->via.str, json, count);
        case MSGPACK_OBJECT_ARRAY:
                for (uint32_t i = 0; e == 0 && i < o->via.array.size; i++)
                        e = redact_value(r, kinds, st, &o->via.array.ptr[i], json, count);
                return e;
        case MSGPACK_OBJECT_MAP: /* a kvlist: its keys are names, left alone */
                for (uint32_t i = 0; e == 0 && i < o->via.map.size; i++)
                        e = redact_value(r, kinds, st, &o->via.map.ptr[i].val, json, count);
                return e;
        default:
                return 0;
        }
}

static bool is_json_key(const msgpack_object *k)
{
        for (size_t i = 0; i < SS_ELEMENTSOF(json_keys); i++)
                if (k->via.str.size == strlen(json_keys[i]) &&
                    memcmp(k->via.str.ptr, json_keys[i], k->via.str.size) == 0)
                        return true;
        return false;
}

static int redact_attrs(ss_redactor *r, unsigned kinds, ss_store *st, ss_attrs *a, uint32_t *count)
{
        int e = 0;

        for (uint32_t i = 0; e == 0 && i < a->n; i++)
                e = redact_value(r, kinds, st, &a->kv[i].val, is_json_key(&a->kv[i].key), count);
        return e;
}

/* sidespan.redacted_count: n more than the span says already. */
static int add_count(ss_span *s, uint32_t n)
{
        static const char key[] = "sidespan.redacted_count";
        const msgpack_object_str k = {.size = sizeof(key) - 1, .ptr = key};
        const msgpack_object *old = ss_attrs_get(&s->attrs, key);
        msgpack_object v = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = n};

        if (old && old->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                v.via.u64 = old->via.u64 > UINT64_MAX - n ? UINT64_MAX : old->via.u64 + n;
        return ss_attrs_set(&s->store, &s->attrs, &k, &v, NULL, NULL);
}

int ss_redact_span(ss_redactor *r, unsigned kinds, ss_span *s)
{
        uint32_t count = 0;
        int e = redact_attrs(r, kinds, &s->store, &s->attrs, &count);

        for (uint32_t i = 0; e == 0 && i < s->n_events; i++)
                e = redact_attrs(r, kinds, &s->store, &s->events[i].attrs, &count);
        if (e == 0)
                e = redact_str(r, kinds, &s->store, &s->status_msg, false, &count);
        if (e == 0 && count)
                e = add_count(s, count);
        if (e < 0)
                return -ENOMEM;
        if (count)
                r->spans++;
        return count > INT32_MAX ? INT32_MAX : (int)count;
}

void ss_redactor_counters(const void *redactor, ss_counters *out)
{
        const ss_redactor *r = redactor;

        for (unsigned i = 0; i < r->n_kinds; i++)
                if (r->counts[i])
                        ss_counters_add(out, "redaction.", r->kinds[i], r->counts[i]);
        ss_counters_add(out, "redaction.", "spans", r->spans);
        if (r->match_errors)
                ss_counters_add(out, "redaction.", "match_errors", r->match_errors);
}
