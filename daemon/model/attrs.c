/* SPDX-License-Identifier: MIT */
#include "model/attrs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/hashmap.h"
#include "base/pool.h"
#include "base/utf8.h"
#include "ss-wire.h"

/* ---- the index -------------------------------------------------------------------------- */

/* Keys come from clients: the hash is keyed with a per-process seed. */
static uint32_t key_hash(const char *p, size_t n)
{
        uint64_t h = ss_hash_bytes(p, n);

        return (uint32_t)(h ^ (h >> 32));
}

static bool key_eq(const msgpack_object_kv *kv, const char *key, size_t len)
{
        return kv->key.via.str.size == len &&
               (len == 0 || memcmp(kv->key.via.str.ptr, key, len) == 0);
}

/* The slot of key in the index: its entry, or the empty slot where it would go. */
static uint32_t *index_slot(const ss_attrs *a, const char *key, size_t len)
{
        uint32_t mask = a->index_cap - 1, i = key_hash(key, len) & mask;

        while (a->index[i] && !key_eq(&a->kv[a->index[i] - 1], key, len))
                i = (i + 1) & mask;
        return &a->index[i];
}

/* Index every key when the list reaches SS_ATTRS_INDEX_MIN, again at half load. */
static int index_update(ss_attrs *a)
{
        uint32_t cap = a->index_cap ? a->index_cap : 64;
        uint32_t *idx;

        if (a->n < SS_ATTRS_INDEX_MIN || (a->index && a->n * 2 <= a->index_cap)) {
                if (a->index && a->n)
                        *index_slot(a, a->kv[a->n - 1].key.via.str.ptr,
                                    a->kv[a->n - 1].key.via.str.size) = a->n;
                return 0;
        }
        while (a->n * 2 > cap)
                cap *= 2;
        idx = calloc(cap, sizeof(*idx));
        if (!idx)
                return -ENOMEM;
        free(a->index);
        a->index = idx;
        a->index_cap = cap;
        for (uint32_t i = 0; i < a->n; i++)
                *index_slot(a, a->kv[i].key.via.str.ptr, a->kv[i].key.via.str.size) = i + 1;
        return 0;
}

/*
 * A key's bit in ss_attrs.key_bits, from its length and two of its bytes: most lookups are
 * of keys a span does not hold yet (a new attribute), and most of those skip the search.
 */
static uint64_t key_bit(const char *key, size_t len)
{
        unsigned h = len ? (unsigned)len * 5u ^ (uint8_t)key[len - 1] ^ (uint8_t)key[len / 2] : 0;

        return 1ull << (h & 63u);
}

/* The pair of key in a, writable: the owner owns it. */
static msgpack_object_kv *attrs_find(const ss_attrs *a, const char *key, size_t len)
{
        uint32_t pos;

        if (!(a->key_bits & key_bit(key, len)))
                return NULL;
        if (!a->index)
                return (msgpack_object_kv *)ss_wire_kv_find(a->kv, a->n, key, len);
        pos = *index_slot(a, key, len);
        return pos ? &a->kv[pos - 1] : NULL;
}

/* ---- the list --------------------------------------------------------------------------- */

/* The pool's class of a list array of cap pairs: ss_attrs keeps no more, as its cap says. */
static unsigned kv_class(uint32_t cap)
{
        return ss_pool_class((size_t)cap * sizeof(msgpack_object_kv));
}

int ss_attrs_reserve(ss_attrs *a, uint32_t cap)
{
        msgpack_object_kv *kv;
        unsigned c;

        if (cap <= a->cap)
                return 0;
        c = kv_class(cap);
        kv = ss_pool_get(c, (size_t)cap * sizeof(*kv));
        if (!kv)
                return -ENOMEM;
        if (c) /* what the size class rounds up */
                cap = (uint32_t)(ss_pool_class_size(c) / sizeof(*kv));
        if (a->n)
                memcpy(kv, a->kv, (size_t)a->n * sizeof(*kv));
        ss_pool_put(a->kv, kv_class(a->cap));
        a->kv = kv;
        a->cap = cap;
        return 0;
}

