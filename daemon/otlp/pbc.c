/* SPDX-License-Identifier: MIT */
#include "otlp/otlp.h"

#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "trace_service.pb-c.h"

/*
 * The protobuf-c encoder of ExportTraceServiceRequest, kept as the reference
 * that the direct writer (protobuf.c) is tested against, and the response
 * parser. The request tree is built in a scratch arena (a few large blocks
 * instead of one malloc per node), packed once into the caller's ss_buf, and
 * dropped.
 *
 * Known limit of protobuf-c: string fields are C strings, so a string holding
 * a NUL byte is cut at it here (the JSON encoder keeps it). Span strings are
 * already well-formed UTF-8 (span.c), which OTLP receivers require.
 */

/* The generated functions of the request and response messages. */
#define REQUEST_FN(fn)                                                                             \
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__##fn
#define RESPONSE_FN(fn)                                                                            \
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__##fn

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Request;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse Response;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event Event;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValueList KeyValueList;
typedef Opentelemetry__Proto__Common__V1__ArrayValue ArrayValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

/* A NUL-terminated copy: spans' strings are, but nothing forces a caller's to be. */
static char *arena_str(ss_arena *a, const msgpack_object_str *s)
{
        char *p;

        if (s->size == 0)
                return (char *)protobuf_c_empty_string;
        p = ss_arena_alloc(a, (size_t)s->size + 1);
        if (!p)
                return NULL;
        memcpy(p, s->ptr, s->size);
        p[s->size] = '\0';
        return p;
}

/* ---- values ----------------------------------------------------------------------------- */

static const char empty[1];

static int any_value(ss_arena *a, AnyValue *v, const msgpack_object *o);

static int kv_list(ss_arena *a, const msgpack_object_kv *src, size_t n, KeyValue ***ret,
                   size_t *ret_n)
{
        KeyValue **p = ss_arena_array(a, n, sizeof(*p));
        KeyValue *kv = ss_arena_array(a, n, sizeof(*kv));
        AnyValue *v = ss_arena_array(a, n, sizeof(*v));
        size_t k = 0;

        if (n && (!p || !kv || !v))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (src[i].key.type != MSGPACK_OBJECT_STR)
                        continue;
                kv[k] = (KeyValue)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
                kv[k].key = arena_str(a, &src[i].key.via.str);
                kv[k].value = &v[k];
                if (!kv[k].key || any_value(a, &v[k], &src[i].val) < 0)
                        return -ENOMEM;
                p[k] = &kv[k];
                k++;
        }
        *ret = p;
        *ret_n = k;
        return 0;
}

static int array_value(ss_arena *a, AnyValue *v, const msgpack_object_array *arr)
{
        ArrayValue *av = ss_arena_alloc(a, sizeof(*av));
        AnyValue **p = ss_arena_array(a, arr->size, sizeof(*p));
        AnyValue *vals = ss_arena_array(a, arr->size, sizeof(*vals));

        if (!av || (arr->size && (!p || !vals)))
                return -ENOMEM;
        *av = (ArrayValue)OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
        for (uint32_t i = 0; i < arr->size; i++) {
                p[i] = &vals[i];
                if (any_value(a, &vals[i], &arr->ptr[i]) < 0)
                        return -ENOMEM;
        }
        av->n_values = arr->size;
        av->values = p;
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        v->array_value = av;
        return 0;
}

static int kvlist_value(ss_arena *a, AnyValue *v, const msgpack_object_map *m)
{
        KeyValueList *kl = ss_arena_alloc(a, sizeof(*kl));

        if (!kl)
                return -ENOMEM;
        *kl = (KeyValueList)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
        if (kv_list(a, m->ptr, m->size, &kl->values, &kl->n_values) < 0)
                return -ENOMEM;
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
        v->kvlist_value = kl;
        return 0;
}

/*
 * msgpack to AnyValue. An unsigned integer above INT64_MAX has no exact
 * int_value; it becomes a double_value, which keeps its magnitude (a clamp
 * or a wrap would report a wrong number). nil (and anything else the span
 * model left as nil) is an AnyValue with no value, as OTLP allows.
 */
