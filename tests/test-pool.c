/* SPDX-License-Identifier: MIT */
/*
 * base/pool: size classes, whole blocks usable, reuse within the kept bytes.
 * Under AddressSanitizer the pool keeps nothing (every block is malloc'd and
 * freed), so reuse is checked in the other builds only.
 */
#include "ss-check.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/pool.h"
#include "ss-macro.h"

START_TEST(classes)
{
        ck_assert_uint_eq(ss_pool_class(0), 0);
        ck_assert_uint_eq(ss_pool_class(1), 1);
        ck_assert_uint_eq(ss_pool_class(SS_POOL_STEP), 1);
        ck_assert_uint_eq(ss_pool_class(SS_POOL_STEP + 1), 2);
        ck_assert_uint_eq(ss_pool_class(SS_POOL_MAX_SIZE), SS_POOL_MAX_SIZE / SS_POOL_STEP);
        ck_assert_uint_eq(ss_pool_class(SS_POOL_MAX_SIZE + 1), 0);
        for (size_t n = 1; n <= SS_POOL_MAX_SIZE; n++) {
                unsigned c = ss_pool_class(n);

                ck_assert_uint_ge(ss_pool_class_size(c), n);
                ck_assert_uint_lt(ss_pool_class_size(c) - n, SS_POOL_STEP);
        }
}
END_TEST

/* Every byte of a class's block is usable (AddressSanitizer checks the writes), and a block
 * given back comes out again for its class only. */
START_TEST(blocks_are_whole_and_reused)
{
        for (unsigned c = 1; c <= SS_POOL_MAX_SIZE / SS_POOL_STEP; c++) {
                uint8_t *p = ss_pool_get(c, 1), *q;

                ck_assert_ptr_nonnull(p);
                memset(p, 0xa5, ss_pool_class_size(c));
                ss_pool_put(p, c);
                if (c > 1) {
                        q = ss_pool_get(c - 1, 1);
                        ck_assert_ptr_ne(q, p);
                        ss_pool_put(q, c - 1);
                }
                q = ss_pool_get(c, 1);
                if (SS_POOL_KEEPS)
                        ck_assert_ptr_eq(q, p);
                memset(q, 0x5a, ss_pool_class_size(c));
                ss_pool_put(q, c);
        }
        /* Too large for a class: malloc'd and freed. */
        uint8_t *big = ss_pool_get(0, SS_POOL_MAX_SIZE * 4);

        ck_assert_ptr_nonnull(big);
        memset(big, 1, SS_POOL_MAX_SIZE * 4);
        ss_pool_put(big, 0);
        ss_pool_put(NULL, 3);
}
END_TEST

/* Past SS_POOL_KEEP_BYTES blocks are freed, not kept; what is kept comes out again. Each
 * check runs in a process of its own (Check forks them): the pool starts empty. */
START_TEST(keeps_a_bounded_number)
{
        enum { C = SS_POOL_MAX_SIZE / SS_POOL_STEP };
        size_t n = SS_POOL_KEEP_BYTES / ss_pool_class_size(C) + 50;
        void **p = calloc(n, sizeof(*p));

        ck_assert_ptr_nonnull(p);
        for (size_t i = 0; i < n; i++)
                ck_assert_ptr_nonnull(p[i] = ss_pool_get(C, 1));
        ck_assert_uint_eq(ss_pool_kept_bytes(), 0);
        for (size_t i = 0; i < n; i++) {
                ss_pool_put(p[i], C);
                ck_assert_uint_le(ss_pool_kept_bytes(), SS_POOL_KEEP_BYTES);
        }
        ck_assert_uint_eq(ss_pool_kept_bytes(), SS_POOL_KEEPS ? SS_POOL_KEEP_BYTES : 0);
        for (size_t i = 0; i < n; i++)
                ck_assert_ptr_nonnull(p[i] = ss_pool_get(C, 1));
        ck_assert_uint_eq(ss_pool_kept_bytes(), 0);
        for (size_t i = 0; i < n; i++)
                ss_pool_put(p[i], C);
        free(p);
}
END_TEST

/* Released, every class's kept blocks are freed (valgrind's and LeakSanitizer's leak checks
 * would see one left) and the pool serves from malloc again. */
START_TEST(releases_what_it_keeps)
{
        void *p[SS_POOL_MAX_SIZE / SS_POOL_STEP + 1];

        for (unsigned c = 1; c < SS_ELEMENTSOF(p); c++)
                ck_assert_ptr_nonnull(p[c] = ss_pool_get(c, 1));
        for (unsigned c = 1; c < SS_ELEMENTSOF(p); c++)
                ss_pool_put(p[c], c);
        ck_assert_uint_eq(ss_pool_kept_bytes(), SS_POOL_KEEPS ? SS_POOL_STEP * SS_ELEMENTSOF(p) *
                                                                    (SS_ELEMENTSOF(p) - 1) / 2
                                                              : 0);
        ss_pool_release();
        ck_assert_uint_eq(ss_pool_kept_bytes(), 0);
        ss_pool_release(); /* again: nothing to do */
        ck_assert_uint_eq(ss_pool_kept_bytes(), 0);
        for (unsigned c = 1; c < SS_ELEMENTSOF(p); c++) {
                ck_assert_ptr_nonnull(p[c] = ss_pool_get(c, 1));
                memset(p[c], 0xa5, ss_pool_class_size(c));
                ck_assert_uint_eq(ss_pool_kept_bytes(), 0);
        }
        for (unsigned c = 1; c < SS_ELEMENTSOF(p); c++)
                ss_pool_put(p[c], c);
        ss_pool_release();
}
END_TEST

int main(void)
{
        Suite *s = suite_create("pool");
        TCase *tc = tcase_create("pool");

        tcase_add_test(tc, classes);
        tcase_add_test(tc, blocks_are_whole_and_reused);
        tcase_add_test(tc, keeps_a_bounded_number);
        tcase_add_test(tc, releases_what_it_keeps);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
