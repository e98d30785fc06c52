/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The configuration file (INI): [daemon] (socket,
 * log_level, allow_uids, allow_gids), [limits] (every limit flag, with _ for
 * -), and one [exporter NAME] section per backend (keys of conf/exporters.h).
 * Lines are blank, comments (starting with ; or #), [section] or key = value
 * (':' too), of any length. Every error is printed, one line each, naming
 * the file, the line, the key and the value, and reading goes on, so one run
 * reports them all. Main thread, at start.
 */

#include "conf/config.h"

/* Read path into cfg. 0, or -EINVAL after printing every error (or why the file cannot be
 * read). */
int ss_conf_file_load(ss_config *cfg, const char *path);
