/* SPDX-License-Identifier: MIT */
/*
 * Sessions (one per client instance of a peer process) and the peer
 * processes themselves. A session outlives its connections by a grace
 * period, so a reconnecting client finishes its spans; then, or at once when
 * the process is seen to exit (its pidfd turns readable), its open spans end
 * with status ERROR and sidespan.orphaned=true.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/user.h"
#include "ss-id.h"
#include "trace/internal.h"

/* ---- processes -------------------------------------------------------------------------- */

static void proc_key(uint8_t *key, pid_t pid, uid_t uid)
{
        uint32_t p = (uint32_t)pid, u = (uint32_t)uid;

        memcpy(key, &p, 4);
        memcpy(key + 4, &u, 4);
}

static void on_proc_closed(uv_handle_t *h)
{
        free(h);
}

static void proc_free(ss_proc *p)
{
        ss_map_remove(&p->a->procs, p->key);
        if (p->polling) {
                uv_close((uv_handle_t *)&p->poll, on_proc_closed); /* closes no fd of ours */
                close(p->pidfd);
                return;
        }
        if (p->pidfd >= 0)
                close(p->pidfd);
        free(p);
}

static void orphan_gone(ss_assembler *a, ss_proc *p);

static void on_proc_exit(uv_poll_t *h, int status, int events)
{
        ss_proc *p = (ss_proc *)h;

        p->gone = true;
        uv_poll_stop(h);
        orphan_gone(p->a, p);
}

/* Watch the process for its exit; without a pidfd it is only seen gone by its grace period. */
static void proc_watch(ss_proc *p)
{
        int fd = p->pid > 0 ? (int)syscall(SYS_pidfd_open, p->pid, 0) : -1;
        int r;

        if (fd < 0)
                return;
        if (uv_poll_init(p->a->loop, &p->poll, fd) < 0) {
                close(fd);
                return;
        }
        p->pidfd = fd;
        p->polling = true; /* the handle exists: proc_free() closes it */
        r = uv_poll_start(&p->poll, UV_READABLE, on_proc_exit);
        if (r < 0)
                ss_log_ratelimited(
                    SS_LOG_WARNING,
                    "cannot watch process %d for its exit event=proc-watch-failed pid=%d "
                    "error=\"%s\"",
                    (int)p->pid, (int)p->pid, uv_strerror(r));
}

static ss_proc *proc_get(ss_assembler *a, pid_t pid, uid_t uid)
{
        uint8_t key[SS_PROC_KEY_LEN];
        ss_proc *p;

        proc_key(key, pid, uid);
        p = ss_map_get(&a->procs, key);
        if (p)
                return p;
        p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        *p = (ss_proc){.a = a, .pid = pid, .uid = uid, .pidfd = -1};
        memcpy(p->key, key, sizeof(key));
        if (ss_map_put(&a->procs, key, p) < 0) {
                free(p);
                return NULL;
        }
        proc_watch(p);
        return p;
}

/* ---- sessions --------------------------------------------------------------------------- */

/* ss_map_foreach callback: an open span saved for the next start, let go here. */
static void forget_span(void *value, void *ctx)
{
        (void)ctx;
        ss_span_unref(value);
}

static void session_free(ss_session *s)
{
        ss_proc *p = s->proc;

        ss_map_remove(&s->a->sessions, s->key);
        /* Spans still open (a shutdown that keeps them in the state file) are let go, after
         * the roll-ups of their runs, which hang off them. */
        ss_assembler_drop_runs(s);
        ss_map_foreach(&s->open, forget_span, NULL);
        s->a->open_spans -= s->open.n;
        ss_map_free(&s->open);
        ss_resource_unref(s->resource);
        free(s);
        if (p && --p->sessions == 0)
                proc_free(p);
}

void ss_session_span_opened(ss_session *s)
{
        s->a->open_spans++;
        s->proc->open_spans++;
        s->spans_started++;
}

void ss_session_span_closed(ss_session *s)
{
        s->a->open_spans--;
        s->proc->open_spans--;
        s->spans_finished++;
}

/* ss_map_foreach callback: append value at *ctx, a cursor into a void * array. */
static void collect(void *value, void *ctx)
{
        void ***cursor = ctx;

        *(*cursor)++ = value;
}

/* Every value of m, in a malloc'd array of m->n; NULL when m is empty or on out-of-memory. */
static void **values(const ss_map *m)
{
        void **all = m->n ? malloc(m->n * sizeof(*all)) : NULL, **cursor = all;

        if (all)
                ss_map_foreach(m, collect, &cursor);
        return all;
}

/* End every open span of s with status ERROR, marked orphaned, at the time its client
 * left (now for a session still attached: the daemon is going away). */
