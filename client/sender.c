/* SPDX-License-Identifier: MIT */
/*
 * The sender thread: the only code that touches the daemon's socket. It swaps
 * the queue's pending frames out under the lock and writes them with few large
 * send() calls, says HELLO on every new connection, reads FLUSHED replies, and
 * reconnects with exponential backoff. System calls happen outside the lock;
 * buffers change only under it, so that a fork() child finds them whole.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "hello.h"
#include "sender.h"
#include "ss-id.h"
#include "ss-wire.h"

#define LINGER_NS      (10u * 1000000ull) /* gather frames this long below the watermark */
#define BACKOFF_MIN_NS (50u * 1000000ull)
#define BACKOFF_MAX_NS (5000u * 1000000ull)
#define STABLE_NS      (1000u * 1000000ull) /* a connection this old resets the backoff */
#define SYSTEM_SOCKET  "/run/sidespan/sidespan.sock"
#define ZONE_CHUNK     1024u /* a FLUSHED reply decodes into some 50 bytes */
/* A buffer written is kept at most this large once a round carries an eighth of it. */
#define OUT_KEEP (2u * SSC_QUEUE_WATERMARK)

/* ---- connection --------------------------------------------------------------------- */

/* The socket to try now: the configured one, else the system daemon's when it exists,
 * else the user's runtime directory, else the system path. */
