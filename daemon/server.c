/* SPDX-License-Identifier: MIT */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define READ_CHUNK       (64u * 1024u)
#define MAX_REPLY_QUEUED (1u << 20)

typedef struct conn {
        uv_pipe_t pipe; /* first: the handle's address is the conn's */
        ss_server *srv;
        struct conn *prev, *next;
        ss_buf in;
        ss_session *session;
        uint64_t id;
        pid_t pid;
        uid_t uid;
        bool closing;
} conn;

struct ss_server {
        uv_pipe_t listener;
        uv_loop_t *loop;
        ss_server_config cfg;
        char *path;
        ss_assembler *assembler;
        ss_exporter *const *exporters;
        size_t n_exporters;
        conn *conns;
        uint64_t next_id;
        unsigned pending_closes;
        void (*done)(void *ctx);
        void *done_ctx;
        ss_server_stats stats;
};

/* ---- connections ---------------------------------------------------------------------- */

static void server_maybe_done(ss_server *s)
{
        if (s->pending_closes > 0 || !s->done)
                return;
        free(s->path);
        s->done(s->done_ctx);
        free(s);
}

static void on_conn_closed(uv_handle_t *h)
{
        conn *c = (conn *)h;
        ss_server *s = c->srv;

        if (c->session)
                ss_session_detach(c->session);
        ss_buf_free(&c->in);
        free(c);
        s->stats.connections_active--;
        s->pending_closes--;
        server_maybe_done(s);
}

static void conn_close(conn *c)
{
        ss_server *s = c->srv;

        if (c->closing)
                return;
        c->closing = true;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->pending_closes++;
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void conn_fail(conn *c, const char *what, int err)
{
        c->srv->stats.protocol_errors++;
        ss_log_ratelimited(SS_LOG_WARNING, "closing connection %llu (pid %d): %s (%s)",
                           (unsigned long long)c->id, (int)c->pid, what, strerror(-err));
        conn_close(c);
}

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

/* Queue a frame already encoded in *r; takes r. */
static void conn_send(conn *c, reply *r)
{
        uv_buf_t b = uv_buf_init((char *)r->data.data, (unsigned)r->data.len);

        /* A peer that never reads its replies must not grow our memory. */
        if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > MAX_REPLY_QUEUED ||
            uv_write(&r->req, (uv_stream_t *)&c->pipe, &b, 1, on_reply_written) < 0) {
                on_reply_written(&r->req, 0);
                conn_fail(c, "peer does not read its replies", -ENOBUFS);
        }
}

static reply *reply_new(size_t max)
{
        reply *r = calloc(1, sizeof(*r));

        if (r)
                ss_buf_init(&r->data, max);
        return r;
}

static void reply_seq(conn *c, uint32_t type, uint64_t seq)
{
        reply *r = reply_new(64);

        if (!r || ss_wire_put_seq(&r->data, 64, type, seq) < 0) {
                free(r);
                conn_fail(c, "cannot build a reply", -ENOMEM);
                return;
        }
        conn_send(c, r);
}

/* ---- STATS ---------------------------------------------------------------------------- */

typedef struct counter {
        char name[96];
        uint64_t value;
} counter;

#define MAX_COUNTERS 64

static size_t add(counter *c, size_t n, const char *name, uint64_t value)
{
        if (n < MAX_COUNTERS) {
                snprintf(c[n].name, sizeof(c[n].name), "%s", name);
                c[n].value = value;
        }
        return n + 1;
}

