/* SPDX-License-Identifier: MIT */
/*
 * sidespan: a command-line client of sidespand over its Unix socket, built on
 * common/'s wire encoders and decoder with plain blocking socket I/O.
 * Verbs: status and flush here, tail (tail.c), emit (emit.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage_main[] =
    "Usage: sidespan [--socket PATH] VERB [OPTIONS]\n"
    "\n"
    "A client of the sidespand tracing daemon.\n"
    "\n"
    "Verbs:\n"
    "  status [--json]        the daemon's counters\n"
    "  tail [FILTERS]         watch finished traces live, as trees with waterfalls\n"
    "  emit [--runs N]        send synthetic agent runs (a smoke test)\n"
    "  flush [--timeout MS]   ask the daemon to hand on what it batches\n"
    "\n"
    "Options:\n"
    "  --socket PATH   the daemon's socket (default $SIDESPAN_SOCKET, else\n"
    "                  $RUNTIME_DIRECTORY/sidespan.sock, /run/sidespan/sidespan.sock\n"
    "                  as root, $XDG_RUNTIME_DIR/sidespan.sock)\n"
    "  -h, --help      this text; VERB --help for a verb's\n";

static const char usage_status[] =
    "Usage: sidespan status [--json]\n"
    "\n"
    "Prints the daemon's counters: clients, open spans and traces,\n"
    "per exporter in/exported/dropped/retries/failures, sampling and\n"
    "redaction. --json prints one JSON object. Exit 0 when the\n"
    "daemon answered.\n";

static const char usage_flush[] =
    "Usage: sidespan flush [--timeout MS]\n"
    "\n"
    "A FLUSH round trip: returns when the daemon has handed what it\n"
    "batches to its exporters. --timeout (default 10000) bounds the wait.\n";

static int cmp_kv(const void *a, const void *b)
{
        const msgpack_object_kv *x = a, *y = b;
        uint32_t n =
            x->key.via.str.size < y->key.via.str.size ? x->key.via.str.size : y->key.via.str.size;
        int r = memcmp(x->key.via.str.ptr, y->key.via.str.ptr, n);

        return r ? r
                 : (x->key.via.str.size > y->key.via.str.size) -
                       (x->key.via.str.size < y->key.via.str.size);
}

/* Counters sorted by name: as one JSON object, or one "name value" line each. */
static void print_counters(const msgpack_object_map *m, bool json)
{
        msgpack_object_kv *kv = malloc(sizeof(*kv) * (m->size ? m->size : 1));

        if (!kv)
                return;
        memcpy(kv, m->ptr, sizeof(*kv) * m->size);
        qsort(kv, m->size, sizeof(*kv), cmp_kv);
        if (json)
                putchar('{');
        for (uint32_t i = 0; i < m->size; i++) {
                if (json) {
                        printf(i ? ", " : "");
                        cli_json_str(kv[i].key.via.str.ptr, kv[i].key.via.str.size);
                        printf(": %llu", (unsigned long long)kv[i].val.via.u64);
                } else
                        printf("%-48.*s %llu\n", (int)kv[i].key.via.str.size, kv[i].key.via.str.ptr,
                               (unsigned long long)kv[i].val.via.u64);
        }
        if (json)
                printf("}\n");
        free(kv);
}

static uint64_t counter(const msgpack_object_map *m, const char *name)
{
        const msgpack_object *v = ss_wire_map_get(m, name);

        return v ? v->via.u64 : 0;
}

/* The name between prefix and suffix of key k, into name (of size); false when k is not
 * one. */
static bool key_between(const msgpack_object_str *k, const char *prefix, const char *suffix,
                        char *name, size_t size)
{
        size_t pl = strlen(prefix), sl = strlen(suffix), n;

        if (k->size <= pl + sl || memcmp(k->ptr, prefix, pl) ||
            memcmp(k->ptr + k->size - sl, suffix, sl))
                return false;
        n = k->size - pl - sl;
        if (n >= size)
                return false;
        memcpy(name, k->ptr + pl, n);
        name[n] = '\0';
        return true;
}

