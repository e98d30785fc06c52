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

/* ---- encoding ------------------------------------------------------------------------- */

typedef struct frame {
        ss_buf *b;
        size_t start;
        msgpack_packer pk;
        int err;
} frame;

static void frame_begin(frame *f, ss_buf *b, uint32_t type, size_t nfields)
{
        static const uint8_t zero[SS_FRAME_HEADER];

        *f = (frame){.b = b, .start = b->len};
        msgpack_packer_init(&f->pk, b, ss_buf_msgpack_write);
        f->err = ss_buf_append(b, zero, sizeof(zero));
        if (!f->err)
                f->err = msgpack_pack_array(&f->pk, nfields + 1);
        if (!f->err)
                f->err = msgpack_pack_uint32(&f->pk, type);
}

/* Packing calls return the ss_buf error (negative errno) or 0; keep the first. */
static void frame_check(frame *f, int r)
{
        if (!f->err && r)
                f->err = r < 0 ? r : -ENOBUFS;
}

static void put_bin(frame *f, const uint8_t *p, size_t n)
{
        if (!p) {
                frame_check(f, msgpack_pack_nil(&f->pk));
                return;
        }
        frame_check(f, msgpack_pack_bin_with_body(&f->pk, p, n));
}

static void put_str(frame *f, const char *s, size_t n)
{
        if (!s) {
                frame_check(f, msgpack_pack_nil(&f->pk));
                return;
        }
        frame_check(f, msgpack_pack_str_with_body(&f->pk, s, n));
}

static void put_map(frame *f, const ss_rawmap *m)
{
        frame_check(f, msgpack_pack_map(&f->pk, m ? m->count : 0));
        if (m && m->len)
                frame_check(f, ss_buf_append(f->b, m->data, m->len));
}

static int frame_end(frame *f, size_t max_frame)
{
        size_t n;

        if (f->err)
                goto fail;
        n = f->b->len - f->start - SS_FRAME_HEADER;
        if (n > max_frame || n > UINT32_MAX) {
                f->err = -EMSGSIZE;
                goto fail;
        }
        ss_frame_header_put(f->b->data + f->start, (uint32_t)n);
        return 0;
fail:
        f->b->len = f->start;
        return f->err;
}

int ss_wire_put_hello(ss_buf *b, size_t max_frame, const ss_rawmap *options)
{
        frame f;

        frame_begin(&f, b, SS_MSG_HELLO, 2);
        frame_check(&f, msgpack_pack_uint32(&f.pk, SS_PROTOCOL_VERSION));
        put_map(&f, options);
        return frame_end(&f, max_frame);
}

/* SPAN_START's array header and fields up to the start time, at p (room made). */
static uint8_t *put_start_fields(uint8_t *p, const ss_span_head *h)
{
        *p++ = 0x99; /* an array of 9: type and 8 fields */
        *p++ = SS_MSG_SPAN_START;
        *p++ = 0xc4;
        *p++ = SS_TRACE_ID_LEN;
        memcpy(p, h->trace_id, SS_TRACE_ID_LEN);
        p += SS_TRACE_ID_LEN;
        *p++ = 0xc4;
        *p++ = SS_SPAN_ID_LEN;
        memcpy(p, h->span_id, SS_SPAN_ID_LEN);
        p += SS_SPAN_ID_LEN;
        if (h->parent_id) {
                *p++ = 0xc4;
                *p++ = SS_SPAN_ID_LEN;
                memcpy(p, h->parent_id, SS_SPAN_ID_LEN);
                p += SS_SPAN_ID_LEN;
        } else {
                *p++ = 0xc0;
        }
        p = ss_mp_put_str(p, h->name ? h->name : "", (uint32_t)h->name_len);
        p = ss_mp_put_int(p, h->kind);
        return ss_mp_put_uint(p, h->start_ns);
}

int ss_wire_span_start_write(uint8_t *out, size_t max_frame, const ss_span_head *h,
                             const ss_rawmap *options)
{
        size_t olen = options ? options->len : 0, n;
        uint8_t *p;

        if (h->name_len > UINT32_MAX)
                return -EMSGSIZE;
        p = put_start_fields(out + SS_FRAME_HEADER, h);
        *p++ = 0x80; /* no attributes */
        p = ss_mp_put_container(p, options ? options->count : 0, true);
        if (olen)
                memcpy(p, options->data, olen);
        n = (size_t)(p - out) + olen - SS_FRAME_HEADER;
        if (n > max_frame || n > UINT32_MAX)
                return -EMSGSIZE;
        ss_frame_header_put(out, (uint32_t)n);
        return (int)(n + SS_FRAME_HEADER);
}

