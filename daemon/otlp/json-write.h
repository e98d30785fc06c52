/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The scalars of OTLP/JSON, written once for both JSON writers: the one from
 * the span model (json.c) and the one from protobuf-c messages (pb-json.c).
 * Strings are repaired to well-formed UTF-8, ids are lowercase hex, 64-bit
 * integers are quoted decimals, doubles the shortest form that reads back,
 * bytes base64. Internal to otlp/. Pure functions: any thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ss-buf.h"

typedef struct ss_jw {
        ss_buf *b;
        int err; /* first error; later writes are skipped */
} ss_jw;

/* Most pieces are a few bytes: copy straight in while there is room. */
static inline void ss_jw_put(ss_jw *w, const void *p, size_t n)
{
        ss_buf *b = w->b;

        if (w->err)
                return;
        if (b->cap - b->len >= n) {
                memcpy(b->data + b->len, p, n);
                b->len += n;
                return;
        }
        w->err = ss_buf_append(b, p, n);
}

static inline void ss_jw_lit(ss_jw *w, const char *s)
{
        ss_jw_put(w, s, strlen(s));
}

/* A JSON string of p[0..n): well-formed UTF-8 passes through, each ill-formed byte becomes
 * U+FFFD. */
void ss_jw_str(ss_jw *w, const char *p, size_t n);

/* A JSON string of 2*len lowercase hex digits (trace and span ids). */
void ss_jw_hex(ss_jw *w, const uint8_t *p, size_t len);

/* Decimal digits of v, quoted when the mapping wants a string (64-bit integers). */
void ss_jw_u64(ss_jw *w, uint64_t v, bool quoted);
void ss_jw_i64(ss_jw *w, int64_t v, bool quoted);

/* The shortest of %.15g..%.17g that reads back as d; NaN and the infinities as protobuf
 * JSON's strings. */
void ss_jw_dbl(ss_jw *w, double d);

/* A JSON string of the base64 (RFC 4648, padded) of p[0..n). */
void ss_jw_base64(ss_jw *w, const uint8_t *p, size_t n);
