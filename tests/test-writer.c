/* SPDX-License-Identifier: MIT */
/*
 * The non-blocking writer: to a regular file (thread pool), to a pipe the test
 * drains, and to a pipe nobody reads, where it must neither block the loop
 * nor grow past its bound, and must report every chunk it gives up.
 */
#include "ss-check.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export/writer.h"
#include "fixture.h"

#define MAX_CHUNKS 512

/* done() and closed() as the writer called them. */
typedef struct record {
        size_t calls;
        size_t items[MAX_CHUNKS];
        int status[MAX_CHUNKS];
        size_t ok_items, failed_items;
        unsigned closed;
} record;

static uv_loop_t loop;
static ss_writer w;
static record got;
static char dir[64], path[128];
static int rd = -1; /* the read end of the test's pipe */

static void on_done(void *ctx, size_t items, int status)
{
        record *r = ctx;

        ck_assert_ptr_eq(r, &got);
        ck_assert_uint_lt(r->calls, MAX_CHUNKS);
        r->items[r->calls] = items;
        r->status[r->calls++] = status;
        if (status == 0)
                r->ok_items += items;
        else
                r->failed_items += items;
}

static void on_closed(void *ctx)
{
        ck_assert_ptr_eq(ctx, &got);
        got.closed++;
}

/* The directory is made and removed by Check's parent process, once per test case, so that
 * a failed test leaves nothing behind; each test clears what it made. */
static void dir_make(void)
{
        fx_tmpdir(dir, sizeof(dir), "writer");
}

static void dir_remove(void)
{
        fx_tmpdir_remove(dir);
}

static void setup(void)
{
        memset(&got, 0, sizeof(got));
        rd = -1;
        ck_assert_int_eq(uv_loop_init(&loop), 0);
        snprintf(path, sizeof(path), "%s/out", dir);
}

static void teardown(void)
{
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(uv_loop_close(&loop), 0);
        if (rd >= 0)
                close(rd);
        fx_tmpdir_clear(dir);
}

/* Queue text as one chunk of items; data must be taken. */
static int write_text(const char *text, size_t items)
{
        ss_buf b;
        int r;

        ss_buf_init(&b, 1 << 20);
        ck_assert_int_eq(ss_buf_append(&b, text, strlen(text)), 0);
        r = ss_writer_write(&w, &b, items);
        if (r == 0) {
                ck_assert_uint_eq(b.len, 0);
                ck_assert_ptr_null(b.data);
        }
        ss_buf_free(&b);
        return r;
}

static bool all_done(void *ctx)
{
        return got.calls == *(size_t *)ctx && !ss_writer_busy(&w);
}

static void wait_done(size_t calls)
{
        ck_assert_msg(fx_run_until(&loop, all_done, &calls), "%zu of %zu chunks done", got.calls,
                      calls);
}

static bool closed(void *ctx)
{
        return got.closed > 0;
}

/* Close the writer and wait for closed(), which must come from the loop, once. */
static void close_wait(void)
{
        ss_writer_close(&w, on_closed);
        ck_assert(fx_run_until(&loop, closed, NULL));
        uv_run(&loop, UV_RUN_NOWAIT);
        ck_assert_uint_eq(got.closed, 1);
}

static bool fd_open(int fd)
{
        return fcntl(fd, F_GETFD) >= 0;
}

/* ---- a regular file --------------------------------------------------------------------- */

START_TEST(file_chunks_in_order)
{
        char text[64];
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ss_writer_open(&w, &loop, fd, true, 1 << 20, on_done, &got), 0);
        ck_assert_ptr_null(w.s); /* a file goes through the thread pool */
        ck_assert(!ss_writer_busy(&w));
        ck_assert_int_eq(write_text("one\n", 1), 0);
        ck_assert_int_eq(write_text("two\n", 2), 0);
        ck_assert_int_eq(write_text("three\n", 3), 0);
        ck_assert(ss_writer_busy(&w));
        ck_assert_uint_eq(got.calls, 0); /* done() comes from the loop */
        wait_done(3);
        for (size_t i = 0; i < 3; i++) {
                ck_assert_uint_eq(got.items[i], i + 1);
                ck_assert_int_eq(got.status[i], 0);
        }
        ck_assert_uint_eq(fx_read_file(path, text, sizeof(text)), 14);
        ck_assert_str_eq(text, "one\ntwo\nthree\n");
        close_wait();
        ck_assert(!fd_open(fd)); /* owned: closed with the writer */
}
END_TEST

