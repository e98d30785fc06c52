/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The periodic half of systemd's notification protocol (base/notify.h):
 * STATUS= with the daemon's main counters every few seconds, for
 * `systemctl status`, and WATCHDOG=1 at half of $WATCHDOG_USEC when systemd
 * asks for it. Both are timers on the loop, so a loop that stalls stops
 * pinging and systemd restarts the daemon; neither keeps the loop alive.
 * Loop thread only; nothing blocks.
 */

#include <uv.h>

#include "base/counters.h"

/* How often STATUS= is refreshed (only sent when its text changed). */
#define SS_NOTIFY_STATUS_MS 3000u

typedef struct ss_notify_timers ss_notify_timers;

/*
 * Send a first STATUS= from counters(ctx) (ctx borrowed: it must outlive
 * the timers) and start the timers. *ret is NULL and nothing runs when
 * $NOTIFY_SOCKET is unset. 0, -EINVAL (logged) for a bad $WATCHDOG_USEC,
 * or a libuv error.
 */
int ss_notify_timers_start(uv_loop_t *loop, ss_counters_fn counters, const void *ctx,
                           ss_notify_timers **ret);

/* Stop both timers; freed once their handles have closed. Accepts NULL. */
void ss_notify_timers_close(ss_notify_timers *t);
