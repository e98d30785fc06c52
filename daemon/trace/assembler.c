/* SPDX-License-Identifier: MIT */
/*
 * The assembler: wire messages in, whole traces out. Sessions and peer
 * processes are in session.c, the trace table in table.c.
 */
#include "trace/assembler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "policy/sampling.h"
#include "ss-id.h"
#include "trace/internal.h"

/* ---- messages ------------------------------------------------------------------------- */

/* Which open span limit a new span of s would pass, or NULL. */
static const char *over_open_limit(const ss_assembler *a, const ss_session *s)
{
        if (s->open.n >= a->cfg.max_open_spans)
                return "max_open_spans";
        if (a->cfg.max_open_process && s->proc->open_spans >= a->cfg.max_open_process)
                return "max_open_spans_per_process";
        if (a->cfg.max_open_total && a->open_spans >= a->cfg.max_open_total)
                return "max_open_spans_total";
        return NULL;
}

/* ---- head sampling ---------------------------------------------------------------------- */

/* The first span of t seen: the head decision for all of t. */
static void head_decide(ss_assembler *a, const ss_session *s, ss_trace *t, const ss_msg_span *m)
{
        uint32_t flags = m->flags;
        bool remote = m->parent_id && (flags & 0x300u) == 0x300u;
        double rate = s->sample_rate < a->cfg.sample_rate ? s->sample_rate : a->cfg.sample_rate;

        t->decided = true;
        t->head_rate = remote ? -1.0 : rate;
        t->head_drop = !ss_sampling_head_keep(m->trace_id, a->cfg.sample_rate, s->sample_rate,
                                              flags, m->parent_id != NULL);
        /* An observer sees every span whole: the metrics count what sampling drops. */
        t->discard = t->head_drop && !a->cfg.tail_active && !a->observe;
        a->stats.traces_discarded += t->discard;
}

/* A span of a discarded trace: ids and times only, so what it costs stays small. */
static ss_span *span_new_lean(const ss_msg_span *m, bool whole, ss_resource *r)
{
        ss_msg_span lean = {.trace_id = m->trace_id,
                            .span_id = m->span_id,
                            .parent_id = m->parent_id,
                            .kind = m->kind,
                            .start_ns = m->start_ns,
                            .end_ns = m->end_ns,
                            .status_code = m->status_code};
        ss_span *sp = ss_span_new(&lean, whole, r, NULL);

        if (sp)
                sp->discard = true;
        return sp;
}

static ss_span *span_new(ss_assembler *a, ss_session *s, ss_trace *t, const ss_msg_span *m,
                         bool whole)
{
        ss_span *sp;

        if (!t->decided)
                head_decide(a, s, t, m);
        if (t->discard)
                return span_new_lean(m, whole, s->resource);
        sp = ss_span_new(m, whole, s->resource, &a->span_limits);
        if (!sp)
                return NULL;
        sp->head_drop = t->head_drop;
        sp->head_rate = t->head_rate;
        sp->no_content = !s->include_content;
        return sp;
}

/* ---- roll-ups --------------------------------------------------------------------------- */

/* The roll-up of the run sp is under, looking up its open ancestors in s; NULL: none. */
static ss_rollup *run_of(ss_session *s, const ss_span *sp)
{
        for (int depth = 0; sp->has_parent && depth < 64; depth++) {
                sp = ss_map_get(&s->open, sp->parent_id);
                if (!sp)
                        return NULL;
                if (sp->rollup)
                        return sp->rollup;
        }
        return NULL;
}

static void count_nomem(ss_assembler *a, int r)
{
        if (r == -ENOMEM)
                a->stats.no_memory++;
}

static void rollup_finishing(ss_assembler *a, ss_session *s, ss_span *sp)
{
        ss_rollup *r = sp->rollup;

        if (r) {
                sp->rollup = NULL;
                count_nomem(a, ss_rollup_apply(r, sp, &a->rollup));
                ss_rollup_free(r);
                return;
        }
        r = run_of(s, sp);
        if (r) {
                count_nomem(a, ss_rollup_child(r, sp, a->cfg.pricing, &a->rollup));
                return;
        }
        /* A chat span outside any run is still costed. */
        r = ss_rollup_new();
        if (r)
                count_nomem(a, ss_rollup_child(r, sp, a->cfg.pricing, &a->rollup));
        ss_rollup_free(r);
}

void ss_assembler_finishing(ss_assembler *a, ss_session *s, ss_span *sp)
{
        if (sp->discard)
                return;
        rollup_finishing(a, s, sp);
        if (a->observe)
                a->observe(a->observe_ctx, sp);
}

void ss_assembler_set_observer(ss_assembler *a, ss_span_observer fn, void *ctx)
{
        a->observe = fn;
        a->observe_ctx = ctx;
}

static void free_rollup(void *value, void *ctx)
{
        ss_span *sp = value;

        (void)ctx;
        ss_rollup_free(sp->rollup);
        sp->rollup = NULL;
}

