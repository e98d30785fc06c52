/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * libsidespan: hand span events of an AI agent to the sidespand daemon.
 *
 * The library never blocks the calling thread on I/O, never aborts and never
 * writes to stderr. A span call encodes its message into an in-process
 * bounded buffer and returns; one background thread per client writes the
 * buffer to the daemon's Unix socket, reconnecting with backoff when the
 * daemon is absent. When the buffer is full a message is dropped and counted
 * (sidespan_client_stats()).
 *
 * Errors: every function returning int returns >= 0 on success and -errno on
 * failure; sidespan_strerror() names them. Output parameters are written only
 * on success.
 *
 * Threads: a client may be used from any number of threads at once. A span
 * handle is used by one thread at a time (different spans on different
 * threads concurrently are fine).
 *
 * No-op handles: a NULL client and a disabled client (sidespan_client_open_env()
 * with tracing not enabled) accept every call and do nothing: span starts
 * return 0 with a NULL span, and every span function accepts a NULL span as a
 * no-op returning 0. Instrumented code therefore needs no "if tracing" branch.
 *
 * ABI: the structs that may grow carry their own size in a leading `size`
 * field, set by the matching *_init() inline function (compiled into the
 * caller, so an older caller keeps working with a newer library).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sidespan-version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SIDESPAN_EXPORT __attribute__((visibility("default")))

typedef struct sidespan_client sidespan_client;
typedef struct sidespan_span sidespan_span;

/* OTLP SpanKind. Values are never renumbered. */
enum {
        SIDESPAN_KIND_INTERNAL = 1,
        SIDESPAN_KIND_SERVER = 2,
        SIDESPAN_KIND_CLIENT = 3,
        SIDESPAN_KIND_PRODUCER = 4,
        SIDESPAN_KIND_CONSUMER = 5,
};

/* OTLP Status.code. */
enum {
        SIDESPAN_STATUS_UNSET = 0,
        SIDESPAN_STATUS_OK = 1,
        SIDESPAN_STATUS_ERROR = 2,
};

/* sidespan_client_open_env() returns this (a positive value) for a disabled client. */
#define SIDESPAN_OPEN_DISABLED 1

/* The version of the library actually loaded, e.g. "0.1.0". Static storage. */
SIDESPAN_EXPORT const char *sidespan_version(void);

/* A short static description of a -errno (or errno) value; never NULL. */
SIDESPAN_EXPORT const char *sidespan_strerror(int err);

/* ---- attributes --------------------------------------------------------------------- */

enum {
        SIDESPAN_ATTR_STR = 1,
        SIDESPAN_ATTR_INT = 2,
        SIDESPAN_ATTR_DOUBLE = 3,
        SIDESPAN_ATTR_BOOL = 4,
        SIDESPAN_ATTR_STR_ARRAY = 5,
        SIDESPAN_ATTR_INT_ARRAY = 6,
        SIDESPAN_ATTR_DOUBLE_ARRAY = 7,
};

/*
 * One attribute: a key (non-empty) and a typed value. The library copies
 * what it needs during the call; nothing is kept. This struct's layout is
 * part of the ABI and never changes.
 */
typedef struct sidespan_attr {
        const char *key;
        int type; /* SIDESPAN_ATTR_* */
        union {
                const char *s;
                int64_t i;
                double d;
                bool b;
                struct {
                        const char *const *v;
                        size_t n;
                } strs;
                struct {
                        const int64_t *v;
                        size_t n;
                } ints;
                struct {
                        const double *v;
                        size_t n;
                } doubles;
        } value;
} sidespan_attr;

#define SIDESPAN_ATTR_STR_INIT(k, val)                                                             \
        {                                                                                          \
                .key = (k), .type = SIDESPAN_ATTR_STR, .value = {.s = (val) }                      \
        }
#define SIDESPAN_ATTR_INT_INIT(k, val)                                                             \
        {                                                                                          \
                .key = (k), .type = SIDESPAN_ATTR_INT, .value = {.i = (val) }                      \
        }
