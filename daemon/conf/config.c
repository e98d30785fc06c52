/* SPDX-License-Identifier: MIT */
/*
 * Loading the configuration: defaults, then the file, then the environment,
 * then the flags, each over the one before; then the exporters are resolved
 * (conf/exporters.c) into what the pipeline builds.
 */
#include "conf/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "conf/exporters.h"
#include "conf/file.h"
#include "conf/flags.h"
#include "conf/metrics.h"
#include "conf/parse.h"
#include "conf/policy.h"
#include "conf/settings.h"
#include "metrics/prometheus.h"
#include "ss-wire.h"

#define CLI_ORIGIN "flags and environment"

void ss_config_defaults(ss_config *cfg)
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
            .export = {.console_fd = 1},
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
                    .max_trace_bytes = 16u << 20, /* a quarter of a queue (see README) */
                    .sample_rate = 1.0,
                    .orphan_grace_ms = 10000,
                    .foreign_wait_ms = 60000,
                },
            .drain_timeout_ms = 15000,
            .log_level = SS_LOG_INFO,
            .policy = {.sampling = {.rate = 1.0}, .include_content = true},
            .redact = SS_REDACT_SECRETS | SS_REDACT_PERSONAL | SS_REDACT_CUSTOM,
        };
        ss_spec_init(&cfg->cli, NULL, CLI_ORIGIN);
        ss_conf_metrics_init(cfg);
}

/* ---- the environment -------------------------------------------------------------------- */

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

/* SIDESPAN_STATE_DIR over the file's state_dir; systemd's StateDirectory= (its first
 * directory) when neither says. SIDESPAN_SPOOL_DIR likewise; --state-dir and --spool-dir
 * replace them. */
static int env_dirs(ss_config *cfg)
{
        const char *dir = ss_conf_env("SIDESPAN_STATE_DIR");
        int r = 0;

        if (dir)
                r = ss_conf_set_str(&cfg->state_dir, dir);
        else if (!cfg->state_dir && (dir = ss_conf_env("STATE_DIRECTORY")) &&
                 !(cfg->state_dir = strndup(dir, strcspn(dir, ":"))))
                r = -ENOMEM;
        if (r == 0 && (dir = ss_conf_env("SIDESPAN_SPOOL_DIR")))
                r = ss_conf_set_str(&cfg->spool_root, dir);
        return r;
}

/* Without a spool directory of its own, the daemon spools under its state directory. */
static int default_spool_root(ss_config *cfg)
{
        if (cfg->spool_root || !cfg->state_dir)
                return 0;
        return asprintf(&cfg->spool_root, "%s/spool", cfg->state_dir) < 0 ? -ENOMEM : 0;
}

/* A network exporter without its own spool_dir spools under the daemon's, by name. */
static int spool_dir(const ss_config *cfg, ss_exporter_spec *spec)
{
        if (spec->type && (!strcmp(spec->type, "console") || !strcmp(spec->type, "file")))
                return 0;
        if (!spec->spool_dir && cfg->spool_root) {
                if (!spec->name || !*spec->name || strchr(spec->name, '/') ||
                    !strcmp(spec->name, ".") || !strcmp(spec->name, "..")) {
                        fprintf(stderr,
                                "sidespand: exporter '%s' (%s): its name cannot name a spool "
                                "directory: set spool_dir\n",
                                spec->name ? spec->name : "", spec->origin);
                        return -EINVAL;
                }
                if (asprintf(&spec->spool_dir, "%s/%s", cfg->spool_root, spec->name) < 0)
                        return -ENOMEM;
        }
        spec->http.spool.dir = spec->spool_dir;
        return 0;
}

