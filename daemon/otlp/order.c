/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "otlp/otlp.h"

typedef struct group {
        uint64_t resource_id;
        size_t pos; /* count, then next slot in the order */
} group;

/* Group index of every span, groups numbered in order of first appearance. */
static size_t assign_groups(ss_span *const *spans, size_t n, group *g, size_t *gidx)
{
        size_t ng = 0, last = 0;

        for (size_t i = 0; i < n; i++) {
                uint64_t id = spans[i]->resource->id;
                size_t k = last;

                /* Spans of one trace mostly share a resource: try the last hit first. */
                if (ng == 0 || g[k].resource_id != id) {
                        for (k = 0; k < ng && g[k].resource_id != id; k++)
                                ;
                        if (k == ng)
                                g[ng++] = (group){.resource_id = id};
                }
                g[k].pos++;
                gidx[i] = last = k;
        }
        return ng;
}

int ss_otlp_order(ss_span *const *spans, size_t n, size_t *ret_order)
{
        size_t ng, start = 0, *gidx;
        group *g;

        if (n == 0)
                return 0;
        if (n > SIZE_MAX / (sizeof(*g) + sizeof(*gidx)))
                return -ENOMEM;
        g = malloc(n * (sizeof(*g) + sizeof(*gidx)));
        if (!g)
                return -ENOMEM;
        gidx = (size_t *)(g + n);
        ng = assign_groups(spans, n, g, gidx);
        for (size_t k = 0; k < ng; k++) {
                size_t count = g[k].pos;

                g[k].pos = start;
                start += count;
        }
        for (size_t i = 0; i < n; i++)
                ret_order[g[gidx[i]].pos++] = i;
        free(g);
        return 0;
}
