/* SPDX-License-Identifier: MIT */
/* The frame codec and message decoder: what a daemon does with every byte a client sends. */
#include "ss-check.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx-msg.h"
#include "fx-rnd.h"
#include "ss-wire.h"

static const uint8_t TID[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t SID[8] = {0xa1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t PID[8] = {0xb1, 2, 3, 4, 5, 6, 7, 8};

/* Split off the one frame in b and decode it. */
static int decode_one(const ss_buf *b, msgpack_unpacked *u, ss_msg *m)
{
        const uint8_t *p;
        size_t n;
        int used = ss_frame_parse(b->data, b->len, SS_MAX_FRAME_DEFAULT, &p, &n);

        ck_assert_int_eq(used, (int)b->len);
        return ss_wire_decode(p, n, u, m);
}

/* Decode a payload packed by hand (no frame header). */
static int decode_raw(const ss_buf *b, msgpack_unpacked *u, ss_msg *m)
{
        return ss_wire_decode(b->data, b->len, u, m);
}

static void pack_attrs(ss_buf *b, uint32_t *count)
{
        msgpack_packer pk;

        msgpack_packer_init(&pk, b, ss_buf_msgpack_write);
        msgpack_pack_str_with_body(&pk, "k.str", 5);
        msgpack_pack_str_with_body(&pk, "v", 1);
        msgpack_pack_str_with_body(&pk, "k.int", 5);
        msgpack_pack_int64(&pk, -42);
        msgpack_pack_str_with_body(&pk, "k.arr", 5);
        msgpack_pack_array(&pk, 2);
        msgpack_pack_double(&pk, 1.5);
        msgpack_pack_double(&pk, 2.5);
        *count = 3;
}

/* A SPAN_START frame of h into frame, its attributes pack_attrs()'s (packed into attrs, which
 * the frame's map points into). */
static void put_start_with_attrs(ss_buf *frame, ss_buf *attrs, const ss_span_head *h)
{
        ss_rawmap m = {0};

        pack_attrs(attrs, &m.count);
        m.data = attrs->data;
        m.len = attrs->len;
        ck_assert_int_eq(ss_wire_put_span_start(frame, SS_MAX_FRAME_DEFAULT, h, &m, NULL), 0);
}

START_TEST(frame_parse_needs_more_and_limits)
{
        const uint8_t *p;
        size_t n;
        uint8_t hdr[6] = {0, 0, 0, 2, 0x91, 0x01};
        uint8_t big[4] = {0, 0x10, 0, 1};
        uint8_t zero[4] = {0, 0, 0, 0};

        ck_assert_int_eq(ss_frame_parse(hdr, 3, 100, &p, &n), 0);
        ck_assert_int_eq(ss_frame_parse(hdr, 5, 100, &p, &n), 0);
        ck_assert_int_eq(ss_frame_parse(hdr, 6, 100, &p, &n), 6);
        ck_assert_uint_eq(n, 2);
        ck_assert_ptr_eq(p, hdr + 4);
        ck_assert_int_eq(ss_frame_parse(big, 4, SS_MAX_FRAME_DEFAULT, &p, &n), -EMSGSIZE);
        ck_assert_int_eq(ss_frame_parse(zero, 4, 100, &p, &n), -EBADMSG);
}
END_TEST

START_TEST(span_start_round_trip)
{
        ss_buf attrs, b;
        ss_span_head h = {.trace_id = TID,
                          .span_id = SID,
                          .parent_id = PID,
                          .name = "agent.run",
                          .name_len = 9,
                          .kind = SS_KIND_SERVER,
                          .start_ns = 1700000000123456789ull};
        msgpack_unpacked u;
        ss_msg msg;

        ss_buf_init(&attrs, 4096);
        ss_buf_init(&b, 4096);
        put_start_with_attrs(&b, &attrs, &h);
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(decode_one(&b, &u, &msg), 0);
        ck_assert_uint_eq(msg.type, SS_MSG_SPAN_START);
        ck_assert_mem_eq(msg.span.trace_id, TID, 16);
        ck_assert_mem_eq(msg.span.span_id, SID, 8);
        ck_assert_mem_eq(msg.span.parent_id, PID, 8);
        ck_assert_uint_eq(msg.span.name.len, 9);
        ck_assert_mem_eq(msg.span.name.ptr, "agent.run", 9);
        ck_assert_int_eq(msg.span.kind, SS_KIND_SERVER);
        ck_assert_uint_eq(msg.span.start_ns, 1700000000123456789ull);
        ck_assert_uint_eq(msg.span.attrs->size, 3);
        ck_assert_int_eq(msg.span.attrs->ptr[1].val.via.i64, -42);
        ck_assert_uint_eq(msg.span.options->size, 0);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&attrs);
        ss_buf_free(&b);
}
END_TEST

/* A SPAN_START's options read into flags and trace_state, both ways: the first of each key
 * counts, even when its value is of the wrong type. */
START_TEST(span_options_first_of_each_key)
{
        static const struct {
                const char *opts; /* key=value pairs: a number, or 's' and a string */
                uint32_t flags;
                const char *trace_state;
        } cases[] = {
            {"flags=769 flags=5 trace_state=sa trace_state=sb", 769, "a"},
            {"trace_state=s flags=4294967295", 4294967295u, ""},
            {"flags=4294967297 flags=1", 0, NULL},
            {"flags=sx flags=1 trace_state=7 trace_state=sb", 0, NULL},
            {"other=1 flags=2", 2, NULL},
        };
        ss_span_head h = {
            .trace_id = TID, .span_id = SID, .name = "op", .name_len = 2, .start_ns = 1};

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char buf[128], *save = NULL;
                ss_buf opts, b;
                ss_rawmap m = {0};
                msgpack_packer pk;

                ss_buf_init(&opts, 256);
                ss_buf_init(&b, 4096);
                msgpack_packer_init(&pk, &opts, ss_buf_msgpack_write);
                snprintf(buf, sizeof(buf), "%s", cases[i].opts);
                for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
                        char *v = strchr(t, '=');

                        *v++ = '\0';
                        msgpack_pack_str_with_body(&pk, t, strlen(t));
                        if (*v == 's')
                                msgpack_pack_str_with_body(&pk, v + 1, strlen(v + 1));
                        else
                                msgpack_pack_uint64(&pk, strtoull(v, NULL, 10));
                        m.count++;
                }
                m.data = opts.data;
                m.len = opts.len;
                ck_assert_int_eq(ss_wire_put_span_start(&b, SS_MAX_FRAME_DEFAULT, &h, NULL, &m), 0);
                for (int general = 0; general < 2; general++) {
                        msgpack_zone *z = msgpack_zone_new(1024);
                        msgpack_object root;
                        ss_msg msg;

                        ck_assert_int_eq(ss_wire_decode_zone(b.data + SS_FRAME_HEADER,
                                                             b.len - SS_FRAME_HEADER, z, &msg,
                                                             general ? &root : NULL),
                                         0);
                        ck_assert_msg(msg.span.flags == cases[i].flags, "case %zu, %s: flags %u", i,
                                      general ? "general" : "fast", msg.span.flags);
                        if (cases[i].trace_state) {
                                ck_assert_uint_eq(msg.span.trace_state.len,
                                                  strlen(cases[i].trace_state));
                                ck_assert_ptr_nonnull(msg.span.trace_state.ptr);
                                ck_assert(memcmp(msg.span.trace_state.ptr, cases[i].trace_state,
                                                 msg.span.trace_state.len) == 0);
                        } else {
                                ck_assert_ptr_null(msg.span.trace_state.ptr);
                        }
                        msgpack_zone_free(z);
                }
                ss_buf_free(&opts);
                ss_buf_free(&b);
        }
}
END_TEST

