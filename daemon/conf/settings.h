/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The daemon's numeric settings as one table: flag name, range, the field of
 * ss_config it fills, and a line of help. Flags, --help (with the defaults
 * read from a default configuration) and any later source of settings go
 * through it, so a limit is declared once. Main thread, at start.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf/config.h"

typedef struct ss_setting {
        const char *name; /* the flag without its dashes: "max-frame" */
        const char *arg;  /* what --help calls the value: "BYTES", "N", "MS" */
        const char *section;
        uint64_t min, max;
        size_t offset; /* into the struct the table is for */
        size_t width;  /* 4 or 8 bytes */
        const char *help;
} ss_setting;

/* The daemon's: offsets into ss_config. */
extern const ss_setting ss_settings[];
extern const size_t ss_n_settings;

/* An exporter's (a file's [exporter] keys): offsets into ss_http_config. */
extern const ss_setting ss_exporter_settings[];
extern const size_t ss_n_exporter_settings;

/* The setting of name in table (n rows), or NULL. A key's '_' matches a flag's '-'. */
const ss_setting *ss_setting_find_in(const ss_setting *table, size_t n, const char *name);

/* ss_setting_find_in(ss_settings, ...). */
const ss_setting *ss_setting_find(const char *name);

/* Parse value into the struct at base; a bad one is printed, naming what and the value:
 * -EINVAL. */
int ss_setting_set(void *base, const ss_setting *s, const char *what, const char *value);

uint64_t ss_setting_get(const void *base, const ss_setting *s);

/* --help lines of the settings of section, with the defaults of dflt. */
void ss_settings_usage(FILE *out, const char *section, const ss_config *dflt);

/* "name = value" lines of section (names with '_'), for --check-config. */
void ss_settings_print(FILE *out, const char *section, const ss_config *cfg);
