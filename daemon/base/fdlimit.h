/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's file descriptor budget: every client connection takes one,
 * and so does the pidfd of every client process it watches.
 */

#include <stdint.h>

/* Descriptors beside the connections: listener, exporters' sockets and files, stdio. */
#define SS_FD_RESERVE 64u
/* A connection whose descriptor is this close to the limit is refused (counted), so the
 * daemon keeps descriptors for its exporters and libuv never has to drop one unseen. */
#define SS_FD_MARGIN 32u

/* The soft RLIMIT_NOFILE now; 0 when unlimited or unknown. */
uint64_t ss_fd_limit(void);

/*
 * Raise the soft RLIMIT_NOFILE to the hard limit and say whether want
 * descriptors fit: 0 when they do, -EMFILE (logged, naming the limit and
 * what to change) when they do not. Main thread, at start.
 */
int ss_fd_limit_raise(uint64_t want);
