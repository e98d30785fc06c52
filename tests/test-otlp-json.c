/* SPDX-License-Identifier: MIT */
#include "ss-check.h"
#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otlp/otlp.h"
#include "fixture.h"
#include "model/span.h"
#include "ss-buf.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static const uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t sid[8] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8};
static const uint8_t pid[8] = {0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};

/* The suite's span: the ids above, INTERNAL, ended 1 us after its start, status unset. */
static fx_span_spec spec(ss_resource *r, const char *name)
{
        return (fx_span_spec){.resource = r,
                              .name = name,
                              .trace_id = tid,
                              .span_id = sid,
                              .kind = SS_KIND_INTERNAL,
                              .start_ns = 1700000000000000001ull,
                              .end_ns = 1700000000000001001ull};
}

static ss_span *mkspan(ss_resource *r, const char *name, const msgpack_object_map *attrs)
{
        fx_span_spec sp = spec(r, name);

        sp.attrs = attrs;
        return fx_span(&sp);
}

/* The JSON of spans as a NUL-terminated string the caller frees. */
static char *json(ss_span *const *spans, size_t n)
{
        ss_buf b;
        char *out;

        ss_buf_init(&b, 1 << 20);
        ck_assert_int_eq(ss_otlp_json_encode(spans, n, &b), 0);
        out = strndup((const char *)b.data, b.len);
        ck_assert_ptr_nonnull(out);
        ck_assert_ptr_null(memchr(b.data, '\n', b.len));
        ss_buf_free(&b);
        return out;
}

#define PREFIX                                                                                     \
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","            \
        "\"value\":{\"stringValue\":\"svc\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":"             \
        "\"libsidespan\"},\"spans\":["
#define SUFFIX "]}]}]}"
#define IDS    "\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"a1a2a3a4a5a6a7a8\""
#define TIMES                                                                                      \
        "\"startTimeUnixNano\":\"1700000000000000001\",\"endTimeUnixNano\":"                       \
        "\"1700000000000001001\""

/* ---- exact output ------------------------------------------------------------------------- */

