/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the gRPC exporter (exporter-grpc.c) needs that is not a call into grpc
 * core: grpc-support.c. Nothing else includes this.
 */

#include <stdbool.h>
#include <stddef.h>

#include "export/exporter-grpc.h"

/* The name of a gRPC status code ("UNAVAILABLE"), "?" past the known ones. */
const char *ss_grpc_code_name(int code);

/*
 * The grpc target "dns:///host:port" of an endpoint "http[s]://host[:port][/]" (the port
 * defaults to the scheme's) into *ret_target (malloc'd), and *ret_tls set for https://.
 * -EINVAL, logged with the endpoint, when it is not one; -ENOMEM.
 */
int ss_grpc_target(const char *url, char **ret_target, bool *ret_tls);

/* http:// only with insecure, TLS files only with https://, a client certificate with its
 * key: 0, or -EINVAL logged with the key at fault. */
int ss_grpc_security_check(bool tls, const ss_grpc_config *cfg);

/* Whether the transport sets header name itself (grpc-*, content-type, te, user-agent, host,
 * connection, content-length), so that the configuration may not. */
bool ss_grpc_reserved_name(const char *name);

/* "Name: value" into the name lower-cased (malloc'd, the caller frees it) and the value
 * trimmed of blanks (pointing into line): 0, -EINVAL with no colon or no name, -ENOMEM. */
int ss_grpc_header_split(const char *line, char **ret_name, const char **ret_value,
                         size_t *ret_value_len);
