/* SPDX-License-Identifier: MIT */
#include "ss-check.h"
#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "model/span.h"
#include "otlp/otlp.h"
#include "ss-buf.h"
#include "ss-macro.h"
#include "trace.pb-c.h"

/*
 * The descriptor-driven protobuf-c to OTLP/JSON writer (otlp/pb-json.c)
 * against the span model's own JSON writer (otlp/json.c): spans encoded as
 * protobuf and written back as JSON must read as the direct JSON, byte for
 * byte where neither leaves a field out, and as documented where the direct
 * writer keeps a default (name, kind, times) that the protobuf mapping drops.
 */

/* ---- random spans ---------------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
        return fx_rnd(&rng_state);
}

static unsigned below(unsigned n)
{
        return fx_below(&rng_state, n);
}

static const char *const strings[] = {"",
                                      "v",
                                      "with \"quotes\" and \\",
                                      "line\nbreak\ttab",
                                      "caf\xC3\xA9 \xF0\x9F\x98\x80",
                                      "\x01\x1f control",
                                      "long long long long long long long long long value"};
static const double doubles[] = {0.0, -0.0, 0.1, 1.0 / 3.0, 1e300, -2.5e-300, 42.0};

static void pk_random_value(msgpack_packer *pk, unsigned depth);

static void pk_random_map(msgpack_packer *pk, unsigned n, unsigned depth)
{
        msgpack_pack_map(pk, n);
        for (unsigned i = 0; i < n; i++) {
                char key[16];

                snprintf(key, sizeof(key), "k%u.%u", depth, below(50)); /* never empty */
                pk_str(pk, key);
                pk_random_value(pk, depth + 1);
        }
}

/* One value of every AnyValue kind in turn, nested up to three levels. */
static void pk_random_value(msgpack_packer *pk, unsigned depth)
{
        static const uint64_t uints[] = {
            0, 1, 1700000000000000000ull, INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX};
        static const int64_t ints[] = {-1, -42, INT64_MIN, INT32_MIN};
        unsigned kind = below(depth < 3 ? 12 : 9);

        switch (kind) {
        case 0:
                pk_str(pk, strings[below(SS_ELEMENTSOF(strings))]);
                break;
        case 1:
                (below(2) ? msgpack_pack_true : msgpack_pack_false)(pk);
                break;
        case 2:
                msgpack_pack_uint64(pk, uints[below(SS_ELEMENTSOF(uints))]);
                break;
        case 3:
                msgpack_pack_int64(pk, ints[below(SS_ELEMENTSOF(ints))]);
                break;
        case 4:
                msgpack_pack_double(pk, doubles[below(SS_ELEMENTSOF(doubles))]);
                break;
        case 5: {
                static const double odd[] = {NAN, INFINITY, -INFINITY};

                msgpack_pack_double(pk, odd[below(3)]);
                break;
        }
        case 6:
                msgpack_pack_float(pk, 1.5f);
                break;
        case 7:
                msgpack_pack_bin_with_body(pk, "\x00\xff\xfe\x10\x20", below(6));
                break;
        case 8:
                msgpack_pack_nil(pk);
                break;
        case 9:
        case 10: {
                unsigned n = below(4);

                msgpack_pack_array(pk, n);
                for (unsigned i = 0; i < n; i++)
                        pk_random_value(pk, depth + 1);
                break;
        }
        default:
                pk_random_map(pk, below(4), depth);
                break;
        }
}

/* A resource with service.name and random attributes besides. */
static ss_resource *random_resource(unsigned i)
{
        char svc[16];
        mp o;
        msgpack_packer *pk = mp_begin(&o);
        unsigned n = below(4);
        ss_resource *r;

        snprintf(svc, sizeof(svc), "svc%u", i);
        msgpack_pack_map(pk, 1 + n);
        pk_str(pk, "service.name");
        pk_str(pk, svc);
        for (unsigned k = 0; k < n; k++) {
                char key[16];

                snprintf(key, sizeof(key), "res.%u", k);
                pk_str(pk, key);
                pk_random_value(pk, 1);
        }
        r = ss_resource_new(mp_map(&o));
        mp_done(&o);
        ck_assert_ptr_nonnull(r);
        return r;
}

/* Events as a whole span's message carries them: [name, time_ns, attrs] each. */
static void pk_random_events(msgpack_packer *pk, unsigned n)
{
        msgpack_pack_array(pk, n);
        for (unsigned i = 0; i < n; i++) {
                char name[16];

                snprintf(name, sizeof(name), "event%u", i);
                msgpack_pack_array(pk, 3);
                pk_str(pk, name);
                msgpack_pack_uint64(pk, 1700000000000000000ull + rnd() % 1000000);
                pk_random_map(pk, below(3), 1);
        }
}

