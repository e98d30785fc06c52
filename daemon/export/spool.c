/* SPDX-License-Identifier: MIT */
#include "export/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "base/log.h"

#define SPOOL_VERSION 1u
#define HEAD_FILE     "head"
#define HEAD_TMP      "head.tmp"
#define HEAD_BYTES    20u /* seq, offset, CRC32C */

/*
 * One record not yet acknowledged, in append order. The loop owns the
 * index; the thread pool sees only the copies a job carries.
 */
typedef struct rec {
        uint64_t seq, off; /* where its header starts */
        uint32_t len;      /* of the body */
        uint32_t n_spans;
        bool handed; /* given to a reader, not acknowledged */
        bool acked;
} rec;

/* A segment with records still in the index. */
typedef struct seg {
        uint64_t seq;
        uint64_t size; /* bytes written or to be written */
        uint32_t live; /* records in the index */
} seg;

/* An append waiting for a job, or in one. */
typedef struct wrec {
        uint64_t seq, off;
        uint8_t hdr[SS_SPOOL_RECORD_HEADER];
        ss_buf body;
} wrec;

typedef struct job {
        uv_work_t req;
        ss_spool *s;
        wrec *w;
        size_t n_w;
        bool read;
        uint64_t read_id, read_seq, read_off;
        uint32_t read_len;
        ss_buf read_body;
        int read_err;
        uint64_t *unlink;
        size_t n_unlink;
        bool head;
        uint64_t head_seq, head_off;
        bool fsync;
        int write_err;
} job;

struct ss_spool {
        uv_loop_t *loop;
        const char *name;
        char *dir;
        int dirfd;
        ss_spool_config cfg;
        ss_spool_stats st;
        /* the index: records base_id.. in a ring */
        rec *recs;
        size_t cap, first, n;
        uint64_t base_id; /* id of recs[first] */
        uint64_t next_read;
        seg *segs;
        size_t n_segs, cap_segs;
        uint64_t write_seq; /* the segment appends go to */
        /* work for the next job */
        wrec *pend;
        size_t n_pend, cap_pend;
        size_t pend_bytes;
        uint64_t *unlinks;
        size_t n_unlinks, cap_unlinks;
        bool head_dirty;
        bool unsynced;
        uint64_t last_sync_ms;
        /* the reader */
        ss_spool_read_cb read_cb;
        void *read_ctx;
        bool read_wanted;
        /* the worker's: used by one job at a time */
        int wfd;
        uint64_t wfd_seq;
        job *running;
        uv_timer_t sync_timer;
        bool closing;
        void (*closed)(void *ctx);
        void *closed_ctx;
        ss_ratelimit rl;
};

/* ---- records on disk --------------------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le64(uint8_t *p, uint64_t v)
{
        put_le32(p, (uint32_t)v);
        put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_le64(const uint8_t *p)
{
        return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void header_put(uint8_t *h, const uint8_t *body, uint32_t len, uint32_t n_spans)
{
        memcpy(h, "SSPL", 4);
        h[4] = SPOOL_VERSION;
        h[5] = h[6] = h[7] = 0;
        put_le32(h + 8, len);
        put_le32(h + 12, n_spans);
        put_le32(h + 16, ss_crc32c(0, body, len));
        put_le32(h + 20, ss_crc32c(0, h, 20));
}

/* 0 with the body's length and span count when h is a record header we wrote; -EBADMSG. */
static int header_get(const uint8_t *h, uint32_t *ret_len, uint32_t *ret_spans)
{
        if (memcmp(h, "SSPL", 4) || h[4] != SPOOL_VERSION ||
            get_le32(h + 20) != ss_crc32c(0, h, 20) || get_le32(h + 8) > SS_SPOOL_MAX_RECORD)
                return -EBADMSG;
        *ret_len = get_le32(h + 8);
        *ret_spans = get_le32(h + 12);
        return 0;
}

static void seg_name(char *out, size_t n, uint64_t seq)
{
        snprintf(out, n, "%016" PRIx64 ".seg", seq);
}

static int full_pwrite(int fd, const struct iovec *iov, int n, off_t off)
{
        struct iovec v[2];
        size_t total = 0;

        memcpy(v, iov, sizeof(*iov) * (size_t)n);
        for (int i = 0; i < n; i++)
                total += v[i].iov_len;
        while (total > 0) {
                ssize_t w = pwritev(fd, v, n, off);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return w < 0 ? -errno : -EIO;
                total -= (size_t)w;
                off += w;
                for (int i = 0; i < n && w > 0; i++) {
                        size_t k = (size_t)w < v[i].iov_len ? (size_t)w : v[i].iov_len;

                        v[i].iov_base = (char *)v[i].iov_base + k;
                        v[i].iov_len -= k;
                        w -= (ssize_t)k;
                }
        }
        return 0;
}

