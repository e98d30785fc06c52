/* SPDX-License-Identifier: MIT */
#include "ss-buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ss_buf_init(ss_buf *b, size_t max)
{
        *b = (ss_buf){.max = max};
}

/* Move the contents back to the allocation's start (after ss_buf_take_tail()). */
static void unskip(ss_buf *b)
{
        if (!b->head)
                return;
        memmove(b->data - b->head, b->data, b->len);
        b->data -= b->head;
        b->cap += b->head;
        b->head = 0;
}

int ss_buf_reserve_slow(ss_buf *b, size_t extra)
{
        size_t want, cap;
        uint8_t *p;

        if (extra > b->max || b->len > b->max - extra)
                return -ENOBUFS;
        unskip(b);
        want = b->len + extra;
        if (want <= b->cap)
                return 0;
        /* cap never exceeds max: ss_buf_append()'s inline path relies on it. */
        cap = b->cap ? b->cap : 256;
        while (cap < want)
                cap = cap > b->max / 2 ? b->max : cap * 2;
        if (cap > b->max)
                cap = b->max;
        p = realloc(b->data, cap);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = cap;
        return 0;
}

int ss_buf_append_slow(ss_buf *b, const void *p, size_t n)
{
        int r;

        if (n == 0)
                return 0;
        r = ss_buf_reserve(b, n);
        if (r < 0)
                return r;
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

void ss_buf_take_tail(ss_buf *b, size_t n)
{
        b->head += b->cap - n;
        b->data += b->cap - n;
        b->cap = n;
        b->len = n;
}

void ss_buf_consume(ss_buf *b, size_t n)
{
        if (n >= b->len) {
                b->len = 0;
                return;
        }
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
}

void ss_buf_shrink(ss_buf *b, size_t keep)
{
        size_t cap = b->len > keep ? b->len : keep;
        uint8_t *p;

        if (cap >= ss_buf_allocated(b))
                return;
        unskip(b);
        if (cap == 0) {
                ss_buf_free(b);
                return;
        }
        p = realloc(b->data, cap);
        if (!p)
                return;
        b->data = p;
        b->cap = cap;
}

void ss_buf_free(ss_buf *b)
{
        if (!b)
                return;
        free(b->data ? b->data - b->head : NULL);
        b->data = NULL;
        b->len = b->cap = b->head = 0;
}

int ss_buf_printf(ss_buf *b, const char *fmt, ...)
{
        char small[256];
        va_list ap;
        int n, r;

        va_start(ap, fmt);
        n = vsnprintf(small, sizeof(small), fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        if ((size_t)n < sizeof(small))
                return ss_buf_append(b, small, (size_t)n);
        /* Longer text is formatted in place, into room reserved for it and its NUL. */
        r = ss_buf_reserve(b, (size_t)n + 1);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return 0;
}

int ss_buf_msgpack_write(void *data, const char *buf, size_t len)
{
        return ss_buf_append(data, buf, len);
}
