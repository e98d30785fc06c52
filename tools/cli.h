/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The sidespan command's connection to sidespand: the daemon's socket found
 * as the daemon finds it, frames written and read with plain blocking
 * socket I/O on common/'s wire code. One thread.
 */

#include <msgpack.h>
#include <stdint.h>

#include "ss-buf.h"
#include "ss-wire.h"

#define CLI_TIMEOUT_MS_DEFAULT 10000
/* A deadline that never comes (sidespan tail). */
#define CLI_FOREVER INT64_MAX

typedef struct cli {
        const char *socket_path;
        char *socket_alloc;
        int fd;
        int timeout_ms;
        uint8_t in[SS_MAX_FRAME_DEFAULT + SS_FRAME_HEADER];
        size_t in_len;
} cli;

/* The daemon's default socket (daemon/conf/config.c), $SIDESPAN_SOCKET first. 0 or -errno
 * (printed). */
int cli_default_socket(cli *c);

/* Connect to c->socket_path; says on stderr how to start the daemon when none answers. */
int cli_connect(cli *c);

int cli_send(cli *c, const ss_buf *b);
int cli_send_hello(cli *c);
/* FLUSH or STATS with seq. */
int cli_send_seq(cli *c, uint32_t type, uint64_t seq);

/* Monotonic milliseconds, for deadlines. */
int64_t cli_now_ms(void);

/*
 * Receive frames until one decodes to a message of type want (others are
 * skipped) or deadline passes (-ETIMEDOUT); -ECONNRESET when the daemon
 * closes. The message points into *ret_copy, which the caller frees, and u.
 */
int cli_recv(cli *c, uint32_t want, int64_t deadline, msgpack_unpacked *u, uint8_t **ret_copy,
             ss_msg *ret);

/* p (n bytes) as a JSON string on stdout. */
void cli_json_str(const char *p, size_t n);

/* The verbs beyond status and flush; argv holds the verb's arguments. Each returns the
 * process's exit status: 0, 1 (the daemon failed us), 2 (bad arguments). */
int cli_tail(cli *c, int argc, char **argv);
int cli_emit(cli *c, int argc, char **argv);
