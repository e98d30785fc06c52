/* SPDX-License-Identifier: MIT */
/*
 * GenAI helpers: the span shapes of an agent run (TRACE-MODEL.md) in one call
 * each. Attributes known at start travel in SPAN_START so that a span cut
 * short (a crashed agent) still carries them.
 */
#include <errno.h>
#include <string.h>

#include "client.h" /* c->enabled */
#include "options.h"
#include "span.h"

#define MAX_START_ATTRS 12

/* A small list of attributes built on the stack. */
typedef struct attr_list {
        sidespan_attr v[MAX_START_ATTRS];
        size_t n;
} attr_list;

static void add_str(attr_list *l, const char *key, const char *value)
{
        if (value && l->n < MAX_START_ATTRS)
                l->v[l->n++] =
                    (sidespan_attr){.key = key, .type = SIDESPAN_ATTR_STR, .value.s = value};
}

static void add_int(attr_list *l, const char *key, int64_t value)
{
        if (value >= 0 && l->n < MAX_START_ATTRS)
                l->v[l->n++] =
                    (sidespan_attr){.key = key, .type = SIDESPAN_ATTR_INT, .value.i = value};
}

static void add_double(attr_list *l, const char *key, double value)
{
        if (value >= 0.0 && l->n < MAX_START_ATTRS)
                l->v[l->n++] =
                    (sidespan_attr){.key = key, .type = SIDESPAN_ATTR_DOUBLE, .value.d = value};
}

static void add_bool(attr_list *l, const char *key, bool value)
{
        if (l->n < MAX_START_ATTRS)
                l->v[l->n++] =
                    (sidespan_attr){.key = key, .type = SIDESPAN_ATTR_BOOL, .value.b = value};
}

/* Set every attribute of l on the span; the first error other than a full span wins. */
static int set_all(sidespan_span *s, const attr_list *l)
{
        int r = 0;

        for (size_t i = 0; i < l->n; i++) {
                int q = sidespan_span_set_attr(s, &l->v[i]);

                if (q < 0 && !r)
                        r = q;
        }
        return r;
}

/* ---- agent run ---------------------------------------------------------------------- */

SIDESPAN_EXPORT int sidespan_agent_run_start(sidespan_client *c, const char *agent_name,
                                             const char *model, const char *run_id,
                                             const char *user_id, const char *session_id,
                                             const char *input, sidespan_span **ret)
{
        attr_list l = {.n = 0};

        add_str(&l, "upsonic.agent.name", agent_name);
        add_str(&l, "upsonic.agent.model", model);
        add_str(&l, "upsonic.run_id", run_id);
        add_str(&l, "user.id", user_id);
        add_str(&l, "session.id", session_id);
        add_str(&l, "upsonic.input", input);
        return ssc_span_start(c, NULL, "agent.run", NULL, SIDESPAN_KIND_SERVER, l.v, l.n, ret);
}

SIDESPAN_EXPORT void sidespan_run_result_init_sized(sidespan_run_result *r, size_t size)
{
        sidespan_run_result d = {
            .input_tokens = -1,
            .output_tokens = -1,
            .total_tokens = -1,
            .cache_read_tokens = -1,
            .cache_write_tokens = -1,
            .reasoning_tokens = -1,
            .requests = -1,
            .tool_call_count = -1,
            .executed_steps = -1,
            .is_streaming = -1,
            .total_cost = -1.0,
            .execution_time = -1.0,
            .model_execution_time = -1.0,
            .tool_execution_time = -1.0,
            .framework_overhead_time = -1.0,
            .time_to_first_token = -1.0,
        };

        ssc_options_init_sized(r, size, &d, sizeof(d));
}

/* Our full-size copy of a caller's result, defaults where its struct ends. */
static void run_result_get(const sidespan_run_result *in, sidespan_run_result *out)
{
        sidespan_run_result_init(out);
        ssc_options_copy_sized(out, sizeof(*out), in);
}

static int run_usage(sidespan_span *s, const sidespan_run_result *r)
{
        attr_list l = {.n = 0};
        int64_t total = r->total_tokens;

        if (total < 0 && r->input_tokens >= 0 && r->output_tokens >= 0)
                total = r->input_tokens + r->output_tokens;
        add_int(&l, "gen_ai.usage.input_tokens", r->input_tokens);
        add_int(&l, "gen_ai.usage.output_tokens", r->output_tokens);
        add_int(&l, "upsonic.usage.total_tokens", total);
        add_int(&l, "upsonic.usage.cache_read_tokens", r->cache_read_tokens);
        add_int(&l, "upsonic.usage.cache_write_tokens", r->cache_write_tokens);
        add_int(&l, "upsonic.usage.reasoning_tokens", r->reasoning_tokens);
        add_int(&l, "upsonic.usage.requests", r->requests);
        add_double(&l, "upsonic.total_cost", r->total_cost);
        return set_all(s, &l);
}

