/* SPDX-License-Identifier: MIT */
/*
 * fuzz-json: spans whose strings and attribute values are raw bytes (invalid
 * UTF-8, NULs, control characters, quotes, arrays and maps nested past what
 * the wire allows, non-string map keys, ext values, any double) through
 * ss_otlp_json_encode(). The model sanitises what comes off the wire; this
 * target builds spans around it, so the encoder alone must turn anything
 * into one line of valid JSON in well-formed UTF-8 (json-check.h).
 *
 * Input, read front to back (zeros past the end):
 *   [spans-1: 1 byte, & 3]
 *   two resources: [scope name: str][scope version: str][attributes: map]
 *   each span: [bits: 1 byte][start: 8][end: 8][flags: 1][dropped attrs: 1]
 *              [dropped events: 1][name: str][status message: str]
 *              [trace state: str][attributes: map][events: 1 byte, & 3]
 *              each event: [time: 8][name: str][attributes: map][dropped: 1]
 *   str:   [len: 1 byte; 255: then 2 bytes of length][bytes]
 *   map:   [pairs: 1 byte, & 7] then pairs of [key: str][value]
 *   (bits: parent 0x01, kind 0x0e, status 0x30, second resource 0x80)
 *   value: [tag: 1 byte] then by tag % 11: nil, bool, positive int,
 *          negative int, float64, float32, str, bin, array ([count & 7]
 *          values), map ([count & 7] pairs, a key being any value), ext
 */
#include <errno.h>
#include <stdlib.h>

#include "fuzz-util.h"

#define MAX_DEPTH 24 /* deeper than SS_ATTR_DEPTH_MAX, which only the wire enforces */

typedef struct gen {
        fz_in in;
        msgpack_zone *z;
} gen;

static void *zalloc(gen *g, size_t n)
{
        void *p = msgpack_zone_malloc(g->z, n ? n : 1);

        FZ_ASSERT(p);
        return p;
}

static msgpack_object_str gen_str(gen *g)
{
        size_t want = fz_u8(&g->in), got;
        const uint8_t *p;
        char *d;

        if (want == 255)
                want = fz_u16(&g->in);
        p = fz_bytes(&g->in, want, &got);
        d = zalloc(g, got); /* a copy of exactly got bytes, no NUL after it */
        memcpy(d, p, got);
        return (msgpack_object_str){.size = (uint32_t)got, .ptr = d};
}

static void gen_value(gen *g, msgpack_object *o, unsigned depth);

static void gen_array(gen *g, msgpack_object *o, unsigned depth)
{
        uint32_t n = fz_u8(&g->in) & 7;

        o->type = MSGPACK_OBJECT_ARRAY;
        o->via.array = (msgpack_object_array){.size = n, .ptr = zalloc(g, n * sizeof(*o))};
        for (uint32_t i = 0; i < n; i++)
                gen_value(g, &o->via.array.ptr[i], depth + 1);
}

static void gen_map(gen *g, msgpack_object *o, unsigned depth)
{
        uint32_t n = fz_u8(&g->in) & 7;
        msgpack_object_kv *kv = zalloc(g, n * sizeof(*kv));

        o->type = MSGPACK_OBJECT_MAP;
        o->via.map = (msgpack_object_map){.size = n, .ptr = kv};
        for (uint32_t i = 0; i < n; i++) {
                gen_value(g, &kv[i].key, depth + 1);
                gen_value(g, &kv[i].val, depth + 1);
        }
}

static void gen_scalar(gen *g, msgpack_object *o, uint8_t tag)
{
        uint64_t u;
        float f;

        switch (tag) {
        case 1:
                *o = (msgpack_object){.type = MSGPACK_OBJECT_BOOLEAN,
                                      .via.boolean = fz_u8(&g->in) & 1};
                break;
        case 2:
                *o = (msgpack_object){.type = MSGPACK_OBJECT_POSITIVE_INTEGER,
                                      .via.u64 = fz_u64(&g->in)};
                break;
        case 3: /* msgpack makes a negative integer only of a value below zero */
                u = fz_u64(&g->in) | (1ull << 63);
                *o = (msgpack_object){.type = MSGPACK_OBJECT_NEGATIVE_INTEGER,
                                      .via.i64 = (int64_t)u};
                break;
        case 4:
                u = fz_u64(&g->in);
                o->type = MSGPACK_OBJECT_FLOAT64;
                memcpy(&o->via.f64, &u, sizeof(u));
                break;
        case 5:
                u = fz_u64(&g->in) >> 32;
                memcpy(&f, &(uint32_t){(uint32_t)u}, sizeof(f));
                *o = (msgpack_object){.type = MSGPACK_OBJECT_FLOAT32, .via.f64 = f};
                break;
        case 6:
                o->type = MSGPACK_OBJECT_STR;
                o->via.str = gen_str(g);
                break;
        case 7:
                o->type = MSGPACK_OBJECT_BIN;
                o->via.str = gen_str(g);
                o->via.bin = (msgpack_object_bin){.size = o->via.str.size, .ptr = o->via.str.ptr};
                break;
        case 10:
                o->type = MSGPACK_OBJECT_EXT;
                o->via.str = gen_str(g);
                o->via.ext =
                    (msgpack_object_ext){.type = 1, .size = o->via.str.size, .ptr = o->via.str.ptr};
                break;
        default:
                *o = (msgpack_object){.type = MSGPACK_OBJECT_NIL};
                break;
        }
}

