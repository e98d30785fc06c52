/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "base/log.h"
#include "export/request-queue.h"

static void list_unlink(ss_req_list *l, ss_req *r)
{
        if (r->prev)
                r->prev->next = r->next;
        else
                l->head = r->next;
        if (r->next)
                r->next->prev = r->prev;
        else
                l->tail = r->prev;
        r->prev = r->next = NULL;
        l->n--;
}

/* Insert keeping seq order; new requests land at the tail at once. */
static void list_insert(ss_req_list *l, ss_req *r)
{
        ss_req *after = l->tail;

        while (after && after->seq > r->seq)
                after = after->prev;
        r->prev = after;
        r->next = after ? after->next : l->head;
        if (r->next)
                r->next->prev = r;
        else
                l->tail = r;
        if (after)
                after->next = r;
        else
                l->head = r;
        l->n++;
}

void ss_reqq_init(ss_req_queue *q, const char *name, size_t max_bytes, uint32_t max_inflight)
{
        *q = (ss_req_queue){.name = name, .max_bytes = max_bytes, .max_inflight = max_inflight};
}

ss_req *ss_req_new(ss_req_queue *q, size_t n_spans, size_t max_body)
{
        ss_req *r = calloc(1, sizeof(*r));

        if (!r)
                return NULL;
        r->seq = q->next_seq++;
        r->n_spans = n_spans;
        ss_buf_init(&r->body, max_body);
        return r;
}

void ss_req_free(ss_req *r)
{
        if (!r)
                return;
        ss_buf_free(&r->body);
        free(r);
}

/* Whether the waiting requests, all dropped, would leave room for size more bytes. */
static bool room_possible(const ss_req_queue *q, size_t size)
{
        size_t waiting = 0;

        for (const ss_req *r = q->waiting.head; r; r = r->next)
                waiting += r->body.len;
        return q->bytes - waiting + size <= q->max_bytes;
}

int ss_reqq_push(ss_req_queue *q, ss_req *r, size_t *ret_dropped)
{
        size_t dropped = 0;

        if (q->bytes + r->body.len > q->max_bytes && !room_possible(q, r->body.len))
                return -ENOBUFS;
        while (q->bytes + r->body.len > q->max_bytes) {
                ss_req *old = q->waiting.head;

                ss_log_ratelimited(SS_LOG_WARNING,
                                   "%s: queue over %zu bytes, dropping the oldest request "
                                   "(%zu spans) event=export-dropped exporter=%s spans=%zu "
                                   "reason=queue-full queue_bytes=%zu",
                                   q->name, q->max_bytes, old->n_spans, q->name, old->n_spans,
                                   q->max_bytes);
                dropped += ss_reqq_finish(q, old);
        }
        r->due_ms = 0;
        q->bytes += r->body.len;
        list_insert(&q->waiting, r);
        *ret_dropped = dropped;
        return 0;
}

ss_req *ss_reqq_start_next(ss_req_queue *q, uint64_t now_ms)
{
        if (q->inflight.n >= q->max_inflight)
                return NULL;
        for (ss_req *r = q->waiting.head; r; r = r->next)
                if (r->due_ms <= now_ms) {
                        list_unlink(&q->waiting, r);
                        list_insert(&q->inflight, r);
                        if (r->attempts++ == 0)
                                r->first_ms = now_ms;
                        return r;
                }
        return NULL;
}

uint64_t ss_reqq_next_due(const ss_req_queue *q)
{
        uint64_t due = UINT64_MAX;

        if (q->inflight.n >= q->max_inflight)
                return UINT64_MAX;
        for (const ss_req *r = q->waiting.head; r; r = r->next)
                if (r->due_ms < due)
                        due = r->due_ms;
        return due;
}

void ss_reqq_retry(ss_req_queue *q, ss_req *r, uint64_t due_ms)
{
        list_unlink(&q->inflight, r);
        r->due_ms = due_ms;
        list_insert(&q->waiting, r);
}

/* Whether r is in the in-flight list: walking it is short (max_inflight entries). */
static bool in_flight(const ss_req_queue *q, const ss_req *r)
{
        for (const ss_req *i = q->inflight.head; i; i = i->next)
                if (i == r)
                        return true;
        return false;
}

size_t ss_reqq_finish(ss_req_queue *q, ss_req *r)
{
        size_t n = r->n_spans;

        list_unlink(in_flight(q, r) ? &q->inflight : &q->waiting, r);
        q->bytes -= r->body.len;
        ss_req_free(r);
        return n;
}
