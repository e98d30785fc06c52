/* SPDX-License-Identifier: MIT */
/*
 * bench-encode: what the daemon's OTLP encoders cost per span, on batches of
 * 512 finished chat spans, each carrying 1 KiB of gen_ai.output.messages
 * content and 9 other GenAI attributes: protobuf (ss_otlp_encode, the
 * direct writer the otlp-http and otlp-grpc exporters use), the protobuf-c
 * encoder it replaced (ss_otlp_encode_pbc), protobuf then gzip (the
 * exporters' gzip compression) and OTLP/JSON (ss_otlp_json_encode, the file
 * exporter). MB/s counts the bytes produced. A benchmark, not a test: it
 * prints figures.
 *
 *   bench-encode [SECONDS per encoder, default 1]
 *   bench-encode --count ENCODER BATCHES   encode BATCHES batches and print nothing: for
 *                                          callgrind, whose counts of two runs differ by
 *                                          the encoder's instructions alone
 */
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "export/gzip.h"
#include "otlp/otlp.h"
#include "model/span.h"
#include "ss-buf.h"

#define BATCH       512
#define CONTENT_LEN 1024
#define OUT_MAX     (256u << 20)

typedef int (*encode_fn)(ss_span *const *spans, size_t n, ss_buf *out);

/* The protobuf request before gzip, kept between batches as the exporter keeps its buffers. */
static ss_buf gzip_raw = {.max = OUT_MAX};

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pk_str(msgpack_packer *pk, const char *s, size_t len)
{
        msgpack_pack_str_with_body(pk, s, len);
}

static void pk_kv(msgpack_packer *pk, const char *key, const char *value)
{
        pk_str(pk, key, strlen(key));
        pk_str(pk, value, strlen(value));
}

static void pk_int(msgpack_packer *pk, const char *key, int64_t value)
{
        pk_str(pk, key, strlen(key));
        msgpack_pack_int64(pk, value);
}

/* A chat message of exactly CONTENT_LEN bytes whose words vary with seed, so that gzip
 * sees text rather than one repeated string. */
static void content(char *buf, unsigned seed)
{
        static const char *const words[] = {
            "the",   "weather", "in",    "Paris", "is",    "cloudy", "and",    "18C",
            "while", "Tokyo",   "shows", "21:04", "agent", "tool",   "result", "answer"};
        static const char head[] = "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\","
                                   "\"content\":\"";
        static const char tail[] = "\"}]}]";
        size_t n = sizeof(head) - 1, end = CONTENT_LEN - (sizeof(tail) - 1);

        memcpy(buf, head, n);
        while (n < end) {
                const char *w;

                seed = seed * 1103515245u + 12345u;
                w = words[(seed >> 16) % 16];
                for (size_t i = 0; w[i] && n < end; i++)
                        buf[n++] = w[i];
                if (n < end)
                        buf[n++] = ' ';
        }
        memcpy(buf + n, tail, sizeof(tail));
}

/* The attributes of chat span i, as the assembler would hold them. */
static void chat_attrs(msgpack_packer *pk, unsigned i)
{
        char text[CONTENT_LEN + 1];

        content(text, i);
        msgpack_pack_map(pk, 10);
        pk_kv(pk, "gen_ai.operation.name", "chat");
        pk_kv(pk, "gen_ai.provider.name", "openai");
        pk_kv(pk, "gen_ai.request.model", "gpt-4o");
        pk_kv(pk, "gen_ai.response.model", "gpt-4o-2024-08-06");
        pk_kv(pk, "gen_ai.response.id", "chatcmpl-AbCdEf0123456789");
        pk_int(pk, "gen_ai.usage.input_tokens", 412 + i % 100);
        pk_int(pk, "gen_ai.usage.output_tokens", 46 + i % 50);
        pk_str(pk, "gen_ai.request.temperature", strlen("gen_ai.request.temperature"));
        msgpack_pack_double(pk, 0.2);
        pk_str(pk, "gen_ai.response.finish_reasons", strlen("gen_ai.response.finish_reasons"));
        msgpack_pack_array(pk, 1);
        pk_str(pk, "stop", 4);
        pk_str(pk, "gen_ai.output.messages", strlen("gen_ai.output.messages"));
        pk_str(pk, text, CONTENT_LEN);
}

/* A map from packed bytes; u keeps the objects alive until the span has copied them. */
static const msgpack_object_map *unpack_map(const msgpack_sbuffer *sb, msgpack_unpacked *u)
{
        size_t off = 0;

        if (msgpack_unpack_next(u, sb->data, sb->size, &off) != MSGPACK_UNPACK_SUCCESS ||
            u->data.type != MSGPACK_OBJECT_MAP)
                return NULL;
        return &u->data.via.map;
}

static ss_resource *make_resource(void)
{
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked u;
        const msgpack_object_map *m;
        ss_resource *r = NULL;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_unpacked_init(&u);
        msgpack_pack_map(&pk, 3);
        pk_kv(&pk, "service.name", "bench-agent");
        pk_kv(&pk, "sdk.name", "libsidespan");
        pk_kv(&pk, "sdk.version", "0.1.0");
        m = unpack_map(&sb, &u);
        if (m)
                r = ss_resource_new(m);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
        return r;
}

