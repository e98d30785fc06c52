/* SPDX-License-Identifier: MIT */
#include "trace/assembler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/hashmap.h"
#include "base/log.h"
#include "ss-id.h"

#define SESSION_KEY_LEN 16u

typedef struct trace {
        uint8_t id[SS_TRACE_ID_LEN];
        uint32_t open;  /* spans of this trace still open, in any session */
        ss_span **done; /* finished spans, one reference each */
        uint32_t n_done;
        uint32_t cap_done;
} trace;

struct ss_session {
        ss_assembler *a;
        uint8_t key[SESSION_KEY_LEN]; /* instance, peer pid, peer uid */
        ss_resource *resource;
        ss_map open; /* span id -> ss_span (one reference) */
        unsigned attached;
        uint64_t orphan_at_ns; /* when detached: the end of the grace period */
};

struct ss_assembler {
        uv_timer_t sweep; /* ends the open spans of sessions past their grace */
        ss_assembler_config cfg;
        ss_sink *out;
        ss_map sessions; /* key -> ss_session */
        ss_map traces;   /* trace id -> trace */
        size_t open_spans;
        ss_assembler_stats stats;
};

/* ---- traces --------------------------------------------------------------------------- */

static trace *trace_get(ss_assembler *a, const uint8_t *id, bool create)
{
        trace *t = ss_map_get(&a->traces, id);

        if (t || !create)
                return t;
        t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        memcpy(t->id, id, SS_TRACE_ID_LEN);
        if (ss_map_put(&a->traces, id, t) < 0) {
                free(t);
                return NULL;
        }
        return t;
}

/* Hand the finished spans of t on and drop our references. */
static void trace_emit(ss_assembler *a, trace *t)
{
        ss_sink_put(a->out, t->done, t->n_done);
        for (uint32_t i = 0; i < t->n_done; i++)
                ss_span_unref(t->done[i]);
        t->n_done = 0;
}

static void trace_free(ss_assembler *a, trace *t)
{
        ss_map_remove(&a->traces, t->id);
        free(t->done);
        free(t);
}

