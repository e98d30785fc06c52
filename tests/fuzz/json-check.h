/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A strict JSON (RFC 8259) and UTF-8 (RFC 3629) checker for the fuzz targets,
 * written apart from the daemon's encoder and UTF-8 code so that it does not
 * share their mistakes. Pure functions, any thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when p[0..n) is well-formed UTF-8: no overlong forms, surrogates or code points past
 * U+10FFFF. */
bool fz_utf8_valid(const uint8_t *p, size_t n);

/*
 * True when p[0..n) is exactly one JSON value, optionally surrounded by
 * whitespace, in well-formed UTF-8, with no raw control character in a
 * string and no \u escape of a lone surrogate. Otherwise false with *ret_err
 * (may be NULL) saying what was wrong.
 */
bool fz_json_valid(const uint8_t *p, size_t n, const char **ret_err);
