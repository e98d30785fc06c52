/* SPDX-License-Identifier: MIT */
/* The disk spool: order, acknowledgement across reopen, rewind, segments, the cap,
 * corrupt and torn records, refusals, fsync policies, closing with writes pending. */
#include "ss-check.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "base/crc32c.h"
#include "base/log.h"
#include "export/spool.h"

static uv_loop_t loop;
static char dir[64];

/* What the last read delivered. */
static struct {
        bool done;
        int err;
        uint64_t id;
        uint32_t n_spans;
        char body[2048];
} got;

static void setup(void)
{
        ss_log_set_level(SS_LOG_ERR); /* corrupt records and drops are expected here */
        ck_assert_int_eq(uv_loop_init(&loop), 0);
        snprintf(dir, sizeof(dir), "/tmp/sidespan-spool-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
        char cmd[128];

        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(uv_loop_close(&loop), 0);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
}

static ss_spool *open_spool(uint64_t max_bytes, uint64_t segment_bytes, ss_spool_fsync fsync)
{
        ss_spool_config cfg = {
            .dir = dir, .max_bytes = max_bytes, .segment_bytes = segment_bytes, .fsync = fsync};
        char err[256] = "";
        ss_spool *s = NULL;

        ck_assert_msg(ss_spool_open(&loop, &cfg, "test", &s, err, sizeof(err)) == 0, "%s", err);
        return s;
}

static void on_closed(void *ctx)
{
        *(bool *)ctx = true;
}

static void close_spool(ss_spool *s)
{
        bool closed = false;

        ss_spool_close(s, on_closed, &closed);
        while (!closed)
                uv_run(&loop, UV_RUN_ONCE);
}

static void append(ss_spool *s, const char *text, uint32_t n_spans)
{
        ss_buf b;

        ss_buf_init(&b, 1 << 20);
        ck_assert_int_eq(ss_buf_append(&b, text, strlen(text)), 0);
        ck_assert_int_eq(ss_spool_append(s, &b, n_spans), 0);
        ck_assert_uint_eq(b.len, 0); /* the bytes moved */
        ss_buf_free(&b);
}

static void on_read(void *ctx, uint64_t id, ss_buf *body, uint32_t n_spans, int err)
{
        (void)ctx;
        got.done = true;
        got.err = err;
        got.id = id;
        got.n_spans = n_spans;
        got.body[0] = '\0';
        if (err == 0) {
                ck_assert_uint_lt(body->len, sizeof(got.body));
                memcpy(got.body, body->data, body->len);
                got.body[body->len] = '\0';
                ss_buf_free(body);
        }
}

/* Read the next record; returns its id, with got filled. */
static uint64_t read_one(ss_spool *s, const char *want, uint32_t want_spans)
{
        got.done = false;
        ck_assert_int_eq(ss_spool_read(s, on_read, NULL), 0);
        ck_assert(!got.done); /* never inside the call */
        ck_assert_int_eq(ss_spool_read(s, on_read, NULL), -EBUSY);
        while (!got.done)
                uv_run(&loop, UV_RUN_ONCE);
        ck_assert_int_eq(got.err, 0);
        ck_assert_str_eq(got.body, want);
        ck_assert_uint_eq(got.n_spans, want_spans);
        return got.id;
}

static size_t count_segments(void)
{
        char pat[96];
        glob_t g;
        size_t n;

        snprintf(pat, sizeof(pat), "%s/*.seg", dir);
        if (glob(pat, 0, NULL, &g) != 0)
                return 0;
        n = g.gl_pathc;
        globfree(&g);
        return n;
}

/* Let pending jobs finish (writes, unlinks). */
static void settle(void)
{
        for (int i = 0; i < 50; i++)
                uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
}

/* Open the spool again after damage: it found want_corrupt bad records, kept want_records. */
static ss_spool *reopen_expect(uint64_t want_corrupt, uint64_t want_records)
{
        ss_spool *s = open_spool(0, 0, SS_SPOOL_FSYNC_ALWAYS);

        ck_assert_uint_eq(ss_spool_stats_get(s)->corrupt, want_corrupt);
        ck_assert_uint_eq(ss_spool_stats_get(s)->records, want_records);
        return s;
}

START_TEST(crc32c_check_value)
{
        ck_assert_uint_eq(ss_crc32c(0, "123456789", 9), 0xE3069283u);
        ck_assert_uint_eq(ss_crc32c(ss_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
        ck_assert_uint_eq(ss_crc32c(0, "", 0), 0);
}
END_TEST

START_TEST(order_pending_reads_and_acks)
{
        ss_spool *s = open_spool(0, 0, SS_SPOOL_FSYNC_NEVER);
        uint64_t a, b, c;

        ck_assert(!ss_spool_has_more(s));
        ck_assert_int_eq(ss_spool_read(s, on_read, NULL), -ENOENT);
        append(s, "one", 1);
        append(s, "two", 2);
        append(s, "three", 3);
        ck_assert_uint_eq(ss_spool_stats_get(s)->records, 3);
        ck_assert_uint_eq(ss_spool_stats_get(s)->spans, 6);
        /* read back in order, the first perhaps before its write finished */
        a = read_one(s, "one", 1);
        b = read_one(s, "two", 2);
        c = read_one(s, "three", 3);
        ck_assert(!ss_spool_has_more(s));
        ss_spool_ack(s, b); /* out of order: nothing leaves until a has */
        ck_assert_uint_eq(ss_spool_stats_get(s)->records, 3);
        ss_spool_ack(s, a);
        ck_assert_uint_eq(ss_spool_stats_get(s)->records, 1);
        ss_spool_ack(s, c);
        ss_spool_ack(s, c); /* twice: once */
        ck_assert_uint_eq(ss_spool_stats_get(s)->records, 0);
        ck_assert_uint_eq(ss_spool_stats_get(s)->acked, 3);
        ck_assert_uint_eq(ss_spool_stats_get(s)->appended_spans, 6);
        close_spool(s);
}
END_TEST

START_TEST(head_survives_reopen)
{
        ss_spool *s = open_spool(0, 0, SS_SPOOL_FSYNC_ALWAYS);
        uint64_t a, b;

        append(s, "r1", 1);
        append(s, "r2", 1);
        append(s, "r3", 1);
        a = read_one(s, "r1", 1);
        b = read_one(s, "r2", 1);
        ss_spool_ack(s, b); /* r1 not: r1, r2 (again) and r3 are replayed */
        (void)a;
        close_spool(s);
        s = open_spool(0, 0, SS_SPOOL_FSYNC_ALWAYS);
        ck_assert_uint_eq(ss_spool_stats_get(s)->records, 3);
        a = read_one(s, "r1", 1);
        ss_spool_ack(s, a);
        close_spool(s);
        /* r1 acknowledged: r2 and r3 are what is left, never r1 again */
        s = open_spool(0, 0, SS_SPOOL_FSYNC_ALWAYS);
        ck_assert_uint_eq(ss_spool_stats_get(s)->records, 2);
        a = read_one(s, "r2", 1);
        b = read_one(s, "r3", 1);
        ss_spool_ack(s, a);
        ss_spool_ack(s, b);
        close_spool(s);
        s = open_spool(0, 0, SS_SPOOL_FSYNC_ALWAYS);
        ck_assert(!ss_spool_has_more(s));
        close_spool(s);
}
END_TEST

START_TEST(rewind_hands_out_again)
{
        ss_spool *s = open_spool(0, 0, SS_SPOOL_FSYNC_NEVER);

        append(s, "x", 1);
        append(s, "y", 1);
        (void)read_one(s, "x", 1);
        (void)read_one(s, "y", 1);
        ck_assert(!ss_spool_has_more(s));
        ss_spool_rewind(s);
        ck_assert(ss_spool_has_more(s));
        ss_spool_ack(s, read_one(s, "x", 1));
        ss_spool_ack(s, read_one(s, "y", 1));
        ck_assert_uint_eq(ss_spool_stats_get(s)->records, 0);
        close_spool(s);
}
END_TEST

START_TEST(segments_roll_and_go_when_acknowledged)
{
        ss_spool *s = open_spool(0, 64, SS_SPOOL_FSYNC_NEVER); /* ~one record a segment */
        uint64_t ids[4];
        char text[64];

        for (int i = 0; i < 4; i++) {
                snprintf(text, sizeof(text), "segment record %d, some 40 bytes long....", i);
                append(s, text, 1);
        }
        settle();
        ck_assert_uint_ge(count_segments(), 3);
        for (int i = 0; i < 4; i++) {
                snprintf(text, sizeof(text), "segment record %d, some 40 bytes long....", i);
                ids[i] = read_one(s, text, 1);
        }
        for (int i = 0; i < 4; i++)
                ss_spool_ack(s, ids[i]);
        settle();
        ck_assert_uint_le(count_segments(), 1); /* only the one appends go to */
        close_spool(s);
}
END_TEST

START_TEST(the_cap_drops_the_oldest_segment)
{
        /* 1 KiB records against a 4 KiB cap, one record a segment. */
        ss_spool *s = open_spool(4096, 512, SS_SPOOL_FSYNC_NEVER);
        char big[1001];
        char want[1001];

        for (int i = 0; i < 10; i++) {
                memset(big, 'a' + i, 1000);
                big[1000] = '\0';
                append(s, big, 7);
        }
        /* 1024 bytes a record with its header: four fit */
        ck_assert_uint_eq(ss_spool_stats_get(s)->dropped_full, 6);
        ck_assert_uint_eq(ss_spool_stats_get(s)->dropped_full_spans, 42);
        ck_assert_uint_eq(ss_spool_stats_get(s)->records, 4);
        ck_assert_uint_le(ss_spool_stats_get(s)->bytes, 4096);
        /* the newest are kept, in order */
        for (int i = 6; i < 10; i++) {
                memset(want, 'a' + i, 1000);
                want[1000] = '\0';
                ss_spool_ack(s, read_one(s, want, 7));
        }
        close_spool(s);
        settle();
        ck_assert_uint_le(count_segments(), 4);
}
END_TEST

/* Corrupt the body of the second record: it is skipped, the others are read. */
START_TEST(a_corrupt_body_is_skipped_and_counted)
{
        ss_spool *s = open_spool(0, 0, SS_SPOOL_FSYNC_ALWAYS);
        char path[128];
        int fd;

        append(s, "first", 1);
        append(s, "second", 2);
        append(s, "third", 3);
        close_spool(s);
        snprintf(path, sizeof(path), "%s/%016x.seg", dir, 1);
        fd = open(path, O_RDWR);
        ck_assert_int_ge(fd, 0);
        /* first: 24 + 5 bytes; second's body starts at 29 + 24 */
        ck_assert_int_eq(pwrite(fd, "X", 1, 29 + 24 + 2), 1);
        close(fd);
        s = reopen_expect(1, 2);
        ss_spool_ack(s, read_one(s, "first", 1));
        ss_spool_ack(s, read_one(s, "third", 3));
        close_spool(s);
}
END_TEST

/* A record cut short (a crash mid-write): what came before it replays. */
START_TEST(a_torn_tail_is_skipped_and_counted)
{
        ss_spool *s = open_spool(0, 0, SS_SPOOL_FSYNC_ALWAYS);
        char path[128];
        struct stat st;

        append(s, "whole", 1);
        append(s, "torn-record", 1);
        close_spool(s);
        snprintf(path, sizeof(path), "%s/%016x.seg", dir, 1);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(truncate(path, st.st_size - 4), 0);
        s = reopen_expect(1, 1);
        ss_spool_ack(s, read_one(s, "whole", 1));
        /* new appends go to a new segment and read back after */
        append(s, "later", 1);
        ss_spool_ack(s, read_one(s, "later", 1));
        close_spool(s);
}
END_TEST

START_TEST(a_damaged_head_replays_everything)
{
        ss_spool *s = open_spool(0, 0, SS_SPOOL_FSYNC_ALWAYS);
        char path[128];
        FILE *f;

        append(s, "a", 1);
        append(s, "b", 1);
        ss_spool_ack(s, read_one(s, "a", 1));
        close_spool(s);
        snprintf(path, sizeof(path), "%s/head", dir);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("garbage", f);
        fclose(f);
        s = reopen_expect(1, 2); /* at least once: a again */
        (void)read_one(s, "a", 1);
        close_spool(s);
}
END_TEST

START_TEST(refusals_leave_the_body)
{
        ss_spool *s = open_spool(1 << 20, 0, SS_SPOOL_FSYNC_NEVER);
        ss_buf b;

        ss_buf_init(&b, 4u << 20);
        ck_assert_int_eq(ss_buf_reserve(&b, 2u << 20), 0);
        memset(b.data, 'z', 2u << 20);
        b.len = 2u << 20; /* past max_bytes */
        ck_assert_int_eq(ss_spool_append(s, &b, 5), -EMSGSIZE);
        ck_assert_uint_eq(b.len, 2u << 20);
        ck_assert_uint_eq(ss_spool_stats_get(s)->refused, 1);
        ck_assert_uint_eq(ss_spool_stats_get(s)->refused_spans, 5);
        ss_buf_free(&b);
        close_spool(s);
}
END_TEST

/* Appends still waiting for their write when the spool closes are on disk after. */
START_TEST(close_finishes_pending_writes)
{
        ss_spool *s = open_spool(0, 0, SS_SPOOL_FSYNC_INTERVAL);
        char text[16];

        for (int i = 0; i < 50; i++) {
                snprintf(text, sizeof(text), "p%d", i);
                append(s, text, 1);
        }
        close_spool(s);
        s = open_spool(0, 0, SS_SPOOL_FSYNC_INTERVAL);
        ck_assert_uint_eq(ss_spool_stats_get(s)->records, 50);
        for (int i = 0; i < 50; i++) {
                snprintf(text, sizeof(text), "p%d", i);
                ss_spool_ack(s, read_one(s, text, 1));
        }
        close_spool(s);
}
END_TEST

/* One spool, one daemon: a second open of the same directory is refused while the first
 * holds it, and allowed once it closed. */
START_TEST(a_spool_in_use_is_refused)
{
        ss_spool_config cfg = {.dir = dir};
        ss_spool *s = open_spool(0, 0, SS_SPOOL_FSYNC_NEVER), *t = NULL;
        char err[256] = "";

        ck_assert_int_eq(ss_spool_open(&loop, &cfg, "second", &t, err, sizeof(err)), -EBUSY);
        ck_assert_ptr_null(t);
        ck_assert_ptr_nonnull(strstr(err, "in use"));
        close_spool(s);
        s = open_spool(0, 0, SS_SPOOL_FSYNC_NEVER);
        close_spool(s);
}
END_TEST

START_TEST(an_unusable_directory_is_named)
{
        ss_spool_config cfg = {.dir = "/proc/version/spool"};
        char err[256] = "";
        ss_spool *s = NULL;

        ck_assert_int_lt(ss_spool_open(&loop, &cfg, "test", &s, err, sizeof(err)), 0);
        ck_assert_ptr_null(s);
        ck_assert_ptr_nonnull(strstr(err, "directory"));
}
END_TEST

static Suite *spool_suite(void)
{
        Suite *s = suite_create("spool");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, crc32c_check_value);
        tcase_add_test(tc, order_pending_reads_and_acks);
        tcase_add_test(tc, head_survives_reopen);
        tcase_add_test(tc, rewind_hands_out_again);
        tcase_add_test(tc, segments_roll_and_go_when_acknowledged);
        tcase_add_test(tc, the_cap_drops_the_oldest_segment);
        tcase_add_test(tc, a_corrupt_body_is_skipped_and_counted);
        tcase_add_test(tc, a_torn_tail_is_skipped_and_counted);
        tcase_add_test(tc, a_damaged_head_replays_everything);
        tcase_add_test(tc, refusals_leave_the_body);
        tcase_add_test(tc, close_finishes_pending_writes);
        tcase_add_test(tc, a_spool_in_use_is_refused);
        tcase_add_test(tc, an_unusable_directory_is_named);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return ss_check_run(spool_suite());
}
