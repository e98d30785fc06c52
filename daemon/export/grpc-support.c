/* SPDX-License-Identifier: MIT */
/*
 * What the gRPC exporter needs that is not a call into grpc core, kept out of
 * exporter-grpc.c: its settings' defaults and checks (the endpoint, plaintext
 * and TLS files, header lines) and the names of gRPC status codes for logs.
 * Built into the module with it. Loop thread.
 */
#include "export/grpc-support.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "export/dispatch.h"
#include "ss-macro.h"

static const char *const code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *ss_grpc_code_name(int code)
{
        return code >= 0 && (size_t)code < SS_ELEMENTSOF(code_names) ? code_names[code] : "?";
}

void ss_grpc_config_defaults(ss_grpc_config *cfg)
{
        *cfg = (ss_grpc_config){
            .timeout_ms = SS_GRPC_TIMEOUT_MS_DEFAULT,
            .max_batch = SS_DISPATCH_MAX_BATCH_DEFAULT,
            .max_batch_bytes = SS_DISPATCH_MAX_BATCH_BYTES_DEFAULT,
            .batch_delay_ms = SS_DISPATCH_BATCH_DELAY_MS_DEFAULT,
            .max_queue_bytes = SS_DISPATCH_MAX_QUEUE_BYTES_DEFAULT,
            .max_inflight = SS_DISPATCH_MAX_INFLIGHT_DEFAULT,
        };
        ss_retry_config_defaults(&cfg->retry);
}

/* ---- the endpoint ---------------------------------------------------------------------- */

static bool host_char(char c, bool v6)
{
        if (v6)
                return strchr("0123456789abcdefABCDEF:.", c) != NULL;
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.' || c == '_';
}

/* The host of "host[:port][/]" (a [v6] keeps its brackets): its length, 0 when bad. */
static size_t host_len(const char *h)
{
        bool v6 = *h == '[';
        size_t n = v6;

        while (h[n] && host_char(h[n], v6))
                n++;
        if (v6 && h[n++] != ']')
                return 0;
        return n > (v6 ? 2u : 0u) ? n : 0;
}

/* ":port" (1-65535) or nothing (*ret_port untouched); then at most one "/". */
static bool port_and_rest(const char *p, unsigned *ret_port)
{
        unsigned long v = 0;
        size_t digits = 0;

        if (*p == ':') {
                for (p++; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
                        v = v * 10 + (unsigned long)(*p - '0');
                if (digits == 0 || v == 0 || v > 65535)
                        return false;
                *ret_port = (unsigned)v;
        }
        if (*p == '/')
                p++;
        return *p == '\0';
}

int ss_grpc_target(const char *url, char **ret_target, bool *ret_tls)
{
        const char *host;
        unsigned port;
        size_t n;

        if (url && strncasecmp(url, "http://", 7) == 0) {
                host = url + 7;
                port = 80;
        } else if (url && strncasecmp(url, "https://", 8) == 0) {
                *ret_tls = true;
                host = url + 8;
                port = 443;
        } else {
                ss_log(SS_LOG_ERR,
                       "otlp-grpc: endpoint %s: not http:// or https:// event=config-invalid "
                       "exporter=otlp-grpc key=endpoint",
                       url ? url : "(none)");
                return -EINVAL;
        }
        n = host_len(host);
        if (n == 0 || !port_and_rest(host + n, &port)) {
                ss_log(SS_LOG_ERR,
                       "otlp-grpc: endpoint %s: not scheme://host[:port] "
                       "event=config-invalid exporter=otlp-grpc key=endpoint",
                       url);
                return -EINVAL;
        }
        if (asprintf(ret_target, "dns:///%.*s:%u", (int)n, host, port) < 0) {
                *ret_target = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* http:// only when asked for, and TLS files only where there is TLS. */
int ss_grpc_security_check(bool tls, const ss_grpc_config *cfg)
{
        bool files = cfg->ca_file || cfg->cert_file || cfg->key_file;

        if (!tls && !cfg->insecure) {
                ss_log(
                    SS_LOG_ERR,
                    "otlp-grpc: endpoint %s is plaintext: use https://, or set insecure to "
                    "send spans unencrypted event=config-invalid exporter=otlp-grpc key=insecure",
                    cfg->endpoint);
                return -EINVAL;
        }
        if (!tls && files) {
                ss_log(SS_LOG_ERR,
                       "otlp-grpc: endpoint %s is plaintext: it takes no ca_file, "
                       "cert_file or key_file event=config-invalid exporter=otlp-grpc key=ca_file",
                       cfg->endpoint);
                return -EINVAL;
        }
        if (!cfg->cert_file != !cfg->key_file) {
                ss_log(SS_LOG_ERR, "otlp-grpc: a client certificate needs both cert_file and "
                                   "key_file event=config-invalid exporter=otlp-grpc "
                                   "key=cert_file");
                return -EINVAL;
        }
        return 0;
}

/* ---- headers ---------------------------------------------------------------------------- */

/* Names the transport sets itself: a header of the configuration may not replace them. */
bool ss_grpc_reserved_name(const char *name)
{
        static const char *const names[] = {"content-type", "te",         "user-agent",
                                            "host",         "connection", "content-length"};

        if (strncmp(name, "grpc-", 5) == 0)
                return true;
        for (size_t i = 0; i < SS_ELEMENTSOF(names); i++)
                if (strcmp(name, names[i]) == 0)
                        return true;
        return false;
}

/* "Name: value" into lower-case name and trimmed value, both malloc'd in one block. */
int ss_grpc_header_split(const char *line, char **ret_name, const char **ret_value,
                         size_t *ret_value_len)
{
        const char *colon = line ? strchr(line, ':') : NULL;
        const char *v, *end;
        char *name;

        if (!colon || colon == line)
                return -EINVAL;
        v = colon + 1 + strspn(colon + 1, " \t");
        end = v + strlen(v);
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
        name = strndup(line, (size_t)(colon - line));
        if (!name)
                return -ENOMEM;
        for (char *c = name; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                        *c = (char)(*c - 'A' + 'a');
        *ret_name = name;
        *ret_value = v;
        *ret_value_len = (size_t)(end - v);
        return 0;
}
