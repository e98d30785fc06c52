/* SPDX-License-Identifier: MIT */
/*
 * The model's limits against a hostile client: key and name lengths, a span's
 * byte budget, replaced values reclaimed by compaction, huge maps under
 * max_attrs, keys repaired from ill-formed UTF-8, the store's byte account,
 * and a resource that carries the peer's real identity. Counts, never times.
 */
#include "ss-check.h"
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/utf8.h"
#include "fixture.h"
#include "fx-msg.h"
#include "fx-rnd.h"
#include "model/resource.h"
#include "model/span.h"
#include "model/value.h"
#include "otlp/otlp.h"
#include "ss-buf.h"

#define REPLACED_VALUE_LEN 10240u
#define REPLACEMENTS       10000u

static ss_resource *res;
static ss_limit_hits hits;

static void setup(void)
{
        res = ss_resource_new(NULL);
        ck_assert_ptr_nonnull(res);
        memset(&hits, 0, sizeof(hits));
}

static void teardown(void)
{
        ss_resource_unref(res);
}

/* An open span named name under lim. */
static ss_span *span_named(const char *name, const ss_limits *lim)
{
        return fx_span(&(fx_span_spec){
            .resource = res, .name = name, .seed = 1, .start_ns = 1000, .limits = lim});
}

/* Set one attribute through the span's public path, as SPAN_ATTRS does. */
static void set1(ss_span *s, const char *key, msgpack_object val, const ss_limits *lim)
{
        msgpack_object_kv kv = fx_kv(key, val);
        msgpack_object m = fx_map(&kv, 1);

        ck_assert_int_eq(ss_span_set_attrs(s, &m.via.map, lim), 0);
}

/* A string of n bytes: prefix, then fill. Freed by the caller. */
static char *long_str(const char *prefix, char fill, size_t n)
{
        char *p = malloc(n + 1);
        size_t k = strlen(prefix);

        ck_assert_ptr_nonnull(p);
        memset(p, fill, n);
        memcpy(p, prefix, k < n ? k : n);
        p[n] = '\0';
        return p;
}

/* ---- keys and names --------------------------------------------------------------------- */

/* The word-at-a-time ASCII scan agrees with one character at a time, wherever the first
 * non-ASCII byte falls (within, at and across the 32- and 8-byte steps) and wherever max cuts. */
static size_t measure_slowly(const uint8_t *p, size_t n, size_t max, size_t *ret_in,
                             bool *ret_clean)
{
        size_t in = 0, out = 0;
        bool clean = true;

        while (in < n) {
                size_t l = ss_utf8_char_len(p + in, n - in), w = l ? l : 3;

                if (out + w > max)
                        break;
                clean = clean && l;
                out += w;
                in += l ? l : 1;
        }
        *ret_in = in;
        *ret_clean = clean;
        return out;
}

START_TEST(utf8_measure_word_scan_matches_bytes)
{
        static const char *const odd[] = {"\xff", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                          "\xc3"};
        uint8_t buf[96];

        for (size_t o = 0; o < sizeof(odd) / sizeof(odd[0]); o++) {
                size_t ol = strlen(odd[o]);

                for (size_t n = ol; n <= 80; n++) {
                        for (size_t at = 0; at + ol <= n; at++) {
                                memset(buf, 'a', n);
                                memcpy(buf + at, odd[o], ol);
                                for (size_t max = 0; max <= n + 6; max += 1 + max / 8) {
                                        size_t in1, in2, out1, out2;
                                        bool c1, c2;

                                        out1 = ss_utf8_measure(buf, n, max, &in1, &c1);
                                        out2 = measure_slowly(buf, n, max, &in2, &c2);
                                        ck_assert_uint_eq(out1, out2);
                                        ck_assert_uint_eq(in1, in2);
                                        ck_assert_int_eq(c1, c2);
                                }
                        }
                }
        }
}
END_TEST

/* The overlapping word loads of the ASCII check, and past SS_UTF8_ASCII_VECTOR bytes its
 * vectors and their tail, see a high byte at every place of every length. */
START_TEST(utf8_ascii_check_sees_every_byte)
{
        uint8_t buf[3 * SS_UTF8_ASCII_VECTOR + 40];

        for (size_t n = 0; n < sizeof(buf); n++) {
                memset(buf, 'a', sizeof(buf));
                ck_assert(ss_utf8_is_ascii(buf, n));
                ck_assert(ss_utf8_valid((const char *)buf, n));
                for (size_t at = 0; at < n; at++) {
                        buf[at] = 0x80;
                        ck_assert_msg(!ss_utf8_is_ascii(buf, n), "n %zu at %zu", n, at);
                        ck_assert(!ss_utf8_valid((const char *)buf, n));
                        buf[at] = 'a';
                }
                buf[n] = 0xff; /* past the end: not seen */
                ck_assert(ss_utf8_is_ascii(buf, n));
        }
}
END_TEST

