/* SPDX-License-Identifier: MIT */
#include "ingest/connection.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"

#define READ_CHUNK (64u * 1024u)
/* An input buffer that grew past this for a large frame is given back once it drains. */
#define SHRINK_ABOVE (256u * 1024u)
/* ...when it has not needed that much for this long. */
#define SHRINK_AFTER_MS 2000u
/* Replies a peer has not read yet: past this it is not reading, and is closed. */
#define MAX_REPLY_QUEUED (1u << 20)

/* ---- the input budget ------------------------------------------------------------------- */

/* What of a buffer of cap bytes the budget holds: every connection reads its first chunk
 * outside it, so a newcomer is always served and a peer's close always seen. */
static size_t budget_share(size_t cap)
{
        return cap > READ_CHUNK ? cap - READ_CHUNK : 0;
}

/* The input buffer's allocation changed: move the difference in or out of the budget. */
static void budget_update(ss_conn *c)
{
        ss_input_budget *b = c->env->budget;
        size_t share = budget_share(c->in.cap);

        b->used = b->used - c->in_counted + share;
        c->in_counted = share;
}

static void budget_pause(ss_conn *c)
{
        ss_input_budget *b = c->env->budget;

        c->paused = true;
        c->paused_prev = NULL;
        c->paused_next = b->paused;
        if (b->paused)
                b->paused->paused_prev = c;
        b->paused = c;
        c->env->stats->input_paused++;
        ss_log_ratelimited(SS_LOG_WARNING,
                           "connection %llu (pid %d): reading paused, the daemon's input "
                           "buffers hold max_input_bytes (%llu) event=input-paused conn=%llu "
                           "pid=%d limit=max_input_bytes max_input_bytes=%llu",
                           (unsigned long long)c->id, (int)c->pid, (unsigned long long)b->max,
                           (unsigned long long)c->id, (int)c->pid, (unsigned long long)b->max);
        /* Reading stops in on_read(): libuv calls the read callback once more for the empty
         * buffer, and uv_read_stop() here would have cleared it. */
}

