/* SPDX-License-Identifier: MIT */
/*
 * ss_msgpack_decode() against msgpack-c behind ss_msgpack_check(), the pair
 * it replaced on the daemon's hot path: on random msgpack of every kind, and
 * on the same bytes cut short, with bytes changed and with bytes appended,
 * both accept or refuse alike, and what they accept decodes to equal trees.
 */
#include "ss-check.h"
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fx-rnd.h"
#include "ss-msgpack.h"

#define ROUNDS 4000

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t rnd(void)
{
        return fx_rnd(&rng);
}

static uint32_t below(uint32_t n)
{
        return fx_below(&rng, n);
}

static void pack_bytes(msgpack_packer *pk, int kind)
{
        char b[300];
        uint32_t n = below(4) ? below(40) : below(sizeof(b));

        for (uint32_t i = 0; i < n; i++)
                b[i] = (char)rnd();
        if (kind == 0)
                msgpack_pack_str_with_body(pk, b, n);
        else if (kind == 1)
                msgpack_pack_bin_with_body(pk, b, n);
        else
                msgpack_pack_ext_with_body(pk, b, n, (int8_t)rnd());
}

static void pack_random(msgpack_packer *pk, int depth)
{
        switch (below(depth < 4 ? 14 : 12)) {
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
                msgpack_pack_int64(pk, (int64_t)(rnd() >> below(64)) * (below(2) ? -1 : 1));
                break;
        case 4:
                msgpack_pack_int8(pk, (int8_t)rnd()); /* may be >= 0: a positive integer */
                break;
        case 5:
                msgpack_pack_float(pk, (float)(int32_t)rnd() / 3.0f);
                break;
        case 6:
                msgpack_pack_double(pk, below(10) ? (double)(int64_t)rnd() / 7.0 : NAN);
                break;
        case 7:
        case 8:
                pack_bytes(pk, 0);
                break;
        case 9:
                pack_bytes(pk, 1);
                break;
        case 10:
        case 11:
                pack_bytes(pk, 2);
                break;
        case 12: {
                uint32_t n = below(6) ? below(6) : below(40);

                msgpack_pack_array(pk, n);
                for (uint32_t i = 0; i < n; i++)
                        pack_random(pk, depth + 1);
                break;
        }
        default: {
                uint32_t n = below(6) ? below(6) : below(20);

                msgpack_pack_map(pk, n);
                for (uint32_t i = 0; i < 2 * n; i++)
                        pack_random(pk, depth + 1);
        }
        }
}

static void ck_same(const msgpack_object *a, const msgpack_object *b)
{
        ck_assert_int_eq(a->type, b->type);
        switch (a->type) {
        case MSGPACK_OBJECT_NIL:
                return;
        case MSGPACK_OBJECT_BOOLEAN:
                ck_assert_int_eq(a->via.boolean, b->via.boolean);
                return;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                ck_assert_mem_eq(&a->via, &b->via, sizeof(uint64_t)); /* NaN's bits too */
                return;
        case MSGPACK_OBJECT_STR:
        case MSGPACK_OBJECT_BIN:
                ck_assert_uint_eq(a->via.str.size, b->via.str.size);
                if (a->via.str.size)
                        ck_assert_mem_eq(a->via.str.ptr, b->via.str.ptr, a->via.str.size);
                return;
        case MSGPACK_OBJECT_EXT:
                ck_assert_int_eq(a->via.ext.type, b->via.ext.type);
                ck_assert_uint_eq(a->via.ext.size, b->via.ext.size);
                if (a->via.ext.size)
                        ck_assert_mem_eq(a->via.ext.ptr, b->via.ext.ptr, a->via.ext.size);
                return;
        case MSGPACK_OBJECT_ARRAY:
                ck_assert_uint_eq(a->via.array.size, b->via.array.size);
                for (uint32_t i = 0; i < a->via.array.size; i++)
                        ck_same(&a->via.array.ptr[i], &b->via.array.ptr[i]);
                return;
        case MSGPACK_OBJECT_MAP:
                ck_assert_uint_eq(a->via.map.size, b->via.map.size);
                for (uint32_t i = 0; i < a->via.map.size; i++) {
                        ck_same(&a->via.map.ptr[i].key, &b->via.map.ptr[i].key);
                        ck_same(&a->via.map.ptr[i].val, &b->via.map.ptr[i].val);
                }
                return;
        default:
                ck_abort_msg("type %d", a->type);
        }
}

