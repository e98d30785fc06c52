/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * A growable byte buffer with a hard maximum fixed at creation, so that no
 * peer-controlled size can grow it without bound. Not thread-safe: the owner
 * serialises access. Functions return 0 or -errno and never abort.
 */
typedef struct ss_buf {
        uint8_t *data;
        size_t len;
        size_t cap; /* bytes from data to the allocation's end */
        size_t max;
        size_t head; /* bytes of the allocation before data: see ss_buf_take_tail() */
} ss_buf;

/* Initialise an empty buffer that may grow to max bytes. Allocates nothing. */
void ss_buf_init(ss_buf *b, size_t max);

/* ss_buf_reserve() when the allocation lacks the room, or max forbids it. */
int ss_buf_reserve_slow(ss_buf *b, size_t extra);

/* Make room for extra more bytes: -ENOBUFS past max, -ENOMEM if malloc fails. Room that is
 * there already (most calls) is found inline; max is checked too, since a caller may lower
 * it below the allocation for a while. */
static inline int ss_buf_reserve(ss_buf *b, size_t extra)
{
        if (extra <= b->cap - b->len && b->len + extra <= b->max)
                return 0;
        return ss_buf_reserve_slow(b, extra);
}

/* ss_buf_append() when the bytes do not fit the current allocation. */
int ss_buf_append_slow(ss_buf *b, const void *p, size_t n);

/* Append n bytes; on failure the buffer is unchanged. Most appends (msgpack
 * writes a few bytes at a time) fit the allocation: that path is inline. */
static inline int ss_buf_append(ss_buf *b, const void *p, size_t n)
{
        if (n == 0 || n > b->cap - b->len)
                return ss_buf_append_slow(b, p, n);
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

/* Make the last n bytes of the room (n <= cap) the contents of b, empty before: for a
 * writer that filled the buffer from its end, so that they need not move to its start. The
 * bytes before them stay allocated until b grows, shrinks or is freed. */
void ss_buf_take_tail(ss_buf *b, size_t n);

/* Drop the first n bytes (n <= len), keeping the rest in order. */
void ss_buf_consume(ss_buf *b, size_t n);

/* The bytes b holds allocated: its room and what lies before data (ss_buf_take_tail()). */
static inline size_t ss_buf_allocated(const ss_buf *b)
{
        return b->cap + b->head;
}

/* Forget the contents, keep the allocation. */
static inline void ss_buf_reset(ss_buf *b)
{
        b->len = 0;
}

/* Give back memory past max(len, keep) bytes (a buffer that once held a large frame). Never
 * fails: if realloc does, the buffer keeps its allocation. */
void ss_buf_shrink(ss_buf *b, size_t keep);

/* Release the memory; the buffer may be re-used after ss_buf_init(). Accepts NULL. */
void ss_buf_free(ss_buf *b);

/* Append formatted text (no NUL); on failure the buffer is unchanged. 0, -ENOBUFS, -ENOMEM,
 * -EINVAL for a bad format. */
int ss_buf_printf(ss_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A msgpack_packer_write callback appending to the ss_buf passed as data. */
int ss_buf_msgpack_write(void *data, const char *buf, size_t len);

/* Copy n <= 32 bytes with a few overlapping word moves, no call: keys, names and short
 * values (msgpack, protobuf, the stores), for which a call to memcpy() costs more than the
 * copy. No byte is read when n is 0 (src may then be NULL). */
static inline void ss_copy_small(void *dst, const void *src, size_t n)
{
        uint8_t *p = dst;
        const uint8_t *s = src;
        uint64_t a, b, c, d;
        uint32_t x, y;

        if (n > 16) {
                memcpy(&a, s, 8);
                memcpy(&b, s + 8, 8);
                memcpy(&c, s + n - 16, 8);
                memcpy(&d, s + n - 8, 8);
                memcpy(p, &a, 8);
                memcpy(p + 8, &b, 8);
                memcpy(p + n - 16, &c, 8);
                memcpy(p + n - 8, &d, 8);
        } else if (n >= 8) {
                memcpy(&a, s, 8);
                memcpy(&b, s + n - 8, 8);
                memcpy(p, &a, 8);
                memcpy(p + n - 8, &b, 8);
        } else if (n >= 4) {
                memcpy(&x, s, 4);
                memcpy(&y, s + n - 4, 4);
                memcpy(p, &x, 4);
                memcpy(p + n - 4, &y, 4);
        } else {
                for (size_t i = 0; i < n; i++)
                        p[i] = s[i];
        }
}

/* Copy n bytes: up to 32 inline, longer ones with memcpy(). */
static inline void ss_copy(void *dst, const void *src, size_t n)
{
        if (n > 32)
                memcpy(dst, src, n);
        else
                ss_copy_small(dst, src, n);
}

/* Whether a[0..n) and b[0..n) are equal: up to 32 bytes with overlapping word loads, no
 * call (keys compared while looking one up); longer with memcmp(). No byte is read when n
 * is 0. */
static inline bool ss_bytes_eq(const void *a, const void *b, size_t n)
{
        const uint8_t *p = a, *q = b;
        uint64_t x0, x1, y0, y1;
        uint32_t u0, u1, v0, v1;

        if (n > 32)
                return memcmp(a, b, n) == 0;
        if (n > 16) {
                memcpy(&x0, p, 8);
                memcpy(&y0, q, 8);
                memcpy(&x1, p + 8, 8);
                memcpy(&y1, q + 8, 8);
                if ((x0 ^ y0) | (x1 ^ y1))
                        return false;
                p += n - 16;
                q += n - 16;
                n = 16;
        }
        if (n >= 8) {
                memcpy(&x0, p, 8);
                memcpy(&y0, q, 8);
                memcpy(&x1, p + n - 8, 8);
                memcpy(&y1, q + n - 8, 8);
                return !((x0 ^ y0) | (x1 ^ y1));
        }
        if (n >= 4) {
                memcpy(&u0, p, 4);
                memcpy(&v0, q, 4);
                memcpy(&u1, p + n - 4, 4);
                memcpy(&v1, q + n - 4, 4);
                return !((u0 ^ v0) | (u1 ^ v1));
        }
        for (size_t i = 0; i < n; i++)
                if (p[i] != q[i])
                        return false;
        return true;
}
