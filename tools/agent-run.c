/* SPDX-License-Identifier: MIT */
#include "agent-run.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* Totals of one run, for the run-level attributes. */
typedef struct run_totals {
        int64_t input_tokens;
        int64_t output_tokens;
        int64_t cache_read_tokens;
        double model_time;
        double tool_time;
        double ttft;
        int steps;   /* executed */
        bool failed; /* a tool call failed */
} run_totals;

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

static int chat(const agent_run_config *w, const sidespan_span *parent, int turn, run_totals *t)
{
        sidespan_chat_request req;
        sidespan_chat_result res;
        sidespan_span *s;
        double t0 = now_s();
        int r;

        chat_request(turn, &req);
        r = sidespan_chat_start(w->client, parent, "openai", w->model, &req, &s);
        if (r < 0)
                return r;
        pause_ms(w->latency_ms / 4);
        if (turn == 0) {
                (void)sidespan_chat_first_token(s);
                t->ttft = now_s() - t0;
        }
        pause_ms(w->latency_ms);
        chat_result(w->model, turn, &res);
        t->input_tokens += res.input_tokens;
        t->output_tokens += res.output_tokens;
        t->cache_read_tokens += res.cache_read_tokens;
        t->model_time += now_s() - t0;
        return sidespan_chat_end(s, &res);
}

static int tool(const agent_run_config *w, const sidespan_span *parent, int i, run_totals *t)
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
        pause_ms(w->latency_ms / 2);
        dt = now_s() - t0;
        t->tool_time += dt;
        if (w->fail && i == 1) {
                t->failed = true;
                return sidespan_tool_end(s, false, "{\"error\":\"time service timed out\"}", dt);
        }
        return sidespan_tool_end(s, true, results[i], dt);
}

/* The model step: chat, two tool calls, chat again. */
static int model_execution(const agent_run_config *w, const sidespan_span *step, run_totals *t)
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

static int pipeline(const agent_run_config *w, const sidespan_span *run, run_totals *t)
{
        sidespan_span *p, *s;
        int r;

        r = sidespan_pipeline_start(w->client, run, STEPS, w->streaming, &p);
        if (r < 0)
                return r;
        for (int i = 0; i < STEPS && r == 0; i++) {
                const char *name =
                    w->streaming && steps[i].stream_name ? steps[i].stream_name : steps[i].name;
                double t0 = now_s();

                r = sidespan_step_start(w->client, p, name, steps[i].description, &s);
                if (r < 0)
                        break;
                t->steps++;
                if (strcmp(steps[i].name, "model_execution") == 0)
                        r = model_execution(w, s, t);
                (void)sidespan_step_end(s, r == 0 && !t->failed ? "COMPLETED" : "ERROR",
                                        now_s() - t0);
                if (t->failed)
                        break; /* as a framework does when a step fails */
        }
        (void)sidespan_span_end(
            p, r == 0 && !t->failed ? SIDESPAN_STATUS_OK : SIDESPAN_STATUS_ERROR, NULL);
        return r;
}

static void run_result(const agent_run_config *cfg, const run_totals *t, double elapsed,
                       sidespan_run_result *res)
{
        sidespan_run_result_init(res);
        res->status = t->failed ? "ERROR" : "COMPLETED";
        res->output = "Paris: 18C and cloudy. Tokyo: 21:04.";
        res->input_tokens = t->input_tokens;
        res->output_tokens = t->output_tokens;
        res->cache_read_tokens = t->cache_read_tokens;
        res->cache_write_tokens = 0;
        res->reasoning_tokens = 0;
        res->requests = 2;
        res->tool_call_count = 2;
        res->executed_steps = t->steps;
        res->is_streaming = cfg->streaming;
        /* No total_cost: sidespand derives it from its pricing table. */
        res->execution_time = elapsed;
        res->model_execution_time = t->model_time;
        res->tool_execution_time = t->tool_time;
        res->framework_overhead_time = elapsed - t->model_time - t->tool_time;
        if (cfg->streaming)
                res->time_to_first_token = t->ttft;
}

int agent_run_emit(const agent_run_config *w, long n, char *tp, size_t tp_size)
{
        char run_id[32], session[32];
        sidespan_run_result res;
        run_totals t = {0};
        double t0 = now_s();
        sidespan_span *run;
        int r;

        snprintf(tp, tp_size, "(tracing disabled)");
        snprintf(run_id, sizeof(run_id), "run-%ld", n);
        snprintf(session, sizeof(session), "session-%ld", n % 4);
        r = sidespan_agent_run_start(w->client, w->agent, w->model, run_id, "user-42", session,
                                     "What is the weather in Paris and the time in Tokyo?", &run);
        if (r < 0)
                return r;
        (void)sidespan_span_traceparent(run, tp, tp_size);
        r = pipeline(w, run, &t);
        run_result(w, &t, now_s() - t0, &res);
        if (r < 0)
                res.error = sidespan_strerror(r);
        else if (t.failed)
                res.error = "tool get_time failed: time service timed out";
        (void)sidespan_agent_run_end(run, &res);
        return r;
}
