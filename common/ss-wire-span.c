/* SPDX-License-Identifier: MIT */
/*
 * The daemon's reader of the two frames every span sends, SPAN_START and SPAN_END
 * (ss_wire_decode_zone() without a root asked for): field by field with ss_mp_reader, the
 * attribute maps checked where they lie and left as bytes, the options read into fields.
 * Never the only judge: whatever it does not take goes to the general decoder in ss-wire.c.
 */
#include <string.h>

#include "ss-wire-internal.h"

/* A map field read by r: nil (NULL), or a map, checked as attributes when attrs. */
static bool read_map(ss_mp_reader *r, bool attrs, const msgpack_object_map **ret)
{
        const msgpack_object *o;

        if (!ss_mp_read_object(r, &o))
                return false;
        if (!o) {
                *ret = NULL;
                return true;
        }
        if (o->type != MSGPACK_OBJECT_MAP || (attrs && ss_wire_check_attrs(&o->via.map) < 0))
                return false;
        *ret = &o->via.map;
        return true;
}

/*
 * How an attribute value is skipped, by its first byte: a positive count is the value's
 * bytes (a scalar, a fixstr); SKIP_LEN(n) a string or bin with an n-byte length; SKIP_ARRAY
 * and SKIP_ARRAY16 an array; 0 what read_attrs_bytes() leaves to read_map(): nil and ext,
 * which ss_wire_check_attrs() refuses, and values that are maps or arrays of a 32-bit count,
 * which are rare.
 */
#define SKIP_LEN(n)  (-(n))
#define SKIP_ARRAY   (-16)
#define SKIP_ARRAY16 (-17)
#define X4(v)        v, v, v, v
#define X16(v)       X4(v), X4(v), X4(v), X4(v)
/* clang-format off */
static const int8_t attr_skip[256] = {
        X16(1), X16(1), X16(1), X16(1), X16(1), X16(1), X16(1), X16(1),  /* positive fixint */
        X16(0),                                                          /* fixmap */
        X16(SKIP_ARRAY),                                                 /* fixarray */
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,          /* fixstr */
        17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
        0, 0, 1, 1,                                                      /* nil, -, bool */
        SKIP_LEN(1), SKIP_LEN(2), SKIP_LEN(4),                           /* bin */
        0, 0, 0,                                                         /* ext */
        5, 9,                                                            /* float */
        2, 3, 5, 9, 2, 3, 5, 9,                                          /* uint, int */
        0, 0, 0, 0, 0,                                                   /* fixext */
        SKIP_LEN(1), SKIP_LEN(2), SKIP_LEN(4),                           /* str */
        SKIP_ARRAY16, 0, 0, 0,                                           /* array, map */
        X16(1), X16(1),                                                  /* negative fixint */
};
/* clang-format on */
#undef X16
#undef X4

/* An attribute value at r, skipped as attr_skip[] says: an array only when top (not as an
 * array's element). false for what it leaves to read_map(), and for bytes the decoder would
 * refuse. */
static bool skip_attr_value(ss_mp_reader *r, bool top)
{
        uint64_t n, head;
        int k;

        if (r->p >= r->end)
                return false;
        k = attr_skip[*r->p];
        if (k > 0) {
                n = (uint64_t)k;
        } else if (k >= SKIP_LEN(4) && k < 0) {
                head = (uint64_t)-k;
                if ((uint64_t)(r->end - r->p) <= head)
                        return false;
                n = 1 + head + ss_mp_be(r->p + 1, head);
        } else if (top && (k == SKIP_ARRAY || k == SKIP_ARRAY16)) {
                head = k == SKIP_ARRAY16 ? 2 : 0;
                if ((uint64_t)(r->end - r->p) <= head)
                        return false;
                n = head ? ss_mp_be(r->p + 1, 2) : *r->p & 0x0fu;
                r->p += 1 + head;
                if (!ss_mp_take_objects(r, n))
                        return false;
                for (uint64_t i = 0; i < n; i++)
                        if (!skip_attr_value(r, false))
                                return false;
                return true;
        } else {
                return false;
        }
        if (n > (uint64_t)(r->end - r->p))
                return false;
        r->p += n;
        return true;
}

/* A map's header (fixmap, map 16 or map 32) read by r, its keys and values counted as the
 * decoder counts them (ss_mp_take_objects()): its pair count. Always inline: every span
 * frame has one or two, and GCC called it. */
static inline __attribute__((always_inline)) bool read_map_header(ss_mp_reader *r, uint64_t *ret_n)
{
        size_t head;

        if (r->p >= r->end)
                return false;
        if ((*r->p & 0xf0) == 0x80)
                head = 0;
        else if (*r->p == 0xde || *r->p == 0xdf)
                head = *r->p == 0xde ? 2 : 4;
        else
                return false;
        if ((size_t)(r->end - r->p) < 1 + head)
                return false;
        *ret_n = head ? ss_mp_be(r->p + 1, head) : *r->p & 0x0fu;
        r->p += 1 + head;
        return ss_mp_take_objects(r, 2 * *ret_n);
}

/*
 * An attribute map field read by r as its bytes (nil: none), when it is as the decoder and
 * ss_wire_check_attrs() would accept it: non-empty string keys; values skip_attr_value()
 * takes. false otherwise, with r unchanged, for read_map() to decode it.
 */
