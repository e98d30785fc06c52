/* SPDX-License-Identifier: MIT */
/*
 * Ingest: a real listener on a temporary socket, a real assembler handing
 * traces to a recording sink and a real control answering FLUSH and STATS.
 * Clients are plain non-blocking AF_UNIX sockets of this process speaking
 * the wire protocol through common/ss-wire.h; the loop turns (UV_RUN_NOWAIT)
 * until the reply or the end of file a test waits for arrives.
 */
#include "ss-check.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/log.h"
#include "fixture.h"
#include "ingest/control.h"
#include "ingest/listener.h"
#include "trace/assembler.h"

#define MAX_FRAME   4096u
#define MAX_CONNS   4u
#define MAX_CLIENTS 16

static uv_loop_t loop;
static fx_sink rec;
static ss_assembler *asm_;
static ss_control *ctl;
static ss_listener *lis;
static char dir[64], sock_path[128];

static ss_listener_config listener_config(const char *path)
{
        return (ss_listener_config){
            .path = path, .max_frame = MAX_FRAME, .max_connections = MAX_CONNS};
}

/* ---- the daemon's side ------------------------------------------------------------------ */

/* The directory is made and removed by Check's parent process, once per test case, so that
 * a failed test leaves nothing behind; each test clears what it made. */
static void dir_make(void)
{
        fx_tmpdir(dir, sizeof(dir), "listener");
}

static void dir_remove(void)
{
        fx_tmpdir_remove(dir);
}

static void setup(void)
{
        ss_assembler_config acfg = {
            .limits = {.max_attrs = 16, .max_events = 16, .max_value_len = 1024},
            .max_open_spans = 100,
            .max_open_total = 1000,
            .max_trace_spans = 1000,
            .orphan_grace_ms = 50,
        };
        ss_listener_config lcfg;

        ss_log_set_level(SS_LOG_ERR);
        ss_fault_arm(SS_FAULT_ACCEPT_ALLOC, 0);
        fx_sink_init(&rec);
        ck_assert_int_eq(uv_loop_init(&loop), 0);
        snprintf(sock_path, sizeof(sock_path), "%s/s.sock", dir);
        ck_assert_int_eq(ss_assembler_new(&loop, &acfg, &rec.base, &asm_), 0);
        ck_assert_int_eq(ss_control_new(&rec.base, &ctl), 0);
        ck_assert_int_eq(ss_control_add_counters(ctl, ss_assembler_counters, asm_), 0);
        lcfg = listener_config(sock_path);
        ck_assert_int_eq(ss_listener_new(&loop, &lcfg, asm_, ctl, &lis), 0);
        ck_assert_int_eq(ss_control_add_counters(ctl, ss_listener_counters, lis), 0);
}

static void on_listener_done(void *ctx)
{
        (*(unsigned *)ctx)++;
}

static bool counted_once(void *ctx)
{
        return *(unsigned *)ctx >= 1;
}

/* Close l and wait for its done(); true when done() ran exactly once. */
static bool listener_close_wait(ss_listener *l)
{
        unsigned done = 0;

        ss_listener_close(l, on_listener_done, &done);
        ck_assert(fx_run_until(&loop, counted_once, &done));
        uv_run(&loop, UV_RUN_NOWAIT);
        return done == 1;
}

static void clients_close(void);

static void teardown(void)
{
        clients_close();
        if (lis)
                ck_assert(listener_close_wait(lis));
        ss_assembler_free(asm_, "test over");
        ss_control_free(ctl);
        fx_sink_clear(&rec);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(uv_loop_close(&loop), 0);
        fx_tmpdir_clear(dir);
}

/* The value of a counter as STATS would report it now; absent is a failure. */
static uint64_t stat_now(const char *name)
{
        ss_counters all;
        uint64_t v = UINT64_MAX;

        ss_counters_init(&all);
        ss_control_collect(ctl, &all);
        for (size_t i = 0; i < all.n; i++)
                if (strcmp(all.v[i].name, name) == 0)
                        v = all.v[i].value;
        ss_counters_free(&all);
        ck_assert_msg(v != UINT64_MAX, "no counter %s", name);
        return v;
}

typedef struct stat_want {
        const char *name;
        uint64_t value;
} stat_want;

static bool stat_reached(void *ctx)
{
        const stat_want *w = ctx;

        return stat_now(w->name) == w->value;
}

