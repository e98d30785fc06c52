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

#include "ss-buf.h"

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

/* True when p[0..n) is well-formed UTF-8. */
bool ss_utf8_valid(const char *p, size_t n);

/* Append code point cp (at most U+10FFFF) as UTF-8 to b: 0 or ss_buf_append()'s error. */
int ss_utf8_append(ss_buf *b, uint32_t cp);

/* The four hex digits at p, of a JSON \u escape: true with the code unit in *ret. */
bool ss_utf8_hex4(const char *p, uint32_t *ret);