void ss_assembler_drop_runs(ss_session *s)
{
        ss_map_foreach(&s->open, free_rollup, NULL);
}

/* A run started in s: its roll-up begins. */
static int run_started(ss_span *sp)
{
        if (sp->discard || !ss_rollup_is_run(sp))
                return 0;
        sp->rollup = ss_rollup_new();
        return sp->rollup ? 0 : -ENOMEM;
}

/* ---- messages (continued) --------------------------------------------------------------- */

static int span_start(ss_assembler *a, ss_session *s, const ss_msg_span *m, bool whole)
{
        const char *limit;
        ss_span *sp;
        ss_trace *t;

        if (!whole && ss_map_get(&s->open, m->span_id)) {
                a->stats.duplicate_span++;
                return -EEXIST;
        }
        if (!whole && (limit = over_open_limit(a, s))) {
                a->stats.open_span_limit++;
                if (strcmp(limit, "max_open_spans_per_process") == 0)
                        a->stats.open_span_limit_process++;
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "SPAN_START refused at a limit event=span-refused pid=%d "
                                   "limit=%s",
                                   (int)s->proc->pid, limit);
                return -ENOSPC;
        }
        t = ss_tt_get(&a->tt, m->trace_id, true);
        sp = t ? span_new(a, s, t, m, whole) : NULL;
        if (!sp)
                goto nomem;
        a->stats.spans_started++;
        if (whole) {
                s->spans_started++;
                s->spans_finished++;
                ss_assembler_finishing(a, s, sp);
                ss_tt_finished(&a->tt, t, s, false, sp, ss_now_ns());
                return 0;
        }
        if (ss_map_put(&s->open, sp->span_id, sp) < 0)
                goto nomem;
        if (ss_tt_opened(&a->tt, t, s) < 0) {
                ss_map_remove(&s->open, sp->span_id);
                goto nomem;
        }
        if (run_started(sp) < 0)
                a->stats.no_memory++; /* the run goes without its roll-up */
        ss_session_span_opened(s);
        return 0;
nomem:
        ss_span_unref(sp);
        ss_tt_discard(&a->tt, t);
        a->stats.no_memory++;
        return -ENOMEM;
}

/* The open span of span_id in s; take removes it from the open ones. */
static ss_span *open_span(ss_assembler *a, ss_session *s, const uint8_t *span_id, bool take)
{
        ss_span *sp = take ? ss_map_remove(&s->open, span_id) : ss_map_get(&s->open, span_id);

        if (!sp)
                a->stats.unknown_span++;
        return sp;
}

static int span_end(ss_assembler *a, ss_session *s, const ss_msg *m)
{
        ss_span *sp = open_span(a, s, m->end.span_id, true);
        int r = 0;

        if (!sp)
                return -ENOENT;
        ss_session_span_closed(s);
        if (!sp->discard && (m->end.attrs || m->end.attrs_bytes.n) &&
            ss_span_set_msg_attrs(sp, m->end.attrs, &m->end.attrs_bytes, &a->span_limits) < 0) {
                a->stats.no_memory++;
                r = -ENOMEM;
        }
        ss_span_end_limited(sp, m->end.end_ns, m->end.status_code, m->end.status_msg.ptr,
                            m->end.status_msg.len, &a->span_limits);
        ss_assembler_finishing(a, s, sp);
        ss_tt_finished(&a->tt, ss_tt_get(&a->tt, sp->trace_id, false), s, true, sp, ss_now_ns());
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
                sp = open_span(a, s, m->attrs.span_id, false);
                if (!sp)
                        return -ENOENT;
                return m->attrs.attrs && !sp->discard
                           ? check_nomem(a, ss_span_set_attrs(sp, m->attrs.attrs, &a->span_limits))
                           : 0;
        case SS_MSG_SPAN_EVENT:
                sp = open_span(a, s, m->event.span_id, false);
                if (!sp)
                        return -ENOENT;
                if (sp->discard)
                        return 0;
                return check_nomem(a, ss_span_add_event(sp, m->event.name.ptr, m->event.name.len,
                                                        m->event.time_ns, m->event.attrs,
                                                        &a->span_limits));
        default:
                return -EINVAL;
        }
}

/* ---- lifetime ------------------------------------------------------------------------- */

bool ss_assembler_room(ss_assembler *a)
{
        if (!a->room || a->room(a->room_ctx))
                return true;
        a->stats.timer_handoffs_waited++;
        return false;
}

static bool room_for_release(void *a)
{
        return ss_assembler_room(a);
}

void ss_assembler_set_room(ss_assembler *a, bool (*room)(const void *ctx), const void *ctx)
{
        a->room = room;
        a->room_ctx = ctx;
}

static void on_sweep(uv_timer_t *timer)
{
        ss_assembler *a = timer->data;
        uint64_t now = ss_now_ns();

        ss_sessions_sweep(a, now);
        ss_tt_release_due(&a->tt, now, room_for_release, a);
}

