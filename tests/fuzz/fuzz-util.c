/* SPDX-License-Identifier: MIT */
#include "fuzz-util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "fx-msg.h"
#include "json-check.h"
#include "otlp/otlp.h"
#include "trace_service.pb-c.h"

#define REQUEST_FN(fn)                                                                             \
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__##fn

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Request;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

/* Larger than any request the targets can make from inputs of their -max_len. */
#define OUT_MAX (256u << 20)

void fz_fail(const char *file, int line, const char *what)
{
        fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
        abort();
}

/* ---- decoded messages ------------------------------------------------------------------- */

/* The bytes a decoded field names are read, so that a wrong pointer or length shows. */
static volatile uint8_t sink;

static void touch(const uint8_t *payload, size_t len, const void *p, size_t n)
{
        uintptr_t b = (uintptr_t)payload, q = (uintptr_t)p;
        uint8_t x = 0;

        FZ_ASSERT(n == 0 || (q >= b && n <= len && q - b <= len - n));
        for (size_t i = 0; i < n; i++)
                x ^= ((const uint8_t *)p)[i];
        sink ^= x;
}

static void touch_object(const uint8_t *payload, size_t len, const msgpack_object *o)
{
        switch (o->type) {
        case MSGPACK_OBJECT_STR:
                touch(payload, len, o->via.str.ptr, o->via.str.size);
                break;
        case MSGPACK_OBJECT_BIN:
                touch(payload, len, o->via.bin.ptr, o->via.bin.size);
                break;
        case MSGPACK_OBJECT_ARRAY:
                for (uint32_t i = 0; i < o->via.array.size; i++)
                        touch_object(payload, len, &o->via.array.ptr[i]);
                break;
        case MSGPACK_OBJECT_MAP:
                for (uint32_t i = 0; i < o->via.map.size; i++) {
                        touch_object(payload, len, &o->via.map.ptr[i].key);
                        touch_object(payload, len, &o->via.map.ptr[i].val);
                }
                break;
        default:
                break;
        }
}

static void touch_map(const uint8_t *payload, size_t len, const msgpack_object_map *m)
{
        msgpack_object o = {.type = MSGPACK_OBJECT_MAP};

        if (!m)
                return;
        o.via.map = *m;
        touch_object(payload, len, &o);
}

/* An attribute map as decoded: NULL (nil) or one ss_wire_check_attrs() accepts. */
static void check_attrs(const uint8_t *payload, size_t len, const msgpack_object_map *m)
{
        FZ_ASSERT(!m || ss_wire_check_attrs(m) == 0);
        touch_map(payload, len, m);
}

