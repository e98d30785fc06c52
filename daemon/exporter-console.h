/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The console exporter prints each finished trace as an indented tree with
 * durations, status and the attributes an operator looks at first. It is for
 * people: the format is not stable. It writes to out with stdio on the loop
 * thread, so point it at a terminal or a file, not a slow pipe.
 */

#include <stdio.h>

#include "exporter.h"

/* 0 or -ENOMEM. out is borrowed and must outlive the exporter. */
int ss_console_exporter_new(FILE *out, ss_exporter **ret);
