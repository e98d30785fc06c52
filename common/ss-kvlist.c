/* SPDX-License-Identifier: MIT */
#include "ss-kvlist.h"

#include <errno.h>
#include <string.h>

static int hexdigit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char)(c | 0x20);
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Trim blanks and percent-decode s in place; the result starts at *ret. */
static int decode(char *s, char **ret)
{
        char *end = s + strlen(s), *w;

        while (*s == ' ' || *s == '\t')
                s++;
        while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
                *--end = '\0';
        w = *ret = s;
        for (const char *p = s; *p; p++) {
                int hi, lo;

                if (*p != '%') {
                        *w++ = *p;
                        continue;
                }
                hi = hexdigit(p[1]);
                lo = hi < 0 ? -1 : hexdigit(p[2]);
                if (lo < 0)
                        return -EINVAL;
                *w++ = (char)(hi << 4 | lo);
                p += 2;
        }
        *w = '\0';
        return 0;
}

static int parse_item(char *item, int (*fn)(char *key, char *value, void *ctx), void *ctx)
{
        char *eq = strchr(item, '='), *key, *value;

        if (!eq)
                return item[strspn(item, " \t")] ? -EINVAL : 0;
        *eq = '\0';
        if (decode(item, &key) < 0 || decode(eq + 1, &value) < 0 || !key[0])
                return -EINVAL;
        return fn(key, value, ctx);
}

int ss_kvlist_parse(char *s, int (*fn)(char *key, char *value, void *ctx), void *ctx)
{
        char *save = NULL;

        for (char *item = strtok_r(s, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                int r = parse_item(item, fn, ctx);

                if (r < 0)
                        return r;
        }
        return 0;
}
