/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The GenAI instruments and what a finished span records in them, after the
 * OpenTelemetry GenAI semantic conventions (../shared/notes/OTLP.md):
 *
 * - every model operation span (gen_ai.operation.name other than the agent
 *   and tool ones, or a span named "chat ..."): gen_ai.client.token.usage
 *   once per token type it reports, gen_ai.client.operation.duration (with
 *   error.type when it failed), gen_ai.server.time_to_first_token when it
 *   has a first-token event;
 * - every agent run (agent.run, or gen_ai.operation.name=invoke_agent):
 *   upsonic.agent.run.duration, upsonic.agent.tool_calls,
 *   upsonic.agent.executed_steps, upsonic.agent.runs by upsonic.status, and
 *   upsonic.cost by agent and model when its cost is known.
 *
 * The roll-ups (trace/rollup.c) have run before: a run's counts and cost are
 * the ones it is exported with. Loop thread.
 */

#include "metrics/registry.h"
#include "model/span.h"

typedef struct ss_genai_instruments {
        ss_instrument *token_usage;  /* gen_ai.client.token.usage, {token} */
        ss_instrument *duration;     /* gen_ai.client.operation.duration, s */
        ss_instrument *first_token;  /* gen_ai.server.time_to_first_token, s */
        ss_instrument *run_duration; /* upsonic.agent.run.duration, s */
        ss_instrument *tool_calls;   /* upsonic.agent.tool_calls, {call} per run */
        ss_instrument *steps;        /* upsonic.agent.executed_steps, {step} per run */
        ss_instrument *runs;         /* upsonic.agent.runs, {run} */
        ss_instrument *cost;         /* upsonic.cost, USD */
} ss_genai_instruments;

/* The instruments, in r. 0 or -ENOMEM. */
int ss_genai_instruments_init(ss_genai_instruments *g, ss_registry *r);

/* What a span is to the metrics: decided once per span, however many registries record it. */
typedef enum ss_genai_kind {
        SS_GENAI_NONE = 0,
        SS_GENAI_OPERATION, /* a model operation (a chat, an embedding ...): the client metrics
                               and the per-model headline count it */
        SS_GENAI_RUN,       /* an agent run */
} ss_genai_kind;

ss_genai_kind ss_genai_kind_of(const ss_span *s);

/* What span s, of kind (ss_genai_kind_of(s)), records: nothing for SS_GENAI_NONE. 0 or
 * -ENOMEM (what could be recorded was). */
int ss_genai_record(const ss_genai_instruments *g, const ss_span *s, ss_genai_kind kind);
