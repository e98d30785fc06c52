/* SPDX-License-Identifier: MIT */
/*
 * The direct protobuf writer (ss_otlp_encode) against the protobuf-c encoder
 * (ss_otlp_encode_pbc) on thousands of random spans of random resources:
 * both requests decode with protobuf-c, their decoded trees are equal (both
 * written back as OTLP/JSON from the descriptors), and so are their bytes.
 * The random strings hold no NUL byte, which protobuf-c's C strings would cut.
 */
#include "ss-check.h"
#include <errno.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "model/resource.h"
#include "model/span.h"
#include "otlp/otlp.h"
#include "ss-buf.h"
#include "trace_service.pb-c.h"

#define REQUEST_FN(fn)                                                                             \
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__##fn

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Request;

#define ROUNDS    400
#define MAX_SPANS 24
#define MAX_RES   4
#define OUT_MAX   (64u << 20)

/* The same spans on every run. */
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
        return fx_rnd(&rng);
}

static uint32_t below(uint32_t n)
{
        return fx_below(&rng, n);
}

/* A string of no NUL byte: mostly short, sometimes a chat message's kilobytes. */
static void rnd_str(msgpack_packer *pk)
{
        char s[3000];
        uint32_t len = below(8) == 0 ? 1000 + below(2000) : below(40);

        for (uint32_t i = 0; i < len; i++)
                s[i] = (char)(1 + below(255));
        msgpack_pack_str_with_body(pk, s, len);
}

static void rnd_value(msgpack_packer *pk, int depth)
{
        switch (below(depth < 3 ? 12 : 10)) {
        case 0:
                msgpack_pack_nil(pk);
                break;
        case 1:
                below(2) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
                break;
        case 2:
                msgpack_pack_uint64(pk, rnd() >> below(64));
                break;
        case 3:
                msgpack_pack_int64(pk, -(int64_t)(rnd() >> (1 + below(63))) - 1);
                break;
        case 4:
                msgpack_pack_double(pk, (double)(int64_t)rnd() / (double)(1 + below(1000)));
                break;
        case 5:
                msgpack_pack_float(pk, (float)below(100000) / 7.0f);
                break;
        case 6: {
                uint8_t b[64];
                uint32_t len = below(sizeof(b));

                for (uint32_t i = 0; i < len; i++)
                        b[i] = (uint8_t)rnd(); /* bytes may hold NUL */
                msgpack_pack_bin_with_body(pk, b, len);
                break;
        }
        case 10: {
                uint32_t n = below(5);

                msgpack_pack_array(pk, n);
                for (uint32_t i = 0; i < n; i++)
                        rnd_value(pk, depth + 1);
                break;
        }
        case 11: {
                uint32_t n = below(5);

                msgpack_pack_map(pk, n);
                for (uint32_t i = 0; i < n; i++) {
                        /* a key of no string kind is left out by both */
                        below(6) ? rnd_str(pk) : msgpack_pack_uint32(pk, below(10));
                        rnd_value(pk, depth + 1);
                }
                break;
        }
        default:
                rnd_str(pk);
        }
}

/* A map of n attributes with distinct keys "a0", "a1", ... after a random prefix. */
static void rnd_attrs(msgpack_packer *pk, uint32_t n)
{
        char key[32];
        uint32_t pre = below(4);

        msgpack_pack_map(pk, n);
        for (uint32_t i = 0; i < n; i++) {
                int len = snprintf(key, sizeof(key), "%.*sa%u", (int)pre, "gen_", i);

                msgpack_pack_str_with_body(pk, key, (size_t)len);
                rnd_value(pk, 0);
        }
}

static uint32_t rnd_attr_count(void)
{
        /* now and then many small ones, which outgrow the writer's size hint */
        return below(10) == 0 ? 200 + below(300) : below(12);
}

static ss_resource *rnd_resource(void)
{
        mp o;
        ss_resource *r;

        rnd_attrs(mp_begin(&o), below(6));
        r = ss_resource_new(mp_map(&o));
        ck_assert_ptr_nonnull(r);
        r->dropped_attrs = below(3) ? 0 : below(1000);
        mp_done(&o);
        return r;
}

