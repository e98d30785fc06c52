/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A scratch arena: many small allocations served from a few large blocks and
 * freed all at once, for short-lived trees such as an encoder's request.
 * Allocations are aligned for any type. Not thread-safe; never blocks.
 */

#include <stddef.h>

typedef struct ss_arena_block ss_arena_block;

typedef struct ss_arena {
        ss_arena_block *head;
} ss_arena;

/* size bytes that live until ss_arena_free(), or NULL on out-of-memory. */
void *ss_arena_alloc(ss_arena *a, size_t size);

/* n elements of size bytes, overflow-checked. NULL on overflow or out-of-memory. */
void *ss_arena_array(ss_arena *a, size_t n, size_t size);

/* Free every block; the arena is empty and usable again. */
void ss_arena_free(ss_arena *a);