#define SIDESPAN_ATTR_DOUBLE_INIT(k, val)                                                          \
        {                                                                                          \
                .key = (k), .type = SIDESPAN_ATTR_DOUBLE, .value = {.d = (val) }                   \
        }
#define SIDESPAN_ATTR_BOOL_INIT(k, val)                                                            \
        {                                                                                          \
                .key = (k), .type = SIDESPAN_ATTR_BOOL, .value = {.b = (val) }                     \
        }

/* ---- client ------------------------------------------------------------------------- */

typedef struct sidespan_options {
        size_t size; /* sizeof(sidespan_options) of the caller: set by sidespan_options_init() */
        /* The daemon's socket. NULL: $SIDESPAN_SOCKET, else /run/sidespan/sidespan.sock
         * when it exists, else $XDG_RUNTIME_DIR/sidespan.sock when that is set, else
         * /run/sidespan/sidespan.sock; re-resolved on every connection attempt. */
        const char *socket_path;
        const char *service_name;  /* NULL: "upsonic" */
        double sample_rate;        /* 0.0 - 1.0, default 1.0 */
        bool include_content;      /* default true: send prompts, outputs, tool args */
        bool flush_on_exit;        /* default true: flush at exit() */
        int exit_flush_timeout_ms; /* default 2000; also used by sidespan_client_close() */
        size_t buffer_size;        /* bytes of encoded messages held in memory, default 4 MiB */
        size_t max_frame;          /* largest message, default 1 MiB (the daemon's default) */
        /* Extra resource attributes (e.g. deployment.environment), copied at open. */
        const sidespan_attr *resource_attrs;
        size_t n_resource_attrs;
} sidespan_options;

SIDESPAN_EXPORT void sidespan_options_init_sized(sidespan_options *opts, size_t size);

/* Fill opts with the defaults listed above. */
static inline void sidespan_options_init(sidespan_options *opts)
{
        sidespan_options_init_sized(opts, sizeof(*opts));
}

/*
 * Open a client with the given options (NULL: all defaults) and start its
 * sender thread, which connects in the background: opening succeeds whether
 * or not the daemon is running. -EINVAL for an option out of range,
 * -ENAMETOOLONG for a socket path too long for a Unix socket, -ENOMEM.
 * Does not block.
 */
SIDESPAN_EXPORT int sidespan_client_open(const sidespan_options *opts, sidespan_client **ret);

/*
 * Open a client configured from the environment, as an Upsonic agent is:
 * tracing is enabled when UPSONIC_OTEL_ENABLED is non-empty and
 * OTEL_SDK_DISABLED is not "true"; service name from UPSONIC_OTEL_SERVICE_NAME,
 * else OTEL_SERVICE_NAME; sample rate from UPSONIC_OTEL_SAMPLE_RATE, else
 * OTEL_TRACES_SAMPLER_ARG; socket from SIDESPAN_SOCKET; extra resource
 * attributes from OTEL_RESOURCE_ATTRIBUTES (k=v,k=v, percent-encoded). An
 * empty variable counts as unset. A malformed value (a sample rate that is not
 * a number in [0, 1], OTEL_SDK_DISABLED other than true/false, a bad
 * OTEL_RESOURCE_ATTRIBUTES) is -EINVAL, never a silent default.
 * Returns 0 with an enabled client, or SIDESPAN_OPEN_DISABLED with a disabled
 * client on which every call is a cheap no-op; either must be closed.
 */
SIDESPAN_EXPORT int sidespan_client_open_env(sidespan_client **ret);

/*
 * The same, with opts as the starting point instead of the defaults (NULL:
 * defaults); the environment overrides what it sets. If force_enable is
 * true, tracing is on unless OTEL_SDK_DISABLED=true.
 */
SIDESPAN_EXPORT int sidespan_client_open_env_with(const sidespan_options *opts, bool force_enable,
                                                  sidespan_client **ret);

