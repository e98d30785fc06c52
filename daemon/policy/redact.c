/* SPDX-License-Identifier: MIT */
#include "policy/redact.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/redact-internal.h"
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
 * prefix for the secrets, see redact-filter.c): the alternation for each
 * combination is compiled once, up front, so most strings run only the
 * digit patterns, or nothing.
 * E-mail is not in the alternation: any letter may start an address, which
 * would make every word a start. It runs on its own, anchored where the
 * local part before each '@' begins, so it costs a memchr() when there is
 * no '@'.
 */

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

/* An operator's pattern that backtracks without end gives up: no match from there. */
#define CUSTOM_MATCH_LIMIT 1000000u

static const char *const json_keys[] = {"gen_ai.input.messages", "gen_ai.output.messages",
                                        "gen_ai.system_instructions"};

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

#ifdef SIDESPAN_TEST
void ss_redactor_prefilter(ss_redactor *r, bool on)
{
        r->unfiltered = !on;
}
#endif

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

/* ---- spans -------------------------------------------------------------------------------- */

/* Redact one stored string in place: the new text stored, the old bytes released. */
static int redact_str(ss_redactor *r, unsigned kinds, ss_store *st, msgpack_object_str *str,
                      bool json, uint32_t *count)
{
        msgpack_object_str n;
        int e;

        if (!str->size)
                return 0;
        /* Most values hold nothing a pattern could match: the prefilter says so without the
         * scan's machinery (a JSON document asks it itself, minding its escapes). */
        if (!json && ss_redact_none(r, kinds, str->ptr, str->size))
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

        for (uint32_t i = 0; e == 0 && i < a->n; i++) {
                msgpack_object *v = &a->kv[i].val;

                /* Most values are strings or numbers: neither is a call into redact_value(). */
                if (v->type == MSGPACK_OBJECT_STR)
                        e = redact_str(r, kinds, st, &v->via.str, is_json_key(&a->kv[i].key),
                                       count);
                else if (v->type == MSGPACK_OBJECT_ARRAY || v->type == MSGPACK_OBJECT_MAP)
                        e = redact_value(r, kinds, st, v, is_json_key(&a->kv[i].key), count);
        }
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
