/* SPDX-License-Identifier: MIT */
#include "conf/config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "ss-kvlist.h"
#include "ss-macro.h"
#include "sidespan-version.h"
#include "ss-wire.h"

static const char usage[] =
    "Usage: sidespand [OPTION]...\n"
    "Tracing sidecar for AI agents: takes span events from libsidespan over a Unix\n"
    "socket, assembles traces and exports them as OTLP.\n"
    "\n"
    "Socket:\n"
    "  -s, --socket PATH          listen here (env SIDESPAN_SOCKET; default\n"
    "                             $RUNTIME_DIRECTORY/sidespan.sock, else\n"
    "                             /run/sidespan/sidespan.sock as root or\n"
    "                             $XDG_RUNTIME_DIR/sidespan.sock)\n"
    "\n"
    "Export:\n"
    "  -e, --exporter LIST        comma-separated: console, file, otlp-http (default:\n"
    "                             otlp-http when an endpoint is set, else console)\n"
    "      --endpoint URL         OTLP/HTTP traces URL; a URL without a path gets\n"
    "                             /v1/traces (env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as\n"
    "                             given, UPSONIC_OTEL_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT\n"
    "                             as a base + v1/traces)\n"
    "  -H, --header K=V           add a request header, repeatable (env\n"
    "                             OTEL_EXPORTER_OTLP_[TRACES_]HEADERS, UPSONIC_OTEL_HEADERS)\n"
    "      --timeout-ms N         per request timeout (env OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT;\n"
    "                             default 10000)\n"
    "      --compression ALG      gzip or none (env OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION;\n"
    "                             default none)\n"
    "      --retry-queue-bytes N  encoded requests kept for retry (default 67108864)\n"
    "      --max-attempts N       tries per request before it is dropped (default 5)\n"
    "  -f, --file PATH            file exporter output, OTLP/JSON lines; - is stdout\n"
    "                             (default sidespan-traces.jsonl)\n"
    "      --batch-size N         spans per export request (default 512)\n"
    "      --batch-delay-ms N     longest a span waits for its batch (default 1000)\n"
    "\n"
    "Limits:\n"
    "      --max-frame BYTES      largest accepted frame (default 1048576)\n"
    "      --max-connections N    concurrent client connections (default 1024)\n"
    "      --max-open-spans N     open spans per client (default 10000)\n"
    "      --max-open-spans-total N\n"
    "                             open spans of all clients, disconnected ones in\n"
    "                             their grace period included (default 1000000)\n"
    "      --max-trace-spans N    finished spans held per open trace (default 10000)\n"
    "      --max-attributes N     attributes per span or event (default 128)\n"
    "      --max-events N         events per span (default 128)\n"
    "      --max-value-length N   bytes per string attribute value (default 262144)\n"
    "      --orphan-grace-ms N    how long a disconnected client may come back before\n"
    "                             its open spans end as orphaned (default 10000)\n"
    "      --drain-timeout-ms N   on SIGTERM, how long to wait for exports (default 15000)\n"
    "\n"
    "  -l, --log-level LEVEL      err, warning, notice, info or debug (default info)\n"
    "  -h, --help                 show this help and exit\n"
    "  -V, --version              show the version and exit\n"
    "\n"
    "OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL must be http/protobuf when set.\n";

enum {
        OPT_ENDPOINT = 256,
        OPT_TIMEOUT,
        OPT_COMPRESSION,
        OPT_RETRY_QUEUE,
        OPT_MAX_ATTEMPTS,
        OPT_BATCH_SIZE,
        OPT_BATCH_DELAY,
        OPT_MAX_FRAME,
        OPT_MAX_CONNECTIONS,
        OPT_MAX_OPEN,
        OPT_MAX_OPEN_TOTAL,
        OPT_MAX_TRACE,
        OPT_MAX_ATTRS,
        OPT_MAX_EVENTS,
        OPT_MAX_VALUE,
        OPT_GRACE,
        OPT_DRAIN,
};

