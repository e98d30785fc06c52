/* SPDX-License-Identifier: MIT */
#include "ingest/listener.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/list.h"
#include "base/log.h"
#include "ingest/connection.h"

#define LISTEN_BACKLOG 128

struct ss_listener {
        uv_pipe_t pipe; /* first: the handle's address is the listener's */
        uv_loop_t *loop;
        ss_listener_config cfg;
        char *path;
        ss_conn_env env;
        ss_ingest_stats stats;
        ss_conn *conns;
        uint64_t next_id;
        unsigned pending_closes; /* connections and handles not yet closed */
        /* A connection accepted only to be closed when no ss_conn could be made for it. */
        uv_pipe_t reject;
        bool reject_busy;
        bool reject_pending; /* a connection waits for the reject handle */
        void (*done)(void *ctx);
        void *done_ctx;
};

/* ---- connections ------------------------------------------------------------------------ */

static void maybe_done(ss_listener *l)
{
        if (l->pending_closes > 0 || !l->done)
                return;
        free(l->path);
        l->done(l->done_ctx);
        free(l);
}

static void on_conn_closed(void *ctx, ss_conn *c)
{
        ss_listener *l = ctx;

        SS_LIST_REMOVE(l->conns, c);
        l->stats.connections_active--;
        l->pending_closes--;
        maybe_done(l);
}

static void reject_now(ss_listener *l);

static void on_reject_closed(uv_handle_t *h)
{
        ss_listener *l = h->data;

        l->reject_busy = false;
        l->pending_closes--;
        /* The connection that waited was refused already: close it the same way. */
        if (l->reject_pending && !l->done) {
                l->reject_pending = false;
                reject_now(l);
        }
        maybe_done(l);
}

/* Accept into the spare handle and close it at once. */
static void reject_now(ss_listener *l)
{
        if (l->reject_busy) {
                l->reject_pending = true; /* taken when the handle is free again */
                return;
        }
        if (uv_pipe_init(l->loop, &l->reject, 0) < 0)
                return;
        l->reject.data = l;
        l->reject_busy = true;
        l->pending_closes++;
        (void)uv_accept((uv_stream_t *)&l->pipe, (uv_stream_t *)&l->reject);
        uv_close((uv_handle_t *)&l->reject, on_reject_closed);
}

/*
 * No connection object: accept into the listener's spare handle and close it
 * at once, because libuv stops watching the listening socket until the
 * pending connection is accepted. Counted; the client sees its connection
 * closed and reconnects.
 */
static void reject(ss_listener *l)
{
        l->stats.accept_failures++;
        ss_log_ratelimited(SS_LOG_ERR, "out of memory: closing a new connection at once");
        reject_now(l);
}

static void refuse(ss_listener *l, ss_conn *c)
{
        l->stats.connections_refused++;
        ss_log_ratelimited(SS_LOG_WARNING,
                           "refusing connection from pid %d: %u connections is the limit "
                           "(max_connections)",
                           (int)c->pid, l->cfg.max_connections);
        ss_conn_close(c);
}

static void accept_one(ss_listener *l)
{
        ss_conn *c =
            ss_fault(SS_FAULT_ACCEPT_ALLOC) ? NULL : ss_conn_new(l->loop, &l->env, l->next_id + 1);
        int r;

        if (!c) {
                reject(l);
                return;
        }
        l->next_id++;
        SS_LIST_PREPEND(l->conns, c);
        l->stats.connections_active++;
        l->pending_closes++;
        r = uv_accept((uv_stream_t *)&l->pipe, (uv_stream_t *)&c->pipe);
        if (r == 0)
                r = ss_conn_start(c);
        if (r < 0) {
                l->stats.accept_failures++;
                ss_log_ratelimited(SS_LOG_WARNING, "cannot accept a connection: %s",
                                   uv_strerror(r));
                ss_conn_close(c);
                return;
        }
        if (l->stats.connections_active > l->cfg.max_connections) {
                refuse(l, c);
                return;
        }
        l->stats.connections++;
}

