/* SPDX-License-Identifier: MIT */
/*
 * The sender thread: the only code that touches the daemon's socket. It swaps
 * the shared buffer out under the lock and writes it with few large send()
 * calls, says HELLO on every new connection, reads FLUSHED replies, and
 * reconnects with exponential backoff. System calls happen outside the lock;
 * buffers change only under it, so that a fork() child finds them whole.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client-internal.h"
#include "ss-id.h"

uint64_t ssc_mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void count(atomic_uint_fast64_t *v, uint64_t n)
{
        atomic_fetch_add_explicit(v, n, memory_order_relaxed);
}

void ssc_kick(sidespan_client *c)
{
        if (c->wake_fd >= 0)
                (void)eventfd_write(c->wake_fd, 1);
}

void ssc_enqueue(sidespan_client *c, const uint8_t *frame, size_t len)
{
        size_t before;
        bool wake;

        pthread_mutex_lock(&c->lock);
        if (!c->thread_running)
                (void)ssc_ensure_thread(c);
        before = c->pending.len;
        if (len > c->cfg.buffer_size - before || ss_buf_append(&c->pending, frame, len) < 0) {
                pthread_mutex_unlock(&c->lock);
                count(&c->n.dropped, 1);
                return;
        }
        /* A system call only when the sender must know now: it sleeps without a timer, or
         * enough has gathered to be worth a write. */
        wake = (before == 0 && c->sender_idle) ||
               (before < SSC_WATERMARK && c->pending.len >= SSC_WATERMARK);
        if (wake) {
                c->sender_idle = false;
                ssc_kick(c);
        }
        pthread_mutex_unlock(&c->lock);
        count(&c->n.frames_queued, 1);
}

/* ---- connection --------------------------------------------------------------------- */

/* The socket to try now: the configured one, else the system daemon's when it exists,
 * else the user's runtime directory, else the system path. */
static const char *socket_path(const sidespan_client *c)
{
        struct stat st;

        if (c->cfg.socket_path)
                return c->cfg.socket_path;
        if (stat(SSC_SYSTEM_SOCKET, &st) == 0 || !c->cfg.xdg_socket)
                return SSC_SYSTEM_SOCKET;
        return c->cfg.xdg_socket;
}

/* A non-blocking connect: a Unix socket answers at once (EAGAIN when the backlog is full
 * counts as a failure, retried later). Returns the fd or -errno. */
