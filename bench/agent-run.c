/* SPDX-License-Identifier: MIT */
#include "agent-run.h"

#include <stdbool.h>
#include <stdio.h>

#define CONTENT_BYTES 1024

static char chat_in[CONTENT_BYTES + 64], chat_out[CONTENT_BYTES + 64];
static bench_agent_shape shape = BENCH_AGENT_FULL;

/* A value an agent has only at run time (from its configuration, a model's reply, an id),
 * hidden from the compiler so that its length is measured as it would be there. Keys and the
 * framework's own names and states stay literals, as they are in an agent's code. */
static inline const char *rt(const char *s)
{
        __asm__("" : "+r"(s));
        return s;
}

/* A chat message array of about CONTENT_BYTES of prose. */
static void messages(char *buf, size_t size, const char *role)
{
        static const char *const words[] = {"the", "weather", "in",    "Paris", "is",    "cloudy",
                                            "and", "18C",     "while", "Tokyo", "shows", "21:04"};
        size_t n = (size_t)snprintf(buf, size,
                                    "[{\"role\":\"%s\",\"parts\":[{\"type\":\"text\","
                                    "\"content\":\"",
                                    role);

        for (unsigned k = 0; n < CONTENT_BYTES - 12; k++)
                n += (size_t)snprintf(buf + n, size - n, "%s ", words[k % 12]);
        snprintf(buf + n, size - n, "\"}]}]");
}

void bench_agent_set_shape(bench_agent_shape s)
{
        shape = s;
}

void bench_agent_init(void)
{
        messages(chat_in, sizeof(chat_in), "user");
        messages(chat_out, sizeof(chat_out), "assistant");
}

/* Each kind of span: started under parent, its attributes set; *ret to end. */

static int agent(sidespan_client *c, sidespan_span **ret)
{
        int r = sidespan_span_start(c, NULL, "agent.run", SIDESPAN_KIND_INTERNAL, ret);

        if (r < 0 || shape == BENCH_AGENT_BARE)
                return r;
        (void)sidespan_span_set_str(*ret, "upsonic.agent.name", rt("support-bot"));
        (void)sidespan_span_set_str(*ret, "upsonic.agent.model", rt("gpt-4o"));
        (void)sidespan_span_set_str(*ret, "upsonic.run_id", rt("run-0f3a9c2e-5b7d-4e1a"));
        (void)sidespan_span_set_str(*ret, "user.id", rt("user-7"));
        (void)sidespan_span_set_str(*ret, "upsonic.input", rt("Weather in Paris, time in Tokyo?"));
        (void)sidespan_span_set_str(*ret, "upsonic.output", rt("18C and cloudy; 21:04."));
        return 0;
}

static int pipeline(sidespan_client *c, const sidespan_span *parent, sidespan_span **ret)
{
        int r = sidespan_span_start(c, parent, "pipeline.execute", SIDESPAN_KIND_INTERNAL, ret);

        if (r < 0 || shape == BENCH_AGENT_BARE)
                return r;
        (void)sidespan_span_set_int(*ret, "upsonic.pipeline.total_steps", 24);
        (void)sidespan_span_set_bool(*ret, "upsonic.pipeline.streaming", false);
        return 0;
}

static int step(sidespan_client *c, const sidespan_span *parent, int i, sidespan_span **ret)
{
        bool model = i == 14;
        int r = sidespan_span_start(c, parent,
                                    model ? "pipeline.step.model_execution" : "pipeline.step",
                                    SIDESPAN_KIND_INTERNAL, ret);

        if (r < 0 || shape == BENCH_AGENT_BARE)
                return r;
        (void)sidespan_span_set_str(*ret, "upsonic.step.name",
                                    model ? "model_execution" : "agent_step");
        (void)sidespan_span_set_int(*ret, "upsonic.step.index", i);
        (void)sidespan_span_set_str(*ret, "upsonic.step.status", "COMPLETED");
        (void)sidespan_span_set_double(*ret, "upsonic.step.execution_time", 0.001 * i);
        return 0;
}

