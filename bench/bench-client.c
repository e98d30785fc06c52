/* SPDX-License-Identifier: MIT */
/*
 * bench-client: what libsidespan costs the thread that calls it. One span is
 * a root span started, given 5 attributes and ended (two frames). Cases:
 *   (a) no daemon listening: the buffer fills, then frames are dropped;
 *   (b) a running sidespand on --socket PATH;
 *   (c) sample rate 0: nothing is encoded or sent;
 *   (d) --threads threads on one client, with the daemon when one is given.
 * With --agent every span is one of the agent-shaped run of TRACE-MODEL.md
 * instead, in turn (bench_agent_span() of agent-run.c, the workload every
 * benchmark shares: 2 chat spans of 30 with 1 KiB of JSON in each of
 * gen_ai.input.messages and gen_ai.output.messages); each is a root here, so
 * that its cost stands alone.
 * Every span is timed on its own (one clock_gettime per span, whose cost is
 * printed first and is included in the figures) for the percentiles.
 * A benchmark, not a test: it prints figures and asserts nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent-run.h"
#include "sidespan.h"

#define FLUSH_TIMEOUT_MS 60000
#define MAX_THREADS      64
#define ROUNDS           5 /* per case by default; the median round is printed */
#define MAX_ROUNDS       25
#define CG_ITERATIONS    3000 /* --matrix: callgrind runs of N and 3N spans per thread */

typedef struct config {
        const char *socket;
        const char *one_case;  /* --case: "agent" or "small", nothing else in the process */
        const char *sidespand; /* --matrix: the daemon to start for the daemon-up cells */
        long iterations;
        long threads;
        long rounds;
        bool agent;
        bool matrix;
} config;

static bool agent_shaped; /* --agent: the spans of the agent-shaped run, in turn */

/* One timed loop: iterations spans on one thread, each one's duration in lat[]. */
typedef struct run {
        sidespan_client *client;
        long iterations;
        uint64_t *lat;
        uint64_t elapsed_ns;
        int failures;
} run;

/* A case's figures. */
typedef struct result {
        double ns_per_span;
        uint64_t p50, p99, max;
        double spans_per_s;
        uint64_t frames_queued;
        uint64_t dropped;
        int flush_rc;
} result;

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* noinline: callgrind counts the calling thread's instructions inside it
 * (--toggle-collect=one_span), the sender thread and the timing left out. */
__attribute__((noinline)) static int one_span(sidespan_client *c, const sidespan_span *parent,
                                              long i)
{
        sidespan_span *s;
        int r;

        if (agent_shaped)
                return bench_agent_span(c, parent, i);
        r = sidespan_span_start(c, NULL, "bench.span", SIDESPAN_KIND_INTERNAL, &s);
        if (r < 0)
                return r;
        (void)sidespan_span_set_str(s, "gen_ai.operation.name", "chat");
        (void)sidespan_span_set_str(s, "gen_ai.request.model", "gpt-4o");
        (void)sidespan_span_set_int(s, "gen_ai.usage.input_tokens", 412 + i % 7);
        (void)sidespan_span_set_double(s, "gen_ai.request.temperature", 0.2);
        (void)sidespan_span_set_bool(s, "upsonic.tool.success", true);
        return sidespan_span_end(s, SIDESPAN_STATUS_OK, NULL);
}

/* The parent the agent-shaped spans start below, open for a whole loop and started outside
 * its timing (NULL for small spans, which are roots). */
static sidespan_span *parent_start(sidespan_client *c)
{
        sidespan_span *p = NULL;

        if (agent_shaped)
                (void)sidespan_span_start(c, NULL, "agent.run", SIDESPAN_KIND_INTERNAL, &p);
        return p;
}

static void *run_main(void *arg)
{
        run *w = arg;
        sidespan_span *parent = parent_start(w->client);
        uint64_t t0 = now_ns(), prev = t0, t;

        for (long i = 0; i < w->iterations; i++) {
                if (one_span(w->client, parent, i) < 0)
                        w->failures++;
                t = now_ns();
                w->lat[i] = t - prev;
                prev = t;
        }
        w->elapsed_ns = prev - t0;
        (void)sidespan_span_end(parent, SIDESPAN_STATUS_OK, NULL);
        return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return (x > y) - (x < y);
}

