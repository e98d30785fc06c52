/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Unix socket listener: binds the socket (ingest/socket.h), admits
 * clients (allow lists, max_connections in total and per process), keeps
 * their connections (ingest/connection.h) and closes those that hold a slot
 * for nothing: no HELLO in time, a partial frame that does not complete,
 * silence with nothing open. Loop thread only; nothing blocks.
 */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/counters.h"
#include "ingest/control.h"
#include "trace/assembler.h"

typedef struct ss_listener ss_listener;

typedef struct ss_listener_config {
        const char *path;
        size_t max_frame;
        uint32_t max_connections;
        uint32_t max_connections_process; /* per peer process (pid and uid); 0: none */
        uint64_t max_input_bytes;         /* every connection's input buffers; 0: none */
        uint32_t hello_timeout_ms;        /* from accept to HELLO; 0: none */
        uint32_t frame_timeout_ms;        /* for a frame begun to arrive whole; 0: none */
        uint32_t idle_timeout_ms;         /* silent with nothing open; 0: none */
        const uint32_t *allow_uids;       /* with allow_gids: who may connect; none: anyone */
        size_t n_allow_uids;
        const uint32_t *allow_gids;
        size_t n_allow_gids;
} ss_listener_config;

/*
 * Listen on cfg->path (the socket file gets mode 0660). A stale socket file
 * is removed; if another process answers on it, -EADDRINUSE; a path that
 * exists and is not a socket, -EEXIST. Errors are logged with the path.
 * When systemd passed a listening socket (base/listen-fds.h), that one is
 * used instead, left where it is and never removed; a passed descriptor that
 * is no listening AF_UNIX stream socket fails with its reason logged.
 * Connections apply their messages to a and answer FLUSH and STATS through
 * control (both borrowed: they must outlive the listener).
 */
int ss_listener_new(uv_loop_t *loop, const ss_listener_config *cfg, ss_assembler *a,
                    ss_control *control, ss_listener **ret);

/* Stop accepting, close every connection (detaching their sessions), remove
 * the socket file unless systemd owns it; done(ctx) runs once every handle
 * has closed, and the listener is freed. */
void ss_listener_close(ss_listener *l, void (*done)(void *ctx), void *ctx);

/* For a reload: a duplicate of the listening socket (close-on-exec off, the caller's),
 * which ss_listener_close() then leaves open and in place, so clients that connect
 * meanwhile wait in its backlog for the next image. -errno. */
int ss_listener_hand_over(ss_listener *l);

/* Backpressure (ingest/hold.h): a client is read no faster than the exporters send. After
 * a read, when the fullest exporter's memory (in percent of its bound, from fn) is at
 * SS_HOLD_HIGH_PCT or more, that connection stops being read; held connections read again
 * once it is under SS_HOLD_LOW_PCT. Clients never block: libsidespan buffers, then drops
 * and counts. */
void ss_listener_set_pressure(ss_listener *l, unsigned (*fn)(const void *ctx), const void *ctx);

/* Where clients connect: cfg->path, or the passed socket's address ("@name" when abstract). */
const char *ss_listener_path(const ss_listener *l);

/* connections, frames, protocol_errors, ...: an ss_counters_fn. */
void ss_listener_counters(const void *listener, ss_counters *out);
