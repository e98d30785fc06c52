/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The control messages of the wire protocol, answered for any connection:
 * FLUSH (make the next stage hand on what it holds back, then say FLUSHED),
 * STATS (every counter the stages expose, as one STATS_REPLY) and SUBSCRIBE
 * (through the tap main.c gives it, ingest/tap.h). The
 * counter sources are registered by main.c, so control knows no stage but
 * the sink it flushes. Loop thread only; nothing blocks.
 */

#include <stdint.h>

#include "base/counters.h"
#include "ingest/tap.h"
#include "model/sink.h"
#include "ss-buf.h"

#define SS_CONTROL_MAX_SOURCES 16u
/* A STATS reply is a few KiB; the bound keeps a broken source from building a huge one. */
#define SS_CONTROL_MAX_REPLY (256u * 1024u)

typedef struct ss_control ss_control;

/* Control flushing flush_target (borrowed: must outlive control). 0 or -ENOMEM. */
int ss_control_new(ss_sink *flush_target, ss_control **ret);

void ss_control_free(ss_control *c); /* accepts NULL */

/* Add a source of counters: fn(ctx, out) appends them (ctx borrowed). 0 or -E2BIG. */
int ss_control_add_counters(ss_control *c, ss_counters_fn fn, const void *ctx);

/* Every counter of every source, appended to out. */
void ss_control_collect(const ss_control *c, ss_counters *out);

/* FLUSH seq: flush the sink and append the FLUSHED frame to out. 0 or -errno. */
int ss_control_flush(ss_control *c, uint64_t seq, ss_buf *out);

/* STATS id: append the STATS_REPLY frame to out. 0 or -errno. */
int ss_control_stats(const ss_control *c, uint64_t id, ss_buf *out);

/* The tap SUBSCRIBE joins (borrowed: must outlive every connection), or NULL: none. */
void ss_control_set_tap(ss_control *c, ss_tap *tap);
ss_tap *ss_control_tap(const ss_control *c);
