/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Unix socket listener and its connections: frame decoding, HELLO and
 * the session, FLUSH/FLUSHED and STATS replies. A connection that sends a
 * frame over max_frame, a frame that is not msgpack or a message of the
 * wrong shape is closed with a logged, counted reason; nothing a peer sends
 * touches another connection. Loop thread only.
 */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "assembler.h"

typedef struct ss_server ss_server;

typedef struct ss_server_config {
        const char *path;
        size_t max_frame;
        uint32_t max_connections;
} ss_server_config;

typedef struct ss_server_stats {
        uint64_t connections;         /* accepted */
        uint64_t connections_refused; /* over max_connections */
        uint64_t connections_active;
        uint64_t frames;
        uint64_t bytes;
        uint64_t protocol_errors; /* connections closed for bad input */
        uint64_t unknown_messages;
        uint64_t span_errors; /* unknown span, duplicate start, limits: counted, skipped */
        uint64_t flushes;
} ss_server_stats;

/*
 * Listen on cfg->path. A stale socket file is removed; if another process
 * answers on it, -EADDRINUSE; a path that exists and is not a socket,
 * -EEXIST. Errors are logged with the path. The exporters are only read for
 * STATS replies.
 */
int ss_server_new(uv_loop_t *loop, const ss_server_config *cfg, ss_assembler *a,
                  ss_exporter *const *exporters, size_t n_exporters, ss_server **ret);

/* Stop accepting, close every connection (detaching their sessions), remove
 * the socket file; done(ctx) runs once every handle has closed. */
void ss_server_close(ss_server *s, void (*done)(void *ctx), void *ctx);

const ss_server_stats *ss_server_get_stats(const ss_server *s);
