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

#include <errno.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
        ss_mp_map attrs_bytes; /* ss_wire_decode_zone() only: attrs as bytes, attrs then NULL */
        const msgpack_object_map *options; /* trace_state (str), flags (uint); may be NULL
                                            * from ss_wire_decode_zone(): read them below */
        uint32_t flags;     /* options' flags, when a positive integer to UINT32_MAX; else 0 */
        ss_str trace_state; /* options' trace_state, when a string (ptr NULL: none) */
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
                        ss_mp_map attrs_bytes; /* as in ss_msg_span */
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
 * msgpack writers for the client's hot path: each writes one value at p, into room the
 * caller made (ss_buf_reserve()), and returns the end. ss_mp_put_be() writes 2, 4 or 8
 * big-endian bytes. The encodings are msgpack-c's
 * (the shortest one), so what they write decodes as if msgpack_pack_*() had packed it.
 */
#define SS_MP_HEAD_MAX 5u /* the longest str, array or map header */

static inline uint8_t *ss_mp_put_be(uint8_t *p, uint64_t v, unsigned bytes)
{
        /* bytes is a constant at every call: one byte swap and one store each. */
        if (bytes == 8) {
                uint64_t x = __builtin_bswap64(v);

                memcpy(p, &x, 8);
        } else if (bytes == 4) {
                uint32_t x = __builtin_bswap32((uint32_t)v);

                memcpy(p, &x, 4);
        } else {
                uint16_t x = __builtin_bswap16((uint16_t)v);

                memcpy(p, &x, 2);
        }
        return p + bytes;
}

/* The length of the header of a string of n bytes (n <= UINT32_MAX). */
static inline size_t ss_mp_str_head_len(size_t n)
{
        return n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
}

static inline uint8_t *ss_mp_put_str_head(uint8_t *p, uint32_t n)
{
        if (n < 32) {
                *p++ = (uint8_t)(0xa0 | n);
                return p;
        }
        if (n < 256) {
                *p++ = 0xd9;
                *p++ = (uint8_t)n;
                return p;
        }
        if (n < 65536) {
                *p++ = 0xda;
                return ss_mp_put_be(p, n, 2);
        }
        *p++ = 0xdb;
        return ss_mp_put_be(p, n, 4);
}

static inline uint8_t *ss_mp_put_str(uint8_t *p, const char *s, uint32_t n)
{
        p = ss_mp_put_str_head(p, n);
        ss_copy(p, s, n);
        return p + n;
}

/* Array (0x90, 0xdc, 0xdd) or map (0x80, 0xde, 0xdf) header of n elements. */
static inline uint8_t *ss_mp_put_container(uint8_t *p, uint32_t n, bool map)
{
        if (n < 16) {
                *p++ = (uint8_t)((map ? 0x80 : 0x90) | n);
                return p;
        }
        if (n < 65536) {
                *p++ = map ? 0xde : 0xdc;
                return ss_mp_put_be(p, n, 2);
        }
        *p++ = map ? 0xdf : 0xdd;
        return ss_mp_put_be(p, n, 4);
}

/* At most 9 bytes. */
static inline uint8_t *ss_mp_put_uint(uint8_t *p, uint64_t v)
{
        if (v < 128) {
                *p++ = (uint8_t)v;
                return p;
        }
        if (v < 256) {
                *p++ = 0xcc;
                *p++ = (uint8_t)v;
                return p;
        }
        if (v < 65536) {
                *p++ = 0xcd;
                return ss_mp_put_be(p, v, 2);
        }
        if (v <= UINT32_MAX) {
                *p++ = 0xce;
                return ss_mp_put_be(p, v, 4);
        }
        *p++ = 0xcf;
        return ss_mp_put_be(p, v, 8);
}

