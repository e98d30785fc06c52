/* SPDX-License-Identifier: MIT */
/*
 * fuzz-frame: a byte stream as one client connection sends it, read in
 * chunks whose sizes the input chooses, through the daemon's connection
 * reader (ingest/connection.c process()): ss_frame_parse() over the buffered
 * bytes, ss_wire_decode() of every whole frame, the connection closed at the
 * first bad frame. The frames found and where the connection closes must
 * not depend on how the stream was cut into reads.
 *
 * Input: [k: 1 byte][k read sizes: 1 byte each, 0 meaning 256][the stream]
 */
#include <errno.h>
#include <stdlib.h>

#include "fuzz-util.h"
#include "ss-buf.h"

#define MAX_FRAME  SS_MAX_FRAME_DEFAULT
#define READ_CHUNK (64u * 1024u) /* as ingest/connection.c */
#define MAX_CUTS   32u

/* What the reader saw, to compare a chunked read with a whole one. */
typedef struct seen {
        size_t frames;
        uint64_t digest; /* over (offset, length, decode result, type) of every frame */
        size_t consumed; /* stream bytes taken as whole frames */
        int closed;      /* 0 while open, else the error that closed the connection */
} seen;

typedef struct conn {
        ss_buf in;
        seen s;
} conn;

static void mix(uint64_t *h, uint64_t v)
{
        *h = (*h ^ v) * 0x100000001b3ull;
}

static void frame(conn *c, const uint8_t *payload, size_t len)
{
        msgpack_unpacked u;
        ss_msg m;
        int r = fz_decode(payload, len, &u, &m);

        mix(&c->s.digest, c->s.consumed);
        mix(&c->s.digest, len);
        mix(&c->s.digest, (uint64_t)(int64_t)r);
        mix(&c->s.digest, r == 0 || r == -ENOTSUP ? m.type : 0);
        c->s.frames++;
        /* connection.c closes on a frame that is not a message, and on daemon messages. */
        if (r != 0 && r != -ENOTSUP)
                c->s.closed = r;
        else if (r == 0 && (m.type == SS_MSG_FLUSHED || m.type == SS_MSG_STATS_REPLY))
                c->s.closed = -EPROTO;
        msgpack_unpacked_destroy(&u);
}

/* ingest/connection.c process(): every whole frame at the front of the buffer. */
static void process(conn *c)
{
        size_t off = 0;

        while (!c->s.closed) {
                const uint8_t *payload = NULL;
                size_t len = 0, avail = c->in.len - off;
                int r = ss_frame_parse(c->in.data + off, avail, MAX_FRAME, &payload, &len);

                if (r == 0) {
                        FZ_ASSERT(avail < SS_FRAME_HEADER ||
                                  avail - SS_FRAME_HEADER < ss_frame_header_get(c->in.data + off));
                        break;
                }
                if (r < 0) {
                        uint32_t n = ss_frame_header_get(c->in.data + off);

                        FZ_ASSERT(avail >= SS_FRAME_HEADER);
                        FZ_ASSERT((r == -EBADMSG && n == 0) || (r == -EMSGSIZE && n > MAX_FRAME));
                        c->s.closed = r;
                        break;
                }
                FZ_ASSERT((size_t)r == SS_FRAME_HEADER + len && (size_t)r <= avail);
                FZ_ASSERT(len >= 1 && len <= MAX_FRAME);
                FZ_ASSERT(payload == c->in.data + off + SS_FRAME_HEADER);
                frame(c, payload, len);
                off += (size_t)r;
                c->s.consumed += (size_t)r;
        }
        ss_buf_consume(&c->in, off);
}

/* One read of up to n bytes, as much as on_alloc() makes room for; returns the bytes taken. */
static size_t read_some(conn *c, const uint8_t *p, size_t n)
{
        size_t room = c->in.max - c->in.len;

        if (room > READ_CHUNK)
                room = READ_CHUNK;
        if (n > room)
                n = room;
        FZ_ASSERT(n > 0); /* a buffer with no room holds a whole frame, which process() took */
        FZ_ASSERT(ss_buf_append(&c->in, p, n) == 0);
        process(c);
        return n;
}

static seen run(const uint8_t *p, size_t n, const uint8_t *cuts, size_t ncuts)
{
        conn c = {0};

        ss_buf_init(&c.in, MAX_FRAME + SS_FRAME_HEADER + READ_CHUNK);
        for (size_t i = 0, k = 0; i < n && !c.s.closed; k++) {
                size_t want = ncuts ? (cuts[k % ncuts] ? cuts[k % ncuts] : 256) : n - i;

                if (want > n - i)
                        want = n - i;
                i += read_some(&c, p + i, want);
        }
        ss_buf_free(&c.in);
        return c.s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fz_in in = {data, size};
        size_t ncuts = fz_u8(&in) % (MAX_CUTS + 1), got;
        const uint8_t *cuts = fz_bytes(&in, ncuts, &got);
        seen whole, chunked;

        whole = run(in.p, in.n, NULL, 0);
        chunked = run(in.p, in.n, cuts, got);
        FZ_ASSERT(whole.consumed <= in.n);
        FZ_ASSERT(whole.frames == chunked.frames && whole.digest == chunked.digest);
        FZ_ASSERT(whole.consumed == chunked.consumed && whole.closed == chunked.closed);
        return 0;
}