static int run_times(sidespan_span *s, const sidespan_run_result *r)
{
        attr_list l = {.n = 0};

        add_double(&l, "upsonic.execution_time", r->execution_time);
        add_double(&l, "upsonic.model_execution_time", r->model_execution_time);
        add_double(&l, "upsonic.tool_execution_time", r->tool_execution_time);
        add_double(&l, "upsonic.framework_overhead_time", r->framework_overhead_time);
        add_double(&l, "upsonic.time_to_first_token", r->time_to_first_token);
        add_int(&l, "upsonic.tool_call_count", r->tool_call_count);
        add_int(&l, "upsonic.pipeline.executed_steps", r->executed_steps);
        if (r->is_streaming >= 0)
                add_bool(&l, "upsonic.is_streaming", r->is_streaming != 0);
        return set_all(s, &l);
}

SIDESPAN_EXPORT int sidespan_agent_run_end(sidespan_span *span, const sidespan_run_result *in)
{
        sidespan_run_result r;
        const char *status;
        bool failed;
        int e, q;

        if (!span)
                return 0;
        run_result_get(in, &r);
        failed = r.error || (r.status && strcmp(r.status, "ERROR") == 0);
        status = r.status ? r.status : failed ? "ERROR" : "COMPLETED";
        e = sidespan_span_set_str(span, "upsonic.status", status);
        q = run_usage(span, &r);
        e = e ? e : q;
        q = run_times(span, &r);
        e = e ? e : q;
        if (r.output) {
                q = sidespan_span_set_str(span, "upsonic.output", r.output);
                e = e ? e : q;
        }
        q = sidespan_span_end(span, failed ? SIDESPAN_STATUS_ERROR : SIDESPAN_STATUS_OK, r.error);
        return e ? e : q;
}

/* ---- pipeline and steps ----------------------------------------------------------------- */

SIDESPAN_EXPORT int sidespan_pipeline_start(sidespan_client *c, const sidespan_span *parent,
                                            int64_t total_steps, bool streaming,
                                            sidespan_span **ret)
{
        attr_list l = {.n = 0};
        ssc_span_parent p;

        add_int(&l, "upsonic.pipeline.total_steps", total_steps);
        add_bool(&l, "upsonic.pipeline.streaming", streaming);
        return ssc_span_start(c, ssc_span_parent_of(parent, &p), "pipeline.execute", NULL,
                              SIDESPAN_KIND_INTERNAL, l.v, l.n, ret);
}

SIDESPAN_EXPORT int sidespan_step_start(sidespan_client *c, const sidespan_span *parent,
                                        const char *step_name, const char *description,
                                        sidespan_span **ret)
{
        attr_list l = {.n = 0};
        ssc_span_parent p;

        if (c && c->enabled && (!step_name || !step_name[0]))
                return -EINVAL;
        add_str(&l, "upsonic.step.name", step_name);
        add_str(&l, "upsonic.step.description", description);
        return ssc_span_start(c, ssc_span_parent_of(parent, &p), "pipeline.step.", step_name,
                              SIDESPAN_KIND_INTERNAL, l.v, l.n, ret);
}

SIDESPAN_EXPORT int sidespan_step_end(sidespan_span *span, const char *status,
                                      double execution_time_s)
{
        attr_list l = {.n = 0};
        bool failed = status && strcmp(status, "ERROR") == 0;
        int e, q;

        add_str(&l, "upsonic.step.status", status ? status : "COMPLETED");
        add_double(&l, "upsonic.step.execution_time", execution_time_s);
        e = set_all(span, &l);
        q = sidespan_span_end(span, failed ? SIDESPAN_STATUS_ERROR : SIDESPAN_STATUS_OK, NULL);
        return e ? e : q;
}

/* ---- chat ------------------------------------------------------------------------------- */

SIDESPAN_EXPORT void sidespan_chat_request_init_sized(sidespan_chat_request *r, size_t size)
{
        sidespan_chat_request d = {.temperature = -1.0, .top_p = -1.0, .max_tokens = -1};

        ssc_options_init_sized(r, size, &d, sizeof(d));
}

