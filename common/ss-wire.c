/* SPDX-License-Identifier: MIT */
#include "ss-wire.h"

#include <errno.h>
#include <string.h>

/* ---- framing -------------------------------------------------------------------------- */

int ss_frame_parse(const uint8_t *data, size_t len, size_t max_frame, const uint8_t **ret_payload,
                   size_t *ret_len)
{
        uint32_t n;

        if (len < SS_FRAME_HEADER)
                return 0;
        n = ss_frame_header_get(data);
        if (n == 0)
                return -EBADMSG;
        if (n > max_frame)
                return -EMSGSIZE;
        if (len - SS_FRAME_HEADER < n)
                return 0;
        *ret_payload = data + SS_FRAME_HEADER;
        *ret_len = n;
        return (int)(SS_FRAME_HEADER + n);
}

/* ---- HELLO keys ------------------------------------------------------------------------ */

bool ss_hello_key(const char *key, size_t len, bool *ret_protocol)
{
        static const struct {
                const char *name;
                bool protocol;
        } keys[SS_HELLO_N_KEYS] = {
            {SS_HELLO_SERVICE_NAME, false},   {SS_HELLO_PROCESS_PID, false},
            {SS_HELLO_SDK_NAME, true},        {SS_HELLO_SDK_VERSION, true},
            {SS_HELLO_INSTANCE, true},        {SS_HELLO_SAMPLE_RATE, true},
            {SS_HELLO_INCLUDE_CONTENT, true},
        };

        for (size_t i = 0; i < SS_HELLO_N_KEYS; i++)
                if (strlen(keys[i].name) == len && memcmp(keys[i].name, key, len) == 0) {
                        if (ret_protocol)
                                *ret_protocol = keys[i].protocol;
                        return true;
                }
        return false;
}

/* ---- decoding ------------------------------------------------------------------------- */

/* A cursor over the fields of one message; a missing or ill-typed field sets bad. */
typedef struct fields {
        const msgpack_object *o;
        uint32_t n;
        uint32_t i;
        bool bad;
} fields;

static const msgpack_object *next(fields *f)
{
        if (f->i >= f->n) {
                f->bad = true;
                return NULL;
        }
        return &f->o[f->i++];
}

static const uint8_t *get_id(fields *f, uint32_t len, bool nullable)
{
        const msgpack_object *o = next(f);

        if (o && nullable && o->type == MSGPACK_OBJECT_NIL)
                return NULL;
        if (!o || o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != len) {
                f->bad = true;
                return NULL;
        }
        return (const uint8_t *)o->via.bin.ptr;
}

static bool id_is_zero(const uint8_t *id, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if (id[i])
                        return false;
        return true;
}

static uint64_t get_u64(fields *f)
{
        const msgpack_object *o = next(f);

        if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                f->bad = true;
                return 0;
        }
        return o->via.u64;
}

static int32_t get_enum(fields *f, int32_t max)
{
        uint64_t v = get_u64(f);

        if (v > (uint64_t)max)
                f->bad = true;
        return (int32_t)v;
}

static ss_str get_str(fields *f, bool nullable)
{
        const msgpack_object *o = next(f);

        if (o && nullable && o->type == MSGPACK_OBJECT_NIL)
                return (ss_str){0};
        if (!o || o->type != MSGPACK_OBJECT_STR) {
                f->bad = true;
                return (ss_str){0};
        }
        return (ss_str){.ptr = o->via.str.ptr, .len = o->via.str.size};
}

static const msgpack_object_map *get_map(fields *f, bool attrs)
{
        const msgpack_object *o = next(f);

        if (o && o->type == MSGPACK_OBJECT_NIL)
                return NULL;
        if (!o || o->type != MSGPACK_OBJECT_MAP) {
                f->bad = true;
                return NULL;
        }
        if (attrs && ss_wire_check_attrs(&o->via.map) < 0)
                f->bad = true;
        return &o->via.map;
}

static int check_value(const msgpack_object *v, unsigned depth);

static int check_map(const msgpack_object_map *m, unsigned depth)
{
        for (uint32_t i = 0; i < m->size; i++) {
                const msgpack_object *k = &m->ptr[i].key;

                if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0)
                        return -EPROTO;
                if (check_value(&m->ptr[i].val, depth + 1) < 0)
                        return -EPROTO;
        }
        return 0;
}

