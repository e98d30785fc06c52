/* SPDX-License-Identifier: MIT */
/*
 * itest-client: a small program the integration tests (tests/integration.py)
 * run to drive libsidespan against a real sidespand. The socket comes from
 * SIDESPAN_SOCKET. Every mode prints one line of JSON (reconnect prints two
 * lines) and exits 0 unless something failed.
 *
 *   absent N          no daemon: N root spans with 2 children each, flush (500 ms);
 *                     {"sent","dropped","queued","flush","emit_ms","elapsed_ms"}
 *   spans N           N traces: root "itest.root" (SERVER) with attributes of every type
 *                     and an event "itest.event" with attributes; children "itest.child.1"
 *                     (CLIENT) and "itest.child.2" (INTERNAL, status ERROR "boom");
 *                     flush (5 s); {"trace_ids":[hex...],"flush":rc}
 *   remote TP         "itest.remote" (SERVER) continuing traceparent TP, child
 *                     "itest.remote.child"; {"traceparent","child_traceparent","flush"}
 *   nocontent         include_content=false: "itest.nocontent" with every content attribute,
 *                     "itest.keep"="yes", an event with both; {"trace_id","flush"}
 *   sampled RATE N    sample_rate RATE, N traces of root + child;
 *                     {"trace_ids":[kept...],"unsampled":n,"flush":rc}
 *   reconnect         "before.restart", flush, print "first <rc>"; wait for a line on
 *                     stdin; "after.restart", flush (10 s); {"flush","reconnects"}
 *   open N            N root spans "itest.open" left open, flush, exit without ending them
 *                     (for orphan handling); {"trace_ids":[...],"flush":rc}
 *   hold              an agent run killed mid-run: agent.run > pipeline.execute >
 *                     pipeline.step.model_execution > "chat gpt-4o" (first-token event) >
 *                     tool.execute get_weather, all left open, and a tool.execute get_time
 *                     ended under the step; flush (5 s);
 *                     {"trace_id","span_ids":[the five open, outermost first],"flush":rc};
 *                     then blocks until it is killed
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sidespan.h"

static double mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static sidespan_client *open_client(double rate, bool content)
{
        sidespan_options o;
        sidespan_client *c;
        int r;

        sidespan_options_init(&o);
        o.sample_rate = rate;
        o.include_content = content;
        o.flush_on_exit = false;
        r = sidespan_client_open(&o, &c);
        if (r < 0) {
                fprintf(stderr, "itest-client: open: %s\n", sidespan_strerror(r));
                exit(2);
        }
        return c;
}

static void die_if(int r, const char *what)
{
        if (r < 0) {
                fprintf(stderr, "itest-client: %s: %s\n", what, sidespan_strerror(r));
                exit(2);
        }
}

static long arg_long(const char *s)
{
        char *end;
        long v = strtol(s, &end, 10);

        if (end == s || *end || v < 0) {
                fprintf(stderr, "itest-client: bad number '%s'\n", s);
                exit(2);
        }
        return v;
}

static sidespan_stats stats(sidespan_client *c)
{
        sidespan_stats st;

        sidespan_stats_init(&st);
        die_if(sidespan_client_stats(c, &st), "stats");
        return st;
}

/* A root with two children, ended at once. */
static void small_trace(sidespan_client *c, sidespan_span **ret_root)
{
        sidespan_span *root, *a, *b;

        die_if(sidespan_span_start(c, NULL, "itest.root", SIDESPAN_KIND_SERVER, &root), "start");
        die_if(sidespan_span_start(c, root, "itest.child.1", SIDESPAN_KIND_CLIENT, &a), "start");
        die_if(sidespan_span_set_int(a, "itest.child", 1), "set");
        die_if(sidespan_span_end(a, SIDESPAN_STATUS_OK, NULL), "end");
        die_if(sidespan_span_start(c, root, "itest.child.2", SIDESPAN_KIND_INTERNAL, &b), "start");
        die_if(sidespan_span_set_int(b, "itest.child", 2), "set");
        die_if(sidespan_span_end(b, SIDESPAN_STATUS_ERROR, "boom"), "end");
        *ret_root = root;
}

