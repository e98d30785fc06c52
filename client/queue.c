/* SPDX-License-Identifier: MIT */
/*
 * The queue: the one place caller threads and the sender thread meet. The hot
 * path (ssc_queue_enqueue) copies a frame in under the lock and makes a system
 * call only to wake a sender that would otherwise not look soon; everything
 * else here is flush handshakes and the sender reporting its link.
 */
#include <errno.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "queue.h"
#include "ss-wire.h"

#define FLUSH_SLACK    64u                  /* room past limit for a FLUSH frame */
#define START_RETRY_NS (1000u * 1000000ull) /* a failed start is retried this much later */
#define QUEUE_FIRST    (256u * 1024)        /* each of the two buffers' first allocation */

/* ---- the owner ------------------------------------------------------------------------ */

int ssc_queue_init(ssc_queue *q, size_t limit, size_t max_frame, ssc_counters *n)
{
        *q = (ssc_queue){.limit = limit, .max_frame = max_frame, .n = n, .wake_fd = -1};
        ssc_lock_init(&q->lock);
        ssc_event_init(&q->cond);
        ssc_queue_buf_init(q, &q->pending);
        return 0;
}

void ssc_queue_set_consumer(ssc_queue *q, ssc_queue_start_fn start, void *ctx)
{
        q->start = start;
        q->start_ctx = ctx;
}

void ssc_queue_buf_init(const ssc_queue *q, ss_buf *b)
{
        ss_buf_init(b, q->limit + FLUSH_SLACK);
        /* Allocated now, not grown by a caller's enqueue (a realloc of this size is an
         * mremap() system call on the caller's thread); past it, growth is lazy. */
        (void)ss_buf_reserve(b, q->limit < QUEUE_FIRST ? q->limit : QUEUE_FIRST);
}

void ssc_queue_free(ssc_queue *q)
{
        if (q->wake_fd >= 0)
                close(q->wake_fd);
        q->wake_fd = -1;
        ss_buf_free(&q->pending);
}

void ssc_queue_after_fork(ssc_queue *q)
{
        /* The wake-up fd is the parent's sender's: close our copy without a byte on it. */
        if (q->wake_fd >= 0)
                close(q->wake_fd);
        q->wake_fd = -1;
        q->running = q->stopping = q->idle = q->force_connect = q->connected = false;
        /* The parent sends what it had buffered; the child starts empty. */
        ss_buf_reset(&q->pending);
        q->flush_req = q->flush_queued = q->flush_acked = 0;
        q->retry_ns = 0;
        /* The parent's waiters do not exist here. */
        ssc_event_init(&q->cond);
}

/* ---- the producers -------------------------------------------------------------------- */

static void wake(ssc_queue *q)
{
        if (q->wake_fd >= 0)
                (void)eventfd_write(q->wake_fd, 1);
}

/* Start the consumer unless it runs. Under lock. */
static int ensure_running(ssc_queue *q)
{
        uint64_t now;
        int r;

        if (q->running)
                return 0;
        /* A failure (no memory, thread limit) is retried at most once a second. */
        now = ssc_mono_ns();
        if (q->retry_ns && now < q->retry_ns)
                return -EAGAIN;
        if (q->wake_fd < 0)
                q->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        r = q->wake_fd < 0 ? -errno : q->start(q->start_ctx);
        if (r < 0) {
                q->retry_ns = now + START_RETRY_NS;
                return r;
        }
        q->running = true;
        q->retry_ns = 0;
        return 0;
}

bool ssc_queue_enqueue_slow(ssc_queue *q, const uint8_t *frame, size_t len, bool start)
{
        size_t before;

        if (!q->running)
                (void)ensure_running(q);
        if (start)
                ssc_queue_count(&q->n->started_queued, 1);
        before = q->pending.len;
        if (len > q->limit - before || ss_buf_append(&q->pending, frame, len) < 0) {
                ssc_queue_unlock(q);
                ssc_count(&q->n->dropped, 1);
                return false;
        }
        /* A system call only when the sender must know now: it sleeps without a timer. While
         * frames wait it looks every SSC_QUEUE_WATCH_MS itself (the watermark included), so
         * a busy caller makes none. */
        if (before == 0 && q->idle) {
                q->idle = false;
                wake(q);
        }
        ssc_queue_count(&q->n->frames_queued, 1);
        ssc_queue_unlock(q);
        return true;
}

