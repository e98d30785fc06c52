/* SPDX-License-Identifier: MIT */
#include "ss-check.h"
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "base/utf8.h"
#include "model/span.h"
#include "model/state.h"
#include "otlp/otlp.h"
#include "ss-buf.h"
#include "ss-wire.h"

/* ---- helpers: msgpack input ------------------------------------------------------------ */

static void pk_bin(msgpack_packer *pk, const void *p, size_t n)
{
        msgpack_pack_bin_with_body(pk, p, n);
}

static const uint8_t trace_id[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                     0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t span_id[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
static const uint8_t parent_id[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};

/* A SPAN_START of "op" with the ids above, as ss_wire_decode() would return it. */
static fx_span_spec start_spec(ss_resource *r, const ss_limits *lim)
{
        return (fx_span_spec){.resource = r,
                              .name = "op",
                              .trace_id = trace_id,
                              .span_id = span_id,
                              .parent_id = parent_id,
                              .kind = SS_KIND_CLIENT,
                              .start_ns = 1000,
                              .limits = lim};
}

static ss_span *plain_span(ss_resource *r, const ss_limits *lim)
{
        fx_span_spec sp = start_spec(r, lim);

        return fx_span(&sp);
}

/* ---- ss_span_new ------------------------------------------------------------------------ */

/* Through the real wire encoder and decoder; the span must outlive the frame. */
START_TEST(test_new_from_span_start)
{
        uint8_t attrs_body[64], opts_body[64];
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked up;
        ss_buf b;
        ss_msg msg;
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s;
        const uint8_t *payload;
        size_t plen;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pk_str(&pk, "gen_ai.request.model");
        pk_str(&pk, "gpt-4o");
        pk_str(&pk, "server.port");
        msgpack_pack_uint16(&pk, 443);
        ck_assert_uint_lt(sb.size, sizeof(attrs_body));
        memcpy(attrs_body, sb.data, sb.size);
        ss_rawmap attrs = {.count = 2, .data = attrs_body, .len = sb.size};
        msgpack_sbuffer_clear(&sb);
        pk_str(&pk, "trace_state");
        pk_str(&pk, "ot=th:8");
        pk_str(&pk, "flags");
        msgpack_pack_uint32(&pk, 0x301);
        memcpy(opts_body, sb.data, sb.size);
        ss_rawmap opts = {.count = 2, .data = opts_body, .len = sb.size};
        msgpack_sbuffer_destroy(&sb);

        ss_span_head h = {.trace_id = trace_id,
                          .span_id = span_id,
                          .parent_id = parent_id,
                          .name = "chat gpt-4o",
                          .name_len = 11,
                          .kind = SS_KIND_CLIENT,
                          .start_ns = 1700000000123456789ull};
        ss_buf_init(&b, 1 << 16);
        ck_assert_int_eq(ss_wire_put_span_start(&b, SS_MAX_FRAME_DEFAULT, &h, &attrs, &opts), 0);
        ck_assert_int_gt(ss_frame_parse(b.data, b.len, SS_MAX_FRAME_DEFAULT, &payload, &plen), 0);
        msgpack_unpacked_init(&up);
        ck_assert_int_eq(ss_wire_decode(payload, plen, &up, &msg), 0);
        ck_assert_uint_eq(msg.type, SS_MSG_SPAN_START);

        s = ss_span_new(&msg.span, false, r, NULL);
        ck_assert_ptr_nonnull(s);
        /* The frame goes away: nothing of the span may point into it. */
        msgpack_unpacked_destroy(&up);
        memset(b.data, 0xAA, b.len);
        ss_buf_free(&b);

        ck_assert_mem_eq(s->trace_id, trace_id, 16);
        ck_assert_mem_eq(s->span_id, span_id, 8);
        ck_assert(s->has_parent);
        ck_assert_mem_eq(s->parent_id, parent_id, 8);
        ck_assert(fx_str_is(&s->name, "chat gpt-4o"));
        ck_assert_uint_eq(s->kind, SS_KIND_CLIENT);
        ck_assert_uint_eq(s->start_ns, 1700000000123456789ull);
        ck_assert(!s->ended);
        ck_assert_uint_eq(s->status_code, SS_STATUS_UNSET);
        ck_assert_uint_eq(s->status_msg.size, 0);
        ck_assert(fx_str_is(&s->trace_state, "ot=th:8"));
        ck_assert_uint_eq(s->flags, 0x301);
        ck_assert_uint_eq(s->attrs.n, 2);
        fx_assert_str(ss_attrs_get(&s->attrs, "gen_ai.request.model"), "gpt-4o");
        ck_assert_uint_eq(ss_attrs_get(&s->attrs, "server.port")->via.u64, 443);
        ck_assert_ptr_eq(s->resource, r);
        ck_assert_uint_eq(r->refs, 2);
        ss_span_unref(s);
        ck_assert_uint_eq(r->refs, 1);
        ss_resource_unref(r);
}
END_TEST

/* A whole SPAN message, packed by hand the way a client sends it. */
START_TEST(test_new_from_whole_span)
{
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked up;
        ss_msg msg;
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 13);
        msgpack_pack_uint8(&pk, SS_MSG_SPAN);
        pk_bin(&pk, trace_id, 16);
        pk_bin(&pk, span_id, 8);
        msgpack_pack_nil(&pk); /* root */
        pk_str(&pk, "tool.execute");
        msgpack_pack_uint8(&pk, SS_KIND_INTERNAL);
        msgpack_pack_uint64(&pk, 500);
        msgpack_pack_map(&pk, 1);
        pk_str(&pk, "upsonic.tool.name");
        pk_str(&pk, "search");
        msgpack_pack_map(&pk, 0);
        msgpack_pack_uint64(&pk, 900);
        msgpack_pack_uint8(&pk, SS_STATUS_ERROR);
        pk_str(&pk, "tool failed");
        msgpack_pack_array(&pk, 2);
        msgpack_pack_array(&pk, 3);
        pk_str(&pk, "retry");
        msgpack_pack_uint64(&pk, 600);
        msgpack_pack_map(&pk, 1);
        pk_str(&pk, "attempt");
        msgpack_pack_int8(&pk, 2);
        msgpack_pack_array(&pk, 3);
        pk_str(&pk, "exception");
        msgpack_pack_uint64(&pk, 800);
        msgpack_pack_map(&pk, 0);

        msgpack_unpacked_init(&up);
        ck_assert_int_eq(ss_wire_decode((const uint8_t *)sb.data, sb.size, &up, &msg), 0);
        s = ss_span_new(&msg.span, true, r, NULL);
        msgpack_unpacked_destroy(&up);
        msgpack_sbuffer_destroy(&sb);
        ck_assert_ptr_nonnull(s);

        ck_assert(!s->has_parent);
        ck_assert(s->ended);
        ck_assert_uint_eq(s->start_ns, 500);
        ck_assert_uint_eq(s->end_ns, 900);
        ck_assert_uint_eq(s->kind, SS_KIND_INTERNAL);
        ck_assert_uint_eq(s->status_code, SS_STATUS_ERROR);
        ck_assert(fx_str_is(&s->status_msg, "tool failed"));
        ck_assert_uint_eq(s->trace_state.size, 0);
        ck_assert_uint_eq(s->flags, 0);
        fx_assert_str(ss_attrs_get(&s->attrs, "upsonic.tool.name"), "search");
        ck_assert_uint_eq(s->n_events, 2);
        ck_assert(fx_str_is(&s->events[0].name, "retry"));
        ck_assert_uint_eq(s->events[0].time_ns, 600);
        ck_assert_uint_eq(s->events[0].attrs.n, 1);
        ck_assert_uint_eq(ss_attrs_get(&s->events[0].attrs, "attempt")->via.u64, 2);
        ck_assert(fx_str_is(&s->events[1].name, "exception"));
        ck_assert_uint_eq(s->events[1].time_ns, 800);
        ck_assert_uint_eq(s->events[1].attrs.n, 0);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

/* Begin a whole SPAN message of the ids above in o: its first seven fields. */
static msgpack_packer *whole_head(mp *o, const char *name, uint64_t start_ns)
{
        msgpack_packer *pk = mp_begin(o);

        msgpack_pack_array(pk, 13);
        msgpack_pack_uint8(pk, SS_MSG_SPAN);
        pk_bin(pk, trace_id, 16);
        pk_bin(pk, span_id, 8);
        msgpack_pack_nil(pk);
        pk_str(pk, name);
        msgpack_pack_uint8(pk, SS_KIND_INTERNAL);
        msgpack_pack_uint64(pk, start_ns);
        return pk;
}

/* The span of the message packed in o, through the daemon's decoder; o is done. */
static ss_span *whole_span(mp *o, ss_resource *r)
{
        msgpack_unpacked up;
        ss_msg msg;
        ss_span *s;

        msgpack_unpacked_init(&up);
        ck_assert_int_eq(ss_wire_decode((const uint8_t *)o->sb.data, o->sb.size, &up, &msg), 0);
        ck_assert_uint_eq(msg.type, SS_MSG_SPAN);
        s = ss_span_new(&msg.span, true, r, NULL);
        msgpack_unpacked_destroy(&up);
        mp_done(o);
        ck_assert_ptr_nonnull(s);
        return s;
}

/* The client's clock may step back: a SPAN ending before its start is decoded, and the
 * model clamps its end to its start, as it does for SPAN_END. */
START_TEST(test_end_before_start_clamped)
{
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s, *t;
        mp o;
        msgpack_packer *pk = whole_head(&o, "backwards", 5000);

        msgpack_pack_map(pk, 0);
        msgpack_pack_map(pk, 0);
        msgpack_pack_uint64(pk, 4000); /* ends before it starts */
        msgpack_pack_uint8(pk, SS_STATUS_OK);
        msgpack_pack_nil(pk);
        msgpack_pack_array(pk, 0);
        s = whole_span(&o, r);
        ck_assert(s->ended);
        ck_assert_uint_eq(s->start_ns, 5000);
        ck_assert_uint_eq(s->end_ns, 5000);

        t = plain_span(r, NULL); /* starts at 1000 */
        ss_span_end(t, 999, SS_STATUS_OK, NULL, 0);
        ck_assert_uint_eq(t->end_ns, 1000);
        ss_span_unref(t);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

/* Empty strings as a client may send them: a span name or a key is never empty, a value or
 * an event name may be. */
START_TEST(test_empty_strings_from_the_wire)
{
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s;
        mp o;
        msgpack_packer *pk = whole_head(&o, "op", 5000);

        msgpack_pack_map(pk, 1);
        pk_str(pk, "empty");
        pk_str(pk, "");
        msgpack_pack_map(pk, 0);
        msgpack_pack_uint64(pk, 6000);
        msgpack_pack_uint8(pk, SS_STATUS_ERROR);
        pk_str(pk, "");
        msgpack_pack_array(pk, 1);
        msgpack_pack_array(pk, 3);
        pk_str(pk, "");
        msgpack_pack_uint64(pk, 5500);
        msgpack_pack_map(pk, 0);
        s = whole_span(&o, r);
        fx_assert_str(ss_attrs_get(&s->attrs, "empty"), "");
        ck_assert_uint_eq(s->n_events, 1);
        ck_assert_uint_eq(s->events[0].name.size, 0);
        ck_assert_uint_eq(s->status_code, SS_STATUS_ERROR);
        ck_assert_uint_eq(s->status_msg.size, 0);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

/* A SPAN_START (whole=false) ignores end fields even when set. */
START_TEST(test_new_start_not_ended)
{
        ss_resource *r = ss_resource_new(NULL);
        fx_span_spec sp = start_spec(r, NULL);
        fx_span_ids ids;
        ss_msg_span m;
        ss_span *s;

        sp.end_ns = 5000;
        sp.status_code = SS_STATUS_ERROR;
        m = fx_span_msg(&sp, &ids);
        ck_assert_uint_eq(m.end_ns, 5000);
        s = ss_span_new(&m, false, r, NULL);
        ck_assert_ptr_nonnull(s);
        ck_assert(!s->ended);
        ck_assert_uint_eq(s->end_ns, 0);
        ck_assert_uint_eq(s->status_code, SS_STATUS_UNSET);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

START_TEST(test_new_bad_kind_and_flags)
{
        ss_resource *r = ss_resource_new(NULL);
        mp o;
        msgpack_packer *pk = mp_begin(&o);
        fx_span_spec sp = start_spec(r, NULL);
        ss_span *s;

        msgpack_pack_map(pk, 2);
        pk_str(pk, "flags");
        msgpack_pack_uint64(pk, 1ull << 40); /* not a fixed32: ignored */
        pk_str(pk, "trace_state");
        msgpack_pack_uint8(pk, 3); /* not a string: ignored */
        sp.options = mp_map(&o);
        sp.kind = 42;
        s = fx_span(&sp);
        ck_assert_uint_eq(s->kind, SS_KIND_UNSPECIFIED);
        ck_assert_uint_eq(s->flags, 0);
        ck_assert_uint_eq(s->trace_state.size, 0);
        ss_span_unref(s);
        ss_resource_unref(r);
        mp_done(&o);
}
END_TEST

/* ---- attributes --------------------------------------------------------------------------- */

START_TEST(test_attrs_merge_replace)
{
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s = plain_span(r, NULL);
        mp a, b;
        msgpack_packer *pk = mp_begin(&a);

        msgpack_pack_map(pk, 3);
        pk_str(pk, "a");
        msgpack_pack_int(pk, 1);
        pk_str(pk, "b");
        pk_str(pk, "x");
        pk_str(pk, "a"); /* a duplicate key in one map: the later value wins */
        msgpack_pack_int(pk, 2);
        ck_assert_int_eq(ss_span_set_attrs(s, mp_map(&a), NULL), 0);
        ck_assert_uint_eq(s->attrs.n, 2);
        ck_assert_uint_eq(ss_attrs_get(&s->attrs, "a")->via.u64, 2);

        pk = mp_begin(&b);
        msgpack_pack_map(pk, 2);
        pk_str(pk, "b");
        pk_str(pk, "y");
        pk_str(pk, "c");
        msgpack_pack_true(pk);
        ck_assert_int_eq(ss_span_set_attrs(s, mp_map(&b), NULL), 0);
        mp_done(&a);
        mp_done(&b);

        ck_assert_uint_eq(s->attrs.n, 3);
        /* insertion order kept, replaced value in place */
        ck_assert(fx_str_is(&s->attrs.kv[0].key.via.str, "a"));
        ck_assert(fx_str_is(&s->attrs.kv[1].key.via.str, "b"));
        ck_assert(fx_str_is(&s->attrs.kv[2].key.via.str, "c"));
        fx_assert_str(&s->attrs.kv[1].val, "y");
        ck_assert_int_eq(ss_attrs_get(&s->attrs, "c")->type, MSGPACK_OBJECT_BOOLEAN);
        ck_assert(ss_attrs_get(&s->attrs, "c")->via.boolean);
        ck_assert_ptr_null(ss_attrs_get(&s->attrs, "missing"));
        ck_assert_int_eq(ss_span_set_attrs(s, NULL, NULL), 0);
        ck_assert_uint_eq(s->attrs.n, 3);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

START_TEST(test_attrs_many_grow)
{
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s = plain_span(r, NULL);
        mp a;
        msgpack_packer *pk = mp_begin(&a);
        char key[16];

        msgpack_pack_map(pk, 300);
        for (int i = 0; i < 300; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                pk_str(pk, key);
                msgpack_pack_int(pk, i);
        }
        ck_assert_int_eq(ss_span_set_attrs(s, mp_map(&a), NULL), 0);
        mp_done(&a);
        ck_assert_uint_eq(s->attrs.n, 300);
        ck_assert_uint_eq(s->dropped_attrs, 0);
        ck_assert_uint_eq(ss_attrs_get(&s->attrs, "k299")->via.u64, 299);
        ck_assert(fx_str_is(&s->attrs.kv[150].key.via.str, "k150"));
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

START_TEST(test_attrs_limit_dropped)
{
        ss_limits lim = {.max_attrs = 2};
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s = plain_span(r, &lim);
        mp a, b;
        msgpack_packer *pk = mp_begin(&a);

        msgpack_pack_map(pk, 3);
        pk_str(pk, "a");
        msgpack_pack_int(pk, 1);
        pk_str(pk, "b");
        msgpack_pack_int(pk, 2);
        pk_str(pk, "c");
        msgpack_pack_int(pk, 3);
        ck_assert_int_eq(ss_span_set_attrs(s, mp_map(&a), &lim), 0);
        ck_assert_uint_eq(s->attrs.n, 2);
        ck_assert_uint_eq(s->dropped_attrs, 1);
        ck_assert_ptr_null(ss_attrs_get(&s->attrs, "c"));

        /* At the limit, replacing a present key is no drop; a new key is. */
        pk = mp_begin(&b);
        msgpack_pack_map(pk, 2);
        pk_str(pk, "a");
        msgpack_pack_int(pk, 10);
        pk_str(pk, "d");
        msgpack_pack_int(pk, 4);
        ck_assert_int_eq(ss_span_set_attrs(s, mp_map(&b), &lim), 0);
        mp_done(&a);
        mp_done(&b);
        ck_assert_uint_eq(s->attrs.n, 2);
        ck_assert_uint_eq(s->dropped_attrs, 2);
        ck_assert_uint_eq(ss_attrs_get(&s->attrs, "a")->via.u64, 10);

        /* Daemon-derived attributes are not subject to the client's limit. */
        ck_assert_int_eq(ss_span_set_bool(s, "sidespan.orphaned", true), 0);
        ck_assert_int_eq(ss_span_set_str(s, "upsonic.status", "ERROR"), 0);
        ck_assert_uint_eq(s->attrs.n, 4);
        ck_assert(ss_attrs_get(&s->attrs, "sidespan.orphaned")->via.boolean);
        fx_assert_str(ss_attrs_get(&s->attrs, "upsonic.status"), "ERROR");
        ck_assert_int_eq(ss_span_set_str(s, "upsonic.status", "COMPLETED"), 0);
        ck_assert_uint_eq(s->attrs.n, 4);
        fx_assert_str(ss_attrs_get(&s->attrs, "upsonic.status"), "COMPLETED");
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

START_TEST(test_value_cut)
{
        ss_limits lim = {.max_value_len = 5};
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s = plain_span(r, &lim);
        const msgpack_object *v;
        mp a;
        msgpack_packer *pk = mp_begin(&a);

        msgpack_pack_map(pk, 7);
        pk_str(pk, "long-key-is-not-cut");
        pk_str(pk, "abcdefgh");
        pk_str(pk, "exact");
        pk_str(pk, "12345");
        pk_str(pk, "bin");
        pk_bin(pk, "\x01\x02\x03\x04\x05\x06\x07", 7);
        /* a, e-acute (2 bytes), euro (3 bytes): 6 bytes; the euro sign does not fit */
        pk_str(pk, "utf8");
        pk_str(pk, "a\xC3\xA9\xE2\x82\xAC");
        /* ab then an emoji (4 bytes): the emoji does not fit in 5 */
        pk_str(pk, "emoji");
        pk_str(pk, "ab\xF0\x9F\x98\x80");
        pk_str(pk, "nested");
        msgpack_pack_array(pk, 2);
        pk_str(pk, "0123456789");
        msgpack_pack_int64(pk, -1234567890123ll);
        pk_str(pk, "num");
        msgpack_pack_double(pk, 3.25);
        ck_assert_int_eq(ss_span_set_attrs(s, mp_map(&a), &lim), 0);
        mp_done(&a);

        fx_assert_str(ss_attrs_get(&s->attrs, "long-key-is-not-cut"), "abcde");
        fx_assert_str(ss_attrs_get(&s->attrs, "exact"), "12345");
        v = ss_attrs_get(&s->attrs, "bin");
        ck_assert_int_eq(v->type, MSGPACK_OBJECT_BIN);
        ck_assert_uint_eq(v->via.bin.size, 5);
        ck_assert_mem_eq(v->via.bin.ptr, "\x01\x02\x03\x04\x05", 5);
        fx_assert_str(ss_attrs_get(&s->attrs, "utf8"), "a\xC3\xA9");
        fx_assert_str(ss_attrs_get(&s->attrs, "emoji"), "ab");
        v = ss_attrs_get(&s->attrs, "nested");
        ck_assert_int_eq(v->type, MSGPACK_OBJECT_ARRAY);
        ck_assert_uint_eq(v->via.array.size, 2);
        fx_assert_str(&v->via.array.ptr[0], "01234");
        ck_assert_int_eq(v->via.array.ptr[1].type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
        ck_assert_int_eq(v->via.array.ptr[1].via.i64, -1234567890123ll);
        ck_assert_double_eq(ss_attrs_get(&s->attrs, "num")->via.f64, 3.25);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

START_TEST(test_utf8_sanitised)
{
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s = plain_span(r, NULL);
        mp a;
        msgpack_packer *pk = mp_begin(&a);

        msgpack_pack_map(pk, 3);
        pk_str(pk, "bad");
        pk_str(pk, "a\xFF"
                   "b\xC0\x80"
                   "c\xED\xA0\x80");
        pk_str(pk, "k\xFE");
        pk_str(pk, "v");
        pk_str(pk, "truncated");
        pk_str(pk, "x\xE2\x82");
        ck_assert_int_eq(ss_span_set_attrs(s, mp_map(&a), NULL), 0);
        mp_done(&a);

        fx_assert_str(ss_attrs_get(&s->attrs, "bad"), "a\xEF\xBF\xBD"
                                                      "b\xEF\xBF\xBD\xEF\xBF\xBD"
                                                      "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
        /* keys are made well-formed too, and still found again by their raw form */
        fx_assert_str(ss_attrs_get(&s->attrs, "k\xEF\xBF\xBD"), "v");
        fx_assert_str(ss_attrs_get(&s->attrs, "truncated"), "x\xEF\xBF\xBD\xEF\xBF\xBD");

        pk = mp_begin(&a);
        msgpack_pack_map(pk, 1);
        pk_str(pk, "k\xFE");
        pk_str(pk, "w");
        ck_assert_int_eq(ss_span_set_attrs(s, mp_map(&a), NULL), 0);
        mp_done(&a);
        ck_assert_uint_eq(s->attrs.n, 3);
        fx_assert_str(ss_attrs_get(&s->attrs, "k\xEF\xBF\xBD"), "w");
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

START_TEST(test_utf8_char_len)
{
        ck_assert_uint_eq(ss_utf8_char_len((const uint8_t *)"A", 1), 1);
        ck_assert_uint_eq(ss_utf8_char_len((const uint8_t *)"\xC3\xA9", 2), 2);
        ck_assert_uint_eq(ss_utf8_char_len((const uint8_t *)"\xC3\xA9", 1), 0);
        ck_assert_uint_eq(ss_utf8_char_len((const uint8_t *)"\xE2\x82\xAC", 3), 3);
        ck_assert_uint_eq(ss_utf8_char_len((const uint8_t *)"\xF0\x9F\x98\x80", 4), 4);
        ck_assert_uint_eq(ss_utf8_char_len((const uint8_t *)"\xF4\x8F\xBF\xBF", 4), 4);
        /* overlong, surrogate, past U+10FFFF, stray continuation, bad continuation */
        ck_assert_uint_eq(ss_utf8_char_len((const uint8_t *)"\xC1\xBF", 2), 0);
        ck_assert_uint_eq(ss_utf8_char_len((const uint8_t *)"\xE0\x80\xAF", 3), 0);
        ck_assert_uint_eq(ss_utf8_char_len((const uint8_t *)"\xED\xA0\x80", 3), 0);
        ck_assert_uint_eq(ss_utf8_char_len((const uint8_t *)"\xF0\x8F\xBF\xBF", 4), 0);
        ck_assert_uint_eq(ss_utf8_char_len((const uint8_t *)"\xF4\x90\x80\x80", 4), 0);
        ck_assert_uint_eq(ss_utf8_char_len((const uint8_t *)"\x80", 1), 0);
        ck_assert_uint_eq(ss_utf8_char_len((const uint8_t *)"\xE2\x28\xA1", 3), 0);
}
END_TEST

START_TEST(test_nested_deep_copy)
{
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s = plain_span(r, NULL);
        const msgpack_object *v, *arr;
        mp a;
        msgpack_packer *pk = mp_begin(&a);

        msgpack_pack_map(pk, 1);
        pk_str(pk, "m");
        msgpack_pack_map(pk, 2);
        pk_str(pk, "list");
        msgpack_pack_array(pk, 3);
        msgpack_pack_int(pk, 1);
        pk_str(pk, "s");
        msgpack_pack_map(pk, 1);
        pk_str(pk, "x");
        pk_bin(pk, "\x00\x01", 2);
        pk_str(pk, "f");
        msgpack_pack_float(pk, 0.5f);
        ck_assert_int_eq(ss_span_set_attrs(s, mp_map(&a), NULL), 0);
        /* scribble over the source: the copy must not change */
        memset(a.sb.data, 0, a.sb.size);
        mp_done(&a);

        v = ss_attrs_get(&s->attrs, "m");
        ck_assert_int_eq(v->type, MSGPACK_OBJECT_MAP);
        ck_assert_uint_eq(v->via.map.size, 2);
        ck_assert(fx_str_is(&v->via.map.ptr[0].key.via.str, "list"));
        arr = &v->via.map.ptr[0].val;
        ck_assert_int_eq(arr->type, MSGPACK_OBJECT_ARRAY);
        ck_assert_uint_eq(arr->via.array.size, 3);
        ck_assert_uint_eq(arr->via.array.ptr[0].via.u64, 1);
        fx_assert_str(&arr->via.array.ptr[1], "s");
        ck_assert_int_eq(arr->via.array.ptr[2].type, MSGPACK_OBJECT_MAP);
        ck_assert(fx_str_is(&arr->via.array.ptr[2].via.map.ptr[0].key.via.str, "x"));
        ck_assert_uint_eq(arr->via.array.ptr[2].via.map.ptr[0].val.via.bin.size, 2);
        ck_assert_mem_eq(arr->via.array.ptr[2].via.map.ptr[0].val.via.bin.ptr, "\x00\x01", 2);
        ck_assert(fx_str_is(&v->via.map.ptr[1].key.via.str, "f"));
        ck_assert_int_eq(v->via.map.ptr[1].val.type, MSGPACK_OBJECT_FLOAT32);
        ck_assert_double_eq(v->via.map.ptr[1].val.via.f64, 0.5);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

/* Values the wire never allows become nil rather than being copied blindly. */
START_TEST(test_too_deep_becomes_nil)
{
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s = plain_span(r, NULL);
        const msgpack_object *v;
        int depth = 0;
        mp a;
        msgpack_packer *pk = mp_begin(&a);

        msgpack_pack_map(pk, 2);
        pk_str(pk, "deep");
        for (int i = 0; i < 12; i++)
                msgpack_pack_array(pk, 1);
        msgpack_pack_int(pk, 7);
        pk_str(pk, "nil");
        msgpack_pack_nil(pk);
        ck_assert_int_eq(ss_span_set_attrs(s, mp_map(&a), NULL), 0);
        mp_done(&a);

        v = ss_attrs_get(&s->attrs, "deep");
        while (v->type == MSGPACK_OBJECT_ARRAY) {
                v = &v->via.array.ptr[0];
                depth++;
        }
        ck_assert_int_eq(v->type, MSGPACK_OBJECT_NIL);
        ck_assert_int_eq(depth, SS_ATTR_DEPTH_MAX);
        ck_assert_int_eq(ss_attrs_get(&s->attrs, "nil")->type, MSGPACK_OBJECT_NIL);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

/* ---- events ------------------------------------------------------------------------------- */

START_TEST(test_events_and_limits)
{
        ss_limits lim = {.max_attrs = 1, .max_events = 2, .max_value_len = 3};
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s = plain_span(r, &lim);
        mp a;
        msgpack_packer *pk = mp_begin(&a);

        msgpack_pack_map(pk, 2);
        pk_str(pk, "gen_ai.first_token");
        pk_str(pk, "hello");
        pk_str(pk, "second");
        msgpack_pack_int(pk, 2);
        ck_assert_int_eq(ss_span_add_event(s, "first", 5, 111, mp_map(&a), &lim), 0);
        ck_assert_int_eq(ss_span_add_event(s, "second-event", 6, 222, NULL, &lim), 0);
        ck_assert_int_eq(ss_span_add_event(s, "third", 5, 333, mp_map(&a), &lim), 0);
        mp_done(&a);

        ck_assert_uint_eq(s->n_events, 2);
        ck_assert_uint_eq(s->dropped_events, 1);
        ck_assert(fx_str_is(&s->events[0].name, "first"));
        ck_assert_uint_eq(s->events[0].time_ns, 111);
        ck_assert_uint_eq(s->events[0].attrs.n, 1);
        ck_assert_uint_eq(s->events[0].dropped_attrs, 1);
        fx_assert_str(ss_attrs_get(&s->events[0].attrs, "gen_ai.first_token"), "hel");
        /* the name is taken by its length, not up to a NUL */
        ck_assert(fx_str_is(&s->events[1].name, "second"));
        ck_assert_uint_eq(s->events[1].attrs.n, 0);
        ck_assert_uint_eq(s->events[1].dropped_attrs, 0);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

START_TEST(test_many_events_grow)
{
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s = plain_span(r, NULL);
        char name[16];

        for (int i = 0; i < 100; i++) {
                snprintf(name, sizeof(name), "e%d", i);
                ck_assert_int_eq(
                    ss_span_add_event(s, name, (uint32_t)strlen(name), (uint64_t)i, NULL, NULL), 0);
        }
        ck_assert_uint_eq(s->n_events, 100);
        ck_assert_uint_eq(s->dropped_events, 0);
        ck_assert(fx_str_is(&s->events[99].name, "e99"));
        ck_assert_uint_eq(s->events[57].time_ns, 57);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

/* ---- end and status ----------------------------------------------------------------------- */

START_TEST(test_error_sticky)
{
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s = plain_span(r, NULL);

        ss_span_end(s, 2000, SS_STATUS_ERROR, "boom", 4);
        ck_assert(s->ended);
        ck_assert_uint_eq(s->end_ns, 2000);
        ck_assert_uint_eq(s->status_code, SS_STATUS_ERROR);
        ck_assert(fx_str_is(&s->status_msg, "boom"));

        ss_span_end(s, 3000, SS_STATUS_OK, "fine", 4);
        ck_assert_uint_eq(s->status_code, SS_STATUS_ERROR);
        ck_assert(fx_str_is(&s->status_msg, "boom"));
        ss_span_end(s, 3000, SS_STATUS_UNSET, NULL, 0);
        ck_assert_uint_eq(s->status_code, SS_STATUS_ERROR);
        ck_assert(fx_str_is(&s->status_msg, "boom"));
        /* a later ERROR without a message keeps the first message; with one, replaces it */
        ss_span_end(s, 3000, SS_STATUS_ERROR, NULL, 0);
        ck_assert(fx_str_is(&s->status_msg, "boom"));
        ss_span_end(s, 3000, SS_STATUS_ERROR, "timeout!", 7);
        ck_assert(fx_str_is(&s->status_msg, "timeout"));
        ck_assert_uint_eq(s->status_code, SS_STATUS_ERROR);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

START_TEST(test_status_upgrade)
{
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s = plain_span(r, NULL);

        ss_span_end(s, 2000, SS_STATUS_OK, NULL, 0);
        ck_assert_uint_eq(s->status_code, SS_STATUS_OK);
        ck_assert_uint_eq(s->status_msg.size, 0);
        ss_span_end(s, 2500, SS_STATUS_ERROR, "late failure", 12);
        ck_assert_uint_eq(s->status_code, SS_STATUS_ERROR);
        ck_assert(fx_str_is(&s->status_msg, "late failure"));
        ck_assert_uint_eq(s->end_ns, 2500);
        /* an unknown code is not a status */
        ss_span *t = plain_span(r, NULL);
        ss_span_end(t, 1, 7, "x", 1);
        ck_assert_uint_eq(t->status_code, SS_STATUS_UNSET);
        ss_span_unref(t);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

/* ---- reference counts --------------------------------------------------------------------- */

START_TEST(test_refcounts)
{
        ss_resource *r = ss_resource_new(NULL);
        ss_span *s, *t;

        ck_assert_uint_eq(r->refs, 1);
        s = plain_span(r, NULL);
        t = plain_span(r, NULL);
        ck_assert_uint_eq(s->refs, 1);
        ck_assert_uint_eq(r->refs, 3);
        ck_assert_ptr_eq(ss_span_ref(s), s);
        ck_assert_uint_eq(s->refs, 2);
        ss_span_unref(s);
        ck_assert_uint_eq(s->refs, 1);
        ck_assert_uint_eq(r->refs, 3);
        ss_span_unref(s);
        ck_assert_uint_eq(r->refs, 2);
        /* the span holds the resource after the creator lets go */
        ss_resource_unref(r);
        ck_assert_uint_eq(t->resource->refs, 1);
        fx_assert_str(ss_attrs_get(&t->resource->attrs, "service.name"), "upsonic");
        ss_span_unref(t);
        ss_span_unref(NULL);
        ss_resource_unref(NULL);

        r = ss_resource_new(NULL);
        ck_assert_ptr_eq(ss_resource_ref(r), r);
        ck_assert_uint_eq(r->refs, 2);
        ss_resource_unref(r);
        ck_assert_uint_eq(r->refs, 1);
        ss_resource_unref(r);
}
END_TEST

/* ---- resources ---------------------------------------------------------------------------- */

START_TEST(test_resource_defaults)
{
        ss_resource *a = ss_resource_new(NULL), *b;
        mp o;
        msgpack_packer *pk = mp_begin(&o);

        ck_assert_ptr_nonnull(a);
        ck_assert_uint_eq(a->attrs.n, 1);
        ck_assert(fx_str_is(&a->attrs.kv[0].key.via.str, "service.name"));
        fx_assert_str(&a->attrs.kv[0].val, "upsonic");
        ck_assert(fx_str_is(&a->scope_name, "libsidespan"));
        ck_assert_uint_eq(a->scope_version.size, 0);

        msgpack_pack_map(pk, 0);
        b = ss_resource_new(mp_map(&o));
        mp_done(&o);
        ck_assert_ptr_nonnull(b);
        ck_assert_uint_ne(a->id, b->id);
        ck_assert_uint_eq(b->attrs.n, 1);
        fx_assert_str(ss_attrs_get(&b->attrs, "service.name"), "upsonic");
        ss_resource_unref(a);
        ss_resource_unref(b);
}
END_TEST

START_TEST(test_resource_options_filtered)
{
        ss_resource *r;
        mp o;
        msgpack_packer *pk = mp_begin(&o);

        msgpack_pack_map(pk, 8);
        pk_str(pk, "instance");
        msgpack_pack_uint64(pk, 0x1234567890abcdefull);
        pk_str(pk, "service.name");
        pk_str(pk, "travel-agent");
        pk_str(pk, "sample_rate");
        msgpack_pack_double(pk, 0.5);
        pk_str(pk, "process.pid");
        msgpack_pack_uint32(pk, 4242);
        pk_str(pk, "include_content");
        msgpack_pack_false(pk);
        pk_str(pk, "sdk.name");
        pk_str(pk, "sidespan-python");
        pk_str(pk, "sdk.version");
        pk_str(pk, "0.3.1");
        pk_str(pk, "deployment.environment");
        pk_str(pk, "prod");
        r = ss_resource_new(mp_map(&o));
        mp_done(&o);

        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(r->attrs.n, 3);
        ck_assert(fx_str_is(&r->attrs.kv[0].key.via.str, "service.name"));
        fx_assert_str(&r->attrs.kv[0].val, "travel-agent");
        ck_assert(fx_str_is(&r->attrs.kv[1].key.via.str, "process.pid"));
        ck_assert_uint_eq(r->attrs.kv[1].val.via.u64, 4242);
        ck_assert(fx_str_is(&r->attrs.kv[2].key.via.str, "deployment.environment"));
        ck_assert_ptr_null(ss_attrs_get(&r->attrs, "instance"));
        ck_assert_ptr_null(ss_attrs_get(&r->attrs, "sample_rate"));
        ck_assert_ptr_null(ss_attrs_get(&r->attrs, "include_content"));
        ck_assert_ptr_null(ss_attrs_get(&r->attrs, "sdk.name"));
        ck_assert(fx_str_is(&r->scope_name, "sidespan-python"));
        ck_assert(fx_str_is(&r->scope_version, "0.3.1"));
        ck_assert_int_eq(r->scope_version.ptr[r->scope_version.size], '\0');
        ss_resource_unref(r);
}
END_TEST

/* ---- the persistent form (model/state.h) ------------------------------------------------- */

/* The OTLP/JSON an exporter would send for s: what a restored span must reproduce. */
static char *otlp_json(ss_span *s)
{
        ss_buf b;
        char *out;

        ss_buf_init(&b, 1 << 20);
        ck_assert_int_eq(ss_otlp_json_encode(&s, 1, &b), 0);
        out = strndup((const char *)b.data, b.len);
        ss_buf_free(&b);
        return out;
}

/* A span with what an open agent span carries: attributes of each kind, a nested value,
 * events, a tracestate, flags, counts of what the limits dropped, a head decision. */
static ss_span *rich_span(ss_resource *r)
{
        mp a;
        msgpack_packer *pk = mp_begin(&a);
        ss_span *s = plain_span(r, NULL);

        msgpack_pack_map(pk, 5);
        pk_str(pk, "gen_ai.request.model");
        pk_str(pk, "gpt-4o");
        pk_str(pk, "gen_ai.usage.input_tokens");
        msgpack_pack_uint64(pk, 1000);
        pk_str(pk, "temperature");
        msgpack_pack_double(pk, 0.25);
        pk_str(pk, "stream");
        msgpack_pack_true(pk);
        pk_str(pk, "stop");
        msgpack_pack_array(pk, 2);
        pk_str(pk, "\n");
        msgpack_pack_int(pk, -3);
        ck_assert_int_eq(ss_span_set_attrs(s, mp_map(&a), NULL), 0);
        ck_assert_int_eq(ss_span_add_event(s, "gen_ai.first_token", 18, 1500, mp_map(&a), NULL), 0);
        ck_assert_int_eq(ss_span_add_event(s, "retry", 5, 1600, NULL, NULL), 0);
        mp_done(&a);
        ck_assert_int_eq(ss_span_set_trace_state(s, "k=v", 3), 0);
        s->flags = 0x301;
        s->dropped_attrs = 2;
        s->dropped_events = 3;
        s->events[1].dropped_attrs = 4;
        s->head_rate = 0.5;
        s->head_drop = true;
        s->no_content = true;
        return s;
}

static void pack_both(msgpack_sbuffer *sb, const ss_resource *r, const ss_span *s)
{
        msgpack_packer pk;

        msgpack_sbuffer_init(sb);
        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        ck_assert_int_eq(ss_resource_pack(r, &pk), 0);
        ck_assert_int_eq(ss_span_pack(s, &pk), 0);
}

START_TEST(test_state_round_trip)
{
        ss_resource *r = mp_resource("restart-svc", "upsonic-sdk", "0.3.1"), *r2;
        ss_span *s = rich_span(r), *s2;
        msgpack_sbuffer sb;
        msgpack_unpacked u;
        size_t off = 0;
        char *want, *got;

        r->uid = 1234;
        r->dropped_attrs = 7;
        pack_both(&sb, r, s);
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
        ck_assert_int_eq(ss_resource_unpack(&u.data, &r2), 0);
        ck_assert_int_eq(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
        ck_assert_int_eq(ss_span_unpack(&u.data, r2, &s2), 0);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);

        ck_assert_uint_eq(r2->uid, 1234);
        ck_assert_uint_eq(r2->dropped_attrs, 7);
        ck_assert(fx_str_is(&r2->scope_name, r->scope_name.ptr));
        ck_assert(s2->head_drop && s2->no_content && !s2->discard && !s2->ended);
        ck_assert(s2->head_rate == 0.5);
        /* Ended alike, both encode to the same OTLP: ids, times, attributes, events, flags,
         * tracestate, dropped counts and the resource. */
        ss_span_end(s, 2000, SS_STATUS_OK, NULL, 0);
        ss_span_end(s2, 2000, SS_STATUS_OK, NULL, 0);
        want = otlp_json(s);
        got = otlp_json(s2);
        ck_assert_str_eq(got, want);
        free(want);
        free(got);
        ss_span_unref(s2);
        ss_span_unref(s);
        ss_resource_unref(r2);
        ss_resource_unref(r);
}
END_TEST

/* A damaged state file: every cut of the record and every flipped byte is refused or read
 * as some other valid span, never a crash (the sanitizer build checks the reads). */
START_TEST(test_state_damaged)
{
        ss_resource *r = mp_resource("svc", NULL, NULL);
        ss_span *s = rich_span(r), *got;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        size_t refused = 0;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        ck_assert_int_eq(ss_span_pack(s, &pk), 0);
        for (size_t cut = 0; cut < sb.size * 2; cut++) {
                char *copy = malloc(sb.size);
                size_t len = cut < sb.size ? cut : sb.size, off = 0;
                msgpack_unpacked u;

                memcpy(copy, sb.data, sb.size);
                if (cut >= sb.size)
                        copy[cut - sb.size] ^= 0x5a;
                msgpack_unpacked_init(&u);
                /* As the state file is read: checked before msgpack-c allocates. */
                if (ss_msgpack_check_max((const uint8_t *)copy, len, UINT32_MAX) == 0 &&
                    msgpack_unpack_next(&u, copy, len, &off) == MSGPACK_UNPACK_SUCCESS &&
                    ss_span_unpack(&u.data, r, &got) == 0)
                        ss_span_unref(got);
                else
                        refused++;
                msgpack_unpacked_destroy(&u);
                free(copy);
        }
        ck_assert_uint_ge(refused, sb.size); /* every cut short of the whole record */
        msgpack_sbuffer_destroy(&sb);
        ss_span_unref(s);
        ss_resource_unref(r);
}
END_TEST

static Suite *span_suite(void)
{
        Suite *s = suite_create("span");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_new_from_span_start);
        tcase_add_test(tc, test_new_from_whole_span);
        tcase_add_test(tc, test_end_before_start_clamped);
        tcase_add_test(tc, test_empty_strings_from_the_wire);
        tcase_add_test(tc, test_new_start_not_ended);
        tcase_add_test(tc, test_new_bad_kind_and_flags);
        tcase_add_test(tc, test_attrs_merge_replace);
        tcase_add_test(tc, test_attrs_many_grow);
        tcase_add_test(tc, test_attrs_limit_dropped);
        tcase_add_test(tc, test_value_cut);
        tcase_add_test(tc, test_utf8_sanitised);
        tcase_add_test(tc, test_utf8_char_len);
        tcase_add_test(tc, test_nested_deep_copy);
        tcase_add_test(tc, test_too_deep_becomes_nil);
        tcase_add_test(tc, test_events_and_limits);
        tcase_add_test(tc, test_many_events_grow);
        tcase_add_test(tc, test_error_sticky);
        tcase_add_test(tc, test_status_upgrade);
        tcase_add_test(tc, test_refcounts);
        tcase_add_test(tc, test_resource_defaults);
        tcase_add_test(tc, test_resource_options_filtered);
        tcase_add_test(tc, test_state_round_trip);
        tcase_add_test(tc, test_state_damaged);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(span_suite());
}