START_TEST(test_exact_small)
{
        ss_resource *r = mp_resource("svc", NULL, NULL);
        mp a;
        msgpack_packer *pk = mp_begin(&a);
        ss_span *s;
        char *j;

        msgpack_pack_map(pk, 2);
        pk_str(pk, "k");
        pk_str(pk, "v");
        pk_str(pk, "n");
        msgpack_pack_int(pk, -5);
        s = mkspan(r, "op", mp_map(&a));
        mp_done(&a);
        j = json(&s, 1);
        ck_assert_str_eq(j, PREFIX
                         "{" IDS ",\"name\":\"op\",\"kind\":1," TIMES
                         ",\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":\"v\"}},"
                         "{\"key\":\"n\",\"value\":{\"intValue\":\"-5\"}}]}" SUFFIX);
        free(j);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

/* Every optional span field, in field-number order. */
START_TEST(test_exact_full_span)
{
        ss_resource *r = mp_resource("svc", NULL, NULL);
        mp o, e;
        msgpack_packer *pk = mp_begin(&o);
        fx_span_spec sp = spec(r, "chat");
        ss_span *s;
        char *j;

        msgpack_pack_map(pk, 2);
        pk_str(pk, "trace_state");
        pk_str(pk, "ot=th:8");
        pk_str(pk, "flags");
        msgpack_pack_uint32(pk, 0x301);
        sp.parent_id = pid;
        sp.kind = SS_KIND_CLIENT;
        sp.options = mp_map(&o);
        sp.end_ns = 0; /* ended below, after its events */
        s = fx_span(&sp);
        mp_done(&o);
        pk = mp_begin(&e);
        msgpack_pack_map(pk, 1);
        pk_str(pk, "t");
        msgpack_pack_uint64(pk, 7);
        ck_assert_int_eq(ss_span_add_event(s, "first", 5, 1700000000000000500ull, mp_map(&e), NULL),
                         0);
        ck_assert_int_eq(ss_span_add_event(s, "second", 6, 1700000000000000600ull, NULL, NULL), 0);
        mp_done(&e);
        s->events[1].dropped_attrs = 4;
        s->dropped_attrs = 2;
        s->dropped_events = 3;
        ss_span_end(s, 1700000000000001001ull, SS_STATUS_ERROR, "bad \"thing\"", 11);
        j = json(&s, 1);
        ck_assert_str_eq(
            j, PREFIX "{" IDS ",\"traceState\":\"ot=th:8\",\"parentSpanId\":\"fedcba9876543210\","
                      "\"name\":\"chat\",\"kind\":3," TIMES ",\"droppedAttributesCount\":2,"
                      "\"events\":[{\"timeUnixNano\":\"1700000000000000500\",\"name\":\"first\","
                      "\"attributes\":[{\"key\":\"t\",\"value\":{\"intValue\":\"7\"}}]},"
                      "{\"timeUnixNano\":\"1700000000000000600\",\"name\":\"second\","
                      "\"droppedAttributesCount\":4}],\"droppedEventsCount\":3,"
                      "\"status\":{\"message\":\"bad \\\"thing\\\"\",\"code\":2},"
                      "\"flags\":769}" SUFFIX);
        free(j);

        /* a status code without a message; kind 0 is still written */
        sp = spec(r, "x");
        sp.kind = SS_KIND_UNSPECIFIED;
        sp.status_code = SS_STATUS_OK;
        ss_span *t = fx_span(&sp);
        j = json(&t, 1);
        ck_assert_str_eq(j, PREFIX "{" IDS ",\"name\":\"x\",\"kind\":0," TIMES
                                   ",\"status\":{\"code\":1}}" SUFFIX);
        free(j);
        ss_span_unref(t);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

/* The JSON of one attribute value, cut out of the span's output. */
static char *value_json(ss_resource *r, void (*pack)(msgpack_packer *pk))
{
        static const char head[] = "\"attributes\":[{\"key\":\"a\",\"value\":";
        mp a;
        msgpack_packer *pk = mp_begin(&a);
        ss_span *s;
        char *j, *p, *out;
        size_t len;

        msgpack_pack_map(pk, 1);
        pk_str(pk, "a");
        pack(pk);
        s = mkspan(r, "v", mp_map(&a));
        mp_done(&a);
        j = json(&s, 1);
        ss_span_unref(s);
        p = strstr(j, head);
        ck_assert_ptr_nonnull(p);
        p += sizeof(head) - 1;
        len = strlen(p) - strlen("}]}" SUFFIX);
        ck_assert_str_eq(p + len, "}]}" SUFFIX);
        out = strndup(p, len);
        free(j);
        return out;
}

static void pk_doubles(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 9);
        msgpack_pack_double(pk, 0.1);
        msgpack_pack_double(pk, 1.0 / 3.0);
        msgpack_pack_double(pk, 1e300);
        msgpack_pack_double(pk, -0.0);
        msgpack_pack_double(pk, NAN);
        msgpack_pack_double(pk, INFINITY);
        msgpack_pack_double(pk, -INFINITY);
        msgpack_pack_float(pk, 1.5f);
        msgpack_pack_uint64(pk, UINT64_MAX);
}

static void pk_bytes(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 5);
        msgpack_pack_bin_with_body(pk, "", 0);
        msgpack_pack_bin_with_body(pk, "a", 1);
        msgpack_pack_bin_with_body(pk, "ab", 2);
        msgpack_pack_bin_with_body(pk, "abc", 3);
        msgpack_pack_bin_with_body(pk, "\x00\xff\xfe\x10", 4);
}

static void pk_nested(msgpack_packer *pk)
{
        msgpack_pack_map(pk, 4);
        pk_str(pk, "b");
        msgpack_pack_true(pk);
        pk_str(pk, "e");
        msgpack_pack_array(pk, 0);
        pk_str(pk, "m");
        msgpack_pack_map(pk, 0);
        pk_str(pk, "i");
        msgpack_pack_array(pk, 2);
        msgpack_pack_int64(pk, INT64_MIN);
        msgpack_pack_uint64(pk, INT64_MAX);
}