static int check_value(const msgpack_object *v, unsigned depth)
{
        if (depth > SS_ATTR_DEPTH_MAX)
                return -EPROTO;
        switch (v->type) {
        case MSGPACK_OBJECT_BOOLEAN:
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
        case MSGPACK_OBJECT_STR:
        case MSGPACK_OBJECT_BIN:
                return 0;
        case MSGPACK_OBJECT_ARRAY:
                for (uint32_t i = 0; i < v->via.array.size; i++)
                        if (check_value(&v->via.array.ptr[i], depth + 1) < 0)
                                return -EPROTO;
                return 0;
        case MSGPACK_OBJECT_MAP:
                return check_map(&v->via.map, depth);
        default:
                return -EPROTO;
        }
}

int ss_wire_check_attrs(const msgpack_object_map *attrs)
{
        return check_map(attrs, 0);
}

/* Which options a span's options map has named so far: the first of each key counts. */
enum { SEEN_FLAGS = 1, SEEN_TRACE_STATE = 2 };

static void span_option(ss_msg_span *s, const msgpack_object *k, const msgpack_object *v,
                        unsigned *seen)
{
        const msgpack_object_str *key = &k->via.str;

        if (k->type != MSGPACK_OBJECT_STR)
                return;
        if (!(*seen & SEEN_FLAGS) && key->size == sizeof(SS_OPT_FLAGS) - 1 &&
            memcmp(key->ptr, SS_OPT_FLAGS, key->size) == 0) {
                *seen |= SEEN_FLAGS;
                if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= UINT32_MAX)
                        s->flags = (uint32_t)v->via.u64;
        } else if (!(*seen & SEEN_TRACE_STATE) && key->size == sizeof(SS_OPT_TRACE_STATE) - 1 &&
                   memcmp(key->ptr, SS_OPT_TRACE_STATE, key->size) == 0) {
                *seen |= SEEN_TRACE_STATE;
                if (v->type == MSGPACK_OBJECT_STR)
                        s->trace_state = (ss_str){.ptr = v->via.str.ptr, .len = v->via.str.size};
        }
}

void ss_wire_span_options(ss_msg_span *s)
{
        unsigned seen = 0;

        s->flags = 0;
        s->trace_state = (ss_str){0};
        for (uint32_t i = 0; s->options && i < s->options->size; i++)
                span_option(s, &s->options->ptr[i].key, &s->options->ptr[i].val, &seen);
}

static void decode_span_head(fields *f, ss_msg_span *s)
{
        s->trace_id = get_id(f, SS_TRACE_ID_LEN, false);
        s->span_id = get_id(f, SS_SPAN_ID_LEN, false);
        s->parent_id = get_id(f, SS_SPAN_ID_LEN, true);
        s->name = get_str(f, false);
        s->kind = get_enum(f, SS_KIND_CONSUMER);
        s->start_ns = get_u64(f);
        s->attrs = get_map(f, true);
        s->options = get_map(f, false);
        if (f->bad)
                return;
        ss_wire_span_options(s);
        if (id_is_zero(s->trace_id, SS_TRACE_ID_LEN) || id_is_zero(s->span_id, SS_SPAN_ID_LEN) ||
            (s->parent_id && id_is_zero(s->parent_id, SS_SPAN_ID_LEN)) || s->name.len == 0)
                f->bad = true;
}

static void check_events(fields *f, const msgpack_object_array *ev)
{
        for (uint32_t i = 0; ev && !f->bad && i < ev->size; i++) {
                const msgpack_object *e = &ev->ptr[i];
                fields g;

                if (e->type != MSGPACK_OBJECT_ARRAY) {
                        f->bad = true;
                        return;
                }
                g = (fields){.o = e->via.array.ptr, .n = e->via.array.size};
                (void)get_str(&g, false);
                (void)get_u64(&g);
                (void)get_map(&g, true);
                f->bad = g.bad;
        }
}

static void decode_span(fields *f, ss_msg_span *s)
{
        const msgpack_object *o;

        decode_span_head(f, s);
        s->end_ns = get_u64(f);
        s->status_code = get_enum(f, SS_STATUS_ERROR);
        s->status_msg = get_str(f, true);
        o = next(f);
        if (o && o->type == MSGPACK_OBJECT_ARRAY)
                s->events = &o->via.array;
        else if (!o || o->type != MSGPACK_OBJECT_NIL)
                f->bad = true;
        check_events(f, s->events);
        /* An end before the start is the client's clock: the span model clamps it, as it
         * does for SPAN_END. */
}

/* A SUBSCRIBE filter: the keys it names with the right types; others are ignored. */
static const msgpack_object_map *get_filter(fields *f)
{
        static const char *const strs[] = {SS_SUB_SERVICE, SS_SUB_AGENT, SS_SUB_STATUS};
        const msgpack_object_map *m = get_map(f, false);
        const msgpack_object *v;

        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
                v = ss_wire_map_get(m, strs[i]);
                if (v && (v->type != MSGPACK_OBJECT_STR || v->via.str.size > SS_SUB_MAX_STR))
                        f->bad = true;
        }
        v = ss_wire_map_get(m, SS_SUB_MIN_DUR_MS);
        if (v && v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                f->bad = true;
        return m;
}

