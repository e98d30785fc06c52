/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of libsidespan without sidespand: the test listens on a
 * temporary Unix socket in a thread of its own (a fake daemon), decodes what
 * arrives with the real decoder (ss_frame_parse + ss_wire_decode), answers
 * FLUSH with FLUSHED when told to, and can drop connections or stop reading.
 */
#include "ss-check.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sidespan.h"
#include "ss-id.h"
#include "ss-wire.h"

/* ---- fake daemon ------------------------------------------------------------------------ */

#define MAX_CONNS 8

typedef struct rx_msg {
        uint8_t *data;
        size_t len;
        uint32_t type;
        int conn; /* connection number, in accept order from 0 */
} rx_msg;

typedef struct srv_conn {
        int fd;
        int id;
        bool deaf; /* shut down for reading: kept open, never read */
        ss_buf in;
} srv_conn;

typedef struct server {
        char dir[64];
        char path[108];
        int lfd;
        int wake[2];
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        /* under lock */
        rx_msg *msgs;
        size_t n, cap;
        int accepted;
        int decode_errors;
        bool answer_flush;
        bool paused;
        bool drop;
        bool shut_rd;
        bool stop;
        bool running; /* the thread reached its loop: it allocates nothing until a peer */
        srv_conn conns[MAX_CONNS];
} server;

static void srv_store(server *s, const srv_conn *c, const uint8_t *p, size_t len)
{
        msgpack_unpacked u;
        ss_msg m;
        int r;

        msgpack_unpacked_init(&u);
        r = ss_wire_decode(p, len, &u, &m);
        msgpack_unpacked_destroy(&u);
        pthread_mutex_lock(&s->lock);
        if (r < 0) {
                s->decode_errors++;
        } else {
                if (s->n == s->cap) {
                        s->cap = s->cap ? 2 * s->cap : 256;
                        s->msgs = realloc(s->msgs, s->cap * sizeof(*s->msgs));
                }
                s->msgs[s->n].data = malloc(len);
                memcpy(s->msgs[s->n].data, p, len);
                s->msgs[s->n].len = len;
                s->msgs[s->n].type = m.type;
                s->msgs[s->n].conn = c->id;
                s->n++;
        }
        if (r == 0 && m.type == SS_MSG_FLUSH && s->answer_flush) {
                ss_buf out;

                ss_buf_init(&out, 64);
                ss_wire_put_seq(&out, 64, SS_MSG_FLUSHED, m.seq.seq);
                (void)!send(c->fd, out.data, out.len, MSG_NOSIGNAL);
                ss_buf_free(&out);
        }
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
}

static void srv_close_conn(srv_conn *c)
{
        close(c->fd);
        c->fd = -1;
        c->deaf = false;
        ss_buf_free(&c->in);
}

/* Read what one connection sent and store its whole frames. */
static void srv_read(server *s, srv_conn *c)
{
        uint8_t tmp[65536];
        ssize_t n = read(c->fd, tmp, sizeof(tmp));
        size_t off = 0;

        if (n <= 0) {
                srv_close_conn(c);
                return;
        }
        ck_assert_int_eq(ss_buf_append(&c->in, tmp, (size_t)n), 0);
        for (;;) {
                const uint8_t *payload;
                size_t len;
                int r = ss_frame_parse(c->in.data + off, c->in.len - off, SS_MAX_FRAME_DEFAULT,
                                       &payload, &len);

                if (r < 0) {
                        pthread_mutex_lock(&s->lock);
                        s->decode_errors++;
                        pthread_mutex_unlock(&s->lock);
                        srv_close_conn(c);
                        return;
                }
                if (r == 0)
                        break;
                srv_store(s, c, payload, len);
                off += (size_t)r;
        }
        ss_buf_consume(&c->in, off);
}

static void srv_accept(server *s, int lfd)
{
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0)
                return;
        for (int i = 0; i < MAX_CONNS; i++) {
                if (s->conns[i].fd < 0) {
                        pthread_mutex_lock(&s->lock);
                        s->conns[i].fd = fd;
                        s->conns[i].id = s->accepted++;
                        ss_buf_init(&s->conns[i].in, 64u << 20);
                        pthread_cond_broadcast(&s->cond);
                        pthread_mutex_unlock(&s->lock);
                        return;
                }
        }
        close(fd);
}

/* Apply the test's requests (drop connections, pause). Returns paused. */
static bool srv_commands(server *s, bool *stop, int *lfd)
{
        bool paused;

        pthread_mutex_lock(&s->lock);
        if (s->drop) {
                for (int i = 0; i < MAX_CONNS; i++)
                        if (s->conns[i].fd >= 0)
                                srv_close_conn(&s->conns[i]);
                s->drop = false;
                pthread_cond_broadcast(&s->cond);
        }
        if (s->shut_rd) {
                /* The peer stops receiving: the client's next write gets EPIPE. */
                for (int i = 0; i < MAX_CONNS; i++)
                        if (s->conns[i].fd >= 0) {
                                shutdown(s->conns[i].fd, SHUT_RD);
                                s->conns[i].deaf = true;
                        }
                s->shut_rd = false;
                pthread_cond_broadcast(&s->cond);
        }
        paused = s->paused;
        *stop = s->stop;
        *lfd = s->lfd;
        if (!s->running) {
                s->running = true;
                pthread_cond_broadcast(&s->cond);
        }
        pthread_mutex_unlock(&s->lock);
        return paused;
}

static void *srv_main(void *arg)
{
        server *s = arg;
        bool stop = false;

        while (!stop) {
                struct pollfd p[2 + MAX_CONNS];
                int map[2 + MAX_CONNS], n = 2, lfd;
                bool paused = srv_commands(s, &stop, &lfd);

                p[0] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
                p[1] = (struct pollfd){.fd = lfd, .events = POLLIN};
                for (int i = 0; i < MAX_CONNS && !paused; i++) {
                        if (s->conns[i].fd < 0 || s->conns[i].deaf)
                                continue;
                        map[n] = i;
                        p[n++] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
                }
                if (stop || poll(p, (nfds_t)n, 100) <= 0)
                        continue;
                if (p[0].revents) {
                        char b[64];

                        (void)!read(s->wake[0], b, sizeof(b));
                }
                if (p[1].revents & POLLIN)
                        srv_accept(s, lfd);
                for (int i = 2; i < n; i++)
                        if (p[i].revents)
                                srv_read(s, &s->conns[map[i]]);
        }
        return NULL;
}

static void srv_poke(server *s)
{
        (void)!write(s->wake[1], "x", 1);
}

static void srv_listen(server *s)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->path);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(listen(fd, 16), 0);
        pthread_mutex_lock(&s->lock);
        s->lfd = fd;
        pthread_mutex_unlock(&s->lock);
        srv_poke(s);
}

/* A fake daemon on a fresh socket path; listening unless listen is false. */
static void srv_start_opt(server *s, bool listen)
{
        memset(s, 0, sizeof(*s));
        snprintf(s->dir, sizeof(s->dir), "/tmp/test-client-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(s->dir));
        snprintf(s->path, sizeof(s->path), "%s/sock", s->dir);
        for (int i = 0; i < MAX_CONNS; i++)
                s->conns[i].fd = -1;
        s->lfd = -1;
        s->answer_flush = true;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        ck_assert_int_eq(pipe2(s->wake, O_CLOEXEC | O_NONBLOCK), 0);
        if (listen)
                srv_listen(s);
        ck_assert_int_eq(pthread_create(&s->thread, NULL, srv_main, s), 0);
        /* Tests fork right after this: a thread still starting may hold an allocator lock
         * (ASan's has no fork handler), which the child would then wait on for ever. */
        pthread_mutex_lock(&s->lock);
        while (!s->running)
                pthread_cond_wait(&s->cond, &s->lock);
        pthread_mutex_unlock(&s->lock);
}

static void srv_start(server *s)
{
        srv_start_opt(s, true);
}

static void srv_stop(server *s)
{
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_mutex_unlock(&s->lock);
        srv_poke(s);
        pthread_join(s->thread, NULL);
        for (int i = 0; i < MAX_CONNS; i++)
                if (s->conns[i].fd >= 0)
                        srv_close_conn(&s->conns[i]);
        if (s->lfd >= 0)
                close(s->lfd);
        close(s->wake[0]);
        close(s->wake[1]);
        unlink(s->path);
        rmdir(s->dir);
        for (size_t i = 0; i < s->n; i++)
                free(s->msgs[i].data);
        free(s->msgs);
}

static void srv_set(server *s, bool *field, bool value)
{
        pthread_mutex_lock(&s->lock);
        *field = value;
        pthread_mutex_unlock(&s->lock);
        srv_poke(s);
}

/* Raise a command flag and wait until the server thread carried it out. */
static void srv_command(server *s, bool *flag)
{
        srv_set(s, flag, true);
        pthread_mutex_lock(&s->lock);
        while (*flag)
                pthread_cond_wait(&s->cond, &s->lock);
        pthread_mutex_unlock(&s->lock);
}

/* Close every connection. */
static void srv_drop(server *s)
{
        srv_command(s, &s->drop);
}

static size_t srv_count(server *s, uint32_t type)
{
        size_t n = 0;

        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n; i++)
                n += s->msgs[i].type == type;
        pthread_mutex_unlock(&s->lock);
        return n;
}

/* Decode the idx-th message of type (u must be initialised; the caller destroys it). */
static bool srv_get(server *s, uint32_t type, size_t idx, msgpack_unpacked *u, ss_msg *m,
                    int *ret_conn)
{
        bool found = false;

        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n && !found; i++) {
                if (s->msgs[i].type != type || idx--)
                        continue;
                ck_assert_int_eq(ss_wire_decode(s->msgs[i].data, s->msgs[i].len, u, m), 0);
                if (ret_conn)
                        *ret_conn = s->msgs[i].conn;
                found = true;
        }
        pthread_mutex_unlock(&s->lock);
        return found;
}

/* The SPAN_START (or SPAN_END, by span id) of a span named name. */
static bool srv_find_start(server *s, const char *name, msgpack_unpacked *u, ss_msg *m)
{
        for (size_t i = 0; srv_get(s, SS_MSG_SPAN_START, i, u, m, NULL); i++)
                if (m->span.name.len == strlen(name) &&
                    memcmp(m->span.name.ptr, name, m->span.name.len) == 0)
                        return true;
        return false;
}

static bool srv_find_end(server *s, const uint8_t *span_id, msgpack_unpacked *u, ss_msg *m)
{
        for (size_t i = 0; srv_get(s, SS_MSG_SPAN_END, i, u, m, NULL); i++)
                if (memcmp(m->end.span_id, span_id, SS_SPAN_ID_LEN) == 0)
                        return true;
        return false;
}

