/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What a span says in GenAI terms (TRACE-MODEL.md, the OpenTelemetry GenAI
 * conventions), read alike by the roll-ups (trace/rollup.c) and the metrics
 * (metrics/genai.c): typed attribute reads that refuse what a client got
 * wrong, whether it is a chat, its first token, its duration. Pure
 * functions; loop thread (spans are).
 */

#include <stdbool.h>
#include <stdint.h>

#include "model/span.h"

/* The typed reads below of a value (NULL: absent), out of line. */
const char *ss_attr_value_str(const msgpack_object *o);
bool ss_attr_value_count(const msgpack_object *o, uint64_t *ret);
bool ss_attr_value_amount(const msgpack_object *o, double *ret);

/* The typed reads of key, inline so that a literal key's length is a constant (every span
 * goes through a few of them). */

/* The NUL-terminated string value of key (the store terminates its strings), or NULL when
 * absent, empty or not a string. */
static inline const char *ss_span_attr_str(const ss_span *s, const char *key)
{
        return ss_attr_value_str(ss_attrs_get(&s->attrs, key));
}

/* A count: true with *ret when key holds a non-negative integral number. */
static inline bool ss_span_attr_count(const ss_span *s, const char *key, uint64_t *ret)
{
        return ss_attr_value_count(ss_attrs_get(&s->attrs, key), ret);
}

/* An amount (a cost, a time): true with *ret when key holds a finite number >= 0. */
static inline bool ss_span_attr_amount(const ss_span *s, const char *key, double *ret)
{
        return ss_attr_value_amount(ss_attrs_get(&s->attrs, key), ret);
}

/* Whether s is a chat (model call): gen_ai.operation.name=chat, or a name "chat ...". */
bool ss_span_is_chat(const ss_span *s);

/* The first token's delay in chat span s, from its earliest first-token event at or after
 * its start: true with *ret in ns. */
bool ss_span_first_token(const ss_span *s, uint64_t *ret);

/* End minus start of an ended span, else 0. */
uint64_t ss_span_duration_ns(const ss_span *s);
