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
#include <string.h>

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
 * Free what zone holds for the next frame's decoding. Most span frames take nothing from
 * it (their attributes stay bytes): a zone whose first chunk is whole and that has no
 * finalizer is left alone. A zone that merely looks so after growing keeps its chunks until
 * the next clearing: memory held a frame longer, nothing read from it.
 */
static inline void ss_mp_zone_clear(msgpack_zone *zone)
{
        if (zone->chunk_list.free != zone->chunk_size ||
            zone->finalizer_array.tail != zone->finalizer_array.array)
                msgpack_zone_clear(zone);
}

/*
 * 0 when data is exactly one msgpack object within the limits, -EBADMSG
 * otherwise: for bytes handed to msgpack-c. Linear, no allocation.
 */
int ss_msgpack_check(const uint8_t *data, size_t len);

/* ss_msgpack_check() with another bound on the number of objects (a state file holds
 * more than a frame may). */
int ss_msgpack_check_max(const uint8_t *data, size_t len, uint32_t max_objects);

/* Big-endian integer of n (0, 1, 2, 4 or 8) bytes at p: one load each, no loop. */
static inline uint64_t ss_mp_be(const uint8_t *p, size_t n)
{
        uint64_t v8;
        uint32_t v4;
        uint16_t v2;

        switch (n) {
        case 1:
                return p[0];
        case 2:
                memcpy(&v2, p, 2);
                return __builtin_bswap16(v2);
        case 4:
                memcpy(&v4, p, 4);
                return __builtin_bswap32(v4);
        case 8:
                memcpy(&v8, p, 8);
                return __builtin_bswap64(v8);
        default:
                return 0;
        }
}

/*
 * A reader of one frame's root array, field by field, for the frames every span sends:
 * scalars read where they are, with no object made for them; any other value decoded as
 * ss_msgpack_decode() would, within the same limits (the root array's elements are counted
 * against SS_WIRE_MAX_OBJECTS when its header is read, as ss_msgpack_decode() counts
 * them). Each read returns false, with the reader unusable, for anything but the usual
 * encoding of what it reads: the caller then decodes the frame with ss_msgpack_decode(),
 * whose answer stands. The reads of scalars are inline: a span's frames have a dozen.
 */
typedef struct ss_mp_reader {
        const uint8_t *p, *end;
        msgpack_zone *zone;
        uint32_t objects; /* left to the limit */
        int err;          /* what made the last read false: -EBADMSG or -ENOMEM */
} ss_mp_reader;

/* A reader of data[0..len): every frame has one, inline. */
static inline void ss_mp_reader_init(ss_mp_reader *r, const uint8_t *data, size_t len,
                                     msgpack_zone *zone)
{
        /* The root is one object; each container takes its elements from the rest. */
        *r = (ss_mp_reader){
            .p = data, .end = data + len, .zone = zone, .objects = SS_WIRE_MAX_OBJECTS - 1};
}

/*
 * A container's n objects (elements, or keys and values), its header read: false when the
 * bytes left could not hold them, one byte each at least, or when they would take the frame
 * past its objects; else counted off. Checked once for all of them, before anything is read
 * or allocated for them.
 */
static inline bool ss_mp_take_objects(ss_mp_reader *r, uint64_t n)
{
        if (n > (uint64_t)(r->end - r->p) || n > r->objects)
                return false;
        r->objects -= (uint32_t)n;
        return true;
}

/* The root array's header (fixarray or array 16): its element count. */
static inline bool ss_mp_read_root(ss_mp_reader *r, uint32_t *ret_n)
{
        uint64_t n;

        if (r->p >= r->end)
                return false;
        if ((*r->p & 0xf0) == 0x90) {
                n = *r->p++ & 0x0fu;
        } else if (*r->p == 0xdc && r->end - r->p >= 3) {
                n = ss_mp_be(r->p + 1, 2);
                r->p += 3;
        } else {
                return false;
        }
        /* As the decoder checks a root array (depth 0). */
        if (!ss_mp_take_objects(r, n))
                return false;
        *ret_n = (uint32_t)n;
        return true;
}

/* An unsigned integer (positive fixint, uint 8 to 64): always inline, where the compiler
 * would call it for a time. */
static inline __attribute__((always_inline)) bool ss_mp_read_uint(ss_mp_reader *r, uint64_t *ret)
{
        size_t n;
        uint8_t c;

        if (r->p >= r->end)
                return false;
        c = *r->p;
        if (c <= 0x7f) {
                r->p++;
                *ret = c;
                return true;
        }
        if (c < 0xcc || c > 0xcf)
                return false;
        n = (size_t)1 << (c - 0xcc);
        if ((size_t)(r->end - r->p) < 1 + n)
                return false;
        *ret = ss_mp_be(r->p + 1, n);
        r->p += 1 + n;
        return true;
}

/* Whether the next object is nil: true, and read, when it is. */
static inline bool ss_mp_read_nil(ss_mp_reader *r)
{
        if (r->p >= r->end || *r->p != 0xc0)
                return false;
        r->p++;
        return true;
}

