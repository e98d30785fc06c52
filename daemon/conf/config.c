/* SPDX-License-Identifier: MIT */
#include "conf/config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "conf/parse.h"
#include "conf/settings.h"
#include "ss-kvlist.h"
#include "ss-macro.h"
#include "sidespan-version.h"
#include "ss-wire.h"

static void set_defaults(ss_config *cfg);

static const char usage_head[] =
    "Usage: sidespand [OPTION]...\n"
    "Tracing sidecar for AI agents: takes span events from libsidespan over a Unix\n"
    "socket, assembles traces and exports them as OTLP.\n"
    "\n"
    "Socket:\n"
    "  -s, --socket PATH          listen here (env SIDESPAN_SOCKET; default\n"
    "                             $RUNTIME_DIRECTORY/sidespan.sock, else\n"
    "                             /run/sidespan/sidespan.sock as root or\n"
    "                             $XDG_RUNTIME_DIR/sidespan.sock)\n"
    "      --allow-uids LIST      users (names or uids) who may connect, besides root\n"
    "                             and the daemon's own user (default: anyone who can\n"
    "                             open the socket)\n"
    "      --allow-gids LIST      groups whose members may connect\n"
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
    "      --compression ALG      gzip or none (env OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION;\n"
    "                             default none)\n"
    "  -f, --file PATH            file exporter output, OTLP/JSON lines; - is stdout\n"
    "                             (default sidespan-traces.jsonl)\n";

static const char usage_tail[] =
    "\n"
    "  -l, --log-level LEVEL      err, warning, notice, info or debug (default info)\n"
    "  -h, --help                 show this help and exit\n"
    "  -V, --version              show the version and exit\n"
    "\n"
    "OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL must be http/protobuf when set.\n";

/* Options with a short form or a meaning of their own; the numeric settings follow them in
 * the getopt table, each as OPT_SETTING + its index in ss_settings. */
enum {
        OPT_ENDPOINT = 256,
        OPT_COMPRESSION,
        OPT_ALLOW_UIDS,
        OPT_ALLOW_GIDS,
        OPT_SETTING,
};

static const struct option fixed_options[] = {
    {"socket", required_argument, NULL, 's'},
    {"allow-uids", required_argument, NULL, OPT_ALLOW_UIDS},
    {"allow-gids", required_argument, NULL, OPT_ALLOW_GIDS},
    {"exporter", required_argument, NULL, 'e'},
    {"endpoint", required_argument, NULL, OPT_ENDPOINT},
    {"header", required_argument, NULL, 'H'},
    {"compression", required_argument, NULL, OPT_COMPRESSION},
    {"file", required_argument, NULL, 'f'},
    {"log-level", required_argument, NULL, 'l'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
};

static void print_usage(void)
{
        ss_config d;

        set_defaults(&d);
        fputs(usage_head, stdout);
        ss_settings_usage(stdout, "Export", &d);
        fputs("\nLimits:\n", stdout);
        ss_settings_usage(stdout, "Limits", &d);
        fputs(usage_tail, stdout);
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
                        r = ss_conf_bad("--exporter", t, "expected console, file or otlp-http");
        }
        free(list);
        if (r == 0 && cfg->exporters == 0)
                r = ss_conf_bad("--exporter", value, "expected at least one exporter");
        return r;
}

