/* SPDX-License-Identifier: MIT */
#include "ss-check.h"
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/hashmap.h"
#include "ss-id.h"

/* Every byte and the length count: the prefixes of a text, and each one-bit change of it,
 * hash apart; the same bytes hash alike. */
START_TEST(hash_bytes_sees_every_byte)
{
        char text[41] = "gen_ai.usage.output_tokens.and.the.rest";
        uint64_t h[41];

        for (size_t n = 0; n <= 40; n++) {
                h[n] = ss_hash_bytes(text, n);
                for (size_t k = 0; k < n; k++)
                        ck_assert_uint_ne(h[k], h[n]);
                ck_assert_uint_eq(ss_hash_bytes(text, n), h[n]);
                for (size_t i = 0; i < n; i++) {
                        text[i] ^= 0x04;
                        ck_assert_uint_ne(ss_hash_bytes(text, n), h[n]);
                        text[i] ^= 0x04;
                }
        }
}
END_TEST

START_TEST(put_get_remove_many)
{
        enum { N = 20000 };
        static uint8_t keys[N][16];
        ss_map m;

        ss_map_init(&m, 16);
        ck_assert_ptr_null(ss_map_get(&m, keys[0]));
        ck_assert_ptr_null(ss_map_remove(&m, keys[0]));
        for (uintptr_t i = 0; i < N; i++) {
                ss_id_random(keys[i], 16);
                ck_assert_int_eq(ss_map_put(&m, keys[i], (void *)(i + 1)), 0);
        }
        ck_assert_uint_eq(m.n, N);
        for (uintptr_t i = 0; i < N; i++)
                ck_assert_ptr_eq(ss_map_get(&m, keys[i]), (void *)(i + 1));
        /* Remove every other key: backward shift must keep the rest reachable. */
        for (uintptr_t i = 0; i < N; i += 2)
                ck_assert_ptr_eq(ss_map_remove(&m, keys[i]), (void *)(i + 1));
        ck_assert_uint_eq(m.n, N / 2);
        for (uintptr_t i = 0; i < N; i++)
                ck_assert_ptr_eq(ss_map_get(&m, keys[i]), i % 2 ? (void *)(i + 1) : NULL);
        ss_map_free(&m);
}
END_TEST

START_TEST(replace_and_short_keys)
{
        uint8_t k[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        int a, b;
        ss_map m;

        ss_map_init(&m, 8);
        ck_assert_int_eq(ss_map_put(&m, k, &a), 0);
        ck_assert_int_eq(ss_map_put(&m, k, &b), 0);
        ck_assert_uint_eq(m.n, 1);
        ck_assert_ptr_eq(ss_map_get(&m, k), &b);
        k[7] = 9;
        ck_assert_ptr_null(ss_map_get(&m, k));
        ss_map_free(&m);
}
END_TEST

/* ss_map_add() leaves a key that is there; keys of a length other than 8 or 16 differ in
 * their last byte too. */
START_TEST(add_and_odd_lengths)
{
        uint8_t k[5] = {1, 2, 3, 4, 5}, k2[5] = {1, 2, 3, 4, 6};
        int a, b;
        ss_map m;

        ss_map_init(&m, 5);
        ck_assert_int_eq(ss_map_add(&m, k, &a), 0);
        ck_assert_int_eq(ss_map_add(&m, k, &b), -EEXIST);
        ck_assert_ptr_eq(ss_map_get(&m, k), &a);
        ck_assert_ptr_null(ss_map_get(&m, k2));
        ck_assert_int_eq(ss_map_add(&m, k2, &b), 0);
        ck_assert_uint_eq(m.n, 2);
        ck_assert_ptr_eq(ss_map_remove(&m, k), &a);
        ck_assert_ptr_eq(ss_map_get(&m, k2), &b);
        ss_map_free(&m);
}
END_TEST

/* Keys that share their home slot (same low bits after hashing are unlikely to be found
 * by hand, so collide by filling a small table densely) still come back after removals. */
START_TEST(dense_churn)
{
        uint8_t keys[64][8];
        ss_map m;

        ss_map_init(&m, 8);
        for (int round = 0; round < 50; round++) {
                for (uintptr_t i = 0; i < 12; i++) {
                        ss_id_random(keys[i], 8);
                        ck_assert_int_eq(ss_map_put(&m, keys[i], (void *)(i + 1)), 0);
                }
                for (uintptr_t i = 0; i < 12; i += 3)
                        ck_assert_ptr_eq(ss_map_remove(&m, keys[i]), (void *)(i + 1));
                for (uintptr_t i = 0; i < 12; i++)
                        ck_assert_ptr_eq(ss_map_get(&m, keys[i]), i % 3 ? (void *)(i + 1) : NULL);
                for (uintptr_t i = 1; i < 12; i++)
                        if (i % 3)
                                ss_map_remove(&m, keys[i]);
                ck_assert_uint_eq(m.n, 0);
        }
        ss_map_free(&m);
}
END_TEST

/* A table emptied shrinks, down to SS_MAP_SHRINK_MIN slots and no further, and every member
 * left is still found through each halving; it grows again as before. */
START_TEST(shrinks_when_emptied)
{
        enum { N = 100000, KEEP = 100 };
        static uint8_t keys[N][16];
        size_t peak;
        ss_map m;

        ss_map_init(&m, 16);
        for (uintptr_t i = 0; i < N; i++) {
                ss_id_random(keys[i], 16);
                ck_assert_int_eq(ss_map_put(&m, keys[i], (void *)(i + 1)), 0);
        }
        peak = m.cap;
        ck_assert_uint_ge(peak, N * 4 / 3);
        for (uintptr_t i = KEEP; i < N; i++) {
                ck_assert_ptr_eq(ss_map_remove(&m, keys[i]), (void *)(i + 1));
                /* Never fuller than when it grows, never emptier than an eighth above the
                 * floor. */
                ck_assert_uint_le(m.n * 4, m.cap * 3);
                ck_assert(m.cap <= SS_MAP_SHRINK_MIN || m.n * 8 >= m.cap);
                if (i % 9973 == 0)
                        for (uintptr_t k = 0; k < KEEP; k++)
                                ck_assert_ptr_eq(ss_map_get(&m, keys[k]), (void *)(k + 1));
        }
        ck_assert_uint_eq(m.n, KEEP);
        ck_assert_uint_eq(m.cap, SS_MAP_SHRINK_MIN);
        for (uintptr_t k = 0; k < KEEP; k++)
                ck_assert_ptr_eq(ss_map_get(&m, keys[k]), (void *)(k + 1));
        for (uintptr_t i = KEEP; i < N; i++)
                ck_assert_ptr_null(ss_map_get(&m, keys[i]));
        for (uintptr_t i = KEEP; i < N; i++)
                ck_assert_int_eq(ss_map_add(&m, keys[i], (void *)(i + 1)), 0);
        ck_assert_uint_eq(m.cap, peak);
        for (uintptr_t i = 0; i < N; i++)
                ck_assert_ptr_eq(ss_map_get(&m, keys[i]), (void *)(i + 1));
        ss_map_free(&m);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("hashmap");
        TCase *tc = tcase_create("map");

        tcase_add_test(tc, put_get_remove_many);
        tcase_add_test(tc, hash_bytes_sees_every_byte);
        tcase_add_test(tc, replace_and_short_keys);
        tcase_add_test(tc, add_and_odd_lengths);
        tcase_add_test(tc, dense_churn);
        tcase_add_test(tc, shrinks_when_emptied);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