/* The cost of the clock itself, which every per-span figure includes once. */
static double clock_cost_ns(void)
{
        const int n = 1000000;
        uint64_t t0 = now_ns();

        for (int i = 0; i < n; i++)
                (void)now_ns();
        return (double)(now_ns() - t0) / n;
}

static int open_client(const char *socket, double rate, sidespan_client **ret)
{
        sidespan_options o;

        sidespan_options_init(&o);
        o.socket_path = socket;
        o.service_name = "bench-client";
        o.sample_rate = rate;
        o.flush_on_exit = false;
        o.exit_flush_timeout_ms = 100;
        return sidespan_client_open(&o, ret);
}

/* Run nthreads loops of iterations spans each on c; fills res (all but the client counters). */
static int run_threads(sidespan_client *c, long iterations, long nthreads, result *res)
{
        size_t total = (size_t)iterations * (size_t)nthreads;
        uint64_t *lat = malloc(total * sizeof(*lat)), t0, wall;
        run w[MAX_THREADS];
        pthread_t t[MAX_THREADS];
        double per_span = 0;
        long started = 0;
        int failures = 0;

        if (!lat)
                return -ENOMEM;
        for (long i = 0; i < nthreads; i++)
                w[i] = (run){.client = c, .iterations = iterations, .lat = lat + i * iterations};
        t0 = now_ns();
        for (; started < nthreads; started++)
                if (pthread_create(&t[started], NULL, run_main, &w[started]) != 0)
                        break;
        for (long i = 0; i < started; i++)
                pthread_join(t[i], NULL);
        wall = now_ns() - t0;
        for (long i = 0; i < started; i++) {
                per_span += (double)w[i].elapsed_ns / (double)iterations / (double)started;
                failures += w[i].failures;
        }
        total = (size_t)iterations * (size_t)started;
        qsort(lat, total, sizeof(*lat), cmp_u64);
        *res = (result){.ns_per_span = per_span,
                        .p50 = total ? lat[total / 2] : 0,
                        .p99 = total ? lat[total * 99 / 100] : 0,
                        .max = total ? lat[total - 1] : 0,
                        .spans_per_s = (double)total * 1e9 / (double)wall};
        free(lat);
        return started == nthreads && failures == 0 ? 0 : -EIO;
}

/* One timed round on c; frames and drops are those of the round (flushed when a daemon
 * listens, so the next round starts with an empty buffer). */
static int run_round(sidespan_client *c, bool daemon, long iterations, long nthreads, result *ret)
{
        sidespan_stats before, after;
        int r;

        sidespan_stats_init(&before);
        sidespan_stats_init(&after);
        (void)sidespan_client_stats(c, &before);
        r = run_threads(c, iterations, nthreads, ret);
        ret->flush_rc = daemon ? sidespan_flush(c, FLUSH_TIMEOUT_MS) : 0;
        (void)sidespan_client_stats(c, &after);
        ret->frames_queued = after.frames_queued - before.frames_queued;
        ret->dropped = after.dropped - before.dropped;
        return r;
}

static int cmp_rounds(const void *a, const void *b)
{
        double x = ((const result *)a)->ns_per_span, y = ((const result *)b)->ns_per_span;

        return (x > y) - (x < y);
}

/* One case: a fresh client, a warm-up of a tenth of the spans, then cfg->rounds timed rounds;
 * *ret is the median round, ret_min and ret_max the extremes of ns/span. */
static int run_case(const char *socket, double rate, bool daemon, const config *cfg, long nthreads,
                    result *ret, double *ret_min, double *ret_max)
{
        sidespan_client *c = NULL;
        sidespan_span *parent;
        result res[MAX_ROUNDS];
        long rounds = cfg->rounds;
        int r;

        r = open_client(socket, rate, &c);
        if (r < 0)
                return r;
        parent = parent_start(c);
        for (long i = 0; i < cfg->iterations / 10; i++)
                (void)one_span(c, parent, i);
        (void)sidespan_span_end(parent, SIDESPAN_STATUS_OK, NULL);
        if (daemon)
                (void)sidespan_flush(c, FLUSH_TIMEOUT_MS);
        for (long i = 0; i < rounds && r == 0; i++)
                r = run_round(c, daemon, cfg->iterations, nthreads, &res[i]);
        (void)sidespan_client_close(&c);
        if (r < 0)
                return r;
        qsort(res, (size_t)rounds, sizeof(res[0]), cmp_rounds);
        *ret = res[rounds / 2];
        *ret_min = res[0].ns_per_span;
        *ret_max = res[rounds - 1].ns_per_span;
        return 0;
}