static int mode_absent(long n)
{
        double t0 = mono_ms(), t1;
        sidespan_client *c = open_client(1.0, true);
        sidespan_stats st;
        int flush;

        for (long i = 0; i < n; i++) {
                sidespan_span *root;

                small_trace(c, &root);
                die_if(sidespan_span_end(root, SIDESPAN_STATUS_OK, NULL), "end");
        }
        t1 = mono_ms();
        flush = sidespan_flush(c, 500);
        st = stats(c);
        printf("{\"sent\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"queued\":%" PRIu64
               ",\"flush\":%d,\"emit_ms\":%.1f,\"elapsed_ms\":%.1f}\n",
               st.frames_sent, st.dropped, st.frames_queued, flush, t1 - t0, mono_ms() - t0);
        sidespan_client_close(&c);
        return 0;
}

static void set_every_type(sidespan_span *s, long i)
{
        static const char *const strs[] = {"a", "b"};
        static const int64_t ints[] = {1, 2, 3};
        static const double doubles[] = {0.5, 1.5};
        const sidespan_attr ev[] = {
            SIDESPAN_ATTR_STR_INIT("itest.event.str", "ev"),
            SIDESPAN_ATTR_INT_INIT("itest.event.int", 7),
            SIDESPAN_ATTR_DOUBLE_INIT("itest.event.double", 2.25),
            SIDESPAN_ATTR_BOOL_INIT("itest.event.bool", false),
        };

        die_if(sidespan_span_set_str(s, "itest.str", "hello"), "set");
        die_if(sidespan_span_set_int(s, "itest.int", 42), "set");
        die_if(sidespan_span_set_int(s, "itest.index", i), "set");
        die_if(sidespan_span_set_double(s, "itest.double", 3.5), "set");
        die_if(sidespan_span_set_bool(s, "itest.bool", true), "set");
        die_if(sidespan_span_set_str_array(s, "itest.str_array", strs, 2), "set");
        die_if(sidespan_span_set_int_array(s, "itest.int_array", ints, 3), "set");
        die_if(sidespan_span_set_double_array(s, "itest.double_array", doubles, 2), "set");
        die_if(sidespan_span_add_event(s, "itest.event", ev, sizeof(ev) / sizeof(ev[0])), "event");
}

static void print_ids(const char *key, char (*ids)[33], long n)
{
        printf("\"%s\":[", key);
        for (long i = 0; i < n; i++)
                printf("%s\"%s\"", i ? "," : "", ids[i]);
        printf("]");
}

static int mode_spans(long n)
{
        sidespan_client *c = open_client(1.0, true);
        char(*ids)[33] = calloc((size_t)n + 1, sizeof(*ids));
        int flush;

        if (!ids)
                return 2;
        for (long i = 0; i < n; i++) {
                sidespan_span *root;

                small_trace(c, &root);
                set_every_type(root, i);
                die_if(sidespan_span_trace_id_hex(root, ids[i], sizeof(ids[i])), "id");
                die_if(sidespan_span_end(root, SIDESPAN_STATUS_OK, NULL), "end");
        }
        flush = sidespan_flush(c, 5000);
        printf("{");
        print_ids("trace_ids", ids, n);
        printf(",\"flush\":%d}\n", flush);
        free(ids);
        sidespan_client_close(&c);
        return flush < 0;
}

static int mode_remote(const char *tp)
{
        sidespan_client *c = open_client(1.0, true);
        char mine[64], child_tp[64];
        sidespan_span *s, *child;
        int flush;

        die_if(sidespan_span_start_remote(c, tp, "itest.remote", SIDESPAN_KIND_SERVER, &s),
               "start_remote");
        die_if(sidespan_span_start(c, s, "itest.remote.child", SIDESPAN_KIND_INTERNAL, &child),
               "start");
        die_if(sidespan_span_traceparent(s, mine, sizeof(mine)), "traceparent");
        die_if(sidespan_span_traceparent(child, child_tp, sizeof(child_tp)), "traceparent");
        die_if(sidespan_span_end(child, SIDESPAN_STATUS_OK, NULL), "end");
        die_if(sidespan_span_end(s, SIDESPAN_STATUS_OK, NULL), "end");
        flush = sidespan_flush(c, 5000);
        printf("{\"traceparent\":\"%s\",\"child_traceparent\":\"%s\",\"flush\":%d}\n", mine,
               child_tp, flush);
        sidespan_client_close(&c);
        return flush < 0;
}