START_TEST(root_event_end_hello_flush)
{
        ss_span_head h = {.trace_id = TID,
                          .span_id = SID,
                          .name = "x",
                          .name_len = 1,
                          .kind = SS_KIND_INTERNAL,
                          .start_ns = 5};
        msgpack_unpacked u;
        ss_msg m;
        ss_buf b;

        ss_buf_init(&b, 4096);
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(ss_wire_put_span_start(&b, 4096, &h, NULL, NULL), 0);
        ck_assert_int_eq(decode_one(&b, &u, &m), 0);
        ck_assert_ptr_null(m.span.parent_id);

        ss_buf_reset(&b);
        ck_assert_int_eq(ss_wire_put_span_event(&b, 4096, SID, "gen_ai.first_token", 77, NULL), 0);
        ck_assert_int_eq(decode_one(&b, &u, &m), 0);
        ck_assert_uint_eq(m.type, SS_MSG_SPAN_EVENT);
        ck_assert_uint_eq(m.event.time_ns, 77);
        ck_assert_uint_eq(m.event.name.len, 18);

        ss_buf_reset(&b);
        ck_assert_int_eq(ss_wire_put_span_end(&b, 4096, SID, 99, SS_STATUS_ERROR, "boom", NULL), 0);
        ck_assert_int_eq(decode_one(&b, &u, &m), 0);
        ck_assert_uint_eq(m.type, SS_MSG_SPAN_END);
        ck_assert_int_eq(m.end.status_code, SS_STATUS_ERROR);
        ck_assert_mem_eq(m.end.status_msg.ptr, "boom", 4);

        ss_buf_reset(&b);
        ck_assert_int_eq(ss_wire_put_span_end(&b, 4096, SID, 99, SS_STATUS_OK, NULL, NULL), 0);
        ck_assert_int_eq(decode_one(&b, &u, &m), 0);
        ck_assert_ptr_null(m.end.status_msg.ptr);

        ss_buf_reset(&b);
        ck_assert_int_eq(ss_wire_put_hello(&b, 4096, NULL), 0);
        ck_assert_int_eq(decode_one(&b, &u, &m), 0);
        ck_assert_uint_eq(m.hello.version, SS_PROTOCOL_VERSION);

        ss_buf_reset(&b);
        ck_assert_int_eq(ss_wire_put_seq(&b, 4096, SS_MSG_FLUSH, 12345), 0);
        ck_assert_int_eq(decode_one(&b, &u, &m), 0);
        ck_assert_uint_eq(m.type, SS_MSG_FLUSH);
        ck_assert_uint_eq(m.seq.seq, 12345);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&b);
}
END_TEST

START_TEST(encoder_respects_max_frame_and_buffer)
{
        ss_span_head h = {.trace_id = TID,
                          .span_id = SID,
                          .name = "a-long-enough-name",
                          .name_len = 18,
                          .kind = 1,
                          .start_ns = 1};
        ss_buf b;

        ss_buf_init(&b, 4096);
        ck_assert_int_eq(ss_wire_put_span_start(&b, 16, &h, NULL, NULL), -EMSGSIZE);
        ck_assert_uint_eq(b.len, 0);
        ss_buf_free(&b);
        ss_buf_init(&b, 20);
        ck_assert_int_eq(ss_wire_put_span_start(&b, 4096, &h, NULL, NULL), -ENOBUFS);
        ck_assert_uint_eq(b.len, 0);
        ss_buf_free(&b);
}
END_TEST

START_TEST(truncated_and_invalid_msgpack)
{
        ss_span_head h = {
            .trace_id = TID, .span_id = SID, .name = "x", .name_len = 1, .kind = 1, .start_ns = 1};
        const uint8_t garbage[] = {0xc1, 0xc1, 0xc1};
        const uint8_t two[] = {0x91, 0x07, 0x91, 0x07};
        msgpack_unpacked u;
        ss_msg m;
        ss_buf b;

        ss_buf_init(&b, 4096);
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(ss_wire_put_span_start(&b, 4096, &h, NULL, NULL), 0);
        /* The payload cut short is not one msgpack object. */
        ck_assert_int_eq(ss_wire_decode(b.data + 4, b.len - 4 - 3, &u, &m), -EBADMSG);
        ck_assert_int_eq(ss_wire_decode(garbage, sizeof(garbage), &u, &m), -EBADMSG);
        /* Two objects in one frame is not one object either. */
        ck_assert_int_eq(ss_wire_decode(two, sizeof(two), &u, &m), -EBADMSG);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&b);
}
END_TEST

