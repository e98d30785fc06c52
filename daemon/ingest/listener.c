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
#include "base/fdlimit.h"
#include "base/hashmap.h"
#include "base/listen-fds.h"
#include "base/list.h"
#include "base/log.h"
#include "ingest/connection.h"
#include "ingest/hold.h"
#include "ingest/socket.h"

#define LISTEN_BACKLOG 128
/* The first block of the zone frames decode into; a larger frame adds blocks for its time. */
#define FRAME_ZONE_CHUNK 8192

struct ss_listener {
        uv_pipe_t pipe; /* first: the handle's address is the listener's */
        uv_loop_t *loop;
        ss_listener_config cfg;
        char *path;
        bool activated;   /* the socket is systemd's: never unlinked here */
        bool handed_over; /* kept for the next image (a reload): its path stays */
        ss_conn_env env;
        ss_ingest_stats stats;
        ss_input_budget budget;
        ss_map per_process;  /* pid and uid -> connections, as a count in the pointer */
        uv_timer_t timeouts; /* closes connections past their deadlines */
        bool timeouts_on;
        ss_hold hold;
        bool closing;
        uint64_t fd_limit; /* the soft RLIMIT_NOFILE at start; 0: unlimited */
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

static void listener_free(ss_listener *l)
{
        if (l->env.zone)
                msgpack_zone_free(l->env.zone);
        free(l->path);
        free(l);
}

static void maybe_done(ss_listener *l)
{
        if (l->pending_closes > 0 || !l->closing)
                return;
        ss_map_free(&l->per_process);
        if (l->done)
                l->done(l->done_ctx);
        listener_free(l);
}

/* ---- per process ------------------------------------------------------------------------ */

static void process_key(uint8_t *key, const ss_conn *c)
{
        uint32_t pid = (uint32_t)c->pid, uid = (uint32_t)c->uid;

        memcpy(key, &pid, 4);
        memcpy(key + 4, &uid, 4);
}

static uintptr_t process_count(const ss_listener *l, const ss_conn *c)
{
        uint8_t key[8];

        process_key(key, c);
        return (uintptr_t)ss_map_get(&l->per_process, key);
}

/* Count c in its process (delta +1) or out of it (-1). 0 or -ENOMEM. */
static int process_add(ss_listener *l, const ss_conn *c, int delta)
{
        uint8_t key[8];
        uintptr_t n = process_count(l, c) + (uintptr_t)(intptr_t)delta;

        process_key(key, c);
        if (n == 0) {
                ss_map_remove(&l->per_process, key);
                return 0;
        }
        return ss_map_put(&l->per_process, key, (void *)n);
}

static void on_conn_closed(void *ctx, ss_conn *c)
{
        ss_listener *l = ctx;

        if (c->counted)
                (void)process_add(l, c, -1);
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
        if (l->reject_pending && !l->closing) {
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
        ss_log_ratelimited(SS_LOG_ERR, "out of memory: closing a new connection at once "
                                       "event=no-memory what=connection");
        reject_now(l);
}

/* ---- admission ------------------------------------------------------------------------ */

static bool in_list(const uint32_t *v, size_t n, uint32_t x)
{
        for (size_t i = 0; i < n; i++)
                if (v[i] == x)
                        return true;
        return false;
}

/* Whether one of the peer's groups (primary or supplementary) is allowed. */
static bool group_allowed(const ss_listener *l, const ss_conn *c)
{
        gid_t groups[256];
        socklen_t len = sizeof(groups);
        uv_os_fd_t fd;

        if (in_list(l->cfg.allow_gids, l->cfg.n_allow_gids, (uint32_t)c->gid))
                return true;
        if (uv_fileno((const uv_handle_t *)&c->pipe, &fd) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                return false;
        for (size_t i = 0; i < len / sizeof(groups[0]); i++)
                if (in_list(l->cfg.allow_gids, l->cfg.n_allow_gids, (uint32_t)groups[i]))
                        return true;
        return false;
}

/* Root, the daemon's user, and whoever the allow lists name (anyone, without lists). */
static bool allowed(const ss_listener *l, const ss_conn *c)
{
        if (!l->cfg.n_allow_uids && !l->cfg.n_allow_gids)
                return true;
        if (c->uid == 0 || c->uid == geteuid())
                return true;
        return in_list(l->cfg.allow_uids, l->cfg.n_allow_uids, (uint32_t)c->uid) ||
               group_allowed(l, c);
}

/* Whether the connection's descriptor is among the last few the process may open: past
 * them libuv would accept and close connections itself, unseen and uncounted. */
static bool near_fd_limit(const ss_listener *l, const ss_conn *c)
{
        uv_os_fd_t fd;

        return l->fd_limit && uv_fileno((const uv_handle_t *)&c->pipe, &fd) == 0 &&
               (uint64_t)fd + SS_FD_MARGIN >= l->fd_limit;
}

/* Why c may not stay, counted; NULL when it may. */
static const char *admit(ss_listener *l, const ss_conn *c)
{
        if (near_fd_limit(l, c)) {
                l->stats.connections_refused_fds++;
                return "the daemon is out of file descriptors (raise LimitNOFILE or lower "
                       "--max-connections)";
        }
        if (!allowed(l, c)) {
                l->stats.connections_denied++;
                return "its uid and groups are not in allow_uids / allow_gids";
        }
        if (l->stats.connections_active > l->cfg.max_connections) {
                l->stats.connections_refused++;
                return "max_connections reached";
        }
        if (l->cfg.max_connections_process &&
            process_count(l, c) >= l->cfg.max_connections_process) {
                l->stats.connections_refused_process++;
                return "its process holds max_connections_per_process";
        }
        return NULL;
}

static void accept_one(ss_listener *l)
{
        ss_conn *c =
            ss_fault(SS_FAULT_ACCEPT_ALLOC) ? NULL : ss_conn_new(l->loop, &l->env, l->next_id + 1);
        const char *why;
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
                r = ss_conn_identify(c);
        if (r < 0) {
                l->stats.accept_failures++;
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "cannot accept a connection event=accept-failed "
                                   "error=\"%s\"",
                                   strerror(-r));
                ss_conn_close(c);
                return;
        }
        why = admit(l, c);
        if (why) {
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "refusing a connection from pid %d uid %u: %s "
                                   "event=conn-refused pid=%d uid=%u reason=\"%s\"",
                                   (int)c->pid, (unsigned)c->uid, why, (int)c->pid,
                                   (unsigned)c->uid, why);
                ss_conn_close(c);
                return;
        }
        r = process_add(l, c, +1);
        if (r == 0) {
                c->counted = true;
                r = ss_conn_start(c);
        }
        if (r < 0) {
                l->stats.accept_failures++;
                ss_conn_close_because(c, "cannot start reading");
                return;
        }
        l->stats.connections++;
}

static void on_connection(uv_stream_t *listener, int status)
{
        ss_listener *l = (ss_listener *)listener;

        if (status < 0) {
                /* libuv accepted and closed the connection to keep watching (EMFILE). */
                l->stats.accept_failures++;
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "accept failed: %s%s event=accept-failed error=\"%s\"",
                                   uv_strerror(status),
                                   status == UV_EMFILE || status == UV_ENFILE
                                       ? " (out of file descriptors: the client was closed; "
                                         "raise LimitNOFILE or lower --max-connections)"
                                       : "",
                                   uv_strerror(status));
                return;
        }
        accept_one(l);
}

