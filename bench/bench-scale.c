/* SPDX-License-Identifier: MIT */
/*
 * bench-scale: sidespand's memory and how it scales (issue 11), against a
 * daemon that bench/bench-scale.sh started (--socket PATH, --pid PID).
 *   idle             the daemon's RSS and threads, then again after one client
 *                    connected and disconnected, and 2 s after one agent run of
 *                    another was exported;
 *   connections N    N concurrent clients (one sidespan_client each, one thread
 *                    each, in up to --processes forked processes) emit agent-shaped
 *                    runs (agent-run.c: 30 spans, 1 KiB of content in each chat
 *                    message) as fast as they can, --spans in total: spans/s
 *                    through the daemon, its CPU per span, RSS and thread count;
 *   open N           N traces held open (a root agent.run with 5 small string
 *                    attributes, never ended): RSS per open span, then all ended;
 *   soak SECONDS     --rate spans/s of agent-shaped runs, paced, RSS every 10 s.
 * Figures come from /proc/PID (VmRSS, Threads, CPU time) and the daemon's own
 * STATS counters. A benchmark, not a test: it prints figures and asserts nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <msgpack.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent-run.h"
#include "daemon-probe.h"
#include "sidespan.h"
#include "ss-buf.h"
#include "ss-wire.h"

#define FLUSH_TIMEOUT_MS 600000
#define MAX_CONNECTIONS  4096
#define MAX_PROCESSES    64
#define SOAK_THREADS     4
#define SAMPLE_S         10
#define OPEN_FLUSH_EVERY 10000 /* spans between flushes while opening or ending */
#define SPANS_PER_RUN    BENCH_AGENT_SPANS

typedef struct config {
        const char *socket;
        long pid;
        const char *mode;
        long n;         /* connections, open traces or soak seconds */
        long spans;     /* connections: spans in total */
        long processes; /* connections: forked processes at most */
        long buffer_mb; /* 0: chosen per mode */
        long rate;      /* soak: spans/s */
        long nice;      /* connections: the client processes' nice value */
        long export_timeout_s;
} config;

static void sleep_ms(long ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
}

/* ---- the daemon process ------------------------------------------------------------- */

static long rss_kb(const config *cfg)
{
        return bench_proc_field(cfg->pid, "status", "VmRSS:");
}

static long threads(const config *cfg)
{
        return bench_proc_field(cfg->pid, "status", "Threads:");
}

/* ---- the daemon's STATS ------------------------------------------------------------- */

/* ---- the load: agent-run.c's 30-span run -------------------------------------------- */

static int client_open(const config *cfg, size_t buffer, sidespan_client **ret)
{
        sidespan_options o;

        sidespan_options_init(&o);
        o.socket_path = cfg->socket;
        o.service_name = "bench-scale";
        o.buffer_size = buffer;
        o.flush_on_exit = false;
        return sidespan_client_open(&o, ret);
}

/* ---- idle ------------------------------------------------------------------------------- */

/* VmRSS with its parts: anonymous memory (the heap) and file pages (the shared libraries,
 * counted whole though other processes map them too; PSS divides those by their sharers). */
static void print_rss(const config *cfg, const char *when)
{
        printf("%s: daemon RSS %ld kB (anonymous %ld kB, file-backed %ld kB; PSS %ld kB), "
               "%ld threads\n",
               when, rss_kb(cfg), bench_proc_field(cfg->pid, "status", "RssAnon:"),
               bench_proc_field(cfg->pid, "status", "RssFile:"),
               bench_proc_field(cfg->pid, "smaps_rollup", "Pss:"), threads(cfg));
}

/* One agent run from c, flushed and exported (or dropped: the daemon's STATS tell which). */
static int export_one_run(const config *cfg, sidespan_client *c)
{
        bench_dstats a, e;
        uint64_t done_ns;
        int r;

        r = bench_daemon_stats(cfg->socket, &a);
        if (r == 0)
                r = bench_agent_run(c);
        if (r == 0)
                r = sidespan_flush(c, 10000);
        if (r == 0)
                r = bench_wait_export(cfg->socket, &a, cfg->export_timeout_s, &e, &done_ns);
        if (r == 0)
                printf("  one agent run: %" PRIu64 " spans exported, %" PRIu64 " dropped\n",
                       e.exported - a.exported, e.export_dropped - a.export_dropped);
        return r;
}

