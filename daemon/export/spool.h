/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The disk spool of one exporter: encoded export requests that cannot be
 * sent now (the memory queue is full, the backend is failing, the daemon is
 * stopping) kept in append-only segment files in one directory, and read
 * back in the order they came once the backend takes requests again, after
 * a restart or a kill -9 too.
 *
 * On disk: segments named <16 hex digits of their sequence>.seg, each a run
 * of records: a 24-byte header (magic "SSPL", version, the body's length,
 * its span count, CRC32C of the body, CRC32C of the header's first 20
 * bytes) and the body. A record leaves the spool only when acknowledged
 * (the backend took it, or it was given up): a segment whose records are
 * all acknowledged is deleted, and the position of the oldest record not
 * acknowledged is kept in the file "head" (written atomically), so a
 * restart replays from there: at least once, duplicates bounded by the
 * records handed out and not yet acknowledged at the crash.
 *
 * A record cut short (a torn write at a crash), one whose header or body
 * does not match its CRC, or a bad magic is skipped and counted (corrupt);
 * reading goes on at the next segment when the rest of a segment cannot be
 * trusted. Past max_bytes on disk the oldest segment is deleted whole and
 * its records and spans counted as dropped; the newest are kept.
 *
 * All file I/O runs in libuv's thread pool, one job at a time per spool;
 * results come back on the loop. Loop thread only for the API; nothing
 * blocks.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/counters.h"
#include "ss-buf.h"

#define SS_SPOOL_MAX_BYTES_DEFAULT         ((uint64_t)1 << 30)
#define SS_SPOOL_SEGMENT_BYTES_DEFAULT     ((uint64_t)8 << 20)
#define SS_SPOOL_FSYNC_INTERVAL_MS_DEFAULT 1000u
/* Appends handed to the spool and not yet written: past this they are refused. */
#define SS_SPOOL_MAX_PENDING_BYTES ((size_t)64 << 20)
/* A record's body: larger is refused at append and treated as corrupt when read. */
#define SS_SPOOL_MAX_RECORD    ((size_t)64 << 20)
#define SS_SPOOL_RECORD_HEADER 24u

typedef enum ss_spool_fsync {
        SS_SPOOL_FSYNC_INTERVAL = 0, /* the default: at most fsync_interval_ms of appends lost */
        SS_SPOOL_FSYNC_ALWAYS,       /* after every batch of appends: nothing acknowledged lost */
        SS_SPOOL_FSYNC_NEVER,        /* the kernel's choice: a power cut may lose seconds */
} ss_spool_fsync;

typedef struct ss_spool_config {
        const char *dir;        /* created with mode 0700 when missing (one level) */
        uint64_t max_bytes;     /* on disk; 0: SS_SPOOL_MAX_BYTES_DEFAULT */
        uint64_t segment_bytes; /* a segment is closed past this; 0: the default */
        ss_spool_fsync fsync;
        uint32_t fsync_interval_ms; /* 0: the default */
} ss_spool_config;

typedef struct ss_spool_stats {
        uint64_t records;  /* on disk or pending, not acknowledged */
        uint64_t bytes;    /* their bodies and headers */
        uint64_t spans;    /* in them */
        uint64_t appended; /* records, since start */
        uint64_t appended_spans;
        uint64_t replayed; /* records handed out by ss_spool_read() */
        uint64_t acked;
        uint64_t dropped_full; /* records deleted with the oldest segment at max_bytes */
        uint64_t dropped_full_spans;
        uint64_t refused; /* appends refused: pending past the bound, too large */
        uint64_t refused_spans;
        uint64_t corrupt;   /* records skipped: torn, bad CRC, bad header */
        uint64_t io_errors; /* failed writes, reads, fsyncs, unlinks (logged) */
} ss_spool_stats;

typedef struct ss_spool ss_spool;

/*
 * Open (or create) the spool in cfg->dir for exporter name (for logs; a
 * string that outlives the spool). Scans the segments synchronously (at
 * start-up, before the loop runs): what they hold after "head" counts in
 * stats and is read first. 0, or -errno with the reason in err.
 */
int ss_spool_open(uv_loop_t *loop, const ss_spool_config *cfg, const char *name, ss_spool **ret,
                  char *err, size_t err_size);

/*
 * Append a record of body's bytes holding n_spans spans; the bytes move into
 * the spool (body is left empty, reusable). Returns 0 once queued for
 * writing; -ENOBUFS (pending writes past SS_SPOOL_MAX_PENDING_BYTES) or
 * -EMSGSIZE (past SS_SPOOL_MAX_RECORD): refused and counted, body untouched.
 */
int ss_spool_append(ss_spool *s, ss_buf *body, uint32_t n_spans);

/* True while some record is neither handed out nor acknowledged. */
bool ss_spool_has_more(const ss_spool *s);

/*
 * Read the oldest record not yet handed out, including one still pending
 * its write. done(ctx, id, body, n_spans) runs on the loop later (never
 * inside this call) with the body, which the callee takes (moves out of
 * *body); with err < 0 when nothing could be read (then body is NULL). One
 * read at a time: -EBUSY while one is pending, -ENOENT when there is nothing
 * to read.
 */
typedef void (*ss_spool_read_cb)(void *ctx, uint64_t id, ss_buf *body, uint32_t n_spans, int err);
int ss_spool_read(ss_spool *s, ss_spool_read_cb done, void *ctx);

/* Record id (from a read) is done with: it leaves the spool once every older one has. */
void ss_spool_ack(ss_spool *s, uint64_t id);

/* Every record handed out and not acknowledged is to be read again, in order (the exporter
 * gave them back, e.g. its backend failed again). */
void ss_spool_rewind(ss_spool *s);

/*
 * Finish the pending writes (in the pool), persist the head, close the
 * files and free s; then done(ctx) runs on the loop (never inside this
 * call). A read pending completes first; its callback is not called. The
 * loop must run until done.
 */
void ss_spool_close(ss_spool *s, void (*done)(void *ctx), void *ctx);

const ss_spool_stats *ss_spool_stats_get(const ss_spool *s);
