/* SPDX-License-Identifier: MIT */
#include "model/value.h"

#include <errno.h>
#include <string.h>

#include "base/utf8.h"
#include "ss-wire.h"

int ss_zone_str(msgpack_zone *z, const char *p, size_t n, uint32_t max, msgpack_object_str *ret)
{
        size_t limit = max ? max : UINT32_MAX - 1, in, len;
        bool clean;
        char *d;

        len = ss_utf8_measure((const uint8_t *)p, n, limit, &in, &clean);
        d = msgpack_zone_malloc_no_align(z, len + 1);
        if (!d)
                return -ENOMEM;
        if (clean)
                memcpy(d, p, len);
        else
                ss_utf8_write(d, (const uint8_t *)p, in);
        d[len] = '\0';
        *ret = (msgpack_object_str){.size = (uint32_t)len, .ptr = d};
        return 0;
}

static int zone_bin(msgpack_zone *z, const msgpack_object_bin *b, uint32_t max,
                    msgpack_object_bin *ret)
{
        uint32_t len = max && b->size > max ? max : b->size;
        char *d = msgpack_zone_malloc_no_align(z, len ? len : 1);

        if (!d)
                return -ENOMEM;
        if (len)
                memcpy(d, b->ptr, len);
        *ret = (msgpack_object_bin){.size = len, .ptr = d};
        return 0;
}

static int copy_value(msgpack_zone *z, msgpack_object *dst, const msgpack_object *src,
                      uint32_t max_len, unsigned depth);

static int copy_array(msgpack_zone *z, msgpack_object_array *dst, const msgpack_object_array *src,
                      uint32_t max_len, unsigned depth)
{
        msgpack_object *o = NULL;

        if (src->size) {
                o = msgpack_zone_malloc(z, (size_t)src->size * sizeof(*o));
                if (!o)
                        return -ENOMEM;
        }
        for (uint32_t i = 0; i < src->size; i++)
                if (copy_value(z, &o[i], &src->ptr[i], max_len, depth + 1) < 0)
                        return -ENOMEM;
        *dst = (msgpack_object_array){.size = src->size, .ptr = o};
        return 0;
}

/* Nested maps become OTLP kvlists: entries whose key is not a string are left out. */
static int copy_map(msgpack_zone *z, msgpack_object_map *dst, const msgpack_object_map *src,
                    uint32_t max_len, unsigned depth)
{
        msgpack_object_kv *kv = NULL;
        uint32_t n = 0;

        if (src->size) {
                kv = msgpack_zone_malloc(z, (size_t)src->size * sizeof(*kv));
                if (!kv)
                        return -ENOMEM;
        }
        for (uint32_t i = 0; i < src->size; i++) {
                const msgpack_object_kv *s = &src->ptr[i];

                if (s->key.type != MSGPACK_OBJECT_STR)
                        continue;
                kv[n].key.type = MSGPACK_OBJECT_STR;
                if (ss_zone_str(z, s->key.via.str.ptr, s->key.via.str.size, 0, &kv[n].key.via.str) <
                        0 ||
                    copy_value(z, &kv[n].val, &s->val, max_len, depth + 1) < 0)
                        return -ENOMEM;
                n++;
        }
        *dst = (msgpack_object_map){.size = n, .ptr = kv};
        return 0;
}

static int copy_value(msgpack_zone *z, msgpack_object *dst, const msgpack_object *src,
                      uint32_t max_len, unsigned depth)
{
        *dst = (msgpack_object){.type = MSGPACK_OBJECT_NIL};
        if (depth > SS_ATTR_DEPTH_MAX)
                return 0;
        switch (src->type) {
        case MSGPACK_OBJECT_BOOLEAN:
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                *dst = *src;
                return 0;
        case MSGPACK_OBJECT_STR:
                dst->type = src->type;
                return ss_zone_str(z, src->via.str.ptr, src->via.str.size, max_len, &dst->via.str);
        case MSGPACK_OBJECT_BIN:
                dst->type = src->type;
                return zone_bin(z, &src->via.bin, max_len, &dst->via.bin);
        case MSGPACK_OBJECT_ARRAY:
                dst->type = src->type;
                return copy_array(z, &dst->via.array, &src->via.array, max_len, depth);
        case MSGPACK_OBJECT_MAP:
                dst->type = src->type;
                return copy_map(z, &dst->via.map, &src->via.map, max_len, depth);
        default:
                return 0;
        }
}

int ss_zone_value(msgpack_zone *z, msgpack_object *dst, const msgpack_object *src, uint32_t max_len)
{
        return copy_value(z, dst, src, max_len, 1);
}
