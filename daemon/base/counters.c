/* SPDX-License-Identifier: MIT */
#include "base/counters.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void ss_counters_init(ss_counters *c)
{
        *c = (ss_counters){0};
}

static int grow(ss_counters *c)
{
        size_t cap = c->cap ? c->cap * 2 : 64;
        ss_stat *v;
        char *names;

        if (c->cap >= SS_COUNTERS_MAX)
                return -E2BIG;
        v = realloc(c->v, cap * sizeof(*v));
        if (!v)
                return -ENOMEM;
        c->v = v;
        names = realloc(c->names, cap * SS_COUNTER_NAME_MAX);
        if (!names)
                return -ENOMEM;
        c->names = names;
        c->cap = cap;
        /* The names moved: point at them again. */
        for (size_t i = 0; i < c->n; i++)
                c->v[i].name = c->names + i * SS_COUNTER_NAME_MAX;
        return 0;
}

void ss_counters_add(ss_counters *c, const char *prefix, const char *name, uint64_t value)
{
        size_t np, nn;
        char *dst;

        if (c->err)
                return;
        if (c->n == c->cap && (c->err = grow(c)) < 0)
                return;
        dst = c->names + c->n * SS_COUNTER_NAME_MAX;
        /* prefix then name, cut at the bound: snprintf() cost 850 instructions a counter, a
         * STATS reply or a scrape has hundreds. */
        np = prefix ? strnlen(prefix, SS_COUNTER_NAME_MAX - 1) : 0;
        nn = strnlen(name, SS_COUNTER_NAME_MAX - 1 - np);
        memcpy(dst, prefix ? prefix : "", np);
        memcpy(dst + np, name, nn);
        dst[np + nn] = '\0';
        c->v[c->n++] = (ss_stat){.name = dst, .value = value};
}

uint64_t ss_counters_get(const ss_counters *c, const char *name)
{
        for (size_t i = 0; i < c->n; i++)
                if (strcmp(c->v[i].name, name) == 0)
                        return c->v[i].value;
        return 0;
}

uint64_t ss_counters_sum(const ss_counters *c, const char *prefix, const char *suffix)
{
        size_t np = strlen(prefix), ns = strlen(suffix);
        uint64_t sum = 0;

        for (size_t i = 0; i < c->n; i++) {
                const char *name = c->v[i].name;
                size_t n = strlen(name);

                if (n >= np + ns && strncmp(name, prefix, np) == 0 &&
                    strcmp(name + n - ns, suffix) == 0)
                        sum += c->v[i].value;
        }
        return sum;
}

void ss_counters_free(ss_counters *c)
{
        free(c->v);
        free(c->names);
        *c = (ss_counters){0};
}
