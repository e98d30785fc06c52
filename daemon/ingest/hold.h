/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Backpressure: while the fullest exporter's memory is at SS_HOLD_HIGH_PCT of
 * its bound, connections that read are held (not read again); once it is
 * under SS_HOLD_LOW_PCT, checked every SS_HOLD_CHECK_MS, they are resumed
 * together. The listener owns one and asks it after each read. Loop thread.
 */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define SS_HOLD_HIGH_PCT 50u
#define SS_HOLD_LOW_PCT  25u
#define SS_HOLD_CHECK_MS 10u

typedef struct ss_hold {
        uv_timer_t timer; /* while holding: when to look again */
        bool on;          /* the timer exists: backpressure is set up */
        bool holding;
        uint64_t since_ms;
        unsigned (*pressure)(const void *ctx); /* downstream's fullness in percent */
        const void *pressure_ctx;
        void (*resume)(void *ctx); /* read every held connection again */
        void *resume_ctx;
        uint64_t held;    /* connections held, counted at each hold */
        uint64_t held_ms; /* time reading was held, in all */
} ss_hold;

/* Set h up on loop with its pressure reading and the resume of every held connection.
 * 0, or a libuv error (then no backpressure: memory stays bounded all the same). */
int ss_hold_init(ss_hold *h, uv_loop_t *loop, unsigned (*pressure)(const void *ctx),
                 const void *pressure_ctx, void (*resume)(void *ctx), void *resume_ctx);

/* After a read of connection id (of process pid): whether to read it no more for now. */
bool ss_hold_check(ss_hold *h, uint64_t id, int pid);

/* Close the timer (when set up: returns true, and cb is called with the handle's data
 * set to data). */
bool ss_hold_close(ss_hold *h, uv_close_cb cb, void *data);