static int full_pread(int fd, void *buf, size_t n, off_t off)
{
        size_t got = 0;

        while (got < n) {
                ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ENODATA; /* cut short */
                got += (size_t)r;
        }
        return 0;
}

/* ---- the worker -------------------------------------------------------------------------- */

static int open_write_seg(ss_spool *s, uint64_t seq)
{
        char name[32];

        if (s->wfd >= 0 && s->wfd_seq == seq)
                return 0;
        if (s->wfd >= 0) {
                if (s->cfg.fsync != SS_SPOOL_FSYNC_NEVER)
                        (void)fdatasync(s->wfd); /* a closed segment is whole on disk */
                close(s->wfd);
        }
        seg_name(name, sizeof(name), seq);
        s->wfd = openat(s->dirfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        s->wfd_seq = seq;
        return s->wfd < 0 ? -errno : 0;
}

static void work_read(ss_spool *s, job *j)
{
        uint8_t h[SS_SPOOL_RECORD_HEADER];
        uint32_t len, spans;
        char name[32];
        int fd, r;

        seg_name(name, sizeof(name), j->read_seq);
        fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                j->read_err = -errno;
                return;
        }
        r = full_pread(fd, h, sizeof(h), (off_t)j->read_off);
        if (r == 0)
                r = header_get(h, &len, &spans) < 0 || len != j->read_len ? -EBADMSG : 0;
        if (r == 0)
                r = ss_buf_reserve(&j->read_body, len);
        if (r == 0)
                r = full_pread(fd, j->read_body.data, len, (off_t)(j->read_off + sizeof(h)));
        if (r == 0 && get_le32(h + 16) != ss_crc32c(0, j->read_body.data, len))
                r = -EBADMSG;
        if (r == 0)
                j->read_body.len = len;
        close(fd);
        j->read_err = r == -ENODATA ? -EBADMSG : r;
}

static int work_head(ss_spool *s, const job *j)
{
        uint8_t b[HEAD_BYTES];
        int fd, r = 0;

        put_le64(b, j->head_seq);
        put_le64(b + 8, j->head_off);
        put_le32(b + 16, ss_crc32c(0, b, 16));
        fd = openat(s->dirfd, HEAD_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
                r = -EIO;
        if (r == 0 && s->cfg.fsync == SS_SPOOL_FSYNC_ALWAYS && fdatasync(fd) < 0)
                r = -errno;
        close(fd);
        if (r == 0 && renameat(s->dirfd, HEAD_TMP, s->dirfd, HEAD_FILE) < 0)
                r = -errno;
        return r;
}

static void work(uv_work_t *req)
{
        job *j = req->data;
        ss_spool *s = j->s;
        int r;

        for (size_t i = 0; i < j->n_w; i++) {
                wrec *w = &j->w[i];
                struct iovec v[2] = {{w->hdr, sizeof(w->hdr)}, {w->body.data, w->body.len}};

                r = open_write_seg(s, w->seq);
                if (r == 0)
                        r = full_pwrite(s->wfd, v, 2, (off_t)w->off);
                if (r < 0 && !j->write_err)
                        j->write_err = r;
        }
        if (j->fsync && s->wfd >= 0 && fdatasync(s->wfd) < 0 && !j->write_err)
                j->write_err = -errno;
        if (j->read)
                work_read(s, j);
        /* Acknowledged first, deleted after: a crash between keeps the records, not loses them. */
        if (j->head && (r = work_head(s, j)) < 0 && !j->write_err)
                j->write_err = r;
        for (size_t i = 0; i < j->n_unlink; i++) {
                char name[32];

                if (j->unlink[i] == s->wfd_seq && s->wfd >= 0) {
                        close(s->wfd);
                        s->wfd = -1;
                }
                seg_name(name, sizeof(name), j->unlink[i]);
                if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT && !j->write_err)
                        j->write_err = -errno;
        }
}

/* ---- the index --------------------------------------------------------------------------- */

static rec *rec_at(ss_spool *s, uint64_t id)
{
        return &s->recs[(s->first + (size_t)(id - s->base_id)) % s->cap];
}

