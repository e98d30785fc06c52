/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The file exporter appends OTLP/JSON lines: one ExportTraceServiceRequest
 * per line (the OTLP file exporter format), batched like the network
 * exporters. Lines are written in order through export/writer.h, so a slow
 * disk or a FIFO nobody reads never stalls the loop; past
 * SS_WRITER_MAX_QUEUED_DEFAULT bytes waiting, batches are dropped and
 * counted. "-" is standard output.
 */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "export/exporter.h"

/* 0, or -errno when the file cannot be opened (logged with the path), -ENOMEM. A FIFO
 * must have its reader already: opening never blocks. Loop thread. */
int ss_file_exporter_new(uv_loop_t *loop, const char *path, size_t max_batch, uint64_t delay_ms,
                         ss_exporter **ret);
