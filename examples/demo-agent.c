/* SPDX-License-Identifier: MIT */
/*
 * sidespan-demo-agent: emits realistic agent runs through libsidespan, shaped
 * exactly as the Upsonic trace model (TRACE-MODEL.md): per run one agent.run
 * root, one pipeline.execute, the 24 pipeline steps, and under the model
 * execution step two chat spans and two tool spans: 30 spans.
 *
 * Tracing is on by default here (it is a demo); the environment still
 * configures it as for any agent (SIDESPAN_SOCKET, UPSONIC_OTEL_SERVICE_NAME,
 * UPSONIC_OTEL_SAMPLE_RATE, OTEL_SDK_DISABLED=true, ...).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent-run.h"
#include "sidespan.h"

typedef struct config {
        long runs;
        long threads;
        const char *socket;
        const char *service;
        const char *model;
        bool streaming;
        bool quiet;
        long latency_ms;
        long flush_timeout_ms;
} config;

typedef struct worker {
        const config *cfg;
        sidespan_client *client;
        atomic_long *next_run;
        pthread_mutex_t *out_lock;
        int failures;
} worker;

static int agent_run(worker *w, long n)
{
        const agent_run_config run = {.client = w->client,
                                      .agent = "demo-agent",
                                      .model = w->cfg->model,
                                      .streaming = w->cfg->streaming,
                                      .latency_ms = w->cfg->latency_ms};
        char tp[64];
        int r = agent_run_emit(&run, n, tp, sizeof(tp));

        if (!w->cfg->quiet) {
                pthread_mutex_lock(w->out_lock);
                printf("run %ld traceparent %s\n", n, tp);
                pthread_mutex_unlock(w->out_lock);
        }
        return r;
}

static void *worker_main(void *arg)
{
        worker *w = arg;
        long n;

        while ((n = atomic_fetch_add(w->next_run, 1)) < w->cfg->runs)
                if (agent_run(w, n + 1) < 0)
                        w->failures++;
        return NULL;
}

static void usage(FILE *f, const char *argv0)
{
        fprintf(
            f,
            "Usage: %s [OPTIONS]\n"
            "Emit realistic agent runs (30 spans each) through libsidespan.\n\n"
            "  -n, --runs N            agent runs to emit (default 1)\n"
            "  -t, --threads N         threads emitting runs concurrently (default 1)\n"
            "  -s, --socket PATH       sidespand socket (default $SIDESPAN_SOCKET, else the\n"
            "                          system or $XDG_RUNTIME_DIR socket)\n"
            "  -S, --service NAME      service.name (default $UPSONIC_OTEL_SERVICE_NAME,\n"
            "                          $OTEL_SERVICE_NAME, else \"upsonic\")\n"
            "  -m, --model NAME        model name (default gpt-4o)\n"
            "      --streaming         streaming runs (stream_* step names)\n"
            "  -l, --latency MS        simulated model latency per call (default 0)\n"
            "  -T, --flush-timeout MS  wait this long for the daemon at the end (default 5000)\n"
            "  -q, --quiet             no line per run\n"
            "  -h, --help              this text\n\n"
            "Tracing is on unless OTEL_SDK_DISABLED=true. Exits 0 even without a daemon\n"
            "(and says that nothing was delivered).\n",
            argv0);
}

static int parse_long(const char *s, long min, long max, long *ret)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* One option into cfg; -EINVAL for a bad value or an unknown option. */
static int apply_option(int c, const char *arg, const char *argv0, config *cfg)
{
        switch (c) {
        case 'n':
                return parse_long(arg, 0, 100000000, &cfg->runs);
        case 't':
                return parse_long(arg, 1, 1024, &cfg->threads);
        case 'l':
                return parse_long(arg, 0, 60000, &cfg->latency_ms);
        case 'T':
                return parse_long(arg, 0, 3600000, &cfg->flush_timeout_ms);
        case 's':
                cfg->socket = arg;
                return 0;
        case 'S':
                cfg->service = arg;
                return 0;
        case 'm':
                cfg->model = arg;
                return 0;
        case 'x':
                cfg->streaming = true;
                return 0;
        case 'q':
                cfg->quiet = true;
                return 0;
        case 'h':
                usage(stdout, argv0);
                exit(0);
        default:
                return -EINVAL;
        }
}

