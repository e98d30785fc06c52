/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The span API's entry points for the GenAI helpers: starting a span with
 * attributes that travel in SPAN_START, below a local or remote parent.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attrs.h"
#include "options.h"
#include "sidespan.h"
#include "ss-buf.h"
#include "ss-wire.h"

/* The room in front of a span's attributes that SPAN_END's head is written into. */
#define SSC_END_ROOM SS_SPAN_END_HEAD_MAX

/* A span as the library holds it (sidespan.h declares it opaque): its caller's from start to
 * end, then the per-thread cache's (scratch.h). */
struct sidespan_span {
        sidespan_client *client;
        sidespan_span *next_free; /* in a thread's cache of spans, once ended */
        uint8_t trace_id[SS_TRACE_ID_LEN];
        uint8_t span_id[SS_SPAN_ID_LEN];
        bool sampled;
        /* Sampled and its SPAN_START queued. A span whose start was dropped (a full buffer)
         * sends nothing more: the daemon would skip an end without its start. */
        bool live;
        bool drop_content;       /* the client's !include_content, at hand for every attribute */
        const char *trace_state; /* the client's string or NULL; lives as long as the client */
        uint32_t n_attrs;
        /* SPAN_END being built in place: SSC_END_ROOM bytes its head is written into at the end,
         * then the attributes' map body, packed once, as they are set. */
        ss_buf end;
};

#define SSC_SPAN_OPTIONS_MAX 96 /* {"flags": u32, "trace_state": str<32} */

/*
 * What every span of a client shares, worked out once at open: the most a span's buffer
 * may hold, and the SPAN_START options map body of a sampled span below a local parent (or
 * none) carrying the client's trace state. Read-only after ssc_span_tmpl_init().
 */
typedef struct ssc_span_tmpl {
        size_t span_max;
        uint32_t opts_count;
        uint32_t opts_len;
        uint8_t opts[SSC_SPAN_OPTIONS_MAX];
} ssc_span_tmpl;

/* Fill t for a client of the settings cfg. Before the client is shared. */
void ssc_span_tmpl_init(ssc_span_tmpl *t, const ssc_config *cfg);

/* The context a new span descends from; the pointers are borrowed for the call. */
typedef struct ssc_span_parent {
        const uint8_t *trace_id;
        const uint8_t *span_id;
        bool sampled;
        bool remote;
        const char *trace_state;
} ssc_span_parent;

/*
 * Start a span below parent (NULL: a new root) with attributes that travel in
 * SPAN_START. The name is prefix (prefix_len bytes) followed by suffix (may be NULL).
 * On a NULL or disabled client, 0 with *ret NULL. Any thread; never blocks
 * beyond the queue's short lock. The caller owns *ret until sidespan_span_end().
 */
int ssc_span_start_n(sidespan_client *c, const ssc_span_parent *parent, const char *prefix,
                     size_t prefix_len, const char *suffix, int kind, const sidespan_attr *attrs,
                     size_t n, sidespan_span **ret);

/* ssc_span_start_n() of a NUL-terminated prefix, measured inline (a literal's at compile
 * time). */
static inline int ssc_span_start(sidespan_client *c, const ssc_span_parent *parent,
                                 const char *prefix, const char *suffix, int kind,
                                 const sidespan_attr *attrs, size_t n, sidespan_span **ret)
{
        return ssc_span_start_n(c, parent, prefix, ssc_len(prefix), suffix, kind, attrs, n, ret);
}

/* The parent context of a local span, filled into buf (NULL span: NULL). Any thread. */
const ssc_span_parent *ssc_span_parent_of(const sidespan_span *s, ssc_span_parent *buf);

/* Free s and its buffer, not through the thread's cache (scratch.h). Any thread. */
void ssc_span_release(sidespan_span *s);
