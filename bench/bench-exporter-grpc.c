/* SPDX-License-Identifier: MIT */
/*
 * bench-exporter-grpc: the OTLP/gRPC exporter on its own, against the
 * receiver at --endpoint (bench/run.sh starts tests/otlp_grpc_receiver.py):
 * --calls calls of --spans finished spans each (every span carries 1 KiB of
 * text, so a call is about 10 KiB at the default 10), with 1, 4 and 8 calls
 * in flight, plain then gzip. For each case: calls/s, spans/s, and the CPU
 * time of this process per call (the loop, the completion-queue thread and
 * grpc's own threads; the receiver's is not counted), of which encoding the
 * request is measured apart first. A benchmark, not a test: it prints
 * figures and asserts nothing.
 */
#include <getopt.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#include "export/exporter-grpc.h"
#include "model/span.h"
#include "otlp/otlp.h"

#define TEXT_LEN  1024
#define MAX_SPANS 512

typedef struct config {
        const char *endpoint;
        long calls;
        long spans;
} config;

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
               ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

/* A one-entry map {key: value} unpacked into u, which keeps it alive. */
static const msgpack_object_map *map1(msgpack_sbuffer *sb, msgpack_unpacked *u, const char *key,
                                      const char *value, size_t value_len)
{
        msgpack_packer pk;
        size_t off = 0;

        msgpack_sbuffer_init(sb);
        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        msgpack_unpacked_init(u);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, key, strlen(key));
        msgpack_pack_str_with_body(&pk, value, value_len);
        if (msgpack_unpack_next(u, sb->data, sb->size, &off) != MSGPACK_UNPACK_SUCCESS)
                return NULL;
        return &u->data.via.map;
}

static ss_resource *make_resource(void)
{
        msgpack_sbuffer sb;
        msgpack_unpacked u;
        const msgpack_object_map *m = map1(&sb, &u, "service.name", "bench-agent", 11);
        ss_resource *r = m ? ss_resource_new(m) : NULL;

        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
        return r;
}

/* Finished span i, with TEXT_LEN bytes of varied text in one attribute. */
static ss_span *make_span(ss_resource *res, unsigned i)
{
        uint8_t tid[16], sid[8];
        char text[TEXT_LEN];
        ss_msg_span m = {.trace_id = tid,
                         .span_id = sid,
                         .name = {.ptr = "chat gpt-4o", .len = 11},
                         .kind = SS_KIND_CLIENT,
                         .start_ns = 1700000000000000000ull + i * 1000ull,
                         .end_ns = 1700000000850000000ull,
                         .status_code = SS_STATUS_OK};
        msgpack_sbuffer sb;
        msgpack_unpacked u;
        ss_span *s = NULL;

        memset(tid, 0xA5, sizeof(tid));
        memcpy(tid, &i, sizeof(i));
        memset(sid, 0x11, sizeof(sid));
        memcpy(sid, &i, sizeof(i));
        for (size_t k = 0; k < sizeof(text); k++) /* words of 8 letters that vary with i */
                text[k] = k % 9 == 8 ? ' ' : (char)('a' + (k * 7 + i) % 26);
        m.attrs = map1(&sb, &u, "gen_ai.output.messages", text, sizeof(text));
        if (m.attrs)
                s = ss_span_new(&m, true, res, NULL);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
        return s;
}

/* The CPU time of ss_otlp_encode() for one call's spans, which every case includes. */
static double encode_us(const config *cfg, ss_span *const *spans)
{
        ss_buf b;
        uint64_t c0 = cpu_ns();

        ss_buf_init(&b, (size_t)64 << 20);
        for (long i = 0; i < cfg->calls; i++) {
                ss_buf_reset(&b);
                if (ss_otlp_encode(spans, (size_t)cfg->spans, &b) < 0)
                        return -1;
        }
        ss_buf_free(&b);
        return (double)(cpu_ns() - c0) / 1e3 / (double)cfg->calls;
}

static bool idle(const ss_exporter *e)
{
        return !e->ops->busy(e);
}

/* Run loop until e is idle. */
static void drain(uv_loop_t *loop, ss_exporter *e)
{
        while (!idle(e))
                uv_run(loop, UV_RUN_ONCE);
}