/* Turn the loop until counter name has value. */
static void wait_stat(const char *name, uint64_t value)
{
        stat_want w = {name, value};

        ck_assert_msg(fx_run_until(&loop, stat_reached, &w), "%s stayed at %llu, not %llu", name,
                      (unsigned long long)stat_now(name), (unsigned long long)value);
}

/* ---- clients ---------------------------------------------------------------------------- */

typedef struct client {
        int fd;
        ss_buf in;  /* bytes read, not yet parsed */
        bool eof;   /* read() returned 0 */
        int err;    /* or failed with this -errno */
        size_t off; /* bytes of in already parsed */
} client;

static client clients[MAX_CLIENTS];
static size_t n_clients;

static void clients_close(void)
{
        for (size_t i = 0; i < n_clients; i++) {
                if (clients[i].fd >= 0)
                        close(clients[i].fd);
                ss_buf_free(&clients[i].in);
        }
        n_clients = 0;
}

static int connect_to(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
        memcpy(sa.sun_path, path, strlen(path) + 1);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

/* A connected client of the listener on path (waiting in its backlog until the loop turns). */
static client *client_open_at(const char *path)
{
        client *c;
        int fd = connect_to(path);

        ck_assert_msg(fd >= 0, "connect %s: %s", path, strerror(-fd));
        ck_assert_int_lt(n_clients, MAX_CLIENTS);
        c = &clients[n_clients++];
        *c = (client){.fd = fd};
        ss_buf_init(&c->in, 1 << 20);
        return c;
}

static client *client_open(void)
{
        return client_open_at(sock_path);
}

/* Hang up without reading what the daemon sent. */
static void client_hangup(client *c)
{
        close(c->fd);
        c->fd = -1;
}

/* Read what is there without blocking. */
static void client_pump(client *c)
{
        while (!c->eof && !c->err) {
                ssize_t n;

                ck_assert_int_eq(ss_buf_reserve(&c->in, 4096), 0);
                n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
                if (n > 0)
                        c->in.len += (size_t)n;
                else if (n == 0)
                        c->eof = true;
                else if (errno == EAGAIN)
                        return;
                else if (errno != EINTR)
                        c->err = -errno;
        }
}

static bool client_can_send(void *ctx)
{
        client *c = ctx;
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};

        return poll(&p, 1, 0) == 1;
}

/* Send all of b, turning the loop while the socket is full. */
static void client_send(client *c, const ss_buf *b)
{
        size_t off = 0;

        while (off < b->len) {
                ssize_t n = send(c->fd, b->data + off, b->len - off, MSG_NOSIGNAL);

                if (n > 0) {
                        off += (size_t)n;
                        continue;
                }
                ck_assert_msg(n < 0 && errno == EAGAIN, "send: %s", strerror(errno));
                ck_assert(fx_run_until(&loop, client_can_send, c));
        }
}

static void client_send_bytes(client *c, const void *p, size_t n)
{
        ss_buf b;

        ss_buf_init(&b, n);
        ck_assert_int_eq(ss_buf_append(&b, p, n), 0);
        client_send(c, &b);
        ss_buf_free(&b);
}

/* A frame of the given payload bytes, header included. */
static void client_send_frame(client *c, const void *payload, uint32_t n)
{
        uint8_t head[SS_FRAME_HEADER];
        ss_buf b;

        ss_frame_header_put(head, n);
        ss_buf_init(&b, SS_FRAME_HEADER + (size_t)n);
        ck_assert_int_eq(ss_buf_append(&b, head, sizeof(head)), 0);
        ck_assert_int_eq(ss_buf_append(&b, payload, n), 0);
        client_send(c, &b);
        ss_buf_free(&b);
}

/* HELLO {instance, service.name} as the client library sends it. */
static void put_hello(ss_buf *b, const char *service, uint64_t instance)
{
        msgpack_sbuffer sb;
        msgpack_packer pk;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pk_str(&pk, SS_HELLO_INSTANCE);
        msgpack_pack_uint64(&pk, instance);
        pk_str(&pk, SS_HELLO_SERVICE_NAME);
        pk_str(&pk, service);
        ck_assert_int_eq(
            ss_wire_put_hello(
                b, MAX_FRAME,
                &(ss_rawmap){.count = 2, .data = (const uint8_t *)sb.data, .len = sb.size}),
            0);
        msgpack_sbuffer_destroy(&sb);
}

