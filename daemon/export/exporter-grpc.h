/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The OTLP/gRPC exporter, on the grpc core C API (libgrpc): spans are
 * batched, encoded once into an ExportTraceServiceRequest, queued and
 * retried as the OTLP/HTTP exporter does (export/dispatch.h), and each
 * attempt is one unary call to
 * /opentelemetry.proto.collector.trace.v1.TraceService/Export on a channel
 * that reconnects by itself, with the configured headers as metadata, a
 * deadline, and gzip when asked. The status code, its details and any
 * google.rpc.RetryInfo decide the retry (export/retry.h); a partial_success
 * is counted and logged, never retried.
 *
 * Threads: calls are created and started on the loop thread; one thread
 * per exporter waits in grpc_completion_queue_next() and hands finished
 * calls to the loop through a uv_async_t. The loop never waits for grpc:
 * even grpc_shutdown() runs on that thread. The exporter holds one
 * grpc_init() reference for its lifetime.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/module.h"
#include "export/exporter.h"
#include "export/retry.h"
#include "export/spool.h"

#define SS_GRPC_TIMEOUT_MS_DEFAULT 10000u

typedef struct ss_grpc_config {
        /* "http://host[:port]" (plaintext: only with insecure) or "https://host[:port]";
         * host a name, an IPv4 address or a [bracketed] IPv6 one; the port defaults to the
         * scheme's (80, 443); nothing may follow but one "/". */
        const char *endpoint;
        /* "Name: value" lines, sent as metadata with the name lower-cased; a name or
         * value gRPC does not allow, or one the transport owns (grpc-*, content-type, te,
         * user-agent, host, connection), is refused at creation. */
        const char *const *headers;
        size_t n_headers;
        uint32_t timeout_ms;     /* deadline of each call, default 10000 */
        bool gzip;               /* compress every message (the channel's default algorithm) */
        size_t max_batch;        /* spans per call, default 512 */
        size_t max_batch_bytes;  /* span bytes per call (ss_span_size()), default 8 MiB */
        uint64_t batch_delay_ms; /* default 1000 */
        size_t max_queue_bytes;  /* encoded bytes waiting for retry or in flight, default 64 MiB */
        uint32_t max_inflight;   /* concurrent calls, default 4 */
        /* Also the channel's reconnect backoff: initial and maximum. */
        ss_retry_config retry;
        ss_spool_config spool;   /* dir NULL: no spool */
        const char *dead_letter; /* OTLP/JSON lines of the requests given up; NULL: none */
        /* TLS (https:// only), PEM files read at creation: the CAs that sign the server
         * (NULL: the system's), and a client certificate with its key for mTLS (both or
         * neither). */
        const char *ca_file;
        const char *cert_file;
        const char *key_file;
        bool insecure; /* allow http://, i.e. no TLS at all */
        /* The unary method each request calls (a static string); NULL: the traces one,
         * /opentelemetry.proto.collector.trace.v1.TraceService/Export. */
        const char *method;
} ss_grpc_config;

/* Fill cfg with the defaults; endpoint NULL, no headers, no TLS files. Any thread. */
void ss_grpc_config_defaults(ss_grpc_config *cfg);

/*
 * New exporter; copies what it needs from cfg (the caller keeps cfg and its
 * strings) and reads the TLS files. A zero numeric field takes its default.
 * 0 or -errno, each refusal logged with what it names (the header, the file):
 * -EINVAL for a bad endpoint, http:// without insecure, TLS files with
 * http://, a certificate without its key or the reverse, or a header that is
 * not "Name: value" or that gRPC refuses; the errno of a TLS file that
 * cannot be read (-ENOENT, -EACCES, -EISDIR, -ENOTSUP for
 * what is not a regular file, -EFBIG past 1 MiB; -EINVAL when it holds no PEM); -ENOMEM; or a libuv
 * error. Free with its ops->destroy(), which cancels the calls in flight
 * (their spans count as dropped) and finishes in a later loop iteration,
 * once the completion-queue thread has drained and left. Loop thread; reads
 * the TLS files, so call it at start-up, not from a busy loop.
 */
int ss_grpc_exporter_new(uv_loop_t *loop, const ss_grpc_config *cfg, ss_exporter **ret);
typedef int ss_grpc_exporter_new_fn(uv_loop_t *loop, const ss_grpc_config *cfg, ss_exporter **ret);

/* ss_grpc_exporter_new() as the daemon reaches it: from the module sidespan-grpc.so, loaded
 * the first time (base/module.h). NULL, with a line logged naming the file, when it cannot
 * be loaded. */
static inline ss_grpc_exporter_new_fn *ss_grpc_exporter_load(void)
{
        ss_module_fn fn;

        return ss_module_fn_get("grpc", "ss_grpc_exporter_new", &fn) == 0
                   ? (ss_grpc_exporter_new_fn *)fn
                   : NULL;
}
