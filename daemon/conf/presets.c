/* SPDX-License-Identifier: MIT */
#include "conf/presets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/exporters.h"
#include "conf/parse.h"
#include "ss-macro.h"

#define LANGFUSE_HOST_DEFAULT "https://cloud.langfuse.com"
#define LANGFUSE_PATH         "/api/public/otel/v1/traces"
#define PROMPTLAYER_ENDPOINT  "https://api.promptlayer.com/v1/traces"

/* A key's value, else an environment variable's; NULL when neither is set. */
static const char *key_or_env(const char *key_value, const char *var)
{
        return key_value ? key_value : ss_conf_env(var);
}

static void base64(const char *in, size_t n, char *out)
{
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t i;

        for (i = 0; i + 2 < n; i += 3, out += 4) {
                uint32_t v = (uint32_t)(uint8_t)in[i] << 16 | (uint32_t)(uint8_t)in[i + 1] << 8 |
                             (uint8_t)in[i + 2];

                out[0] = b64[v >> 18];
                out[1] = b64[(v >> 12) & 63];
                out[2] = b64[(v >> 6) & 63];
                out[3] = b64[v & 63];
        }
        if (i < n) {
                uint32_t v = (uint32_t)(uint8_t)in[i] << 16 |
                             (i + 1 < n ? (uint32_t)(uint8_t)in[i + 1] << 8 : 0);

                out[0] = b64[v >> 18];
                out[1] = b64[(v >> 12) & 63];
                out[2] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
                out[3] = '=';
                out += 4;
        }
        *out = '\0';
}

static int add_line(ss_exporter_spec *spec, const char *name, const char *value)
{
        char *line;

        if (spec->n_headers == SS_CONFIG_MAX_HEADERS)
                return ss_spec_error(spec, "too many headers");
        if (asprintf(&line, "%s: %s", name, value) < 0)
                return -ENOMEM;
        spec->headers[spec->n_headers++] = line;
        return 0;
}

/* Langfuse: OTLP/HTTP to {host}/api/public/otel/v1/traces, Basic auth of its two keys, and
 * the header of its real-time ingestion. */
static int preset_langfuse(ss_exporter_spec *spec)
{
        static const struct {
                const char *region, *host;
        } regions[] = {{"eu", LANGFUSE_HOST_DEFAULT},
                       {"us", "https://us.cloud.langfuse.com"},
                       {"jp", "https://jp.cloud.langfuse.com"},
                       {"hipaa", "https://hipaa.cloud.langfuse.com"}};
        const char *pk = key_or_env(spec->public_key, "LANGFUSE_PUBLIC_KEY");
        const char *sk = key_or_env(spec->secret_key, "LANGFUSE_SECRET_KEY");
        const char *host = key_or_env(spec->host, "LANGFUSE_HOST");
        char pair[1024], auth[1400];
        int r;

        if (spec->protocol == SS_PROTO_GRPC)
                return ss_spec_error(spec,
                                     "Langfuse takes OTLP/HTTP only: protocol = grpc refused");
        if (!pk || !sk)
                return ss_spec_error(spec, !pk ? "no public key: set public_key or "
                                                 "LANGFUSE_PUBLIC_KEY"
                                               : "no secret key: set secret_key or "
                                                 "LANGFUSE_SECRET_KEY");
        for (size_t i = 0; !host && spec->region && i < SS_ELEMENTSOF(regions); i++)
                if (strcmp(spec->region, regions[i].region) == 0)
                        host = regions[i].host;
        if (!host && spec->region) {
                char what[160];

                snprintf(what, sizeof(what), "region '%s': expected eu, us, jp or hipaa",
                         spec->region);
                return ss_spec_error(spec, what);
        }
        if (!spec->endpoint) {
                char full[1024], what[160];
                size_t n;

                host = host ? host : LANGFUSE_HOST_DEFAULT;
                n = strlen(host);
                while (n > 0 && host[n - 1] == '/') /* LANGFUSE_HOST is often written so */
                        n--;
                if ((size_t)snprintf(full, sizeof(full), "%.*s%s", (int)n, host, LANGFUSE_PATH) >=
                    sizeof(full))
                        return ss_spec_error(spec, "the Langfuse host is too long");
                snprintf(what, sizeof(what), "exporter %s (%s): Langfuse %s", spec->name,
                         spec->origin, spec->host ? "host" : "host from LANGFUSE_HOST");
                r = ss_spec_set_endpoint(spec, what, full, SS_URL_AS_GIVEN);
                if (r < 0)
                        return r;
        }
        if ((size_t)snprintf(pair, sizeof(pair), "%s:%s", pk, sk) >= sizeof(pair))
                return ss_spec_error(spec, "the Langfuse keys are too long");
        memcpy(auth, "Basic ", 6);
        base64(pair, strlen(pair), auth + 6);
        r = add_line(spec, "Authorization", auth);
        return r < 0 ? r : add_line(spec, "x-langfuse-ingestion-version", "4");
}

static int preset_promptlayer(ss_exporter_spec *spec)
{
        const char *key = key_or_env(spec->api_key, "PROMPTLAYER_API_KEY");
        int r = 0;

        if (spec->protocol == SS_PROTO_GRPC)
                return ss_spec_error(spec,
                                     "PromptLayer takes OTLP/HTTP only: protocol = grpc refused");
        if (!key)
                return ss_spec_error(spec, "no API key: set api_key or PROMPTLAYER_API_KEY");
        if (!spec->endpoint)
                r = ss_spec_set_endpoint(spec, "PromptLayer", PROMPTLAYER_ENDPOINT,
                                         SS_URL_AS_GIVEN);
        return r < 0 ? r : add_line(spec, "X-API-KEY", key);
}

/* Jaeger, Tempo and the Collector take OTLP on 4317 (gRPC) and 4318 (HTTP). */
static int preset_otlp_backend(ss_exporter_spec *spec)
{
        if (spec->endpoint)
                return 0;
        if (spec->protocol == SS_PROTO_UNSET)
                spec->protocol = SS_PROTO_GRPC;
        spec->insecure = true; /* the default is this host, in plain text */
        return ss_spec_set_endpoint(spec, "default endpoint",
                                    spec->protocol == SS_PROTO_GRPC ? "http://localhost:4317"
                                                                    : "http://localhost:4318",
                                    SS_URL_FLAG);
}

int ss_spec_apply_preset(ss_exporter_spec *spec)
{
        if (ss_spec_type_is(spec, "langfuse"))
                return preset_langfuse(spec);
        if (ss_spec_type_is(spec, "promptlayer"))
                return preset_promptlayer(spec);
        if (ss_spec_type_is(spec, "jaeger") || ss_spec_type_is(spec, "tempo") ||
            ss_spec_type_is(spec, "otel-collector"))
                return preset_otlp_backend(spec);
        return 0;
}
