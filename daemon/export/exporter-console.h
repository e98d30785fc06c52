/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The console exporter prints each finished trace as an indented tree with
 * durations, status and the attributes an operator looks at first. It is for
 * people: the format is not stable. Text goes out in order through
 * export/writer.h, so a terminal that is scrolled back or a pipe that is not
 * read never stalls the loop; past SS_WRITER_MAX_QUEUED_DEFAULT bytes
 * waiting, traces are dropped and counted.
 */

#include <uv.h>

#include "export/exporter.h"

/* Print to fd (borrowed: stays open). 0, -ENOMEM or a libuv error (logged). Loop thread. */
int ss_console_exporter_new(uv_loop_t *loop, int fd, ss_exporter **ret);
