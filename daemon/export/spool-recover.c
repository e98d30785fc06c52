/* SPDX-License-Identifier: MIT */
/*
 * The spool at open: its directory created, opened and locked, and the index
 * rebuilt from the segments found, after the acknowledged position in "head".
 * Loop thread, before the spool is used.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export/spool-internal.h"

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return (x > y) - (x < y);
}

/* The segment sequences in the directory, sorted. */
static int list_segments(ss_spool *s, uint64_t **ret, size_t *ret_n)
{
        DIR *d = fdopendir(dup(s->dirfd));
        uint64_t *v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;

        if (!d)
                return -errno;
        while ((e = readdir(d))) {
                char *end;
                uint64_t seq;

                if (strlen(e->d_name) != 20 || strcmp(e->d_name + 16, ".seg"))
                        continue;
                seq = strtoull(e->d_name, &end, 16);
                if (end != e->d_name + 16)
                        continue;
                if (n == cap) {
                        uint64_t *w = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

                        if (!w) {
                                free(v);
                                closedir(d);
                                return -ENOMEM;
                        }
                        v = w;
                }
                v[n++] = seq;
        }
        closedir(d);
        if (n > 0) /* qsort() of NULL is undefined, even of nothing */
                qsort(v, n, sizeof(*v), cmp_u64);
        *ret = v;
        *ret_n = n;
        return 0;
}

/* The acknowledged position from "head": (0, 0) when it is missing or damaged. */
static void read_head(ss_spool *s, uint64_t *seq, uint64_t *off)
{
        int r = ss_spool_head_load(s, seq, off);

        if (r < 0)
                *seq = *off = 0;
        if (r == -EBADMSG) {
                s->st.corrupt++;
                ss_log(SS_LOG_WARNING,
                       "%s: spool %s: damaged head file: replaying everything "
                       "event=spool-corrupt exporter=%s what=head",
                       s->name, s->dir, s->name);
        }
}

/*
 * Index one segment's records after the head. A record whose body fails its
 * CRC is skipped (its header vouches for its length); a bad or cut header
 * ends the segment: nothing after it can be found safely.
 */
static int scan_segment(ss_spool *s, uint64_t seq, uint64_t head_seq, uint64_t head_off)
{
        struct stat stbuf;
        uint64_t off = 0, live = 0;
        ss_buf body;
        int fd, r = 0;
        ss_spool_seg *g;

        fd = ss_spool_seg_open(s, seq, O_RDONLY);
        if (fd < 0 || fstat(fd, &stbuf) < 0) {
                if (fd >= 0)
                        close(fd);
                return -errno;
        }
        g = ss_spool_seg_add(s, seq);
        ss_buf_init(&body, SS_SPOOL_MAX_RECORD);
        while (g && off < (uint64_t)stbuf.st_size) {
                uint32_t len, spans, crc;
                ss_spool_rec rc;

                if (ss_spool_record_head_read(fd, off, &len, &spans, &crc) < 0 ||
                    off + SS_SPOOL_RECORD_HEADER + len > (uint64_t)stbuf.st_size) {
                        s->st.corrupt++; /* a torn tail or a broken header: the rest goes */
                        break;
                }
                rc = (ss_spool_rec){.seq = seq, .off = off, .len = len, .n_spans = spans};
                off += SS_SPOOL_RECORD_HEADER + len;
                if (seq < head_seq || (seq == head_seq && rc.off < head_off))
                        continue; /* acknowledged before the last stop */
                if (ss_spool_record_body_read(fd, rc.off, len, crc, &body) < 0) {
                        s->st.corrupt++;
                        continue;
                }
                if ((r = ss_spool_rec_push(s, &rc)) < 0)
                        break;
                live++;
                s->st.records++;
                s->st.bytes += SS_SPOOL_RECORD_HEADER + len;
                s->st.spans += spans;
        }
        ss_buf_free(&body);
        close(fd);
        if (!g)
                return -ENOMEM;
        g->size = (uint64_t)stbuf.st_size;
        g->live = (uint32_t)live;
        if (!live) {
                s->n_segs--; /* nothing left to send in it */
                ss_spool_unlink_later(s, seq);
        }
        return r;
}

/* mkdir -p, each new level 0700: the spool root and the exporter's directory in it. */
static int make_dirs(char *path)
{
        for (char *p = path + 1;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char c = *p;

                *p = '\0';
                if (mkdir(path, 0700) < 0 && errno != EEXIST) {
                        *p = c;
                        return -errno;
                }
                *p = c;
                if (!c)
                        return 0;
        }
}

static int open_dir(ss_spool *s, char *err, size_t err_size)
{
        struct stat st;
        int r = make_dirs(s->dir);

        if (r < 0) {
                snprintf(err, err_size, "cannot create the directory: %s", strerror(-r));
                return r;
        }
        s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dirfd < 0 || fstat(s->dirfd, &st) < 0) {
                int e = errno;

                snprintf(err, err_size, "cannot open the directory: %s", strerror(e));
                return -e;
        }
        if (faccessat(s->dirfd, ".", W_OK, AT_EACCESS) < 0) {
                snprintf(err, err_size, "the directory is not writable by the daemon");
                return -EACCES;
        }
        /* Two daemons appending to one spool would interleave and acknowledge each other's
         * records: the second is refused (the lock goes with the descriptor, at close or
         * at a crash). */
        if (flock(s->dirfd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;

                snprintf(err, err_size, "%s",
                         e == EWOULDBLOCK ? "in use by another sidespand (locked)" : strerror(e));
                return e == EWOULDBLOCK ? -EBUSY : -e;
        }
        return 0;
}

int ss_spool_recover(ss_spool *s, char *err, size_t err_size)
{
        uint64_t *seqs = NULL, head_seq, head_off;
        size_t n = 0;
        int r = open_dir(s, err, err_size);

        if (r == 0 && (r = list_segments(s, &seqs, &n)) < 0)
                snprintf(err, err_size, "cannot list the directory: %s", strerror(-r));
        if (r == 0) {
                read_head(s, &head_seq, &head_off);
                for (size_t i = 0; i < n && r == 0; i++)
                        if ((r = scan_segment(s, seqs[i], head_seq, head_off)) < 0)
                                snprintf(err, err_size, "cannot read a segment: %s", strerror(-r));
                /* Appends start a segment of their own, after every one found. */
                s->write_seq = n ? seqs[n - 1] + 1 : 1;
        }
        free(seqs);
        return r;
}