/*
 * Flush (waiting at most the exit flush timeout), stop the sender thread,
 * free the client and set *c to NULL. NULL or *c == NULL is a no-op, so
 * calling it twice is safe. Spans still open become unusable: end them first.
 * Returns the flush result (0, -ETIMEDOUT, -ENOTCONN); the client is freed
 * either way. Blocks for at most the exit flush timeout plus a moment.
 */
SIDESPAN_EXPORT int sidespan_client_close(sidespan_client **c);

/*
 * Block until the daemon confirms it holds every message emitted (by any
 * thread) before this call, or until timeout_ms passes (-1: no limit).
 * 0 when confirmed; -ETIMEDOUT when connected but not confirmed in time;
 * -ENOTCONN when the daemon cannot be reached (returned as soon as a
 * connection attempt made for this flush fails). Messages dropped before
 * reaching the daemon (see sidespan_stats.dropped) are not waited for.
 * A disabled or NULL client returns 0 at once.
 */
SIDESPAN_EXPORT int sidespan_flush(sidespan_client *c, int timeout_ms);

typedef struct sidespan_stats {
        size_t size;            /* set by sidespan_stats_init() */
        uint64_t spans_started; /* sampled or not */
        uint64_t unsampled;     /* spans not sent because sampling dropped their trace */
        uint64_t frames_queued; /* messages accepted into the buffer */
        uint64_t frames_sent;   /* messages written whole to the daemon */
        uint64_t bytes_sent;
        uint64_t dropped;       /* messages lost: buffer full, too large, cut by a broken write */
        uint64_t attrs_dropped; /* attributes refused because a span's attribute space was full */
        uint64_t reconnects;    /* connections made after the first */
        uint64_t connect_failures;
        uint64_t buffered_bytes; /* bytes waiting to be written now */
        bool connected;
        bool enabled;
        /* Past the first fields (set when size covers it): the bytes the two buffers of
         * frames hold allocated, the one callers fill and the one being written; each grows
         * to at most buffer_size and is cut back to 128 KiB once a backlog is written. */
        uint64_t buffer_capacity;
} sidespan_stats;

SIDESPAN_EXPORT void sidespan_stats_init_sized(sidespan_stats *st, size_t size);

static inline void sidespan_stats_init(sidespan_stats *st)
{
        sidespan_stats_init_sized(st, sizeof(*st));
}

/*
 * A snapshot of the client's counters into *ret, whose size field must be set
 * (sidespan_stats_init()). A NULL or disabled client gives zeros with
 * enabled=false. -EINVAL for a bad size.
 */
SIDESPAN_EXPORT int sidespan_client_stats(const sidespan_client *c, sidespan_stats *ret);

/* ---- spans -------------------------------------------------------------------------- */

/*
 * Start a span named name (non-empty) of the given kind, as a child of parent
 * (NULL: the root of a new trace; a parent may belong to another client).
 * Sampling is decided per trace at its root and inherited by every child; an
 * unsampled span still has ids and a traceparent but sends nothing. *ret is
 * owned by the caller until sidespan_span_end(). -EINVAL, -ENOMEM.
 */
SIDESPAN_EXPORT int sidespan_span_start(sidespan_client *c, const sidespan_span *parent,
                                        const char *name, int kind, sidespan_span **ret);
/* The same with the name's length given: no terminating NUL is read. -EINVAL for a NULL
 * name or a name_len of 0. */
SIDESPAN_EXPORT int sidespan_span_start_n(sidespan_client *c, const sidespan_span *parent,
                                          const char *name, size_t name_len, int kind,
                                          sidespan_span **ret);

/*
 * Start a span continuing a W3C traceparent received from elsewhere (its
 * sampled flag is honoured). -EINVAL when traceparent is malformed.
 */
SIDESPAN_EXPORT int sidespan_span_start_remote(sidespan_client *c, const char *traceparent,
                                               const char *name, int kind, sidespan_span **ret);

/*
 * Set an attribute. It travels with the span's end, so the last value set
 * for a key wins. Content attributes (prompts, outputs, tool arguments and
 * results) are silently ignored when the client has include_content=false.
 * -EINVAL for a NULL or empty key or a NULL value; -ENOBUFS when the span's
 * attribute space (max_frame) is full (counted in attrs_dropped).
 */