/* Run one case and print its row; false when it failed. */
static bool row(const char *label, const char *socket, double rate, bool daemon, const config *cfg,
                long nthreads)
{
        double lo = 0, hi = 0;
        char range[32];
        result res;
        int r = run_case(socket, rate, daemon, cfg, nthreads, &res, &lo, &hi);

        if (r < 0) {
                printf("%-26s failed: %s\n", label, sidespan_strerror(r));
                return false;
        }
        snprintf(range, sizeof(range), "%.0f-%.0f", lo, hi);
        printf("%-26s %7.0f %11s %6" PRIu64 " %6" PRIu64 " %7.1f %10.0f %8" PRIu64 " %8" PRIu64
               "%s\n",
               label, res.ns_per_span, range, res.p50, res.p99, (double)res.max / 1000.0,
               res.spans_per_s, res.frames_queued, res.dropped,
               res.flush_rc < 0 ? "  (flush: not confirmed)" : "");
        return true;
}

static void usage(FILE *f, const char *argv0)
{
        fprintf(f,
                "Usage: %s [--socket PATH] [--iterations N] [--threads N] [--agent]\n"
                "       %s --case agent|small [--socket PATH] [--iterations N] [--threads N]\n"
                "          [--rounds N]\n"
                "       %s --matrix --sidespand PATH\n"
                "Caller-side cost of libsidespan per span (start + 5 attributes + end).\n"
                "      --agent           the spans of the agent-shaped 30-span run instead\n"
                "  -s, --socket PATH     a running sidespand (without it, case (b) is skipped\n"
                "                        and (c) and (d) run without a daemon)\n"
                "  -n, --iterations N    spans per case and thread (default 200000)\n"
                "  -t, --threads N       threads of case (d) (default 4; 1 with --case)\n"
                "      --case CASE       one case alone, nothing else in the process (for\n"
                "                        callgrind): agent-shaped or small spans, daemon down\n"
                "                        unless --socket; prints one line of figures\n"
                "      --rounds N        timed rounds of --case (default 5)\n"
                "      --matrix          every --case (agent, small; 1 and 4 threads; daemon\n"
                "                        down and up): ns p50/p99/max natively, instructions per\n"
                "                        span on the calling threads under callgrind; starts\n"
                "                        --sidespand PATH on a temporary socket\n",
                argv0, argv0, argv0);
}

static int parse_args(int argc, char **argv, config *cfg)
{
        static const struct option opts[] = {
            {"socket", required_argument, NULL, 's'},  {"iterations", required_argument, NULL, 'n'},
            {"threads", required_argument, NULL, 't'}, {"agent", no_argument, NULL, 'a'},
            {"case", required_argument, NULL, 'c'},    {"rounds", required_argument, NULL, 'r'},
            {"matrix", no_argument, NULL, 'm'},        {"sidespand", required_argument, NULL, 'd'},
            {"help", no_argument, NULL, 'h'},          {0},
        };
        bool threads_set = false;
        int c;

        while ((c = getopt_long(argc, argv, "s:n:t:h", opts, NULL)) != -1) {
                if (c == 's')
                        cfg->socket = optarg;
                else if (c == 'n')
                        cfg->iterations = strtol(optarg, NULL, 10);
                else if (c == 't') {
                        cfg->threads = strtol(optarg, NULL, 10);
                        threads_set = true;
                } else if (c == 'a')
                        cfg->agent = true;
                else if (c == 'c')
                        cfg->one_case = optarg;
                else if (c == 'r')
                        cfg->rounds = strtol(optarg, NULL, 10);
                else if (c == 'm')
                        cfg->matrix = true;
                else if (c == 'd')
                        cfg->sidespand = optarg;
                else if (c == 'h') {
                        usage(stdout, argv[0]);
                        exit(0);
                } else
                        return -EINVAL;
        }
        if (cfg->one_case) {
                if (strcmp(cfg->one_case, "agent") != 0 && strcmp(cfg->one_case, "small") != 0)
                        return -EINVAL;
                cfg->agent = strcmp(cfg->one_case, "agent") == 0;
                if (!threads_set)
                        cfg->threads = 1;
        }
        if (optind < argc || cfg->iterations < 10 || cfg->threads < 1 ||
            cfg->threads > MAX_THREADS || cfg->rounds < 1 || cfg->rounds > MAX_ROUNDS ||
            (cfg->matrix && !cfg->sidespand))
                return -EINVAL;
        return 0;
}

