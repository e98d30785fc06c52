/* SPDX-License-Identifier: MIT */
#include "base/pool.h"

#include <stdlib.h>

#define CLASSES (SS_POOL_MAX_SIZE / SS_POOL_STEP)

typedef struct kept {
        struct kept *next;
} kept;

static _Thread_local struct {
        kept *head[CLASSES + 1];
        size_t bytes;
} pool;

void *ss_pool_get(unsigned c, size_t size)
{
        kept *k;

        if (!c)
                return malloc(size);
        k = pool.head[c];
        if (!SS_POOL_KEEPS || !k)
                return malloc(ss_pool_class_size(c));
        pool.head[c] = k->next;
        pool.bytes -= ss_pool_class_size(c);
        /* A kept block is cold (freed a batch ago): the next get of its class would wait
         * on reading its link, and its caller on writing it. */
        __builtin_prefetch(k->next, 1);
        return k;
}

void ss_pool_put(void *p, unsigned c)
{
        kept *k = p;

        if (!p)
                return;
        if (!SS_POOL_KEEPS || !c || pool.bytes + ss_pool_class_size(c) > SS_POOL_KEEP_BYTES) {
                free(p);
                return;
        }
        k->next = pool.head[c];
        pool.head[c] = k;
        pool.bytes += ss_pool_class_size(c);
}

void ss_pool_release(void)
{
        for (unsigned c = 1; c <= CLASSES; c++)
                while (pool.head[c]) {
                        kept *k = pool.head[c];

                        pool.head[c] = k->next;
                        free(k);
                }
        pool.bytes = 0;
}

size_t ss_pool_kept_bytes(void)
{
        return pool.bytes;
}
