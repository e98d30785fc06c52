/* SPDX-License-Identifier: MIT */
#pragma once

/* The randomized tests' generator, header-only: fixture.h's suites and the common ones. */

#include <stdint.h>

/* xorshift64*: a fixed seed makes every run of a randomized test the same. */
static inline uint64_t fx_rnd(uint64_t *state)
{
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        return *state * 0x2545F4914F6CDD1Dull;
}

/* A number in [0, n). */
static inline uint32_t fx_below(uint64_t *state, uint32_t n)
{
        return (uint32_t)(fx_rnd(state) % n);
}