static int connect_unix(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t n = strlen(path);
        int fd, r;

        if (n >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, n + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* msgpack calls return 0 or our callback's -errno: keep the first failure. */
static void keep(int *err, int r)
{
        if (!*err && r)
                *err = r < 0 ? r : -ENOBUFS;
}

static void pack_key(msgpack_packer *pk, int *err, const char *k)
{
        keep(err, msgpack_pack_str_with_body(pk, k, strlen(k)));
}

static void pack_str_option(msgpack_packer *pk, int *err, const char *k, const char *v)
{
        pack_key(pk, err, k);
        keep(err, msgpack_pack_str_with_body(pk, v, strlen(v)));
}

static void pack_hello_options(sidespan_client *c, msgpack_packer *pk, int *err)
{
        pack_str_option(pk, err, SS_HELLO_SERVICE_NAME, c->cfg.service_name);
        pack_key(pk, err, SS_HELLO_PROCESS_PID);
        keep(err, msgpack_pack_int64(pk, getpid()));
        pack_str_option(pk, err, SS_HELLO_SDK_NAME, "libsidespan");
        pack_str_option(pk, err, SS_HELLO_SDK_VERSION, SIDESPAN_VERSION_STRING);
        pack_key(pk, err, SS_HELLO_INSTANCE);
        keep(err, msgpack_pack_uint64(pk, c->instance));
        pack_key(pk, err, SS_HELLO_SAMPLE_RATE);
        keep(err, msgpack_pack_double(pk, c->cfg.sample_rate));
        pack_key(pk, err, SS_HELLO_INCLUDE_CONTENT);
        keep(err, c->cfg.include_content ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
        keep(err, ss_buf_append(pk->data, c->cfg.resource.data, c->cfg.resource.len));
}

int ssc_build_hello(sidespan_client *c)
{
        ss_rawmap map = {.count = SS_HELLO_N_KEYS + c->cfg.n_resource};
        msgpack_packer pk;
        int err = 0;

        if (!c->instance)
                ss_id_random((uint8_t *)&c->instance, sizeof(c->instance));
        ss_buf_reset(&c->scratch);
        ss_buf_reset(&c->hello);
        c->hello_off = 0;
        msgpack_packer_init(&pk, &c->scratch, ss_buf_msgpack_write);
        pack_hello_options(c, &pk, &err);
        if (err)
                return err;
        map.data = c->scratch.data;
        map.len = c->scratch.len;
        return ss_wire_put_hello(&c->hello, c->cfg.max_frame, &map);
}

static uint64_t jitter(uint64_t ns)
{
        uint32_t r;

        /* 75% to 125% of the delay, so that many clients of a restarted daemon spread out. */
        ss_id_random((uint8_t *)&r, sizeof(r));
        return ns - ns / 4 + (uint64_t)((double)(ns / 2) * (r / 4294967296.0));
}

static void schedule_retry(sidespan_client *c, uint64_t now)
{
        c->next_connect_ns = now + jitter(c->backoff_ns);
        c->backoff_ns =
            c->backoff_ns * 2 > SSC_BACKOFF_MAX_NS ? SSC_BACKOFF_MAX_NS : c->backoff_ns * 2;
}

static void on_connected(sidespan_client *c, int fd, uint64_t now)
{
        c->fd = fd;
        c->connected = true;
        c->connected_at_ns = now;
        if (c->ever_connected)
                count(&c->n.reconnects, 1);
        c->ever_connected = true;
        c->in_len = c->in_skip = 0;
        /* A FLUSH written to a connection that broke was never answered: ask again,
         * behind everything still to send. */
        if (c->flush_acked < c->flush_req)
                c->flush_queued = c->flush_acked;
        pthread_cond_broadcast(&c->cond);
}

/* Try to connect. Under lock; drops it around the system calls. */
static void try_connect(sidespan_client *c)
{
        uint64_t now;
        int fd;

        c->force_connect = false;
        pthread_mutex_unlock(&c->lock);
        /* The paths are immutable for the client's life. */
        fd = connect_unix(socket_path(c));
        pthread_mutex_lock(&c->lock);
        now = ssc_mono_ns();
        if (fd >= 0 && ssc_build_hello(c) < 0) {
                close(fd);
                fd = -ENOMEM;
        }
        if (fd >= 0) {
                on_connected(c, fd, now);
                return;
        }
        count(&c->n.connect_failures, 1);
        c->connect_fail_gen++;
        schedule_retry(c, now);
        pthread_cond_broadcast(&c->cond);
}

/* The total size (header included) of the frame whose header starts at p. */
static size_t frame_size(const uint8_t *p)
{
        return SS_FRAME_HEADER + (size_t)ss_frame_header_get(p);
}

/* Count the frames of out written whole so far. */
static void count_sent(sidespan_client *c)
{
        uint64_t frames = 0;

        while (c->out_scan < c->out.len) {
                size_t n = frame_size(c->out.data + c->out_scan);

                if (c->out_scan + n > c->out_off)
                        break;
                c->out_scan += n;
                frames++;
        }
        count(&c->n.frames_sent, frames);
}

/* The connection broke: never send half a frame, so the one cut (if any) is dropped and
 * the next connection resumes at the following whole frame. Under lock. */
static void disconnect(sidespan_client *c)
{
        uint64_t now = ssc_mono_ns();

        close(c->fd);
        c->fd = -1;
        c->connected = false;
        ss_buf_reset(&c->hello);
        c->hello_off = 0;
        if (c->out_off > c->out_scan) {
                c->out_scan += frame_size(c->out.data + c->out_scan);
                count(&c->n.dropped, 1);
        }
        c->out_off = c->out_scan;
        if (c->out_off >= c->out.len) {
                ss_buf_reset(&c->out);
                c->out_off = c->out_scan = 0;
        }
        if (now - c->connected_at_ns >= SSC_STABLE_NS)
                c->backoff_ns = SSC_BACKOFF_MIN_NS;
        schedule_retry(c, now);
        pthread_cond_broadcast(&c->cond);
}

/* ---- writing ------------------------------------------------------------------------- */

/* Move the pending frames to out (which is empty), plus a FLUSH if one was asked for. */
static void swap_out(sidespan_client *c)
{
        ss_buf t = c->out;

        c->out = c->pending;
        c->pending = t;
        c->out_off = c->out_scan = 0;
        c->linger_deadline_ns = 0;
        if (c->flush_queued < c->flush_req &&
            ss_wire_put_seq(&c->out, c->cfg.max_frame, SS_MSG_FLUSH, c->flush_req) == 0) {
                c->flush_queued = c->flush_req;
                count(&c->n.frames_queued, 1);
        }
}

static bool want_swap(sidespan_client *c, uint64_t now)
{
        if (c->fd < 0 || c->out.len || c->hello_off < c->hello.len)
                return false;
        if (c->flush_queued < c->flush_req)
                return true;
        if (!c->pending.len)
                return false;
        if (c->pending.len >= SSC_WATERMARK)
                return true;
        /* Gather frames for a short while: many per write is the throughput lever. */
        if (!c->linger_deadline_ns)
                c->linger_deadline_ns = now + SSC_LINGER_NS;
        return now >= c->linger_deadline_ns;
}

/* Write from b at *off. 0 when all is written, -EAGAIN when the socket is full, another
 * -errno when the connection is broken. Without the lock. */
static int write_buf(sidespan_client *c, const ss_buf *b, size_t *off)
{
        while (*off < b->len) {
                ssize_t n = send(c->fd, b->data + *off, b->len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
                *off += (size_t)n;
                count(&c->n.bytes_sent, (uint64_t)n);
        }
        return 0;
}

/* Write HELLO, then out. Without the lock: only this thread touches these buffers, and
 * a concurrent fork() leaves the child a consistent copy (the offsets it resets). */
static int write_all(sidespan_client *c)
{
        size_t off = c->out_off;
        int r;

        r = write_buf(c, &c->hello, &c->hello_off);
        if (r < 0)
                return r;
        r = write_buf(c, &c->out, &off);
        c->out_off = off;
        return r;
}

/* ---- reading -------------------------------------------------------------------------- */

static void on_reply(sidespan_client *c, const uint8_t *payload, size_t len)
{
        msgpack_unpacked u;
        ss_msg m;

        msgpack_unpacked_init(&u);
        if (ss_wire_decode(payload, len, &u, &m) == 0 && m.type == SS_MSG_FLUSHED) {
                pthread_mutex_lock(&c->lock);
                if (m.seq.seq > c->flush_acked && m.seq.seq <= c->flush_req) {
                        c->flush_acked = m.seq.seq;
                        pthread_cond_broadcast(&c->cond);
                }
                pthread_mutex_unlock(&c->lock);
        }
        /* Anything else (unknown types, STATS replies we never asked for) is skipped. */
        msgpack_unpacked_destroy(&u);
}

/* Split c->in into replies. -EPROTO for a zero-length frame. */
static int parse_replies(sidespan_client *c)
{
        size_t off = 0;
        int r = 0;

        while (off < c->in_len) {
                const uint8_t *payload;
                size_t len;

                r = ss_frame_parse(c->in + off, c->in_len - off, SSC_IN_SIZE - SS_FRAME_HEADER,
                                   &payload, &len);
                if (r == -EMSGSIZE) {
                        /* Too big for us and of no interest: discard it as it arrives.
                         * It is bigger than c->in, so part of it is still to come. */
                        c->in_skip = frame_size(c->in + off) - (c->in_len - off);
                        c->in_len = 0;
                        return 0;
                }
                if (r <= 0)
                        break;
                on_reply(c, payload, len);
                off += (size_t)r;
        }
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
        return r < 0 ? -EPROTO : 0;
}

/* Read what the daemon sent. 0, or -errno when the connection is over. */
static int read_replies(sidespan_client *c)
{
        for (;;) {
                uint8_t drop[512];
                bool skipping = c->in_skip > 0;
                void *dst = skipping ? drop : c->in + c->in_len;
                size_t room = skipping ? (c->in_skip < sizeof(drop) ? c->in_skip : sizeof(drop))
                                       : SSC_IN_SIZE - c->in_len;
                ssize_t n = recv(c->fd, dst, room, MSG_DONTWAIT);

                if (n == 0)
                        return -ECONNRESET;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
                if (skipping) {
                        c->in_skip -= (size_t)n;
                        continue;
                }
                c->in_len += (size_t)n;
                if (parse_replies(c) < 0)
                        return -EPROTO;
        }
}

/* ---- the loop --------------------------------------------------------------------------- */

static int ns_to_ms(uint64_t ns)
{
        uint64_t ms = (ns + 999999) / 1000000;

        return ms > 60000 ? 60000 : (int)ms;
}

/* How long to sleep and whether to wait for POLLOUT. Under lock. */
static int poll_timeout(sidespan_client *c, uint64_t now, bool blocked)
{
        if (c->fd < 0) {
                if (c->force_connect || now >= c->next_connect_ns)
                        return 0;
                return ns_to_ms(c->next_connect_ns - now);
        }
        if (blocked)
                return -1; /* the socket's POLLOUT wakes us */
        if (c->flush_queued < c->flush_req)
                return 0;
        if (c->pending.len)
                return c->linger_deadline_ns > now ? ns_to_ms(c->linger_deadline_ns - now) : 0;
        c->sender_idle = true;
        return -1;
}

static void drain_wake(int fd)
{
        eventfd_t v;

        (void)eventfd_read(fd, &v);
}

/* Sleep until data, a wake-up or the timeout; then read replies. Without the lock. */
static int wait_and_read(sidespan_client *c, int wake_fd, int timeout, bool blocked)
{
        struct pollfd p[2] = {{.fd = wake_fd, .events = POLLIN}, {.fd = c->fd, .events = POLLIN}};
        int n;

        if (blocked)
                p[1].events |= POLLOUT;
        n = poll(p, c->fd >= 0 ? 2 : 1, timeout);
        if (n <= 0)
                return 0;
        if (p[0].revents & POLLIN)
                drain_wake(wake_fd);
        if (c->fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
                return read_replies(c);
        return 0;
}

/* One round: connect if due, move pending frames out, write, sleep. Entered and left
 * under lock. */
static void sender_round(sidespan_client *c)
{
        uint64_t now = ssc_mono_ns();
        bool blocked = false;
        int r = 0, timeout, wake_fd;

        if (c->fd < 0 && (c->force_connect || now >= c->next_connect_ns))
                try_connect(c);
        if (want_swap(c, now))
                swap_out(c);
        if (c->fd >= 0 && (c->hello_off < c->hello.len || c->out_off < c->out.len)) {
                pthread_mutex_unlock(&c->lock);
                r = write_all(c);
                pthread_mutex_lock(&c->lock);
                count_sent(c);
                if (r == 0) {
                        ss_buf_reset(&c->out);
                        c->out_off = c->out_scan = 0;
                        return; /* more may be pending: go round again at once */
                }
                blocked = r == -EAGAIN;
                if (!blocked) {
                        disconnect(c);
                        return;
                }
        }
        timeout = poll_timeout(c, ssc_mono_ns(), blocked);
        wake_fd = c->wake_fd;
        pthread_mutex_unlock(&c->lock);
        r = wait_and_read(c, wake_fd, timeout, blocked);
        pthread_mutex_lock(&c->lock);
        c->sender_idle = false;
        if (r < 0 && c->fd >= 0)
                disconnect(c);
}

void *ssc_sender_main(void *arg)
{
        sidespan_client *c = arg;

        pthread_mutex_lock(&c->lock);
        while (!c->stopping)
                sender_round(c);
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

void ssc_sender_after_fork(sidespan_client *c)
{
        /* The parent's connection and wake-up fd are the parent's: close our copies without
         * a byte on them (close() of a duplicate leaves the parent's socket open). */
        if (c->fd >= 0)
                close(c->fd);
        if (c->wake_fd >= 0)
                close(c->wake_fd);
        c->fd = c->wake_fd = -1;
        c->connected = c->ever_connected = false;
        c->thread_running = c->stopping = c->sender_idle = c->force_connect = false;
        /* The parent sends what it had buffered; the child starts empty. */
        ss_buf_reset(&c->pending);
        ss_buf_reset(&c->out);
        ss_buf_reset(&c->hello);
        c->out_off = c->out_scan = c->hello_off = c->in_len = c->in_skip = 0;
        c->flush_req = c->flush_queued = c->flush_acked = 0;
        c->linger_deadline_ns = c->next_connect_ns = c->thread_retry_ns = 0;
        c->backoff_ns = SSC_BACKOFF_MIN_NS;
        c->instance = 0; /* drawn at connect, after the id generator reseeded */
        memset(&c->n, 0, sizeof(c->n));
}

void ssc_sender_free(sidespan_client *c)
{
        if (c->fd >= 0)
                close(c->fd);
        if (c->wake_fd >= 0)
                close(c->wake_fd);
        c->fd = c->wake_fd = -1;
        ss_buf_free(&c->out);
        ss_buf_free(&c->hello);
        ss_buf_free(&c->scratch);
}
