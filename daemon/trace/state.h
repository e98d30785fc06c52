/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The assembler's open spans across a daemon restart. On SIGTERM (or a
 * reload) the daemon saves every session that has spans open: its key
 * (instance, peer pid and uid), resource, HELLO options, open spans and the
 * roll-ups of its open runs, and when its grace period ends. The next start
 * restores them as sessions whose client has disconnected: a client that
 * reconnects with the same instance finishes its spans with their true end,
 * status and attributes; one that does not return within the grace period
 * (counted from when it last had a daemon) gets them orphaned with the
 * disconnect time as their end, and one whose process is gone at once.
 *
 * The file is msgpack, written to a temporary name, fsync'd and renamed, so
 * a crash leaves the previous state or none; it is read once and removed.
 * Both run on the loop thread at start and at shutdown, when no client is
 * being served: they are the one synchronous file I/O of the daemon, bounded
 * by the open span limits.
 */

#include "trace/assembler.h"

/* The largest state file read back; a larger one is refused (and left for a person). */
#define SS_STATE_MAX_BYTES ((uint64_t)1 << 30)

/* Write the open spans of a's sessions to path (replacing it). Returns the spans saved,
 * or -errno (logged). Sessions stay as they are: ss_assembler_free() follows. */
int ss_assembler_save(ss_assembler *a, const char *path);

/* Restore what ss_assembler_save() wrote to path, then remove it. Returns the spans
 * restored (0 when there is no file), or -errno for a file that cannot be read or is not
 * a state file (logged; it is renamed to path.bad so the next start does not trip on it). */
int ss_assembler_restore(ss_assembler *a, const char *path);
