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
        size_t offset; /* into ss_config */
        size_t width;  /* 4 or 8 bytes */
        const char *help;
} ss_setting;

extern const ss_setting ss_settings[];
extern const size_t ss_n_settings;

/* The setting of a flag name, or NULL. */
const ss_setting *ss_setting_find(const char *name);

/* Parse value into cfg; a bad one is printed, naming what and the value: -EINVAL. */
int ss_setting_set(ss_config *cfg, const ss_setting *s, const char *what, const char *value);

uint64_t ss_setting_get(const ss_config *cfg, const ss_setting *s);

/* --help lines of the settings of section, with the defaults of dflt. */
void ss_settings_usage(FILE *out, const char *section, const ss_config *dflt);
