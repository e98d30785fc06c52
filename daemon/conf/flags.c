/* SPDX-License-Identifier: MIT */
#include "conf/flags.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "conf/exporters.h"
#include "conf/metrics.h"
#include "conf/parse.h"
#include "conf/policy.h"
#include "conf/settings.h"
#include "sidespan-version.h"
#include "ss-macro.h"

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
    "      --config FILE          read settings and exporters from this INI file\n"
    "                             (flags and the environment win over it)\n"
    "      --check-config         check the file, the environment and the flags, print\n"
    "                             the configuration they make (secrets masked), exit\n"
    "\n"
    "Export:\n"
    "  -e, --exporter LIST        comma-separated: console, file, otlp, otlp-http,\n"
    "                             otlp-grpc (default: otlp when an endpoint is set;\n"
    "                             console when nothing, not even --config, exports)\n"
    "      --endpoint URL         OTLP endpoint; for HTTP a URL without a path gets\n"
    "                             /v1/traces (env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as\n"
    "                             given, UPSONIC_OTEL_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT\n"
    "                             as a base + v1/traces); port 4317 means gRPC\n"
    "      --protocol PROTO       grpc, http/protobuf or http/json (env\n"
    "                             OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL)\n"
    "  -H, --header K=V           add a request header, repeatable (env\n"
    "                             OTEL_EXPORTER_OTLP_[TRACES_]HEADERS, UPSONIC_OTEL_HEADERS)\n"
    "      --compression ALG      gzip or none (env OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION;\n"
    "                             default none)\n"
    "  -f, --file PATH            file exporter output, OTLP/JSON lines; - is stdout\n"
    "                             (default sidespan-traces.jsonl)\n"
    "      --spool-dir DIR        each network exporter spools what it cannot send to\n"
    "                             DIR/<exporter name> (env SIDESPAN_SPOOL_DIR; default\n"
    "                             STATE_DIR/spool, without a state directory none)\n"
    "      --state-dir DIR        keep open spans across a restart in DIR (env\n"
    "                             SIDESPAN_STATE_DIR, [daemon] state_dir, else systemd's\n"
    "                             $STATE_DIRECTORY; default none: they end as orphans)\n"
    "      --dead-letter PATH     append each request the OTLP exporter gives up for\n"
    "                             good to PATH as a line of OTLP/JSON (default none)\n";

static const char usage_tail[] =
    "\n"
    "GenAI metrics (derived from every span before sampling; more in [metrics]):\n"
    "      --metrics-endpoint URL export them over OTLP; for HTTP a URL without a path\n"
    "                             gets /v1/metrics; port 4317 means gRPC (env\n"
    "                             OTEL_EXPORTER_OTLP_METRICS_ENDPOINT as given, or\n"
    "                             OTEL_EXPORTER_OTLP_ENDPOINT + v1/metrics unless\n"
    "                             OTEL_METRICS_EXPORTER leaves otlp out; default none)\n"
    "      --metrics-protocol P   grpc, http/protobuf or http/json (env\n"
    "                             OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL)\n"
    "      --metrics-interval MS  collect and export every MS (env\n"
    "                             OTEL_METRIC_EXPORT_INTERVAL; default 60000)\n"
    "      --metrics-temporality T  cumulative or delta (env\n"
    "                             OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE;\n"
    "                             default cumulative)\n"
    "      --prometheus-listen HOST:PORT  serve GET /metrics for Prometheus (env\n"
    "                             OTEL_METRICS_EXPORTER=prometheus: 127.0.0.1:9464)\n"
    "      --no-metrics           derive none (env SIDESPAN_METRICS=0)\n"
    "Policy (more in the configuration file: [sampling], [content], [redaction],\n"
    "[pricing]):\n"
    "      --sample-rate RATE     keep this fraction of traces, decided on the trace id\n"
    "                             (env OTEL_TRACES_SAMPLER_ARG; default 1); a client's\n"
    "                             stricter rate wins\n"
    "  -l, --log-level LEVEL      err, warning, notice, info or debug (env\n"
    "                             SIDESPAN_LOG_LEVEL; default info)\n"
    "  -h, --help                 show this help and exit\n"
    "  -V, --version              show the version and exit\n"
    "\n"
    "TLS from OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY;\n"
    "OTEL_EXPORTER_OTLP_[TRACES_]INSECURE=true allows http:// for gRPC.\n";