/* ---- the listening socket --------------------------------------------------------------- */

/* The listening socket of the daemon before this reload, at the same path. */
static int listen_own(ss_listener *l, int fd, const char *name)
{
        int r = uv_pipe_open(&l->pipe, fd);

        if (r == 0)
                r = uv_listen((uv_stream_t *)&l->pipe, LISTEN_BACKLOG, on_connection);
        if (r < 0) {
                ss_log(SS_LOG_ERR,
                       "cannot listen again on %s after the reload event=socket-failed "
                       "path=\"%s\" error=\"%s\"",
                       name, name, uv_strerror(r));
                return r;
        }
        return 0;
}

/*
 * The socket systemd passed when socket-activated, else our own bound to
 * l->path. A passed socket keeps its path, which replaces l->path: the
 * socket unit's ListenStream= is what clients reach, whatever --socket says.
 */
static int listen_socket(ss_listener *l)
{
        char name[128];
        int fd, r = ss_listen_fds_take(&fd, name, sizeof(name));

        if (r == 0)
                return ss_socket_listen(&l->pipe, l->path, LISTEN_BACKLOG, on_connection);
        if (r < 0)
                return r;
        if (r == 2) /* our own, across a reload: still ours to remove at the end */
                return listen_own(l, fd, name);
        if (strcmp(name, l->path) != 0)
                ss_log(SS_LOG_NOTICE,
                       "socket activated on %s: the configured %s is not used "
                       "event=socket-activated path=\"%s\"",
                       name, l->path, name);
        free(l->path);
        l->path = strdup(name);
        l->cfg.path = l->path;
        l->activated = true;
        r = l->path ? uv_pipe_open(&l->pipe, fd) : -ENOMEM;
        /* listen(2) again on a listening socket only sets its backlog, to ours. */
        if (r == 0)
                r = uv_listen((uv_stream_t *)&l->pipe, LISTEN_BACKLOG, on_connection);
        if (r < 0)
                ss_log(SS_LOG_ERR,
                       "cannot listen on the passed socket %s event=socket-failed "
                       "path=\"%s\" error=\"%s\"",
                       name, name, uv_strerror(r));
        else
                ss_log(SS_LOG_INFO,
                       "listening on %s (socket activated) event=listening path=\"%s\" "
                       "activated=yes",
                       name, name);
        return r;
}