static int any_value(ss_arena *a, AnyValue *v, const msgpack_object *o)
{
        *v = (AnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        switch (o->type) {
        case MSGPACK_OBJECT_STR:
                v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                /* protobuf-c skips a oneof string that is its shared empty
                 * string; an empty value is still a value. */
                v->string_value = o->via.str.size ? arena_str(a, &o->via.str) : (char *)empty;
                return v->string_value ? 0 : -ENOMEM;
        case MSGPACK_OBJECT_BOOLEAN:
                v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
                v->bool_value = o->via.boolean;
                return 0;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
                if (o->via.u64 > INT64_MAX) {
                        v->value_case =
                            OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
                        v->double_value = (double)o->via.u64;
                        return 0;
                }
                v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
                v->int_value = (int64_t)o->via.u64;
                return 0;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
                v->int_value = o->via.i64;
                return 0;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
                v->double_value = o->via.f64;
                return 0;
        case MSGPACK_OBJECT_BIN:
                v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
                v->bytes_value.len = o->via.bin.size;
                v->bytes_value.data = (uint8_t *)o->via.bin.ptr;
                return 0;
        case MSGPACK_OBJECT_ARRAY:
                return array_value(a, v, &o->via.array);
        case MSGPACK_OBJECT_MAP:
                return kvlist_value(a, v, &o->via.map);
        default:
                return 0;
        }
}

static int attrs(ss_arena *a, const ss_attrs *at, KeyValue ***ret, size_t *ret_n)
{
        return kv_list(a, at->kv, at->n, ret, ret_n);
}

/* ---- spans ------------------------------------------------------------------------------ */

static int span_events(ss_arena *a, Span *out, const ss_span *s)
{
        Event **p = ss_arena_array(a, s->n_events, sizeof(*p));
        Event *ev = ss_arena_array(a, s->n_events, sizeof(*ev));

        if (s->n_events && (!p || !ev))
                return -ENOMEM;
        for (uint32_t i = 0; i < s->n_events; i++) {
                const ss_event *e = &s->events[i];

                ev[i] = (Event)OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
                ev[i].time_unix_nano = e->time_ns;
                ev[i].name = arena_str(a, &e->name);
                ev[i].dropped_attributes_count = e->dropped_attrs;
                if (!ev[i].name || attrs(a, &e->attrs, &ev[i].attributes, &ev[i].n_attributes) < 0)
                        return -ENOMEM;
                p[i] = &ev[i];
        }
        out->events = p;
        out->n_events = s->n_events;
        out->dropped_events_count = s->dropped_events;
        return 0;
}

static int span_status(ss_arena *a, Span *out, const ss_span *s)
{
        Status *st;

        if (s->status_code == SS_STATUS_UNSET && s->status_msg.size == 0)
                return 0;
        st = ss_arena_alloc(a, sizeof(*st));
        if (!st)
                return -ENOMEM;
        *st = (Status)OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
        st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)s->status_code;
        st->message = arena_str(a, &s->status_msg);
        out->status = st;
        return st->message ? 0 : -ENOMEM;
}

/* The span's ids and fixed-size byte fields are read in place: the span
 * outlives the encode. */
static int span(ss_arena *a, Span *out, ss_span *s)
{
        *out = (Span)OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
        out->trace_id = (ProtobufCBinaryData){SS_TRACE_ID_LEN, s->trace_id};
        out->span_id = (ProtobufCBinaryData){SS_SPAN_ID_LEN, s->span_id};
        if (s->has_parent)
                out->parent_span_id = (ProtobufCBinaryData){SS_SPAN_ID_LEN, s->parent_id};
        out->trace_state = arena_str(a, &s->trace_state);
        out->name = arena_str(a, &s->name);
        out->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
        out->start_time_unix_nano = s->start_ns;
        out->end_time_unix_nano = s->end_ns;
        out->dropped_attributes_count = s->dropped_attrs;
        out->flags = s->flags;
        if (!out->trace_state || !out->name ||
            attrs(a, &s->attrs, &out->attributes, &out->n_attributes) < 0 ||
            span_events(a, out, s) < 0 || span_status(a, out, s) < 0)
                return -ENOMEM;
        return 0;
}

/* ---- resource groups -------------------------------------------------------------------- */

