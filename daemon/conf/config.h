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

#include "export/pipeline.h"
#include "ingest/listener.h"
#include "trace/assembler.h"

#define SS_CONFIG_MAX_HEADERS 64
#define SS_CONFIG_MAX_IDS     64

/* Each stage's configuration, filled here; the strings they point to are owned below. */
typedef struct ss_config {
        ss_listener_config listener;
        ss_assembler_config assembler;
        ss_export_config export;
        uint32_t drain_timeout_ms;
        int log_level;
        /* Owned strings. */
        char *socket_path;
        char *endpoint;                       /* full URL, /v1/traces included */
        char *headers[SS_CONFIG_MAX_HEADERS]; /* "Name: value" */
        size_t n_headers;
        char *file_path;
        uint32_t allow_uids[SS_CONFIG_MAX_IDS];
        size_t n_allow_uids;
        uint32_t allow_gids[SS_CONFIG_MAX_IDS];
        size_t n_allow_gids;
} ss_config;

/*
 * Fill cfg from argv and the environment (main thread, at start). Returns 0 to run, 1 when --help
 * or
 * --version printed what was asked (exit 0), or -EINVAL after printing the
 * error to stderr (exit 2). cfg owns its strings: ss_config_free().
 */
int ss_config_load(ss_config *cfg, int argc, char **argv);

void ss_config_free(ss_config *cfg);

/* Parse "k=v,k=v" headers into "k: v" lines appended to cfg. -EINVAL (printed, naming what). */
int ss_config_parse_headers(ss_config *cfg, const char *what, const char *value);