/* ---- timeouts --------------------------------------------------------------------------- */

/* Why c has outstayed its welcome, counted; NULL when it has not. */
static const char *overdue(ss_listener *l, const ss_conn *c, uint64_t now)
{
        const ss_listener_config *cfg = &l->cfg;

        if (c->sub || c->held)
                return NULL; /* a reader of traces (sidespan tail) may be quiet for ever; a
                                held connection is not being read */
        /* A paused connection's frame deadline runs too: pausing is what the budget does
         * under pressure, and whoever holds it with unfinished frames must not keep it. */
        if (cfg->hello_timeout_ms && !c->session && now - c->connected_ms > cfg->hello_timeout_ms) {
                l->stats.timeouts_hello++;
                return "no HELLO within hello_timeout";
        }
        if (cfg->frame_timeout_ms && c->partial_since_ms &&
            now - c->partial_since_ms > cfg->frame_timeout_ms) {
                l->stats.timeouts_frame++;
                return "a frame begun and not finished within frame_timeout";
        }
        if (cfg->idle_timeout_ms && ss_conn_idle(c) &&
            now - c->last_read_ms > cfg->idle_timeout_ms) {
                l->stats.timeouts_idle++;
                return "silent for idle_timeout with nothing open";
        }
        return NULL;
}

static void on_timeouts(uv_timer_t *t)
{
        ss_listener *l = t->data;
        uint64_t now = uv_now(l->loop);

        for (ss_conn *c = l->conns; c; c = c->next) {
                const char *why = c->closing ? NULL : overdue(l, c, now);

                if (why)
                        ss_conn_close_because(c, why);
                else if (!c->closing)
                        ss_conn_shrink(c, now);
        }
}

/* Check often enough that a deadline is kept to within a quarter of the shortest. */
static int timeouts_start(ss_listener *l)
{
        const uint32_t all[] = {l->cfg.hello_timeout_ms, l->cfg.frame_timeout_ms,
                                l->cfg.idle_timeout_ms};
        uint64_t every;
        int r;

        /* At least once a second: it also gives back input buffers that grew. */
        every = 1000;
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
                if (all[i] && all[i] / 4 < every)
                        every = all[i] / 4;
        every = every < 10 ? 10 : every;
        r = uv_timer_init(l->loop, &l->timeouts);
        if (r < 0)
                return r;
        l->timeouts.data = l;
        l->timeouts_on = true;
        l->pending_closes++; /* the timer's close, at ss_listener_close() */
        return uv_timer_start(&l->timeouts, on_timeouts, every, every);
}

static void on_timer_closed(uv_handle_t *h)
{
        ss_listener *l = h->data;

        l->pending_closes--;
        maybe_done(l);
}

/* ---- backpressure ----------------------------------------------------------------------- */

static void resume_all(void *ctx)
{
        ss_listener *l = ctx;

        for (ss_conn *c = l->conns; c; c = c->next)
                ss_conn_resume(c);
}

/* ss_conn_env.hold: after each read, whether the exporters want this client read no more
 * for now. */
static bool hold_conn(void *ctx, ss_conn *c)
{
        ss_listener *l = ctx;

        return !l->closing && ss_hold_check(&l->hold, c->id, (int)c->pid);
}

void ss_listener_set_pressure(ss_listener *l, unsigned (*fn)(const void *ctx), const void *ctx)
{
        if (l->hold.on || ss_hold_init(&l->hold, l->loop, fn, ctx, resume_all, l) < 0)
                return;      /* without its timer, no backpressure: memory is still bounded */
        l->pending_closes++; /* the timer's close, at ss_listener_close() */
}