/* Pack [type, fields...] with a callback filling the fields. */
static void packed(ss_buf *b, void (*fill)(msgpack_packer *pk))
{
        msgpack_packer pk;

        ss_buf_reset(b);
        msgpack_packer_init(&pk, b, ss_buf_msgpack_write);
        fill(&pk);
}

static void fill_not_array(msgpack_packer *pk)
{
        msgpack_pack_map(pk, 0);
}
static void fill_type_str(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 1);
        msgpack_pack_str_with_body(pk, "HELLO", 5);
}
static void fill_short_start(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint32(pk, SS_MSG_SPAN_START);
        msgpack_pack_bin_with_body(pk, TID, 16);
        msgpack_pack_bin_with_body(pk, SID, 8);
}
static void fill_bad_id_len(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint32(pk, SS_MSG_SPAN_ATTRS);
        msgpack_pack_bin_with_body(pk, SID, 7);
        msgpack_pack_map(pk, 0);
}
static void fill_bad_attr_key(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint32(pk, SS_MSG_SPAN_ATTRS);
        msgpack_pack_bin_with_body(pk, SID, 8);
        msgpack_pack_map(pk, 1);
        msgpack_pack_int(pk, 7);
        msgpack_pack_str_with_body(pk, "v", 1);
}
static void fill_nil_attr_value(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint32(pk, SS_MSG_SPAN_ATTRS);
        msgpack_pack_bin_with_body(pk, SID, 8);
        msgpack_pack_map(pk, 1);
        msgpack_pack_str_with_body(pk, "k", 1);
        msgpack_pack_nil(pk);
}
static void fill_bad_kind(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 9);
        msgpack_pack_uint32(pk, SS_MSG_SPAN_START);
        msgpack_pack_bin_with_body(pk, TID, 16);
        msgpack_pack_bin_with_body(pk, SID, 8);
        msgpack_pack_nil(pk);
        msgpack_pack_str_with_body(pk, "x", 1);
        msgpack_pack_uint32(pk, 9);
        msgpack_pack_uint64(pk, 1);
        msgpack_pack_map(pk, 0);
        msgpack_pack_map(pk, 0);
}
static void fill_zero_trace_id(msgpack_packer *pk)
{
        static const uint8_t zero[16];

        msgpack_pack_array(pk, 9);
        msgpack_pack_uint32(pk, SS_MSG_SPAN_START);
        msgpack_pack_bin_with_body(pk, zero, 16);
        msgpack_pack_bin_with_body(pk, SID, 8);
        msgpack_pack_nil(pk);
        msgpack_pack_str_with_body(pk, "x", 1);
        msgpack_pack_uint32(pk, 1);
        msgpack_pack_uint64(pk, 1);
        msgpack_pack_map(pk, 0);
        msgpack_pack_map(pk, 0);
}
static void fill_deep_attr(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint32(pk, SS_MSG_SPAN_ATTRS);
        msgpack_pack_bin_with_body(pk, SID, 8);
        msgpack_pack_map(pk, 1);
        msgpack_pack_str_with_body(pk, "deep", 4);
        for (int i = 0; i < 12; i++)
                msgpack_pack_array(pk, 1);
        msgpack_pack_int(pk, 1);
}

START_TEST(wrong_shapes_are_eproto)
{
        void (*cases[])(msgpack_packer *) = {
            fill_not_array,  fill_type_str,      fill_short_start,
            fill_bad_id_len, fill_bad_attr_key,  fill_nil_attr_value,
            fill_bad_kind,   fill_zero_trace_id, fill_deep_attr};
        msgpack_unpacked u;
        ss_msg m;
        ss_buf b;

        ss_buf_init(&b, 4096);
        msgpack_unpacked_init(&u);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                packed(&b, cases[i]);
                ck_assert_msg(decode_raw(&b, &u, &m) == -EPROTO, "case %zu not refused", i);
        }
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&b);
}
END_TEST

static void fill_unknown(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 2);
        msgpack_pack_uint32(pk, 42);
        msgpack_pack_str_with_body(pk, "future", 6);
}
static void fill_trailing(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 4);
        msgpack_pack_uint32(pk, SS_MSG_FLUSH);
        msgpack_pack_uint64(pk, 9);
        msgpack_pack_str_with_body(pk, "extra", 5);
        msgpack_pack_map(pk, 0);
}

START_TEST(unknown_type_and_trailing_fields)
{
        msgpack_unpacked u;
        ss_msg m;
        ss_buf b;

        ss_buf_init(&b, 4096);
        msgpack_unpacked_init(&u);
        packed(&b, fill_unknown);
        ck_assert_int_eq(decode_raw(&b, &u, &m), -ENOTSUP);
        ck_assert_uint_eq(m.type, 42);
        packed(&b, fill_trailing);
        ck_assert_int_eq(decode_raw(&b, &u, &m), 0);
        ck_assert_uint_eq(m.seq.seq, 9);
        ck_assert_str_eq(ss_msg_type_name(SS_MSG_SPAN_END), "SPAN_END");
        ck_assert_str_eq(ss_msg_type_name(42), "unknown");
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&b);
}
END_TEST

