/* SPDX-License-Identifier: MIT */
/*
 * sidespan emit: synthetic agent runs (tools/agent-run.h) through
 * libsidespan to the daemon, for smoke tests of a deployment: the runs go
 * where any agent's would, through sampling, redaction and the exporters.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent-run.h"
#include "cli.h"

static const char usage_emit[] =
    "Usage: sidespan emit [--runs N] [--service NAME] [--agent NAME] [--model NAME]\n"
    "                     [--error] [--latency MS] [--timeout MS]\n"
    "\n"
    "Sends N (default 1) synthetic agent runs of 30 spans each, as an agent\n"
    "linked with libsidespan would, and waits (--timeout, default 10000 ms)\n"
    "until the daemon has them. --error makes a tool call fail and the run\n"
    "end with ERROR. --service (default sidespan-emit), --agent (default\n"
    "emit-agent) and --model (default gpt-4o) name them; --latency (default 0)\n"
    "simulates each model call's time. Prints each run's traceparent.\n"
    "Exit 0 when the daemon confirmed every run, 1 otherwise.\n";

#define EMIT_FLUSH_EVERY 20

typedef struct emit_args {
        long runs;
        const char *service;
        agent_run_config run;
} emit_args;

static int parse_num(const char *opt, const char *v, long max, long *ret)
{
        char *end;
        long n;

        errno = 0;
        n = v ? strtol(v, &end, 10) : -1;
        if (!v || errno || *end || end == v || n < 0 || n > max) {
                fprintf(stderr, "sidespan emit: %s: not a number from 0 to %ld: '%s'\n", opt, max,
                        v ? v : "");
                return -EINVAL;
        }
        *ret = n;
        return 0;
}

/* 0 to run, 1 for --help (printed), -EINVAL. */
static int parse(cli *c, int argc, char **argv, emit_args *a)
{
        for (int i = 0; i < argc; i++) {
                const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                long n = 0;
                int r = 0;

                if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
                        fputs(usage_emit, stdout);
                        return 1;
                } else if (!strcmp(o, "--error")) {
                        a->run.fail = true;
                        continue;
                } else if (!v) {
                        fprintf(stderr, "sidespan emit: unknown argument '%s'\n%s", o, usage_emit);
                        return -EINVAL;
                }
                i++;
                if (!strcmp(o, "--runs"))
                        r = parse_num(o, v, 1000000, &a->runs);
                else if (!strcmp(o, "--latency"))
                        r = parse_num(o, v, 60000, &a->run.latency_ms);
                else if (!strcmp(o, "--timeout") && (r = parse_num(o, v, 86400000, &n)) == 0)
                        c->timeout_ms = (int)n;
                else if (!strcmp(o, "--service"))
                        a->service = v;
                else if (!strcmp(o, "--agent"))
                        a->run.agent = v;
                else if (!strcmp(o, "--model"))
                        a->run.model = v;
                else if (strcmp(o, "--timeout")) {
                        fprintf(stderr, "sidespan emit: unknown argument '%s'\n%s", o, usage_emit);
                        return -EINVAL;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int cli_emit(cli *c, int argc, char **argv)
{
        emit_args a = {.runs = 1,
                       .service = "sidespan-emit",
                       .run = {.agent = "emit-agent", .model = "gpt-4o"}};
        sidespan_options opts;
        sidespan_stats st;
        int r, failed = 0;

        r = parse(c, argc, argv, &a);
        if (r != 0)
                return r > 0 ? 0 : 2;
        if (!c->socket_path && cli_default_socket(c) < 0)
                return 1;
        /* The library would wait for a daemon in the background; a smoke test wants to hear
         * at once that there is none. */
        if (cli_connect(c) < 0)
                return 1;
        sidespan_options_init(&opts);
        opts.socket_path = c->socket_path;
        opts.service_name = a.service;
        opts.flush_on_exit = false;
        r = sidespan_client_open(&opts, &a.run.client);
        if (r < 0) {
                fprintf(stderr, "sidespan emit: cannot open a client: %s\n", sidespan_strerror(r));
                return 1;
        }
        for (long n = 1; n <= a.runs; n++) {
                char tp[64];

                r = agent_run_emit(&a.run, n, tp, sizeof(tp));
                if (r < 0) {
                        fprintf(stderr, "sidespan emit: run %ld: %s\n", n, sidespan_strerror(r));
                        failed++;
                } else {
                        printf("run %ld traceparent %s%s\n", n, tp, a.run.fail ? " (ERROR)" : "");
                }
                /* Many runs at full speed would outrun the client's buffer, which drops (as
                 * it must for an agent); a smoke test waits instead. */
                if (n % EMIT_FLUSH_EVERY == 0 && a.run.client)
                        (void)sidespan_flush(a.run.client, c->timeout_ms);
        }
        r = sidespan_flush(a.run.client, c->timeout_ms);
        sidespan_stats_init(&st);
        (void)sidespan_client_stats(a.run.client, &st);
        (void)sidespan_client_close(&a.run.client);
        if (r < 0 || st.dropped) {
                fprintf(stderr,
                        "sidespan emit: the daemon at %s did not confirm the runs: %s "
                        "(%llu messages dropped in the client)\n",
                        c->socket_path, r < 0 ? sidespan_strerror(r) : "messages dropped",
                        (unsigned long long)st.dropped);
                return 1;
        }
        printf("%ld run(s), %ld spans, delivered to %s\n", a.runs - failed, (long)st.spans_started,
               c->socket_path);
        return failed ? 1 : 0;
}
