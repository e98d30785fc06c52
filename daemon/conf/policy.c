/* SPDX-License-Identifier: MIT */
#include "conf/policy.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conf/exporters.h"
#include "conf/parse.h"
#include "ss-id.h"
#include "ss-macro.h"
#include "trace/pricing.h"

static const char *const redact_keys[] = {"redact_secrets", "redact_personal", "redact_custom"};
static const unsigned redact_bits[] = {SS_REDACT_SECRETS, SS_REDACT_PERSONAL, SS_REDACT_CUSTOM};

int ss_conf_rate(const char *what, const char *value, double *ret)
{
        char *end;
        double v;

        errno = 0;
        v = strtod(value, &end);
        if (!*value || *end || errno || !(v >= 0.0 && v <= 1.0))
                return ss_conf_bad(what, value, "expected a rate from 0 to 1, e.g. 0.25");
        *ret = v;
        return 0;
}

static int own(const char **dst, const char *value)
{
        char *s = strdup(value);

        if (!s)
                return -ENOMEM;
        *dst = s;
        return 0;
}

/* ---- [sampling] ------------------------------------------------------------------------- */

/* keep_attribute = KEY=VALUE (or KEY:VALUE is not allowed: a value may hold ':'). */
static int tail_match(ss_config *cfg, const char *where, const char *value)
{
        ss_sampling_config *s = &cfg->policy.sampling;
        const char *eq = strchr(value, '=');
        char *key;
        int r;

        if (!eq || eq == value || !eq[1])
                return ss_conf_bad(where, value,
                                   "expected KEY=VALUE, e.g. upsonic.agent.name=billing");
        if (s->n_match == SS_TAIL_MAX_MATCHES)
                return ss_conf_bad(where, value, "too many keep_attribute lines (16 at most)");
        key = strndup(value, (size_t)(eq - value));
        if (!key)
                return -ENOMEM;
        r = own(&s->match[s->n_match].value, eq + 1);
        if (r < 0) {
                free(key);
                return r;
        }
        s->match[s->n_match++].key = key;
        return 0;
}

static int sampling_key(ss_config *cfg, const char *key, const char *value, const char *where)
{
        ss_sampling_config *s = &cfg->policy.sampling;
        uint64_t v;
        int r;

        if (strcmp(key, "rate") == 0)
                return ss_conf_rate(where, value, &s->rate);
        if (strcmp(key, "keep_errors") == 0)
                return ss_conf_bool(where, value, &s->keep_errors);
        if (strcmp(key, "keep_slower_than_ms") == 0)
                return ss_conf_u64(where, value, 0, 86400000, &s->keep_slower_than_ms);
        if (strcmp(key, "keep_attribute") == 0)
                return tail_match(cfg, where, value);
        if (strcmp(key, "max_kept_per_second") == 0) {
                r = ss_conf_u64(where, value, 0, 1000000, &v);
                s->max_kept_per_second = (uint32_t)v;
                return r;
        }
        if (strcmp(key, "remember") == 0) {
                r = ss_conf_u64(where, value, 1, 10000000, &v);
                s->remember = (uint32_t)v;
                return r;
        }
        return -ENOENT;
}

/* ---- [content] -------------------------------------------------------------------------- */

/* keys = a, b, c: the content keys, replacing the default list. */
static int content_keys(ss_config *cfg, const char *where, const char *value)
{
        ss_policy_config *p = &cfg->policy;
        const char *s = value;

        for (size_t i = 0; i < p->n_content_keys; i++)
                free((char *)p->content_keys[i]);
        p->n_content_keys = 0;
        while (*s) {
                size_t n;

                s += strspn(s, " \t,");
                n = strcspn(s, ",");
                while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                        n--;
                if (!n)
                        break;
                if (p->n_content_keys == SS_CONTENT_MAX_KEYS)
                        return ss_conf_bad(where, value, "more than 64 keys");
                if (!(p->content_keys[p->n_content_keys] = strndup(s, n)))
                        return -ENOMEM;
                p->n_content_keys++;
                s += n;
                s += strcspn(s, ",");
        }
        if (!p->n_content_keys)
                return ss_conf_bad(where, value, "expected a comma-separated list of keys");
        return 0;
}

static int content_key(ss_config *cfg, const char *key, const char *value, const char *where)
{
        if (strcmp(key, "include_content") == 0)
                return ss_conf_bool(where, value, &cfg->policy.include_content);
        if (strcmp(key, "keys") == 0)
                return content_keys(cfg, where, value);
        return -ENOENT;
}

/* ---- [redaction] ------------------------------------------------------------------------ */

static int redact_class(const char *where, const char *value, unsigned bit, unsigned *classes)
{
        bool on;
        int r = ss_conf_bool(where, value, &on);

        if (r == 0)
                *classes = on ? *classes | bit : *classes & ~bit;
        return r;
}