static int mode_nocontent(void)
{
        static const char *const keys[] = {
            "upsonic.input",
            "upsonic.output",
            "upsonic.tools_called",
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.system_instructions",
            "gen_ai.tool.call.arguments",
            "gen_ai.tool.call.result",
            "gen_ai.tool.definitions",
            "langfuse.trace.input",
            "langfuse.trace.output",
            "langfuse.observation.input",
            "langfuse.observation.output",
        };
        const sidespan_attr ev[] = {
            SIDESPAN_ATTR_STR_INIT("gen_ai.input.messages", "secret prompt"),
            SIDESPAN_ATTR_STR_INIT("itest.event.keep", "yes"),
        };
        sidespan_client *c = open_client(1.0, false);
        sidespan_span *s;
        char id[33];
        int flush;

        die_if(sidespan_span_start(c, NULL, "itest.nocontent", SIDESPAN_KIND_INTERNAL, &s),
               "start");
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                die_if(sidespan_span_set_str(s, keys[i], "secret"), "set");
        die_if(sidespan_span_set_str(s, "itest.keep", "yes"), "set");
        die_if(sidespan_span_add_event(s, "itest.event", ev, 2), "event");
        die_if(sidespan_span_trace_id_hex(s, id, sizeof(id)), "id");
        die_if(sidespan_span_end(s, SIDESPAN_STATUS_OK, NULL), "end");
        flush = sidespan_flush(c, 5000);
        printf("{\"trace_id\":\"%s\",\"flush\":%d}\n", id, flush);
        sidespan_client_close(&c);
        return flush < 0;
}

static int mode_sampled(const char *rate_s, long n)
{
        char(*ids)[33] = calloc((size_t)n + 1, sizeof(*ids));
        char *end;
        double rate = strtod(rate_s, &end);
        sidespan_client *c;
        long kept = 0;
        int flush;

        if (!ids || end == rate_s || *end)
                return 2;
        c = open_client(rate, true);
        for (long i = 0; i < n; i++) {
                sidespan_span *root, *child;

                die_if(sidespan_span_start(c, NULL, "itest.sampled", SIDESPAN_KIND_SERVER, &root),
                       "start");
                die_if(sidespan_span_start(c, root, "itest.sampled.child", SIDESPAN_KIND_INTERNAL,
                                           &child),
                       "start");
                if (sidespan_span_is_sampled(root))
                        die_if(sidespan_span_trace_id_hex(root, ids[kept++], sizeof(ids[0])), "id");
                die_if(sidespan_span_end(child, SIDESPAN_STATUS_OK, NULL), "end");
                die_if(sidespan_span_end(root, SIDESPAN_STATUS_OK, NULL), "end");
        }
        flush = sidespan_flush(c, 5000);
        printf("{");
        print_ids("trace_ids", ids, kept);
        printf(",\"unsampled\":%" PRIu64 ",\"flush\":%d}\n", stats(c).unsampled, flush);
        free(ids);
        sidespan_client_close(&c);
        return flush < 0;
}

static int one_span(sidespan_client *c, const char *name)
{
        sidespan_span *s;

        die_if(sidespan_span_start(c, NULL, name, SIDESPAN_KIND_INTERNAL, &s), "start");
        return sidespan_span_end(s, SIDESPAN_STATUS_OK, NULL);
}

static int mode_reconnect(void)
{
        sidespan_client *c = open_client(1.0, true);
        char line[64];
        int flush;

        one_span(c, "before.restart");
        printf("first %d\n", sidespan_flush(c, 5000));
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin))
                return 2;
        one_span(c, "after.restart");
        flush = sidespan_flush(c, 10000);
        printf("{\"flush\":%d,\"reconnects\":%" PRIu64 "}\n", flush, stats(c).reconnects);
        fflush(stdout);
        sidespan_client_close(&c);
        return flush < 0;
}