static int parse_compression(const char *what, const char *value, bool *ret)
{
        if (strcmp(value, "gzip") == 0)
                *ret = true;
        else if (strcmp(value, "none") == 0)
                *ret = false;
        else
                return ss_conf_bad(what, value, "expected gzip or none");
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
                return ss_conf_bad(h->what, h->value,
                                   "a header name or value has a forbidden character");
        if (h->cfg->n_headers == SS_CONFIG_MAX_HEADERS)
                return ss_conf_bad(h->what, h->value, "too many headers");
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
                r = ss_conf_bad(what, value,
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
                return ss_conf_bad(what, url, "expected an http:// or https:// URL");
        if (!*host || *host == '/')
                return ss_conf_bad(what, url, "the URL has no host");
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
            .listener =
                {
                    .max_frame = SS_MAX_FRAME_DEFAULT,
                    .max_connections = 1024,
                    .max_connections_process = 64,
                    .max_input_bytes = 256u << 20,
                    .hello_timeout_ms = 10000,
                    .frame_timeout_ms = 10000,
                    .idle_timeout_ms = 600000,
                },
            .export = {.exporters_defaulted = true, .console_fd = 1},
            .assembler =
                {
                    .limits = {.max_attrs = 128,
                               .max_events = 128,
                               .max_value_len = 256u * 1024u,
                               .max_key_len = 256,
                               .max_name_len = 1024,
                               .max_bytes = 4u << 20},
                    .max_resource_attrs = 128,
                    .max_open_spans = 10000,
                    .max_open_process = 50000,
                    .max_open_total = 1000000,
                    .max_trace_spans = 10000,
                    .orphan_grace_ms = 10000,
                    .foreign_wait_ms = 60000,
                },
            .drain_timeout_ms = 15000,
            .log_level = SS_LOG_INFO,
        };
        ss_http_config_defaults(&cfg->export.http);
}

