/* SPDX-License-Identifier: MIT */
/*
 * The span API's attributes after start: each packed once, as it is set, into the span's
 * SPAN_END body (span.h). The typed setters' common case (a short key, a short string or a
 * number, room in the buffer) is written without a call, so that a setter needs no stack
 * frame; the rest, and sidespan_span_set_attr(), go through ssc_attrs_pack_*() (attrs.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "attrs.h"
#include "client.h"
#include "span.h"
#include "ss-buf.h"
#include "ss-wire.h"

/* Pack a into the span's SPAN_END body. scalar marks a type the inline packer takes, its key
 * klen bytes and a string value vlen; ssc_attrs_pack_one() measures the other types. */
static inline int set_attr(sidespan_span *s, const sidespan_attr *a, size_t klen, size_t vlen,
                           bool scalar)
{
        bool added;
        int r;

        if (!s)
                return 0;
        /* The typed setters' attribute stays in registers (its type a constant) unless it
         * escapes to an out-of-line call: check a scalar inline. */
        if (!s->live)
                return scalar ? (ssc_attrs_scalar_ok(a, klen, vlen) ? 0 : -EINVAL)
                              : ssc_attrs_check(a);
        if (s->n_attrs == UINT32_MAX)
                return -ENOBUFS;
        r = scalar ? ssc_attrs_pack_scalar(&s->end, a, klen, vlen, s->drop_content, &added)
                   : ssc_attrs_pack_one(&s->end, a, s->drop_content, &added);
        if (r == -ENOBUFS || r == -ENOMEM)
                ssc_count(&s->client->n.attrs_dropped, 1);
        if (r < 0)
                return r;
        s->n_attrs += added;
        return 0;
}

SIDESPAN_EXPORT int sidespan_span_set_attr(sidespan_span *s, const sidespan_attr *a)
{
        return set_attr(s, a, 0, 0, false);
}

/* The most set_fast() writes: a key of up to 31 bytes and a string value of up to 31, each
 * with a 1-byte head (a number takes at most 9 bytes). */
#define SET_FAST_ROOM 64u

/*
 * The typed setters' common case, with set_attr()'s checks: a live span that keeps content,
 * a key of 1 to 31 bytes, a string value of at most 31 bytes or a number, and room to spare.
 * Written without a call, so that a setter taking it needs no stack frame: some 15
 * instructions a call fewer, 60 a span of an agent's run. false: set_attr() takes it.
 * a->type is a constant in every caller.
 */
static inline __attribute__((always_inline)) bool set_fast(sidespan_span *s, const sidespan_attr *a,
                                                           size_t klen, size_t vlen)
{
        uint8_t *p;

        if (!s || !s->live || s->drop_content || !a->key || klen - 1 >= 31 ||
            s->n_attrs == UINT32_MAX)
                return false;
        if (a->type == SIDESPAN_ATTR_STR && (!a->value.s || vlen >= 32))
                return false;
        /* A span's buffer never holds more than its max (span_alloc() sees to it): room in
         * the allocation is room under the maximum. */
        if (s->end.cap - s->end.len < SET_FAST_ROOM)
                return false;
        p = s->end.data + s->end.len;
        *p++ = (uint8_t)(0xa0 | klen);
        ss_copy_small(p, a->key, klen);
        p += klen;
        if (a->type == SIDESPAN_ATTR_STR) {
                *p++ = (uint8_t)(0xa0 | vlen);
                ss_copy_small(p, a->value.s, vlen);
                p += vlen;
        } else {
                p = ssc_attrs_put_number(p, a);
        }
        s->end.len = (size_t)(p - s->end.data);
        s->n_attrs++;
        return true;
}

/* The rest of each typed setter: out of line, its arguments in registers, so that the fast
 * path's caller keeps none of its own. */

static __attribute__((noinline)) int set_str_slow(sidespan_span *s, const char *key, size_t key_len,
                                                  const char *value, size_t value_len)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_STR, .value.s = value};

        return set_attr(s, &a, key_len, value_len, true);
}

