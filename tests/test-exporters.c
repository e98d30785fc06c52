/* SPDX-License-Identifier: MIT */
/*
 * The file exporter (OTLP/JSON lines) on a temporary file and on FIFOs, and
 * the console exporter (a tree of the trace) on a pipe the test reads.
 */
#include "ss-check.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "export/exporter-console.h"
#include "export/exporter-file.h"
#include "export/pipeline.h"
#include "export/writer.h"
#include "fixture.h"
#include "otlp/otlp.h"
#include "ss-id.h"

static uv_loop_t loop;
static char dir[64], path[128];
static ss_resource *res;
static int rd = -1; /* the read end of a pipe or FIFO the test holds */

/* The directory is made and removed by Check's parent process, once per test case, so that
 * a failed test leaves nothing behind; each test clears what it made. */
static void dir_make(void)
{
        fx_tmpdir(dir, sizeof(dir), "exporters");
}

static void dir_remove(void)
{
        fx_tmpdir_remove(dir);
}

static void setup(void)
{
        ss_log_set_level(SS_LOG_ERR);
        rd = -1;
        ck_assert_int_eq(uv_loop_init(&loop), 0);
        snprintf(path, sizeof(path), "%s/traces.jsonl", dir);
        res = mp_resource("export-svc", "sidespan-test", "1.2.3");
}

static void teardown(void)
{
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(uv_loop_close(&loop), 0);
        if (rd >= 0)
                close(rd);
        ss_resource_unref(res);
        fx_tmpdir_clear(dir);
}

/* Hand e one trace: spans named names[i], span i + 1 the child of parents[i] (< 0: a root). */
static void add_trace(ss_exporter *e, uint8_t trace, const char *const *names, const int *parents,
                      size_t n)
{
        ss_span *spans[16];

        ck_assert_uint_le(n, 16);
        for (size_t i = 0; i < n; i++)
                spans[i] = fx_finished_span(res, names[i], trace, (uint8_t)(i + 1), parents[i]);
        e->ops->add(e, spans, n);
        for (size_t i = 0; i < n; i++)
                ss_span_unref(spans[i]);
}

static bool idle(void *ctx)
{
        const ss_exporter *e = ctx;

        return !e->ops->busy(e);
}

static void flush_wait(ss_exporter *e)
{
        e->ops->flush(e);
        ck_assert_msg(fx_run_until(&loop, idle, e), "the %s exporter stayed busy", e->name);
}

/* Destroy e and prove that nothing of it is left on the loop. */
static void destroy_wait(ss_exporter *e)
{
        e->ops->destroy(e);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(uv_loop_close(&loop), 0);
        ck_assert_int_eq(uv_loop_init(&loop), 0); /* teardown closes it again */
}

static void trace_hex(uint8_t trace, char *hex)
{
        uint8_t id[SS_TRACE_ID_LEN];

        fx_trace_id(trace, id);
        ss_hex(hex, id, SS_TRACE_ID_LEN);
}

static char *read_all(const char *p)
{
        static char buf[1 << 16];

        fx_read_file(p, buf, sizeof(buf));
        return buf;
}

/* The lines of text, split in place; how many. */
static size_t split_lines(char *text, char **lines, size_t max)
{
        size_t n = 0;

        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < max;
             l = strtok_r(NULL, "\n", &save))
                lines[n++] = l;
        return n;
}

/* ---- file ------------------------------------------------------------------------------- */

static const char *const agent_names[] = {"agent.run", "llm.call", "tool.exec", "http.get"};
static const int agent_parents[] = {-1, 1, 1, 3};

