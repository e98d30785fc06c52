/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's file descriptor budget: every client connection takes one,
 * and so does the pidfd of every client process it watches.
 */

#include <stdint.h>

/* Descriptors beside the connections: listener, exporters' sockets and files, stdio. */
#define SS_FD_RESERVE 64u

/*
 * Raise the soft RLIMIT_NOFILE to the hard limit and say whether want
 * descriptors fit: 0 when they do, -EMFILE (logged, naming the limit and
 * what to change) when they do not. Main thread, at start.
 */
int ss_fd_limit_raise(uint64_t want);
