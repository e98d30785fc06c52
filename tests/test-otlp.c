/* SPDX-License-Identifier: MIT */
#include "ss-check.h"
#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otlp/otlp.h"
#include "fixture.h"
#include "model/span.h"
#include "ss-buf.h"
#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Request;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse Response;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess PartialSuccess;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

#define CASE(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x
#define REQUEST_FN(fn)                                                                             \
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__##fn
#define RESPONSE_FN(fn)                                                                            \
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__##fn

/* ---- helpers ------------------------------------------------------------------------------ */

/* A span named name, ended 1 us after its start; ids derived from seed (the trace's too),
 * a parent when parent_seed != 0. */
static ss_span *mkspan(ss_resource *r, const char *name, uint8_t seed, uint8_t parent_seed,
                       const msgpack_object_map *attrs)
{
        uint64_t start = 1700000000000000000ull + seed;

        return fx_span(&(fx_span_spec){.resource = r,
                                       .name = name,
                                       .trace_seed = seed,
                                       .seed = seed,
                                       .parent_seed = parent_seed,
                                       .kind = SS_KIND_INTERNAL,
                                       .start_ns = start,
                                       .end_ns = start + 1000,
                                       .attrs = attrs});
}

static Request *encode_decode(ss_span *const *spans, size_t n)
{
        ss_buf b;
        Request *req;

        ss_buf_init(&b, 16 << 20);
        ck_assert_int_eq(ss_otlp_encode(spans, n, &b), 0);
        req = REQUEST_FN(unpack)(NULL, b.len, b.data);
        ck_assert_ptr_nonnull(req);
        ss_buf_free(&b);
        return req;
}

static void free_req(Request *req)
{
        REQUEST_FN(free_unpacked)(req, NULL);
}

static const AnyValue *kv_get(KeyValue **kv, size_t n, const char *key)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(kv[i]->key, key) == 0)
                        return kv[i]->value;
        ck_abort_msg("no attribute %s", key);
        return NULL;
}

static void ck_anystr(const AnyValue *v, const char *want)
{
        ck_assert_ptr_nonnull(v);
        ck_assert_int_eq(v->value_case, CASE(STRING_VALUE));
        ck_assert_str_eq(v->string_value, want);
}

static void ck_anyint(const AnyValue *v, int64_t want)
{
        ck_assert_int_eq(v->value_case, CASE(INT_VALUE));
        ck_assert_int_eq(v->int_value, want);
}

/* ---- a request with everything ------------------------------------------------------------ */

/* Attributes of every kind the wire allows, nested ones included. */
static void pack_all_types(msgpack_packer *pk)
{
        msgpack_pack_map(pk, 14);
        pk_str(pk, "str");
        pk_str(pk, "hello");
        pk_str(pk, "empty");
        pk_str(pk, "");
        pk_str(pk, "int");
        msgpack_pack_uint32(pk, 42);
        pk_str(pk, "neg");
        msgpack_pack_int64(pk, -9000000000ll);
        pk_str(pk, "big");
        msgpack_pack_uint64(pk, UINT64_MAX);
        pk_str(pk, "max");
        msgpack_pack_uint64(pk, INT64_MAX);
        pk_str(pk, "f64");
        msgpack_pack_double(pk, 0.1);
        pk_str(pk, "f32");
        msgpack_pack_float(pk, 1.5f);
        pk_str(pk, "yes");
        msgpack_pack_true(pk);
        pk_str(pk, "no");
        msgpack_pack_false(pk);
        pk_str(pk, "bin");
        msgpack_pack_bin_with_body(pk, "\x00\xff\x10", 3);
        pk_str(pk, "gen_ai.response.finish_reasons");
        msgpack_pack_array(pk, 2);
        pk_str(pk, "stop");
        pk_str(pk, "length");
        pk_str(pk, "nested");
        msgpack_pack_map(pk, 2);
        pk_str(pk, "list");
        msgpack_pack_array(pk, 2);
        msgpack_pack_int(pk, 1);
        msgpack_pack_map(pk, 1);
        pk_str(pk, "x");
        pk_str(pk, "y");
        pk_str(pk, "emptymap");
        msgpack_pack_map(pk, 0);
        pk_str(pk, "emptyarr");
        msgpack_pack_array(pk, 0);
}

