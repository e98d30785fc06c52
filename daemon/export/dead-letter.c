/* SPDX-License-Identifier: MIT */
#include "export/dead-letter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "export/gzip.h"
#include "export/writer.h"
#include "otlp/otlp.h"

struct ss_dead_letter {
        ss_writer w;
        const char *exporter;
        char *path;
        bool closing;
        void (*closed)(void *ctx);
        void *ctx;
        uint64_t requests, spans, bytes;   /* lines handed to the writer */
        uint64_t refused;                  /* lines not written: backlog, bad body, memory */
        uint64_t write_errors;             /* lines the file did not take */
        ss_ratelimit rl_refused, rl_write; /* per call site, as every log line */
};

/* ---- one line ---------------------------------------------------------------------------- */

/* An OTLP/JSON body as it is, less its line breaks: the JSON writer escapes them in strings,
 * so any there are whitespace between tokens. */
static int json_line(const uint8_t *p, size_t len, ss_buf *out)
{
        int r = 0;

        for (size_t i = 0, j; i < len && r == 0; i = j + 1) {
                for (j = i; j < len && p[j] != '\n' && p[j] != '\r'; j++)
                        ;
                r = ss_buf_append(out, p + i, j - i);
        }
        return r;
}

/*
 * The body as a line. Which encoding it is can be read off its first bytes:
 * gzip starts 1f 8b, OTLP/JSON with '{'; an ExportTraceServiceRequest in
 * protobuf starts with field 1's tag (0a), and neither 1f (field 3 of the
 * invalid wire type 7) nor 7b (field 15, a group) can start one.
 */
static int body_line(const uint8_t *p, size_t len, ss_buf *out)
{
        ss_buf plain;
        int r;

        ss_buf_init(&plain, SS_DEAD_LETTER_MAX_BODY);
        if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
                r = ss_gunzip_append(p, len, &plain);
                if (r < 0)
                        goto out;
                p = plain.data;
                len = plain.len;
        }
        if (len > 0 && p[0] == '{')
                r = json_line(p, len, out);
        else
                r = ss_otlp_pb_trace_request_json(p, len, out);
        if (r == 0)
                r = ss_buf_append(out, "\n", 1);
out:
        ss_buf_free(&plain);
        return r;
}

static void refuse(ss_dead_letter *dl, size_t n_spans, const char *why)
{
        dl->refused++;
        ss_log_rl(&dl->rl_refused, SS_LOG_WARNING,
                  "%s: %zu spans not written to the dead-letter file %s: %s "
                  "event=dead-letter-refused exporter=%s spans=%zu path=\"%s\" reason=\"%s\"",
                  dl->exporter, n_spans, dl->path, why, dl->exporter, n_spans, dl->path, why);
}

void ss_dead_letter_put(ss_dead_letter *dl, const uint8_t *body, size_t len, size_t n_spans)
{
        ss_buf line;
        size_t n;
        int r;

        if (!dl)
                return;
        if (dl->w.queued > SS_DEAD_LETTER_MAX_BACKLOG) {
                refuse(dl, n_spans, "the file is not keeping up (backlog full)");
                return;
        }
        ss_buf_init(&line, SS_DEAD_LETTER_MAX_LINE);
        r = body_line(body, len, &line);
        n = line.len;
        if (r == 0)
                r = ss_writer_write(&dl->w, &line, n_spans);
        if (r < 0) {
                refuse(dl, n_spans, r == -EBADMSG ? "the body is no OTLP request" : strerror(-r));
        } else {
                dl->requests++;
                dl->spans += n_spans;
                dl->bytes += n;
        }
        ss_buf_free(&line);
}

/* ---- the file ---------------------------------------------------------------------------- */

static void on_writer_closed(void *ctx)
{
        ss_dead_letter *dl = ctx;
        void (*closed)(void *) = dl->closed;
        void *closed_ctx = dl->ctx;

        free(dl->path);
        free(dl);
        closed(closed_ctx);
}