static const struct option options[] = {
    {"socket", required_argument, NULL, 's'},
    {"exporter", required_argument, NULL, 'e'},
    {"endpoint", required_argument, NULL, OPT_ENDPOINT},
    {"header", required_argument, NULL, 'H'},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"compression", required_argument, NULL, OPT_COMPRESSION},
    {"retry-queue-bytes", required_argument, NULL, OPT_RETRY_QUEUE},
    {"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
    {"file", required_argument, NULL, 'f'},
    {"batch-size", required_argument, NULL, OPT_BATCH_SIZE},
    {"batch-delay-ms", required_argument, NULL, OPT_BATCH_DELAY},
    {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"max-open-spans", required_argument, NULL, OPT_MAX_OPEN},
    {"max-open-spans-total", required_argument, NULL, OPT_MAX_OPEN_TOTAL},
    {"max-trace-spans", required_argument, NULL, OPT_MAX_TRACE},
    {"max-attributes", required_argument, NULL, OPT_MAX_ATTRS},
    {"max-events", required_argument, NULL, OPT_MAX_EVENTS},
    {"max-value-length", required_argument, NULL, OPT_MAX_VALUE},
    {"orphan-grace-ms", required_argument, NULL, OPT_GRACE},
    {"drain-timeout-ms", required_argument, NULL, OPT_DRAIN},
    {"log-level", required_argument, NULL, 'l'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {0},
};

static int bad(const char *what, const char *value, const char *expected)
{
        fprintf(stderr, "sidespand: invalid %s: '%s' (%s)\n", what, value, expected);
        return -EINVAL;
}

/* An empty variable counts as unset (OpenTelemetry environment rules). */
static const char *env(const char *name)
{
        const char *v = getenv(name);

        return v && *v ? v : NULL;
}

/* The first of two variables that is set; *ret_name says which. */
static const char *env2(const char *a, const char *b, const char **ret_name)
{
        const char *v = env(a);

        *ret_name = v ? a : b;
        return v ? v : env(b);
}

static int parse_u64(const char *what, const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        char expected[96], *end;
        unsigned long long v;

        snprintf(expected, sizeof(expected), "expected an integer from %llu to %llu",
                 (unsigned long long)min, (unsigned long long)max);
        errno = 0;
        v = strtoull(s, &end, 10);
        if (!*s || *s == '-' || *end || errno || v < min || v > max)
                return bad(what, s, expected);
        *ret = v;
        return 0;
}

static int parse_u32(const char *what, const char *s, uint32_t min, uint32_t max, uint32_t *ret)
{
        uint64_t v;
        int r = parse_u64(what, s, min, max, &v);

        if (r == 0)
                *ret = (uint32_t)v;
        return r;
}

static int set_str(char **dst, const char *value)
{
        char *p = strdup(value);

        if (!p)
                return -ENOMEM;
        free(*dst);
        *dst = p;
        return 0;
}

static int parse_exporters(ss_export_config *cfg, const char *value)
{
        char *list = strdup(value), *save = NULL;
        int r = 0;

        if (!list)
                return -ENOMEM;
        cfg->exporters = 0;
        for (char *t = strtok_r(list, ",", &save); t && r == 0; t = strtok_r(NULL, ",", &save)) {
                if (strcmp(t, "console") == 0)
                        cfg->exporters |= SS_EXPORT_CONSOLE;
                else if (strcmp(t, "file") == 0)
                        cfg->exporters |= SS_EXPORT_FILE;
                else if (strcmp(t, "otlp-http") == 0)
                        cfg->exporters |= SS_EXPORT_OTLP_HTTP;
                else
                        r = bad("--exporter", t, "expected console, file or otlp-http");
        }
        free(list);
        if (r == 0 && cfg->exporters == 0)
                r = bad("--exporter", value, "expected at least one exporter");
        return r;
}

static int parse_compression(const char *what, const char *value, bool *ret)
{
        if (strcmp(value, "gzip") == 0)
                *ret = true;
        else if (strcmp(value, "none") == 0)
                *ret = false;
        else
                return bad(what, value, "expected gzip or none");
        return 0;
}

typedef struct header_ctx {
        ss_config *cfg;
        const char *what;
        const char *value;
        bool reported; /* add_header() printed its own error */
} header_ctx;

/* One decoded pair as a "k: v" line; CR, LF and ':' can't smuggle in another header. */
static int add_header(char *key, char *value, void *ctx)
{
        header_ctx *h = ctx;
        char *line;

        h->reported = true;
        if (strpbrk(key, "\r\n: \t") || strpbrk(value, "\r\n"))
                return bad(h->what, h->value, "a header name or value has a forbidden character");
        if (h->cfg->n_headers == SS_CONFIG_MAX_HEADERS)
                return bad(h->what, h->value, "too many headers");
        h->reported = false;
        if (asprintf(&line, "%s: %s", key, value) < 0)
                return -ENOMEM;
        h->cfg->headers[h->cfg->n_headers++] = line;
        return 0;
}

int ss_config_parse_headers(ss_config *cfg, const char *what, const char *value)
{
        header_ctx h = {.cfg = cfg, .what = what, .value = value};
        char *list = strdup(value);
        int r;

        if (!list)
                return -ENOMEM;
        r = ss_kvlist_parse(list, add_header, &h);
        free(list);
        if (r == -EINVAL && !h.reported)
                r = bad(what, value,
                        "expected key=value pairs, percent-encoded, separated by commas");
        return r;
}

enum endpoint_form {
        URL_AS_GIVEN, /* OTEL_EXPORTER_OTLP_TRACES_ENDPOINT */
        URL_BASE,     /* OTEL_EXPORTER_OTLP_ENDPOINT: append v1/traces */
        URL_FLAG,     /* --endpoint: append /v1/traces only when there is no path */
};

/* Whether a URL's part after the scheme names a path: "host:4318/" does not. */
static bool has_path(const char *host)
{
        const char *path = strchr(host, '/');

        return path && path[strspn(path, "/")] != '\0';
}

static int set_endpoint(ss_config *cfg, const char *what, const char *url, enum endpoint_form form)
{
        const char *host, *slash = *url && url[strlen(url) - 1] == '/' ? "" : "/";
        char *full;
        int r;

        if (strncmp(url, "http://", 7) == 0)
                host = url + 7;
        else if (strncmp(url, "https://", 8) == 0)
                host = url + 8;
        else
                return bad(what, url, "expected an http:// or https:// URL");
        if (!*host || *host == '/')
                return bad(what, url, "the URL has no host");
        if (form == URL_BASE || (form == URL_FLAG && !has_path(host)))
                r = asprintf(&full, "%s%sv1/traces", url, slash);
        else
                r = (full = strdup(url)) ? 0 : -1;
        if (r < 0)
                return -ENOMEM;
        free(cfg->endpoint);
        cfg->endpoint = full;
        return 0;
}

static void set_defaults(ss_config *cfg)
{
        *cfg = (ss_config){
            .listener = {.max_frame = SS_MAX_FRAME_DEFAULT, .max_connections = 1024},
            .export = {.exporters_defaulted = true, .console_fd = 1},
            .assembler =
                {
                    .limits = {.max_attrs = 128, .max_events = 128, .max_value_len = 256u * 1024u},
                    .max_open_spans = 10000,
                    .max_open_total = 1000000,
                    .max_trace_spans = 10000,
                    .orphan_grace_ms = 10000,
                },
            .drain_timeout_ms = 15000,
            .log_level = SS_LOG_INFO,
        };
        ss_http_config_defaults(&cfg->export.http);
}

static int default_socket(ss_config *cfg)
{
        const char *dir = env("RUNTIME_DIRECTORY");
        int r;

        if (dir) {
                /* systemd may list several directories; the first is ours. */
                size_t n = strcspn(dir, ":");

                r = asprintf(&cfg->socket_path, "%.*s/sidespan.sock", (int)n, dir);
        } else if (geteuid() == 0)
                r = asprintf(&cfg->socket_path, "/run/sidespan/sidespan.sock");
        else if ((dir = env("XDG_RUNTIME_DIR")))
                r = asprintf(&cfg->socket_path, "%s/sidespan.sock", dir);
        else {
                fprintf(stderr, "sidespand: no socket path: pass --socket or set SIDESPAN_SOCKET "
                                "(XDG_RUNTIME_DIR is not set)\n");
                return -EINVAL;
        }
        return r < 0 ? -ENOMEM : 0;
}

static int load_env_protocol(void)
{
        const char *name,
            *v = env2("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL", &name);

        if (!v || strcmp(v, "http/protobuf") == 0)
                return 0;
        if (strcmp(v, "grpc") == 0 || strcmp(v, "http/json") == 0)
                return bad(name, v,
                           "this build exports http/protobuf only; gRPC and JSON over "
                           "HTTP are not implemented yet");
        return bad(name, v, "expected http/protobuf");
}

static int load_env_endpoint(ss_config *cfg)
{
        const char *v;

        if ((v = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")))
                return set_endpoint(cfg, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v, URL_AS_GIVEN);
        if ((v = env("UPSONIC_OTEL_ENDPOINT")))
                return set_endpoint(cfg, "UPSONIC_OTEL_ENDPOINT", v, URL_BASE);
        if ((v = env("OTEL_EXPORTER_OTLP_ENDPOINT")))
                return set_endpoint(cfg, "OTEL_EXPORTER_OTLP_ENDPOINT", v, URL_BASE);
        return 0;
}

static int load_env(ss_config *cfg)
{
        const char *name, *v;
        int r;

        if ((v = env("SIDESPAN_SOCKET")) && (r = set_str(&cfg->socket_path, v)) < 0)
                return r;
        if ((r = load_env_protocol()) < 0 || (r = load_env_endpoint(cfg)) < 0)
                return r;
        v = env2("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS", &name);
        if (v && (r = ss_config_parse_headers(cfg, name, v)) < 0)
                return r;
        if ((v = env("UPSONIC_OTEL_HEADERS")) &&
            (r = ss_config_parse_headers(cfg, "UPSONIC_OTEL_HEADERS", v)) < 0)
                return r;
        v = env2("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT", &name);
        if (v && (r = parse_u32(name, v, 1, 3600000, &cfg->export.http.timeout_ms)) < 0)
                return r;
        v = env2("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION", &name);
        if (v && (r = parse_compression(name, v, &cfg->export.http.gzip)) < 0)
                return r;
        return 0;
}

static int load_flag(ss_config *cfg, int opt, const char *arg)
{
        ss_assembler_config *a = &cfg->assembler;
        ss_http_config *h = &cfg->export.http;
        uint64_t v;
        int r;

        switch (opt) {
        case 's':
                return set_str(&cfg->socket_path, arg);
        case 'e':
                cfg->export.exporters_defaulted = false;
                return parse_exporters(&cfg->export, arg);
        case OPT_ENDPOINT:
                return set_endpoint(cfg, "--endpoint", arg, URL_FLAG);
        case 'H':
                return ss_config_parse_headers(cfg, "--header", arg);
        case OPT_TIMEOUT:
                return parse_u32("--timeout-ms", arg, 1, 3600000, &h->timeout_ms);
        case OPT_COMPRESSION:
                return parse_compression("--compression", arg, &h->gzip);
        case OPT_RETRY_QUEUE:
                r = parse_u64("--retry-queue-bytes", arg, 0, 1ull << 40, &v);
                if (r == 0)
                        h->max_queue_bytes = (size_t)v;
                return r;
        case OPT_MAX_ATTEMPTS:
                return parse_u32("--max-attempts", arg, 1, 1000, &h->retry.max_attempts);
        case 'f':
                return set_str(&cfg->file_path, arg);
        case OPT_BATCH_SIZE:
                r = parse_u64("--batch-size", arg, 1, 1000000, &v);
                if (r == 0)
                        h->max_batch = (size_t)v;
                return r;
        case OPT_BATCH_DELAY:
                return parse_u64("--batch-delay-ms", arg, 1, 3600000, &h->batch_delay_ms);
        case OPT_MAX_FRAME:
                r = parse_u64("--max-frame", arg, 64, SS_MAX_FRAME_LIMIT, &v);
                if (r == 0)
                        cfg->listener.max_frame = (size_t)v;
                return r;
        case OPT_MAX_CONNECTIONS:
                return parse_u32("--max-connections", arg, 1, 1000000,
                                 &cfg->listener.max_connections);
        case OPT_MAX_OPEN:
                return parse_u32("--max-open-spans", arg, 1, 100000000, &a->max_open_spans);
        case OPT_MAX_OPEN_TOTAL:
                return parse_u32("--max-open-spans-total", arg, 1, 100000000, &a->max_open_total);
        case OPT_MAX_TRACE:
                return parse_u32("--max-trace-spans", arg, 1, 100000000, &a->max_trace_spans);
        case OPT_MAX_ATTRS:
                return parse_u32("--max-attributes", arg, 1, 100000, &a->limits.max_attrs);
        case OPT_MAX_EVENTS:
                return parse_u32("--max-events", arg, 0, 100000, &a->limits.max_events);
        case OPT_MAX_VALUE:
                return parse_u32("--max-value-length", arg, 1, SS_MAX_FRAME_LIMIT,
                                 &a->limits.max_value_len);
        case OPT_GRACE:
                return parse_u64("--orphan-grace-ms", arg, 0, 86400000, &a->orphan_grace_ms);
        case OPT_DRAIN:
                return parse_u32("--drain-timeout-ms", arg, 0, 3600000, &cfg->drain_timeout_ms);
        case 'l':
                cfg->log_level = ss_log_parse_level(arg);
                return cfg->log_level < 0 ? bad("--log-level", arg,
                                                "expected err, warning, notice, info or "
                                                "debug")
                                          : 0;
        default:
                return -EINVAL;
        }
}

/* Flags override the environment; a repeated header flag list replaces the env's. */
static int load_flags(ss_config *cfg, int argc, char **argv)
{
        bool headers_from_flags = false;
        int opt, r;

        optind = 0; /* 0, not 1: glibc then forgets the state of an earlier parse too */
        while ((opt = getopt_long(argc, argv, "s:e:H:f:l:hV", options, NULL)) != -1) {
                if (opt == 'h') {
                        fputs(usage, stdout);
                        return 1;
                }
                if (opt == 'V') {
                        printf("sidespand %s\n", SIDESPAN_VERSION_STRING);
                        return 1;
                }
                if (opt == '?') {
                        fputs("Try 'sidespand --help'.\n", stderr);
                        return -EINVAL;
                }
                if (opt == 'H' && !headers_from_flags) {
                        for (size_t i = 0; i < cfg->n_headers; i++)
                                free(cfg->headers[i]);
                        cfg->n_headers = 0;
                        headers_from_flags = true;
                }
                r = load_flag(cfg, opt, optarg);
                if (r < 0)
                        return r;
        }
        if (optind < argc) {
                fprintf(stderr, "sidespand: unexpected argument '%s'\nTry 'sidespand --help'.\n",
                        argv[optind]);
                return -EINVAL;
        }
        return 0;
}

/* Point the stages' configurations at the strings owned here. */
static void link_strings(ss_config *cfg)
{
        cfg->listener.path = cfg->socket_path;
        cfg->export.http.endpoint = cfg->endpoint;
        cfg->export.http.headers = (const char *const *)cfg->headers;
        cfg->export.http.n_headers = cfg->n_headers;
        cfg->export.file_path = cfg->file_path;
}

static int finish(ss_config *cfg)
{
        ss_export_config *e = &cfg->export;
        int r;

        if (!cfg->socket_path && (r = default_socket(cfg)) < 0)
                return r;
        if (e->exporters_defaulted)
                e->exporters = cfg->endpoint ? SS_EXPORT_OTLP_HTTP : SS_EXPORT_CONSOLE;
        if ((e->exporters & SS_EXPORT_OTLP_HTTP) && !cfg->endpoint) {
                fprintf(stderr, "sidespand: the otlp-http exporter needs --endpoint URL or "
                                "OTEL_EXPORTER_OTLP_ENDPOINT\n");
                return -EINVAL;
        }
        if ((e->exporters & SS_EXPORT_FILE) && !cfg->file_path &&
            set_str(&cfg->file_path, "sidespan-traces.jsonl") < 0)
                return -ENOMEM;
        link_strings(cfg);
        return 0;
}

/* --help and --version answer even when the environment holds a bad value. */
static bool asks_for_help(int argc, char **argv)
{
        for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
                    strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0)
                        return true;
        return false;
}

int ss_config_load(ss_config *cfg, int argc, char **argv)
{
        int r;

        set_defaults(cfg);
        r = asks_for_help(argc, argv) ? 0 : load_env(cfg);
        if (r == 0)
                r = load_flags(cfg, argc, argv);
        if (r == 0)
                r = finish(cfg);
        if (r == -ENOMEM)
                fputs("sidespand: out of memory\n", stderr);
        if (r < 0)
                return -EINVAL;
        return r;
}

void ss_config_free(ss_config *cfg)
{
        free(cfg->socket_path);
        free(cfg->endpoint);
        free(cfg->file_path);
        for (size_t i = 0; i < cfg->n_headers; i++)
                free(cfg->headers[i]);
        *cfg = (ss_config){0};
}