/* Many chunks queued at once go out in vector writes of several chunks each (past the 64
 * one write takes): every byte in order, every chunk reported once, in order. */
START_TEST(file_many_chunks_batched)
{
        enum { CHUNKS = 150 };
        static char want[CHUNKS * 8 + 1], text[CHUNKS * 8 + 1];
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        size_t len = 0;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ss_writer_open(&w, &loop, fd, true, 1 << 20, on_done, &got), 0);
        for (size_t i = 0; i < CHUNKS; i++) {
                char piece[16];
                int n = snprintf(piece, sizeof(piece), "%zu,", i);

                memcpy(want + len, piece, (size_t)n);
                len += (size_t)n;
                ck_assert_int_eq(write_text(piece, i + 1), 0);
        }
        wait_done(CHUNKS);
        for (size_t i = 0; i < CHUNKS; i++) {
                ck_assert_uint_eq(got.items[i], i + 1);
                ck_assert_int_eq(got.status[i], 0);
        }
        ck_assert_uint_eq(fx_read_file(path, text, sizeof(text)), len);
        ck_assert_mem_eq(text, want, len);
        close_wait();
}
END_TEST

/* Pressure: the queued share of the bound for a file, none for a stream (its reader may never
 * read, and holding clients for it would stall the other exporters). */
START_TEST(file_pressure_and_stream_none)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600), p[2];
        char hundred[101] = {0};

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ss_writer_open(&w, &loop, fd, true, 1000, on_done, &got), 0);
        ck_assert_uint_eq(ss_writer_pressure(&w), 0);
        memset(hundred, 'x', 100);
        ck_assert_int_eq(write_text(hundred, 1), 0);
        ck_assert_uint_eq(ss_writer_pressure(&w), 10); /* 100 of 1000 bytes */
        wait_done(1);
        ck_assert_uint_eq(ss_writer_pressure(&w), 0);
        close_wait();

        memset(&got, 0, sizeof(got));
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        rd = p[0];
        ck_assert_int_eq(ss_writer_open(&w, &loop, p[1], true, 1000, on_done, &got), 0);
        ck_assert_ptr_nonnull(w.s);
        ck_assert_int_eq(write_text("a stream", 1), 0);
        ck_assert_uint_eq(ss_writer_pressure(&w), 0);
        close_wait();
}
END_TEST

START_TEST(file_bound_and_close_with_a_write_in_flight)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        char text[64];
        ss_buf b;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ss_writer_open(&w, &loop, fd, true, 10, on_done, &got), 0);
        ck_assert_int_eq(write_text("12345678", 1), 0);
        /* The first write is on the thread pool: 8 of 10 bytes are queued. */
        ss_buf_init(&b, 64);
        ck_assert_int_eq(ss_buf_append(&b, "abc", 3), 0);
        ck_assert_int_eq(ss_writer_write(&w, &b, 1), -ENOBUFS);
        ck_assert_uint_eq(b.len, 3);
        ck_assert_mem_eq(b.data, "abc", 3);
        ss_buf_free(&b);
        ck_assert_int_eq(write_text("xy", 2), 0);
        ck_assert_uint_eq(w.queued, 10);
        /* Close waits for the write in flight; the chunk behind it is given up. */
        close_wait();
        ck_assert_uint_eq(got.calls, 2);
        ck_assert_int_eq(got.status[0], 0);
        ck_assert_uint_eq(got.items[1], 2);
        ck_assert_int_eq(got.status[1], -ECANCELED);
        ck_assert_uint_eq(fx_read_file(path, text, sizeof(text)), 8);
        ck_assert_int_eq(write_text("late", 1), -ECANCELED);
}
END_TEST

START_TEST(file_write_error_is_reported)
{
        int fd;

        ck_assert_int_eq(close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)), 0);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ss_writer_open(&w, &loop, fd, true, 1 << 20, on_done, &got), 0);
        ck_assert_int_eq(write_text("cannot\n", 4), 0);
        wait_done(1);
        ck_assert_int_eq(got.status[0], -EBADF);
        ck_assert_uint_eq(got.failed_items, 4);
        close_wait();
}
END_TEST

/* done() that closes the writer once nothing is queued, as the dead-letter file does. */
static void on_done_close(void *ctx, size_t items, int status)
{
        on_done(ctx, items, status);
        if (!ss_writer_busy(&w) && !w.closing)
                ss_writer_close(&w, on_closed);
}

