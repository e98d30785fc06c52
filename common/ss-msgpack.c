/* SPDX-License-Identifier: MIT */
#include "ss-msgpack.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/*
 * Skip one msgpack object at *p (of end - *p bytes), checking that every
 * array and map declares no more elements than the bytes left could hold
 * (one byte each at least): msgpack-c allocates the declared count before it
 * reads one element, so a 5-byte header could otherwise ask for 2^32
 * objects. Nesting deeper than SS_WIRE_DEPTH_MAX, and more than
 * SS_WIRE_MAX_OBJECTS objects in all, are refused as well.
 */
/* The msgpack tags 0xc4..0xdf: the length field's size, the fixed body, containers. */
typedef struct skip_kind {
        uint8_t len_bytes, fixed;
        bool map, array;
} skip_kind;

#define K(tag, len_bytes, fixed, map, array) [(tag)-0xc4] = {len_bytes, fixed, map, array}
/* clang-format off */
static const skip_kind skip_kinds[0xe0 - 0xc4] = {
        K(0xc4, 1, 0, 0, 0), K(0xc5, 2, 0, 0, 0), K(0xc6, 4, 0, 0, 0),          /* bin */
        K(0xc7, 1, 1, 0, 0), K(0xc8, 2, 1, 0, 0), K(0xc9, 4, 1, 0, 0),          /* ext */
        K(0xca, 0, 4, 0, 0), K(0xcb, 0, 8, 0, 0),                               /* float */
        K(0xcc, 0, 1, 0, 0), K(0xcd, 0, 2, 0, 0), K(0xce, 0, 4, 0, 0), K(0xcf, 0, 8, 0, 0),
        K(0xd0, 0, 1, 0, 0), K(0xd1, 0, 2, 0, 0), K(0xd2, 0, 4, 0, 0), K(0xd3, 0, 8, 0, 0),
        K(0xd4, 0, 2, 0, 0), K(0xd5, 0, 3, 0, 0), K(0xd6, 0, 5, 0, 0),          /* fixext */
        K(0xd7, 0, 9, 0, 0), K(0xd8, 0, 17, 0, 0),
        K(0xd9, 1, 0, 0, 0), K(0xda, 2, 0, 0, 0), K(0xdb, 4, 0, 0, 0),          /* str */
        K(0xdc, 2, 0, 0, 1), K(0xdd, 4, 0, 0, 1),                               /* array */
        K(0xde, 2, 0, 1, 0), K(0xdf, 4, 0, 1, 0),                               /* map */
};
/* clang-format on */
#undef K

static int skip_object(const uint8_t **p, const uint8_t *end, unsigned depth, uint32_t *objects)
{
        uint64_t count = 0, body = 0;
        uint8_t c;

        if (*p >= end || depth > SS_WIRE_DEPTH_MAX || *objects == 0)
                return -EBADMSG;
        (*objects)--;
        c = *(*p)++;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
                return 0; /* fixint, nil, bool */
        if ((c & 0xe0) == 0xa0)
                body = c & 0x1f; /* fixstr */
        else if ((c & 0xf0) == 0x90)
                count = c & 0x0f; /* fixarray */
        else if ((c & 0xf0) == 0x80)
                count = 2u * (c & 0x0f); /* fixmap */
        else {
                const skip_kind *k;

                if (c < 0xc4) /* 0xc1, never used */
                        return -EBADMSG;
                k = &skip_kinds[c - 0xc4];
                if ((size_t)(end - *p) < k->len_bytes)
                        return -EBADMSG;
                body = ss_mp_be(*p, k->len_bytes);
                *p += k->len_bytes;
                if (k->array || k->map) {
                        count = k->map ? 2 * body : body;
                        body = 0;
                }
                body += k->fixed;
        }
        if (body > (uint64_t)(end - *p) || count > (uint64_t)(end - *p))
                return -EBADMSG;
        *p += body;
        for (uint64_t k = 0; k < count; k++)
                if (skip_object(p, end, depth + 1, objects) < 0)
                        return -EBADMSG;
        return 0;
}

