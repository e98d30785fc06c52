/* SPDX-License-Identifier: MIT */
/*
 * fuzz-attrs: arbitrary bytes as a msgpack attribute map, as a span message
 * carries one. ss_msgpack_check() screens the bytes as the daemon does
 * before msgpack-c sees them, ss_wire_check_attrs() decides whether the wire
 * accepts the map, ss_store_value() and ss_attrs_merge() (model/value.h,
 * model/attrs.h) copy it under limits the input chooses. Checked:
 *
 * - the merge against a model of it (unique keys in first-insertion order,
 *   later values replace, a map looked at up to ss_attrs_merge_max() entries,
 *   keys past max_key_len and new keys past max_attrs dropped and counted),
 *   applied twice, without a byte limit;
 * - with a byte limit too: the store's live bytes stay within it, and equal
 *   what the kept keys and values take, as ss_value_size() counts them;
 * - the wire check against the copy: a map the wire accepts copies without
 *   losing a value to nil.
 *
 * Input: [max_attrs: 1][max_value_len: 2][max_key_len: 1][max_bytes: 2][msgpack object]
 */
#include <errno.h>
#include <stdlib.h>

#include "fuzz-util.h"
#include "json-check.h"
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
        return a->size == b->size && (a->size == 0 || memcmp(a->ptr, b->ptr, a->size) == 0);
}

/* The merge as the model says it goes, over keys repaired the way the copy does. */
typedef struct expect {
        ss_store scratch;         /* the repaired keys */
        msgpack_object_str *keys; /* distinct keys kept, in insertion order */
        uint32_t n;
        uint32_t dropped;
} expect;

static void expect_merge(expect *e, const msgpack_object_map *m, const ss_limits *lim)
{
        uint32_t n = m->size;

        if (lim->max_attrs && n > ss_attrs_merge_max(lim->max_attrs)) {
                e->dropped += n - ss_attrs_merge_max(lim->max_attrs);
                n = ss_attrs_merge_max(lim->max_attrs);
        }
        for (uint32_t i = 0; i < n; i++) {
                const msgpack_object *key = &m->ptr[i].key;
                msgpack_object_str k;
                uint32_t j;

                if (key->type != MSGPACK_OBJECT_STR)
                        continue;
                if (lim->max_key_len && key->via.str.size > lim->max_key_len) {
                        e->dropped++;
                        continue;
                }
                FZ_ASSERT(ss_store_str(&e->scratch, key->via.str.ptr, key->via.str.size, 0, &k) >=
                          0);
                for (j = 0; j < e->n && !str_eq(&e->keys[j], &k); j++)
                        ;
                if (j < e->n)
                        continue;
                if (lim->max_attrs && e->n >= lim->max_attrs) {
                        e->dropped++;
                        continue;
                }
                e->keys[e->n++] = k;
        }
}

/* What the kept keys and values take in their store. */
static uint64_t stored_bytes(const ss_attrs *a)
{
        uint64_t n = 0;

        for (uint32_t i = 0; i < a->n; i++)
                n += a->kv[i].key.via.str.size + 1ull + ss_value_size(&a->kv[i].val);
        return n;
}

static void check_kept(const ss_attrs *a, bool wire_ok, const ss_limits *lim)
{
        for (uint32_t i = 0; i < a->n; i++) {
                const msgpack_object_str *k = &a->kv[i].key.via.str;

                FZ_ASSERT(a->kv[i].key.type == MSGPACK_OBJECT_STR && k->ptr[k->size] == '\0');
                FZ_ASSERT(fz_utf8_valid((const uint8_t *)k->ptr, k->size));
                for (uint32_t j = 0; j < i; j++)
                        FZ_ASSERT(!str_eq(&a->kv[j].key.via.str, k));
                FZ_ASSERT(ss_attrs_get(a, k->ptr) != NULL || memchr(k->ptr, '\0', k->size));
                fz_check_value(&a->kv[i].val, lim->max_value_len, 1);
                FZ_ASSERT(!wire_ok || !has_nil(&a->kv[i].val));
        }
        FZ_ASSERT(!lim->max_attrs || a->n <= lim->max_attrs);
}