/* SPAN_ENDs received without their SPAN_START before them (the daemon skips such an end). */
static size_t srv_orphan_ends(server *s)
{
        uint8_t(*ids)[SS_SPAN_ID_LEN];
        size_t n_ids = 0, orphans = 0;
        msgpack_unpacked u;
        ss_msg m;

        msgpack_unpacked_init(&u);
        pthread_mutex_lock(&s->lock);
        ids = malloc((s->n + 1) * sizeof(*ids));
        ck_assert_ptr_nonnull(ids);
        for (size_t i = 0; i < s->n; i++) {
                uint32_t type = s->msgs[i].type;
                bool found = false;

                if (type != SS_MSG_SPAN_START && type != SS_MSG_SPAN_END)
                        continue;
                ck_assert_int_eq(ss_wire_decode(s->msgs[i].data, s->msgs[i].len, &u, &m), 0);
                if (type == SS_MSG_SPAN_START) {
                        memcpy(ids[n_ids++], m.span.span_id, SS_SPAN_ID_LEN);
                        continue;
                }
                for (size_t k = n_ids; k-- > 0 && !found;)
                        found = memcmp(ids[k], m.end.span_id, SS_SPAN_ID_LEN) == 0;
                orphans += !found;
        }
        pthread_mutex_unlock(&s->lock);
        free(ids);
        msgpack_unpacked_destroy(&u);
        return orphans;
}

/* ---- attribute checks ------------------------------------------------------------------- */

static const msgpack_object *map_get(const msgpack_object_map *m, const char *key)
{
        for (uint32_t i = 0; m && i < m->size; i++) {
                const msgpack_object *k = &m->ptr[i].key;

                if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
                    memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
                        return &m->ptr[i].val;
        }
        return NULL;
}

static void check_str(const msgpack_object_map *m, const char *key, const char *want)
{
        const msgpack_object *v = map_get(m, key);

        ck_assert_msg(v != NULL, "missing %s", key);
        ck_assert_int_eq(v->type, MSGPACK_OBJECT_STR);
        ck_assert_int_eq(v->via.str.size, strlen(want));
        ck_assert(memcmp(v->via.str.ptr, want, strlen(want)) == 0);
}

static int64_t get_int(const msgpack_object_map *m, const char *key)
{
        const msgpack_object *v = map_get(m, key);

        ck_assert_msg(v != NULL, "missing %s", key);
        ck_assert(v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                  v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
        return v->via.i64;
}

static double get_double(const msgpack_object_map *m, const char *key)
{
        const msgpack_object *v = map_get(m, key);

        ck_assert_msg(v != NULL, "missing %s", key);
        ck_assert(v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32);
        return v->via.f64;
}

static bool get_bool(const msgpack_object_map *m, const char *key)
{
        const msgpack_object *v = map_get(m, key);

        ck_assert_msg(v != NULL, "missing %s", key);
        ck_assert_int_eq(v->type, MSGPACK_OBJECT_BOOLEAN);
        return v->via.boolean;
}

static bool str_eq(ss_str s, const char *want)
{
        return s.ptr && s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

/* ---- client helpers --------------------------------------------------------------------- */

static sidespan_client *open_at(const server *s, double rate, bool content)
{
        sidespan_options o;
        sidespan_client *c = NULL;

        sidespan_options_init(&o);
        o.socket_path = s ? s->path : "/nonexistent/sidespan-test.sock";
        o.sample_rate = rate;
        o.include_content = content;
        o.flush_on_exit = false;
        o.exit_flush_timeout_ms = 200;
        ck_assert_int_eq(sidespan_client_open(&o, &c), 0);
        ck_assert_ptr_nonnull(c);
        return c;
}

static sidespan_stats stats_of(const sidespan_client *c)
{
        sidespan_stats st;

        sidespan_stats_init(&st);
        ck_assert_int_eq(sidespan_client_stats(c, &st), 0);
        return st;
}

static void ids_of(const sidespan_span *s, uint8_t *trace_id, uint8_t *span_id)
{
        char hex[33];

        ck_assert_int_eq(sidespan_span_trace_id_hex(s, hex, sizeof(hex)), 0);
        ck_assert_int_eq(ss_unhex(trace_id, hex, SS_TRACE_ID_LEN), 0);
        ck_assert_int_eq(sidespan_span_span_id_hex(s, hex, sizeof(hex)), 0);
        ck_assert_int_eq(ss_unhex(span_id, hex, SS_SPAN_ID_LEN), 0);
}

static void emit_one(sidespan_client *c, const char *name)
{
        sidespan_span *s;

        ck_assert_int_eq(sidespan_span_start(c, NULL, name, SIDESPAN_KIND_INTERNAL, &s), 0);
        ck_assert_int_eq(sidespan_span_end(s, SIDESPAN_STATUS_OK, NULL), 0);
}

/* ---- HELLO ----------------------------------------------------------------------------- */

START_TEST(test_hello_first_with_options)
{
        const sidespan_attr res[] = {
            SIDESPAN_ATTR_STR_INIT("deployment.environment", "test"),
            SIDESPAN_ATTR_INT_INIT("custom.int", 5),
            SIDESPAN_ATTR_STR_INIT("sdk.name", "impostor"), /* HELLO's own key: ignored */
        };
        msgpack_unpacked u;
        sidespan_options o;
        sidespan_client *c;
        server s;
        ss_msg m;

        srv_start(&s);
        sidespan_options_init(&o);
        o.socket_path = s.path;
        o.service_name = "svc";
        o.sample_rate = 0.5;
        o.include_content = false;
        o.resource_attrs = res;
        o.n_resource_attrs = 3;
        ck_assert_int_eq(sidespan_client_open(&o, &c), 0);
        emit_one(c, "x");
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);

        msgpack_unpacked_init(&u);
        pthread_mutex_lock(&s.lock);
        ck_assert_uint_ge(s.n, 1);
        ck_assert_uint_eq(s.msgs[0].type, SS_MSG_HELLO);
        pthread_mutex_unlock(&s.lock);
        ck_assert(srv_get(&s, SS_MSG_HELLO, 0, &u, &m, NULL));
        ck_assert_uint_eq(m.hello.version, SS_PROTOCOL_VERSION);
        check_str(m.hello.options, "service.name", "svc");
        ck_assert_int_eq(get_int(m.hello.options, "process.pid"), getpid());
        check_str(m.hello.options, "sdk.name", "libsidespan");
        check_str(m.hello.options, "sdk.version", SIDESPAN_VERSION_STRING);
        ck_assert(map_get(m.hello.options, "instance")->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
        ck_assert(map_get(m.hello.options, "instance")->via.u64 != 0);
        ck_assert(get_double(m.hello.options, "sample_rate") == 0.5);
        ck_assert(!get_bool(m.hello.options, "include_content"));
        check_str(m.hello.options, "deployment.environment", "test");
        ck_assert_int_eq(get_int(m.hello.options, "custom.int"), 5);
        msgpack_unpacked_destroy(&u);

        ck_assert(stats_of(c).connected);
        ck_assert_int_eq(sidespan_client_close(&c), 0);
        ck_assert_int_eq(s.decode_errors, 0);
        srv_stop(&s);
}
END_TEST

/* ---- span messages ---------------------------------------------------------------------- */

static void emit_typed_spans(sidespan_client *c, uint8_t *root_id, uint8_t *child_id,
                             uint8_t *trace_id)
{
        static const char *const strs[] = {"a", "b", "c"};
        static const int64_t ints[] = {-1, 0, 1LL << 40};
        static const double dbls[] = {0.5, -2.25};
        const sidespan_attr ev[] = {
            SIDESPAN_ATTR_STR_INIT("ev.str", "v"),
            SIDESPAN_ATTR_INT_INIT("ev.int", -7),
            SIDESPAN_ATTR_BOOL_INIT("ev.bool", true),
        };
        sidespan_span *root, *child;
        uint8_t tid2[SS_TRACE_ID_LEN];

        ck_assert_int_eq(sidespan_span_start(c, NULL, "root", SIDESPAN_KIND_SERVER, &root), 0);
        ck_assert_int_eq(sidespan_span_start(c, root, "child", SIDESPAN_KIND_CLIENT, &child), 0);
        ck_assert_int_eq(sidespan_span_set_str(root, "a.str", "hello"), 0);
        ck_assert_int_eq(sidespan_span_set_int(root, "a.int", -42), 0);
        ck_assert_int_eq(sidespan_span_set_double(root, "a.double", 3.25), 0);
        ck_assert_int_eq(sidespan_span_set_bool(root, "a.bool", true), 0);
        ck_assert_int_eq(sidespan_span_set_str_array(root, "a.strs", strs, 3), 0);
        ck_assert_int_eq(sidespan_span_set_int_array(root, "a.ints", ints, 3), 0);
        ck_assert_int_eq(sidespan_span_set_double_array(root, "a.dbls", dbls, 2), 0);
        ck_assert_int_eq(sidespan_span_add_event(root, "ev", ev, 3), 0);
        ids_of(root, trace_id, root_id);
        ids_of(child, tid2, child_id);
        ck_assert(memcmp(trace_id, tid2, SS_TRACE_ID_LEN) == 0);
        ck_assert(memcmp(root_id, child_id, SS_SPAN_ID_LEN) != 0);
        ck_assert_int_eq(sidespan_span_end(child, SIDESPAN_STATUS_OK, "ignored unless ERROR"), 0);
        ck_assert_int_eq(sidespan_span_end(root, SIDESPAN_STATUS_ERROR, "bad thing"), 0);
}

static void check_root_end(const ss_msg *m)
{
        const msgpack_object *v;

        ck_assert_int_eq(m->end.status_code, SS_STATUS_ERROR);
        ck_assert(str_eq(m->end.status_msg, "bad thing"));
        check_str(m->end.attrs, "a.str", "hello");
        ck_assert_int_eq(get_int(m->end.attrs, "a.int"), -42);
        ck_assert(get_double(m->end.attrs, "a.double") == 3.25);
        ck_assert(get_bool(m->end.attrs, "a.bool"));
        v = map_get(m->end.attrs, "a.strs");
        ck_assert(v && v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size == 3);
        ck_assert(v->via.array.ptr[2].type == MSGPACK_OBJECT_STR);
        ck_assert(memcmp(v->via.array.ptr[2].via.str.ptr, "c", 1) == 0);
        v = map_get(m->end.attrs, "a.ints");
        ck_assert(v && v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size == 3);
        ck_assert_int_eq(v->via.array.ptr[0].via.i64, -1);
        ck_assert_int_eq(v->via.array.ptr[2].via.i64, 1LL << 40);
        v = map_get(m->end.attrs, "a.dbls");
        ck_assert(v && v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size == 2);
        ck_assert(v->via.array.ptr[1].via.f64 == -2.25);
}

START_TEST(test_span_start_event_end)
{
        uint8_t trace_id[SS_TRACE_ID_LEN], root_id[SS_SPAN_ID_LEN], child_id[SS_SPAN_ID_LEN];
        uint64_t before = ss_now_ns();
        msgpack_unpacked u;
        sidespan_client *c;
        server s;
        ss_msg m;

        srv_start(&s);
        c = open_at(&s, 1.0, true);
        emit_typed_spans(c, root_id, child_id, trace_id);
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);
        msgpack_unpacked_init(&u);

        ck_assert(srv_find_start(&s, "root", &u, &m));
        ck_assert(memcmp(m.span.trace_id, trace_id, SS_TRACE_ID_LEN) == 0);
        ck_assert(memcmp(m.span.span_id, root_id, SS_SPAN_ID_LEN) == 0);
        ck_assert_ptr_null(m.span.parent_id);
        ck_assert_int_eq(m.span.kind, SS_KIND_SERVER);
        ck_assert_uint_ge(m.span.start_ns, before);
        ck_assert_uint_eq(get_int(m.span.options, "flags"), 0x101);

        ck_assert(srv_find_start(&s, "child", &u, &m));
        ck_assert(memcmp(m.span.trace_id, trace_id, SS_TRACE_ID_LEN) == 0);
        ck_assert(memcmp(m.span.parent_id, root_id, SS_SPAN_ID_LEN) == 0);
        ck_assert_int_eq(m.span.kind, SS_KIND_CLIENT);

        ck_assert(srv_get(&s, SS_MSG_SPAN_EVENT, 0, &u, &m, NULL));
        ck_assert(memcmp(m.event.span_id, root_id, SS_SPAN_ID_LEN) == 0);
        ck_assert(str_eq(m.event.name, "ev"));
        ck_assert_uint_ge(m.event.time_ns, before);
        check_str(m.event.attrs, "ev.str", "v");
        ck_assert_int_eq(get_int(m.event.attrs, "ev.int"), -7);
        ck_assert(get_bool(m.event.attrs, "ev.bool"));

        ck_assert(srv_find_end(&s, child_id, &u, &m));
        ck_assert_int_eq(m.end.status_code, SS_STATUS_OK);
        ck_assert_ptr_null(m.end.status_msg.ptr);
        ck_assert(srv_find_end(&s, root_id, &u, &m));
        check_root_end(&m);
        msgpack_unpacked_destroy(&u);

        ck_assert_uint_eq(stats_of(c).spans_started, 2);
        ck_assert_uint_eq(stats_of(c).dropped, 0);
        sidespan_client_close(&c);
        ck_assert_int_eq(s.decode_errors, 0);
        srv_stop(&s);
}
END_TEST

/* The start and the setters with lengths read no byte past them, and refuse what the others
 * refuse; the header's inline forms and the exported functions of the same names send the
 * same. */
START_TEST(test_setters_with_lengths)
{
        static const char key[] = "n.str.not-this", val[] = "valueXYZ";
        uint8_t trace_id[SS_TRACE_ID_LEN], span_id[SS_SPAN_ID_LEN];
        msgpack_unpacked u;
        sidespan_client *c;
        sidespan_span *sp, *other;
        server s;
        ss_msg m;

        srv_start(&s);
        c = open_at(&s, 1.0, true);
        ck_assert_int_eq(sidespan_span_start_n(c, NULL, "lengths!", 7, SIDESPAN_KIND_INTERNAL, &sp),
                         0);
        ck_assert_int_eq(sidespan_span_start_n(c, NULL, "x", 0, SIDESPAN_KIND_INTERNAL, &other),
                         -EINVAL);
        ck_assert_int_eq(sidespan_span_start_n(c, NULL, NULL, 1, SIDESPAN_KIND_INTERNAL, &other),
                         -EINVAL);
        ck_assert_int_eq((sidespan_span_start)(c, sp, "", SIDESPAN_KIND_INTERNAL, &other), -EINVAL);
        ck_assert_int_eq((sidespan_span_start)(c, sp, "child", SIDESPAN_KIND_INTERNAL, &other), 0);
        ck_assert_int_eq(sidespan_span_end(other, SIDESPAN_STATUS_OK, NULL), 0);
        ck_assert_int_eq(sidespan_span_set_str_n(sp, key, 5, val, 5), 0);
        ck_assert_int_eq(sidespan_span_set_int_n(sp, "n.int!", 5, -7), 0);
        ck_assert_int_eq(sidespan_span_set_double_n(sp, "n.dbl!", 5, 1.5), 0);
        ck_assert_int_eq(sidespan_span_set_bool_n(sp, "n.boo!", 5, true), 0);
        ck_assert_int_eq(sidespan_span_set_str_n(sp, "n.empty", 7, "", 0), 0);
        ck_assert_int_eq(sidespan_span_set_str(sp, "m.str", "macro"), 0);
        ck_assert_int_eq((sidespan_span_set_str)(sp, "f.str", "function"), 0);
        ck_assert_int_eq((sidespan_span_set_int)(sp, "f.int", 42), 0);
        ck_assert_int_eq((sidespan_span_set_double)(sp, "f.dbl", 0.25), 0);
        ck_assert_int_eq((sidespan_span_set_bool)(sp, "f.bool", false), 0);
        ck_assert_int_eq(sidespan_span_set_str_n(sp, "k", 0, "v", 1), -EINVAL);
        ck_assert_int_eq(sidespan_span_set_str_n(sp, NULL, 1, "v", 1), -EINVAL);
        ck_assert_int_eq(sidespan_span_set_str_n(sp, "k", 1, NULL, 0), -EINVAL);
        ck_assert_int_eq(sidespan_span_set_int_n(sp, "k", 0, 1), -EINVAL);
        ck_assert_int_eq((sidespan_span_set_str)(sp, NULL, "v"), -EINVAL);
        ck_assert_int_eq((sidespan_span_set_str)(sp, "k", NULL), -EINVAL);
        ck_assert_int_eq((sidespan_span_set_bool)(sp, "", true), -EINVAL);
        ids_of(sp, trace_id, span_id);
        ck_assert_int_eq(sidespan_span_end(sp, SIDESPAN_STATUS_OK, NULL), 0);
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);

        msgpack_unpacked_init(&u);
        ck_assert(srv_find_start(&s, "lengths", &u, &m));
        ck_assert(srv_find_start(&s, "child", &u, &m));
        ck_assert(srv_find_end(&s, span_id, &u, &m));
        ck_assert_uint_eq(m.end.attrs->size, 10);
        check_str(m.end.attrs, "n.str", "value");
        ck_assert_ptr_null(map_get(m.end.attrs, key));
        ck_assert_int_eq(get_int(m.end.attrs, "n.int"), -7);
        ck_assert(get_double(m.end.attrs, "n.dbl") == 1.5);
        ck_assert(get_bool(m.end.attrs, "n.boo"));
        check_str(m.end.attrs, "n.empty", "");
        check_str(m.end.attrs, "m.str", "macro");
        check_str(m.end.attrs, "f.str", "function");
        ck_assert_int_eq(get_int(m.end.attrs, "f.int"), 42);
        ck_assert(get_double(m.end.attrs, "f.dbl") == 0.25);
        ck_assert(!get_bool(m.end.attrs, "f.bool"));
        msgpack_unpacked_destroy(&u);
        sidespan_client_close(&c);
        ck_assert_int_eq(s.decode_errors, 0);
        srv_stop(&s);
}
END_TEST

