/* SPDX-License-Identifier: MIT */
/*
 * Options and environment: defaults and checks of sidespan_options, the
 * size-versioned struct helpers every public struct uses, the variables of
 * sidespan_client_open_env() (SIDESPAN_SOCKET, UPSONIC_OTEL_*, OTEL_*), and
 * the resolution of options into a client's ssc_config.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "attrs.h"
#include "options.h"
#include "ss-id.h"
#include "ss-kvlist.h"
#include "ss-wire.h"

/* The first published layouts; a caller's struct may be this size or larger. */
#define OPTIONS_V1_SIZE (offsetof(sidespan_options, n_resource_attrs) + sizeof(size_t))
#define STATS_V1_SIZE   (offsetof(sidespan_stats, enabled) + sizeof(bool))

#define BUFFER_MIN    1024u
#define BUFFER_MAX    (1u << 30)
#define MAX_FRAME_MIN 256u
#define SUN_PATH_MAX  sizeof(((struct sockaddr_un *)0)->sun_path)

/* ---- size-versioned structs ----------------------------------------------------------- */

void ssc_options_init_sized(void *dst, size_t size, const void *defaults, size_t ours)
{
        if (!dst || size < sizeof(size_t))
                return;
        memcpy(dst, defaults, size < ours ? size : ours);
        if (size > ours)
                memset((uint8_t *)dst + ours, 0, size - ours);
        memcpy(dst, &size, sizeof(size));
}

void ssc_options_copy_sized(void *dst, size_t ours, const void *in)
{
        size_t size;

        if (in) {
                memcpy(&size, in, sizeof(size));
                if (size >= sizeof(size_t))
                        memcpy(dst, in, size < ours ? size : ours);
        }
        memcpy(dst, &ours, sizeof(ours));
}

void ssc_options_put_sized(void *dst, const void *src, size_t ours)
{
        size_t size;

        memcpy(&size, dst, sizeof(size));
        memcpy(dst, src, size < ours ? size : ours);
        memcpy(dst, &size, sizeof(size));
}

SIDESPAN_EXPORT void sidespan_options_init_sized(sidespan_options *opts, size_t size)
{
        const sidespan_options d = {
            .sample_rate = 1.0,
            .include_content = true,
            .flush_on_exit = true,
            .exit_flush_timeout_ms = 2000,
            .buffer_size = 4u << 20,
            .max_frame = SS_MAX_FRAME_DEFAULT,
        };

        ssc_options_init_sized(opts, size, &d, sizeof(d));
}

SIDESPAN_EXPORT void sidespan_stats_init_sized(sidespan_stats *st, size_t size)
{
        const sidespan_stats d = {0};

        ssc_options_init_sized(st, size, &d, sizeof(d));
}

int ssc_options_stats_check(const sidespan_stats *st)
{
        return st && st->size >= STATS_V1_SIZE ? 0 : -EINVAL;
}

/* ---- options -------------------------------------------------------------------------- */

int ssc_options_get(const sidespan_options *in, sidespan_options *ret)
{
        sidespan_options_init(ret);
        if (!in)
                return 0;
        if (in->size < OPTIONS_V1_SIZE)
                return -EINVAL;
        ssc_options_copy_sized(ret, sizeof(*ret), in);
        return 0;
}

int ssc_options_check(const sidespan_options *o)
{
        if (!(o->sample_rate >= 0.0 && o->sample_rate <= 1.0))
                return -EINVAL;
        if (o->buffer_size < BUFFER_MIN || o->buffer_size > BUFFER_MAX)
                return -EINVAL;
        if (o->max_frame < MAX_FRAME_MIN || o->max_frame > SS_MAX_FRAME_LIMIT)
                return -EINVAL;
        if (o->exit_flush_timeout_ms < 0)
                return -EINVAL;
        if (o->service_name && !o->service_name[0])
                return -EINVAL;
        if (o->socket_path && !o->socket_path[0])
                return -EINVAL;
        if (o->socket_path && strlen(o->socket_path) >= SUN_PATH_MAX)
                return -ENAMETOOLONG;
        if (o->n_resource_attrs && !o->resource_attrs)
                return -EINVAL;
        return 0;
}

/* ---- environment ---------------------------------------------------------------------- */

/* An environment variable, with empty counting as unset. */
static const char *env_get(const char *name)
{
        const char *v = getenv(name);

        return v && v[0] ? v : NULL;
}