SIDESPAN_EXPORT int sidespan_span_set_str(sidespan_span *s, const char *key, const char *value);
SIDESPAN_EXPORT int sidespan_span_set_int(sidespan_span *s, const char *key, int64_t value);
SIDESPAN_EXPORT int sidespan_span_set_double(sidespan_span *s, const char *key, double value);
SIDESPAN_EXPORT int sidespan_span_set_bool(sidespan_span *s, const char *key, bool value);
/*
 * The same with the key's length given, and a string value's: neither needs a
 * terminating NUL (bindings, keys held with their length). -EINVAL for a NULL
 * key, a key_len of 0, a NULL value, or a length over 4 GiB.
 */
SIDESPAN_EXPORT int sidespan_span_set_str_n(sidespan_span *s, const char *key, size_t key_len,
                                            const char *value, size_t value_len);
SIDESPAN_EXPORT int sidespan_span_set_int_n(sidespan_span *s, const char *key, size_t key_len,
                                            int64_t value);
SIDESPAN_EXPORT int sidespan_span_set_double_n(sidespan_span *s, const char *key, size_t key_len,
                                               double value);
SIDESPAN_EXPORT int sidespan_span_set_bool_n(sidespan_span *s, const char *key, size_t key_len,
                                             bool value);
SIDESPAN_EXPORT int sidespan_span_set_str_array(sidespan_span *s, const char *key,
                                                const char *const *v, size_t n);
SIDESPAN_EXPORT int sidespan_span_set_int_array(sidespan_span *s, const char *key, const int64_t *v,
                                                size_t n);
SIDESPAN_EXPORT int sidespan_span_set_double_array(sidespan_span *s, const char *key,
                                                   const double *v, size_t n);
/* Any attribute type. */
SIDESPAN_EXPORT int sidespan_span_set_attr(sidespan_span *s, const sidespan_attr *attr);

/*
 * With GCC and clang sidespan_span_start() and the four scalar setters are
 * inline over their _n forms, measuring the name, the key (and a string
 * value) in the caller, where a literal, the usual case, is measured by the
 * compiler. Same arguments, same results; the functions stay exported.
 * Define SIDESPAN_NO_INLINE before including this header to call them
 * instead.
 */
#if defined(__GNUC__) && !defined(SIDESPAN_NO_INLINE)
static inline size_t sidespan_inline_len(const char *s)
{
        return s ? __builtin_strlen(s) : 0; /* NULL: the setter refuses it */
}

static inline int sidespan_inline_start(sidespan_client *c, const sidespan_span *parent,
                                        const char *name, int kind, sidespan_span **ret)
{
        return sidespan_span_start_n(c, parent, name, sidespan_inline_len(name), kind, ret);
}

static inline int sidespan_inline_set_str(sidespan_span *s, const char *key, const char *value)
{
        return sidespan_span_set_str_n(s, key, sidespan_inline_len(key), value,
                                       sidespan_inline_len(value));
}

static inline int sidespan_inline_set_int(sidespan_span *s, const char *key, int64_t value)
{
        return sidespan_span_set_int_n(s, key, sidespan_inline_len(key), value);
}

static inline int sidespan_inline_set_double(sidespan_span *s, const char *key, double value)
{
        return sidespan_span_set_double_n(s, key, sidespan_inline_len(key), value);
}

static inline int sidespan_inline_set_bool(sidespan_span *s, const char *key, bool value)
{
        return sidespan_span_set_bool_n(s, key, sidespan_inline_len(key), value);
}

#define sidespan_span_start(c, parent, name, kind, ret)                                            \
        sidespan_inline_start(c, parent, name, kind, ret)
#define sidespan_span_set_str(s, key, value)    sidespan_inline_set_str(s, key, value)
#define sidespan_span_set_int(s, key, value)    sidespan_inline_set_int(s, key, value)
#define sidespan_span_set_double(s, key, value) sidespan_inline_set_double(s, key, value)
#define sidespan_span_set_bool(s, key, value)   sidespan_inline_set_bool(s, key, value)
#endif