/* Options with a short form or a meaning of their own; the numeric settings follow them in
 * the getopt table, each as OPT_SETTING + its index in ss_settings. */
enum {
        OPT_ENDPOINT = 256,
        OPT_COMPRESSION,
        OPT_ALLOW_UIDS,
        OPT_ALLOW_GIDS,
        OPT_CONFIG,
        OPT_CHECK_CONFIG,
        OPT_PROTOCOL,
        OPT_SAMPLE_RATE,
        OPT_SPOOL_DIR,
        OPT_STATE_DIR,
        OPT_DEAD_LETTER,
        OPT_METRICS, /* conf/metrics.c's: by name */
        OPT_SETTING,
};

static const struct option fixed_options[] = {
    {"socket", required_argument, NULL, 's'},
    {"allow-uids", required_argument, NULL, OPT_ALLOW_UIDS},
    {"allow-gids", required_argument, NULL, OPT_ALLOW_GIDS},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
    {"protocol", required_argument, NULL, OPT_PROTOCOL},
    {"sample-rate", required_argument, NULL, OPT_SAMPLE_RATE},
    {"spool-dir", required_argument, NULL, OPT_SPOOL_DIR},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"dead-letter", required_argument, NULL, OPT_DEAD_LETTER},
    {"exporter", required_argument, NULL, 'e'},
    {"endpoint", required_argument, NULL, OPT_ENDPOINT},
    {"header", required_argument, NULL, 'H'},
    {"compression", required_argument, NULL, OPT_COMPRESSION},
    {"file", required_argument, NULL, 'f'},
    {"log-level", required_argument, NULL, 'l'},
    {"metrics-endpoint", required_argument, NULL, OPT_METRICS},
    {"metrics-protocol", required_argument, NULL, OPT_METRICS},
    {"metrics-interval", required_argument, NULL, OPT_METRICS},
    {"metrics-temporality", required_argument, NULL, OPT_METRICS},
    {"prometheus-listen", required_argument, NULL, OPT_METRICS},
    {"no-metrics", no_argument, NULL, OPT_METRICS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
};

void ss_conf_usage(const ss_config *d)
{
        fputs(usage_head, stdout);
        ss_settings_usage(stdout, "Export", d);
        fputs("\nLimits:\n", stdout);
        ss_settings_usage(stdout, "Limits", d);
        fputs(usage_tail, stdout);
}