static const char *socket_path(const ssc_sender *s)
{
        struct stat st;

        if (s->cfg->socket_path)
                return s->cfg->socket_path;
        if (stat(SYSTEM_SOCKET, &st) == 0 || !s->cfg->xdg_socket)
                return SYSTEM_SOCKET;
        return s->cfg->xdg_socket;
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

/* Encode the HELLO of the next connection into s->hello. Under lock (or before the client
 * is shared). */
static int build_hello(ssc_sender *s)
{
        if (!s->instance)
                ss_id_random((uint8_t *)&s->instance, sizeof(s->instance));
        s->hello_off = 0;
        return ssc_hello_build(&s->hello, &s->scratch, s->cfg, s->instance);
}

static uint64_t jitter(uint64_t ns)
{
        uint32_t r;

        /* 75% to 125% of the delay, so that many clients of a restarted daemon spread out. */
        ss_id_random((uint8_t *)&r, sizeof(r));
        return ns - ns / 4 + (uint64_t)((double)(ns / 2) * (r / 4294967296.0));
}

static void schedule_retry(ssc_sender *s, uint64_t now)
{
        s->next_connect_ns = now + jitter(s->backoff_ns);
        s->backoff_ns = s->backoff_ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : s->backoff_ns * 2;
}

static void on_connected(ssc_sender *s, int fd, uint64_t now)
{
        s->fd = fd;
        s->connected_at_ns = now;
        if (s->ever_connected)
                ssc_count(&s->n->reconnects, 1);
        s->ever_connected = true;
        s->in_len = s->in_skip = 0;
        ssc_queue_link_up(s->q);
}

/* Try to connect. Under lock; drops it around the system calls. */
static void try_connect(ssc_sender *s)
{
        uint64_t now;
        int fd;

        ssc_queue_connect_begin(s->q);
        ssc_queue_unlock(s->q);
        /* The paths are immutable for the client's life. */
        fd = connect_unix(socket_path(s));
        ssc_queue_lock(s->q);
        now = ssc_mono_ns();
        if (fd >= 0 && build_hello(s) < 0) {
                close(fd);
                fd = -ENOMEM;
        }
        if (fd >= 0) {
                on_connected(s, fd, now);
                return;
        }
        ssc_count(&s->n->connect_failures, 1);
        schedule_retry(s, now);
        ssc_queue_connect_failed(s->q);
}

/* The total size (header included) of the frame whose header starts at p. */
static size_t frame_size(const uint8_t *p)
{
        return SS_FRAME_HEADER + (size_t)ss_frame_header_get(p);
}

/* Count the frames of out written whole so far. The sender thread's, without the lock. */
static void count_sent(ssc_sender *s)
{
        uint64_t frames = 0;

        while (s->out_scan < s->out.len) {
                size_t n = frame_size(s->out.data + s->out_scan);

                if (s->out_scan + n > s->out_off)
                        break;
                s->out_scan += n;
                frames++;
        }
        ssc_count(&s->n->frames_sent, frames);
}

/* The connection broke: never send half a frame, so the one cut (if any) is dropped and
 * the next connection resumes at the following whole frame. Under lock. */
static void disconnect(ssc_sender *s)
{
        uint64_t now = ssc_mono_ns();

        close(s->fd);
        s->fd = -1;
        ss_buf_reset(&s->hello);
        s->hello_off = 0;
        if (s->out_off > s->out_scan) {
                s->out_scan += frame_size(s->out.data + s->out_scan);
                ssc_count(&s->n->dropped, 1);
        }
        s->out_off = s->out_scan;
        if (s->out_off >= s->out.len) {
                ss_buf_reset(&s->out);
                s->out_off = s->out_scan = 0;
        }
        if (now - s->connected_at_ns >= STABLE_NS)
                s->backoff_ns = BACKOFF_MIN_NS;
        schedule_retry(s, now);
        ssc_queue_link_down(s->q);
}

/* ---- writing ------------------------------------------------------------------------- */

/* Move the pending frames to out (which is empty), plus a FLUSH if one was asked for. */
static void swap_out(ssc_sender *s)
{
        ssc_queue_swap(s->q, &s->out);
        s->out_off = s->out_scan = 0;
        s->linger_deadline_ns = 0;
}

static bool want_swap(ssc_sender *s, uint64_t now)
{
        size_t pending = ssc_queue_pending(s->q);

        if (s->fd < 0 || s->out.len || s->hello_off < s->hello.len)
                return false;
        if (ssc_queue_flush_due(s->q))
                return true;
        if (!pending)
                return false;
        if (pending >= SSC_QUEUE_WATERMARK)
                return true;
        /* Gather frames for a short while: many per write is the throughput lever. */
        if (!s->linger_deadline_ns)
                s->linger_deadline_ns = now + LINGER_NS;
        return now >= s->linger_deadline_ns;
}

/* Write from b at *off. 0 when all is written, -EAGAIN when the socket is full, another
 * -errno when the connection is broken. Without the lock. */
static int write_buf(ssc_sender *s, const ss_buf *b, size_t *off)
{
        while (*off < b->len) {
                ssize_t n = send(s->fd, b->data + *off, b->len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
                *off += (size_t)n;
                ssc_count(&s->n->bytes_sent, (uint64_t)n);
        }
        return 0;
}

/* Write HELLO, then out. Without the lock: only this thread touches these buffers, and
 * a concurrent fork() leaves the child a consistent copy (the offsets it resets). */
static int write_all(ssc_sender *s)
{
        size_t off = s->out_off;
        int r;

        r = write_buf(s, &s->hello, &s->hello_off);
        if (r < 0)
                return r;
        r = write_buf(s, &s->out, &off);
        s->out_off = off;
        return r;
}

/* ---- reading -------------------------------------------------------------------------- */

/* Decoded into the sender's own zone, cleared before the flush waiter is told: a fork() that
 * follows the flush at once (the waiter runs before this thread is done) must find no
 * allocation in flight here, which its child would leak. */
static void on_reply(ssc_sender *s, const uint8_t *payload, size_t len)
{
        ss_msg m;
        int r = ss_wire_decode_zone(payload, len, &s->zone, &m, NULL);

        msgpack_zone_clear(&s->zone);
        /* Anything else (unknown types, STATS replies we never asked for) is skipped. */
        if (r == 0 && m.type == SS_MSG_FLUSHED)
                ssc_queue_flushed(s->q, m.seq.seq);
}

/* Split s->in into replies. -EPROTO for a zero-length frame. */
static int parse_replies(ssc_sender *s)
{
        size_t off = 0;
        int r = 0;

        while (off < s->in_len) {
                const uint8_t *payload;
                size_t len;

                r = ss_frame_parse(s->in + off, s->in_len - off,
                                   SSC_SENDER_IN_SIZE - SS_FRAME_HEADER, &payload, &len);
                if (r == -EMSGSIZE) {
                        /* Too big for us and of no interest: discard it as it arrives.
                         * It is bigger than s->in, so part of it is still to come. */
                        s->in_skip = frame_size(s->in + off) - (s->in_len - off);
                        s->in_len = 0;
                        return 0;
                }
                if (r <= 0)
                        break;
                on_reply(s, payload, len);
                off += (size_t)r;
        }
        memmove(s->in, s->in + off, s->in_len - off);
        s->in_len -= off;
        return r < 0 ? -EPROTO : 0;
}

/* Read what the daemon sent. 0, or -errno when the connection is over. */
static int read_replies(ssc_sender *s)
{
        for (;;) {
                uint8_t drop[512];
                bool skipping = s->in_skip > 0;
                void *dst = skipping ? drop : s->in + s->in_len;
                size_t room = skipping ? (s->in_skip < sizeof(drop) ? s->in_skip : sizeof(drop))
                                       : SSC_SENDER_IN_SIZE - s->in_len;
                ssize_t n = recv(s->fd, dst, room, MSG_DONTWAIT);

                if (n == 0)
                        return -ECONNRESET;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
                if (skipping) {
                        s->in_skip -= (size_t)n;
                        continue;
                }
                s->in_len += (size_t)n;
                if (parse_replies(s) < 0)
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
static int poll_timeout(ssc_sender *s, uint64_t now, bool blocked)
{
        if (s->fd < 0) {
                if (ssc_queue_connect_asked(s->q) || now >= s->next_connect_ns)
                        return 0;
                return ns_to_ms(s->next_connect_ns - now);
        }
        if (blocked)
                return -1; /* the socket's POLLOUT wakes us */
        if (ssc_queue_flush_due(s->q))
                return 0;
        /* Frames wait: look again soon, for the watermark, which callers do not signal. */
        if (ssc_queue_pending(s->q)) {
                int ms = s->linger_deadline_ns > now ? ns_to_ms(s->linger_deadline_ns - now) : 0;

                return ms > (int)SSC_QUEUE_WATCH_MS ? (int)SSC_QUEUE_WATCH_MS : ms;
        }
        ssc_queue_idle(s->q, true);
        return -1;
}

/* Sleep until data, a wake-up or the timeout; then read replies. Without the lock. */
static int wait_and_read(ssc_sender *s, int wake_fd, int timeout, bool blocked)
{
        struct pollfd p[2] = {{.fd = wake_fd, .events = POLLIN}, {.fd = s->fd, .events = POLLIN}};
        int n;

        if (blocked)
                p[1].events |= POLLOUT;
        n = poll(p, s->fd >= 0 ? 2 : 1, timeout);
        if (n <= 0)
                return 0;
        if (p[0].revents & POLLIN)
                ssc_queue_wake_drain(wake_fd);
        if (s->fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
                return read_replies(s);
        return 0;
}

/* Write what was swapped out. Under lock; drops it around the writes. 0 when all went out,
 * -EAGAIN when the socket is full, another -errno after a disconnect. */
static int write_round(ssc_sender *s)
{
        int r;

        ssc_queue_unlock(s->q);
        r = write_all(s);
        /* A walk over every frame written: without the lock, which callers wait for (only
         * this thread touches out; a fork() child resets what it counts with). */
        count_sent(s);
        ssc_queue_lock(s->q);
        if (r == 0) {
                size_t wrote = s->out.len;

                ss_buf_reset(&s->out);
                s->out_off = s->out_scan = 0;
                /* A backlog (the daemon away, then back) grew both buffers to what it took;
                 * once it is gone they would hold that memory in the agent for good. One
                 * that carried an eighth of its size is cut back, here, by the sender, so
                 * that callers appending to the other never wait on a realloc for it;
                 * the two take turns, so both are back within two rounds. */
                if (s->out.cap > OUT_KEEP && wrote < s->out.cap / 8)
                        ss_buf_shrink(&s->out, OUT_KEEP);
        } else if (r != -EAGAIN) {
                disconnect(s);
        }
        return r;
}

/* One round: connect if due, move pending frames out, write, sleep. Entered and left
 * under lock. */
static void sender_round(ssc_sender *s)
{
        uint64_t now = ssc_mono_ns();
        bool blocked = false;
        int r, timeout, wake_fd;

        if (s->fd < 0 && (ssc_queue_connect_asked(s->q) || now >= s->next_connect_ns))
                try_connect(s);
        if (want_swap(s, now))
                swap_out(s);
        if (s->fd >= 0 && (s->hello_off < s->hello.len || s->out_off < s->out.len)) {
                /* All written: go round again at once, more may be pending. Disconnected:
                 * the next round sees to it. */
                if (write_round(s) != -EAGAIN)
                        return;
                blocked = true;
        }
        timeout = poll_timeout(s, ssc_mono_ns(), blocked);
        wake_fd = ssc_queue_wake_fd(s->q);
        ssc_queue_unlock(s->q);
        r = wait_and_read(s, wake_fd, timeout, blocked);
        ssc_queue_lock(s->q);
        ssc_queue_idle(s->q, false);
        if (r < 0 && s->fd >= 0)
                disconnect(s);
}

static void *sender_main(void *arg)
{
        ssc_sender *s = arg;

        ssc_queue_lock(s->q);
        while (!ssc_queue_stopping(s->q))
                sender_round(s);
        ssc_queue_unlock(s->q);
        return NULL;
}

/* The queue's start callback. Under the queue lock. */
static int start_thread(void *ctx)
{
        ssc_sender *s = ctx;
        sigset_t all, old;
        int r;

        /* The host's signal handlers must never run on our thread. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = pthread_create(&s->thread, NULL, sender_main, s);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r)
                return -r;
        (void)pthread_setname_np(s->thread, "sidespan-send");
        return 0;
}

/* ---- life cycle --------------------------------------------------------------------------- */

int ssc_sender_init(ssc_sender *s, ssc_queue *q, const ssc_config *cfg, ssc_counters *n)
{
        *s = (ssc_sender){.q = q, .cfg = cfg, .n = n, .fd = -1, .backoff_ns = BACKOFF_MIN_NS};
        s->zone_ok = msgpack_zone_init(&s->zone, ZONE_CHUNK);
        if (!s->zone_ok)
                return -ENOMEM;
        ssc_queue_buf_init(q, &s->out);
        ss_buf_init(&s->hello, SS_FRAME_HEADER + cfg->max_frame);
        ss_buf_init(&s->scratch, cfg->max_frame);
        ss_id_random((uint8_t *)&s->instance, sizeof(s->instance));
        ssc_queue_set_consumer(q, start_thread, s);
        return build_hello(s) == 0 ? 0 : -EINVAL;
}

void ssc_sender_stop(ssc_sender *s)
{
        if (ssc_queue_stop(s->q))
                pthread_join(s->thread, NULL);
}

size_t ssc_sender_buffered(const ssc_sender *s)
{
        return s->out.len;
}

size_t ssc_sender_capacity(const ssc_sender *s)
{
        return ss_buf_allocated(&s->out);
}

void ssc_sender_after_fork(ssc_sender *s)
{
        /* The parent's connection is the parent's: close our copy without a byte on it
         * (close() of a duplicate leaves the parent's socket open). */
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -1;
        s->ever_connected = false;
        /* The parent sends what it had taken; the child starts empty. */
        ss_buf_reset(&s->out);
        ss_buf_reset(&s->hello);
        s->out_off = s->out_scan = s->hello_off = s->in_len = s->in_skip = 0;
        s->linger_deadline_ns = s->next_connect_ns = 0;
        s->backoff_ns = BACKOFF_MIN_NS;
        s->instance = 0; /* drawn at connect, after the id generator reseeded */
}

void ssc_sender_free(ssc_sender *s)
{
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -1;
        ss_buf_free(&s->out);
        ss_buf_free(&s->hello);
        ss_buf_free(&s->scratch);
        if (s->zone_ok)
                msgpack_zone_destroy(&s->zone);
        s->zone_ok = false;
}
