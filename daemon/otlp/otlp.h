/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * OTLP encoding of finished spans. Spans are grouped
 * into ResourceSpans by resource (ss_resource.id) and into ScopeSpans by
 * scope, in order of first appearance. Pure functions: any thread.
 */

#include <stddef.h>
#include <stdint.h>

#include "metrics/metrics.h"
#include "model/span.h"
#include "ss-buf.h"

/*
 * Append an ExportTraceServiceRequest (protobuf) to out, written straight
 * from the span model (protobuf.c): no allocation besides out's growth.
 * -ENOMEM / -ENOBUFS (out's length as it was).
 */
int ss_otlp_encode(ss_span *const *spans, size_t n, ss_buf *out);

/*
 * The same request built with protobuf-c (pbc.c): the reference the direct
 * writer is tested against, and the benchmarks' baseline. It cuts a string
 * at a NUL byte (protobuf-c's strings are C strings); ss_otlp_encode() does
 * not.
 */
int ss_otlp_encode_pbc(ss_span *const *spans, size_t n, ss_buf *out);

/* Append the same request as OTLP/JSON on one line, no newline. */
int ss_otlp_json_encode(ss_span *const *spans, size_t n, ss_buf *out);

/*
 * Append an ExportMetricsServiceRequest (protobuf) for the snapshot: one
 * ResourceMetrics (s->resource) with one ScopeMetrics (s->scope_name and
 * version) holding every metric in order. The snapshot is only read, and
 * only during the call. 0, -ENOMEM, -ENOBUFS past out's maximum (out as it
 * was), -EINVAL for a metric of no known kind. Any thread.
 */
int ss_otlp_metrics_encode(const ss_metrics_snapshot *s, ss_buf *out);

/* The same request in OTLP/JSON (ss_otlp_pb_json()'s mapping), on one line. */
int ss_otlp_metrics_encode_json(const ss_metrics_snapshot *s, ss_buf *out);

struct ProtobufCMessage;

/*
 * Append any protobuf-c message as OTLP/JSON on one line, no newline: the
 * protobuf JSON mapping with OTLP's exceptions (trace_id, span_id and
 * parent_span_id as lowercase hex, enums as integers), driven by the
 * message's descriptor. -ENOMEM / -ENOBUFS (out as it was).
 */
int ss_otlp_pb_json(const struct ProtobufCMessage *m, ss_buf *out);

/* The same for an ExportTraceServiceRequest given as protobuf, pb[0..len); -EBADMSG when it
 * is none. */
int ss_otlp_pb_trace_request_json(const uint8_t *pb, size_t len, ss_buf *out);

/*
 * Read an ExportTraceServiceResponse. 0 with *ret_rejected (0 when no
 * partial_success) and a malloc'd *ret_message (NULL when none); -EBADMSG when
 * the body is not one.
 */
int ss_otlp_parse_response(const uint8_t *body, size_t len, int64_t *ret_rejected,
                           char **ret_message);

/* The same, for the OTLP/JSON answer to an OTLP/JSON request; -EBADMSG when the body is no
 * JSON object (or nests deeper than 32, or holds a string over 64 KiB). */
int ss_otlp_json_parse_response(const uint8_t *body, size_t len, int64_t *ret_rejected,
                                char **ret_message);

/*
 * The order both encoders write spans[0..n) in: ret_order (n entries, the
 * caller's) lists span indices so that the spans of one resource are
 * adjacent, resources in order of first appearance, spans in their given
 * order within a resource. A resource carries its one InstrumentationScope,
 * so each resource run is also one ScopeSpans. 0 or -ENOMEM.
 */
int ss_otlp_order(ss_span *const *spans, size_t n, size_t *ret_order);