static const msgpack_object_array *get_array(fields *f)
{
        const msgpack_object *o = next(f);

        if (!o || o->type != MSGPACK_OBJECT_ARRAY) {
                f->bad = true;
                return NULL;
        }
        return &o->via.array;
}

int ss_wire_tap_span(const msgpack_object *o, ss_tap_span *ret)
{
        fields f;
        const msgpack_object_map *attrs;

        if (o->type != MSGPACK_OBJECT_ARRAY)
                return -EPROTO;
        f = (fields){.o = o->via.array.ptr, .n = o->via.array.size};
        *ret = (ss_tap_span){0};
        ret->trace_id = get_id(&f, SS_TRACE_ID_LEN, false);
        ret->span_id = get_id(&f, SS_SPAN_ID_LEN, false);
        ret->parent_id = get_id(&f, SS_SPAN_ID_LEN, true);
        ret->name = get_str(&f, false);
        ret->kind = get_enum(&f, SS_KIND_CONSUMER);
        ret->start_ns = get_u64(&f);
        ret->end_ns = get_u64(&f);
        ret->status_code = get_enum(&f, SS_STATUS_ERROR);
        ret->service = get_str(&f, false);
        attrs = get_map(&f, true);
        if (attrs) {
                ret->attrs = attrs->ptr;
                ret->n_attrs = attrs->size;
        }
        return f.bad ? -EPROTO : 0;
}