static ss_span *random_span(ss_resource *r, unsigned i)
{
        static const char *const msgs[] = {NULL, "", "boom", "caf\xC3\xA9"};
        uint8_t tid[SS_TRACE_ID_LEN], sid[SS_SPAN_ID_LEN], pid[SS_SPAN_ID_LEN];
        char name[16];
        mp a, e;
        ss_span *s;
        fx_span_spec sp;

        for (size_t k = 0; k < sizeof(tid); k++)
                tid[k] = (uint8_t)rnd();
        for (size_t k = 0; k < sizeof(sid); k++) {
                sid[k] = (uint8_t)rnd();
                pid[k] = (uint8_t)rnd();
        }
        snprintf(name, sizeof(name), "op%u", i);
        pk_random_map(mp_begin(&a), below(6), 0);
        pk_random_events(mp_begin(&e), below(4));
        sp = (fx_span_spec){.resource = r,
                            .name = name,
                            .trace_id = tid,
                            .span_id = sid,
                            .parent_id = below(2) ? pid : NULL,
                            .kind = 1 + (int32_t)below(5),
                            .start_ns = 1700000000000000000ull + rnd() % 1000000000,
                            .status_code = (int32_t)below(3),
                            .status_msg = msgs[below(SS_ELEMENTSOF(msgs))],
                            .attrs = mp_map(&a),
                            .events = &mp_end(&e)->via.array,
                            .whole = true};
        sp.end_ns = sp.start_ns + rnd() % 1000000;
        s = fx_span(&sp);
        mp_done(&a);
        mp_done(&e);
        if (below(2))
                ck_assert_int_eq(ss_span_set_trace_state(s, "k=v,x=y", 7), 0);
        s->flags = below(2) ? 0x301 : 0;
        s->dropped_attrs = below(2) ? 3 : 0;
        s->dropped_events = below(2) ? 2 : 0;
        return s;
}

/* ---- the two writers -------------------------------------------------------------------- */

static char *direct_json(ss_span *const *spans, size_t n)
{
        ss_buf b;
        char *out;

        ss_buf_init(&b, 64 << 20);
        ck_assert_int_eq(ss_otlp_json_encode(spans, n, &b), 0);
        out = strndup((const char *)b.data, b.len);
        ss_buf_free(&b);
        return out;
}

static char *via_protobuf(ss_span *const *spans, size_t n)
{
        ss_buf pb, js;
        char *out;

        ss_buf_init(&pb, 64 << 20);
        ss_buf_init(&js, 64 << 20);
        ck_assert_int_eq(ss_otlp_encode(spans, n, &pb), 0);
        ck_assert_int_eq(ss_otlp_pb_trace_request_json(pb.data, pb.len, &js), 0);
        ck_assert_ptr_null(memchr(js.data, '\n', js.len));
        out = strndup((const char *)js.data, js.len);
        ss_buf_free(&pb);
        ss_buf_free(&js);
        return out;
}

START_TEST(test_random_spans_match_the_direct_writer)
{
        rng_state = 0x9E3779B97F4A7C15ull + (uint64_t)_i;
        for (unsigned round = 0; round < 50; round++) {
                ss_resource *res[3];
                ss_span *spans[12];
                unsigned n_res = 1 + below(3), n = 1 + below(12);
                char *want, *got;

                for (unsigned i = 0; i < n_res; i++)
                        res[i] = random_resource(i);
                for (unsigned i = 0; i < n; i++)
                        spans[i] = random_span(res[below(n_res)], i);
                want = direct_json(spans, n);
                got = via_protobuf(spans, n);
                ck_assert_msg(strcmp(want, got) == 0, "round %u:\nwant %s\ngot  %s", round, want,
                              got);
                free(want);
                free(got);
                for (unsigned i = 0; i < n; i++)
                        ss_span_unref(spans[i]);
                for (unsigned i = 0; i < n_res; i++)
                        ss_resource_unref(res[i]);
        }
}
END_TEST

/* Where the direct writer keeps a default the protobuf mapping leaves out: an empty name,
 * kind UNSPECIFIED. Both read the same to an OTLP/JSON reader. */
