/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The sidespan wire protocol, version 1 (DESIGN.md section 3): frames of a
 * 4-byte big-endian length N (1 <= N <= max_frame) followed by N bytes
 * holding one msgpack array whose first element is the message type.
 *
 * Encoders append one whole frame to an ss_buf or leave it unchanged.
 * The decoder points into the msgpack object tree of one frame: what it
 * returns lives as long as the msgpack_unpacked it was given.
 * Pure functions on caller-owned memory: any thread, never blocks.
 */

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ss-buf.h"
#include "ss-msgpack.h"

#define SS_PROTOCOL_VERSION  1u
#define SS_FRAME_HEADER      4u
#define SS_MAX_FRAME_DEFAULT (1u << 20)
#define SS_MAX_FRAME_LIMIT   (64u << 20)
#define SS_TRACE_ID_LEN      16u
#define SS_SPAN_ID_LEN       8u
#define SS_ATTR_DEPTH_MAX    8u

enum ss_msg_type {
        /* client to daemon */
        SS_MSG_HELLO = 1,
        SS_MSG_SPAN_START = 2,
        SS_MSG_SPAN_ATTRS = 3,
        SS_MSG_SPAN_EVENT = 4,
        SS_MSG_SPAN_END = 5,
        SS_MSG_SPAN = 6,
        SS_MSG_FLUSH = 7,
        SS_MSG_STATS = 8,
        SS_MSG_SUBSCRIBE = 9,
        /* daemon to client */
        SS_MSG_FLUSHED = 65,
        SS_MSG_STATS_REPLY = 66,
        SS_MSG_TRACE = 67,
};

/*
 * SUBSCRIBE [9, filter] and the TRACE messages the daemon then streams to
 * that connection: [67, dropped, omitted, [span, ...]], one per finished
 * trace (or chunk of a large one) the daemon keeps, where dropped counts the
 * traces this subscriber missed so far because it read too slowly and
 * omitted the spans of this trace left out past SS_TAP_MAX_SPANS. A span is
 * [trace_id, span_id, parent_id or nil, name, kind, start_ns, end_ns,
 * status_code, service.name, attrs]: a summary, never content; attrs holds
 * only the SS_TAP_KEYS the span has.
 */
#define SS_SUB_SERVICE     "service"         /* str: a resource's service.name */
#define SS_SUB_AGENT       "agent"           /* str: upsonic.agent.name on a span */
#define SS_SUB_STATUS      "status"          /* "error" or "ok" (no span with ERROR) */
#define SS_SUB_MIN_DUR_MS  "min_duration_ms" /* uint: the trace's span of time */
#define SS_SUB_MAX_STR     256u              /* a filter string longer is refused */
#define SS_TAP_MAX_SPANS   1000u
#define SS_TAP_SPAN_FIELDS 10u
#define SS_TAP_KEYS                                                                                \
        "upsonic.agent.name", "upsonic.agent.model", "upsonic.status", "upsonic.total_cost",       \
            "upsonic.tool.name", "upsonic.usage.total_tokens", "gen_ai.provider.name",             \
            "gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.input_tokens",          \
            "gen_ai.usage.output_tokens", "gen_ai.usage.cost", "error.type"
#define SS_TAP_N_KEYS 13u

/*
 * HELLO option keys, named once for both sides. Every key but the protocol
 * ones below becomes a resource attribute of the session; the client sets
 * all of these itself, so a caller's extra resource attributes never carry one.
 */
#define SS_HELLO_SERVICE_NAME    "service.name"
#define SS_HELLO_PROCESS_PID     "process.pid"
#define SS_HELLO_SDK_NAME        "sdk.name"
#define SS_HELLO_SDK_VERSION     "sdk.version"
#define SS_HELLO_INSTANCE        "instance"
#define SS_HELLO_SAMPLE_RATE     "sample_rate"
#define SS_HELLO_INCLUDE_CONTENT "include_content"
#define SS_HELLO_N_KEYS          7u

/* SPAN_START options keys. */
#define SS_OPT_TRACE_STATE "trace_state"
#define SS_OPT_FLAGS       "flags"

