/* SPDX-License-Identifier: MIT */
#pragma once

/* gzip (RFC 1952) for request bodies. Pure function; any thread (CPU-bound: on
 * the loop thread it costs a few hundred microseconds per MiB). */

#include <stddef.h>
#include <stdint.h>

#include "ss-buf.h"

/* Append the gzip of in[0..len) to out. 0, -ENOBUFS past out's maximum, -ENOMEM, -EIO. */
int ss_gzip_append(const uint8_t *in, size_t len, ss_buf *out);

/* Append the inflated gzip in[0..len) to out: 0, -ENOBUFS past out's maximum (which bounds
 * what a small input may inflate to), -EBADMSG when it is no whole gzip stream, -ENOMEM. */
int ss_gunzip_append(const uint8_t *in, size_t len, ss_buf *out);