static int trace_append(trace *t, ss_span *s)
{
        if (t->n_done == t->cap_done) {
                uint32_t cap = t->cap_done ? t->cap_done * 2 : 32;
                ss_span **p = realloc(t->done, cap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                t->done = p;
                t->cap_done = cap;
        }
        t->done[t->n_done++] = s;
        return 0;
}

/* A span of t finished: takes the caller's reference to s. */
static void trace_finish(ss_assembler *a, trace *t, ss_span *s)
{
        a->stats.spans_finished++;
        if (trace_append(t, s) < 0) {
                a->stats.no_memory++;
                ss_log_ratelimited(SS_LOG_ERR, "out of memory: dropped a finished span");
                ss_span_unref(s);
        }
        if (t->open == 0) {
                a->stats.traces_completed++;
                trace_emit(a, t);
                trace_free(a, t);
        } else if (t->n_done >= a->cfg.max_trace_spans) {
                a->stats.chunks_early++;
                trace_emit(a, t);
        }
}

/* ---- sessions ------------------------------------------------------------------------- */

static void session_free(ss_session *s)
{
        ss_map_free(&s->open);
        ss_resource_unref(s->resource);
        free(s);
}

/* ss_map_foreach callback: append value at *ctx, a cursor into a void * array. */
static void collect(void *value, void *ctx)
{
        void ***cursor = ctx;

        *(*cursor)++ = value;
}

/* End every open span of s with status ERROR, marked orphaned. */
static void session_orphan(ss_assembler *a, ss_session *s, const char *reason)
{
        uint64_t now = ss_now_ns();
        size_t n = s->open.n;
        void **spans, **cursor;

        if (n == 0)
                return;
        spans = malloc(n * sizeof(*spans));
        if (!spans) {
                a->stats.no_memory++;
                return;
        }
        cursor = spans;
        ss_map_foreach(&s->open, collect, &cursor);
        ss_log(SS_LOG_NOTICE, "ending %zu open span(s) as orphaned: %s", n, reason);
        for (size_t i = 0; i < n; i++) {
                ss_span *sp = spans[i];
                trace *t = trace_get(a, sp->trace_id, false);

                ss_map_remove(&s->open, sp->span_id);
                a->open_spans--;
                a->stats.spans_orphaned++;
                if (ss_span_set_bool(sp, "sidespan.orphaned", true) < 0)
                        a->stats.no_memory++;
                ss_span_end(sp, now > sp->start_ns ? now : sp->start_ns, SS_STATUS_ERROR, reason,
                            (uint32_t)strlen(reason));
                t->open--;
                trace_finish(a, t, sp);
        }
        free(spans);
}

static uint64_t option_u64(const msgpack_object_map *o, const char *key)
{
        const msgpack_object *v = ss_wire_map_get(o, key);

        return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
}

ss_session *ss_assembler_hello(ss_assembler *a, const msgpack_object_map *options, pid_t peer_pid,
                               uid_t peer_uid)
{
        uint8_t key[SESSION_KEY_LEN];
        uint64_t instance = option_u64(options, SS_HELLO_INSTANCE);
        uint32_t pid = (uint32_t)peer_pid, uid = (uint32_t)peer_uid;
        ss_session *s;

        /* Without an instance id a client cannot reconnect: make its session unique. */
        if (instance == 0)
                ss_id_random((uint8_t *)&instance, sizeof(instance));
        memcpy(key, &instance, 8);
        memcpy(key + 8, &pid, 4);
        memcpy(key + 12, &uid, 4);
        s = ss_map_get(&a->sessions, key);
        if (s) {
                s->attached++;
                ss_log(SS_LOG_DEBUG, "client pid %u reattached with %zu open span(s)", pid,
                       s->open.n);
                return s;
        }
        s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        *s = (ss_session){.a = a, .attached = 1};
        memcpy(s->key, key, sizeof(key));
        ss_map_init(&s->open, SS_SPAN_ID_LEN);
        s->resource = ss_resource_new(options);
        if (!s->resource || ss_map_put(&a->sessions, key, s) < 0) {
                session_free(s);
                return NULL;
        }
        a->stats.sessions++;
        return s;
}

void ss_session_detach(ss_session *s)
{
        if (--s->attached > 0)
                return;
        s->orphan_at_ns = ss_now_ns() + s->a->cfg.orphan_grace_ms * 1000000ull;
        if (s->open.n == 0) {
                ss_map_remove(&s->a->sessions, s->key);
                session_free(s);
        }
}

const ss_resource *ss_session_resource(const ss_session *s)
{
        return s->resource;
}

typedef struct sweep_ctx {
        uint64_t now;
        ss_session **expired;
        size_t n;
} sweep_ctx;

static void find_expired(void *value, void *ctx)
{
        ss_session *s = value;
        sweep_ctx *c = ctx;

        if (s->attached == 0 && s->orphan_at_ns <= c->now)
                c->expired[c->n++] = s;
}

static void on_sweep(uv_timer_t *timer)
{
        ss_assembler *a = timer->data;
        sweep_ctx c = {.now = ss_now_ns()};

        if (a->sessions.n == 0)
                return;
        c.expired = malloc(a->sessions.n * sizeof(*c.expired));
        if (!c.expired)
                return;
        ss_map_foreach(&a->sessions, find_expired, &c);
        for (size_t i = 0; i < c.n; i++) {
                session_orphan(a, c.expired[i], "client disconnected and did not return");
                ss_map_remove(&a->sessions, c.expired[i]->key);
                session_free(c.expired[i]);
        }
        free(c.expired);
}

/* ---- messages ------------------------------------------------------------------------- */

static int span_start(ss_assembler *a, ss_session *s, const ss_msg_span *m, bool whole)
{
        ss_span *sp;
        trace *t;

        if (!whole && ss_map_get(&s->open, m->span_id)) {
                a->stats.duplicate_span++;
                return -EEXIST;
        }
        if (!whole && (s->open.n >= a->cfg.max_open_spans ||
                       (a->cfg.max_open_total && a->open_spans >= a->cfg.max_open_total))) {
                a->stats.open_span_limit++;
                return -ENOSPC;
        }
        t = trace_get(a, m->trace_id, true);
        sp = t ? ss_span_new(m, whole, s->resource, &a->cfg.limits) : NULL;
        if (!sp || (!whole && ss_map_put(&s->open, sp->span_id, sp) < 0))
                goto nomem;
        a->stats.spans_started++;
        if (whole) {
                trace_finish(a, t, sp);
                return 0;
        }
        t->open++;
        a->open_spans++;
        return 0;
nomem:
        ss_span_unref(sp);
        if (t && t->open == 0 && t->n_done == 0)
                trace_free(a, t);
        a->stats.no_memory++;
        return -ENOMEM;
}

static ss_span *open_span(ss_assembler *a, ss_session *s, const uint8_t *span_id)
{
        ss_span *sp = ss_map_get(&s->open, span_id);

        if (!sp)
                a->stats.unknown_span++;
        return sp;
}

static int span_end(ss_assembler *a, ss_session *s, const ss_msg *m)
{
        ss_span *sp = open_span(a, s, m->end.span_id);
        trace *t;
        int r = 0;

        if (!sp)
                return -ENOENT;
        ss_map_remove(&s->open, sp->span_id);
        a->open_spans--;
        if (m->end.attrs && ss_span_set_attrs(sp, m->end.attrs, &a->cfg.limits) < 0) {
                a->stats.no_memory++;
                r = -ENOMEM;
        }
        ss_span_end(sp, m->end.end_ns < sp->start_ns ? sp->start_ns : m->end.end_ns,
                    m->end.status_code, m->end.status_msg.ptr, m->end.status_msg.len);
        t = trace_get(a, sp->trace_id, false);
        t->open--;
        trace_finish(a, t, sp);
        return r;
}

static int check_nomem(ss_assembler *a, int r)
{
        if (r == -ENOMEM)
                a->stats.no_memory++;
        return r;
}

int ss_assembler_apply(ss_assembler *a, ss_session *s, const ss_msg *m)
{
        ss_span *sp;

        switch (m->type) {
        case SS_MSG_SPAN_START:
                return span_start(a, s, &m->span, false);
        case SS_MSG_SPAN:
                return span_start(a, s, &m->span, true);
        case SS_MSG_SPAN_END:
                return span_end(a, s, m);
        case SS_MSG_SPAN_ATTRS:
                sp = open_span(a, s, m->attrs.span_id);
                if (!sp)
                        return -ENOENT;
                return m->attrs.attrs
                           ? check_nomem(a, ss_span_set_attrs(sp, m->attrs.attrs, &a->cfg.limits))
                           : 0;
        case SS_MSG_SPAN_EVENT:
                sp = open_span(a, s, m->event.span_id);
                if (!sp)
                        return -ENOENT;
                return check_nomem(a, ss_span_add_event(sp, m->event.name.ptr, m->event.name.len,
                                                        m->event.time_ns, m->event.attrs,
                                                        &a->cfg.limits));
        default:
                return -EINVAL;
        }
}

/* ---- lifetime ------------------------------------------------------------------------- */

static void on_sweep_closed(uv_handle_t *h);

int ss_assembler_new(uv_loop_t *loop, const ss_assembler_config *cfg, ss_sink *out,
                     ss_assembler **ret)
{
        ss_assembler *a = calloc(1, sizeof(*a));
        uint64_t every;
        int r;

        if (!a)
                return -ENOMEM;
        a->cfg = *cfg;
        if (a->cfg.max_trace_spans == 0)
                a->cfg.max_trace_spans = 1;
        a->out = out;
        ss_map_init(&a->sessions, SESSION_KEY_LEN);
        ss_map_init(&a->traces, SS_TRACE_ID_LEN);
        r = uv_timer_init(loop, &a->sweep);
        if (r < 0) {
                free(a);
                return r;
        }
        a->sweep.data = a;
        /* Sweep often enough that a grace period ends within a quarter of itself. */
        every = cfg->orphan_grace_ms / 4;
        every = every < 10 ? 10 : every > 1000 ? 1000 : every;
        r = uv_timer_start(&a->sweep, on_sweep, every, every);
        if (r < 0) {
                uv_close((uv_handle_t *)&a->sweep, on_sweep_closed);
                return r;
        }
        *ret = a;
        return 0;
}

static void on_sweep_closed(uv_handle_t *h)
{
        free(h->data);
}

static void free_trace(void *value, void *ctx)
{
        ss_assembler *a = ctx;
        trace *t = value;

        /* Spans whose trace stays open elsewhere (e.g. a remote parent) go out as they are. */
        if (t->n_done)
                trace_emit(a, t);
        free(t->done);
        free(t);
}

void ss_assembler_free(ss_assembler *a, const char *reason)
{
        void **all;
        size_t n;

        if (!a)
                return;
        n = a->sessions.n;
        all = malloc((n ? n : 1) * sizeof(*all));
        if (all) {
                void **cursor = all;

                ss_map_foreach(&a->sessions, collect, &cursor);
                for (size_t i = 0; i < n; i++) {
                        session_orphan(a, all[i], reason);
                        session_free(all[i]);
                }
                free(all);
        }
        ss_map_free(&a->sessions);
        ss_map_foreach(&a->traces, free_trace, a);
        ss_map_free(&a->traces);
        uv_close((uv_handle_t *)&a->sweep, on_sweep_closed);
}

size_t ss_assembler_open_spans(const ss_assembler *a)
{
        return a->open_spans;
}

const ss_assembler_stats *ss_assembler_get_stats(const ss_assembler *a)
{
        return &a->stats;
}

void ss_assembler_counters(const void *assembler, ss_counters *out)
{
        const ss_assembler *a = assembler;
        const ss_assembler_stats *st = &a->stats;

        ss_counters_add(out, NULL, "sessions", st->sessions);
        ss_counters_add(out, NULL, "spans_started", st->spans_started);
        ss_counters_add(out, NULL, "spans_finished", st->spans_finished);
        ss_counters_add(out, NULL, "spans_orphaned", st->spans_orphaned);
        ss_counters_add(out, NULL, "spans_open", a->open_spans);
        ss_counters_add(out, NULL, "traces_completed", st->traces_completed);
        ss_counters_add(out, NULL, "unknown_span", st->unknown_span);
        ss_counters_add(out, NULL, "duplicate_span", st->duplicate_span);
        ss_counters_add(out, NULL, "open_span_limit", st->open_span_limit);
        ss_counters_add(out, NULL, "chunks_early", st->chunks_early);
        ss_counters_add(out, NULL, "no_memory", st->no_memory);
}
