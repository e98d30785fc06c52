/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * UTF-8 well-formedness, since OTLP receivers reject a request holding an
 * ill-formed string: every string the daemon copies out of a frame is made
 * well-formed with these (ill-formed bytes become U+FFFD). Pure functions,
 * any thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ss-buf.h"

#define SS_UTF8_HIGH_BITS 0x8080808080808080ull

/* Beyond this many bytes ss_utf8_is_ascii() reads 16-byte vectors. */
#define SS_UTF8_ASCII_VECTOR 64u

/* ss_utf8_is_ascii() of more than SS_UTF8_ASCII_VECTOR bytes: 64 a step. */
bool ss_utf8_is_ascii_long(const uint8_t *p, size_t n);

/*
 * True when p[0..n) is all ASCII (and so well-formed). Keys and most values are
 * short: up to 16 bytes take two overlapping word loads, no loop.
 */
static inline bool ss_utf8_is_ascii(const uint8_t *p, size_t n)
{
        uint64_t a, b, acc = 0;
        uint32_t x, y;
        size_t i = 0;

        if (n > SS_UTF8_ASCII_VECTOR)
                return ss_utf8_is_ascii_long(p, n);
        if (n < 8) {
                if (n < 4) {
                        for (; i < n; i++)
                                acc |= p[i];
                        return acc < 0x80;
                }
                memcpy(&x, p, 4);
                memcpy(&y, p + n - 4, 4);
                return !((x | y) & 0x80808080u);
        }
        for (; n - i > 16; i += 16) {
                memcpy(&a, p + i, 8);
                memcpy(&b, p + i + 8, 8);
                acc |= a | b;
        }
        /* The last 16 (or, for n < 16, the first and the last 8) again or for the first time. */
        memcpy(&a, p + (n - i > 8 ? i : n - 8), 8);
        memcpy(&b, p + n - 8, 8);
        return !((acc | a | b) & SS_UTF8_HIGH_BITS);
}

/*
 * Length (1-4) of the well-formed UTF-8 sequence at p, of at most n > 0
 * bytes, or 0 when the byte at p does not start one (overlong forms,
 * surrogates and code points past U+10FFFF are ill-formed).
 */
size_t ss_utf8_char_len(const uint8_t *p, size_t n);

/*
 * Measure the sanitised form of p[0..n) cut to at most max bytes on a
 * character boundary. Sets *ret_in to the input bytes it covers and
 * *ret_clean when no byte needs replacing; returns the output length.
 */
size_t ss_utf8_measure(const uint8_t *p, size_t n, size_t max, size_t *ret_in, bool *ret_clean);

/* Write the sanitised form of p[0..n) to dst, which holds what ss_utf8_measure() returned. */
void ss_utf8_write(char *dst, const uint8_t *p, size_t n);

/* True when p[0..n) is well-formed UTF-8 (the slow path of ss_utf8_valid()). */
bool ss_utf8_valid_slow(const char *p, size_t n);

/* True when p[0..n) is well-formed UTF-8. */
static inline bool ss_utf8_valid(const char *p, size_t n)
{
        return ss_utf8_is_ascii((const uint8_t *)p, n) || ss_utf8_valid_slow(p, n);
}

/* Append code point cp (at most U+10FFFF) as UTF-8 to b: 0 or ss_buf_append()'s error. */
int ss_utf8_append(ss_buf *b, uint32_t cp);

/* The four hex digits at p, of a JSON \u escape: true with the code unit in *ret. */
bool ss_utf8_hex4(const char *p, uint32_t *ret);
