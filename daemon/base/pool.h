/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Freed blocks kept for reuse, by size class: spans and their stores' blocks
 * come and go by the hundred thousand a second, in batches, and glibc's
 * malloc and free took about 1 000 instructions a span for them (its
 * per-thread cache holds 7 blocks a size). A thread keeps at most
 * SS_POOL_KEEP_BYTES of freed blocks; past that, and for blocks over
 * SS_POOL_MAX_SIZE, these are malloc() and free(). Each thread has its own
 * pool (a block freed on another thread stays there); never blocks. Under
 * AddressSanitizer nothing is kept, so that it sees every use after free.
 */

#include <stddef.h>

/* 0 under AddressSanitizer (gcc's or clang's), where every block is malloc'd and freed. */
#if defined(__SANITIZE_ADDRESS__)
#define SS_POOL_KEEPS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SS_POOL_KEEPS 0
#endif
#endif
#ifndef SS_POOL_KEEPS
#define SS_POOL_KEEPS 1
#endif

#define SS_POOL_STEP       32u
#define SS_POOL_MAX_SIZE   2048u
#define SS_POOL_KEEP_BYTES ((size_t)1 << 20)

/* The class of a block of size bytes: 1..SS_POOL_MAX_SIZE / SS_POOL_STEP, or 0 when it is
 * too large to be kept. */
static inline unsigned ss_pool_class(size_t size)
{
        return size && size <= SS_POOL_MAX_SIZE
                   ? (unsigned)((size + SS_POOL_STEP - 1) / SS_POOL_STEP)
                   : 0;
}

/* The bytes a block of class c (> 0) holds: size rounded up, all usable. */
static inline size_t ss_pool_class_size(unsigned c)
{
        return (size_t)c * SS_POOL_STEP;
}

/* A block of ss_pool_class_size(c) bytes for c > 0, else of size bytes (malloc); NULL on
 * out-of-memory. */
void *ss_pool_get(unsigned c, size_t size);

/* Give back p (NULL is ignored), got with class c: kept for reuse, or freed. */
void ss_pool_put(void *p, unsigned c);

/* Free every block this thread's pool keeps: kept blocks lie among the heap's free memory
 * and would hold its pages resident (base/heap.h). */
void ss_pool_release(void);

/* The bytes this thread's pool keeps for reuse (at most SS_POOL_KEEP_BYTES). */
size_t ss_pool_kept_bytes(void);
