/* SPDX-License-Identifier: MIT */
#include "otlp/otlp.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp/json-write.h"
#include "ss-id.h"

/*
 * OTLP/JSON as the protobuf JSON mapping writes it: lowerCamelCase keys,
 * ids as lowercase hex, enums as integers, 64-bit integers as decimal
 * strings, bytes as base64, fields in field-number order, and fields at
 * their default value left out (ids, name, kind and times are always
 * written). Written straight into the caller's ss_buf, one line.
 */

static void ostr(ss_jw *w, const msgpack_object_str *s)
{
        ss_jw_str(w, s->ptr, s->size);
}

static void u64str(ss_jw *w, uint64_t v)
{
        ss_jw_u64(w, v, true);
}

/* ---- values ----------------------------------------------------------------------------- */

static void any(ss_jw *w, const msgpack_object *o);

/* [{"key":..,"value":{..}},...] of the entries with a string key. */
static void kvs(ss_jw *w, const msgpack_object_kv *kv, size_t n)
{
        bool first = true;

        ss_jw_put(w, "[", 1);
        for (size_t i = 0; i < n; i++) {
                if (kv[i].key.type != MSGPACK_OBJECT_STR)
                        continue;
                ss_jw_lit(w, first ? "{\"key\":" : ",{\"key\":");
                ostr(w, &kv[i].key.via.str);
                ss_jw_lit(w, ",\"value\":");
                any(w, &kv[i].val);
                ss_jw_put(w, "}", 1);
                first = false;
        }
        ss_jw_put(w, "]", 1);
}

static void array(ss_jw *w, const msgpack_object_array *a)
{
        ss_jw_lit(w, "{\"arrayValue\":{");
        if (a->size) {
                ss_jw_lit(w, "\"values\":[");
                for (uint32_t i = 0; i < a->size; i++) {
                        if (i)
                                ss_jw_put(w, ",", 1);
                        any(w, &a->ptr[i]);
                }
                ss_jw_put(w, "]", 1);
        }
        ss_jw_lit(w, "}}");
}

static void kvlist(ss_jw *w, const msgpack_object_map *m)
{
        ss_jw_lit(w, "{\"kvlistValue\":{");
        if (m->size) {
                ss_jw_lit(w, "\"values\":");
                kvs(w, m->ptr, m->size);
        }
        ss_jw_lit(w, "}}");
}

/* The same mapping as the protobuf encoder: a uint64 past INT64_MAX is a double. */
static void any(ss_jw *w, const msgpack_object *o)
{
        switch (o->type) {
        case MSGPACK_OBJECT_STR:
                ss_jw_lit(w, "{\"stringValue\":");
                ostr(w, &o->via.str);
                break;
        case MSGPACK_OBJECT_BOOLEAN:
                ss_jw_lit(w, o->via.boolean ? "{\"boolValue\":true" : "{\"boolValue\":false");
                break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
                if (o->via.u64 > INT64_MAX) {
                        ss_jw_lit(w, "{\"doubleValue\":");
                        ss_jw_dbl(w, (double)o->via.u64);
                } else {
                        ss_jw_lit(w, "{\"intValue\":");
                        u64str(w, o->via.u64);
                }
                break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                ss_jw_lit(w, "{\"intValue\":");
                ss_jw_i64(w, o->via.i64, true);
                break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                ss_jw_lit(w, "{\"doubleValue\":");
                ss_jw_dbl(w, o->via.f64);
                break;
        case MSGPACK_OBJECT_BIN:
                ss_jw_lit(w, "{\"bytesValue\":");
                ss_jw_base64(w, (const uint8_t *)o->via.bin.ptr, o->via.bin.size);
                break;
        case MSGPACK_OBJECT_ARRAY:
                array(w, &o->via.array);
                return;
        case MSGPACK_OBJECT_MAP:
                kvlist(w, &o->via.map);
                return;
        default:
                ss_jw_put(w, "{", 1);
                break;
        }
        ss_jw_put(w, "}", 1);
}

/* ,"attributes":[..] when there are any. */
static void attrs_field(ss_jw *w, const ss_attrs *a)
{
        if (!a->n)
                return;
        ss_jw_lit(w, ",\"attributes\":");
        kvs(w, a->kv, a->n);
}

/* ,"key":v unless v is 0. key is a literal that needs no escaping. */
static void u32_field(ss_jw *w, const char *key, uint32_t v)
{
        if (!v)
                return;
        ss_jw_lit(w, ",\"");
        ss_jw_lit(w, key);
        ss_jw_lit(w, "\":");
        ss_jw_u64(w, v, false);
}

/* ---- spans ------------------------------------------------------------------------------ */

static void event(ss_jw *w, const ss_event *e)
{
        ss_jw_lit(w, "{\"timeUnixNano\":");
        u64str(w, e->time_ns);
        ss_jw_lit(w, ",\"name\":");
        ostr(w, &e->name);
        attrs_field(w, &e->attrs);
        u32_field(w, "droppedAttributesCount", e->dropped_attrs);
        ss_jw_put(w, "}", 1);
}

