/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Attribute lists: unique keys in insertion order, values copied into the
 * owner's store (model/value.h). The list array comes from base/pool.h, of
 * the size its cap says; past SS_ATTRS_INDEX_MIN keys a hash index keeps every
 * set O(1), so a map of any size is applied in linear time. Replacing a value
 * releases the old one's bytes (the owner compacts its store when replaced
 * bytes pile up). Loop thread only; never blocks.
 */

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "model/value.h"

#define SS_ATTRS_INDEX_MIN 32u

typedef struct ss_attrs {
        msgpack_object_kv *kv;
        uint32_t n;
        uint32_t cap;
        uint32_t *index; /* kv position + 1 per slot, 0 empty; NULL below SS_ATTRS_INDEX_MIN */
        uint32_t index_cap;
        uint64_t key_bits; /* a bit per key set (key_bit()): a clear bit skips the search */
} ss_attrs;

/* What the limits did, for the daemon's counters. */
typedef struct ss_limit_hits {
        uint64_t attrs_over_count; /* past max_attrs: dropped */
        uint64_t keys_too_long;    /* past max_key_len: dropped */
        uint64_t bytes_over;       /* past max_bytes: attribute or event dropped */
        uint64_t values_cut;       /* a string or bin value cut to max_value_len */
        uint64_t names_cut;        /* a span or event name, or status message, cut */
        uint64_t events_over;      /* past max_events: dropped */
        uint64_t compactions;      /* a span's store rebuilt to free replaced values */
} ss_limit_hits;

/* A zero field (or a NULL ss_limits) means no limit. */
typedef struct ss_limits {
        uint32_t max_attrs;     /* per span, event or resource */
        uint32_t max_events;    /* per span */
        uint32_t max_value_len; /* string/bin attribute values are cut to this */
        uint32_t max_key_len;   /* a longer key drops its attribute */
        uint32_t max_name_len;  /* span and event names and status messages are cut to this */
        uint64_t max_bytes;     /* a store's live bytes: past them attributes are dropped */
        ss_limit_hits *hits;    /* where to count what the limits did, or NULL */
} ss_limits;

/*
 * Set one attribute: replace the value of an existing key in place (its
 * position kept), else append. Dropped, counted in *dropped and lim->hits,
 * when the key is past max_key_len, a new key past max_attrs, or the value
 * would take st past max_bytes. 0 or -ENOMEM.
 */
int ss_attrs_set(ss_store *st, ss_attrs *a, const msgpack_object_str *key,
                 const msgpack_object *val, const ss_limits *lim, uint32_t *dropped);

/* The entries of one map ss_attrs_merge() looks at under max_attrs: twice as many, so a
 * client that sets its keys again in one map loses nothing. */
static inline uint32_t ss_attrs_merge_max(uint32_t max_attrs)
{
        return max_attrs > UINT32_MAX / 2 ? UINT32_MAX : 2 * max_attrs;
}

/* Set every string-keyed pair of m (NULL: none) under lim; entries past
 * ss_attrs_merge_max(lim->max_attrs) are dropped unread. 0 or -ENOMEM. */
int ss_attrs_merge(ss_store *st, ss_attrs *a, const msgpack_object_map *m, const ss_limits *lim,
                   uint32_t *dropped);

/* ss_attrs_merge() of a map left as its bytes in a frame (ss_wire_decode_zone()). */
int ss_attrs_merge_bytes(ss_store *st, ss_attrs *a, const ss_mp_map *m, const ss_limits *lim,
                         uint32_t *dropped);

/* The value of key[0..len) in a, or NULL. */
const msgpack_object *ss_attrs_get_n(const ss_attrs *a, const char *key, size_t len);

/* The value of key in a, or NULL: inline, so that a literal key's length is a constant. */
static inline const msgpack_object *ss_attrs_get(const ss_attrs *a, const char *key)
{
        return ss_attrs_get_n(a, key, strlen(key));
}

/* Remove every pair for which pred(key, ctx) is true, keeping the others' order; their
 * bytes go dead in st. Returns how many were removed. */
int ss_attrs_remove_if(ss_store *st, ss_attrs *a,
                       bool (*pred)(const msgpack_object_str *key, void *ctx), void *ctx);

/* Copy every key and value of src into dst (empty) in st, as they are: for compaction.
 * 0 or -ENOMEM. */
int ss_attrs_clone(ss_store *st, ss_attrs *dst, const ss_attrs *src);

/* Room for cap pairs in all (perhaps more): for a list filled by hand. 0 or -ENOMEM. */
int ss_attrs_reserve(ss_attrs *a, uint32_t cap);

/* Free the list array and the index (the values belong to the store). */
void ss_attrs_free(ss_attrs *a);
