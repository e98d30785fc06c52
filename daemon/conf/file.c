/* SPDX-License-Identifier: MIT */
#include "conf/file.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "conf/exporters.h"
#include "conf/parse.h"
#include "conf/settings.h"

typedef struct file_ctx {
        ss_config *cfg;
        const char *path;
        FILE *f;
        unsigned line; /* of the line inih is handling: the reader counts them */
        unsigned errors;
        char section[128];
        ss_exporter_spec *spec; /* of the current [exporter NAME] section, or NULL */
} file_ctx;

/* inih's reader: fgets, counting lines, so that the handler knows where it is. */
static char *read_line(char *str, int num, void *stream)
{
        file_ctx *c = stream;
        char *s = fgets(str, num, c->f);

        if (s)
                c->line++;
        return s;
}

/* Print "sidespand: FILE:LINE: " and what; count it. */
static int error(file_ctx *c, const char *what)
{
        fprintf(stderr, "sidespand: %s:%u: %s\n", c->path, c->line, what);
        c->errors++;
        return 1; /* go on: one run reports every error */
}

static int daemon_key(file_ctx *c, const char *key, const char *value, const char *where)
{
        ss_config *cfg = c->cfg;
        int level;

        if (strcmp(key, "socket") == 0)
                return ss_conf_set_str(&cfg->socket_path, value);
        if (strcmp(key, "allow_uids") == 0)
                return ss_conf_ids(where, value, 0, cfg->allow_uids, SS_CONFIG_MAX_IDS,
                                   &cfg->n_allow_uids);
        if (strcmp(key, "allow_gids") == 0)
                return ss_conf_ids(where, value, 1, cfg->allow_gids, SS_CONFIG_MAX_IDS,
                                   &cfg->n_allow_gids);
        if (strcmp(key, "log_level") == 0) {
                level = ss_log_parse_level(value);
                if (level < 0)
                        return ss_conf_bad(where, value,
                                           "expected err, warning, notice, info or debug");
                cfg->log_level = level;
                return 0;
        }
        return -ENOENT;
}

static int limits_key(file_ctx *c, const char *key, const char *value, const char *where)
{
        const ss_setting *s = ss_setting_find(key);

        if (!s || strcmp(s->section, "Limits") != 0)
                return -ENOENT;
        return ss_setting_set(c->cfg, s, where, value);
}

/* A new [exporter NAME] section: its spec. NULL (with the error printed) when it cannot be. */
static ss_exporter_spec *exporter_section(file_ctx *c, const char *name)
{
        ss_config *cfg = c->cfg;
        char origin[512];

        for (size_t i = 0; i < cfg->n_specs; i++)
                if (strcmp(cfg->specs[i].name, name) == 0)
                        return &cfg->specs[i]; /* a section may come in parts */
        if (!*name) {
                error(c, "[exporter] needs a name: [exporter NAME]");
                return NULL;
        }
        if (cfg->n_specs == SS_PIPELINE_MAX_EXPORTERS) {
                error(c, "too many [exporter] sections");
                return NULL;
        }
        snprintf(origin, sizeof(origin), "%s:%u", c->path, c->line);
        ss_spec_init(&cfg->specs[cfg->n_specs], name, origin);
        return &cfg->specs[cfg->n_specs++];
}

/* The section a key is in: set up its state when it changes. */
static bool enter(file_ctx *c, const char *section)
{
        if (strcmp(c->section, section) == 0)
                return c->spec || strncmp(section, "exporter", 8) != 0;
        snprintf(c->section, sizeof(c->section), "%s", section);
        c->spec = NULL;
        if (strncmp(section, "exporter ", 9) == 0 || strcmp(section, "exporter") == 0) {
                c->spec = exporter_section(c, section + (section[8] ? 9 : 8));
                return c->spec != NULL;
        }
        return true;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
        file_ctx *c = user;
        char where[512], what[512];
        int r;

        if (!enter(c, section))
                return 1;
        snprintf(where, sizeof(where), "%s:%u: %s", c->path, c->line, key);
        if (c->spec)
                r = ss_spec_set(c->spec, key, value, where);
        else if (strcmp(section, "daemon") == 0)
                r = daemon_key(c, key, value, where);
        else if (strcmp(section, "limits") == 0)
                r = limits_key(c, key, value, where);
        else {
                snprintf(what, sizeof(what),
                         "unknown section [%s] (expected daemon, limits or exporter NAME)",
                         section);
                return error(c, what);
        }
        if (r == -ENOENT) {
                snprintf(what, sizeof(what), "unknown key '%s' in [%s]", key, section);
                return error(c, what);
        }
        if (r == -ENOMEM)
                return 0; /* stops inih; the caller reports it */
        if (r < 0)
                c->errors++;
        return 1;
}

int ss_conf_file_load(ss_config *cfg, const char *path)
{
        file_ctx c = {.cfg = cfg, .path = path};
        int r;

        c.f = fopen(path, "re");
        if (!c.f) {
                fprintf(stderr, "sidespand: cannot read the configuration file %s: %s\n", path,
                        strerror(errno));
                return -EINVAL;
        }
        r = ini_parse_stream(read_line, &c, on_key, &c);
        fclose(c.f);
        /* inih reports the first line it could not parse (no '=' nor ']') as a positive line
         * number; the handler's own errors never reach it (it always answers 1). */
        if (r > 0) {
                fprintf(stderr, "sidespand: %s:%d: not a [section], key = value or comment\n", path,
                        r);
                c.errors++;
        }
        if (r < 0) {
                fprintf(stderr, "sidespand: cannot read the configuration file %s\n", path);
                return -EINVAL;
        }
        return c.errors ? -EINVAL : 0;
}