static int env_endpoint(ss_exporter_spec *cli)
{
        const char *v;

        if ((v = ss_conf_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")))
                return ss_spec_set_endpoint(cli, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v,
                                            SS_URL_AS_GIVEN);
        if ((v = ss_conf_env("UPSONIC_OTEL_ENDPOINT")))
                return ss_spec_set_endpoint(cli, "UPSONIC_OTEL_ENDPOINT", v, SS_URL_BASE);
        if ((v = ss_conf_env("OTEL_EXPORTER_OTLP_ENDPOINT")))
                return ss_spec_set_endpoint(cli, "OTEL_EXPORTER_OTLP_ENDPOINT", v, SS_URL_BASE);
        return 0;
}

static int load_env(ss_config *cfg)
{
        ss_exporter_spec *cli = &cfg->cli;
        const char *name, *v;
        int r;

        if ((v = ss_conf_env("SIDESPAN_SOCKET")) && (r = ss_conf_set_str(&cfg->socket_path, v)) < 0)
                return r;
        if ((v = ss_conf_env("SIDESPAN_LOG_LEVEL")) && (cfg->log_level = ss_log_parse_level(v)) < 0)
                return ss_conf_bad("SIDESPAN_LOG_LEVEL", v,
                                   "expected err, warning, notice, info or debug");
        if ((r = env_dirs(cfg)) < 0)
                return r;
        if ((r = env_endpoint(cli)) < 0 || (r = ss_spec_load_otlp_env(cli, "TRACES")) < 0)
                return r;
        if ((v = ss_conf_env("UPSONIC_OTEL_HEADERS")) &&
            (r = ss_config_parse_headers(cli, "UPSONIC_OTEL_HEADERS", v)) < 0)
                return r;
        if ((r = ss_conf_policy_env(cfg)) < 0)
                return r;
        if ((v = ss_conf_otlp_env("TRACES", "TIMEOUT", &name)) &&
            (r = ss_setting_set(cfg, ss_setting_find("timeout-ms"), name, v)) < 0)
                return r;
        return ss_conf_metrics_env(cfg);
}

/* ---- the exporters ---------------------------------------------------------------------- */

static int add_def(ss_config *cfg, ss_exporter_spec *spec)
{
        ss_export_config *e = &cfg->export;
        int r;

        if (e->n == SS_PIPELINE_MAX_EXPORTERS) {
                fprintf(stderr, "sidespand: more than %u exporters\n", SS_PIPELINE_MAX_EXPORTERS);
                return -EINVAL;
        }
        r = spool_dir(cfg, spec);
        if (r == 0)
                r = ss_spec_resolve(spec, &e->defs[e->n]);
        if (r == 0) {
                cfg->policy.views[e->n] = ss_conf_view(cfg, spec);
                e->exporters |= e->defs[e->n++].kind;
        }
        return r;
}

/* The flags' and the environment's exporters: what --exporter names, else OTLP when an
 * endpoint is known. Each is a copy of the cli spec under the name of its kind. */
static int cli_exporters(ss_config *cfg)
{
        static const struct {
                unsigned kind;
                const char *name;
        } kinds[] = {{SS_EXPORT_CONSOLE, "console"}, {SS_EXPORT_FILE, "file"}};
        unsigned want = cfg->cli_kinds;
        int r = 0;

        if (!want && cfg->cli.endpoint)
                want = SS_EXPORT_OTLP_HTTP | SS_EXPORT_OTLP_GRPC;
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && r == 0; i++)
                if (want & kinds[i].kind) {
                        ss_exporter_spec *s = &cfg->specs[cfg->n_specs];

                        if (cfg->n_specs == SS_PIPELINE_MAX_EXPORTERS) {
                                fprintf(stderr, "sidespand: more than %u exporters\n",
                                        SS_PIPELINE_MAX_EXPORTERS);
                                return -EINVAL;
                        }
                        ss_spec_init(s, kinds[i].name, CLI_ORIGIN);
                        s->http = cfg->cli.http;
                        r = ss_conf_set_str(&s->type, kinds[i].name);
                        if (r == 0 && cfg->cli.path)
                                r = ss_conf_set_str(&s->path, cfg->cli.path);
                        cfg->n_specs++;
                }
        if (r == 0 && (want & (SS_EXPORT_OTLP_HTTP | SS_EXPORT_OTLP_GRPC))) {
                unsigned otlp = want & (SS_EXPORT_OTLP_HTTP | SS_EXPORT_OTLP_GRPC);

                if (otlp == SS_EXPORT_OTLP_HTTP && cfg->cli.protocol == SS_PROTO_UNSET)
                        cfg->cli.protocol = SS_PROTO_HTTP_PROTOBUF;
                if (otlp == SS_EXPORT_OTLP_GRPC)
                        cfg->cli.protocol = SS_PROTO_GRPC;
                /* The environment's http:// endpoint for gRPC is plain text, as the
                 * OpenTelemetry SDKs read it. */
                cfg->cli.insecure = true;
                cfg->cli.name = strdup(otlp == SS_EXPORT_OTLP_HTTP   ? "otlp-http"
                                       : otlp == SS_EXPORT_OTLP_GRPC ? "otlp-grpc"
                                                                     : "otlp");
                r = cfg->cli.name ? add_def(cfg, &cfg->cli) : -ENOMEM;
                if (r == 0)
                        cfg->export.defs[cfg->export.n - 1].name =
                            cfg->export.defs[cfg->export.n - 1].kind == SS_EXPORT_OTLP_GRPC
                                ? "otlp-grpc"
                                : "otlp-http";
        }
        return r;
}

static int resolve_exporters(ss_config *cfg)
{
        size_t from_file = cfg->n_specs;
        int r = 0, errors = 0;

        for (size_t i = 0; i < from_file; i++)
                if (add_def(cfg, &cfg->specs[i]) < 0)
                        errors++;
        r = cli_exporters(cfg);
        for (size_t i = from_file; r == 0 && i < cfg->n_specs; i++)
                r = add_def(cfg, &cfg->specs[i]);
        if (r == 0 && errors == 0 && cfg->export.n == 0) {
                ss_exporter_spec *s = &cfg->specs[cfg->n_specs++];

                ss_spec_init(s, "console", "default");
                r = ss_conf_set_str(&s->type, "console");
                if (r == 0)
                        r = add_def(cfg, s);
                cfg->export.exporters_defaulted = true;
        }
        return errors ? -EINVAL : r;
}

/* Point the stages' configurations at the strings owned here. */
static void link_strings(ss_config *cfg)
{
        cfg->listener.path = cfg->socket_path;
        cfg->listener.allow_uids = cfg->allow_uids;
        cfg->listener.n_allow_uids = cfg->n_allow_uids;
        cfg->listener.allow_gids = cfg->allow_gids;
        cfg->listener.n_allow_gids = cfg->n_allow_gids;
}

static int finish(ss_config *cfg)
{
        int r;

        if (!cfg->socket_path && (r = default_socket(cfg)) < 0)
                return r;
        if ((r = default_spool_root(cfg)) < 0)
                return r;
        r = resolve_exporters(cfg);
        if (r == 0 && cfg->metrics_spec.endpoint)
                r = spool_dir(cfg, &cfg->metrics_spec);
        if (r == 0)
                r = ss_conf_metrics_finish(cfg);
        if (r < 0)
                return r;
        link_strings(cfg);
        return ss_conf_policy_finish(cfg);
}

/* --check-config: the configuration as a file that would make it. */
static void print_config(const ss_config *cfg)
{
        printf("# sidespand %s: the effective configuration (secrets masked)\n[daemon]\n",
               cfg->config_path ? cfg->config_path : "without --config");
        printf("socket = %s\nlog_level = %s\n", cfg->socket_path,
               ss_log_level_name(cfg->log_level));
        if (cfg->state_dir)
                printf("state_dir = %s\n", cfg->state_dir);
        for (size_t i = 0; i < cfg->n_allow_uids; i++)
                printf("%s%u%s", i ? "," : "allow_uids = ", cfg->allow_uids[i],
                       i + 1 == cfg->n_allow_uids ? "\n" : "");
        for (size_t i = 0; i < cfg->n_allow_gids; i++)
                printf("%s%u%s", i ? "," : "allow_gids = ", cfg->allow_gids[i],
                       i + 1 == cfg->n_allow_gids ? "\n" : "");
        puts("\n[limits]");
        ss_settings_print(stdout, "Limits", cfg);
        for (size_t i = 0, s = 0; i < cfg->export.n; i++) {
                const ss_exporter_def *d = &cfg->export.defs[i];
                const ss_exporter_spec *spec = &cfg->cli;

                for (s = 0; s < cfg->n_specs; s++)
                        if (cfg->specs[s].name == d->name)
                                spec = &cfg->specs[s];
                ss_spec_print(stdout, spec, d);
                ss_conf_view_print(stdout, &cfg->policy.views[i]);
        }
        ss_conf_policy_print(stdout, cfg);
        ss_conf_metrics_print(stdout, cfg);
}

/* Whether one of the span exporters, or the metrics exporter, is of this kind. */
static bool uses(const ss_config *cfg, unsigned kind)
{
        return cfg->export.exporters & kind ||
               (cfg->metrics.export_otlp && cfg->metrics.exporter.kind == kind);
}

/* --check-config: a network exporter or a scrape endpoint whose module (base/module.h) does
 * not load would stop the start; it stops the check too, with the line naming the file. */
static int check_modules(const ss_config *cfg)
{
        if (uses(cfg, SS_EXPORT_OTLP_GRPC) && !ss_grpc_exporter_load())
                return -EINVAL;
        if (cfg->metrics.prometheus_listen && !ss_prom_server_load())
                return -EINVAL;
        return uses(cfg, SS_EXPORT_OTLP_HTTP) && !ss_http_exporter_load() ? -EINVAL : 0;
}

int ss_config_load(ss_config *cfg, int argc, char **argv)
{
        bool help = ss_conf_flags_ask_help(argc, argv);
        const char *path = ss_conf_flags_config_path(argc, argv);
        int r = 0;

        ss_config_defaults(cfg);
        if (path && !help && (r = ss_conf_set_str(&cfg->config_path, path)) == 0)
                r = ss_conf_file_load(cfg, path);
        if (r == 0 && !help)
                r = load_env(cfg);
        if (r == 0)
                r = ss_conf_flags_load(cfg, argc, argv);
        if (r == 0)
                r = finish(cfg);
        if (r == 0 && cfg->check_only) {
                r = check_modules(cfg);
                if (r == 0) {
                        print_config(cfg);
                        r = 1;
                }
        }
        if (r == -ENOMEM)
                fputs("sidespand: out of memory\n", stderr);
        return r < 0 ? -EINVAL : r;
}

void ss_config_free(ss_config *cfg)
{
        free(cfg->config_path);
        free(cfg->socket_path);
        free(cfg->spool_root);
        free(cfg->state_dir);
        ss_spec_free(&cfg->cli);
        for (size_t i = 0; i < cfg->n_specs; i++)
                ss_spec_free(&cfg->specs[i]);
        ss_conf_policy_free(cfg);
        ss_conf_metrics_free(cfg);
        *cfg = (ss_config){0};
}