/* At most 9 bytes. */
static inline uint8_t *ss_mp_put_int(uint8_t *p, int64_t v)
{
        if (v >= 0)
                return ss_mp_put_uint(p, (uint64_t)v);
        if (v >= -32) {
                *p++ = (uint8_t)(int8_t)v;
                return p;
        }
        if (v >= INT8_MIN) {
                *p++ = 0xd0;
                *p++ = (uint8_t)(int8_t)v;
                return p;
        }
        if (v >= INT16_MIN) {
                *p++ = 0xd1;
                return ss_mp_put_be(p, (uint64_t)v, 2);
        }
        if (v >= INT32_MIN) {
                *p++ = 0xd2;
                return ss_mp_put_be(p, (uint64_t)v, 4);
        }
        *p++ = 0xd3;
        return ss_mp_put_be(p, (uint64_t)v, 8);
}

/* 9 bytes. */
static inline uint8_t *ss_mp_put_double(uint8_t *p, double d)
{
        uint64_t v;

        memcpy(&v, &d, sizeof(v));
        *p++ = 0xcb;
        return ss_mp_put_be(p, v, 8);
}

static inline uint8_t *ss_mp_put_bool(uint8_t *p, bool b)
{
        *p++ = b ? 0xc3 : 0xc2;
        return p;
}