static int mode_open(long n)
{
        char(*ids)[33] = calloc((size_t)n + 1, sizeof(*ids));
        sidespan_client *c = open_client(1.0, true);
        int flush;

        if (!ids)
                return 2;
        for (long i = 0; i < n; i++) {
                sidespan_span *s;

                die_if(sidespan_span_start(c, NULL, "itest.open", SIDESPAN_KIND_INTERNAL, &s),
                       "start");
                die_if(sidespan_span_trace_id_hex(s, ids[i], sizeof(ids[i])), "id");
                /* Left open on purpose: the daemon must end it as orphaned. */
        }
        flush = sidespan_flush(c, 5000);
        printf("{");
        print_ids("trace_ids", ids, n);
        printf(",\"flush\":%d}\n", flush);
        fflush(stdout);
        _exit(flush < 0);
}

/* The request of the held chat: every field that becomes a start attribute. */
static void hold_chat_request(sidespan_chat_request *req)
{
        sidespan_chat_request_init(req);
        req->temperature = 0.25;
        req->top_p = 0.5;
        req->max_tokens = 256;
        req->server_address = "api.openai.com";
        req->server_port = 443;
        req->input_messages = "[{\"role\":\"user\",\"parts\":[]}]";
        req->system_instructions = "[]";
}

static _Noreturn void mode_hold(void)
{
        sidespan_client *c = open_client(1.0, true);
        sidespan_span *s[5], *done;
        sidespan_chat_request req;
        char tid[33], ids[5][33];
        int flush;

        hold_chat_request(&req);
        die_if(sidespan_agent_run_start(c, "hold-agent", "gpt-4o", "run-hold", "user-7",
                                        "session-hold", "What holds?", &s[0]),
               "run");
        die_if(sidespan_pipeline_start(c, s[0], 24, false, &s[1]), "pipeline");
        die_if(sidespan_step_start(c, s[1], "model_execution", "Run the model", &s[2]), "step");
        die_if(sidespan_chat_start(c, s[2], "openai", "gpt-4o", &req, &s[3]), "chat");
        die_if(sidespan_chat_first_token(s[3]), "first token");
        die_if(sidespan_tool_start(c, s[2], "get_time", "call_2", "{\"city\":\"Tokyo\"}", &done),
               "tool");
        die_if(sidespan_tool_end(done, true, "{\"time\":\"21:04\"}", 0.5), "tool end");
        die_if(sidespan_tool_start(c, s[3], "get_weather", "call_1", "{\"city\":\"Paris\"}", &s[4]),
               "tool");
        for (int i = 0; i < 5; i++)
                die_if(sidespan_span_span_id_hex(s[i], ids[i], sizeof(ids[i])), "id");
        die_if(sidespan_span_trace_id_hex(s[0], tid, sizeof(tid)), "id");
        flush = sidespan_flush(c, 5000);
        printf("{\"trace_id\":\"%s\",", tid);
        print_ids("span_ids", ids, 5);
        printf(",\"flush\":%d}\n", flush);
        fflush(stdout);
        for (;;) /* the open spans stay open: the process is killed with them */
                pause();
}

static int usage(void)
{
        fprintf(stderr, "usage: itest-client absent N | spans N | remote TRACEPARENT | nocontent |"
                        " sampled RATE N | reconnect | open N | hold\n");
        return 2;
}

int main(int argc, char **argv)
{
        const char *mode = argc > 1 ? argv[1] : "";

        if (strcmp(mode, "absent") == 0 && argc == 3)
                return mode_absent(arg_long(argv[2]));
        if (strcmp(mode, "spans") == 0 && argc == 3)
                return mode_spans(arg_long(argv[2]));
        if (strcmp(mode, "remote") == 0 && argc == 3)
                return mode_remote(argv[2]);
        if (strcmp(mode, "nocontent") == 0 && argc == 2)
                return mode_nocontent();
        if (strcmp(mode, "sampled") == 0 && argc == 4)
                return mode_sampled(argv[2], arg_long(argv[3]));
        if (strcmp(mode, "reconnect") == 0 && argc == 2)
                return mode_reconnect();
        if (strcmp(mode, "open") == 0 && argc == 3)
                return mode_open(arg_long(argv[2]));
        if (strcmp(mode, "hold") == 0 && argc == 2)
                mode_hold();
        return usage();
}