/*
 * Record an event now, with n attributes (attrs may be NULL when n is 0). It
 * is sent at once. -EINVAL for a NULL/empty name or a bad attribute.
 */
SIDESPAN_EXPORT int sidespan_span_add_event(sidespan_span *s, const char *name,
                                            const sidespan_attr *attrs, size_t n);

/*
 * End the span with an OTLP status (SIDESPAN_STATUS_*) and an optional
 * message (kept only for ERROR), send it with its attributes, and free the
 * handle: s must not be used afterwards. -EINVAL for a bad status (the span
 * is still ended and freed, with status UNSET).
 */
SIDESPAN_EXPORT int sidespan_span_end(sidespan_span *s, int status, const char *message);

/* Write the span's W3C traceparent ("00-<trace>-<span>-<flags>", 55 characters and a NUL)
 * into buf. -ENOBUFS when size < 56, -EINVAL for a NULL span. */
SIDESPAN_EXPORT int sidespan_span_traceparent(const sidespan_span *s, char *buf, size_t size);

/* The trace id as 32 hex digits (size >= 33) and the span id as 16 (size >= 17). */
SIDESPAN_EXPORT int sidespan_span_trace_id_hex(const sidespan_span *s, char *buf, size_t size);
SIDESPAN_EXPORT int sidespan_span_span_id_hex(const sidespan_span *s, char *buf, size_t size);

/* True when the span's trace is sampled (its messages are sent). false for NULL. */
SIDESPAN_EXPORT bool sidespan_span_is_sampled(const sidespan_span *s);

/* ---- GenAI helpers (attribute names of the Upsonic trace model) -------------------- */

/*
 * Start the root span of an agent run: "agent.run", kind SERVER, with
 * upsonic.agent.name, upsonic.agent.model, upsonic.run_id, user.id,
 * session.id and upsonic.input (content) for each argument that is not NULL.
 */
SIDESPAN_EXPORT int sidespan_agent_run_start(sidespan_client *c, const char *agent_name,
                                             const char *model, const char *run_id,
                                             const char *user_id, const char *session_id,
                                             const char *input, sidespan_span **ret);

/* The outcome of a run. Numbers < 0 and NULL strings mean "not known": the
 * attribute is left out (and the daemon derives what it can). */
typedef struct sidespan_run_result {
        size_t size;
        const char *status; /* upsonic.status; NULL: "COMPLETED" (or "ERROR" with error) */
        const char *error;  /* non-NULL: the run failed, span status ERROR with this message */
        const char *output; /* upsonic.output (content) */
        int64_t input_tokens;
        int64_t output_tokens;
        int64_t total_tokens; /* default input + output when both are known */
        int64_t cache_read_tokens;
        int64_t cache_write_tokens;
        int64_t reasoning_tokens;
        int64_t requests;
        int64_t tool_call_count;
        int64_t executed_steps;
        int is_streaming;      /* -1 unknown, 0, 1 */
        double total_cost;     /* USD */
        double execution_time; /* seconds */
        double model_execution_time;
        double tool_execution_time;
        double framework_overhead_time;
        double time_to_first_token;
} sidespan_run_result;

SIDESPAN_EXPORT void sidespan_run_result_init_sized(sidespan_run_result *r, size_t size);

static inline void sidespan_run_result_init(sidespan_run_result *r)
{
        sidespan_run_result_init_sized(r, sizeof(*r));
}

/* Set the run-level attributes of r (NULL: status COMPLETED only) and end the
 * span with OK, or ERROR when r->error is set or r->status is "ERROR". Frees span. */
SIDESPAN_EXPORT int sidespan_agent_run_end(sidespan_span *span, const sidespan_run_result *r);

/* "pipeline.execute" (INTERNAL) with upsonic.pipeline.total_steps (when >= 0) and
 * upsonic.pipeline.streaming. End it with sidespan_span_end(). */
