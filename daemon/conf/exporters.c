/* SPDX-License-Identifier: MIT */
#include "conf/exporters.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/parse.h"
#include "conf/presets.h"
#include "conf/policy.h"
#include "conf/settings.h"
#include "export/dead-letter.h"
#include "export/tls.h"
#include "ss-kvlist.h"
#include "ss-macro.h"

#define OTLP_GRPC_PORT 4317u
#define OTLP_HTTP_PORT 4318u

static const char *const types[] = {"otlp",     "jaeger",      "tempo", "otel-collector",
                                    "langfuse", "promptlayer", "file",  "console"};

void ss_spec_init(ss_exporter_spec *spec, const char *name, const char *origin)
{
        *spec = (ss_exporter_spec){
            .endpoint_form = SS_URL_FLAG, .include_content = -1, .redact = {-1, -1, -1}};
        spec->name = name ? strdup(name) : NULL;
        spec->origin = origin ? strdup(origin) : NULL;
        ss_http_config_defaults(&spec->http);
}

void ss_spec_free(ss_exporter_spec *spec)
{
        char **owned[] = {&spec->name,       &spec->origin,     &spec->type,       &spec->endpoint,
                          &spec->ca_file,    &spec->cert_file,  &spec->key_file,   &spec->path,
                          &spec->public_key, &spec->secret_key, &spec->host,       &spec->region,
                          &spec->api_key,    &spec->spool_dir,  &spec->dead_letter};

        for (size_t i = 0; i < SS_ELEMENTSOF(owned); i++)
                free(*owned[i]);
        for (size_t i = 0; i < spec->n_headers; i++)
                free(spec->headers[i]);
        *spec = (ss_exporter_spec){0};
}

/* ---- values ----------------------------------------------------------------------------- */

int ss_conf_protocol(const char *what, const char *value, int *ret)
{
        if (strcmp(value, "grpc") == 0)
                *ret = SS_PROTO_GRPC;
        else if (strcmp(value, "http/protobuf") == 0)
                *ret = SS_PROTO_HTTP_PROTOBUF;
        else if (strcmp(value, "http/json") == 0)
                *ret = SS_PROTO_HTTP_JSON;
        else
                return ss_conf_bad(what, value, "expected grpc, http/protobuf or http/json");
        return 0;
}

int ss_conf_compression(const char *what, const char *value, bool *ret)
{
        if (strcmp(value, "gzip") == 0)
                *ret = true;
        else if (strcmp(value, "none") == 0)
                *ret = false;
        else
                return ss_conf_bad(what, value, "expected gzip or none");
        return 0;
}

int ss_conf_spool_fsync(const char *what, const char *value, ss_spool_fsync *ret)
{
        if (strcmp(value, "always") == 0)
                *ret = SS_SPOOL_FSYNC_ALWAYS;
        else if (strcmp(value, "interval") == 0)
                *ret = SS_SPOOL_FSYNC_INTERVAL;
        else if (strcmp(value, "never") == 0)
                *ret = SS_SPOOL_FSYNC_NEVER;
        else
                return ss_conf_bad(what, value, "expected always, interval or never");
        return 0;
}

int ss_conf_multiplier(const char *what, const char *value, double *ret)
{
        char *end;
        double v;

        errno = 0;
        v = strtod(value, &end);
        if (errno || end == value || *end || !(v >= 1.0 && v <= 10.0))
                return ss_conf_bad(what, value, "expected a number from 1 to 10");
        *ret = v;
        return 0;
}