static int run_case(const config *cfg, ss_span *const *spans, uint32_t inflight, bool gzip)
{
        ss_grpc_config gc;
        ss_exporter *e = NULL;
        uv_loop_t loop;
        uint64_t t0, c0, wall, cpu;
        int r;

        uv_loop_init(&loop);
        ss_grpc_config_defaults(&gc);
        gc.endpoint = cfg->endpoint;
        gc.insecure = true;
        gc.gzip = gzip;
        gc.max_batch = (size_t)cfg->spans;
        gc.max_inflight = inflight;
        gc.max_queue_bytes = (size_t)1 << 30;
        r = ss_grpc_exporter_new(&loop, &gc, &e);
        if (r < 0) {
                fprintf(stderr, "exporter: %s\n", strerror(-r));
                return r;
        }
        /* one call first, so the connection is up before the clock starts */
        e->ops->add(e, spans, (size_t)cfg->spans);
        drain(&loop, e);
        t0 = now_ns();
        c0 = cpu_ns();
        /* Every call queued at once (each add is a full batch, encoded now): the exporter keeps
         * `inflight` of them going until the queue is empty. */
        for (long i = 0; i < cfg->calls; i++)
                e->ops->add(e, spans, (size_t)cfg->spans);
        drain(&loop, e);
        wall = now_ns() - t0;
        cpu = cpu_ns() - c0;
        printf("%-6s in flight %u: %7.0f calls/s %8.0f spans/s  %6.1f us CPU/call  "
               "(%llu exported, %llu dropped)\n",
               gzip ? "gzip" : "plain", inflight, (double)cfg->calls * 1e9 / (double)wall,
               (double)(cfg->calls * cfg->spans) * 1e9 / (double)wall,
               (double)cpu / 1e3 / (double)cfg->calls, (unsigned long long)e->stats.spans_exported,
               (unsigned long long)e->stats.spans_dropped);
        e->ops->destroy(e);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 0;
}

static void usage(FILE *f)
{
        fprintf(f, "usage: bench-exporter-grpc --endpoint http://HOST:PORT [--calls N] "
                   "[--spans N]\n");
}

static int parse(int argc, char **argv, config *cfg)
{
        static const struct option opts[] = {{"endpoint", required_argument, NULL, 'e'},
                                             {"calls", required_argument, NULL, 'c'},
                                             {"spans", required_argument, NULL, 's'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
        int c;

        *cfg = (config){.calls = 2000, .spans = 10};
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (c == 'e')
                        cfg->endpoint = optarg;
                else if (c == 'c')
                        cfg->calls = atol(optarg);
                else if (c == 's')
                        cfg->spans = atol(optarg);
                else
                        return -1;
        }
        if (!cfg->endpoint || cfg->calls < 1 || cfg->spans < 1 || cfg->spans > MAX_SPANS)
                return -1;
        return 0;
}

int main(int argc, char **argv)
{
        static const uint32_t inflight[] = {1, 4, 8};
        ss_span *spans[MAX_SPANS];
        ss_resource *res;
        config cfg;
        int r = 0;

        if (parse(argc, argv, &cfg) < 0) {
                usage(stderr);
                return 2;
        }
        res = make_resource();
        for (long i = 0; i < cfg.spans; i++)
                if (!res || !(spans[i] = make_span(res, (unsigned)i))) {
                        fprintf(stderr, "cannot build spans\n");
                        return 1;
                }
        printf("%ld calls of %ld spans (%d B of text each) to %s\n", cfg.calls, cfg.spans, TEXT_LEN,
               cfg.endpoint);
        printf("encoding one call's request alone: %.1f us CPU\n", encode_us(&cfg, spans));
        for (int gzip = 0; gzip <= 1 && r == 0; gzip++)
                for (size_t k = 0; k < sizeof(inflight) / sizeof(*inflight) && r == 0; k++)
                        r = run_case(&cfg, spans, inflight[k], gzip);
        for (long i = 0; i < cfg.spans; i++)
                ss_span_unref(spans[i]);
        ss_resource_unref(res);
        return r < 0 ? 1 : 0;
}