/* Both ways on data[0..len): the same verdict, the same tree. Returns whether accepted. */
static bool compare(const uint8_t *data, size_t len)
{
        msgpack_zone *za = msgpack_zone_new(1024), *zb = msgpack_zone_new(1024);
        msgpack_object a, b;
        size_t off = 0;
        bool ref =
            ss_msgpack_check(data, len) == 0 &&
            msgpack_unpack((const char *)data, len, &off, za, &a) == MSGPACK_UNPACK_SUCCESS &&
            off == len;
        int r = ss_msgpack_decode(data, len, zb, &b);

        ck_assert_msg(ref == (r == 0), "msgpack-c %s, ss_msgpack_decode %d on %zu bytes",
                      ref ? "accepts" : "refuses", r, len);
        if (ref)
                ck_same(&a, &b);
        else
                ck_assert_int_eq(r, -EBADMSG);
        msgpack_zone_free(za);
        msgpack_zone_free(zb);
        return ref;
}

START_TEST(random_objects_and_damage)
{
        unsigned accepted = 0, refused = 0;

        for (int round = 0; round < ROUNDS; round++) {
                msgpack_sbuffer sb;
                msgpack_packer pk;
                uint8_t *d;
                size_t n;

                msgpack_sbuffer_init(&sb);
                msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
                pack_random(&pk, 0);
                d = (uint8_t *)sb.data;
                n = sb.size;
                accepted += compare(d, n);
                compare(d, below((uint32_t)n));        /* cut short */
                msgpack_sbuffer_write(&sb, "\xc0", 1); /* one object too many */
                d = (uint8_t *)sb.data;
                ck_assert(!compare(d, n + 1));
                for (int k = 0; k < 3; k++) { /* bytes changed */
                        d[below((uint32_t)n)] = (uint8_t)rnd();
                        if (compare(d, n))
                                accepted++;
                        else
                                refused++;
                }
                msgpack_sbuffer_destroy(&sb);
        }
        /* both verdicts were seen often */
        ck_assert_uint_gt(accepted, ROUNDS);
        ck_assert_uint_gt(refused, ROUNDS / 4);
}
END_TEST

/* The limits: nesting, objects, counts the bytes cannot hold, the unused tag. */
START_TEST(limits)
{
        uint8_t deep[SS_WIRE_DEPTH_MAX + 2], big[6] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
        msgpack_zone *z = msgpack_zone_new(1024);
        msgpack_object o;

        memset(deep, 0x91, sizeof(deep)); /* [[[...]]] */
        deep[sizeof(deep) - 1] = 0xc0;
        ck_assert_int_eq(ss_msgpack_decode(deep, sizeof(deep), z, &o), -EBADMSG);
        ck_assert_int_eq(ss_msgpack_decode(deep + 1, sizeof(deep) - 1, z, &o), 0);
        ck_assert(!compare(deep, sizeof(deep)));
        ck_assert(compare(deep + 1, sizeof(deep) - 1));
        /* The same with a fixint, then a fixstr, innermost: decoded apart from the rest. */
        deep[sizeof(deep) - 1] = 0x01;
        ck_assert_int_eq(ss_msgpack_decode(deep, sizeof(deep), z, &o), -EBADMSG);
        ck_assert_int_eq(ss_msgpack_decode(deep + 1, sizeof(deep) - 1, z, &o), 0);
        deep[sizeof(deep) - 1] = 0xa0;
        ck_assert_int_eq(ss_msgpack_decode(deep, sizeof(deep), z, &o), -EBADMSG);
        ck_assert_int_eq(ss_msgpack_decode(deep + 1, sizeof(deep) - 1, z, &o), 0);
        /* 2^32 - 1 elements declared in 6 bytes: refused before any allocation */
        ck_assert_int_eq(ss_msgpack_decode(big, sizeof(big), z, &o), -EBADMSG);
        /* 65 535 elements declared, 1 byte there: refused with nothing allocated */
        {
                size_t before = z->chunk_list.free;
                const msgpack_zone_chunk *head = z->chunk_list.head;

                ck_assert_int_eq(ss_msgpack_decode((const uint8_t *)"\xdc\xff\xff\xc0", 4, z, &o),
                                 -EBADMSG);
                ck_assert_ptr_eq(z->chunk_list.head, head);
                ck_assert_uint_eq(z->chunk_list.free, before);
        }
        ck_assert_int_eq(ss_msgpack_decode((const uint8_t *)"\xc1", 1, z, &o), -EBADMSG);
        ck_assert_int_eq(ss_msgpack_decode((const uint8_t *)"", 0, z, &o), -EBADMSG);
        msgpack_zone_free(z);
}
END_TEST

