/* SPDX-License-Identifier: MIT */
#include "conf/parse.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ss_conf_bad(const char *what, const char *value, const char *expected)
{
        fprintf(stderr, "sidespand: invalid %s: '%s' (%s)\n", what, value, expected);
        return -EINVAL;
}

int ss_conf_u64(const char *what, const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        char expected[96], *end;
        unsigned long long v;

        snprintf(expected, sizeof(expected), "expected an integer from %llu to %llu",
                 (unsigned long long)min, (unsigned long long)max);
        errno = 0;
        v = strtoull(s, &end, 10);
        if (!*s || *s == '-' || *end || errno || v < min || v > max)
                return ss_conf_bad(what, s, expected);
        *ret = v;
        return 0;
}

const char *ss_conf_env(const char *name)
{
        const char *v = getenv(name);

        return v && *v ? v : NULL;
}

const char *ss_conf_env2(const char *a, const char *b, const char **ret_name)
{
        const char *v = ss_conf_env(a);

        *ret_name = v ? a : b;
        return v ? v : ss_conf_env(b);
}

int ss_conf_set_str(char **dst, const char *value)
{
        char *p = strdup(value);

        if (!p)
                return -ENOMEM;
        free(*dst);
        *dst = p;
        return 0;
}

int ss_conf_path(const char *what, const char *value, char **dst)
{
        if (!*value)
                return ss_conf_bad(what, value, "expected a path");
        return ss_conf_set_str(dst, value);
}

/* One name or number; -ENOENT when no such user or group. */
static int one_id(const char *item, int groups, uint32_t *ret)
{
        char buf[4096], *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(item, &end, 10);
        if (*item && *item != '-' && !*end && !errno && v < UINT32_MAX) {
                *ret = (uint32_t)v;
                return 0;
        }
        if (groups) {
                struct group gr, *g = NULL;

                if (getgrnam_r(item, &gr, buf, sizeof(buf), &g) != 0 || !g)
                        return -ENOENT;
                *ret = (uint32_t)g->gr_gid;
        } else {
                struct passwd pw, *p = NULL;

                if (getpwnam_r(item, &pw, buf, sizeof(buf), &p) != 0 || !p)
                        return -ENOENT;
                *ret = (uint32_t)p->pw_uid;
        }
        return 0;
}

int ss_conf_ids(const char *what, const char *value, int groups, uint32_t *v, size_t max, size_t *n)
{
        char *list = strdup(value), *save = NULL;
        int r = 0;

        if (!list)
                return -ENOMEM;
        for (char *t = strtok_r(list, ",", &save); t && r == 0; t = strtok_r(NULL, ",", &save)) {
                if (*n == max)
                        r = ss_conf_bad(what, value, "too many entries");
                else if (one_id(t, groups, &v[*n]) < 0)
                        r = ss_conf_bad(what, t, groups ? "no such group" : "no such user");
                else
                        (*n)++;
        }
        free(list);
        /* An empty list is not "nobody", which would read as "anyone": say so. */
        if (r == 0 && *n == 0)
                r = ss_conf_bad(what, value,
                                groups ? "expected at least one group"
                                       : "expected at least one user");
        return r;
}