static size_t exporter_counters(counter *c, size_t n, const ss_exporter *e)
{
        const ss_exporter_stats *st = &e->stats;
        char key[96];

#define EXPORTER_COUNTER(field)                                                                    \
        snprintf(key, sizeof(key), "exporter.%s." #field, e->name);                                \
        n = add(c, n, key, st->field)
        EXPORTER_COUNTER(spans_in);
        EXPORTER_COUNTER(spans_exported);
        EXPORTER_COUNTER(spans_dropped);
        EXPORTER_COUNTER(requests);
        EXPORTER_COUNTER(failures);
        EXPORTER_COUNTER(retries);
#undef EXPORTER_COUNTER
        return n;
}

/* Every counter of the daemon, as the STATS reply's map; returns how many. */
static size_t collect_counters(const ss_server *s, counter *c)
{
        const ss_server_stats *v = &s->stats;
        const ss_assembler_stats *a = ss_assembler_get_stats(s->assembler);
        size_t n = 0;

        n = add(c, n, "connections", v->connections);
        n = add(c, n, "connections_refused", v->connections_refused);
        n = add(c, n, "connections_active", v->connections_active);
        n = add(c, n, "frames", v->frames);
        n = add(c, n, "bytes", v->bytes);
        n = add(c, n, "protocol_errors", v->protocol_errors);
        n = add(c, n, "unknown_messages", v->unknown_messages);
        n = add(c, n, "span_errors", v->span_errors);
        n = add(c, n, "flushes", v->flushes);
        n = add(c, n, "sessions", a->sessions);
        n = add(c, n, "spans_started", a->spans_started);
        n = add(c, n, "spans_finished", a->spans_finished);
        n = add(c, n, "spans_orphaned", a->spans_orphaned);
        n = add(c, n, "spans_open", ss_assembler_open_spans(s->assembler));
        n = add(c, n, "traces_completed", a->traces_completed);
        n = add(c, n, "unknown_span", a->unknown_span);
        n = add(c, n, "duplicate_span", a->duplicate_span);
        n = add(c, n, "open_span_limit", a->open_span_limit);
        n = add(c, n, "chunks_early", a->chunks_early);
        n = add(c, n, "no_memory", a->no_memory);
        for (size_t i = 0; i < s->n_exporters; i++)
                n = exporter_counters(c, n, s->exporters[i]);
        return n < MAX_COUNTERS ? n : MAX_COUNTERS;
}

static void pack_stats(ss_server *s, msgpack_packer *pk)
{
        counter c[MAX_COUNTERS];
        size_t n = collect_counters(s, c);

        msgpack_pack_map(pk, (uint32_t)n);
        for (size_t i = 0; i < n; i++) {
                msgpack_pack_str_with_body(pk, c[i].name, strlen(c[i].name));
                msgpack_pack_uint64(pk, c[i].value);
        }
}

static void reply_stats(conn *c, uint64_t id)
{
        const size_t max = 64u * 1024u;
        reply *r = reply_new(SS_FRAME_HEADER + max);
        static const uint8_t hole[SS_FRAME_HEADER];
        msgpack_packer pk;
        size_t n;

        /* [66, id, {counters}] after a length we patch once it is known. */
        if (!r || ss_buf_append(&r->data, hole, sizeof(hole)) < 0)
                goto fail;
        msgpack_packer_init(&pk, &r->data, ss_buf_msgpack_write);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint32(&pk, SS_MSG_STATS_REPLY);
        msgpack_pack_uint64(&pk, id);
        pack_stats(c->srv, &pk);
        n = r->data.len - SS_FRAME_HEADER;
        r->data.data[0] = (uint8_t)(n >> 24);
        r->data.data[1] = (uint8_t)(n >> 16);
        r->data.data[2] = (uint8_t)(n >> 8);
        r->data.data[3] = (uint8_t)n;
        conn_send(c, r);
        return;
fail:
        if (r)
                ss_buf_free(&r->data);
        free(r);
        conn_fail(c, "cannot build a STATS reply", -ENOMEM);
}

/* ---- messages ------------------------------------------------------------------------- */

static void conn_hello(conn *c, const ss_msg *m)
{
        if (c->session) {
                conn_fail(c, "second HELLO on one connection", -EPROTO);
                return;
        }
        if (m->hello.version != SS_PROTOCOL_VERSION) {
                conn_fail(c, "unsupported protocol version", -EPROTONOSUPPORT);
                return;
        }
        c->session = ss_assembler_hello(c->srv->assembler, m->hello.options, c->pid, c->uid);
        if (!c->session)
                conn_fail(c, "cannot create a session", -ENOMEM);
}

static void conn_span_message(conn *c, const ss_msg *m)
{
        int r;

        if (!c->session) {
                conn_fail(c, "span message before HELLO", -EPROTO);
                return;
        }
        r = ss_assembler_apply(c->srv->assembler, c->session, m);
        if (r < 0) {
                c->srv->stats.span_errors++;
                ss_log_ratelimited(SS_LOG_WARNING, "connection %llu (pid %d): %s skipped: %s",
                                   (unsigned long long)c->id, (int)c->pid,
                                   ss_msg_type_name(m->type),
                                   r == -ENOENT   ? "no such open span in this session"
                                   : r == -EEXIST ? "span id already open"
                                   : r == -ENOSPC ? "too many open spans"
                                                  : strerror(-r));
        }
}

static void conn_message(conn *c, const ss_msg *m)
{
        switch (m->type) {
        case SS_MSG_HELLO:
                conn_hello(c, m);
                break;
        case SS_MSG_FLUSH:
                /* Every earlier message of this connection has been applied: what
                 * completed is in the exporters' queues; make them send now. */
                c->srv->stats.flushes++;
                ss_assembler_flush_exporters(c->srv->assembler);
                reply_seq(c, SS_MSG_FLUSHED, m->seq.seq);
                break;
        case SS_MSG_STATS:
                reply_stats(c, m->seq.seq);
                break;
        case SS_MSG_FLUSHED:
                conn_fail(c, "FLUSHED is a daemon message", -EPROTO);
                break;
        default:
                conn_span_message(c, m);
                break;
        }
}

static void conn_frame(conn *c, const uint8_t *payload, size_t len)
{
        msgpack_unpacked u;
        ss_msg m;
        int r;

        c->srv->stats.frames++;
        msgpack_unpacked_init(&u);
        r = ss_wire_decode(payload, len, &u, &m);
        if (r == 0)
                conn_message(c, &m);
        else if (r == -ENOTSUP) {
                c->srv->stats.unknown_messages++;
                ss_log_ratelimited(SS_LOG_INFO, "connection %llu: skipped unknown message type %u",
                                   (unsigned long long)c->id, m.type);
        } else
                conn_fail(c,
                          r == -EBADMSG ? "frame is not one msgpack object"
                                        : "message has the wrong shape",
                          r);
        msgpack_unpacked_destroy(&u);
}

static void conn_process(conn *c)
{
        size_t off = 0;

        while (!c->closing) {
                const uint8_t *payload;
                size_t len;
                int r = ss_frame_parse(c->in.data + off, c->in.len - off, c->srv->cfg.max_frame,
                                       &payload, &len);

                if (r == 0)
                        break;
                if (r < 0) {
                        conn_fail(
                            c, r == -EMSGSIZE ? "frame larger than max_frame" : "zero-length frame",
                            r);
                        return;
                }
                off += (size_t)r;
                conn_frame(c, payload, len);
        }
        ss_buf_consume(&c->in, off);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        conn *c = (conn *)h;
        size_t room = c->in.max - c->in.len;

        if (room > READ_CHUNK)
                room = READ_CHUNK;
        if (room == 0 || ss_buf_reserve(&c->in, room) < 0) {
                *buf = uv_buf_init(NULL, 0);
                return;
        }
        *buf = uv_buf_init((char *)c->in.data + c->in.len, (unsigned)room);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
        conn *c = (conn *)stream;

        if (nread == UV_EOF) {
                conn_close(c);
                return;
        }
        if (nread < 0) {
                conn_fail(c, "read failed", (int)nread);
                return;
        }
        c->in.len += (size_t)nread;
        c->srv->stats.bytes += (uint64_t)nread;
        conn_process(c);
}

static void peer_credentials(conn *c)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);
        uv_os_fd_t fd;

        c->pid = 0;
        c->uid = (uid_t)-1;
        if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
                c->pid = cred.pid;
                c->uid = cred.uid;
        }
}

