/* SPDX-License-Identifier: MIT */
#include "base/arena.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/pool.h"

struct ss_arena_block {
        struct ss_arena_block *next;
        unsigned pool_class;              /* its allocation's (base/pool.h), 0: malloc'd */
        alignas(max_align_t) char data[]; /* a block's data is aligned for any type */
};

void *ss_arena_grow(ss_arena *a, size_t size)
{
        bool own = size > SS_ARENA_BLOCK / 2;
        size_t cap = own ? size : SS_ARENA_BLOCK;
        ss_arena_block *b;
        unsigned c;

        if (cap > SIZE_MAX - sizeof(*b))
                return NULL;
        c = ss_pool_class(sizeof(*b) + cap);
        b = ss_pool_get(c, sizeof(*b) + cap);
        if (!b)
                return NULL;
        b->pool_class = c;
        b->next = a->blocks;
        a->blocks = b;
        if (!own) {
                if (c) /* what the size class rounds up */
                        cap = ss_pool_class_size(c) - sizeof(*b);
                a->next = b->data + size;
                a->avail = cap - size;
        }
        return b->data;
}

void *ss_arena_array(ss_arena *a, size_t n, size_t size)
{
        if (n && size > SIZE_MAX / n)
                return NULL;
        return ss_arena_alloc(a, n * size);
}

void ss_arena_free(ss_arena *a)
{
        ss_arena_block *b = a->blocks;

        while (b) {
                ss_arena_block *next = b->next;

                ss_pool_put(b, b->pool_class);
                b = next;
        }
        *a = (ss_arena){0};
}