static void budget_unlink(ss_conn *c)
{
        ss_input_budget *b = c->env->budget;

        if (!c->paused)
                return;
        if (c->paused_prev)
                c->paused_prev->paused_next = c->paused_next;
        else
                b->paused = c->paused_next;
        if (c->paused_next)
                c->paused_next->paused_prev = c->paused_prev;
        c->paused = false;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static bool process(ss_conn *c);
static bool hold_now(ss_conn *c);

/* Room came back: let paused connections read again, oldest pause last. */
static void budget_resume(ss_input_budget *b)
{
        while (b->paused && (!b->max || b->used + READ_CHUNK <= b->max)) {
                ss_conn *c = b->paused;

                budget_unlink(c);
                if (!c->held && uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
                        ss_conn_close_because(c, "cannot read again");
        }
}

void ss_conn_resume(ss_conn *c)
{
        uint64_t now = uv_now(c->pipe.loop);

        /* Connections resume one after another: once those before have filled the exporters
         * again, the rest stay held, their reads unprocessed. */
        if (!c->held || c->closing || hold_now(c))
                return;
        c->held = false;
        c->last_read_ms = now;
        if (c->partial_since_ms)
                c->partial_since_ms = now;
        if (c->in.len) {
                if (process(c) || hold_now(c)) {
                        c->held = true;
                        return;
                }
                if (c->closing)
                        return;
        }
        if (!c->paused && uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
                ss_conn_close_because(c, "cannot read again");
}

void ss_conn_process_held(ss_conn *c)
{
        if (c->held && !c->closing && c->in.len)
                (void)process(c);
}

/* ---- closing ---------------------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
        ss_conn *c = (ss_conn *)h;

        if (c->session)
                ss_session_detach(c->session);
        ss_buf_free(&c->in);
        budget_update(c);
        budget_resume(c->env->budget);
        /* Last: the listener may go with its last connection, and c->env with it. */
        c->env->closed(c->env->ctx, c);
        free(c);
}

void ss_conn_close(ss_conn *c)
{
        if (c->closing)
                return;
        c->closing = true;
        budget_unlink(c);
        /* Before the handle closes: the tap writes to it no more. */
        ss_tap_unsubscribe(ss_control_tap(c->env->control), c->sub);
        c->sub = NULL;
        uv_close((uv_handle_t *)&c->pipe, on_closed);
}

void ss_conn_close_because(ss_conn *c, const char *why)
{
        ss_log_ratelimited(SS_LOG_WARNING,
                           "closing connection %llu (pid %d): %s event=conn-closed "
                           "conn=%llu pid=%d reason=\"%s\"",
                           (unsigned long long)c->id, (int)c->pid, why, (unsigned long long)c->id,
                           (int)c->pid, why);
        ss_conn_close(c);
}

static void conn_fail(ss_conn *c, const char *what, int err)
{
        c->env->stats->protocol_errors++;
        ss_log_ratelimited(SS_LOG_WARNING,
                           "closing connection %llu (pid %d): %s (%s) event=conn-closed "
                           "conn=%llu pid=%d reason=\"%s\" error=\"%s\"",
                           (unsigned long long)c->id, (int)c->pid, what, strerror(-err),
                           (unsigned long long)c->id, (int)c->pid, what, strerror(-err));
        ss_conn_close(c);
}

/* ---- replies ---------------------------------------------------------------------------- */

typedef struct reply {
        uv_write_t req;
        ss_buf data;
} reply;

static void on_reply_written(uv_write_t *req, int status)
{
        reply *r = (reply *)req;

        ss_buf_free(&r->data);
        free(r);
}

/* Send the frame build() appends (FLUSHED, STATS_REPLY). */
static void send_reply(ss_conn *c, int err, reply *r)
{
        uv_buf_t b;

        if (err < 0) {
                if (r)
                        ss_buf_free(&r->data);
                free(r);
                conn_fail(c, "cannot build a reply", err);
                return;
        }
        b = uv_buf_init((char *)r->data.data, (unsigned)r->data.len);
        /* A peer that never reads its replies must not grow our memory. */
        if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > MAX_REPLY_QUEUED ||
            uv_write(&r->req, (uv_stream_t *)&c->pipe, &b, 1, on_reply_written) < 0) {
                on_reply_written(&r->req, 0);
                conn_fail(c, "peer does not read its replies", -ENOBUFS);
        }
}

static reply *reply_new(void)
{
        reply *r = calloc(1, sizeof(*r));

        if (r)
                ss_buf_init(&r->data, SS_CONTROL_MAX_REPLY);
        return r;
}

/* A client that is not the daemon's user or root sees only what concerns it. */
static int own_stats(const ss_conn *c, uint64_t id, ss_buf *out)
{
        ss_counters own;
        int r;

        ss_counters_init(&own);
        ss_counters_add(&own, NULL, "connection.frames", c->frames);
        if (c->session)
                ss_session_counters(c->session, &own);
        r = own.err ? own.err : ss_wire_put_stats(out, SS_CONTROL_MAX_REPLY, id, own.v, own.n);
        ss_counters_free(&own);
        return r;
}

static void control_message(ss_conn *c, const ss_msg *m)
{
        reply *r = reply_new();
        int err = -ENOMEM;

        if (r && m->type == SS_MSG_FLUSH) {
                c->env->stats->flushes++;
                err = ss_control_flush(c->env->control, m->seq.seq, &r->data);
        } else if (r && (c->uid == 0 || c->uid == c->env->daemon_uid)) {
                err = ss_control_stats(c->env->control, m->seq.seq, &r->data);
        } else if (r) {
                err = own_stats(c, m->seq.seq, &r->data);
        }
        send_reply(c, err, r);
}

/* ---- messages --------------------------------------------------------------------------- */

/* SUBSCRIBE: the daemon's user and root see every client's traces, others their uid's. */
static void subscribe(ss_conn *c, const ss_msg *m)
{
        ss_tap *tap = ss_control_tap(c->env->control);
        int r;

        if (c->sub) {
                conn_fail(c, "second SUBSCRIBE on one connection", -EPROTO);
                return;
        }
        r = tap ? ss_tap_subscribe(tap, (uv_stream_t *)&c->pipe, c->uid,
                                   c->uid == 0 || c->uid == c->env->daemon_uid, m->subscribe.filter,
                                   &c->sub)
                : -ENOTSUP;
        if (r < 0)
                conn_fail(c, "cannot subscribe", r);
}

static void hello(ss_conn *c, const ss_msg *m)
{
        if (c->session) {
                conn_fail(c, "second HELLO on one connection", -EPROTO);
                return;
        }
        if (m->hello.version != SS_PROTOCOL_VERSION) {
                conn_fail(c, "unsupported protocol version", -EPROTONOSUPPORT);
                return;
        }
        c->session = ss_assembler_hello(c->env->assembler, m->hello.options, c->pid, c->uid);
        if (!c->session)
                conn_fail(c, "cannot create a session", -ENOMEM);
}

static const char *span_error(int r)
{
        return r == -ENOENT   ? "no such open span in this session"
               : r == -EEXIST ? "span id already open"
               : r == -ENOSPC ? "too many open spans"
                              : strerror(-r);
}

static void span_message(ss_conn *c, const ss_msg *m)
{
        int r;

        if (!c->session) {
                conn_fail(c, "span message before HELLO", -EPROTO);
                return;
        }
        r = ss_assembler_apply(c->env->assembler, c->session, m);
        if (r < 0) {
                c->env->stats->span_errors++;
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "connection %llu (pid %d): %s skipped: %s "
                                   "event=message-skipped conn=%llu pid=%d type=%s "
                                   "reason=\"%s\"",
                                   (unsigned long long)c->id, (int)c->pid,
                                   ss_msg_type_name(m->type), span_error(r),
                                   (unsigned long long)c->id, (int)c->pid,
                                   ss_msg_type_name(m->type), span_error(r));
        }
}

