/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Giving memory back after a burst. glibc's malloc keeps what the daemon frees for reuse and
 * hands the kernel back only a free top of the heap, so after a burst (hundreds of clients
 * at once, a backend back after an outage) the spans, batches and input buffers are freed
 * but their pages stay resident, among the few allocations that live on: 512 connections'
 * burst left 85 MB resident of which malloc had 1.4 MB in use. An unref'd timer looks once a
 * second; when at least SS_HEAP_TRIM_MIN of the anonymous memory resident is not in use by
 * malloc, and malloc holds at least that much free, on two looks in a row (a burst still
 * going reuses its free memory at once), the loop thread's pool (base/pool.h) lets its kept
 * blocks go, which lie among the free memory and would pin its pages, and malloc_trim()
 * returns the free pages (MADV_DONTNEED: the heap keeps its shape, a next burst faults them
 * in again). Loop thread only; a look is mallinfo2(), and a read of /proc/self/statm when
 * malloc holds that much free.
 */

#include <uv.h>

#include "base/counters.h"

#define SS_HEAP_CHECK_MS 1000u
#define SS_HEAP_TRIM_MIN (4ull << 20)

typedef struct ss_heap ss_heap;

/* Start looking at the heap on loop. 0, -ENOMEM or a libuv error. */
int ss_heap_start(uv_loop_t *loop, ss_heap **ret);

/* heap.in_use_bytes and heap.free_bytes (malloc's) and heap.resident_bytes (VmRSS), read
 * now; heap.trims and heap.trimmed_bytes (the resident memory the trims gave back). */
void ss_heap_counters(const void *heap, ss_counters *out);

/* Stop; freed once the timer's handle has closed. Accepts NULL. */
void ss_heap_close(ss_heap *h);