static void client_hello(client *c, const char *service, uint64_t instance)
{
        ss_buf b;

        ss_buf_init(&b, MAX_FRAME);
        put_hello(&b, service, instance);
        client_send(c, &b);
        ss_buf_free(&b);
}

static void client_seq(client *c, uint32_t type, uint64_t seq)
{
        ss_buf b;

        ss_buf_init(&b, MAX_FRAME);
        ck_assert_int_eq(ss_wire_put_seq(&b, MAX_FRAME, type, seq), 0);
        client_send(c, &b);
        ss_buf_free(&b);
}

static const uint8_t TID[SS_TRACE_ID_LEN] = {0xab, 1, 2,  3,  4,  5,  6,  7,
                                             8,    9, 10, 11, 12, 13, 14, 15};

static void span_id(uint8_t seed, uint8_t *out)
{
        memset(out, seed, SS_SPAN_ID_LEN);
}

static void put_start(ss_buf *b, uint8_t seed, int parent_seed, const char *name)
{
        uint8_t sid[SS_SPAN_ID_LEN], pid[SS_SPAN_ID_LEN];
        ss_span_head h = {.trace_id = TID,
                          .span_id = sid,
                          .parent_id = parent_seed >= 0 ? pid : NULL,
                          .name = name,
                          .name_len = strlen(name),
                          .kind = SS_KIND_INTERNAL,
                          .start_ns = 1000u + seed};

        span_id(seed, sid);
        span_id((uint8_t)parent_seed, pid);
        ck_assert_int_eq(ss_wire_put_span_start(b, MAX_FRAME, &h, NULL, NULL), 0);
}

static void client_start(client *c, uint8_t seed, int parent_seed, const char *name)
{
        ss_buf b;

        ss_buf_init(&b, MAX_FRAME);
        put_start(&b, seed, parent_seed, name);
        client_send(c, &b);
        ss_buf_free(&b);
}

static void client_end(client *c, uint8_t seed)
{
        uint8_t sid[SS_SPAN_ID_LEN];
        ss_buf b;

        span_id(seed, sid);
        ss_buf_init(&b, MAX_FRAME);
        ck_assert_int_eq(
            ss_wire_put_span_end(&b, MAX_FRAME, sid, 9000u + seed, SS_STATUS_OK, NULL, NULL), 0);
        client_send(c, &b);
        ss_buf_free(&b);
}

/* A whole frame in c->in past what was parsed, or the connection's end. */
static bool client_has_reply(void *ctx)
{
        client *c = ctx;
        const uint8_t *p;
        size_t n;

        client_pump(c);
        return c->eof || c->err ||
               ss_frame_parse(c->in.data + c->off, c->in.len - c->off, SS_MAX_FRAME_DEFAULT, &p,
                              &n) != 0;
}

/* Wait for the next frame from the daemon and decode it into m (valid while u is). */
static void client_reply(client *c, msgpack_unpacked *u, ss_msg *m)
{
        const uint8_t *p;
        size_t n;
        int r;

        ck_assert_msg(fx_run_until(&loop, client_has_reply, c), "no reply from the daemon");
        ck_assert_msg(!c->eof && !c->err, "connection closed instead of a reply");
        r = ss_frame_parse(c->in.data + c->off, c->in.len - c->off, SS_MAX_FRAME_DEFAULT, &p, &n);
        ck_assert_int_gt(r, 0);
        c->off += (size_t)r;
        ck_assert_int_eq(ss_wire_decode(p, n, u, m), 0);
}

/* The next reply must be FLUSHED seq. */
static void client_expect_flushed(client *c, uint64_t seq)
{
        msgpack_unpacked u;
        ss_msg m;

        msgpack_unpacked_init(&u);
        client_reply(c, &u, &m);
        ck_assert_uint_eq(m.type, SS_MSG_FLUSHED);
        ck_assert_uint_eq(m.seq.seq, seq);
        msgpack_unpacked_destroy(&u);
}

/* FLUSH and its FLUSHED: proof that the daemon serves c. */
static void client_flush(client *c, uint64_t seq)
{
        client_seq(c, SS_MSG_FLUSH, seq);
        client_expect_flushed(c, seq);
}