static void message(ss_conn *c, const ss_msg *m)
{
        switch (m->type) {
        case SS_MSG_HELLO:
                hello(c, m);
                break;
        case SS_MSG_FLUSH:
        case SS_MSG_STATS:
                control_message(c, m);
                break;
        case SS_MSG_SUBSCRIBE:
                subscribe(c, m);
                break;
        case SS_MSG_FLUSHED:
        case SS_MSG_STATS_REPLY:
        case SS_MSG_TRACE:
                conn_fail(c, "a daemon message from a client", -EPROTO);
                break;
        default:
                span_message(c, m);
                break;
        }
}

static void frame(ss_conn *c, const uint8_t *payload, size_t len)
{
        ss_msg m;
        int r;

        c->env->stats->frames++;
        c->frames++;
        r = ss_wire_decode_zone(payload, len, c->env->zone, &m, NULL);
        if (r == 0) {
                message(c, &m);
        } else if (r == -ENOTSUP) {
                c->env->stats->unknown_messages++;
                ss_log_ratelimited(SS_LOG_INFO,
                                   "connection %llu: skipped unknown message type %u "
                                   "event=message-unknown conn=%llu type=%u",
                                   (unsigned long long)c->id, m.type, (unsigned long long)c->id,
                                   m.type);
        } else {
                conn_fail(c,
                          r == -EBADMSG  ? "frame is not one msgpack object"
                          : r == -ENOMEM ? "out of memory decoding a frame"
                                         : "message has the wrong shape",
                          r);
        }
        /* Nothing downstream keeps a pointer into the frame's objects: spans copy. */
        ss_mp_zone_clear(c->env->zone);
}

/* ---- reading ---------------------------------------------------------------------------- */

/*
 * The whole frames in c->in. True when the hold stopped it: a frame that handed spans on (a
 * trace ended; one read can end many, and each releases all its spans at once) may have
 * filled an exporter, and the frames after it wait in c->in until the hold ends.
 */
static bool process(ss_conn *c)
{
        const ss_assembler_stats *st = ss_assembler_get_stats(c->env->assembler);
        uint64_t handoffs = st->handoffs;
        bool held = false;
        size_t off = 0;

        while (!c->closing) {
                const uint8_t *payload;
                size_t len;
                int r = ss_frame_parse(c->in.data + off, c->in.len - off, c->env->max_frame,
                                       &payload, &len);

                if (r == 0)
                        break;
                if (r < 0) {
                        conn_fail(
                            c, r == -EMSGSIZE ? "frame larger than max_frame" : "zero-length frame",
                            r);
                        return false;
                }
                off += (size_t)r;
                frame(c, payload, len);
                if (st->handoffs != handoffs) {
                        handoffs = st->handoffs;
                        if ((held = hold_now(c)))
                                break;
                }
        }
        ss_buf_consume(&c->in, off);
        /* The deadline is per frame: it starts when a frame begins, not when a read of a
         * client that streams without pause happens to end in the middle of one. */
        if (c->in.len == 0)
                c->partial_since_ms = 0;
        else if (off > 0 || !c->partial_since_ms)
                c->partial_since_ms = uv_now(c->pipe.loop);
        if (c->in.cap > SHRINK_ABOVE)
                c->grew_ms = uv_now(c->pipe.loop);
        return held;
}

