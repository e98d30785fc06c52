/* SPDX-License-Identifier: MIT */
/*
 * grpc-sink: an OTLP/gRPC trace receiver that discards, for bench/bench-e2e.sh.
 * It must not be the limit of the measurement, so it does the least a
 * receiver can: every call to TraceService/Export is read, counted (calls,
 * bytes of the uncompressed message, and spans, by walking the three levels
 * of length-delimited fields ResourceSpans > ScopeSpans > Span without
 * decoding anything else) and answered OK with an empty
 * ExportTraceServiceResponse. The grpc core C API, the same libgrpc the
 * daemon's exporter-grpc.c links; one completion-queue thread (main) with
 * SLOTS calls requested at once, so that many calls can be in flight.
 *
 *   grpc-sink [--port PORT] [--port-file PATH]
 *
 * Listens on 127.0.0.1 (insecure), port 0 by default: --port-file gets the
 * bound port. On SIGTERM or SIGINT it prints `requests=N bytes=N spans=N` on
 * stdout and exits 0. A benchmark helper: it prints figures, asserts nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#define EXPORT_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define SLOTS         64  /* calls requested from the server at once */
#define POLL_MS       100 /* how late a signal may be noticed */

/* One call's life: requested, then answered, then requested again. */
typedef struct slot {
        bool answering; /* false: waiting for a new call; true: the answer batch is out */
        grpc_call *call;
        gpr_timespec deadline;
        grpc_metadata_array request_md;
        grpc_byte_buffer *payload;
        grpc_byte_buffer *reply; /* the empty response message */
        int cancelled;
} slot;

typedef struct sink {
        grpc_server *server;
        grpc_completion_queue *cq;
        void *method;
        uint64_t requests, bytes, spans;
        slot slots[SLOTS];
} sink;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        (void)sig;
        stop = 1;
}

/* ---- the span count: a protobuf walk over length-delimited fields ---------------------- */

/* A varint at *p (below end): the value, p moved past it; false when malformed. */
static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
        uint64_t v = 0;

        for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
                uint8_t b = *(*p)++;

                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return true;
                }
        }
        return false;
}

/* Past one field's value of wire type wt; false when malformed. */
static bool skip(const uint8_t **p, const uint8_t *end, unsigned wt)
{
        uint64_t v;

        if (wt == 0)
                return varint(p, end, &v);
        if (wt == 1 || wt == 5) {
                if ((size_t)(end - *p) < (wt == 1 ? 8u : 4u))
                        return false;
                *p += wt == 1 ? 8 : 4;
                return true;
        }
        if (wt == 2) {
                if (!varint(p, end, &v) || v > (uint64_t)(end - *p))
                        return false;
                *p += v;
                return true;
        }
        return false;
}

/*
 * The number of fields numbered `field` of wire type 2 in [p, end) at depth 0;
 * at depth > 0, the sum of this count over each such field's contents one
 * level down. Malformed input counts what came before the fault.
 */
static uint64_t count_fields(const uint8_t *p, const uint8_t *end, const uint32_t *fields,
                             unsigned depth)
{
        uint64_t n = 0, key, len;

        while (p < end && varint(&p, end, &key)) {
                unsigned wt = (unsigned)(key & 7);

                if (wt != 2 || (key >> 3) != fields[0]) {
                        if (!skip(&p, end, wt))
                                break;
                        continue;
                }
                if (!varint(&p, end, &len) || len > (uint64_t)(end - p))
                        break;
                n += depth ? count_fields(p, p + len, fields + 1, depth - 1) : 1;
                p += len;
        }
        return n;
}

/* ExportTraceServiceRequest.resource_spans=1 > ResourceSpans.scope_spans=2 > ScopeSpans.spans=2. */
static uint64_t count_spans(const uint8_t *p, size_t len)
{
        static const uint32_t path[] = {1, 2, 2};

        return count_fields(p, p + len, path, 2);
}

/* ---- the calls ------------------------------------------------------------------------- */

/* Ask the server for the next call into s; false when the server refuses. */
static bool slot_request(sink *k, slot *s)
{
        s->answering = false;
        s->call = NULL;
        s->payload = NULL;
        s->cancelled = 0;
        grpc_metadata_array_init(&s->request_md);
        return grpc_server_request_registered_call(k->server, k->method, &s->call, &s->deadline,
                                                   &s->request_md, &s->payload, k->cq, k->cq,
                                                   s) == GRPC_CALL_OK;
}