int ss_msgpack_check_max(const uint8_t *data, size_t len, uint32_t max_objects)
{
        const uint8_t *walk = data;
        uint32_t objects = max_objects;

        if (skip_object(&walk, data + len, 0, &objects) < 0 || walk != data + len)
                return -EBADMSG;
        return 0;
}

int ss_msgpack_check(const uint8_t *data, size_t len)
{
        return ss_msgpack_check_max(data, len, SS_WIRE_MAX_OBJECTS);
}

/* ---- decoding ---------------------------------------------------------------------------- */

/* The reader of ss-msgpack.h is the decoder's state: a field read by it and an object
 * decoded are counted alike. */
typedef ss_mp_reader decoder;

static int decode_object(decoder *d, unsigned depth, msgpack_object *o);

/* n bytes of the input, advanced over; NULL past its end. */
static const uint8_t *take(decoder *d, uint64_t n)
{
        const uint8_t *p = d->p;

        if (n > (uint64_t)(d->end - d->p))
                return NULL;
        d->p += n;
        return p;
}

/* A length field of n bytes, big-endian. */
static int length(decoder *d, size_t n, uint64_t *ret)
{
        const uint8_t *p = take(d, n);

        if (!p)
                return -EBADMSG;
        *ret = ss_mp_be(p, n);
        return 0;
}

static int bytes(decoder *d, msgpack_object *o, msgpack_object_type type, uint64_t n)
{
        const uint8_t *p = take(d, n);

        if (!p)
                return -EBADMSG;
        o->type = type;
        o->via.str.size = (uint32_t)n; /* str and bin share the layout */
        o->via.str.ptr = (const char *)p;
        return 0;
}

static int ext(decoder *d, msgpack_object *o, uint64_t n)
{
        const uint8_t *p = take(d, 1 + n);

        if (!p)
                return -EBADMSG;
        o->type = MSGPACK_OBJECT_EXT;
        o->via.ext.type = (int8_t)p[0];
        o->via.ext.size = (uint32_t)n;
        o->via.ext.ptr = (const char *)p + 1;
        return 0;
}

/*
 * n elements (2n objects for a map): refused as ss_mp_take_objects() says, or
 * when they would nest past SS_WIRE_DEPTH_MAX, before anything is allocated
 * for them.
 */
static int container(decoder *d, unsigned depth, msgpack_object *o, uint64_t n, bool map)
{
        uint64_t objects = map ? 2 * n : n;

        if ((objects && depth >= SS_WIRE_DEPTH_MAX) || !ss_mp_take_objects(d, objects))
                return -EBADMSG;
        if (map) {
                msgpack_object_kv *kv = msgpack_zone_malloc(d->zone, (size_t)n * sizeof(*kv));

                if (!kv)
                        return -ENOMEM;
                for (uint64_t i = 0; i < n; i++)
                        if (!ss_mp_read_into(d, depth + 1, &kv[i].key) ||
                            !ss_mp_read_into(d, depth + 1, &kv[i].val))
                                return d->err;
                o->type = MSGPACK_OBJECT_MAP;
                o->via.map.size = (uint32_t)n;
                o->via.map.ptr = kv;
                return 0;
        }
        msgpack_object *e = msgpack_zone_malloc(d->zone, (size_t)n * sizeof(*e));

        if (!e)
                return -ENOMEM;
        for (uint64_t i = 0; i < n; i++)
                if (!ss_mp_read_into(d, depth + 1, &e[i]))
                        return d->err;
        o->type = MSGPACK_OBJECT_ARRAY;
        o->via.array.size = (uint32_t)n;
        o->via.array.ptr = e;
        return 0;
}

/* An integer of n bytes; signed ones below zero are negative, the rest positive, as
 * msgpack-c has them. */
static int integer(decoder *d, msgpack_object *o, size_t n, bool is_signed)
{
        const uint8_t *p = take(d, n);
        uint64_t v;

        if (!p)
                return -EBADMSG;
        v = ss_mp_be(p, n);
        if (is_signed && n < 8 && (v >> (8 * n - 1)))
                v |= ~0ull << (8 * n); /* sign-extend */
        if (is_signed && (int64_t)v < 0) {
                o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
                o->via.i64 = (int64_t)v;
        } else {
                o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
                o->via.u64 = v;
        }
        return 0;
}

