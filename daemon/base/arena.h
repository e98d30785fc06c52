/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A bump arena: many small allocations served from a few blocks and freed
 * all at once. Its first region may be its owner's, allocated with it (a span
 * and its first message's bytes, one allocation); further blocks are
 * SS_ARENA_BLOCK bytes from the calling thread's pool of freed blocks
 * (base/pool.h), and an allocation over half of that gets a block of its own
 * while the one being filled stays. A zeroed ss_arena is an empty one. Not
 * thread-safe; never blocks.
 */

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#define SS_ARENA_BLOCK ((size_t)1024)

typedef struct ss_arena_block ss_arena_block;

typedef struct ss_arena {
        char *next;             /* the free part of the block being filled */
        size_t avail;           /* its bytes */
        ss_arena_block *blocks; /* taken blocks, newest first (not the owner's region) */
} ss_arena;

/* An empty arena filling region[0..size) first, which its owner allocated and frees after
 * ss_arena_free(). */
static inline void ss_arena_init_in(ss_arena *a, void *region, size_t size)
{
        *a = (ss_arena){.next = region, .avail = size};
}

/* ss_arena_alloc_aligned()'s way when the block being filled has no room. */
void *ss_arena_grow(ss_arena *a, size_t size);

/* size bytes aligned to align (a power of two, at most alignof(max_align_t)) that live until
 * ss_arena_free(), or NULL on out-of-memory. Inline: a span's every copy comes here. */
static inline void *ss_arena_alloc_aligned(ss_arena *a, size_t size, size_t align)
{
        size_t pad = -(uintptr_t)a->next & (align - 1);
        void *p;

        if (size + pad > a->avail || size + pad < size)
                return ss_arena_grow(a, size);
        p = a->next + pad;
        a->next += size + pad;
        a->avail -= size + pad;
        return p;
}

/* size bytes aligned for any type. */
static inline void *ss_arena_alloc(ss_arena *a, size_t size)
{
        return ss_arena_alloc_aligned(a, size, alignof(max_align_t));
}

/* n elements of size bytes, overflow-checked. NULL on overflow or out-of-memory. */
void *ss_arena_array(ss_arena *a, size_t n, size_t size);

/* Give the blocks back (the owner's region is the owner's): the arena is empty and usable
 * again. Accepts a zeroed arena. */
void ss_arena_free(ss_arena *a);