/* Count what the call in s carried. */
static void slot_count(sink *k, const slot *s)
{
        grpc_byte_buffer_reader rd;
        grpc_slice all;

        k->requests++;
        if (!s->payload || !grpc_byte_buffer_reader_init(&rd, s->payload))
                return;
        all = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
        k->bytes += GRPC_SLICE_LENGTH(all);
        k->spans += count_spans(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
        grpc_slice_unref(all);
}

/* Answer the call in s: initial metadata, an empty message, status OK, and wait for close. */
static bool slot_answer(slot *s)
{
        grpc_slice empty = grpc_empty_slice();
        grpc_op ops[4];

        memset(ops, 0, sizeof(ops));
        s->reply = grpc_raw_byte_buffer_create(&empty, 1);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = s->reply;
        ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
        ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[3].data.recv_close_on_server.cancelled = &s->cancelled;
        s->answering = true;
        return grpc_call_start_batch(s->call, ops, 4, s, NULL) == GRPC_CALL_OK;
}

/* The call in s is over (answered, or failed before): free it. */
static void slot_release(slot *s)
{
        if (s->payload)
                grpc_byte_buffer_destroy(s->payload);
        if (s->reply)
                grpc_byte_buffer_destroy(s->reply);
        grpc_metadata_array_destroy(&s->request_md);
        if (s->call)
                grpc_call_unref(s->call);
        *s = (slot){0};
}

/* One completion for slot s; ok is the event's success. Keeps the slot requesting. */
static void on_event(sink *k, slot *s, bool ok)
{
        if (!s->answering && ok) {
                slot_count(k, s);
                if (slot_answer(s))
                        return;
        }
        slot_release(s);
        if (!stop)
                (void)slot_request(k, s);
}

/* ---- set-up and teardown --------------------------------------------------------------- */

static int write_port(const char *path, int port)
{
        FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        fprintf(f, "%d\n", port);
        return fclose(f) == 0 ? 0 : -errno;
}

/* Start the server on 127.0.0.1:port; ret_port gets the port bound. */
static int sink_start(sink *k, int port, int *ret_port)
{
        grpc_arg arg = {.type = GRPC_ARG_INTEGER,
                        .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                        .value.integer = -1};
        grpc_channel_args args = {.num_args = 1, .args = &arg};
        grpc_server_credentials *creds;
        char addr[32];
        int bound;

        k->cq = grpc_completion_queue_create_for_next(NULL);
        k->server = grpc_server_create(&args, NULL);
        grpc_server_register_completion_queue(k->server, k->cq, NULL);
        k->method = grpc_server_register_method(k->server, EXPORT_METHOD, NULL,
                                                GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        creds = grpc_insecure_server_credentials_create();
        bound = grpc_server_add_http2_port(k->server, addr, creds);
        grpc_server_credentials_release(creds);
        if (bound <= 0)
                return -EADDRINUSE;
        grpc_server_start(k->server);
        for (int i = 0; i < SLOTS; i++)
                if (!slot_request(k, &k->slots[i]))
                        return -EIO;
        *ret_port = bound;
        return 0;
}

/* Serve until a signal. */
static void sink_run(sink *k)
{
        for (;;) {
                grpc_event ev = grpc_completion_queue_next(
                    k->cq, gpr_time_from_millis(POLL_MS, GPR_TIMESPAN), NULL);

                if (ev.type == GRPC_OP_COMPLETE)
                        on_event(k, ev.tag, ev.success);
                if (stop)
                        break;
        }
}

/* Shut the server down, cancel what is in flight, drain the queue, free everything. */
static void sink_stop(sink *k)
{
        static int shutdown_tag;
        bool shut = false;
        grpc_event ev;

        grpc_server_shutdown_and_notify(k->server, k->cq, &shutdown_tag);
        grpc_server_cancel_all_calls(k->server);
        while (!shut) {
                ev = grpc_completion_queue_next(k->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type != GRPC_OP_COMPLETE)
                        break;
                if (ev.tag == &shutdown_tag)
                        shut = true;
                else
                        slot_release(ev.tag);
        }
        grpc_server_destroy(k->server);
        grpc_completion_queue_shutdown(k->cq);
        do {
                ev = grpc_completion_queue_next(k->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type == GRPC_OP_COMPLETE && ev.tag != &shutdown_tag)
                        slot_release(ev.tag);
        } while (ev.type != GRPC_QUEUE_SHUTDOWN);
        grpc_completion_queue_destroy(k->cq);
}

static int parse_args(int argc, char **argv, int *port, const char **port_file)
{
        static const struct option opts[] = {
            {"port", required_argument, NULL, 'p'},
            {"port-file", required_argument, NULL, 'f'},
            {"help", no_argument, NULL, 'h'},
            {0},
        };
        int c;

        while ((c = getopt_long(argc, argv, "p:h", opts, NULL)) != -1) {
                if (c == 'p')
                        *port = (int)strtol(optarg, NULL, 10);
                else if (c == 'f')
                        *port_file = optarg;
                else {
                        fprintf(c == 'h' ? stdout : stderr,
                                "Usage: %s [--port PORT] [--port-file PATH]\n"
                                "An OTLP/gRPC trace sink on 127.0.0.1 that counts and discards; "
                                "prints requests=N bytes=N spans=N on SIGTERM/SIGINT.\n",
                                argv[0]);
                        exit(c == 'h' ? 0 : 2);
                }
        }
        return optind == argc && *port >= 0 && *port < 65536 ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
        struct sigaction sa = {.sa_handler = on_signal};
        const char *port_file = NULL;
        static sink k;
        int port = 0, bound = 0, r;

        if (parse_args(argc, argv, &port, &port_file) < 0) {
                fprintf(stderr, "grpc-sink: bad arguments (--help)\n");
                return 2;
        }
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        grpc_init();
        r = sink_start(&k, port, &bound);
        if (r == 0 && port_file)
                r = write_port(port_file, bound);
        if (r < 0)
                fprintf(stderr, "grpc-sink: cannot serve on 127.0.0.1:%d: %s\n", port,
                        strerror(-r));
        else
                sink_run(&k);
        sink_stop(&k);
        grpc_shutdown();
        if (r < 0)
                return 1;
        printf("requests=%" PRIu64 " bytes=%" PRIu64 " spans=%" PRIu64 "\n", k.requests, k.bytes,
               k.spans);
        return 0;
}
