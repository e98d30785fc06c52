/* SPDX-License-Identifier: MIT */
#include "base/heap.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/log.h"
#include "base/pool.h"

struct ss_heap {
        uv_timer_t timer;
        uint64_t trims;
        uint64_t trimmed; /* resident bytes the trims gave back */
        uint64_t floor;   /* anonymous memory resident beyond malloc's use after the last trim */
        bool worth;       /* the last look found a trim worth it */
};

/*
 * The memory resident, in bytes, from /proc/self/statm: all of it (VmRSS) in *all, and the
 * anonymous part (resident less shared, the file-backed pages), which malloc's free pages
 * add to, returned. 0 and *all 0 when it cannot be read.
 */
static uint64_t resident(uint64_t *all)
{
        unsigned long long size, res, shared;
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
        char text[128];
        ssize_t n;
        int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

        *all = 0;
        if (fd < 0)
                return 0;
        n = read(fd, text, sizeof(text) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        text[n] = '\0';
        if (sscanf(text, "%llu %llu %llu", &size, &res, &shared) != 3 || shared > res)
                return 0;
        *all = (uint64_t)res * page;
        return (uint64_t)(res - shared) * page;
}

static void on_check(uv_timer_t *t)
{
        ss_heap *h = t->data;
        struct mallinfo2 m = mallinfo2();
        uint64_t in_use = m.uordblks, all, before = 0, after, released, ns;
        bool worth;

        /* statm only when malloc holds enough free for a trim to be worth a look. */
        if (m.fordblks >= SS_HEAP_TRIM_MIN)
                before = resident(&all);
        worth = before >= in_use + h->floor + SS_HEAP_TRIM_MIN;
        if (!worth || !h->worth) {
                h->worth = worth;
                return;
        }
        h->worth = false;
        ns = uv_hrtime();
        ss_pool_release();
        (void)malloc_trim(0);
        ns = uv_hrtime() - ns;
        after = resident(&all);
        released = after < before ? before - after : 0;
        /* What no trim gives back (thread stacks, libraries' data, malloc's own): the next
         * trim waits for SS_HEAP_TRIM_MIN more than that. */
        h->floor = after > in_use ? after - in_use : 0;
        h->trims++;
        h->trimmed += released;
        ss_log(SS_LOG_DEBUG,
               "gave %llu kB of freed memory back in %llu us (%llu kB in use, %llu kB free) "
               "event=heap-trimmed released_kb=%llu",
               (unsigned long long)(released >> 10), (unsigned long long)(ns / 1000),
               (unsigned long long)(in_use >> 10), (unsigned long long)(m.fordblks >> 10),
               (unsigned long long)(released >> 10));
}

int ss_heap_start(uv_loop_t *loop, ss_heap **ret)
{
        ss_heap *h = calloc(1, sizeof(*h));
        int r;

        *ret = NULL;
        if (!h)
                return -ENOMEM;
        r = uv_timer_init(loop, &h->timer);
        if (r < 0) {
                free(h);
                return r;
        }
        h->timer.data = h;
        uv_unref((uv_handle_t *)&h->timer);
        r = uv_timer_start(&h->timer, on_check, SS_HEAP_CHECK_MS, SS_HEAP_CHECK_MS);
        if (r < 0) {
                ss_heap_close(h);
                return r;
        }
        *ret = h;
        return 0;
}

void ss_heap_counters(const void *heap, ss_counters *out)
{
        const ss_heap *h = heap;
        struct mallinfo2 m = mallinfo2();
        uint64_t all;

        (void)resident(&all);
        ss_counters_add(out, "heap.", "in_use_bytes", m.uordblks);
        ss_counters_add(out, "heap.", "free_bytes", m.fordblks);
        ss_counters_add(out, "heap.", "resident_bytes", all);
        ss_counters_add(out, "heap.", "trims", h->trims);
        ss_counters_add(out, "heap.", "trimmed_bytes", h->trimmed);
}

static void on_closed(uv_handle_t *t)
{
        free(t->data);
}

void ss_heap_close(ss_heap *h)
{
        if (h)
                uv_close((uv_handle_t *)&h->timer, on_closed);
}
