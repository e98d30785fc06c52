/* SPDX-License-Identifier: MIT */
#include "otlp/otlp.h"

#include <errno.h>
#include <stdlib.h>

#include "otlp/pb-write.h"

/*
 * ExportTraceServiceRequest written straight from the span model, back to
 * front (pb-write.h): each message's fields last first, repeated fields'
 * elements last first, so the bytes read in field order. Field numbers are
 * those of proto/opentelemetry/proto/{collector/trace,trace,resource,common}/v1.
 * Strings are written with their length: a NUL byte is kept.
 */

enum {
        REQUEST_RESOURCE_SPANS = 1,
        RESOURCE_SPANS_RESOURCE = 1,
        RESOURCE_SPANS_SCOPE_SPANS = 2,
        RESOURCE_ATTRIBUTES = 1,
        RESOURCE_DROPPED_ATTRIBUTES = 2,
        SCOPE_SPANS_SCOPE = 1,
        SCOPE_SPANS_SPANS = 2,
        SCOPE_NAME = 1,
        SCOPE_VERSION = 2,
        SPAN_TRACE_ID = 1,
        SPAN_SPAN_ID = 2,
        SPAN_TRACE_STATE = 3,
        SPAN_PARENT_SPAN_ID = 4,
        SPAN_NAME = 5,
        SPAN_KIND = 6,
        SPAN_START = 7,
        SPAN_END = 8,
        SPAN_ATTRIBUTES = 9,
        SPAN_DROPPED_ATTRIBUTES = 10,
        SPAN_EVENTS = 11,
        SPAN_DROPPED_EVENTS = 12,
        SPAN_STATUS = 15,
        SPAN_FLAGS = 16,
        EVENT_TIME = 1,
        EVENT_NAME = 2,
        EVENT_ATTRIBUTES = 3,
        EVENT_DROPPED_ATTRIBUTES = 4,
        STATUS_MESSAGE = 2,
        STATUS_CODE = 3,
        KEY_VALUE_KEY = 1,
        KEY_VALUE_VALUE = 2,
        ANY_STRING = 1,
        ANY_BOOL = 2,
        ANY_INT = 3,
        ANY_DOUBLE = 4,
        ANY_ARRAY = 5,
        ANY_KVLIST = 6,
        ANY_BYTES = 7,
        ARRAY_VALUES = 1,
        KVLIST_VALUES = 1,
};

/* ---- values ----------------------------------------------------------------------------- */

static void key_values(ss_pbw *w, uint32_t field, const msgpack_object_kv *kv, size_t n);

/* One element of a repeated AnyValue field. */
static void array_values(ss_pbw *w, const msgpack_object_array *a);

/*
 * The body of an AnyValue. An unsigned integer above INT64_MAX has no exact
 * int_value; it becomes a double_value, which keeps its magnitude. nil (and
 * anything else the span model left as nil) is an AnyValue with no value, as
 * OTLP allows. A oneof member is written even when zero or empty.
 *
 * A scalar (a string, bool, integer or float) is written by any_scalar() below p, which has
 * the scalar_size() bytes it takes; scalar_size() is 0 for the other values.
 */