static int pattern(ss_config *cfg, const char *kind, const char *value, const char *where)
{
        ss_redact_config *rc = &cfg->policy.redaction;
        size_t n = strlen(kind);
        int r;

        if (n == 0 || n > SS_REDACT_KIND_MAX_LEN ||
            strspn(kind, "abcdefghijklmnopqrstuvwxyz"
                         "0123456789_") != n)
                return ss_conf_bad(where, kind,
                                   "expected pattern.KIND, KIND of a-z, 0-9 and _, 1 to 32 bytes");
        if (!*value)
                return ss_conf_bad(where, value, "expected a PCRE2 pattern");
        if (rc->n_custom == SS_REDACT_MAX_CUSTOM)
                return ss_conf_bad(where, kind, "more than 32 patterns");
        r = own(&rc->custom[rc->n_custom].kind, kind);
        if (r == 0 && (r = own(&rc->custom[rc->n_custom].regex, value)) < 0)
                free((char *)rc->custom[rc->n_custom].kind);
        if (r == 0)
                rc->n_custom++;
        return r;
}

static int hash_key(ss_config *cfg, const char *value, const char *where)
{
        ss_redact_config *rc = &cfg->policy.redaction;

        if (strlen(value) != 32 || ss_unhex(rc->hash_key, value, 16) < 0)
                return ss_conf_bad(where, "(hidden)", "expected 32 hex digits (a 128-bit key)");
        rc->hash = true;
        return 0;
}

static int redaction_key(ss_config *cfg, const char *key, const char *value, const char *where)
{
        if (strcmp(key, "secrets") == 0)
                return redact_class(where, value, SS_REDACT_SECRETS, &cfg->redact);
        if (strcmp(key, "personal") == 0)
                return redact_class(where, value, SS_REDACT_PERSONAL, &cfg->redact);
        if (strcmp(key, "custom") == 0)
                return redact_class(where, value, SS_REDACT_CUSTOM, &cfg->redact);
        if (strcmp(key, "hash_key") == 0)
                return hash_key(cfg, value, where);
        if (strncmp(key, "pattern.", 8) == 0)
                return pattern(cfg, key + 8, value, where);
        return -ENOENT;
}

int ss_conf_policy_key(ss_config *cfg, const char *section, const char *key, const char *value,
                       const char *where, bool *known_section)
{
        *known_section = true;
        if (strcmp(section, "sampling") == 0)
                return sampling_key(cfg, key, value, where);
        if (strcmp(section, "content") == 0)
                return content_key(cfg, key, value, where);
        if (strcmp(section, "redaction") == 0)
                return redaction_key(cfg, key, value, where);
        if (strcmp(section, "pricing") == 0)
                return strcmp(key, "file") == 0 ? ss_conf_path(where, value, &cfg->pricing_file)
                                                : -ENOENT;
        *known_section = false;
        return -ENOENT;
}

/* ---- exporters -------------------------------------------------------------------------- */

int ss_spec_policy_key(ss_exporter_spec *spec, const char *key, const char *value,
                       const char *where)
{
        bool on;
        int r;

        for (size_t i = 0; i < SS_ELEMENTSOF(redact_keys); i++)
                if (strcmp(key, redact_keys[i]) == 0) {
                        r = ss_conf_bool(where, value, &on);
                        if (r == 0)
                                spec->redact[i] = on;
                        return r;
                }
        if (strcmp(key, "include_content") == 0) {
                r = ss_conf_bool(where, value, &on);
                if (r == 0)
                        spec->include_content = on;
                return r;
        }
        return -ENOENT;
}

ss_view_config ss_conf_view(const ss_config *cfg, const ss_exporter_spec *spec)
{
        ss_view_config v = {.include_content =
                                spec->include_content != 0 && cfg->policy.include_content,
                            .redact = cfg->redact};

        for (size_t i = 0; i < SS_ELEMENTSOF(redact_bits); i++)
                if (spec->redact[i] >= 0)
                        v.redact = spec->redact[i] ? v.redact | redact_bits[i]
                                                   : v.redact & ~redact_bits[i];
        if (!cfg->policy.redaction.n_custom)
                v.redact &= ~(unsigned)SS_REDACT_CUSTOM;
        return v;
}

/* ---- environment, finish, print, free --------------------------------------------------- */