static bool all_zero(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

static void check_id(const uint8_t *payload, size_t len, const uint8_t *id, size_t n)
{
        FZ_ASSERT(id != NULL);
        touch(payload, len, id, n);
}

/* A string field: NULL only when empty (nil, or msgpack-c's empty string). */
static void check_str(const uint8_t *payload, size_t len, ss_str s)
{
        FZ_ASSERT(s.ptr || s.len == 0);
        touch(payload, len, s.ptr, s.len);
}

static void check_events(const uint8_t *payload, size_t len, const msgpack_object_array *ev)
{
        for (uint32_t i = 0; ev && i < ev->size; i++) {
                const msgpack_object *e = &ev->ptr[i];

                FZ_ASSERT(e->type == MSGPACK_OBJECT_ARRAY && e->via.array.size >= 3);
                FZ_ASSERT(e->via.array.ptr[0].type == MSGPACK_OBJECT_STR);
                FZ_ASSERT(e->via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER);
                FZ_ASSERT(e->via.array.ptr[2].type == MSGPACK_OBJECT_NIL ||
                          (e->via.array.ptr[2].type == MSGPACK_OBJECT_MAP &&
                           ss_wire_check_attrs(&e->via.array.ptr[2].via.map) == 0));
                touch_object(payload, len, e);
        }
}

static void check_span(const uint8_t *payload, size_t len, const ss_msg_span *s, bool whole)
{
        check_id(payload, len, s->trace_id, SS_TRACE_ID_LEN);
        check_id(payload, len, s->span_id, SS_SPAN_ID_LEN);
        FZ_ASSERT(!all_zero(s->trace_id, SS_TRACE_ID_LEN));
        FZ_ASSERT(!all_zero(s->span_id, SS_SPAN_ID_LEN));
        if (s->parent_id) {
                check_id(payload, len, s->parent_id, SS_SPAN_ID_LEN);
                FZ_ASSERT(!all_zero(s->parent_id, SS_SPAN_ID_LEN));
        }
        FZ_ASSERT(s->name.ptr && s->name.len > 0);
        check_str(payload, len, s->name);
        FZ_ASSERT(s->kind >= SS_KIND_UNSPECIFIED && s->kind <= SS_KIND_CONSUMER);
        check_attrs(payload, len, s->attrs);
        touch_map(payload, len, s->options);
        if (!whole)
                return;
        /* An end before the start is the client's clock: the model clamps it. */
        FZ_ASSERT(s->status_code >= SS_STATUS_UNSET && s->status_code <= SS_STATUS_ERROR);
        check_str(payload, len, s->status_msg);
        check_events(payload, len, s->events);
}

static void check_body(const uint8_t *payload, size_t len, const ss_msg *m)
{
        switch (m->type) {
        case SS_MSG_HELLO:
                check_attrs(payload, len, m->hello.options);
                break;
        case SS_MSG_SPAN_START:
        case SS_MSG_SPAN:
                check_span(payload, len, &m->span, m->type == SS_MSG_SPAN);
                break;
        case SS_MSG_SPAN_ATTRS:
                check_id(payload, len, m->attrs.span_id, SS_SPAN_ID_LEN);
                check_attrs(payload, len, m->attrs.attrs);
                break;
        case SS_MSG_SPAN_EVENT:
                check_id(payload, len, m->event.span_id, SS_SPAN_ID_LEN);
                check_str(payload, len, m->event.name);
                check_attrs(payload, len, m->event.attrs);
                break;
        case SS_MSG_SPAN_END:
                check_id(payload, len, m->end.span_id, SS_SPAN_ID_LEN);
                FZ_ASSERT(m->end.status_code >= SS_STATUS_UNSET &&
                          m->end.status_code <= SS_STATUS_ERROR);
                check_str(payload, len, m->end.status_msg);
                check_attrs(payload, len, m->end.attrs);
                break;
        case SS_MSG_STATS_REPLY:
                for (uint32_t i = 0; m->stats.counters && i < m->stats.counters->size; i++) {
                        FZ_ASSERT(m->stats.counters->ptr[i].key.type == MSGPACK_OBJECT_STR);
                        FZ_ASSERT(m->stats.counters->ptr[i].val.type ==
                                  MSGPACK_OBJECT_POSITIVE_INTEGER);
                }
                touch_map(payload, len, m->stats.counters);
                break;
        case SS_MSG_SUBSCRIBE:
                touch_map(payload, len, m->subscribe.filter);
                break;
        case SS_MSG_TRACE:
                for (uint32_t i = 0; m->trace.spans && i < m->trace.spans->size; i++) {
                        ss_tap_span t;

                        if (ss_wire_tap_span(&m->trace.spans->ptr[i], &t) == 0) {
                                check_id(payload, len, t.trace_id, SS_TRACE_ID_LEN);
                                check_str(payload, len, t.name);
                                check_str(payload, len, t.service);
                        }
                }
                break;
        default:
                /* FLUSH, STATS and FLUSHED carry a number. */
                FZ_ASSERT(m->type == SS_MSG_FLUSH || m->type == SS_MSG_STATS ||
                          m->type == SS_MSG_FLUSHED);
                break;
        }
}

/* The types the decoder knows. */
static bool type_known(uint32_t t)
{
        return (t >= SS_MSG_HELLO && t <= SS_MSG_SUBSCRIBE) ||
               (t >= SS_MSG_FLUSHED && t <= SS_MSG_TRACE);
}

void fz_check_decoded(const uint8_t *payload, size_t len, int r, const ss_msg *m)
{
        FZ_ASSERT(r == 0 || r == -EBADMSG || r == -EPROTO || r == -ENOTSUP);
        if (r == -ENOTSUP)
                FZ_ASSERT(!type_known(m->type));
        if (r != 0)
                return;
        FZ_ASSERT(type_known(m->type));
        FZ_ASSERT(strcmp(ss_msg_type_name(m->type), "unknown") != 0);
        check_body(payload, len, m);
}

/* The daemon's decode, which reads SPAN_START and SPAN_END field by field, gives what the
 * general one gave (r, m). */
static void fz_check_span_read(const uint8_t *payload, size_t len, int r, const ss_msg *m)
{
        msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
        ss_msg fast;

        FZ_ASSERT(zone != NULL);
        FZ_ASSERT(ss_wire_decode_zone(payload, len, zone, &fast, NULL) == r);
        FZ_ASSERT(r != 0 || fx_msg_same(&fast, m));
        msgpack_zone_free(zone);
}

int fz_decode(const uint8_t *payload, size_t len, msgpack_unpacked *u, ss_msg *m)
{
        int r;

        *m = (ss_msg){0};
        msgpack_unpacked_init(u);
        r = ss_wire_decode(payload, len, u, m);
        fz_check_decoded(payload, len, r, m);
        fz_check_span_read(payload, len, r, m);
        return r;
}

/* ---- model values ----------------------------------------------------------------------- */

void fz_check_value(const msgpack_object *v, uint32_t max_len, unsigned depth)
{
        FZ_ASSERT(depth <= SS_ATTR_DEPTH_MAX || v->type == MSGPACK_OBJECT_NIL);
        switch (v->type) {
        case MSGPACK_OBJECT_STR:
                FZ_ASSERT(v->via.str.ptr && v->via.str.ptr[v->via.str.size] == '\0');
                FZ_ASSERT(fz_utf8_valid((const uint8_t *)v->via.str.ptr, v->via.str.size));
                FZ_ASSERT(!max_len || v->via.str.size <= max_len);
                break;
        case MSGPACK_OBJECT_BIN:
                FZ_ASSERT(v->via.bin.ptr && (!max_len || v->via.bin.size <= max_len));
                break;
        case MSGPACK_OBJECT_ARRAY:
                for (uint32_t i = 0; i < v->via.array.size; i++)
                        fz_check_value(&v->via.array.ptr[i], max_len, depth + 1);
                break;
        case MSGPACK_OBJECT_MAP:
                for (uint32_t i = 0; i < v->via.map.size; i++) {
                        const msgpack_object *k = &v->via.map.ptr[i].key;

                        FZ_ASSERT(k->type == MSGPACK_OBJECT_STR);
                        FZ_ASSERT(k->via.str.ptr[k->via.str.size] == '\0');
                        FZ_ASSERT(fz_utf8_valid((const uint8_t *)k->via.str.ptr, k->via.str.size));
                        fz_check_value(&v->via.map.ptr[i].val, max_len, depth + 1);
                }
                break;
        case MSGPACK_OBJECT_NIL:
        case MSGPACK_OBJECT_BOOLEAN:
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                break;
        default:
                FZ_ASSERT(!"an ext value survived the copy");
        }
}

/* ---- encoders --------------------------------------------------------------------------- */

/* A string of the protobuf request: well-formed UTF-8 when the spans were sanitised. */
static void check_pb_str(const char *s, bool sanitised)
{
        FZ_ASSERT(s != NULL);
        if (sanitised)
                FZ_ASSERT(fz_utf8_valid((const uint8_t *)s, strlen(s)));
}

static void check_pb_value(const AnyValue *v, bool sanitised);

static void check_pb_kvs(KeyValue *const *kv, size_t n, bool sanitised)
{
        for (size_t i = 0; i < n; i++) {
                check_pb_str(kv[i]->key, sanitised);
                if (kv[i]->value)
                        check_pb_value(kv[i]->value, sanitised);
        }
}

static void check_pb_value(const AnyValue *v, bool sanitised)
{
        switch (v->value_case) {
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
                check_pb_str(v->string_value, sanitised);
                break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
                for (size_t i = 0; i < v->array_value->n_values; i++)
                        check_pb_value(v->array_value->values[i], sanitised);
                break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
                check_pb_kvs(v->kvlist_value->values, v->kvlist_value->n_values, sanitised);
                break;
        default:
                break;
        }
}

/* protobuf-c strings are C strings: the encoder cuts a string at its first NUL. */
static void check_pb_name(const char *got, const msgpack_object_str *want, bool sanitised)
{
        size_t n = strnlen(want->ptr, want->size);

        check_pb_str(got, sanitised);
        if (sanitised)
                FZ_ASSERT(strlen(got) == n && memcmp(got, want->ptr, n) == 0);
}

static void check_pb_span(const Span *p, const ss_span *s, bool sanitised)
{
        FZ_ASSERT(p->trace_id.len == SS_TRACE_ID_LEN &&
                  memcmp(p->trace_id.data, s->trace_id, SS_TRACE_ID_LEN) == 0);
        FZ_ASSERT(p->span_id.len == SS_SPAN_ID_LEN &&
                  memcmp(p->span_id.data, s->span_id, SS_SPAN_ID_LEN) == 0);
        FZ_ASSERT(p->parent_span_id.len == (s->has_parent ? SS_SPAN_ID_LEN : 0));
        FZ_ASSERT(!s->has_parent ||
                  memcmp(p->parent_span_id.data, s->parent_id, SS_SPAN_ID_LEN) == 0);
        check_pb_name(p->name, &s->name, sanitised);
        FZ_ASSERT((unsigned)p->kind == s->kind);
        FZ_ASSERT(p->start_time_unix_nano == s->start_ns && p->end_time_unix_nano == s->end_ns);
        FZ_ASSERT(p->n_attributes == s->attrs.n);
        FZ_ASSERT(p->dropped_attributes_count == s->dropped_attrs);
        FZ_ASSERT(p->n_events == s->n_events);
        FZ_ASSERT(p->dropped_events_count == s->dropped_events);
        FZ_ASSERT(p->flags == s->flags);
        check_pb_kvs(p->attributes, p->n_attributes, sanitised);
        for (size_t i = 0; i < p->n_events; i++) {
                FZ_ASSERT(p->events[i]->time_unix_nano == s->events[i].time_ns);
                FZ_ASSERT(p->events[i]->n_attributes == s->events[i].attrs.n);
                check_pb_name(p->events[i]->name, &s->events[i].name, sanitised);
                check_pb_kvs(p->events[i]->attributes, p->events[i]->n_attributes, sanitised);
        }
        if (p->status) {
                FZ_ASSERT((unsigned)p->status->code == s->status_code);
                check_pb_str(p->status->message, sanitised);
        }
}

/* The request holds spans[order[..]], one ResourceSpans with one ScopeSpans per resource run. */
static void check_pb(const Request *req, ss_span *const *spans, size_t n, bool sanitised)
{
        size_t *order = calloc(n ? n : 1, sizeof(*order)), k = 0;

        FZ_ASSERT(order && ss_otlp_order(spans, n, order) == 0);
        for (size_t i = 0; i < req->n_resource_spans; i++) {
                const ResourceSpans *rs = req->resource_spans[i];

                FZ_ASSERT(rs->resource && rs->n_scope_spans == 1);
                check_pb_kvs(rs->resource->attributes, rs->resource->n_attributes, sanitised);
                for (size_t j = 0; j < rs->scope_spans[0]->n_spans; j++, k++) {
                        FZ_ASSERT(k < n);
                        FZ_ASSERT(rs->resource->n_attributes == spans[order[k]]->resource->attrs.n);
                        check_pb_span(rs->scope_spans[0]->spans[j], spans[order[k]], sanitised);
                }
        }
        FZ_ASSERT(k == n);
        free(order);
}

static void check_protobuf(ss_span *const *spans, size_t n, bool sanitised)
{
        ss_buf b;
        Request *req;

        ss_buf_init(&b, OUT_MAX);
        FZ_ASSERT(ss_otlp_encode(spans, n, &b) == 0);
        req = REQUEST_FN(unpack)(NULL, b.len, b.data);
        FZ_ASSERT(req != NULL);
        check_pb(req, spans, n, sanitised);
        REQUEST_FN(free_unpacked)(req, NULL);
        ss_buf_free(&b);
}

static void check_json(ss_span *const *spans, size_t n)
{
        const char *err = NULL;
        ss_buf b;

        ss_buf_init(&b, OUT_MAX);
        FZ_ASSERT(ss_otlp_json_encode(spans, n, &b) == 0);
        FZ_ASSERT(b.len > 0 && !memchr(b.data, '\n', b.len));
        if (!fz_json_valid(b.data, b.len, &err)) {
                fprintf(stderr, "invalid JSON (%s): %.*s\n", err, (int)b.len, (const char *)b.data);
                FZ_ASSERT(!"the JSON encoder wrote invalid JSON");
        }
        ss_buf_free(&b);
}

void fz_check_encoders(ss_span *const *spans, size_t n)
{
        check_protobuf(spans, n, true);
        check_json(spans, n);
}

void fz_check_json_encoder(ss_span *const *spans, size_t n)
{
        check_protobuf(spans, n, false);
        check_json(spans, n);
}