START_TEST(test_defaults_left_out)
{
        ss_resource *r = mp_resource("svc", NULL, NULL);
        ss_span *s = fx_span(&(fx_span_spec){.resource = r,
                                             .name = "",
                                             .seed = 1,
                                             .trace_seed = 2,
                                             .start_ns = 5,
                                             .end_ns = 6,
                                             .whole = true});
        char *want = direct_json(&s, 1), *got = via_protobuf(&s, 1), *p;

        p = strstr(want, "\"name\":\"\",\"kind\":0,");
        ck_assert_ptr_nonnull(p);
        memmove(p, p + strlen("\"name\":\"\",\"kind\":0,"),
                strlen(p + strlen("\"name\":\"\",\"kind\":0,")) + 1);
        ck_assert_str_eq(got, want);
        free(want);
        free(got);
        free(direct_json(NULL, 0));
        got = via_protobuf(NULL, 0);
        ck_assert_str_eq(got, "{}");
        free(got);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

/* ---- what the span model has no field for ---------------------------------------------- */

/* Links are not in the span model: a protobuf-c Span with one, written directly. */
START_TEST(test_links_and_generic_fields)
{
        static uint8_t tid[16] = {0xAB, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xFF};
        static uint8_t sid[8] = {0, 1, 2, 3, 4, 5, 6, 0xEF};
        Opentelemetry__Proto__Common__V1__AnyValue v =
            OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        Opentelemetry__Proto__Common__V1__KeyValue kv =
            OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
        Opentelemetry__Proto__Common__V1__KeyValue *kvs[] = {&kv};
        Opentelemetry__Proto__Trace__V1__Span__Link l =
            OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
        Opentelemetry__Proto__Trace__V1__Span__Link *links[] = {&l, &l};
        Opentelemetry__Proto__Trace__V1__Span s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
        ss_buf b;

        v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v.int_value = 0; /* a oneof member at its default is still written */
        kv.key = "n";
        kv.value = &v;
        l.trace_id = (ProtobufCBinaryData){sizeof(tid), tid};
        l.span_id = (ProtobufCBinaryData){sizeof(sid), sid};
        l.trace_state = "a=b";
        l.attributes = kvs;
        l.n_attributes = 1;
        l.flags = 0x100;
        s.trace_id = l.trace_id;
        s.span_id = l.span_id;
        s.name = "x";
        s.links = links;
        s.n_links = 2;
        s.dropped_links_count = 7;
        ss_buf_init(&b, 4096);
        ck_assert_int_eq(ss_otlp_pb_json(&s.base, &b), 0);
        ck_assert_int_eq(ss_buf_append(&b, "", 1), 0);
#define LINK                                                                                       \
        "{\"traceId\":\"ab0102030405060708090a0b0c0d0eff\",\"spanId\":\"00010203040506ef\","       \
        "\"traceState\":\"a=b\",\"attributes\":[{\"key\":\"n\",\"value\":{\"intValue\":\"0\"}}],"  \
        "\"flags\":256}"
        ck_assert_str_eq((const char *)b.data,
                         "{\"traceId\":\"ab0102030405060708090a0b0c0d0eff\","
                         "\"spanId\":\"00010203040506ef\",\"name\":\"x\","
                         "\"links\":[" LINK "," LINK "],\"droppedLinksCount\":7}");
#undef LINK
        /* Full: -ENOBUFS, and what was there stays. */
        ss_buf_free(&b);
        ss_buf_init(&b, 20);
        ck_assert_int_eq(ss_buf_append(&b, "abc", 3), 0);
        ck_assert_int_eq(ss_otlp_pb_json(&s.base, &b), -ENOBUFS);
        ck_assert_uint_eq(b.len, 3);
        ss_buf_free(&b);
}
END_TEST

START_TEST(test_not_a_request)
{
        static const uint8_t junk[] = {0x0a, 0x05, 0x01};
        ss_buf b;

        ss_buf_init(&b, 4096);
        ck_assert_int_eq(ss_otlp_pb_trace_request_json(junk, sizeof(junk), &b), -EBADMSG);
        ck_assert_uint_eq(b.len, 0);
        ss_buf_free(&b);
}
END_TEST

static Suite *pb_json_suite(void)
{
        Suite *s = suite_create("pb-json");
        TCase *tc = tcase_create("core");

        tcase_add_loop_test(tc, test_random_spans_match_the_direct_writer, 0, 8);
        tcase_add_test(tc, test_defaults_left_out);
        tcase_add_test(tc, test_links_and_generic_fields);
        tcase_add_test(tc, test_not_a_request);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(pb_json_suite());
}
