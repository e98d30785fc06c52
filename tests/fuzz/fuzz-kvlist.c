/* SPDX-License-Identifier: MIT */
/*
 * fuzz-kvlist: the "k=v,k=v" lists of OTEL_RESOURCE_ATTRIBUTES and the OTLP
 * header variables, and the daemon's configuration around them.
 *
 * Input: [mode: 1 byte][rest]
 *   mode & 3 == 0, 1: rest is "NAME\0VALUE": ss_kvlist_parse(VALUE) and
 *                     ss_config_parse_headers(cfg, NAME, VALUE);
 *   mode & 3 == 2:    rest is NUL-separated arguments: ss_config_load() with
 *                     argv = {"sidespand", args...};
 *   mode & 3 == 3:    rest is "VALUE\0args...": VALUE set in the variable
 *                     (mode >> 2) of the daemon's list, then ss_config_load().
 * The configuration prints its errors and --help to stdio: those streams
 * point at /dev/null while it runs (sanitizer reports write to fd 2 directly).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf/config.h"
#include "conf/exporters.h"
#include "fuzz-util.h"
#include "ss-kvlist.h"

#define MAX_ARGS 64

/* Every variable conf/config.c reads. */
static const char *const vars[] = {
    "SIDESPAN_SOCKET",
    "RUNTIME_DIRECTORY",
    "XDG_RUNTIME_DIR",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "UPSONIC_OTEL_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "UPSONIC_OTEL_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
};
#define N_VARS (sizeof(vars) / sizeof(vars[0]))

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        /* The same start for every input, whatever the environment of the run. */
        for (size_t i = 0; i < N_VARS; i++)
                unsetenv(vars[i]);
        devnull = fopen("/dev/null", "w");
        if (!devnull)
                abort();
        return 0;
}

/* ---- k=v lists -------------------------------------------------------------------------- */

typedef struct items {
        const char *start;
        const char *end;
        size_t n;
} items;

static int on_item(char *key, char *value, void *ctx)
{
        items *it = ctx;

        /* Decoded in place: both inside the parsed copy, the key never empty. */
        FZ_ASSERT(key >= it->start && key < it->end && value >= it->start && value < it->end);
        FZ_ASSERT(key[0] != '\0');
        FZ_ASSERT(strlen(key) < (size_t)(it->end - key) &&
                  strlen(value) < (size_t)(it->end - value));
        it->n++;
        return it->n == 100 ? -E2BIG : 0; /* a negative return stops the parse */
}

static void kvlist(const char *value)
{
        size_t len = strlen(value);
        char *copy = strdup(value);
        items it = {.start = copy, .end = copy + len + 1};
        int r;

        FZ_ASSERT(copy);
        r = ss_kvlist_parse(copy, on_item, &it);
        FZ_ASSERT(r == 0 || r == -EINVAL || r == -E2BIG);
        FZ_ASSERT(r != -E2BIG || it.n == 100);
        free(copy);
}

/* Every header line "name: value": no CR or LF, no ':' or blank in the name. */
static void check_headers(const ss_exporter_spec *spec)
{
        FZ_ASSERT(spec->n_headers <= SS_CONFIG_MAX_HEADERS);
        for (size_t i = 0; i < spec->n_headers; i++) {
                const char *h = spec->headers[i], *colon = strchr(h, ':');

                FZ_ASSERT(colon && colon > h && colon[1] == ' ');
                FZ_ASSERT(strcspn(h, " \t") > (size_t)(colon - h));
                FZ_ASSERT(!strpbrk(h, "\r\n"));
        }
}

static void headers(const char *name, const char *value)
{
        ss_exporter_spec spec = {0};
        FILE *err = stderr;
        int r;

        stderr = devnull;
        r = ss_config_parse_headers(&spec, name, value);
        stderr = err;
        FZ_ASSERT(r == 0 || r == -EINVAL);
        check_headers(&spec);
        ss_spec_free(&spec);
}

/* ---- the configuration ------------------------------------------------------------------ */

static void check_config(const ss_config *cfg)
{
        const ss_export_config *e = &cfg->export;

        FZ_ASSERT(cfg->socket_path && cfg->listener.path == cfg->socket_path);
        FZ_ASSERT(e->exporters != 0 && e->n > 0);
        for (size_t i = 0; i < e->n; i++) {
                const ss_exporter_def *d = &e->defs[i];
                const char *url =
                    d->kind == SS_EXPORT_OTLP_GRPC ? d->grpc.endpoint : d->http.endpoint;

                FZ_ASSERT(d->name);
                FZ_ASSERT(d->kind != SS_EXPORT_FILE || d->file_path);
                FZ_ASSERT(
                    !(d->kind & (SS_EXPORT_OTLP_HTTP | SS_EXPORT_OTLP_GRPC)) ||
                    (url && (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)));
        }
        FZ_ASSERT(cfg->listener.max_frame >= 64 && cfg->listener.max_frame <= SS_MAX_FRAME_LIMIT);
        check_headers(&cfg->cli);
}

static void config(char **argv, int argc)
{
        FILE *out = stdout, *err = stderr;
        ss_config cfg;
        int r;

        stdout = devnull;
        stderr = devnull;
        r = ss_config_load(&cfg, argc, argv);
        stdout = out;
        stderr = err;
        FZ_ASSERT(r == 0 || r == 1 || r == -EINVAL);
        if (r == 0)
                check_config(&cfg);
        ss_config_free(&cfg);
}

/*
 * argv of "sidespand" and the NUL-separated pieces of p[0..n) (p[n] is a NUL),
 * each its own allocation as C gives each argument its own array, so that a
 * read before or past one shows under ASan.
 */
static int split_args(const char *p, size_t n, char **argv)
{
        int argc = 0;

        argv[argc++] = strdup("sidespand");
        for (size_t i = 0; i < n && argc < MAX_ARGS; i += strlen(p + i) + 1)
                argv[argc++] = strdup(p + i);
        argv[argc] = NULL;
        for (int i = 0; i < argc; i++)
                FZ_ASSERT(argv[i]);
        return argc;
}

/* getopt_long() may permute argv: free the copy, not the pieces in their old order. */
static void config_args(const char *p, size_t n)
{
        char *argv[MAX_ARGS + 1], *copy[MAX_ARGS + 1];
        int argc = split_args(p, n, argv);

        memcpy(copy, argv, (size_t)argc * sizeof(*argv));
        config(argv, argc);
        for (int i = 0; i < argc; i++)
                free(copy[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fz_in in = {data, size};
        uint8_t mode = fz_u8(&in);
        char *buf = malloc(in.n + 1), *args;
        size_t n = in.n, first;

        FZ_ASSERT(buf);
        memcpy(buf, in.p, n);
        buf[n] = '\0';
        first = strlen(buf); /* the text before the first NUL */
        args = first < n ? buf + first + 1 : buf + n;
        switch (mode & 3) {
        case 0:
        case 1:
                kvlist(args);
                headers(buf, args);
                break;
        case 2:
                config_args(buf, n);
                break;
        default:
                setenv(vars[(mode >> 2) % N_VARS], buf, 1);
                config_args(args, (size_t)(buf + n - args));
                unsetenv(vars[(mode >> 2) % N_VARS]);
                break;
        }
        free(buf);
        return 0;
}
