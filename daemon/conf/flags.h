/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The command line: the getopt table (the fixed options, then one per
 * numeric setting of conf/settings.h), --help and --version. Main thread.
 */

#include "conf/config.h"

/* Apply argv's flags to cfg. 0, 1 when --help or --version printed (exit 0), or -EINVAL
 * printed. */
int ss_conf_flags_load(ss_config *cfg, int argc, char **argv);

/* The value of --config in argv (or NULL), and whether argv asks for --help or --version,
 * which answer even when the file or the environment hold a bad value. */
const char *ss_conf_flags_config_path(int argc, char **argv);
bool ss_conf_flags_ask_help(int argc, char **argv);

/* --help, with the defaults of dflt. */
void ss_conf_usage(const ss_config *dflt);