/* A STATS reply's counters: string names, unsigned values. */
static const msgpack_object_map *get_counters(fields *f)
{
        const msgpack_object_map *m = get_map(f, false);

        for (uint32_t i = 0; m && i < m->size; i++)
                if (m->ptr[i].key.type != MSGPACK_OBJECT_STR ||
                    m->ptr[i].val.type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                        f->bad = true;
        return m;
}

static void decode_body(fields *f, ss_msg *m)
{
        switch (m->type) {
        case SS_MSG_HELLO:
                m->hello.version = get_u64(f);
                m->hello.options = get_map(f, true);
                break;
        case SS_MSG_SPAN_START:
                decode_span_head(f, &m->span);
                break;
        case SS_MSG_SPAN:
                decode_span(f, &m->span);
                break;
        case SS_MSG_SPAN_ATTRS:
                m->attrs.span_id = get_id(f, SS_SPAN_ID_LEN, false);
                m->attrs.attrs = get_map(f, true);
                break;
        case SS_MSG_SPAN_EVENT:
                m->event.span_id = get_id(f, SS_SPAN_ID_LEN, false);
                m->event.name = get_str(f, false);
                m->event.time_ns = get_u64(f);
                m->event.attrs = get_map(f, true);
                break;
        case SS_MSG_SPAN_END:
                m->end.span_id = get_id(f, SS_SPAN_ID_LEN, false);
                m->end.end_ns = get_u64(f);
                m->end.status_code = get_enum(f, SS_STATUS_ERROR);
                m->end.status_msg = get_str(f, true);
                m->end.attrs = get_map(f, true);
                break;
        case SS_MSG_FLUSH:
        case SS_MSG_STATS:
        case SS_MSG_FLUSHED:
                m->seq.seq = get_u64(f);
                break;
        case SS_MSG_STATS_REPLY:
                m->stats.id = get_u64(f);
                m->stats.counters = get_counters(f);
                break;
        case SS_MSG_SUBSCRIBE:
                m->subscribe.filter = get_filter(f);
                break;
        case SS_MSG_TRACE:
                m->trace.dropped = get_u64(f);
                m->trace.omitted = get_u64(f);
                m->trace.spans = get_array(f);
                break;
        default:
                break;
        }
}

static bool type_known(uint32_t t)
{
        return (t >= SS_MSG_HELLO && t <= SS_MSG_SUBSCRIBE) ||
               (t >= SS_MSG_FLUSHED && t <= SS_MSG_TRACE);
}

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
 * which ss_wire_check_attrs() refuses, and maps and 32-bit counts, which are rare.
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
                /* As the decoder counts a container's elements. */
                if (n > (uint64_t)(r->end - r->p) || n > r->objects)
                        return false;
                r->objects -= (uint32_t)n;
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
        if (r->p < r->end && (*r->p & 0xf0) == 0x80) {
                n = *r->p++ & 0x0fu;
        } else if (r->end - r->p >= 3 && *r->p == 0xde) {
                n = ss_mp_be(r->p + 1, 2);
                r->p += 3;
        } else {
                goto refused;
        }
        if (2 * n > (uint64_t)(r->end - r->p) || 2 * n > r->objects)
                goto refused;
        r->objects -= (uint32_t)(2 * n);
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
        size_t head;

        if (ss_mp_read_nil(r))
                return true;
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
        n = head ? ss_mp_be(r->p + 1, head) : *r->p & 0x0fu;
        r->p += 1 + head;
        /* As the decoder counts a map's objects. */
        if (2 * n > (uint64_t)(r->end - r->p) || 2 * n > r->objects)
                return false;
        r->objects -= (uint32_t)(2 * n);
        for (uint64_t i = 0; i < n; i++) {
                if (!ss_mp_read_into(r, 2, &kv.key) || !ss_mp_read_into(r, 2, &kv.val))
                        return false;
                span_option(s, &kv.key, &kv.val, &seen);
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
 * their attributes are left as bytes where read_attrs_bytes() takes them, and only the other
 * maps become objects. Anything not as decode_body() would accept it, or not in
 * the usual encoding, is false, and the frame is decoded the general way, whose answer (the
 * same message, or the error) stands.
 */
static bool decode_span_frame(const uint8_t *payload, size_t len, msgpack_zone *zone, ss_msg *ret)
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
                if (id_is_zero(sp->trace_id, SS_TRACE_ID_LEN) ||
                    id_is_zero(sp->span_id, SS_SPAN_ID_LEN) ||
                    (sp->parent_id && id_is_zero(sp->parent_id, SS_SPAN_ID_LEN)) || name_len == 0)
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

int ss_wire_decode_zone(const uint8_t *payload, size_t len, msgpack_zone *zone, ss_msg *ret,
                        msgpack_object *ret_root)
{
        msgpack_object root;
        uint64_t type;
        fields f;
        int r;

        *ret = (ss_msg){0};
        if (!ret_root && decode_span_frame(payload, len, zone, ret))
                return 0;
        *ret = (ss_msg){0}; /* what the span frame's reading filled in before it gave up */
        r = ss_msgpack_decode(payload, len, zone, &root);
        if (r < 0)
                return r;
        if (ret_root)
                *ret_root = root;
        if (root.type != MSGPACK_OBJECT_ARRAY || root.via.array.size < 1)
                return -EPROTO;
        f = (fields){.o = root.via.array.ptr, .n = root.via.array.size};
        type = get_u64(&f);
        if (f.bad)
                return -EPROTO;
        /* Wider than the field: an unknown type, never one cut to 32 bits. */
        ret->type = type > UINT32_MAX ? UINT32_MAX : (uint32_t)type;
        if (!type_known(ret->type))
                return -ENOTSUP;
        decode_body(&f, ret);
        /* Trailing elements are allowed for forward compatibility. */
        return f.bad ? -EPROTO : 0;
}

int ss_wire_decode(const uint8_t *payload, size_t len, msgpack_unpacked *unpacked, ss_msg *ret)
{
        if (!unpacked->zone && !(unpacked->zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE))) {
                *ret = (ss_msg){0};
                return -ENOMEM;
        }
        return ss_wire_decode_zone(payload, len, unpacked->zone, ret, &unpacked->data);
}

const msgpack_object_kv *ss_wire_kv_find(const msgpack_object_kv *kv, uint32_t n, const char *key,
                                         size_t len)
{
        for (uint32_t i = 0; i < n; i++) {
                const msgpack_object *k = &kv[i].key;

                /* msgpack-c may give an empty string a NULL ptr: ss_bytes_eq() reads no
                 * byte of it. */
                if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len &&
                    ss_bytes_eq(k->via.str.ptr, key, len))
                        return &kv[i];
        }
        return NULL;
}

const char *ss_msg_type_name(uint32_t type)
{
        static const char *const names[] = {
            [SS_MSG_HELLO] = "HELLO",           [SS_MSG_SPAN_START] = "SPAN_START",
            [SS_MSG_SPAN_ATTRS] = "SPAN_ATTRS", [SS_MSG_SPAN_EVENT] = "SPAN_EVENT",
            [SS_MSG_SPAN_END] = "SPAN_END",     [SS_MSG_SPAN] = "SPAN",
            [SS_MSG_FLUSH] = "FLUSH",           [SS_MSG_STATS] = "STATS",
            [SS_MSG_SUBSCRIBE] = "SUBSCRIBE",
        };

        if (type < sizeof(names) / sizeof(names[0]) && names[type])
                return names[type];
        if (type == SS_MSG_FLUSHED)
                return "FLUSHED";
        if (type == SS_MSG_STATS_REPLY)
                return "STATS_REPLY";
        if (type == SS_MSG_TRACE)
                return "TRACE";
        return "unknown";
}
