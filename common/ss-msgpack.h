/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * msgpack from a peer: checked against the wire's limits and decoded in one
 * pass. msgpack-c allocates a container's declared count before it reads
 * one element, so a 5-byte header could ask it for 2^32 objects; these
 * refuse a count the bytes left could not hold (one byte an element at
 * least), nesting past SS_WIRE_DEPTH_MAX and more than SS_WIRE_MAX_OBJECTS
 * objects. Pure functions; any thread.
 */

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting of a whole frame: the message array and an attribute value at SS_ATTR_DEPTH_MAX
 * inside events and maps leave room under it; deeper frames are refused as bad msgpack. */
#define SS_WIRE_DEPTH_MAX 32u
/* Objects in one frame (each key, value and element counts): a span of 128 attributes with
 * arrays is some hundreds; a million tiny objects would cost the loop tens of ms to unpack. */
#define SS_WIRE_MAX_OBJECTS 65536u

/*
 * Decode data[0..len), which must be exactly one msgpack object within the
 * limits, into *ret: the msgpack_object tree msgpack_unpack() would give
 * (strings, bins and exts point into data; arrays and maps are allocated in
 * zone). 0, -EBADMSG, or -ENOMEM when the zone cannot grow. Linear.
 */
int ss_msgpack_decode(const uint8_t *data, size_t len, msgpack_zone *zone, msgpack_object *ret);

/*
 * 0 when data is exactly one msgpack object within the limits, -EBADMSG
 * otherwise: for bytes handed to msgpack-c. Linear, no allocation.
 */
int ss_msgpack_check(const uint8_t *data, size_t len);

/* ss_msgpack_check() with another bound on the number of objects (a state file holds
 * more than a frame may). */
int ss_msgpack_check_max(const uint8_t *data, size_t len, uint32_t max_objects);

/*
 * A reader of one frame's root array, field by field, for the frames every span sends:
 * scalars read where they are, with no object made for them; any other value decoded as
 * ss_msgpack_decode() would, within the same limits (the root array's elements are counted
 * against SS_WIRE_MAX_OBJECTS when its header is read, as ss_msgpack_decode() counts
 * them). Each read returns false, with the reader unusable, for anything but the usual
 * encoding of what it reads: the caller then decodes the frame with ss_msgpack_decode(),
 * whose answer stands.
 */
typedef struct ss_mp_reader {
        const uint8_t *p, *end;
        msgpack_zone *zone;
        uint32_t objects; /* left to the limit */
} ss_mp_reader;

void ss_mp_reader_init(ss_mp_reader *r, const uint8_t *data, size_t len, msgpack_zone *zone);

/* The root array's header (fixarray or array 16): its element count. */
bool ss_mp_read_root(ss_mp_reader *r, uint32_t *ret_n);

/* An unsigned integer (positive fixint, uint 8 to 64). */
bool ss_mp_read_uint(ss_mp_reader *r, uint64_t *ret);

/* A bin 8 of exactly len bytes: where its bytes are. */
bool ss_mp_read_bin(ss_mp_reader *r, uint32_t len, const uint8_t **ret);

/* A string (fixstr, str 8, 16 or 32), or nil when nullable (*ret_len 0, *ret NULL). */
bool ss_mp_read_str(ss_mp_reader *r, bool nullable, const char **ret, uint32_t *ret_len);

/* Nil (true, *ret NULL), or any object decoded into the zone (*ret points to it there). */
bool ss_mp_read_object(ss_mp_reader *r, const msgpack_object **ret);

/* Every byte was read. */
static inline bool ss_mp_reader_done(const ss_mp_reader *r)
{
        return r->p == r->end;
}