int ss_conf_bool(const char *what, const char *value, bool *ret)
{
        static const char *const yes[] = {"true", "yes", "on", "1"};
        static const char *const no[] = {"false", "no", "off", "0"};

        for (size_t i = 0; i < SS_ELEMENTSOF(yes); i++) {
                if (strcasecmp(value, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(value, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return ss_conf_bad(what, value, "expected true or false");
}

typedef struct header_ctx {
        ss_exporter_spec *spec;
        const char *what;
        const char *value;
        bool reported; /* add_header() printed its own error */
} header_ctx;

/* One decoded pair as a "k: v" line; CR, LF and ':' can't smuggle in another header. */
static int add_header(char *key, char *value, void *ctx)
{
        header_ctx *h = ctx;
        char *line;

        h->reported = true;
        if (strpbrk(key, "\r\n: \t") || strpbrk(value, "\r\n"))
                return ss_conf_bad(h->what, h->value,
                                   "a header name or value has a forbidden character");
        if (h->spec->n_headers == SS_CONFIG_MAX_HEADERS)
                return ss_conf_bad(h->what, h->value, "too many headers");
        h->reported = false;
        if (asprintf(&line, "%s: %s", key, value) < 0)
                return -ENOMEM;
        h->spec->headers[h->spec->n_headers++] = line;
        return 0;
}

int ss_config_parse_headers(ss_exporter_spec *spec, const char *what, const char *value)
{
        header_ctx h = {.spec = spec, .what = what, .value = value};
        char *list = strdup(value);
        int r;

        if (!list)
                return -ENOMEM;
        r = ss_kvlist_parse(list, add_header, &h);
        free(list);
        if (r == -EINVAL && !h.reported)
                r = ss_conf_bad(what, value,
                                "expected key=value pairs, percent-encoded, separated by commas");
        return r;
}

/* ---- URLs ------------------------------------------------------------------------------- */

typedef struct url {
        bool https;
        const char *host; /* into the URL: host[:port], up to path */
        size_t host_len;
        unsigned port;    /* 0: none given */
        const char *path; /* "" when none */
} url;

static int url_split(const char *s, url *ret)
{
        const char *p, *colon;

        *ret = (url){0};
        if (strncmp(s, "http://", 7) == 0)
                p = s + 7;
        else if (strncmp(s, "https://", 8) == 0) {
                p = s + 8;
                ret->https = true;
        } else
                return -EINVAL;
        ret->host = p;
        ret->host_len = strcspn(p, "/");
        ret->path = p + ret->host_len;
        if (ret->host_len == 0)
                return -EINVAL;
        colon = memchr(p, ':', ret->host_len);
        if (colon && p[ret->host_len - 1] != ']') {
                char *end;
                unsigned long port = strtoul(colon + 1, &end, 10);

                if (end != p + ret->host_len || port == 0 || port > 65535)
                        return -EINVAL;
                ret->port = (unsigned)port;
        }
        return 0;
}

int ss_spec_set_endpoint(ss_exporter_spec *spec, const char *what, const char *value, int form)
{
        url u;

        if (url_split(value, &u) < 0)
                return ss_conf_bad(what, value,
                                   "expected an http:// or https:// URL with a host, and a port "
                                   "from 1 to 65535 if any");
        spec->endpoint_form = form;
        return ss_conf_set_str(&spec->endpoint, value);
}

/* Whether a URL's path is more than "/": "host:4318/" has none. */
static bool has_path(const url *u)
{
        return u->path[strspn(u->path, "/")] != '\0';
}

/* ---- keys of a file's section --------------------------------------------------------- */

static char **string_key(ss_exporter_spec *spec, const char *key)
{
        static const struct {
                const char *key;
                size_t offset;
        } keys[] = {
            {"ca_file", offsetof(ss_exporter_spec, ca_file)},
            {"cert_file", offsetof(ss_exporter_spec, cert_file)},
            {"key_file", offsetof(ss_exporter_spec, key_file)},
            {"path", offsetof(ss_exporter_spec, path)},
            {"public_key", offsetof(ss_exporter_spec, public_key)},
            {"secret_key", offsetof(ss_exporter_spec, secret_key)},
            {"host", offsetof(ss_exporter_spec, host)},
            {"region", offsetof(ss_exporter_spec, region)},
            {"api_key", offsetof(ss_exporter_spec, api_key)},
            {"spool_dir", offsetof(ss_exporter_spec, spool_dir)},
            {"dead_letter", offsetof(ss_exporter_spec, dead_letter)},
        };

        for (size_t i = 0; i < SS_ELEMENTSOF(keys); i++)
                if (strcmp(keys[i].key, key) == 0)
                        return (char **)((char *)spec + keys[i].offset);
        return NULL;
}

static int set_type(ss_exporter_spec *spec, const char *where, const char *value)
{
        for (size_t i = 0; i < SS_ELEMENTSOF(types); i++)
                if (strcmp(types[i], value) == 0)
                        return ss_conf_set_str(&spec->type, value);
        return ss_conf_bad(where, value,
                           "expected otlp, jaeger, tempo, otel-collector, langfuse, promptlayer, "
                           "file or console");
}

int ss_spec_set(ss_exporter_spec *spec, const char *key, const char *value, const char *where)
{
        const ss_setting *num =
            ss_setting_find_in(ss_exporter_settings, ss_n_exporter_settings, key);
        char **str = string_key(spec, key);

        if (num)
                return ss_setting_set(&spec->http, num, where, value);
        if (str)
                return *value ? ss_conf_set_str(str, value)
                              : ss_conf_bad(where, value, "expected a value");
        if (strcmp(key, "type") == 0)
                return set_type(spec, where, value);
        if (strcmp(key, "endpoint") == 0)
                return ss_spec_set_endpoint(spec, where, value, SS_URL_FLAG);
        if (strcmp(key, "protocol") == 0)
                return ss_conf_protocol(where, value, &spec->protocol);
        if (strcmp(key, "headers") == 0)
                return ss_config_parse_headers(spec, where, value);
        if (strcmp(key, "compression") == 0)
                return ss_conf_compression(where, value, &spec->http.gzip);
        if (strcmp(key, "insecure") == 0)
                return ss_conf_bool(where, value, &spec->insecure);
        if (strcmp(key, "spool_fsync") == 0)
                return ss_conf_spool_fsync(where, value, &spec->http.spool.fsync);
        if (strcmp(key, "retry_multiplier") == 0)
                return ss_conf_multiplier(where, value, &spec->http.retry.multiplier);
        return ss_spec_policy_key(spec, key, value, where);
}

/* ---- resolving -------------------------------------------------------------------------- */

bool ss_spec_type_is(const ss_exporter_spec *spec, const char *type)
{
        return strcmp(spec->type ? spec->type : "otlp", type) == 0;
}

int ss_spec_error(const ss_exporter_spec *spec, const char *what)
{
        fprintf(stderr, "sidespand: exporter %s (%s): %s\n", spec->name, spec->origin, what);
        return -EINVAL;
}

/* An endpoint on 4317 is OTLP/gRPC (Jaeger's, Tempo's, the Collector's port); else HTTP. */
static const char *choose_protocol(ss_exporter_spec *spec, const url *u)
{
        if (spec->protocol != SS_PROTO_UNSET)
                return NULL;
        if (u->port == OTLP_GRPC_PORT) {
                spec->protocol = SS_PROTO_GRPC;
                return "gRPC chosen for port 4317 (set the protocol to override)";
        }
        spec->protocol = SS_PROTO_HTTP_PROTOBUF;
        return NULL;
}

/* The HTTP URL of the spec's signal from what was given: a base gets v1/traces (or
 * v1/metrics), a URL without a path /v1/traces, a port added when there is none. */
static int http_url(ss_exporter_spec *spec, const url *u)
{
        const char *slash = spec->endpoint[strlen(spec->endpoint) - 1] == '/' ? "" : "/";
        char *full;
        int r;

        if (spec->endpoint_form == SS_URL_BASE ||
            (spec->endpoint_form == SS_URL_FLAG && !has_path(u)))
                r = asprintf(&full, "%s%sv1/%s", spec->endpoint, slash,
                             spec->signal ? spec->signal : "traces");
        else
                r = (full = strdup(spec->endpoint)) ? 0 : -1;
        if (r < 0)
                return -ENOMEM;
        free(spec->endpoint);
        spec->endpoint = full;
        return 0;
}

/* gRPC takes scheme, host and port: what follows them (an environment base's path) goes. */
static int grpc_target(ss_exporter_spec *spec, const url *u)
{
        char *t;

        if (asprintf(&t, "%s://%.*s", u->https ? "https" : "http", (int)u->host_len, u->host) < 0)
                return -ENOMEM;
        free(spec->endpoint);
        spec->endpoint = t;
        return 0;
}

/* The gRPC exporter's configuration from the spec's numbers and strings. */
static void grpc_config(const ss_exporter_spec *spec, ss_grpc_config *g)
{
        const ss_http_config *h = &spec->http;

        *g = (ss_grpc_config){
            .endpoint = spec->endpoint,
            .headers = (const char *const *)spec->headers,
            .n_headers = spec->n_headers,
            .timeout_ms = h->timeout_ms,
            .gzip = h->gzip,
            .max_batch = h->max_batch,
            .max_batch_bytes = h->max_batch_bytes,
            .batch_delay_ms = h->batch_delay_ms,
            .max_queue_bytes = h->max_queue_bytes,
            .max_inflight = h->max_inflight,
            .retry = h->retry,
            .spool = h->spool,
            .dead_letter = spec->dead_letter,
            .ca_file = spec->ca_file,
            .cert_file = spec->cert_file,
            .key_file = spec->key_file,
            .insecure = spec->insecure,
        };
}

static int resolve_otlp(ss_exporter_spec *spec, ss_exporter_def *def)
{
        url u;
        int r = ss_spec_apply_preset(spec);

        if (r < 0)
                return r;
        if (!spec->endpoint)
                return ss_spec_error(spec, "no endpoint (a file's exporter needs endpoint =, the "
                                           "flags' one needs --endpoint or "
                                           "OTEL_EXPORTER_OTLP_ENDPOINT)");
        (void)url_split(spec->endpoint, &u); /* checked when it was set */
        def->why = choose_protocol(spec, &u);
        if (spec->protocol == SS_PROTO_GRPC) {
                if (has_path(&u) && spec->endpoint_form != SS_URL_BASE)
                        return ss_spec_error(spec, "a gRPC endpoint is scheme, host and port: "
                                                   "no path");
                if (!u.https && !spec->insecure)
                        return ss_spec_error(spec, "http:// for gRPC sends in plain text: set "
                                                   "insecure = true to allow it, or use https://");
                def->kind = SS_EXPORT_OTLP_GRPC;
                return grpc_target(spec, &u);
        }
        def->kind = SS_EXPORT_OTLP_HTTP;
        def->http.json = spec->protocol == SS_PROTO_HTTP_JSON;
        return http_url(spec, &u);
}

int ss_spec_resolve(ss_exporter_spec *spec, ss_exporter_def *def)
{
        int r = 0;

        *def = (ss_exporter_def){.name = spec->name, .http = spec->http};
        if ((ss_spec_type_is(spec, "console") || ss_spec_type_is(spec, "file")) &&
            spec->dead_letter)
                return ss_spec_error(spec, "dead_letter is for the network exporters: a console "
                                           "or file exporter gives nothing up");
        if (ss_spec_type_is(spec, "console")) {
                def->kind = SS_EXPORT_CONSOLE;
        } else if (ss_spec_type_is(spec, "file")) {
                def->kind = SS_EXPORT_FILE;
                if (!spec->path)
                        r = ss_conf_set_str(&spec->path, "sidespan-traces.jsonl");
        } else {
                r = resolve_otlp(spec, def);
        }
        if (r < 0)
                return r;
        /* The strings, linked in the spec too: what it says is what was built. */
        spec->http.endpoint = spec->endpoint;
        spec->http.headers = (const char *const *)spec->headers;
        spec->http.n_headers = spec->n_headers;
        spec->http.ca_file = spec->ca_file;
        spec->http.cert_file = spec->cert_file;
        spec->http.key_file = spec->key_file;
        spec->http.dead_letter = spec->dead_letter;
        spec->http.json = def->http.json;
        def->http = spec->http;
        def->file_path = spec->path;
        if (def->kind == SS_EXPORT_OTLP_GRPC)
                grpc_config(spec, &def->grpc);
        if (def->kind == SS_EXPORT_OTLP_HTTP || def->kind == SS_EXPORT_OTLP_GRPC) {
                /* Here too, so that --check-config refuses what the start would. */
                ss_tls_files files = {spec->ca_file, spec->cert_file, spec->key_file};

                if (ss_tls_check(spec->name, &files) < 0)
                        return ss_spec_error(spec, "its TLS files cannot be used");
                if (spec->dead_letter && ss_dead_letter_check(spec->dead_letter, spec->name) < 0)
                        return ss_spec_error(spec, "its dead_letter file cannot be written");
        }
        return 0;
}

/* ---- printing --------------------------------------------------------------------------- */

/* Whether a header's value is a secret: authorization, x-api-key, or a name with key, token
 * or secret in it. */
static bool secret_header(const char *line)
{
        size_t n = strcspn(line, ":");
        char name[128];

        if (n >= sizeof(name))
                return true;
        for (size_t i = 0; i < n; i++)
                name[i] = (char)(line[i] | 0x20);
        name[n] = '\0';
        return strcmp(name, "authorization") == 0 || strstr(name, "key") || strstr(name, "token") ||
               strstr(name, "secret");
}

static const char *protocol_name(int p)
{
        return p == SS_PROTO_GRPC            ? "grpc"
               : p == SS_PROTO_HTTP_JSON     ? "http/json"
               : p == SS_PROTO_HTTP_PROTOBUF ? "http/protobuf"
                                             : "";
}

static void print_str(FILE *out, const char *key, const char *value)
{
        if (value)
                fprintf(out, "%s = %s\n", key, value);
}

void ss_spec_print(FILE *out, const ss_exporter_spec *spec, const ss_exporter_def *def)
{
        fprintf(out, "\n[exporter %s]\n# from %s\n", def->name, spec->origin);
        ss_spec_print_keys(out, spec, def);
}

void ss_spec_print_keys(FILE *out, const ss_exporter_spec *spec, const ss_exporter_def *def)
{
        print_str(out, "type", spec->type ? spec->type : "otlp");
        if (def->kind & (SS_EXPORT_OTLP_HTTP | SS_EXPORT_OTLP_GRPC)) {
                print_str(out, "protocol", protocol_name(spec->protocol));
                print_str(out, "endpoint", spec->endpoint);
                fputs("headers = ", out);
                for (size_t i = 0; i < spec->n_headers; i++) {
                        const char *h = spec->headers[i];
                        size_t n = strcspn(h, ":");

                        fprintf(out, "%s%.*s=%s", i ? "," : "", (int)n, h,
                                secret_header(h) ? "****" : h + n + 1 + strspn(h + n + 1, " "));
                }
                fprintf(out, "\ncompression = %s\ninsecure = %s\n",
                        spec->http.gzip ? "gzip" : "none", spec->insecure ? "true" : "false");
                print_str(out, "ca_file", spec->ca_file);
                print_str(out, "cert_file", spec->cert_file);
                print_str(out, "key_file", spec->key_file);
        }
        print_str(out, "path", spec->path);
        if (def->kind & (SS_EXPORT_OTLP_HTTP | SS_EXPORT_OTLP_GRPC)) {
                static const char *const fsyncs[] = {"interval", "always", "never"};

                print_str(out, "spool_dir", spec->spool_dir);
                print_str(out, "dead_letter", spec->dead_letter);
                fprintf(out, "spool_fsync = %s\nretry_multiplier = %g\n",
                        fsyncs[spec->http.spool.fsync],
                        spec->http.retry.multiplier >= 1.0 ? spec->http.retry.multiplier
                                                           : SS_RETRY_MULTIPLIER_DEFAULT);
        }
        for (size_t i = 0; i < ss_n_exporter_settings; i++)
                fprintf(out, "%s = %llu\n", ss_exporter_settings[i].name,
                        (unsigned long long)ss_setting_get(&spec->http, &ss_exporter_settings[i]));
}

/* ---- the OpenTelemetry environment ------------------------------------------------------ */

const char *ss_conf_otlp_env(const char *signal, const char *suffix, const char **ret_name)
{
        static char specific[96], plain[96];

        snprintf(specific, sizeof(specific), "OTEL_EXPORTER_OTLP_%s_%s", signal, suffix);
        snprintf(plain, sizeof(plain), "OTEL_EXPORTER_OTLP_%s", suffix);
        return ss_conf_env2(specific, plain, ret_name);
}

int ss_spec_load_otlp_env(ss_exporter_spec *spec, const char *signal)
{
        static const struct {
                const char *suffix;
                size_t offset;
        } files[] = {{"CERTIFICATE", offsetof(ss_exporter_spec, ca_file)},
                     {"CLIENT_CERTIFICATE", offsetof(ss_exporter_spec, cert_file)},
                     {"CLIENT_KEY", offsetof(ss_exporter_spec, key_file)}};
        const char *name, *v;
        int r = 0;

        if ((v = ss_conf_otlp_env(signal, "PROTOCOL", &name)))
                r = ss_conf_protocol(name, v, &spec->protocol);
        for (size_t i = 0; i < SS_ELEMENTSOF(files) && r == 0; i++)
                if ((v = ss_conf_otlp_env(signal, files[i].suffix, &name)))
                        r = ss_conf_set_str((char **)((char *)spec + files[i].offset), v);
        if (r == 0 && (v = ss_conf_otlp_env(signal, "INSECURE", &name)))
                r = ss_conf_bool(name, v, &spec->insecure);
        if (r == 0 && (v = ss_conf_otlp_env(signal, "HEADERS", &name)))
                r = ss_config_parse_headers(spec, name, v);
        if (r == 0 && (v = ss_conf_otlp_env(signal, "COMPRESSION", &name)))
                r = ss_conf_compression(name, v, &spec->http.gzip);
        return r;
}
