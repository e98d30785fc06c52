/* SPDX-License-Identifier: MIT */
/*
 * bench-daemon: sidespand's throughput end to end. --threads threads, each
 * with its own sidespan_client, emit --runs agent runs of 30 spans: by
 * default the agent-shaped run of agent-run.h through the generic span API
 * (1 KiB of content on each chat span's messages); with --genai the shape
 * of sidespan-demo-agent through the GenAI helpers (short content); with
 * --simple, --runs single spans. As fast as they can, then flush; or, with
 * --rate, paced to that many spans per second for --seconds (each thread its
 * share, in bursts every millisecond against the monotonic clock). The daemon's
 * own counters (a STATS request over its socket) give the spans it finished
 * and, later, the spans its exporter accepted; the clients' counters give the
 * frames they dropped because the daemon did not keep up; with --pid, the
 * daemon's CPU time and its RSS at the end. A benchmark, not a test: it
 * prints figures.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent-run.h"
#include "daemon-probe.h"
#include "sidespan.h"
#include "ss-buf.h"
#include "ss-wire.h"

#define MAX_THREADS      64
#define FLUSH_TIMEOUT_MS 600000
#define PACE_NS          1000000ull /* --rate: one burst per millisecond */

typedef struct config {
        const char *socket;
        long threads;
        long runs;
        bool simple;
        bool genai; /* the GenAI helpers' run instead of the generic agent-shaped one */
        bench_agent_shape shape; /* --no-content, --bare */
        long buffer_mb;
        long export_timeout_s;
        long pid;     /* the daemon's, for its CPU time; 0: unknown */
        double rate;  /* --rate: spans per second over all threads; 0: as fast as possible */
        long seconds; /* --rate: for this long (sets runs) */
} config;

typedef struct worker {
        const config *cfg;
        uint64_t spans;   /* spans emitted */
        uint64_t dropped; /* frames the client dropped */
        uint64_t bytes;   /* written to the socket */
        uint64_t emit_ns; /* from the start until its last span was queued */
        int failures;
        int flush_rc;
} worker;

/* ---- the load --------------------------------------------------------------------------- */

static int chat(sidespan_client *c, const sidespan_span *parent, int turn)
{
        static const char *const stop[] = {"stop"};
        sidespan_chat_request req;
        sidespan_chat_result res;
        sidespan_span *s;
        int r;

        sidespan_chat_request_init(&req);
        req.temperature = 0.2;
        req.max_tokens = 1024;
        req.server_address = "api.openai.com";
        req.server_port = 443;
        req.input_messages = "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":"
                             "\"What is the weather in Paris and the time in Tokyo?\"}]}]";
        r = sidespan_chat_start(c, parent, "openai", "gpt-4o", &req, &s);
        if (r < 0)
                return r;
        sidespan_chat_result_init(&res);
        res.response_model = "gpt-4o";
        res.response_id = "chatcmpl-bench";
        res.finish_reasons = stop;
        res.n_finish_reasons = 1;
        res.input_tokens = 412 + turn;
        res.output_tokens = 46;
        res.output_messages = "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":"
                              "\"Paris: 18C and cloudy. Tokyo: 21:04.\"}]}]";
        return sidespan_chat_end(s, &res);
}

static int tool(sidespan_client *c, const sidespan_span *parent)
{
        sidespan_span *s;
        int r;

        r = sidespan_tool_start(c, parent, "get_weather", "call_1", "{\"city\":\"Paris\"}", &s);
        if (r < 0)
                return r;
        return sidespan_tool_end(s, true, "{\"temp_c\":18,\"sky\":\"cloudy\"}", 0.001);
}

/* The model step's children, in order: chat, tool, tool, chat. */
static int model_execution(sidespan_client *c, const sidespan_span *step)
{
        int r = chat(c, step, 0);

        if (r == 0)
                r = tool(c, step);
        if (r == 0)
                r = tool(c, step);
        if (r == 0)
                r = chat(c, step, 1);
        return r;
}

