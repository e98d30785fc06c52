/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * An open-addressing hash map from fixed-size byte keys (at most 16 bytes:
 * trace ids, span ids, instance ids) to pointers. Keys come from clients, so
 * the hash is keyed with a per-process random seed. Linear probing with
 * backward-shift deletion: no tombstones, lookups stay short. Not
 * thread-safe; the daemon uses it on the loop thread only.
 */

#include <stddef.h>
#include <stdint.h>

#define SS_MAP_KEY_MAX 16u
/* Slots a table keeps however few members it has left (it grows at 3/4 full, and shrinks
 * by half under 1/8 above this). */
#define SS_MAP_SHRINK_MIN 1024u

/* A 64 x 64 -> 128-bit product, its halves folded: the mixing step of the map's hash and
 * of other hashes of the daemon. */
static inline uint64_t ss_hash_fold_mul(uint64_t a, uint64_t b)
{
        __uint128_t r = (__uint128_t)a * b;

        return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* A 64-bit hash of p[0..n) keyed with the map's per-process seed, eight bytes a step: for
 * tables of variable-length keys from clients (attribute names). Loop thread (the seed is
 * drawn on first use). */
uint64_t ss_hash_bytes(const void *p, size_t n);

typedef struct ss_map_slot {
        uint8_t key[SS_MAP_KEY_MAX];
        void *value; /* NULL marks an empty slot */
} ss_map_slot;

typedef struct ss_map {
        ss_map_slot *slots;
        size_t cap; /* a power of two, or 0 */
        size_t n;
        size_t key_len;
} ss_map;

/* An empty map of keys of key_len (1..16) bytes. Allocates nothing. */
void ss_map_init(ss_map *m, size_t key_len);

/* The value stored under key, or NULL. */
void *ss_map_get(const ss_map *m, const void *key);

/* Store value (non-NULL) under key, replacing any. 0 or -ENOMEM. */
int ss_map_put(ss_map *m, const void *key, void *value);

/* Store value (non-NULL) under key unless the key is there: -EEXIST then, 0, or -ENOMEM. */
int ss_map_add(ss_map *m, const void *key, void *value);

/* Remove key; returns its value or NULL when absent. May move the other members (the table
 * shrinks): not while iterating over it. */
void *ss_map_remove(ss_map *m, const void *key);

/* Call fn on every value; fn must not change the map. */
void ss_map_foreach(const ss_map *m, void (*fn)(void *value, void *ctx), void *ctx);

/* Free the slots (not the values). */
void ss_map_free(ss_map *m);
