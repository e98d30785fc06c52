/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The file exporter appends OTLP/JSON lines: one ExportTraceServiceRequest
 * per line (the OTLP file exporter format), batched like the network
 * exporters. Writes are small buffered stdio appends on the loop thread,
 * flushed per batch; "-" is standard output.
 */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "exporter.h"

/* 0, -errno from fopen (logged with the path), or -ENOMEM. */
int ss_file_exporter_new(uv_loop_t *loop, const char *path, size_t max_batch, uint64_t delay_ms,
                         ss_exporter **ret);