int ss_wire_span_start_open(ss_buf *b, const ss_span_head *h, ss_wire_open *ret)
{
        size_t need;
        uint8_t *p;
        int r;

        if (h->name_len > UINT32_MAX)
                return -EMSGSIZE;
        need = SS_SPAN_START_MAX(h->name_len, 0);
        if (need > b->cap - b->len) {
                r = ss_buf_reserve(b, need);
                if (r < 0)
                        return r;
        }
        ret->start = b->len;
        p = put_start_fields(b->data + b->len + SS_FRAME_HEADER, h);
        ret->map_at = (size_t)(p - b->data);
        *p = 0xdf; /* map32: the count is known at the close */
        b->len = ret->map_at + 5;
        return 0;
}

int ss_wire_span_start_close(ss_buf *b, const ss_wire_open *o, size_t max_frame, uint32_t n_attrs,
                             const ss_rawmap *options)
{
        size_t olen = options ? options->len : 0, n;
        uint8_t *p;
        int r;

        if (SS_MP_HEAD_MAX + olen > b->cap - b->len) {
                r = ss_buf_reserve(b, SS_MP_HEAD_MAX + olen);
                if (r < 0)
                        goto fail;
        }
        (void)ss_mp_put_be(b->data + o->map_at + 1, n_attrs, 4);
        p = ss_mp_put_container(b->data + b->len, options ? options->count : 0, true);
        if (olen)
                memcpy(p, options->data, olen);
        b->len = (size_t)(p - b->data) + olen;
        n = b->len - o->start - SS_FRAME_HEADER;
        if (n > max_frame || n > UINT32_MAX) {
                r = -EMSGSIZE;
                goto fail;
        }
        ss_frame_header_put(b->data + o->start, (uint32_t)n);
        return 0;
fail:
        b->len = o->start;
        return r;
}

int ss_wire_put_span_start(ss_buf *b, size_t max_frame, const ss_span_head *h,
                           const ss_rawmap *attrs, const ss_rawmap *options)
{
        ss_wire_open o;
        int r;

        r = ss_wire_span_start_open(b, h, &o);
        if (r < 0)
                return r;
        if (attrs && attrs->len) {
                r = ss_buf_append(b, attrs->data, attrs->len);
                if (r < 0) {
                        b->len = o.start;
                        return r;
                }
        }
        return ss_wire_span_start_close(b, &o, max_frame, attrs ? attrs->count : 0, options);
}

int ss_wire_put_span_event(ss_buf *b, size_t max_frame, const uint8_t *span_id, const char *name,
                           uint64_t time_ns, const ss_rawmap *attrs)
{
        frame f;

        frame_begin(&f, b, SS_MSG_SPAN_EVENT, 4);
        put_bin(&f, span_id, SS_SPAN_ID_LEN);
        put_str(&f, name, strlen(name));
        frame_check(&f, msgpack_pack_uint64(&f.pk, time_ns));
        put_map(&f, attrs);
        return frame_end(&f, max_frame);
}

int ss_wire_put_span_end(ss_buf *b, size_t max_frame, const uint8_t *span_id, uint64_t end_ns,
                         int status_code, const char *status_msg, const ss_rawmap *attrs)
{
        frame f;

        frame_begin(&f, b, SS_MSG_SPAN_END, 5);
        put_bin(&f, span_id, SS_SPAN_ID_LEN);
        frame_check(&f, msgpack_pack_uint64(&f.pk, end_ns));
        frame_check(&f, msgpack_pack_int32(&f.pk, status_code));
        put_str(&f, status_msg, status_msg ? strlen(status_msg) : 0);
        put_map(&f, attrs);
        return frame_end(&f, max_frame);
}

int ss_wire_span_end_head(uint8_t *end, size_t max_frame, const uint8_t *span_id, uint64_t end_ns,
                          int status_code, uint32_t n_attrs, size_t body_len)
{
        uint8_t head[SS_SPAN_END_HEAD_MAX], *p = head + SS_FRAME_HEADER;
        size_t n, payload;

        *p++ = 0x96; /* an array of 6: type and 5 fields */
        *p++ = SS_MSG_SPAN_END;
        *p++ = 0xc4;
        *p++ = SS_SPAN_ID_LEN;
        memcpy(p, span_id, SS_SPAN_ID_LEN);
        p += SS_SPAN_ID_LEN;
        p = ss_mp_put_uint(p, end_ns);
        p = ss_mp_put_int(p, status_code);
        *p++ = 0xc0; /* no status message */
        p = ss_mp_put_container(p, n_attrs, true);
        n = (size_t)(p - head);
        payload = n - SS_FRAME_HEADER + body_len;
        if (payload > max_frame || payload > UINT32_MAX || body_len > UINT32_MAX)
                return -EMSGSIZE;
        ss_frame_header_put(head, (uint32_t)payload);
        memcpy(end - n, head, n);
        return (int)n;
}

int ss_wire_put_seq(ss_buf *b, size_t max_frame, uint32_t type, uint64_t seq)
{
        frame f;

        frame_begin(&f, b, type, 1);
        frame_check(&f, msgpack_pack_uint64(&f.pk, seq));
        return frame_end(&f, max_frame);
}