/* A key of k bytes, its first bytes its length (distinct for every k), the rest filler. */
static void key_of_len(char *buf, size_t k, char fill)
{
        char num[8];

        snprintf(num, sizeof(num), "%02zu", k);
        memset(buf, fill, k);
        memcpy(buf, num, k < 2 ? k : 2);
        buf[k] = '\0';
}

/* The value of the k-th span of test_setters_every_length(): (k * 7) % 41 bytes, 1 to 40,
 * each length once for k = 1 to 40. */
static size_t value_of_len(char *buf, size_t k)
{
        size_t v = (k * 7) % 41;

        memset(buf, (int)('a' + k % 26), v);
        buf[0] = (char)('A' + k % 26);
        buf[v - 1] = '$';
        buf[v] = '\0';
        return v;
}

/* The typed setters write the common case inline and hand the rest on: keys and string
 * values of every length either side of 31 bytes, integers either side of each msgpack
 * width, set first on a fresh span (where there is room for the inline path), and a span
 * filled to its frame's end, all arrive as set, and no more. */
START_TEST(test_setters_every_length)
{
        static const int64_t ints[] = {
            0,   127, 128,  255,  256,    65535,  65536,     4294967295, 4294967296, -1,
            -32, -33, -128, -129, -32768, -32769, INT32_MIN, INT64_MIN,  INT64_MAX,  1};
        const size_t n_ints = sizeof(ints) / sizeof(ints[0]);
        uint8_t trace_id[SS_TRACE_ID_LEN], ids[41][SS_SPAN_ID_LEN];
        char key[48], val[48];
        sidespan_options o;
        msgpack_unpacked u;
        sidespan_client *c, *small;
        sidespan_span *sp;
        uint32_t accepted = 0;
        server s;
        ss_msg m;
        int r;

        srv_start(&s);
        c = open_at(&s, 1.0, true);
        for (size_t k = 1; k <= 40; k++) {
                ck_assert_int_eq(sidespan_span_start(c, NULL, "len", SIDESPAN_KIND_INTERNAL, &sp),
                                 0);
                key_of_len(key, k, 'k');
                value_of_len(val, k);
                ck_assert_int_eq(sidespan_span_set_str(sp, key, val), 0);
                ck_assert_int_eq(sidespan_span_set_int(sp, "int", ints[k % n_ints]), 0);
                key_of_len(key, 30 + k % 4, 'd');
                ck_assert_int_eq(sidespan_span_set_double(sp, key, -0.125 * (double)k), 0);
                key_of_len(key, 30 + k % 4, 'b');
                ck_assert_int_eq(sidespan_span_set_bool(sp, key, k % 2), 0);
                ids_of(sp, trace_id, ids[k]);
                ck_assert_int_eq(sidespan_span_end(sp, SIDESPAN_STATUS_OK, NULL), 0);
        }

        /* A span of a client whose frames are 512 bytes, filled until a value is refused. */
        sidespan_options_init(&o);
        o.socket_path = s.path;
        o.max_frame = 512;
        o.flush_on_exit = false;
        ck_assert_int_eq(sidespan_client_open(&o, &small), 0);
        ck_assert_int_eq(sidespan_span_start(small, NULL, "full", SIDESPAN_KIND_INTERNAL, &sp), 0);
        do {
                snprintf(key, sizeof(key), "f%03u", accepted);
                r = sidespan_span_set_str(sp, key, "0123456789abcdefghij");
                accepted += r == 0;
        } while (r == 0 && accepted < 1000);
        ck_assert_int_eq(r, -ENOBUFS);
        ck_assert_uint_eq(stats_of(small).attrs_dropped, 1);
        ids_of(sp, trace_id, ids[0]);
        ck_assert_int_eq(sidespan_span_end(sp, SIDESPAN_STATUS_OK, NULL), 0);
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);
        ck_assert_int_eq(sidespan_flush(small, 5000), 0);

        msgpack_unpacked_init(&u);
        for (size_t k = 1; k <= 40; k++) {
                ck_assert(srv_find_end(&s, ids[k], &u, &m));
                ck_assert_uint_eq(m.end.attrs->size, 4);
                key_of_len(key, k, 'k');
                value_of_len(val, k);
                check_str(m.end.attrs, key, val);
                ck_assert_msg(get_int(m.end.attrs, "int") == ints[k % n_ints], "span %zu", k);
                key_of_len(key, 30 + k % 4, 'd');
                ck_assert(get_double(m.end.attrs, key) == -0.125 * (double)k);
                key_of_len(key, 30 + k % 4, 'b');
                ck_assert(get_bool(m.end.attrs, key) == (k % 2));
        }
        ck_assert(srv_find_end(&s, ids[0], &u, &m));
        ck_assert_uint_gt(accepted, 5);
        ck_assert_uint_eq(m.end.attrs->size, accepted);
        snprintf(key, sizeof(key), "f%03u", accepted - 1);
        check_str(m.end.attrs, key, "0123456789abcdefghij");
        msgpack_unpacked_destroy(&u);
        sidespan_client_close(&small);
        sidespan_client_close(&c);
        ck_assert_int_eq(s.decode_errors, 0);
        srv_stop(&s);
}
END_TEST

