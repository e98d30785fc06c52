/* SPDX-License-Identifier: MIT */
/*
 * fuzz-attrs: arbitrary bytes as a msgpack attribute map, as a span message
 * carries one. ss_wire_check_attrs() decides whether the wire accepts it;
 * ss_zone_value() and ss_attrs_merge() (model/value.h, model/attrs.h) copy it
 * under limits the input chooses. The copy is checked against a simple model
 * of the merge (unique keys in first-insertion order, later values replace,
 * new keys past max_attrs dropped and counted) and against the wire check: a
 * map the wire accepts copies without losing a value to nil.
 *
 * Input: [max_attrs: 1 byte][max_value_len: 2 bytes][msgpack object]
 */
#include <errno.h>
#include <stdlib.h>

#include "fuzz-util.h"
#include "model/attrs.h"
#include "model/value.h"

/* True when the sanitised value holds a nil, which only a value the wire refuses becomes. */
static bool has_nil(const msgpack_object *v)
{
        switch (v->type) {
        case MSGPACK_OBJECT_NIL:
                return true;
        case MSGPACK_OBJECT_ARRAY:
                for (uint32_t i = 0; i < v->via.array.size; i++)
                        if (has_nil(&v->via.array.ptr[i]))
                                return true;
                return false;
        case MSGPACK_OBJECT_MAP:
                for (uint32_t i = 0; i < v->via.map.size; i++)
                        if (has_nil(&v->via.map.ptr[i].val))
                                return true;
                return false;
        default:
                return false;
        }
}

static bool str_eq(const msgpack_object_str *a, const msgpack_object_str *b)
{
        return a->size == b->size && memcmp(a->ptr, b->ptr, a->size) == 0;
}

/* The merge as the model says it goes, over keys sanitised the way the copy does. */
typedef struct expect {
        msgpack_object_str *keys; /* distinct keys kept, in insertion order */
        uint32_t n;
        uint32_t dropped;
} expect;

static void expect_merge(msgpack_zone *z, expect *e, const msgpack_object_map *m,
                         uint32_t max_attrs)
{
        for (uint32_t i = 0; i < m->size; i++) {
                msgpack_object_str k;
                uint32_t j;

                if (m->ptr[i].key.type != MSGPACK_OBJECT_STR)
                        continue;
                FZ_ASSERT(ss_zone_str(z, m->ptr[i].key.via.str.ptr, m->ptr[i].key.via.str.size, 0,
                                      &k) == 0);
                for (j = 0; j < e->n && !str_eq(&e->keys[j], &k); j++)
                        ;
                if (j < e->n)
                        continue;
                if (max_attrs && e->n >= max_attrs) {
                        e->dropped++;
                        continue;
                }
                e->keys[e->n++] = k;
        }
}

static void check_merge(const msgpack_object_map *m, bool wire_ok, const ss_limits *lim)
{
        msgpack_zone *z = msgpack_zone_new(2048);
        ss_attrs a = {0};
        expect e = {.keys = calloc(m->size ? m->size : 1, sizeof(*e.keys))};
        uint32_t dropped = 0;

        FZ_ASSERT(z && e.keys);
        /* Twice: the second pass replaces every value and drops the same keys again. */
        for (int pass = 0; pass < 2; pass++) {
                FZ_ASSERT(ss_attrs_merge(z, &a, m, lim, &dropped) == 0);
                expect_merge(z, &e, m, lim->max_attrs);
        }
        FZ_ASSERT(a.n == e.n && dropped == e.dropped);
        for (uint32_t i = 0; i < a.n; i++) {
                const msgpack_object_str *k = &a.kv[i].key.via.str;

                FZ_ASSERT(a.kv[i].key.type == MSGPACK_OBJECT_STR && str_eq(k, &e.keys[i]));
                FZ_ASSERT(k->ptr[k->size] == '\0');
                FZ_ASSERT(ss_attrs_get(&a, k->ptr) != NULL || memchr(k->ptr, '\0', k->size));
                fz_check_value(&a.kv[i].val, lim->max_value_len, 1);
                FZ_ASSERT(!wire_ok || !has_nil(&a.kv[i].val));
        }
        ss_attrs_free(&a);
        free(e.keys);
        msgpack_zone_free(z);
}

/* Any object, map or not, copies into something the encoders can take. */
static void check_value(const msgpack_object *o, uint32_t max_len)
{
        msgpack_zone *z = msgpack_zone_new(2048);
        msgpack_object v;

        FZ_ASSERT(z && ss_zone_value(z, &v, o, max_len) == 0);
        fz_check_value(&v, max_len, 1);
        msgpack_zone_free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fz_in in = {data, size};
        ss_limits lim = {.max_attrs = fz_u8(&in) % 16};
        msgpack_unpacked u;
        size_t off = 0;

        lim.max_value_len = fz_u16(&in) % 512;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, (const char *)in.p, in.n, &off) == MSGPACK_UNPACK_SUCCESS) {
                check_value(&u.data, lim.max_value_len);
                if (u.data.type == MSGPACK_OBJECT_MAP)
                        check_merge(&u.data.via.map, ss_wire_check_attrs(&u.data.via.map) == 0,
                                    &lim);
        }
        msgpack_unpacked_destroy(&u);
        return 0;
}