START_TEST(key_past_max_key_len_is_dropped)
{
        ss_limits lim = {.max_key_len = 8, .hits = &hits};
        ss_span *s = span_named("op", &lim);
        msgpack_object_kv ev_kv[2];
        msgpack_object ev;
        uint64_t live;

        set1(s, "12345678", fx_uint(1), &lim); /* at the limit: kept */
        ck_assert_uint_eq(s->attrs.n, 1);
        live = s->store.live;
        set1(s, "123456789", fx_str("a value the key does not earn"), &lim);
        ck_assert_uint_eq(s->attrs.n, 1);
        ck_assert_ptr_null(ss_attrs_get(&s->attrs, "123456789"));
        ck_assert_uint_eq(s->dropped_attrs, 1);
        ck_assert_uint_eq(hits.keys_too_long, 1);
        ck_assert_uint_eq(s->store.live, live); /* nothing of it was stored */

        /* An event's attributes are held to the same limit. */
        ev_kv[0] = fx_kv("short", fx_uint(2));
        ev_kv[1] = fx_kv("much-too-long-key", fx_uint(3));
        ev = fx_map(ev_kv, 2);
        ck_assert_int_eq(ss_span_add_event(s, "ev", 2, 5, &ev.via.map, &lim), 0);
        ck_assert_uint_eq(s->n_events, 1);
        ck_assert_uint_eq(s->events[0].attrs.n, 1);
        ck_assert_uint_eq(s->events[0].dropped_attrs, 1);
        ck_assert_uint_eq(hits.keys_too_long, 2);
        ck_assert_uint_eq(hits.attrs_over_count, 0);
        ss_span_unref(s);
}
END_TEST

START_TEST(names_cut_on_a_character_boundary)
{
        ss_limits lim = {.max_name_len = 5, .hits = &hits};
        /* abc then a euro sign (3 bytes): 6 bytes, the euro does not fit in 5 */
        ss_span *s = span_named("abc\xE2\x82\xAC\xE2\x82\xAC", &lim);
        /* d, e-acute, j, a-grave: 6 bytes; the a-grave does not fit */
        static const char msg[] = "d\xC3\xA9j\xC3\xA0 vu";

        ck_assert(fx_str_is(&s->name, "abc"));
        ck_assert_int_eq(s->name.ptr[s->name.size], '\0');
        ck_assert_uint_eq(hits.names_cut, 1);

        /* ab then an emoji (4 bytes) */
        ck_assert_int_eq(ss_span_add_event(s, "ab\xF0\x9F\x98\x80", 6, 7, NULL, &lim), 0);
        ck_assert(fx_str_is(&s->events[0].name, "ab"));
        ck_assert_uint_eq(hits.names_cut, 2);
        /* exactly the limit: whole, not counted */
        ck_assert_int_eq(ss_span_add_event(s, "12345", 5, 8, NULL, &lim), 0);
        ck_assert(fx_str_is(&s->events[1].name, "12345"));
        ck_assert_uint_eq(hits.names_cut, 2);

        ss_span_end_limited(s, 2000, SS_STATUS_ERROR, msg, (uint32_t)strlen(msg), &lim);
        ck_assert(fx_str_is(&s->status_msg, "d\xC3\xA9j"));
        ck_assert(ss_utf8_valid(s->status_msg.ptr, s->status_msg.size));
        ck_assert_uint_eq(hits.names_cut, 3);
        ss_span_unref(s);
}
END_TEST

/* ---- a span's bytes --------------------------------------------------------------------- */

START_TEST(span_bytes_refuse_attributes_and_events)
{
        ss_limits lim = {.max_bytes = 2048, .hits = &hits};
        ss_span *s = span_named("op", &lim);
        char *a1 = long_str("first", 'a', 1200), *a2 = long_str("second", 'b', 1200);
        char *big = long_str("big", 'c', 2100), *ev_name = long_str("", 'e', 900);
        uint64_t live, dead;

        ck_assert_uint_eq(s->store.live, 3);
        set1(s, "a", fx_str(a1), &lim);
        live = s->store.live;
        ck_assert_uint_eq(live, 3 + 2 + 1201);

        /* A second such value would take the span past its bytes: refused before it is
         * copied (no dead bytes either). */
        set1(s, "b", fx_str(a2), &lim);
        ck_assert_ptr_null(ss_attrs_get(&s->attrs, "b"));
        ck_assert_uint_eq(s->dropped_attrs, 1);
        ck_assert_uint_eq(hits.bytes_over, 1);
        ck_assert_uint_eq(s->store.live, live);
        ck_assert_uint_eq(s->store.dead, 0);

        /* Replacing a value with one as large costs nothing more: allowed. */
        set1(s, "a", fx_str(a2), &lim);
        fx_assert_str(ss_attrs_get(&s->attrs, "a"), a2);
        ck_assert_uint_eq(s->store.live, live);
        ck_assert_uint_eq(hits.bytes_over, 1);

        /* Growing it past the limit is not: the old value stays. */
        dead = s->store.dead;
        set1(s, "a", fx_str(big), &lim);
        fx_assert_str(ss_attrs_get(&s->attrs, "a"), a2);
        ck_assert_uint_eq(s->store.dead, dead);
        ck_assert_uint_eq(s->dropped_attrs, 2);
        ck_assert_uint_eq(hits.bytes_over, 2);

        /* What still fits is taken. */
        set1(s, "c", fx_uint(1), &lim);
        ck_assert_uint_eq(s->attrs.n, 2);

        /* Events: one whose name does not fit is dropped; a small one is kept. */
        ck_assert_int_eq(ss_span_add_event(s, ev_name, 900, 1, NULL, &lim), 0);
        ck_assert_uint_eq(s->n_events, 0);
        ck_assert_uint_eq(s->dropped_events, 1);
        ck_assert_uint_eq(hits.bytes_over, 3);
        ck_assert_int_eq(ss_span_add_event(s, "e", 1, 2, NULL, &lim), 0);
        ck_assert_uint_eq(s->n_events, 1);
        ck_assert_uint_eq(s->dropped_events, 1);
        ck_assert_uint_le(s->store.live, lim.max_bytes);
        free(a1);
        free(a2);
        free(big);
        free(ev_name);
        ss_span_unref(s);
}
END_TEST