static int attrs_grow(ss_attrs *a)
{
        if (a->cap > UINT32_MAX / 4)
                return -ENOMEM;
        return ss_attrs_reserve(a, a->cap ? a->cap * 2 : 8);
}

/* Append a key (copied unless stored already) and a stored value. */
static int attrs_append(ss_store *st, ss_attrs *a, const msgpack_object_str *key, bool stored,
                        const msgpack_object *v)
{
        msgpack_object_kv *kv;

        if (a->n == a->cap && attrs_grow(a) < 0)
                return -ENOMEM;
        kv = &a->kv[a->n];
        kv->key.type = MSGPACK_OBJECT_STR;
        kv->key.via.str = *key;
        /* Well-formed: checked by ss_attrs_set(), or a stored key being cloned. */
        if (!stored && ss_store_str_valid(st, key->ptr, key->size, &kv->key.via.str) < 0)
                return -ENOMEM;
        kv->val = *v;
        a->n++;
        a->key_bits |= key_bit(key->ptr, key->size);
        return index_update(a);
}

/* Count a dropped attribute; a key stored for the lookup goes back as dead bytes. */
static void drop(ss_store *st, const msgpack_object_str *stored_key, uint64_t *counter,
                 uint32_t *dropped)
{
        if (stored_key)
                ss_store_release(st, stored_key->size + 1ull);
        (*counter)++;
        if (dropped)
                (*dropped)++;
}

/* Whether a new value of at least min bytes would take st past the limit. */
static bool over_bytes(const ss_store *st, const ss_limits *lim, uint64_t bytes)
{
        return lim && lim->max_bytes && st->live + bytes > lim->max_bytes;
}

/* Where the counts go when the limits name no ss_limit_hits: nobody reads them, and a zeroed
 * local took about 10 instructions a call. */
static _Thread_local ss_limit_hits uncounted;

/* ss_attrs_set() of any pair, each case as its contract says. */
static int attrs_set_slow(ss_store *st, ss_attrs *a, const msgpack_object_str *key,
                          const msgpack_object *val, const ss_limits *lim, uint32_t *dropped)
{
        ss_limit_hits *h = lim && lim->hits ? lim->hits : &uncounted;
        uint32_t max_len = lim ? lim->max_value_len : 0;
        msgpack_object_str k = *key, *stored = NULL;
        msgpack_object_kv *kv;
        uint64_t old = 0, min_new;
        msgpack_object v;
        int r;

        if (lim && lim->max_key_len && key->size > lim->max_key_len) {
                drop(st, NULL, &h->keys_too_long, dropped);
                return 0;
        }
        /* A key that is not well-formed UTF-8 is stored repaired, and looked up that way. */
        if (!ss_utf8_valid(key->ptr, key->size)) {
                if (ss_store_str(st, key->ptr, key->size, 0, &k) < 0)
                        return -ENOMEM;
                stored = &k;
        }
        kv = attrs_find(a, k.ptr, k.size);
        if (!kv && lim && lim->max_attrs && a->n >= lim->max_attrs) {
                drop(st, stored, &h->attrs_over_count, dropped);
                return 0;
        }
        if (kv)
                old = ss_value_size(&kv->val);
        min_new = ss_value_size_min(val, max_len) + (kv || stored ? 0 : k.size + 1ull);
        if (over_bytes(st, lim, min_new > old ? min_new - old : 0)) {
                drop(st, stored, &h->bytes_over, dropped);
                return 0;
        }
        r = ss_store_value(st, &v, val, max_len);
        if (r < 0)
                return r;
        /* The copy may be larger than its bound (ill-formed UTF-8 repaired): check again,
         * with the key a new attribute still has to store. */
        if (lim && lim->max_bytes &&
            st->live - old + (kv || stored ? 0 : k.size + 1ull) > lim->max_bytes) {
                ss_store_release(st, ss_value_size(&v));
                drop(st, stored, &h->bytes_over, dropped);
                return 0;
        }
        if (r > 0)
                h->values_cut++;
        if (kv) {
                if (stored)
                        ss_store_release(st, k.size + 1ull);
                ss_store_release(st, old);
                kv->val = v;
                return 0;
        }
        return attrs_append(st, a, &k, stored != NULL, &v);
}

