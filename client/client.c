/* SPDX-License-Identifier: MIT */
/*
 * Client lifecycle: open and close, flush with a deadline, statistics. A
 * client is composed of parts (client.h) that their own modules create and
 * free; this file puts them together in order, takes them apart in reverse,
 * and answers the registry at exit() and fork().
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "ss-macro.h"

SIDESPAN_EXPORT const char *sidespan_version(void)
{
        return SIDESPAN_VERSION_STRING;
}

SIDESPAN_EXPORT const char *sidespan_strerror(int err)
{
        const char *s;

        if (err == 0)
                return "Success";
        if (err == INT_MIN)
                return "Unknown error";
        s = strerrordesc_np(err < 0 ? -err : err);
        return s ? s : "Unknown error";
}

/* ---- building a client -------------------------------------------------------------- */

/* Accepts a client that failed half-way through client_new(). */
static void client_free(sidespan_client *c)
{
        if (!c)
                return;
        if (c->enabled) {
                ssc_sender_free(&c->snd);
                ssc_queue_free(&c->q);
        }
        ssc_options_config_free(&c->cfg);
        free(c);
}

static int client_new(const sidespan_options *o, sidespan_client **ret)
{
        sidespan_client *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        r = ssc_options_resolve(o, &c->cfg);
        if (r == 0) {
                ssc_span_tmpl_init(&c->span, &c->cfg);
                r = ssc_queue_init(&c->q, c->cfg.buffer_size, c->cfg.max_frame, &c->n);
        }
        if (r < 0)
                goto fail;
        c->enabled = true; /* the queue exists: client_free() takes the parts apart */
        r = ssc_sender_init(&c->snd, &c->q, &c->cfg, &c->n);
        if (r < 0)
                goto fail;
        *ret = c;
        return 0;
fail:
        client_free(c);
        return r;
}

/* ---- exit flush and fork: what the registry calls ------------------------------------ */

static sidespan_client *client_of(ssc_registry_entry *e)
{
        return ss_container_of(e, sidespan_client, reg);
}

static void on_exit_flush(ssc_registry_entry *e)
{
        sidespan_client *c = client_of(e);

        if (c->cfg.flush_on_exit)
                (void)sidespan_flush(c, c->cfg.exit_timeout_ms);
}

/* Hold the client's lock across fork(), so that the child inherits whole buffers. */
static void on_fork_prepare(ssc_registry_entry *e)
{
        ssc_queue_lock(&client_of(e)->q);
}

static void on_fork_parent(ssc_registry_entry *e)
{
        ssc_queue_unlock(&client_of(e)->q);
}

/* The child has no sender thread: its first span or flush starts one (see queue.h). */
static void on_fork_child(ssc_registry_entry *e)
{
        sidespan_client *c = client_of(e);

        ssc_sender_after_fork(&c->snd);
        ssc_queue_after_fork(&c->q);
        ssc_counters_reset(&c->n);
        ssc_queue_unlock(&c->q);
}

static const ssc_registry_ops registry_ops = {
    .at_exit = on_exit_flush,
    .fork_prepare = on_fork_prepare,
    .fork_parent = on_fork_parent,
    .fork_child = on_fork_child,
};

/* ---- open and close ------------------------------------------------------------------- */

SIDESPAN_EXPORT int sidespan_client_open(const sidespan_options *opts, sidespan_client **ret)
{
        sidespan_client *c = NULL;
        sidespan_options o;
        int r;

        if (!ret)
                return -EINVAL;
        r = ssc_options_get(opts, &o);
        if (r == 0)
                r = ssc_options_check(&o);
        if (r == 0)
                r = client_new(&o, &c);
        if (r == 0)
                r = ssc_queue_start(&c->q);
        if (r < 0) {
                client_free(c);
                return r;
        }
        ssc_registry_add(&c->reg, &registry_ops);
        *ret = c;
        return 0;
}

static int open_disabled(sidespan_client **ret)
{
        sidespan_client *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        *ret = c;
        return SIDESPAN_OPEN_DISABLED;
}

SIDESPAN_EXPORT int sidespan_client_close(sidespan_client **pc)
{
        sidespan_client *c;
        int r = 0;

        if (!pc || !*pc)
                return 0;
        c = *pc;
        *pc = NULL;
        if (c->enabled) {
                ssc_registry_remove(&c->reg);
                r = sidespan_flush(c, c->cfg.exit_timeout_ms);
                ssc_sender_stop(&c->snd);
        }
        client_free(c);
        return r;
}

SIDESPAN_EXPORT int sidespan_client_open_env_with(const sidespan_options *opts, bool force_enable,
                                                  sidespan_client **ret)
{
        ssc_options_env env = {0};
        sidespan_options o;
        bool enabled;
        int r;

        if (!ret)
                return -EINVAL;
        r = ssc_options_get(opts, &o);
        if (r == 0)
                r = ssc_options_env_enabled(force_enable, &enabled);
        if (r < 0)
                return r;
        if (!enabled)
                return open_disabled(ret);
        r = ssc_options_apply_env(&o, &env);
        if (r == 0)
                r = sidespan_client_open(&o, ret);
        ssc_options_env_free(&env);
        return r;
}

SIDESPAN_EXPORT int sidespan_client_open_env(sidespan_client **ret)
{
        return sidespan_client_open_env_with(NULL, false, ret);
}

/* ---- flush and stats ---------------------------------------------------------------- */

SIDESPAN_EXPORT int sidespan_flush(sidespan_client *c, int timeout_ms)
{
        if (!c || !c->enabled)
                return 0;
        return ssc_queue_flush(&c->q, timeout_ms);
}

static void stats_get(sidespan_client *c, sidespan_stats *st)
{
        st->spans_started =
            ssc_count_get(&c->n.spans_started) + ssc_count_get(&c->n.started_queued);
        st->unsampled = ssc_count_get(&c->n.unsampled);
        st->frames_queued = ssc_count_get(&c->n.frames_queued);
        st->frames_sent = ssc_count_get(&c->n.frames_sent);
        st->bytes_sent = ssc_count_get(&c->n.bytes_sent);
        st->dropped = ssc_count_get(&c->n.dropped);
        st->attrs_dropped = ssc_count_get(&c->n.attrs_dropped);
        st->reconnects = ssc_count_get(&c->n.reconnects);
        st->connect_failures = ssc_count_get(&c->n.connect_failures);
        st->enabled = true;
        ssc_queue_lock(&c->q);
        st->connected = ssc_queue_connected(&c->q);
        st->buffered_bytes = ssc_queue_pending(&c->q) + ssc_sender_buffered(&c->snd);
        st->buffer_capacity = ssc_queue_capacity(&c->q) + ssc_sender_capacity(&c->snd);
        ssc_queue_unlock(&c->q);
}

SIDESPAN_EXPORT int sidespan_client_stats(const sidespan_client *cc, sidespan_stats *ret)
{
        sidespan_client *c = (sidespan_client *)cc; /* the lock is not part of the state */
        sidespan_stats st = {.size = sizeof(st)};

        if (ssc_options_stats_check(ret) < 0)
                return -EINVAL;
        if (c && c->enabled)
                stats_get(c, &st);
        ssc_options_put_sized(ret, &st, sizeof(st));
        return 0;
}
