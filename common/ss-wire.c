/* SPDX-License-Identifier: MIT */
#include "ss-wire.h"

#include <errno.h>
#include <string.h>

#include "ss-wire-internal.h"

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

/* Which options a span's options map has named so far (ss_wire_span_option()'s *seen). */
enum { SEEN_FLAGS = 1, SEEN_TRACE_STATE = 2 };

void ss_wire_span_option(ss_msg_span *s, const msgpack_object *k, const msgpack_object *v,
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
                ss_wire_span_option(s, &s->options->ptr[i].key, &s->options->ptr[i].val, &seen);
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
        if (ss_wire_id_is_zero(s->trace_id, SS_TRACE_ID_LEN) ||
            ss_wire_id_is_zero(s->span_id, SS_SPAN_ID_LEN) ||
            (s->parent_id && ss_wire_id_is_zero(s->parent_id, SS_SPAN_ID_LEN)) || s->name.len == 0)
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

int ss_wire_decode_zone(const uint8_t *payload, size_t len, msgpack_zone *zone, ss_msg *ret,
                        msgpack_object *ret_root)
{
        msgpack_object root;
        uint64_t type;
        fields f;
        int r;

        *ret = (ss_msg){0};
        if (!ret_root && ss_wire_decode_span_frame(payload, len, zone, ret))
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