/* n bytes that are each ill-formed UTF-8: stored, each becomes U+FFFD (3 bytes). */
static char *ill_formed(size_t n)
{
        return long_str("", (char)0xFF, n);
}

START_TEST(repaired_value_is_held_to_span_bytes)
{
        ss_limits lim = {.max_bytes = 1000, .hits = &hits};
        ss_span *s = span_named("op", &lim);
        char *v400 = ill_formed(400), *v300 = ill_formed(300);
        char *key = long_str("", 'k', 100);

        /* 401 bytes as sent, 1201 once repaired: the copy is refused after the fact. */
        set1(s, "x", fx_str(v400), &lim);
        ck_assert_ptr_null(ss_attrs_get(&s->attrs, "x"));
        ck_assert_uint_eq(hits.bytes_over, 1);
        ck_assert_uint_eq(s->store.live, 3);

        /* 301 bytes as sent, 901 repaired, under a key of 100: 1005 bytes in all. */
        set1(s, key, fx_str(v300), &lim);
        /* The check after the copy counts the new key's bytes too (it once left them out, and
         * the span ended at 1005 bytes, past max_bytes 1000). */
        ck_assert_msg(s->store.live <= lim.max_bytes, "live %llu past max_bytes %llu",
                      (unsigned long long)s->store.live, (unsigned long long)lim.max_bytes);
        free(v400);
        free(v300);
        free(key);
        ss_span_unref(s);
}
END_TEST

/* The first n bytes of b hold needle. */
static bool has(const ss_buf *b, const char *needle)
{
        return memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}

START_TEST(replaced_values_are_reclaimed)
{
        ss_limits lim = {.max_value_len = 256u * 1024u, .max_bytes = 4u << 20, .hits = &hits};
        ss_span *s = span_named("op", &lim);
        msgpack_object_kv ev_kv = fx_kv("e", fx_str("event value"));
        msgpack_object ev = fx_map(&ev_kv, 1);
        char *v = long_str("", 'x', REPLACED_VALUE_LEN), prefix[16];
        ss_buf pb, jb;

        ck_assert_int_eq(ss_span_add_event(s, "ev", 2, 5, &ev.via.map, &lim), 0);
        for (unsigned i = 0; i < REPLACEMENTS; i++) {
                snprintf(prefix, sizeof(prefix), "v%05u", i);
                memcpy(v, prefix, strlen(prefix));
                set1(s, "k", fx_str(v), &lim);
                /* One value live (and the name, the key, the event); replaced ones reclaimed
                 * before they pass the compaction threshold. */
                ck_assert_uint_eq(s->store.live, 3 + 2 + (REPLACED_VALUE_LEN + 1) + 3 + 2 + 12);
                ck_assert_uint_lt(s->store.dead, SS_SPAN_COMPACT_MIN);
        }
        ck_assert_uint_ge(hits.compactions,
                          REPLACEMENTS / (SS_SPAN_COMPACT_MIN / REPLACED_VALUE_LEN + 1));
        ck_assert_uint_eq(s->attrs.n, 1);
        ck_assert(fx_str_is(&s->name, "op"));
        ck_assert_uint_eq(s->n_events, 1);
        ck_assert(fx_str_is(&s->events[0].name, "ev"));
        fx_assert_str(ss_attrs_get(&s->events[0].attrs, "e"), "event value");
        fx_assert_str(ss_attrs_get(&s->attrs, "k"), v);

        /* Both encoders read the compacted span: the last value, none of the earlier. */
        ss_span_end(s, 2000, SS_STATUS_OK, NULL, 0);
        ss_buf_init(&pb, 1u << 20);
        ss_buf_init(&jb, 1u << 20);
        ck_assert_int_eq(ss_otlp_encode(&s, 1, &pb), 0);
        ck_assert_int_eq(ss_otlp_json_encode(&s, 1, &jb), 0);
        ck_assert(has(&pb, "v09999xxxx"));
        ck_assert(!has(&pb, "v09998"));
        ck_assert(has(&jb, "\"v09999xxxx"));
        ck_assert(!has(&jb, "v09998"));
        ck_assert(has(&jb, "\"event value\""));
        ss_buf_free(&pb);
        ss_buf_free(&jb);
        free(v);
        ss_span_unref(s);
}
END_TEST

/* ---- max_attrs -------------------------------------------------------------------------- */

START_TEST(key_refused_by_max_attrs_stores_nothing)
{
        ss_limits lim = {.max_attrs = 1, .hits = &hits};
        ss_span *s = span_named("op", &lim);
        char *v = long_str("", 'v', 1000);
        uint64_t live;

        set1(s, "a", fx_uint(1), &lim);
        live = s->store.live;
        set1(s, "b", fx_str(v), &lim);
        ck_assert_uint_eq(s->store.live, live);
        /* A key stored repaired for its lookup goes again when it is refused. */
        set1(s, "c\xFF", fx_str(v), &lim);
        ck_assert_uint_eq(s->store.live, live);
        ck_assert_uint_eq(s->attrs.n, 1);
        ck_assert_uint_eq(s->dropped_attrs, 2);
        ck_assert_uint_eq(hits.attrs_over_count, 2);
        free(v);
        ss_span_unref(s);
}
END_TEST