/*
 * Idle, then with one client connected, after it went, and 2 s after that client's one agent
 * run was exported: the exporter's library has then done all it does once (a connection, a
 * TLS handshake), as a daemon idle between bursts has.
 */
static int mode_idle(const config *cfg)
{
        sidespan_client *c = NULL;
        bench_dstats s;
        int r;

        print_rss(cfg, "idle");
        r = client_open(cfg, 4u << 20, &c);
        if (r == 0)
                r = sidespan_flush(c, 10000);
        if (r == 0)
                r = bench_daemon_stats(cfg->socket, &s);
        if (r == 0)
                print_rss(cfg, "  one client connected");
        (void)sidespan_client_close(&c);
        sleep_ms(1000);
        print_rss(cfg, "  1 s after it disconnected");
        if (r == 0)
                r = client_open(cfg, 4u << 20, &c);
        if (r == 0)
                r = export_one_run(cfg, c);
        (void)sidespan_client_close(&c);
        if (r == 0) {
                sleep_ms(2000);
                print_rss(cfg, "  2 s after one agent run was exported");
        }
        return r;
}

/* ---- connections ------------------------------------------------------------------------ */

/* One client's outcome, in memory shared with the parent. */
typedef struct slot {
        uint64_t spans;   /* spans started */
        uint64_t dropped; /* frames the client dropped (buffer full) */
        int open_rc;      /* client open and first flush (the connection made) */
        int flush_rc;     /* the last flush */
        int failures;
} slot;

typedef struct conn_job {
        const config *cfg;
        slot *out;
        long runs;
        size_t buffer;
        int ready_fd; /* one byte written once connected */
        int go_fd;    /* hung up by the parent: start */
} conn_job;

/* Flush until the client is connected: when hundreds connect at once the listen backlog
 * overflows, the library's attempt fails (-ENOTCONN) and it retries with backoff. */
static int connect_wait(sidespan_client *c)
{
        uint64_t deadline = bench_now_ns() + 60ull * 1000000000ull;
        int r;

        while ((r = sidespan_flush(c, 60000)) == -ENOTCONN && bench_now_ns() < deadline)
                sleep_ms(50);
        return r;
}

static void *conn_main(void *arg)
{
        conn_job *j = arg;
        struct pollfd p = {.fd = j->go_fd, .events = POLLIN};
        sidespan_client *c = NULL;
        sidespan_stats st;
        char byte = 1;

        j->out->open_rc = client_open(j->cfg, j->buffer, &c);
        if (j->out->open_rc == 0)
                j->out->open_rc = connect_wait(c);
        if (write(j->ready_fd, &byte, 1) != 1 || j->out->open_rc < 0)
                goto out;
        while (poll(&p, 1, -1) < 0 && errno == EINTR)
                ;
        for (long i = 0; i < j->runs; i++)
                if (bench_agent_run(c) < 0)
                        j->out->failures++;
        j->out->flush_rc = sidespan_flush(c, FLUSH_TIMEOUT_MS);
        sidespan_stats_init(&st);
        (void)sidespan_client_stats(c, &st);
        j->out->spans = st.spans_started;
        j->out->dropped = st.dropped;
out:
        (void)sidespan_client_close(&c);
        return NULL;
}

/* A forked process: n clients on n threads, slots[0..n). Never returns. */
static void conn_process(conn_job *proto, slot *slots, long n)
{
        pthread_t *t = calloc((size_t)n, sizeof(*t));
        conn_job *j = calloc((size_t)n, sizeof(*j));
        pthread_attr_t attr;
        long started = 0;

        if (proto->cfg->nice)
                (void)!nice((int)proto->cfg->nice);
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256u * 1024u);
        for (; t && j && started < n; started++) {
                j[started] = *proto;
                j[started].out = &slots[started];
                if (pthread_create(&t[started], &attr, conn_main, &j[started]) != 0)
                        break;
        }
        for (long i = started; i < n; i++) { /* never connected: do not keep the parent waiting */
                char byte = 0;

                slots[i].open_rc = -EAGAIN;
                (void)!write(proto->ready_fd, &byte, 1);
        }
        for (long i = 0; i < started; i++)
                pthread_join(t[i], NULL);
        _exit(0);
}