static int rec_push(ss_spool *s, const rec *r)
{
        if (s->n == s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 64;
                rec *v = malloc(cap * sizeof(*v));

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

static seg *seg_find(ss_spool *s, uint64_t seq)
{
        for (size_t i = 0; i < s->n_segs; i++)
                if (s->segs[i].seq == seq)
                        return &s->segs[i];
        return NULL;
}

static seg *seg_add(ss_spool *s, uint64_t seq)
{
        if (s->n_segs == s->cap_segs) {
                size_t cap = s->cap_segs ? 2 * s->cap_segs : 8;
                seg *v = realloc(s->segs, cap * sizeof(*v));

                if (!v)
                        return NULL;
                s->segs = v;
                s->cap_segs = cap;
        }
        s->segs[s->n_segs] = (seg){.seq = seq};
        return &s->segs[s->n_segs++];
}

static void unlink_later(ss_spool *s, uint64_t seq)
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
        seg *g = seg_find(s, seq);

        if (!g || --g->live > 0 || seq == s->write_seq)
                return;
        unlink_later(s, seq);
        *g = s->segs[--s->n_segs];
}

static void rec_forget(ss_spool *s, const rec *r)
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
                rec r = s->recs[s->first];

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

static void pending_free(wrec *w, size_t n)
{
        for (size_t i = 0; i < n; i++)
                ss_buf_free(&w[i].body);
}

static void after_read(ss_spool *s, job *j)
{
        ss_spool_read_cb cb = s->read_cb;
        rec *r;

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
        job *j = req->data;
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
static rec *next_unread(ss_spool *s)
{
        for (uint64_t id = s->next_read; id < s->base_id + s->n; id++) {
                rec *r = rec_at(s, id);

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
        job *j;

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
                rec *r = rec_at(s, s->next_read);

                j->read = true;
                j->read_id = s->next_read;
                j->read_seq = r->seq;
                j->read_off = r->off;
                j->read_len = r->len;
                ss_buf_init(&j->read_body, SS_SPOOL_MAX_RECORD);
                s->read_wanted = false;
        }
        if (s->head_dirty) {
                rec *r = s->n ? &s->recs[s->first] : NULL;
                seg *g = seg_find(s, s->write_seq);

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
        if (uv_queue_work(s->loop, &j->req, work, after_work) < 0) {
                s->running = NULL;
                work(&j->req); /* no pool: do it here rather than lose it */
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
                rec r = s->recs[s->first];

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
        seg *g;
        wrec *w;
        rec r;

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
        if (!g && !(g = seg_add(s, s->write_seq)))
                return -ENOBUFS;
        if (s->n_pend == s->cap_pend) {
                size_t cap = s->cap_pend ? 2 * s->cap_pend : 16;
                wrec *v = realloc(s->pend, cap * sizeof(*v));

                if (!v)
                        return -ENOBUFS;
                s->pend = v;
                s->cap_pend = cap;
        }
        r = (rec){
            .seq = s->write_seq, .off = g->size, .len = (uint32_t)body->len, .n_spans = n_spans};
        if (rec_push(s, &r) < 0)
                return -ENOBUFS;
        w = &s->pend[s->n_pend++];
        w->seq = r.seq;
        w->off = r.off;
        header_put(w->hdr, body->data, r.len, n_spans);
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
                const rec *r = &s->recs[(s->first + (size_t)(id - s->base_id)) % s->cap];

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
        rec *r;

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

/* ---- opening ----------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return (x > y) - (x < y);
}

/* The segment sequences in the directory, sorted. */
static int list_segments(ss_spool *s, uint64_t **ret, size_t *ret_n)
{
        DIR *d = fdopendir(dup(s->dirfd));
        uint64_t *v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;

        if (!d)
                return -errno;
        while ((e = readdir(d))) {
                char *end;
                uint64_t seq;

                if (strlen(e->d_name) != 20 || strcmp(e->d_name + 16, ".seg"))
                        continue;
                seq = strtoull(e->d_name, &end, 16);
                if (end != e->d_name + 16)
                        continue;
                if (n == cap) {
                        uint64_t *w = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

                        if (!w) {
                                free(v);
                                closedir(d);
                                return -ENOMEM;
                        }
                        v = w;
                }
                v[n++] = seq;
        }
        closedir(d);
        if (n > 0) /* qsort() of NULL is undefined, even of nothing */
                qsort(v, n, sizeof(*v), cmp_u64);
        *ret = v;
        *ret_n = n;
        return 0;
}

/* The acknowledged position from "head": (0, 0) when it is missing or damaged. */
static void read_head(ss_spool *s, uint64_t *seq, uint64_t *off)
{
        uint8_t b[HEAD_BYTES];
        int fd = openat(s->dirfd, HEAD_FILE, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, b, sizeof(b)) : -1;

        *seq = *off = 0;
        if (fd >= 0)
                close(fd);
        if (n == (ssize_t)sizeof(b) && get_le32(b + 16) == ss_crc32c(0, b, 16)) {
                *seq = get_le64(b);
                *off = get_le64(b + 8);
        } else if (fd >= 0) {
                s->st.corrupt++;
                ss_log(SS_LOG_WARNING,
                       "%s: spool %s: damaged head file: replaying everything "
                       "event=spool-corrupt exporter=%s what=head",
                       s->name, s->dir, s->name);
        }
}

/*
 * Index one segment's records after the head. A record whose body fails its
 * CRC is skipped (its header vouches for its length); a bad or cut header
 * ends the segment: nothing after it can be found safely.
 */
static int scan_segment(ss_spool *s, uint64_t seq, uint64_t head_seq, uint64_t head_off)
{
        char name[32];
        struct stat stbuf;
        uint8_t h[SS_SPOOL_RECORD_HEADER];
        uint64_t off = 0, live = 0;
        ss_buf body;
        int fd, r = 0;
        seg *g;

        seg_name(name, sizeof(name), seq);
        fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &stbuf) < 0) {
                if (fd >= 0)
                        close(fd);
                return -errno;
        }
        g = seg_add(s, seq);
        ss_buf_init(&body, SS_SPOOL_MAX_RECORD);
        while (g && off < (uint64_t)stbuf.st_size) {
                uint32_t len, spans;
                rec rc;

                if (full_pread(fd, h, sizeof(h), (off_t)off) < 0 ||
                    header_get(h, &len, &spans) < 0 ||
                    off + sizeof(h) + len > (uint64_t)stbuf.st_size) {
                        s->st.corrupt++; /* a torn tail or a broken header: the rest goes */
                        break;
                }
                rc = (rec){.seq = seq, .off = off, .len = len, .n_spans = spans};
                off += sizeof(h) + len;
                if (seq < head_seq || (seq == head_seq && rc.off < head_off))
                        continue; /* acknowledged before the last stop */
                ss_buf_reset(&body);
                if (ss_buf_reserve(&body, len) < 0 ||
                    full_pread(fd, body.data, len, (off_t)(rc.off + sizeof(h))) < 0 ||
                    get_le32(h + 16) != ss_crc32c(0, body.data, len)) {
                        s->st.corrupt++;
                        continue;
                }
                if ((r = rec_push(s, &rc)) < 0)
                        break;
                live++;
                s->st.records++;
                s->st.bytes += sizeof(h) + len;
                s->st.spans += spans;
        }
        ss_buf_free(&body);
        close(fd);
        if (!g)
                return -ENOMEM;
        g->size = (uint64_t)stbuf.st_size;
        g->live = (uint32_t)live;
        if (!live) {
                s->n_segs--; /* nothing left to send in it */
                unlink_later(s, seq);
        }
        return r;
}

/* mkdir -p, each new level 0700: the spool root and the exporter's directory in it. */
static int make_dirs(char *path)
{
        for (char *p = path + 1;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char c = *p;

                *p = '\0';
                if (mkdir(path, 0700) < 0 && errno != EEXIST) {
                        *p = c;
                        return -errno;
                }
                *p = c;
                if (!c)
                        return 0;
        }
}

static int open_dir(ss_spool *s, char *err, size_t err_size)
{
        struct stat st;
        int r = make_dirs(s->dir);

        if (r < 0) {
                snprintf(err, err_size, "cannot create the directory: %s", strerror(-r));
                return r;
        }
        s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dirfd < 0 || fstat(s->dirfd, &st) < 0) {
                int e = errno;

                snprintf(err, err_size, "cannot open the directory: %s", strerror(e));
                return -e;
        }
        if (faccessat(s->dirfd, ".", W_OK, AT_EACCESS) < 0) {
                snprintf(err, err_size, "the directory is not writable by the daemon");
                return -EACCES;
        }
        /* Two daemons appending to one spool would interleave and acknowledge each other's
         * records: the second is refused (the lock goes with the descriptor, at close or
         * at a crash). */
        if (flock(s->dirfd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;

                snprintf(err, err_size, "%s",
                         e == EWOULDBLOCK ? "in use by another sidespand (locked)" : strerror(e));
                return e == EWOULDBLOCK ? -EBUSY : -e;
        }
        return 0;
}

int ss_spool_open(uv_loop_t *loop, const ss_spool_config *cfg, const char *name, ss_spool **ret,
                  char *err, size_t err_size)
{
        ss_spool *s = calloc(1, sizeof(*s));
        uint64_t *seqs = NULL, head_seq, head_off;
        size_t n = 0;
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
        r = open_dir(s, err, err_size);
        if (r == 0 && (r = list_segments(s, &seqs, &n)) < 0)
                snprintf(err, err_size, "cannot list the directory: %s", strerror(-r));
        if (r == 0) {
                read_head(s, &head_seq, &head_off);
                for (size_t i = 0; i < n && r == 0; i++)
                        if ((r = scan_segment(s, seqs[i], head_seq, head_off)) < 0)
                                snprintf(err, err_size, "cannot read a segment: %s", strerror(-r));
                /* Appends start a segment of their own, after every one found. */
                s->write_seq = n ? seqs[n - 1] + 1 : 1;
        }
        free(seqs);
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