START_TEST(test_bad_arguments)
{
        sidespan_client *c = open_at(NULL, 1.0, true);
        sidespan_span *s = NULL;
        char small[10];
        const sidespan_attr bad[] = {{.key = "k", .type = 99}};

        ck_assert_int_eq(sidespan_span_start(c, NULL, NULL, 1, &s), -EINVAL);
        ck_assert_int_eq(sidespan_span_start(c, NULL, "", 1, &s), -EINVAL);
        ck_assert_int_eq(sidespan_span_start(c, NULL, "x", 6, &s), -EINVAL);
        ck_assert_int_eq(sidespan_span_start(c, NULL, "x", 1, NULL), -EINVAL);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(sidespan_span_start(c, NULL, "x", SIDESPAN_KIND_INTERNAL, &s), 0);
        ck_assert_int_eq(sidespan_span_set_str(s, NULL, "v"), -EINVAL);
        ck_assert_int_eq(sidespan_span_set_str(s, "", "v"), -EINVAL);
        ck_assert_int_eq(sidespan_span_set_str(s, "k", NULL), -EINVAL);
        ck_assert_int_eq(sidespan_span_set_str_array(s, "k", NULL, 2), -EINVAL);
        ck_assert_int_eq(sidespan_span_set_attr(s, &bad[0]), -EINVAL);
        ck_assert_int_eq(sidespan_span_add_event(s, "e", bad, 1), -EINVAL);
        ck_assert_int_eq(sidespan_span_add_event(s, NULL, NULL, 0), -EINVAL);
        ck_assert_int_eq(sidespan_span_traceparent(s, small, sizeof(small)), -ENOBUFS);
        ck_assert_int_eq(sidespan_span_traceparent(NULL, small, sizeof(small)), -EINVAL);
        ck_assert_int_eq(sidespan_span_end(s, 7, NULL), -EINVAL); /* still ended and freed */
        ck_assert_int_eq(sidespan_span_start_remote(c, "00-zz", "x", 1, &s), -EINVAL);
        ck_assert_int_eq(sidespan_span_start_remote(c, NULL, "x", 1, &s), -EINVAL);
        sidespan_client_close(&c);
}
END_TEST

START_TEST(test_bad_options)
{
        sidespan_options o;
        sidespan_client *c = NULL;
        char longpath[200];

        sidespan_options_init(&o);
        o.sample_rate = 1.5;
        ck_assert_int_eq(sidespan_client_open(&o, &c), -EINVAL);
        o.sample_rate = NAN;
        ck_assert_int_eq(sidespan_client_open(&o, &c), -EINVAL);
        sidespan_options_init(&o);
        o.buffer_size = 10;
        ck_assert_int_eq(sidespan_client_open(&o, &c), -EINVAL);
        sidespan_options_init(&o);
        o.max_frame = SS_MAX_FRAME_LIMIT + 1;
        ck_assert_int_eq(sidespan_client_open(&o, &c), -EINVAL);
        sidespan_options_init(&o);
        o.service_name = "";
        ck_assert_int_eq(sidespan_client_open(&o, &c), -EINVAL);
        sidespan_options_init(&o);
        memset(longpath, 'a', sizeof(longpath) - 1);
        longpath[sizeof(longpath) - 1] = '\0';
        o.socket_path = longpath;
        ck_assert_int_eq(sidespan_client_open(&o, &c), -ENAMETOOLONG);
        sidespan_options_init(&o);
        o.max_frame = 256;
        o.service_name = longpath; /* HELLO would not fit max_frame */
        ck_assert_int_eq(sidespan_client_open(&o, &c), -EINVAL);
        sidespan_options_init(&o);
        o.size = 4; /* older than any published layout */
        ck_assert_int_eq(sidespan_client_open(&o, &c), -EINVAL);
        ck_assert_ptr_null(c);
}
END_TEST

/* ---- context ---------------------------------------------------------------------------- */

static bool is_hex(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

START_TEST(test_traceparent_format)
{
        sidespan_client *c = open_at(NULL, 1.0, true);
        char tp[SS_TRACEPARENT_LEN + 1], tid[33], sid[17];
        sidespan_span *s;

        ck_assert_int_eq(sidespan_span_start(c, NULL, "x", SIDESPAN_KIND_INTERNAL, &s), 0);
        ck_assert_int_eq(sidespan_span_traceparent(s, tp, sizeof(tp)), 0);
        ck_assert_int_eq(sidespan_span_trace_id_hex(s, tid, sizeof(tid)), 0);
        ck_assert_int_eq(sidespan_span_span_id_hex(s, sid, sizeof(sid)), 0);
        ck_assert_uint_eq(strlen(tp), 55);
        ck_assert(strncmp(tp, "00-", 3) == 0 && tp[35] == '-' && tp[52] == '-');
        ck_assert(is_hex(tp + 3, 32) && is_hex(tp + 36, 16));
        ck_assert(strncmp(tp + 3, tid, 32) == 0);
        ck_assert(strncmp(tp + 36, sid, 16) == 0);
        ck_assert_str_eq(tp + 53, "01");
        ck_assert(strcmp(tid, "00000000000000000000000000000000") != 0);
        sidespan_span_end(s, 0, NULL);
        sidespan_client_close(&c);
}
END_TEST

START_TEST(test_remote_parent)
{
        const char *parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        uint8_t tid[SS_TRACE_ID_LEN], pid[SS_SPAN_ID_LEN];
        char tp[64];
        msgpack_unpacked u;
        sidespan_client *c;
        sidespan_span *r, *child, *unsampled;
        server s;
        ss_msg m;

        srv_start(&s);
        c = open_at(&s, 0.0, true); /* the remote decision beats the local rate */
        ck_assert_int_eq(sidespan_span_start_remote(c, parent, "srv", SIDESPAN_KIND_SERVER, &r), 0);
        ck_assert_int_eq(sidespan_span_start(c, r, "inner", SIDESPAN_KIND_INTERNAL, &child), 0);
        ck_assert_int_eq(sidespan_span_traceparent(r, tp, sizeof(tp)), 0);
        ck_assert(strncmp(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) == 0);
        ck_assert(strncmp(tp + 36, "00f067aa0ba902b7", 16) != 0);
        ck_assert_str_eq(tp + 53, "01");
        sidespan_span_end(child, SIDESPAN_STATUS_OK, NULL);
        sidespan_span_end(r, SIDESPAN_STATUS_OK, NULL);
        /* Not sampled upstream: ids and a traceparent, nothing sent. */
        ck_assert_int_eq(
            sidespan_span_start_remote(c, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                                       "quiet", SIDESPAN_KIND_SERVER, &unsampled),
            0);
        ck_assert(!sidespan_span_is_sampled(unsampled));
        ck_assert_int_eq(sidespan_span_traceparent(unsampled, tp, sizeof(tp)), 0);
        ck_assert_str_eq(tp + 53, "00");
        sidespan_span_end(unsampled, SIDESPAN_STATUS_OK, NULL);
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);

        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_START), 2);
        msgpack_unpacked_init(&u);
        ck_assert(srv_find_start(&s, "srv", &u, &m));
        ss_unhex(tid, "4bf92f3577b34da6a3ce929d0e0e4736", 16);
        ss_unhex(pid, "00f067aa0ba902b7", 8);
        ck_assert(memcmp(m.span.trace_id, tid, 16) == 0);
        ck_assert(memcmp(m.span.parent_id, pid, 8) == 0);
        ck_assert_uint_eq(get_int(m.span.options, "flags"), 0x301);
        ck_assert(srv_find_start(&s, "inner", &u, &m));
        ck_assert(memcmp(m.span.trace_id, tid, 16) == 0);
        ck_assert_uint_eq(get_int(m.span.options, "flags"), 0x101);
        msgpack_unpacked_destroy(&u);
        ck_assert_uint_eq(stats_of(c).unsampled, 1);
        sidespan_client_close(&c);
        srv_stop(&s);
}
END_TEST

/* ---- sampling --------------------------------------------------------------------------- */