static void session_orphan(ss_assembler *a, ss_session *s, const char *reason)
{
        uint64_t now = ss_now_ns(), end = s->attached || !s->detached_ns ? now : s->detached_ns;
        size_t n = s->open.n;
        void **spans;

        if (n == 0)
                return;
        spans = values(&s->open);
        if (!spans) {
                a->stats.no_memory++;
                return;
        }
        ss_log_ratelimited(SS_LOG_NOTICE,
                           "ending %zu open span(s) of pid %d as orphaned event=spans-orphaned "
                           "pid=%d spans=%zu reason=\"%s\"",
                           n, (int)s->proc->pid, (int)s->proc->pid, n, reason);
        for (size_t i = 0; i < n; i++) {
                ss_span *sp = spans[i];

                a->stats.spans_orphaned++;
                if (!sp->discard && ss_span_set_bool(sp, "sidespan.orphaned", true) < 0)
                        a->stats.no_memory++;
                ss_span_end(sp, end, SS_STATUS_ERROR, reason, (uint32_t)strlen(reason));
        }
        /* Roll-ups: every child while its ancestors can still be found, then the runs. */
        for (size_t i = 0; i < n; i++)
                if (!((ss_span *)spans[i])->rollup)
                        ss_assembler_finishing(a, s, spans[i]);
        for (size_t i = 0; i < n; i++)
                if (((ss_span *)spans[i])->rollup)
                        ss_assembler_finishing(a, s, spans[i]);
        for (size_t i = 0; i < n; i++) {
                ss_span *sp = spans[i];
                ss_trace *t = ss_tt_get(&a->tt, sp->trace_id, false);

                ss_map_remove(&s->open, sp->span_id);
                ss_session_span_closed(s);
                ss_tt_finished(&a->tt, t, s, true, sp, now);
        }
        free(spans);
}

/*
 * The open spans of s, detached, end as orphans and s is freed, when the stages after the
 * assembler have room for them: its process exited, or its grace period ran out. false, with
 * nothing done, when there is no room.
 */
static bool session_end(ss_session *s)
{
        ss_assembler *a = s->a;
        bool gone = s->proc->gone; /* the last session frees its proc */

        if (s->open.n > 0 && !ss_assembler_room(a))
                return false;
        a->stats.sessions_gone += gone && s->open.n > 0;
        session_orphan(a, s,
                       gone ? "client process exited" : "client disconnected and did not return");
        session_free(s);
        return true;
}

/* The process of s, detached, exited: its spans end now, or with no room the sweep ends them
 * once there is. */
static void session_gone(ss_session *s)
{
        if (!session_end(s))
                s->orphan_at_ns = 0;
}

/* The process of p exited: its detached sessions need not wait for it. */
static void orphan_gone(ss_assembler *a, ss_proc *p)
{
        void **all = values(&a->sessions);
        size_t n = a->sessions.n;

        for (size_t i = 0; all && i < n; i++) {
                ss_session *s = all[i];

                if (s->proc != p || s->attached > 0)
                        continue;
                /* The last session may free p: p is not touched after this loop. */
                session_gone(s);
        }
        free(all);
}

static uint64_t option_u64(const msgpack_object_map *o, const char *key)
{
        const msgpack_object *v = ss_wire_map_get(o, key);

        return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
}

/* HELLO's sample_rate in [0, 1]; 1 when absent or not a number. */
static double option_rate(const msgpack_object_map *o)
{
        const msgpack_object *v = ss_wire_map_get(o, SS_HELLO_SAMPLE_RATE);
        double r;

        if (!v)
                return 1.0;
        if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)
                r = v->via.f64;
        else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                r = (double)v->via.u64;
        else
                return 1.0;
        return r >= 0.0 && r <= 1.0 ? r : r > 1.0 ? 1.0 : r < 0.0 ? 0.0 : 1.0;
}

static bool option_bool(const msgpack_object_map *o, const char *key, bool dflt)
{
        const msgpack_object *v = ss_wire_map_get(o, key);

        return v && v->type == MSGPACK_OBJECT_BOOLEAN ? v->via.boolean : dflt;
}

