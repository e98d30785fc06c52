/* SPDX-License-Identifier: MIT */
#include "trace/table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

void ss_tt_init(ss_trace_table *tt, ss_sink *out, uint32_t max_trace_spans,
                uint64_t max_trace_bytes, uint64_t foreign_wait_ms, ss_assembler_stats *n)
{
        *tt = (ss_trace_table){.out = out,
                               .n = n,
                               .max_trace_spans = max_trace_spans ? max_trace_spans : 1,
                               .max_trace_bytes = max_trace_bytes,
                               .foreign_wait_ns = foreign_wait_ms * 1000000ull};
        ss_map_init(&tt->traces, SS_TRACE_ID_LEN);
}

static void remember(ss_trace_table *tt, ss_trace *t)
{
        tt->last = t;
        memcpy(tt->last_id, t->id, SS_TRACE_ID_LEN);
}

ss_trace *ss_tt_get(ss_trace_table *tt, const uint8_t *id, bool create)
{
        ss_trace *t;

        /* A run's spans come one after another: most lookups are of the trace before. */
        if (tt->last && memcmp(tt->last_id, id, SS_TRACE_ID_LEN) == 0)
                return tt->last;
        t = ss_map_get(&tt->traces, id);
        if (t)
                remember(tt, t);
        if (t || !create)
                return t;
        t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        memcpy(t->id, id, SS_TRACE_ID_LEN);
        if (ss_map_put(&tt->traces, id, t) < 0) {
                free(t);
                return NULL;
        }
        remember(tt, t);
        return t;
}

/* ---- the waiting list ------------------------------------------------------------------- */

/* Waits all have the same length, so appending keeps the list sorted by release time. */
static void wait_start(ss_trace_table *tt, ss_trace *t, const void *owner, uint64_t now_ns)
{
        if (t->release_at_ns || t->n_done == 0)
                return;
        t->waiter = owner;
        t->release_at_ns = now_ns + tt->foreign_wait_ns;
        t->prev = tt->waiting_tail;
        t->next = NULL;
        if (tt->waiting_tail)
                tt->waiting_tail->next = t;
        else
                tt->waiting = t;
        tt->waiting_tail = t;
}

static void wait_stop(ss_trace_table *tt, ss_trace *t)
{
        if (!t->release_at_ns)
                return;
        if (t->prev)
                t->prev->next = t->next;
        else
                tt->waiting = t->next;
        if (t->next)
                t->next->prev = t->prev;
        else
                tt->waiting_tail = t->prev;
        t->prev = t->next = NULL;
        t->release_at_ns = 0;
}

/* ---- parts ------------------------------------------------------------------------------ */

static ss_trace_part *part_find(const ss_trace *t, const void *owner)
{
        for (uint32_t i = 0; i < t->n_parts; i++)
                if (t->parts[i].owner == owner)
                        return &t->parts[i];
        return NULL;
}

int ss_tt_opened(ss_trace_table *tt, ss_trace *t, const void *owner)
{
        ss_trace_part *p = part_find(t, owner);

        if (!p) {
                if (t->cap_parts == 0) {
                        t->parts = &t->one; /* most traces have one client */
                        t->cap_parts = 1;
                } else if (t->n_parts == t->cap_parts) {
                        uint32_t cap = t->cap_parts * 2;
                        ss_trace_part *np = t->parts == &t->one
                                                ? malloc(cap * sizeof(*np))
                                                : realloc(t->parts, cap * sizeof(*np));

                        if (!np)
                                return -ENOMEM;
                        if (t->parts == &t->one)
                                np[0] = t->one;
                        t->parts = np;
                        t->cap_parts = cap;
                }
                p = &t->parts[t->n_parts++];
                *p = (ss_trace_part){.owner = owner};
        }
        p->open++;
        t->open++;
        /* The client whose spans wait is active in t again: no need to hurry them out. A
         * stranger's new span does not stop the clock, or it could hold them for ever. */
        if (owner == t->waiter)
                wait_stop(tt, t);
        return 0;
}

/* One open span of owner in t is over; true when owner has none left in t. */
static bool part_close(ss_trace *t, const void *owner)
{
        ss_trace_part *p = part_find(t, owner);

        if (!p)
                return true;
        t->open--;
        if (--p->open > 0)
                return false;
        *p = t->parts[--t->n_parts];
        return true;
}

/* ---- handing on ------------------------------------------------------------------------- */

/* Hand the finished spans of t on and drop our references. */
static void emit(ss_trace_table *tt, ss_trace *t)
{
        if (t->n_done) {
                tt->n->handoffs++;
                ss_sink_put(tt->out, t->done, t->n_done);
        }
        for (uint32_t i = 0; i < t->n_done; i++)
                ss_span_unref(t->done[i]);
        t->n_done = 0;
        t->done_bytes = 0;
}

/* Free t's memory (not its spans). */
static void trace_release(ss_trace *t)
{
        if (t->parts != &t->one)
                free(t->parts);
        free(t->done);
        free(t);
}

static void trace_free(ss_trace_table *tt, ss_trace *t)
{
        wait_stop(tt, t);
        ss_map_remove(&tt->traces, t->id);
        if (tt->last == t)
                tt->last = NULL;
        trace_release(t);
}

void ss_tt_discard(ss_trace_table *tt, ss_trace *t)
{
        if (t && t->open == 0 && t->n_done == 0)
                trace_free(tt, t);
}

static int append(ss_trace *t, ss_span *s)
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

void ss_tt_finished(ss_trace_table *tt, ss_trace *t, const void *owner, bool was_open, ss_span *s,
                    uint64_t now_ns)
{
        bool owner_done = was_open ? part_close(t, owner) : !part_find(t, owner);

        tt->n->spans_finished++;
        if (s->discard) {
                tt->n->spans_discarded++;
                ss_span_unref(s);
        } else if (append(t, s) < 0) {
                tt->n->no_memory++;
                ss_log_ratelimited(SS_LOG_ERR,
                                   "out of memory: a finished span dropped event=no-memory "
                                   "what=span");
                ss_span_unref(s);
        } else {
                t->done_bytes += ss_span_size(s);
        }
        if (t->open == 0) {
                tt->n->traces_completed++;
                emit(tt, t);
                trace_free(tt, t);
        } else if (t->n_done >= tt->max_trace_spans ||
                   (tt->max_trace_bytes && t->done_bytes >= tt->max_trace_bytes)) {
                tt->n->chunks_early++;
                emit(tt, t);
        } else if (owner_done) {
                /* What is done waits a while for the spans of other clients still open. */
                wait_start(tt, t, owner, now_ns);
        }
}

void ss_tt_release_due(ss_trace_table *tt, uint64_t now_ns, bool (*room)(void *ctx), void *ctx)
{
        ss_trace *t;

        while ((t = tt->waiting) && t->release_at_ns <= now_ns) {
                if (t->n_done && room && !room(ctx))
                        return;
                wait_stop(tt, t);
                if (t->n_done == 0)
                        continue;
                tt->n->traces_released++;
                emit(tt, t);
        }
}

static void free_one(void *value, void *ctx)
{
        ss_trace_table *tt = ctx;
        ss_trace *t = value;

        /* Spans whose trace stays open elsewhere (e.g. a remote parent) go out as they are. */
        if (t->n_done)
                emit(tt, t);
        trace_release(t);
}

void ss_tt_free(ss_trace_table *tt)
{
        ss_map_foreach(&tt->traces, free_one, tt);
        ss_map_free(&tt->traces);
        tt->waiting = tt->waiting_tail = NULL;
        tt->last = NULL;
}