static void events(ss_jw *w, const ss_span *s)
{
        if (s->n_events) {
                ss_jw_lit(w, ",\"events\":[");
                for (uint32_t i = 0; i < s->n_events; i++) {
                        if (i)
                                ss_jw_put(w, ",", 1);
                        event(w, &s->events[i]);
                }
                ss_jw_put(w, "]", 1);
        }
        u32_field(w, "droppedEventsCount", s->dropped_events);
}

static void status(ss_jw *w, const ss_span *s)
{
        if (s->status_code == SS_STATUS_UNSET && s->status_msg.size == 0)
                return;
        ss_jw_lit(w, ",\"status\":{");
        if (s->status_msg.size) {
                ss_jw_lit(w, "\"message\":");
                ostr(w, &s->status_msg);
        }
        if (s->status_code) {
                ss_jw_lit(w, s->status_msg.size ? ",\"code\":" : "\"code\":");
                ss_jw_u64(w, s->status_code, false);
        }
        ss_jw_put(w, "}", 1);
}

static void span(ss_jw *w, const ss_span *s)
{
        ss_jw_lit(w, "{\"traceId\":");
        ss_jw_hex(w, s->trace_id, SS_TRACE_ID_LEN);
        ss_jw_lit(w, ",\"spanId\":");
        ss_jw_hex(w, s->span_id, SS_SPAN_ID_LEN);
        if (s->trace_state.size) {
                ss_jw_lit(w, ",\"traceState\":");
                ostr(w, &s->trace_state);
        }
        if (s->has_parent) {
                ss_jw_lit(w, ",\"parentSpanId\":");
                ss_jw_hex(w, s->parent_id, SS_SPAN_ID_LEN);
        }
        ss_jw_lit(w, ",\"name\":");
        ostr(w, &s->name);
        ss_jw_lit(w, ",\"kind\":");
        ss_jw_u64(w, s->kind, false);
        ss_jw_lit(w, ",\"startTimeUnixNano\":");
        u64str(w, s->start_ns);
        ss_jw_lit(w, ",\"endTimeUnixNano\":");
        u64str(w, s->end_ns);
        attrs_field(w, &s->attrs);
        u32_field(w, "droppedAttributesCount", s->dropped_attrs);
        events(w, s);
        status(w, s);
        u32_field(w, "flags", s->flags);
        ss_jw_put(w, "}", 1);
}

/* ---- request ---------------------------------------------------------------------------- */

static void resource(ss_jw *w, const ss_resource *r)
{
        ss_jw_lit(w, "{\"resource\":{");
        if (r->attrs.n) {
                ss_jw_lit(w, "\"attributes\":");
                kvs(w, r->attrs.kv, r->attrs.n);
        }
        if (r->dropped_attrs) {
                ss_jw_lit(w, r->attrs.n ? ",\"droppedAttributesCount\":"
                                        : "\"droppedAttributesCount\":");
                ss_jw_u64(w, r->dropped_attrs, false);
        }
        ss_jw_lit(w, "},\"scopeSpans\":[{\"scope\":{");
        if (r->scope_name.size) {
                ss_jw_lit(w, "\"name\":");
                ostr(w, &r->scope_name);
        }
        if (r->scope_version.size) {
                ss_jw_lit(w, r->scope_name.size ? ",\"version\":" : "\"version\":");
                ostr(w, &r->scope_version);
        }
        ss_jw_lit(w, "},\"spans\":[");
}

static void request(ss_jw *w, ss_span *const *spans, const size_t *order, size_t n)
{
        ss_jw_lit(w, "{\"resourceSpans\":[");
        for (size_t i = 0; i < n; i++) {
                const ss_resource *r = spans[order[i]]->resource;
                bool first = i == 0 || spans[order[i - 1]]->resource->id != r->id;

                if (first && i)
                        ss_jw_lit(w, "]}]},");
                if (first)
                        resource(w, r);
                else
                        ss_jw_put(w, ",", 1);
                span(w, spans[order[i]]);
        }
        ss_jw_lit(w, "]}]}]}");
}

int ss_otlp_json_encode(ss_span *const *spans, size_t n, ss_buf *out)
{
        ss_jw w = {.b = out};
        size_t start = out->len, *order;

        if (n == 0)
                return ss_buf_append(out, "{}", 2);
        if (n > SIZE_MAX / sizeof(*order))
                return -ENOMEM;
        order = malloc(n * sizeof(*order));
        if (!order)
                return -ENOMEM;
        w.err = ss_otlp_order(spans, n, order);
        if (!w.err)
                request(&w, spans, order, n);
        free(order);
        if (w.err)
                out->len = start;
        return w.err;
}
