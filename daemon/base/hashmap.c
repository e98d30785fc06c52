/* SPDX-License-Identifier: MIT */
#include "base/hashmap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ss-id.h"

static uint64_t seed[2];

/* A key as two words, zero-padded: slots hold their keys so (the bytes past key_len of a slot
 * are never written), and the usual lengths are copied without a call. */
static void load(const ss_map *m, const void *key, uint64_t k[2])
{
        k[0] = k[1] = 0;
        if (m->key_len == 8)
                memcpy(k, key, 8);
        else if (m->key_len == 16)
                memcpy(k, key, 16);
        else
                memcpy(k, key, m->key_len);
}

static void seed_once(void)
{
        if (!seed[0])
                ss_id_random((uint8_t *)seed, sizeof(seed));
}

static size_t hash(const uint64_t k[2])
{
        seed_once();
        return (size_t)ss_hash_fold_mul(k[0] ^ seed[0], k[1] ^ seed[1] ^ 0x9e3779b97f4a7c15ull);
}

uint64_t ss_hash_bytes(const void *p, size_t n)
{
        const uint8_t *b = p;
        uint64_t h, w;
        size_t i;

        seed_once();
        h = seed[0] ^ n;
        for (i = 0; i + 8 <= n; i += 8) {
                memcpy(&w, b + i, 8);
                h = ss_hash_fold_mul(h ^ w, 0x9e3779b97f4a7c15ull);
        }
        w = 0;
        memcpy(&w, b + i, n - i);
        return ss_hash_fold_mul(h ^ w ^ seed[1], 0xc2b2ae3d27d4eb4full);
}

static bool key_is(const ss_map_slot *sl, const uint64_t k[2])
{
        uint64_t have[2];

        memcpy(have, sl->key, sizeof(have));
        return have[0] == k[0] && have[1] == k[1];
}

void ss_map_init(ss_map *m, size_t key_len)
{
        *m = (ss_map){.key_len = key_len};
}

/* The slot of k: where it is, or the empty slot that ends its run. */
static size_t find(const ss_map *m, const uint64_t k[2])
{
        size_t i = hash(k) & (m->cap - 1);

        while (m->slots[i].value && !key_is(&m->slots[i], k))
                i = (i + 1) & (m->cap - 1);
        return i;
}

void *ss_map_get(const ss_map *m, const void *key)
{
        uint64_t k[2];

        if (m->n == 0)
                return NULL;
        load(m, key, k);
        return m->slots[find(m, k)].value;
}

/* Move every member into a table of cap slots (a power of two, above n / 3 * 4). */
static int resize(ss_map *m, size_t cap)
{
        ss_map old = *m;

        if (cap > SIZE_MAX / sizeof(ss_map_slot))
                return -ENOMEM;
        m->slots = calloc(cap, sizeof(ss_map_slot));
        if (!m->slots) {
                m->slots = old.slots;
                return -ENOMEM;
        }
        m->cap = cap;
        for (size_t i = 0; i < old.cap; i++) {
                uint64_t k[2];

                if (!old.slots[i].value)
                        continue;
                memcpy(k, old.slots[i].key, sizeof(k));
                m->slots[find(m, k)] = old.slots[i];
        }
        free(old.slots);
        return 0;
}

/* Store value under key; with replace false an existing key is left as it is. */
static int put(ss_map *m, const void *key, void *value, bool replace)
{
        uint64_t k[2];
        size_t i;

        /* Keep the load at or under 3/4 so probe runs stay short. */
        if ((m->n + 1) * 4 > m->cap * 3) {
                int r = resize(m, m->cap ? m->cap * 2 : 16);

                if (r < 0)
                        return r;
        }
        load(m, key, k);
        i = find(m, k);
        if (m->slots[i].value && !replace)
                return -EEXIST;
        if (!m->slots[i].value) {
                memcpy(m->slots[i].key, k, sizeof(k));
                m->n++;
        }
        m->slots[i].value = value;
        return 0;
}

int ss_map_put(ss_map *m, const void *key, void *value)
{
        return put(m, key, value, true);
}

int ss_map_add(ss_map *m, const void *key, void *value)
{
        return put(m, key, value, false);
}

void *ss_map_remove(ss_map *m, const void *key)
{
        size_t i, j, mask = m->cap - 1;
        uint64_t k[2];
        void *value;

        if (m->n == 0)
                return NULL;
        load(m, key, k);
        i = find(m, k);
        value = m->slots[i].value;
        if (!value)
                return NULL;
        /* Backward shift: pull later members of the run into the hole when
         * their home slot does not lie cyclically in (hole, their slot]. */
        for (j = (i + 1) & mask; m->slots[j].value; j = (j + 1) & mask) {
                size_t home;

                memcpy(k, m->slots[j].key, sizeof(k));
                home = hash(k) & mask;

                if (((j - home) & mask) >= ((j - i) & mask)) {
                        m->slots[i] = m->slots[j];
                        i = j;
                }
        }
        m->slots[i].value = NULL;
        m->n--;
        /* A table an eighth full is halved (a quarter full then), so a million traces come
         * and gone do not leave their 48 MB of slots behind; the halvings cost no more than
         * the removals that led to them. Without memory it stays as it is. */
        if (m->cap > SS_MAP_SHRINK_MIN && m->n * 8 < m->cap)
                (void)resize(m, m->cap / 2);
        return value;
}

void ss_map_foreach(const ss_map *m, void (*fn)(void *value, void *ctx), void *ctx)
{
        for (size_t i = 0; i < m->cap; i++)
                if (m->slots[i].value)
                        fn(m->slots[i].value, ctx);
}

void ss_map_free(ss_map *m)
{
        free(m->slots);
        *m = (ss_map){.key_len = m->key_len};
}