START_TEST(file_appends_one_line_per_batch)
{
        static const char *const later[] = {"second.batch"};
        static const int root[] = {-1};
        char hex1[2 * SS_TRACE_ID_LEN + 1], hex2[2 * SS_TRACE_ID_LEN + 1], *lines[8];
        ss_exporter *e = NULL;
        int fd;

        /* What the file holds already stays: the exporter appends. */
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ck_assert_int_eq(write(fd, "earlier\n", 8), 8);
        close(fd);
        ck_assert_int_eq(ss_file_exporter_new(&loop, path, 100, 60000, &e), 0);
        ck_assert_str_eq(e->name, "file");
        add_trace(e, 3, agent_names, agent_parents, 2);
        ck_assert(e->ops->busy(e)); /* batched: no delay, no size trigger yet */
        flush_wait(e);
        add_trace(e, 4, later, root, 1);
        flush_wait(e);
        ck_assert_uint_eq(e->stats.spans_in, 3);
        ck_assert_uint_eq(e->stats.spans_exported, 3);
        ck_assert_uint_eq(e->stats.requests, 2);
        ck_assert_uint_eq(e->stats.spans_dropped, 0);
        ck_assert_uint_eq(split_lines(read_all(path), lines, 8), 3);
        trace_hex(3, hex1);
        trace_hex(4, hex2);
        ck_assert_str_eq(lines[0], "earlier");
        ck_assert_int_eq(strncmp(lines[1], "{\"resourceSpans\":", 17), 0);
        fx_assert_has(lines[1], "\"agent.run\"");
        fx_assert_has(lines[1], "\"llm.call\"");
        fx_assert_has(lines[1], hex1);
        fx_assert_has(lines[1], "\"export-svc\"");
        ck_assert_ptr_null(strstr(lines[1], "second.batch"));
        ck_assert_int_eq(strncmp(lines[2], "{\"resourceSpans\":", 17), 0);
        fx_assert_has(lines[2], "\"second.batch\"");
        fx_assert_has(lines[2], hex2);
        ck_assert_ptr_null(strstr(lines[2], hex1));
        destroy_wait(e);
}
END_TEST

START_TEST(file_batches_by_size)
{
        ss_exporter *e = NULL;
        char *lines[8];

        ck_assert_int_eq(ss_file_exporter_new(&loop, path, 3, 60000, &e), 0);
        add_trace(e, 5, agent_names, agent_parents, 4);
        ck_assert_uint_eq(e->stats.requests, 1); /* three went at once, one waits */
        flush_wait(e);
        ck_assert_uint_eq(e->stats.requests, 2);
        ck_assert_uint_eq(e->stats.spans_exported, 4);
        ck_assert_uint_eq(split_lines(read_all(path), lines, 8), 2);
        fx_assert_has(lines[0], "\"tool.exec\"");
        fx_assert_has(lines[1], "\"http.get\"");
        ck_assert_ptr_null(strstr(lines[1], "agent.run"));
        destroy_wait(e);
}
END_TEST

START_TEST(file_destroy_drops_the_batch)
{
        ss_exporter *e = NULL;
        struct stat st;

        ck_assert_int_eq(ss_file_exporter_new(&loop, path, 100, 60000, &e), 0);
        add_trace(e, 6, agent_names, agent_parents, 4);
        destroy_wait(e); /* drops the batch; the counter is gone with it */
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_size, 0);
}
END_TEST

START_TEST(file_cannot_be_opened)
{
        char bad[160];
        ss_exporter *e = NULL;

        snprintf(bad, sizeof(bad), "%s/no/such/dir/x.jsonl", dir);
        ck_assert_int_eq(ss_file_exporter_new(&loop, bad, 100, 1000, &e), -ENOENT);
        ck_assert_ptr_null(e);
}
END_TEST

START_TEST(fifo_without_reader_fails_at_once)
{
        ss_exporter *e = NULL;

        ck_assert_int_eq(mkfifo(path, 0600), 0);
        /* Opening for writing would block until a reader comes: it must fail instead. */
        ck_assert_int_eq(ss_file_exporter_new(&loop, path, 100, 1000, &e), -ENXIO);
        ck_assert_ptr_null(e);
}
END_TEST

static unsigned drained;

static void on_drained(void *ctx)
{
        drained++;
}

static bool is_drained(void *ctx)
{
        return drained > 0;
}

/* The bytes of the line the file exporter writes for spans. */
static size_t json_line_size(ss_span *const *spans, size_t n)
{
        ss_buf b;
        size_t len;

        ss_buf_init(&b, (size_t)64 << 20);
        ck_assert_int_eq(ss_otlp_json_encode(spans, n, &b), 0);
        len = b.len + 1;
        ss_buf_free(&b);
        return len;
}