/* ---- --case: one case alone ----------------------------------------------------------- */

/*
 * The line --matrix parses: the median round's figures and the number of spans one_span()
 * made in this process (warm-up included), which callgrind's difference divides by.
 */
static int one_case(const config *cfg)
{
        bool daemon = cfg->socket != NULL;
        long spans = cfg->iterations / 10 + cfg->rounds * cfg->iterations * cfg->threads;
        double lo = 0, hi = 0;
        result res;
        int r;

        r = run_case(daemon ? cfg->socket : "/nonexistent/sidespan-bench.sock", 1.0, daemon, cfg,
                     cfg->threads, &res, &lo, &hi);
        if (r < 0) {
                fprintf(stderr, "case %s failed: %s\n", cfg->one_case, sidespan_strerror(r));
                return 1;
        }
        printf("case=%s threads=%ld daemon=%s ns_mean=%.0f p50=%" PRIu64 " p99=%" PRIu64
               " max=%" PRIu64 " spans=%ld dropped=%" PRIu64 "\n",
               cfg->one_case, cfg->threads, daemon ? "up" : "down", res.ns_per_span, res.p50,
               res.p99, res.max, spans, res.dropped);
        return 0;
}

/* ---- --matrix: every case, timed and counted ------------------------------------------ */

static pid_t daemon_pid = -1;
static char tmp_dir[64];
static char daemon_sock[128];

static void stop_daemon(void)
{
        if (daemon_pid > 0) {
                kill(daemon_pid, SIGTERM);
                waitpid(daemon_pid, NULL, 0);
                daemon_pid = -1;
        }
        if (daemon_sock[0])
                unlink(daemon_sock);
        if (tmp_dir[0])
                rmdir(tmp_dir);
}

static void on_signal(int sig)
{
        if (daemon_pid > 0)
                kill(daemon_pid, SIGTERM);
        signal(sig, SIG_DFL);
        raise(sig);
}