/* STATS id over the socket; the reply's counters copied to out (ss_counters_free). */
static void client_stats(client *c, uint64_t id, ss_counters *out)
{
        msgpack_unpacked u;
        ss_msg m;

        client_seq(c, SS_MSG_STATS, id);
        msgpack_unpacked_init(&u);
        client_reply(c, &u, &m);
        ck_assert_uint_eq(m.type, SS_MSG_STATS_REPLY);
        ck_assert_uint_eq(m.stats.id, id);
        ss_counters_init(out);
        for (uint32_t i = 0; i < m.stats.counters->size; i++) {
                const msgpack_object_kv *kv = &m.stats.counters->ptr[i];
                char name[SS_COUNTER_NAME_MAX];

                snprintf(name, sizeof(name), "%.*s", (int)kv->key.via.str.size,
                         kv->key.via.str.ptr);
                ss_counters_add(out, NULL, name, kv->val.via.u64);
        }
        ck_assert_int_eq(out->err, 0);
        msgpack_unpacked_destroy(&u);
}

static bool client_closed(void *ctx)
{
        client *c = ctx;

        client_pump(c);
        return c->eof || c->err;
}

/* Wait until the daemon closes c: 0 for an end of file, else the read error. */
static int client_wait_closed(client *c)
{
        ck_assert_msg(fx_run_until(&loop, client_closed, c), "the daemon kept the connection");
        return c->eof ? 0 : c->err;
}

static uint64_t counter(const ss_counters *all, const char *name)
{
        for (size_t i = 0; i < all->n; i++)
                if (strcmp(all->v[i].name, name) == 0)
                        return all->v[i].value;
        ck_abort_msg("STATS has no counter %s", name);
        return 0;
}

/* ---- control: FLUSH and STATS ----------------------------------------------------------- */

START_TEST(flush_answered_with_its_sequence)
{
        client *c = client_open();

        client_hello(c, "svc", 1);
        client_flush(c, 42);
        ck_assert_uint_eq(rec.flushes, 1);
        client_flush(c, UINT64_MAX);
        ck_assert_uint_eq(rec.flushes, 2);
        ck_assert_uint_eq(stat_now("flushes"), 2);
}
END_TEST

START_TEST(flush_needs_no_hello)
{
        client *c = client_open();

        client_flush(c, 7);
        ck_assert_uint_eq(rec.flushes, 1);
        ck_assert_uint_eq(stat_now("protocol_errors"), 0);
}
END_TEST

START_TEST(stats_answered_with_every_stage)
{
        client *c = client_open(), *d = client_open();
        ss_counters st;
        ss_buf sent;

        client_hello(c, "svc", 1);
        client_hello(d, "other", 2);
        client_flush(d, 1);
        client_stats(c, 99, &st);
        /* c: HELLO, STATS; d: HELLO, FLUSH */
        ck_assert_uint_eq(counter(&st, "frames"), 4);
        ck_assert_uint_eq(counter(&st, "connections"), 2);
        ck_assert_uint_eq(counter(&st, "connections_active"), 2);
        ck_assert_uint_eq(counter(&st, "sessions"), 2);
        ck_assert_uint_eq(counter(&st, "flushes"), 1);
        ck_assert_uint_eq(counter(&st, "protocol_errors"), 0);
        ck_assert_uint_eq(counter(&st, "spans_open"), 0);
        /* every byte read: the two HELLOs, the FLUSH and the STATS */
        ss_buf_init(&sent, MAX_FRAME);
        put_hello(&sent, "svc", 1);
        put_hello(&sent, "other", 2);
        ck_assert_int_eq(ss_wire_put_seq(&sent, MAX_FRAME, SS_MSG_FLUSH, 1), 0);
        ck_assert_int_eq(ss_wire_put_seq(&sent, MAX_FRAME, SS_MSG_STATS, 99), 0);
        ck_assert_uint_eq(counter(&st, "bytes"), sent.len);
        ss_buf_free(&sent);
        ss_counters_free(&st);
}
END_TEST

