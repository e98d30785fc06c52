/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the files of the redactor share: the redactor itself and its
 * patterns (redact.c), the text scan every string goes through
 * (redact-text.c), the prefilter that says which patterns a text can match
 * at all (redact-filter.c) and the JSON scanner that hands the text scan
 * each string value of a document (redact-json.c). Nothing outside policy/
 * includes this, the redactor's tests apart. Loop thread.
 */

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/redact.h"
#include "ss-buf.h"

enum {
        NEED_SECRET = 1u << 0, /* secrets class */
        NEED_DIGIT = 1u << 1,  /* personal class and a chain of digits in the text */
        N_SLOTS = 4,           /* the built-in alternations, by NEED_SECRET | NEED_DIGIT */
        NEED_EMAIL = 1u << 2,  /* personal class and an '@' in the text */
};

/* No built-in pattern matches fewer bytes: the shortest is an e-mail address, "a@b.io"
 * (a phone number takes 9, a JWT 10). A shorter text is looked at by custom patterns only. */
#define SS_REDACT_MIN_BUILTIN 6u

/* The built-in kinds, in order of precedence (redact.c). */
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

#define N_KINDS_MAX (N_BUILTIN + SS_REDACT_MAX_CUSTOM)
#define KIND_NONE   UINT32_MAX
/* Decoded JSON strings and span values are msgpack strings: at most this long. */
#define STR_MAX (UINT32_MAX - 1u)

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
        bool unfiltered; /* tests: every pattern runs on every text (ss_redactor_prefilter()) */
};

/*
 * The scan under every public function (redact-text.c): matches replaced
 * left to right, never overlapping. Counts go to r->pending, taken by
 * ss_redact_commit() once the caller's whole job succeeded. 1 with the text
 * appended to out, 0 with out untouched, or a negative errno from out.
 */
int ss_redact_scan(ss_redactor *r, unsigned kinds, const char *p, size_t n, ss_buf *out,
                   uint32_t *count);

/* True when ss_redact_scan() of the text would find nothing without running a pattern: no
 * custom pattern asked for, and the prefilter rules out every built-in one. Any text
 * holding all of another's bytes in the same order and runs (a JSON document, its strings)
 * rules them out for that one too. */
bool ss_redact_none(ss_redactor *r, unsigned kinds, const char *p, size_t n);

/* Take (keep true) or forget the counts of the scans since the last commit. */
void ss_redact_commit(ss_redactor *r, bool keep);

/*
 * The NEED_* set of built-in patterns that text (n bytes) can match for the
 * classes in kinds (redact-filter.c): a superset of where they match, found
 * in one pass over it. Pure.
 */
unsigned ss_redact_filter(unsigned kinds, const char *p, size_t n);

#ifdef SIDESPAN_TEST
/*
 * Tests only: with on false, the scan runs every built-in pattern of the
 * classes asked for on every text, as if there were no prefilter (nor the
 * memchr() for an '@'): the reference the prefilter's decisions are checked
 * against, since what it lets through must not change a result.
 */
void ss_redactor_prefilter(ss_redactor *r, bool on);

/* Tests only: with on true, the prefilter takes 16 bytes a step (SSE2) even where the
 * processor has AVX2, so that both ways are checked on one machine. */
void ss_redact_filter_narrow(bool on);
#endif