/* A bin 8 of exactly len bytes: where its bytes are. */
static inline bool ss_mp_read_bin(ss_mp_reader *r, uint32_t len, const uint8_t **ret)
{
        if (r->end - r->p < 2 || r->p[0] != 0xc4 || r->p[1] != len ||
            (size_t)(r->end - r->p) < 2 + (size_t)len)
                return false;
        *ret = r->p + 2;
        r->p += 2 + len;
        return true;
}

/* A string (fixstr, str 8, 16 or 32), or nil when nullable (*ret_len 0, *ret NULL). */
static inline bool ss_mp_read_str(ss_mp_reader *r, bool nullable, const char **ret,
                                  uint32_t *ret_len)
{
        uint64_t n;
        size_t head;
        uint8_t c;

        if (r->p >= r->end)
                return false;
        c = *r->p;
        if (c == 0xc0 && nullable) {
                r->p++;
                *ret = NULL;
                *ret_len = 0;
                return true;
        }
        if ((c & 0xe0) == 0xa0) {
                head = 1;
                n = c & 0x1fu;
        } else if (c >= 0xd9 && c <= 0xdb) {
                head = 1 + ((size_t)1 << (c - 0xd9));
                if ((size_t)(r->end - r->p) < head)
                        return false;
                n = ss_mp_be(r->p + 1, head - 1);
        } else {
                return false;
        }
        if (n > (uint64_t)(r->end - r->p) - head)
                return false;
        *ret = (const char *)r->p + head;
        *ret_len = (uint32_t)n;
        r->p += head + n;
        return true;
}

/* Nil (true, *ret NULL), or any object decoded into the zone (*ret points to it there). */
bool ss_mp_read_object(ss_mp_reader *r, const msgpack_object **ret);

/* ss_mp_read_into() of what it does not read inline, at depth (the nesting of the object
 * read: containers deeper than SS_WIRE_DEPTH_MAX are refused). */
bool ss_mp_read_any(ss_mp_reader *r, unsigned depth, msgpack_object *o);

/* One object into *o, as ss_msgpack_decode() would make it: strings and bins point into the
 * input, arrays and maps are allocated in the zone. The commonest values of a span's
 * attributes (a string, an unsigned integer, a float 64) inline. false for bad input, or when
 * the zone cannot grow (r->err says which). */
static inline bool ss_mp_read_into(ss_mp_reader *r, unsigned depth, msgpack_object *o)
{
        const uint8_t *p = r->p;
        size_t n, left;
        uint8_t c;

        if (__builtin_expect(p >= r->end, 0))
                return ss_mp_read_any(r, depth, o);
        c = *p;
        left = (size_t)(r->end - p);
        if (c <= 0x7f) {
                r->p = p + 1;
                o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
                o->via.u64 = c;
                return true;
        }
        if ((c & 0xe0) == 0xa0 && left > (size_t)(c & 0x1f)) {
                r->p = p + 1 + (c & 0x1f);
                o->type = MSGPACK_OBJECT_STR;
                o->via.str.size = c & 0x1fu;
                o->via.str.ptr = (const char *)p + 1;
                return true;
        }
        /* A content string (str 8 or 16), a uint 8 to 32 (token counts), a float 64. */
        if ((c == 0xd9 || c == 0xda) && left >= 3) {
                n = c == 0xd9 ? p[1] : ss_mp_be(p + 1, 2);
                p += c == 0xd9 ? 2 : 3;
                if (n <= (size_t)(r->end - p)) {
                        r->p = p + n;
                        o->type = MSGPACK_OBJECT_STR;
                        o->via.str.size = (uint32_t)n;
                        o->via.str.ptr = (const char *)p;
                        return true;
                }
        } else if (c >= 0xcc && c <= 0xce && left > ((size_t)1 << (c - 0xcc))) {
                n = (size_t)1 << (c - 0xcc);
                r->p = p + 1 + n;
                o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
                o->via.u64 = ss_mp_be(p + 1, n);
                return true;
        } else if (c == 0xcb && left >= 9) {
                uint64_t v = ss_mp_be(p + 1, 8);

                r->p = p + 9;
                o->type = MSGPACK_OBJECT_FLOAT64;
                memcpy(&o->via.f64, &v, sizeof(v));
                return true;
        }
        return ss_mp_read_any(r, depth, o);
}

/*
 * A map left as its bytes in the frame: n pairs at p[0..len), found well-formed when the
 * frame was read (ss_wire_decode_zone()), each read with ss_mp_read_into() by whoever applies
 * it, nested values decoded into zone. The frame and the zone outlive the message.
 */
typedef struct ss_mp_map {
        const uint8_t *p;
        uint32_t len, n;
        msgpack_zone *zone;
} ss_mp_map;

/* A reader of m's pairs. */
static inline void ss_mp_map_reader(const ss_mp_map *m, ss_mp_reader *r)
{
        ss_mp_reader_init(r, m->p, m->len, m->zone);
}

/* Every byte was read. */
static inline bool ss_mp_reader_done(const ss_mp_reader *r)
{
        return r->p == r->end;
}
