/* SPDX-License-Identifier: MIT */
#include "metrics/genai.h"

#include <errno.h>
#include <string.h>

#include "model/genai.h"
#include "ss-macro.h"

#define N(a) ((uint32_t)SS_ELEMENTSOF(a))

/* The conventions' advice: powers of 4 for tokens, of 2 from 10 ms for durations. */
static const double token_bounds[] = {1,     4,     16,     64,      256,     1024,     4096,
                                      16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
static const double duration_bounds[] = {0.01, 0.02, 0.04, 0.08,  0.16,  0.32,  0.64,
                                         1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
static const double first_token_bounds[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                            0.25,  0.5,   0.75, 1.0,  2.5,  5.0,  7.5,  10.0};
/* An agent run lasts longer than one call: the same doubling, on to about 11 minutes. */
static const double run_bounds[] = {0.01, 0.02,  0.04,  0.08,  0.16,  0.32,   0.64,   1.28,  2.56,
                                    5.12, 10.24, 20.48, 40.96, 81.92, 163.84, 327.68, 655.36};
static const double count_bounds[] = {0, 1, 2, 4, 8, 16, 32, 64, 128, 256};

int ss_genai_instruments_init(ss_genai_instruments *g, ss_registry *r)
{
        *g = (ss_genai_instruments){
            .token_usage = ss_registry_histogram(r, "gen_ai.client.token.usage",
                                                 "Number of input and output tokens used",
                                                 "{token}", token_bounds, N(token_bounds)),
            .duration = ss_registry_histogram(r, "gen_ai.client.operation.duration",
                                              "GenAI operation duration", "s", duration_bounds,
                                              N(duration_bounds)),
            .first_token = ss_registry_histogram(
                r, "gen_ai.server.time_to_first_token",
                "Time to generate the first token, from the chat spans' first-token event", "s",
                first_token_bounds, N(first_token_bounds)),
            .run_duration =
                ss_registry_histogram(r, "upsonic.agent.run.duration", "Duration of agent runs",
                                      "s", run_bounds, N(run_bounds)),
            .tool_calls =
                ss_registry_histogram(r, "upsonic.agent.tool_calls", "Tool calls per agent run",
                                      "{call}", count_bounds, N(count_bounds)),
            .steps = ss_registry_histogram(r, "upsonic.agent.executed_steps",
                                           "Pipeline steps executed per agent run", "{step}",
                                           count_bounds, N(count_bounds)),
            .runs = ss_registry_counter(r, "upsonic.agent.runs", "Agent runs, by status", "{run}",
                                        true),
            .cost = ss_registry_counter(r, "upsonic.cost", "Cost of agent runs", "USD", false),
        };
        return g->token_usage && g->duration && g->first_token && g->run_duration &&
                       g->tool_calls && g->steps && g->runs && g->cost
                   ? 0
                   : -ENOMEM;
}

/* ---- what a span is --------------------------------------------------------------------- */

static bool name_is(const ss_span *s, const char *want)
{
        return s->name.size == strlen(want) && memcmp(s->name.ptr, want, s->name.size) == 0;
}

static bool is_run(const ss_span *s, const char *op)
{
        return name_is(s, "agent.run") || (op && !strcmp(op, "invoke_agent"));
}

/* A model operation: one the conventions' client metrics are about. */
static bool is_operation(const ss_span *s, const char *op)
{
        if (!op)
                return ss_span_is_chat(s);
        return strcmp(op, "invoke_agent") && strcmp(op, "create_agent") &&
               strcmp(op, "execute_tool");
}

/* ---- attribute sets --------------------------------------------------------------------- */

typedef struct attrs {
        ss_metric_attr v[8];
        uint32_t n;
} attrs;

static void add(attrs *a, const char *key, const char *value)
{
        if (value && a->n < N(a->v))
                a->v[a->n++] = (ss_metric_attr){key, value};
}

static int record(ss_instrument *i, double v, const attrs *a)
{
        return ss_instrument_record(i, v, a->v, a->n);
}

static int record_operation(const ss_genai_instruments *g, const ss_span *s, const char *op)
{
        const char *provider = ss_span_attr_str(s, "gen_ai.provider.name");
        attrs base = {.n = 0}, a;
        uint64_t tokens, ns;
        int r = 0;

        add(&base, "gen_ai.operation.name", op ? op : "chat");
        add(&base, "gen_ai.provider.name",
            provider ? provider : ss_span_attr_str(s, "gen_ai.system"));
        add(&base, "gen_ai.request.model", ss_span_attr_str(s, "gen_ai.request.model"));
        add(&base, "gen_ai.response.model", ss_span_attr_str(s, "gen_ai.response.model"));
        add(&base, "server.address", ss_span_attr_str(s, "server.address"));

        a = base;
        add(&a, "gen_ai.token.type", "input");
        if (ss_span_attr_count(s, "gen_ai.usage.input_tokens", &tokens))
                r |= record(g->token_usage, (double)tokens, &a);
        a.v[a.n - 1].value = "output";
        if (ss_span_attr_count(s, "gen_ai.usage.output_tokens", &tokens))
                r |= record(g->token_usage, (double)tokens, &a);

        if (ss_span_first_token(s, &ns))
                r |= record(g->first_token, (double)ns / 1e9, &base);

        a = base;
        if (s->status_code == 2) { /* STATUS_CODE_ERROR */
                const char *type = ss_span_attr_str(s, "error.type");

                add(&a, "error.type", type ? type : "_OTHER");
        }
        r |= record(g->duration, (double)ss_span_duration_ns(s) / 1e9, &a);
        return r;
}

static int record_run(const ss_genai_instruments *g, const ss_span *s)
{
        const char *agent = ss_span_attr_str(s, "upsonic.agent.name");
        const char *model = ss_span_attr_str(s, "upsonic.agent.model");
        const char *status = ss_span_attr_str(s, "upsonic.status");
        attrs a = {.n = 0};
        uint64_t n;
        double cost;
        int r = 0;

        if (!agent)
                agent = ss_span_attr_str(s, "gen_ai.agent.name");
        if (!model)
                model = ss_span_attr_str(s, "gen_ai.request.model");
        if (!status)
                status = s->status_code == 2 ? "ERROR" : "COMPLETED";
        add(&a, "upsonic.agent.name", agent);
        if (ss_span_attr_count(s, "upsonic.tool_call_count", &n))
                r |= record(g->tool_calls, (double)n, &a);
        if (ss_span_attr_count(s, "upsonic.pipeline.executed_steps", &n))
                r |= record(g->steps, (double)n, &a);

        add(&a, "upsonic.status", status);
        r |= record(g->run_duration, (double)ss_span_duration_ns(s) / 1e9, &a);
        r |= record(g->runs, 1, &a);

        a.n = 0;
        add(&a, "upsonic.agent.name", agent);
        add(&a, "gen_ai.request.model", model);
        if (ss_span_attr_amount(s, "upsonic.total_cost", &cost))
                r |= record(g->cost, cost, &a);
        return r < 0 ? -ENOMEM : 0;
}

ss_genai_kind ss_genai_kind_of(const ss_span *s)
{
        const char *op = ss_span_attr_str(s, "gen_ai.operation.name");

        return is_run(s, op)         ? SS_GENAI_RUN
               : is_operation(s, op) ? SS_GENAI_OPERATION
                                     : SS_GENAI_NONE;
}

int ss_genai_record(const ss_genai_instruments *g, const ss_span *s, ss_genai_kind kind)
{
        if (kind == SS_GENAI_RUN)
                return record_run(g, s);
        if (kind == SS_GENAI_OPERATION)
                return record_operation(g, s, ss_span_attr_str(s, "gen_ai.operation.name")) < 0
                           ? -ENOMEM
                           : 0;
        return 0;
}
