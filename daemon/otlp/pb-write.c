/* SPDX-License-Identifier: MIT */
#include "otlp/pb-write.h"

#include <errno.h>

static void place(ss_pbw *w, size_t written)
{
        ss_buf *b = w->out;

        w->lo = b->data + b->len;
        w->end = b->data + b->cap;
        w->p = w->end - written;
}

void ss_pbw_init(ss_pbw *w, ss_buf *out, size_t hint)
{
        size_t room = out->max - out->len, want = hint < 64 ? 64 : hint;
        int r;

        *w = (ss_pbw){.out = out};
        r = ss_buf_reserve(out, want < room ? want : room);
        if (r < 0 || !out->data) {
                w->err = r < 0 ? r : -ENOBUFS;
                return;
        }
        place(w, 0);
}

bool ss_pbw_grow(ss_pbw *w, size_t n)
{
        ss_buf *b = w->out;
        size_t written = ss_pbw_pos(w), old_end = b->head + b->cap, room = b->max - b->len, want;
        int r;

        if (w->err)
                return false;
        if (n > room || written > room - n) {
                w->err = -ENOBUFS;
                return false;
        }
        /* Double the room, or take what is needed, within the maximum. */
        want = 2 * (b->cap - b->len);
        if (want < written + n)
                want = written + n;
        if (want > room)
                want = room;
        r = ss_buf_reserve(b, want);
        if (r < 0) {
                w->err = r;
                return false;
        }
        /* realloc kept the allocation's bytes (and ss_buf_reserve() may have moved the contents
         * to its start, ss_buf_take_tail()): the written tail moves to the new end. */
        memmove(b->data + b->cap - written, b->data - b->head + old_end - written, written);
        place(w, written);
        return true;
}

int ss_pbw_finish(ss_pbw *w)
{
        size_t written;

        if (w->err)
                return w->err;
        written = ss_pbw_pos(w);
        /* Into an empty buffer, the bytes stay where they were written, at its end. */
        if (w->out->len == 0) {
                ss_buf_take_tail(w->out, written);
                return 0;
        }
        memmove(w->lo, w->p, written);
        w->out->len += written;
        return 0;
}