static void on_connection(uv_stream_t *listener, int status)
{
        ss_server *s = (ss_server *)listener;
        conn *c;

        if (status < 0) {
                ss_log_ratelimited(SS_LOG_WARNING, "accept failed: %s", uv_strerror(status));
                return;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return;
        c->srv = s;
        c->id = ++s->next_id;
        ss_buf_init(&c->in, s->cfg.max_frame + SS_FRAME_HEADER + READ_CHUNK);
        uv_pipe_init(s->loop, &c->pipe, 0);
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->stats.connections_active++;
        if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0) {
                conn_close(c);
                return;
        }
        peer_credentials(c);
        if (s->stats.connections_active > s->cfg.max_connections) {
                s->stats.connections_refused++;
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "refusing connection from pid %d: %u connections "
                                   "is the limit (max_connections)",
                                   (int)c->pid, s->cfg.max_connections);
                conn_close(c);
                return;
        }
        s->stats.connections++;
        uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* ---- listener ------------------------------------------------------------------------- */

/* Remove a stale socket file; refuse when a daemon answers on it or it is no socket. */
static int clear_stale_socket(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct stat st;
        int fd, r;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode)) {
                ss_log(SS_LOG_ERR, "%s exists and is not a socket; not touching it", path);
                return -EEXIST;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (r == 0) {
                ss_log(SS_LOG_ERR, "another sidespand is listening on %s", path);
                return -EADDRINUSE;
        }
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        ss_log(SS_LOG_INFO, "removed stale socket %s", path);
        return 0;
}