static void on_sweep_closed(uv_handle_t *h)
{
        free(h->data);
}

/* Often enough that a grace period or a wait ends within a quarter of itself. */
static uint64_t sweep_every(const ss_assembler_config *cfg)
{
        uint64_t every = cfg->orphan_grace_ms / 4;

        if (cfg->foreign_wait_ms && cfg->foreign_wait_ms / 4 < every)
                every = cfg->foreign_wait_ms / 4;
        return every < 10 ? 10 : every > 1000 ? 1000 : every;
}

static void limits_init(ss_assembler *a)
{
        a->span_limits = a->cfg.limits;
        a->span_limits.hits = &a->hits;
        a->resource_limits = (ss_limits){.max_attrs = a->cfg.max_resource_attrs,
                                         .max_value_len = a->cfg.limits.max_value_len,
                                         .max_key_len = a->cfg.limits.max_key_len,
                                         .hits = &a->hits};
}

int ss_assembler_new(uv_loop_t *loop, const ss_assembler_config *cfg, ss_sink *out,
                     ss_assembler **ret)
{
        ss_assembler *a = calloc(1, sizeof(*a));
        uint64_t every = sweep_every(cfg);
        int r;

        if (!a)
                return -ENOMEM;
        a->loop = loop;
        a->cfg = *cfg;
        limits_init(a);
        ss_tt_init(&a->tt, out, cfg->max_trace_spans, cfg->max_trace_bytes, cfg->foreign_wait_ms,
                   &a->stats);
        ss_map_init(&a->sessions, SS_SESSION_KEY_LEN);
        ss_map_init(&a->procs, SS_PROC_KEY_LEN);
        r = uv_timer_init(loop, &a->sweep);
        if (r < 0) {
                free(a);
                return r;
        }
        a->sweep.data = a;
        r = uv_timer_start(&a->sweep, on_sweep, every, every);
        if (r < 0) {
                uv_close((uv_handle_t *)&a->sweep, on_sweep_closed);
                return r;
        }
        *ret = a;
        return 0;
}

void ss_assembler_free(ss_assembler *a, const char *reason)
{
        if (!a)
                return;
        ss_sessions_free(a, reason);
        ss_tt_free(&a->tt);
        uv_close((uv_handle_t *)&a->sweep, on_sweep_closed);
}

ss_session *ss_assembler_hello(ss_assembler *a, const msgpack_object_map *options, pid_t peer_pid,
                               uid_t peer_uid)
{
        return ss_session_attach(a, options, peer_pid, peer_uid);
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
        const ss_limit_hits *h = &a->hits;

        ss_counters_add(out, NULL, "sessions", st->sessions);
        ss_counters_add(out, NULL, "sessions_gone", st->sessions_gone);
        ss_counters_add(out, NULL, "processes", a->procs.n);
        ss_counters_add(out, NULL, "spans_started", st->spans_started);
        ss_counters_add(out, NULL, "spans_finished", st->spans_finished);
        ss_counters_add(out, NULL, "spans_orphaned", st->spans_orphaned);
        ss_counters_add(out, NULL, "spans_open", a->open_spans);
        ss_counters_add(out, NULL, "traces_open", a->tt.traces.n);
        ss_counters_add(out, NULL, "traces_completed", st->traces_completed);
        ss_counters_add(out, NULL, "traces_released", st->traces_released);
        ss_counters_add(out, NULL, "timer_handoffs_waited", st->timer_handoffs_waited);
        ss_counters_add(out, NULL, "chunks_early", st->chunks_early);
        ss_counters_add(out, NULL, "unknown_span", st->unknown_span);
        ss_counters_add(out, NULL, "duplicate_span", st->duplicate_span);
        ss_counters_add(out, NULL, "open_span_limit", st->open_span_limit);
        ss_counters_add(out, NULL, "open_span_limit_process", st->open_span_limit_process);
        ss_counters_add(out, NULL, "resource_attrs_dropped", st->resource_attrs_dropped);
        ss_counters_add(out, NULL, "attrs_dropped_count", h->attrs_over_count);
        ss_counters_add(out, NULL, "attrs_dropped_key_length", h->keys_too_long);
        ss_counters_add(out, NULL, "attrs_dropped_span_bytes", h->bytes_over);
        ss_counters_add(out, NULL, "values_cut", h->values_cut);
        ss_counters_add(out, NULL, "names_cut", h->names_cut);
        ss_counters_add(out, NULL, "events_dropped", h->events_over);
        ss_counters_add(out, NULL, "span_compactions", h->compactions);
        ss_counters_add(out, NULL, "traces_discarded", st->traces_discarded);
        ss_counters_add(out, NULL, "spans_discarded", st->spans_discarded);
        ss_counters_add(out, NULL, "no_memory", st->no_memory);
        ss_rollup_counters(&a->rollup, out);
}