START_TEST(test_sample_rate_zero_sends_nothing)
{
        sidespan_client *c;
        sidespan_span *root, *child;
        char tp[64];
        server s;

        srv_start(&s);
        c = open_at(&s, 0.0, true);
        for (int i = 0; i < 50; i++) {
                ck_assert_int_eq(sidespan_span_start(c, NULL, "r", SIDESPAN_KIND_SERVER, &root), 0);
                ck_assert_int_eq(sidespan_span_start(c, root, "c", SIDESPAN_KIND_INTERNAL, &child),
                                 0);
                ck_assert(!sidespan_span_is_sampled(child));
                ck_assert_int_eq(sidespan_span_set_str(child, "k", "v"), 0);
                ck_assert_int_eq(sidespan_span_add_event(child, "e", NULL, 0), 0);
                ck_assert_int_eq(sidespan_span_traceparent(child, tp, sizeof(tp)), 0);
                ck_assert_str_eq(tp + 53, "00");
                sidespan_span_end(child, SIDESPAN_STATUS_OK, NULL);
                sidespan_span_end(root, SIDESPAN_STATUS_OK, NULL);
        }
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_START), 0);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_END), 0);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_EVENT), 0);
        ck_assert_uint_eq(stats_of(c).unsampled, 100);
        ck_assert_uint_eq(stats_of(c).spans_started, 100);
        sidespan_client_close(&c);
        srv_stop(&s);
}
END_TEST

START_TEST(test_sampling_whole_traces)
{
        sidespan_client *c;
        size_t kept = 0;
        server s;

        srv_start(&s);
        c = open_at(&s, 0.5, true);
        for (int i = 0; i < 400; i++) {
                uint8_t tid[SS_TRACE_ID_LEN], sid[SS_SPAN_ID_LEN];
                sidespan_span *root, *child, *grandchild;

                sidespan_span_start(c, NULL, "r", SIDESPAN_KIND_SERVER, &root);
                sidespan_span_start(c, root, "c", SIDESPAN_KIND_INTERNAL, &child);
                sidespan_span_start(c, child, "g", SIDESPAN_KIND_INTERNAL, &grandchild);
                ids_of(root, tid, sid);
                /* The decision is the consistent one on the trace id, for the whole trace. */
                ck_assert_int_eq(sidespan_span_is_sampled(root), ss_sample_keep(tid, 0.5));
                ck_assert_int_eq(sidespan_span_is_sampled(child), sidespan_span_is_sampled(root));
                ck_assert_int_eq(sidespan_span_is_sampled(grandchild),
                                 sidespan_span_is_sampled(root));
                kept += sidespan_span_is_sampled(root);
                sidespan_span_end(grandchild, 0, NULL);
                sidespan_span_end(child, 0, NULL);
                sidespan_span_end(root, 0, NULL);
        }
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);
        ck_assert(kept > 100 && kept < 300);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_START), 3 * kept);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_END), 3 * kept);
        ck_assert_uint_eq(stats_of(c).unsampled, 3 * (400 - kept));
        {
                msgpack_unpacked u;
                ss_msg m;

                msgpack_unpacked_init(&u);
                ck_assert(srv_get(&s, SS_MSG_SPAN_START, 0, &u, &m, NULL));
                check_str(m.span.options, "trace_state", "ot=th:8");
                msgpack_unpacked_destroy(&u);
        }
        sidespan_client_close(&c);
        srv_stop(&s);
}
END_TEST

/* ---- content ---------------------------------------------------------------------------- */

static void check_no_content(const msgpack_object_map *m)
{
        for (uint32_t i = 0; m && i < m->size; i++) {
                const msgpack_object *k = &m->ptr[i].key;

                ck_assert_msg(!ss_content_key(k->via.str.ptr, k->via.str.size), "%.*s arrived",
                              (int)k->via.str.size, k->via.str.ptr);
        }
}

START_TEST(test_include_content_false)
{
        const sidespan_attr ev[] = {
            SIDESPAN_ATTR_STR_INIT("gen_ai.output.messages", "secret"),
            SIDESPAN_ATTR_STR_INIT("ev.keep", "yes"),
        };
        msgpack_unpacked u;
        sidespan_client *c;
        sidespan_span *run, *tool;
        server s;
        ss_msg m;

        srv_start(&s);
        c = open_at(&s, 1.0, false);
        ck_assert_int_eq(sidespan_agent_run_start(c, "agent", "gpt-4o", "run-1", NULL, NULL,
                                                  "secret input", &run),
                         0);
        ck_assert_int_eq(sidespan_tool_start(c, run, "t", "call-1", "{\"secret\":1}", &tool), 0);
        ck_assert_int_eq(sidespan_tool_end(tool, true, "secret result", 0.5), 0);
        ck_assert_int_eq(sidespan_span_set_str(run, "gen_ai.system_instructions", "secret"), 0);
        ck_assert_int_eq(sidespan_span_set_str(run, "langfuse.trace.output", "secret"), 0);
        ck_assert_int_eq(sidespan_span_set_str(run, "keep.me", "yes"), 0);
        ck_assert_int_eq(sidespan_span_add_event(run, "ev", ev, 2), 0);
        ck_assert_int_eq(sidespan_span_end(run, SIDESPAN_STATUS_OK, NULL), 0);
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);

        msgpack_unpacked_init(&u);
        for (size_t i = 0; srv_get(&s, SS_MSG_SPAN_START, i, &u, &m, NULL); i++)
                check_no_content(m.span.attrs);
        for (size_t i = 0; srv_get(&s, SS_MSG_SPAN_END, i, &u, &m, NULL); i++)
                check_no_content(m.end.attrs);
        ck_assert(srv_get(&s, SS_MSG_SPAN_EVENT, 0, &u, &m, NULL));
        check_no_content(m.event.attrs);
        check_str(m.event.attrs, "ev.keep", "yes");
        ck_assert(srv_find_start(&s, "agent.run", &u, &m));
        check_str(m.span.attrs, "upsonic.agent.name", "agent");
        ck_assert(srv_find_end(&s, m.span.span_id, &u, &m));
        check_str(m.end.attrs, "keep.me", "yes");
        msgpack_unpacked_destroy(&u);
        sidespan_client_close(&c);
        srv_stop(&s);
}
END_TEST

/* ---- limits and back-pressure ----------------------------------------------------------- */

START_TEST(test_buffer_full_drops_without_daemon)
{
        sidespan_options o;
        sidespan_client *c;
        sidespan_stats st;

        sidespan_options_init(&o);
        o.socket_path = "/nonexistent/sidespan-test.sock";
        o.buffer_size = 4096;
        o.flush_on_exit = false;
        ck_assert_int_eq(sidespan_client_open(&o, &c), 0);
        for (int i = 0; i < 20000; i++) {
                sidespan_span *s;

                ck_assert_int_eq(sidespan_span_start(c, NULL, "s", SIDESPAN_KIND_INTERNAL, &s), 0);
                ck_assert_int_eq(sidespan_span_set_int(s, "i", i), 0);
                ck_assert_int_eq(sidespan_span_end(s, SIDESPAN_STATUS_OK, NULL), 0);
        }
        st = stats_of(c);
        ck_assert_uint_eq(st.spans_started, 20000);
        ck_assert_uint_gt(st.dropped, 0);
        ck_assert_uint_eq(st.frames_queued + st.dropped, 40000);
        ck_assert_uint_le(st.buffered_bytes, 4096 + 64);
        ck_assert_uint_eq(st.frames_sent, 0);
        ck_assert(!st.connected);
        ck_assert_int_eq(sidespan_flush(c, 2000), -ENOTCONN);
        sidespan_client_close(&c);
}
END_TEST

START_TEST(test_buffer_full_drops_with_stalled_reader)
{
        sidespan_options o;
        sidespan_client *c;
        sidespan_stats st;
        server s;
        int n = 0;

        srv_start(&s);
        srv_set(&s, &s.paused, true);
        sidespan_options_init(&o);
        o.socket_path = s.path;
        o.buffer_size = 64 * 1024;
        o.flush_on_exit = false;
        o.exit_flush_timeout_ms = 100;
        ck_assert_int_eq(sidespan_client_open(&o, &c), 0);
        /* The reader never reads: the socket fills, then the buffer, then frames drop, and
         * no call blocks (the test would hang). */
        while (stats_of(c).dropped < 1000 && n < 2000000) {
                sidespan_span *sp;

                ck_assert_int_eq(sidespan_span_start(c, NULL, "s", 1, &sp), 0);
                ck_assert_int_eq(sidespan_span_set_str(sp, "pad", "0123456789abcdef"), 0);
                ck_assert_int_eq(sidespan_span_end(sp, SIDESPAN_STATUS_OK, NULL), 0);
                n++;
        }
        st = stats_of(c);
        ck_assert_uint_ge(st.dropped, 1000);
        ck_assert_uint_eq(st.frames_queued + st.dropped, 2ull * (uint64_t)n);
        ck_assert_int_eq(sidespan_flush(c, 100), -ETIMEDOUT);
        /* Reading again delivers what was buffered, whole. */
        srv_set(&s, &s.paused, false);
        ck_assert_int_eq(sidespan_flush(c, 10000), 0);
        st = stats_of(c);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_START) + srv_count(&s, SS_MSG_SPAN_END),
                          st.frames_sent - srv_count(&s, SS_MSG_FLUSH));
        sidespan_client_close(&c);
        ck_assert_int_eq(s.decode_errors, 0);
        srv_stop(&s);
}
END_TEST

/* A backlog built while the daemon is away grows the buffers to what it takes; once it is
 * written and rounds carry little again, they are cut back, and nothing is lost. */
START_TEST(test_buffers_shrink_after_a_backlog)
{
        sidespan_client *c;
        sidespan_stats st;
        server s;
        int n = 0;

        srv_start_opt(&s, false);
        c = open_at(&s, 1.0, true);
        while (stats_of(c).buffered_bytes < (1u << 20)) {
                emit_one(c, "backlog");
                n++;
        }
        st = stats_of(c);
        ck_assert_uint_eq(st.dropped, 0);
        ck_assert_uint_ge(st.buffer_capacity, 1u << 20);
        srv_listen(&s);
        ck_assert_int_eq(sidespan_flush(c, 10000), 0);
        ck_assert_uint_ge(stats_of(c).buffer_capacity, 1u << 20);
        for (int round = 0; round < 3; round++) {
                emit_one(c, "after");
                n++;
                ck_assert_int_eq(sidespan_flush(c, 10000), 0);
        }
        st = stats_of(c);
        ck_assert_uint_le(st.buffer_capacity, 2 * 128 * 1024);
        ck_assert_uint_eq(st.dropped, 0);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_START), (size_t)n);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_END), (size_t)n);
        sidespan_client_close(&c);
        ck_assert_int_eq(s.decode_errors, 0);
        srv_stop(&s);
}
END_TEST