int ss_conf_policy_env(ss_config *cfg)
{
        const char *sampler = ss_conf_env("OTEL_TRACES_SAMPLER");
        const char *arg = ss_conf_env("OTEL_TRACES_SAMPLER_ARG");
        double *rate = &cfg->policy.sampling.rate;

        if (sampler) {
                if (strcmp(sampler, "always_on") == 0 ||
                    strcmp(sampler, "parentbased_always_on") == 0)
                        *rate = 1.0;
                else if (strcmp(sampler, "always_off") == 0 ||
                         strcmp(sampler, "parentbased_always_off") == 0)
                        *rate = 0.0;
                else if (strcmp(sampler, "traceidratio") != 0 &&
                         strcmp(sampler, "parentbased_traceidratio") != 0)
                        return ss_conf_bad("OTEL_TRACES_SAMPLER", sampler,
                                           "expected always_on, always_off, traceidratio or "
                                           "their parentbased_ forms");
                else if (!arg)
                        *rate = 1.0;
        }
        if (arg && (!sampler || strstr(sampler, "traceidratio")))
                return ss_conf_rate("OTEL_TRACES_SAMPLER_ARG", arg, rate);
        return 0;
}

int ss_conf_policy_finish(ss_config *cfg)
{
        ss_redactor *red = NULL;
        ss_pricing *pricing = NULL;
        char err[512];
        int r;

        cfg->assembler.sample_rate = cfg->policy.sampling.rate;
        cfg->assembler.tail_active = ss_sampling_tail_active(&cfg->policy.sampling);
        cfg->policy.n_views = cfg->export.n;
        /* What the start would refuse, refused now (and by --check-config). */
        r = ss_redactor_new(&cfg->policy.redaction, &red, err, sizeof(err));
        ss_redactor_free(red);
        if (r == -EINVAL)
                fprintf(stderr, "sidespand: [redaction] %s\n", err);
        if (r < 0)
                return r;
        if (cfg->pricing_file) {
                r = ss_pricing_load(cfg->pricing_file, &pricing, err, sizeof(err));
                ss_pricing_free(pricing);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        fprintf(stderr, "sidespand: [pricing] file: %s\n", err);
                        return -EINVAL;
                }
        }
        return 0;
}

static const char *on_off(bool on)
{
        return on ? "on" : "off";
}

void ss_conf_view_print(FILE *out, const ss_view_config *v)
{
        fprintf(out, "include_content = %s\n", v->include_content ? "true" : "false");
        for (size_t i = 0; i < SS_ELEMENTSOF(redact_keys); i++)
                fprintf(out, "%s = %s\n", redact_keys[i], on_off(v->redact & redact_bits[i]));
}

void ss_conf_policy_print(FILE *out, const ss_config *cfg)
{
        const ss_policy_config *p = &cfg->policy;
        const ss_sampling_config *s = &p->sampling;

        fprintf(out, "\n[sampling]\nrate = %g\nkeep_errors = %s\nkeep_slower_than_ms = %llu\n",
                s->rate, s->keep_errors ? "true" : "false",
                (unsigned long long)s->keep_slower_than_ms);
        for (size_t i = 0; i < s->n_match; i++)
                fprintf(out, "keep_attribute = %s=%s\n", s->match[i].key, s->match[i].value);
        fprintf(out, "max_kept_per_second = %u\n", s->max_kept_per_second);
        fprintf(out, "\n[content]\ninclude_content = %s\n", p->include_content ? "true" : "false");
        for (size_t i = 0; i < p->n_content_keys; i++)
                fprintf(out, "%s%s%s", i ? ", " : "keys = ", p->content_keys[i],
                        i + 1 == p->n_content_keys ? "\n" : "");
        fprintf(out, "\n[redaction]\nsecrets = %s\npersonal = %s\ncustom = %s\n",
                on_off(cfg->redact & SS_REDACT_SECRETS), on_off(cfg->redact & SS_REDACT_PERSONAL),
                on_off(cfg->redact & SS_REDACT_CUSTOM));
        if (p->redaction.hash)
                fputs("hash_key = (set)\n", out);
        for (size_t i = 0; i < p->redaction.n_custom; i++)
                fprintf(out, "pattern.%s = %s\n", p->redaction.custom[i].kind,
                        p->redaction.custom[i].regex);
        fprintf(out, "\n[pricing]\nfile = %s\n",
                cfg->pricing_file ? cfg->pricing_file : "(built in)");
}

void ss_conf_policy_free(ss_config *cfg)
{
        ss_policy_config *p = &cfg->policy;

        for (size_t i = 0; i < p->n_content_keys; i++)
                free((char *)p->content_keys[i]);
        for (size_t i = 0; i < p->sampling.n_match; i++) {
                free((char *)p->sampling.match[i].key);
                free((char *)p->sampling.match[i].value);
        }
        for (size_t i = 0; i < p->redaction.n_custom; i++) {
                free((char *)p->redaction.custom[i].kind);
                free((char *)p->redaction.custom[i].regex);
        }
        free(cfg->pricing_file);
}