static int chat(sidespan_client *c, const sidespan_span *parent, sidespan_span **ret)
{
        int r = sidespan_span_start(c, parent, "chat gpt-4o", SIDESPAN_KIND_CLIENT, ret);

        if (r < 0 || shape == BENCH_AGENT_BARE)
                return r;
        (void)sidespan_span_set_str(*ret, "gen_ai.operation.name", "chat");
        (void)sidespan_span_set_str(*ret, "gen_ai.provider.name", "openai");
        (void)sidespan_span_set_str(*ret, "gen_ai.request.model", rt("gpt-4o"));
        (void)sidespan_span_set_double(*ret, "gen_ai.request.temperature", 0.2);
        (void)sidespan_span_set_str(*ret, "gen_ai.response.model", rt("gpt-4o-2024-08-06"));
        (void)sidespan_span_set_str(*ret, "gen_ai.response.id", rt("chatcmpl-bench"));
        (void)sidespan_span_set_str(*ret, "server.address", rt("api.openai.com"));
        (void)sidespan_span_set_int(*ret, "gen_ai.usage.input_tokens", 412);
        (void)sidespan_span_set_int(*ret, "gen_ai.usage.output_tokens", 46);
        if (shape == BENCH_AGENT_NO_CONTENT)
                return 0;
        (void)sidespan_span_set_str(*ret, "gen_ai.input.messages", chat_in);
        (void)sidespan_span_set_str(*ret, "gen_ai.output.messages", chat_out);
        return 0;
}

static int tool(sidespan_client *c, const sidespan_span *parent, sidespan_span **ret)
{
        int r = sidespan_span_start(c, parent, "tool.execute", SIDESPAN_KIND_INTERNAL, ret);

        if (r < 0 || shape == BENCH_AGENT_BARE)
                return r;
        (void)sidespan_span_set_str(*ret, "upsonic.tool.name", "get_weather");
        (void)sidespan_span_set_str(*ret, "upsonic.tool.call_id", rt("call_8f2a1c"));
        (void)sidespan_span_set_str(*ret, "gen_ai.tool.call.arguments",
                                    rt("{\"city\":\"Paris\",\"units\":\"metric\"}"));
        (void)sidespan_span_set_str(*ret, "gen_ai.tool.call.result",
                                    rt("{\"temp_c\":18,\"sky\":\"cloudy\"}"));
        (void)sidespan_span_set_bool(*ret, "upsonic.tool.success", true);
        return 0;
}

static int end(sidespan_span *s, int r)
{
        int e = sidespan_span_end(s, SIDESPAN_STATUS_OK, NULL);

        return r < 0 ? r : e;
}

/* The model step's children, in order: chat, tool, tool, chat. */
static int model_children(sidespan_client *c, const sidespan_span *parent)
{
        int (*const kinds[])(sidespan_client *, const sidespan_span *,
                             sidespan_span **) = {chat, tool, tool, chat};
        sidespan_span *s;
        int r = 0;

        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && r == 0; i++) {
                r = kinds[i](c, parent, &s);
                if (r == 0)
                        r = end(s, 0);
        }
        return r;
}

int bench_agent_run(sidespan_client *c)
{
        sidespan_span *run, *p, *s;
        int r = agent(c, &run);

        if (r < 0)
                return r;
        r = pipeline(c, run, &p);
        if (r < 0)
                return end(run, r);
        for (int i = 0; i < 24 && r == 0; i++) {
                r = step(c, p, i, &s);
                if (r < 0)
                        break;
                if (i == 14)
                        r = model_children(c, s);
                r = end(s, r);
        }
        r = end(p, r);
        return end(run, r);
}

int bench_agent_span(sidespan_client *c, const sidespan_span *parent, long k)
{
        sidespan_span *s;
        int r;

        k %= BENCH_AGENT_SPANS;
        if (k == 0)
                r = agent(c, &s);
        else if (k == 1)
                r = pipeline(c, parent, &s);
        else if (k < 26)
                r = step(c, parent, (int)k - 2, &s);
        else if (k == 26 || k == 29)
                r = chat(c, parent, &s);
        else
                r = tool(c, parent, &s);
        return r < 0 ? r : end(s, 0);
}
