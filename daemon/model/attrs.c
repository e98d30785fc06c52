/* SPDX-License-Identifier: MIT */
#include "model/attrs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "model/value.h"
#include "ss-wire.h"

/* The pair of key in a, writable: the span owns it. */
static msgpack_object_kv *attrs_find(const ss_attrs *a, const char *key, size_t len)
{
        return (msgpack_object_kv *)ss_wire_kv_find(a->kv, a->n, key, len);
}

static int attrs_grow(ss_attrs *a)
{
        uint32_t cap = a->cap ? a->cap * 2 : 8;
        msgpack_object_kv *kv;

        if (a->cap > UINT32_MAX / 2)
                return -ENOMEM;
        kv = realloc(a->kv, (size_t)cap * sizeof(*kv));
        if (!kv)
                return -ENOMEM;
        a->kv = kv;
        a->cap = cap;
        return 0;
}

/* The key as it is stored: raw when it is well-formed, else its sanitised copy. */
static int attr_key(msgpack_zone *z, const msgpack_object_str *key, msgpack_object_str *ret)
{
        if (ss_utf8_valid(key->ptr, key->size)) {
                *ret = *key;
                return 0;
        }
        return ss_zone_str(z, key->ptr, key->size, 0, ret);
}

int ss_attrs_set(msgpack_zone *z, ss_attrs *a, const msgpack_object_str *raw_key,
                 const msgpack_object *val, uint32_t max_attrs, uint32_t max_len, uint32_t *dropped)
{
        msgpack_object_str key;
        msgpack_object v;
        msgpack_object_kv *kv;

        if (attr_key(z, raw_key, &key) < 0)
                return -ENOMEM;
        kv = attrs_find(a, key.ptr, key.size);
        if (!kv && max_attrs && a->n >= max_attrs) {
                (*dropped)++;
                return 0;
        }
        if (ss_zone_value(z, &v, val, max_len) < 0)
                return -ENOMEM;
        if (kv) {
                kv->val = v;
                return 0;
        }
        if (a->n == a->cap && attrs_grow(a) < 0)
                return -ENOMEM;
        kv = &a->kv[a->n];
        kv->key.type = MSGPACK_OBJECT_STR;
        if (key.ptr == raw_key->ptr && ss_zone_str(z, key.ptr, key.size, 0, &key) < 0)
                return -ENOMEM;
        kv->key.via.str = key;
        kv->val = v;
        a->n++;
        return 0;
}

int ss_attrs_merge(msgpack_zone *z, ss_attrs *a, const msgpack_object_map *m, const ss_limits *lim,
                   uint32_t *dropped)
{
        for (uint32_t i = 0; m && i < m->size; i++) {
                const msgpack_object_kv *kv = &m->ptr[i];

                if (kv->key.type != MSGPACK_OBJECT_STR)
                        continue;
                if (ss_attrs_set(z, a, &kv->key.via.str, &kv->val, lim ? lim->max_attrs : 0,
                                 lim ? lim->max_value_len : 0, dropped) < 0)
                        return -ENOMEM;
        }
        return 0;
}

const msgpack_object *ss_attrs_get(const ss_attrs *a, const char *key)
{
        const msgpack_object_kv *kv = attrs_find(a, key, strlen(key));

        return kv ? &kv->val : NULL;
}

void ss_attrs_free(ss_attrs *a)
{
        free(a->kv);
        *a = (ss_attrs){0};
}