START_TEST(frames_split_and_batched)
{
        client *c = client_open();
        ss_buf b;

        ss_buf_init(&b, MAX_FRAME);
        put_hello(&b, "svc", 1);
        ck_assert_int_eq(ss_wire_put_seq(&b, MAX_FRAME, SS_MSG_FLUSH, 5), 0);
        /* One byte at a time, the loop turning in between: framing must reassemble. */
        for (size_t i = 0; i < b.len; i++) {
                client_send_bytes(c, b.data + i, 1);
                uv_run(&loop, UV_RUN_NOWAIT);
        }
        client_expect_flushed(c, 5);
        /* Three frames in one write: three replies, in order. */
        ss_buf_reset(&b);
        for (uint64_t seq = 10; seq < 13; seq++)
                ck_assert_int_eq(ss_wire_put_seq(&b, MAX_FRAME, SS_MSG_FLUSH, seq), 0);
        client_send(c, &b);
        for (uint64_t seq = 10; seq < 13; seq++)
                client_expect_flushed(c, seq);
        ss_buf_free(&b);
        ck_assert_uint_eq(stat_now("frames"), 5);
        ck_assert_uint_eq(stat_now("sessions"), 1);
}
END_TEST

/* ---- spans ------------------------------------------------------------------------------ */

START_TEST(span_over_the_socket_reaches_the_sink)
{
        client *c = client_open();
        const msgpack_object *svc;
        ss_span *root, *child;

        client_hello(c, "agent-svc", 3);
        client_start(c, 1, -1, "agent.run");
        client_start(c, 2, 1, "tool.execute");
        client_end(c, 2);
        client_flush(c, 1);
        ck_assert_uint_eq(rec.n, 0); /* the root is still open */
        ck_assert_uint_eq(stat_now("spans_open"), 1);
        client_end(c, 1);
        client_flush(c, 2);
        ck_assert_uint_eq(rec.puts, 1);
        ck_assert_uint_eq(rec.n, 2);
        root = fx_sink_find(&rec, "agent.run");
        child = fx_sink_find(&rec, "tool.execute");
        ck_assert_ptr_nonnull(root);
        ck_assert_ptr_nonnull(child);
        ck_assert_mem_eq(root->trace_id, TID, SS_TRACE_ID_LEN);
        ck_assert_mem_eq(child->trace_id, TID, SS_TRACE_ID_LEN);
        ck_assert(!root->has_parent);
        ck_assert(child->has_parent);
        ck_assert_mem_eq(child->parent_id, root->span_id, SS_SPAN_ID_LEN);
        ck_assert_uint_eq(root->end_ns, 9001);
        svc = ss_attrs_get(&root->resource->attrs, "service.name");
        ck_assert_ptr_nonnull(svc);
        ck_assert_int_eq(svc->type, MSGPACK_OBJECT_STR);
        ck_assert_mem_eq(svc->via.str.ptr, "agent-svc", 9);
        ck_assert_uint_eq(stat_now("traces_completed"), 1);
        ck_assert_uint_eq(stat_now("span_errors"), 0);
}
END_TEST

START_TEST(span_error_is_counted_and_skipped)
{
        client *c = client_open();

        client_hello(c, "svc", 1);
        client_end(c, 9); /* never started */
        client_start(c, 1, -1, "fine");
        client_start(c, 1, -1, "again"); /* duplicate id */
        client_end(c, 1);
        client_flush(c, 3); /* the connection survived both */
        ck_assert_uint_eq(stat_now("span_errors"), 2);
        ck_assert_uint_eq(stat_now("protocol_errors"), 0);
        ck_assert_uint_eq(rec.n, 1);
        ck_assert_ptr_nonnull(fx_sink_find(&rec, "fine"));
}
END_TEST

START_TEST(unknown_message_is_skipped)
{
        static const uint8_t future[] = {0x92, 0x63, 0x01}; /* [99, 1] */
        client *c = client_open();

        client_hello(c, "svc", 1);
        client_send_frame(c, future, sizeof(future));
        client_flush(c, 4);
        ck_assert_uint_eq(stat_now("unknown_messages"), 1);
        ck_assert_uint_eq(stat_now("protocol_errors"), 0);
}
END_TEST

/* ---- bad input closes only its own connection ------------------------------------------- */

static void bad_garbage(client *c)
{
        static const uint8_t never_msgpack[] = {0xc1};

        client_hello(c, "svc", 10);
        client_send_frame(c, never_msgpack, sizeof(never_msgpack));
}

static void bad_two_objects(client *c)
{
        static const uint8_t two[] = {0x92, 0x07, 0x01, 0xc0}; /* [7, 1] then nil */

        client_send_frame(c, two, sizeof(two));
}