static int listen_on(ss_server *s)
{
        int r;

        if (strlen(s->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
                ss_log(SS_LOG_ERR, "socket path too long (max %zu bytes): %s",
                       sizeof(((struct sockaddr_un *)0)->sun_path) - 1, s->path);
                return -ENAMETOOLONG;
        }
        r = clear_stale_socket(s->path);
        if (r < 0)
                return r;
        uv_pipe_init(s->loop, &s->listener, 0);
        r = uv_pipe_bind(&s->listener, s->path);
        if (r == 0) {
                /* Agents of the daemon's group may connect (systemd sets the group). */
                chmod(s->path, 0660);
                r = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
        }
        if (r < 0)
                ss_log(SS_LOG_ERR, "cannot listen on %s: %s", s->path, uv_strerror(r));
        return r;
}

static void on_listener_closed_early(uv_handle_t *h)
{
        ss_server *s = (ss_server *)h;

        free(s->path);
        free(s);
}

int ss_server_new(uv_loop_t *loop, const ss_server_config *cfg, ss_assembler *a,
                  ss_exporter *const *exporters, size_t n_exporters, ss_server **ret)
{
        ss_server *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->loop = loop;
        s->cfg = *cfg;
        s->assembler = a;
        s->exporters = exporters;
        s->n_exporters = n_exporters;
        s->path = strdup(cfg->path);
        if (!s->path) {
                free(s);
                return -ENOMEM;
        }
        s->cfg.path = s->path;
        r = listen_on(s);
        if (r < 0) {
                if (s->listener.loop)
                        uv_close((uv_handle_t *)&s->listener, on_listener_closed_early);
                else
                        on_listener_closed_early((uv_handle_t *)&s->listener);
                return r;
        }
        *ret = s;
        return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
        ss_server *s = (ss_server *)h;

        s->pending_closes--;
        server_maybe_done(s);
}

void ss_server_close(ss_server *s, void (*done)(void *ctx), void *ctx)
{
        s->done = done;
        s->done_ctx = ctx;
        s->pending_closes++;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        unlink(s->path);
        while (s->conns)
                conn_close(s->conns);
}

const ss_server_stats *ss_server_get_stats(const ss_server *s)
{
        return &s->stats;
}