static size_t scalar_size(const msgpack_object *o)
{
        switch (o->type) {
        case MSGPACK_OBJECT_STR:
                return 1 + ss_pb_varint_len(o->via.str.size) + o->via.str.size;
        case MSGPACK_OBJECT_BOOLEAN:
                return 2;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
                return o->via.u64 > INT64_MAX ? 9 : 1 + ss_pb_varint_len(o->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                return 1 + ss_pb_varint_len((uint64_t)o->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                return 9;
        default:
                return 0;
        }
}

static inline uint8_t *any_scalar(uint8_t *p, const msgpack_object *o)
{
        switch (o->type) {
        case MSGPACK_OBJECT_STR:
                return ss_pb_str_field(p, ANY_STRING, o->via.str.ptr, o->via.str.size);
        case MSGPACK_OBJECT_BOOLEAN:
                return ss_pb_varint_field(p, ANY_BOOL, o->via.boolean);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
                if (o->via.u64 > INT64_MAX)
                        return ss_pb_double_field(p, ANY_DOUBLE, (double)o->via.u64);
                return ss_pb_varint_field(p, ANY_INT, o->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                return ss_pb_varint_field(p, ANY_INT, (uint64_t)o->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                return ss_pb_double_field(p, ANY_DOUBLE, o->via.f64);
        default:
                return p;
        }
}

static void any_value(ss_pbw *w, const msgpack_object *o)
{
        size_t m = ss_pbw_pos(w), n = scalar_size(o);

        if (n) {
                if (ss_pbw_room(w, n))
                        w->p = any_scalar(w->p, o);
                return;
        }
        switch (o->type) {
        case MSGPACK_OBJECT_BIN:
                ss_pbw_str_field(w, ANY_BYTES, o->via.bin.ptr, o->via.bin.size);
                return;
        case MSGPACK_OBJECT_ARRAY:
                array_values(w, &o->via.array);
                ss_pbw_len_field(w, ANY_ARRAY, m);
                return;
        case MSGPACK_OBJECT_MAP:
                key_values(w, KVLIST_VALUES, o->via.map.ptr, o->via.map.size);
                ss_pbw_len_field(w, ANY_KVLIST, m);
                return;
        default:
                return;
        }
}

static void array_values(ss_pbw *w, const msgpack_object_array *a)
{
        for (uint32_t i = a->size; i-- > 0;) {
                size_t m = ss_pbw_pos(w);

                any_value(w, &a->ptr[i]);
                ss_pbw_len_field(w, ARRAY_VALUES, m);
        }
}

/*
 * A KeyValue of a string or scalar value (most of them), written unchecked when the room
 * for its bound is there, through a local pointer: the key's and the value's bytes, and five
 * fields of a tag and a varint at most (the KeyValue's prefix, its key's and value's, the
 * AnyValue's member, a scalar). False, with nothing written, otherwise: the checked writers
 * then write it.
 */
static bool key_value_flat(ss_pbw *w, uint32_t field, const msgpack_object_kv *kv)
{
        const msgpack_object *o = &kv->val;
        uint8_t *end = w->p, *p;

        /* Only in room there already: the checked writers grow the buffer, and fill it
         * exactly to its maximum where a bound would not fit. */
        if (!ss_pbw_fits(w, (size_t)kv->key.via.str.size +
                                (o->type == MSGPACK_OBJECT_STR ? o->via.str.size : 0) +
                                5 * SS_PBW_FIELD_MAX))
                return false;
        p = any_scalar(end, o);
        if (p == end) /* not a scalar: nothing written */
                return false;
        p = ss_pb_len_field(p, KEY_VALUE_VALUE, (size_t)(end - p));
        if (kv->key.via.str.size)
                p = ss_pb_str_field(p, KEY_VALUE_KEY, kv->key.via.str.ptr, kv->key.via.str.size);
        w->p = ss_pb_len_field(p, field, (size_t)(end - p));
        return true;
}

/* A repeated KeyValue field; entries whose key is no string are left out. */
static void key_values(ss_pbw *w, uint32_t field, const msgpack_object_kv *kv, size_t n)
{
        for (size_t i = n; i-- > 0;) {
                size_t m, mv;

                if (kv[i].key.type != MSGPACK_OBJECT_STR || key_value_flat(w, field, &kv[i]))
                        continue;
                m = ss_pbw_pos(w);
                mv = m;
                any_value(w, &kv[i].val);
                ss_pbw_len_field(w, KEY_VALUE_VALUE, mv);
                ss_pbw_str_opt(w, KEY_VALUE_KEY, kv[i].key.via.str.ptr, kv[i].key.via.str.size);
                ss_pbw_len_field(w, field, m);
        }
}

static void attrs(ss_pbw *w, uint32_t field, const ss_attrs *a)
{
        key_values(w, field, a->kv, a->n);
}

/* ---- spans ------------------------------------------------------------------------------ */

static void str_opt(ss_pbw *w, uint32_t field, const msgpack_object_str *s)
{
        ss_pbw_str_opt(w, field, s->ptr, s->size);
}

static void event(ss_pbw *w, const ss_event *e)
{
        size_t m = ss_pbw_pos(w);

        ss_pbw_varint_opt(w, EVENT_DROPPED_ATTRIBUTES, e->dropped_attrs);
        attrs(w, EVENT_ATTRIBUTES, &e->attrs);
        str_opt(w, EVENT_NAME, &e->name);
        ss_pbw_fixed64_opt(w, EVENT_TIME, e->time_ns);
        ss_pbw_len_field(w, SPAN_EVENTS, m);
}

static void status(ss_pbw *w, const ss_span *s)
{
        size_t m = ss_pbw_pos(w);

        if (s->status_code == SS_STATUS_UNSET && s->status_msg.size == 0)
                return;
        ss_pbw_varint_opt(w, STATUS_CODE, s->status_code);
        str_opt(w, STATUS_MESSAGE, &s->status_msg);
        ss_pbw_len_field(w, SPAN_STATUS, m);
}

static void span(ss_pbw *w, const ss_span *s)
{
        size_t m = ss_pbw_pos(w);

        ss_pbw_fixed32_opt(w, SPAN_FLAGS, s->flags);
        status(w, s);
        ss_pbw_varint_opt(w, SPAN_DROPPED_EVENTS, s->dropped_events);
        for (uint32_t i = s->n_events; i-- > 0;)
                event(w, &s->events[i]);
        ss_pbw_varint_opt(w, SPAN_DROPPED_ATTRIBUTES, s->dropped_attrs);
        attrs(w, SPAN_ATTRIBUTES, &s->attrs);
        ss_pbw_fixed64_opt(w, SPAN_END, s->end_ns);
        ss_pbw_fixed64_opt(w, SPAN_START, s->start_ns);
        ss_pbw_varint_opt(w, SPAN_KIND, s->kind);
        str_opt(w, SPAN_NAME, &s->name);
        if (s->has_parent)
                ss_pbw_str_field(w, SPAN_PARENT_SPAN_ID, s->parent_id, SS_SPAN_ID_LEN);
        str_opt(w, SPAN_TRACE_STATE, &s->trace_state);
        ss_pbw_str_field(w, SPAN_SPAN_ID, s->span_id, SS_SPAN_ID_LEN);
        ss_pbw_str_field(w, SPAN_TRACE_ID, s->trace_id, SS_TRACE_ID_LEN);
        ss_pbw_len_field(w, SCOPE_SPANS_SPANS, m);
}

/* ---- resource groups -------------------------------------------------------------------- */

/* One ResourceSpans with one ScopeSpans for spans[order[0..n)], all of one resource. */
static void resource_spans(ss_pbw *w, ss_span *const *spans, const size_t *order, size_t n)
{
        const ss_resource *r = spans[order[0]]->resource;
        size_t m = ss_pbw_pos(w), ms, mr;

        for (size_t i = n; i-- > 0;)
                span(w, spans[order[i]]);
        ms = ss_pbw_pos(w);
        str_opt(w, SCOPE_VERSION, &r->scope_version);
        str_opt(w, SCOPE_NAME, &r->scope_name);
        ss_pbw_len_field(w, SCOPE_SPANS_SCOPE, ms);
        ss_pbw_len_field(w, RESOURCE_SPANS_SCOPE_SPANS, m);
        mr = ss_pbw_pos(w);
        ss_pbw_varint_opt(w, RESOURCE_DROPPED_ATTRIBUTES, r->dropped_attrs);
        attrs(w, RESOURCE_ATTRIBUTES, &r->attrs);
        ss_pbw_len_field(w, RESOURCE_SPANS_RESOURCE, mr);
        ss_pbw_len_field(w, REQUEST_RESOURCE_SPANS, m);
}

/* About what the request takes: the bytes the spans hold and a fixed part each. */
static size_t size_hint(ss_span *const *spans, size_t n)
{
        size_t hint = 256;

        for (size_t i = 0; i < n; i++)
                hint += ss_span_size(spans[i]);
        return hint;
}

int ss_otlp_encode(ss_span *const *spans, size_t n, ss_buf *out)
{
        size_t *order, end;
        ss_pbw w;
        int r;

        if (n == 0)
                return 0;
        order = malloc(n * sizeof(*order));
        if (!order)
                return -ENOMEM;
        r = ss_otlp_order(spans, n, order);
        if (r < 0)
                goto out;
        ss_pbw_init(&w, out, size_hint(spans, n));
        /* Resource runs last first, found from the end. */
        for (end = n; end > 0;) {
                size_t start = end - 1;
                uint64_t id = spans[order[start]]->resource->id;

                while (start > 0 && spans[order[start - 1]]->resource->id == id)
                        start--;
                resource_spans(&w, spans, order + start, end - start);
                end = start;
        }
        r = ss_pbw_finish(&w);
out:
        free(order);
        return r;
}
