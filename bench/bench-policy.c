/* SPDX-License-Identifier: MIT */
/*
 * bench-policy: what the policy stage (policy/stage.h) costs per span on an
 * agent-shaped trace, the 30-span run of TRACE-MODEL.md (agent.run,
 * pipeline.execute, 24 steps, 2 chat spans with 1 KiB of JSON in each of
 * their input and output messages, 2 tool calls with arguments and result),
 * handed to a pipeline of exporters that keep nothing:
 *
 *   plain        sampling at rate 1, no content policy, no redaction
 *   redact       the default: secrets and personal data redacted, in place
 *   no-content   content dropped and the rest redacted
 *   two-views    one exporter plain, one without content and redacted (a copy)
 *   metrics      no policy: each span shown to the metrics stage (metrics/stage.h), as
 *                the assembler does before sampling (GenAI instruments, the headline)
 *
 * Each iteration clones the run from a template (as the assembler would have
 * built it) and puts it; "clone" alone is the baseline to subtract. With
 * --iterations N it runs N runs of one mode (--mode), for callgrind. A
 * benchmark, not a test: it prints figures.
 */
#include <errno.h>
#include <getopt.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "export/pipeline.h"
#include "metrics/stage.h"
#include "model/span.h"
#include "policy/stage.h"

#define RUN_SPANS 30
#define CONTENT   1024

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- an exporter that keeps nothing ------------------------------------------------------ */

static void null_add(ss_exporter *e, ss_span *const *spans, size_t n)
{
        (void)spans;
        e->stats.spans_in += n;
        e->stats.spans_exported += n;
}

static void null_flush(ss_exporter *e)
{
        (void)e;
}

static bool null_busy(const ss_exporter *e)
{
        (void)e;
        return false;
}

static void null_destroy(ss_exporter *e)
{
        ss_exporter_free(e, e);
}

static const ss_exporter_ops null_ops = {
    .add = null_add, .flush = null_flush, .busy = null_busy, .destroy = null_destroy};

/* ---- the run ------------------------------------------------------------------------------ */

static void pk_kv(msgpack_packer *pk, const char *key, const char *value)
{
        msgpack_pack_str_with_body(pk, key, strlen(key));
        msgpack_pack_str_with_body(pk, value, strlen(value));
}

/* A chat message array of about CONTENT bytes of prose. */
static void messages(char *buf, const char *role, unsigned seed)
{
        static const char *const words[] = {
            "the",   "weather", "in",    "Paris", "is",    "cloudy", "and",    "18C",
            "while", "Tokyo",   "shows", "21:04", "agent", "tool",   "result", "answer"};
        size_t n = (size_t)sprintf(buf,
                                   "[{\"role\":\"%s\",\"parts\":[{\"type\":\"text\","
                                   "\"content\":\"",
                                   role);

        while (n < CONTENT - 8) {
                const char *w;

                seed = seed * 1103515245u + 12345u;
                w = words[(seed >> 16) % 16];
                n += (size_t)sprintf(buf + n, "%s ", w);
        }
        strcpy(buf + n, "\"}]}]");
}

static ss_span *span(ss_resource *res, unsigned i, const char *name, int parent,
                     void (*attrs)(msgpack_packer *, unsigned))
{
        uint8_t tid[16] = {0xbe, 0xef}, sid[8] = {(uint8_t)(i + 1), 1},
                pid[8] = {(uint8_t)parent, 1};
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked u;
        size_t off = 0;
        ss_msg_span m;
        ss_span *s;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        attrs(&pk, i);
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, sb.data, sb.size, &off) != MSGPACK_UNPACK_SUCCESS)
                abort();
        m = (ss_msg_span){.trace_id = tid,
                          .span_id = sid,
                          .parent_id = parent ? pid : NULL,
                          .name = {.ptr = name, .len = (uint32_t)strlen(name)},
                          .kind = 1,
                          .start_ns = 1000 + i,
                          .attrs = &u.data.via.map,
                          .end_ns = 2000 + i,
                          .status_code = 1};
        s = ss_span_new(&m, true, res, NULL);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
        if (!s)
                abort();
        return s;
}

