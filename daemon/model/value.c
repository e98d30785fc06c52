/* SPDX-License-Identifier: MIT */
#include "model/value.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "ss-wire.h"

#define FIRST_MIN ((size_t)128)
#define FIRST_MAX ((size_t)64 << 10)
#define ALIGN     sizeof(void *) /* for msgpack_object arrays */

void ss_store_init(ss_store *st)
{
        *st = (ss_store){0};
}

void ss_store_init_in(ss_store *st, void *region, size_t size)
{
        *st = (ss_store){0};
        ss_arena_init_in(&st->arena, region, size);
}

size_t ss_store_first_size(size_t hint)
{
        size_t size = hint + 32;

        return size < FIRST_MIN ? FIRST_MIN : size > FIRST_MAX ? FIRST_MAX : size;
}

void ss_store_free(ss_store *st)
{
        ss_arena_free(&st->arena);
        *st = (ss_store){0};
}

/* Every allocation of a store goes through here or ss_store_bytes(), so live counts exactly
 * what copies take. */
static void *store_alloc(ss_store *st, size_t n, bool align)
{
        void *p;

        if (!align)
                return ss_store_bytes(st, n);
        p = ss_arena_alloc_aligned(&st->arena, n, ALIGN);
        if (p)
                st->live += n;
        return p;
}

int ss_store_str_valid(ss_store *st, const char *p, size_t n, msgpack_object_str *ret)
{
        char *d = store_alloc(st, n + 1, false);

        if (!d)
                return -ENOMEM;
        ss_store_put(d, &(msgpack_object_str){.size = (uint32_t)n, .ptr = p}, ret);
        return 0;
}

int ss_store_str(ss_store *st, const char *p, size_t n, uint32_t max, msgpack_object_str *ret)
{
        size_t limit = max ? max : UINT32_MAX - 1, in, len;
        bool clean;
        char *d;

        /* Most strings (a span's name, a status) are short, whole and well-formed: measured
         * word by word, without the cut's and the repair's care. */
        if (n <= limit && ss_utf8_valid(p, n))
                return ss_store_str_valid(st, p, n, ret) < 0 ? -ENOMEM : 0;
        len = ss_utf8_measure((const uint8_t *)p, n, limit, &in, &clean);
        if (clean)
                return ss_store_str_valid(st, p, len, ret) < 0 ? -ENOMEM : in < n;
        d = store_alloc(st, len + 1, false);
        if (!d)
                return -ENOMEM;
        ss_utf8_write(d, (const uint8_t *)p, in);
        d[len] = '\0';
        *ret = (msgpack_object_str){.size = (uint32_t)len, .ptr = d};
        return in < n ? 1 : 0;
}

static int store_bin(ss_store *st, const msgpack_object_bin *b, uint32_t max,
                     msgpack_object_bin *ret)
{
        uint32_t len = max && b->size > max ? max : b->size;
        char *d = store_alloc(st, len ? len : 1, false);

        if (!d)
                return -ENOMEM;
        if (len)
                memcpy(d, b->ptr, len);
        *ret = (msgpack_object_bin){.size = len, .ptr = d};
        return len < b->size ? 1 : 0;
}

static int copy_value(ss_store *st, msgpack_object *dst, const msgpack_object *src,
                      uint32_t max_len, unsigned depth);

/* Fold the result r of one copy into *cut; a negative r is returned as it is. */
static int keep_cut(int r, int *cut)
{
        if (r > 0)
                *cut = 1;
        return r < 0 ? r : 0;
}

static int copy_array(ss_store *st, msgpack_object_array *dst, const msgpack_object_array *src,
                      uint32_t max_len, unsigned depth)
{
        msgpack_object *o = NULL;
        int cut = 0;

        if (src->size) {
                o = store_alloc(st, (size_t)src->size * sizeof(*o), true);
                if (!o)
                        return -ENOMEM;
        }
        for (uint32_t i = 0; i < src->size; i++)
                if (keep_cut(copy_value(st, &o[i], &src->ptr[i], max_len, depth + 1), &cut) < 0)
                        return -ENOMEM;
        *dst = (msgpack_object_array){.size = src->size, .ptr = o};
        return cut;
}

