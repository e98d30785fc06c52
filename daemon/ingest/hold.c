/* SPDX-License-Identifier: MIT */
#include "ingest/hold.h"

#include "base/log.h"

static void hold_end(ss_hold *h)
{
        uint64_t held = uv_now(h->timer.loop) - h->since_ms;

        h->holding = false;
        h->held_ms += held;
        (void)uv_timer_stop(&h->timer);
        h->resume(h->resume_ctx);
        ss_log_ratelimited(SS_LOG_INFO,
                           "exporters have room again: reading clients after %llu ms "
                           "event=input-resumed held_ms=%llu",
                           (unsigned long long)held, (unsigned long long)held);
}

static void on_check(uv_timer_t *t)
{
        ss_hold *h = t->data;

        if (h->pressure(h->pressure_ctx) < SS_HOLD_LOW_PCT)
                hold_end(h);
}

bool ss_hold_check(ss_hold *h, uint64_t id, int pid)
{
        unsigned p;

        if (!h->on)
                return false;
        p = h->pressure(h->pressure_ctx);
        if (p < SS_HOLD_HIGH_PCT)
                return false;
        h->held++;
        if (h->holding)
                return true;
        h->holding = true;
        h->since_ms = uv_now(h->timer.loop);
        (void)uv_timer_start(&h->timer, on_check, SS_HOLD_CHECK_MS, SS_HOLD_CHECK_MS);
        ss_log_ratelimited(SS_LOG_WARNING,
                           "an exporter's memory is %u%% full (high watermark %u%%): clients "
                           "are read again under %u%% event=input-held conn=%llu pid=%d "
                           "pressure=%u high=%u low=%u",
                           p, SS_HOLD_HIGH_PCT, SS_HOLD_LOW_PCT, (unsigned long long)id, pid, p,
                           SS_HOLD_HIGH_PCT, SS_HOLD_LOW_PCT);
        return true;
}

int ss_hold_init(ss_hold *h, uv_loop_t *loop, unsigned (*pressure)(const void *ctx),
                 const void *pressure_ctx, void (*resume)(void *ctx), void *resume_ctx)
{
        int r;

        if (h->on)
                return 0;
        r = uv_timer_init(loop, &h->timer);
        if (r < 0)
                return r;
        h->timer.data = h;
        h->on = true;
        h->pressure = pressure;
        h->pressure_ctx = pressure_ctx;
        h->resume = resume;
        h->resume_ctx = resume_ctx;
        return 0;
}

bool ss_hold_close(ss_hold *h, uv_close_cb cb, void *data)
{
        if (!h->on)
                return false;
        h->on = false;
        h->timer.data = data;
        uv_close((uv_handle_t *)&h->timer, cb);
        return true;
}