static void ck_all_types(KeyValue **kv, size_t n)
{
        const AnyValue *v, *w;

        ck_assert_uint_eq(n, 14);
        /* order kept */
        ck_assert_str_eq(kv[0]->key, "str");
        ck_assert_str_eq(kv[13]->key, "emptyarr");
        ck_anystr(kv_get(kv, n, "str"), "hello");
        /* a set oneof member is written even at its default value */
        ck_anystr(kv_get(kv, n, "empty"), "");
        ck_anyint(kv_get(kv, n, "int"), 42);
        ck_anyint(kv_get(kv, n, "neg"), -9000000000ll);
        ck_anyint(kv_get(kv, n, "max"), INT64_MAX);
        v = kv_get(kv, n, "big");
        ck_assert_int_eq(v->value_case, CASE(DOUBLE_VALUE));
        ck_assert_double_eq(v->double_value, 18446744073709551615.0);
        v = kv_get(kv, n, "f64");
        ck_assert_int_eq(v->value_case, CASE(DOUBLE_VALUE));
        ck_assert_double_eq(v->double_value, 0.1);
        ck_assert_double_eq(kv_get(kv, n, "f32")->double_value, 1.5);
        v = kv_get(kv, n, "yes");
        ck_assert_int_eq(v->value_case, CASE(BOOL_VALUE));
        ck_assert(v->bool_value);
        v = kv_get(kv, n, "no");
        ck_assert_int_eq(v->value_case, CASE(BOOL_VALUE));
        ck_assert(!v->bool_value);
        v = kv_get(kv, n, "bin");
        ck_assert_int_eq(v->value_case, CASE(BYTES_VALUE));
        ck_assert_uint_eq(v->bytes_value.len, 3);
        ck_assert_mem_eq(v->bytes_value.data, "\x00\xff\x10", 3);
        v = kv_get(kv, n, "gen_ai.response.finish_reasons");
        ck_assert_int_eq(v->value_case, CASE(ARRAY_VALUE));
        ck_assert_uint_eq(v->array_value->n_values, 2);
        ck_anystr(v->array_value->values[0], "stop");
        ck_anystr(v->array_value->values[1], "length");
        v = kv_get(kv, n, "nested");
        ck_assert_int_eq(v->value_case, CASE(KVLIST_VALUE));
        ck_assert_uint_eq(v->kvlist_value->n_values, 2);
        ck_assert_str_eq(v->kvlist_value->values[0]->key, "list");
        w = v->kvlist_value->values[0]->value;
        ck_assert_int_eq(w->value_case, CASE(ARRAY_VALUE));
        ck_assert_uint_eq(w->array_value->n_values, 2);
        ck_anyint(w->array_value->values[0], 1);
        w = w->array_value->values[1];
        ck_assert_int_eq(w->value_case, CASE(KVLIST_VALUE));
        ck_assert_uint_eq(w->kvlist_value->n_values, 1);
        ck_assert_str_eq(w->kvlist_value->values[0]->key, "x");
        ck_anystr(w->kvlist_value->values[0]->value, "y");
        w = v->kvlist_value->values[1]->value;
        ck_assert_str_eq(v->kvlist_value->values[1]->key, "emptymap");
        ck_assert_int_eq(w->value_case, CASE(KVLIST_VALUE));
        ck_assert_uint_eq(w->kvlist_value->n_values, 0);
        v = kv_get(kv, n, "emptyarr");
        ck_assert_int_eq(v->value_case, CASE(ARRAY_VALUE));
        ck_assert_uint_eq(v->array_value->n_values, 0);
}

static const uint8_t rich_tid[16] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                                     0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
static const uint8_t rich_sid[8] = {0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87};

