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

#include "sidespan.h"

#define STEPS 24

typedef struct step_def {
        const char *name;
        const char *stream_name; /* the streaming pipeline's step in its place, or NULL */
        const char *description;
} step_def;

static const step_def steps[STEPS] = {
    {"initialization", NULL, "Initialize the run context"},
    {"storage_connection", NULL, "Connect the storage backend"},
    {"cache_check", NULL, "Look for a cached answer"},
    {"llm_manager", NULL, "Prepare the LLM manager"},
    {"model_selection", NULL, "Select the model"},
    {"tool_setup", NULL, "Register the tools"},
    {"memory_prepare", NULL, "Load conversation memory"},
    {"system_prompt_build", NULL, "Build the system prompt"},
    {"context_build", NULL, "Build the task context"},
    {"chat_history", NULL, "Attach the chat history"},
    {"user_policy", NULL, "Apply the user input policy"},
    {"user_input_build", NULL, "Build the user input"},
    {"message_assembly", NULL, "Assemble the model messages"},
    {"call_manager_setup", NULL, "Set up the call manager"},
    {"model_execution", "stream_model_execution", "Run the model and its tool calls"},
    {"response_processing", NULL, "Process the model response"},
    {"reflection", NULL, "Reflect on the answer"},
    {"task_management", NULL, "Update the task state"},
    {"reliability", NULL, "Apply the reliability layer"},
    {"agent_policy", NULL, "Apply the agent output policy"},
    {"cache_storage", NULL, "Store the answer in the cache"},
    {"finalization", "stream_finalization", "Finalize the run"},
    {"memory_save", "stream_memory_message_tracking", "Save conversation memory"},
    {"call_management", NULL, "Close the call manager"},
};

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

/* Totals of one run, for the run-level attributes. */
typedef struct run_totals {
        int64_t input_tokens;
        int64_t output_tokens;
        int64_t cache_read_tokens;
        double model_time;
        double tool_time;
        double ttft;
} run_totals;

typedef struct worker {
        const config *cfg;
        sidespan_client *client;
        atomic_long *next_run;
        pthread_mutex_t *out_lock;
        int failures;
} worker;

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Simulated work: the model and tools take latency_ms (0: none). */
static void pause_ms(long ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

        if (ms > 0)
                nanosleep(&ts, NULL);
}

static void chat_request(int turn, sidespan_chat_request *req)
{
        sidespan_chat_request_init(req);
        req->temperature = 0.2;
        req->top_p = 1.0;
        req->max_tokens = 1024;
        req->server_address = "api.openai.com";
        req->server_port = 443;
        req->system_instructions = "[{\"type\":\"text\",\"content\":\"You are a helpful agent.\"}]";
        req->input_messages =
            turn == 0 ? "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":"
                        "\"What is the weather in Paris and the time in Tokyo?\"}]}]"
                      : "[{\"role\":\"tool\",\"parts\":[{\"type\":\"tool_call_response\","
                        "\"id\":\"call_1\",\"response\":\"18C, cloudy\"}]}]";
}

/* The first turn asks for the tools, the second answers (with a cached prompt prefix). */
static void chat_result(const char *model, int turn, sidespan_chat_result *res)
{
        static const char *const tool_calls[] = {"tool_calls"};
        static const char *const stop[] = {"stop"};

        sidespan_chat_result_init(res);
        res->response_model = model;
        res->response_id = turn == 0 ? "chatcmpl-demo-1" : "chatcmpl-demo-2";
        res->finish_reasons = turn == 0 ? tool_calls : stop;
        res->n_finish_reasons = 1;
        res->input_tokens = turn == 0 ? 412 : 538;
        res->output_tokens = turn == 0 ? 46 : 71;
        res->cache_read_tokens = turn == 0 ? 0 : 384;
        res->cache_creation_tokens = 0;
        res->output_messages =
            turn == 0 ? "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"tool_call\","
                        "\"id\":\"call_1\",\"name\":\"get_weather\"}],"
                        "\"finish_reason\":\"tool_calls\"}]"
                      : "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":"
                        "\"Paris: 18C and cloudy. Tokyo: 21:04.\"}],\"finish_reason\":\"stop\"}]";
}