START_TEST(file_close_from_done)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        char text[64];

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ss_writer_open(&w, &loop, fd, true, 1 << 20, on_done_close, &got), 0);
        ck_assert_int_eq(write_text("a\n", 1), 0);
        ck_assert_int_eq(write_text("b\n", 1), 0);
        ck_assert(fx_run_until(&loop, closed, NULL));
        uv_run(&loop, UV_RUN_NOWAIT);
        ck_assert_uint_eq(got.closed, 1);
        ck_assert_uint_eq(got.calls, 2);
        ck_assert_uint_eq(got.ok_items, 2);
        ck_assert_uint_eq(fx_read_file(path, text, sizeof(text)), 4);
        ck_assert_str_eq(text, "a\nb\n");
        ck_assert(!fd_open(fd));
}
END_TEST

START_TEST(file_not_owned_stays_open)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ss_writer_open(&w, &loop, fd, false, 1 << 20, on_done, &got), 0);
        ck_assert_int_eq(write_text("kept\n", 1), 0);
        wait_done(1);
        ss_writer_close(&w, on_closed);
        /* With a file descriptor it does not own and no write in flight, closed() still
         * comes from the loop, not from inside ss_writer_close(). */
        ck_assert_uint_eq(got.closed, 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_uint_eq(got.closed, 1);
        ck_assert(fd_open(fd));
        close(fd);
}
END_TEST

/* ---- a pipe the test reads -------------------------------------------------------------- */

typedef struct drain_ctx {
        char *buf;
        size_t len, size;
        size_t want_calls;
} drain_ctx;

static void drain_pipe(drain_ctx *d)
{
        ssize_t n;

        while (d->len < d->size && (n = read(rd, d->buf + d->len, d->size - d->len)) > 0)
                d->len += (size_t)n;
}

static bool drained_all(void *ctx)
{
        drain_ctx *d = ctx;

        drain_pipe(d);
        return got.calls == d->want_calls && !ss_writer_busy(&w);
}

START_TEST(pipe_read_by_the_test)
{
        enum { CHUNKS = 200, CHUNK = 1000 };
        static char read_buf[CHUNKS * CHUNK + 1];
        drain_ctx d = {.buf = read_buf, .size = sizeof(read_buf), .want_calls = CHUNKS};
        int p[2];

        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        rd = p[0];
        ck_assert_int_eq(ss_writer_open(&w, &loop, p[1], true, 1 << 20, on_done, &got), 0);
        ck_assert_ptr_nonnull(w.s); /* a pipe is a stream of the loop */
        /* 200 KB: more than the pipe holds, so most of it waits for the reader. */
        for (int i = 0; i < CHUNKS; i++) {
                char chunk[CHUNK + 1];

                memset(chunk, 'a' + i % 26, CHUNK);
                chunk[CHUNK] = '\0';
                ck_assert_int_eq(write_text(chunk, 1), 0);
        }
        ck_assert(fx_run_until(&loop, drained_all, &d));
        ck_assert_uint_eq(got.ok_items, CHUNKS);
        ck_assert_uint_eq(got.failed_items, 0);
        ck_assert_uint_eq(d.len, (size_t)CHUNKS * CHUNK);
        for (int i = 0; i < CHUNKS; i++) {
                ck_assert_int_eq(read_buf[i * CHUNK], 'a' + i % 26);
                ck_assert_int_eq(read_buf[i * CHUNK + CHUNK - 1], 'a' + i % 26);
        }
        close_wait();
        ck_assert_int_eq(read(rd, read_buf, 1), 0); /* the writer closed its end */
}
END_TEST

START_TEST(pipe_not_owned_is_duplicated)
{
        char text[16] = {0};
        int p[2];

        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        rd = p[0];
        ck_assert_int_eq(ss_writer_open(&w, &loop, p[1], false, 1 << 20, on_done, &got), 0);
        ck_assert_int_ne(w.fd, p[1]);
        ck_assert_int_eq(write_text("shared", 1), 0);
        wait_done(1);
        close_wait();
        /* The caller's descriptor is still open and still writes. */
        ck_assert(fd_open(p[1]));
        ck_assert_int_eq(write(p[1], "!", 1), 1);
        close(p[1]);
        ck_assert_int_eq(read(rd, text, sizeof(text) - 1), 7);
        ck_assert_str_eq(text, "shared!");
}
END_TEST