int ssc_queue_start(ssc_queue *q)
{
        int r;

        ssc_queue_lock(q);
        r = ensure_running(q);
        ssc_queue_unlock(q);
        return r;
}

/* Wait for FLUSHED seq. Under lock. */
static int flush_wait(ssc_queue *q, uint64_t seq, int timeout_ms)
{
        uint64_t deadline =
            ssc_mono_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;
        uint64_t gen = q->connect_fail_gen;

        while (q->flush_acked < seq) {
                uint64_t now;

                /* A connection attempt made since the flush began failed: no daemon. */
                if (!q->connected && q->connect_fail_gen != gen)
                        return -ENOTCONN;
                if (timeout_ms < 0) {
                        ssc_event_wait(&q->cond, &q->lock, -1);
                        continue;
                }
                now = ssc_mono_ns();
                if (now >= deadline)
                        return q->connected ? -ETIMEDOUT : -ENOTCONN;
                ssc_event_wait(&q->cond, &q->lock, (int64_t)(deadline - now));
        }
        return 0;
}

int ssc_queue_flush(ssc_queue *q, int timeout_ms)
{
        int r;

        ssc_queue_lock(q);
        r = ensure_running(q);
        if (r == 0) {
                uint64_t seq = ++q->flush_req;

                if (!q->connected)
                        q->force_connect = true;
                wake(q);
                r = flush_wait(q, seq, timeout_ms);
        }
        ssc_queue_unlock(q);
        return r;
}

bool ssc_queue_stop(ssc_queue *q)
{
        bool running;

        ssc_queue_lock(q);
        q->stopping = true;
        wake(q);
        running = q->running;
        q->running = false;
        ssc_queue_unlock(q);
        return running;
}

size_t ssc_queue_pending(const ssc_queue *q)
{
        return q->pending.len;
}

size_t ssc_queue_capacity(const ssc_queue *q)
{
        return ss_buf_allocated(&q->pending);
}

bool ssc_queue_connected(const ssc_queue *q)
{
        return q->connected;
}

/* ---- the consumer --------------------------------------------------------------------- */

bool ssc_queue_stopping(const ssc_queue *q)
{
        return q->stopping;
}

bool ssc_queue_flush_due(const ssc_queue *q)
{
        return q->flush_queued < q->flush_req;
}

bool ssc_queue_connect_asked(const ssc_queue *q)
{
        return q->force_connect;
}

void ssc_queue_swap(ssc_queue *q, ss_buf *out)
{
        ss_buf t = *out;

        *out = q->pending;
        q->pending = t;
        if (ssc_queue_flush_due(q) &&
            ss_wire_put_seq(out, q->max_frame, SS_MSG_FLUSH, q->flush_req) == 0) {
                q->flush_queued = q->flush_req;
                ssc_count(&q->n->frames_queued, 1);
        }
}

void ssc_queue_idle(ssc_queue *q, bool idle)
{
        q->idle = idle;
}

int ssc_queue_wake_fd(const ssc_queue *q)
{
        return q->wake_fd;
}

void ssc_queue_wake_drain(int fd)
{
        eventfd_t v;

        (void)eventfd_read(fd, &v);
}

void ssc_queue_connect_begin(ssc_queue *q)
{
        q->force_connect = false;
}

void ssc_queue_link_up(ssc_queue *q)
{
        q->connected = true;
        /* A FLUSH written to a connection that broke was never answered: ask again, behind
         * everything still to send. */
        if (q->flush_acked < q->flush_req)
                q->flush_queued = q->flush_acked;
        ssc_event_broadcast(&q->cond);
}

void ssc_queue_connect_failed(ssc_queue *q)
{
        q->connect_fail_gen++;
        ssc_event_broadcast(&q->cond);
}

void ssc_queue_link_down(ssc_queue *q)
{
        q->connected = false;
        ssc_event_broadcast(&q->cond);
}

void ssc_queue_flushed(ssc_queue *q, uint64_t seq)
{
        ssc_queue_lock(q);
        if (seq > q->flush_acked && seq <= q->flush_req) {
                q->flush_acked = seq;
                ssc_event_broadcast(&q->cond);
        }
        ssc_queue_unlock(q);
}
