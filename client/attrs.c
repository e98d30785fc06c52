/* SPDX-License-Identifier: MIT */
/*
 * Attributes: the checks a sidespan_attr passes before it is packed, and the
 * packing itself. Used by the span API (span and event attributes) and by the
 * options (resource attributes of HELLO).
 */
#include <errno.h>
#include <string.h>

#include "attrs.h"
#include "ss-id.h"

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

static int pack_value(msgpack_packer *pk, const sidespan_attr *a)
{
        int r = 0;

        switch (a->type) {
        case SIDESPAN_ATTR_STR:
                return ssc_attrs_pack_str(pk, a->value.s);
        case SIDESPAN_ATTR_INT:
                return msgpack_pack_int64(pk, a->value.i);
        case SIDESPAN_ATTR_DOUBLE:
                return msgpack_pack_double(pk, a->value.d);
        case SIDESPAN_ATTR_BOOL:
                return a->value.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        case SIDESPAN_ATTR_STR_ARRAY:
                r = msgpack_pack_array(pk, a->value.strs.n);
                for (size_t i = 0; !r && i < a->value.strs.n; i++)
                        r = ssc_attrs_pack_str(pk, a->value.strs.v[i]);
                return r;
        case SIDESPAN_ATTR_INT_ARRAY:
                r = msgpack_pack_array(pk, a->value.ints.n);
                for (size_t i = 0; !r && i < a->value.ints.n; i++)
                        r = msgpack_pack_int64(pk, a->value.ints.v[i]);
                return r;
        default: /* SIDESPAN_ATTR_DOUBLE_ARRAY, checked before */
                r = msgpack_pack_array(pk, a->value.doubles.n);
                for (size_t i = 0; !r && i < a->value.doubles.n; i++)
                        r = msgpack_pack_double(pk, a->value.doubles.v[i]);
                return r;
        }
}

int ssc_attrs_pack_one(ss_buf *b, const sidespan_attr *a, bool drop_content, bool *ret_added)
{
        size_t start = b->len;
        msgpack_packer pk;
        int r;

        r = ssc_attrs_check(a);
        if (r < 0)
                return r;
        if (drop_content && ss_content_key(a->key, strlen(a->key))) {
                *ret_added = false;
                return 0;
        }
        msgpack_packer_init(&pk, b, ss_buf_msgpack_write);
        r = ssc_attrs_pack_str(&pk, a->key);
        if (!r)
                r = pack_value(&pk, a);
        if (r) {
                b->len = start;
                return r < 0 ? r : -ENOBUFS;
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