#define MANY_KEYS 100000u

START_TEST(huge_map_capped_at_max_attrs)
{
        static char keys[MANY_KEYS][8];
        ss_limits lim = {.max_attrs = 128, .hits = &hits};
        ss_span *s = span_named("op", &lim);
        msgpack_object_kv *kv = calloc(MANY_KEYS, sizeof(*kv));
        msgpack_object m;

        ck_assert_ptr_nonnull(kv);
        for (uint32_t i = 0; i < MANY_KEYS; i++) {
                snprintf(keys[i], sizeof(keys[i]), "k%06u", i);
                kv[i] = fx_kv(keys[i], fx_uint(i));
        }
        m = fx_map(kv, MANY_KEYS);
        ck_assert_int_eq(ss_span_set_attrs(s, &m.via.map, &lim), 0);
        ck_assert_uint_eq(s->attrs.n, 128);
        ck_assert_uint_eq(s->dropped_attrs, MANY_KEYS - 128);
        ck_assert_uint_eq(hits.attrs_over_count, MANY_KEYS - 128);
        ck_assert(fx_str_is(&s->attrs.kv[127].key.via.str, "k000127"));
        ck_assert_uint_eq(ss_attrs_get(&s->attrs, "k000127")->via.u64, 127);
        ck_assert_ptr_null(ss_attrs_get(&s->attrs, "k000128"));
        ck_assert_ptr_null(ss_attrs_get(&s->attrs, "k099999"));

        /* Again: the 128 kept are replaced in place, the rest dropped again. */
        ck_assert_int_eq(ss_span_set_attrs(s, &m.via.map, &lim), 0);
        ck_assert_uint_eq(s->attrs.n, 128);
        ck_assert_uint_eq(s->dropped_attrs, 2 * (MANY_KEYS - 128));
        free(kv);
        ss_span_unref(s);
}
END_TEST

/* ---- keys repaired from ill-formed UTF-8 ------------------------------------------------- */

static void two_ill_formed_keys_are_one(ss_span *s, uint32_t n_before)
{
        uint64_t live;

        set1(s, "k\xFE", fx_uint(1), NULL);
        ck_assert_uint_eq(s->attrs.n, n_before + 1);
        live = s->store.live;
        /* Another ill-formed key that repairs to the same string: the same attribute. */
        set1(s, "k\xFF", fx_uint(2), NULL);
        ck_assert_uint_eq(s->attrs.n, n_before + 1);
        ck_assert_uint_eq(ss_attrs_get(&s->attrs, "k\xEF\xBF\xBD")->via.u64, 2);
        ck_assert_uint_eq(s->store.live, live); /* the lookup's copy of the key went again */
        /* And the well-formed spelling of it too. */
        set1(s, "k\xEF\xBF\xBD", fx_uint(3), NULL);
        ck_assert_uint_eq(s->attrs.n, n_before + 1);
        ck_assert_uint_eq(ss_attrs_get(&s->attrs, "k\xEF\xBF\xBD")->via.u64, 3);
}

START_TEST(ill_formed_keys_looked_up_repaired)
{
        ss_span *small = span_named("op", NULL), *indexed = span_named("op", NULL);
        char key[8];

        two_ill_formed_keys_are_one(small, 0);
        /* Past SS_ATTRS_INDEX_MIN keys the lookup goes through the hash index. */
        for (unsigned i = 0; i < SS_ATTRS_INDEX_MIN + 4; i++) {
                snprintf(key, sizeof(key), "i%u", i);
                set1(indexed, key, fx_uint(i), NULL);
        }
        two_ill_formed_keys_are_one(indexed, SS_ATTRS_INDEX_MIN + 4);
        ss_span_unref(small);
        ss_span_unref(indexed);
}
END_TEST

/* ---- the store's account ------------------------------------------------------------------ */

static void pack_nested(msgpack_packer *pk, unsigned levels, bool maps)
{
        for (unsigned i = 0; i < levels; i++) {
                if (maps) {
                        msgpack_pack_map(pk, 2);
                        pk_str(pk, "k\xFF"); /* a key repaired at every level */
                } else {
                        msgpack_pack_array(pk, 2);
                        pk_str(pk, "side"); /* the first item, the next level the second */
                }
        }
        pk_str(pk, "bottom");
        /* A map's second pair, innermost first; an array's second item was the next level. */
        for (unsigned i = 0; maps && i < levels; i++) {
                pk_str(pk, "sibling");
                msgpack_pack_bin_with_body(pk, "\x01\x02\x03\x04", 4);
        }
}