/*
 * ss_attrs_set() of the common pair, done with fewer steps: a key the list does not hold (its
 * bit in key_bits clear), well-formed and within max_key_len, under max_attrs and below the
 * index's size; a scalar value, or a well-formed string within max_value_len; room under
 * max_bytes. The list grows by doubling when full. Key and string value go into one
 * allocation of the store. Same result, same bytes accounted. false, with nothing changed
 * but perhaps the list's room, for attrs_set_slow() to take it.
 */
/* A map's limits for set_new_fast(), read once: each the most allowed, no limit the type's
 * maximum. */
typedef struct fast_limits {
        uint32_t key_len, value_len, attrs;
        uint64_t bytes;
} fast_limits;

static fast_limits fast_limits_of(const ss_limits *lim)
{
        fast_limits f = {UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT64_MAX};

        if (lim && lim->max_key_len)
                f.key_len = lim->max_key_len;
        if (lim && lim->max_value_len)
                f.value_len = lim->max_value_len;
        if (lim && lim->max_attrs)
                f.attrs = lim->max_attrs;
        if (lim && lim->max_bytes)
                f.bytes = lim->max_bytes;
        return f;
}

/* Always inline: a merge calls it for every pair, and GCC called it. */
static inline __attribute__((always_inline)) bool set_new_fast(ss_store *st, ss_attrs *a,
                                                               const msgpack_object_str *key,
                                                               const msgpack_object *val,
                                                               const fast_limits *lim)
{
        const msgpack_object_str *str = NULL;
        uint64_t bit = key_bit(key->ptr, key->size);
        uint64_t need;
        msgpack_object_kv *e;

        if (a->index || a->n + 1 >= SS_ATTRS_INDEX_MIN || (a->key_bits & bit) || key->size == 0)
                return false;
        need = key->size + 1ull;
        switch (val->type) {
        case MSGPACK_OBJECT_BOOLEAN:
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                break;
        case MSGPACK_OBJECT_STR:
                if (val->via.str.size > lim->value_len)
                        return false;
                str = &val->via.str;
                need += str->size + 1ull;
                break;
        default:
                return false;
        }
        if (key->size > lim->key_len || a->n >= lim->attrs || st->live + need > lim->bytes)
                return false;
        if (!ss_utf8_valid(key->ptr, key->size) || (str && !ss_utf8_valid(str->ptr, str->size)))
                return false;
        if (a->n == a->cap && attrs_grow(a) < 0)
                return false;
        e = &a->kv[a->n];
        e->key.type = MSGPACK_OBJECT_STR;
        e->val = *val;
        if (ss_store_pair_valid(st, key, str, &e->key.via.str, &e->val.via.str) < 0)
                return false;
        a->n++;
        a->key_bits |= bit;
        return true;
}

int ss_attrs_set(ss_store *st, ss_attrs *a, const msgpack_object_str *key,
                 const msgpack_object *val, const ss_limits *lim, uint32_t *dropped)
{
        fast_limits fast = fast_limits_of(lim);

        if (set_new_fast(st, a, key, val, &fast))
                return 0;
        return attrs_set_slow(st, a, key, val, lim, dropped);
}

/*
 * The start of a merge of a map of n entries: how many of them it looks at, *ret_n. A map far
 * longer than the attributes a list may hold is not looked at past a bound: its tail could
 * only replace values or be dropped, and 100 000 keys must not cost the loop milliseconds.
 * What is not looked at is counted as dropped. A first map gets room for exactly its keys, or
 * as many as may be kept (most spans get one map, or one more). 0 or -ENOMEM.
 */
static int merge_start(ss_attrs *a, uint32_t n, const ss_limits *lim, uint32_t *dropped,
                       uint32_t *ret_n)
{
        if (lim && lim->max_attrs && n > ss_attrs_merge_max(lim->max_attrs)) {
                uint32_t skipped = n - ss_attrs_merge_max(lim->max_attrs);

                n -= skipped;
                if (lim->hits)
                        lim->hits->attrs_over_count += skipped;
                if (dropped)
                        *dropped += skipped;
        }
        *ret_n = n;
        if (a->cap == 0 && n &&
            ss_attrs_reserve(a, lim && lim->max_attrs && n > lim->max_attrs ? lim->max_attrs : n) <
                0)
                return -ENOMEM;
        return 0;
}