static void run_attrs(msgpack_packer *pk, unsigned i)
{
        (void)i;
        msgpack_pack_map(pk, 6);
        pk_kv(pk, "upsonic.agent.name", "support-bot");
        pk_kv(pk, "upsonic.agent.model", "gpt-4o");
        pk_kv(pk, "upsonic.run_id", "run-0f3a9c2e-5b7d-4e1a-9c8b-2d6f0e4a1b3c");
        pk_kv(pk, "user.id", "user-7");
        pk_kv(pk, "upsonic.input", "What is the weather in Paris, and the time in Tokyo?");
        pk_kv(pk, "upsonic.output", "Paris: 18C and cloudy. Tokyo: 21:04.");
}

static void step_attrs(msgpack_packer *pk, unsigned i)
{
        msgpack_pack_map(pk, 3);
        pk_kv(pk, "upsonic.step.name", "model_execution");
        pk_kv(pk, "upsonic.step.status", "COMPLETED");
        msgpack_pack_str_with_body(pk, "upsonic.step.execution_time", 27);
        msgpack_pack_double(pk, 0.001 * i);
}

static void chat_attrs(msgpack_packer *pk, unsigned i)
{
        char in[CONTENT + 64], out[CONTENT + 64];

        messages(in, "user", i);
        messages(out, "assistant", i * 7 + 1);
        msgpack_pack_map(pk, 9);
        pk_kv(pk, "gen_ai.operation.name", "chat");
        pk_kv(pk, "gen_ai.provider.name", "openai");
        pk_kv(pk, "gen_ai.request.model", "gpt-4o");
        pk_kv(pk, "gen_ai.response.model", "gpt-4o-2024-08-06");
        pk_kv(pk, "gen_ai.response.id", "chatcmpl-AbCdEf0123456789");
        pk_kv(pk, "server.address", "api.openai.com");
        pk_kv(pk, "gen_ai.input.messages", in);
        pk_kv(pk, "gen_ai.output.messages", out);
        msgpack_pack_str_with_body(pk, "gen_ai.usage.input_tokens", 25);
        msgpack_pack_uint64(pk, 412);
}

static void tool_attrs(msgpack_packer *pk, unsigned i)
{
        (void)i;
        msgpack_pack_map(pk, 4);
        pk_kv(pk, "upsonic.tool.name", "get_weather");
        pk_kv(pk, "upsonic.tool.call_id", "call_8f2a1c");
        pk_kv(pk, "gen_ai.tool.call.arguments", "{\"city\":\"Paris\",\"units\":\"metric\"}");
        pk_kv(pk, "gen_ai.tool.call.result", "{\"temperature\":18,\"sky\":\"cloudy\"}");
}

static void no_attrs(msgpack_packer *pk, unsigned i)
{
        (void)i;
        msgpack_pack_map(pk, 0);
}

static void build_run(ss_resource *res, ss_span **run)
{
        unsigned n = 0;

        run[n++] = span(res, 0, "agent.run", 0, run_attrs);
        run[n++] = span(res, 1, "pipeline.execute", 1, no_attrs);
        while (n < 26) {
                run[n] = span(res, n, "pipeline.step.model_execution", 2, step_attrs);
                n++;
        }
        run[n] = span(res, n, "chat gpt-4o", 20, chat_attrs);
        n++;
        run[n] = span(res, n, "chat gpt-4o", 20, chat_attrs);
        n++;
        run[n] = span(res, n, "tool.execute", 20, tool_attrs);
        n++;
        run[n] = span(res, n, "tool.execute", 20, tool_attrs);
}

/* ---- modes -------------------------------------------------------------------------------- */

enum { M_CLONE, M_PLAIN, M_REDACT, M_NO_CONTENT, M_TWO_VIEWS, M_METRICS, N_MODES };

static const char *const mode_names[] = {"clone",      "plain",     "redact",
                                         "no-content", "two-views", "metrics"};