/* One window of a model's figures: "N calls, N input + N output tokens, $X". */
static void print_model_window(const msgpack_object_map *m, const char *model, const char *sfx)
{
        char key[2 * SS_SUB_MAX_STR];
        uint64_t v[4];
        static const char *const fig[] = {"requests", "input_tokens", "output_tokens",
                                          "cost_micro_usd"};

        for (size_t f = 0; f < 4; f++) {
                snprintf(key, sizeof(key), "genai.model.%s.%s%s", model, fig[f], sfx);
                v[f] = counter(m, key);
        }
        printf("%llu call(s), %llu input + %llu output tokens, $%.6f", (unsigned long long)v[0],
               (unsigned long long)v[1], (unsigned long long)v[2], (double)v[3] / 1e6);
}

/* Per model: tokens and cost over the last minute and since the daemon started. */
static void print_models(const msgpack_object_map *m)
{
        char model[SS_SUB_MAX_STR];

        for (uint32_t i = 0; i < m->size; i++) {
                if (!key_between(&m->ptr[i].key.via.str, "genai.model.", ".requests", model,
                                 sizeof(model)))
                        continue;
                printf("  model %s: last minute ", model);
                print_model_window(m, model, "_1m");
                printf("; since start ");
                print_model_window(m, model, "");
                putchar('\n');
        }
}

/* The headline: clients, open work, per exporter what came in, went out, waits and was lost
 * (by reason, where the exporter counts reasons), and the daemon's memory. */
static void print_summary(const cli *c, const msgpack_object_map *m)
{
        static const char *const figures[][2] = {
            {"spans_in", "in"},           {"spans_exported", "exported"},
            {"spans_dropped", "dropped"}, {"retries", "retries"},
            {"spans_spooled", "spooled"}, {"queued_bytes", "bytes queued"},
        };

        printf("sidespand at %s: %llu connection(s), %llu open span(s) in %llu open trace(s); "
               "%llu span(s) finished\n",
               c->socket_path, (unsigned long long)counter(m, "connections_active"),
               (unsigned long long)counter(m, "spans_open"),
               (unsigned long long)counter(m, "traces_open"),
               (unsigned long long)counter(m, "spans_finished"));
        for (uint32_t i = 0; i < m->size; i++) {
                char name[SS_SUB_MAX_STR], key[2 * SS_SUB_MAX_STR];

                if (!key_between(&m->ptr[i].key.via.str, "exporter.", ".spans_in", name,
                                 sizeof(name)))
                        continue;
                printf("  exporter %s:", name);
                for (size_t f = 0; f < sizeof(figures) / sizeof(figures[0]); f++) {
                        snprintf(key, sizeof(key), "exporter.%s.%s", name, figures[f][0]);
                        if (ss_wire_map_get(m, key))
                                printf("%s %llu %s", f ? "," : "",
                                       (unsigned long long)counter(m, key), figures[f][1]);
                }
                /* Drops by reason: only the ones that happened. */
                snprintf(key, sizeof(key), "exporter.%s.dropped.", name);
                for (uint32_t j = 0; j < m->size; j++) {
                        const msgpack_object_str *r = &m->ptr[j].key.via.str;
                        size_t kn = strlen(key);

                        if (r->size > kn && !memcmp(r->ptr, key, kn) && m->ptr[j].val.via.u64)
                                printf(" (%.*s %llu)", (int)(r->size - kn), r->ptr + kn,
                                       (unsigned long long)m->ptr[j].val.via.u64);
                }
                putchar('\n');
        }
        printf("  memory: %llu kB in use by malloc, %llu kB free, %llu kB of input buffers; "
               "%llu kB given back by %llu trim(s)\n",
               (unsigned long long)counter(m, "heap.in_use_bytes") >> 10,
               (unsigned long long)counter(m, "heap.free_bytes") >> 10,
               (unsigned long long)counter(m, "input_buffer_bytes") >> 10,
               (unsigned long long)counter(m, "heap.trimmed_bytes") >> 10,
               (unsigned long long)counter(m, "heap.trims"));
        print_models(m);
        printf("\n");
}

static int verb_status(cli *c, bool json)
{
        msgpack_unpacked u;
        uint8_t *copy = NULL;
        ss_msg m;
        int r;

        msgpack_unpacked_init(&u);
        r = cli_send_hello(c);
        if (r >= 0)
                r = cli_send_seq(c, SS_MSG_STATS, 1);
        if (r >= 0)
                r = cli_recv(c, SS_MSG_STATS_REPLY, cli_now_ms() + c->timeout_ms, &u, &copy, &m);
        if (r >= 0 && !json)
                print_summary(c, m.stats.counters);
        if (r >= 0)
                print_counters(m.stats.counters, json);
        else
                fprintf(stderr, "sidespan: status: no answer from %s: %s\n", c->socket_path,
                        strerror(-r));
        msgpack_unpacked_destroy(&u);
        free(copy);
        return r;
}