/* The values the account is checked on, as msgpack. */
static void pack_case(msgpack_packer *pk, int i)
{
        switch (i) {
        case 0:
                pk_str(pk, "hello");
                break;
        case 1: /* after a string, so that msgpack-c gives the empty one a pointer */
                msgpack_pack_array(pk, 2);
                pk_str(pk, "x");
                pk_str(pk, "");
                break;
        case 2:
                msgpack_pack_bin_with_body(pk, "\x01\x02\x03\x04\x05\x06\x07", 7);
                break;
        case 3:
                msgpack_pack_bin_with_body(pk, "", 0);
                break;
        case 4:
                pk_str(pk, "a\xFF"
                           "b\xC0\x80");
                break;
        case 5: /* [1, "two", [3, "four"], {"k": "v", 5: "left out", "e": []}] */
                msgpack_pack_array(pk, 4);
                msgpack_pack_int(pk, 1);
                pk_str(pk, "two");
                msgpack_pack_array(pk, 2);
                msgpack_pack_int(pk, 3);
                pk_str(pk, "four");
                msgpack_pack_map(pk, 3);
                pk_str(pk, "k");
                pk_str(pk, "v");
                msgpack_pack_int(pk, 5);
                pk_str(pk, "left out");
                pk_str(pk, "e");
                msgpack_pack_array(pk, 0);
                break;
        case 6:
                pack_nested(pk, SS_ATTR_DEPTH_MAX + 4, false);
                break;
        case 7:
                pack_nested(pk, SS_ATTR_DEPTH_MAX + 4, true);
                break;
        case 8: /* nil, a float, an ext: no bytes of their own */
                msgpack_pack_array(pk, 3);
                msgpack_pack_nil(pk);
                msgpack_pack_double(pk, 2.5);
                msgpack_pack_ext_with_body(pk, "xy", 2, 1);
                break;
        default:
                pk_str(pk, "0123456789abcdef");
                break;
        }
}

#define N_SIZE_CASES 10

START_TEST(value_size_is_what_the_copy_took)
{
        static const uint32_t max_lens[] = {0, 3, 1024};
        ss_store st;

        ss_store_init(&st);
        for (size_t m = 0; m < sizeof(max_lens) / sizeof(max_lens[0]); m++) {
                mp o;
                msgpack_object v;
                const msgpack_object *src;
                uint64_t before = st.live;

                pack_case(mp_begin(&o), _i);
                src = mp_end(&o);
                ck_assert_int_ge(ss_store_value(&st, &v, src, max_lens[m]), 0);
                ck_assert_msg(ss_value_size(&v) == st.live - before,
                              "case %d max %u: size %llu, the copy took %llu", _i, max_lens[m],
                              (unsigned long long)ss_value_size(&v),
                              (unsigned long long)(st.live - before));
                if (max_lens[m] != 3) /* a cut inside a character: see the next test */
                        ck_assert_uint_le(ss_value_size_min(src, max_lens[m]), ss_value_size(&v));
                mp_done(&o);
        }
        ss_store_free(&st);
}
END_TEST

/* The arena: a first region of the owner's, shared blocks and blocks of their own for large
 * copies; every copy stays intact and arrays stay aligned. */
START_TEST(store_copies_survive_every_block)
{
        static const size_t lens[] = {0, 1, 7, 60, 200, 511, 512, 513, 700, 3000};
        char *region = malloc(96), text[3001];
        msgpack_object_str got[40];
        msgpack_object items[3], arr, v[40];
        uint64_t live = 0;
        ss_store st;

        ss_store_init_in(&st, region, 96);
        for (size_t i = 0; i < 40; i++) {
                size_t n = lens[i % 10];

                memset(text, 'a' + (int)(i % 26), n);
                text[n] = '\0';
                ck_assert_int_eq(ss_store_str(&st, text, n, 0, &got[i]), 0);
                live += n + 1;
                items[0] = items[1] = items[2] = fx_uint(i);
                arr = fx_array(items, 3);
                ck_assert_int_eq(ss_store_value(&st, &v[i], &arr, 0), 0);
                live += ss_value_size(&v[i]);
                ck_assert_uint_eq((uintptr_t)v[i].via.array.ptr % sizeof(void *), 0);
        }
        ck_assert_uint_eq(st.live, live);
        for (size_t i = 0; i < 40; i++) {
                size_t n = lens[i % 10];

                ck_assert_uint_eq(got[i].size, n);
                for (size_t k = 0; k < n; k++)
                        ck_assert_int_eq(got[i].ptr[k], 'a' + (int)(i % 26));
                ck_assert_int_eq(got[i].ptr[n], '\0');
                ck_assert_uint_eq(v[i].via.array.size, 3);
                ck_assert_uint_eq(v[i].via.array.ptr[2].via.u64, i);
        }
        ss_store_free(&st);
        ck_assert_ptr_null(st.arena.blocks);
        free(region);
}
END_TEST

START_TEST(value_size_min_is_a_lower_bound_when_cut)
{
        ss_store st;
        msgpack_object v;
        const msgpack_object *src;
        mp o;

        ss_store_init(&st);
        pk_str(mp_begin(&o), "a\xE2\x82\xAC"); /* a, euro: 4 bytes, cut to 3 keeps only a */
        src = mp_end(&o);
        ck_assert_int_eq(ss_store_value(&st, &v, src, 3), 1);
        ck_assert_uint_eq(ss_value_size(&v), 2);
        /* The copy cuts at a character boundary, up to 3 bytes short of max: the lower bound
         * allows for it. */
        ck_assert_uint_le(ss_value_size_min(src, 3), ss_value_size(&v));
        mp_done(&o);
        ss_store_free(&st);
}
END_TEST