static void fill_whole_span(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 13);
        msgpack_pack_uint32(pk, SS_MSG_SPAN);
        msgpack_pack_bin_with_body(pk, TID, 16);
        msgpack_pack_bin_with_body(pk, SID, 8);
        msgpack_pack_bin_with_body(pk, PID, 8);
        msgpack_pack_str_with_body(pk, "tool.execute", 12);
        msgpack_pack_uint32(pk, SS_KIND_INTERNAL);
        msgpack_pack_uint64(pk, 100);
        msgpack_pack_map(pk, 0);
        msgpack_pack_map(pk, 0);
        msgpack_pack_uint64(pk, 200);
        msgpack_pack_uint32(pk, SS_STATUS_OK);
        msgpack_pack_nil(pk);
        msgpack_pack_array(pk, 1);
        msgpack_pack_array(pk, 3);
        msgpack_pack_str_with_body(pk, "ev", 2);
        msgpack_pack_uint64(pk, 150);
        msgpack_pack_map(pk, 0);
}

START_TEST(whole_span_message)
{
        msgpack_unpacked u;
        ss_msg m;
        ss_buf b;

        ss_buf_init(&b, 4096);
        msgpack_unpacked_init(&u);
        packed(&b, fill_whole_span);
        ck_assert_int_eq(decode_raw(&b, &u, &m), 0);
        ck_assert_uint_eq(m.type, SS_MSG_SPAN);
        ck_assert_uint_eq(m.span.end_ns, 200);
        ck_assert_uint_eq(m.span.events->size, 1);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&b);
}
END_TEST

/* The zone is cleared after a frame that took from it, and left alone after one that did
 * not: a span frame whose attributes stay bytes. */
START_TEST(zone_cleared_when_used)
{
        msgpack_zone *z = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
        ss_buf attrs, start, whole;
        ss_span_head h = {.trace_id = TID, .span_id = SID, .name = "a", .name_len = 1};
        const uint8_t *p;
        size_t n;
        ss_msg msg;

        ck_assert_ptr_nonnull(z);
        ss_buf_init(&attrs, 4096);
        ss_buf_init(&start, 4096);
        ss_buf_init(&whole, 4096);
        put_start_with_attrs(&start, &attrs, &h);
        packed(&whole, fill_whole_span);
        for (int round = 0; round < 3; round++) {
                ck_assert_int_eq(ss_wire_decode_zone(whole.data, whole.len, z, &msg, NULL), 0);
                ck_assert_uint_eq(msg.span.events->size, 1);
                ck_assert_uint_lt(z->chunk_list.free, z->chunk_size); /* the events' array */
                ss_mp_zone_clear(z);
                ck_assert_uint_eq(z->chunk_list.free, z->chunk_size);
                ck_assert_int_eq(
                    ss_frame_parse(start.data, start.len, SS_MAX_FRAME_DEFAULT, &p, &n),
                    (int)start.len);
                ck_assert_int_eq(ss_wire_decode_zone(p, n, z, &msg, NULL), 0);
                ck_assert_uint_eq(msg.type, SS_MSG_SPAN_START);
                ck_assert_uint_eq(z->chunk_list.free, z->chunk_size); /* bytes: none taken */
                ss_mp_zone_clear(z);
                ck_assert_uint_eq(z->chunk_list.free, z->chunk_size);
        }
        msgpack_zone_free(z);
        ss_buf_free(&attrs);
        ss_buf_free(&start);
        ss_buf_free(&whole);
}
END_TEST

/* A SPAN message whose type field is type: every other field a whole SPAN's. */
static void pack_span_typed(msgpack_packer *pk, uint64_t type, uint64_t start, uint64_t end)
{
        msgpack_pack_array(pk, 13);
        msgpack_pack_uint64(pk, type);
        msgpack_pack_bin_with_body(pk, TID, 16);
        msgpack_pack_bin_with_body(pk, SID, 8);
        msgpack_pack_nil(pk);
        msgpack_pack_str_with_body(pk, "op", 2);
        msgpack_pack_uint32(pk, SS_KIND_INTERNAL);
        msgpack_pack_uint64(pk, start);
        msgpack_pack_map(pk, 0);
        msgpack_pack_map(pk, 0);
        msgpack_pack_uint64(pk, end);
        msgpack_pack_uint32(pk, SS_STATUS_OK);
        msgpack_pack_nil(pk);
        msgpack_pack_array(pk, 0);
}

static void fill_type_past_32_bits(msgpack_packer *pk)
{
        pack_span_typed(pk, (1ull << 32) + SS_MSG_SPAN, 100, 200); /* SPAN in its low bits */
}

static void fill_end_before_start(msgpack_packer *pk)
{
        pack_span_typed(pk, SS_MSG_SPAN, 500, 400);
}

static void fill_hello_version_past_32_bits(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint32(pk, SS_MSG_HELLO);
        msgpack_pack_uint64(pk, (1ull << 32) + SS_PROTOCOL_VERSION); /* version 1 in its low bits */
        msgpack_pack_map(pk, 0);
}

/* Numbers wider than their field are never cut to it: no message passes for another. */
START_TEST(wide_numbers_are_not_cut)
{
        msgpack_unpacked u;
        ss_msg m;
        ss_buf b;

        ss_buf_init(&b, 4096);
        msgpack_unpacked_init(&u);
        packed(&b, fill_type_past_32_bits);
        ck_assert_int_eq(decode_raw(&b, &u, &m), -ENOTSUP);
        ck_assert_uint_ne(m.type, SS_MSG_SPAN);
        packed(&b, fill_hello_version_past_32_bits);
        ck_assert_int_eq(decode_raw(&b, &u, &m), 0);
        ck_assert_uint_eq(m.type, SS_MSG_HELLO);
        ck_assert_uint_eq(m.hello.version, (1ull << 32) + SS_PROTOCOL_VERSION);
        ck_assert_uint_ne(m.hello.version, SS_PROTOCOL_VERSION);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&b);
}
END_TEST

/* The client's clock stepped back: the message stands; the span model clamps it. */
START_TEST(span_ending_before_its_start_decodes)
{
        msgpack_unpacked u;
        ss_msg m;
        ss_buf b;

        ss_buf_init(&b, 4096);
        msgpack_unpacked_init(&u);
        packed(&b, fill_end_before_start);
        ck_assert_int_eq(decode_raw(&b, &u, &m), 0);
        ck_assert_uint_eq(m.type, SS_MSG_SPAN);
        ck_assert_uint_eq(m.span.start_ns, 500);
        ck_assert_uint_eq(m.span.end_ns, 400);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&b);
}
END_TEST