/* One pair of a merge. 0 or -ENOMEM. */
static inline int merge_pair(ss_store *st, ss_attrs *a, const msgpack_object_kv *kv,
                             const ss_limits *lim, const fast_limits *fast, uint32_t *dropped)
{
        if (kv->key.type != MSGPACK_OBJECT_STR ||
            set_new_fast(st, a, &kv->key.via.str, &kv->val, fast))
                return 0;
        return attrs_set_slow(st, a, &kv->key.via.str, &kv->val, lim, dropped);
}

int ss_attrs_merge(ss_store *st, ss_attrs *a, const msgpack_object_map *m, const ss_limits *lim,
                   uint32_t *dropped)
{
        fast_limits fast = fast_limits_of(lim);
        uint32_t n;

        if (merge_start(a, m ? m->size : 0, lim, dropped, &n) < 0)
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++)
                if (merge_pair(st, a, &m->ptr[i], lim, &fast, dropped) < 0)
                        return -ENOMEM;
        return 0;
}

int ss_attrs_merge_bytes(ss_store *st, ss_attrs *a, const ss_mp_map *m, const ss_limits *lim,
                         uint32_t *dropped)
{
        fast_limits fast = fast_limits_of(lim);
        msgpack_object_kv kv;
        ss_mp_reader r;
        uint32_t n;

        if (merge_start(a, m->n, lim, dropped, &n) < 0)
                return -ENOMEM;
        ss_mp_map_reader(m, &r);
        /* The pairs were found well-formed when the frame was read: only the zone, which
         * takes a nested value, can fail a read. */
        for (uint32_t i = 0; i < n; i++)
                if (!ss_mp_read_into(&r, 2, &kv.key) || !ss_mp_read_into(&r, 2, &kv.val) ||
                    merge_pair(st, a, &kv, lim, &fast, dropped) < 0)
                        return -ENOMEM;
        return 0;
}

const msgpack_object *ss_attrs_get_n(const ss_attrs *a, const char *key, size_t len)
{
        const msgpack_object_kv *kv = attrs_find(a, key, len);

        return kv ? &kv->val : NULL;
}

int ss_attrs_clone(ss_store *st, ss_attrs *dst, const ss_attrs *src)
{
        for (uint32_t i = 0; i < src->n; i++) {
                msgpack_object v;

                if (ss_store_value(st, &v, &src->kv[i].val, 0) < 0 ||
                    attrs_append(st, dst, &src->kv[i].key.via.str, false, &v) < 0)
                        return -ENOMEM;
        }
        return 0;
}

void ss_attrs_free(ss_attrs *a)
{
        ss_pool_put(a->kv, kv_class(a->cap));
        free(a->index);
        *a = (ss_attrs){0};
}

int ss_attrs_remove_if(ss_store *st, ss_attrs *a,
                       bool (*pred)(const msgpack_object_str *key, void *ctx), void *ctx)
{
        uint32_t kept = 0, n = a->n;

        a->key_bits = 0;
        for (uint32_t i = 0; i < n; i++) {
                msgpack_object_kv *kv = &a->kv[i];

                if (pred(&kv->key.via.str, ctx)) {
                        ss_store_release(st, kv->key.via.str.size + 1ull + ss_value_size(&kv->val));
                } else {
                        a->kv[kept++] = *kv;
                        a->key_bits |= key_bit(kv->key.via.str.ptr, kv->key.via.str.size);
                }
        }
        a->n = kept;
        if (kept == n || !a->index)
                return (int)(n - kept);
        /* The index is rebuilt in place: it is large enough for fewer keys. */
        if (kept < SS_ATTRS_INDEX_MIN) {
                free(a->index);
                a->index = NULL;
                a->index_cap = 0;
                return (int)(n - kept);
        }
        memset(a->index, 0, a->index_cap * sizeof(*a->index));
        for (uint32_t i = 0; i < kept; i++)
                *index_slot(a, a->kv[i].key.via.str.ptr, a->kv[i].key.via.str.size) = i + 1;
        return (int)(n - kept);
}
