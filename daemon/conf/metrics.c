/* SPDX-License-Identifier: MIT */
#include "conf/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/exporters.h"
#include "conf/parse.h"
#include "metrics/registry.h"
#include "ss-macro.h"

#define INTERVAL_MIN_MS 1000u
#define INTERVAL_MAX_MS 86400000u
#define SERIES_MAX      1000000u
#define PROM_DEFAULT    "127.0.0.1:9464" /* the OpenTelemetry SDKs' */
#define ORIGIN          "[metrics]"

/* Keys of [exporter] that mean nothing for metrics. */
static const char *const refused[] = {
    "path",   "dead_letter", "include_content", "public_key",      "secret_key",   "host",
    "region", "api_key",     "redact_secrets",  "redact_personal", "redact_custom"};

void ss_conf_metrics_init(ss_config *cfg)
{
        ss_metrics_config_defaults(&cfg->metrics);
        ss_spec_init(&cfg->metrics_spec, SS_METRICS_NAME, ORIGIN);
        cfg->metrics_spec.signal = "metrics";
}

void ss_conf_metrics_free(ss_config *cfg)
{
        ss_spec_free(&cfg->metrics_spec);
        free(cfg->prometheus_listen);
}

/* ---- values ----------------------------------------------------------------------------- */

static int temporality(const char *what, const char *value, int *ret)
{
        if (!strcasecmp(value, "cumulative"))
                *ret = SS_TEMPORALITY_CUMULATIVE;
        else if (!strcasecmp(value, "delta") || !strcasecmp(value, "lowmemory"))
                *ret = SS_TEMPORALITY_DELTA;
        else
                return ss_conf_bad(what, value, "expected cumulative, delta or lowmemory");
        return 0;
}

static int interval(const char *what, const char *value, uint64_t *ret)
{
        return ss_conf_u64(what, value, INTERVAL_MIN_MS, INTERVAL_MAX_MS, ret);
}

/* HOST:PORT with HOST an IPv4 address or a [bracketed] IPv6 one, PORT 0 to 65535. */
static int listen_addr(const char *what, const char *value, char **ret)
{
        const char *colon = strrchr(value, ':');
        char host[64];
        uint8_t addr[16];
        uint64_t port;
        size_t n = colon ? (size_t)(colon - value) : 0;
        bool v6 = n >= 2 && value[0] == '[' && value[n - 1] == ']';

        if (!colon || n == 0 || n - (v6 ? 2 : 0) >= sizeof(host))
                goto bad;
        memcpy(host, value + v6, n - (v6 ? 2 : 0));
        host[n - (v6 ? 2 : 0)] = '\0';
        if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1 || !colon[1] ||
            ss_conf_u64(what, colon + 1, 0, 65535, &port) < 0)
                goto bad;
        return ss_conf_set_str(ret, value);
bad:
        return ss_conf_bad(what, value,
                           "expected HOST:PORT, HOST an IPv4 address or a [bracketed] IPv6 one, "
                           "e.g. 127.0.0.1:9464");
}

static int cardinality(ss_config *cfg, const char *what, const char *value)
{
        uint64_t n;
        int r = ss_conf_u64(what, value, 1, SERIES_MAX, &n);

        if (r == 0)
                cfg->metrics.max_series = (uint32_t)n;
        return r;
}

/* ---- the file --------------------------------------------------------------------------- */

int ss_conf_metrics_key(ss_config *cfg, const char *key, const char *value, const char *where)
{
        ss_metrics_config *m = &cfg->metrics;

        if (!strcmp(key, "enabled"))
                return ss_conf_bool(where, value, &m->enabled);
        if (!strcmp(key, "export_interval"))
                return interval(where, value, &m->interval_ms);
        if (!strcmp(key, "temporality"))
                return temporality(where, value, &m->temporality);
        if (!strcmp(key, "cardinality_limit"))
                return cardinality(cfg, where, value);
        if (!strcmp(key, "prometheus_listen"))
                return listen_addr(where, value, &cfg->prometheus_listen);
        if (!strcmp(key, "type") && strcmp(value, "otlp") && strcmp(value, "otel-collector"))
                return ss_conf_bad(where, value,
                                   "expected otlp or otel-collector: metrics go to an OTLP "
                                   "endpoint");
        for (size_t i = 0; i < SS_ELEMENTSOF(refused); i++)
                if (!strcmp(key, refused[i])) {
                        fprintf(stderr,
                                "sidespand: %s: not a [metrics] key (it is for trace "
                                "exporters)\n",
                                where);
                        return -EINVAL;
                }
        return ss_spec_set(&cfg->metrics_spec, key, value, where);
}

/* ---- the environment -------------------------------------------------------------------- */

/* OTEL_METRICS_EXPORTER: a comma list of otlp, prometheus, none; unset means otlp, as in
 * the SDKs. */