/* pipeline.execute and its 24 steps; the 15th is the model step. */
static int pipeline(sidespan_client *c, const sidespan_span *run)
{
        sidespan_span *p, *s;
        char name[32];
        int r;

        r = sidespan_pipeline_start(c, run, 24, false, &p);
        if (r < 0)
                return r;
        for (int i = 0; i < 24 && r == 0; i++) {
                snprintf(name, sizeof(name), "step_%d", i);
                r = sidespan_step_start(c, p, name, "A pipeline step", &s);
                if (r < 0)
                        break;
                if (i == 14)
                        r = model_execution(c, s);
                (void)sidespan_step_end(s, "COMPLETED", 0.0001);
        }
        (void)sidespan_span_end(p, SIDESPAN_STATUS_OK, NULL);
        return r;
}

static int agent_run(sidespan_client *c, long n)
{
        sidespan_run_result res;
        sidespan_span *run;
        char run_id[32];
        int r;

        snprintf(run_id, sizeof(run_id), "run-%ld", n);
        r = sidespan_agent_run_start(c, "bench-agent", "gpt-4o", run_id, "user-42", "session-1",
                                     "What is the weather in Paris and the time in Tokyo?", &run);
        if (r < 0)
                return r;
        r = pipeline(c, run);
        sidespan_run_result_init(&res);
        res.output = "Paris: 18C and cloudy. Tokyo: 21:04.";
        res.input_tokens = 825;
        res.output_tokens = 92;
        res.requests = 2;
        res.tool_call_count = 2;
        res.executed_steps = 24;
        (void)sidespan_agent_run_end(run, &res);
        return r;
}

static int simple_span(sidespan_client *c, long n)
{
        sidespan_span *s;
        int r;

        r = sidespan_span_start(c, NULL, "bench.span", SIDESPAN_KIND_INTERNAL, &s);
        if (r < 0)
                return r;
        (void)sidespan_span_set_str(s, "gen_ai.operation.name", "chat");
        (void)sidespan_span_set_str(s, "gen_ai.request.model", "gpt-4o");
        (void)sidespan_span_set_int(s, "gen_ai.usage.input_tokens", n);
        (void)sidespan_span_set_double(s, "gen_ai.request.temperature", 0.2);
        (void)sidespan_span_set_bool(s, "upsonic.tool.success", true);
        return sidespan_span_end(s, SIDESPAN_STATUS_OK, NULL);
}

/* Spans in one unit of --runs: a run of 30, or one with --simple. */
static long unit_spans(const config *cfg)
{
        return cfg->simple ? 1 : BENCH_AGENT_SPANS;
}

/* One unit: 0 or the library's first error. */
static int emit_unit(const config *cfg, sidespan_client *c, long i)
{
        return cfg->simple ? simple_span(c, i) : cfg->genai ? agent_run(c, i) : bench_agent_run(c);
}

/* --rate: this thread's share, the units due by now emitted every PACE_NS (absolute times
 * from t0, so a late wake-up catches up instead of lowering the rate). */
static void emit_paced(const config *cfg, sidespan_client *c, worker *w, uint64_t t0)
{
        double per_ns = cfg->rate / (double)unit_spans(cfg) / (double)cfg->threads / 1e9;
        struct timespec next;
        uint64_t tick = t0;
        long i = 0, due;

        while (i < cfg->runs) {
                due = (long)((double)(bench_now_ns() - t0) * per_ns) + 1;
                for (; i < due && i < cfg->runs; i++)
                        if (emit_unit(cfg, c, i) < 0)
                                w->failures++;
                tick += PACE_NS;
                next.tv_sec = (time_t)(tick / 1000000000ull);
                next.tv_nsec = (long)(tick % 1000000000ull);
                (void)clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        }
}

