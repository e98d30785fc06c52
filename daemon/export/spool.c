/* SPDX-License-Identifier: MIT */
/*
 * The spool's index of records not acknowledged, appends, reads and
 * acknowledgements, and the jobs that carry their file work to the thread
 * pool (spool-disk.c). Loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export/spool-internal.h"

/* ---- the index --------------------------------------------------------------------------- */

static ss_spool_rec *rec_at(ss_spool *s, uint64_t id)
{
        return &s->recs[(s->first + (size_t)(id - s->base_id)) % s->cap];
}

int ss_spool_rec_push(ss_spool *s, const ss_spool_rec *r)
{
        if (s->n == s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 64;
                ss_spool_rec *v = malloc(cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                for (size_t i = 0; i < s->n; i++)
                        v[i] = s->recs[(s->first + i) % (s->cap ? s->cap : 1)];
                free(s->recs);
                s->recs = v;
                s->cap = cap;
                s->first = 0;
        }
        s->recs[(s->first + s->n) % s->cap] = *r;
        s->n++;
        return 0;
}

static ss_spool_seg *seg_find(ss_spool *s, uint64_t seq)
{
        for (size_t i = 0; i < s->n_segs; i++)
                if (s->segs[i].seq == seq)
                        return &s->segs[i];
        return NULL;
}

ss_spool_seg *ss_spool_seg_add(ss_spool *s, uint64_t seq)
{
        if (s->n_segs == s->cap_segs) {
                size_t cap = s->cap_segs ? 2 * s->cap_segs : 8;
                ss_spool_seg *v = realloc(s->segs, cap * sizeof(*v));

                if (!v)
                        return NULL;
                s->segs = v;
                s->cap_segs = cap;
        }
        s->segs[s->n_segs] = (ss_spool_seg){.seq = seq};
        return &s->segs[s->n_segs++];
}

void ss_spool_unlink_later(ss_spool *s, uint64_t seq)
{
        if (s->n_unlinks == s->cap_unlinks) {
                size_t cap = s->cap_unlinks ? 2 * s->cap_unlinks : 8;
                uint64_t *v = realloc(s->unlinks, cap * sizeof(*v));

                if (!v) {
                        s->st.io_errors++; /* the file stays: replayed as corrupt at worst */
                        return;
                }
                s->unlinks = v;
                s->cap_unlinks = cap;
        }
        s->unlinks[s->n_unlinks++] = seq;
}

/* A segment lost its last record: delete it, unless appends still go to it. */
static void seg_release(ss_spool *s, uint64_t seq)
{
        ss_spool_seg *g = seg_find(s, seq);

        if (!g || --g->live > 0 || seq == s->write_seq)
                return;
        ss_spool_unlink_later(s, seq);
        *g = s->segs[--s->n_segs];
}

static void rec_forget(ss_spool *s, const ss_spool_rec *r)
{
        s->st.records--;
        s->st.bytes -= SS_SPOOL_RECORD_HEADER + r->len;
        s->st.spans -= r->n_spans;
        seg_release(s, r->seq);
}

/* Drop acknowledged records from the front; the head moves past them. */
static void advance(ss_spool *s)
{
        while (s->n > 0 && s->recs[s->first].acked) {
                ss_spool_rec r = s->recs[s->first];

                s->first = (s->first + 1) % s->cap;
                s->n--;
                s->base_id++;
                rec_forget(s, &r);
                s->head_dirty = true;
        }
        if (s->next_read < s->base_id)
                s->next_read = s->base_id;
}
/* ---- jobs -------------------------------------------------------------------------------- */

static void kick(ss_spool *s);

static void finish_close(ss_spool *s);

static void pending_free(ss_spool_wrec *w, size_t n)
{
        for (size_t i = 0; i < n; i++)
                ss_buf_free(&w[i].body);
}

static void after_read(ss_spool *s, ss_spool_job *j)
{
        ss_spool_read_cb cb = s->read_cb;
        ss_spool_rec *r;

        if (j->read_id < s->base_id || j->read_id >= s->base_id + s->n) {
                /* Dropped at the cap while it was read: read the next. */
                s->read_wanted = true;
                return;
        }
        r = rec_at(s, j->read_id);
        if (j->read_err == -EBADMSG) {
                /* Never sent as garbage: skipped, counted, the next one is read. */
                s->st.corrupt++;
                ss_log_rl(&s->rl, SS_LOG_WARNING,
                          "%s: spool %s: a corrupt record of %u spans skipped "
                          "event=spool-corrupt exporter=%s spans=%u",
                          s->name, s->dir, r->n_spans, s->name, r->n_spans);
                r->acked = true;
                advance(s);
                s->read_wanted = true;
                return;
        }
        if (j->read_err < 0) {
                s->st.io_errors++;
                s->read_cb = NULL;
                cb(s->read_ctx, 0, NULL, 0, j->read_err);
                return;
        }
        r->handed = true;
        s->next_read = j->read_id + 1;
        s->st.replayed++;
        s->read_cb = NULL;
        cb(s->read_ctx, j->read_id, &j->read_body, r->n_spans, 0);
}

static void after_work(uv_work_t *req, int status)
{
        ss_spool_job *j = req->data;
        ss_spool *s = j->s;

        s->running = NULL;
        if (status < 0 && !j->write_err)
                j->write_err = status;
        if (j->write_err) {
                s->st.io_errors++;
                ss_log_rl(&s->rl, SS_LOG_ERR, "%s: spool %s: %s event=spool-io-error exporter=%s",
                          s->name, s->dir, strerror(-j->write_err), s->name);
        }
        pending_free(j->w, j->n_w);
        free(j->w);
        free(j->unlink);
        if (j->read && !s->closing)
                after_read(s, j);
        ss_buf_free(&j->read_body);
        free(j);
        if (s->closing && !s->n_pend && !s->head_dirty && !s->n_unlinks) {
                finish_close(s);
                return;
        }
        kick(s);
}

/* The next record to hand out, or NULL. */
static ss_spool_rec *next_unread(ss_spool *s)
{
        for (uint64_t id = s->next_read; id < s->base_id + s->n; id++) {
                ss_spool_rec *r = rec_at(s, id);

                if (!r->handed && !r->acked) {
                        s->next_read = id;
                        return r;
                }
        }
        return NULL;
}

static void on_sync_timer(uv_timer_t *t)
{
        kick(t->data);
}

static bool sync_due(ss_spool *s)
{
        uint64_t now = uv_now(s->loop), every = s->cfg.fsync_interval_ms;

        if (!s->unsynced || s->cfg.fsync != SS_SPOOL_FSYNC_INTERVAL)
                return false;
        if (now - s->last_sync_ms >= every || s->closing)
                return true;
        (void)uv_timer_start(&s->sync_timer, on_sync_timer, every - (now - s->last_sync_ms), 0);
        return false;
}

static void kick(ss_spool *s)
{
        bool read = s->read_wanted && s->read_cb && next_unread(s);
        bool sync = sync_due(s);
        ss_spool_job *j;

        if (s->running)
                return;
        if (s->read_wanted && s->read_cb && !read) {
                ss_spool_read_cb cb = s->read_cb;

                s->read_wanted = false;
                s->read_cb = NULL;
                cb(s->read_ctx, 0, NULL, 0, -ENOENT);
                return;
        }
        if (!s->n_pend && !read && !s->head_dirty && !s->n_unlinks && !sync)
                return;
        j = calloc(1, sizeof(*j));
        if (!j)
                return; /* the next call tries again */
        j->req.data = j;
        j->s = s;
        j->w = s->pend;
        j->n_w = s->n_pend;
        s->pend = NULL;
        s->n_pend = s->cap_pend = 0;
        s->pend_bytes = 0;
        if (j->n_w)
                s->unsynced = true;
        j->fsync = (s->cfg.fsync == SS_SPOOL_FSYNC_ALWAYS && j->n_w) || sync;
        if (j->fsync) {
                s->unsynced = false;
                s->last_sync_ms = uv_now(s->loop);
        }
        if (read) {
                ss_spool_rec *r = rec_at(s, s->next_read);

                j->read = true;
                j->read_id = s->next_read;
                j->read_seq = r->seq;
                j->read_off = r->off;
                j->read_len = r->len;
                ss_buf_init(&j->read_body, SS_SPOOL_MAX_RECORD);
                s->read_wanted = false;
        }
        if (s->head_dirty) {
                ss_spool_rec *r = s->n ? &s->recs[s->first] : NULL;
                ss_spool_seg *g = seg_find(s, s->write_seq);

                j->head = true;
                j->head_seq = r ? r->seq : s->write_seq;
                j->head_off = r ? r->off : g ? g->size : 0;
                s->head_dirty = false;
        }
        j->unlink = s->unlinks;
        j->n_unlink = s->n_unlinks;
        s->unlinks = NULL;
        s->n_unlinks = s->cap_unlinks = 0;
        s->running = j;
        if (uv_queue_work(s->loop, &j->req, ss_spool_work, after_work) < 0) {
                s->running = NULL;
                ss_spool_work(&j->req); /* no pool: do it here rather than lose it */
                after_work(&j->req, 0);
        }
}

/* ---- appending --------------------------------------------------------------------------- */

/* Delete the oldest segment whole (its records and spans counted dropped). */
static void drop_oldest_segment(ss_spool *s)
{
        uint64_t seq;

        if (!s->n)
                return;
        seq = s->recs[s->first].seq;
        if (seq == s->write_seq)
                s->write_seq++; /* appends move on: this one can go */
        while (s->n > 0 && s->recs[s->first].seq == seq) {
                ss_spool_rec r = s->recs[s->first];

                /* One handed out is in the exporter's memory and may yet go through: its
                 * acknowledgement will find nothing, and it is not counted lost here. */
                if (!r.acked && !r.handed) {
                        s->st.dropped_full++;
                        s->st.dropped_full_spans += r.n_spans;
                }
                s->first = (s->first + 1) % s->cap;
                s->n--;
                s->base_id++;
                rec_forget(s, &r);
        }
        /* Appends of it still waiting for a job are moot. */
        for (size_t i = 0; i < s->n_pend;)
                if (s->pend[i].seq == seq) {
                        s->pend_bytes -= s->pend[i].body.len;
                        ss_buf_free(&s->pend[i].body);
                        memmove(&s->pend[i], &s->pend[i + 1],
                                (s->n_pend - i - 1) * sizeof(*s->pend));
                        s->n_pend--;
                } else {
                        i++;
                }
        if (s->next_read < s->base_id)
                s->next_read = s->base_id;
        s->head_dirty = true;
        ss_log_rl(&s->rl, SS_LOG_WARNING,
                  "%s: spool %s full (spool_bytes %llu): its oldest segment dropped "
                  "event=export-dropped exporter=%s reason=spool-full spool_bytes=%llu",
                  s->name, s->dir, (unsigned long long)s->cfg.max_bytes, s->name,
                  (unsigned long long)s->cfg.max_bytes);
}

int ss_spool_append(ss_spool *s, ss_buf *body, uint32_t n_spans)
{
        uint64_t size = SS_SPOOL_RECORD_HEADER + body->len;
        ss_spool_seg *g;
        ss_spool_wrec *w;
        ss_spool_rec r;

        if (body->len > SS_SPOOL_MAX_RECORD || size > s->cfg.max_bytes ||
            s->pend_bytes + body->len > SS_SPOOL_MAX_PENDING_BYTES) {
                s->st.refused++;
                s->st.refused_spans += n_spans;
                return body->len > SS_SPOOL_MAX_RECORD || size > s->cfg.max_bytes ? -EMSGSIZE
                                                                                  : -ENOBUFS;
        }
        while (s->st.bytes + size > s->cfg.max_bytes && s->n)
                drop_oldest_segment(s);
        g = seg_find(s, s->write_seq);
        if (g && g->size >= s->cfg.segment_bytes) {
                s->write_seq++;
                g = NULL;
        }
        if (!g && !(g = ss_spool_seg_add(s, s->write_seq)))
                return -ENOBUFS;
        if (s->n_pend == s->cap_pend) {
                size_t cap = s->cap_pend ? 2 * s->cap_pend : 16;
                ss_spool_wrec *v = realloc(s->pend, cap * sizeof(*v));

                if (!v)
                        return -ENOBUFS;
                s->pend = v;
                s->cap_pend = cap;
        }
        r = (ss_spool_rec){
            .seq = s->write_seq, .off = g->size, .len = (uint32_t)body->len, .n_spans = n_spans};
        if (ss_spool_rec_push(s, &r) < 0)
                return -ENOBUFS;
        w = &s->pend[s->n_pend++];
        w->seq = r.seq;
        w->off = r.off;
        ss_spool_record_header_put(w->hdr, body->data, r.len, n_spans);
        w->body = *body;
        ss_buf_init(body, body->max);
        s->pend_bytes += r.len;
        g->size += size;
        g->live++;
        s->st.records++;
        s->st.bytes += size;
        s->st.spans += n_spans;
        s->st.appended++;
        s->st.appended_spans += n_spans;
        kick(s);
        return 0;
}

/* ---- reading ----------------------------------------------------------------------------- */

bool ss_spool_has_more(const ss_spool *s)
{
        for (uint64_t id = s->next_read; id < s->base_id + s->n; id++) {
                const ss_spool_rec *r = &s->recs[(s->first + (size_t)(id - s->base_id)) % s->cap];

                if (!r->handed && !r->acked)
                        return true;
        }
        return false;
}

int ss_spool_read(ss_spool *s, ss_spool_read_cb done, void *ctx)
{
        if (s->read_cb)
                return -EBUSY;
        if (!ss_spool_has_more(s))
                return -ENOENT;
        s->read_cb = done;
        s->read_ctx = ctx;
        s->read_wanted = true;
        kick(s);
        return 0;
}

void ss_spool_ack(ss_spool *s, uint64_t id)
{
        ss_spool_rec *r;

        if (id < s->base_id || id >= s->base_id + s->n)
                return; /* dropped at the cap meanwhile */
        r = rec_at(s, id);
        if (r->acked)
                return;
        r->acked = true;
        s->st.acked++;
        advance(s);
        kick(s);
}

void ss_spool_rewind(ss_spool *s)
{
        for (uint64_t id = s->base_id; id < s->base_id + s->n; id++)
                rec_at(s, id)->handed = false;
        s->next_read = s->base_id;
}

const ss_spool_stats *ss_spool_stats_get(const ss_spool *s)
{
        return &s->st;
}
int ss_spool_open(uv_loop_t *loop, const ss_spool_config *cfg, const char *name, ss_spool **ret,
                  char *err, size_t err_size)
{
        ss_spool *s = calloc(1, sizeof(*s));
        int r;

        if (!s || !(s->dir = strdup(cfg->dir))) {
                free(s);
                snprintf(err, err_size, "out of memory");
                return -ENOMEM;
        }
        s->loop = loop;
        s->name = name;
        s->cfg = *cfg;
        s->cfg.dir = s->dir;
        s->cfg.max_bytes = cfg->max_bytes ? cfg->max_bytes : SS_SPOOL_MAX_BYTES_DEFAULT;
        s->cfg.segment_bytes =
            cfg->segment_bytes ? cfg->segment_bytes : SS_SPOOL_SEGMENT_BYTES_DEFAULT;
        s->cfg.fsync_interval_ms =
            cfg->fsync_interval_ms ? cfg->fsync_interval_ms : SS_SPOOL_FSYNC_INTERVAL_MS_DEFAULT;
        s->wfd = -1;
        s->dirfd = -1;
        r = ss_spool_recover(s, err, err_size);
        if (r == 0)
                r = uv_timer_init(loop, &s->sync_timer);
        if (r < 0) {
                if (s->dirfd >= 0)
                        close(s->dirfd);
                free(s->recs);
                free(s->segs);
                free(s->unlinks);
                free(s->dir);
                free(s);
                return r;
        }
        s->sync_timer.data = s;
        uv_unref((uv_handle_t *)&s->sync_timer);
        s->next_read = s->base_id;
        s->head_dirty = s->n_unlinks > 0;
        *ret = s;
        kick(s); /* segments found empty go now */
        return 0;
}

/* ---- closing ----------------------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
        ss_spool *s = h->data;
        void (*done)(void *ctx) = s->closed;
        void *ctx = s->closed_ctx;

        if (s->wfd >= 0) {
                if (s->cfg.fsync != SS_SPOOL_FSYNC_NEVER)
                        (void)fdatasync(s->wfd);
                close(s->wfd);
        }
        close(s->dirfd);
        pending_free(s->pend, s->n_pend);
        free(s->pend);
        free(s->recs);
        free(s->segs);
        free(s->unlinks);
        free(s->dir);
        free(s);
        done(ctx);
}

static void finish_close(ss_spool *s)
{
        uv_close((uv_handle_t *)&s->sync_timer, on_timer_closed);
}

void ss_spool_close(ss_spool *s, void (*done)(void *ctx), void *ctx)
{
        s->closing = true;
        s->closed = done;
        s->closed_ctx = ctx;
        s->read_cb = NULL;
        s->read_wanted = false;
        s->head_dirty = true;
        if (!s->running)
                kick(s); /* the last writes, the head and the deletions */
        if (!s->running)
                finish_close(s);
}
