/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * systemd socket activation (sd_listen_fds(3)) without linking libsystemd:
 * the listening socket a socket unit passes as fd 3 with LISTEN_PID and
 * LISTEN_FDS. Main thread, at start (it edits the environment); nothing
 * blocks.
 */

#include <stddef.h>

/* The first passed descriptor (SD_LISTEN_FDS_START). */
#define SS_LISTEN_FDS_START 3

/* LISTEN_FDNAMES of the socket a reloading sidespand passes to itself across exec. */
#define SS_LISTEN_FDS_RELOAD "sidespand-reload"

/*
 * Take the passed listening socket: 1 with *ret_fd (close-on-exec and
 * non-blocking, now the caller's) and its address in ret_name ("/path",
 * "@abstract" or "(unnamed)", cut to name_size), 0 when the daemon was not
 * socket-activated (LISTEN_PID unset or another process's), 2 likewise
 * when the socket is the daemon's own, passed across its reload
 * (LISTEN_FDNAMES=SS_LISTEN_FDS_RELOAD: its path is the daemon's to
 * remove), -EINVAL or
 * -errno (logged, naming what is wrong) when fd 3 is not a listening
 * AF_UNIX stream socket. LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are
 * removed from the environment in every case, so no child inherits them.
 */
int ss_listen_fds_take(int *ret_fd, char *ret_name, size_t name_size);

/*
 * Before exec'ing itself to reload: make fd the passed listening socket of
 * the new image (fd 3, not close-on-exec, LISTEN_PID this process, which
 * exec keeps, LISTEN_FDNAMES=SS_LISTEN_FDS_RELOAD). 0 or -errno. Main
 * thread, after the loop has ended.
 */
int ss_listen_fds_pass(int fd);
