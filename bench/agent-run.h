/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The agent-shaped workload every benchmark measures (TRACE-MODEL.md): one
 * agent run of 30 spans through the generic span API, with the attributes
 * the reference framework sets and about 1 KiB of content in each chat
 * span's gen_ai.input.messages and gen_ai.output.messages:
 *
 *   agent.run
 *     pipeline.execute
 *       pipeline.step.<name> x 24; the 15th, model_execution, holds
 *         chat gpt-4o, tool.execute, tool.execute, chat gpt-4o
 */

#include "sidespan.h"

#define BENCH_AGENT_SPANS 30

/* What of the run is emitted: all of it; all but the chat spans' messages; or its spans
 * alone, with their names, kinds and hierarchy and no attribute (what a span costs the
 * daemon whatever it carries). For the daemon's benchmark; before any thread emits. */
typedef enum bench_agent_shape {
        BENCH_AGENT_FULL,
        BENCH_AGENT_NO_CONTENT,
        BENCH_AGENT_BARE,
} bench_agent_shape;

void bench_agent_set_shape(bench_agent_shape s);

/* Build the chat content once, before any thread emits. */
void bench_agent_init(void);

/* One whole run as its hierarchy: 0 or the first error of the library. */
int bench_agent_run(sidespan_client *c);

/*
 * Span k % 30 of the run alone, with the attributes it has in the run: the
 * unit of the calling thread's per-span cost. Span 0 (the run's own) is a
 * root, as in the run; the other 29 start below parent, a span the caller
 * keeps open, so that they cost what a child costs (no trace id, no
 * sampling decision).
 */
int bench_agent_span(sidespan_client *c, const sidespan_span *parent, long k);