START_TEST(test_exact_values)
{
        ss_resource *r = mp_resource("svc", NULL, NULL);
        char *v;

        v = value_json(r, pk_doubles);
        ck_assert_str_eq(v, "{\"arrayValue\":{\"values\":[{\"doubleValue\":0.1},"
                            "{\"doubleValue\":0.3333333333333333},{\"doubleValue\":1e+300},"
                            "{\"doubleValue\":-0},{\"doubleValue\":\"NaN\"},"
                            "{\"doubleValue\":\"Infinity\"},{\"doubleValue\":\"-Infinity\"},"
                            "{\"doubleValue\":1.5},{\"doubleValue\":1.8446744073709552e+19}]}}");
        free(v);
        v = value_json(r, pk_bytes);
        ck_assert_str_eq(v, "{\"arrayValue\":{\"values\":[{\"bytesValue\":\"\"},"
                            "{\"bytesValue\":\"YQ==\"},{\"bytesValue\":\"YWI=\"},"
                            "{\"bytesValue\":\"YWJj\"},{\"bytesValue\":\"AP/+EA==\"}]}}");
        free(v);
        v = value_json(r, pk_nested);
        ck_assert_str_eq(v, "{\"kvlistValue\":{\"values\":["
                            "{\"key\":\"b\",\"value\":{\"boolValue\":true}},"
                            "{\"key\":\"e\",\"value\":{\"arrayValue\":{}}},"
                            "{\"key\":\"m\",\"value\":{\"kvlistValue\":{}}},"
                            "{\"key\":\"i\",\"value\":{\"arrayValue\":{\"values\":["
                            "{\"intValue\":\"-9223372036854775808\"},"
                            "{\"intValue\":\"9223372036854775807\"}]}}}]}}");
        free(v);
        ss_resource_unref(r);
}
END_TEST

/* ---- escaping ----------------------------------------------------------------------------- */

