/* SPDX-License-Identifier: MIT */
/*
 * Attributes: the checks a sidespan_attr passes before it is packed, and the
 * packing itself. Used by the span API (span and event attributes) and by the
 * options (resource attributes of HELLO).
 */
#include <errno.h>
#include <string.h>

#include "attrs.h"

int ssc_attrs_check(const sidespan_attr *a)
{
        if (!a || !a->key || !a->key[0])
                return -EINVAL;
        switch (a->type) {
        case SIDESPAN_ATTR_STR:
                return a->value.s ? 0 : -EINVAL;
        case SIDESPAN_ATTR_INT:
        case SIDESPAN_ATTR_DOUBLE:
        case SIDESPAN_ATTR_BOOL:
                return 0;
        case SIDESPAN_ATTR_STR_ARRAY:
                if (a->value.strs.n > UINT32_MAX || (a->value.strs.n && !a->value.strs.v))
                        return -EINVAL;
                for (size_t i = 0; i < a->value.strs.n; i++)
                        if (!a->value.strs.v[i])
                                return -EINVAL;
                return 0;
        case SIDESPAN_ATTR_INT_ARRAY:
        case SIDESPAN_ATTR_DOUBLE_ARRAY:
                /* ints and doubles share the layout {v, n}. */
                if (a->value.ints.n > UINT32_MAX || (a->value.ints.n && !a->value.ints.v))
                        return -EINVAL;
                return 0;
        default:
                return -EINVAL;
        }
}

/* The elements of an array value, each given room of its own (arrays are rare and may be
 * long). b->len moves past each; the caller restores it on failure. */
static int pack_array(ss_buf *b, const sidespan_attr *a)
{
        size_t n = a->value.ints.n; /* the three arrays share the layout {v, n} */
        int r = ss_buf_reserve(b, SS_MP_HEAD_MAX);

        if (r < 0)
                return r;
        b->len = (size_t)(ss_mp_put_container(b->data + b->len, (uint32_t)n, false) - b->data);
        for (size_t i = 0; i < n; i++) {
                const char *str = a->type == SIDESPAN_ATTR_STR_ARRAY ? a->value.strs.v[i] : NULL;
                size_t len = ssc_len(str);
                uint8_t *p;

                if (len > UINT32_MAX)
                        return -EINVAL;
                r = ss_buf_reserve(b, str ? SS_MP_HEAD_MAX + len : 9);
                if (r < 0)
                        return r;
                p = b->data + b->len;
                if (str)
                        p = ss_mp_put_str(p, str, (uint32_t)len);
                else if (a->type == SIDESPAN_ATTR_INT_ARRAY)
                        p = ss_mp_put_int(p, a->value.ints.v[i]);
                else
                        p = ss_mp_put_double(p, a->value.doubles.v[i]);
                b->len = (size_t)(p - b->data);
        }
        return 0;
}

int ssc_attrs_pack_one(ss_buf *b, const sidespan_attr *a, bool drop_content, bool *ret_added)
{
        size_t start = b->len, klen;
        int r;

        if (a && a->type >= SIDESPAN_ATTR_STR && a->type <= SIDESPAN_ATTR_BOOL) {
                const char *v = a->type == SIDESPAN_ATTR_STR ? a->value.s : NULL;

                return ssc_attrs_pack_scalar(b, a, ssc_len(a->key), ssc_len(v), drop_content,
                                             ret_added);
        }
        r = ssc_attrs_check(a);
        if (r < 0)
                return r;
        klen = strlen(a->key);
        if (klen > UINT32_MAX)
                return -EINVAL;
        if (drop_content && ss_content_key(a->key, klen)) {
                *ret_added = false;
                return 0;
        }
        r = ss_buf_reserve(b, SS_MP_HEAD_MAX + klen);
        if (r == 0) {
                b->len =
                    (size_t)(ss_mp_put_str(b->data + b->len, a->key, (uint32_t)klen) - b->data);
                r = pack_array(b, a);
        }
        if (r < 0) {
                b->len = start;
                return r;
        }
        *ret_added = true;
        return 0;
}

int ssc_attrs_pack(ss_buf *b, const sidespan_attr *attrs, size_t n, bool drop_content,
                   uint64_t *skipped, uint32_t *ret_count)
{
        size_t start = b->len;
        uint32_t count = 0;

        if (n && !attrs)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                bool added;
                int r = ssc_attrs_pack_one(b, &attrs[i], drop_content, &added);

                if (r < 0 && r != -EINVAL && skipped) {
                        (*skipped)++;
                        continue;
                }
                if (r < 0) {
                        b->len = start;
                        return r;
                }
                count += added;
        }
        *ret_count = count;
        return 0;
}
