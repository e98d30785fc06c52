/* SPDX-License-Identifier: MIT */
#include "base/notify-timers.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/notify.h"

struct ss_notify_timers {
        uv_timer_t status;
        uv_timer_t watchdog; /* .loop stays NULL without a watchdog */
        unsigned open;       /* handles initialised and not yet closed */
        ss_counters_fn counters;
        const void *ctx;
        char last[160]; /* the STATUS= sent last: an unchanged one is not sent again */
};

/* One line for `systemctl status`: who is connected, what is held, what went out or was lost. */
static void send_status(ss_notify_timers *t)
{
        char line[sizeof(t->last)];
        ss_counters c;

        ss_counters_init(&c);
        t->counters(t->ctx, &c);
        if (c.err == 0) {
                snprintf(line, sizeof(line),
                         "STATUS=%" PRIu64 " clients, %" PRIu64 " open spans, %" PRIu64
                         " spans exported, %" PRIu64 " dropped",
                         ss_counters_get(&c, "connections_active"),
                         ss_counters_get(&c, "spans_open"),
                         ss_counters_sum(&c, "exporter.", ".spans_exported"),
                         ss_counters_sum(&c, "exporter.", ".spans_dropped"));
                if (strcmp(line, t->last) != 0) {
                        ss_notify(line);
                        memcpy(t->last, line, sizeof(line));
                }
        }
        ss_counters_free(&c);
}

static void on_status(uv_timer_t *h)
{
        send_status(h->data);
}

static void on_watchdog(uv_timer_t *h)
{
        ss_notify("WATCHDOG=1");
}

/*
 * The ping interval systemd asks for (sd_watchdog_enabled(3)): half of
 * $WATCHDOG_USEC in ms, 0 when there is no watchdog or it watches another
 * process (a parent's, inherited), -EINVAL when the variables are garbled.
 */
static int64_t watchdog_interval_ms(void)
{
        unsigned long long usec, pid;
        int r = ss_notify_env_number("WATCHDOG_USEC", &usec);
        int q = ss_notify_env_number("WATCHDOG_PID", &pid);

        if (r < 0 || q < 0) {
                ss_log(SS_LOG_ERR, "watchdog: %s=%s is not a number event=config-invalid key=%s",
                       r < 0 ? "WATCHDOG_USEC" : "WATCHDOG_PID",
                       getenv(r < 0 ? "WATCHDOG_USEC" : "WATCHDOG_PID"),
                       r < 0 ? "WATCHDOG_USEC" : "WATCHDOG_PID");
                return -EINVAL;
        }
        if (r == 0 || usec == 0 || (q > 0 && pid != (unsigned long long)getpid()))
                return 0;
        return usec / 2000 > 0 ? (int64_t)(usec / 2000) : 1;
}

/* An unref'd repeating timer: it runs while the loop does and never holds it up. */
static int timer_start(ss_notify_timers *t, uv_loop_t *loop, uv_timer_t *h, uv_timer_cb cb,
                       uint64_t every)
{
        int r = uv_timer_init(loop, h);

        if (r < 0)
                return r;
        t->open++;
        h->data = t;
        uv_unref((uv_handle_t *)h);
        return uv_timer_start(h, cb, every, every);
}

int ss_notify_timers_start(uv_loop_t *loop, ss_counters_fn counters, const void *ctx,
                           ss_notify_timers **ret)
{
        int64_t ping_ms;
        ss_notify_timers *t;
        int r;

        *ret = NULL;
        if (!getenv("NOTIFY_SOCKET"))
                return 0;
        ping_ms = watchdog_interval_ms();
        if (ping_ms < 0)
                return (int)ping_ms;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->counters = counters;
        t->ctx = ctx;
        send_status(t);
        r = timer_start(t, loop, &t->status, on_status, SS_NOTIFY_STATUS_MS);
        if (r == 0 && ping_ms > 0)
                r = timer_start(t, loop, &t->watchdog, on_watchdog, (uint64_t)ping_ms);
        if (r < 0) {
                ss_log(SS_LOG_ERR,
                       "cannot start the systemd status and watchdog timers "
                       "event=timer-failed what=watchdog error=\"%s\"",
                       uv_strerror(r));
                ss_notify_timers_close(t);
                return r;
        }
        if (ping_ms > 0) {
                ss_notify("WATCHDOG=1");
                ss_log(SS_LOG_INFO,
                       "watchdog: pinging systemd every %" PRId64 " ms event=watchdog "
                       "interval_ms=%" PRId64,
                       ping_ms, ping_ms);
        }
        *ret = t;
        return 0;
}

static void on_closed(uv_handle_t *h)
{
        ss_notify_timers *t = h->data;

        if (--t->open == 0)
                free(t);
}

void ss_notify_timers_close(ss_notify_timers *t)
{
        if (!t)
                return;
        if (t->open == 0) {
                free(t);
                return;
        }
        /* Both handles are counted before either closes: a callback cannot free t early. */
        if (t->status.loop)
                uv_close((uv_handle_t *)&t->status, on_closed);
        if (t->watchdog.loop)
                uv_close((uv_handle_t *)&t->watchdog, on_closed);
}