/* The full span: trace_state, flags, events, status, dropped counts. */
static ss_span *rich_span(ss_resource *r)
{
        ss_limits lim = {.max_events = 2};
        mp a, o, e;
        msgpack_packer *pk = mp_begin(&a);
        ss_span *s;

        pack_all_types(pk);
        pk = mp_begin(&o);
        msgpack_pack_map(pk, 2);
        pk_str(pk, "trace_state");
        pk_str(pk, "ot=th:8,vendor=x");
        pk_str(pk, "flags");
        msgpack_pack_uint32(pk, 0x301);
        s = fx_span(&(fx_span_spec){.resource = r,
                                    .name = "agent.run",
                                    .trace_id = rich_tid,
                                    .span_id = rich_sid,
                                    .kind = SS_KIND_SERVER,
                                    .start_ns = 1700000000123456789ull,
                                    .attrs = mp_map(&a),
                                    .options = mp_map(&o),
                                    .limits = &lim});
        mp_done(&a);
        mp_done(&o);

        pk = mp_begin(&e);
        msgpack_pack_map(pk, 1);
        pk_str(pk, "gen_ai.usage.output_tokens");
        msgpack_pack_int(pk, 17);
        ck_assert_int_eq(ss_span_add_event(s, "gen_ai.first_token", 18, 1700000000200000000ull,
                                           mp_map(&e), &lim),
                         0);
        ck_assert_int_eq(ss_span_add_event(s, "retry", 5, 1700000000300000000ull, NULL, &lim), 0);
        ck_assert_int_eq(ss_span_add_event(s, "dropped", 7, 1700000000400000000ull, NULL, &lim), 0);
        mp_done(&e);
        s->dropped_attrs = 3; /* as if the limit had been hit */
        s->events[1].dropped_attrs = 2;
        ss_span_end(s, 1700000000999999999ull, SS_STATUS_ERROR, "model timeout", 13);
        return s;
}