static void gen_value(gen *g, msgpack_object *o, unsigned depth)
{
        uint8_t tag = fz_u8(&g->in) % 11;

        if (tag == 8 && depth < MAX_DEPTH)
                gen_array(g, o, depth);
        else if (tag == 9 && depth < MAX_DEPTH)
                gen_map(g, o, depth);
        else
                gen_scalar(g, o, tag);
}

/* A top-level attribute list: string keys (ss_attrs keeps no other), any values. The array is
 * ss_attrs_reserve()'s, as the span or resource frees it with ss_attrs_free(). */
static ss_attrs gen_attrs(gen *g)
{
        uint32_t n = fz_u8(&g->in) & 7;
        ss_attrs a = {0};

        FZ_ASSERT(ss_attrs_reserve(&a, n ? n : 1) == 0);
        a.n = n;
        for (uint32_t i = 0; i < n; i++) {
                a.kv[i].key.type = MSGPACK_OBJECT_STR;
                a.kv[i].key.via.str = gen_str(g);
                gen_value(g, &a.kv[i].val, 1);
        }
        return a;
}

static ss_resource *gen_resource(gen *g)
{
        ss_resource *r = ss_resource_new(NULL);

        FZ_ASSERT(r);
        r->scope_name = gen_str(g);
        r->scope_version = gen_str(g);
        ss_attrs_free(&r->attrs);
        r->attrs = gen_attrs(g);
        return r;
}

static void gen_events(gen *g, ss_span *s)
{
        uint32_t n = fz_u8(&g->in) & 3;

        s->events = calloc(n ? n : 1, sizeof(*s->events));
        FZ_ASSERT(s->events);
        s->n_events = s->cap_events = n;
        for (uint32_t i = 0; i < n; i++) {
                s->events[i].time_ns = fz_u64(&g->in);
                s->events[i].name = gen_str(g);
                s->events[i].attrs = gen_attrs(g);
                s->events[i].dropped_attrs = fz_u8(&g->in);
        }
}

static ss_span *gen_span(gen *g, ss_resource *const *res)
{
        static const uint8_t tid[SS_TRACE_ID_LEN] = {1}, sid[SS_SPAN_ID_LEN] = {2};
        ss_msg_span m = {.trace_id = tid, .span_id = sid, .name = {.ptr = "x", .len = 1}};
        uint8_t bits = fz_u8(&g->in);
        ss_span *s = ss_span_new(&m, false, res[bits >> 7], NULL);

        FZ_ASSERT(s);
        s->has_parent = bits & 1;
        memset(s->parent_id, bits, sizeof(s->parent_id));
        s->kind = (uint8_t)((bits >> 1) & 7) % (SS_KIND_CONSUMER + 1);
        s->status_code = (uint8_t)((bits >> 4) & 3) % (SS_STATUS_ERROR + 1);
        s->start_ns = fz_u64(&g->in);
        s->end_ns = fz_u64(&g->in);
        s->flags = fz_u8(&g->in);
        s->dropped_attrs = fz_u8(&g->in);
        s->dropped_events = fz_u8(&g->in);
        s->ended = true;
        s->name = gen_str(g);
        s->status_msg = gen_str(g);
        s->trace_state = gen_str(g);
        ss_attrs_free(&s->attrs);
        s->attrs = gen_attrs(g);
        gen_events(g, s);
        return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        gen g = {.in = {data, size}, .z = msgpack_zone_new(4096)};
        size_t n = (fz_u8(&g.in) & 3) + 1;
        ss_resource *res[2];
        ss_span *spans[4];

        FZ_ASSERT(g.z);
        res[0] = gen_resource(&g);
        res[1] = gen_resource(&g);
        for (size_t i = 0; i < n; i++)
                spans[i] = gen_span(&g, res);
        fz_check_json_encoder(spans, n);
        for (size_t i = 0; i < n; i++)
                ss_span_unref(spans[i]);
        ss_resource_unref(res[0]);
        ss_resource_unref(res[1]);
        msgpack_zone_free(g.z);
        return 0;
}
