/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Attribute lists: unique keys in insertion order, values copied into the
 * owner's msgpack_zone (model/value.h). The list array itself is malloc'd so
 * that realloc can grow it in place. A replaced value stays in the zone
 * until its owner goes. Loop thread only; never blocks.
 */

#include <msgpack.h>
#include <stdint.h>

/* Values are msgpack objects of the kinds ss_wire_check_attrs() allows
 * (str, int, float, bool, bin, array, map). */
typedef struct ss_attrs {
        msgpack_object_kv *kv;
        uint32_t n;
        uint32_t cap;
} ss_attrs;

/* A zero field (or a NULL ss_limits) means no limit. */
typedef struct ss_limits {
        uint32_t max_attrs;     /* per span and per event */
        uint32_t max_events;    /* per span */
        uint32_t max_value_len; /* string/bin attribute values are cut to this */
} ss_limits;

/*
 * Set one attribute: replace the value of an existing key in place (its
 * position kept), else append unless max_attrs (0: none) is reached, in
 * which case count it in *dropped. 0 or -ENOMEM.
 */
int ss_attrs_set(msgpack_zone *z, ss_attrs *a, const msgpack_object_str *key,
                 const msgpack_object *val, uint32_t max_attrs, uint32_t max_len,
                 uint32_t *dropped);

/* Set every string-keyed pair of m (NULL: none) under lim. 0 or -ENOMEM. */
int ss_attrs_merge(msgpack_zone *z, ss_attrs *a, const msgpack_object_map *m, const ss_limits *lim,
                   uint32_t *dropped);

/* The value of key in a, or NULL. */
const msgpack_object *ss_attrs_get(const ss_attrs *a, const char *key);

/* Free the list array (the values belong to the zone). */
void ss_attrs_free(ss_attrs *a);