/* Fork the processes; their pids in pids[]. Returns how many were started. */
static long conn_fork(const config *cfg, conn_job *proto, slot *slots, long procs, pid_t *pids,
                      int go_wr, int ready_rd)
{
        long base = 0, k;

        for (k = 0; k < procs; k++) {
                long n = cfg->n / procs + (k < cfg->n % procs);

                pids[k] = fork();
                if (pids[k] < 0)
                        break;
                if (pids[k] == 0) {
                        close(go_wr);
                        close(ready_rd);
                        conn_process(proto, slots + base, n);
                }
                base += n;
        }
        return k;
}

/* How long after a burst its memory is looked at again: three of the daemon's looks at its heap,
 * of which a trim of freed memory takes two (daemon/base/heap.h). */
#define SETTLE_MS 3000u

/* The daemon's RSS SETTLE_MS after the line before. */
static void rss_settled(const config *cfg)
{
        sleep_ms(SETTLE_MS);
        printf("  daemon RSS %u s later: %ld kB\n", SETTLE_MS / 1000, rss_kb(cfg));
}

/* What the parent saw while the clients ran. */
typedef struct conn_watch {
        long rss_idle; /* before the clients connected */
        long rss_max, threads_max;
        uint64_t ingest_ns; /* from go until the last process exited (its flushes confirmed) */
} conn_watch;

/* Reap the processes, sampling the daemon's RSS and threads every 20 ms meanwhile. */
static void conn_reap(const config *cfg, pid_t *pids, long procs, uint64_t t0, conn_watch *w)
{
        long left = procs, v;

        while (left > 0) {
                for (long k = 0; k < procs; k++)
                        if (pids[k] > 0 && waitpid(pids[k], NULL, WNOHANG) == pids[k]) {
                                pids[k] = 0;
                                left--;
                        }
                v = rss_kb(cfg);
                w->rss_max = v > w->rss_max ? v : w->rss_max;
                v = threads(cfg);
                w->threads_max = v > w->threads_max ? v : w->threads_max;
                if (left > 0)
                        sleep_ms(20);
        }
        w->ingest_ns = bench_now_ns() - t0;
}

static double per_s(uint64_t n, uint64_t ns)
{
        return ns ? (double)n * 1e9 / (double)ns : 0;
}

static void conn_report(const config *cfg, long procs, const slot *slots, const bench_dstats *a,
                        const bench_dstats *connected, const bench_dstats *e, const conn_watch *w,
                        uint64_t export_ns, double cpu_s, long rss0, long thr0)
{
        uint64_t spans = 0, dropped = 0, finished = e->spans_finished - a->spans_finished;
        long failed = 0;

        for (long i = 0; i < cfg->n; i++) {
                spans += slots[i].spans;
                dropped += slots[i].dropped;
                failed += slots[i].open_rc < 0 || slots[i].flush_rc < 0 || slots[i].failures;
        }
        printf("connections %ld (%ld processes at nice %ld; %" PRIu64
               " connections active at the start, "
               "the STATS query's included), %" PRIu64 " spans offered\n",
               cfg->n, procs, cfg->nice, connected->connections_active, spans);
        printf("  through the daemon: %9" PRIu64 " spans finished in %.3f s = %8.0f spans/s; "
               "exported %" PRIu64 " (%" PRIu64 " dropped by the exporter) by %.3f s\n",
               finished, (double)w->ingest_ns / 1e9, per_s(finished, w->ingest_ns),
               e->exported - a->exported, e->export_dropped - a->export_dropped,
               (double)export_ns / 1e9);
        printf("  client drops: %" PRIu64 " frames; clients failed: %ld; span messages refused "
               "by the daemon: %" PRIu64 "\n",
               dropped, failed, e->span_errors - a->span_errors);
        if (cpu_s >= 0 && finished)
                printf("  daemon CPU: %.3f s = %.2f us per span = %.0f spans per CPU-second\n",
                       cpu_s, cpu_s * 1e6 / (double)finished, (double)finished / cpu_s);
        printf("  daemon RSS: %ld kB before, %ld kB connected (%.0f bytes per connection), "
               "%ld kB max, %ld kB after export; "
               "threads: %ld connected, %ld max\n",
               w->rss_idle, rss0, (double)(rss0 - w->rss_idle) * 1024.0 / (double)cfg->n,
               w->rss_max, rss_kb(cfg), thr0, w->threads_max);
}