static uint32_t string_keys(const msgpack_object_map *m)
{
        uint32_t n = 0;

        for (uint32_t i = 0; i < m->size; i++)
                n += m->ptr[i].key.type == MSGPACK_OBJECT_STR;
        return n;
}

/* Nested maps become OTLP kvlists: entries whose key is not a string are left out. */
static int copy_map(ss_store *st, msgpack_object_map *dst, const msgpack_object_map *src,
                    uint32_t max_len, unsigned depth)
{
        uint32_t size = string_keys(src), n = 0;
        msgpack_object_kv *kv = NULL;
        int cut = 0;

        if (size) {
                kv = store_alloc(st, (size_t)size * sizeof(*kv), true);
                if (!kv)
                        return -ENOMEM;
        }
        for (uint32_t i = 0; i < src->size; i++) {
                const msgpack_object_kv *s = &src->ptr[i];

                if (s->key.type != MSGPACK_OBJECT_STR)
                        continue;
                kv[n].key.type = MSGPACK_OBJECT_STR;
                if (keep_cut(ss_store_str(st, s->key.via.str.ptr, s->key.via.str.size, 0,
                                          &kv[n].key.via.str),
                             &cut) < 0 ||
                    keep_cut(copy_value(st, &kv[n].val, &s->val, max_len, depth + 1), &cut) < 0)
                        return -ENOMEM;
                n++;
        }
        *dst = (msgpack_object_map){.size = n, .ptr = kv};
        return cut;
}

static int copy_value(ss_store *st, msgpack_object *dst, const msgpack_object *src,
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
                return ss_store_str(st, src->via.str.ptr, src->via.str.size, max_len,
                                    &dst->via.str);
        case MSGPACK_OBJECT_BIN:
                dst->type = src->type;
                return store_bin(st, &src->via.bin, max_len, &dst->via.bin);
        case MSGPACK_OBJECT_ARRAY:
                dst->type = src->type;
                return copy_array(st, &dst->via.array, &src->via.array, max_len, depth);
        case MSGPACK_OBJECT_MAP:
                dst->type = src->type;
                return copy_map(st, &dst->via.map, &src->via.map, max_len, depth);
        default:
                return 0;
        }
}

int ss_store_value(ss_store *st, msgpack_object *dst, const msgpack_object *src, uint32_t max_len)
{
        return copy_value(st, dst, src, max_len, 1);
}

/* Both sizes: exact for a stored value (its strings are already cut and clean), a lower
 * bound for a source one (cutting to max, before UTF-8 repair, which only grows). */
static uint64_t size_of(const msgpack_object *o, uint32_t max, unsigned depth)
{
        uint64_t n = 0;

        if (depth > SS_ATTR_DEPTH_MAX)
                return 0;
        switch (o->type) {
        case MSGPACK_OBJECT_STR:
                return ss_str_size_min(o->via.str.size, max);
        case MSGPACK_OBJECT_BIN: {
                uint32_t len = max && o->via.bin.size > max ? max : o->via.bin.size;

                return len ? len : 1;
        }
        case MSGPACK_OBJECT_ARRAY:
                n = (uint64_t)o->via.array.size * sizeof(msgpack_object);
                for (uint32_t i = 0; i < o->via.array.size; i++)
                        n += size_of(&o->via.array.ptr[i], max, depth + 1);
                return n;
        case MSGPACK_OBJECT_MAP:
                for (uint32_t i = 0; i < o->via.map.size; i++) {
                        const msgpack_object_kv *kv = &o->via.map.ptr[i];

                        if (kv->key.type != MSGPACK_OBJECT_STR)
                                continue;
                        /* Keys are copied whole at any depth. */
                        n += sizeof(*kv) + kv->key.via.str.size + 1ull +
                             size_of(&kv->val, max, depth + 1);
                }
                return n;
        default:
                return 0;
        }
}

uint64_t ss_value_size(const msgpack_object *stored)
{
        return size_of(stored, 0, 1);
}

uint64_t ss_value_size_min_any(const msgpack_object *src, uint32_t max_len)
{
        return size_of(src, max_len, 1);
}
