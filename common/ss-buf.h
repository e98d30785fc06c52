/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * A growable byte buffer with a hard maximum fixed at creation, so that no
 * peer-controlled size can grow it without bound. Not thread-safe: the owner
 * serialises access. Functions return 0 or -errno and never abort.
 */
typedef struct ss_buf {
        uint8_t *data;
        size_t len;
        size_t cap;
        size_t max;
} ss_buf;

/* Initialise an empty buffer that may grow to max bytes. Allocates nothing. */
void ss_buf_init(ss_buf *b, size_t max);

/* Make room for extra more bytes: -ENOBUFS past max, -ENOMEM if malloc fails. */
int ss_buf_reserve(ss_buf *b, size_t extra);

/* Append n bytes; on failure the buffer is unchanged. */
int ss_buf_append(ss_buf *b, const void *p, size_t n);

/* Drop the first n bytes (n <= len), keeping the rest in order. */
void ss_buf_consume(ss_buf *b, size_t n);

/* Forget the contents, keep the allocation. */
static inline void ss_buf_reset(ss_buf *b)
{
        b->len = 0;
}

/* Release the memory; the buffer may be re-used after ss_buf_init(). Accepts NULL. */
void ss_buf_free(ss_buf *b);

/* A msgpack_packer_write callback appending to the ss_buf passed as data. */
int ss_buf_msgpack_write(void *data, const char *buf, size_t len);