static ScopeSpans *scope_spans(ss_arena *a, const ss_resource *r, size_t n)
{
        ScopeSpans *ss = ss_arena_alloc(a, sizeof(*ss));
        Scope *sc = ss_arena_alloc(a, sizeof(*sc));
        Span **p = ss_arena_array(a, n, sizeof(*p));

        if (!ss || !sc || !p)
                return NULL;
        *sc = (Scope)OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
        sc->name = arena_str(a, &r->scope_name);
        sc->version = arena_str(a, &r->scope_version);
        if (!sc->name || !sc->version)
                return NULL;
        *ss = (ScopeSpans)OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
        ss->scope = sc;
        ss->spans = p;
        ss->n_spans = n;
        return ss;
}

/* One ResourceSpans with one ScopeSpans for spans[order[0..n)], all of one resource. */
static ResourceSpans *resource_spans(ss_arena *a, ss_span *const *spans, const size_t *order,
                                     size_t n)
{
        const ss_resource *r = spans[order[0]]->resource;
        ResourceSpans *rs = ss_arena_alloc(a, sizeof(*rs));
        Resource *res = ss_arena_alloc(a, sizeof(*res));
        ScopeSpans **ssp = ss_arena_alloc(a, sizeof(*ssp));
        Span *sp = ss_arena_array(a, n, sizeof(*sp));

        if (!rs || !res || !ssp || !sp)
                return NULL;
        *res = (Resource)OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
        res->dropped_attributes_count = r->dropped_attrs;
        if (attrs(a, &r->attrs, &res->attributes, &res->n_attributes) < 0)
                return NULL;
        ssp[0] = scope_spans(a, r, n);
        if (!ssp[0])
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (span(a, &sp[i], spans[order[i]]) < 0)
                        return NULL;
                ssp[0]->spans[i] = &sp[i];
        }
        *rs = (ResourceSpans)OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
        rs->resource = res;
        rs->scope_spans = ssp;
        rs->n_scope_spans = 1;
        return rs;
}

/* Length of the run of spans sharing the resource of spans[order[0]]. */
static size_t run_len(ss_span *const *spans, const size_t *order, size_t n)
{
        size_t k = 1;

        while (k < n && spans[order[k]]->resource->id == spans[order[0]]->resource->id)
                k++;
        return k;
}

static int build_request(ss_arena *a, ss_span *const *spans, const size_t *order, size_t n,
                         Request *req)
{
        /* At most one ResourceSpans per span. */
        ResourceSpans **rs = ss_arena_array(a, n, sizeof(*rs));
        size_t nrs = 0;

        if (!rs)
                return -ENOMEM;
        for (size_t i = 0; i < n;) {
                size_t k = run_len(spans, order + i, n - i);

                rs[nrs] = resource_spans(a, spans, order + i, k);
                if (!rs[nrs])
                        return -ENOMEM;
                nrs++;
                i += k;
        }
        req->resource_spans = rs;
        req->n_resource_spans = nrs;
        return 0;
}

static int pack(const Request *req, ss_buf *out)
{
        size_t size = REQUEST_FN(get_packed_size)(req);
        int r = ss_buf_reserve(out, size);

        if (r < 0)
                return r;
        out->len += REQUEST_FN(pack)(req, out->data + out->len);
        return 0;
}

int ss_otlp_encode_pbc(ss_span *const *spans, size_t n, ss_buf *out)
{
        Request req =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
        ss_arena a = {0};
        size_t *order = NULL;
        int r = 0;

        if (n) {
                order = ss_arena_array(&a, n, sizeof(*order));
                r = order ? ss_otlp_order(spans, n, order) : -ENOMEM;
                if (r >= 0)
                        r = build_request(&a, spans, order, n, &req);
        }
        if (r >= 0)
                r = pack(&req, out);
        ss_arena_free(&a);
        return r;
}

/* ---- response --------------------------------------------------------------------------- */

int ss_otlp_parse_response(const uint8_t *body, size_t len, int64_t *ret_rejected,
                           char **ret_message)
{
        const Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess *ps;
        Response *resp;
        char *msg = NULL;
        int64_t rejected = 0;
        int r = 0;

        resp = RESPONSE_FN(unpack)(NULL, len, body);
        if (!resp)
                return -EBADMSG;
        ps = resp->partial_success;
        if (ps) {
                rejected = ps->rejected_spans;
                if (ps->error_message && ps->error_message[0]) {
                        msg = strdup(ps->error_message);
                        r = msg ? 0 : -ENOMEM;
                }
        }
        RESPONSE_FN(free_unpacked)(resp, NULL);
        if (r < 0)
                return r;
        *ret_rejected = rejected;
        *ret_message = msg;
        return 0;
}