START_TEST(test_escaping)
{
        /* Straight into the span, past span.c's own UTF-8 repair, to test the encoder's. */
        static const char raw[] = "q\"b\\s/n\nr\rt\tb\bf\f\x01\x1f\x7f"
                                  "\xC3\xA9\xF0\x9F\x98\x80|\xFF|\xC3|\xED\xA0\x80|\x00z";
        static const char want[] = "q\\\"b\\\\s/n\\nr\\rt\\tb\\bf\\f\\u0001\\u001f\x7f"
                                   "\xC3\xA9\xF0\x9F\x98\x80|\xEF\xBF\xBD|\xEF\xBF\xBD|"
                                   "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|\\u0000z";
        ss_resource *r = mp_resource("svc", NULL, NULL);
        ss_span *s = mkspan(r, "placeholder", NULL);
        char *j, *p;

        s->name = (msgpack_object_str){.size = sizeof(raw) - 1, .ptr = raw};
        j = json(&s, 1);
        p = strstr(j, ",\"name\":\"");
        ck_assert_ptr_nonnull(p);
        p += strlen(",\"name\":\"");
        ck_assert_msg(strncmp(p, want, sizeof(want) - 1) == 0, "got %s", p);
        ck_assert(strncmp(p + sizeof(want) - 1, "\",\"kind\":1,", 11) == 0);
        free(j);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

/* ---- buffer ------------------------------------------------------------------------------- */

START_TEST(test_buffer)
{
        ss_resource *r = mp_resource("svc", NULL, NULL);
        ss_span *s = mkspan(r, "op", NULL);
        ss_buf b;
        size_t need;

        ss_buf_init(&b, 1 << 16);
        ck_assert_int_eq(ss_otlp_json_encode(&s, 1, &b), 0);
        need = b.len;
        ss_buf_free(&b);

        ss_buf_init(&b, need + 3);
        ck_assert_int_eq(ss_buf_append(&b, "abc", 3), 0);
        ck_assert_int_eq(ss_otlp_json_encode(&s, 1, &b), 0);
        ck_assert_uint_eq(b.len, need + 3);
        ck_assert_mem_eq(b.data, "abc{\"resourceSpans\":[", 21);
        ck_assert_int_eq(b.data[b.len - 1], '}');
        /* full: -ENOBUFS, and what was there stays as it was */
        ck_assert_int_eq(ss_otlp_json_encode(&s, 1, &b), -ENOBUFS);
        ck_assert_uint_eq(b.len, need + 3);
        ss_buf_free(&b);

        ss_buf_init(&b, 16);
        ck_assert_int_eq(ss_otlp_json_encode(NULL, 0, &b), 0);
        ck_assert_uint_eq(b.len, 2);
        ck_assert_mem_eq(b.data, "{}", 2);
        ss_buf_free(&b);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

/* ---- round trip through a real JSON parser -------------------------------------------------- */

static const char py_script[] =
    "import base64, json, math, sys\n"
    "d = json.load(open(sys.argv[1], encoding='utf-8'))\n"
    "rs = d['resourceSpans']\n"
    "print(len(rs))\n"
    "for r in rs:\n"
    "    a = {kv['key']: kv['value'] for kv in r['resource']['attributes']}\n"
    "    sc = r['scopeSpans'][0]\n"
    "    print(a['service.name']['stringValue'], sc['scope']['name'],\n"
    "          sc['scope'].get('version', '-'), len(sc['spans']))\n"
    "s = rs[0]['scopeSpans'][0]['spans'][0]\n"
    "print(bytes.fromhex(s['traceId']).hex(), s['spanId'], s.get('parentSpanId', '-'))\n"
    "print(s['name'], s['kind'], int(s['endTimeUnixNano']) - int(s['startTimeUnixNano']))\n"
    "a = {kv['key']: kv['value'] for kv in s['attributes']}\n"
    "print(repr(a['str']['stringValue']))\n"
    "print(int(a['int']['intValue']) * 2, a['dbl']['doubleValue'] == 0.1,\n"
    "      math.isnan(float(a['nan']['doubleValue'])), a['yes']['boolValue'])\n"
    "print(base64.b64decode(a['bin']['bytesValue']).hex())\n"
    "kv = {x['key']: x['value'] for x in a['map']['kvlistValue']['values']}\n"
    "print(kv['list']['arrayValue']['values'][1]['stringValue'], kv['deep']['kvlistValue'])\n"
    "print(s['events'][0]['name'], s['status']['code'], s['status']['message'])\n";

static void pack_rich(msgpack_packer *pk)
{
        msgpack_pack_map(pk, 7);
        pk_str(pk, "str");
        pk_str(pk, "line1\nline2 \"quoted\" \\ tab\t \xC3\xA9t\xC3\xA9 \xF0\x9F\xA4\x96 \x01");
        pk_str(pk, "int");
        msgpack_pack_int64(pk, 4611686018427387903ll);
        pk_str(pk, "dbl");
        msgpack_pack_double(pk, 0.1);
        pk_str(pk, "nan");
        msgpack_pack_double(pk, NAN);
        pk_str(pk, "yes");
        msgpack_pack_true(pk);
        pk_str(pk, "bin");
        msgpack_pack_bin_with_body(pk, "\xde\xad\xbe\xef\x00", 5);
        pk_str(pk, "map");
        msgpack_pack_map(pk, 2);
        pk_str(pk, "list");
        msgpack_pack_array(pk, 2);
        msgpack_pack_int(pk, 1);
        pk_str(pk, "two");
        pk_str(pk, "deep");
        msgpack_pack_map(pk, 0);
}

/* Run the script on the JSON; its stdout, NUL-terminated, for the caller to free. */
static char *run_python(const char *json_text)
{
        const char *py = getenv("PYTHON3");
        char path[] = "/tmp/test-otlp-json-XXXXXX";
        char script[] = "/tmp/test-otlp-json-py-XXXXXX";
        char cmd[512], *out = calloc(1, 4096);
        int fd = mkstemp(path), sfd = mkstemp(script);
        size_t n;
        FILE *p;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(sfd, 0);
        ck_assert_ptr_nonnull(out);
        ck_assert_int_eq(write(fd, json_text, strlen(json_text)), (ssize_t)strlen(json_text));
        ck_assert_int_eq(write(sfd, py_script, strlen(py_script)), (ssize_t)strlen(py_script));
        close(fd);
        close(sfd);
        snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s'", py && *py ? py : "/usr/bin/python3", script,
                 path);
        p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        n = fread(out, 1, 4095, p);
        out[n] = '\0';
        ck_assert_int_eq(pclose(p), 0);
        unlink(path);
        unlink(script);
        return out;
}

START_TEST(test_python_round_trip)
{
        ss_resource *r1 = mp_resource("travel-agent", "sidespan-python", "0.3.1");
        ss_resource *r2 = mp_resource("other", NULL, NULL);
        ss_span *spans[3];
        mp a;
        msgpack_packer *pk = mp_begin(&a);
        fx_span_spec sp = spec(r1, "agent.run");
        char *j, *out;

        pack_rich(pk);
        sp.parent_id = pid;
        sp.kind = SS_KIND_SERVER;
        sp.attrs = mp_map(&a);
        sp.end_ns = 0; /* ended below, after its event */
        spans[0] = fx_span(&sp);
        mp_done(&a);
        ck_assert_int_eq(ss_span_add_event(spans[0], "gen_ai.first_token", 18, 5, NULL, NULL), 0);
        ss_span_end(spans[0], 1700000000000002001ull, SS_STATUS_ERROR, "oops \xE2\x9C\x97", 8);
        spans[1] = mkspan(r2, "other.op", NULL);
        sp = spec(r1, "tool.execute");
        sp.parent_id = pid;
        spans[2] = fx_span(&sp);

        j = json(spans, 3);
        out = run_python(j);
        ck_assert_str_eq(out, "2\n"
                              "travel-agent sidespan-python 0.3.1 2\n"
                              "other libsidespan - 1\n"
                              "0102030405060708090a0b0c0d0e0f10 a1a2a3a4a5a6a7a8 fedcba9876543210\n"
                              "agent.run 2 2000\n"
                              "'line1\\nline2 \"quoted\" \\\\ tab\\t \xC3\xA9t\xC3\xA9 "
                              "\xF0\x9F\xA4\x96 \\x01'\n"
                              "9223372036854775806 True True True\n"
                              "deadbeef00\n"
                              "two {}\n"
                              "gen_ai.first_token 2 oops \xE2\x9C\x97\n");
        free(out);
        free(j);
        for (int i = 0; i < 3; i++)
                ss_span_unref(spans[i]);
        ss_resource_unref(r1);
        ss_resource_unref(r2);
}
END_TEST

/* ss_otlp_json_parse_response() on body; its rejected count, or -1 when refused. The message,
 * if any, is copied into msg. */
static int64_t parse_json_response(const char *body, char *msg, size_t msg_size)
{
        int64_t rejected = -7;
        char *m = NULL;
        int r = ss_otlp_json_parse_response((const uint8_t *)body, strlen(body), &rejected, &m);

        msg[0] = '\0';
        if (m)
                snprintf(msg, msg_size, "%s", m);
        free(m);
        if (r < 0) {
                ck_assert_int_eq(r, -EBADMSG);
                ck_assert_ptr_null(m);
                return -1;
        }
        return rejected;
}

START_TEST(test_json_response)
{
        char msg[128], deep[200];

        ck_assert_int_eq(parse_json_response("{}", msg, sizeof(msg)), 0);
        ck_assert_str_eq(msg, "");
        ck_assert_int_eq(parse_json_response(" {\"partialSuccess\":{}} \n", msg, sizeof(msg)), 0);
        ck_assert_int_eq(parse_json_response("{\"partialSuccess\":null}", msg, sizeof(msg)), 0);
        ck_assert_int_eq(parse_json_response("{\"partialSuccess\": {\"rejectedSpans\": \"3\", "
                                             "\"errorMessage\": \"three \\\"bad\\\" \\u00e9\\n\"}}",
                                             msg, sizeof(msg)),
                         3);
        ck_assert_str_eq(msg, "three \"bad\" \xc3\xa9\n");
        /* A number is taken too; unknown members, before and after, are skipped. */
        ck_assert_int_eq(parse_json_response("{\"x\":[1,{\"a\":[true,false,null]},-2.5e3],"
                                             "\"partialSuccess\":{\"other\":{\"rejectedSpans\":9},"
                                             "\"rejectedSpans\":12},\"y\":\"z\"}",
                                             msg, sizeof(msg)),
                         12);
        /* A surrogate pair decodes; a lone one becomes U+FFFD. */
        ck_assert_int_eq(parse_json_response("{\"partialSuccess\":{\"rejectedSpans\":\"1\","
                                             "\"errorMessage\":\"\\ud83d\\ude00\\ud800\"}}",
                                             msg, sizeof(msg)),
                         1);
        ck_assert_str_eq(msg, "\xf0\x9f\x98\x80\xef\xbf\xbd");
        /* Refused: not JSON, not an object, trailing bytes, bad counts, too deep. */
        ck_assert_int_eq(parse_json_response("", msg, sizeof(msg)), -1);
        ck_assert_int_eq(parse_json_response("OK", msg, sizeof(msg)), -1);
        ck_assert_int_eq(parse_json_response("[]", msg, sizeof(msg)), -1);
        ck_assert_int_eq(parse_json_response("{} {}", msg, sizeof(msg)), -1);
        ck_assert_int_eq(parse_json_response("{\"a\":1,}", msg, sizeof(msg)), -1);
        ck_assert_int_eq(parse_json_response("{\"a\":\"\x01\"}", msg, sizeof(msg)), -1);
        ck_assert_int_eq(parse_json_response("{\"partialSuccess\":{\"rejectedSpans\":\"3x\"}}", msg,
                                             sizeof(msg)),
                         -1);
        ck_assert_int_eq(parse_json_response("{\"partialSuccess\":{\"rejectedSpans\":"
                                             "\"99999999999999999999\"}}",
                                             msg, sizeof(msg)),
                         -1);
        ck_assert_int_eq(
            parse_json_response("{\"partialSuccess\":{\"errorMessage\":\"cut", msg, sizeof(msg)),
            -1);
        /* A count longer than any int64, as a string or a number (found by fuzz-response). */
        ck_assert_int_eq(parse_json_response("{\"partialSuccess\":{\"rejectedSpans\":\"1111111111"
                                             "11111111111111111111111111111111111111111111111111111"
                                             "11111111111111111\"}}",
                                             msg, sizeof(msg)),
                         -1);
        ck_assert_int_eq(parse_json_response("{\"partialSuccess\":{\"rejectedSpans\":1111111111"
                                             "11111111111111111111111111111111111111111111111111111"
                                             "11111111111111111}}",
                                             msg, sizeof(msg)),
                         -1);
        memset(deep, 0, sizeof(deep));
        memcpy(deep, "{\"a\":", 5);
        memset(deep + 5, '[', 40);
        ck_assert_int_eq(parse_json_response(deep, msg, sizeof(msg)), -1);
}
END_TEST

static Suite *otlp_json_suite(void)
{
        Suite *s = suite_create("otlp-json");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_exact_small);
        tcase_add_test(tc, test_exact_full_span);
        tcase_add_test(tc, test_exact_values);
        tcase_add_test(tc, test_escaping);
        tcase_add_test(tc, test_buffer);
        tcase_add_test(tc, test_python_round_trip);
        tcase_add_test(tc, test_json_response);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(otlp_json_suite());
}