/* A line written, or not: the last one written lets a pending close go on. */
static void on_written(void *ctx, size_t spans, int status)
{
        ss_dead_letter *dl = ctx;

        if (status < 0) {
                dl->write_errors++;
                ss_log_rl(&dl->rl_write, SS_LOG_ERR,
                          "%s: cannot write %zu spans to the dead-letter file %s "
                          "event=dead-letter-write-failed exporter=%s spans=%zu path=\"%s\" "
                          "error=\"%s\"",
                          dl->exporter, spans, dl->path, dl->exporter, spans, dl->path,
                          strerror(-status));
        }
        if (dl->closing && !ss_writer_busy(&dl->w) && !dl->w.closing)
                ss_writer_close(&dl->w, on_writer_closed);
}

int ss_dead_letter_check(const char *path, const char *exporter)
{
        char *dir = strdup(path), *slash;
        int r = 0;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash)
                slash[slash == dir] = '\0'; /* "/f" keeps "/" */
        if (access(path, W_OK) < 0 &&
            (errno != ENOENT || access(slash ? dir : ".", W_OK | X_OK) < 0))
                r = -errno;
        free(dir);
        if (r < 0)
                ss_log(SS_LOG_ERR,
                       "%s: the dead-letter file %s cannot be written: %s "
                       "event=dead-letter-failed exporter=%s path=\"%s\" error=\"%s\"",
                       exporter, path, strerror(-r), exporter, path, strerror(-r));
        return r;
}

int ss_dead_letter_open(uv_loop_t *loop, const char *path, const char *exporter,
                        ss_dead_letter **ret)
{
        ss_dead_letter *dl = calloc(1, sizeof(*dl));
        int fd = -1, r = -ENOMEM;

        if (!dl || !(dl->path = strdup(path)))
                goto fail;
        dl->exporter = exporter;
        /* O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of blocking the start. */
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
        if (fd < 0) {
                r = -errno;
                goto fail;
        }
        /* Past the backlog a line is refused before the writer sees it: its own bound only
         * has to hold the backlog and one line. */
        r = ss_writer_open(&dl->w, loop, fd, true,
                           SS_DEAD_LETTER_MAX_BACKLOG + SS_DEAD_LETTER_MAX_LINE, on_written, dl);
        if (r < 0)
                goto fail;
        *ret = dl;
        return 0;
fail:
        ss_log(SS_LOG_ERR,
               "%s: cannot open the dead-letter file %s: %s event=dead-letter-failed "
               "exporter=%s path=\"%s\" error=\"%s\"",
               exporter, path, r == -ENXIO ? "a FIFO with no reader" : strerror(-r), exporter, path,
               r == -ENXIO ? "a FIFO with no reader" : strerror(-r));
        if (fd >= 0)
                close(fd);
        if (dl)
                free(dl->path);
        free(dl);
        return r;
}

void ss_dead_letter_counters(const ss_dead_letter *dl, const char *prefix, ss_counters *out)
{
        char p[SS_COUNTER_NAME_MAX];

        if (!dl)
                return;
        snprintf(p, sizeof(p), "%sdead_letter.", prefix);
        ss_counters_add(out, p, "requests", dl->requests);
        ss_counters_add(out, p, "spans", dl->spans);
        ss_counters_add(out, p, "bytes", dl->bytes);
        ss_counters_add(out, p, "refused", dl->refused);
        ss_counters_add(out, p, "write_errors", dl->write_errors);
}

void ss_dead_letter_close(ss_dead_letter *dl, void (*closed)(void *ctx), void *ctx)
{
        dl->closing = true;
        dl->closed = closed;
        dl->ctx = ctx;
        /* Unlike the file exporter's, the tail is not given up: a dead letter is the last
         * copy of what no backend took. A file drains as fast as the disk goes; a FIFO's
         * reader may never read, and shutdown must not wait for it: that tail is given up,
         * logged as write errors. */
        if (!ss_writer_busy(&dl->w) || ss_writer_is_stream(&dl->w))
                ss_writer_close(&dl->w, on_writer_closed);
}
