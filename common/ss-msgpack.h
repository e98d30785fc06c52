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
