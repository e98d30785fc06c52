/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Pattern redaction of the string values a span carries: secrets (API keys
 * and tokens, bearer credentials, PEM private keys, JWTs), personal data
 * (e-mail addresses, US SSNs, Luhn-valid payment card numbers, phone
 * numbers) and the operator's own PCRE2 patterns, each match replaced by
 * "[REDACTED:<kind>]" or, with a hash key, "[REDACTED:<kind>:<8 hex>]" (a
 * keyed hash of the matched text, so equal values stay correlatable without
 * being revealed). Patterns are compiled once, with JIT where available.
 *
 * ss_redact_span() works on a span the caller owns alone (the policy stage's
 * copy for one exporter view). Loop thread only (one match data per
 * redactor); never blocks.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/counters.h"
#include "model/span.h"
#include "ss-buf.h"

/* Classes of patterns, switched on per exporter view. */
enum {
        SS_REDACT_SECRETS = 1u << 0,
        SS_REDACT_PERSONAL = 1u << 1,
        SS_REDACT_CUSTOM = 1u << 2,
};

#define SS_REDACT_MAX_CUSTOM   32u /* [redaction] pattern entries */
#define SS_REDACT_KIND_MAX_LEN 32u /* a custom kind name: [a-z0-9_], 1..32 bytes */

typedef struct ss_redact_pattern {
        const char *kind;  /* appears in the replacement: [REDACTED:<kind>] */
        const char *regex; /* PCRE2, UTF mode */
} ss_redact_pattern;

typedef struct ss_redact_config {
        ss_redact_pattern custom[SS_REDACT_MAX_CUSTOM];
        size_t n_custom;
        bool hash;            /* replacements carry a keyed hash of the match */
        uint8_t hash_key[16]; /* the key, when hash */
} ss_redact_config;

typedef struct ss_redactor ss_redactor;

/*
 * Compile the built-in and custom patterns. 0, -ENOMEM, or -EINVAL with a
 * message naming the bad pattern (its kind, the PCRE2 error and offset) in
 * err.
 */
int ss_redactor_new(const ss_redact_config *cfg, ss_redactor **ret, char *err, size_t err_size);
void ss_redactor_free(ss_redactor *r); /* accepts NULL */

/* 1 when every pattern runs JIT-compiled; 0 when some run in PCRE2's interpreter (no JIT
 * in the library, or no executable memory for it), with PCRE2's reason in why. */
int ss_redactor_jit(const ss_redactor *r, char *why, size_t why_size);

/*
 * Redact text (n bytes, UTF-8) for the classes in kinds: 1 and the redacted
 * text appended to out when anything matched (*count increased by the
 * matches), 0 when nothing did (out untouched), -ENOMEM (or -ENOBUFS when out
 * would pass its maximum; out is then as it was).
 */
int ss_redact_text(ss_redactor *r, unsigned kinds, const char *p, size_t n, ss_buf *out,
                   uint32_t *count);

/*
 * The same inside a JSON document (the chat message attributes): every
 * string value (not key) is redacted and re-escaped, the document stays
 * valid JSON with its structure unchanged. Text that is not valid JSON is
 * redacted as text. Same returns as ss_redact_text().
 */
int ss_redact_json(ss_redactor *r, unsigned kinds, const char *p, size_t n, ss_buf *out,
                   uint32_t *count);

/*
 * Redact every string value of s: attribute values (arrays and kvlists
 * nested in them), event attributes, the status message; the values of
 * gen_ai.input.messages, gen_ai.output.messages and
 * gen_ai.system_instructions through ss_redact_json(). When anything was
 * redacted, sets the int attribute sidespan.redacted_count (added to one the
 * span already carries). Returns the redactions made, or -ENOMEM (the span
 * is then partly redacted: the caller drops it).
 */
int ss_redact_span(ss_redactor *r, unsigned kinds, ss_span *s);

/* Redactions made, "redaction.<kind>" for each kind with any, and "redaction.spans"; an
 * ss_counters_fn. */
void ss_redactor_counters(const void *redactor, ss_counters *out);
