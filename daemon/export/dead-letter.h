/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A network exporter's dead-letter file: each request given up for good is
 * appended as one line of OTLP/JSON (an ExportTraceServiceRequest), so that
 * what no backend took can be read, replayed or mined later. The request's
 * body is taken as it was sent: protobuf or OTLP/JSON, either maybe gzipped.
 * Writes go through export/writer.h, never blocking the loop; the conversion
 * is CPU work on the loop, as the encoding was. A line that finds more than
 * SS_DEAD_LETTER_MAX_BACKLOG bytes still waiting for the disk is not written
 * but counted and logged: a stuck disk costs memory up to that bound, no
 * more. Loop thread only.
 */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/counters.h"
#include "ss-buf.h"

/* Bytes waiting for the file beyond which a new line is refused. */
#define SS_DEAD_LETTER_MAX_BACKLOG ((size_t)8 << 20)
/* A gzipped body inflates to at most OTLP's largest request, as it was before gzip. */
#define SS_DEAD_LETTER_MAX_BODY ((size_t)64 << 20)
/* One line: a body's JSON (hex ids, base64, escapes) may be larger than its protobuf. */
#define SS_DEAD_LETTER_MAX_LINE ((size_t)128 << 20)

typedef struct ss_dead_letter ss_dead_letter;

/*
 * Open path for appending (created 0600: it holds span content) for
 * exporter (a name that outlives it, for log lines and counters). 0, or
 * -errno after logging the path and the error: the exporter does not start.
 * Loop thread, at start (the open itself is one quick syscall).
 */
int ss_dead_letter_open(uv_loop_t *loop, const char *path, const char *exporter,
                        ss_dead_letter **ret);

/*
 * Whether path could be opened for appending, without creating it: an
 * existing file writable, else its directory. For --check-config, to refuse
 * what the start would. 0, or -errno after logging the path and the error.
 * Any thread.
 */
int ss_dead_letter_check(const char *path, const char *exporter);

/* Append the request body[0..len) of n_spans spans as one line; the caller keeps body. A
 * line not written (backlog, a body that is no request, no memory) is counted and logged,
 * rate-limited. dl NULL: nothing. */
void ss_dead_letter_put(ss_dead_letter *dl, const uint8_t *body, size_t len, size_t n_spans);

/* dead_letter.requests/spans/bytes (handed to the file), .refused, .write_errors under
 * prefix. dl NULL: none. */
void ss_dead_letter_counters(const ss_dead_letter *dl, const char *prefix, ss_counters *out);

/* Write what is queued (to a regular file; to a FIFO or pipe it is given up, logged), close
 * the file, free dl, then closed(ctx) from the loop. */
void ss_dead_letter_close(ss_dead_letter *dl, void (*closed)(void *ctx), void *ctx);
