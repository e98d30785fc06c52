/* SPDX-License-Identifier: MIT */
#include "base/user.h"

#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
        uid_t uid;
        char *name; /* NULL: the uid has no name */
} entry;

static entry cache[SS_USER_CACHE_MAX];
static size_t n_cache;

static char *lookup(uid_t uid)
{
        struct passwd pw, *res = NULL;
        char buf[4096];

        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res || !res->pw_name)
                return NULL;
        return strdup(res->pw_name);
}

const char *ss_user_name(uid_t uid)
{
        char *name;

        for (size_t i = 0; i < n_cache; i++)
                if (cache[i].uid == uid)
                        return cache[i].name;
        name = lookup(uid);
        /* A full cache still answers; the uid is looked up again next time. */
        if (n_cache < SS_USER_CACHE_MAX) {
                cache[n_cache++] = (entry){.uid = uid, .name = name};
                return name;
        }
        free(name);
        return NULL;
}
