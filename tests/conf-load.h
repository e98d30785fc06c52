/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the configuration suites (test-config.c, test-conf-file.c) share: the
 * environment variables the daemon reads, cleared around each test, and
 * ss_config_load() on an argv with standard output and error captured.
 * Header-only: each suite has its own cfg and captured texts.
 */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf/config.h"

static const char *const env_names[] = {
    "SIDESPAN_SOCKET",
    "RUNTIME_DIRECTORY",
    "XDG_RUNTIME_DIR",
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
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
    "LANGFUSE_HOST",
    "PROMPTLAYER_API_KEY",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_METRICS_EXPORTER",
    "OTEL_EXPORTER_PROMETHEUS_HOST",
    "OTEL_EXPORTER_PROMETHEUS_PORT",
    "SIDESPAN_METRICS",
};

static ss_config cfg;
static char out_text[16384], err_text[16384];

static inline void env_clear(void)
{
        for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
                ck_assert_int_eq(unsetenv(env_names[i]), 0);
}

/* Point fd at a fresh temporary file; returns the saved original. */
static inline int capture_begin(int fd, FILE **ret_file)
{
        FILE *f = tmpfile();
        int saved = dup(fd);

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(saved, 0);
        ck_assert_int_ge(dup2(fileno(f), fd), 0);
        *ret_file = f;
        return saved;
}

/* Restore fd and read what was written to it into text. */
static inline void capture_end(int fd, int saved, FILE *f, char *text, size_t size)
{
        size_t n;

        ck_assert_int_ge(dup2(saved, fd), 0);
        close(saved);
        rewind(f);
        n = fread(text, 1, size - 1, f);
        text[n] = '\0';
        fclose(f);
}

/* ss_config_load() on argv (NULL-terminated, program name first) with stdout and stderr
 * captured in out_text and err_text. cfg is freed first, so a test may load again. */
static inline int load_argv(char **argv)
{
        FILE *out, *err;
        int argc = 0, so, se, r;

        while (argv[argc])
                argc++;
        ss_config_free(&cfg);
        fflush(stdout);
        so = capture_begin(STDOUT_FILENO, &out);
        se = capture_begin(STDERR_FILENO, &err);
        r = ss_config_load(&cfg, argc, argv);
        fflush(stdout);
        fflush(stderr);
        capture_end(STDOUT_FILENO, so, out, out_text, sizeof(out_text));
        capture_end(STDERR_FILENO, se, err, err_text, sizeof(err_text));
        return r;
}

#define LOAD(...)      load_argv((char *[]){"sidespand", __VA_ARGS__, NULL})
#define LOAD_NO_ARGS() load_argv((char *[]){"sidespand", NULL})

/* The exporter of kind the configuration builds, or NULL. */
static inline const ss_exporter_def *def_of(unsigned kind)
{
        for (size_t i = 0; i < cfg.export.n; i++)
                if (cfg.export.defs[i].kind == kind)
                        return &cfg.export.defs[i];
        return NULL;
}
