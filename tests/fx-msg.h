/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Two decoded messages compared field by field: the daemon's decode of SPAN_START and
 * SPAN_END (read field by field) against the general one, in test-wire and the fuzz
 * targets. Header-only.
 */

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ss-wire.h"

static inline bool fx_id_same(const uint8_t *a, const uint8_t *b, size_t n)
{
        return (!a && !b) || (a && b && memcmp(a, b, n) == 0);
}

static inline bool fx_ss_str_same(ss_str a, ss_str b)
{
        return a.len == b.len && !a.ptr == !b.ptr && (!a.len || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Equal values, deeply: types, bytes of strings and bins, the bits of numbers (a NaN equals
 * itself; msgpack_object_equal() compares floats with ==). */
static inline bool fx_obj_same(const msgpack_object *a, const msgpack_object *b)
{
        if (a->type != b->type)
                return false;
        switch (a->type) {
        case MSGPACK_OBJECT_STR:
        case MSGPACK_OBJECT_BIN:
                return a->via.str.size == b->via.str.size &&
                       (a->via.str.size == 0 ||
                        memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0);
        case MSGPACK_OBJECT_EXT:
                return a->via.ext.type == b->via.ext.type && a->via.ext.size == b->via.ext.size &&
                       (a->via.ext.size == 0 ||
                        memcmp(a->via.ext.ptr, b->via.ext.ptr, a->via.ext.size) == 0);
        case MSGPACK_OBJECT_ARRAY:
                if (a->via.array.size != b->via.array.size)
                        return false;
                for (uint32_t i = 0; i < a->via.array.size; i++)
                        if (!fx_obj_same(&a->via.array.ptr[i], &b->via.array.ptr[i]))
                                return false;
                return true;
        case MSGPACK_OBJECT_MAP:
                if (a->via.map.size != b->via.map.size)
                        return false;
                for (uint32_t i = 0; i < a->via.map.size; i++)
                        if (!fx_obj_same(&a->via.map.ptr[i].key, &b->via.map.ptr[i].key) ||
                            !fx_obj_same(&a->via.map.ptr[i].val, &b->via.map.ptr[i].val))
                                return false;
                return true;
        case MSGPACK_OBJECT_NIL:
                return true;
        case MSGPACK_OBJECT_BOOLEAN:
                return a->via.boolean == b->via.boolean;
        default:
                return a->via.u64 == b->via.u64;
        }
}

static inline bool fx_map_same(const msgpack_object_map *a, const msgpack_object_map *b)
{
        msgpack_object x, y;

        if (!a || !b)
                return !a && !b;
        x = (msgpack_object){.type = MSGPACK_OBJECT_MAP, .via.map = *a};
        y = (msgpack_object){.type = MSGPACK_OBJECT_MAP, .via.map = *b};
        return fx_obj_same(&x, &y);
}

/* A message's attributes as a map: m, or its bytes decoded into zone (NULL when out of
 * memory, or when they do not read back as the n pairs they were found to be). */
static inline const msgpack_object_map *fx_attrs_map(const msgpack_object_map *m,
                                                     const ss_mp_map *bytes, msgpack_zone *zone)
{
        msgpack_object_map *map;
        ss_mp_reader r;

        if (!bytes->n)
                return m;
        map = msgpack_zone_malloc(zone, sizeof(*map));
        if (m || !map)
                return NULL;
        map->size = bytes->n;
        map->ptr = msgpack_zone_malloc(zone, bytes->n * sizeof(*map->ptr));
        if (!map->ptr)
                return NULL;
        ss_mp_map_reader(bytes, &r);
        r.zone = zone;
        for (uint32_t i = 0; i < bytes->n; i++)
                if (!ss_mp_read_into(&r, 2, &map->ptr[i].key) ||
                    !ss_mp_read_into(&r, 2, &map->ptr[i].val))
                        return NULL;
        return ss_mp_reader_done(&r) ? map : NULL;
}

/* The same attributes, each as a map or as its bytes. */
static inline bool fx_attrs_same(const msgpack_object_map *a, const ss_mp_map *a_bytes,
                                 const msgpack_object_map *b, const ss_mp_map *b_bytes)
{
        msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
        const msgpack_object_map *x, *y;
        bool same;

        if (!zone)
                return false;
        x = fx_attrs_map(a, a_bytes, zone);
        y = fx_attrs_map(b, b_bytes, zone);
        /* No map and an empty one are the same attributes: the bytes of {} are no pairs. */
        same = (!a_bytes->n || x) && (!b_bytes->n || y) &&
               ((!x || !x->size) && (!y || !y->size) ? true : fx_map_same(x, y));
        msgpack_zone_free(zone);
        return same;
}

/* The same SPAN_START or SPAN_END (other types: the same type). */
static inline bool fx_msg_same(const ss_msg *a, const ss_msg *b)
{
        if (a->type != b->type)
                return false;
        if (a->type == SS_MSG_SPAN_START)
                return fx_id_same(a->span.trace_id, b->span.trace_id, SS_TRACE_ID_LEN) &&
                       fx_id_same(a->span.span_id, b->span.span_id, SS_SPAN_ID_LEN) &&
                       fx_id_same(a->span.parent_id, b->span.parent_id, SS_SPAN_ID_LEN) &&
                       fx_ss_str_same(a->span.name, b->span.name) && a->span.kind == b->span.kind &&
                       a->span.start_ns == b->span.start_ns &&
                       fx_attrs_same(a->span.attrs, &a->span.attrs_bytes, b->span.attrs,
                                     &b->span.attrs_bytes) &&
                       a->span.flags == b->span.flags &&
                       fx_ss_str_same(a->span.trace_state, b->span.trace_state);
        if (a->type == SS_MSG_SPAN_END)
                return fx_id_same(a->end.span_id, b->end.span_id, SS_SPAN_ID_LEN) &&
                       a->end.end_ns == b->end.end_ns && a->end.status_code == b->end.status_code &&
                       fx_ss_str_same(a->end.status_msg, b->end.status_msg) &&
                       fx_attrs_same(a->end.attrs, &a->end.attrs_bytes, b->end.attrs,
                                     &b->end.attrs_bytes);
        return true;
}
