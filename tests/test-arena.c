/* SPDX-License-Identifier: MIT */
/*
 * base/arena: a zeroed arena is empty, allocations keep their bytes across
 * shared blocks and blocks of their own, alignment holds, the owner's first
 * region is filled first, and ss_arena_array() refuses an overflow.
 */
#include "ss-check.h"
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"

START_TEST(allocations_keep_their_bytes_and_alignment)
{
        static const size_t sizes[] = {
            1, 3, 16, 100, SS_ARENA_BLOCK / 2, SS_ARENA_BLOCK / 2 + 1, SS_ARENA_BLOCK, 5000, 7};
        enum { N = 90 };
        unsigned char *p[N];
        ss_arena a = {0};

        for (size_t i = 0; i < N; i++) {
                size_t n = sizes[i % 9];

                p[i] = i % 2 ? ss_arena_alloc_aligned(&a, n, 1) : ss_arena_alloc(&a, n);
                ck_assert_ptr_nonnull(p[i]);
                if (i % 2 == 0)
                        ck_assert_uint_eq((uintptr_t)p[i] % alignof(max_align_t), 0);
                memset(p[i], (int)i, n);
        }
        for (size_t i = 0; i < N; i++)
                for (size_t k = 0; k < sizes[i % 9]; k++)
                        ck_assert_uint_eq(p[i][k], (unsigned char)i);
        ss_arena_free(&a);
        ck_assert_ptr_null(a.blocks);
        ck_assert_uint_eq(a.avail, 0);
        /* Usable again once freed. */
        ck_assert_ptr_nonnull(ss_arena_alloc(&a, 10));
        ss_arena_free(&a);
}
END_TEST

START_TEST(first_region_then_blocks)
{
        alignas(max_align_t) char region[64];
        ss_arena a;
        char *x, *y, *z;

        ss_arena_init_in(&a, region, sizeof(region));
        x = ss_arena_alloc_aligned(&a, 40, 1);
        ck_assert_ptr_eq(x, region);
        ck_assert_ptr_null(a.blocks); /* nothing taken while the region has room */
        y = ss_arena_alloc(&a, 40);   /* 24 bytes left: a shared block */
        ck_assert(y < region || y >= region + sizeof(region));
        ck_assert_ptr_nonnull(a.blocks);
        z = ss_arena_alloc(&a, SS_ARENA_BLOCK); /* a block of its own; the shared one stays */
        ck_assert_ptr_nonnull(z);
        ck_assert_ptr_eq(ss_arena_alloc_aligned(&a, 1, 1), y + 40);
        ss_arena_free(&a);
}
END_TEST

START_TEST(array_overflow_refused)
{
        ss_arena a = {0};

        ck_assert_ptr_null(ss_arena_array(&a, SIZE_MAX / 2, 4));
        ck_assert_ptr_nonnull(ss_arena_array(&a, 10, 8));
        ck_assert_ptr_null(ss_arena_alloc(&a, SIZE_MAX - 8));
        ss_arena_free(&a);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("arena");
        TCase *tc = tcase_create("arena");

        tcase_add_test(tc, allocations_keep_their_bytes_and_alignment);
        tcase_add_test(tc, first_region_then_blocks);
        tcase_add_test(tc, array_overflow_refused);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
