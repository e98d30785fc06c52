/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A protobuf writer that writes back to front into the spare room of an
 * ss_buf: a nested message's fields are written first, so its length is
 * known when its prefix is written, and no length is computed twice. Fields
 * (and the elements of a repeated field) are therefore written last first.
 * ss_pbw_finish() appends the bytes to what the buffer held: into an empty
 * buffer without moving them (ss_buf_take_tail()). Any thread.
 *
 *      size_t m = ss_pbw_pos(w);
 *      ss_pbw_varint_opt(w, 2, count);
 *      ss_pbw_str_field(w, 1, name, len);
 *      ss_pbw_len_field(w, 3, m);     // field 3: the message {1: name, 2: count}
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ss-buf.h"

enum { SS_PB_VARINT = 0, SS_PB_I64 = 1, SS_PB_LEN = 2, SS_PB_I32 = 5 };

typedef struct ss_pbw {
        ss_buf *out;
        uint8_t *p;   /* the first written byte: writing goes down from out->data + out->cap */
        uint8_t *lo;  /* out->data + out->len: below it is what out held before */
        uint8_t *end; /* out->data + out->cap */
        int err;      /* the first failure; writing stops at it */
} ss_pbw;

/* Start writing after out's bytes with room for about hint bytes (more is taken as needed).
 * Fails only in ss_pbw_finish(). */
void ss_pbw_init(ss_pbw *w, ss_buf *out, size_t hint);

/* Append what was written to out (an empty out takes them where they are, at the end of
 * its allocation): 0, or the first failure (-ENOMEM, -ENOBUFS past out's maximum) with out's
 * length as it was. */
int ss_pbw_finish(ss_pbw *w);

/* Make room for n more bytes; false (w->err set) when there is none to be had. */
bool ss_pbw_grow(ss_pbw *w, size_t n);

/* Bytes written so far: a mark that stays valid when the buffer moves. */
static inline size_t ss_pbw_pos(const ss_pbw *w)
{
        return (size_t)(w->end - w->p);
}

/* Whether n more bytes fit the room there is, without growing the buffer. */
static inline bool ss_pbw_fits(const ss_pbw *w, size_t n)
{
        return (size_t)(w->p - w->lo) >= n;
}

static inline bool ss_pbw_room(ss_pbw *w, size_t n)
{
        return ss_pbw_fits(w, n) || ss_pbw_grow(w, n);
}

static inline size_t ss_pb_varint_len(uint64_t v)
{
        size_t n = 1;

        while (v >= 0x80) {
                v >>= 7;
                n++;
        }
        return n;
}

/*
 * The raw writers: each writes below p, which must have the room, and returns the new first
 * byte. A caller keeps p in a local for a run of fields: a byte stored through w->p might be
 * w->p itself as far as the compiler knows, so writers on the struct reload it after every
 * byte, and these do not.
 */
static inline uint8_t *ss_pb_varint(uint8_t *p, uint64_t v)
{
        size_t n;
        uint8_t *q;

        if (v < 0x80) {
                *--p = (uint8_t)v;
                return p;
        }
        n = ss_pb_varint_len(v);
        p -= n;
        for (q = p; v >= 0x80; v >>= 7)
                *q++ = (uint8_t)(v | 0x80);
        *q = (uint8_t)v;
        return p;
}

static inline uint8_t *ss_pb_bytes(uint8_t *p, const void *s, size_t n)
{
        p -= n;
        ss_copy(p, s, n);
        return p;
}

/* A tag: field numbers below 16 take one byte. */
static inline uint8_t *ss_pb_tag(uint8_t *p, uint32_t field, unsigned wire_type)
{
        return ss_pb_varint(p, (uint64_t)field << 3 | wire_type);
}

/* The prefix of a length-delimited field of len bytes, written below them. */
static inline uint8_t *ss_pb_len_field(uint8_t *p, uint32_t field, size_t len)
{
        return ss_pb_tag(ss_pb_varint(p, len), field, SS_PB_LEN);
}