START_TEST(map_lookup)
{
        msgpack_unpacked u;
        msgpack_packer pk;
        ss_buf b;
        size_t off = 0;
        const msgpack_object *v;

        ss_buf_init(&b, 256);
        msgpack_packer_init(&pk, &b, ss_buf_msgpack_write);
        msgpack_pack_map(&pk, 3);
        msgpack_pack_int(&pk, 1); /* a non-string key never matches */
        msgpack_pack_int(&pk, 10);
        msgpack_pack_str_with_body(&pk, "instance", 8);
        msgpack_pack_uint64(&pk, 77);
        msgpack_pack_str_with_body(&pk, "inst", 4);
        msgpack_pack_uint64(&pk, 5);
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(msgpack_unpack_next(&u, (char *)b.data, b.len, &off),
                         MSGPACK_UNPACK_SUCCESS);
        v = ss_wire_map_get(&u.data.via.map, "instance");
        ck_assert_ptr_nonnull(v);
        ck_assert_uint_eq(v->via.u64, 77);
        ck_assert_uint_eq(ss_wire_map_get(&u.data.via.map, "inst")->via.u64, 5);
        ck_assert_ptr_null(ss_wire_map_get(&u.data.via.map, "instances"));
        ck_assert_ptr_null(ss_wire_map_get(NULL, "instance"));
        ck_assert_ptr_null(ss_wire_kv_find(u.data.via.map.ptr, 1, "instance", 8));
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&b);
}
END_TEST

START_TEST(frame_header_codec)
{
        uint8_t h[SS_FRAME_HEADER];

        ss_frame_header_put(h, 0x01020304u);
        ck_assert_uint_eq(h[0], 1);
        ck_assert_uint_eq(h[3], 4);
        ck_assert_uint_eq(ss_frame_header_get(h), 0x01020304u);
        ss_frame_header_put(h, UINT32_MAX);
        ck_assert_uint_eq(ss_frame_header_get(h), UINT32_MAX);
}
END_TEST

START_TEST(stats_reply_round_trip)
{
        const ss_stat v[] = {{"frames", 12}, {"exporter.otlp-http.spans_exported", 1ull << 40}};
        msgpack_unpacked u;
        ss_msg m;
        ss_buf b;

        ss_buf_init(&b, 4096);
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(ss_wire_put_stats(&b, 4096, 7, v, 2), 0);
        ck_assert_int_eq(decode_one(&b, &u, &m), 0);
        ck_assert_uint_eq(m.type, SS_MSG_STATS_REPLY);
        ck_assert_uint_eq(m.stats.id, 7);
        ck_assert_uint_eq(m.stats.counters->size, 2);
        ck_assert_uint_eq(ss_wire_map_get(m.stats.counters, "frames")->via.u64, 12);
        ck_assert_uint_eq(
            ss_wire_map_get(m.stats.counters, "exporter.otlp-http.spans_exported")->via.u64,
            1ull << 40);
        /* Too big for max_frame: the buffer is left as it was. */
        ss_buf_reset(&b);
        ck_assert_int_eq(ss_wire_put_stats(&b, 8, 7, v, 2), -EMSGSIZE);
        ck_assert_uint_eq(b.len, 0);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&b);
}
END_TEST

START_TEST(subscribe_round_trip_and_checks)
{
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked u;
        ss_msg m;
        ss_buf b;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_str_with_body(&pk, SS_SUB_AGENT, strlen(SS_SUB_AGENT));
        msgpack_pack_str_with_body(&pk, "a", 1);
        msgpack_pack_str_with_body(&pk, SS_SUB_MIN_DUR_MS, strlen(SS_SUB_MIN_DUR_MS));
        msgpack_pack_uint64(&pk, 250);
        ss_rawmap filter = {.count = 2, .data = (const uint8_t *)sb.data, .len = sb.size};
        ss_buf_init(&b, 4096);
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(ss_wire_put_subscribe(&b, 4096, &filter), 0);
        ck_assert_int_eq(decode_one(&b, &u, &m), 0);
        ck_assert_uint_eq(m.type, SS_MSG_SUBSCRIBE);
        ck_assert_uint_eq(ss_wire_map_get(m.subscribe.filter, SS_SUB_MIN_DUR_MS)->via.u64, 250);
        /* A filter value of the wrong type is the wrong shape. */
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_str_with_body(&pk, SS_SUB_STATUS, strlen(SS_SUB_STATUS));
        msgpack_pack_uint64(&pk, 2);
        filter = (ss_rawmap){.count = 1, .data = (const uint8_t *)sb.data, .len = sb.size};
        ss_buf_reset(&b);
        ck_assert_int_eq(ss_wire_put_subscribe(&b, 4096, &filter), 0);
        ck_assert_int_eq(decode_one(&b, &u, &m), -EPROTO);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
        ss_buf_free(&b);
}
END_TEST

