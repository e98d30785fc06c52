/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * HELLO, the first frame on every connection: the client's identity
 * (service.name, process.pid, sdk, instance), its sampling and content
 * settings, and the extra resource attributes. A pure encoder: any thread,
 * never blocks; the caller owns the buffers.
 */

#include <stdint.h>

#include "options.h"
#include "ss-buf.h"

/* Encode HELLO for a client with settings cfg and the instance id into frame (emptied first),
 * packing the options map in scratch (emptied first). Reads getpid(), so a fork() child says
 * its own. 0, or -EMSGSIZE/-ENOBUFS/-ENOMEM when it cannot fit cfg->max_frame. */
int ssc_hello_build(ss_buf *frame, ss_buf *scratch, const ssc_config *cfg, uint64_t instance);
