/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Agent-level roll-ups (TRACE-MODEL.md): what the spans under an agent.run
 * add up to, set on the run when it ends unless the client set it. The
 * assembler creates a roll-up when an agent.run span starts, feeds it every
 * span of the run's session that finishes beneath it, and applies it when
 * the run ends, before any sampling or content policy sees the trace.
 *
 * On agent.run (a key the client set is never overwritten):
 *   upsonic.tool_call_count           tool.execute spans
 *   gen_ai.usage.input_tokens, gen_ai.usage.output_tokens,
 *   upsonic.usage.cache_read_tokens, upsonic.usage.cache_write_tokens,
 *   upsonic.usage.reasoning_tokens    sums over the chat spans
 *   upsonic.usage.total_tokens        input + output
 *   upsonic.usage.requests            chat spans
 *   upsonic.pipeline.executed_steps   pipeline.step.* spans
 *   upsonic.model_execution_time      chat spans' durations, seconds
 *   upsonic.tool_execution_time       tool spans' durations, seconds
 *   upsonic.framework_overhead_time   run duration minus both, seconds (>= 0)
 *   upsonic.time_to_first_token       the first chat span's gen_ai.first_token event
 *                                     after that chat span's start, seconds
 *   upsonic.total_cost                USD, sum of the chat spans' costs, when every
 *                                     chat span with tokens had a known price
 * On each chat span: gen_ai.usage.cost (USD), when its model has a price.
 *
 * gen_ai.usage.input_tokens is taken to include the cache reads and writes
 * (OpenTelemetry's convention): those are priced at the cache prices and only
 * the rest at the input price. Reasoning tokens are part of output_tokens.
 *
 * Loop thread only; never blocks.
 */

#include <stdbool.h>
#include <stdint.h>

#include "base/counters.h"
#include "model/span.h"
#include "trace/pricing.h"

typedef struct ss_rollup_stats {
        uint64_t runs;            /* agent.run spans rolled up */
        uint64_t chat_costed;     /* chat spans given gen_ai.usage.cost */
        uint64_t unknown_model;   /* chat spans with tokens but no price */
        uint64_t client_set_kept; /* roll-up keys the client had set: left alone */
} ss_rollup_stats;

typedef struct ss_rollup ss_rollup;

/* True when s is an agent run ("agent.run"). */
bool ss_rollup_is_run(const ss_span *s);

/* A roll-up for a run that started; NULL on out-of-memory. */
ss_rollup *ss_rollup_new(void);
void ss_rollup_free(ss_rollup *r); /* accepts NULL */

/*
 * A span under the run finished (any depth; the caller knows it is under
 * the run). Chat spans are costed here (gen_ai.usage.cost set on child when
 * priced and not set by the client), so child is not const. -ENOMEM.
 */
int ss_rollup_child(ss_rollup *r, ss_span *child, const ss_pricing *p, ss_rollup_stats *st);

/* The run ended: set the roll-up attributes the client did not set. -ENOMEM. */
int ss_rollup_apply(const ss_rollup *r, ss_span *run, ss_rollup_stats *st);

/* Append r to pk as one msgpack array (the daemon's state file, trace/state.h). 0 or
 * -ENOMEM. */
int ss_rollup_pack(const ss_rollup *r, msgpack_packer *pk);

/* A roll-up from what ss_rollup_pack() wrote. -EBADMSG when o is not one, -ENOMEM. */
int ss_rollup_unpack(const msgpack_object *o, ss_rollup **ret);

/* "rollup.<field>" of st; an ss_counters_fn. */
void ss_rollup_counters(const void *stats, ss_counters *out);