/* msgpack-c unpacks an empty string with no pointer when no string or bin came before it
 * in its buffer (in a frame a bin id or a non-empty key always comes first, so a client
 * cannot send one today). */
START_TEST(empty_string_without_a_pointer)
{
        const msgpack_object empty = {.type = MSGPACK_OBJECT_STR, .via.str = {0, NULL}};
        ss_store st;
        msgpack_object v;

        ss_store_init(&st);
        /* msgpack-c gives some empty strings a NULL pointer: no memcpy() of 0 bytes from it. */
        ck_assert_int_eq(ss_store_value(&st, &v, &empty, 0), 0);
        fx_assert_str(&v, "");
        ck_assert_uint_eq(ss_value_size(&v), 1);
        ss_store_free(&st);
}
END_TEST

/* ---- a map merged at once, as set one pair at a time ------------------------------------- */

/* The values the maps below draw from: scalars, strings short, long, ill-formed and empty
 * (one without a pointer), containers, nil. */
static msgpack_object random_value(uint64_t *seed)
{
        static const char long_value[] = "a value of some length, longer than sixteen and sixty "
                                         "bytes, which max_value_len cuts";
        static msgpack_object items[2], nested_val;
        static msgpack_object_kv nested;

        items[0] = fx_str("x");
        items[1] = fx_uint(7);
        nested_val = fx_str("n");
        nested = fx_kv("inner", nested_val);
        switch (fx_below(seed, 14)) {
        case 0:
                return fx_uint(fx_rnd(seed) >> fx_below(seed, 64));
        case 1:
                return fx_neg(-1 - (int64_t)fx_below(seed, 1000));
        case 2:
                return fx_f64(0.5 * fx_below(seed, 100));
        case 3:
                return fx_bool(fx_below(seed, 2));
        case 4:
                return (msgpack_object){.type = MSGPACK_OBJECT_NIL};
        case 5:
                return fx_str(long_value);
        case 6:
                return fx_str("caf\xc3"); /* cut short */
        case 7:
                return (msgpack_object){.type = MSGPACK_OBJECT_STR, .via.str = {0, NULL}};
        case 8:
                return fx_array(items, 2);
        case 9:
                return fx_map(&nested, 1);
        case 10:
                return (msgpack_object){.type = MSGPACK_OBJECT_FLOAT32, .via.f64 = 1.5};
        default:
                return fx_str(fx_below(seed, 2) ? "v" : "short value");
        }
}

/* One list of merge_matches_set_pair_by_pair(): its pairs, store and counts. */
typedef struct merged {
        ss_attrs a;
        ss_store st;
        ss_limit_hits hits;
        ss_limits lim;
        uint32_t dropped;
} merged;

/* x and y hold the same pairs in the same order, with the same bytes and counts. */
static void merged_same(int run, const merged *x, const merged *y)
{
        ck_assert_uint_eq(x->a.n, y->a.n);
        for (uint32_t i = 0; i < x->a.n; i++) {
                const msgpack_object_kv *kv = &x->a.kv[i];

                ck_assert_msg(fx_obj_same(&kv->key, &y->a.kv[i].key), "run %d, key %u", run, i);
                ck_assert_msg(fx_obj_same(&kv->val, &y->a.kv[i].val), "run %d, value %u", run, i);
                if (kv->val.type == MSGPACK_OBJECT_STR)
                        ck_assert_int_eq(kv->val.via.str.ptr[kv->val.via.str.size], '\0');
                ck_assert_ptr_eq(ss_attrs_get_n(&x->a, kv->key.via.str.ptr, kv->key.via.str.size),
                                 &kv->val);
        }
        ck_assert_uint_eq(x->st.live, y->st.live);
        ck_assert_uint_eq(x->st.dead, y->st.dead);
        ck_assert_uint_eq(x->dropped, y->dropped);
        ck_assert(memcmp(&x->hits, &y->hits, sizeof(x->hits)) == 0);
}

/* ss_attrs_merge() takes the common pair a shorter way: a random run of maps, under random
 * limits, onto a list merged map by map and a list set pair by pair with ss_attrs_set() must
 * leave the same pairs in the same order, the same bytes in each store, and the same counts;
 * and so must ss_attrs_merge_bytes() of the maps' bytes. */
