/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The policy settings: [sampling], [content], [redaction] and [pricing]
 * sections, the exporters' own policy keys, --sample-rate and
 * OTEL_TRACES_SAMPLER[_ARG]. Each bad value is printed naming where it came
 * from and what was expected. Main thread, at start.
 */

#include <stdio.h>

#include "conf/config.h"

/* One key of a policy section. 0, -ENOENT (not a policy section or key; *known_section
 * says which), -EINVAL (printed) or -ENOMEM. */
int ss_conf_policy_key(ss_config *cfg, const char *section, const char *key, const char *value,
                       const char *where, bool *known_section);

/* An exporter's policy key (include_content, redact_secrets, redact_personal,
 * redact_custom) into spec. 0, -ENOENT, -EINVAL (printed). */
int ss_spec_policy_key(ss_exporter_spec *spec, const char *key, const char *value,
                       const char *where);

/* OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG. 0 or -EINVAL (printed). */
int ss_conf_policy_env(ss_config *cfg);

/* A sampling rate in [0, 1]. 0 or -EINVAL (printed). */
int ss_conf_rate(const char *what, const char *value, double *ret);

/* How exporter spec sees traces, under the daemon-wide settings. */
ss_view_config ss_conf_view(const ss_config *cfg, const ss_exporter_spec *spec);

/* After loading: the stages' policy fields that follow from the rest; the redaction patterns
 * compiled and the pricing file read once, so a bad one fails here, naming it. 0, -EINVAL
 * (printed) or -ENOMEM. */
int ss_conf_policy_finish(ss_config *cfg);

/* An exporter's effective policy keys, for --check-config. */
void ss_conf_view_print(FILE *out, const ss_view_config *v);

/* The sections as a file would set them, for --check-config. */
void ss_conf_policy_print(FILE *out, const ss_config *cfg);

void ss_conf_policy_free(ss_config *cfg);
