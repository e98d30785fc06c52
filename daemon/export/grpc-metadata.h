/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The gRPC exporter's configured headers as grpc core metadata, each checked
 * as grpc would check it at a call, so that a bad one is refused at creation
 * with its name rather than failing every call. Part of the sidespan-grpc
 * module (export/exporter-grpc.c); nothing else includes this.
 */

#include <grpc/grpc.h>
#include <stddef.h>

#include "export/exporter-grpc.h"

typedef struct ss_grpc_metadata {
        grpc_metadata *md; /* n entries, each key and value a slice of their own */
        size_t n;
} ss_grpc_metadata;

/* cfg's "Name: value" headers into m (empty), names lower-cased: 0; -EINVAL, logged naming
 * the header, for a line that is not "Name: value", a name or value gRPC does not allow or a
 * name the transport sets itself; -ENOMEM. On failure m is left empty. */
int ss_grpc_metadata_build(ss_grpc_metadata *m, const ss_grpc_config *cfg);

/* Unreference every slice and free the array; m is empty again. */
void ss_grpc_metadata_free(ss_grpc_metadata *m);
