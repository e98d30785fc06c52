/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Deep copies of msgpack values out of a frame into the msgpack_zone of the
 * object that keeps them (a span, a resource), so they outlive the frame.
 * What is written once lives in the zone and goes with it. Every string is
 * made well-formed UTF-8 and NUL-terminated (the NUL not counted in size),
 * so encoders may hand it to C string APIs. Loop thread (zones are not
 * thread-safe); never blocks.
 */

#include <msgpack.h>
#include <stdint.h>

/* Copy a string: well-formed UTF-8, cut to max bytes (0: no cut) on a character
 * boundary, NUL-terminated. 0 or -ENOMEM. */
int ss_zone_str(msgpack_zone *z, const char *p, size_t n, uint32_t max, msgpack_object_str *ret);

/*
 * Copy an attribute value: strings and bins cut to max_len bytes (0: no
 * cut), arrays and maps deeply. Values the wire protocol does not allow (nil,
 * ext, nesting deeper than SS_ATTR_DEPTH_MAX) become nil, which the encoders
 * write as an empty AnyValue; map entries whose key is not a string are left
 * out (nested maps become OTLP kvlists). 0 or -ENOMEM.
 */
int ss_zone_value(msgpack_zone *z, msgpack_object *dst, const msgpack_object *src,
                  uint32_t max_len);