/* Wait until all n clients said they are connected (or gave up). */
static int read_ready(int fd, long n)
{
        char buf[256];

        while (n > 0) {
                ssize_t k = read(fd, buf, n < 256 ? (size_t)n : sizeof(buf));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -EPIPE;
                n -= k;
        }
        return 0;
}

static int mode_connections(const config *cfg)
{
        long procs = cfg->n < cfg->processes ? cfg->n : cfg->processes;
        long runs = cfg->spans / SPANS_PER_RUN / cfg->n, rss0, thr0, started;
        size_t want = (size_t)runs * SPANS_PER_RUN * 512u, buffer;
        pid_t pids[MAX_PROCESSES];
        bench_dstats a, connected, e;
        conn_watch w = {0};
        int go[2], ready[2], r;
        uint64_t t0, done_ns;
        conn_job proto;
        double cpu0;
        slot *slots;

        runs = runs < 1 ? 1 : runs;
        /* Room for a client's whole share, so that it does not drop: 4 to 256 MiB. */
        want = want < (4u << 20) ? 4u << 20 : want;
        want = want > (256u << 20) ? 256u << 20 : want;
        buffer = cfg->buffer_mb ? (size_t)cfg->buffer_mb << 20 : want;
        slots = mmap(NULL, (size_t)cfg->n * sizeof(slot), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (slots == MAP_FAILED || pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
                return -errno;
        r = bench_daemon_stats(cfg->socket, &a);
        if (r < 0)
                return r;
        w.rss_idle = rss_kb(cfg);
        proto = (conn_job){
            .cfg = cfg, .runs = runs, .buffer = buffer, .ready_fd = ready[1], .go_fd = go[0]};
        fflush(stdout);
        started = conn_fork(cfg, &proto, slots, procs, pids, go[1], ready[0]);
        close(ready[1]);
        close(go[0]);
        r = started == procs ? read_ready(ready[0], cfg->n) : -EAGAIN;
        close(ready[0]);
        if (r == 0)
                r = bench_daemon_stats(cfg->socket, &connected);
        rss0 = rss_kb(cfg);
        thr0 = threads(cfg);
        cpu0 = bench_cpu_seconds(cfg->pid);
        t0 = bench_now_ns();
        close(go[1]); /* go */
        conn_reap(cfg, pids, started, t0, &w);
        if (r == 0)
                r = bench_wait_export(cfg->socket, &a, cfg->export_timeout_s, &e, &done_ns);
        if (r == 0) {
                conn_report(cfg, procs, slots, &a, &connected, &e, &w, done_ns - t0,
                            cpu0 >= 0 ? bench_cpu_seconds(cfg->pid) - cpu0 : -1, rss0, thr0);
                rss_settled(cfg);
        }
        munmap(slots, (size_t)cfg->n * sizeof(slot));
        return r;
}

/* ---- open traces ------------------------------------------------------------------------ */

#define OPEN_AGENT   "scale-agent"
#define OPEN_MODEL   "gpt-4o"
#define OPEN_USER    "user-42"
#define OPEN_SESSION "session-1"
#define OPEN_RUN_FMT "run-%07ld" /* 11 bytes up to 9 999 999 */

/* Keys and values of the 5 attributes sidespan_agent_run_start() sets here. */
static size_t open_attr_bytes(void)
{
        return strlen("upsonic.agent.name") + strlen(OPEN_AGENT) + strlen("upsonic.agent.model") +
               strlen(OPEN_MODEL) + strlen("upsonic.run_id") + strlen("run-0000000") +
               strlen("user.id") + strlen(OPEN_USER) + strlen("session.id") + strlen(OPEN_SESSION);
}

/* Poll until spans_open reaches want (or stops moving for BENCH_SETTLE_NS). */
static int wait_open(const config *cfg, uint64_t want, bench_dstats *ret)
{
        uint64_t last = UINT64_MAX, last_change = bench_now_ns();
        int r;

        for (;;) {
                r = bench_daemon_stats(cfg->socket, ret);
                if (r < 0 || ret->spans_open == want)
                        return r;
                if (ret->spans_open != last) {
                        last = ret->spans_open;
                        last_change = bench_now_ns();
                } else if (bench_now_ns() - last_change > BENCH_SETTLE_NS)
                        return 0;
                sleep_ms(20);
        }
}

/* Start n roots on c, flushing every OPEN_FLUSH_EVERY so that the buffer never fills. */
static long open_roots(sidespan_client *c, sidespan_span **spans, long n)
{
        char run_id[32];
        long failed = 0;

        for (long i = 0; i < n; i++) {
                snprintf(run_id, sizeof(run_id), OPEN_RUN_FMT, i);
                if (sidespan_agent_run_start(c, OPEN_AGENT, OPEN_MODEL, run_id, OPEN_USER,
                                             OPEN_SESSION, NULL, &spans[i]) < 0) {
                        spans[i] = NULL;
                        failed++;
                }
                if ((i + 1) % OPEN_FLUSH_EVERY == 0)
                        (void)sidespan_flush(c, FLUSH_TIMEOUT_MS);
        }
        (void)sidespan_flush(c, FLUSH_TIMEOUT_MS);
        return failed;
}

static void end_roots(sidespan_client *c, sidespan_span **spans, long n)
{
        for (long i = 0; i < n; i++) {
                (void)sidespan_span_end(spans[i], SIDESPAN_STATUS_OK, NULL);
                if ((i + 1) % OPEN_FLUSH_EVERY == 0)
                        (void)sidespan_flush(c, FLUSH_TIMEOUT_MS);
        }
        (void)sidespan_flush(c, FLUSH_TIMEOUT_MS);
}

static void open_report(const config *cfg, long failed, const bench_dstats *a,
                        const bench_dstats *b, long rss0, long rss1, double secs, double cpu_s)
{
        uint64_t open = b->spans_open - a->spans_open;
        double per = open ? (double)(rss1 - rss0) * 1024.0 / (double)open : 0;
        size_t attr = open_attr_bytes();

        printf("open traces %ld: %" PRIu64 " spans open in the daemon, %" PRIu64
               " traces open (opened in %.2f s; %ld starts failed on the client, %" PRIu64
               " refused by an open-span limit)\n",
               cfg->n, b->spans_open, b->traces_open, secs, failed,
               b->open_span_limit - a->open_span_limit);
        printf("  daemon RSS: %ld kB before, %ld kB with them open: %.0f bytes per open span; "
               "attributes %zu bytes (5 keys and values; name \"agent.run\" 9 more): "
               "%.0f bytes per open span beyond them\n",
               rss0, rss1, per, attr, per - (double)attr);
        if (cpu_s >= 0 && open)
                printf("  daemon CPU while opening: %.2f s = %.2f us per span start\n", cpu_s,
                       cpu_s * 1e6 / (double)open);
}

static int mode_open(const config *cfg)
{
        size_t buffer = cfg->buffer_mb ? (size_t)cfg->buffer_mb << 20 : 64u << 20;
        sidespan_span **spans = calloc((size_t)cfg->n, sizeof(*spans));
        sidespan_client *c = NULL;
        long rss0, rss1, failed;
        uint64_t t0, done_ns;
        bench_dstats a, b, e;
        double cpu0;
        int r;

        r = spans ? client_open(cfg, buffer, &c) : -ENOMEM;
        if (r == 0)
                r = sidespan_flush(c, 10000);
        if (r == 0)
                r = bench_daemon_stats(cfg->socket, &a);
        if (r < 0)
                goto out;
        sleep_ms(500);
        rss0 = rss_kb(cfg);
        cpu0 = bench_cpu_seconds(cfg->pid);
        t0 = bench_now_ns();
        failed = open_roots(c, spans, cfg->n);
        r = wait_open(cfg, a.spans_open + (uint64_t)(cfg->n - failed), &b);
        if (r < 0)
                goto out;
        rss1 = rss_kb(cfg);
        open_report(cfg, failed, &a, &b, rss0, rss1, (double)(bench_now_ns() - t0) / 1e9,
                    cpu0 >= 0 ? bench_cpu_seconds(cfg->pid) - cpu0 : -1);
        t0 = bench_now_ns();
        end_roots(c, spans, cfg->n);
        r = bench_wait_export(cfg->socket, &a, cfg->export_timeout_s, &e, &done_ns);
        if (r == 0) {
                printf("  all ended: %" PRIu64 " spans open, %" PRIu64 " exported (%" PRIu64
                       " dropped) by %.2f s; daemon RSS %ld kB\n",
                       e.spans_open, e.exported - a.exported, e.export_dropped - a.export_dropped,
                       (double)(done_ns - t0) / 1e9, rss_kb(cfg));
                rss_settled(cfg);
        }
out:
        (void)sidespan_client_close(&c);
        free(spans);
        return r;
}

/* ---- soak ------------------------------------------------------------------------------- */

typedef struct soak_job {
        const config *cfg;
        uint64_t t0, end_ns;
        double runs_per_s;
        uint64_t runs, dropped;
        int failures;
} soak_job;

/* Paced: as many runs as the schedule says are due, then a millisecond's sleep. */
static void *soak_main(void *arg)
{
        soak_job *j = arg;
        sidespan_client *c = NULL;
        sidespan_stats st;
        uint64_t t;

        if (client_open(j->cfg, 64u << 20, &c) < 0) {
                j->failures++;
                return NULL;
        }
        while ((t = bench_now_ns()) < j->end_ns) {
                uint64_t due = (uint64_t)((double)(t - j->t0) / 1e9 * j->runs_per_s);

                while (j->runs < due) {
                        j->runs++;
                        if (bench_agent_run(c) < 0)
                                j->failures++;
                }
                sleep_ms(1);
        }
        (void)sidespan_flush(c, FLUSH_TIMEOUT_MS);
        sidespan_stats_init(&st);
        (void)sidespan_client_stats(c, &st);
        j->dropped = st.dropped;
        (void)sidespan_client_close(&c);
        return NULL;
}

/* Every SAMPLE_S until the end: RSS and the span rate over the last interval. */
static void soak_sample(const config *cfg, uint64_t t0, uint64_t end_ns, long *rss, long *n)
{
        uint64_t prev = 0;
        bench_dstats s;

        printf("  %6s %10s %12s %12s %10s %10s\n", "t (s)", "RSS (kB)", "finished/s", "exported",
               "exp.drop", "open");
        for (uint64_t next = t0; next <= end_ns; next += SAMPLE_S * 1000000000ull) {
                while (bench_now_ns() < next)
                        sleep_ms(50);
                if (bench_daemon_stats(cfg->socket, &s) < 0)
                        break;
                rss[*n] = rss_kb(cfg);
                printf("  %6.0f %10ld %12.0f %12" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
                       (double)(next - t0) / 1e9, rss[*n],
                       *n ? (double)(s.spans_finished - prev) / SAMPLE_S : 0.0, s.exported,
                       s.export_dropped, s.spans_open);
                fflush(stdout);
                prev = s.spans_finished;
                (*n)++;
        }
}

static void soak_report(const config *cfg, const long *rss, long n, const soak_job *j,
                        const bench_dstats *a, const bench_dstats *e, double cpu_s)
{
        uint64_t runs = 0, dropped = 0, finished = e->spans_finished - a->spans_finished;
        long max = 0;

        for (long i = 0; i < n; i++)
                max = rss[i] > max ? rss[i] : max;
        for (int i = 0; i < SOAK_THREADS; i++) {
                runs += j[i].runs;
                dropped += j[i].dropped;
        }
        printf("  RSS: first %ld kB, last %ld kB, max %ld kB\n", n ? rss[0] : -1,
               n ? rss[n - 1] : -1, max);
        printf("  offered %" PRIu64 " spans (%.0f spans/s); daemon finished %" PRIu64
               ", exported %" PRIu64 ", exporter dropped %" PRIu64 "; client drops %" PRIu64
               " frames\n",
               runs * SPANS_PER_RUN, (double)(runs * SPANS_PER_RUN) / (double)cfg->n, finished,
               e->exported - a->exported, e->export_dropped - a->export_dropped, dropped);
        if (cpu_s >= 0 && finished)
                printf("  daemon CPU: %.1f s = %.1f%% of one core, %.2f us per span\n", cpu_s,
                       cpu_s * 100.0 / (double)cfg->n, cpu_s * 1e6 / (double)finished);
}

static int mode_soak(const config *cfg)
{
        long *rss = calloc((size_t)(cfg->n / SAMPLE_S + 2), sizeof(*rss)), n = 0;
        soak_job j[SOAK_THREADS];
        pthread_t t[SOAK_THREADS];
        uint64_t t0, done_ns;
        int started = 0, r;
        bench_dstats a, e;
        double cpu0;

        r = rss ? bench_daemon_stats(cfg->socket, &a) : -ENOMEM;
        if (r < 0)
                goto out;
        printf("soak %ld s at %ld spans/s (agent-shaped runs, %d paced clients)\n", cfg->n,
               cfg->rate, SOAK_THREADS);
        cpu0 = bench_cpu_seconds(cfg->pid);
        t0 = bench_now_ns();
        for (; started < SOAK_THREADS; started++) {
                j[started] = (soak_job){
                    .cfg = cfg,
                    .t0 = t0,
                    .end_ns = t0 + (uint64_t)cfg->n * 1000000000ull,
                    .runs_per_s = (double)cfg->rate / SPANS_PER_RUN / SOAK_THREADS,
                };
                if (pthread_create(&t[started], NULL, soak_main, &j[started]) != 0)
                        break;
        }
        soak_sample(cfg, t0, t0 + (uint64_t)cfg->n * 1000000000ull, rss, &n);
        for (int i = 0; i < started; i++)
                pthread_join(t[i], NULL);
        r = bench_wait_export(cfg->socket, &a, cfg->export_timeout_s, &e, &done_ns);
        if (r == 0)
                soak_report(cfg, rss, n, j, &a, &e,
                            cpu0 >= 0 ? bench_cpu_seconds(cfg->pid) - cpu0 : -1);
out:
        free(rss);
        return r;
}

/* ---- main ------------------------------------------------------------------------------- */

static void usage(FILE *f, const char *argv0)
{
        fprintf(
            f,
            "Usage: %s --socket PATH --pid PID MODE [N]\n"
            "Memory and scaling of a running sidespand (bench/bench-scale.sh starts it).\n"
            "  idle                  RSS and threads: idle, after one client came and went,\n"
            "                        and 2 s after one agent run was exported\n"
            "  connections N         N concurrent clients emitting agent runs (--spans in all)\n"
            "  open N                N traces held open, then ended\n"
            "  soak SECONDS          --rate spans/s of agent runs, RSS every %d s\n"
            "  -s, --socket PATH     the daemon's socket (required)\n"
            "  -p, --pid PID         the daemon's process (required)\n"
            "      --spans N         connections: spans in total (default 600000)\n"
            "      --processes N     connections: forked client processes at most (default 8)\n"
            "      --buffer-mb N     client buffer (default: by mode)\n"
            "      --nice N          connections: nice the client processes (default 0)\n"
            "      --rate N          soak: spans/s (default 100000)\n"
            "      --export-timeout S longest wait for the exporter (default 300)\n",
            argv0, SAMPLE_S);
}

static int parse_mode(int argc, char **argv, config *cfg)
{
        if (optind >= argc)
                return -EINVAL;
        cfg->mode = argv[optind++];
        if (strcmp(cfg->mode, "idle") == 0)
                return optind == argc ? 0 : -EINVAL;
        if (optind + 1 != argc)
                return -EINVAL;
        cfg->n = strtol(argv[optind], NULL, 10);
        if (strcmp(cfg->mode, "connections") == 0)
                return cfg->n >= 1 && cfg->n <= MAX_CONNECTIONS ? 0 : -EINVAL;
        if (strcmp(cfg->mode, "open") == 0 || strcmp(cfg->mode, "soak") == 0)
                return cfg->n >= 1 && cfg->n <= 100000000 ? 0 : -EINVAL;
        return -EINVAL;
}

static int parse_args(int argc, char **argv, config *cfg)
{
        static const struct option opts[] = {
            {"socket", required_argument, NULL, 's'},
            {"pid", required_argument, NULL, 'p'},
            {"spans", required_argument, NULL, 'n'},
            {"processes", required_argument, NULL, 'P'},
            {"buffer-mb", required_argument, NULL, 'b'},
            {"rate", required_argument, NULL, 'r'},
            {"nice", required_argument, NULL, 'N'},
            {"export-timeout", required_argument, NULL, 'T'},
            {"help", no_argument, NULL, 'h'},
            {0},
        };
        int c;

        while ((c = getopt_long(argc, argv, "+s:p:h", opts, NULL)) != -1) {
                if (c == 's')
                        cfg->socket = optarg;
                else if (c == 'p')
                        cfg->pid = strtol(optarg, NULL, 10);
                else if (c == 'n')
                        cfg->spans = strtol(optarg, NULL, 10);
                else if (c == 'P')
                        cfg->processes = strtol(optarg, NULL, 10);
                else if (c == 'b')
                        cfg->buffer_mb = strtol(optarg, NULL, 10);
                else if (c == 'r')
                        cfg->rate = strtol(optarg, NULL, 10);
                else if (c == 'N')
                        cfg->nice = strtol(optarg, NULL, 10);
                else if (c == 'T')
                        cfg->export_timeout_s = strtol(optarg, NULL, 10);
                else if (c == 'h') {
                        usage(stdout, argv[0]);
                        exit(0);
                } else
                        return -EINVAL;
        }
        if (!cfg->socket || cfg->pid < 1 || cfg->spans < 1 || cfg->processes < 1 ||
            cfg->processes > MAX_PROCESSES || cfg->buffer_mb < 0 || cfg->buffer_mb > 4096 ||
            cfg->rate < SPANS_PER_RUN || cfg->nice < 0 || cfg->nice > 19 ||
            cfg->export_timeout_s < 1)
                return -EINVAL;
        return parse_mode(argc, argv, cfg);
}

int main(int argc, char **argv)
{
        config cfg = {.spans = 600000, .processes = 8, .rate = 100000, .export_timeout_s = 300};
        bench_dstats s;
        int r;

        if (parse_args(argc, argv, &cfg) < 0) {
                usage(stderr, argv[0]);
                return 2;
        }
        bench_agent_init();
        r = bench_daemon_stats(cfg.socket, &s);
        if (r < 0) {
                fprintf(stderr, "bench-scale: no daemon on %s: %s\n", cfg.socket, strerror(-r));
                return 1;
        }
        if (strcmp(cfg.mode, "idle") == 0)
                r = mode_idle(&cfg);
        else if (strcmp(cfg.mode, "connections") == 0)
                r = mode_connections(&cfg);
        else if (strcmp(cfg.mode, "open") == 0)
                r = mode_open(&cfg);
        else
                r = mode_soak(&cfg);
        if (r < 0)
                fprintf(stderr, "bench-scale %s: %s\n", cfg.mode, strerror(-r));
        return r < 0 ? 1 : 0;
}