/* A TRACE message built as the daemon's tap builds it: a shared body and a head. */
START_TEST(trace_round_trip_cuts_long_strings)
{
        static const uint8_t tid[SS_TRACE_ID_LEN] = {1, 2, 3}, sid[SS_SPAN_ID_LEN] = {4},
                             pid[SS_SPAN_ID_LEN] = {5};
        char name[400];
        msgpack_object_kv kv[1] = {{.key = {.type = MSGPACK_OBJECT_STR},
                                    .val = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER}}};
        uint8_t head[SS_TRACE_HEAD_MAX];
        msgpack_unpacked u;
        msgpack_packer pk;
        ss_tap_span t, got;
        size_t n;
        ss_msg m;
        ss_buf body, b;

        /* "é" is two bytes: a cut at 256 must not split one. */
        memset(name, 'x', sizeof(name));
        for (size_t i = 1; i + 1 < sizeof(name); i += 2)
                memcpy(name + i, "\xc3\xa9", 2);
        kv[0].key.via.str = (msgpack_object_str){.size = 25, .ptr = "gen_ai.usage.input_tokens"};
        kv[0].val.via.u64 = 412;
        t = (ss_tap_span){.trace_id = tid,
                          .span_id = sid,
                          .parent_id = pid,
                          .name = {.ptr = name, .len = sizeof(name)},
                          .kind = SS_KIND_CLIENT,
                          .start_ns = 10,
                          .end_ns = 20,
                          .status_code = SS_STATUS_ERROR,
                          .service = {.ptr = "svc", .len = 3},
                          .attrs = kv,
                          .n_attrs = 1};
        ss_buf_init(&body, 1 << 20);
        ss_buf_init(&b, 1 << 20);
        msgpack_packer_init(&pk, &body, ss_buf_msgpack_write);
        msgpack_pack_array(&pk, 1);
        ck_assert_int_eq(ss_wire_pack_tap_span(&pk, &t), 0);
        n = ss_wire_trace_head(head, 3, 7, body.len);
        ck_assert_uint_le(n, SS_TRACE_HEAD_MAX);
        ck_assert_int_eq(ss_buf_append(&b, head, n), 0);
        ck_assert_int_eq(ss_buf_append(&b, body.data, body.len), 0);
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(decode_one(&b, &u, &m), 0);
        ck_assert_uint_eq(m.type, SS_MSG_TRACE);
        ck_assert_uint_eq(m.trace.dropped, 3);
        ck_assert_uint_eq(m.trace.omitted, 7);
        ck_assert_uint_eq(m.trace.spans->size, 1);
        ck_assert_int_eq(ss_wire_tap_span(&m.trace.spans->ptr[0], &got), 0);
        ck_assert_mem_eq(got.trace_id, tid, SS_TRACE_ID_LEN);
        ck_assert_mem_eq(got.parent_id, pid, SS_SPAN_ID_LEN);
        ck_assert_uint_eq(got.name.len, 255); /* 256 would split an "é" */
        ck_assert_mem_eq(got.name.ptr, name, 255);
        ck_assert_int_eq(got.kind, SS_KIND_CLIENT);
        ck_assert_uint_eq(got.end_ns, 20);
        ck_assert_int_eq(got.status_code, SS_STATUS_ERROR);
        ck_assert_uint_eq(got.service.len, 3);
        ck_assert_uint_eq(got.n_attrs, 1);
        ck_assert_uint_eq(got.attrs[0].val.via.u64, 412);
        /* A span of the wrong shape is refused alone. */
        ck_assert_int_eq(ss_wire_tap_span(&m.trace.spans->ptr[0].via.array.ptr[3], &got), -EPROTO);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&body);
        ss_buf_free(&b);
}
END_TEST

static void fill_bad_stats(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint32(pk, SS_MSG_STATS_REPLY);
        msgpack_pack_uint64(pk, 1);
        msgpack_pack_map(pk, 1);
        msgpack_pack_str_with_body(pk, "frames", 6);
        msgpack_pack_int64(pk, -1);
}

START_TEST(stats_reply_with_negative_counter_is_eproto)
{
        msgpack_unpacked u;
        ss_msg m;
        ss_buf b;

        ss_buf_init(&b, 4096);
        msgpack_unpacked_init(&u);
        packed(&b, fill_bad_stats);
        ck_assert_int_eq(decode_raw(&b, &u, &m), -EPROTO);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&b);
}
END_TEST

START_TEST(hello_keys_named_once)
{
        bool protocol = false;

        ck_assert(ss_hello_key("service.name", 12, &protocol));
        ck_assert(!protocol);
        ck_assert(ss_hello_key("process.pid", 11, &protocol));
        ck_assert(!protocol);
        ck_assert(ss_hello_key("instance", 8, &protocol));
        ck_assert(protocol);
        ck_assert(ss_hello_key("include_content", 15, NULL));
        ck_assert(!ss_hello_key("instances", 9, NULL));
        ck_assert(!ss_hello_key("deployment.environment", 22, NULL));
}
END_TEST

START_TEST(buf_bounds)
{
        ss_buf b;

        ss_buf_init(&b, 8);
        ck_assert_int_eq(ss_buf_append(&b, "12345", 5), 0);
        ck_assert_int_eq(ss_buf_append(&b, "6789", 4), -ENOBUFS);
        ck_assert_uint_eq(b.len, 5);
        ss_buf_consume(&b, 2);
        ck_assert_mem_eq(b.data, "345", 3);
        ck_assert_int_eq(ss_buf_append(&b, "6789", 4), 0);
        ck_assert_uint_eq(b.len, 7);
        ss_buf_free(&b);
        ss_buf_free(NULL);
}
END_TEST

/* ---- SPAN_START and SPAN_END read field by field -------------------------------------- */

/* A value for a field: mostly what the field takes, sometimes not (nil, another type, a
 * deep or a non-string-keyed map, another encoding of the same number). */
static void pack_value(msgpack_packer *pk, uint64_t *seed, unsigned depth)
{
        switch (fx_below(seed, depth > 3 ? 8 : 11)) {
        case 0:
                msgpack_pack_nil(pk);
                break;
        case 1:
                msgpack_pack_int64(pk, -(int64_t)fx_below(seed, 1000) - 1);
                break;
        case 2:
                msgpack_pack_uint64(pk, fx_rnd(seed) >> fx_below(seed, 64));
                break;
        case 3:
                msgpack_pack_double(pk, 0.25);
                break;
        case 4:
                msgpack_pack_true(pk);
                break;
        case 5:
                msgpack_pack_bin_with_body(pk, "\1\2\3\4\5\6\7\10", fx_below(seed, 9));
                break;
        case 6:
        case 7:
                msgpack_pack_str_with_body(pk, "value with some length", fx_below(seed, 23));
                break;
        case 8:
                msgpack_pack_array(pk, 2);
                pack_value(pk, seed, depth + 1);
                pack_value(pk, seed, depth + 1);
                break;
        default: {
                uint32_t n = fx_below(seed, 4);

                msgpack_pack_map(pk, n);
                for (uint32_t i = 0; i < n; i++) {
                        if (fx_below(seed, 10))
                                msgpack_pack_str_with_body(pk, "kabcdef", fx_below(seed, 8));
                        else
                                msgpack_pack_uint8(pk, 1);
                        pack_value(pk, seed, depth + 1);
                }
        }
        }
}

