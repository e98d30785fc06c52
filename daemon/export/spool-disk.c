/* SPDX-License-Identifier: MIT */
/*
 * The spool on disk (spool.h gives the format): records and the head file
 * written and read, and the worker that runs a job's file work in libuv's
 * thread pool. The formats are written and read here only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "export/spool-internal.h"

#define SPOOL_VERSION 1u
#define HEAD_FILE     "head"
#define HEAD_TMP      "head.tmp"
#define HEAD_BYTES    20u /* seq, offset, CRC32C */

/* ---- formats ----------------------------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le64(uint8_t *p, uint64_t v)
{
        put_le32(p, (uint32_t)v);
        put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_le64(const uint8_t *p)
{
        return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

void ss_spool_record_header_put(uint8_t *h, const uint8_t *body, uint32_t len, uint32_t n_spans)
{
        memcpy(h, "SSPL", 4);
        h[4] = SPOOL_VERSION;
        h[5] = h[6] = h[7] = 0;
        put_le32(h + 8, len);
        put_le32(h + 12, n_spans);
        put_le32(h + 16, ss_crc32c(0, body, len));
        put_le32(h + 20, ss_crc32c(0, h, 20));
}

static void seg_name(char *out, size_t n, uint64_t seq)
{
        snprintf(out, n, "%016" PRIx64 ".seg", seq);
}

int ss_spool_seg_open(const ss_spool *s, uint64_t seq, int flags)
{
        char name[32];

        seg_name(name, sizeof(name), seq);
        return openat(s->dirfd, name, flags | O_CLOEXEC, 0600);
}

/* ---- file I/O ---------------------------------------------------------------------------- */

static int full_pwrite(int fd, const struct iovec *iov, int n, off_t off)
{
        struct iovec v[2];
        size_t total = 0;

        memcpy(v, iov, sizeof(*iov) * (size_t)n);
        for (int i = 0; i < n; i++)
                total += v[i].iov_len;
        while (total > 0) {
                ssize_t w = pwritev(fd, v, n, off);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return w < 0 ? -errno : -EIO;
                total -= (size_t)w;
                off += w;
                for (int i = 0; i < n && w > 0; i++) {
                        size_t k = (size_t)w < v[i].iov_len ? (size_t)w : v[i].iov_len;

                        v[i].iov_base = (char *)v[i].iov_base + k;
                        v[i].iov_len -= k;
                        w -= (ssize_t)k;
                }
        }
        return 0;
}

static int full_pread(int fd, void *buf, size_t n, off_t off)
{
        size_t got = 0;

        while (got < n) {
                ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ENODATA; /* cut short */
                got += (size_t)r;
        }
        return 0;
}

/* ---- reading records and the head ---------------------------------------------------------- */

int ss_spool_record_head_read(int fd, uint64_t off, uint32_t *ret_len, uint32_t *ret_spans,
                              uint32_t *ret_crc)
{
        uint8_t h[SS_SPOOL_RECORD_HEADER];
        int r = full_pread(fd, h, sizeof(h), (off_t)off);

        if (r < 0)
                return r;
        if (memcmp(h, "SSPL", 4) || h[4] != SPOOL_VERSION ||
            get_le32(h + 20) != ss_crc32c(0, h, 20) || get_le32(h + 8) > SS_SPOOL_MAX_RECORD)
                return -EBADMSG;
        *ret_len = get_le32(h + 8);
        *ret_spans = get_le32(h + 12);
        *ret_crc = get_le32(h + 16);
        return 0;
}

int ss_spool_record_body_read(int fd, uint64_t off, uint32_t len, uint32_t crc, ss_buf *body)
{
        int r;

        ss_buf_reset(body);
        r = ss_buf_reserve(body, len);
        if (r == 0)
                r = full_pread(fd, body->data, len, (off_t)(off + SS_SPOOL_RECORD_HEADER));
        if (r == 0 && ss_crc32c(0, body->data, len) != crc)
                r = -EBADMSG;
        if (r == 0)
                body->len = len;
        return r;
}

