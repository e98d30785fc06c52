/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Attributes: validating sidespan_attr values and packing them into msgpack
 * map bodies (key, value, key, value ... without the map header, which the
 * wire encoders write with the count). Pure functions on caller-owned
 * buffers: any thread, never block, never lock.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "sidespan.h"
#include "ss-buf.h"
#include "ss-id.h"
#include "ss-wire.h"

/* The length of a string a caller passed without one, 0 for NULL (which the checks refuse). */
static inline size_t ssc_len(const char *s)
{
        return s ? strlen(s) : 0;
}

/* 0 when a is a well-formed attribute (a non-empty key, a known type, no NULL where a value
 * is due), else -EINVAL. */
int ssc_attrs_check(const sidespan_attr *a);

/* ssc_attrs_check() of an attribute of a scalar type (string, integer, double, boolean) whose
 * key is klen bytes and string value vlen, inline: the span API's typed setters check theirs
 * without a call. */
static inline bool ssc_attrs_scalar_ok(const sidespan_attr *a, size_t klen, size_t vlen)
{
        return a->key && klen && klen <= UINT32_MAX &&
               (a->type != SIDESPAN_ATTR_STR || (a->value.s && vlen <= UINT32_MAX));
}

/* The value of an integer, double or boolean attribute, written at p: the byte after it. */
static inline uint8_t *ssc_attrs_put_number(uint8_t *p, const sidespan_attr *a)
{
        if (a->type == SIDESPAN_ATTR_INT)
                return ss_mp_put_int(p, a->value.i);
        if (a->type == SIDESPAN_ATTR_DOUBLE)
                return ss_mp_put_double(p, a->value.d);
        return ss_mp_put_bool(p, a->value.b);
}

/*
 * ssc_attrs_pack_one() for a string, integer, double or boolean whose key is klen bytes and
 * string value vlen (their NULs, if any, not read): the hot path, inline so that the setters
 * of the span API, whose type is a constant, pack without a switch. The key and the value
 * are written with one check for room.
 */
static inline __attribute__((always_inline)) int
ssc_attrs_pack_scalar(ss_buf *b, const sidespan_attr *a, size_t klen, size_t vlen,
                      bool drop_content, bool *ret_added)
{
        size_t need;
        uint8_t *p;
        int r;

        if (!ssc_attrs_scalar_ok(a, klen, vlen))
                return -EINVAL;
        if (drop_content && ss_content_key(a->key, klen)) {
                *ret_added = false;
                return 0;
        }
        if (a->type == SIDESPAN_ATTR_STR) {
                need = SS_MP_HEAD_MAX + vlen;
        } else {
                need = a->type == SIDESPAN_ATTR_BOOL ? 1 : 9;
        }
        need += SS_MP_HEAD_MAX + klen;
        /* The longest heads fit nearly always; the exact size matters only near the maximum. */
        if (need > b->cap - b->len || b->len + need > b->max) {
                need -= 2 * SS_MP_HEAD_MAX - ss_mp_str_head_len(klen) -
                        (a->type == SIDESPAN_ATTR_STR ? ss_mp_str_head_len(vlen) : SS_MP_HEAD_MAX);
                r = ss_buf_reserve(b, need);
                if (r < 0)
                        return r;
        }
        p = ss_mp_put_str(b->data + b->len, a->key, (uint32_t)klen);
        if (a->type == SIDESPAN_ATTR_STR)
                p = ss_mp_put_str(p, a->value.s, (uint32_t)vlen);
        else
                p = ssc_attrs_put_number(p, a);
        b->len = (size_t)(p - b->data);
        *ret_added = true;
        return 0;
}

/*
 * Append one attribute to the map body b, validating it first; content keys are skipped
 * (0 with *ret_added false) when drop_content. On failure b is unchanged: -EINVAL for a
 * malformed attribute, -ENOBUFS/-ENOMEM when b is full.
 */
int ssc_attrs_pack_one(ss_buf *b, const sidespan_attr *a, bool drop_content, bool *ret_added);

/*
 * Append n attributes to the map body b and give the number added in *ret_count. A
 * malformed one (-EINVAL) leaves b as it was. One that does not fit: with skipped non-NULL
 * it is left out and *skipped incremented (also when a later attribute then fails), with
 * skipped NULL b is restored and -ENOBUFS/-ENOMEM returned.
 */
int ssc_attrs_pack(ss_buf *b, const sidespan_attr *attrs, size_t n, bool drop_content,
                   uint64_t *skipped, uint32_t *ret_count);
