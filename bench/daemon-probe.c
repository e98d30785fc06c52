/* SPDX-License-Identifier: MIT */
#include "daemon-probe.h"

#include <errno.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ss-buf.h"
#include "ss-wire.h"

#define STATS_MAX (256u * 1024u) /* a reply, every exporter's counters included */

uint64_t bench_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU seconds (user + system) process pid has used so far, or -1 when unknown. */
double bench_cpu_seconds(long pid)
{
        unsigned long long utime, stime;
        char path[64], buf[1024], *p;
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        f = pid > 0 ? fopen(path, "re") : NULL;
        if (!f)
                return -1;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* Fields 14 and 15, counted after the ")" that ends the command name. */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                         &stime) != 2)
                return -1;
        return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

long bench_proc_field(long pid, const char *file, const char *key)
{
        char path[64], line[256];
        size_t k = strlen(key);
        long v = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%ld/%s", pid, file);
        f = pid > 0 ? fopen(path, "re") : NULL;
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, k) == 0) {
                        v = strtol(line + k, NULL, 10);
                        break;
                }
        fclose(f);
        return v;
}

static int stats_connect(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

static bool key_is(const msgpack_object_str *k, const char *prefix, const char *suffix)
{
        size_t p = strlen(prefix), s = strlen(suffix);

        return k->size >= p + s && memcmp(k->ptr, prefix, p) == 0 &&
               memcmp(k->ptr + k->size - s, suffix, s) == 0;
}

static bool key_eq(const msgpack_object_str *k, const char *name)
{
        return k->size == strlen(name) && memcmp(k->ptr, name, k->size) == 0;
}

/* The counters of a decoded STATS_REPLY (ss_wire_decode() checked their types). */
static void read_counters(const msgpack_object_map *m, bench_dstats *ret)
{
        static const struct {
                const char *name;
                size_t off;
        } plain[] = {
            {"frames", offsetof(bench_dstats, frames)},
            {"spans_started", offsetof(bench_dstats, spans_started)},
            {"spans_finished", offsetof(bench_dstats, spans_finished)},
            {"span_errors", offsetof(bench_dstats, span_errors)},
            {"spans_open", offsetof(bench_dstats, spans_open)},
            {"traces_open", offsetof(bench_dstats, traces_open)},
            {"connections_active", offsetof(bench_dstats, connections_active)},
            {"open_span_limit", offsetof(bench_dstats, open_span_limit)},
            {"open_span_limit_process", offsetof(bench_dstats, open_span_limit)},
        };

        *ret = (bench_dstats){0};
        for (uint32_t i = 0; i < m->size; i++) {
                const msgpack_object_str *k = &m->ptr[i].key.via.str;
                uint64_t v = m->ptr[i].val.via.u64;

                for (size_t j = 0; j < sizeof(plain) / sizeof(plain[0]); j++)
                        if (key_eq(k, plain[j].name))
                                *(uint64_t *)((char *)ret + plain[j].off) += v;
                if (key_is(k, "exporter.", ".spans_exported"))
                        ret->exported += v;
                else if (key_is(k, "exporter.", ".spans_dropped"))
                        ret->export_dropped += v;
        }
}

/* Parse one STATS_REPLY frame out of buf (n bytes); 0, or -EAGAIN for more bytes. */
static int parse_reply(const uint8_t *buf, size_t n, bench_dstats *ret)
{
        const uint8_t *payload;
        msgpack_unpacked u;
        ss_msg m;
        size_t len;
        int r = ss_frame_parse(buf, n, STATS_MAX, &payload, &len);

        if (r <= 0)
                return r == 0 ? -EAGAIN : r;
        msgpack_unpacked_init(&u);
        r = ss_wire_decode(payload, len, &u, &m);
        if (r == 0 && (m.type != SS_MSG_STATS_REPLY || !m.stats.counters))
                r = -EBADMSG;
        if (r == 0)
                read_counters(m.stats.counters, ret);
        msgpack_unpacked_destroy(&u);
        return r;
}

/* Ask the daemon on fd for its counters: frame [8, id], reply [66, id, map]. Blocks. */
static int stats_query(int fd, bench_dstats *ret)
{
        static uint8_t in[STATS_MAX];
        size_t have = 0;
        ss_buf out;
        ssize_t k;
        int r;

        ss_buf_init(&out, 64);
        r = ss_wire_put_seq(&out, 64, SS_MSG_STATS, 1);
        if (r == 0 && send(fd, out.data, out.len, MSG_NOSIGNAL) != (ssize_t)out.len)
                r = -EIO;
        ss_buf_free(&out);
        while (r == 0 || r == -EAGAIN) {
                k = recv(fd, in + have, sizeof(in) - have, 0);
                if (k <= 0)
                        return k == 0 ? -ECONNRESET : -errno;
                have += (size_t)k;
                r = parse_reply(in, have, ret);
                if (r == 0)
                        return 0;
        }
        return r;
}

int bench_daemon_stats(const char *socket, bench_dstats *ret)
{
        int fd = stats_connect(socket), r;

        if (fd < 0)
                return fd;
        r = stats_query(fd, ret);
        close(fd);
        return r;
}

int bench_wait_export(const char *socket, const bench_dstats *base, long timeout_s,
                      bench_dstats *ret, uint64_t *ret_progress_ns)
{
        const struct timespec poll = {.tv_nsec = 10 * 1000000L};
        uint64_t last_change = bench_now_ns(), last_done = UINT64_MAX, done, t;
        uint64_t deadline = last_change + (uint64_t)timeout_s * 1000000000ull;
        bench_dstats s;
        int r;

        for (;;) {
                r = bench_daemon_stats(socket, &s);
                if (r < 0)
                        return r;
                t = bench_now_ns();
                done = s.exported + s.export_dropped - base->exported - base->export_dropped;
                if (done != last_done) {
                        last_done = done;
                        last_change = t;
                }
                if (done >= s.spans_finished - base->spans_finished ||
                    t - last_change > BENCH_SETTLE_NS || t > deadline)
                        break;
                nanosleep(&poll, NULL);
        }
        *ret = s;
        *ret_progress_ns = last_change;
        return 0;
}