/* OTLP Status.code */
enum { SS_STATUS_UNSET = 0, SS_STATUS_OK = 1, SS_STATUS_ERROR = 2 };
/* OTLP SpanKind */
enum {
        SS_KIND_UNSPECIFIED = 0,
        SS_KIND_INTERNAL = 1,
        SS_KIND_SERVER = 2,
        SS_KIND_CLIENT = 3,
        SS_KIND_PRODUCER = 4,
        SS_KIND_CONSUMER = 5
};

typedef struct ss_str {
        const char *ptr;
        uint32_t len;
} ss_str;

/* A msgpack map body already packed by the caller: count pairs in len bytes. */
typedef struct ss_rawmap {
        uint32_t count;
        const uint8_t *data;
        size_t len;
} ss_rawmap;

/* The head of a span as the client encodes it. parent_id NULL for a root. */
typedef struct ss_span_head {
        const uint8_t *trace_id; /* SS_TRACE_ID_LEN bytes */
        const uint8_t *span_id;  /* SS_SPAN_ID_LEN bytes */
        const uint8_t *parent_id;
        const char *name;
        size_t name_len;
        int kind;
        uint64_t start_ns;
} ss_span_head;

/* Decoded span head plus, for SS_MSG_SPAN, its end. Maps may be NULL. */
typedef struct ss_msg_span {
        const uint8_t *trace_id;
        const uint8_t *span_id;
        const uint8_t *parent_id; /* NULL for a root */
        ss_str name;
        int32_t kind;
        uint64_t start_ns;
        const msgpack_object_map *attrs;
        const msgpack_object_map *options; /* trace_state (str), flags (uint) */
        /* SS_MSG_SPAN only */
        uint64_t end_ns;
        int32_t status_code;
        ss_str status_msg;                  /* ptr NULL when nil */
        const msgpack_object_array *events; /* of [name, time_ns, attrs] */
} ss_msg_span;

typedef struct ss_msg {
        uint32_t type;
        union {
                struct {
                        uint64_t version;
                        const msgpack_object_map *options;
                } hello;
                ss_msg_span span; /* SPAN_START and SPAN */
                struct {
                        const uint8_t *span_id;
                        const msgpack_object_map *attrs;
                } attrs;
                struct {
                        const uint8_t *span_id;
                        ss_str name;
                        uint64_t time_ns;
                        const msgpack_object_map *attrs;
                } event;
                struct {
                        const uint8_t *span_id;
                        uint64_t end_ns;
                        int32_t status_code;
                        ss_str status_msg; /* ptr NULL when nil */
                        const msgpack_object_map *attrs;
                } end;
                struct {
                        uint64_t seq; /* FLUSH, FLUSHED, STATS request id */
                } seq;
                struct {
                        const msgpack_object_map *filter; /* SS_SUB_* keys; NULL: all */
                } subscribe;
                struct {
                        uint64_t dropped;
                        uint64_t omitted;
                        const msgpack_object_array *spans; /* check with ss_wire_tap_span() */
                } trace;
                struct {
                        uint64_t id;                        /* the STATS request's */
                        const msgpack_object_map *counters; /* str -> uint, checked */
                } stats;
        };
} ss_msg;

/* One span of a TRACE message. */
typedef struct ss_tap_span {
        const uint8_t *trace_id;
        const uint8_t *span_id;
        const uint8_t *parent_id; /* NULL for a root */
        ss_str name;
        int32_t kind;
        uint64_t start_ns;
        uint64_t end_ns;
        int32_t status_code;
        ss_str service;
        const msgpack_object_kv *attrs;
        uint32_t n_attrs;
} ss_tap_span;

/* One named counter of a STATS reply. */
typedef struct ss_stat {
        const char *name;
        uint64_t value;
} ss_stat;

/* The frame header: the payload length as 4 big-endian bytes. */
static inline void ss_frame_header_put(uint8_t *p, uint32_t len)
{
        p[0] = (uint8_t)(len >> 24);
        p[1] = (uint8_t)(len >> 16);
        p[2] = (uint8_t)(len >> 8);
        p[3] = (uint8_t)len;
}