static int parse_args(int argc, char **argv, config *cfg)
{
        static const struct option opts[] = {
            {"runs", required_argument, NULL, 'n'},
            {"threads", required_argument, NULL, 't'},
            {"socket", required_argument, NULL, 's'},
            {"service", required_argument, NULL, 'S'},
            {"model", required_argument, NULL, 'm'},
            {"streaming", no_argument, NULL, 'x'},
            {"latency", required_argument, NULL, 'l'},
            {"flush-timeout", required_argument, NULL, 'T'},
            {"quiet", no_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},
            {0},
        };
        int c, r = 0;

        while (r == 0 && (c = getopt_long(argc, argv, "n:t:s:S:m:l:T:qh", opts, NULL)) != -1)
                r = apply_option(c, optarg, argv[0], cfg);
        if (r == 0 && optind < argc)
                r = -EINVAL;
        if (r < 0)
                fprintf(stderr, "%s: bad arguments (see --help)\n", argv[0]);
        return r;
}

static int open_client(const config *cfg, sidespan_client **ret)
{
        /* The command line beats the environment: put its values where the library looks
         * (single-threaded still, so setenv() is safe). */
        if (cfg->socket && setenv("SIDESPAN_SOCKET", cfg->socket, 1) < 0)
                return -errno;
        if (cfg->service && setenv("UPSONIC_OTEL_SERVICE_NAME", cfg->service, 1) < 0)
                return -errno;
        return sidespan_client_open_env_with(NULL, true, ret);
}

static void print_stats(sidespan_client *c, int flush_rc)
{
        sidespan_stats st;

        sidespan_stats_init(&st);
        (void)sidespan_client_stats(c, &st);
        printf("stats: spans_started=%" PRIu64 " unsampled=%" PRIu64 " frames_queued=%" PRIu64
               " frames_sent=%" PRIu64 " bytes_sent=%" PRIu64 " dropped=%" PRIu64
               " reconnects=%" PRIu64 " connected=%s flush=%s\n",
               st.spans_started, st.unsampled, st.frames_queued, st.frames_sent, st.bytes_sent,
               st.dropped, st.reconnects, st.connected ? "yes" : "no",
               flush_rc == 0 ? "ok" : sidespan_strerror(flush_rc));
        if (flush_rc < 0 && st.enabled && st.frames_sent == 0)
                printf("note: nothing was delivered: %s\n",
                       flush_rc == -ENOTCONN ? "no sidespand is listening on the socket"
                                             : sidespan_strerror(flush_rc));
        else if (flush_rc < 0 && st.enabled)
                printf("note: the daemon did not confirm delivery: %s\n",
                       sidespan_strerror(flush_rc));
}

static int run_workers(const config *cfg, sidespan_client *c)
{
        pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
        atomic_long next = 0;
        worker *w = calloc((size_t)cfg->threads, sizeof(*w));
        pthread_t *t = calloc((size_t)cfg->threads, sizeof(*t));
        int failures = 0;
        long started = 0;

        if (!w || !t) {
                free(w);
                free(t);
                return -ENOMEM;
        }
        for (long i = 0; i < cfg->threads; i++) {
                w[i] = (worker){.cfg = cfg, .client = c, .next_run = &next, .out_lock = &out_lock};
                if (pthread_create(&t[i], NULL, worker_main, &w[i]) != 0)
                        break;
                started++;
        }
        if (started == 0)
                worker_main(&w[0]);
        for (long i = 0; i < started; i++)
                pthread_join(t[i], NULL);
        for (long i = 0; i < cfg->threads; i++)
                failures += w[i].failures;
        free(w);
        free(t);
        return failures ? -EIO : 0;
}

int main(int argc, char **argv)
{
        config cfg = {.runs = 1, .threads = 1, .model = "gpt-4o", .flush_timeout_ms = 5000};
        sidespan_client *c = NULL;
        int r, flush_rc;

        if (parse_args(argc, argv, &cfg) < 0)
                return 2;
        r = open_client(&cfg, &c);
        if (r < 0) {
                fprintf(stderr, "sidespan-demo-agent: cannot open the client: %s\n",
                        sidespan_strerror(r));
                return 1;
        }
        if (r == SIDESPAN_OPEN_DISABLED)
                printf("note: tracing is disabled (OTEL_SDK_DISABLED=true)\n");
        r = run_workers(&cfg, c);
        flush_rc = sidespan_flush(c, (int)cfg.flush_timeout_ms);
        print_stats(c, flush_rc);
        fflush(stdout);
        (void)sidespan_client_close(&c);
        if (r < 0) {
                fprintf(stderr, "sidespan-demo-agent: some runs failed: %s\n",
                        sidespan_strerror(r));
                return 1;
        }
        return 0;
}
