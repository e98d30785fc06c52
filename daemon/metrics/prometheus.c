/* SPDX-License-Identifier: MIT */
/* The Prometheus text format 0.0.4 from a metrics snapshot (OpenTelemetry's "Prometheus and
 * OpenMetrics compatibility", OTLP to Prometheus). The server is in prometheus-server.c. */
#include "metrics/prometheus.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "ss-macro.h"

/* A metric name or label key being built: sanitized as it is appended. */
typedef struct prom_name {
        char s[SS_PROM_NAME_MAX + 1];
        size_t len;
} prom_name;

/* UCUM units to Prometheus' base-unit words, and the words after "_per_". */
typedef struct unit_word {
        const char *ucum;
        const char *word;
} unit_word;

static const unit_word units[] = {
    {"d", "days"},          {"h", "hours"},         {"min", "minutes"},    {"s", "seconds"},
    {"ms", "milliseconds"}, {"us", "microseconds"}, {"ns", "nanoseconds"}, {"By", "bytes"},
    {"KiBy", "kibibytes"},  {"MiBy", "mebibytes"},  {"GiBy", "gibibytes"}, {"TiBy", "tebibytes"},
    {"KBy", "kilobytes"},   {"MBy", "megabytes"},   {"GBy", "gigabytes"},  {"TBy", "terabytes"},
    {"m", "meters"},        {"V", "volts"},         {"A", "amperes"},      {"J", "joules"},
    {"W", "watts"},         {"g", "grams"},         {"Cel", "celsius"},    {"Hz", "hertz"},
    {"%", "percent"},       {"1", "ratio"},
};