/* Finished chat span i of one trace, with its own span id, under a common parent. */
static ss_span *make_span(ss_resource *res, unsigned i)
{
        uint8_t tid[16], sid[8], pid[8];
        ss_msg_span m = {.trace_id = tid,
                         .span_id = sid,
                         .parent_id = pid,
                         .name = {.ptr = "chat gpt-4o", .len = 11},
                         .kind = SS_KIND_CLIENT,
                         .start_ns = 1700000000000000000ull + i * 1000000ull};
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked u;
        ss_span *s = NULL;

        memset(tid, 0xA5, sizeof(tid));
        memset(pid, 0x5A, sizeof(pid));
        memcpy(sid, &i, sizeof(i));
        memset(sid + sizeof(i), 0x11, sizeof(sid) - sizeof(i));
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_unpacked_init(&u);
        chat_attrs(&pk, i);
        m.attrs = unpack_map(&sb, &u);
        if (m.attrs)
                s = ss_span_new(&m, false, res, NULL);
        if (s)
                ss_span_end(s, m.start_ns + 850000000ull, SS_STATUS_OK, NULL, 0);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
        return s;
}

static int encode_gzip(ss_span *const *spans, size_t n, ss_buf *out)
{
        int r;

        ss_buf_reset(&gzip_raw);
        r = ss_otlp_encode(spans, n, &gzip_raw);
        return r < 0 ? r : ss_gzip_append(gzip_raw.data, gzip_raw.len, out);
}

/* Encode the batch again and again for about seconds; prints one row. */
static int bench(const char *label, encode_fn fn, ss_span *const *spans, double seconds)
{
        ss_buf out;
        uint64_t t0, elapsed = 0, bytes = 0, batches = 0;
        int r = 0;

        ss_buf_init(&out, OUT_MAX);
        for (int i = 0; i < 5 && r == 0; i++) {
                ss_buf_reset(&out);
                r = fn(spans, BATCH, &out);
        }
        t0 = now_ns();
        while (r == 0 && elapsed < (uint64_t)(seconds * 1e9)) {
                ss_buf_reset(&out);
                r = fn(spans, BATCH, &out);
                bytes += out.len;
                batches++;
                elapsed = now_ns() - t0;
        }
        if (r == 0)
                printf("%-22s %9.0f %11.0f %9.1f %12.0f\n", label,
                       (double)elapsed / (double)(batches * BATCH),
                       (double)bytes / (double)(batches * BATCH),
                       (double)bytes / ((double)elapsed / 1e9) / 1e6,
                       (double)(batches * BATCH) / ((double)elapsed / 1e9));
        else
                printf("%-22s failed: %s\n", label, strerror(-r));
        ss_buf_free(&out);
        return r;
}

static const struct {
        const char *label;
        const char *name; /* for --count */
        encode_fn fn;
} encoders[] = {
    {"protobuf", "protobuf", ss_otlp_encode},
    {"protobuf-c (before)", "protobuf-c", ss_otlp_encode_pbc},
    {"protobuf + gzip", "gzip", encode_gzip},
    {"OTLP/JSON", "json", ss_otlp_json_encode},
};

/* --count: batches of one encoder, nothing printed. */
static int count(const char *name, long batches, ss_span *const *spans)
{
        ss_buf out;
        int r = 0;

        for (size_t i = 0; i < sizeof(encoders) / sizeof(encoders[0]); i++) {
                if (strcmp(encoders[i].name, name) != 0)
                        continue;
                ss_buf_init(&out, OUT_MAX);
                for (long b = 0; b < batches && r == 0; b++) {
                        ss_buf_reset(&out);
                        r = encoders[i].fn(spans, BATCH, &out);
                }
                ss_buf_free(&out);
                return r;
        }
        return -EINVAL;
}

int main(int argc, char **argv)
{
        bool counting = argc == 4 && strcmp(argv[1], "--count") == 0;
        double seconds = argc == 2 ? strtod(argv[1], NULL) : 1.0;
        ss_resource *res = make_resource();
        ss_span *spans[BATCH] = {0};
        int r = res ? 0 : -ENOMEM;

        for (unsigned i = 0; i < BATCH && r == 0; i++)
                if (!(spans[i] = make_span(res, i)))
                        r = -ENOMEM;
        if (r == 0 && counting) {
                r = count(argv[2], strtol(argv[3], NULL, 10), spans);
                if (r == -EINVAL)
                        fprintf(stderr, "bench-encode: no encoder '%s'\n", argv[2]);
                goto out;
        }
        if (r < 0 || seconds <= 0 || (argc > 2 && !counting)) {
                fprintf(stderr,
                        "usage: %s [SECONDS per encoder, default 1]\n"
                        "       %s --count protobuf|protobuf-c|gzip|json BATCHES\n",
                        argv[0], argv[0]);
                r = -EINVAL;
                goto out;
        }
        printf("OTLP encoding, batches of %d chat spans (1 KiB content + 9 GenAI attributes)\n\n",
               BATCH);
        printf("%-22s %9s %11s %9s %12s\n", "encoder", "ns/span", "bytes/span", "MB/s out",
               "spans/s");
        for (size_t i = 0; i < sizeof(encoders) / sizeof(encoders[0]); i++)
                if (bench(encoders[i].label, encoders[i].fn, spans, seconds) < 0)
                        r = -EIO;
out:
        ss_buf_free(&gzip_raw);
        for (unsigned i = 0; i < BATCH; i++)
                ss_span_unref(spans[i]);
        ss_resource_unref(res);
        return r < 0 ? 1 : 0;
}