int ss_spool_head_load(ss_spool *s, uint64_t *ret_seq, uint64_t *ret_off)
{
        uint8_t b[HEAD_BYTES];
        int fd = openat(s->dirfd, HEAD_FILE, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -ENOENT; /* none, or none that can be read: everything replays */
        n = read(fd, b, sizeof(b));
        close(fd);
        if (n != (ssize_t)sizeof(b) || get_le32(b + 16) != ss_crc32c(0, b, 16))
                return -EBADMSG;
        *ret_seq = get_le64(b);
        *ret_off = get_le64(b + 8);
        return 0;
}

/* ---- the worker -------------------------------------------------------------------------- */

static int open_write_seg(ss_spool *s, uint64_t seq)
{
        if (s->wfd >= 0 && s->wfd_seq == seq)
                return 0;
        if (s->wfd >= 0) {
                if (s->cfg.fsync != SS_SPOOL_FSYNC_NEVER)
                        (void)fdatasync(s->wfd); /* a closed segment is whole on disk */
                close(s->wfd);
        }
        s->wfd = ss_spool_seg_open(s, seq, O_WRONLY | O_CREAT);
        s->wfd_seq = seq;
        return s->wfd < 0 ? -errno : 0;
}

static void work_read(ss_spool *s, ss_spool_job *j)
{
        uint32_t len, spans, crc;
        int fd = ss_spool_seg_open(s, j->read_seq, O_RDONLY), r;

        if (fd < 0) {
                j->read_err = -errno;
                return;
        }
        r = ss_spool_record_head_read(fd, j->read_off, &len, &spans, &crc);
        if (r == 0 && len != j->read_len)
                r = -EBADMSG;
        if (r == 0)
                r = ss_spool_record_body_read(fd, j->read_off, len, crc, &j->read_body);
        close(fd);
        j->read_err = r == -ENODATA ? -EBADMSG : r;
}

static int work_head(ss_spool *s, const ss_spool_job *j)
{
        uint8_t b[HEAD_BYTES];
        int fd, r = 0;

        put_le64(b, j->head_seq);
        put_le64(b + 8, j->head_off);
        put_le32(b + 16, ss_crc32c(0, b, 16));
        fd = openat(s->dirfd, HEAD_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
                r = -EIO;
        if (r == 0 && s->cfg.fsync == SS_SPOOL_FSYNC_ALWAYS && fdatasync(fd) < 0)
                r = -errno;
        close(fd);
        if (r == 0 && renameat(s->dirfd, HEAD_TMP, s->dirfd, HEAD_FILE) < 0)
                r = -errno;
        return r;
}

void ss_spool_work(uv_work_t *req)
{
        ss_spool_job *j = req->data;
        ss_spool *s = j->s;
        int r;

        for (size_t i = 0; i < j->n_w; i++) {
                ss_spool_wrec *w = &j->w[i];
                struct iovec v[2] = {{w->hdr, sizeof(w->hdr)}, {w->body.data, w->body.len}};

                r = open_write_seg(s, w->seq);
                if (r == 0)
                        r = full_pwrite(s->wfd, v, 2, (off_t)w->off);
                if (r < 0 && !j->write_err)
                        j->write_err = r;
        }
        if (j->fsync && s->wfd >= 0 && fdatasync(s->wfd) < 0 && !j->write_err)
                j->write_err = -errno;
        if (j->read)
                work_read(s, j);
        /* Acknowledged first, deleted after: a crash between keeps the records, not loses them. */
        if (j->head && (r = work_head(s, j)) < 0 && !j->write_err)
                j->write_err = r;
        for (size_t i = 0; i < j->n_unlink; i++) {
                char name[32];

                if (j->unlink[i] == s->wfd_seq && s->wfd >= 0) {
                        close(s->wfd);
                        s->wfd = -1;
                }
                seg_name(name, sizeof(name), j->unlink[i]);
                if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT && !j->write_err)
                        j->write_err = -errno;
        }
}