START_TEST(fifo_nobody_reads)
{
        enum { BATCHES = 80 };
        const size_t name_len = (size_t)1 << 20;
        char *name = malloc(name_len + 1);
        ss_pipeline *p = NULL;
        ss_exporter *e = NULL;
        ss_counters c;
        size_t line, fit;
        ss_span *big;

        ck_assert_ptr_nonnull(name);
        memset(name, 'n', name_len);
        name[name_len] = '\0';
        big = fx_finished_span(res, name, 9, 1, -1);
        free(name);
        line = json_line_size(&big, 1);
        fit = SS_WRITER_MAX_QUEUED_DEFAULT / line;
        ck_assert_uint_lt(fit, BATCHES);
        ck_assert_int_eq(mkfifo(path, 0600), 0);
        rd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* open, never read */
        ck_assert_int_ge(rd, 0);
        ck_assert_int_eq(ss_file_exporter_new(&loop, path, 1, 1, &e), 0);
        ck_assert_int_eq(ss_pipeline_new(&loop, &p), 0);
        ck_assert_int_eq(ss_pipeline_add(p, e), 0);
        /* 80 MiB of lines for a FIFO of 64 KiB: every add returns, none blocks, and past the
         * writer's bound the batches are dropped and counted. */
        for (int i = 0; i < BATCHES; i++)
                e->ops->add(e, &big, 1);
        ss_span_unref(big);
        ck_assert_uint_eq(e->stats.requests, BATCHES);
        ck_assert_uint_eq(e->stats.spans_dropped, BATCHES - fit);
        ck_assert_uint_eq(e->stats.failures, BATCHES - fit);
        ck_assert(ss_pipeline_busy(p));
        /* The loop keeps turning. */
        ck_assert(fx_loop_turns(&loop));
        ss_counters_init(&c);
        ss_pipeline_counters(p, &c);
        ck_assert_uint_eq(ss_counters_get(&c, "exporter.file.spans_in"), BATCHES);
        ck_assert_uint_eq(ss_counters_get(&c, "exporter.file.spans_exported"), 0);
        ck_assert_uint_eq(ss_counters_get(&c, "exporter.file.spans_dropped"), BATCHES - fit);
        ss_counters_free(&c);
        /* A drain gives up at its deadline; the exporter is destroyed all the same, and
         * teardown proves that none of its handles is left. */
        drained = 0;
        ss_pipeline_drain(p, 50, on_drained, NULL);
        ck_assert(fx_run_until(&loop, is_drained, NULL));
        ck_assert_uint_eq(drained, 1);
}
END_TEST

/* ---- a batch too large for one body -------------------------------------------------------- */

/* What emit() was handed: one entry per body. */
typedef struct bodies {
        size_t calls;
        size_t spans;
        size_t max_len;   /* of a body */
        char names[1024]; /* the spans' first bytes of name, in order, '|' after each */
} bodies;

static int encode_json(void *ctx, ss_span *const *spans, size_t n, ss_buf *out)
{
        return ss_otlp_json_encode(spans, n, out);
}

static void record_body(void *ctx, ss_span *const *spans, size_t n, ss_buf *body)
{
        bodies *b = ctx;

        b->calls++;
        b->spans += n;
        if (body->len > b->max_len)
                b->max_len = body->len;
        for (size_t i = 0; i < n; i++) {
                strncat(b->names, spans[i]->name.ptr, 2);
                strcat(b->names, "|");
        }
}

/* Eight spans of trace 10, "s0" to "s7"; the one at big (if < 8) has a name of 20 KiB. */
static void eight_spans(ss_span **spans, size_t big)
{
        char name[3] = "s0";
        char *huge = malloc(20 << 10);

        ck_assert_ptr_nonnull(huge);
        memset(huge, 'h', 20 << 10);
        huge[(20 << 10) - 1] = '\0';
        huge[0] = 'B';
        for (size_t i = 0; i < 8; i++) {
                name[1] = (char)('0' + i);
                spans[i] = fx_finished_span(res, i == big ? huge : name, 10, (uint8_t)(i + 1), -1);
        }
        free(huge);
}

