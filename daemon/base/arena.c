/* SPDX-License-Identifier: MIT */
#include "base/arena.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define ARENA_BLOCK (64u * 1024u)

struct ss_arena_block {
        struct ss_arena_block *next;
        size_t used;
        size_t cap;
        alignas(max_align_t) unsigned char data[];
};

typedef struct ss_arena_block block;

static block *block_new(size_t cap, block *next)
{
        block *b;

        if (cap > SIZE_MAX - sizeof(*b))
                return NULL;
        b = malloc(sizeof(*b) + cap);
        if (b)
                *b = (block){.next = next, .cap = cap};
        return b;
}

void *ss_arena_alloc(ss_arena *a, size_t size)
{
        size_t sz = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
        block *b = a->head;

        if (sz < size)
                return NULL;
        if (b && b->cap - b->used >= sz) {
                b->used += sz;
                return b->data + b->used - sz;
        }
        /* A large piece gets a block of its own behind the current one, whose
         * free space stays in use; a small one starts a new current block. */
        if (b && sz > ARENA_BLOCK / 4) {
                block *big = block_new(sz, b->next);

                if (!big)
                        return NULL;
                b->next = big;
                big->used = sz;
                return big->data;
        }
        b = block_new(sz > ARENA_BLOCK ? sz : ARENA_BLOCK, b);
        if (!b)
                return NULL;
        a->head = b;
        b->used = sz;
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
        while (a->head) {
                block *b = a->head;

                a->head = b->next;
                free(b);
        }
}