static void ck_rich_span(const Span *p)
{
        ck_assert_uint_eq(p->trace_id.len, 16);
        ck_assert_mem_eq(p->trace_id.data, rich_tid, 16);
        ck_assert_uint_eq(p->span_id.len, 8);
        ck_assert_mem_eq(p->span_id.data, rich_sid, 8);
        ck_assert_uint_eq(p->parent_span_id.len, 0);
        ck_assert_str_eq(p->trace_state, "ot=th:8,vendor=x");
        ck_assert_str_eq(p->name, "agent.run");
        ck_assert_int_eq(p->kind,
                         OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
        ck_assert_uint_eq(p->start_time_unix_nano, 1700000000123456789ull);
        ck_assert_uint_eq(p->end_time_unix_nano, 1700000000999999999ull);
        ck_all_types(p->attributes, p->n_attributes);
        ck_assert_uint_eq(p->dropped_attributes_count, 3);
        ck_assert_uint_eq(p->n_events, 2);
        ck_assert_uint_eq(p->dropped_events_count, 1);
        ck_assert_uint_eq(p->events[0]->time_unix_nano, 1700000000200000000ull);
        ck_assert_str_eq(p->events[0]->name, "gen_ai.first_token");
        ck_assert_uint_eq(p->events[0]->n_attributes, 1);
        ck_assert_str_eq(p->events[0]->attributes[0]->key, "gen_ai.usage.output_tokens");
        ck_anyint(p->events[0]->attributes[0]->value, 17);
        ck_assert_uint_eq(p->events[0]->dropped_attributes_count, 0);
        ck_assert_str_eq(p->events[1]->name, "retry");
        ck_assert_uint_eq(p->events[1]->n_attributes, 0);
        ck_assert_uint_eq(p->events[1]->dropped_attributes_count, 2);
        ck_assert_ptr_nonnull(p->status);
        ck_assert_int_eq(p->status->code,
                         OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
        ck_assert_str_eq(p->status->message, "model timeout");
        ck_assert_uint_eq(p->flags, 0x301);
        ck_assert_uint_eq(p->n_links, 0);
}

START_TEST(test_encode_everything)
{
        ss_resource *r1 = mp_resource("travel-agent", "sidespan-python", "0.3.1");
        ss_resource *r2 = mp_resource("other", NULL, NULL);
        ss_span *spans[3];
        Request *req;
        ResourceSpans *rs;
        const Span *p;

        spans[0] = rich_span(r1);
        spans[1] = mkspan(r2, "chat gpt-4o", 2, 7, NULL);
        ss_span_end(spans[1], spans[1]->end_ns, SS_STATUS_OK, NULL, 0);
        spans[2] = mkspan(r1, "tool.execute", 3, 0x80, NULL);
        req = encode_decode(spans, 3);

        ck_assert_uint_eq(req->n_resource_spans, 2);
        /* first resource: rich span and tool.execute, in that order */
        rs = req->resource_spans[0];
        ck_assert_ptr_nonnull(rs->resource);
        ck_assert_uint_eq(rs->resource->n_attributes, 1);
        ck_assert_str_eq(rs->resource->attributes[0]->key, "service.name");
        ck_anystr(rs->resource->attributes[0]->value, "travel-agent");
        ck_assert_uint_eq(rs->n_scope_spans, 1);
        ck_assert_str_eq(rs->scope_spans[0]->scope->name, "sidespan-python");
        ck_assert_str_eq(rs->scope_spans[0]->scope->version, "0.3.1");
        ck_assert_uint_eq(rs->scope_spans[0]->n_spans, 2);
        ck_rich_span(rs->scope_spans[0]->spans[0]);
        p = rs->scope_spans[0]->spans[1];
        ck_assert_str_eq(p->name, "tool.execute");
        ck_assert_mem_eq(p->trace_id.data,
                         "\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\x03", 16);
        ck_assert_mem_eq(p->span_id.data, "\x03\x03\x03\x03\x03\x03\x03\x03", 8);
        ck_assert_uint_eq(p->parent_span_id.len, 8);
        ck_assert_mem_eq(p->parent_span_id.data, "\x80\x80\x80\x80\x80\x80\x80\x80", 8);
        ck_assert_ptr_null(p->status); /* UNSET and no message: no status at all */

        /* second resource: defaults for the scope */
        rs = req->resource_spans[1];
        ck_anystr(rs->resource->attributes[0]->value, "other");
        ck_assert_str_eq(rs->scope_spans[0]->scope->name, "libsidespan");
        ck_assert_str_eq(rs->scope_spans[0]->scope->version, "");
        ck_assert_uint_eq(rs->scope_spans[0]->n_spans, 1);
        p = rs->scope_spans[0]->spans[0];
        ck_assert_str_eq(p->name, "chat gpt-4o");
        ck_assert_mem_eq(p->parent_span_id.data, "\x07\x07\x07\x07\x07\x07\x07\x07", 8);
        ck_assert_ptr_nonnull(p->status);
        ck_assert_int_eq(p->status->code,
                         OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK);
        ck_assert_str_eq(p->status->message, "");
        ck_assert_str_eq(p->trace_state, "");
        ck_assert_uint_eq(p->flags, 0);
        ck_assert_uint_eq(p->n_attributes, 0);
        ck_assert_uint_eq(p->n_events, 0);

        free_req(req);
        for (int i = 0; i < 3; i++)
                ss_span_unref(spans[i]);
        ss_resource_unref(r1);
        ss_resource_unref(r2);
}
END_TEST

/* ---- grouping ----------------------------------------------------------------------------- */

START_TEST(test_grouping_first_appearance)
{
        ss_resource *r[3] = {mp_resource("a", "sa", "1"), mp_resource("b", "sb", "2"),
                             mp_resource("c", NULL, NULL)};
        /* resources a b a c b a: expect a{0,2,5} b{1,4} c{3} */
        static const int which[6] = {0, 1, 0, 2, 1, 0};
        static const char *const want[3][3] = {{"s0", "s2", "s5"}, {"s1", "s4"}, {"s3"}};
        static const size_t want_n[3] = {3, 2, 1};
        static const char *const svc[3] = {"a", "b", "c"};
        ss_span *spans[6];
        size_t order[6];
        Request *req;
        char name[8];

        for (int i = 0; i < 6; i++) {
                snprintf(name, sizeof(name), "s%d", i);
                spans[i] = mkspan(r[which[i]], name, (uint8_t)(i + 1), 0, NULL);
        }
        ck_assert_int_eq(ss_otlp_order(spans, 6, order), 0);
        static const size_t want_order[6] = {0, 2, 5, 1, 4, 3};
        for (int i = 0; i < 6; i++)
                ck_assert_uint_eq(order[i], want_order[i]);

        req = encode_decode(spans, 6);
        ck_assert_uint_eq(req->n_resource_spans, 3);
        for (int g = 0; g < 3; g++) {
                ResourceSpans *rs = req->resource_spans[g];

                ck_anystr(
                    kv_get(rs->resource->attributes, rs->resource->n_attributes, "service.name"),
                    svc[g]);
                ck_assert_uint_eq(rs->n_scope_spans, 1);
                ck_assert_uint_eq(rs->scope_spans[0]->n_spans, want_n[g]);
                for (size_t k = 0; k < want_n[g]; k++)
                        ck_assert_str_eq(rs->scope_spans[0]->spans[k]->name, want[g][k]);
        }
        ck_assert_str_eq(req->resource_spans[1]->scope_spans[0]->scope->name, "sb");
        ck_assert_str_eq(req->resource_spans[1]->scope_spans[0]->scope->version, "2");
        free_req(req);
        for (int i = 0; i < 6; i++)
                ss_span_unref(spans[i]);
        for (int i = 0; i < 3; i++)
                ss_resource_unref(r[i]);
}
END_TEST

/* Many spans: the arena spills into several blocks. */
START_TEST(test_large_batch)
{
        ss_resource *r = mp_resource("bulk", NULL, NULL);
        enum { N = 2000 };
        ss_span **spans = calloc(N, sizeof(*spans));
        char big[1024];
        mp a;
        msgpack_packer *pk = mp_begin(&a);
        Request *req;

        memset(big, 'z', sizeof(big));
        msgpack_pack_map(pk, 1);
        pk_str(pk, "gen_ai.input.messages");
        msgpack_pack_str_with_body(pk, big, sizeof(big));
        for (int i = 0; i < N; i++)
                spans[i] = mkspan(r, "chat", (uint8_t)i, 0, mp_map(&a));
        mp_done(&a);
        req = encode_decode(spans, N);
        ck_assert_uint_eq(req->n_resource_spans, 1);
        ck_assert_uint_eq(req->resource_spans[0]->scope_spans[0]->n_spans, N);
        for (int i = 0; i < N; i += 199) {
                const Span *p = req->resource_spans[0]->scope_spans[0]->spans[i];

                ck_assert_uint_eq(p->span_id.data[0], (uint8_t)i);
                ck_assert_uint_eq(strlen(p->attributes[0]->value->string_value), sizeof(big));
        }
        free_req(req);
        for (int i = 0; i < N; i++)
                ss_span_unref(spans[i]);
        free(spans);
        ss_resource_unref(r);
}
END_TEST

/* ---- buffer limits ------------------------------------------------------------------------ */

START_TEST(test_enobufs_and_append)
{
        ss_resource *r = mp_resource("svc", NULL, NULL);
        ss_span *s = mkspan(r, "op", 1, 0, NULL);
        Request *req;
        ss_buf b;

        ss_buf_init(&b, 16);
        ck_assert_int_eq(ss_otlp_encode(&s, 1, &b), -ENOBUFS);
        ck_assert_uint_eq(b.len, 0);
        ss_buf_free(&b);

        /* appends after what is there */
        ss_buf_init(&b, 4096);
        ck_assert_int_eq(ss_buf_append(&b, "xyz", 3), 0);
        ck_assert_int_eq(ss_otlp_encode(&s, 1, &b), 0);
        ck_assert_mem_eq(b.data, "xyz", 3);
        req = REQUEST_FN(unpack)(NULL, b.len - 3, b.data + 3);
        ck_assert_ptr_nonnull(req);
        ck_assert_str_eq(req->resource_spans[0]->scope_spans[0]->spans[0]->name, "op");
        free_req(req);

        /* exactly too small by one byte */
        size_t need = b.len - 3;
        ss_buf_free(&b);
        ss_buf_init(&b, need - 1);
        ck_assert_int_eq(ss_otlp_encode(&s, 1, &b), -ENOBUFS);
        ck_assert_uint_eq(b.len, 0);
        ss_buf_free(&b);
        ss_buf_init(&b, need);
        ck_assert_int_eq(ss_otlp_encode(&s, 1, &b), 0);
        ck_assert_uint_eq(b.len, need);
        ss_buf_free(&b);

        /* no spans: an empty request, zero bytes */
        ss_buf_init(&b, 16);
        ck_assert_int_eq(ss_otlp_encode(NULL, 0, &b), 0);
        ck_assert_uint_eq(b.len, 0);
        ss_buf_free(&b);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

/* An empty buffer takes the request where the writer put it, at the end of its allocation;
 * the bytes are those written after other contents (moved there), and the buffer, reused,
 * grown and appended to, keeps them. */
static void encode_after_byte(ss_span *const *spans, size_t n, ss_buf *ref)
{
        ss_buf_init(ref, 16 << 20);
        ck_assert_int_eq(ss_buf_append(ref, "x", 1), 0);
        ck_assert_int_eq(ss_otlp_encode(spans, n, ref), 0);
}

START_TEST(test_encode_in_place_and_reuse)
{
        char big[1024], *huge = malloc(40000);
        ss_resource *r = mp_resource("bulk", NULL, NULL), *wide;
        ss_span *spans[20], *w;
        ss_buf b, ref;
        mp a;
        msgpack_packer *pk = mp_begin(&a);

        memset(big, 'z', sizeof(big));
        msgpack_pack_map(pk, 1);
        pk_str(pk, "gen_ai.input.messages");
        msgpack_pack_str_with_body(pk, big, sizeof(big));
        for (int i = 0; i < 20; i++)
                spans[i] = mkspan(r, "chat", (uint8_t)i, 0, mp_map(&a));
        mp_done(&a);
        ss_buf_init(&b, 16 << 20);
        ck_assert_int_eq(ss_otlp_encode(spans, 20, &b), 0);
        encode_after_byte(spans, 20, &ref);
        ck_assert_uint_eq(b.len, ref.len - 1);
        ck_assert_mem_eq(b.data, ref.data + 1, b.len);
        ck_assert_uint_eq(b.cap, b.len); /* not moved: they end where the allocation ends */
        ck_assert_uint_gt(b.head, 0);
        ss_buf_free(&ref);

        /* Reused: a span whose resource the size hint leaves out (40 000 bytes of
         * host.notes) grows the buffer while the old start is still skipped. */
        memset(huge, 'v', 40000);
        pk = mp_begin(&a);
        msgpack_pack_map(pk, 2);
        pk_str(pk, "service.name");
        pk_str(pk, "wide");
        pk_str(pk, "host.notes");
        msgpack_pack_str_with_body(pk, huge, 40000);
        wide = ss_resource_new(mp_map(&a));
        mp_done(&a);
        ck_assert_ptr_nonnull(wide);
        w = mkspan(wide, "op", 1, 0, NULL);
        ss_buf_reset(&b);
        ck_assert_int_eq(ss_otlp_encode(&w, 1, &b), 0);
        encode_after_byte(&w, 1, &ref);
        ck_assert_uint_eq(b.len, ref.len - 1);
        ck_assert_mem_eq(b.data, ref.data + 1, b.len);

        /* Appended to: the contents move back to the allocation's start, whole. */
        ck_assert_int_eq(ss_buf_append(&b, "end", 3), 0);
        ck_assert_uint_eq(b.head, 0);
        ck_assert_uint_eq(b.len, ref.len + 2);
        ck_assert_mem_eq(b.data, ref.data + 1, ref.len - 1);
        ck_assert_mem_eq(b.data + ref.len - 1, "end", 3);
        ss_buf_free(&ref);

        /* Shrunk after a request taken in place, then freed (ASan checks the pointers). */
        ss_buf_reset(&b);
        ck_assert_int_eq(ss_otlp_encode(spans, 1, &b), 0);
        encode_after_byte(spans, 1, &ref);
        ss_buf_shrink(&b, 0);
        ck_assert_uint_eq(b.head, 0);
        ck_assert_uint_eq(b.cap, b.len);
        ck_assert_mem_eq(b.data, ref.data + 1, b.len);
        ss_buf_free(&ref);
        ss_buf_free(&b);
        ck_assert_ptr_null(b.data);

        for (int i = 0; i < 20; i++)
                ss_span_unref(spans[i]);
        ss_span_unref(w);
        ss_resource_unref(wide);
        ss_resource_unref(r);
        free(huge);
}
END_TEST

/* ---- responses ---------------------------------------------------------------------------- */

static size_t pack_response(uint8_t *out, const PartialSuccess *ps)
{
        Response resp =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;

        resp.partial_success = (PartialSuccess *)ps;
        ck_assert_uint_le(RESPONSE_FN(get_packed_size)(&resp), 256);
        return RESPONSE_FN(pack)(&resp, out);
}

START_TEST(test_parse_response)
{
        PartialSuccess ps =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
        uint8_t buf[256] = {0};
        int64_t rejected = -1;
        char *msg = (char *)"untouched";
        size_t n;

        /* an empty body is an empty response: full success */
        ck_assert_int_eq(ss_otlp_parse_response(buf, 0, &rejected, &msg), 0);
        ck_assert_int_eq(rejected, 0);
        ck_assert_ptr_null(msg);

        rejected = -1;
        n = pack_response(buf, NULL);
        ck_assert_int_eq(ss_otlp_parse_response(buf, n, &rejected, &msg), 0);
        ck_assert_int_eq(rejected, 0);
        ck_assert_ptr_null(msg);

        ps.rejected_spans = 3;
        ps.error_message = (char *)"span 2 has an invalid id";
        n = pack_response(buf, &ps);
        ck_assert_int_eq(ss_otlp_parse_response(buf, n, &rejected, &msg), 0);
        ck_assert_int_eq(rejected, 3);
        ck_assert_str_eq(msg, "span 2 has an invalid id");
        free(msg);

        /* partial_success present with only a warning */
        ps.rejected_spans = 0;
        ps.error_message = (char *)"deprecated field";
        n = pack_response(buf, &ps);
        ck_assert_int_eq(ss_otlp_parse_response(buf, n, &rejected, &msg), 0);
        ck_assert_int_eq(rejected, 0);
        ck_assert_str_eq(msg, "deprecated field");
        free(msg);

        ps.rejected_spans = 5;
        ps.error_message = (char *)"";
        n = pack_response(buf, &ps);
        ck_assert_int_eq(ss_otlp_parse_response(buf, n, &rejected, &msg), 0);
        ck_assert_int_eq(rejected, 5);
        ck_assert_ptr_null(msg);
}
END_TEST

START_TEST(test_parse_response_garbage)
{
        static const char *const bodies[] = {
            "\xff\xff\xff\xff", "\x0a\x05\x08", /* truncated partial_success */
            "{\"partialSuccess\":{}}",          /* a JSON body (Langfuse) */
            "\x0a\x02\x08",                     /* length past the end */
        };
        int64_t rejected = 77;
        char *msg = (char *)"untouched";

        for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
                ck_assert_int_eq(ss_otlp_parse_response((const uint8_t *)bodies[i],
                                                        strlen(bodies[i]), &rejected, &msg),
                                 -EBADMSG);
                ck_assert_int_eq(rejected, 77);
                ck_assert_str_eq(msg, "untouched");
        }
}
END_TEST

static Suite *otlp_suite(void)
{
        Suite *s = suite_create("otlp");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_encode_everything);
        tcase_add_test(tc, test_grouping_first_appearance);
        tcase_add_test(tc, test_large_batch);
        tcase_add_test(tc, test_enobufs_and_append);
        tcase_add_test(tc, test_encode_in_place_and_reuse);
        tcase_add_test(tc, test_parse_response);
        tcase_add_test(tc, test_parse_response_garbage);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(otlp_suite());
}
