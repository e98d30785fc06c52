/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the files of the spool share (spool.h says what it is): the index of
 * records and the jobs that carry work to the thread pool (spool.c, loop
 * thread), the record and head formats and the worker that reads and writes
 * them (spool-disk.c, thread pool, one job at a time), and the scan that
 * rebuilds the index at open (spool-recover.c, loop thread, before the spool
 * is used). Nothing outside these files includes this.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/log.h"
#include "export/spool.h"
#include "ss-buf.h"

/*
 * One record not yet acknowledged, in append order. The loop owns the
 * index; the thread pool sees only the copies a job carries.
 */
typedef struct ss_spool_rec {
        uint64_t seq, off; /* where its header starts */
        uint32_t len;      /* of the body */
        uint32_t n_spans;
        bool handed; /* given to a reader, not acknowledged */
        bool acked;
} ss_spool_rec;

/* A segment with records still in the index. */
typedef struct ss_spool_seg {
        uint64_t seq;
        uint64_t size; /* bytes written or to be written */
        uint32_t live; /* records in the index */
} ss_spool_seg;

/* An append waiting for a job, or in one. */
typedef struct ss_spool_wrec {
        uint64_t seq, off;
        uint8_t hdr[SS_SPOOL_RECORD_HEADER];
        ss_buf body;
} ss_spool_wrec;

typedef struct ss_spool_job {
        uv_work_t req;
        ss_spool *s;
        ss_spool_wrec *w;
        size_t n_w;
        bool read;
        uint64_t read_id, read_seq, read_off;
        uint32_t read_len;
        ss_buf read_body;
        int read_err;
        uint64_t *unlink;
        size_t n_unlink;
        bool head;
        uint64_t head_seq, head_off;
        bool fsync;
        int write_err;
} ss_spool_job;

struct ss_spool {
        uv_loop_t *loop;
        const char *name;
        char *dir;
        int dirfd;
        ss_spool_config cfg;
        ss_spool_stats st;
        /* the index: records base_id.. in a ring */
        ss_spool_rec *recs;
        size_t cap, first, n;
        uint64_t base_id; /* id of recs[first] */
        uint64_t next_read;
        ss_spool_seg *segs;
        size_t n_segs, cap_segs;
        uint64_t write_seq; /* the segment appends go to */
        /* work for the next job */
        ss_spool_wrec *pend;
        size_t n_pend, cap_pend;
        size_t pend_bytes;
        uint64_t *unlinks;
        size_t n_unlinks, cap_unlinks;
        bool head_dirty;
        bool unsynced;
        uint64_t last_sync_ms;
        /* the reader */
        ss_spool_read_cb read_cb;
        void *read_ctx;
        bool read_wanted;
        /* the worker's: used by one job at a time */
        int wfd;
        uint64_t wfd_seq;
        ss_spool_job *running;
        uv_timer_t sync_timer;
        bool closing;
        void (*closed)(void *ctx);
        void *closed_ctx;
        ss_ratelimit rl;
};

/* ---- spool-disk.c: records and the head on disk, the worker ---------------------------- */

/* Open segment seq, "<16 hex digits>.seg" in s's directory, with flags (and O_CLOEXEC; mode
 * 0600 when created): its descriptor, or -1 with errno set. */
int ss_spool_seg_open(const ss_spool *s, uint64_t seq, int flags);

/* Write the header of a record of body (len bytes, n_spans spans) into h. */
void ss_spool_record_header_put(uint8_t *h, const uint8_t *body, uint32_t len, uint32_t n_spans);

/*
 * Read the header of the record at off of the segment open as fd: 0 with its
 * body's length, span count and CRC32C; -EBADMSG when it is not a header we
 * wrote, -ENODATA when the file ends inside it, -errno.
 */
int ss_spool_record_head_read(int fd, uint64_t off, uint32_t *ret_len, uint32_t *ret_spans,
                              uint32_t *ret_crc);

/* Read the body of len bytes of the record at off into body (emptied first): 0, -EBADMSG when
 * it does not match crc, -ENODATA when cut short, -ENOMEM, -errno. */
int ss_spool_record_body_read(int fd, uint64_t off, uint32_t len, uint32_t crc, ss_buf *body);

/* The position in "head" (the oldest record not acknowledged): 0, -ENOENT when there is no
 * head file, -EBADMSG when it is damaged. */
int ss_spool_head_load(ss_spool *s, uint64_t *ret_seq, uint64_t *ret_off);

/* A job's file work (writes, fsync, a read, the head, deletions): uv_queue_work()'s work. */
void ss_spool_work(uv_work_t *req);

/* ---- spool.c: the index, for the scan at open ------------------------------------------- */

/* Append r to the index: 0 or -ENOMEM. */
int ss_spool_rec_push(ss_spool *s, const ss_spool_rec *r);
/* A segment added to the index, empty; NULL when out of memory. */
ss_spool_seg *ss_spool_seg_add(ss_spool *s, uint64_t seq);
/* Delete segment seq with the next job. */
void ss_spool_unlink_later(ss_spool *s, uint64_t seq);

/* ---- spool-recover.c ---------------------------------------------------------------------- */

/*
 * Open (creating it) and lock the directory of s, then index the records not acknowledged
 * of every segment found, after the head; appends go to a new segment after them. 0, or
 * -errno with what failed in err.
 */
int ss_spool_recover(ss_spool *s, char *err, size_t err_size);