static int exporters_env(ss_config *cfg, bool *otlp)
{
        const char *v = ss_conf_env("OTEL_METRICS_EXPORTER"), *host, *port;
        bool prom = false;
        char buf[128];
        int r;

        *otlp = !v;
        if (!v)
                return 0;
        for (const char *p = v;; p++) {
                size_t n = strcspn(p, ","), skip = strspn(p, " ");
                const char *s = p + (skip < n ? skip : n);
                size_t k = n - (size_t)(s - p);

                while (k > 0 && s[k - 1] == ' ')
                        k--;
                if (k == 4 && !strncmp(s, "otlp", 4))
                        *otlp = true;
                else if (k == 10 && !strncmp(s, "prometheus", 10))
                        prom = true;
                else if (!(k == 4 && !strncmp(s, "none", 4)))
                        return ss_conf_bad("OTEL_METRICS_EXPORTER", v,
                                           "expected a comma list of otlp, prometheus, none");
                p += n;
                if (!*p)
                        break;
        }
        if (!prom || cfg->prometheus_listen)
                return 0;
        host = ss_conf_env("OTEL_EXPORTER_PROMETHEUS_HOST");
        port = ss_conf_env("OTEL_EXPORTER_PROMETHEUS_PORT");
        if (!host && !port)
                return listen_addr("OTEL_METRICS_EXPORTER", PROM_DEFAULT, &cfg->prometheus_listen);
        snprintf(buf, sizeof(buf), "%s%s%s:%s", host && strchr(host, ':') ? "[" : "",
                 host ? host : "127.0.0.1", host && strchr(host, ':') ? "]" : "",
                 port ? port : "9464");
        r = listen_addr("OTEL_EXPORTER_PROMETHEUS_HOST/_PORT", buf, &cfg->prometheus_listen);
        return r;
}

int ss_conf_metrics_env(ss_config *cfg)
{
        ss_exporter_spec *spec = &cfg->metrics_spec;
        const char *name, *v;
        bool otlp;
        int r;

        if ((v = ss_conf_env("SIDESPAN_METRICS")) &&
            (r = ss_conf_bool("SIDESPAN_METRICS", v, &cfg->metrics.enabled)) < 0)
                return r;
        if ((r = exporters_env(cfg, &otlp)) < 0)
                return r;
        /* An endpoint from the environment or the flags may be plain-text gRPC, as the
         * SDKs read it (a file's says insecure = true). */
        if ((v = ss_conf_env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")))
                r = ss_spec_set_endpoint(spec, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", v,
                                         SS_URL_AS_GIVEN);
        else if (otlp && (v = ss_conf_env("OTEL_EXPORTER_OTLP_ENDPOINT")))
                r = ss_spec_set_endpoint(spec, "OTEL_EXPORTER_OTLP_ENDPOINT", v, SS_URL_BASE);
        if (v)
                spec->insecure = true;
        if (r == 0)
                r = ss_spec_load_otlp_env(spec, "METRICS");
        if (r == 0 && (v = ss_conf_otlp_env("METRICS", "TIMEOUT", &name)))
                r = ss_spec_set(spec, "timeout", v, name);
        if (r == 0 && (v = ss_conf_env("OTEL_METRIC_EXPORT_INTERVAL")))
                r = interval("OTEL_METRIC_EXPORT_INTERVAL", v, &cfg->metrics.interval_ms);
        if (r == 0 && (v = ss_conf_env("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE")))
                r = temporality("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", v,
                                &cfg->metrics.temporality);
        return r;
}

/* ---- flags ------------------------------------------------------------------------------ */

int ss_conf_metrics_flag(ss_config *cfg, const char *name, const char *value)
{
        char what[64];

        snprintf(what, sizeof(what), "--%s", name);
        if (!strcmp(name, "no-metrics")) {
                cfg->metrics.enabled = false;
                return 0;
        }
        if (!strcmp(name, "metrics-endpoint")) {
                cfg->metrics_spec.insecure = true;
                return ss_spec_set_endpoint(&cfg->metrics_spec, what, value, SS_URL_FLAG);
        }
        if (!strcmp(name, "metrics-protocol"))
                return ss_conf_protocol(what, value, &cfg->metrics_spec.protocol);
        if (!strcmp(name, "metrics-interval"))
                return interval(what, value, &cfg->metrics.interval_ms);
        if (!strcmp(name, "metrics-temporality"))
                return temporality(what, value, &cfg->metrics.temporality);
        if (!strcmp(name, "prometheus-listen"))
                return listen_addr(what, value, &cfg->prometheus_listen);
        return -EINVAL;
}

/* ---- the result ------------------------------------------------------------------------- */

int ss_conf_metrics_finish(ss_config *cfg)
{
        ss_metrics_config *m = &cfg->metrics;
        ss_exporter_spec *spec = &cfg->metrics_spec;
        int r;

        m->prometheus_listen = cfg->prometheus_listen;
        m->export_otlp = false;
        if (!spec->endpoint)
                return 0;
        r = ss_spec_resolve(spec, &m->exporter);
        if (r < 0)
                return r;
        m->exporter.name = SS_METRICS_NAME;
        m->exporter.http.dead_letter = m->exporter.grpc.dead_letter = NULL;
        m->export_otlp = true;
        return 0;
}

void ss_conf_metrics_print(FILE *out, const ss_config *cfg)
{
        const ss_metrics_config *m = &cfg->metrics;

        fprintf(out, "\n[metrics]\nenabled = %s\nexport_interval = %llu\ntemporality = %s\n",
                m->enabled ? "true" : "false", (unsigned long long)m->interval_ms,
                m->temporality == SS_TEMPORALITY_DELTA ? "delta" : "cumulative");
        fprintf(out, "cardinality_limit = %u\n",
                m->max_series ? m->max_series : SS_METRICS_MAX_SERIES_DEFAULT);
        if (cfg->prometheus_listen)
                fprintf(out, "prometheus_listen = %s\n", cfg->prometheus_listen);
        if (m->export_otlp)
                ss_spec_print_keys(out, &cfg->metrics_spec, &m->exporter);
}
