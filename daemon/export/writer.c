/* SPDX-License-Identifier: MIT */
#include "export/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/log.h"
#include "ss-macro.h"

/* Chunks one file write takes at most (a vector write; IOV_MAX is 1024). */
#define WRITE_BUFS 64u

union ss_writer_stream {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tty_t tty;
};

struct ss_writer_chunk {
        ss_writer_chunk *next;
        uv_write_t wreq; /* stream mode */
        ss_writer *w;
        ss_buf data;
        size_t off; /* file mode: bytes written so far */
        size_t items;
};

static void chunk_done(ss_writer *w, ss_writer_chunk *c, int status)
{
        w->queued -= c->data.len;
        w->done(w->ctx, c->items, status);
        ss_buf_free(&c->data);
        free(c);
}

/* ---- streams ---------------------------------------------------------------------------- */

static void on_stream_written(uv_write_t *req, int status)
{
        ss_writer_chunk *c = ss_container_of(req, ss_writer_chunk, wreq);

        chunk_done(c->w, c, status < 0 ? status : 0);
}

static int stream_write(ss_writer *w, ss_writer_chunk *c)
{
        uv_buf_t b = uv_buf_init((char *)c->data.data, (unsigned)c->data.len);

        return uv_write(&c->wreq, &w->s->stream, &b, 1, on_stream_written);
}

/* ---- files ------------------------------------------------------------------------------ */

static void fs_next(ss_writer *w);

static void on_fs_written(uv_fs_t *req)
{
        ss_writer *w = ss_container_of(req, ss_writer, req);
        ssize_t n = req->result;
        size_t left = n > 0 ? (size_t)n : 0;

        uv_fs_req_cleanup(req);
        w->fs_busy = false;
        if (n < 0 && w->head) {
                /* Nothing of the write went out: the first chunk fails, the rest is tried. */
                ss_writer_chunk *c = w->head;

                w->head = c->next;
                chunk_done(w, c, (int)n);
        }
        /* The chunks the write covered whole are done; a short one goes on from its offset. */
        while (left && w->head) {
                ss_writer_chunk *c = w->head;
                size_t take = c->data.len - c->off < left ? c->data.len - c->off : left;

                c->off += take;
                left -= take;
                if (c->off < c->data.len)
                        break;
                w->head = c->next;
                chunk_done(w, c, 0);
        }
        if (!w->head)
                w->tail = NULL;
        fs_next(w);
}

static void on_fs_closed(uv_fs_t *req)
{
        ss_writer *w = ss_container_of(req, ss_writer, req);

        uv_fs_req_cleanup(req);
        w->closed(w->ctx);
}

/* Start the next file write, of every chunk queued up to WRITE_BUFS, or finish a close once
 * nothing is in flight. One write for all of them: a write per chunk, each waiting for the
 * loop to see the last one done, fell behind the encoder of a busy loop. */
static void fs_next(ss_writer *w)
{
        uv_buf_t b[WRITE_BUFS];
        ss_writer_chunk *c;
        unsigned nb = 0;
        int r;

        while (!w->fs_busy && w->head) {
                if (w->closing) {
                        c = w->head;
                        w->head = c->next;
                        chunk_done(w, c, -ECANCELED);
                        continue;
                }
                for (c = w->head, nb = 0; c && nb < WRITE_BUFS; c = c->next, nb++)
                        b[nb] = uv_buf_init((char *)c->data.data + c->off,
                                            (unsigned)(c->data.len - c->off));
                r = uv_fs_write(w->loop, &w->req, w->fd, b, nb, -1, on_fs_written);
                if (r == 0) {
                        w->fs_busy = true;
                        return;
                }
                c = w->head;
                w->head = c->next;
                chunk_done(w, c, r);
        }
        if (!w->head)
                w->tail = NULL;
        if (!w->closing || w->fs_busy)
                return;
        /* The request is the close's from now on: a close asked for from inside done() runs
         * this twice, and the second must leave it alone. */
        w->fs_busy = true;
        /* uv_fs_close() fails only without memory: then close here, and say so at once. */
        if (uv_fs_close(w->loop, &w->req, w->fd, on_fs_closed) < 0) {
                close(w->fd);
                w->closed(w->ctx);
        }
}

/* ---- the writer ------------------------------------------------------------------------- */

static void on_open_failed(uv_handle_t *h)
{
        free(h);
}

/* Stream mode for a terminal or a pipe (FIFOs and sockets included); files stay in file mode. */
static int stream_open(ss_writer *w, int fd)
{
        uv_handle_type t = uv_guess_handle(fd);
        ss_writer_stream *s;
        int r;

        if (t != UV_TTY && t != UV_NAMED_PIPE)
                return 0; /* a file: the thread pool writes it */
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (t == UV_TTY)
                r = uv_tty_init(w->loop, &s->tty, fd, 0);
        else if ((r = uv_pipe_init(w->loop, &s->pipe, 0)) == 0 &&
                 (r = uv_pipe_open(&s->pipe, fd)) < 0)
                uv_close(&s->handle, on_open_failed);
        if (r < 0) {
                if (t == UV_TTY || !s->handle.loop)
                        free(s);
                return r;
        }
        s->handle.data = w;
        w->s = s;
        return 0;
}

int ss_writer_open(ss_writer *w, uv_loop_t *loop, int fd, bool own_fd, size_t max_queued,
                   void (*done)(void *ctx, size_t items, int status), void *ctx)
{
        int r;

        *w = (ss_writer){.loop = loop, .max_queued = max_queued, .done = done, .ctx = ctx};
        /* Work on a descriptor of our own, so that closing is the same in every case (a stream
         * handle closes its fd; a file is closed on the thread pool) and two writers may
         * share stdout. */
        if (!own_fd && (fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
                return -errno;
        w->fd = fd;
        r = stream_open(w, fd);
        if (r < 0 && !own_fd)
                close(fd);
        return r;
}

int ss_writer_write(ss_writer *w, ss_buf *data, size_t items)
{
        ss_writer_chunk *c;
        int r;

        if (w->closing)
                return -ECANCELED;
        if (data->len > w->max_queued - w->queued)
                return -ENOBUFS;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (ss_writer_chunk){.w = w, .data = *data, .items = items};
        if (w->s) {
                r = stream_write(w, c);
                if (r < 0) {
                        free(c);
                        return r;
                }
        } else {
                if (w->tail)
                        w->tail->next = c;
                else
                        w->head = c;
                w->tail = c;
        }
        w->queued += c->data.len;
        ss_buf_init(data, data->max);
        if (!w->s)
                fs_next(w);
        return 0;
}

static void on_stream_closed(uv_handle_t *h)
{
        ss_writer *w = h->data;

        /* The handle closed its fd (our copy when we did not own the original). */
        free(w->s);
        w->s = NULL;
        w->closed(w->ctx);
}

void ss_writer_close(ss_writer *w, void (*closed)(void *ctx))
{
        w->closing = true;
        w->closed = closed;
        if (w->s) {
                /* Writes still queued complete with UV_ECANCELED before the close callback. */
                uv_close(&w->s->handle, on_stream_closed);
                return;
        }
        fs_next(w);
}
