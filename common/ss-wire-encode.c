/* SPDX-License-Identifier: MIT */
/* The messages' encoders: a client's (and the daemon's replies), every field in the order
 * ss-wire.h gives. ss-wire.c frames and decodes. */
#include "ss-wire.h"

#include <errno.h>
#include <string.h>

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

int ss_wire_span_start_open(ss_buf *b, const ss_span_head *h, ss_wire_open *ret)
{
        size_t need;
        uint8_t *p;
        int r;

        if (h->name_len > UINT32_MAX)
                return -EMSGSIZE;
        need = SS_SPAN_START_MAX(h->name_len, 0);
        r = ss_buf_reserve(b, need);
        if (r < 0)
                return r;
        ret->start = b->len;
        p = ss_wire_put_start_fields(b->data + b->len + SS_FRAME_HEADER, h);
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

        r = ss_buf_reserve(b, SS_MP_HEAD_MAX + olen);
        if (r < 0)
                goto fail;
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
