/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The backends an exporter's type names (langfuse, promptlayer, jaeger, tempo,
 * otel-collector): the endpoint, protocol and headers each needs, from its
 * keys or its vendor's environment variables. Start-up only.
 */

#include "conf/config.h"

/* Fill in what spec's type implies and spec leaves unset; 0 for other types. 0, or -EINVAL
 * printed naming the missing key or variable (-ENOMEM). */
int ss_spec_apply_preset(ss_exporter_spec *spec);