START_TEST(merge_matches_set_pair_by_pair)
{
        static const char *const keys[] = {"k0",
                                           "k1",
                                           "k2",
                                           "k3",
                                           "k4",
                                           "k5",
                                           "k6",
                                           "k7",
                                           "gen_ai.request.model",
                                           "bad\xff",
                                           "bad\xef\xbf\xbd",
                                           "",
                                           "a key longer than the sixteen bytes max_key_len allows",
                                           "k8",
                                           "k9",
                                           "ka",
                                           "kb",
                                           "kc",
                                           "kd",
                                           "ke",
                                           "kf",
                                           "kg"};
        uint64_t seed = 0x5eed5eedull;

        msgpack_zone *zone = msgpack_zone_new(1024);
        ss_buf packed;

        ck_assert_ptr_nonnull(zone);
        ss_buf_init(&packed, 1 << 16);
        for (int run = 0; run < 3000; run++) {
                bool limited = fx_below(&seed, 4) != 0;
                merged m[3] = {0}; /* merged, set pair by pair, merged from bytes */
                int maps = 1 + (int)fx_below(&seed, 3);

                if (limited) {
                        m[0].lim.max_attrs = fx_below(&seed, 3) ? 0 : fx_below(&seed, 20);
                        m[0].lim.max_value_len = fx_below(&seed, 2) ? 0 : 16 + fx_below(&seed, 50);
                        m[0].lim.max_key_len = fx_below(&seed, 2) ? 0 : 16;
                        m[0].lim.max_bytes = fx_below(&seed, 2) ? 0 : 100 + fx_below(&seed, 600);
                }
                for (int j = 0; j < 3; j++) {
                        m[j].lim = m[0].lim;
                        m[j].lim.hits = &m[j].hits;
                        ss_store_init(&m[j].st);
                }
                for (int k = 0; k < maps; k++) {
                        const ss_limits *lim_b = limited ? &m[1].lim : NULL;
                        msgpack_object_kv kv[24];
                        uint32_t n = fx_below(&seed, 24);
                        msgpack_object map;
                        msgpack_packer pk;
                        ss_mp_map bytes;

                        for (uint32_t i = 0; i < n; i++)
                                kv[i] = fx_kv(keys[fx_below(&seed, sizeof(keys) / sizeof(keys[0]))],
                                              random_value(&seed));
                        map = fx_map(kv, n);
                        ck_assert_int_eq(ss_attrs_merge(&m[0].st, &m[0].a, &map.via.map,
                                                        limited ? &m[0].lim : NULL, &m[0].dropped),
                                         0);
                        if (n && m[1].a.cap == 0)
                                ck_assert_int_eq(ss_attrs_reserve(&m[1].a, n), 0);
                        for (uint32_t i = 0; i < n && (!lim_b || !lim_b->max_attrs ||
                                                       i < ss_attrs_merge_max(lim_b->max_attrs));
                             i++)
                                ck_assert_int_eq(ss_attrs_set(&m[1].st, &m[1].a, &kv[i].key.via.str,
                                                              &kv[i].val, lim_b, &m[1].dropped),
                                                 0);
                        if (lim_b && lim_b->max_attrs && n > ss_attrs_merge_max(lim_b->max_attrs)) {
                                m[1].hits.attrs_over_count +=
                                    n - ss_attrs_merge_max(lim_b->max_attrs);
                                m[1].dropped += n - ss_attrs_merge_max(lim_b->max_attrs);
                        }
                        /* The map's pairs as a frame has them, after the map's header. */
                        ss_buf_reset(&packed);
                        msgpack_packer_init(&pk, &packed, ss_buf_msgpack_write);
                        ck_assert_int_eq(msgpack_pack_object(&pk, map), 0);
                        bytes = (ss_mp_map){.p = packed.data + (n < 16 ? 1 : 3),
                                            .len = (uint32_t)packed.len - (n < 16 ? 1 : 3),
                                            .n = n,
                                            .zone = zone};
                        ck_assert_int_eq(ss_attrs_merge_bytes(&m[2].st, &m[2].a, &bytes,
                                                              limited ? &m[2].lim : NULL,
                                                              &m[2].dropped),
                                         0);
                        msgpack_zone_clear(zone);
                }
                merged_same(run, &m[0], &m[1]);
                merged_same(run, &m[0], &m[2]);
                for (int j = 0; j < 3; j++) {
                        ss_attrs_free(&m[j].a);
                        ss_store_free(&m[j].st);
                }
        }
        ss_buf_free(&packed);
        msgpack_zone_free(zone);
}
END_TEST

/* ---- resources -------------------------------------------------------------------------- */

/* HELLO options: service.name, then process.pid as pid_val (nil object: left out). */
static ss_resource *resource_claiming(msgpack_object pid_val, const ss_peer *peer,
                                      const ss_limits *lim)
{
        msgpack_object_kv kv[2] = {fx_kv("service.name", fx_str("svc")),
                                   fx_kv("process.pid", pid_val)};
        msgpack_object m = fx_map(kv, pid_val.type == MSGPACK_OBJECT_NIL ? 1 : 2);
        ss_resource *r = ss_resource_new_for(&m.via.map, peer, lim);

        ck_assert_ptr_nonnull(r);
        return r;
}

START_TEST(resource_has_the_peers_identity)
{
        const ss_peer peer = {.pid = getpid(), .uid = getuid(), .owner = "someone"};
        const msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
        ss_resource *r;

        /* A claimed pid that is not the peer's is kept aside; the real one is process.pid. */
        r = resource_claiming(fx_uint(4242), &peer, NULL);
        ck_assert_uint_eq(ss_attrs_get(&r->attrs, "process.pid")->via.u64, (uint64_t)getpid());
        ck_assert_uint_eq(ss_attrs_get(&r->attrs, "sidespan.claimed_pid")->via.u64, 4242);
        fx_assert_str(ss_attrs_get(&r->attrs, "process.owner"), "someone");
        fx_assert_str(ss_attrs_get(&r->attrs, "service.name"), "svc");
        ss_resource_unref(r);

        /* The truth claimed: nothing aside. */
        r = resource_claiming(fx_uint((uint64_t)getpid()), &peer, NULL);
        ck_assert_uint_eq(ss_attrs_get(&r->attrs, "process.pid")->via.u64, (uint64_t)getpid());
        ck_assert_ptr_null(ss_attrs_get(&r->attrs, "sidespan.claimed_pid"));
        ss_resource_unref(r);

        /* Nothing claimed. */
        r = resource_claiming(nil, &peer, NULL);
        ck_assert_uint_eq(ss_attrs_get(&r->attrs, "process.pid")->via.u64, (uint64_t)getpid());
        ck_assert_ptr_null(ss_attrs_get(&r->attrs, "sidespan.claimed_pid"));
        ss_resource_unref(r);

        /* A claim that is no number is kept aside as it came. */
        r = resource_claiming(fx_str("1"), &peer, NULL);
        ck_assert_uint_eq(ss_attrs_get(&r->attrs, "process.pid")->via.u64, (uint64_t)getpid());
        fx_assert_str(ss_attrs_get(&r->attrs, "sidespan.claimed_pid"), "1");
        ss_resource_unref(r);

        /* An unknown peer: the claim is all there is. */
        r = resource_claiming(fx_uint(4242), &(ss_peer){.pid = 0}, NULL);
        ck_assert_uint_eq(ss_attrs_get(&r->attrs, "process.pid")->via.u64, 4242);
        ck_assert_ptr_null(ss_attrs_get(&r->attrs, "sidespan.claimed_pid"));
        ck_assert_ptr_null(ss_attrs_get(&r->attrs, "process.owner"));
        ss_resource_unref(r);
}
END_TEST