static int chat(const worker *w, const sidespan_span *parent, int turn, run_totals *t)
{
        sidespan_chat_request req;
        sidespan_chat_result res;
        sidespan_span *s;
        double t0 = now_s();
        int r;

        chat_request(turn, &req);
        r = sidespan_chat_start(w->client, parent, "openai", w->cfg->model, &req, &s);
        if (r < 0)
                return r;
        pause_ms(w->cfg->latency_ms / 4);
        if (turn == 0) {
                (void)sidespan_chat_first_token(s);
                t->ttft = now_s() - t0;
        }
        pause_ms(w->cfg->latency_ms);
        chat_result(w->cfg->model, turn, &res);
        t->input_tokens += res.input_tokens;
        t->output_tokens += res.output_tokens;
        t->cache_read_tokens += res.cache_read_tokens;
        t->model_time += now_s() - t0;
        return sidespan_chat_end(s, &res);
}

static int tool(const worker *w, const sidespan_span *parent, int i, run_totals *t)
{
        static const char *const names[] = {"get_weather", "get_time"};
        static const char *const args[] = {"{\"city\":\"Paris\"}", "{\"city\":\"Tokyo\"}"};
        static const char *const results[] = {"{\"temp_c\":18,\"sky\":\"cloudy\"}",
                                              "{\"time\":\"21:04\"}"};
        static const char *const ids[] = {"call_1", "call_2"};
        double t0 = now_s(), dt;
        sidespan_span *s;
        int r;

        r = sidespan_tool_start(w->client, parent, names[i], ids[i], args[i], &s);
        if (r < 0)
                return r;
        pause_ms(w->cfg->latency_ms / 2);
        dt = now_s() - t0;
        t->tool_time += dt;
        return sidespan_tool_end(s, true, results[i], dt);
}

/* The model step: chat, two tool calls, chat again. */
static int model_execution(const worker *w, const sidespan_span *step, run_totals *t)
{
        int r = chat(w, step, 0, t);

        if (r == 0)
                r = tool(w, step, 0, t);
        if (r == 0)
                r = tool(w, step, 1, t);
        if (r == 0)
                r = chat(w, step, 1, t);
        return r;
}

static int pipeline(const worker *w, const sidespan_span *run, run_totals *t)
{
        sidespan_span *p, *s;
        int r;

        r = sidespan_pipeline_start(w->client, run, STEPS, w->cfg->streaming, &p);
        if (r < 0)
                return r;
        for (int i = 0; i < STEPS && r == 0; i++) {
                const char *name = w->cfg->streaming && steps[i].stream_name ? steps[i].stream_name
                                                                             : steps[i].name;
                double t0 = now_s();

                r = sidespan_step_start(w->client, p, name, steps[i].description, &s);
                if (r < 0)
                        break;
                if (strcmp(steps[i].name, "model_execution") == 0)
                        r = model_execution(w, s, t);
                (void)sidespan_step_end(s, r == 0 ? "COMPLETED" : "ERROR", now_s() - t0);
        }
        (void)sidespan_span_end(p, r == 0 ? SIDESPAN_STATUS_OK : SIDESPAN_STATUS_ERROR, NULL);
        return r;
}

static void run_result(const config *cfg, const run_totals *t, double elapsed,
                       sidespan_run_result *res)
{
        sidespan_run_result_init(res);
        res->status = "COMPLETED";
        res->output = "Paris: 18C and cloudy. Tokyo: 21:04.";
        res->input_tokens = t->input_tokens;
        res->output_tokens = t->output_tokens;
        res->cache_read_tokens = t->cache_read_tokens;
        res->cache_write_tokens = 0;
        res->reasoning_tokens = 0;
        res->requests = 2;
        res->tool_call_count = 2;
        res->executed_steps = STEPS;
        res->is_streaming = cfg->streaming;
        /* No total_cost: sidespand derives it from its pricing table. */
        res->execution_time = elapsed;
        res->model_execution_time = t->model_time;
        res->tool_execution_time = t->tool_time;
        res->framework_overhead_time = elapsed - t->model_time - t->tool_time;
        if (cfg->streaming)
                res->time_to_first_token = t->ttft;
}

static int agent_run(worker *w, long n)
{
        char run_id[32], session[32], tp[64] = "(tracing disabled)";
        sidespan_run_result res;
        run_totals t = {0};
        double t0 = now_s();
        sidespan_span *run;
        int r;

        snprintf(run_id, sizeof(run_id), "run-%ld", n);
        snprintf(session, sizeof(session), "session-%ld", n % 4);
        r = sidespan_agent_run_start(w->client, "demo-agent", w->cfg->model, run_id, "user-42",
                                     session, "What is the weather in Paris and the time in Tokyo?",
                                     &run);
        if (r < 0)
                return r;
        (void)sidespan_span_traceparent(run, tp, sizeof(tp));
        r = pipeline(w, run, &t);
        run_result(w->cfg, &t, now_s() - t0, &res);
        if (r < 0)
                res.error = sidespan_strerror(r);
        (void)sidespan_agent_run_end(run, &res);
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