static __attribute__((noinline)) int set_int_slow(sidespan_span *s, const char *key, size_t key_len,
                                                  int64_t value)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_INT, .value.i = value};

        return set_attr(s, &a, key_len, 0, true);
}

static __attribute__((noinline)) int set_double_slow(sidespan_span *s, const char *key,
                                                     size_t key_len, double value)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_DOUBLE, .value.d = value};

        return set_attr(s, &a, key_len, 0, true);
}

static __attribute__((noinline)) int set_bool_slow(sidespan_span *s, const char *key,
                                                   size_t key_len, bool value)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_BOOL, .value.b = value};

        return set_attr(s, &a, key_len, 0, true);
}

/* The scalar setters with the lengths given, which sidespan.h's inline setters call. */

SIDESPAN_EXPORT int sidespan_span_set_str_n(sidespan_span *s, const char *key, size_t key_len,
                                            const char *value, size_t value_len)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_STR, .value.s = value};

        if (set_fast(s, &a, key_len, value_len))
                return 0;
        return set_str_slow(s, key, key_len, value, value_len);
}

SIDESPAN_EXPORT int sidespan_span_set_int_n(sidespan_span *s, const char *key, size_t key_len,
                                            int64_t value)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_INT, .value.i = value};

        if (set_fast(s, &a, key_len, 0))
                return 0;
        return set_int_slow(s, key, key_len, value);
}

SIDESPAN_EXPORT int sidespan_span_set_double_n(sidespan_span *s, const char *key, size_t key_len,
                                               double value)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_DOUBLE, .value.d = value};

        if (set_fast(s, &a, key_len, 0))
                return 0;
        return set_double_slow(s, key, key_len, value);
}

SIDESPAN_EXPORT int sidespan_span_set_bool_n(sidespan_span *s, const char *key, size_t key_len,
                                             bool value)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_BOOL, .value.b = value};

        if (set_fast(s, &a, key_len, 0))
                return 0;
        return set_bool_slow(s, key, key_len, value);
}

/*
 * The scalar setters as functions, for callers built without sidespan.h's inline ones and
 * for bindings that look symbols up. They measure the strings here. Their names are in
 * parentheses so that the header's macros of the same names do not expand.
 */

SIDESPAN_EXPORT int(sidespan_span_set_str)(sidespan_span *s, const char *key, const char *value)
{
        return sidespan_span_set_str_n(s, key, ssc_len(key), value, ssc_len(value));
}

SIDESPAN_EXPORT int(sidespan_span_set_int)(sidespan_span *s, const char *key, int64_t value)
{
        return sidespan_span_set_int_n(s, key, ssc_len(key), value);
}

SIDESPAN_EXPORT int(sidespan_span_set_double)(sidespan_span *s, const char *key, double value)
{
        return sidespan_span_set_double_n(s, key, ssc_len(key), value);
}

SIDESPAN_EXPORT int(sidespan_span_set_bool)(sidespan_span *s, const char *key, bool value)
{
        return sidespan_span_set_bool_n(s, key, ssc_len(key), value);
}

SIDESPAN_EXPORT int sidespan_span_set_str_array(sidespan_span *s, const char *key,
                                                const char *const *v, size_t n)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_STR_ARRAY};

        a.value.strs.v = v;
        a.value.strs.n = n;
        return sidespan_span_set_attr(s, &a);
}

SIDESPAN_EXPORT int sidespan_span_set_int_array(sidespan_span *s, const char *key, const int64_t *v,
                                                size_t n)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_INT_ARRAY};

        a.value.ints.v = v;
        a.value.ints.n = n;
        return sidespan_span_set_attr(s, &a);
}

SIDESPAN_EXPORT int sidespan_span_set_double_array(sidespan_span *s, const char *key,
                                                   const double *v, size_t n)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_DOUBLE_ARRAY};

        a.value.doubles.v = v;
        a.value.doubles.n = n;
        return sidespan_span_set_attr(s, &a);
}