static void bad_over_max_frame(client *c)
{
        uint8_t head[SS_FRAME_HEADER];

        client_hello(c, "svc", 10);
        ss_frame_header_put(head, MAX_FRAME + 1);
        client_send_bytes(c, head, sizeof(head)); /* the header alone is enough to refuse */
}

static void bad_zero_length(client *c)
{
        static const uint8_t zero[SS_FRAME_HEADER] = {0};

        client_send_bytes(c, zero, sizeof(zero));
}

static void bad_span_before_hello(client *c)
{
        client_start(c, 1, -1, "too.early");
}

static void bad_second_hello(client *c)
{
        client_hello(c, "svc", 10);
        client_hello(c, "svc", 11);
}

static void bad_daemon_message(client *c)
{
        client_seq(c, SS_MSG_FLUSHED, 1);
}

static void bad_wrong_shape(client *c)
{
        static const uint8_t flush_str[] = {0x92, 0x07, 0xa1, 'x'}; /* [7, "x"] */

        client_send_frame(c, flush_str, sizeof(flush_str));
}

static void (*const bad_inputs[])(client *c) = {
    bad_garbage,           bad_two_objects,  bad_over_max_frame, bad_zero_length,
    bad_span_before_hello, bad_second_hello, bad_daemon_message, bad_wrong_shape,
};

START_TEST(bad_input_closes_only_that_connection)
{
        client *bystander = client_open(), *bad = client_open();

        client_hello(bystander, "bystander", 1);
        client_flush(bystander, 1);
        bad_inputs[_i](bad);
        ck_assert_int_eq(client_wait_closed(bad), 0);
        client_flush(bystander, 2);
        ck_assert_uint_eq(stat_now("protocol_errors"), 1);
        ck_assert_uint_eq(stat_now("connections_active"), 1);
        ck_assert_uint_eq(stat_now("connections"), 2);
        ck_assert_uint_eq(rec.n, 0);
}
END_TEST

START_TEST(peer_not_reading_replies_is_closed)
{
        client *c = client_open(), *other = client_open();
        ss_buf burst;

        /* STATS replies are hundreds of bytes, the requests a few: a peer that asks and never
         * reads fills the socket, then the daemon's reply queue up to its bound. */
        ss_buf_init(&burst, 1 << 16);
        for (int i = 0; i < 200; i++)
                ck_assert_int_eq(ss_wire_put_seq(&burst, MAX_FRAME, SS_MSG_STATS, 1), 0);
        for (uint64_t deadline = fx_now_ms() + FX_WAIT_MS; stat_now("protocol_errors") == 0;) {
                ck_assert_msg(fx_now_ms() < deadline, "the daemon queued replies without end");
                if (send(c->fd, burst.data, burst.len, MSG_NOSIGNAL) < 0)
                        ck_assert_int_eq(errno, EAGAIN);
                uv_run(&loop, UV_RUN_NOWAIT);
        }
        ss_buf_free(&burst);
        wait_stat("connections_active", 1);
        client_flush(other, 8);
}
END_TEST

/* ---- connection limits and accept failures ---------------------------------------------- */

START_TEST(max_connections_refused_and_counted)
{
        client *served[MAX_CONNS], *refused, *later;

        for (unsigned i = 0; i < MAX_CONNS; i++) {
                served[i] = client_open();
                client_flush(served[i], i);
        }
        refused = client_open();
        ck_assert_int_eq(client_wait_closed(refused), 0);
        ck_assert_uint_eq(stat_now("connections_refused"), 1);
        ck_assert_uint_eq(stat_now("connections"), MAX_CONNS);
        wait_stat("connections_active", MAX_CONNS);
        /* A freed slot is taken again. */
        client_hangup(served[0]);
        wait_stat("connections_active", MAX_CONNS - 1);
        later = client_open();
        client_flush(later, 100);
        client_flush(served[MAX_CONNS - 1], 101);
        ck_assert_uint_eq(stat_now("connections"), MAX_CONNS + 1);
        ck_assert_uint_eq(stat_now("connections_refused"), 1);
}
END_TEST

/*
 * No memory for a connection at accept time: the daemon must still accept the
 * client and close it. This guards the defect where the listener returned from
 * its connection callback without uv_accept(): libuv then stopped watching the
 * listening socket, so every later client (B here) waited forever for an answer.
 */