/* sidespand --exporter file --file /dev/null on a socket in a temporary directory. */
static int start_daemon(const char *path)
{
        struct stat st;

        snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/bench-client.XXXXXX");
        if (!mkdtemp(tmp_dir)) {
                tmp_dir[0] = '\0';
                return -errno;
        }
        snprintf(daemon_sock, sizeof(daemon_sock), "%s/sidespan.sock", tmp_dir);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        daemon_pid = fork();
        if (daemon_pid < 0)
                return -errno;
        if (daemon_pid == 0) {
                execl(path, path, "--socket", daemon_sock, "--exporter", "file", "--file",
                      "/dev/null", "--log-level", "warning", (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 200; i++) {
                if (stat(daemon_sock, &st) == 0)
                        return 0;
                if (waitpid(daemon_pid, NULL, WNOHANG) == daemon_pid) {
                        daemon_pid = -1;
                        return -ECHILD;
                }
                usleep(50000);
        }
        return -ETIMEDOUT;
}

/* Run argv with its standard output into out (NUL-terminated); 0 when it exited with 0. */
static int run_child(char *const argv[], char *out, size_t size)
{
        size_t n = 0;
        int fd[2], status;
        ssize_t k;
        pid_t pid;

        if (pipe(fd) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                dup2(fd[1], STDOUT_FILENO);
                close(fd[0]);
                close(fd[1]);
                execv(argv[0], argv);
                _exit(127);
        }
        close(fd[1]);
        while (n + 1 < size && (k = read(fd[0], out + n, size - 1 - n)) > 0)
                n += (size_t)k;
        out[n] = '\0';
        close(fd[0]);
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* The figures of one --case child: timed natively (cg NULL), or under callgrind writing its
 * counts to cg. */
static int run_one(const char *which, long threads, bool up, long iterations, long rounds,
                   const char *cg, char *out, size_t size)
{
        char n[24], t[24], r[24], cgout[200], self[4096];
        char *argv[24];
        int k = 0;
        ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);

        if (len < 0)
                return -errno;
        self[len] = '\0';
        snprintf(n, sizeof(n), "%ld", iterations);
        snprintf(t, sizeof(t), "%ld", threads);
        snprintf(r, sizeof(r), "%ld", rounds);
        if (cg) {
                snprintf(cgout, sizeof(cgout), "--callgrind-out-file=%s", cg);
                argv[k++] = "/usr/bin/valgrind";
                argv[k++] = "--tool=callgrind";
                argv[k++] = "--quiet";
                argv[k++] = cgout;
                argv[k++] = "--collect-atstart=no";
                argv[k++] = "--toggle-collect=one_span";
        }
        argv[k++] = self;
        argv[k++] = "--case";
        argv[k++] = (char *)which;
        argv[k++] = "--iterations";
        argv[k++] = n;
        argv[k++] = "--threads";
        argv[k++] = t;
        argv[k++] = "--rounds";
        argv[k++] = r;
        if (up) {
                argv[k++] = "--socket";
                argv[k++] = daemon_sock;
        }
        argv[k] = NULL;
        return run_child(argv, out, size);
}

/* The instructions callgrind counted (its "summary:" line), or -1. */
static double callgrind_total(const char *file)
{
        char line[512];
        double v = -1;
        FILE *f = fopen(file, "r");

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "summary:", 8) == 0 || strncmp(line, "totals:", 7) == 0)
                        v = strtod(line + (line[0] == 's' ? 8 : 7), NULL);
        fclose(f);
        return v;
}

/* Instructions per span on the calling threads: callgrind counts inside one_span() only, in
 * a run of N and one of 3N spans per thread; the difference leaves out every one-off cost
 * (first buffers, the sender's start) and is divided by the spans between the two. */
static double instructions_per_span(const char *which, long threads, bool up)
{
        long n = CG_ITERATIONS, spans[2];
        double total[2];
        char out[512], file[160];

        for (int i = 0; i < 2; i++) {
                long iters = i ? 3 * n : n;
                const char *p;

                snprintf(file, sizeof(file), "%s/callgrind.out", tmp_dir);
                if (run_one(which, threads, up, iters, 1, file, out, sizeof(out)) < 0)
                        return -1;
                total[i] = callgrind_total(file);
                unlink(file);
                p = strstr(out, "spans=");
                if (!p || total[i] < 0)
                        return -1;
                spans[i] = strtol(p + 6, NULL, 10);
        }
        return (total[1] - total[0]) / (double)(spans[1] - spans[0]);
}

static uint64_t field(const char *out, const char *name)
{
        const char *p = strstr(out, name);

        return p ? strtoull(p + strlen(name), NULL, 10) : 0;
}