/* Whether the exporters are too full to take more of c's frames now (a reader of traces is
 * never held: it sends none). */
static bool hold_now(ss_conn *c)
{
        return !c->closing && !c->sub && c->env->hold && c->env->hold(c->env->ctx, c);
}

void ss_conn_shrink(ss_conn *c, uint64_t now_ms)
{
        /* A connection that read nothing for a while holds no buffer: hundreds of agents
         * connected and idle between runs would otherwise keep 64 KiB or more each. The
         * next read (on_alloc()) takes one again. A buffer that grew is cut back, but not at
         * once: a client that sends large frames would have it grown back (mremap) for
         * every one. */
        if (c->in.len == 0 && c->in.cap && now_ms - c->last_read_ms >= SHRINK_AFTER_MS)
                ss_buf_free(&c->in);
        else if (c->in.cap > SHRINK_ABOVE && c->in.len < c->in.cap / 4 &&
                 now_ms - c->grew_ms >= SHRINK_AFTER_MS)
                ss_buf_shrink(&c->in, READ_CHUNK);
        else
                return;
        budget_update(c);
        budget_resume(c->env->budget);
}

/* Whether growing the buffer to hold room more bytes fits the budget (it grows by doubling). */
static bool budget_allows(const ss_conn *c, size_t room)
{
        const ss_input_budget *b = c->env->budget;
        size_t want = c->in.len + room, cap = c->in.cap ? c->in.cap : 256;

        if (!b->max || want <= c->in.cap)
                return true;
        while (cap < want)
                cap *= 2;
        if (cap > c->in.max)
                cap = c->in.max;
        return b->used - c->in_counted + budget_share(cap) <= b->max;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        ss_conn *c = (ss_conn *)h;
        size_t room = c->in.max - c->in.len;

        *buf = uv_buf_init(NULL, 0);
        if (room > READ_CHUNK)
                room = READ_CHUNK;
        if (room == 0)
                return;
        if (!budget_allows(c, room)) {
                budget_pause(c);
                return;
        }
        if (ss_buf_reserve(&c->in, room) < 0)
                return;
        budget_update(c);
        *buf = uv_buf_init((char *)c->in.data + c->in.len, (unsigned)room);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
        ss_conn *c = (ss_conn *)stream;

        if (nread == UV_ENOBUFS && c->paused) {
                (void)uv_read_stop(stream); /* read again once the budget has room */
                return;
        }
        if (nread == UV_EOF) {
                ss_conn_close(c);
                return;
        }
        if (nread < 0) {
                conn_fail(c, "read failed", (int)nread);
                return;
        }
        c->in.len += (size_t)nread;
        c->env->stats->bytes += (uint64_t)nread;
        c->last_read_ms = uv_now(c->pipe.loop);
        /* Checked before the frames too: one loop iteration delivers a read to every ready
         * connection, and 512 of them processed after the exporters filled up would queue
         * more than they hold. What was read waits in c->in until the hold ends. */
        if (hold_now(c) || process(c) || hold_now(c)) {
                (void)uv_read_stop(stream);
                c->held = true;
        }
}

/* ---- lifetime --------------------------------------------------------------------------- */

ss_conn *ss_conn_new(uv_loop_t *loop, const ss_conn_env *env, uint64_t id)
{
        ss_conn *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        if (uv_pipe_init(loop, &c->pipe, 0) < 0) {
                free(c);
                return NULL;
        }
        c->env = env;
        c->id = id;
        c->uid = (uid_t)-1;
        c->gid = (gid_t)-1;
        c->connected_ms = c->last_read_ms = uv_now(loop);
        ss_buf_init(&c->in, env->max_frame + SS_FRAME_HEADER + READ_CHUNK);
        return c;
}

int ss_conn_identify(ss_conn *c)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);
        uv_os_fd_t fd;

        if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0)
                return -EBADF;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        c->pid = cred.pid;
        c->uid = cred.uid;
        c->gid = cred.gid;
        return 0;
}

int ss_conn_start(ss_conn *c)
{
        return uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

bool ss_conn_idle(const ss_conn *c)
{
        return c->in.len == 0 && (!c->session || ss_session_open_spans(c->session) == 0);
}