START_TEST(accept_failure_closes_client_and_keeps_listening)
{
        client *a, *b;

        ss_fault_arm(SS_FAULT_ACCEPT_ALLOC, 1);
        a = client_open();
        ck_assert_int_eq(client_wait_closed(a), 0);
        ck_assert_uint_eq(stat_now("accept_failures"), 1);
        b = client_open();
        client_hello(b, "svc", 2);
        client_flush(b, 77);
        ck_assert_uint_eq(stat_now("accept_failures"), 1);
        ck_assert_uint_eq(stat_now("connections"), 1);
        ck_assert_uint_eq(stat_now("connections_active"), 1);
        ck_assert_uint_eq(stat_now("sessions"), 1);
}
END_TEST

START_TEST(accept_failures_back_to_back)
{
        client *a, *b, *c;

        ss_fault_arm(SS_FAULT_ACCEPT_ALLOC, 2);
        /* Both wait in the backlog before the loop turns: one accept pass meets both. */
        a = client_open();
        b = client_open();
        ck_assert_int_eq(client_wait_closed(a), 0);
        /* B meets the armed fault while the reject handle is busy with A: it must be closed
         * once the handle is free, not served (on_reject_closed() once ran accept_one()). */
        ck_assert_int_eq(client_wait_closed(b), 0);
        c = client_open();
        client_hello(c, "svc", 3);
        client_flush(c, 5);
        ck_assert_uint_eq(stat_now("accept_failures"), 2);
        ck_assert_uint_eq(stat_now("connections"), 1);
}
END_TEST

/* ---- the socket file -------------------------------------------------------------------- */

START_TEST(socket_file_mode)
{
        struct stat st;

        ck_assert_int_eq(lstat(sock_path, &st), 0);
        ck_assert(S_ISSOCK(st.st_mode));
        ck_assert_uint_eq(st.st_mode & 0777, 0660);
}
END_TEST

START_TEST(stale_socket_is_replaced)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char stale[160];
        ss_listener_config cfg;
        ss_listener *l2 = NULL;
        struct stat st;
        int fd;

        /* A socket file whose daemon is gone: bound, never listened on, closed. */
        snprintf(stale, sizeof(stale), "%s/stale.sock", dir);
        memcpy(sa.sun_path, stale, strlen(stale) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);
        ck_assert_int_eq(connect_to(stale), -ECONNREFUSED);
        cfg = listener_config(stale);
        ck_assert_int_eq(ss_listener_new(&loop, &cfg, asm_, ctl, &l2), 0);
        client_flush(client_open_at(stale), 3);
        ck_assert(listener_close_wait(l2));
        ck_assert_int_eq(lstat(stale, &st), -1);
        ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(path_that_is_no_socket_is_left_alone)
{
        char file[160], text[16] = {0};
        ss_listener_config cfg;
        ss_listener *l2 = NULL;
        int fd;

        snprintf(file, sizeof(file), "%s/precious", dir);
        fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "keep me", 7), 7);
        close(fd);
        cfg = listener_config(file);
        ck_assert_int_eq(ss_listener_new(&loop, &cfg, asm_, ctl, &l2), -EEXIST);
        ck_assert_ptr_null(l2);
        fd = open(file, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(read(fd, text, sizeof(text) - 1), 7);
        close(fd);
        ck_assert_str_eq(text, "keep me");
}
END_TEST

START_TEST(live_socket_is_not_taken)
{
        ss_listener_config cfg = listener_config(sock_path);
        ss_listener *l2 = NULL;
        struct stat st;

        ck_assert_int_eq(ss_listener_new(&loop, &cfg, asm_, ctl, &l2), -EADDRINUSE);
        ck_assert_ptr_null(l2);
        ck_assert_int_eq(lstat(sock_path, &st), 0);
        ck_assert(S_ISSOCK(st.st_mode));
        client_flush(client_open(), 1); /* the first listener still serves */
}
END_TEST

START_TEST(path_too_long)
{
        char long_path[200];
        ss_listener_config cfg;
        ss_listener *l2 = NULL;

        memset(long_path, 'x', sizeof(long_path) - 1);
        long_path[0] = '/';
        long_path[sizeof(long_path) - 1] = '\0';
        cfg = listener_config(long_path);
        ck_assert_int_eq(ss_listener_new(&loop, &cfg, asm_, ctl, &l2), -ENAMETOOLONG);
        ck_assert_ptr_null(l2);
}
END_TEST

