/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The listening socket's file: a path a client can trust and only the
 * intended users can reach. Main thread, at start; blocking calls on the
 * local file system only.
 */

#include <uv.h>

/*
 * Bind pipe (initialised) to path and listen: the path's directory must be
 * owned by the daemon's user or root and not writable by others unless
 * sticky; a stale socket file is replaced, a live daemon on it is refused
 * (-EADDRINUSE), a path that is not a socket is left alone (-EEXIST); the
 * socket is created with mode 0660 from the start (no window with the
 * umask's mode). Errors are logged with the path.
 */
int ss_socket_listen(uv_pipe_t *pipe, const char *path, int backlog, uv_connection_cb cb);
