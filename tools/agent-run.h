/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One synthetic agent run through libsidespan, shaped as TRACE-MODEL.md
 * says: agent.run, pipeline.execute, the 24 pipeline steps, and under the
 * model execution step two chat spans and two tool calls (30 spans). Shared
 * by sidespan-demo-agent and `sidespan emit`. Any thread; blocks only for the
 * simulated latency.
 */

#include <stdbool.h>
#include <stddef.h>

#include "sidespan.h"

typedef struct agent_run_config {
        sidespan_client *client;
        const char *agent; /* upsonic.agent.name */
        const char *model;
        bool streaming;  /* stream_* step names, time to first token on the run */
        long latency_ms; /* simulated model latency per call; 0: none */
        bool fail;       /* the second tool call fails, and with it the run (ERROR) */
} agent_run_config;

/*
 * Emit run number n (it names the run and its session); the root's W3C
 * traceparent goes into tp (tp_size bytes; "(tracing disabled)" when the
 * client is). 0, or the library's -errno for a span it refused.
 */
int agent_run_emit(const agent_run_config *cfg, long n, char *tp, size_t tp_size);
