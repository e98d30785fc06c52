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
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
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

/* The subdirectories the socket-file tests make, with what a failed test left in them. */
static const char *const subdirs[] = {"open", "theirs"};

static void dir_remove(void)
{
        char path[200];

        for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s/s.sock", dir, subdirs[i]);
                (void)unlink(path);
                snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
                (void)rmdir(path);
        }
        fx_tmpdir_remove(dir);
}

static void setup(void)
{
        ss_assembler_config acfg = {
            .limits = {.max_attrs = 16, .max_events = 16, .max_value_len = 1024},
            .max_open_spans = 100,
            .max_open_total = 1000,
            .max_trace_spans = 1000,
            .sample_rate = 1.0,
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

/* control's counters as an ss_counters_fn. */
static void collect(const void *control, ss_counters *out)
{
        ss_control_collect(control, out);
}

/* The value of a counter as STATS would report it now; absent is a failure. */
static uint64_t stat_now(const char *name)
{
        return fx_counter(collect, ctl, name);
}

/* Turn the loop until counter name has value. */
static void wait_stat(const char *name, uint64_t value)
{
        fx_wait_counter(&loop, collect, ctl, name, value);
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

/* The exporters' fullness, for the backpressure tests. */
static unsigned pressure_pct;

static unsigned test_pressure(const void *ctx)
{
        (void)ctx;
        return pressure_pct;
}

/* Whether input_held passed *ctx: the daemon held a read since. */
static bool held_again(void *ctx)
{
        return stat_now("input_held") > *(const uint64_t *)ctx;
}

static bool sink_has(void *ctx)
{
        return rec.n >= *(const size_t *)ctx;
}

/* c sends a HELLO and a whole span named name while the exporters are full: the daemon reads
 * it and holds c. */
static void send_while_held(client *c, const char *service, uint8_t seed, const char *name)
{
        uint64_t held = stat_now("input_held");
        uint8_t sid[SS_SPAN_ID_LEN];
        ss_buf b;

        /* One write, so that one read takes all of it: the hold stops reading after it. */
        span_id(seed, sid);
        ss_buf_init(&b, MAX_FRAME);
        put_hello(&b, service, seed);
        put_start(&b, seed, -1, name);
        ck_assert_int_eq(
            ss_wire_put_span_end(&b, MAX_FRAME, sid, 9000u + seed, SS_STATUS_OK, NULL, NULL), 0);
        pressure_pct = 100;
        client_send(c, &b);
        ss_buf_free(&b);
        ck_assert(fx_run_until(&loop, held_again, &held));
        for (int i = 0; i < 20; i++)
                uv_run(&loop, UV_RUN_NOWAIT);
}

/* While the exporters are full, what a connection read waits unprocessed (not even its
 * HELLO); when they have room it is processed, and at the listener's close too. */
START_TEST(held_reads_wait_for_room)
{
        client *a = client_open(), *b;
        size_t want = 1;

        ss_listener_set_pressure(lis, test_pressure, NULL);
        send_while_held(a, "held-a", 1, "first");
        ck_assert_uint_eq(rec.n, 0);
        ck_assert_uint_eq(stat_now("spans_open"), 0);
        pressure_pct = 0; /* room again: the hold's timer resumes the connection */
        ck_assert(fx_run_until(&loop, sink_has, &want));
        ck_assert_ptr_nonnull(fx_sink_find(&rec, "first"));
        b = client_open();
        send_while_held(b, "held-b", 2, "second");
        ck_assert_uint_eq(rec.n, 1);
        ck_assert(listener_close_wait(lis)); /* a drain: what b read is not lost */
        lis = NULL;
        ck_assert_uint_eq(rec.n, 2);
        ck_assert_ptr_nonnull(fx_sink_find(&rec, "second"));
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

/* [HELLO, 2^32 + 1, {}]: version 1 in its low 32 bits, and no version the daemon speaks. */
static void bad_hello_version_past_32_bits(client *c)
{
        static const uint8_t hello[] = {0x93, 0x01, 0xcf, 0, 0, 0, 1, 0, 0, 0, 1, 0x80};

        client_send_frame(c, hello, sizeof(hello));
}

static void (*const bad_inputs[])(client *c) = {
    bad_garbage,        bad_two_objects,       bad_over_max_frame,
    bad_zero_length,    bad_span_before_hello, bad_second_hello,
    bad_daemon_message, bad_wrong_shape,       bad_hello_version_past_32_bits,
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

/* ---- hostile clients: configurations of the test's own -------------------------------- */

/* Serve cfg in place of the listener setup() made: a new listener, and a control that counts
 * it (the old control counted the old one). */
static void relisten(const ss_listener_config *cfg)
{
        ck_assert(listener_close_wait(lis));
        lis = NULL;
        ss_control_free(ctl);
        ck_assert_int_eq(ss_control_new(&rec.base, &ctl), 0);
        ck_assert_int_eq(ss_control_add_counters(ctl, ss_assembler_counters, asm_), 0);
        ck_assert_int_eq(ss_listener_new(&loop, cfg, asm_, ctl, &lis), 0);
        ck_assert_int_eq(ss_control_add_counters(ctl, ss_listener_counters, lis), 0);
}

/* ---- clients in processes of their own -------------------------------------------------- */

/*
 * A client in a forked process: it takes on uid, gid and groups (when drop), connects to
 * sock_path, sends what send holds, and reads until it has `replies` frames or the daemon
 * closes; what it read goes back to the test through a pipe. It uses no Check macro (it
 * is not the test) and reports by its exit code.
 */
typedef struct child_spec {
        bool drop;
        uid_t uid;
        gid_t gid;
        const gid_t *groups;
        size_t n_groups;
        const ss_buf *send;
        unsigned replies;
} child_spec;

enum {
        CHILD_REPLIED = 0, /* every reply came */
        CHILD_CLOSED = 1,  /* the daemon closed before them */
        CHILD_NO_PRIVILEGE_DROP = 2,
        CHILD_NO_CONNECT = 3,
        CHILD_IO = 4, /* a read or write failed, or nothing came for FX_WAIT_MS */
};

static int child_drop(const child_spec *sp)
{
        if (!sp->drop)
                return 0;
        if (setgroups(sp->n_groups, sp->groups) < 0 || setgid(sp->gid) < 0 || setuid(sp->uid) < 0)
                return -1;
        return 0;
}

static int child_connect(void)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -1;
        return fd;
}

/* Frames whole in in[0..len). */
static unsigned frames_in(const uint8_t *in, size_t len)
{
        const uint8_t *p;
        size_t n, off = 0;
        unsigned frames = 0;
        int r;

        while ((r = ss_frame_parse(in + off, len - off, SS_MAX_FRAME_DEFAULT, &p, &n)) > 0) {
                off += (size_t)r;
                frames++;
        }
        return frames;
}

static int child_main(const child_spec *sp, int out)
{
        static uint8_t in[1 << 16];
        size_t len = 0;
        int fd;

        if (child_drop(sp) < 0)
                return CHILD_NO_PRIVILEGE_DROP;
        fd = child_connect();
        if (fd < 0)
                return CHILD_NO_CONNECT;
        /* A refused client may find the connection gone before it has written. */
        if (sp->send &&
            send(fd, sp->send->data, sp->send->len, MSG_NOSIGNAL) != (ssize_t)sp->send->len)
                return errno == EPIPE || errno == ECONNRESET ? CHILD_CLOSED : CHILD_IO;
        while (frames_in(in, len) < sp->replies) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                ssize_t n;

                if (poll(&pfd, 1, FX_WAIT_MS) != 1 || len == sizeof(in))
                        return CHILD_IO;
                n = read(fd, in + len, sizeof(in) - len);
                if (n == 0 || (n < 0 && errno == ECONNRESET)) /* closed, our bytes unread */
                        break;
                if (n < 0)
                        return CHILD_IO;
                len += (size_t)n;
        }
        if (write(out, in, len) != (ssize_t)len)
                return CHILD_IO;
        return frames_in(in, len) < sp->replies ? CHILD_CLOSED : CHILD_REPLIED;
}

typedef struct child_run {
        pid_t pid;
        int rd;
        int status;
        bool exited;
        ss_buf got; /* what the child read from the daemon */
} child_run;

static void child_drain(child_run *r)
{
        ssize_t n;

        do {
                ck_assert_int_eq(ss_buf_reserve(&r->got, 4096), 0);
                n = read(r->rd, r->got.data + r->got.len, r->got.cap - r->got.len);
                if (n > 0)
                        r->got.len += (size_t)n;
        } while (n > 0);
}

static bool child_done(void *ctx)
{
        child_run *r = ctx;

        child_drain(r);
        if (!r->exited && waitpid(r->pid, &r->status, WNOHANG) == r->pid)
                r->exited = true;
        return r->exited;
}

/* Run sp in a child while the loop serves it; the child's exit code, what it read in got. */
static int child_client(const child_spec *sp, ss_buf *got)
{
        child_run r = {0};
        int p[2];

        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        fflush(NULL);
        r.pid = fork();
        ck_assert_int_ge(r.pid, 0);
        if (r.pid == 0) {
                close(p[0]);
                _exit(child_main(sp, p[1]));
        }
        close(p[1]);
        r.rd = p[0];
        ss_buf_init(&r.got, 1 << 20);
        ck_assert_msg(fx_run_until(&loop, child_done, &r), "the client process did not finish");
        child_drain(&r);
        close(r.rd);
        ck_assert(WIFEXITED(r.status));
        *got = r.got;
        return WEXITSTATUS(r.status);
}

/* The running test as a client that is neither root nor the daemon's user: "nobody" in
 * group root (so it may reach the socket, mode 0660, through the directory), no other
 * group. Only root can become it; then true. */
static bool unprivileged(child_spec *sp)
{
        static const gid_t none[1];

        if (geteuid() != 0)
                return false;
        ck_assert_int_eq(chmod(dir, 0710), 0);
        sp->drop = true;
        sp->uid = 65534;
        sp->gid = 0;
        sp->groups = none;
        sp->n_groups = 0;
        return true;
}

/* FLUSH 1, and whether the daemon answered it (CHILD_REPLIED) or closed (CHILD_CLOSED). */
static int child_flush(child_spec *sp)
{
        ss_buf req, got;
        int code;

        ss_buf_init(&req, MAX_FRAME);
        ck_assert_int_eq(ss_wire_put_seq(&req, MAX_FRAME, SS_MSG_FLUSH, 1), 0);
        sp->send = &req;
        sp->replies = 1;
        code = child_client(sp, &got);
        if (code == CHILD_REPLIED)
                ck_assert_uint_eq(frames_in(got.data, got.len), 1);
        else
                ck_assert_uint_eq(got.len, 0);
        ss_buf_free(&got);
        ss_buf_free(&req);
        return code;
}

/* ---- admission -------------------------------------------------------------------------- */

START_TEST(connections_per_process_limited)
{
        ss_listener_config cfg = listener_config(sock_path);
        child_spec other = {0};
        client *first, *second, *later;

        cfg.max_connections_process = 1;
        relisten(&cfg);
        first = client_open();
        client_flush(first, 1);
        second = client_open(); /* this process holds its one connection */
        ck_assert_int_eq(client_wait_closed(second), 0);
        ck_assert_uint_eq(stat_now("connections_refused_process"), 1);
        ck_assert_uint_eq(stat_now("connections_refused"), 0);
        client_flush(first, 2);
        /* Another process is served meanwhile. */
        ck_assert_int_eq(child_flush(&other), CHILD_REPLIED);
        ck_assert_uint_eq(stat_now("connections_refused_process"), 1);
        /* Once its connection is gone, this process may connect again. */
        client_hangup(first);
        wait_stat("connections_active", 0);
        later = client_open();
        client_flush(later, 3);
        ck_assert_uint_eq(stat_now("connections_refused_process"), 1);
}
END_TEST

START_TEST(allow_lists_always_admit_the_daemons_user)
{
        static const uint32_t someone_else[] = {12345};
        static const uint32_t some_group[] = {12345};
        ss_listener_config cfg = listener_config(sock_path);

        cfg.allow_uids = someone_else;
        cfg.n_allow_uids = 1;
        cfg.allow_gids = some_group;
        cfg.n_allow_gids = 1;
        relisten(&cfg);
        /* Neither list names us, but we are the daemon's user (and root, when run so). */
        client_flush(client_open(), 1);
        ck_assert_uint_eq(stat_now("connections_denied"), 0);
}
END_TEST

START_TEST(allow_lists_refuse_others)
{
        static const uint32_t someone_else[] = {12345};
        static const uint32_t nobody[] = {65534};
        static const uint32_t root_group[] = {0};
        static const uint32_t extra_group[] = {4242};
        static const gid_t extra_groups[] = {0, 4242};
        ss_listener_config cfg = listener_config(sock_path);
        child_spec sp = {0};

        if (!unprivileged(&sp)) {
                fprintf(stderr, "allow_lists_refuse_others: skipped, needs root to setuid()\n");
                return;
        }
        cfg.allow_uids = someone_else;
        cfg.n_allow_uids = 1;
        relisten(&cfg);
        ck_assert_int_eq(child_flush(&sp), CHILD_CLOSED);
        ck_assert_uint_eq(stat_now("connections_denied"), 1);
        ck_assert_uint_eq(stat_now("connections"), 0);

        /* Named by uid. */
        cfg.allow_uids = nobody;
        relisten(&cfg);
        ck_assert_int_eq(child_flush(&sp), CHILD_REPLIED);
        ck_assert_uint_eq(stat_now("connections_denied"), 0);

        /* By its primary group. */
        cfg.allow_uids = someone_else;
        cfg.allow_gids = root_group;
        cfg.n_allow_gids = 1;
        relisten(&cfg);
        ck_assert_int_eq(child_flush(&sp), CHILD_REPLIED);

        /* By a supplementary group. */
        cfg.allow_gids = extra_group;
        relisten(&cfg);
        ck_assert_int_eq(child_flush(&sp), CHILD_CLOSED);
        sp.gid = 65534;
        sp.groups = extra_groups;
        sp.n_groups = 2;
        ck_assert_int_eq(child_flush(&sp), CHILD_REPLIED);
        ck_assert_uint_eq(stat_now("connections_denied"), 1);
}
END_TEST

/* ---- STATS for a client that is not the daemon's user ----------------------------------- */

static bool reply_has(const msgpack_object_map *m, const char *name)
{
        return ss_wire_map_get(m, name) != NULL;
}

START_TEST(stats_for_others_only_their_own)
{
        ss_buf script, got;
        child_spec sp = {0};
        msgpack_unpacked u;
        const uint8_t *p;
        size_t n;
        ss_msg m;
        const msgpack_object_map *mine;
        ss_counters all;

        if (!unprivileged(&sp)) {
                fprintf(stderr, "stats_for_others_only_their_own: skipped, needs root\n");
                return;
        }
        ss_buf_init(&script, MAX_FRAME);
        put_hello(&script, "nobodys-agent", 1);
        put_start(&script, 1, -1, "theirs");
        ck_assert_int_eq(ss_wire_put_seq(&script, MAX_FRAME, SS_MSG_STATS, 5), 0);
        sp.send = &script;
        sp.replies = 1;
        ck_assert_int_eq(child_client(&sp, &got), CHILD_REPLIED);
        ck_assert_int_gt(ss_frame_parse(got.data, got.len, SS_MAX_FRAME_DEFAULT, &p, &n), 0);
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(ss_wire_decode(p, n, &u, &m), 0);
        ck_assert_uint_eq(m.type, SS_MSG_STATS_REPLY);
        ck_assert_uint_eq(m.stats.id, 5);
        mine = m.stats.counters;
        ck_assert_uint_eq(ss_wire_map_get(mine, "connection.frames")->via.u64, 3);
        ck_assert_uint_eq(ss_wire_map_get(mine, "spans_started")->via.u64, 1);
        ck_assert_uint_eq(ss_wire_map_get(mine, "spans_open")->via.u64, 1);
        ck_assert_uint_eq(ss_wire_map_get(mine, "process_spans_open")->via.u64, 1);
        ck_assert(!reply_has(mine, "connections"));
        ck_assert(!reply_has(mine, "frames"));
        ck_assert(!reply_has(mine, "sessions"));
        ck_assert(!reply_has(mine, "bytes"));
        ck_assert_uint_eq(mine->size, 5);
        msgpack_unpacked_destroy(&u);
        ss_buf_free(&got);
        ss_buf_free(&script);

        /* The daemon's user sees every counter. */
        client_stats(client_open(), 6, &all);
        ck_assert_uint_eq(counter(&all, "connections"), 2);
        ck_assert_uint_eq(counter(&all, "sessions"), 1);
        ck_assert_uint_ge(all.n, 20);
        ss_counters_free(&all);
}
END_TEST

/* ---- timeouts --------------------------------------------------------------------------- */

START_TEST(no_hello_in_time_is_closed)
{
        ss_listener_config cfg = listener_config(sock_path);
        client *silent, *greeted;

        cfg.hello_timeout_ms = 50;
        relisten(&cfg);
        silent = client_open();
        greeted = client_open();
        client_hello(greeted, "svc", 1);
        ck_assert_int_eq(client_wait_closed(silent), 0);
        ck_assert_uint_eq(stat_now("timeouts_hello"), 1);
        /* Past the same deadline, the client that said HELLO is served. */
        client_flush(greeted, 1);
        ck_assert_uint_eq(stat_now("timeouts_hello"), 1);
        ck_assert_uint_eq(stat_now("protocol_errors"), 0);
}
END_TEST

START_TEST(half_a_frame_then_silence_is_closed)
{
        static const uint8_t part[] = {0x93, 0x02, 0xc4}; /* the start of a SPAN_START */
        ss_listener_config cfg = listener_config(sock_path);
        uint8_t head[SS_FRAME_HEADER];
        client *stalled, *whole;

        cfg.frame_timeout_ms = 50;
        relisten(&cfg);
        whole = client_open();
        client_hello(whole, "svc", 1);
        client_flush(whole, 1);
        stalled = client_open();
        client_hello(stalled, "svc", 2);
        ss_frame_header_put(head, 100);
        client_send_bytes(stalled, head, sizeof(head));
        client_send_bytes(stalled, part, sizeof(part));
        ck_assert_int_eq(client_wait_closed(stalled), 0);
        ck_assert_uint_eq(stat_now("timeouts_frame"), 1);
        ck_assert_uint_eq(stat_now("protocol_errors"), 0);
        /* Whole frames only: never closed for it. */
        client_flush(whole, 2);
        ck_assert_uint_eq(stat_now("timeouts_frame"), 1);
}
END_TEST

START_TEST(idle_closed_unless_a_span_is_open)
{
        ss_listener_config cfg = listener_config(sock_path);
        client *busy, *idle;

        cfg.idle_timeout_ms = 50;
        relisten(&cfg);
        busy = client_open();
        client_hello(busy, "svc", 1);
        client_start(busy, 1, -1, "long.running");
        client_flush(busy, 1);
        /* idle speaks last: when its silence is long enough, busy's is too. */
        idle = client_open();
        client_hello(idle, "svc", 2);
        ck_assert_int_eq(client_wait_closed(idle), 0);
        ck_assert_uint_eq(stat_now("timeouts_idle"), 1);
        client_flush(busy, 2);
        /* With its span ended, busy holds nothing either. */
        client_end(busy, 1);
        ck_assert_int_eq(client_wait_closed(busy), 0);
        ck_assert_uint_eq(stat_now("timeouts_idle"), 2);
        ck_assert_uint_eq(rec.n, 1);
}
END_TEST

/* ---- numbers wider than their field ------------------------------------------------------ */

START_TEST(type_past_32_bits_is_unknown)
{
        static const uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        static const uint8_t sid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        client *c = client_open();
        mp o;
        msgpack_packer *pk = mp_begin(&o);

        /* A whole SPAN but for its type, 2^32 + SPAN. */
        msgpack_pack_array(pk, 13);
        msgpack_pack_uint64(pk, (1ull << 32) + SS_MSG_SPAN);
        msgpack_pack_bin_with_body(pk, tid, 16);
        msgpack_pack_bin_with_body(pk, sid, 8);
        msgpack_pack_nil(pk);
        pk_str(pk, "smuggled");
        msgpack_pack_uint8(pk, SS_KIND_INTERNAL);
        msgpack_pack_uint64(pk, 100);
        msgpack_pack_map(pk, 0);
        msgpack_pack_map(pk, 0);
        msgpack_pack_uint64(pk, 200);
        msgpack_pack_uint8(pk, SS_STATUS_OK);
        msgpack_pack_nil(pk);
        msgpack_pack_array(pk, 0);
        client_hello(c, "svc", 1);
        client_send_frame(c, o.sb.data, (uint32_t)o.sb.size);
        mp_done(&o);
        client_flush(c, 1);
        ck_assert_uint_eq(stat_now("unknown_messages"), 1);
        ck_assert_uint_eq(stat_now("spans_started"), 0);
        ck_assert_uint_eq(rec.n, 0);
}
END_TEST

/* ---- the input budget ------------------------------------------------------------------- */

#define READ_CHUNK  (64u * 1024u) /* connection.c's read size */
#define BIG_FRAME   (1u << 20)
#define BIG_PAYLOAD (300u * 1024u)
/* Two buffers of 512 KiB and one read's worth, less a byte: a third buffer cannot grow
 * while the other two are full, nor to 512 KiB while one of them is. */
#define INPUT_BUDGET (2u * 512u * 1024u + READ_CHUNK - 1u)

static uint64_t input_peak;

/* input_bytes now, kept in input_peak when it is the highest seen. */
static uint64_t input_now(void)
{
        uint64_t v = stat_now("input_bytes");

        if (v > input_peak)
                input_peak = v;
        return v;
}

static ss_listener_config budget_config(void)
{
        ss_listener_config cfg = listener_config(sock_path);

        cfg.max_frame = BIG_FRAME;
        cfg.max_connections = 8;
        cfg.max_input_bytes = INPUT_BUDGET;
        return cfg;
}

/* A SPAN_START of seed with an attribute of about BIG_PAYLOAD bytes, appended to b. */
static void put_big_start(ss_buf *b, uint8_t seed)
{
        uint8_t sid[SS_SPAN_ID_LEN];
        ss_span_head h = {.trace_id = TID,
                          .span_id = sid,
                          .name = "big",
                          .name_len = 3,
                          .kind = SS_KIND_INTERNAL,
                          .start_ns = 1000};
        char *blob = malloc(BIG_PAYLOAD);
        ss_buf attrs;
        msgpack_packer pk;

        ck_assert_ptr_nonnull(blob);
        memset(blob, 'b', BIG_PAYLOAD);
        span_id(seed, sid);
        ss_buf_init(&attrs, 2 * BIG_PAYLOAD);
        msgpack_packer_init(&pk, &attrs, ss_buf_msgpack_write);
        pk_str(&pk, "blob");
        msgpack_pack_str_with_body(&pk, blob, BIG_PAYLOAD);
        ck_assert_int_eq(ss_wire_put_span_start(
                             b, BIG_FRAME, &h,
                             &(ss_rawmap){.count = 1, .data = attrs.data, .len = attrs.len}, NULL),
                         0);
        ss_buf_free(&attrs);
        free(blob);
}

/* One client with HELLO and a big SPAN_START ready in msg; half of it is sent at once. */
typedef struct big_client {
        client *c;
        ss_buf msg;
        size_t sent;
} big_client;

static void big_open(big_client *b, uint8_t seed)
{
        b->c = client_open();
        ss_buf_init(&b->msg, 2 * BIG_FRAME);
        put_hello(&b->msg, "big", seed);
        put_big_start(&b->msg, seed);
        b->sent = 0;
}

/* Send up to upto bytes of b's messages without blocking, the loop turning while the socket
 * is full; input_bytes is watched all along. */
static void big_send(big_client *b, size_t upto)
{
        uint64_t deadline = fx_now_ms() + FX_WAIT_MS;

        while (b->sent < upto) {
                ssize_t n = send(b->c->fd, b->msg.data + b->sent, upto - b->sent, MSG_NOSIGNAL);

                if (n > 0)
                        b->sent += (size_t)n;
                else
                        ck_assert_msg(errno == EAGAIN, "send: %s", strerror(errno));
                ck_assert_msg(fx_now_ms() < deadline, "the daemon stopped reading");
                uv_run(&loop, UV_RUN_NOWAIT);
                (void)input_now();
        }
}

static void big_free(big_client *b)
{
        ss_buf_free(&b->msg);
}

typedef struct bytes_want {
        uint64_t bytes;
        const char *name;
} bytes_want;

static bool stat_at_least(void *ctx)
{
        const bytes_want *w = ctx;

        (void)input_now();
        return stat_now(w->name) >= w->bytes;
}

static void wait_at_least(const char *name, uint64_t value)
{
        bytes_want w = {value, name};

        ck_assert_msg(fx_run_until(&loop, stat_at_least, &w), "%s stayed at %llu, below %llu", name,
                      (unsigned long long)stat_now(name), (unsigned long long)value);
}

START_TEST(input_budget_pauses_and_resumes)
{
        ss_listener_config cfg = budget_config();
        big_client b[3];
        uint64_t read;

        relisten(&cfg);
        input_peak = 0;
        for (uint8_t i = 0; i < 3; i++)
                big_open(&b[i], (uint8_t)(i + 1));
        /* Two frames held all but their last byte take 512 KiB of buffer each: within the
         * budget, read one after the other. */
        big_send(&b[0], b[0].msg.len - 1);
        wait_at_least("bytes", b[0].sent);
        big_send(&b[1], b[1].msg.len - 1);
        read = b[0].sent + b[1].sent;
        wait_at_least("bytes", read);
        /* A third client's half frame does not fit: reading pauses once its first read (which
         * every connection has outside the budget) is in. Pausing once crashed the daemon:
         * uv_read_stop() from the alloc callback cleared libuv's read callback. */
        big_send(&b[2], b[2].msg.len / 2);
        wait_at_least("input_paused", 1);
        ck_assert_uint_lt(stat_now("bytes"), read + b[2].sent);
        ck_assert_uint_le(input_peak, INPUT_BUDGET + READ_CHUNK);

        /* The first completes its frame: it is applied, and once its buffer is given back
         * (it has not needed it for a while) the paused client reads again and its frame,
         * sent whole, is applied too. */
        big_send(&b[0], b[0].msg.len);
        wait_at_least("spans_started", 1);
        big_send(&b[2], b[2].msg.len);
        wait_at_least("spans_started", 2);
        ck_assert_uint_eq(stat_now("sessions"), 3);
        /* The second leaves with its frame unfinished: nothing of it is applied, its buffer
         * goes back to the budget. */
        client_hangup(b[1].c);
        wait_stat("connections_active", 2);
        ck_assert_uint_eq(stat_now("spans_open"), 2);
        ck_assert_uint_eq(stat_now("protocol_errors"), 0);
        ck_assert_uint_le(input_peak, INPUT_BUDGET + READ_CHUNK);
        for (int i = 0; i < 3; i++)
                big_free(&b[i]);
}
END_TEST

START_TEST(input_buffer_shrinks_after_a_large_frame)
{
        ss_listener_config cfg = budget_config();
        big_client b;

        relisten(&cfg);
        big_open(&b, 1);
        big_send(&b, b.msg.len - 1);
        wait_at_least("bytes", b.sent);
        ck_assert_uint_ge(stat_now("input_bytes"), BIG_PAYLOAD); /* the frame, almost whole */
        big_send(&b, b.msg.len);
        wait_at_least("spans_started", 1);
        /* Drained and not needed again for a while, the buffer goes back to one read's worth,
         * which is outside the budget. */
        client_flush(b.c, 1);
        wait_stat("input_bytes", 0);
        client_hangup(b.c);
        wait_stat("connections_active", 0);
        ck_assert_uint_eq(stat_now("input_bytes"), 0);
        big_free(&b);
}
END_TEST

/* ---- the socket's file and directory ------------------------------------------------------ */

static char sub[160], sub_sock[200];

/* A subdirectory of dir with mode and owner, and the socket path in it. */
static void sub_make(const char *name, mode_t mode, uid_t owner)
{
        snprintf(sub, sizeof(sub), "%s/%s", dir, name);
        snprintf(sub_sock, sizeof(sub_sock), "%s/s.sock", sub);
        ck_assert_int_eq(mkdir(sub, 0700), 0);
        ck_assert_int_eq(chmod(sub, mode), 0); /* chmod: the umask does not apply */
        ck_assert_int_eq(chown(sub, owner, (gid_t)-1), 0);
}

static void sub_remove(void)
{
        (void)unlink(sub_sock);
        ck_assert_int_eq(rmdir(sub), 0);
}

/* A second listener on sub_sock: 0, or what ss_listener_new() returned. */
static int listen_in_sub(void)
{
        ss_listener_config cfg = listener_config(sub_sock);
        ss_listener *l2 = NULL;
        int r = ss_listener_new(&loop, &cfg, asm_, ctl, &l2);

        if (r == 0)
                ck_assert(listener_close_wait(l2));
        else
                ck_assert_ptr_null(l2);
        return r;
}

START_TEST(socket_mode_whatever_the_umask)
{
        static const mode_t masks[] = {0, 0077, 0777};
        ss_listener_config cfg;
        ss_listener *l2;
        struct stat st;
        char path[160];

        snprintf(path, sizeof(path), "%s/umask.sock", dir);
        for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
                mode_t old = umask(masks[i]);

                cfg = listener_config(path);
                l2 = NULL;
                ck_assert_int_eq(ss_listener_new(&loop, &cfg, asm_, ctl, &l2), 0);
                umask(old);
                ck_assert_int_eq(lstat(path, &st), 0);
                ck_assert(S_ISSOCK(st.st_mode));
                ck_assert_msg((st.st_mode & 07777) == 0660, "umask %03o: mode %04o",
                              (unsigned)masks[i], (unsigned)(st.st_mode & 07777));
                ck_assert(listener_close_wait(l2));
        }
}
END_TEST

START_TEST(directory_anyone_may_write_is_refused)
{
        struct stat st;

        sub_make("open", 0777, geteuid());
        ck_assert_int_eq(listen_in_sub(), -EPERM);
        ck_assert_int_eq(lstat(sub_sock, &st), -1);
        /* Sticky, as /tmp is: nobody may remove another's file, so it is fine. */
        ck_assert_int_eq(chmod(sub, 01777), 0);
        ck_assert_int_eq(listen_in_sub(), 0);
        sub_remove();
}
END_TEST

START_TEST(directory_of_another_user_is_refused)
{
        if (geteuid() != 0) {
                fprintf(stderr, "directory_of_another_user_is_refused: skipped, needs root to "
                                "chown()\n");
                return;
        }
        sub_make("theirs", 0755, 65534);
        ck_assert_int_eq(listen_in_sub(), -EPERM);
        ck_assert_int_eq(chown(sub, 0, (gid_t)-1), 0);
        ck_assert_int_eq(listen_in_sub(), 0);
        sub_remove();
}
END_TEST

int main(void)
{
        Suite *s = suite_create("listener");
        TCase *ctrl = tcase_create("control");
        TCase *bad = tcase_create("bad-input");
        TCase *conns = tcase_create("connections");
        TCase *file = tcase_create("socket-file");
        TCase *hostile = tcase_create("hostile");
        TCase *input = tcase_create("input-budget");
        TCase *all[] = {ctrl, bad, conns, file, hostile, input};

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
        tcase_add_test(ctrl, held_reads_wait_for_room);
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
        tcase_add_test(file, socket_mode_whatever_the_umask);
        tcase_add_test(file, directory_anyone_may_write_is_refused);
        tcase_add_test(file, directory_of_another_user_is_refused);
        suite_add_tcase(s, file);

        tcase_add_unchecked_fixture(hostile, dir_make, dir_remove);
        tcase_add_checked_fixture(hostile, setup, teardown);
        tcase_add_test(hostile, connections_per_process_limited);
        tcase_add_test(hostile, allow_lists_always_admit_the_daemons_user);
        tcase_add_test(hostile, allow_lists_refuse_others);
        tcase_add_test(hostile, stats_for_others_only_their_own);
        tcase_add_test(hostile, no_hello_in_time_is_closed);
        tcase_add_test(hostile, half_a_frame_then_silence_is_closed);
        tcase_add_test(hostile, idle_closed_unless_a_span_is_open);
        tcase_add_test(hostile, type_past_32_bits_is_unknown);
        suite_add_tcase(s, hostile);

        tcase_add_unchecked_fixture(input, dir_make, dir_remove);
        tcase_add_checked_fixture(input, setup, teardown);
        tcase_add_test(input, input_budget_pauses_and_resumes);
        tcase_add_test(input, input_buffer_shrinks_after_a_large_frame);
        suite_add_tcase(s, input);
        return ss_check_run(s);
}
