/* SPDX-License-Identifier: MIT */
/*
 * Client lifecycle: open and close, flush with a deadline, statistics, and the process-wide
 * registry of open clients that flushes them at exit() and keeps them working in a fork() child.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "client-internal.h"
#include "ss-id.h"
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

static int locks_init(sidespan_client *c)
{
        pthread_condattr_t ca;
        int r;

        r = pthread_mutex_init(&c->lock, NULL);
        if (r)
                return -r;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        r = pthread_cond_init(&c->cond, &ca);
        pthread_condattr_destroy(&ca);
        if (r) {
                pthread_mutex_destroy(&c->lock);
                return -r;
        }
        return 0;
}

static void client_free(sidespan_client *c)
{
        if (!c)
                return;
        if (c->enabled) {
                ssc_sender_free(c);
                ss_buf_free(&c->pending);
                pthread_cond_destroy(&c->cond);
                pthread_mutex_destroy(&c->lock);
        }
        ssc_options_config_free(&c->cfg);
        free(c);
}

static void client_defaults(sidespan_client *c, const sidespan_options *o)
{
        c->enabled = true;
        c->fd = c->wake_fd = -1;
        c->backoff_ns = SSC_BACKOFF_MIN_NS;
        ss_buf_init(&c->pending, o->buffer_size + SSC_FLUSH_SLACK);
        ss_buf_init(&c->out, o->buffer_size + SSC_FLUSH_SLACK);
        ss_buf_init(&c->hello, SS_FRAME_HEADER + o->max_frame);
        ss_buf_init(&c->scratch, o->max_frame);
        ss_id_random((uint8_t *)&c->instance, sizeof(c->instance));
}

static int client_new(const sidespan_options *o, sidespan_client **ret)
{
        sidespan_client *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        client_defaults(c, o);
        r = locks_init(c);
        if (r < 0) {
                c->enabled = false; /* no locks to destroy, and the buffers hold nothing yet */
                goto fail;
        }
        r = ssc_options_resolve(o, &c->cfg);
        /* A HELLO that cannot fit max_frame would be refused on every connection. */
        if (r == 0)
                r = ssc_build_hello(c) == 0 ? 0 : -EINVAL;
        if (r < 0)
                goto fail;
        *ret = c;
        return 0;
fail:
        client_free(c);
        return r;
}

/* ---- the sender thread ---------------------------------------------------------------- */

int ssc_ensure_thread(sidespan_client *c)
{
        uint64_t now = ssc_mono_ns();
        sigset_t all, old;
        int r;

        if (c->thread_running)
                return 0;
        /* A failure (no memory, thread limit) is retried at most once a second. */
        if (c->thread_retry_ns && now < c->thread_retry_ns)
                return -EAGAIN;
        if (c->wake_fd < 0)
                c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->wake_fd < 0) {
                c->thread_retry_ns = now + 1000000000ull;
                return -errno;
        }
        /* The host's signal handlers must never run on our thread. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = pthread_create(&c->thread, NULL, ssc_sender_main, c);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r) {
                c->thread_retry_ns = now + 1000000000ull;
                return -r;
        }
        (void)pthread_setname_np(c->thread, "sidespan-send");
        c->thread_running = true;
        c->thread_retry_ns = 0;
        return 0;
}

static void stop_thread(sidespan_client *c)
{
        bool running;
        pthread_t t;

        pthread_mutex_lock(&c->lock);
        c->stopping = true;
        ssc_kick(c);
        running = c->thread_running;
        t = c->thread;
        c->thread_running = false;
        pthread_mutex_unlock(&c->lock);
        if (running)
                pthread_join(t, NULL);
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
        pthread_mutex_lock(&client_of(e)->lock);
}

static void on_fork_parent(ssc_registry_entry *e)
{
        pthread_mutex_unlock(&client_of(e)->lock);
}

static void on_fork_child(ssc_registry_entry *e)
{
        sidespan_client *c = client_of(e);
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        ssc_sender_after_fork(c);
        /* The parent's waiters do not exist here. */
        pthread_cond_init(&c->cond, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_unlock(&c->lock);
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
        if (r < 0)
                return r;
        pthread_mutex_lock(&c->lock);
        r = ssc_ensure_thread(c);
        pthread_mutex_unlock(&c->lock);
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
        c->fd = c->wake_fd = -1;
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
                stop_thread(c);
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

static struct timespec deadline_after(int timeout_ms)
{
        uint64_t t = ssc_mono_ns() + (uint64_t)timeout_ms * 1000000ull;

        return (struct timespec){.tv_sec = (time_t)(t / 1000000000ull),
                                 .tv_nsec = (long)(t % 1000000000ull)};
}

/* Wait for FLUSHED seq. Under lock. */
static int flush_wait(sidespan_client *c, uint64_t seq, int timeout_ms)
{
        struct timespec deadline = deadline_after(timeout_ms < 0 ? 0 : timeout_ms);
        uint64_t gen = c->connect_fail_gen;

        while (c->flush_acked < seq) {
                /* A connection attempt made since the flush began failed: no daemon. */
                if (!c->connected && c->connect_fail_gen != gen)
                        return -ENOTCONN;
                if (timeout_ms < 0) {
                        pthread_cond_wait(&c->cond, &c->lock);
                } else if (pthread_cond_timedwait(&c->cond, &c->lock, &deadline) == ETIMEDOUT) {
                        if (c->flush_acked >= seq)
                                break;
                        return c->connected ? -ETIMEDOUT : -ENOTCONN;
                }
        }
        return 0;
}

SIDESPAN_EXPORT int sidespan_flush(sidespan_client *c, int timeout_ms)
{
        int r;

        if (!c || !c->enabled)
                return 0;
        pthread_mutex_lock(&c->lock);
        r = ssc_ensure_thread(c);
        if (r == 0) {
                uint64_t seq = ++c->flush_req;

                if (!c->connected)
                        c->force_connect = true;
                ssc_kick(c);
                r = flush_wait(c, seq, timeout_ms);
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

static uint64_t load(atomic_uint_fast64_t *v)
{
        return atomic_load_explicit(v, memory_order_relaxed);
}

SIDESPAN_EXPORT int sidespan_client_stats(const sidespan_client *cc, sidespan_stats *ret)
{
        sidespan_client *c = (sidespan_client *)cc; /* the lock is not part of the state */
        sidespan_stats st = {.size = sizeof(st)};

        if (ssc_options_stats_check(ret) < 0)
                return -EINVAL;
        if (c && c->enabled) {
                st.spans_started = load(&c->n.spans_started);
                st.unsampled = load(&c->n.unsampled);
                st.frames_queued = load(&c->n.frames_queued);
                st.frames_sent = load(&c->n.frames_sent);
                st.bytes_sent = load(&c->n.bytes_sent);
                st.dropped = load(&c->n.dropped);
                st.attrs_dropped = load(&c->n.attrs_dropped);
                st.reconnects = load(&c->n.reconnects);
                st.connect_failures = load(&c->n.connect_failures);
                st.enabled = true;
                pthread_mutex_lock(&c->lock);
                st.connected = c->connected;
                st.buffered_bytes = c->pending.len + c->out.len;
                pthread_mutex_unlock(&c->lock);
        }
        ssc_options_put_sized(ret, &st, sizeof(st));
        return 0;
}