/* An id: bin of len bytes, sometimes all zero, or a wrong length, or nil, or not a bin. */
static void pack_id(msgpack_packer *pk, uint64_t *seed, uint32_t len, bool right)
{
        static const uint8_t ones[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        static const uint8_t zeros[16];

        if (right || fx_below(seed, 4)) {
                msgpack_pack_bin_with_body(pk, fx_below(seed, 20) ? ones : zeros, len);
                return;
        }
        if (fx_below(seed, 2))
                msgpack_pack_nil(pk);
        else
                msgpack_pack_bin_with_body(pk, ones, len - 1);
}

/* A field that should be what want_right packs: mostly it, else a random value. */
static bool field(msgpack_packer *pk, uint64_t *seed, unsigned odds)
{
        if (fx_below(seed, odds))
                return true;
        pack_value(pk, seed, 0);
        return false;
}

/* A SPAN_START, a SPAN_END or another message, mostly well-formed, with random fields. */
/* A span frame's attributes or options: keys the options name, others (one empty, one past
 * a fixstr), values of every kind, and now and then a long string. */
static void pack_random_map(msgpack_packer *pk, uint64_t *seed)
{
        static const char *const keys[] = {SS_OPT_FLAGS,
                                           SS_OPT_TRACE_STATE,
                                           "k",
                                           "key",
                                           "gen_ai.usage.output_tokens",
                                           "",
                                           "a.key.longer.than.thirty.one.bytes"};
        static const char long_str[300] = "long";
        uint32_t k = fx_below(seed, 5);

        msgpack_pack_map(pk, k);
        for (uint32_t j = 0; j < k; j++) {
                const char *key = keys[fx_below(seed, sizeof(keys) / sizeof(keys[0]))];

                msgpack_pack_str_with_body(pk, key, strlen(key));
                switch (fx_below(seed, 6)) {
                case 0:
                        msgpack_pack_uint64(pk, fx_rnd(seed) >> fx_below(seed, 64));
                        break;
                case 1:
                        msgpack_pack_str_with_body(pk, long_str, fx_below(seed, sizeof(long_str)));
                        break;
                default:
                        pack_value(pk, seed, 0);
                }
        }
}

static void pack_random_frame(ss_buf *b, uint64_t *seed)
{
        uint32_t type = fx_below(seed, 5)
                            ? (fx_below(seed, 2) ? SS_MSG_SPAN_START : SS_MSG_SPAN_END)
                            : fx_below(seed, 20);
        uint32_t fields = type == SS_MSG_SPAN_START ? 9 : 6, n = fields;
        msgpack_packer pk;

        if (fx_below(seed, 6) == 0)
                n = fx_below(seed, 2) ? fields + 1 + fx_below(seed, 3) : fx_below(seed, fields);
        msgpack_packer_init(&pk, b, ss_buf_msgpack_write);
        msgpack_pack_array(&pk, n);
        if (n == 0)
                return;
        if (fx_below(seed, 30))
                msgpack_pack_uint32(&pk, type);
        else
                msgpack_pack_int64(&pk, -2);
        for (uint32_t i = 1; i < n; i++) {
                if (i >= fields) {
                        pack_value(&pk, seed, 0);
                } else if (type == SS_MSG_SPAN_START) {
                        switch (i) {
                        case 1:
                                pack_id(&pk, seed, 16, fx_below(seed, 10));
                                break;
                        case 2:
                                pack_id(&pk, seed, 8, fx_below(seed, 10));
                                break;
                        case 3:
                                if (fx_below(seed, 3))
                                        pack_id(&pk, seed, 8, fx_below(seed, 10));
                                else
                                        msgpack_pack_nil(&pk);
                                break;
                        case 4:
                                if (field(&pk, seed, 10))
                                        msgpack_pack_str_with_body(&pk, "chat gpt-4o",
                                                                   fx_below(seed, 12));
                                break;
                        case 5:
                                if (field(&pk, seed, 10))
                                        msgpack_pack_uint8(&pk, (uint8_t)fx_below(seed, 7));
                                break;
                        case 6:
                                if (field(&pk, seed, 10))
                                        msgpack_pack_uint64(&pk,
                                                            fx_rnd(seed) >> fx_below(seed, 64));
                                break;
                        default: /* the attributes, the options */
                                if (field(&pk, seed, 4))
                                        pack_random_map(&pk, seed);
                        }
                } else if (type == SS_MSG_SPAN_END) {
                        switch (i) {
                        case 1:
                                pack_id(&pk, seed, 8, fx_below(seed, 10));
                                break;
                        case 2:
                                if (field(&pk, seed, 10))
                                        msgpack_pack_uint64(&pk,
                                                            fx_rnd(seed) >> fx_below(seed, 64));
                                break;
                        case 3:
                                if (field(&pk, seed, 10))
                                        msgpack_pack_uint8(&pk, (uint8_t)fx_below(seed, 4));
                                break;
                        case 4:
                                if (field(&pk, seed, 3))
                                        msgpack_pack_nil(&pk);
                                else
                                        msgpack_pack_str_with_body(&pk, "failed", 6);
                                break;
                        default:
                                if (field(&pk, seed, 4))
                                        pack_random_map(&pk, seed);
                        }
                } else {
                        pack_value(&pk, seed, 0);
                }
        }
}

/* The daemon's decode (no root asked for: SPAN_START and SPAN_END read field by field) and
 * the general one (root asked for) agree on every frame: the same answer, the same message. */
static void decode_both_ways(const uint8_t *p, size_t n, uint64_t frame, unsigned *fast_ok,
                             unsigned *as_bytes, unsigned with_options[2])
{
        msgpack_zone *z1 = msgpack_zone_new(1024), *z2 = msgpack_zone_new(1024);
        msgpack_object root;
        ss_msg a, b;
        int ra, rb;

        ck_assert(z1 && z2);
        ra = ss_wire_decode_zone(p, n, z1, &a, NULL);
        rb = ss_wire_decode_zone(p, n, z2, &b, &root);
        ck_assert_msg(ra == rb, "frame %llu: %d, the general decode %d", (unsigned long long)frame,
                      ra, rb);
        if (ra == 0) {
                ck_assert_msg(fx_msg_same(&a, &b), "frame %llu: another message",
                              (unsigned long long)frame);
                *fast_ok += a.type == SS_MSG_SPAN_START || a.type == SS_MSG_SPAN_END;
                *as_bytes += (a.type == SS_MSG_SPAN_START && a.span.attrs_bytes.n) ||
                             (a.type == SS_MSG_SPAN_END && a.end.attrs_bytes.n);
                with_options[0] += a.type == SS_MSG_SPAN_START && a.span.flags;
                with_options[1] += a.type == SS_MSG_SPAN_START && a.span.trace_state.ptr;
        }
        msgpack_zone_free(z1);
        msgpack_zone_free(z2);
}

START_TEST(span_frames_read_as_the_general_decode_reads_them)
{
        uint64_t seed = 0xdec0de5eedull;
        unsigned ok = 0, as_bytes = 0, with_options[2] = {0};
        ss_buf b;

        ss_buf_init(&b, 1 << 20);
        for (uint64_t i = 0; i < 40000; i++) {
                ss_buf_reset(&b);
                pack_random_frame(&b, &seed);
                decode_both_ways(b.data, b.len, i, &ok, &as_bytes, with_options);
                /* Cut short, a byte changed, a byte more. */
                if (b.len > 1)
                        decode_both_ways(b.data, fx_below(&seed, (uint32_t)b.len), i, &ok,
                                         &as_bytes, with_options);
                if (b.len) {
                        b.data[fx_below(&seed, (uint32_t)b.len)] ^=
                            (uint8_t)(1 + fx_below(&seed, 255));
                        decode_both_ways(b.data, b.len, i, &ok, &as_bytes, with_options);
                }
                ck_assert_int_eq(ss_buf_append(&b, "\xc0", 1), 0);
                decode_both_ways(b.data, b.len, i, &ok, &as_bytes, with_options);
        }
        /* Most frames were spans the daemon takes; many with attributes left as bytes, some
         * with each option. */
        ck_assert_uint_gt(ok, 10000);
        ck_assert_uint_gt(as_bytes, 3000);
        ck_assert_uint_gt(with_options[0], 100);
        ck_assert_uint_gt(with_options[1], 100);
        ss_buf_free(&b);
}
END_TEST

/* The short-string helpers of ss-buf.h against memcpy() and memcmp(): every length up to
 * past their word steps, every differing byte, at every alignment of the source. */
START_TEST(short_copy_and_compare)
{
        uint8_t src[64 + 8], dst[64 + 8], other[64 + 8];

        for (size_t i = 0; i < sizeof(src); i++)
                src[i] = (uint8_t)(i * 37 + 11);
        for (size_t off = 0; off < 8; off++) {
                for (size_t n = 0; n <= 64; n++) {
                        memset(dst, 0xee, sizeof(dst));
                        ss_copy(dst + 1, src + off, n);
                        ck_assert(memcmp(dst + 1, src + off, n) == 0);
                        ck_assert_uint_eq(dst[0], 0xee);
                        ck_assert_uint_eq(dst[1 + n], 0xee);
                        memcpy(other, src + off, n);
                        ck_assert(ss_bytes_eq(other, src + off, n));
                        for (size_t i = 0; i < n; i++) {
                                other[i] ^= 0x40;
                                ck_assert_msg(!ss_bytes_eq(other, src + off, n), "n %zu, byte %zu",
                                              n, i);
                                other[i] ^= 0x40;
                        }
                }
        }
}
END_TEST

static Suite *wire_suite(void)
{
        Suite *s = suite_create("wire");
        TCase *tc = tcase_create("codec");

        tcase_add_test(tc, frame_parse_needs_more_and_limits);
        tcase_add_test(tc, span_start_round_trip);
        tcase_add_test(tc, span_options_first_of_each_key);
        tcase_add_test(tc, root_event_end_hello_flush);
        tcase_add_test(tc, encoder_respects_max_frame_and_buffer);
        tcase_add_test(tc, truncated_and_invalid_msgpack);
        tcase_add_test(tc, wrong_shapes_are_eproto);
        tcase_add_test(tc, unknown_type_and_trailing_fields);
        tcase_add_test(tc, whole_span_message);
        tcase_add_test(tc, zone_cleared_when_used);
        tcase_add_test(tc, wide_numbers_are_not_cut);
        tcase_add_test(tc, span_ending_before_its_start_decodes);
        tcase_add_test(tc, map_lookup);
        tcase_add_test(tc, buf_bounds);
        tcase_add_test(tc, frame_header_codec);
        tcase_add_test(tc, stats_reply_round_trip);
        tcase_add_test(tc, subscribe_round_trip_and_checks);
        tcase_add_test(tc, trace_round_trip_cuts_long_strings);
        tcase_add_test(tc, stats_reply_with_negative_counter_is_eproto);
        tcase_add_test(tc, hello_keys_named_once);
        tcase_add_test(tc, short_copy_and_compare);
        tcase_add_test(tc, span_frames_read_as_the_general_decode_reads_them);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(wire_suite());
}