static int parse_bool(const char *s, bool *ret)
{
        if (strcasecmp(s, "true") == 0)
                *ret = true;
        else if (strcasecmp(s, "false") == 0)
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

static int parse_rate(const char *s, double *ret)
{
        char *end;
        double d;

        errno = 0;
        d = strtod(s, &end);
        if (errno || end == s || *end || !(d >= 0.0 && d <= 1.0))
                return -EINVAL;
        *ret = d;
        return 0;
}

static int add_resource_item(char *key, char *value, void *ctx)
{
        ssc_options_env *env = ctx;

        env->attrs[env->n++] =
            (sidespan_attr){.key = key, .type = SIDESPAN_ATTR_STR, .value.s = value};
        return 0;
}

/* OTEL_RESOURCE_ATTRIBUTES, parsed into env: the strings live in env->buf. */
static int parse_resource(const char *s, ssc_options_env *env)
{
        size_t items = 1;

        for (const char *p = s; *p; p++)
                items += *p == ',';
        env->buf = strdup(s);
        env->attrs = calloc(items, sizeof(*env->attrs));
        if (!env->buf || !env->attrs)
                return -ENOMEM;
        return ss_kvlist_parse(env->buf, add_resource_item, env);
}

static bool has_key(const sidespan_attr *a, size_t n, const char *key)
{
        for (size_t i = 0; i < n; i++)
                if (a[i].key && strcmp(a[i].key, key) == 0)
                        return true;
        return false;
}

/* The caller's resource attributes, then the environment's for keys the caller did not
 * set (attributes given in code win, as in the OpenTelemetry SDKs). */
static int merge_resource(sidespan_options *o, ssc_options_env *env)
{
        size_t n = o->n_resource_attrs;
        sidespan_attr *m = calloc(n + env->n + 1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        if (n)
                memcpy(m, o->resource_attrs, n * sizeof(*m));
        for (size_t i = 0; i < env->n; i++)
                if (!has_key(o->resource_attrs, o->n_resource_attrs, env->attrs[i].key))
                        m[n++] = env->attrs[i];
        o->resource_attrs = m;
        o->n_resource_attrs = n;
        env->merged = m;
        return 0;
}

int ssc_options_env_enabled(bool force_enable, bool *ret_enabled)
{
        const char *v = env_get("OTEL_SDK_DISABLED");
        bool disabled = false;

        if (v && parse_bool(v, &disabled) < 0)
                return -EINVAL;
        *ret_enabled = !disabled && (force_enable || env_get("UPSONIC_OTEL_ENABLED"));
        return 0;
}

int ssc_options_apply_env(sidespan_options *o, ssc_options_env *env)
{
        const char *v;
        int r;

        v = env_get("UPSONIC_OTEL_SERVICE_NAME");
        if (!v)
                v = env_get("OTEL_SERVICE_NAME");
        if (v)
                o->service_name = v;
        v = env_get("UPSONIC_OTEL_SAMPLE_RATE");
        if (!v)
                v = env_get("OTEL_TRACES_SAMPLER_ARG");
        if (v && parse_rate(v, &o->sample_rate) < 0)
                return -EINVAL;
        v = env_get("SIDESPAN_SOCKET");
        if (v)
                o->socket_path = v;
        v = env_get("OTEL_RESOURCE_ATTRIBUTES");
        if (!v)
                return 0;
        r = parse_resource(v, env);
        if (r == 0)
                r = merge_resource(o, env);
        return r;
}

void ssc_options_env_free(ssc_options_env *env)
{
        free(env->merged);
        free(env->attrs);
        free(env->buf);
        *env = (ssc_options_env){0};
}

/* ---- resolving a client's settings ---------------------------------------------------- */

/* service.name: the option, else a service.name resource attribute, else "upsonic". */
static const char *service_name(const sidespan_options *o)
{
        if (o->service_name)
                return o->service_name;
        for (size_t i = 0; i < o->n_resource_attrs; i++) {
                const sidespan_attr *a = &o->resource_attrs[i];

                if (a->key && strcmp(a->key, SS_HELLO_SERVICE_NAME) == 0 &&
                    a->type == SIDESPAN_ATTR_STR && a->value.s && a->value.s[0])
                        return a->value.s;
        }
        return "upsonic";
}

static int socket_paths(ssc_config *cfg, const sidespan_options *o)
{
        const char *p = o->socket_path ? o->socket_path : env_get("SIDESPAN_SOCKET");
        const char *xdg = env_get("XDG_RUNTIME_DIR");

        if (p) {
                if (strlen(p) >= SUN_PATH_MAX)
                        return -ENAMETOOLONG;
                cfg->socket_path = strdup(p);
                return cfg->socket_path ? 0 : -ENOMEM;
        }
        /* A runtime directory too long for a socket path is no candidate. */
        if (xdg && strlen(xdg) + sizeof("/sidespan.sock") <= SUN_PATH_MAX &&
            asprintf(&cfg->xdg_socket, "%s/sidespan.sock", xdg) < 0) {
                cfg->xdg_socket = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* Pack the extra resource attributes, leaving out the keys HELLO sets itself. */
static int pack_resource(ssc_config *cfg, const sidespan_options *o)
{
        for (size_t i = 0; i < o->n_resource_attrs; i++) {
                const sidespan_attr *a = &o->resource_attrs[i];
                bool added;
                int r;

                if (a->key && ss_hello_key(a->key, strlen(a->key), NULL))
                        continue;
                r = ssc_attrs_pack_one(&cfg->resource, a, false, &added);
                if (r < 0)
                        return r;
                cfg->n_resource += added;
        }
        return 0;
}

int ssc_options_resolve(const sidespan_options *o, ssc_config *cfg)
{
        int r;

        cfg->include_content = o->include_content;
        cfg->flush_on_exit = o->flush_on_exit;
        cfg->exit_timeout_ms = o->exit_flush_timeout_ms;
        cfg->sample_rate = o->sample_rate;
        cfg->buffer_size = o->buffer_size;
        cfg->max_frame = o->max_frame;
        ss_buf_init(&cfg->resource, o->max_frame / 2);
        ss_sample_tracestate(cfg->trace_state, sizeof(cfg->trace_state), o->sample_rate);
        cfg->service_name = strdup(service_name(o));
        r = cfg->service_name ? socket_paths(cfg, o) : -ENOMEM;
        if (r == 0)
                r = pack_resource(cfg, o);
        return r;
}

void ssc_options_config_free(ssc_config *cfg)
{
        free(cfg->socket_path);
        free(cfg->xdg_socket);
        free(cfg->service_name);
        ss_buf_free(&cfg->resource);
        cfg->socket_path = cfg->xdg_socket = cfg->service_name = NULL;
}
