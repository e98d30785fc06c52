/* SPDX-License-Identifier: MIT */
#include "otlp/otlp.h"

#include <errno.h>
#include <protobuf-c/protobuf-c.h>
#include <string.h>

#include "otlp/json-write.h"
#include "trace_service.pb-c.h"

/*
 * Any protobuf-c message as OTLP/JSON, driven by its descriptor, so that
 * traces today and metrics or logs later share one writer: the protobuf JSON
 * mapping (lowerCamelCase keys, 64-bit integers as strings, bytes as base64,
 * fields in field-number order, which is the order protobuf-c lays its
 * descriptors out in, and proto3 fields at their default left out) with
 * OTLP's exceptions: enums as integers, and the bytes fields trace_id,
 * span_id and parent_span_id as lowercase hex. A oneof member is written
 * whenever it is the one set, even at its default (AnyValue's
 * {"intValue":"0"} is a value).
 */

/* Messages nest no deeper in OTLP unless AnyValues do; protobuf-c has unpacked them already,
 * so this bounds only our recursion. */
#define PB_JSON_MAX_DEPTH 128

static void message(ss_jw *w, const ProtobufCMessage *m, unsigned depth);

/* "parent_span_id" as "parentSpanId", as protoc makes a json_name: each '_' goes and the
 * letter after it is upper-cased. */
static void key(ss_jw *w, const char *name)
{
        bool upper = false;

        ss_jw_put(w, "\"", 1);
        for (const char *p = name; *p; p++) {
                char c = *p;

                if (c == '_') {
                        upper = true;
                        continue;
                }
                if (upper && c >= 'a' && c <= 'z')
                        c = (char)(c - 'a' + 'A');
                upper = false;
                ss_jw_put(w, &c, 1);
        }
        ss_jw_put(w, "\":", 2);
}

static bool is_id(const ProtobufCFieldDescriptor *f)
{
        return f->type == PROTOBUF_C_TYPE_BYTES &&
               (strcmp(f->name, "trace_id") == 0 || strcmp(f->name, "span_id") == 0 ||
                strcmp(f->name, "parent_span_id") == 0);
}

/* The size of one value of f's type in the message (and in a repeated field's array). */
static size_t value_size(ProtobufCType t)
{
        switch (t) {
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
        case PROTOBUF_C_TYPE_DOUBLE:
                return 8;
        case PROTOBUF_C_TYPE_STRING:
                return sizeof(char *);
        case PROTOBUF_C_TYPE_BYTES:
                return sizeof(ProtobufCBinaryData);
        case PROTOBUF_C_TYPE_MESSAGE:
                return sizeof(ProtobufCMessage *);
        default: /* 32-bit integers, enums, float, protobuf_c_boolean */
                return 4;
        }
}

static void value(ss_jw *w, const ProtobufCFieldDescriptor *f, const void *p, unsigned depth)
{
        const ProtobufCBinaryData *b = p;
        const char *s;

        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_ENUM:
                ss_jw_i64(w, *(const int32_t *)p, false);
                return;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                ss_jw_u64(w, *(const uint32_t *)p, false);
                return;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                ss_jw_i64(w, *(const int64_t *)p, true);
                return;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                ss_jw_u64(w, *(const uint64_t *)p, true);
                return;
        case PROTOBUF_C_TYPE_FLOAT:
                ss_jw_dbl(w, *(const float *)p);
                return;
        case PROTOBUF_C_TYPE_DOUBLE:
                ss_jw_dbl(w, *(const double *)p);
                return;
        case PROTOBUF_C_TYPE_BOOL:
                ss_jw_lit(w, *(const protobuf_c_boolean *)p ? "true" : "false");
                return;
        case PROTOBUF_C_TYPE_STRING:
                s = *(const char *const *)p;
                ss_jw_str(w, s ? s : "", s ? strlen(s) : 0);
                return;
        case PROTOBUF_C_TYPE_BYTES:
                if (is_id(f))
                        ss_jw_hex(w, b->data, b->len);
                else
                        ss_jw_base64(w, b->data, b->len);
                return;
        case PROTOBUF_C_TYPE_MESSAGE:
                message(w, *(const ProtobufCMessage *const *)p, depth + 1);
                return;
        }
}

/* Whether a proto3 field holds other than its default. */
static bool not_default(const ProtobufCFieldDescriptor *f, const void *p)
{
        static const uint8_t zero[8];

        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING:
                return *(const char *const *)p && **(const char *const *)p;
        case PROTOBUF_C_TYPE_BYTES:
                return ((const ProtobufCBinaryData *)p)->len > 0;
        case PROTOBUF_C_TYPE_MESSAGE:
                return *(const ProtobufCMessage *const *)p != NULL;
        default:
                return memcmp(p, zero, value_size(f->type)) != 0;
        }
}

/* Whether a singular field is written: the oneof member set, a proto2 optional that is
 * there, a required one, or a proto3 field off its default. */
static bool present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
        const char *base = (const char *)m;
        const void *p = base + f->offset;

        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
                return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
        if (f->label == PROTOBUF_C_LABEL_REQUIRED)
                return true;
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
            f->type != PROTOBUF_C_TYPE_MESSAGE)
                return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
        return not_default(f, p);
}

static void repeated(ss_jw *w, const ProtobufCFieldDescriptor *f, const char *arr, size_t n,
                     unsigned depth)
{
        size_t size = value_size(f->type);

        ss_jw_put(w, "[", 1);
        for (size_t i = 0; i < n; i++) {
                if (i)
                        ss_jw_put(w, ",", 1);
                value(w, f, arr + i * size, depth);
        }
        ss_jw_put(w, "]", 1);
}

static void message(ss_jw *w, const ProtobufCMessage *m, unsigned depth)
{
        const ProtobufCMessageDescriptor *d = m->descriptor;
        const char *base = (const char *)m;
        bool first = true;

        if (depth > PB_JSON_MAX_DEPTH) {
                w->err = w->err ? w->err : -ELOOP;
                return;
        }
        ss_jw_put(w, "{", 1);
        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                size_t n = 0;

                if (f->label == PROTOBUF_C_LABEL_REPEATED)
                        n = *(const size_t *)(base + f->quantifier_offset);
                else if (!present(m, f))
                        continue;
                if (f->label == PROTOBUF_C_LABEL_REPEATED && n == 0)
                        continue;
                if (!first)
                        ss_jw_put(w, ",", 1);
                first = false;
                key(w, f->name);
                if (f->label == PROTOBUF_C_LABEL_REPEATED)
                        repeated(w, f, *(const char *const *)(base + f->offset), n, depth);
                else
                        value(w, f, base + f->offset, depth);
        }
        ss_jw_put(w, "}", 1);
}

int ss_otlp_pb_json(const ProtobufCMessage *m, ss_buf *out)
{
        ss_jw w = {.b = out};
        size_t start = out->len;

        message(&w, m, 0);
        if (w.err)
                out->len = start;
        return w.err;
}

int ss_otlp_pb_trace_request_json(const uint8_t *pb, size_t len, ss_buf *out)
{
        Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req;
        int r;

        req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            NULL, len, pb);
        if (!req)
                return -EBADMSG;
        r = ss_otlp_pb_json(&req->base, out);
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
            req, NULL);
        return r;
}