START_TEST(oversized_batch_is_split)
{
        ss_exporter e = {.name = "test"};
        bodies got = {0};
        ss_span *spans[8];
        size_t max_body;

        eight_spans(spans, 8);
        /* Room for four of them, not for eight. */
        max_body = json_line_size(spans, 4) + 16;
        ck_assert_uint_gt(json_line_size(spans, 8), max_body);
        ck_assert_uint_eq(
            ss_exporter_encode_split(&e, spans, 8, encode_json, record_body, &got, max_body), 0);
        ck_assert_uint_eq(got.calls, 2);
        ck_assert_uint_eq(got.spans, 8);
        ck_assert_uint_le(got.max_len, max_body);
        ck_assert_str_eq(got.names, "s0|s1|s2|s3|s4|s5|s6|s7|");
        ck_assert_uint_eq(e.stats.spans_dropped, 0);
        ck_assert_uint_eq(e.stats.failures, 0);
        for (size_t i = 0; i < 8; i++)
                ss_span_unref(spans[i]);
}
END_TEST

START_TEST(span_too_large_is_dropped_alone)
{
        ss_exporter e = {.name = "test"};
        bodies got = {0};
        ss_span *spans[8];
        size_t max_body;

        eight_spans(spans, 3);
        max_body = json_line_size(spans + 4, 4) + 16;
        ck_assert_uint_gt(json_line_size(spans + 3, 1), max_body);
        ck_assert_uint_eq(
            ss_exporter_encode_split(&e, spans, 8, encode_json, record_body, &got, max_body), 1);
        /* Every other span written, in its order. */
        ck_assert_uint_eq(got.spans, 7);
        ck_assert_str_eq(got.names, "s0|s1|s2|s4|s5|s6|s7|");
        ck_assert_uint_le(got.max_len, max_body);
        ck_assert_uint_eq(e.stats.spans_dropped, 1);
        ck_assert_uint_eq(e.stats.failures, 1);
        /* A batch of that span alone: dropped, nothing emitted. */
        memset(&got, 0, sizeof(got));
        ck_assert_uint_eq(
            ss_exporter_encode_split(&e, spans + 3, 1, encode_json, record_body, &got, max_body),
            1);
        ck_assert_uint_eq(got.calls, 0);
        ck_assert_uint_eq(e.stats.spans_dropped, 2);
        for (size_t i = 0; i < 8; i++)
                ss_span_unref(spans[i]);
}
END_TEST

/* ---- console ---------------------------------------------------------------------------- */

typedef struct pipe_text {
        char buf[1 << 16];
        size_t len;
        const ss_exporter *e;
} pipe_text;

static bool read_until_idle(void *ctx)
{
        pipe_text *t = ctx;
        ssize_t n;

        while (t->len < sizeof(t->buf) - 1 &&
               (n = read(rd, t->buf + t->len, sizeof(t->buf) - 1 - t->len)) > 0)
                t->len += (size_t)n;
        t->buf[t->len] = '\0';
        return !t->e->ops->busy(t->e) && t->len > 0;
}

static ss_exporter *console_on_pipe(int *ret_wr)
{
        ss_exporter *e = NULL;
        int p[2];

        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        rd = p[0];
        ck_assert_int_eq(ss_console_exporter_new(&loop, p[1], &e), 0);
        ck_assert_str_eq(e->name, "console");
        *ret_wr = p[1];
        return e;
}