START_TEST(test_dropped_start_drops_its_end)
{
        char name[151];
        sidespan_options o;
        sidespan_client *c;
        sidespan_stats st;
        server s;
        int n = 0;

        /* A start several times the size of its event and end (209, 28 and 28 bytes), so
         * that the 4096 bytes of buffer hold 15 spans and leave 121: room for the event and
         * the end of the 16th, not for its start. They must not go alone. */
        memset(name, 'n', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        srv_start(&s);
        srv_set(&s, &s.paused, true);
        sidespan_options_init(&o);
        o.socket_path = s.path;
        o.buffer_size = 4096;
        o.flush_on_exit = false;
        o.exit_flush_timeout_ms = 100;
        ck_assert_int_eq(sidespan_client_open(&o, &c), 0);
        while (stats_of(c).dropped < 100 && n < 2000000) {
                sidespan_span *sp;

                ck_assert_int_eq(sidespan_span_start(c, NULL, name, 1, &sp), 0);
                ck_assert_int_eq(sidespan_span_add_event(sp, "e", NULL, 0), 0);
                ck_assert_int_eq(sidespan_span_end(sp, SIDESPAN_STATUS_OK, NULL), 0);
                n++;
        }
        st = stats_of(c);
        ck_assert_uint_eq(st.spans_started, (uint64_t)n);
        /* Start, event and end of every span: queued or counted as dropped. */
        ck_assert_uint_eq(st.frames_queued + st.dropped, 3ull * (uint64_t)n);
        srv_set(&s, &s.paused, false);
        ck_assert_int_eq(sidespan_flush(c, 10000), 0);
        ck_assert_uint_gt(srv_count(&s, SS_MSG_SPAN_START), 0);
        ck_assert_uint_eq(srv_orphan_ends(&s), 0);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_EVENT), srv_count(&s, SS_MSG_SPAN_START));
        sidespan_client_close(&c);
        ck_assert_int_eq(s.decode_errors, 0);
        srv_stop(&s);
}
END_TEST

START_TEST(test_oversized_values)
{
        sidespan_options o;
        sidespan_client *c;
        sidespan_span *sp;
        char *big = malloc(8192);
        sidespan_attr ev;
        server s;

        memset(big, 'x', 8191);
        big[8191] = '\0';
        ev = (sidespan_attr)SIDESPAN_ATTR_STR_INIT("big", big);
        srv_start(&s);
        sidespan_options_init(&o);
        o.socket_path = s.path;
        o.max_frame = 4096;
        o.flush_on_exit = false;
        ck_assert_int_eq(sidespan_client_open(&o, &c), 0);
        ck_assert_int_eq(sidespan_span_start(c, NULL, "s", 1, &sp), 0);
        ck_assert_int_eq(sidespan_span_set_str(sp, "big", big), -ENOBUFS);
        ck_assert_uint_eq(stats_of(c).attrs_dropped, 1);
        ck_assert_int_eq(sidespan_span_set_str(sp, "small", "ok"), 0);
        ck_assert_int_eq(sidespan_span_add_event(sp, "e", &ev, 1), -EMSGSIZE);
        ck_assert_uint_eq(stats_of(c).dropped, 1);
        ck_assert_int_eq(sidespan_span_end(sp, SIDESPAN_STATUS_OK, NULL), 0);
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_END), 1);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_EVENT), 0);
        sidespan_client_close(&c);
        srv_stop(&s);
        free(big);
}
END_TEST

/* ---- connection ------------------------------------------------------------------------- */

START_TEST(test_reconnect_says_hello_again)
{
        msgpack_unpacked u;
        sidespan_client *c;
        uint64_t inst[2];
        int conn;
        server s;
        ss_msg m;

        srv_start(&s);
        c = open_at(&s, 1.0, true);
        emit_one(c, "before");
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);
        srv_drop(&s);
        emit_one(c, "after");
        ck_assert_int_eq(sidespan_flush(c, 10000), 0);

        ck_assert_uint_eq(srv_count(&s, SS_MSG_HELLO), 2);
        msgpack_unpacked_init(&u);
        for (int i = 0; i < 2; i++) {
                ck_assert(srv_get(&s, SS_MSG_HELLO, (size_t)i, &u, &m, &conn));
                ck_assert_int_eq(conn, i);
                inst[i] = map_get(m.hello.options, "instance")->via.u64;
        }
        ck_assert(inst[0] == inst[1]); /* the daemon can tell it is the same client */
        ck_assert(srv_find_start(&s, "after", &u, &m));
        msgpack_unpacked_destroy(&u);
        ck_assert_uint_eq(stats_of(c).reconnects, 1);
        ck_assert(stats_of(c).connected);
        sidespan_client_close(&c);
        ck_assert_int_eq(s.decode_errors, 0);
        srv_stop(&s);
}
END_TEST

/* Connections cut at random moments while frames stream: every connection must begin
 * with HELLO and carry only whole frames. */
START_TEST(test_cut_connections_never_send_half_frames)
{
        sidespan_client *c;
        server s;

        srv_start(&s);
        c = open_at(&s, 1.0, true);
        for (int round = 0; round < 20; round++) {
                for (int i = 0; i < 2000; i++) {
                        sidespan_span *sp;

                        sidespan_span_start(c, NULL, "stream", 1, &sp);
                        sidespan_span_set_str(sp, "pad", "the quick brown fox jumps over");
                        sidespan_span_end(sp, SIDESPAN_STATUS_OK, NULL);
                }
                srv_drop(&s);
        }
        ck_assert_int_eq(sidespan_flush(c, 10000), 0);
        pthread_mutex_lock(&s.lock);
        ck_assert_int_eq(s.decode_errors, 0);
        for (size_t i = 0; i < s.n; i++)
                if (i == 0 || s.msgs[i].conn != s.msgs[i - 1].conn)
                        ck_assert_uint_eq(s.msgs[i].type, SS_MSG_HELLO);
        pthread_mutex_unlock(&s.lock);
        ck_assert_uint_ge(stats_of(c).reconnects, 1);
        sidespan_client_close(&c);
        srv_stop(&s);
}
END_TEST

/* A peer that stops reading makes send() fail with EPIPE: the library must not raise
 * SIGPIPE (it would kill this test) and must reconnect. */
START_TEST(test_no_sigpipe)
{
        sidespan_client *c;
        server s;

        srv_start(&s);
        c = open_at(&s, 1.0, true);
        emit_one(c, "before");
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);
        srv_command(&s, &s.shut_rd);
        emit_one(c, "after");
        ck_assert_int_eq(sidespan_flush(c, 10000), 0);
        ck_assert_uint_eq(stats_of(c).reconnects, 1);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_HELLO), 2);
        sidespan_client_close(&c);
        srv_stop(&s);
}
END_TEST

/* The connection breaks while a write stalled in the middle of a frame: the next
 * connection starts with HELLO and resumes at a whole frame. */
START_TEST(test_cut_mid_frame_resumes_at_whole_frame)
{
        sidespan_client *c;
        sidespan_stats st;
        server s;

        /* Megabytes gather while no daemon listens, so that the first write is larger than
         * the socket takes and stops inside a frame. */
        srv_start_opt(&s, false);
        srv_set(&s, &s.paused, true);
        c = open_at(&s, 1.0, true);
        for (int i = 0; i < 20000; i++) {
                sidespan_span *sp;

                sidespan_span_start(c, NULL, "bulk", 1, &sp);
                sidespan_span_set_str(sp, "pad", "an odd-length value to misalign frames.");
                sidespan_span_set_int(sp, "i", i);
                sidespan_span_end(sp, SIDESPAN_STATUS_OK, NULL);
        }
        srv_listen(&s);
        for (int i = 0; i < 500 && stats_of(c).bytes_sent < 100000; i++)
                usleep(10000);
        usleep(50000);
        srv_drop(&s);
        srv_set(&s, &s.paused, false);
        ck_assert_int_eq(sidespan_flush(c, 10000), 0);
        st = stats_of(c);
        ck_assert_uint_eq(st.reconnects, 1);
        ck_assert_uint_le(st.dropped, 1); /* at most the frame that was cut */
        pthread_mutex_lock(&s.lock);
        ck_assert_int_eq(s.decode_errors, 0);
        for (size_t i = 0; i < s.n; i++)
                if (i == 0 || s.msgs[i].conn != s.msgs[i - 1].conn)
                        ck_assert_uint_eq(s.msgs[i].type, SS_MSG_HELLO);
        pthread_mutex_unlock(&s.lock);
        ck_assert_uint_gt(srv_count(&s, SS_MSG_SPAN_END), 0);
        sidespan_client_close(&c);
        srv_stop(&s);
}
END_TEST

START_TEST(test_flush_outcomes)
{
        sidespan_client *c, *absent;
        server s;

        srv_start(&s);
        c = open_at(&s, 1.0, true);
        emit_one(c, "a");
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);
        ck_assert_uint_ge(srv_count(&s, SS_MSG_SPAN_END), 1); /* everything before it arrived */
        srv_set(&s, &s.answer_flush, false);
        emit_one(c, "b");
        ck_assert_int_eq(sidespan_flush(c, 200), -ETIMEDOUT);
        srv_set(&s, &s.answer_flush, true);
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);

        absent = open_at(NULL, 1.0, true);
        emit_one(absent, "c");
        ck_assert_int_eq(sidespan_flush(absent, 5000), -ENOTCONN);
        ck_assert_uint_ge(stats_of(absent).connect_failures, 1);
        ck_assert_int_eq(sidespan_client_close(&absent), -ENOTCONN);
        sidespan_client_close(&c);
        srv_stop(&s);
}
END_TEST

START_TEST(test_flush_waits_for_late_daemon)
{
        sidespan_client *c;
        server s;

        /* Frames emitted before the daemon exists reach it once it is there. */
        srv_start_opt(&s, false);
        c = open_at(&s, 1.0, true);
        emit_one(c, "early");
        ck_assert_int_eq(sidespan_flush(c, 1000), -ENOTCONN);
        srv_listen(&s);
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_START), 1);
        sidespan_client_close(&c);
        srv_stop(&s);
}
END_TEST

START_TEST(test_close_is_idempotent)
{
        sidespan_client *c = open_at(NULL, 1.0, true);

        ck_assert_int_eq(sidespan_client_close(NULL), 0);
        sidespan_client_close(&c);
        ck_assert_ptr_null(c);
        ck_assert_int_eq(sidespan_client_close(&c), 0);
        ck_assert_ptr_null(c);
}
END_TEST

/* ---- threads and fork ------------------------------------------------------------------- */

