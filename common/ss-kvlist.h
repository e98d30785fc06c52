/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * OpenTelemetry "key=value,key=value" lists (OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_EXPORTER_OTLP_HEADERS): items split on ',', key and value trimmed of
 * blanks and percent-decoded, blank items skipped. Pure: any thread.
 */

/*
 * Parse s in place, calling fn(key, value, ctx) per item; a negative return
 * from fn stops and is returned. -EINVAL for a non-blank item without '=',
 * an empty key, or a malformed %XX escape.
 */
int ss_kvlist_parse(char *s, int (*fn)(char *key, char *value, void *ctx), void *ctx);