SIDESPAN_EXPORT int sidespan_pipeline_start(sidespan_client *c, const sidespan_span *parent,
                                            int64_t total_steps, bool streaming,
                                            sidespan_span **ret);

/* "pipeline.step.<step_name>" (INTERNAL) with upsonic.step.name and, when not NULL,
 * upsonic.step.description. */
SIDESPAN_EXPORT int sidespan_step_start(sidespan_client *c, const sidespan_span *parent,
                                        const char *step_name, const char *description,
                                        sidespan_span **ret);

/* Set upsonic.step.status (NULL: "COMPLETED") and upsonic.step.execution_time (when
 * >= 0) and end the span: ERROR when status is "ERROR", else OK. Frees span. */
SIDESPAN_EXPORT int sidespan_step_end(sidespan_span *span, const char *status,
                                      double execution_time_s);

/* What a chat call asked for. Numbers < 0 and NULL strings are left out. */
typedef struct sidespan_chat_request {
        size_t size;
        double temperature;
        double top_p;
        int64_t max_tokens;
        const char *server_address;
        int server_port;                 /* 0 or < 0: left out */
        const char *input_messages;      /* gen_ai.input.messages, JSON (content) */
        const char *system_instructions; /* gen_ai.system_instructions (content) */
} sidespan_chat_request;

SIDESPAN_EXPORT void sidespan_chat_request_init_sized(sidespan_chat_request *r, size_t size);

static inline void sidespan_chat_request_init(sidespan_chat_request *r)
{
        sidespan_chat_request_init_sized(r, sizeof(*r));
}

/*
 * "chat <model>" (CLIENT) with gen_ai.operation.name=chat, gen_ai.provider.name,
 * gen_ai.request.model and what req holds (req may be NULL).
 */
SIDESPAN_EXPORT int sidespan_chat_start(sidespan_client *c, const sidespan_span *parent,
                                        const char *provider, const char *model,
                                        const sidespan_chat_request *req, sidespan_span **ret);

/* Record the "gen_ai.first_token" event at the current time. */
SIDESPAN_EXPORT int sidespan_chat_first_token(sidespan_span *span);

/* What a chat call returned. Numbers < 0 and NULL strings are left out. */
typedef struct sidespan_chat_result {
        size_t size;
        const char *response_model;
        const char *response_id;
        const char *const *finish_reasons; /* gen_ai.response.finish_reasons */
        size_t n_finish_reasons;
        int64_t input_tokens;
        int64_t output_tokens;
        int64_t cache_read_tokens;
        int64_t cache_creation_tokens;
        const char *output_messages; /* gen_ai.output.messages, JSON (content) */
        const char *error;           /* non-NULL: status ERROR with this message */
} sidespan_chat_result;

SIDESPAN_EXPORT void sidespan_chat_result_init_sized(sidespan_chat_result *r, size_t size);

static inline void sidespan_chat_result_init(sidespan_chat_result *r)
{
        sidespan_chat_result_init_sized(r, sizeof(*r));
}

/* Set the response attributes of r (may be NULL) and end the span, OK unless
 * r->error is set. Frees span. */
SIDESPAN_EXPORT int sidespan_chat_end(sidespan_span *span, const sidespan_chat_result *r);

/* "tool.execute" (INTERNAL) with upsonic.tool.name, upsonic.tool.call_id and
 * gen_ai.tool.call.arguments (content) for each argument that is not NULL. */
SIDESPAN_EXPORT int sidespan_tool_start(sidespan_client *c, const sidespan_span *parent,
                                        const char *tool_name, const char *call_id,
                                        const char *arguments_json, sidespan_span **ret);

/* Set upsonic.tool.success, gen_ai.tool.call.result (content, when not NULL) and
 * upsonic.tool.execution_time (when >= 0); end OK or ERROR. Frees span. */
SIDESPAN_EXPORT int sidespan_tool_end(sidespan_span *span, bool success, const char *result,
                                      double execution_time_s);

#ifdef __cplusplus
}
#endif
