/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Exporter specs (conf/config.h): setting their keys, whether from a file
 * section or from flags and the environment, and resolving one into what the
 * export pipeline builds: the preset of its type, the protocol (an endpoint
 * on port 4317 is gRPC), the endpoint's final form, and the headers. Errors
 * are printed naming where the value came from. Main thread, at start.
 */

#include <stdio.h>

#include "conf/config.h"

/* An empty spec with the default numbers. */
void ss_spec_init(ss_exporter_spec *spec, const char *name, const char *origin);

void ss_spec_free(ss_exporter_spec *spec);

/*
 * Set one key of a file's [exporter] section (where: "FILE:LINE: key", for
 * errors). 0; -EINVAL, printed; -ENOENT for a key that does not exist
 * (the caller says so).
 */
int ss_spec_set(ss_exporter_spec *spec, const char *key, const char *value, const char *where);

/* "grpc", "http/protobuf", "http/json" into *ret (enum ss_protocol). -EINVAL printed. */
int ss_conf_protocol(const char *what, const char *value, int *ret);

/* "gzip" or "none". -EINVAL printed. */
int ss_conf_compression(const char *what, const char *value, bool *ret);

/* "always", "interval" or "never". -EINVAL printed. */
int ss_conf_spool_fsync(const char *what, const char *value, ss_spool_fsync *ret);

/* The retry backoff's multiplier, 1 to 10. -EINVAL printed. */
int ss_conf_multiplier(const char *what, const char *value, double *ret);

/* A boolean: true/false, yes/no, on/off, 1/0. -EINVAL printed. */
int ss_conf_bool(const char *what, const char *value, bool *ret);

/* An http:// or https:// URL with a host, copied into *ret. -EINVAL printed. */
int ss_spec_set_endpoint(ss_exporter_spec *spec, const char *what, const char *url, int form);

/* Whether spec is of type (no type: "otlp"). */
bool ss_spec_type_is(const ss_exporter_spec *spec, const char *type);

/* Print "sidespand: exporter NAME (ORIGIN): WHAT"; returns -EINVAL. */
int ss_spec_error(const ss_exporter_spec *spec, const char *what);

/*
 * Resolve spec into def (which borrows spec's strings: spec must outlive it).
 * 0, or -EINVAL printed naming the spec's origin (a missing key, gRPC for a
 * backend that has none, http:// for gRPC without insecure, ...).
 */
int ss_spec_resolve(ss_exporter_spec *spec, ss_exporter_def *def);

/* The spec as an [exporter] section, secrets masked (--check-config). */
void ss_spec_print(FILE *out, const ss_exporter_spec *spec, const ss_exporter_def *def);

/* The same without the section line. */
void ss_spec_print_keys(FILE *out, const ss_exporter_spec *spec, const ss_exporter_def *def);

/* OTEL_EXPORTER_OTLP_<signal>_<suffix> (signal "TRACES", "METRICS"), else
 * OTEL_EXPORTER_OTLP_<suffix>; *ret_name says which (valid until the next call). */
const char *ss_conf_otlp_env(const char *signal, const char *suffix, const char **ret_name);

/* The signal's OTLP variables of the exporter spec: protocol, TLS files, insecure, headers,
 * compression. 0 or -EINVAL printed (-ENOMEM). */
int ss_spec_load_otlp_env(ss_exporter_spec *spec, const char *signal);