static int default_socket(ss_config *cfg)
{
        const char *dir = ss_conf_env("RUNTIME_DIRECTORY");
        int r;

        if (dir) {
                /* systemd may list several directories; the first is ours. */
                size_t n = strcspn(dir, ":");

                r = asprintf(&cfg->socket_path, "%.*s/sidespan.sock", (int)n, dir);
        } else if (geteuid() == 0)
                r = asprintf(&cfg->socket_path, "/run/sidespan/sidespan.sock");
        else if ((dir = ss_conf_env("XDG_RUNTIME_DIR")))
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
        const char *name, *v = ss_conf_env2("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                                            "OTEL_EXPORTER_OTLP_PROTOCOL", &name);

        if (!v || strcmp(v, "http/protobuf") == 0)
                return 0;
        if (strcmp(v, "grpc") == 0 || strcmp(v, "http/json") == 0)
                return ss_conf_bad(name, v,
                                   "this build exports http/protobuf only; gRPC and JSON over "
                                   "HTTP are not implemented yet");
        return ss_conf_bad(name, v, "expected http/protobuf");
}

static int load_env_endpoint(ss_config *cfg)
{
        const char *v;

        if ((v = ss_conf_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")))
                return set_endpoint(cfg, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v, URL_AS_GIVEN);
        if ((v = ss_conf_env("UPSONIC_OTEL_ENDPOINT")))
                return set_endpoint(cfg, "UPSONIC_OTEL_ENDPOINT", v, URL_BASE);
        if ((v = ss_conf_env("OTEL_EXPORTER_OTLP_ENDPOINT")))
                return set_endpoint(cfg, "OTEL_EXPORTER_OTLP_ENDPOINT", v, URL_BASE);
        return 0;
}

static int load_env(ss_config *cfg)
{
        const char *name, *v;
        int r;

        if ((v = ss_conf_env("SIDESPAN_SOCKET")) && (r = ss_conf_set_str(&cfg->socket_path, v)) < 0)
                return r;
        if ((r = load_env_protocol()) < 0 || (r = load_env_endpoint(cfg)) < 0)
                return r;
        v = ss_conf_env2("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS", &name);
        if (v && (r = ss_config_parse_headers(cfg, name, v)) < 0)
                return r;
        if ((v = ss_conf_env("UPSONIC_OTEL_HEADERS")) &&
            (r = ss_config_parse_headers(cfg, "UPSONIC_OTEL_HEADERS", v)) < 0)
                return r;
        v = ss_conf_env2("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT", &name);
        if (v && (r = ss_setting_set(cfg, ss_setting_find("timeout-ms"), name, v)) < 0)
                return r;
        v = ss_conf_env2("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION",
                         &name);
        if (v && (r = parse_compression(name, v, &cfg->export.http.gzip)) < 0)
                return r;
        return 0;
}

static int load_flag(ss_config *cfg, int opt, const char *arg)
{
        char what[64];

        if (opt >= OPT_SETTING && (size_t)(opt - OPT_SETTING) < ss_n_settings) {
                const ss_setting *st = &ss_settings[opt - OPT_SETTING];

                snprintf(what, sizeof(what), "--%s", st->name);
                return ss_setting_set(cfg, st, what, arg);
        }
        switch (opt) {
        case 's':
                return ss_conf_set_str(&cfg->socket_path, arg);
        case OPT_ALLOW_UIDS:
                return ss_conf_ids("--allow-uids", arg, 0, cfg->allow_uids, SS_CONFIG_MAX_IDS,
                                   &cfg->n_allow_uids);
        case OPT_ALLOW_GIDS:
                return ss_conf_ids("--allow-gids", arg, 1, cfg->allow_gids, SS_CONFIG_MAX_IDS,
                                   &cfg->n_allow_gids);
        case 'e':
                cfg->export.exporters_defaulted = false;
                return parse_exporters(&cfg->export, arg);
        case OPT_ENDPOINT:
                return set_endpoint(cfg, "--endpoint", arg, URL_FLAG);
        case 'H':
                return ss_config_parse_headers(cfg, "--header", arg);
        case OPT_COMPRESSION:
                return parse_compression("--compression", arg, &cfg->export.http.gzip);
        case 'f':
                return ss_conf_set_str(&cfg->file_path, arg);
        case 'l':
                cfg->log_level = ss_log_parse_level(arg);
                return cfg->log_level < 0 ? ss_conf_bad("--log-level", arg,
                                                        "expected err, warning, notice, info or "
                                                        "debug")
                                          : 0;
        default:
                return -EINVAL;
        }
}

/* The getopt table: the fixed options, then one per numeric setting. */
static struct option *options_table(void)
{
        size_t nf = SS_ELEMENTSOF(fixed_options);
        struct option *o = calloc(nf + ss_n_settings + 1, sizeof(*o));

        if (!o)
                return NULL;
        memcpy(o, fixed_options, sizeof(fixed_options));
        for (size_t i = 0; i < ss_n_settings; i++)
                o[nf + i] = (struct option){ss_settings[i].name, required_argument, NULL,
                                            OPT_SETTING + (int)i};
        return o;
}

/* Flags override the environment; a repeated header flag list replaces the env's. */
static int parse_flags(ss_config *cfg, int argc, char **argv, const struct option *options)
{
        bool headers_from_flags = false;
        int opt, r;

        optind = 0; /* 0, not 1: glibc then forgets the state of an earlier parse too */
        while ((opt = getopt_long(argc, argv, "s:e:H:f:l:hV", options, NULL)) != -1) {
                if (opt == 'h') {
                        print_usage();
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

static int load_flags(ss_config *cfg, int argc, char **argv)
{
        struct option *options = options_table();
        int r = options ? parse_flags(cfg, argc, argv, options) : -ENOMEM;

        free(options);
        return r;
}

/* Point the stages' configurations at the strings owned here. */
static void link_strings(ss_config *cfg)
{
        cfg->listener.path = cfg->socket_path;
        cfg->export.http.endpoint = cfg->endpoint;
        cfg->export.http.headers = (const char *const *)cfg->headers;
        cfg->export.http.n_headers = cfg->n_headers;
        cfg->export.file_path = cfg->file_path;
        cfg->listener.allow_uids = cfg->allow_uids;
        cfg->listener.n_allow_uids = cfg->n_allow_uids;
        cfg->listener.allow_gids = cfg->allow_gids;
        cfg->listener.n_allow_gids = cfg->n_allow_gids;
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
            ss_conf_set_str(&cfg->file_path, "sidespan-traces.jsonl") < 0)
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