static bool read_attrs_bytes(ss_mp_reader *r, ss_mp_map *ret)
{
        ss_mp_reader at = *r;
        const char *key;
        uint32_t key_len;
        uint64_t n;

        if (ss_mp_read_nil(r))
                return true;
        if (!read_map_header(r, &n))
                goto refused;
        *ret = (ss_mp_map){.p = r->p, .n = (uint32_t)n, .zone = r->zone};
        for (uint64_t i = 0; i < n; i++) {
                /* A key: a string of a byte or more; a fixstr is all but always. */
                uint8_t c = r->p < r->end ? *r->p : 0;

                if (c > 0xa0 && c <= 0xbf && (uint64_t)(r->end - r->p) > (c & 0x1fu)) {
                        r->p += 1 + (c & 0x1fu);
                } else if (!ss_mp_read_str(r, false, &key, &key_len) || key_len == 0) {
                        goto refused;
                }
                if (!skip_attr_value(r, true))
                        goto refused;
        }
        ret->len = (uint32_t)(r->p - ret->p);
        return true;
refused:
        *r = at;
        *ret = (ss_mp_map){0};
        return false;
}

/* A SPAN_START's options map read by r into s->flags and s->trace_state, pair by pair: no
 * object is made for it (a nested value is decoded into the zone, as the decoder would). */
static bool read_options(ss_mp_reader *r, ss_msg_span *s)
{
        unsigned seen = 0;
        msgpack_object_kv kv;
        uint64_t n;

        if (ss_mp_read_nil(r))
                return true;
        if (!read_map_header(r, &n))
                return false;
        for (uint64_t i = 0; i < n; i++) {
                if (!ss_mp_read_into(r, 2, &kv.key) || !ss_mp_read_into(r, 2, &kv.val))
                        return false;
                ss_wire_span_option(s, &kv.key, &kv.val, &seen);
        }
        return true;
}

/* The attributes of a span frame: as bytes when read_attrs_bytes() takes them, else decoded. */
static bool read_attrs(ss_mp_reader *r, const msgpack_object_map **ret, ss_mp_map *ret_bytes)
{
        return read_attrs_bytes(r, ret_bytes) || read_map(r, true, ret);
}

/*
 * SPAN_START and SPAN_END, two frames of every span, read field by field (ss_mp_reader):
 * their attributes are left as bytes where read_attrs_bytes() takes them, and the options
 * are read into fields; only an unusual value becomes an object. Anything not as
 * decode_body() would accept it, or not in the usual encoding, is false, and the frame is
 * decoded the general way, whose answer (the same message, or the error) stands.
 */
bool ss_wire_decode_span_frame(const uint8_t *payload, size_t len, msgpack_zone *zone, ss_msg *ret)
{
        const msgpack_object *extra;
        ss_mp_reader r;
        uint64_t type, v, status;
        uint32_t n, known, name_len;
        const char *name;

        ss_mp_reader_init(&r, payload, len, zone);
        if (!ss_mp_read_root(&r, &n) || !ss_mp_read_uint(&r, &type))
                return false;
        if (type == SS_MSG_SPAN_START) {
                ss_msg_span *sp = &ret->span;

                known = 9;
                if (n < known || !ss_mp_read_bin(&r, SS_TRACE_ID_LEN, &sp->trace_id) ||
                    !ss_mp_read_bin(&r, SS_SPAN_ID_LEN, &sp->span_id))
                        return false;
                if (!ss_mp_read_nil(&r) && /* a root, else its parent */
                    !ss_mp_read_bin(&r, SS_SPAN_ID_LEN, &sp->parent_id))
                        return false;
                if (!ss_mp_read_str(&r, false, &name, &name_len) || !ss_mp_read_uint(&r, &v) ||
                    v > SS_KIND_CONSUMER || !ss_mp_read_uint(&r, &sp->start_ns) ||
                    !read_attrs(&r, &sp->attrs, &sp->attrs_bytes) || !read_options(&r, sp))
                        return false;
                sp->name = (ss_str){.ptr = name, .len = name_len};
                sp->kind = (int32_t)v;
                if (ss_wire_id_is_zero(sp->trace_id, SS_TRACE_ID_LEN) ||
                    ss_wire_id_is_zero(sp->span_id, SS_SPAN_ID_LEN) ||
                    (sp->parent_id && ss_wire_id_is_zero(sp->parent_id, SS_SPAN_ID_LEN)) ||
                    name_len == 0)
                        return false;
        } else if (type == SS_MSG_SPAN_END) {
                known = 6;
                if (n < known || !ss_mp_read_bin(&r, SS_SPAN_ID_LEN, &ret->end.span_id) ||
                    !ss_mp_read_uint(&r, &ret->end.end_ns) || !ss_mp_read_uint(&r, &status) ||
                    status > SS_STATUS_ERROR || !ss_mp_read_str(&r, true, &name, &name_len) ||
                    !read_attrs(&r, &ret->end.attrs, &ret->end.attrs_bytes))
                        return false;
                ret->end.status_code = (int32_t)status;
                ret->end.status_msg = (ss_str){.ptr = name, .len = name_len};
        } else {
                return false;
        }
        /* Trailing elements, allowed for forward compatibility, are decoded all the same. */
        for (uint32_t i = known; i < n; i++)
                if (!ss_mp_read_object(&r, &extra))
                        return false;
        ret->type = (uint32_t)type;
        return ss_mp_reader_done(&r);
}