static void chat_request_attrs(attr_list *l, const sidespan_chat_request *in)
{
        sidespan_chat_request r;

        sidespan_chat_request_init(&r);
        ssc_options_copy_sized(&r, sizeof(r), in);
        add_double(l, "gen_ai.request.temperature", r.temperature);
        add_int(l, "gen_ai.request.max_tokens", r.max_tokens);
        add_double(l, "gen_ai.request.top_p", r.top_p);
        add_str(l, "server.address", r.server_address);
        if (r.server_port > 0)
                add_int(l, "server.port", r.server_port);
        add_str(l, "gen_ai.input.messages", r.input_messages);
        add_str(l, "gen_ai.system_instructions", r.system_instructions);
}

SIDESPAN_EXPORT int sidespan_chat_start(sidespan_client *c, const sidespan_span *parent,
                                        const char *provider, const char *model,
                                        const sidespan_chat_request *req, sidespan_span **ret)
{
        attr_list l = {.n = 0};
        ssc_span_parent p;

        add_str(&l, "gen_ai.operation.name", "chat");
        add_str(&l, "gen_ai.provider.name", provider);
        add_str(&l, "gen_ai.request.model", model);
        chat_request_attrs(&l, req);
        /* The GenAI convention names the span "{operation} {model}". */
        return ssc_span_start(c, ssc_span_parent_of(parent, &p), model ? "chat " : "chat", model,
                              SIDESPAN_KIND_CLIENT, l.v, l.n, ret);
}

SIDESPAN_EXPORT int sidespan_chat_first_token(sidespan_span *span)
{
        return sidespan_span_add_event(span, "gen_ai.first_token", NULL, 0);
}

SIDESPAN_EXPORT void sidespan_chat_result_init_sized(sidespan_chat_result *r, size_t size)
{
        sidespan_chat_result d = {
            .input_tokens = -1,
            .output_tokens = -1,
            .cache_read_tokens = -1,
            .cache_creation_tokens = -1,
        };

        ssc_options_init_sized(r, size, &d, sizeof(d));
}

static int chat_result_set(sidespan_span *s, const sidespan_chat_result *r)
{
        attr_list l = {.n = 0};
        int e = 0;

        add_str(&l, "gen_ai.response.model", r->response_model);
        add_str(&l, "gen_ai.response.id", r->response_id);
        add_int(&l, "gen_ai.usage.input_tokens", r->input_tokens);
        add_int(&l, "gen_ai.usage.output_tokens", r->output_tokens);
        add_int(&l, "gen_ai.usage.cache_read.input_tokens", r->cache_read_tokens);
        add_int(&l, "gen_ai.usage.cache_creation.input_tokens", r->cache_creation_tokens);
        add_str(&l, "gen_ai.output.messages", r->output_messages);
        if (r->finish_reasons && r->n_finish_reasons)
                e = sidespan_span_set_str_array(s, "gen_ai.response.finish_reasons",
                                                r->finish_reasons, r->n_finish_reasons);
        return e ? e : set_all(s, &l);
}

SIDESPAN_EXPORT int sidespan_chat_end(sidespan_span *span, const sidespan_chat_result *in)
{
        sidespan_chat_result r;
        int e, q;

        if (!span)
                return 0;
        sidespan_chat_result_init(&r);
        ssc_options_copy_sized(&r, sizeof(r), in);
        e = chat_result_set(span, &r);
        q = sidespan_span_end(span, r.error ? SIDESPAN_STATUS_ERROR : SIDESPAN_STATUS_OK, r.error);
        return e ? e : q;
}

/* ---- tools ------------------------------------------------------------------------------ */

SIDESPAN_EXPORT int sidespan_tool_start(sidespan_client *c, const sidespan_span *parent,
                                        const char *tool_name, const char *call_id,
                                        const char *arguments_json, sidespan_span **ret)
{
        attr_list l = {.n = 0};
        ssc_span_parent p;

        add_str(&l, "upsonic.tool.name", tool_name);
        add_str(&l, "upsonic.tool.call_id", call_id);
        add_str(&l, "gen_ai.tool.call.arguments", arguments_json);
        return ssc_span_start(c, ssc_span_parent_of(parent, &p), "tool.execute", NULL,
                              SIDESPAN_KIND_INTERNAL, l.v, l.n, ret);
}

SIDESPAN_EXPORT int sidespan_tool_end(sidespan_span *span, bool success, const char *result,
                                      double execution_time_s)
{
        attr_list l = {.n = 0};
        int e, q;

        add_bool(&l, "upsonic.tool.success", success);
        add_str(&l, "gen_ai.tool.call.result", result);
        add_double(&l, "upsonic.tool.execution_time", execution_time_s);
        e = set_all(span, &l);
        q = sidespan_span_end(span, success ? SIDESPAN_STATUS_OK : SIDESPAN_STATUS_ERROR, NULL);
        return e ? e : q;
}