static int matrix(const config *cfg)
{
        static const char *const cases[] = {"agent", "small"};
        static const long threads[] = {1, 4};
        bool ok = true;
        int r;

        r = start_daemon(cfg->sidespand);
        if (r < 0) {
                fprintf(stderr, "sidespand did not start: %s\n", sidespan_strerror(r));
                stop_daemon();
                return 1;
        }
        printf("libsidespan %s: every case in a process of its own; ns: the median round\n"
               "(daemon down: 5 rounds of 60000 agent or 200000 small spans per thread; up: 25\n"
               "rounds of 2000 agent or 6000 small spans per thread, each flushed, so that the\n"
               "buffer never fills and no frame is dropped), clock included;\n"
               "instr/span: callgrind inside the emitting function on the calling threads,\n"
               "runs of %d and %d spans per thread differenced. Daemon up: %s --exporter file\n"
               "--file /dev/null.\n\n",
               sidespan_version(), CG_ITERATIONS, 3 * CG_ITERATIONS, cfg->sidespand);
        printf("%-6s %7s %6s %8s %6s %6s %8s %10s %8s\n", "case", "threads", "daemon", "ns/span",
               "p50", "p99", "max ns", "instr/span", "dropped");
        for (size_t ci = 0; ci < 2; ci++)
                for (size_t ti = 0; ti < 2; ti++)
                        for (int up = 0; up < 2; up++) {
                                /* Up: rounds the buffer holds, so that what is timed is
                                 * the path of a span sent, not of one dropped. */
                                long iters =
                                    up ? (ci == 0 ? 2000 : 6000) : (ci == 0 ? 60000 : 200000);
                                long rounds = up ? MAX_ROUNDS : ROUNDS;
                                char out[512];
                                double ins;

                                if (run_one(cases[ci], threads[ti], up, iters, rounds, NULL, out,
                                            sizeof(out)) < 0) {
                                        printf("%-6s %7ld %6s failed\n", cases[ci], threads[ti],
                                               up ? "up" : "down");
                                        ok = false;
                                        continue;
                                }
                                ins = instructions_per_span(cases[ci], threads[ti], up);
                                printf("%-6s %7ld %6s %8" PRIu64 " %6" PRIu64 " %6" PRIu64
                                       " %8" PRIu64 " %10.0f %8" PRIu64 "\n",
                                       cases[ci], threads[ti], up ? "up" : "down",
                                       field(out, "ns_mean="), field(out, "p50="),
                                       field(out, "p99="), field(out, "max="), ins,
                                       field(out, "dropped="));
                                fflush(stdout);
                        }
        stop_daemon();
        printf("\nagent: the 30 spans of TRACE-MODEL.md's run in turn (2 chat spans with 1 KiB in\n"
               "each of gen_ai.input.messages and gen_ai.output.messages); small: start + 5\n"
               "small attributes + end. dropped: frames the full buffer refused in the median\n"
               "round (daemon down: all once the buffer is full).\n");
        return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
        config cfg = {.iterations = 200000, .threads = 4, .rounds = ROUNDS};
        const char *absent = "/nonexistent/sidespan-bench.sock";
        bool daemon;
        char label[64];
        bool ok = true;

        if (parse_args(argc, argv, &cfg) < 0) {
                usage(stderr, argv[0]);
                return 2;
        }
        daemon = cfg.socket != NULL;
        agent_shaped = cfg.agent;
        bench_agent_init();
        if (cfg.one_case)
                return one_case(&cfg);
        if (cfg.matrix)
                return matrix(&cfg);
        printf("libsidespan %s, span = %s; per case %d rounds of %ld\n"
               "spans per thread, figures of the median round (by ns/span)\n",
               sidespan_version(),
               agent_shaped ? "the agent-shaped 30-span run's, in turn (2 of 30 with 2 KiB)"
                            : "start + 5 attributes + end",
               ROUNDS, cfg.iterations);
        printf("clock_gettime: %.1f ns per call (included once in every per-span figure)\n\n",
               clock_cost_ns());
        printf("%-26s %7s %11s %6s %6s %7s %10s %8s %8s\n", "case", "ns/span", "(min-max)", "p50",
               "p99", "max us", "spans/s", "frames", "dropped");
        ok &= row("(a) no daemon", absent, 1.0, false, &cfg, 1);
        if (daemon)
                ok &= row("(b) sidespand running", cfg.socket, 1.0, true, &cfg, 1);
        ok &= row("(c) unsampled (rate 0)", daemon ? cfg.socket : absent, 0.0, daemon, &cfg, 1);
        snprintf(label, sizeof(label), "(d) %ld threads, %s", cfg.threads,
                 daemon ? "sidespand" : "no daemon");
        ok &= row(label, daemon ? cfg.socket : absent, 1.0, daemon, &cfg, cfg.threads);
        printf("\nns/span: mean per span on one calling thread (min-max over the rounds); p50,\n"
               "p99 (ns) and max (us) of single spans; spans/s: all threads together.\n"
               "frames: messages queued (2 per sampled span); dropped: frames lost because the\n"
               "buffer (4 MiB) was full: without a daemon it is full after the warm-up, and a\n"
               "loop this tight outruns any daemon, so (b) and (d) drop too.\n");
        return ok ? 0 : 1;
}