/* ---- a pipe nobody reads ---------------------------------------------------------------- */

#define BOUND (256u * 1024u)
#define CHUNK (16u * 1024u)

static size_t chunk_items(size_t k)
{
        return k % 3 + 1; /* 1, 2, 3, 1, ...: counts that a sum would tell apart */
}

/* Queue CHUNK-byte chunks until the writer refuses one; how many were taken. */
static size_t fill(size_t *k, size_t *items)
{
        size_t taken = 0;
        char *chunk = malloc(CHUNK + 1);
        int r;

        ck_assert_ptr_nonnull(chunk);
        memset(chunk, 'x', CHUNK);
        chunk[CHUNK] = '\0';
        while ((r = write_text(chunk, chunk_items(*k))) == 0) {
                *items += chunk_items(*k);
                (*k)++;
                taken++;
                ck_assert_uint_le(w.queued, BOUND);
        }
        ck_assert_int_eq(r, -ENOBUFS);
        ck_assert_uint_gt(w.queued + CHUNK, BOUND);
        free(chunk);
        return taken;
}

START_TEST(pipe_nobody_reads)
{
        size_t k = 0, items = 0, in_pipe = 0, ok_chunks = 0;
        char *buf;
        ssize_t n;
        int p[2];

        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        rd = p[0];
        ck_assert_int_eq(ss_writer_open(&w, &loop, p[1], true, BOUND, on_done, &got), 0);
        /* Nothing has completed yet, so exactly the bound is taken. */
        ck_assert_uint_eq(fill(&k, &items), BOUND / CHUNK);
        ck_assert_uint_eq(w.queued, BOUND);
        /* The loop goes on turning while the pipe is full. */
        ck_assert(fx_loop_turns(&loop));
        /* What fit in the pipe is done; the rest waits, and the bound holds again. */
        ck_assert_uint_gt(got.calls, 0);
        ck_assert_uint_lt(got.calls, k);
        ck_assert_uint_eq(got.failed_items, 0);
        fill(&k, &items);
        ck_assert(ss_writer_busy(&w));
        close_wait();
        /* Every chunk reported once: written ones with 0, the rest given up. */
        ck_assert_uint_eq(got.calls, k);
        ck_assert_uint_eq(got.ok_items + got.failed_items, items);
        ck_assert_uint_gt(got.failed_items, 0);
        for (size_t i = 0; i < k; i++) {
                ck_assert_uint_eq(got.items[i], chunk_items(i));
                ck_assert_int_le(got.status[i], 0);
                if (i > 0 && got.status[i - 1] < 0)
                        ck_assert_int_lt(got.status[i], 0); /* in order: no success after */
        }
        ck_assert_uint_eq(w.queued, 0);
        /* The pipe holds the written chunks and at most part of the first given up. */
        buf = malloc(BOUND);
        ck_assert_ptr_nonnull(buf);
        while ((n = read(rd, buf, BOUND)) > 0)
                in_pipe += (size_t)n;
        free(buf);
        while (ok_chunks < k && got.status[ok_chunks] == 0)
                ok_chunks++;
        ck_assert_uint_ge(in_pipe, ok_chunks * CHUNK);
        ck_assert_uint_lt(in_pipe, (ok_chunks + 1) * CHUNK);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("writer");
        TCase *file = tcase_create("file");
        TCase *pipe_ = tcase_create("pipe");

        tcase_add_unchecked_fixture(file, dir_make, dir_remove);
        tcase_add_checked_fixture(file, setup, teardown);
        tcase_add_test(file, file_chunks_in_order);
        tcase_add_test(file, file_many_chunks_batched);
        tcase_add_test(file, file_pressure_and_stream_none);
        tcase_add_test(file, file_bound_and_close_with_a_write_in_flight);
        tcase_add_test(file, file_write_error_is_reported);
        tcase_add_test(file, file_close_from_done);
        tcase_add_test(file, file_not_owned_stays_open);
        suite_add_tcase(s, file);

        tcase_add_unchecked_fixture(pipe_, dir_make, dir_remove);
        tcase_add_checked_fixture(pipe_, setup, teardown);
        tcase_add_test(pipe_, pipe_read_by_the_test);
        tcase_add_test(pipe_, pipe_not_owned_is_duplicated);
        tcase_add_test(pipe_, pipe_nobody_reads);
        suite_add_tcase(s, pipe_);
        return ss_check_run(s);
}