static bool orphan_handed_on(void *ctx)
{
        return rec.n == 1;
}

START_TEST(close_calls_done_once_and_removes_the_socket)
{
        client *c = client_open();
        const msgpack_object *o;
        struct stat st;

        client_hello(c, "svc", 1);
        client_start(c, 1, -1, "left.open");
        client_flush(c, 1);
        ck_assert(listener_close_wait(lis));
        lis = NULL;
        for (int i = 0; i < 5; i++) /* nothing more comes of it */
                uv_run(&loop, UV_RUN_NOWAIT);
        ck_assert_int_eq(client_wait_closed(c), 0);
        ck_assert_int_eq(lstat(sock_path, &st), -1);
        ck_assert_int_eq(errno, ENOENT);
        ck_assert_int_eq(connect_to(sock_path), -ENOENT);
        /* The session was detached: after its grace the open span ends as an orphan. */
        ck_assert(fx_run_until(&loop, orphan_handed_on, NULL));
        ck_assert_int_eq(rec.spans[0]->status_code, SS_STATUS_ERROR);
        o = ss_attrs_get(&rec.spans[0]->attrs, "sidespan.orphaned");
        ck_assert(o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean);
}
END_TEST

START_TEST(close_with_nothing_connected)
{
        struct stat st;

        ck_assert(listener_close_wait(lis));
        lis = NULL;
        ck_assert_int_eq(lstat(sock_path, &st), -1);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("listener");
        TCase *ctrl = tcase_create("control");
        TCase *bad = tcase_create("bad-input");
        TCase *conns = tcase_create("connections");
        TCase *file = tcase_create("socket-file");
        TCase *all[] = {ctrl, bad, conns, file};

        /* Waits are bounded by FX_WAIT_MS, so a wait that fails says so before Check's own
         * timeout (4 s when the test runs outside meson) cuts it short. */
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
                tcase_set_timeout(all[i], 30);

        tcase_add_unchecked_fixture(ctrl, dir_make, dir_remove);
        tcase_add_checked_fixture(ctrl, setup, teardown);
        tcase_add_test(ctrl, flush_answered_with_its_sequence);
        tcase_add_test(ctrl, flush_needs_no_hello);
        tcase_add_test(ctrl, stats_answered_with_every_stage);
        tcase_add_test(ctrl, frames_split_and_batched);
        tcase_add_test(ctrl, span_over_the_socket_reaches_the_sink);
        tcase_add_test(ctrl, span_error_is_counted_and_skipped);
        tcase_add_test(ctrl, unknown_message_is_skipped);
        suite_add_tcase(s, ctrl);

        tcase_add_unchecked_fixture(bad, dir_make, dir_remove);
        tcase_add_checked_fixture(bad, setup, teardown);
        tcase_add_loop_test(bad, bad_input_closes_only_that_connection, 0,
                            (int)(sizeof(bad_inputs) / sizeof(bad_inputs[0])));
        tcase_add_test(bad, peer_not_reading_replies_is_closed);
        suite_add_tcase(s, bad);

        tcase_add_unchecked_fixture(conns, dir_make, dir_remove);
        tcase_add_checked_fixture(conns, setup, teardown);
        tcase_add_test(conns, max_connections_refused_and_counted);
        tcase_add_test(conns, accept_failure_closes_client_and_keeps_listening);
        tcase_add_test(conns, accept_failures_back_to_back);
        suite_add_tcase(s, conns);

        tcase_add_unchecked_fixture(file, dir_make, dir_remove);
        tcase_add_checked_fixture(file, setup, teardown);
        tcase_add_test(file, socket_file_mode);
        tcase_add_test(file, stale_socket_is_replaced);
        tcase_add_test(file, path_that_is_no_socket_is_left_alone);
        tcase_add_test(file, live_socket_is_not_taken);
        tcase_add_test(file, path_too_long);
        tcase_add_test(file, close_calls_done_once_and_removes_the_socket);
        tcase_add_test(file, close_with_nothing_connected);
        suite_add_tcase(s, file);
        return ss_check_run(s);
}
