/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The OTLP/HTTP protobuf exporter: spans are batched (export/batcher.h),
 * encoded once into an ExportTraceServiceRequest, optionally gzipped, queued
 * (export/request-queue.h) and POSTed with libcurl driven by the daemon's
 * loop (base/curl-uv.h). Retryable failures are sent again with the same
 * bytes after the retry policy's wait (export/retry.h). Loop thread only;
 * nothing blocks. Built as the module sidespan-http.so (base/module.h), so that
 * a daemon without an HTTP exporter never maps libcurl; libcurl's global set-up
 * waits for the first exporter (base/curl-uv.h).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/module.h"
#include "export/dispatch.h"
#include "export/exporter.h"
#include "export/retry.h"
#include "export/spool.h"

/* The batching, queue and in-flight defaults are the dispatch's (export/dispatch.h). */
#define SS_HTTP_TIMEOUT_MS_DEFAULT 10000u

typedef struct ss_http_config {
        /* Full URL used as given, e.g. http://127.0.0.1:4318/v1/traces */
        const char *endpoint;
        const char *const *headers; /* "Name: value" lines */
        size_t n_headers;
        uint32_t timeout_ms;     /* per request, default 10000 */
        bool gzip;               /* Content-Encoding: gzip */
        size_t max_batch;        /* spans per request, default 512 */
        size_t max_batch_bytes;  /* span bytes per request (ss_span_size()), default 8 MiB */
        uint64_t batch_delay_ms; /* default 1000 */
        size_t max_queue_bytes;  /* encoded bytes waiting for retry or in flight, default 64 MiB */
        uint32_t max_inflight;   /* concurrent requests, default 4 */
        ss_retry_config retry;
        ss_spool_config spool;   /* dir NULL: no spool, what cannot be sent is dropped */
        const char *dead_letter; /* OTLP/JSON lines of the requests given up; NULL: none */
        bool json;               /* OTLP/JSON (http/json) instead of protobuf */
        const char *ca_file;     /* PEM bundle to verify the server with; NULL: the system's */
        const char *cert_file;   /* PEM client certificate (mTLS), with key_file */
        const char *key_file;
        /* Nothing of the process uses TLS, this exporter nor any other (set by the pipeline):
         * OpenSSL is set up without what only TLS needs (base/curl-uv.h). */
        bool no_tls_in_process;
} ss_http_config;

/* Fill cfg with the defaults above and the dispatch's; endpoint NULL and no headers. Any thread.
 * Inline: the configuration, in the daemon, fills it without the module. */
static inline void ss_http_config_defaults(ss_http_config *cfg)
{
        *cfg = (ss_http_config){
            .timeout_ms = SS_HTTP_TIMEOUT_MS_DEFAULT,
            .max_batch = SS_DISPATCH_MAX_BATCH_DEFAULT,
            .max_batch_bytes = SS_DISPATCH_MAX_BATCH_BYTES_DEFAULT,
            .batch_delay_ms = SS_DISPATCH_BATCH_DELAY_MS_DEFAULT,
            .max_queue_bytes = SS_DISPATCH_MAX_QUEUE_BYTES_DEFAULT,
            .max_inflight = SS_DISPATCH_MAX_INFLIGHT_DEFAULT,
        };
        ss_retry_config_defaults(&cfg->retry);
        cfg->spool.max_bytes = SS_SPOOL_MAX_BYTES_DEFAULT;
}

/*
 * New exporter; copies what it needs from cfg (the caller keeps cfg and its
 * strings). A zero numeric field takes its default. 0 or -errno: -EINVAL for
 * a bad endpoint scheme (only http:// and https:// are accepted) or a header
 * line that is not "Name: value" on one line, a certificate or key file
 * that cannot be read (logged with its path), -ENOMEM. Free with its
 * ops->destroy(), which closes its handles of loop (finishing in a later
 * loop iteration). Loop thread.
 */
int ss_http_exporter_new(uv_loop_t *loop, const ss_http_config *cfg, ss_exporter **ret);
typedef int ss_http_exporter_new_fn(uv_loop_t *loop, const ss_http_config *cfg, ss_exporter **ret);

/* ss_http_exporter_new() as the daemon reaches it: from the module sidespan-http.so, loaded
 * the first time (base/module.h). NULL, with a line logged naming the file, when it cannot
 * be loaded. */
static inline ss_http_exporter_new_fn *ss_http_exporter_load(void)
{
        ss_module_fn fn;

        return ss_module_fn_get("http", "ss_http_exporter_new", &fn) == 0
                   ? (ss_http_exporter_new_fn *)fn
                   : NULL;
}

/* What base/module.c calls of the module at the daemon's exit (ss_module_exit_all()): undo
 * libcurl's global set-up, if an exporter did it. */
void ss_module_exit(void);
