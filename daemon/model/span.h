/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's span model: what the assembler builds from wire messages and
 * what every later stage reads. A span owns a store (an arena whose first
 * region is allocated with the span) holding its strings and attribute
 * values (msgpack_object trees deep-copied out of the frame that carried
 * them, model/value.h), so it outlives the frame and the connection. Spans
 * are reference counted: several exporters may hold one. Loop thread only.
 */

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "model/attrs.h"
#include "model/resource.h"
#include "ss-wire.h"

typedef struct ss_event {
        uint64_t time_ns;
        msgpack_object_str name;
        ss_attrs attrs;
        uint32_t dropped_attrs; /* past ss_limits.max_attrs */
} ss_event;

struct ss_rollup;

typedef struct ss_span {
        unsigned refs;
        uint8_t trace_id[SS_TRACE_ID_LEN];
        uint8_t span_id[SS_SPAN_ID_LEN];
        uint8_t parent_id[SS_SPAN_ID_LEN];
        bool has_parent;
        bool ended;
        uint8_t kind;        /* OTLP SpanKind */
        uint8_t status_code; /* OTLP Status.code */
        bool head_drop;      /* the head sampler dropped its trace: only a tail policy keeps it */
        bool discard;        /* dropped at its start (head, no tail policy): holds nothing */
        bool no_content;     /* its client said include_content=false */
        uint8_t pool_class;  /* its allocation's (base/pool.h), 0: malloc'd */
        uint32_t flags;      /* OTLP Span.flags */
        uint64_t start_ns;
        uint64_t end_ns;
        msgpack_object_str name;
        msgpack_object_str status_msg;  /* size 0 when none */
        msgpack_object_str trace_state; /* size 0 when none */
        ss_attrs attrs;
        ss_event *events;
        uint32_t n_events;
        uint32_t cap_events;
        uint32_t dropped_attrs;
        uint32_t dropped_events;
        double head_rate;      /* the rate its trace's head decision used; < 0: a remote parent's */
        ss_resource *resource; /* counted reference, never NULL */
        struct ss_rollup *rollup; /* trace/'s: an open agent.run's roll-up so far, else NULL */
        ss_store store;           /* names, values: bounded by ss_limits.max_bytes */
} ss_span;

/* W3C's limit on a tracestate; a longer one is left out. */
#define SS_TRACE_STATE_MAX 512u
/* Replaced values are reclaimed (the store rebuilt) once they take this much and more than
 * the live ones. */
#define SS_SPAN_COMPACT_MIN ((uint64_t)64 << 10)

/* What a span costs to hold and to send, about: its stored bytes and a fixed part. */
#define SS_SPAN_OVERHEAD 256u
static inline uint64_t ss_span_size(const ss_span *s)
{
        return s->store.live + SS_SPAN_OVERHEAD;
}

/* New span with one reference, from a SPAN_START or SPAN message (attributes,
 * options and, for SPAN, end and events included). Takes a resource ref.
 * NULL on out-of-memory. */
ss_span *ss_span_new(const ss_msg_span *m, bool whole, ss_resource *r, const ss_limits *lim);

/* Merge attributes: a later value for a key replaces the earlier one (its bytes
 * reclaimed). What the limits refuse is dropped and counted in dropped_attrs
 * and lim->hits. -ENOMEM. */
int ss_span_set_attrs(ss_span *s, const msgpack_object_map *m, const ss_limits *lim);

/* ss_span_set_attrs() of a message's attributes: decoded (m), or left as bytes (bytes->n
 * pairs; ss_wire_decode_zone()). */
int ss_span_set_msg_attrs(ss_span *s, const msgpack_object_map *m, const ss_mp_map *bytes,
                          const ss_limits *lim);

/* Append an event; past lim->max_events or lim->max_bytes it is dropped and counted
 * in dropped_events. Its name is cut to lim->max_name_len. -ENOMEM. */
int ss_span_add_event(ss_span *s, const char *name, uint32_t name_len, uint64_t time_ns,
                      const msgpack_object_map *attrs, const ss_limits *lim);

/* Mark ended (an end before the start is clamped to the start). A status ERROR once set is
 * never downgraded. The message is cut to lim->max_name_len (lim may be NULL). */
void ss_span_end_limited(ss_span *s, uint64_t end_ns, int status_code, const char *msg,
                         uint32_t msg_len, const ss_limits *lim);

/* ss_span_end_limited() without limits. */
void ss_span_end(ss_span *s, uint64_t end_ns, int status_code, const char *msg, uint32_t msg_len);

/* Set one string attribute (daemon-derived, e.g. sidespan.orphaned). -ENOMEM. */
int ss_span_set_str(ss_span *s, const char *key, const char *value);
int ss_span_set_bool(ss_span *s, const char *key, bool value);

int ss_span_set_u64(ss_span *s, const char *key, uint64_t value);
int ss_span_set_double(ss_span *s, const char *key, double value);

/* Replace the tracestate (len 0: none). -EINVAL past SS_TRACE_STATE_MAX, -ENOMEM. */
int ss_span_set_trace_state(ss_span *s, const char *value, size_t len);

/* A deep copy with one reference, sharing only the resource: for a stage that changes
 * spans one way for one exporter and another way for another. NULL on out-of-memory. */
ss_span *ss_span_clone(const ss_span *s);

ss_span *ss_span_ref(ss_span *s);
void ss_span_unref(ss_span *s); /* accepts NULL */