static int parse_exporters(ss_config *cfg, const char *value)
{
        static const struct {
                const char *name;
                unsigned kind;
        } kinds[] = {{"console", SS_EXPORT_CONSOLE},
                     {"file", SS_EXPORT_FILE},
                     {"otlp", SS_EXPORT_OTLP_HTTP | SS_EXPORT_OTLP_GRPC},
                     {"otlp-http", SS_EXPORT_OTLP_HTTP},
                     {"otlp-grpc", SS_EXPORT_OTLP_GRPC}};
        char *list = strdup(value), *save = NULL;
        int r = 0;

        if (!list)
                return -ENOMEM;
        cfg->cli_kinds = 0;
        for (char *t = strtok_r(list, ",", &save); t && r == 0; t = strtok_r(NULL, ",", &save)) {
                size_t i;

                for (i = 0; i < SS_ELEMENTSOF(kinds) && strcmp(t, kinds[i].name) != 0; i++)
                        ;
                if (i == SS_ELEMENTSOF(kinds))
                        r = ss_conf_bad("--exporter", t,
                                        "expected console, file, otlp, otlp-http or otlp-grpc");
                else
                        cfg->cli_kinds |= kinds[i].kind;
        }
        free(list);
        if (r == 0 && cfg->cli_kinds == 0)
                r = ss_conf_bad("--exporter", value, "expected at least one exporter");
        return r;
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
                return ss_conf_path("--socket", arg, &cfg->socket_path);
        case OPT_ALLOW_UIDS:
                return ss_conf_ids("--allow-uids", arg, 0, cfg->allow_uids, SS_CONFIG_MAX_IDS,
                                   &cfg->n_allow_uids);
        case OPT_ALLOW_GIDS:
                return ss_conf_ids("--allow-gids", arg, 1, cfg->allow_gids, SS_CONFIG_MAX_IDS,
                                   &cfg->n_allow_gids);
        case OPT_CONFIG:
                return 0; /* read before the environment: ss_conf_flags_config_path() */
        case OPT_CHECK_CONFIG:
                cfg->check_only = true;
                return 0;
        case 'e':
                return parse_exporters(cfg, arg);
        case OPT_ENDPOINT:
                return ss_spec_set_endpoint(&cfg->cli, "--endpoint", arg, SS_URL_FLAG);
        case OPT_PROTOCOL:
                return ss_conf_protocol("--protocol", arg, &cfg->cli.protocol);
        case OPT_SAMPLE_RATE:
                return ss_conf_rate("--sample-rate", arg, &cfg->policy.sampling.rate);
        case OPT_SPOOL_DIR:
                return ss_conf_set_str(&cfg->spool_root, arg);
        case OPT_STATE_DIR:
                return ss_conf_path("--state-dir", arg, &cfg->state_dir);
        case OPT_DEAD_LETTER:
                return ss_conf_path("--dead-letter", arg, &cfg->cli.dead_letter);
        case 'H':
                return ss_config_parse_headers(&cfg->cli, "--header", arg);
        case OPT_COMPRESSION:
                return ss_conf_compression("--compression", arg, &cfg->cli.http.gzip);
        case 'f':
                return ss_conf_set_str(&cfg->cli.path, arg);
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

/* A --header flag list replaces the environment's headers. */
static void headers_replace(ss_exporter_spec *spec)
{
        for (size_t i = 0; i < spec->n_headers; i++)
                free(spec->headers[i]);
        spec->n_headers = 0;
}

static int parse_flags(ss_config *cfg, int argc, char **argv, const struct option *options)
{
        bool headers_from_flags = false, uids_from_flags = false, gids_from_flags = false;
        int opt, idx = -1, r;

        optind = 0; /* 0, not 1: glibc then forgets the state of an earlier parse too */
        while ((opt = getopt_long(argc, argv, "s:e:H:f:l:hV", options, &idx)) != -1) {
                if (opt == 'h') {
                        ss_config d;

                        ss_config_defaults(&d);
                        ss_conf_usage(&d);
                        ss_config_free(&d);
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
                        headers_replace(&cfg->cli);
                        headers_from_flags = true;
                }
                /* A flag's list replaces the file's, as --header does. */
                if (opt == OPT_ALLOW_UIDS && !uids_from_flags) {
                        cfg->n_allow_uids = 0;
                        uids_from_flags = true;
                }
                if (opt == OPT_ALLOW_GIDS && !gids_from_flags) {
                        cfg->n_allow_gids = 0;
                        gids_from_flags = true;
                }
                r = opt == OPT_METRICS ? ss_conf_metrics_flag(cfg, options[idx].name, optarg)
                                       : load_flag(cfg, opt, optarg);
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

int ss_conf_flags_load(ss_config *cfg, int argc, char **argv)
{
        struct option *options = options_table();
        int r = options ? parse_flags(cfg, argc, argv, options) : -ENOMEM;

        free(options);
        return r;
}

const char *ss_conf_flags_config_path(int argc, char **argv)
{
        for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
                if (strcmp(argv[i], "--config") == 0)
                        return i + 1 < argc ? argv[i + 1] : NULL;
                if (strncmp(argv[i], "--config=", 9) == 0)
                        return argv[i] + 9;
        }
        return NULL;
}

bool ss_conf_flags_ask_help(int argc, char **argv)
{
        for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
                    strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0)
                        return true;
        return false;
}
