/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Deep copies of msgpack values out of a frame into the store of the object
 * that keeps them (a span, a resource), so they outlive the frame. A store
 * is a bump arena (base/arena.h) plus an account of its bytes: live (referenced) and dead
 * (replaced, waiting for the owner to compact). Every string is made
 * well-formed UTF-8 and NUL-terminated (the NUL not counted in size), so
 * encoders may hand it to C string APIs. Loop thread (stores are not
 * thread-safe); never blocks.
 */

#include <errno.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "ss-wire.h"

typedef struct ss_store {
        ss_arena arena;
        uint64_t live; /* bytes of the values the owner references */
        uint64_t dead; /* bytes of values it replaced, still in the store */
} ss_store;

/* An empty store: its first block is allocated by its first copy. */
void ss_store_init(ss_store *st);

/* An empty store filling region[0..size) first, which its owner allocated with it (a span
 * and its first message's bytes: one allocation) and frees after ss_store_free(). */
void ss_store_init_in(ss_store *st, void *region, size_t size);

/* The first region to give a store expected to take about hint bytes of copies (a span's
 * first message): room for a small value or two more, within 128 bytes and 64 KiB. */
size_t ss_store_first_size(size_t hint);

/* Free the blocks (accepts a zeroed store); the store is empty again. */
void ss_store_free(ss_store *st);

/*
 * Copy a string: well-formed UTF-8, cut to max bytes (0: no cut) on a
 * character boundary, NUL-terminated. 1 when it was cut, 0 when whole,
 * -ENOMEM.
 */
int ss_store_str(ss_store *st, const char *p, size_t n, uint32_t max, msgpack_object_str *ret);

/* Copy n bytes the caller found well-formed UTF-8 (ss_utf8_valid()), NUL-terminated: a
 * string checked once is not measured again. 0 or -ENOMEM. */
int ss_store_str_valid(ss_store *st, const char *p, size_t n, msgpack_object_str *ret);

/* n bytes of st's arena, counted live: what every copy takes. NULL when out of memory. */
static inline char *ss_store_bytes(ss_store *st, size_t n)
{
        char *p = ss_arena_alloc_aligned(&st->arena, n, 1);

        if (p)
                st->live += n;
        return p;
}

/* Copy s (well-formed) to d, NUL-terminated: short ones without a call, no byte read from an
 * empty one, whose ptr msgpack-c may leave NULL. The byte after the copy. */
static inline char *ss_store_put(char *d, const msgpack_object_str *s, msgpack_object_str *ret)
{
        ss_copy((uint8_t *)d, s->ptr, s->size);
        d[s->size] = '\0';
        *ret = (msgpack_object_str){.size = s->size, .ptr = d};
        return d + s->size + 1;
}

/* Copy an attribute's key and its string value (val NULL: none) the caller found
 * well-formed UTF-8, each NUL-terminated, into one allocation. Inline: the common pair of a
 * span's map. 0 or -ENOMEM. */
static inline int ss_store_pair_valid(ss_store *st, const msgpack_object_str *key,
                                      const msgpack_object_str *val, msgpack_object_str *ret_key,
                                      msgpack_object_str *ret_val)
{
        char *d = ss_store_bytes(st, key->size + 1ull + (val ? val->size + 1ull : 0));

        if (!d)
                return -ENOMEM;
        d = ss_store_put(d, key, ret_key);
        if (val)
                ss_store_put(d, val, ret_val);
        return 0;
}

/*
 * Copy an attribute value: strings and bins cut to max_len bytes (0: no
 * cut), arrays and maps deeply. Values the wire protocol does not allow (nil,
 * ext, nesting deeper than SS_ATTR_DEPTH_MAX) become nil, which the encoders
 * write as an empty AnyValue; map entries whose key is not a string are left
 * out (nested maps become OTLP kvlists). 1 when something was cut, 0, or
 * -ENOMEM.
 */
int ss_store_value(ss_store *st, msgpack_object *dst, const msgpack_object *src, uint32_t max_len);

/* The bytes a stored value takes in its store: what ss_store_value() added to live. */
uint64_t ss_value_size(const msgpack_object *stored);

/* At least the bytes ss_store_value(src, max_len) would take: a cheap check before a copy
 * that a byte limit may refuse. Any value; ss_value_size_min() is the one to call. */
uint64_t ss_value_size_min_any(const msgpack_object *src, uint32_t max_len);

/* At least the bytes a string of size bytes takes copied under max_len (0: no cut): under a
 * cut, the copy may lose up to 3 more bytes to a character boundary, or to a U+FFFD that no
 * longer fits; without one, repair only grows it. */
static inline uint64_t ss_str_size_min(uint32_t size, uint32_t max_len)
{
        uint32_t len = max_len && size > max_len ? max_len : size;

        if (max_len)
                len = len > 3 ? len - 3 : 0;
        return len + 1ull;
}

/* ss_value_size_min_any(), inline for the common values: a string, or a scalar that takes
 * nothing (nil, bool, an integer, a float64). */
static inline uint64_t ss_value_size_min(const msgpack_object *src, uint32_t max_len)
{
        if (src->type == MSGPACK_OBJECT_STR)
                return ss_str_size_min(src->via.str.size, max_len);
        if (src->type < MSGPACK_OBJECT_STR)
                return 0;
        return ss_value_size_min_any(src, max_len);
}

/* A stored value of bytes is no longer referenced: move it from live to dead. */
static inline void ss_store_release(ss_store *st, uint64_t bytes)
{
        st->live -= bytes;
        st->dead += bytes;
}