static const unit_word per_units[] = {
    {"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
    {"w", "week"},   {"mo", "month"}, {"y", "year"},
};

static bool is_alpha(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* Append n bytes of p: characters outside [a-zA-Z0-9_] (and ':' in metric names) become '_',
 * runs of '_' one '_', a leading digit gets a '_' before it. -EINVAL past SS_PROM_NAME_MAX. */
static int name_add(prom_name *nm, const char *p, size_t n, bool colon)
{
        for (size_t i = 0; i < n; i++) {
                char c = p[i];

                if (!is_alpha(c) && !is_digit(c) && !(colon && c == ':'))
                        c = '_';
                if (c == '_' && nm->len > 0 && nm->s[nm->len - 1] == '_')
                        continue;
                if (nm->len + 2 > SS_PROM_NAME_MAX)
                        return -EINVAL;
                if (nm->len == 0 && is_digit(c))
                        nm->s[nm->len++] = '_';
                nm->s[nm->len++] = c;
        }
        nm->s[nm->len] = '\0';
        return 0;
}

/* An empty name (or key) would not parse: it becomes "_". */
static int name_set(prom_name *nm, const char *p, bool colon)
{
        nm->len = 0;
        nm->s[0] = '\0';
        return name_add(nm, p && p[0] ? p : "_", p && p[0] ? strlen(p) : 1, colon);
}

static bool name_ends_with(const prom_name *nm, const char *suffix)
{
        size_t n = strlen(suffix);

        return nm->len >= n && memcmp(nm->s + nm->len - n, suffix, n) == 0;
}

static const char *unit_lookup(const unit_word *t, size_t n, const char *p, size_t len)
{
        for (size_t i = 0; i < n; i++)
                if (strlen(t[i].ucum) == len && memcmp(t[i].ucum, p, len) == 0)
                        return t[i].word;
        return NULL;
}

/* Append one side of a unit ("By" of "By/s") as its word, or as it is when unknown. */
static int unit_part_add(prom_name *nm, const char *p, size_t len, bool per)
{
        const char *w = per ? unit_lookup(per_units, SS_ELEMENTSOF(per_units), p, len)
                            : unit_lookup(units, SS_ELEMENTSOF(units), p, len);

        return w ? name_add(nm, w, strlen(w), false) : name_add(nm, p, len, false);
}

/* The unit's suffix word: {annotations} dropped, "foo/bar" as "foo_per_bar", "1" as "ratio";
 * empty when nothing is left. Leading and trailing '_' trimmed. */
static int unit_suffix(const char *unit, prom_name *ret)
{
        char plain[SS_PROM_NAME_MAX + 1];
        size_t n = 0;
        int depth = 0, r = 0;

        for (const char *p = unit ? unit : ""; *p && n < SS_PROM_NAME_MAX; p++) {
                depth += *p == '{';
                if (depth == 0)
                        plain[n++] = *p;
                depth -= *p == '}' && depth > 0;
        }
        plain[n] = '\0';
        ret->len = 0;
        ret->s[0] = '\0';
        char *slash = strchr(plain, '/');
        size_t main_len = slash ? (size_t)(slash - plain) : n;

        if (main_len > 0)
                r = unit_part_add(ret, plain, main_len, false);
        if (r == 0 && slash && slash[1]) {
                r = name_add(ret, main_len > 0 ? "_per_" : "per_", main_len > 0 ? 5 : 4, false);
                if (r == 0)
                        r = unit_part_add(ret, slash + 1, strlen(slash + 1), true);
        }
        while (ret->len > 0 && ret->s[ret->len - 1] == '_')
                ret->s[--ret->len] = '\0';
        if (ret->s[0] == '_')
                memmove(ret->s, ret->s + 1, ret->len--);
        return r;
}

static bool is_counter(const ss_metric *m)
{
        return m->kind == SS_METRIC_SUM && m->monotonic;
}

/* Prometheus has no delta sums or histograms: without accumulating them, the specification
 * has them dropped. */
static bool is_rendered(const ss_metrics_snapshot *s, const ss_metric *m)
{
        return m->kind == SS_METRIC_GAUGE || s->temporality != SS_TEMPORALITY_DELTA;
}

/* The family name: sanitized, the unit's word unless the name ends with it, _total on
 * counters. */
static int family_name(const ss_metric *m, prom_name *ret)
{
        prom_name unit;
        int r = name_set(ret, m->name, true);

        if (r < 0 || (r = unit_suffix(m->unit, &unit)) < 0)
                return r;
        if (is_counter(m) && name_ends_with(ret, "_total")) {
                ret->len -= strlen("_total");
                ret->s[ret->len] = '\0';
        }
        if (unit.len > 0 && !(ret->len == unit.len && strcmp(ret->s, unit.s) == 0)) {
                char tail[SS_PROM_NAME_MAX + 2];

                snprintf(tail, sizeof(tail), "_%s", unit.s);
                if (!name_ends_with(ret, tail) && (r = name_add(ret, tail, strlen(tail), true)) < 0)
                        return r;
        }
        return is_counter(m) ? name_add(ret, "_total", 6, true) : 0;
}

static int put(ss_buf *b, const char *p)
{
        return ss_buf_append(b, p, strlen(p));
}

/* Append p with '\\' and '\n' escaped, and '"' too when quoted (a label value). */
static int put_escaped(ss_buf *b, const char *p, bool quoted)
{
        int r = 0;

        for (const char *run = p; r == 0; p++) {
                const char *esc = *p == '\\'            ? "\\\\"
                                  : *p == '\n'          ? "\\n"
                                  : *p == '"' && quoted ? "\\\""
                                                        : NULL;

                if (!esc && *p)
                        continue;
                r = ss_buf_append(b, run, (size_t)(p - run));
                if (r < 0 || !*p)
                        break;
                r = put(b, esc);
                run = p + 1;
        }
        return r;
}

/* A sample value Prometheus parses back exactly: integers without an exponent, the shortest
 * of %.15g and %.17g that round-trips, +Inf, -Inf, NaN. */
static int put_double(ss_buf *b, double v)
{
        char t[40];

        if (isnan(v))
                return put(b, "NaN");
        if (isinf(v))
                return put(b, v > 0 ? "+Inf" : "-Inf");
        if (v == trunc(v) && fabs(v) < 0x1p63)
                return ss_buf_printf(b, "%.0f", v);
        snprintf(t, sizeof(t), "%.15g", v);
        if (strtod(t, NULL) != v)
                snprintf(t, sizeof(t), "%.17g", v);
        return put(b, t);
}

static int put_label(ss_buf *b, bool *first, const char *key, const char *value)
{
        int r = put(b, *first ? "{" : ",");

        *first = false;
        if (r == 0)
                r = put(b, key);
        if (r == 0)
                r = put(b, "=\"");
        if (r == 0)
                r = put_escaped(b, value ? value : "", true);
        return r < 0 ? r : put(b, "\"");
}

/* The index in a of the smallest original key greater than after (NULL: any) among those
 * whose sanitized key is key; -1 when none is left. */
static int64_t next_in_group(const ss_metric_attr *a, uint32_t n, const char *key,
                             const char *after)
{
        int64_t best = -1;
        prom_name k;

        for (uint32_t i = 0; i < n; i++) {
                if (name_set(&k, a[i].key, false) < 0 || strcmp(k.s, key) != 0)
                        continue;
                if (after && strcmp(a[i].key, after) <= 0)
                        continue;
                if (best < 0 || strcmp(a[i].key, a[best].key) < 0)
                        best = i;
        }
        return best;
}

/* Attributes whose keys sanitize alike become one label: their values joined by ';' in the
 * order of the original keys, as the specification asks. */
static int put_attr_group(ss_buf *b, bool *first, const ss_metric_attr *a, uint32_t n,
                          const char *key)
{
        int64_t i = next_in_group(a, n, key, NULL);
        int r = put(b, *first ? "{" : ",");

        *first = false;
        if (r == 0)
                r = ss_buf_printf(b, "%s=\"", key);
        for (bool sep = false; r == 0 && i >= 0; sep = true) {
                if (sep)
                        r = put(b, ";");
                if (r == 0)
                        r = put_escaped(b, a[i].value ? a[i].value : "", true);
                i = next_in_group(a, n, key, a[i].key);
        }
        return r < 0 ? r : put(b, "\"");
}

static int put_attrs(ss_buf *b, bool *first, const ss_metric_attr *a, uint32_t n)
{
        prom_name k, prev;
        int r = 0;

        for (uint32_t i = 0; i < n && r == 0; i++) {
                bool seen = false;

                if ((r = name_set(&k, a[i].key, false)) < 0)
                        break;
                for (uint32_t j = 0; j < i && !seen; j++)
                        seen = name_set(&prev, a[j].key, false) == 0 && strcmp(prev.s, k.s) == 0;
                if (!seen)
                        r = put_attr_group(b, first, a, n, k.s);
        }
        return r;
}

/* One sample line: name suffix{scope, attributes, le} value. */
typedef struct prom_sample {
        const ss_metrics_snapshot *s;
        const prom_name *name;
        const ss_metric_point *pt;
} prom_sample;

static int put_labels(ss_buf *b, const prom_sample *x, const char *le)
{
        bool first = true;
        int r = 0;

        if (x->s->scope_name && x->s->scope_name[0])
                r = put_label(b, &first, "otel_scope_name", x->s->scope_name);
        if (r == 0 && x->s->scope_version && x->s->scope_version[0])
                r = put_label(b, &first, "otel_scope_version", x->s->scope_version);
        if (r == 0)
                r = put_attrs(b, &first, x->pt->attrs, x->pt->n_attrs);
        if (r == 0 && le)
                r = put_label(b, &first, "le", le);
        return r < 0 || first ? r : put(b, "}");
}

static int put_sample_start(ss_buf *b, const prom_sample *x, const char *suffix, const char *le)
{
        int r = put(b, x->name->s);

        if (r == 0)
                r = put(b, suffix);
        if (r == 0)
                r = put_labels(b, x, le);
        return r < 0 ? r : put(b, " ");
}

static int put_sample(ss_buf *b, const prom_sample *x, const char *suffix, const char *le, double v)
{
        int r = put_sample_start(b, x, suffix, le);

        if (r == 0)
                r = put_double(b, v);
        return r < 0 ? r : put(b, "\n");
}

static int put_count(ss_buf *b, const prom_sample *x, const char *suffix, const char *le,
                     uint64_t v)
{
        int r = put_sample_start(b, x, suffix, le);

        return r < 0 ? r : ss_buf_printf(b, "%" PRIu64 "\n", v);
}

/* The bound as an le label value, formatted as sample values are. */
static void le_format(char *out, size_t size, double bound)
{
        ss_buf t;

        ss_buf_init(&t, size - 1);
        if (put_double(&t, bound) == 0 && t.len < size) {
                memcpy(out, t.data, t.len);
                out[t.len] = '\0';
        } else {
                snprintf(out, size, "%.17g", bound);
        }
        ss_buf_free(&t);
}

/* Cumulative buckets up to +Inf, then _sum (left out when a value was negative: the
 * specification keeps _sum to sums that only grow) and _count. */
static int put_histogram_point(ss_buf *b, const ss_metric *m, const prom_sample *x)
{
        uint64_t cum = 0;
        char le[40];
        int r = 0;

        for (uint32_t i = 0; i <= m->n_bounds && r == 0; i++) {
                cum += x->pt->bucket_counts ? x->pt->bucket_counts[i] : 0;
                if (i < m->n_bounds)
                        le_format(le, sizeof(le), m->bounds[i]);
                r = put_count(b, x, "_bucket", i < m->n_bounds ? le : "+Inf", cum);
        }
        if (r == 0 && !(x->pt->count > 0 && x->pt->min < 0))
                r = put_sample(b, x, "_sum", NULL, x->pt->sum);
        return r < 0 ? r : put_count(b, x, "_count", NULL, x->pt->count);
}

static const char *type_name(const ss_metric *m)
{
        if (m->kind == SS_METRIC_HISTOGRAM)
                return "histogram";
        return is_counter(m) ? "counter" : "gauge";
}

static int put_header(ss_buf *b, const prom_name *name, const char *help, const char *type)
{
        int r = 0;

        if (help && help[0]) {
                r = ss_buf_printf(b, "# HELP %s ", name->s);
                if (r == 0)
                        r = put_escaped(b, help, false);
                if (r == 0)
                        r = put(b, "\n");
        }
        return r < 0 ? r : ss_buf_printf(b, "# TYPE %s %s\n", name->s, type);
}

static int put_metric(ss_buf *b, const ss_metrics_snapshot *s, const ss_metric *m,
                      const prom_name *name)
{
        int r = put_header(b, name, m->description, type_name(m));

        for (size_t i = 0; i < m->n_points && r == 0; i++) {
                prom_sample x = {.s = s, .name = name, .pt = &m->points[i]};

                r = m->kind == SS_METRIC_HISTOGRAM ? put_histogram_point(b, m, &x)
                                                   : put_sample(b, &x, "", NULL, x.pt->value);
        }
        return r;
}

/* The resource as the one target_info gauge, labels and nothing else (no scope labels). */
static int put_target_info(ss_buf *b, const ss_metrics_snapshot *s)
{
        prom_name name;
        bool first = true;
        int r;

        if (s->n_resource == 0)
                return 0;
        name_set(&name, "target_info", true);
        r = put_header(b, &name, "Target metadata", "gauge");
        if (r == 0)
                r = put(b, name.s);
        if (r == 0)
                r = put_attrs(b, &first, s->resource, s->n_resource);
        return r < 0 ? r : put(b, first ? " 1\n" : "} 1\n");
}

/* Whether a metric before index i already took name: its TYPE line is out, and two families
 * of one name would not parse. */
static bool name_taken(const ss_metrics_snapshot *s, size_t i, const prom_name *name)
{
        prom_name other;

        for (size_t j = 0; j < i; j++)
                if (is_rendered(s, &s->metrics[j]) && family_name(&s->metrics[j], &other) == 0 &&
                    strcmp(other.s, name->s) == 0)
                        return true;
        return false;
}

static int put_metrics(ss_buf *b, const ss_metrics_snapshot *s)
{
        prom_name name;
        int r = 0;

        for (size_t i = 0; i < s->n && r == 0; i++) {
                const ss_metric *m = &s->metrics[i];

                if (!is_rendered(s, m))
                        continue;
                if ((r = family_name(m, &name)) < 0)
                        break;
                if (name_taken(s, i, &name)) {
                        ss_log_ratelimited(SS_LOG_WARNING,
                                           "prometheus: %s dropped, its name is taken "
                                           "event=prometheus-name-taken name=%s",
                                           m->name, name.s);
                        continue;
                }
                r = put_metric(b, s, m, &name);
        }
        return r;
}

int ss_prom_render(const ss_metrics_snapshot *s, ss_buf *out)
{
        size_t len = out->len;
        int r = put_target_info(out, s);

        if (r == 0)
                r = put_metrics(out, s);
        if (r < 0)
                out->len = len;
        return r;
}
