/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * sidespand's configuration: command-line flags over the environment over
 * defaults. Every bad value is an error naming the flag or variable and the
 * value, never a silent default. Main thread, at start.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assembler.h"

enum {
        SS_EXPORT_CONSOLE = 1u << 0,
        SS_EXPORT_FILE = 1u << 1,
        SS_EXPORT_OTLP_HTTP = 1u << 2,
};

#define SS_CONFIG_MAX_HEADERS 64

typedef struct ss_config {
        char *socket_path;
        unsigned exporters; /* SS_EXPORT_* */
        bool exporters_defaulted;
        /* otlp-http */
        char *endpoint;                       /* full URL, /v1/traces included */
        char *headers[SS_CONFIG_MAX_HEADERS]; /* "Name: value" */
        size_t n_headers;
        uint32_t timeout_ms;
        bool gzip;
        uint64_t retry_queue_bytes;
        uint32_t max_attempts;
        /* file */
        char *file_path;
        /* batching */
        uint32_t batch_size;
        uint32_t batch_delay_ms;
        /* limits */
        uint32_t max_frame;
        uint32_t max_connections;
        ss_assembler_config assembler;
        uint32_t drain_timeout_ms;
        int log_level;
} ss_config;

/*
 * Fill cfg from argv and the environment. Returns 0 to run, 1 when --help or
 * --version printed what was asked (exit 0), or -EINVAL after printing the
 * error to stderr (exit 2). cfg owns its strings: ss_config_free().
 */
int ss_config_load(ss_config *cfg, int argc, char **argv);

void ss_config_free(ss_config *cfg);

/* Parse "k=v,k=v" headers into "k: v" lines appended to cfg. -EINVAL (printed, naming what). */
int ss_config_parse_headers(ss_config *cfg, const char *what, const char *value);