static void *emit_many(void *arg)
{
        sidespan_client *c = arg;

        for (int i = 0; i < 2000; i++) {
                sidespan_span *root, *child;

                sidespan_span_start(c, NULL, "t", SIDESPAN_KIND_SERVER, &root);
                sidespan_span_start(c, root, "t.child", SIDESPAN_KIND_INTERNAL, &child);
                sidespan_span_set_int(child, "i", i);
                sidespan_span_end(child, SIDESPAN_STATUS_OK, NULL);
                sidespan_span_end(root, SIDESPAN_STATUS_OK, NULL);
        }
        return NULL;
}

START_TEST(test_threads_share_a_client)
{
        pthread_t t[4];
        sidespan_client *c;
        server s;

        srv_start(&s);
        c = open_at(&s, 1.0, true);
        for (int i = 0; i < 4; i++)
                ck_assert_int_eq(pthread_create(&t[i], NULL, emit_many, c), 0);
        for (int i = 0; i < 4; i++)
                pthread_join(t[i], NULL);
        ck_assert_int_eq(sidespan_flush(c, 10000), 0);
        ck_assert_uint_eq(stats_of(c).dropped, 0);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_START), 16000);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_END), 16000);
        /* Counted under the queue lock by every thread's SPAN_START: none lost. */
        ck_assert_uint_eq(stats_of(c).spans_started, 16000);
        ck_assert_uint_eq(stats_of(c).frames_sent, stats_of(c).frames_queued);
        sidespan_client_close(&c);
        ck_assert_int_eq(s.decode_errors, 0);
        srv_stop(&s);
}
END_TEST

START_TEST(test_fork_child_keeps_working)
{
        msgpack_unpacked u;
        sidespan_client *c;
        uint64_t inst[2];
        int64_t pid[2];
        int status;
        pid_t child;
        server s;
        ss_msg m;

        srv_start(&s);
        c = open_at(&s, 1.0, true);
        emit_one(c, "parent.before");
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                emit_one(c, "child.span");
                _exit(sidespan_flush(c, 5000) == 0 && stats_of(c).frames_sent >= 2 ? 0 : 1);
        }
        emit_one(c, "parent.after");
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        ck_assert_uint_eq(srv_count(&s, SS_MSG_HELLO), 2);
        msgpack_unpacked_init(&u);
        for (int i = 0; i < 2; i++) {
                ck_assert(srv_get(&s, SS_MSG_HELLO, (size_t)i, &u, &m, NULL));
                inst[i] = map_get(m.hello.options, "instance")->via.u64;
                pid[i] = get_int(m.hello.options, "process.pid");
        }
        ck_assert(inst[0] != inst[1]);
        ck_assert_int_eq(pid[0], getpid());
        ck_assert_int_eq(pid[1], child);
        ck_assert(srv_find_start(&s, "child.span", &u, &m));
        ck_assert(srv_find_start(&s, "parent.after", &u, &m));
        msgpack_unpacked_destroy(&u);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_START), 3); /* nothing sent twice */
        ck_assert_uint_eq(stats_of(c).reconnects, 0);
        sidespan_client_close(&c);
        ck_assert_int_eq(s.decode_errors, 0);
        srv_stop(&s);
}
END_TEST

/* A client left open is flushed by exit(): the span emitted just before it arrives. */
START_TEST(test_exit_flushes)
{
        int status;
        pid_t child;
        server s;

        srv_start(&s);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                sidespan_options o;
                sidespan_client *c;

                sidespan_options_init(&o);
                o.socket_path = s.path;
                if (sidespan_client_open(&o, &c) < 0)
                        _exit(3);
                emit_one(c, "at.exit");
                exit(0); /* no close, no flush: the library's exit handler flushes */
        }
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_SPAN_END), 1);
        ck_assert_uint_eq(srv_count(&s, SS_MSG_FLUSH), 1);
        srv_stop(&s);
}
END_TEST

/* ---- environment ------------------------------------------------------------------------ */

static void env_clear(void)
{
        static const char *const vars[] = {
            "UPSONIC_OTEL_ENABLED",     "UPSONIC_OTEL_SERVICE_NAME", "OTEL_SERVICE_NAME",
            "UPSONIC_OTEL_SAMPLE_RATE", "OTEL_TRACES_SAMPLER_ARG",   "OTEL_SDK_DISABLED",
            "OTEL_RESOURCE_ATTRIBUTES", "SIDESPAN_SOCKET",
        };

        for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
                unsetenv(vars[i]);
}

static int open_env(void)
{
        sidespan_client *c = NULL;
        int r = sidespan_client_open_env(&c);

        if (r >= 0)
                ck_assert_ptr_nonnull(c);
        else
                ck_assert_ptr_null(c);
        sidespan_client_close(&c);
        return r;
}

START_TEST(test_env_disabled_by_default)
{
        sidespan_client *c;
        sidespan_span *sp = (sidespan_span *)&c;
        sidespan_stats st;

        env_clear();
        ck_assert_int_eq(sidespan_client_open_env(&c), SIDESPAN_OPEN_DISABLED);
        ck_assert_int_eq(sidespan_span_start(c, NULL, "x", 1, &sp), 0);
        ck_assert_ptr_null(sp);
        ck_assert_int_eq(sidespan_span_set_str(sp, "k", "v"), 0);
        ck_assert_int_eq(sidespan_span_end(sp, SIDESPAN_STATUS_OK, NULL), 0);
        ck_assert_int_eq(sidespan_agent_run_start(c, "a", "m", NULL, NULL, NULL, NULL, &sp), 0);
        ck_assert_ptr_null(sp);
        ck_assert_int_eq(sidespan_flush(c, 1000), 0);
        st = stats_of(c);
        ck_assert(!st.enabled);
        ck_assert_uint_eq(st.spans_started, 0);
        sidespan_client_close(&c);

        setenv("UPSONIC_OTEL_ENABLED", "", 1); /* empty counts as unset */
        ck_assert_int_eq(open_env(), SIDESPAN_OPEN_DISABLED);
        setenv("UPSONIC_OTEL_ENABLED", "1", 1);
        setenv("SIDESPAN_SOCKET", "/nonexistent/x.sock", 1);
        ck_assert_int_eq(open_env(), 0);
        setenv("OTEL_SDK_DISABLED", "TRUE", 1);
        ck_assert_int_eq(open_env(), SIDESPAN_OPEN_DISABLED);
        setenv("OTEL_SDK_DISABLED", "false", 1);
        ck_assert_int_eq(open_env(), 0);
        setenv("OTEL_SDK_DISABLED", "maybe", 1);
        ck_assert_int_eq(open_env(), -EINVAL);
        setenv("OTEL_SDK_DISABLED", "", 1);
        ck_assert_int_eq(open_env(), 0);
}
END_TEST

START_TEST(test_env_malformed_values)
{
        env_clear();
        setenv("UPSONIC_OTEL_ENABLED", "yes", 1);
        setenv("SIDESPAN_SOCKET", "/nonexistent/x.sock", 1);
        setenv("UPSONIC_OTEL_SAMPLE_RATE", "abc", 1);
        ck_assert_int_eq(open_env(), -EINVAL);
        setenv("UPSONIC_OTEL_SAMPLE_RATE", "2.5", 1);
        ck_assert_int_eq(open_env(), -EINVAL);
        setenv("UPSONIC_OTEL_SAMPLE_RATE", "0.5x", 1);
        ck_assert_int_eq(open_env(), -EINVAL);
        setenv("UPSONIC_OTEL_SAMPLE_RATE", "-0.1", 1);
        ck_assert_int_eq(open_env(), -EINVAL);
        setenv("UPSONIC_OTEL_SAMPLE_RATE", "", 1);
        setenv("OTEL_TRACES_SAMPLER_ARG", "nan", 1);
        ck_assert_int_eq(open_env(), -EINVAL);
        unsetenv("OTEL_TRACES_SAMPLER_ARG");
        setenv("OTEL_RESOURCE_ATTRIBUTES", "novalue", 1);
        ck_assert_int_eq(open_env(), -EINVAL);
        setenv("OTEL_RESOURCE_ATTRIBUTES", "k=%zz", 1);
        ck_assert_int_eq(open_env(), -EINVAL);
        setenv("OTEL_RESOURCE_ATTRIBUTES", "=v", 1);
        ck_assert_int_eq(open_env(), -EINVAL);
        setenv("OTEL_RESOURCE_ATTRIBUTES", "k=v,", 1);
        ck_assert_int_eq(open_env(), 0);
}
END_TEST

/* The HELLO options a client opened from the environment sends. */
static void env_hello(server *s, msgpack_unpacked *u, ss_msg *m)
{
        sidespan_client *c = NULL;

        setenv("SIDESPAN_SOCKET", s->path, 1);
        ck_assert_int_eq(sidespan_client_open_env(&c), 0);
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);
        sidespan_client_close(&c);
        ck_assert(srv_get(s, SS_MSG_HELLO, srv_count(s, SS_MSG_HELLO) - 1, u, m, NULL));
}

START_TEST(test_env_values_reach_hello)
{
        msgpack_unpacked u;
        server s;
        ss_msg m;

        env_clear();
        srv_start(&s);
        msgpack_unpacked_init(&u);
        setenv("UPSONIC_OTEL_ENABLED", "1", 1);
        env_hello(&s, &u, &m);
        check_str(m.hello.options, "service.name", "upsonic");
        ck_assert(get_double(m.hello.options, "sample_rate") == 1.0);

        setenv("OTEL_SERVICE_NAME", "otel-svc", 1);
        setenv("OTEL_TRACES_SAMPLER_ARG", "0.25", 1);
        setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod, team=a%20b", 1);
        env_hello(&s, &u, &m);
        check_str(m.hello.options, "service.name", "otel-svc");
        ck_assert(get_double(m.hello.options, "sample_rate") == 0.25);
        check_str(m.hello.options, "deployment.environment", "prod");
        check_str(m.hello.options, "team", "a b");

        setenv("UPSONIC_OTEL_SERVICE_NAME", "up-svc", 1);
        setenv("UPSONIC_OTEL_SAMPLE_RATE", "0.75", 1);
        env_hello(&s, &u, &m);
        check_str(m.hello.options, "service.name", "up-svc");
        ck_assert(get_double(m.hello.options, "sample_rate") == 0.75);

        unsetenv("UPSONIC_OTEL_SERVICE_NAME");
        unsetenv("OTEL_SERVICE_NAME");
        setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource", 1);
        env_hello(&s, &u, &m);
        check_str(m.hello.options, "service.name", "from-resource");
        msgpack_unpacked_destroy(&u);
        srv_stop(&s);
}
END_TEST

