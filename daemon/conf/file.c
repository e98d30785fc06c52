/* SPDX-License-Identifier: MIT */
#include "conf/file.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "conf/exporters.h"
#include "conf/metrics.h"
#include "conf/parse.h"
#include "conf/policy.h"
#include "conf/settings.h"

/* A configuration file is a few KiB; a bound keeps a wrong path (a log, a device) harmless. */
#define FILE_MAX ((size_t)1 << 20)

typedef struct file_ctx {
        ss_config *cfg;
        const char *path;
        unsigned line;         /* being read */
        unsigned section_line; /* of the current [section] */
        unsigned errors;
        char section[128];
        ss_exporter_spec *spec; /* of the current [exporter NAME] section, or NULL */
        bool entered;           /* the current section's state is set up */
} file_ctx;

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
                return ss_conf_path(where, value, &cfg->socket_path);
        if (strcmp(key, "state_dir") == 0)
                return ss_conf_path(where, value, &cfg->state_dir);
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
        snprintf(origin, sizeof(origin), "%s:%u", c->path, c->section_line);
        ss_spec_init(&cfg->specs[cfg->n_specs], name, origin);
        return &cfg->specs[cfg->n_specs++];
}

/* The section of the first key after a [section] line: its state, set up once. */
static bool enter(file_ctx *c, const char *section)
{
        if (c->entered)
                return c->spec || strncmp(section, "exporter", 8) != 0;
        c->entered = true;
        c->spec = NULL;
        if (strncmp(section, "exporter ", 9) == 0 || strcmp(section, "exporter") == 0) {
                c->spec = exporter_section(c, section + (section[8] ? 9 : 8));
                return c->spec != NULL;
        }
        return true;
}

static int on_key(file_ctx *c, const char *section, const char *key, const char *value)
{
        char where[512], what[512];
        bool known;
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
        else if (strcmp(section, "metrics") == 0)
                r = ss_conf_metrics_key(c->cfg, key, value, where);
        else if ((r = ss_conf_policy_key(c->cfg, section, key, value, where, &known)) == -ENOENT &&
                 !known) {
                snprintf(what, sizeof(what),
                         "unknown section [%s] (expected daemon, limits, sampling, content, "
                         "redaction, pricing, metrics or exporter NAME)",
                         section);
                return error(c, what);
        }
        if (r == -ENOENT) {
                snprintf(what, sizeof(what), "unknown key '%s' in [%s]", key, section);
                return error(c, what);
        }
        if (r == -ENOMEM)
                return -ENOMEM;
        if (r < 0)
                c->errors++;
        return 1;
}

/* ---- the INI syntax --------------------------------------------------------------------- */

static char *trim(char *s)
{
        char *end;

        while (isspace((unsigned char)*s))
                s++;
        end = s + strlen(s);
        while (end > s && isspace((unsigned char)end[-1]))
                *--end = '\0';
        return s;
}

/* One line: blank, a comment (; or #), [section], or key = value (':' too). */
static int parse_line(file_ctx *c, char *line)
{
        char *s = trim(line), *eq, *key;

        if (!*s || *s == ';' || *s == '#')
                return 0;
        if (*s == '[') {
                char *close = strchr(s, ']');

                if (!close || *trim(close + 1))
                        return error(c, "a section is [NAME], alone on its line");
                *close = '\0';
                snprintf(c->section, sizeof(c->section), "%s", trim(s + 1));
                c->section_line = c->line;
                c->spec = NULL;
                c->entered = false;
                return 0;
        }
        eq = s + strcspn(s, "=:");
        if (!*eq)
                return error(c, "not a [section], key = value or comment");
        *eq = '\0';
        key = trim(s);
        if (!*key)
                return error(c, "a key = value line without its key");
        if (!c->section_line)
                return error(c, "a key before any [section]");
        return on_key(c, c->section, key, trim(eq + 1));
}

/* The whole file, NUL-terminated (files are small: FILE_MAX). */
static int read_all(const char *path, char **ret, size_t *ret_len)
{
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t n = 0;
        int r = 0;

        if (!f)
                return -errno;
        buf = malloc(FILE_MAX + 1);
        if (!buf)
                r = -ENOMEM;
        else
                n = fread(buf, 1, FILE_MAX + 1, f);
        if (r == 0 && ferror(f))
                r = -EIO;
        if (r == 0 && n > FILE_MAX)
                r = -EFBIG;
        fclose(f);
        if (r < 0) {
                free(buf);
                return r;
        }
        buf[n] = '\0';
        *ret = buf;
        *ret_len = n;
        return 0;
}

int ss_conf_file_load(ss_config *cfg, const char *path)
{
        file_ctx c = {.cfg = cfg, .path = path};
        char *text = NULL, *line, *next, *end;
        size_t len = 0;
        int r = read_all(path, &text, &len);

        if (r < 0) {
                fprintf(stderr, "sidespand: cannot read the configuration file %s: %s\n", path,
                        r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
                return -EINVAL;
        }
        end = text + len;
        for (line = text; line && line < end && r >= 0; line = next) {
                next = memchr(line, '\n', (size_t)(end - line));
                if (next)
                        *next++ = '\0';
                c.line++;
                if (strlen(line) != (size_t)((next ? next - 1 : end) - line))
                        r = error(&c, "a NUL byte in the line");
                else
                        r = parse_line(&c, line);
        }
        free(text);
        if (r == -ENOMEM) {
                fputs("sidespand: out of memory\n", stderr);
                return -EINVAL;
        }
        return c.errors ? -EINVAL : 0;
}