static void on_closed_early(uv_handle_t *h)
{
        listener_free((ss_listener *)h);
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
        l->budget.max = cfg->max_input_bytes;
        l->env = (ss_conn_env){.max_frame = cfg->max_frame,
                               .assembler = a,
                               .control = control,
                               .stats = &l->stats,
                               .budget = &l->budget,
                               .zone = msgpack_zone_new(FRAME_ZONE_CHUNK),
                               .daemon_uid = geteuid(),
                               .hold = hold_conn,
                               .closed = on_conn_closed,
                               .ctx = l};
        ss_map_init(&l->per_process, 8);
        l->fd_limit = ss_fd_limit();
        l->path = strdup(cfg->path);
        r = l->path && l->env.zone ? uv_pipe_init(loop, &l->pipe, 0) : -ENOMEM;
        if (r < 0) {
                listener_free(l);
                return r;
        }
        l->cfg.path = l->path;
        r = listen_socket(l);
        if (r < 0) {
                uv_close((uv_handle_t *)&l->pipe, on_closed_early);
                return r;
        }
        r = timeouts_start(l);
        if (r < 0) {
                ss_log(SS_LOG_ERR,
                       "cannot start the connection timeouts event=timer-failed "
                       "what=timeouts error=\"%s\"",
                       uv_strerror(r));
                ss_listener_close(l, NULL, NULL);
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

int ss_listener_hand_over(ss_listener *l)
{
        uv_os_fd_t fd;
        int r = uv_fileno((uv_handle_t *)&l->pipe, &fd), kept;

        if (r < 0)
                return r;
        kept = dup(fd);
        if (kept < 0)
                return -errno;
        l->handed_over = true;
        return kept;
}

/* Close the listening handle. libuv removes the path of a socket it bound as it closes
 * it; one handed over keeps its path through a second name, moved back at once, so the
 * socket the next image listens on is never without its name for long enough to matter
 * (a client's connect in those microseconds fails and retries). */
static void close_pipe(ss_listener *l)
{
        char *keep = NULL;

        if (l->handed_over &&
            (asprintf(&keep, "%s.reload", l->path) < 0 || link(l->path, keep) < 0)) {
                ss_log(SS_LOG_WARNING,
                       "cannot keep the name of %s across the reload: clients reconnect once "
                       "the new image listens event=socket-failed path=\"%s\" error=\"%s\"",
                       l->path, l->path, strerror(errno));
                free(keep);
                keep = NULL;
        }
        uv_close((uv_handle_t *)&l->pipe, on_listener_closed);
        if (keep && rename(keep, l->path) < 0)
                ss_log(SS_LOG_WARNING,
                       "cannot restore %s after the reload event=socket-failed path=\"%s\" "
                       "error=\"%s\"",
                       l->path, l->path, strerror(errno));
        free(keep);
}

void ss_listener_close(ss_listener *l, void (*done)(void *ctx), void *ctx)
{
        l->closing = true;
        l->done = done;
        l->done_ctx = ctx;
        l->reject_pending = false;
        l->pending_closes++;
        close_pipe(l);
        if (l->timeouts_on)
                uv_close((uv_handle_t *)&l->timeouts, on_timer_closed);
        (void)ss_hold_close(&l->hold, on_timer_closed, l);
        if (!l->activated && !l->handed_over && unlink(l->path) < 0 && errno != ENOENT)
                ss_log(SS_LOG_WARNING,
                       "cannot remove %s event=socket-failed path=\"%s\" error=\"%s\"", l->path,
                       l->path, strerror(errno));
        for (ss_conn *c = l->conns; c; c = c->next) {
                ss_conn_process_held(c);
                ss_conn_close(c);
        }
}

const char *ss_listener_path(const ss_listener *l)
{
        return l->path;
}

void ss_listener_counters(const void *listener, ss_counters *out)
{
        const ss_listener *l = listener;
        const ss_ingest_stats *v = &l->stats;
        uint64_t buffers = 0;

        for (const ss_conn *c = l->conns; c; c = c->next)
                buffers += ss_buf_allocated(&c->in);
        ss_counters_add(out, NULL, "input_bytes", l->budget.used);
        ss_counters_add(out, NULL, "input_buffer_bytes", buffers);
        ss_counters_add(out, NULL, "connections", v->connections);
        ss_counters_add(out, NULL, "connections_refused", v->connections_refused);
        ss_counters_add(out, NULL, "connections_refused_process", v->connections_refused_process);
        ss_counters_add(out, NULL, "connections_denied", v->connections_denied);
        ss_counters_add(out, NULL, "connections_refused_fds", v->connections_refused_fds);
        ss_counters_add(out, NULL, "timeouts_hello", v->timeouts_hello);
        ss_counters_add(out, NULL, "timeouts_frame", v->timeouts_frame);
        ss_counters_add(out, NULL, "timeouts_idle", v->timeouts_idle);
        ss_counters_add(out, NULL, "input_paused", v->input_paused);
        ss_counters_add(out, NULL, "input_held", l->hold.held);
        ss_counters_add(out, NULL, "input_held_ms", l->hold.held_ms);
        ss_counters_add(out, NULL, "connections_active", v->connections_active);
        ss_counters_add(out, NULL, "accept_failures", v->accept_failures);
        ss_counters_add(out, NULL, "frames", v->frames);
        ss_counters_add(out, NULL, "bytes", v->bytes);
        ss_counters_add(out, NULL, "protocol_errors", v->protocol_errors);
        ss_counters_add(out, NULL, "unknown_messages", v->unknown_messages);
        ss_counters_add(out, NULL, "span_errors", v->span_errors);
        ss_counters_add(out, NULL, "flushes", v->flushes);
}