static ss_span *rnd_span(ss_resource *r)
{
        uint8_t trace[SS_TRACE_ID_LEN], id[SS_SPAN_ID_LEN], parent[SS_SPAN_ID_LEN];
        char name[64], msg[64];
        uint32_t n_events = below(4) ? 0 : 1 + below(4);
        mp a, ev;
        ss_msg_span m;
        ss_span *s;

        for (size_t i = 0; i < sizeof(trace); i++)
                trace[i] = (uint8_t)rnd();
        for (size_t i = 0; i < sizeof(id); i++) {
                id[i] = (uint8_t)rnd();
                parent[i] = (uint8_t)rnd();
        }
        snprintf(name, sizeof(name), "op-%u", below(1000000));
        snprintf(msg, sizeof(msg), "failed: %u", below(1000));
        rnd_attrs(mp_begin(&a), rnd_attr_count());
        msgpack_pack_array(mp_begin(&ev), n_events);
        for (uint32_t i = 0; i < n_events; i++) {
                msgpack_pack_array(&ev.pk, 3);
                pk_str(&ev.pk, below(2) ? "gen_ai.content.completion" : "exception");
                msgpack_pack_uint64(&ev.pk, rnd() >> 2);
                rnd_attrs(&ev.pk, below(5));
        }
        m = (ss_msg_span){
            .trace_id = trace,
            .span_id = id,
            .parent_id = below(4) ? parent : NULL,
            .name = {.ptr = name, .len = below(20) ? (uint32_t)strlen(name) : 0},
            .kind = (int32_t)below(6),
            .start_ns = below(10) ? rnd() >> 1 : 0,
            .attrs = mp_map(&a),
            .events = &mp_end(&ev)->via.array,
            .status_code = (int32_t)below(3),
            .status_msg = {.ptr = msg, .len = below(3) ? 0 : (uint32_t)strlen(msg)},
        };
        m.end_ns = m.start_ns + (below(10) ? below(1u << 30) : 0);
        s = ss_span_new(&m, true, r, NULL);
        ck_assert_ptr_nonnull(s);
        s->flags = below(2) ? 0x100 | below(2) : 0;
        s->dropped_attrs = below(4) ? 0 : below(50);
        s->dropped_events = below(4) ? 0 : below(50);
        if (below(4) == 0)
                ck_assert_int_eq(ss_span_set_trace_state(s, "k=v,rojo=00f067aa0ba902b7", 25), 0);
        mp_done(&a);
        mp_done(&ev);
        return s;
}

/* OTLP/JSON of the protobuf request in b[0..len), which must decode. */
static char *decoded_json(const uint8_t *pb, size_t len)
{
        Request *req = REQUEST_FN(unpack)(NULL, len, pb);
        ss_buf j;
        char *s;

        ck_assert_ptr_nonnull(req);
        ss_buf_init(&j, OUT_MAX);
        ck_assert_int_eq(ss_otlp_pb_json(&req->base, &j), 0);
        ck_assert_int_eq(ss_buf_append(&j, "", 1), 0);
        s = (char *)j.data;
        REQUEST_FN(free_unpacked)(req, NULL);
        return s;
}

