/* SPDX-License-Identifier: MIT */
/*
 * Client lifecycle: options and environment, open and close, flush with a
 * deadline, statistics, and the process-wide registry of open clients that
 * flushes them at exit() and keeps them working in a fork() child.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "attrs.h"
#include "client-internal.h"
#include "ss-id.h"
#include "ss-kvlist.h"

/* The first published layouts; a caller's struct may be this size or larger. */
#define OPTIONS_V1_SIZE (offsetof(sidespan_options, n_resource_attrs) + sizeof(size_t))
#define STATS_V1_SIZE   (offsetof(sidespan_stats, enabled) + sizeof(bool))

#define BUFFER_MIN    1024u
#define BUFFER_MAX    (1u << 30)
#define MAX_FRAME_MIN 256u
#define SUN_PATH_MAX  sizeof(((struct sockaddr_un *)0)->sun_path)

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static sidespan_client *registry;

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

/* ---- options -------------------------------------------------------------------------- */

void ssc_init_sized(void *dst, size_t size, const void *defaults, size_t ours)
{
        if (!dst || size < sizeof(size_t))
                return;
        memcpy(dst, defaults, size < ours ? size : ours);
        if (size > ours)
                memset((uint8_t *)dst + ours, 0, size - ours);
        memcpy(dst, &size, sizeof(size));
}

void ssc_copy_sized(void *dst, size_t ours, const void *in)
{
        size_t size;

        if (in) {
                memcpy(&size, in, sizeof(size));
                if (size >= sizeof(size_t))
                        memcpy(dst, in, size < ours ? size : ours);
        }
        memcpy(dst, &ours, sizeof(ours));
}

SIDESPAN_EXPORT void sidespan_options_init_sized(sidespan_options *opts, size_t size)
{
        const sidespan_options d = {
            .sample_rate = 1.0,
            .include_content = true,
            .flush_on_exit = true,
            .exit_flush_timeout_ms = 2000,
            .buffer_size = 4u << 20,
            .max_frame = SS_MAX_FRAME_DEFAULT,
        };

        ssc_init_sized(opts, size, &d, sizeof(d));
}

SIDESPAN_EXPORT void sidespan_stats_init_sized(sidespan_stats *st, size_t size)
{
        const sidespan_stats d = {0};

        ssc_init_sized(st, size, &d, sizeof(d));
}

/* Our full-size copy of the caller's options (NULL: defaults). */
static int options_get(const sidespan_options *in, sidespan_options *ret)
{
        sidespan_options_init(ret);
        if (!in)
                return 0;
        if (in->size < OPTIONS_V1_SIZE)
                return -EINVAL;
        ssc_copy_sized(ret, sizeof(*ret), in);
        return 0;
}

static int options_check(const sidespan_options *o)
{
        if (!(o->sample_rate >= 0.0 && o->sample_rate <= 1.0))
                return -EINVAL;
        if (o->buffer_size < BUFFER_MIN || o->buffer_size > BUFFER_MAX)
                return -EINVAL;
        if (o->max_frame < MAX_FRAME_MIN || o->max_frame > SS_MAX_FRAME_LIMIT)
                return -EINVAL;
        if (o->exit_flush_timeout_ms < 0)
                return -EINVAL;
        if (o->service_name && !o->service_name[0])
                return -EINVAL;
        if (o->socket_path && !o->socket_path[0])
                return -EINVAL;
        if (o->socket_path && strlen(o->socket_path) >= SUN_PATH_MAX)
                return -ENAMETOOLONG;
        if (o->n_resource_attrs && !o->resource_attrs)
                return -EINVAL;
        return 0;
}

/* An environment variable, with empty counting as unset. */
static const char *env_get(const char *name)
{
        const char *v = getenv(name);

        return v && v[0] ? v : NULL;
}

/* ---- building a client -------------------------------------------------------------- */

/* Pack the extra resource attributes, leaving out the keys HELLO sets itself. */
static int pack_resource(sidespan_client *c, const sidespan_options *o)
{
        ss_buf_init(&c->resource, c->max_frame / 2);
        for (size_t i = 0; i < o->n_resource_attrs; i++) {
                const sidespan_attr *a = &o->resource_attrs[i];
                bool added;
                int r;

                if (a->key && ss_hello_key(a->key, strlen(a->key), NULL))
                        continue;
                r = ssc_attrs_pack_one(&c->resource, a, false, &added);
                if (r < 0)
                        return r;
                c->n_resource += added;
        }
        return 0;
}

/* service.name: the option, else a service.name resource attribute, else "upsonic". */
static const char *service_name(const sidespan_options *o)
{
        if (o->service_name)
                return o->service_name;
        for (size_t i = 0; i < o->n_resource_attrs; i++) {
                const sidespan_attr *a = &o->resource_attrs[i];

                if (a->key && strcmp(a->key, SS_HELLO_SERVICE_NAME) == 0 &&
                    a->type == SIDESPAN_ATTR_STR && a->value.s && a->value.s[0])
                        return a->value.s;
        }
        return "upsonic";
}

