/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * An ordered writer that never blocks the loop, for the exporters that write
 * to a file descriptor (file, console). Pipes, FIFOs, sockets and terminals
 * are written as libuv streams (non-blocking, driven by the loop); regular
 * files and anything else through uv_fs_write() on the thread pool, one
 * write at a time. Either way chunks go out whole and in order. The bytes
 * queued are bounded: a chunk past the bound is refused, so a reader that
 * never reads costs memory up to the bound and then drops, counted by the
 * owner. Embedded in its owner; the stream handle is allocated apart so that
 * a failed open can close it without holding the owner up. Loop thread only.
 */

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "ss-buf.h"

#define SS_WRITER_MAX_QUEUED_DEFAULT ((size_t)64 << 20)

typedef struct ss_writer_chunk ss_writer_chunk;
typedef union ss_writer_stream ss_writer_stream;

typedef struct ss_writer {
        uv_loop_t *loop;
        ss_writer_stream *s; /* stream mode; freed in its close callback */
        bool closing;
        uv_file fd;
        uv_fs_t req; /* the one file write (or the close) in flight */
        bool fs_busy;
        ss_writer_chunk *head, *tail; /* file mode: chunks not yet written */
        size_t queued;                /* bytes handed in and not yet written */
        size_t max_queued;
        /* A chunk of items (e.g. spans) was written (status 0) or given up (-errno). */
        void (*done)(void *ctx, size_t items, int status);
        void *ctx;
        void (*closed)(void *ctx);
} ss_writer;

/*
 * Write to fd: taken when own_fd (closed with the writer), else a duplicate
 * is written and closed, the caller's staying open. 0 or a negative errno;
 * on failure an fd the writer took is the caller's again. done() reports
 * every chunk once, also those dropped at close.
 */
int ss_writer_open(ss_writer *w, uv_loop_t *loop, int fd, bool own_fd, size_t max_queued,
                   void (*done)(void *ctx, size_t items, int status), void *ctx);

/*
 * Queue the bytes of data (taken: data is left empty) standing for items.
 * -ENOBUFS when they would pass max_queued, -ENOMEM, or a libuv error; data
 * is then left as it was and done() is not called.
 */
int ss_writer_write(ss_writer *w, ss_buf *data, size_t items);

/* True while bytes are queued or being written. */
static inline bool ss_writer_busy(const ss_writer *w)
{
        return w->queued > 0;
}

/*
 * How full the queue is, in percent, for the ingest stage's backpressure: a file keeps up, so
 * a full queue means the loop encoded faster than the thread pool wrote. 0 for a stream,
 * whose reader may never read: holding every client for it would stall the other exporters.
 */
static inline unsigned ss_writer_pressure(const ss_writer *w)
{
        if (w->s || !w->max_queued)
                return 0;
        return (unsigned)(w->queued * 100 / w->max_queued);
}

/* True when the fd is written as a stream (a pipe, a FIFO, a terminal): one whose reader may
 * never read, where waiting for the queue to drain may never end. */
static inline bool ss_writer_is_stream(const ss_writer *w)
{
        return w->s != NULL;
}

/* Give up what is queued (done() with -ECANCELED), close, then closed(ctx) from the loop.
 * A file write already on the thread pool is waited for. May be called from done(). */
void ss_writer_close(ss_writer *w, void (*closed)(void *ctx));