static int real(decoder *d, msgpack_object *o, size_t n)
{
        const uint8_t *p = take(d, n);
        uint64_t v;

        if (!p)
                return -EBADMSG;
        v = ss_mp_be(p, n);
        if (n == 4) {
                uint32_t u = (uint32_t)v;
                float f;

                memcpy(&f, &u, sizeof(f));
                o->type = MSGPACK_OBJECT_FLOAT32;
                o->via.f64 = f;
        } else {
                memcpy(&o->via.f64, &v, sizeof(v));
                o->type = MSGPACK_OBJECT_FLOAT64;
        }
        return 0;
}

static int decode_object(decoder *d, unsigned depth, msgpack_object *o)
{
        uint64_t n;
        uint8_t c;
        int r;

        if (d->p >= d->end)
                return -EBADMSG;
        c = *d->p++;
        if (c <= 0x7f) {
                o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
                o->via.u64 = c;
                return 0;
        }
        if (c >= 0xe0) {
                o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
                o->via.i64 = (int8_t)c;
                return 0;
        }
        if (c <= 0x8f)
                return container(d, depth, o, c & 0x0f, true);
        if (c <= 0x9f)
                return container(d, depth, o, c & 0x0f, false);
        if (c <= 0xbf)
                return bytes(d, o, MSGPACK_OBJECT_STR, c & 0x1f);
        switch (c) {
        case 0xc0:
                o->type = MSGPACK_OBJECT_NIL;
                return 0;
        case 0xc2:
        case 0xc3:
                o->type = MSGPACK_OBJECT_BOOLEAN;
                o->via.boolean = c == 0xc3;
                return 0;
        case 0xc4:
        case 0xc5:
        case 0xc6:
                r = length(d, (size_t)1 << (c - 0xc4), &n);
                return r < 0 ? r : bytes(d, o, MSGPACK_OBJECT_BIN, n);
        case 0xc7:
        case 0xc8:
        case 0xc9:
                r = length(d, (size_t)1 << (c - 0xc7), &n);
                return r < 0 ? r : ext(d, o, n);
        case 0xca:
        case 0xcb:
                return real(d, o, c == 0xca ? 4 : 8);
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf:
                return integer(d, o, (size_t)1 << (c - 0xcc), false);
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3:
                return integer(d, o, (size_t)1 << (c - 0xd0), true);
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
                return ext(d, o, (uint64_t)1 << (c - 0xd4));
        case 0xd9:
        case 0xda:
        case 0xdb:
                r = length(d, c == 0xd9 ? 1 : c == 0xda ? 2 : 4, &n);
                return r < 0 ? r : bytes(d, o, MSGPACK_OBJECT_STR, n);
        case 0xdc:
        case 0xdd:
                r = length(d, c == 0xdc ? 2 : 4, &n);
                return r < 0 ? r : container(d, depth, o, n, false);
        case 0xde:
        case 0xdf:
                r = length(d, c == 0xde ? 2 : 4, &n);
                return r < 0 ? r : container(d, depth, o, n, true);
        default: /* 0xc1, never used */
                return -EBADMSG;
        }
}

bool ss_mp_read_any(ss_mp_reader *r, unsigned depth, msgpack_object *o)
{
        int e = decode_object(r, depth, o);

        if (e < 0)
                r->err = e;
        return e == 0;
}

bool ss_mp_read_object(ss_mp_reader *r, const msgpack_object **ret)
{
        msgpack_object *o;

        if (ss_mp_read_nil(r)) {
                *ret = NULL;
                return true;
        }
        o = msgpack_zone_malloc(r->zone, sizeof(*o));
        if (!o || decode_object(r, 1, o) < 0)
                return false;
        *ret = o;
        return true;
}

int ss_msgpack_decode(const uint8_t *data, size_t len, msgpack_zone *zone, msgpack_object *ret)
{
        decoder d;
        int r;

        ss_mp_reader_init(&d, data, len, zone);
        r = decode_object(&d, 0, ret);

        if (r == 0 && d.p != d.end)
                r = -EBADMSG;
        return r;
}