START_TEST(console_prints_the_tree)
{
        static pipe_text t;
        char want[128], hex[2 * SS_TRACE_ID_LEN + 1], *lines[8];
        ss_exporter *e;
        int wr;

        e = console_on_pipe(&wr);
        t.e = e;
        add_trace(e, 7, agent_names, agent_parents, 4);
        ck_assert(fx_run_until(&loop, read_until_idle, &t));
        ck_assert_uint_eq(e->stats.spans_in, 4);
        ck_assert_uint_eq(e->stats.spans_exported, 4);
        ck_assert_uint_eq(e->stats.requests, 1);
        trace_hex(7, hex);
        ck_assert_uint_eq(split_lines(t.buf, lines, 8), 5);
        snprintf(want, sizeof(want), "trace %s  service=export-svc  4 spans  ", hex);
        ck_assert_msg(strncmp(lines[0], want, strlen(want)) == 0, "header: %s", lines[0]);
        ck_assert_int_eq(strncmp(lines[1], "  agent.run  ", 13), 0);
        ck_assert_int_eq(strncmp(lines[2], "  ├─ llm.call  ", strlen("  ├─ llm.call  ")), 0);
        ck_assert_int_eq(strncmp(lines[3], "  └─ tool.exec  ", strlen("  └─ tool.exec  ")), 0);
        ck_assert_int_eq(strncmp(lines[4], "     └─ http.get  ", strlen("     └─ http.get  ")), 0);
        destroy_wait(e);
        /* The descriptor was borrowed: it is still the caller's. */
        ck_assert_int_ge(fcntl(wr, F_GETFD), 0);
        close(wr);
}
END_TEST

START_TEST(console_chunk_without_its_root)
{
        static pipe_text t;
        static const char *const names[] = {"llm.call", "tool.exec"};
        static const int parents[] = {9, 9}; /* their parent came in another chunk */
        char *lines[8];
        ss_exporter *e;
        int wr;

        e = console_on_pipe(&wr);
        t.e = e;
        add_trace(e, 8, names, parents, 2);
        e->ops->flush(e); /* nothing held back: a no-op */
        ck_assert(fx_run_until(&loop, read_until_idle, &t));
        ck_assert_uint_eq(split_lines(t.buf, lines, 8), 3);
        fx_assert_has(lines[0], "2 spans");
        ck_assert_int_eq(strncmp(lines[1], "  llm.call  ", 12), 0);
        ck_assert_int_eq(strncmp(lines[2], "  tool.exec  ", 13), 0);
        ck_assert_uint_eq(e->stats.spans_exported, 2);
        destroy_wait(e);
        close(wr);
}
END_TEST

START_TEST(console_prints_parents_in_a_cycle)
{
        static pipe_text t;
        /* ping's parent is pong, pong's is ping; self is its own parent. */
        static const char *const names[] = {"ping", "pong", "self"};
        static const int parents[] = {2, 1, 3};
        char *lines[8];
        ss_exporter *e;
        int wr;

        e = console_on_pipe(&wr);
        t.e = e;
        add_trace(e, 11, names, parents, 3);
        ck_assert(fx_run_until(&loop, read_until_idle, &t));
        /* Each shown once: the header, then one line a span. */
        fx_assert_has(t.buf, "3 spans");
        ck_assert_ptr_nonnull(strstr(t.buf, "ping  "));
        ck_assert_ptr_nonnull(strstr(t.buf, "pong  "));
        ck_assert_ptr_nonnull(strstr(t.buf, "self  "));
        ck_assert_ptr_null(strstr(strstr(t.buf, "ping  ") + 1, "ping  "));
        ck_assert_uint_eq(split_lines(t.buf, lines, 8), 4);
        ck_assert_uint_eq(e->stats.spans_exported, 3);
        destroy_wait(e);
        close(wr);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("exporters");
        TCase *file = tcase_create("file");
        TCase *console = tcase_create("console");

        tcase_add_unchecked_fixture(file, dir_make, dir_remove);
        tcase_add_checked_fixture(file, setup, teardown);
        tcase_add_test(file, file_appends_one_line_per_batch);
        tcase_add_test(file, file_batches_by_size);
        tcase_add_test(file, file_destroy_drops_the_batch);
        tcase_add_test(file, file_cannot_be_opened);
        tcase_add_test(file, fifo_without_reader_fails_at_once);
        tcase_add_test(file, fifo_nobody_reads);
        tcase_add_test(file, oversized_batch_is_split);
        tcase_add_test(file, span_too_large_is_dropped_alone);
        suite_add_tcase(s, file);

        tcase_add_unchecked_fixture(console, dir_make, dir_remove);
        tcase_add_checked_fixture(console, setup, teardown);
        tcase_add_test(console, console_prints_the_tree);
        tcase_add_test(console, console_chunk_without_its_root);
        tcase_add_test(console, console_prints_parents_in_a_cycle);
        suite_add_tcase(s, console);
        return ss_check_run(s);
}