static ss_session *session_new(ss_assembler *a, const uint8_t *key,
                               const msgpack_object_map *options, pid_t pid, uid_t uid)
{
        ss_peer peer = {.pid = pid, .uid = uid, .owner = ss_user_name(uid)};
        ss_session *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        *s = (ss_session){.a = a,
                          .attached = 1,
                          .sample_rate = option_rate(options),
                          .include_content = option_bool(options, SS_HELLO_INCLUDE_CONTENT, true)};
        memcpy(s->key, key, SS_SESSION_KEY_LEN);
        ss_map_init(&s->open, SS_SPAN_ID_LEN);
        s->resource = ss_resource_new_for(options, &peer, &a->resource_limits);
        s->proc = s->resource ? proc_get(a, pid, uid) : NULL;
        if (!s->proc || ss_map_put(&a->sessions, key, s) < 0) {
                ss_resource_unref(s->resource);
                free(s);
                return NULL;
        }
        s->proc->sessions++;
        a->stats.sessions++;
        if (s->resource->dropped_attrs) {
                a->stats.resource_attrs_dropped += s->resource->dropped_attrs;
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "resource attributes of HELLO dropped event=hello-attrs-dropped "
                                   "pid=%d dropped=%u max_resource_attributes=%u "
                                   "max_key_length=%u",
                                   (int)pid, s->resource->dropped_attrs, a->cfg.max_resource_attrs,
                                   a->cfg.limits.max_key_len);
        }
        return s;
}

ss_session *ss_session_attach(ss_assembler *a, const msgpack_object_map *options, pid_t pid,
                              uid_t uid)
{
        uint8_t key[SS_SESSION_KEY_LEN];
        uint64_t instance = option_u64(options, SS_HELLO_INSTANCE);
        uint32_t p = (uint32_t)pid, u = (uint32_t)uid;
        ss_session *s;

        /* Without an instance id a client cannot reconnect: make its session unique. */
        if (instance == 0)
                ss_id_random((uint8_t *)&instance, sizeof(instance));
        memcpy(key, &instance, 8);
        memcpy(key + 8, &p, 4);
        memcpy(key + 12, &u, 4);
        s = ss_map_get(&a->sessions, key);
        if (!s)
                return session_new(a, key, options, pid, uid);
        s->attached++;
        ss_log_ratelimited(SS_LOG_DEBUG,
                           "client reattached event=client-reattached pid=%u open_spans=%zu", p,
                           s->open.n);
        return s;
}

ss_session *ss_session_restore(ss_assembler *a, const uint8_t *key, pid_t pid, uid_t uid,
                               ss_resource *resource)
{
        ss_session *s = calloc(1, sizeof(*s));

        if (!s) {
                ss_resource_unref(resource);
                return NULL;
        }
        *s =
            (ss_session){.a = a, .resource = resource, .sample_rate = 1.0, .include_content = true};
        memcpy(s->key, key, SS_SESSION_KEY_LEN);
        ss_map_init(&s->open, SS_SPAN_ID_LEN);
        s->proc = proc_get(a, pid, uid);
        if (!s->proc || ss_map_put(&a->sessions, key, s) < 0) {
                if (s->proc && s->proc->sessions == 0)
                        proc_free(s->proc);
                ss_resource_unref(resource);
                free(s);
                return NULL;
        }
        s->proc->sessions++;
        /* No pidfd and no such process: it exited while no daemon watched. */
        if (s->proc->pidfd < 0 && kill(pid, 0) < 0 && errno == ESRCH)
                s->proc->gone = true;
        return s;
}

void ss_session_restored(ss_session *s)
{
        if (!s->proc->gone && s->open.n > 0)
                return;
        session_gone(s);
}

void ss_session_detach(ss_session *s)
{
        if (--s->attached > 0)
                return;
        s->detached_ns = ss_now_ns();
        s->orphan_at_ns = s->detached_ns + s->a->cfg.orphan_grace_ms * 1000000ull;
        if (s->proc->gone)
                session_gone(s);
        else if (s->open.n == 0)
                session_free(s);
}

void ss_sessions_sweep(ss_assembler *a, uint64_t now_ns)
{
        void **all = values(&a->sessions);
        size_t n = a->sessions.n;

        for (size_t i = 0; all && i < n; i++) {
                ss_session *s = all[i];

                if (s->attached > 0 || s->orphan_at_ns > now_ns)
                        continue;
                /* A process seen gone here exited while there was no room. */
                if (!session_end(s))
                        break;
        }
        free(all);
}

void ss_sessions_free(ss_assembler *a, const char *reason)
{
        void **all = values(&a->sessions);
        size_t n = a->sessions.n;

        for (size_t i = 0; all && i < n; i++) {
                ss_session *s = all[i];

                if (reason)
                        session_orphan(a, s, reason);
                session_free(s);
        }
        free(all);
        ss_map_free(&a->sessions);
        ss_map_free(&a->procs);
}

size_t ss_session_open_spans(const ss_session *s)
{
        return s->open.n;
}

const ss_resource *ss_session_resource(const ss_session *s)
{
        return s->resource;
}

void ss_session_counters(const ss_session *s, ss_counters *out)
{
        ss_counters_add(out, NULL, "spans_started", s->spans_started);
        ss_counters_add(out, NULL, "spans_finished", s->spans_finished);
        ss_counters_add(out, NULL, "spans_open", s->open.n);
        ss_counters_add(out, NULL, "process_spans_open", s->proc->open_spans);
}