static int socket_paths(sidespan_client *c, const sidespan_options *o)
{
        const char *p = o->socket_path ? o->socket_path : env_get("SIDESPAN_SOCKET");
        const char *xdg = env_get("XDG_RUNTIME_DIR");

        if (p) {
                if (strlen(p) >= SUN_PATH_MAX)
                        return -ENAMETOOLONG;
                c->socket_path = strdup(p);
                return c->socket_path ? 0 : -ENOMEM;
        }
        /* A runtime directory too long for a socket path is no candidate. */
        if (xdg && strlen(xdg) + sizeof("/sidespan.sock") <= SUN_PATH_MAX &&
            asprintf(&c->xdg_socket, "%s/sidespan.sock", xdg) < 0) {
                c->xdg_socket = NULL;
                return -ENOMEM;
        }
        return 0;
}

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
                ss_buf_free(&c->resource);
                pthread_cond_destroy(&c->cond);
                pthread_mutex_destroy(&c->lock);
        }
        free(c->socket_path);
        free(c->xdg_socket);
        free(c->service_name);
        free(c);
}

static void client_defaults(sidespan_client *c, const sidespan_options *o)
{
        c->enabled = true;
        c->include_content = o->include_content;
        c->flush_on_exit = o->flush_on_exit;
        c->exit_timeout_ms = o->exit_flush_timeout_ms;
        c->sample_rate = o->sample_rate;
        c->buffer_size = o->buffer_size;
        c->max_frame = o->max_frame;
        c->fd = c->wake_fd = -1;
        c->backoff_ns = SSC_BACKOFF_MIN_NS;
        ss_buf_init(&c->pending, o->buffer_size + SSC_FLUSH_SLACK);
        ss_buf_init(&c->out, o->buffer_size + SSC_FLUSH_SLACK);
        ss_buf_init(&c->hello, SS_FRAME_HEADER + o->max_frame);
        ss_buf_init(&c->scratch, o->max_frame);
        ss_id_random((uint8_t *)&c->instance, sizeof(c->instance));
        ss_sample_tracestate(c->trace_state, sizeof(c->trace_state), o->sample_rate);
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
        c->service_name = strdup(service_name(o));
        r = c->service_name ? socket_paths(c, o) : -ENOMEM;
        if (r == 0)
                r = pack_resource(c, o);
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

/* ---- registry: exit flush and fork ---------------------------------------------------- */

static void at_exit(void)
{
        pthread_mutex_lock(&registry_lock);
        for (sidespan_client *c = registry; c; c = c->reg_next)
                if (c->flush_on_exit)
                        (void)sidespan_flush(c, c->exit_timeout_ms);
        pthread_mutex_unlock(&registry_lock);
}

/* Hold every client's lock across fork(), so that the child inherits whole buffers. */
static void fork_prepare(void)
{
        pthread_mutex_lock(&registry_lock);
        for (sidespan_client *c = registry; c; c = c->reg_next)
                pthread_mutex_lock(&c->lock);
}

static void fork_parent(void)
{
        for (sidespan_client *c = registry; c; c = c->reg_next)
                pthread_mutex_unlock(&c->lock);
        pthread_mutex_unlock(&registry_lock);
}

static void fork_child(void)
{
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        for (sidespan_client *c = registry; c; c = c->reg_next) {
                ssc_sender_after_fork(c);
                /* The parent's waiters do not exist here. */
                pthread_cond_init(&c->cond, &ca);
                pthread_mutex_unlock(&c->lock);
        }
        pthread_condattr_destroy(&ca);
        pthread_mutex_unlock(&registry_lock);
}

static void registry_init(void)
{
        (void)pthread_atfork(fork_prepare, fork_parent, fork_child);
        (void)atexit(at_exit);
}

static void registry_add(sidespan_client *c)
{
        pthread_once(&registry_once, registry_init);
        pthread_mutex_lock(&registry_lock);
        c->reg_prev = NULL;
        c->reg_next = registry;
        if (registry)
                registry->reg_prev = c;
        registry = c;
        pthread_mutex_unlock(&registry_lock);
}

static void registry_remove(sidespan_client *c)
{
        pthread_mutex_lock(&registry_lock);
        if (c->reg_prev)
                c->reg_prev->reg_next = c->reg_next;
        else
                registry = c->reg_next;
        if (c->reg_next)
                c->reg_next->reg_prev = c->reg_prev;
        pthread_mutex_unlock(&registry_lock);
}

/* ---- open and close ------------------------------------------------------------------- */

SIDESPAN_EXPORT int sidespan_client_open(const sidespan_options *opts, sidespan_client **ret)
{
        sidespan_client *c;
        sidespan_options o;
        int r;

        if (!ret)
                return -EINVAL;
        r = options_get(opts, &o);
        if (r == 0)
                r = options_check(&o);
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
        registry_add(c);
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
                registry_remove(c);
                r = sidespan_flush(c, c->exit_timeout_ms);
                stop_thread(c);
        }
        client_free(c);
        return r;
}