START_TEST(test_random_requests_equal)
{
        size_t total = 0;

        for (int round = 0; round < ROUNDS; round++) {
                ss_resource *res[MAX_RES];
                ss_span *spans[MAX_SPANS];
                uint32_t nres = 1 + below(MAX_RES), n = 1 + below(MAX_SPANS);
                ss_buf direct, ref;
                char *jd, *jr;

                for (uint32_t i = 0; i < nres; i++)
                        res[i] = rnd_resource();
                for (uint32_t i = 0; i < n; i++)
                        spans[i] = rnd_span(res[below(nres)]);
                ss_buf_init(&direct, OUT_MAX);
                ss_buf_init(&ref, OUT_MAX);
                /* after bytes already there, as an exporter appends */
                ck_assert_int_eq(ss_buf_append(&direct, "pre", 3), 0);
                ck_assert_int_eq(ss_otlp_encode(spans, n, &direct), 0);
                ck_assert_int_eq(ss_otlp_encode_pbc(spans, n, &ref), 0);
                ck_assert_mem_eq(direct.data, "pre", 3);

                jd = decoded_json(direct.data + 3, direct.len - 3);
                jr = decoded_json(ref.data, ref.len);
                ck_assert_str_eq(jd, jr);
                if (direct.len - 3 != ref.len || memcmp(direct.data + 3, ref.data, ref.len)) {
                        size_t k = 0;

                        while (k < ref.len && direct.data[3 + k] == ref.data[k])
                                k++;
                        fprintf(stderr, "round %d: the bytes differ at %zu:", round, k);
                        for (size_t j = k > 16 ? k - 16 : 0; j < k + 16 && j < ref.len; j++)
                                fprintf(stderr, " %02x/%02x", direct.data[3 + j], ref.data[j]);
                        fprintf(stderr, "\n");
                }
                ck_assert_uint_eq(direct.len - 3, ref.len);
                ck_assert_mem_eq(direct.data + 3, ref.data, ref.len);
                total += n;
                free(jd);
                free(jr);
                ss_buf_free(&direct);
                ss_buf_free(&ref);
                for (uint32_t i = 0; i < n; i++)
                        ss_span_unref(spans[i]);
                for (uint32_t i = 0; i < nres; i++)
                        ss_resource_unref(res[i]);
        }
        ck_assert_uint_ge(total, 4000);
}
END_TEST

/* Out of room anywhere in the writing: -ENOBUFS, out's length as it was; exactly room: the
 * request. */
START_TEST(test_random_tight_maximum)
{
        for (int round = 0; round < 60; round++) {
                ss_resource *r = rnd_resource();
                ss_span *spans[4];
                uint32_t n = 1 + below(4);
                ss_buf ref, b;
                size_t cut;

                for (uint32_t i = 0; i < n; i++)
                        spans[i] = rnd_span(r);
                ss_buf_init(&ref, OUT_MAX);
                ck_assert_int_eq(ss_otlp_encode_pbc(spans, n, &ref), 0);
                cut = 1 + below((uint32_t)ref.len);
                ss_buf_init(&b, 2 + ref.len - cut);
                ck_assert_int_eq(ss_buf_append(&b, "ab", 2), 0);
                ck_assert_int_eq(ss_otlp_encode(spans, n, &b), -ENOBUFS);
                ck_assert_uint_eq(b.len, 2);
                ss_buf_free(&b);
                ss_buf_init(&b, 2 + ref.len);
                ck_assert_int_eq(ss_buf_append(&b, "ab", 2), 0);
                ck_assert_int_eq(ss_otlp_encode(spans, n, &b), 0);
                ck_assert_mem_eq(b.data + 2, ref.data, ref.len);
                ss_buf_free(&b);
                ss_buf_free(&ref);
                for (uint32_t i = 0; i < n; i++)
                        ss_span_unref(spans[i]);
                ss_resource_unref(r);
        }
}
END_TEST

/* A NUL byte in a string value survives: its whole length is on the wire. */
START_TEST(test_nul_kept)
{
        static const char value[] = "before\0after";
        ss_resource *r = mp_resource("svc", NULL, NULL);
        msgpack_object_kv kv = {
            .key = {.type = MSGPACK_OBJECT_STR, .via.str = {.size = 1, .ptr = "k"}},
            .val = {.type = MSGPACK_OBJECT_STR,
                    .via.str = {.size = sizeof(value) - 1, .ptr = value}},
        };
        msgpack_object_map m = {.size = 1, .ptr = &kv};
        ss_span *s = fx_span(&(fx_span_spec){.resource = r,
                                             .name = "op",
                                             .trace_seed = 1,
                                             .seed = 2,
                                             .start_ns = 10,
                                             .end_ns = 20,
                                             .attrs = &m});
        ss_buf b;

        ss_buf_init(&b, 4096);
        ck_assert_int_eq(ss_otlp_encode(&s, 1, &b), 0);
        /* AnyValue{string_value (field 1, length-delimited) = value} */
        ck_assert_ptr_nonnull(memmem(b.data, b.len,
                                     "\x0a\x0c"
                                     "before\0after",
                                     14));
        ss_buf_free(&b);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

static Suite *suite(void)
{
        Suite *s = suite_create("otlp-equiv");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_random_requests_equal);
        tcase_add_test(tc, test_random_tight_maximum);
        tcase_add_test(tc, test_nul_kept);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(suite());
}