static int verb_flush(cli *c)
{
        msgpack_unpacked u;
        uint8_t *copy = NULL;
        ss_msg m;
        int r;

        msgpack_unpacked_init(&u);
        r = cli_send_hello(c);
        if (r >= 0)
                r = cli_send_seq(c, SS_MSG_FLUSH, 1);
        if (r >= 0)
                r = cli_recv(c, SS_MSG_FLUSHED, cli_now_ms() + c->timeout_ms, &u, &copy, &m);
        if (r < 0)
                fprintf(stderr, "sidespan: flush: no answer from %s: %s\n", c->socket_path,
                        strerror(-r));
        msgpack_unpacked_destroy(&u);
        free(copy);
        return r;
}

static bool is_help(const char *a)
{
        return !strcmp(a, "-h") || !strcmp(a, "--help");
}

static int parse_ms(const char *opt, const char *v, int *ret)
{
        char *end;
        long n;

        errno = 0;
        n = v ? strtol(v, &end, 10) : 0;
        if (!v || errno || *end || end == v || n <= 0 || n > 86400000) {
                fprintf(stderr, "sidespan: %s: not a time in ms: '%s'\n", opt, v ? v : "");
                return -EINVAL;
        }
        *ret = (int)n;
        return 0;
}

/* Verb arguments: returns 2 for --help (printed), 0 to run, -EINVAL for a bad one. */
static int parse_verb(cli *c, const char *verb, int argc, char **argv, bool *json)
{
        const char *usage = !strcmp(verb, "status") ? usage_status : usage_flush;

        for (int i = 0; i < argc; i++) {
                if (is_help(argv[i])) {
                        fputs(usage, stdout);
                        return 2;
                } else if (!strcmp(verb, "status") && !strcmp(argv[i], "--json"))
                        *json = true;
                else if (!strcmp(verb, "flush") && !strcmp(argv[i], "--timeout")) {
                        if (parse_ms("--timeout", i + 1 < argc ? argv[++i] : NULL, &c->timeout_ms) <
                            0)
                                return -EINVAL;
                } else {
                        fprintf(stderr, "sidespan %s: unknown argument '%s'\n%s", verb, argv[i],
                                usage);
                        return -EINVAL;
                }
        }
        return 0;
}

int main(int argc, char **argv)
{
        static cli c = {.fd = -1, .timeout_ms = CLI_TIMEOUT_MS_DEFAULT};
        const char *verb;
        bool json = false;
        int i = 1, r;

        for (; i < argc && argv[i][0] == '-'; i++) {
                if (is_help(argv[i])) {
                        fputs(usage_main, stdout);
                        return 0;
                } else if (!strcmp(argv[i], "--socket") && i + 1 < argc)
                        c.socket_path = argv[++i];
                else {
                        fprintf(stderr, "sidespan: unknown option '%s'\n%s", argv[i], usage_main);
                        return 2;
                }
        }
        if (i == argc) {
                fputs(usage_main, stderr);
                return 2;
        }
        verb = argv[i++];
        if (!strcmp(verb, "tail") || !strcmp(verb, "emit")) {
                r = !strcmp(verb, "tail") ? cli_tail(&c, argc - i, argv + i)
                                          : cli_emit(&c, argc - i, argv + i);
                if (c.fd >= 0)
                        close(c.fd);
                free(c.socket_alloc);
                return r;
        }
        if (strcmp(verb, "status") && strcmp(verb, "flush")) {
                fprintf(stderr, "sidespan: unknown verb '%s'\n%s", verb, usage_main);
                return 2;
        }
        r = parse_verb(&c, verb, argc - i, argv + i, &json);
        if (r != 0)
                return r == 2 ? 0 : 2;
        if (!c.socket_path && cli_default_socket(&c) < 0)
                return 1;
        if (cli_connect(&c) < 0)
                r = -1;
        else
                r = !strcmp(verb, "status") ? verb_status(&c, json) : verb_flush(&c);
        if (c.fd >= 0)
                close(c.fd);
        free(c.socket_alloc);
        return r < 0 ? 1 : 0;
}