/* An id as bin 8 (n < 256 bytes): 2 + n bytes. */
static inline uint8_t *ss_mp_put_id(uint8_t *p, const uint8_t *id, uint8_t n)
{
        *p++ = 0xc4;
        *p++ = n;
        memcpy(p, id, n);
        return p + n;
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
 * zone cannot grow. ret_root (may be NULL) gets the frame's object. Without
 * ret_root, the attributes of a SPAN_START or SPAN_END may be left as their
 * bytes, checked (attrs_bytes, with attrs NULL): the daemon reads them once,
 * into the span.
 */
int ss_wire_decode_zone(const uint8_t *payload, size_t len, msgpack_zone *zone, ss_msg *ret,
                        msgpack_object *ret_root);

/* 0 when every key is a non-empty string and every value a legal attribute value. */
int ss_wire_check_attrs(const msgpack_object_map *attrs);

/* The pair among kv[0..n) whose key is the string key (len bytes), or NULL. */
const msgpack_object_kv *ss_wire_kv_find(const msgpack_object_kv *kv, uint32_t n, const char *key,
                                         size_t len);

/* The value under the string key in m (which may be NULL), or NULL: inline, so that a
 * literal key's length is a constant. */
static inline const msgpack_object *ss_wire_map_get(const msgpack_object_map *m, const char *key)
{
        const msgpack_object_kv *kv = m ? ss_wire_kv_find(m->ptr, m->size, key, strlen(key)) : NULL;

        return kv ? &kv->val : NULL;
}

/* Read s->options into s->flags and s->trace_state (the first of each key counts), as the
 * decoders do: for a message made by hand. */
void ss_wire_span_options(ss_msg_span *s);

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
/*
 * SPAN_START in two steps, so that its attributes are packed straight into the frame:
 * ss_wire_span_start_open() appends the frame header and the fields up to the attributes'
 * map header (5 bytes whose count the close fills in) and sets *ret; the caller then appends
 * the map body (pairs) to b; ss_wire_span_start_close() writes the count, appends options
 * and the frame length. Both return 0 or -EMSGSIZE / -ENOBUFS / -ENOMEM; after a failure
 * of either, b is as it was before the open. The calling thread's, never blocks.
 */
typedef struct ss_wire_open {
        size_t start;  /* where the frame begins in b */
        size_t map_at; /* where the attributes' map header is */
} ss_wire_open;
int ss_wire_span_start_open(ss_buf *b, const ss_span_head *h, ss_wire_open *ret);
int ss_wire_span_start_close(ss_buf *b, const ss_wire_open *o, size_t max_frame, uint32_t n_attrs,
                             const ss_rawmap *options);

/* SPAN_START's array header and fields up to the start time, at p (room made). */
static inline uint8_t *ss_wire_put_start_fields(uint8_t *p, const ss_span_head *h)
{
        *p++ = 0x99; /* an array of 9: type and 8 fields */
        *p++ = SS_MSG_SPAN_START;
        p = ss_mp_put_id(p, h->trace_id, SS_TRACE_ID_LEN);
        p = ss_mp_put_id(p, h->span_id, SS_SPAN_ID_LEN);
        if (h->parent_id)
                p = ss_mp_put_id(p, h->parent_id, SS_SPAN_ID_LEN);
        else
                *p++ = 0xc0;
        p = ss_mp_put_str(p, h->name ? h->name : "", (uint32_t)h->name_len);
        p = ss_mp_put_int(p, h->kind);
        return ss_mp_put_uint(p, h->start_ns);
}

/*
 * SPAN_START without attributes written whole at out, which has room for
 * SS_SPAN_START_MAX(h->name_len, options->len) bytes: the frame's length, or -EMSGSIZE
 * past max_frame. For spans whose attributes come later: no buffer to manage.
 */
#define SS_SPAN_START_MAX(name_len, opt_len)                                                       \
        (SS_FRAME_HEADER + 1 + 1 + (2 + SS_TRACE_ID_LEN) + 2 * (2 + SS_SPAN_ID_LEN) + 5 +          \
         (name_len) + 9 + 9 + 5 + SS_MP_HEAD_MAX + (opt_len))
/* Inline (the client writes one a span): with the call and the head passed through memory
 * gone, a span costs its thread some 45 instructions fewer, with ss_wire_span_end_head(). */
static inline int ss_wire_span_start_write(uint8_t *out, size_t max_frame, const ss_span_head *h,
                                           const ss_rawmap *options)
{
        size_t olen = options ? options->len : 0, n;
        uint8_t *p;

        if (h->name_len > UINT32_MAX)
                return -EMSGSIZE;
        p = ss_wire_put_start_fields(out + SS_FRAME_HEADER, h);
        *p++ = 0x80; /* no attributes */
        p = ss_mp_put_container(p, options ? options->count : 0, true);
        /* A few bytes: inline moves, not a call. */
        if (olen)
                ss_copy(p, (const char *)options->data, olen);
        n = (size_t)(p - out) + olen - SS_FRAME_HEADER;
        if (n > max_frame || n > UINT32_MAX)
                return -EMSGSIZE;
        ss_frame_header_put(out, (uint32_t)n);
        return (int)(n + SS_FRAME_HEADER);
}

/*
 * SPAN_END written in front of its attributes, which the caller packed into its own buffer
 * beforehand: the frame header and the fields before the map body (status message nil)
 * are written back to front so that they end at end, where a map body of body_len bytes
 * with n_attrs pairs begins, and no byte of the body moves. Returns the bytes written
 * (at most SS_SPAN_END_HEAD_MAX), so the frame is those bytes plus the body, or -EMSGSIZE
 * past max_frame. Any thread, never blocks.
 */
#define SS_SPAN_END_HEAD_MAX (SS_FRAME_HEADER + 1 + 1 + 2 + SS_SPAN_ID_LEN + 9 + 9 + 1 + 5)
/* Inline, as ss_wire_span_start_write() is. */
static inline int ss_wire_span_end_head(uint8_t *end, size_t max_frame, const uint8_t *span_id,
                                        uint64_t end_ns, int status_code, uint32_t n_attrs,
                                        size_t body_len)
{
        uint8_t head[SS_SPAN_END_HEAD_MAX], *p = head + SS_FRAME_HEADER;
        size_t n, payload;

        *p++ = 0x96; /* an array of 6: type and 5 fields */
        *p++ = SS_MSG_SPAN_END;
        p = ss_mp_put_id(p, span_id, SS_SPAN_ID_LEN);
        p = ss_mp_put_uint(p, end_ns);
        p = ss_mp_put_int(p, status_code);
        *p++ = 0xc0; /* no status message */
        p = ss_mp_put_container(p, n_attrs, true);
        n = (size_t)(p - head);
        payload = n - SS_FRAME_HEADER + body_len;
        if (payload > max_frame || payload > UINT32_MAX || body_len > UINT32_MAX)
                return -EMSGSIZE;
        ss_frame_header_put(head, (uint32_t)payload);
        ss_copy(end - n, (const char *)head, n);
        return (int)n;
}

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
