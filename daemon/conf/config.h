/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * sidespand's configuration: command-line flags over the environment over a
 * configuration file (--config, INI) over defaults. Every bad value is an
 * error naming where it came from (the flag, the variable, or file:line and
 * key) and the value, never a silent default. Main thread, at start.
 *
 * Exporters: one per [exporter NAME] section of the file, plus the one the
 * flags and the OpenTelemetry environment describe (named after its kind:
 * otlp-http, otlp-grpc, file, console), plus the console when there is none.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export/pipeline.h"
#include "ingest/listener.h"
#include "metrics/stage.h"
#include "policy/stage.h"
#include "trace/assembler.h"

#define SS_CONFIG_MAX_HEADERS 64
#define SS_CONFIG_MAX_IDS     64

enum ss_protocol {
        SS_PROTO_UNSET = 0,
        SS_PROTO_GRPC,
        SS_PROTO_HTTP_PROTOBUF,
        SS_PROTO_HTTP_JSON,
};

enum ss_endpoint_form {
        SS_URL_AS_GIVEN, /* OTEL_EXPORTER_OTLP_TRACES_ENDPOINT */
        SS_URL_BASE,     /* OTEL_EXPORTER_OTLP_ENDPOINT: append v1/traces for HTTP */
        SS_URL_FLAG,     /* --endpoint, endpoint =: append /v1/traces when there is no path */
};

/* One exporter as configured, before its preset and protocol are resolved. */
typedef struct ss_exporter_spec {
        char *name;
        char *origin; /* "FILE:LINE" of its section, or "flags/environment" */
        char *type; /* otlp, jaeger, tempo, otel-collector, langfuse, promptlayer, file, console */
        int protocol;   /* enum ss_protocol */
        char *endpoint; /* as given; the full URL after ss_config_load() */
        int endpoint_form;
        const char *signal; /* the path an HTTP endpoint gets: "traces" (NULL), "metrics" */
        char *headers[SS_CONFIG_MAX_HEADERS]; /* "Name: value" */
        size_t n_headers;
        bool insecure;
        char *ca_file, *cert_file, *key_file;
        char *path;                                    /* file exporter */
        char *public_key, *secret_key, *host, *region; /* langfuse */
        char *api_key;                                 /* promptlayer */
        char *spool_dir;     /* network exporters: given, or the daemon's spool dir + name */
        char *dead_letter;   /* network exporters: OTLP/JSON lines of what is given up */
        ss_http_config http; /* numbers; strings linked at the end */
        int include_content; /* -1: not said (true) */
        int redact[3];       /* secrets, personal, custom: -1 not said (the daemon's) */
} ss_exporter_spec;

typedef struct ss_config {
        ss_listener_config listener;
        ss_assembler_config assembler;
        ss_export_config export;   /* what to build, after ss_config_load() */
        ss_metrics_config metrics; /* its strings are owned below */
        uint32_t drain_timeout_ms;
        int log_level;
        bool check_only; /* --check-config: print the effective configuration, exit */
        /* Owned. */
        char *config_path;
        char *socket_path;
        uint32_t allow_uids[SS_CONFIG_MAX_IDS];
        size_t n_allow_uids;
        uint32_t allow_gids[SS_CONFIG_MAX_IDS];
        size_t n_allow_gids;
        unsigned cli_kinds;   /* --exporter: SS_EXPORT_*; 0: from the endpoint */
        ss_exporter_spec cli; /* the flags' and the environment's exporter */
        ss_exporter_spec specs[SS_PIPELINE_MAX_EXPORTERS]; /* the file's */
        size_t n_specs;
        /* The policy stage's; its strings (content keys, tail matches, patterns) are owned
         * here. views[] follows export.defs[]. */
        ss_policy_config policy;
        unsigned redact; /* SS_REDACT_* classes on by default for every exporter */
        char *pricing_file;
        /* Where the daemon keeps what outlives it (open spans across a restart, the spools):
         * --state-dir, SIDESPAN_STATE_DIR, [daemon] state_dir, else $STATE_DIRECTORY under
         * systemd; NULL: none (open spans end as orphans at shutdown). */
        char *state_dir;
        /* Where each network exporter spools (DIR/<exporter name>): --spool-dir,
         * SIDESPAN_SPOOL_DIR, else STATE_DIR/spool; NULL: none. */
        char *spool_root;
        /* The metrics stage's OTLP exporter ([metrics], its flags and variables) and scrape
         * endpoint (conf/metrics.h). */
        ss_exporter_spec metrics_spec;
        char *prometheus_listen;
} ss_config;

/*
 * Fill cfg from argv, the environment and the file --config names. Returns
 * 0 to run, 1 when --help, --version or --check-config printed what was
 * asked (exit 0), or -EINVAL after printing every error to stderr (exit 2).
 * cfg owns its strings: ss_config_free().
 */
int ss_config_load(ss_config *cfg, int argc, char **argv);

void ss_config_free(ss_config *cfg);

/* cfg with every default and nothing loaded (free with ss_config_free()). */
void ss_config_defaults(ss_config *cfg);

/* Parse "k=v,k=v" headers (percent-encoded) into "k: v" lines of spec. -EINVAL (printed,
 * naming what). */
int ss_config_parse_headers(ss_exporter_spec *spec, const char *what, const char *value);