/* ---- environment ---------------------------------------------------------------------- */

static int parse_bool(const char *s, bool *ret)
{
        if (strcasecmp(s, "true") == 0)
                *ret = true;
        else if (strcasecmp(s, "false") == 0)
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

static int parse_rate(const char *s, double *ret)
{
        char *end;
        double d;

        errno = 0;
        d = strtod(s, &end);
        if (errno || end == s || *end || !(d >= 0.0 && d <= 1.0))
                return -EINVAL;
        *ret = d;
        return 0;
}

/* OTEL_RESOURCE_ATTRIBUTES, parsed: strings owned by buf. */
typedef struct env_resource {
        char *buf;
        sidespan_attr *attrs;
        size_t n;
} env_resource;

static int add_resource_item(char *key, char *value, void *ctx)
{
        env_resource *r = ctx;

        r->attrs[r->n++] = (sidespan_attr){.key = key, .type = SIDESPAN_ATTR_STR, .value.s = value};
        return 0;
}

static int parse_resource(const char *s, env_resource *r)
{
        size_t items = 1;

        for (const char *p = s; *p; p++)
                items += *p == ',';
        r->buf = strdup(s);
        r->attrs = calloc(items, sizeof(*r->attrs));
        if (!r->buf || !r->attrs)
                return -ENOMEM;
        return ss_kvlist_parse(r->buf, add_resource_item, r);
}

static bool has_key(const sidespan_attr *a, size_t n, const char *key)
{
        for (size_t i = 0; i < n; i++)
                if (a[i].key && strcmp(a[i].key, key) == 0)
                        return true;
        return false;
}

/* The caller's resource attributes, then the environment's for keys the caller did not
 * set (attributes given in code win, as in the OpenTelemetry SDKs). */
static int merge_resource(sidespan_options *o, env_resource *r, sidespan_attr **ret)
{
        size_t n = o->n_resource_attrs;
        sidespan_attr *m = calloc(n + r->n + 1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        if (n)
                memcpy(m, o->resource_attrs, n * sizeof(*m));
        for (size_t i = 0; i < r->n; i++)
                if (!has_key(o->resource_attrs, o->n_resource_attrs, r->attrs[i].key))
                        m[n++] = r->attrs[i];
        o->resource_attrs = m;
        o->n_resource_attrs = n;
        *ret = m;
        return 0;
}

static int apply_env(sidespan_options *o, env_resource *res, sidespan_attr **ret_merged)
{
        const char *v;
        int r;

        v = env_get("UPSONIC_OTEL_SERVICE_NAME");
        if (!v)
                v = env_get("OTEL_SERVICE_NAME");
        if (v)
                o->service_name = v;
        v = env_get("UPSONIC_OTEL_SAMPLE_RATE");
        if (!v)
                v = env_get("OTEL_TRACES_SAMPLER_ARG");
        if (v && parse_rate(v, &o->sample_rate) < 0)
                return -EINVAL;
        v = env_get("SIDESPAN_SOCKET");
        if (v)
                o->socket_path = v;
        v = env_get("OTEL_RESOURCE_ATTRIBUTES");
        if (!v)
                return 0;
        r = parse_resource(v, res);
        if (r == 0)
                r = merge_resource(o, res, ret_merged);
        return r;
}

SIDESPAN_EXPORT int sidespan_client_open_env_with(const sidespan_options *opts, bool force_enable,
                                                  sidespan_client **ret)
{
        env_resource res = {0};
        sidespan_attr *merged = NULL;
        bool disabled = false;
        sidespan_options o;
        const char *v;
        int r;

        if (!ret)
                return -EINVAL;
        r = options_get(opts, &o);
        if (r < 0)
                return r;
        v = env_get("OTEL_SDK_DISABLED");
        if (v && parse_bool(v, &disabled) < 0)
                return -EINVAL;
        if (disabled || !(force_enable || env_get("UPSONIC_OTEL_ENABLED")))
                return open_disabled(ret);
        r = apply_env(&o, &res, &merged);
        if (r == 0)
                r = sidespan_client_open(&o, ret);
        free(merged);
        free(res.attrs);
        free(res.buf);
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
        size_t size;

        if (!ret || ret->size < STATS_V1_SIZE)
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
        size = ret->size;
        memcpy(ret, &st, size < sizeof(st) ? size : sizeof(st));
        ret->size = size;
        return 0;
}