int ss_wire_put_stats(ss_buf *b, size_t max_frame, uint64_t id, const ss_stat *v, size_t n)
{
        frame f;

        frame_begin(&f, b, SS_MSG_STATS_REPLY, 2);
        frame_check(&f, msgpack_pack_uint64(&f.pk, id));
        frame_check(&f, n > UINT32_MAX ? -EMSGSIZE : msgpack_pack_map(&f.pk, (uint32_t)n));
        for (size_t i = 0; i < n && !f.err; i++) {
                put_str(&f, v[i].name, strlen(v[i].name));
                frame_check(&f, msgpack_pack_uint64(&f.pk, v[i].value));
        }
        return frame_end(&f, max_frame);
}

int ss_wire_put_subscribe(ss_buf *b, size_t max_frame, const ss_rawmap *filter)
{
        frame f;

        frame_begin(&f, b, SS_MSG_SUBSCRIBE, 1);
        put_map(&f, filter);
        return frame_end(&f, max_frame);
}

/* ---- TRACE ----------------------------------------------------------------------------- */

/* A string cut to SS_SUB_MAX_STR bytes at a character boundary: a summary, never a payload. */
static int pack_short_str(msgpack_packer *pk, const char *p, size_t n)
{
        if (n > SS_SUB_MAX_STR) {
                n = SS_SUB_MAX_STR;
                while (n > 0 && ((unsigned char)p[n] & 0xc0) == 0x80)
                        n--;
        }
        return msgpack_pack_str_with_body(pk, p, n);
}

static int pack_id(msgpack_packer *pk, const uint8_t *id, size_t n)
{
        return id ? msgpack_pack_bin_with_body(pk, id, n) : msgpack_pack_nil(pk);
}

int ss_wire_pack_tap_span(msgpack_packer *pk, const ss_tap_span *s)
{
        int r = msgpack_pack_array(pk, SS_TAP_SPAN_FIELDS);

        r = r ? r : pack_id(pk, s->trace_id, SS_TRACE_ID_LEN);
        r = r ? r : pack_id(pk, s->span_id, SS_SPAN_ID_LEN);
        r = r ? r : pack_id(pk, s->parent_id, SS_SPAN_ID_LEN);
        r = r ? r : pack_short_str(pk, s->name.ptr, s->name.len);
        r = r ? r : msgpack_pack_uint32(pk, (uint32_t)s->kind);
        r = r ? r : msgpack_pack_uint64(pk, s->start_ns);
        r = r ? r : msgpack_pack_uint64(pk, s->end_ns);
        r = r ? r : msgpack_pack_uint32(pk, (uint32_t)s->status_code);
        r = r ? r : pack_short_str(pk, s->service.ptr, s->service.len);
        r = r ? r : msgpack_pack_map(pk, s->n_attrs);
        for (uint32_t i = 0; i < s->n_attrs && !r; i++) {
                const msgpack_object *v = &s->attrs[i].val;

                r = msgpack_pack_object(pk, s->attrs[i].key);
                if (!r && v->type == MSGPACK_OBJECT_STR)
                        r = pack_short_str(pk, v->via.str.ptr, v->via.str.size);
                else if (!r)
                        r = msgpack_pack_object(pk, *v);
        }
        return r ? (r < 0 ? r : -ENOBUFS) : 0;
}

static uint8_t *put_be64(uint8_t *p, uint64_t v)
{
        *p++ = 0xcf;
        for (int shift = 56; shift >= 0; shift -= 8)
                *p++ = (uint8_t)(v >> shift);
        return p;
}

size_t ss_wire_trace_head(uint8_t *head, uint64_t dropped, uint64_t omitted, size_t body_len)
{
        uint8_t *p = head + SS_FRAME_HEADER;

        *p++ = 0x94; /* an array of 4: type, dropped, omitted, spans */
        *p++ = SS_MSG_TRACE;
        p = put_be64(p, dropped);
        p = put_be64(p, omitted);
        ss_frame_header_put(head, (uint32_t)((size_t)(p - head) - SS_FRAME_HEADER + body_len));
        return (size_t)(p - head);
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

int ss_wire_decode_zone(const uint8_t *payload, size_t len, msgpack_zone *zone, ss_msg *ret,
                        msgpack_object *ret_root)
{
        msgpack_object root;
        uint64_t type;
        fields f;
        int r;

        *ret = (ss_msg){0};
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

                /* msgpack-c may give an empty string a NULL ptr: no memcmp() of 0 bytes. */
                if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len &&
                    (len == 0 || memcmp(k->via.str.ptr, key, len) == 0))
                        return &kv[i];
        }
        return NULL;
}

const msgpack_object *ss_wire_map_get(const msgpack_object_map *m, const char *key)
{
        const msgpack_object_kv *kv = m ? ss_wire_kv_find(m->ptr, m->size, key, strlen(key)) : NULL;

        return kv ? &kv->val : NULL;
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