static void *worker_main(void *arg)
{
        worker *w = arg;
        const config *cfg = w->cfg;
        sidespan_client *c = NULL;
        sidespan_options o;
        sidespan_stats st;
        uint64_t t0 = bench_now_ns();

        sidespan_options_init(&o);
        o.socket_path = cfg->socket;
        o.service_name = "bench-daemon";
        o.buffer_size = (size_t)cfg->buffer_mb << 20;
        o.flush_on_exit = false;
        w->flush_rc = sidespan_client_open(&o, &c);
        if (w->flush_rc < 0)
                return NULL;
        if (cfg->rate > 0)
                emit_paced(cfg, c, w, t0);
        else
                for (long i = 0; i < cfg->runs; i++)
                        if (emit_unit(cfg, c, i) < 0)
                                w->failures++;
        w->emit_ns = bench_now_ns() - t0;
        w->flush_rc = sidespan_flush(c, FLUSH_TIMEOUT_MS);
        sidespan_stats_init(&st);
        (void)sidespan_client_stats(c, &st);
        w->spans = st.spans_started;
        w->dropped = st.dropped;
        w->bytes = st.bytes_sent;
        (void)sidespan_client_close(&c);
        return NULL;
}

/* ---- main ------------------------------------------------------------------------------- */

/* Run the workers; ret_elapsed: until the last flush was confirmed. */
static int emit(const config *cfg, worker *w, uint64_t *ret_elapsed)
{
        pthread_t t[MAX_THREADS];
        uint64_t t0 = bench_now_ns();
        long started = 0;
        int r = 0;

        for (; started < cfg->threads; started++) {
                w[started] = (worker){.cfg = cfg};
                if (pthread_create(&t[started], NULL, worker_main, &w[started]) != 0)
                        break;
        }
        for (long i = 0; i < started; i++)
                pthread_join(t[i], NULL);
        *ret_elapsed = bench_now_ns() - t0;
        for (long i = 0; i < started; i++)
                if (w[i].failures || w[i].flush_rc < 0)
                        r = -EIO;
        return started == cfg->threads ? r : -EAGAIN;
}

/* Everything one measurement gathered. */
typedef struct measure {
        bench_dstats before, flushed, exported;
        uint64_t emit_ns;   /* until the last span was queued */
        uint64_t ingest_ns; /* until every client's flush was confirmed */
        uint64_t export_ns; /* until the exporter last made progress */
        double cpu_s;       /* the daemon's CPU time meanwhile, < 0 when unknown */
        long rss_kib;       /* the daemon's VmRSS at the end, < 0 when unknown */
        long hwm_kib;       /* and its VmHWM (peak RSS) */
        bool failed;        /* some runs or flushes failed */
} measure;

static double per_s(uint64_t n, uint64_t ns)
{
        return ns ? (double)n * 1e9 / (double)ns : 0;
}

static void report(const config *cfg, const worker *w, const measure *m)
{
        const bench_dstats *a = &m->before, *b = &m->flushed, *e = &m->exported;
        uint64_t spans = 0, dropped = 0, bytes = 0,
                 finished = b->spans_finished - a->spans_finished;
        uint64_t exported = e->exported - a->exported, lost = e->export_dropped - a->export_dropped;

        for (long i = 0; i < cfg->threads; i++) {
                spans += w[i].spans;
                dropped += w[i].dropped;
                bytes += w[i].bytes;
        }
        printf("%ld client threads x %ld %s, client buffer %ld MiB", cfg->threads, cfg->runs,
               cfg->simple                            ? "single spans"
               : cfg->genai                           ? "GenAI-helper runs of 30 spans"
               : cfg->shape == BENCH_AGENT_BARE       ? "agent-shaped runs of 30 spans, bare"
               : cfg->shape == BENCH_AGENT_NO_CONTENT ? "agent-shaped runs of 30 spans, no content"
                                                      : "agent-shaped runs of 30 spans",
               cfg->buffer_mb);
        if (cfg->rate > 0)
                printf(", paced at %.0f spans/s for %ld s", cfg->rate, cfg->seconds);
        printf("\n");
        printf("  offered:  %9" PRIu64 " spans in %.3f s = %8.0f spans/s\n", spans,
               (double)m->emit_ns / 1e9, per_s(spans, m->emit_ns));
        printf("  accepted: %9" PRIu64 " spans finished by the daemon in %.3f s = %8.0f spans/s "
               "(%" PRIu64 " frames)\n",
               finished, (double)m->ingest_ns / 1e9, per_s(finished, m->ingest_ns),
               b->frames - a->frames);
        printf("  exported: %9" PRIu64 " spans in %.3f s = %8.0f spans/s (%" PRIu64
               " dropped by the exporter, %" PRIu64 " held in incomplete traces)\n",
               exported, (double)m->export_ns / 1e9, per_s(exported, m->export_ns), lost,
               e->spans_finished - a->spans_finished - exported - lost);
        printf("  dropped:  %9" PRIu64 " frames by the clients (buffer full), %" PRIu64
               " span messages refused by the daemon\n",
               dropped, b->span_errors - a->span_errors);
        if (spans)
                printf("  socket:   %9.0f bytes per span\n", (double)bytes / (double)spans);
        if (m->cpu_s >= 0 && finished)
                printf("  daemon CPU: %.3f s = %.2f us per finished span = %.0f spans per daemon "
                       "CPU-second\n",
                       m->cpu_s, m->cpu_s * 1e6 / (double)finished,
                       m->cpu_s > 0 ? (double)finished / m->cpu_s : 0);
        if (m->rss_kib >= 0)
                printf("  daemon RSS: %.1f MiB at the end, %.1f MiB at its peak (VmHWM)\n",
                       (double)m->rss_kib / 1024, (double)m->hwm_kib / 1024);
        /* One line of key=value for scripts (bench/bench-e2e.sh). */
        printf("  summary: offered=%" PRIu64 " offered_per_s=%.0f finished=%" PRIu64
               " exported=%" PRIu64 " exported_per_s=%.0f export_dropped=%" PRIu64
               " client_dropped=%" PRIu64 " refused=%" PRIu64 " cpu_s=%.3f rss_kib=%ld "
               "hwm_kib=%ld\n",
               spans, per_s(spans, m->emit_ns), finished, exported, per_s(exported, m->export_ns),
               lost, dropped, b->span_errors - a->span_errors, m->cpu_s, m->rss_kib, m->hwm_kib);
}

