/* SPDX-License-Identifier: MIT */
#include "otlp/otlp.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "ss-id.h"

/*
 * OTLP/JSON as the protobuf JSON mapping writes it: lowerCamelCase keys,
 * ids as lowercase hex, enums as integers, 64-bit integers as decimal
 * strings, bytes as base64, fields in field-number order, and fields at
 * their default value left out (ids, name, kind and times are always
 * written). Written straight into the caller's ss_buf, one line.
 */

typedef struct jw {
        ss_buf *b;
        int err; /* first error; later writes are skipped */
} jw;

/* Most pieces are a few bytes: copy straight in while there is room. */
static void put(jw *w, const void *p, size_t n)
{
        ss_buf *b = w->b;

        if (w->err)
                return;
        if (b->cap - b->len >= n) {
                memcpy(b->data + b->len, p, n);
                b->len += n;
                return;
        }
        w->err = ss_buf_append(b, p, n);
}

static void lit(jw *w, const char *s)
{
        put(w, s, strlen(s));
}

/* ---- scalars ---------------------------------------------------------------------------- */

/* The escape of an ASCII byte, or NULL when it stands for itself. */
static const char *escape_ascii(uint8_t c, char ubuf[7])
{
        switch (c) {
        case '"':
                return "\\\"";
        case '\\':
                return "\\\\";
        case '\n':
                return "\\n";
        case '\r':
                return "\\r";
        case '\t':
                return "\\t";
        case '\b':
                return "\\b";
        case '\f':
                return "\\f";
        default:
                if (c >= 0x20)
                        return NULL;
                snprintf(ubuf, 7, "\\u%04x", c);
                return ubuf;
        }
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static uint64_t has_zero_byte(uint64_t v)
{
        return (v - ONES) & ~v & HIGHS;
}

/* True when none of the 8 bytes at p needs a look: no control character,
 * quote, backslash or non-ASCII byte. */
static bool plain8(const uint8_t *p)
{
        uint64_t v;

        memcpy(&v, p, sizeof(v));
        return !((v | ((v - 0x20 * ONES) & ~v)) & HIGHS) && !has_zero_byte(v ^ ('"' * ONES)) &&
               !has_zero_byte(v ^ ('\\' * ONES));
}

/* A JSON string: well-formed UTF-8 passes through, each ill-formed byte
 * becomes U+FFFD. Runs that need no escape are copied in one piece. */
static void str(jw *w, const char *p, size_t n)
{
        const uint8_t *s = (const uint8_t *)p;
        size_t start = 0, i = 0;
        char ubuf[7];

        put(w, "\"", 1);
        while (i < n) {
                const char *esc;

                if (n - i >= 8 && plain8(s + i)) {
                        i += 8;
                        continue;
                }

                if (s[i] >= 0x80) {
                        size_t l = ss_utf8_char_len(s + i, n - i);

                        if (l) {
                                i += l;
                                continue;
                        }
                        esc = "\xEF\xBF\xBD";
                } else {
                        esc = escape_ascii(s[i], ubuf);
                        if (!esc) {
                                i++;
                                continue;
                        }
                }
                put(w, p + start, i - start);
                lit(w, esc);
                start = ++i;
        }
        put(w, p + start, n - start);
        put(w, "\"", 1);
}

static void ostr(jw *w, const msgpack_object_str *s)
{
        str(w, s->ptr, s->size);
}

static void hex(jw *w, const uint8_t *id, size_t len)
{
        char buf[2 * SS_TRACE_ID_LEN + 1];

        ss_hex(buf, id, len);
        put(w, "\"", 1);
        put(w, buf, 2 * len);
        put(w, "\"", 1);
}

/* Decimal digits of v, optionally quoted (64-bit integers are JSON strings). */
static void u64(jw *w, uint64_t v, bool quoted)
{
        char tmp[24], *p = tmp + sizeof(tmp);

        if (quoted)
                *--p = '"';
        do {
                *--p = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        if (quoted)
                *--p = '"';
        put(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

static void u64str(jw *w, uint64_t v)
{
        u64(w, v, true);
}

/* The shortest of %.15g..%.17g that reads back as the same double; NaN and
 * the infinities, which JSON has no numbers for, as protobuf JSON's strings. */
static void dbl(jw *w, double d)
{
        char tmp[40];

        if (isnan(d)) {
                lit(w, "\"NaN\"");
                return;
        }
        if (isinf(d)) {
                lit(w, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
                return;
        }
        for (int prec = 15; prec <= 17; prec++) {
                snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
                if (strtod(tmp, NULL) == d)
                        break;
        }
        lit(w, tmp);
}

static void base64(jw *w, const uint8_t *p, size_t n)
{
        static const char tab[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char q[4];

        put(w, "\"", 1);
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16;

                if (i + 1 < n)
                        v |= (uint32_t)p[i + 1] << 8;
                if (i + 2 < n)
                        v |= p[i + 2];
                q[0] = tab[v >> 18 & 63];
                q[1] = tab[v >> 12 & 63];
                q[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
                q[3] = i + 2 < n ? tab[v & 63] : '=';
                put(w, q, 4);
        }
        put(w, "\"", 1);
}

/* ---- values ----------------------------------------------------------------------------- */

static void any(jw *w, const msgpack_object *o);

/* [{"key":..,"value":{..}},...] of the entries with a string key. */
static void kvs(jw *w, const msgpack_object_kv *kv, size_t n)
{
        bool first = true;

        put(w, "[", 1);
        for (size_t i = 0; i < n; i++) {
                if (kv[i].key.type != MSGPACK_OBJECT_STR)
                        continue;
                lit(w, first ? "{\"key\":" : ",{\"key\":");
                ostr(w, &kv[i].key.via.str);
                lit(w, ",\"value\":");
                any(w, &kv[i].val);
                put(w, "}", 1);
                first = false;
        }
        put(w, "]", 1);
}

static void array(jw *w, const msgpack_object_array *a)
{
        lit(w, "{\"arrayValue\":{");
        if (a->size) {
                lit(w, "\"values\":[");
                for (uint32_t i = 0; i < a->size; i++) {
                        if (i)
                                put(w, ",", 1);
                        any(w, &a->ptr[i]);
                }
                put(w, "]", 1);
        }
        lit(w, "}}");
}

static void kvlist(jw *w, const msgpack_object_map *m)
{
        lit(w, "{\"kvlistValue\":{");
        if (m->size) {
                lit(w, "\"values\":");
                kvs(w, m->ptr, m->size);
        }
        lit(w, "}}");
}

/* The same mapping as the protobuf encoder: a uint64 past INT64_MAX is a double. */
static void any(jw *w, const msgpack_object *o)
{
        switch (o->type) {
        case MSGPACK_OBJECT_STR:
                lit(w, "{\"stringValue\":");
                ostr(w, &o->via.str);
                break;
        case MSGPACK_OBJECT_BOOLEAN:
                lit(w, o->via.boolean ? "{\"boolValue\":true" : "{\"boolValue\":false");
                break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
                if (o->via.u64 > INT64_MAX) {
                        lit(w, "{\"doubleValue\":");
                        dbl(w, (double)o->via.u64);
                } else {
                        lit(w, "{\"intValue\":");
                        u64str(w, o->via.u64);
                }
                break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                /* two's complement negation, defined for INT64_MIN too */
                lit(w, "{\"intValue\":\"-");
                u64(w, 0 - (uint64_t)o->via.i64, false);
                put(w, "\"", 1);
                break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                lit(w, "{\"doubleValue\":");
                dbl(w, o->via.f64);
                break;
        case MSGPACK_OBJECT_BIN:
                lit(w, "{\"bytesValue\":");
                base64(w, (const uint8_t *)o->via.bin.ptr, o->via.bin.size);
                break;
        case MSGPACK_OBJECT_ARRAY:
                array(w, &o->via.array);
                return;
        case MSGPACK_OBJECT_MAP:
                kvlist(w, &o->via.map);
                return;
        default:
                put(w, "{", 1);
                break;
        }
        put(w, "}", 1);
}

/* ,"attributes":[..] when there are any. */
static void attrs_field(jw *w, const ss_attrs *a)
{
        if (!a->n)
                return;
        lit(w, ",\"attributes\":");
        kvs(w, a->kv, a->n);
}

/* ,"key":v unless v is 0. key is a literal that needs no escaping. */
static void u32_field(jw *w, const char *key, uint32_t v)
{
        if (!v)
                return;
        lit(w, ",\"");
        lit(w, key);
        lit(w, "\":");
        u64(w, v, false);
}

/* ---- spans ------------------------------------------------------------------------------ */

static void event(jw *w, const ss_event *e)
{
        lit(w, "{\"timeUnixNano\":");
        u64str(w, e->time_ns);
        lit(w, ",\"name\":");
        ostr(w, &e->name);
        attrs_field(w, &e->attrs);
        u32_field(w, "droppedAttributesCount", e->dropped_attrs);
        put(w, "}", 1);
}

static void events(jw *w, const ss_span *s)
{
        if (s->n_events) {
                lit(w, ",\"events\":[");
                for (uint32_t i = 0; i < s->n_events; i++) {
                        if (i)
                                put(w, ",", 1);
                        event(w, &s->events[i]);
                }
                put(w, "]", 1);
        }
        u32_field(w, "droppedEventsCount", s->dropped_events);
}

static void status(jw *w, const ss_span *s)
{
        if (s->status_code == SS_STATUS_UNSET && s->status_msg.size == 0)
                return;
        lit(w, ",\"status\":{");
        if (s->status_msg.size) {
                lit(w, "\"message\":");
                ostr(w, &s->status_msg);
        }
        if (s->status_code) {
                lit(w, s->status_msg.size ? ",\"code\":" : "\"code\":");
                u64(w, s->status_code, false);
        }
        put(w, "}", 1);
}

static void span(jw *w, const ss_span *s)
{
        lit(w, "{\"traceId\":");
        hex(w, s->trace_id, SS_TRACE_ID_LEN);
        lit(w, ",\"spanId\":");
        hex(w, s->span_id, SS_SPAN_ID_LEN);
        if (s->trace_state.size) {
                lit(w, ",\"traceState\":");
                ostr(w, &s->trace_state);
        }
        if (s->has_parent) {
                lit(w, ",\"parentSpanId\":");
                hex(w, s->parent_id, SS_SPAN_ID_LEN);
        }
        lit(w, ",\"name\":");
        ostr(w, &s->name);
        lit(w, ",\"kind\":");
        u64(w, s->kind, false);
        lit(w, ",\"startTimeUnixNano\":");
        u64str(w, s->start_ns);
        lit(w, ",\"endTimeUnixNano\":");
        u64str(w, s->end_ns);
        attrs_field(w, &s->attrs);
        u32_field(w, "droppedAttributesCount", s->dropped_attrs);
        events(w, s);
        status(w, s);
        u32_field(w, "flags", s->flags);
        put(w, "}", 1);
}

/* ---- request ---------------------------------------------------------------------------- */

static void resource(jw *w, const ss_resource *r)
{
        lit(w, "{\"resource\":{");
        if (r->attrs.n) {
                lit(w, "\"attributes\":");
                kvs(w, r->attrs.kv, r->attrs.n);
        }
        lit(w, "},\"scopeSpans\":[{\"scope\":{");
        if (r->scope_name.size) {
                lit(w, "\"name\":");
                ostr(w, &r->scope_name);
        }
        if (r->scope_version.size) {
                lit(w, r->scope_name.size ? ",\"version\":" : "\"version\":");
                ostr(w, &r->scope_version);
        }
        lit(w, "},\"spans\":[");
}

static void request(jw *w, ss_span *const *spans, const size_t *order, size_t n)
{
        lit(w, "{\"resourceSpans\":[");
        for (size_t i = 0; i < n; i++) {
                const ss_resource *r = spans[order[i]]->resource;
                bool first = i == 0 || spans[order[i - 1]]->resource->id != r->id;

                if (first && i)
                        lit(w, "]}]},");
                if (first)
                        resource(w, r);
                else
                        put(w, ",", 1);
                span(w, spans[order[i]]);
        }
        lit(w, "]}]}]}");
}

int ss_otlp_json_encode(ss_span *const *spans, size_t n, ss_buf *out)
{
        jw w = {.b = out};
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