/* ---- GenAI helpers ---------------------------------------------------------------------- */

static void emit_agent_run(sidespan_client *c)
{
        static const char *const reasons[] = {"stop"};
        sidespan_chat_request req;
        sidespan_chat_result res;
        sidespan_run_result run;
        sidespan_span *a, *p, *st, *ch, *t;

        ck_assert_int_eq(
            sidespan_agent_run_start(c, "agent", "gpt-4o", "run-1", "u-1", "s-1", "hi", &a), 0);
        ck_assert_int_eq(sidespan_pipeline_start(c, a, 24, false, &p), 0);
        ck_assert_int_eq(sidespan_step_start(c, p, "model_execution", "Run it", &st), 0);
        sidespan_chat_request_init(&req);
        req.temperature = 0.0;
        req.max_tokens = 100;
        req.server_address = "api.example.com";
        req.server_port = 443;
        req.input_messages = "[]";
        ck_assert_int_eq(sidespan_chat_start(c, st, "openai", "gpt-4o", &req, &ch), 0);
        ck_assert_int_eq(sidespan_chat_first_token(ch), 0);
        sidespan_chat_result_init(&res);
        res.response_model = "gpt-4o-2024";
        res.response_id = "id-1";
        res.finish_reasons = reasons;
        res.n_finish_reasons = 1;
        res.input_tokens = 10;
        res.output_tokens = 5;
        ck_assert_int_eq(sidespan_chat_end(ch, &res), 0);
        ck_assert_int_eq(sidespan_tool_start(c, st, "search", "call-1", "{}", &t), 0);
        ck_assert_int_eq(sidespan_tool_end(t, false, "failed", 0.25), 0);
        ck_assert_int_eq(sidespan_step_end(st, NULL, 0.5), 0);
        ck_assert_int_eq(sidespan_span_end(p, SIDESPAN_STATUS_OK, NULL), 0);
        sidespan_run_result_init(&run);
        run.input_tokens = 10;
        run.output_tokens = 5;
        run.total_cost = 0.001;
        run.tool_call_count = 1;
        run.is_streaming = 0;
        run.output = "bye";
        ck_assert_int_eq(sidespan_agent_run_end(a, &run), 0);
}

static void check_agent_run(server *s, msgpack_unpacked *u, ss_msg *m)
{
        ck_assert(srv_find_start(s, "agent.run", u, m));
        ck_assert_int_eq(m->span.kind, SS_KIND_SERVER);
        ck_assert_ptr_null(m->span.parent_id);
        check_str(m->span.attrs, "upsonic.agent.name", "agent");
        check_str(m->span.attrs, "upsonic.agent.model", "gpt-4o");
        check_str(m->span.attrs, "upsonic.run_id", "run-1");
        check_str(m->span.attrs, "user.id", "u-1");
        check_str(m->span.attrs, "session.id", "s-1");
        check_str(m->span.attrs, "upsonic.input", "hi");
        ck_assert(srv_find_end(s, m->span.span_id, u, m));
        ck_assert_int_eq(m->end.status_code, SS_STATUS_OK);
        check_str(m->end.attrs, "upsonic.status", "COMPLETED");
        ck_assert_int_eq(get_int(m->end.attrs, "upsonic.usage.total_tokens"), 15);
        ck_assert(get_double(m->end.attrs, "upsonic.total_cost") == 0.001);
        ck_assert_int_eq(get_int(m->end.attrs, "upsonic.tool_call_count"), 1);
        ck_assert(!get_bool(m->end.attrs, "upsonic.is_streaming"));
        check_str(m->end.attrs, "upsonic.output", "bye");
        /* Left unknown: left out, for the daemon to derive. */
        ck_assert_ptr_null(map_get(m->end.attrs, "upsonic.pipeline.executed_steps"));
        ck_assert_ptr_null(map_get(m->end.attrs, "upsonic.execution_time"));
}

static void check_chat_and_tool(server *s, msgpack_unpacked *u, ss_msg *m)
{
        const msgpack_object *v;

        ck_assert(srv_find_start(s, "chat gpt-4o", u, m));
        ck_assert_int_eq(m->span.kind, SS_KIND_CLIENT);
        check_str(m->span.attrs, "gen_ai.operation.name", "chat");
        check_str(m->span.attrs, "gen_ai.provider.name", "openai");
        check_str(m->span.attrs, "gen_ai.request.model", "gpt-4o");
        ck_assert(get_double(m->span.attrs, "gen_ai.request.temperature") == 0.0);
        ck_assert_int_eq(get_int(m->span.attrs, "gen_ai.request.max_tokens"), 100);
        ck_assert_ptr_null(map_get(m->span.attrs, "gen_ai.request.top_p"));
        check_str(m->span.attrs, "server.address", "api.example.com");
        ck_assert_int_eq(get_int(m->span.attrs, "server.port"), 443);
        check_str(m->span.attrs, "gen_ai.input.messages", "[]");
        ck_assert(srv_find_end(s, m->span.span_id, u, m));
        check_str(m->end.attrs, "gen_ai.response.model", "gpt-4o-2024");
        check_str(m->end.attrs, "gen_ai.response.id", "id-1");
        v = map_get(m->end.attrs, "gen_ai.response.finish_reasons");
        ck_assert(v && v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size == 1);
        ck_assert_int_eq(get_int(m->end.attrs, "gen_ai.usage.input_tokens"), 10);
        ck_assert_ptr_null(map_get(m->end.attrs, "gen_ai.usage.cache_read.input_tokens"));
        ck_assert(srv_get(s, SS_MSG_SPAN_EVENT, 0, u, m, NULL));
        ck_assert(str_eq(m->event.name, "gen_ai.first_token"));

        ck_assert(srv_find_start(s, "tool.execute", u, m));
        ck_assert_int_eq(m->span.kind, SS_KIND_INTERNAL);
        check_str(m->span.attrs, "upsonic.tool.name", "search");
        check_str(m->span.attrs, "upsonic.tool.call_id", "call-1");
        check_str(m->span.attrs, "gen_ai.tool.call.arguments", "{}");
        ck_assert(srv_find_end(s, m->span.span_id, u, m));
        ck_assert_int_eq(m->end.status_code, SS_STATUS_ERROR);
        ck_assert(!get_bool(m->end.attrs, "upsonic.tool.success"));
        check_str(m->end.attrs, "gen_ai.tool.call.result", "failed");
        ck_assert(get_double(m->end.attrs, "upsonic.tool.execution_time") == 0.25);
}

START_TEST(test_genai_helpers)
{
        msgpack_unpacked u;
        sidespan_client *c;
        server s;
        ss_msg m;

        srv_start(&s);
        c = open_at(&s, 1.0, true);
        emit_agent_run(c);
        ck_assert_int_eq(sidespan_flush(c, 5000), 0);
        msgpack_unpacked_init(&u);
        check_agent_run(&s, &u, &m);
        check_chat_and_tool(&s, &u, &m);
        ck_assert(srv_find_start(&s, "pipeline.execute", &u, &m));
        ck_assert_int_eq(get_int(m.span.attrs, "upsonic.pipeline.total_steps"), 24);
        ck_assert(!get_bool(m.span.attrs, "upsonic.pipeline.streaming"));
        ck_assert(srv_find_start(&s, "pipeline.step.model_execution", &u, &m));
        check_str(m.span.attrs, "upsonic.step.name", "model_execution");
        check_str(m.span.attrs, "upsonic.step.description", "Run it");
        ck_assert(srv_find_end(&s, m.span.span_id, &u, &m));
        check_str(m.end.attrs, "upsonic.step.status", "COMPLETED");
        ck_assert(get_double(m.end.attrs, "upsonic.step.execution_time") == 0.5);
        msgpack_unpacked_destroy(&u);
        sidespan_client_close(&c);
        srv_stop(&s);
}
END_TEST

START_TEST(test_version_and_strerror)
{
        ck_assert_str_eq(sidespan_version(), SIDESPAN_VERSION_STRING);
        ck_assert_int_eq(SIDESPAN_VERSION_MAJOR * 10000 + SIDESPAN_VERSION_MINOR * 100 +
                             SIDESPAN_VERSION_PATCH,
                         SIDESPAN_VERSION_NUMBER);
        ck_assert_str_eq(sidespan_strerror(-ENOTCONN), sidespan_strerror(ENOTCONN));
        ck_assert(strstr(sidespan_strerror(-ETIMEDOUT), "timed out") != NULL);
        ck_assert_ptr_nonnull(sidespan_strerror(INT_MIN));
        ck_assert_ptr_nonnull(sidespan_strerror(-99999));
}
END_TEST

static Suite *client_suite(void)
{
        Suite *s = suite_create("client");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_hello_first_with_options);
        tcase_add_test(tc, test_span_start_event_end);
        tcase_add_test(tc, test_setters_with_lengths);
        tcase_add_test(tc, test_setters_every_length);
        tcase_add_test(tc, test_bad_arguments);
        tcase_add_test(tc, test_bad_options);
        tcase_add_test(tc, test_traceparent_format);
        tcase_add_test(tc, test_remote_parent);
        tcase_add_test(tc, test_sample_rate_zero_sends_nothing);
        tcase_add_test(tc, test_sampling_whole_traces);
        tcase_add_test(tc, test_include_content_false);
        tcase_add_test(tc, test_buffer_full_drops_without_daemon);
        tcase_add_test(tc, test_buffer_full_drops_with_stalled_reader);
        tcase_add_test(tc, test_buffers_shrink_after_a_backlog);
        tcase_add_test(tc, test_dropped_start_drops_its_end);
        tcase_add_test(tc, test_oversized_values);
        tcase_add_test(tc, test_reconnect_says_hello_again);
        tcase_add_test(tc, test_cut_connections_never_send_half_frames);
        tcase_add_test(tc, test_no_sigpipe);
        tcase_add_test(tc, test_cut_mid_frame_resumes_at_whole_frame);
        tcase_add_test(tc, test_flush_outcomes);
        tcase_add_test(tc, test_flush_waits_for_late_daemon);
        tcase_add_test(tc, test_close_is_idempotent);
        tcase_add_test(tc, test_threads_share_a_client);
        tcase_add_test(tc, test_fork_child_keeps_working);
        tcase_add_test(tc, test_exit_flushes);
        tcase_add_test(tc, test_env_disabled_by_default);
        tcase_add_test(tc, test_env_malformed_values);
        tcase_add_test(tc, test_env_values_reach_hello);
        tcase_add_test(tc, test_genai_helpers);
        tcase_add_test(tc, test_version_and_strerror);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(client_suite());
}