static void usage(FILE *f, const char *argv0)
{
        fprintf(f,
                "Usage: %s --socket PATH [OPTIONS]\n"
                "Throughput of a running sidespand, from its own STATS counters.\n"
                "  -s, --socket PATH        the daemon's socket (required)\n"
                "  -t, --threads N          client threads, one client each (default 4)\n"
                "  -n, --runs N             runs (30 spans) per thread (default 2000)\n"
                "      --simple             single spans (start + 5 attributes + end) instead\n"
                "      --genai              sidespan-demo-agent's run through the GenAI helpers\n"
                "      --no-content         the agent-shaped run without the chat messages\n"
                "      --bare               the agent-shaped run's 30 spans, no attribute\n"
                "  -b, --buffer-mb N        client buffer (default 4, the library's default)\n"
                "      --export-timeout S   longest wait for the exporter (default 300)\n"
                "      --pid PID            the daemon's process, to report its CPU time and RSS\n"
                "      --rate SPANS_PER_S   paced: this many spans per second over all threads\n"
                "                           (each thread its share, a burst every ms); sets\n"
                "                           --runs from --seconds\n"
                "      --seconds N          how long --rate is held (default 10)\n",
                argv0);
}

static int parse_args(int argc, char **argv, config *cfg)
{
        static const struct option opts[] = {
            {"socket", required_argument, NULL, 's'},
            {"threads", required_argument, NULL, 't'},
            {"runs", required_argument, NULL, 'n'},
            {"simple", no_argument, NULL, 'S'},
            {"genai", no_argument, NULL, 'G'},
            {"no-content", no_argument, NULL, 'C'},
            {"bare", no_argument, NULL, 'B'},
            {"buffer-mb", required_argument, NULL, 'b'},
            {"export-timeout", required_argument, NULL, 'T'},
            {"pid", required_argument, NULL, 'p'},
            {"rate", required_argument, NULL, 'r'},
            {"seconds", required_argument, NULL, 'd'},
            {"help", no_argument, NULL, 'h'},
            {0},
        };
        int c;

        while ((c = getopt_long(argc, argv, "s:t:n:b:h", opts, NULL)) != -1) {
                if (c == 's')
                        cfg->socket = optarg;
                else if (c == 't')
                        cfg->threads = strtol(optarg, NULL, 10);
                else if (c == 'n')
                        cfg->runs = strtol(optarg, NULL, 10);
                else if (c == 'S')
                        cfg->simple = true;
                else if (c == 'G')
                        cfg->genai = true;
                else if (c == 'C')
                        cfg->shape = BENCH_AGENT_NO_CONTENT;
                else if (c == 'B')
                        cfg->shape = BENCH_AGENT_BARE;
                else if (c == 'b')
                        cfg->buffer_mb = strtol(optarg, NULL, 10);
                else if (c == 'T')
                        cfg->export_timeout_s = strtol(optarg, NULL, 10);
                else if (c == 'p')
                        cfg->pid = strtol(optarg, NULL, 10);
                else if (c == 'r')
                        cfg->rate = strtod(optarg, NULL);
                else if (c == 'd')
                        cfg->seconds = strtol(optarg, NULL, 10);
                else if (c == 'h') {
                        usage(stdout, argv[0]);
                        exit(0);
                } else
                        return -EINVAL;
        }
        if (optind < argc || !cfg->socket || cfg->threads < 1 || cfg->threads > MAX_THREADS ||
            cfg->runs < 1 || cfg->buffer_mb < 1 || cfg->buffer_mb > 4096 ||
            cfg->export_timeout_s < 1 || cfg->rate < 0 || cfg->seconds < 1)
                return -EINVAL;
        if (cfg->rate > 0) /* each thread's share of rate x seconds, in whole units */
                cfg->runs = (long)(cfg->rate * (double)cfg->seconds /
                                       (double)(unit_spans(cfg) * cfg->threads) +
                                   0.5);
        if (cfg->runs < 1)
                return -EINVAL;
        return 0;
}