/* A string or bytes field, written even when empty (a oneof member's value). */
static inline uint8_t *ss_pb_str_field(uint8_t *p, uint32_t field, const void *s, size_t n)
{
        return ss_pb_len_field(ss_pb_bytes(p, s, n), field, n);
}

static inline uint8_t *ss_pb_varint_field(uint8_t *p, uint32_t field, uint64_t v)
{
        return ss_pb_tag(ss_pb_varint(p, v), field, SS_PB_VARINT);
}

/* n bytes of v, little-endian: fixed32, fixed64, double. */
static inline uint8_t *ss_pb_le(uint8_t *p, uint64_t v, int n)
{
        p -= n;
        for (int i = 0; i < n; i++)
                p[i] = (uint8_t)(v >> (8 * i));
        return p;
}

static inline uint8_t *ss_pb_fixed64_field(uint8_t *p, uint32_t field, uint64_t v)
{
        return ss_pb_tag(ss_pb_le(p, v, 8), field, SS_PB_I64);
}

static inline uint8_t *ss_pb_double_field(uint8_t *p, uint32_t field, double d)
{
        uint64_t v;

        memcpy(&v, &d, sizeof(v));
        return ss_pb_fixed64_field(p, field, v);
}

/* The most a field of a tag and a varint takes (a length prefix and its tag, say). */
#define SS_PBW_FIELD_MAX 15u

/*
 * The writers on an ss_pbw: each makes room for what it writes and writes with the raw
 * writer. Where there is no room to be had, w->err is set and nothing more is written.
 */
static inline void ss_pbw_varint(ss_pbw *w, uint64_t v)
{
        if (ss_pbw_room(w, ss_pb_varint_len(v)))
                w->p = ss_pb_varint(w->p, v);
}

static inline void ss_pbw_bytes(ss_pbw *w, const void *p, size_t n)
{
        if (ss_pbw_room(w, n))
                w->p = ss_pb_bytes(w->p, p, n);
}

static inline void ss_pbw_le(ss_pbw *w, uint64_t v, int n)
{
        if (ss_pbw_room(w, (size_t)n))
                w->p = ss_pb_le(w->p, v, n);
}

static inline void ss_pbw_tag(ss_pbw *w, uint32_t field, unsigned wire_type)
{
        ss_pbw_varint(w, (uint64_t)field << 3 | wire_type);
}

/* A length-delimited field holding what was written since mark. */
static inline void ss_pbw_len_field(ss_pbw *w, uint32_t field, size_t mark)
{
        ss_pbw_varint(w, ss_pbw_pos(w) - mark);
        ss_pbw_tag(w, field, SS_PB_LEN);
}

/* A string or bytes field, written even when empty (a oneof member's value). */
static inline void ss_pbw_str_field(ss_pbw *w, uint32_t field, const void *p, size_t n)
{
        ss_pbw_bytes(w, p, n);
        ss_pbw_varint(w, n);
        ss_pbw_tag(w, field, SS_PB_LEN);
}

/* A proto3 string or bytes field: left out when empty. */
static inline void ss_pbw_str_opt(ss_pbw *w, uint32_t field, const void *p, size_t n)
{
        if (n)
                ss_pbw_str_field(w, field, p, n);
}

/* A proto3 scalar: left out when zero. */
static inline void ss_pbw_varint_opt(ss_pbw *w, uint32_t field, uint64_t v)
{
        if (!v)
                return;
        ss_pbw_varint(w, v);
        ss_pbw_tag(w, field, SS_PB_VARINT);
}

static inline void ss_pbw_fixed64_opt(ss_pbw *w, uint32_t field, uint64_t v)
{
        if (!v)
                return;
        ss_pbw_le(w, v, 8);
        ss_pbw_tag(w, field, SS_PB_I64);
}

static inline void ss_pbw_fixed32_opt(ss_pbw *w, uint32_t field, uint32_t v)
{
        if (!v)
                return;
        ss_pbw_le(w, v, 4);
        ss_pbw_tag(w, field, SS_PB_I32);
}
