/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Parsing one configuration value: every failure is printed to stderr
 * naming what (a flag, a variable) and the value, and returns -EINVAL; never
 * a silent default. Main thread, at start.
 */

#include <stddef.h>
#include <stdint.h>

/* Print "sidespand: invalid WHAT: 'VALUE' (EXPECTED)"; returns -EINVAL. */
int ss_conf_bad(const char *what, const char *value, const char *expected);

/* A decimal integer in [min, max]. */
int ss_conf_u64(const char *what, const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* An environment variable, an empty one counting as unset (OpenTelemetry's rule). */
const char *ss_conf_env(const char *name);

/* The first of two variables that is set; *ret_name says which. */
const char *ss_conf_env2(const char *a, const char *b, const char **ret_name);

/* Replace *dst with a copy of value. 0 or -ENOMEM. */
int ss_conf_set_str(char **dst, const char *value);
/* As ss_conf_set_str(), refusing an empty path. */
int ss_conf_path(const char *what, const char *value, char **dst);

/*
 * A comma-separated list of user (groups: group) names or numeric ids,
 * appended to v (at most max entries, *n of them used). A name that does not
 * exist is an error.
 */
int ss_conf_ids(const char *what, const char *value, int groups, uint32_t *v, size_t max,
                size_t *n);