static ss_policy *policy_for(int mode, ss_pipeline *pl)
{
        const unsigned both = SS_REDACT_SECRETS | SS_REDACT_PERSONAL;
        ss_policy_config cfg = {.sampling = {.rate = 1.0}, .include_content = true, .n_views = 2};
        ss_policy *p;
        char err[256];

        cfg.views[0] = cfg.views[1] = (ss_view_config){.include_content = true};
        if (mode == M_REDACT)
                cfg.views[0].redact = cfg.views[1].redact = both;
        if (mode == M_NO_CONTENT)
                cfg.views[0] = cfg.views[1] = (ss_view_config){.redact = both};
        if (mode == M_TWO_VIEWS)
                cfg.views[1] = (ss_view_config){.redact = both};
        if (ss_policy_new(&cfg, pl, &p, err, sizeof(err)) < 0) {
                fprintf(stderr, "bench-policy: %s\n", err);
                exit(1);
        }
        return p;
}

/* ns per span of iterations runs of mode. */
static double measure(int mode, long iterations, ss_span *const *tmpl, ss_pipeline *pl,
                      uv_loop_t *loop)
{
        ss_policy *p = mode == M_CLONE || mode == M_METRICS ? NULL : policy_for(mode, pl);
        ss_metrics *m = NULL;
        ss_metrics_config mc;
        ss_span *run[RUN_SPANS];
        uint64_t t0;

        ss_metrics_config_defaults(&mc);
        if (mode == M_METRICS && ss_metrics_new(loop, &mc, NULL, NULL, &m) < 0)
                exit(1);
        t0 = now_ns();
        for (long it = 0; it < iterations; it++) {
                for (int i = 0; i < RUN_SPANS; i++)
                        run[i] = ss_span_clone(tmpl[i]);
                if (p)
                        ss_sink_put(ss_policy_sink(p), run, RUN_SPANS);
                for (int i = 0; m && i < RUN_SPANS; i++)
                        ss_metrics_span(m, run[i]);
                for (int i = 0; i < RUN_SPANS; i++)
                        ss_span_unref(run[i]);
        }
        t0 = now_ns() - t0;
        ss_policy_free(p);
        ss_metrics_drain(m, 0, NULL, NULL);
        return (double)t0 / ((double)iterations * RUN_SPANS);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {{"iterations", required_argument, NULL, 'n'},
                                             {"mode", required_argument, NULL, 'm'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        ss_span *tmpl[RUN_SPANS];
        ss_resource *res = ss_resource_new(NULL);
        long iterations = 2000;
        int only = -1, opt;
        uv_loop_t loop;
        ss_pipeline *pl;

        while ((opt = getopt_long(argc, argv, "n:m:h", opts, NULL)) != -1) {
                if (opt == 'n') {
                        iterations = strtol(optarg, NULL, 10);
                } else if (opt == 'm') {
                        for (int i = 0; i < N_MODES; i++)
                                if (strcmp(optarg, mode_names[i]) == 0)
                                        only = i;
                } else {
                        printf("Usage: bench-policy [--iterations N] [--mode clone|plain|redact|"
                               "no-content|two-views|metrics]\n");
                        return opt == 'h' ? 0 : 2;
                }
        }
        ss_log_set_level(SS_LOG_ERR);
        if (!res || iterations <= 0 || uv_loop_init(&loop) < 0 || ss_pipeline_new(&loop, &pl) < 0)
                return 1;
        for (int i = 0; i < 2; i++) {
                ss_exporter *e = calloc(1, sizeof(*e));

                if (!e)
                        return 1;
                *e = (ss_exporter){.ops = &null_ops, .name = i ? "b" : "a"};
                if (ss_pipeline_add(pl, e) < 0)
                        return 1;
        }
        build_run(res, tmpl);
        printf("policy stage, 30-span agent runs (2 chat spans with 1 KiB input and output "
               "messages), %ld runs per mode:\n",
               iterations);
        for (int m = 0; m < N_MODES; m++)
                if (only < 0 || only == m)
                        printf("  %-11s %8.0f ns/span%s\n", mode_names[m],
                               measure(m, iterations, tmpl, pl, &loop),
                               m == M_CLONE ? " (the baseline: a copy of each span)" : "");
        for (int i = 0; i < RUN_SPANS; i++)
                ss_span_unref(tmpl[i]);
        ss_pipeline_drain(pl, 0, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        ss_resource_unref(res);
        return 0;
}