/* Every encoding ss_mp_read_into() takes inline, and some it does not: each cut short by any
 * number of bytes is refused by it and by the decoder, read from a copy of exactly its
 * length (so that the address sanitizer sees a byte read past it); whole, both read it all. */
START_TEST(every_cut_of_each_kind)
{
        static char text[300];
        msgpack_zone *z = msgpack_zone_new(1024);
        msgpack_sbuffer sb;
        msgpack_packer pk;

        memset(text, 'x', sizeof(text));
        for (int kind = 0; kind < 14; kind++) {
                msgpack_sbuffer_init(&sb);
                msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
                switch (kind) {
                case 0:
                        msgpack_pack_str_with_body(&pk, text, 5);
                        break;
                case 1:
                        msgpack_pack_str_with_body(&pk, text, 40);
                        break;
                case 2:
                        msgpack_pack_str_with_body(&pk, text, 300);
                        break;
                case 3:
                        msgpack_pack_uint8(&pk, 200);
                        break;
                case 4:
                        msgpack_pack_uint16(&pk, 60000);
                        break;
                case 5:
                        msgpack_pack_uint32(&pk, 4000000000u);
                        break;
                case 6:
                        msgpack_pack_uint64(&pk, 1ull << 40);
                        break;
                case 7:
                        msgpack_pack_double(&pk, 0.5);
                        break;
                case 8:
                        msgpack_pack_float(&pk, 0.5f);
                        break;
                case 9:
                        msgpack_pack_int16(&pk, -300);
                        break;
                case 10:
                        msgpack_pack_bin_with_body(&pk, text, 40);
                        break;
                case 11:
                        msgpack_pack_true(&pk);
                        break;
                case 12:
                        msgpack_pack_map(&pk, 1);
                        msgpack_pack_str_with_body(&pk, "k", 1);
                        msgpack_pack_str_with_body(&pk, text, 40);
                        break;
                default:
                        msgpack_pack_array(&pk, 1);
                        msgpack_pack_str_with_body(&pk, text, 300);
                }
                for (size_t len = 0; len <= sb.size; len++) {
                        uint8_t *copy = malloc(len ? len : 1);
                        msgpack_object o;
                        ss_mp_reader r;

                        ck_assert_ptr_nonnull(copy);
                        memcpy(copy, sb.data, len);
                        ck_assert_msg(ss_msgpack_decode(copy, len, z, &o) ==
                                          (len == sb.size ? 0 : -EBADMSG),
                                      "kind %d, %zu of %zu bytes", kind, len, sb.size);
                        ss_mp_reader_init(&r, copy, len, z);
                        ck_assert_msg(ss_mp_read_into(&r, 1, &o) == (len == sb.size),
                                      "kind %d, %zu of %zu bytes", kind, len, sb.size);
                        if (len == sb.size) {
                                ck_assert(ss_mp_reader_done(&r));
                                ck_assert(compare(copy, len));
                        }
                        free(copy);
                        msgpack_zone_clear(z);
                }
                msgpack_sbuffer_destroy(&sb);
        }
        msgpack_zone_free(z);
}
END_TEST

/* SS_WIRE_MAX_OBJECTS objects pass, one more does not. */
START_TEST(object_limit)
{
        size_t n = SS_WIRE_MAX_OBJECTS - 1, len = 5 + n;
        uint8_t *d = malloc(len + 1);
        msgpack_zone *z = msgpack_zone_new(1024);
        msgpack_object o;

        ck_assert_ptr_nonnull(d);
        d[0] = 0xdd; /* array 32 */
        d[1] = (uint8_t)(n >> 24);
        d[2] = (uint8_t)(n >> 16);
        d[3] = (uint8_t)(n >> 8);
        d[4] = (uint8_t)n;
        memset(d + 5, 0xc0, n + 1);
        ck_assert_int_eq(ss_msgpack_decode(d, len, z, &o), 0);
        ck_assert_uint_eq(o.via.array.size, n);
        d[4] = (uint8_t)(n + 1); /* one object more, its byte there */
        ck_assert_int_eq(ss_msgpack_decode(d, len + 1, z, &o), -EBADMSG);
        msgpack_zone_free(z);
        free(d);
}
END_TEST

static Suite *suite(void)
{
        Suite *s = suite_create("msgpack");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, random_objects_and_damage);
        tcase_add_test(tc, every_cut_of_each_kind);
        tcase_add_test(tc, limits);
        tcase_add_test(tc, object_limit);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(suite());
}