static inline uint32_t ss_frame_header_get(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * True when key (len bytes) is one of the SS_HELLO_* keys. With
 * ret_protocol, says whether it is a protocol option (instance, sample_rate,
 * include_content, sdk.name, sdk.version) rather than a resource attribute
 * (service.name, process.pid).
 */
bool ss_hello_key(const char *key, size_t len, bool *ret_protocol);

/*
 * Split a frame off the front of data. Returns the bytes the frame takes
 * (header included) with ret_payload and ret_len set, 0 if more bytes are
 * needed, -EMSGSIZE if the announced length exceeds max_frame, -EBADMSG for
 * a zero length.
 */
int ss_frame_parse(const uint8_t *data, size_t len, size_t max_frame, const uint8_t **ret_payload,
                   size_t *ret_len);

/*
 * Decode one frame payload (checked with ss_msgpack_check() first). 0 on success; -EBADMSG when it
 * is not exactly one msgpack object; -EPROTO when a known message has the wrong shape; -ENOTSUP
 * (with ret->type set) for an unknown message type, which the caller skips. unpacked must be
 * initialised; its zone holds what ret points to.
 */
int ss_wire_decode(const uint8_t *payload, size_t len, msgpack_unpacked *unpacked, ss_msg *ret);

/*
 * ss_wire_decode() into a zone the caller keeps and clears between frames
 * (msgpack_zone_clear()), so a frame costs no allocation; -ENOMEM when the
 * zone cannot grow. ret_root (may be NULL) gets the frame's object.
 */
int ss_wire_decode_zone(const uint8_t *payload, size_t len, msgpack_zone *zone, ss_msg *ret,
                        msgpack_object *ret_root);

/* 0 when every key is a non-empty string and every value a legal attribute value. */
int ss_wire_check_attrs(const msgpack_object_map *attrs);

/* The pair among kv[0..n) whose key is the string key (len bytes), or NULL. */
const msgpack_object_kv *ss_wire_kv_find(const msgpack_object_kv *kv, uint32_t n, const char *key,
                                         size_t len);

/* The value under the string key in m (which may be NULL), or NULL. */
const msgpack_object *ss_wire_map_get(const msgpack_object_map *m, const char *key);

/* A short static name of a message type, "unknown" for others. */
const char *ss_msg_type_name(uint32_t type);

/* Encoders. Each appends one frame of at most max_frame bytes (payload) to
 * b, or returns -EMSGSIZE / -ENOBUFS / -ENOMEM with b unchanged. A NULL
 * ss_rawmap means an empty map. */
int ss_wire_put_hello(ss_buf *b, size_t max_frame, const ss_rawmap *options);
int ss_wire_put_span_start(ss_buf *b, size_t max_frame, const ss_span_head *h,
                           const ss_rawmap *attrs, const ss_rawmap *options);
int ss_wire_put_span_event(ss_buf *b, size_t max_frame, const uint8_t *span_id, const char *name,
                           uint64_t time_ns, const ss_rawmap *attrs);
int ss_wire_put_span_end(ss_buf *b, size_t max_frame, const uint8_t *span_id, uint64_t end_ns,
                         int status_code, const char *status_msg, const ss_rawmap *attrs);
/* FLUSH, FLUSHED and STATS: [type, seq]. */
int ss_wire_put_seq(ss_buf *b, size_t max_frame, uint32_t type, uint64_t seq);
/* STATS_REPLY: [66, id, {name: value, ...}] with the n counters of v. */
int ss_wire_put_stats(ss_buf *b, size_t max_frame, uint64_t id, const ss_stat *v, size_t n);
/* SUBSCRIBE: [9, filter]. */
int ss_wire_put_subscribe(ss_buf *b, size_t max_frame, const ss_rawmap *filter);

/*
 * A TRACE message in two parts, so that one body serves every subscriber:
 * ss_wire_pack_tap_span() packs each span of the body (an msgpack array of
 * them the caller begins), and ss_wire_trace_head() writes into head (at most
 * SS_TRACE_HEAD_MAX bytes) the frame header and the fields before the body of
 * body_len bytes. Returns the head's length.
 */
#define SS_TRACE_HEAD_MAX (SS_FRAME_HEADER + 1 + 1 + 9 + 9)
int ss_wire_pack_tap_span(msgpack_packer *pk, const ss_tap_span *s);
size_t ss_wire_trace_head(uint8_t *head, uint64_t dropped, uint64_t omitted, size_t body_len);

/* Decode element i of a TRACE message's spans: 0 or -EPROTO for the wrong shape. */
int ss_wire_tap_span(const msgpack_object *o, ss_tap_span *ret);