/* Emit, wait for the flushes and then for the exporter, reading the daemon's counters. */
static int measure_once(const config *cfg, worker *w, measure *m)
{
        double cpu0 = bench_cpu_seconds(cfg->pid);
        uint64_t t0 = bench_now_ns();
        int r, q;

        r = emit(cfg, w, &m->ingest_ns);
        if (r == -EAGAIN)
                return r;
        m->emit_ns = 0;
        for (long i = 0; i < cfg->threads; i++)
                if (w[i].emit_ns > m->emit_ns)
                        m->emit_ns = w[i].emit_ns;
        q = bench_daemon_stats(cfg->socket, &m->flushed);
        if (q == 0)
                q = bench_wait_export(cfg->socket, &m->before, cfg->export_timeout_s, &m->exported,
                                      &m->export_ns);
        if (q == 0)
                m->export_ns -= t0;
        m->cpu_s = cpu0 >= 0 ? bench_cpu_seconds(cfg->pid) - cpu0 : -1;
        m->rss_kib = bench_proc_field(cfg->pid, "status", "VmRSS:");
        m->hwm_kib = m->rss_kib < 0 ? -1 : bench_proc_field(cfg->pid, "status", "VmHWM:");
        m->failed = r < 0;
        return q;
}

int main(int argc, char **argv)
{
        config cfg = {
            .threads = 4, .runs = 2000, .buffer_mb = 4, .export_timeout_s = 300, .seconds = 10};
        worker w[MAX_THREADS];
        measure m;
        int r;

        if (parse_args(argc, argv, &cfg) < 0) {
                usage(stderr, argv[0]);
                return 2;
        }
        bench_agent_init();
        bench_agent_set_shape(cfg.shape);
        r = bench_daemon_stats(cfg.socket, &m.before);
        if (r < 0) {
                fprintf(stderr, "bench-daemon: no daemon on %s: %s\n", cfg.socket, strerror(-r));
                return 1;
        }
        r = measure_once(&cfg, w, &m);
        if (r == -EAGAIN) {
                fprintf(stderr, "bench-daemon: cannot start the client threads\n");
                return 1;
        } else if (r < 0) {
                fprintf(stderr, "bench-daemon: the daemon's STATS: %s\n", strerror(-r));
                return 1;
        }
        if (m.failed)
                fprintf(stderr, "bench-daemon: some runs or flushes failed\n");
        report(&cfg, w, &m);
        return m.failed ? 1 : 0;
}