/* Twice, so that the second pass replaces every value and drops the same keys again. */
static void merge_twice(ss_store *st, ss_attrs *a, const msgpack_object_map *m,
                        const ss_limits *lim, uint32_t *dropped)
{
        ss_store_init(st);
        *a = (ss_attrs){0};
        *dropped = 0;
        for (int pass = 0; pass < 2; pass++)
                FZ_ASSERT(ss_attrs_merge(st, a, m, lim, dropped) == 0);
}

/* No byte limit: exactly as the model says. */
static void check_merge(const msgpack_object_map *m, bool wire_ok, const ss_limits *lim)
{
        expect e = {.keys = calloc(m->size ? m->size : 1, sizeof(*e.keys))};
        uint32_t dropped;
        ss_store st;
        ss_attrs a;

        FZ_ASSERT(e.keys);
        ss_store_init(&e.scratch);
        merge_twice(&st, &a, m, lim, &dropped);
        for (int pass = 0; pass < 2; pass++)
                expect_merge(&e, m, lim);
        FZ_ASSERT(a.n == e.n && dropped == e.dropped);
        for (uint32_t i = 0; i < a.n; i++)
                FZ_ASSERT(str_eq(&a.kv[i].key.via.str, &e.keys[i]));
        check_kept(&a, wire_ok, lim);
        FZ_ASSERT(st.live == stored_bytes(&a));
        ss_attrs_free(&a);
        ss_store_free(&st);
        ss_store_free(&e.scratch);
        free(e.keys);
}

/* With a byte limit: within it, and every live byte accounted for. */
static void check_merge_bytes(const msgpack_object_map *m, const ss_limits *lim)
{
        uint32_t dropped;
        ss_store st;
        ss_attrs a;

        merge_twice(&st, &a, m, lim, &dropped);
        check_kept(&a, false, lim);
        FZ_ASSERT(st.live <= lim->max_bytes && st.live == stored_bytes(&a));
        ss_attrs_free(&a);
        ss_store_free(&st);
}

/* Any object, map or not, copies into something the encoders can take, in the bytes that
 * ss_value_size() says and at least those ss_value_size_min() promised. */
static void check_value(const msgpack_object *o, uint32_t max_len)
{
        msgpack_object v;
        ss_store st;
        int r;

        ss_store_init(&st);
        r = ss_store_value(&st, &v, o, max_len);
        FZ_ASSERT(r == 0 || (r == 1 && max_len));
        fz_check_value(&v, max_len, 1);
        FZ_ASSERT(st.live == ss_value_size(&v) && st.live >= ss_value_size_min(o, max_len));
        ss_store_free(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fz_in in = {data, size};
        ss_limits lim = {.max_attrs = fz_u8(&in) % 16};
        msgpack_unpacked u;
        size_t off = 0;

        lim.max_value_len = fz_u16(&in) % 512;
        lim.max_key_len = fz_u8(&in) % 32;
        lim.max_bytes = fz_u16(&in);
        /* The daemon screens every frame so; msgpack-c alone would allocate what a header
         * declares (tests/fuzz/README.md). */
        if (ss_msgpack_check(in.p, in.n) < 0)
                return 0;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, (const char *)in.p, in.n, &off) == MSGPACK_UNPACK_SUCCESS) {
                check_value(&u.data, lim.max_value_len);
                if (u.data.type == MSGPACK_OBJECT_MAP) {
                        const msgpack_object_map *m = &u.data.via.map;
                        uint64_t max_bytes = lim.max_bytes;

                        lim.max_bytes = 0;
                        check_merge(m, ss_wire_check_attrs(m) == 0, &lim);
                        lim.max_bytes = max_bytes;
                        if (max_bytes)
                                check_merge_bytes(m, &lim);
                }
        }
        msgpack_unpacked_destroy(&u);
        return 0;
}