/* Found by fuzz-message: 130 keys before service.name dropped it under max_attrs 128. */
START_TEST(service_name_survives_a_crowded_hello)
{
        ss_limits lim = {.max_attrs = 128, .hits = &hits};
        msgpack_object_kv kv[131];
        char keys[130][8];
        msgpack_object m;
        ss_resource *r;

        for (int i = 0; i < 130; i++) {
                snprintf(keys[i], sizeof(keys[i]), "k%03d", i);
                kv[i] = fx_kv(keys[i], fx_uint((uint64_t)i));
        }
        kv[130] = fx_kv("service.name", fx_str("crowded"));
        m = fx_map(kv, 131);
        r = ss_resource_new_for(&m.via.map, NULL, &lim);
        ck_assert_ptr_nonnull(r);
        fx_assert_str(ss_attrs_get(&r->attrs, "service.name"), "crowded");
        ck_assert_uint_le(r->attrs.n, 128);
        ss_resource_unref(r);
}
END_TEST

START_TEST(resource_attributes_capped)
{
        ss_limits lim = {.max_attrs = 2, .max_key_len = 16, .hits = &hits};
        const ss_peer peer = {.pid = getpid(), .uid = getuid(), .owner = "someone"};
        msgpack_object_kv kv[6] = {
            fx_kv("service.name", fx_str("svc")),
            fx_kv("a", fx_uint(1)),
            fx_kv("b", fx_uint(2)),
            fx_kv("c", fx_uint(3)),
            fx_kv("instance", fx_uint(9)), /* a protocol option: no attribute, no drop */
            fx_kv("a-key-longer-than-sixteen", fx_uint(4)),
        };
        msgpack_object m = fx_map(kv, 6);
        ss_resource *r = ss_resource_new_for(&m.via.map, &peer, &lim);

        ck_assert_ptr_nonnull(r);
        fx_assert_str(ss_attrs_get(&r->attrs, "service.name"), "svc");
        ck_assert_uint_eq(ss_attrs_get(&r->attrs, "a")->via.u64, 1);
        ck_assert_ptr_null(ss_attrs_get(&r->attrs, "b"));
        ck_assert_ptr_null(ss_attrs_get(&r->attrs, "c"));
        ck_assert_uint_eq(r->dropped_attrs, 3);
        ck_assert_uint_eq(hits.attrs_over_count, 2);
        ck_assert_uint_eq(hits.keys_too_long, 1);
        /* What the daemon knows of the peer is no client attribute: never capped. */
        ck_assert_uint_eq(ss_attrs_get(&r->attrs, "process.pid")->via.u64, (uint64_t)getpid());
        fx_assert_str(ss_attrs_get(&r->attrs, "process.owner"), "someone");
        ss_resource_unref(r);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("limits");
        TCase *tc = tcase_create("limits");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, key_past_max_key_len_is_dropped);
        tcase_add_test(tc, names_cut_on_a_character_boundary);
        tcase_add_test(tc, span_bytes_refuse_attributes_and_events);
        tcase_add_test(tc, repaired_value_is_held_to_span_bytes);
        tcase_add_test(tc, replaced_values_are_reclaimed);
        tcase_add_test(tc, key_refused_by_max_attrs_stores_nothing);
        tcase_add_test(tc, huge_map_capped_at_max_attrs);
        tcase_add_test(tc, ill_formed_keys_looked_up_repaired);
        tcase_add_loop_test(tc, value_size_is_what_the_copy_took, 0, N_SIZE_CASES);
        tcase_add_test(tc, value_size_min_is_a_lower_bound_when_cut);
        tcase_add_test(tc, empty_string_without_a_pointer);
        tcase_add_test(tc, resource_has_the_peers_identity);
        tcase_add_test(tc, resource_attributes_capped);
        tcase_add_test(tc, service_name_survives_a_crowded_hello);
        tcase_add_test(tc, utf8_measure_word_scan_matches_bytes);
        tcase_add_test(tc, utf8_ascii_check_sees_every_byte);
        tcase_add_test(tc, store_copies_survive_every_block);
        tcase_add_test(tc, merge_matches_set_pair_by_pair);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