static void on_connection(uv_stream_t *listener, int status)
{
        ss_listener *l = (ss_listener *)listener;

        if (status < 0) {
                l->stats.accept_failures++;
                ss_log_ratelimited(SS_LOG_WARNING, "accept failed: %s", uv_strerror(status));
                return;
        }
        accept_one(l);
}

/* ---- the listening socket --------------------------------------------------------------- */

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

static int listen_on(ss_listener *l)
{
        const char *path = l->path;
        int r;

        if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
                ss_log(SS_LOG_ERR, "socket path too long (max %zu bytes): %s",
                       sizeof(((struct sockaddr_un *)0)->sun_path) - 1, path);
                return -ENAMETOOLONG;
        }
        r = clear_stale_socket(path);
        if (r < 0)
                return r;
        r = uv_pipe_bind(&l->pipe, path);
        /* Agents of the daemon's group may connect (systemd sets the group). */
        if (r == 0 && chmod(path, 0660) < 0)
                r = -errno;
        if (r == 0)
                r = uv_listen((uv_stream_t *)&l->pipe, LISTEN_BACKLOG, on_connection);
        if (r < 0)
                ss_log(SS_LOG_ERR, "cannot listen on %s: %s", path, uv_strerror(r));
        return r;
}

static void on_closed_early(uv_handle_t *h)
{
        ss_listener *l = (ss_listener *)h;

        free(l->path);
        free(l);
}

int ss_listener_new(uv_loop_t *loop, const ss_listener_config *cfg, ss_assembler *a,
                    ss_control *control, ss_listener **ret)
{
        ss_listener *l = calloc(1, sizeof(*l));
        int r;

        if (!l)
                return -ENOMEM;
        l->loop = loop;
        l->cfg = *cfg;
        l->env = (ss_conn_env){.max_frame = cfg->max_frame,
                               .assembler = a,
                               .control = control,
                               .stats = &l->stats,
                               .closed = on_conn_closed,
                               .ctx = l};
        l->path = strdup(cfg->path);
        r = l->path ? uv_pipe_init(loop, &l->pipe, 0) : -ENOMEM;
        if (r < 0) {
                free(l->path);
                free(l);
                return r;
        }
        l->cfg.path = l->path;
        r = listen_on(l);
        if (r < 0) {
                uv_close((uv_handle_t *)&l->pipe, on_closed_early);
                return r;
        }
        *ret = l;
        return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
        ss_listener *l = (ss_listener *)h;

        l->pending_closes--;
        maybe_done(l);
}

void ss_listener_close(ss_listener *l, void (*done)(void *ctx), void *ctx)
{
        l->done = done;
        l->done_ctx = ctx;
        l->reject_pending = false;
        l->pending_closes++;
        uv_close((uv_handle_t *)&l->pipe, on_listener_closed);
        if (unlink(l->path) < 0 && errno != ENOENT)
                ss_log(SS_LOG_WARNING, "cannot remove %s: %s", l->path, strerror(errno));
        for (ss_conn *c = l->conns; c; c = c->next)
                ss_conn_close(c);
}

void ss_listener_counters(const void *listener, ss_counters *out)
{
        const ss_ingest_stats *v = &((const ss_listener *)listener)->stats;

        ss_counters_add(out, NULL, "connections", v->connections);
        ss_counters_add(out, NULL, "connections_refused", v->connections_refused);
        ss_counters_add(out, NULL, "connections_active", v->connections_active);
        ss_counters_add(out, NULL, "accept_failures", v->accept_failures);
        ss_counters_add(out, NULL, "frames", v->frames);
        ss_counters_add(out, NULL, "bytes", v->bytes);
        ss_counters_add(out, NULL, "protocol_errors", v->protocol_errors);
        ss_counters_add(out, NULL, "unknown_messages", v->unknown_messages);
        ss_counters_add(out, NULL, "span_errors", v->span_errors);
        ss_counters_add(out, NULL, "flushes", v->flushes);
}
