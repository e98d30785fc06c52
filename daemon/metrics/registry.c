/* SPDX-License-Identifier: MIT */
#include "metrics/registry.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/hashmap.h"
#include "ss-macro.h"
#include "ss-id.h"

/* One attribute set of an instrument and what was recorded under it. */
typedef struct series {
        char *blob; /* "key\0value\0" pairs: the identity, and the attrs' strings */
        size_t blob_len;
        ss_metric_attr *attrs;
        uint32_t n_attrs;
        uint64_t start_ns;
        double value;    /* sum or last gauge value */
        double observed; /* ss_instrument_observe()'s last total */
        uint64_t count;
        double sum, min, max;
        uint64_t *buckets; /* n_bounds + 1 */
} series;

struct ss_instrument {
        ss_registry *reg;
        ss_metric m; /* name, unit, kind, bounds; points filled at collect */
        series **series;
        size_t n, cap;
        ss_map index;      /* 16-byte hash of the blob -> series */
        series *overflow;  /* past max_series */
        series *recent[4]; /* found or made lately: a run's records repeat them */
        unsigned next_recent;
        ss_metric_point *points; /* the last collection's */
};

struct ss_registry {
        int temporality;
        uint32_t max_series;
        ss_instrument **inst;
        size_t n, cap;
        ss_metric *metrics; /* the last collection's */
        uint64_t start_ns;
        uint64_t overflows;
        ss_metrics_snapshot snap;
};

static const ss_metric_attr overflow_attr = {"otel.metric.overflow", "true"};

ss_registry *ss_registry_new(int temporality, uint32_t max_series, const ss_metric_attr *resource,
                             uint32_t n_resource, const char *scope_name, const char *scope_version)
{
        ss_registry *r = calloc(1, sizeof(*r));

        if (!r)
                return NULL;
        r->temporality = temporality;
        r->max_series = max_series ? max_series : SS_METRICS_MAX_SERIES_DEFAULT;
        r->start_ns = ss_now_ns();
        r->snap = (ss_metrics_snapshot){.temporality = temporality,
                                        .resource = resource,
                                        .n_resource = n_resource,
                                        .scope_name = scope_name,
                                        .scope_version = scope_version};
        return r;
}

static void series_free(series *s)
{
        if (!s)
                return;
        free(s->blob);
        free(s->attrs);
        free(s->buckets);
        free(s);
}

static void instrument_free(ss_instrument *i)
{
        for (size_t k = 0; k < i->n; k++)
                series_free(i->series[k]);
        series_free(i->overflow);
        free(i->series);
        free(i->points);
        ss_map_free(&i->index);
        free(i);
}

void ss_registry_free(ss_registry *r)
{
        if (!r)
                return;
        for (size_t k = 0; k < r->n; k++)
                instrument_free(r->inst[k]);
        free(r->inst);
        free(r->metrics);
        free(r);
}

/* ---- instruments ------------------------------------------------------------------------ */

static ss_instrument *instrument_add(ss_registry *r, const ss_metric *m)
{
        ss_instrument *i;

        if (r->n == r->cap) {
                size_t cap = r->cap ? 2 * r->cap : 16;
                ss_instrument **p = realloc(r->inst, cap * sizeof(*p));

                if (!p)
                        return NULL;
                r->inst = p;
                r->cap = cap;
        }
        i = calloc(1, sizeof(*i));
        if (!i)
                return NULL;
        i->reg = r;
        i->m = *m;
        ss_map_init(&i->index, 16);
        r->inst[r->n++] = i;
        return i;
}

ss_instrument *ss_registry_counter(ss_registry *r, const char *name, const char *description,
                                   const char *unit, bool is_int)
{
        return instrument_add(r, &(ss_metric){.name = name,
                                              .description = description,
                                              .unit = unit,
                                              .kind = SS_METRIC_SUM,
                                              .monotonic = true,
                                              .is_int = is_int});
}

ss_instrument *ss_registry_gauge(ss_registry *r, const char *name, const char *description,
                                 const char *unit, bool is_int)
{
        return instrument_add(r, &(ss_metric){.name = name,
                                              .description = description,
                                              .unit = unit,
                                              .kind = SS_METRIC_GAUGE,
                                              .is_int = is_int});
}

ss_instrument *ss_registry_histogram(ss_registry *r, const char *name, const char *description,
                                     const char *unit, const double *bounds, uint32_t n_bounds)
{
        return instrument_add(r, &(ss_metric){.name = name,
                                              .description = description,
                                              .unit = unit,
                                              .kind = SS_METRIC_HISTOGRAM,
                                              .bounds = bounds,
                                              .n_bounds = n_bounds});
}

/* ---- series ----------------------------------------------------------------------------- */

/* The identity of an attribute set: its pairs back to back, each string NUL-terminated,
 * cut at the limits. Returns its length in buf (of SS_METRICS_MAX_ATTR_BYTES), and the
 * pairs kept in *kept. */
static size_t attrs_blob(const ss_metric_attr *attrs, uint32_t n, char *buf, uint32_t *kept)
{
        size_t len = 0;
        uint32_t k;

        for (k = 0; k < n && k < SS_METRICS_MAX_ATTRS; k++) {
                size_t kl = strlen(attrs[k].key) + 1, vl = strlen(attrs[k].value) + 1;

                if (len + kl + vl > SS_METRICS_MAX_ATTR_BYTES)
                        break;
                memcpy(buf + len, attrs[k].key, kl);
                memcpy(buf + len + kl, attrs[k].value, vl);
                len += kl + vl;
        }
        *kept = k;
        return len;
}

/* A 128-bit digest of a blob, eight bytes a step in two lanes: the series' identity in the
 * index (a collision sends the later series to the overflow one, counted). */
static void blob_key(const char *blob, size_t len, uint8_t key[16])
{
        uint64_t h1 = 0xcbf29ce484222325ull ^ len, h2 = 0x84222325cbf29ce4ull, w;
        size_t k;

        for (k = 0; k + 8 <= len; k += 8) {
                memcpy(&w, blob + k, 8);
                h1 = ss_hash_fold_mul(h1 ^ w, 0x9e3779b97f4a7c15ull);
                h2 = ss_hash_fold_mul(h2 ^ w ^ h1, 0xc2b2ae3d27d4eb4full);
        }
        w = 0;
        memcpy(&w, blob + k, len - k);
        h1 = ss_hash_fold_mul(h1 ^ w ^ 0xff, 0x9e3779b97f4a7c15ull);
        h2 = ss_hash_fold_mul(h2 ^ w ^ h1, 0xc2b2ae3d27d4eb4full);
        h1 = ss_hash_fold_mul(h1 ^ h2, 0xff51afd7ed558ccdull);
        memcpy(key, &h1, 8);
        memcpy(key + 8, &h2, 8);
}

static series *series_new(const ss_instrument *i, const char *blob, size_t len, uint32_t n)
{
        series *s = calloc(1, sizeof(*s));
        const char *p;

        if (!s)
                return NULL;
        s->blob = malloc(len ? len : 1);
        s->attrs = calloc(n ? n : 1, sizeof(*s->attrs));
        if (i->m.kind == SS_METRIC_HISTOGRAM)
                s->buckets = calloc(i->m.n_bounds + 1, sizeof(*s->buckets));
        if (!s->blob || !s->attrs || (i->m.kind == SS_METRIC_HISTOGRAM && !s->buckets)) {
                series_free(s);
                return NULL;
        }
        memcpy(s->blob, blob, len);
        s->blob_len = len;
        p = s->blob;
        for (uint32_t k = 0; k < n; k++) {
                s->attrs[k].key = p;
                p += strlen(p) + 1;
                s->attrs[k].value = p;
                p += strlen(p) + 1;
        }
        s->n_attrs = n;
        s->start_ns = i->reg->start_ns;
        return s;
}

static series *overflow_series(ss_instrument *i)
{
        char buf[64];
        uint32_t n;
        size_t len;

        if (!i->overflow) {
                len = attrs_blob(&overflow_attr, 1, buf, &n);
                i->overflow = series_new(i, buf, len, n);
        }
        return i->overflow;
}

static series *remember(ss_instrument *i, series *s)
{
        i->recent[i->next_recent++ % SS_ELEMENTSOF(i->recent)] = s;
        return s;
}

/* The series of attrs: found, new, or the overflow one past max_series. NULL: ENOMEM. */
static series *series_get(ss_instrument *i, const ss_metric_attr *attrs, uint32_t n_attrs)
{
        char buf[SS_METRICS_MAX_ATTR_BYTES];
        uint8_t key[16];
        uint32_t n;
        size_t len = attrs_blob(attrs, n_attrs, buf, &n);
        series *s;

        for (unsigned k = 0; k < SS_ELEMENTSOF(i->recent); k++) {
                s = i->recent[k];
                if (s && s->blob_len == len && memcmp(s->blob, buf, len) == 0)
                        return s;
        }
        blob_key(buf, len, key);
        s = ss_map_get(&i->index, key);
        if (s && s->blob_len == len && memcmp(s->blob, buf, len) == 0)
                return remember(i, s);
        if (s || i->n >= i->reg->max_series) { /* a collision is as good as an overflow */
                i->reg->overflows++;
                return overflow_series(i);
        }
        if (i->n == i->cap) {
                size_t cap = i->cap ? 2 * i->cap : 8;
                series **p = realloc(i->series, cap * sizeof(*p));

                if (!p)
                        return NULL;
                i->series = p;
                i->cap = cap;
        }
        s = series_new(i, buf, len, n);
        if (!s || ss_map_put(&i->index, key, s) < 0) {
                series_free(s);
                return NULL;
        }
        i->series[i->n++] = s;
        return remember(i, s);
}

static uint32_t bucket_of(const ss_metric *m, double v)
{
        uint32_t k = 0;

        while (k < m->n_bounds && v > m->bounds[k])
                k++;
        return k;
}

int ss_instrument_record(ss_instrument *i, double v, const ss_metric_attr *attrs, uint32_t n_attrs)
{
        series *s;

        if (isnan(v))
                return 0;
        s = series_get(i, attrs, n_attrs);
        if (!s)
                return -ENOMEM;
        switch (i->m.kind) {
        case SS_METRIC_SUM:
                s->value += v;
                break;
        case SS_METRIC_GAUGE:
                s->value = v;
                break;
        case SS_METRIC_HISTOGRAM:
                s->min = s->count == 0 || v < s->min ? v : s->min;
                s->max = s->count == 0 || v > s->max ? v : s->max;
                s->count++;
                s->sum += v;
                s->buckets[bucket_of(&i->m, v)]++;
                break;
        }
        return 0;
}

int ss_instrument_observe(ss_instrument *i, double total, const ss_metric_attr *attrs,
                          uint32_t n_attrs)
{
        series *s;
        double gained;

        if (i->m.kind != SS_METRIC_SUM)
                return ss_instrument_record(i, total, attrs, n_attrs);
        if (isnan(total))
                return 0;
        s = series_get(i, attrs, n_attrs);
        if (!s)
                return -ENOMEM;
        gained = total >= s->observed ? total - s->observed : total;
        s->observed = total;
        s->value += gained;
        return 0;
}

uint64_t ss_registry_overflows(const ss_registry *r)
{
        return r->overflows;
}

/* ---- collection ------------------------------------------------------------------------- */

static void point_of(const ss_instrument *i, const series *s, uint64_t now, ss_metric_point *p)
{
        *p = (ss_metric_point){.attrs = s->attrs,
                               .n_attrs = s->n_attrs,
                               .start_ns = s->start_ns,
                               .time_ns = now,
                               .value = s->value,
                               .count = s->count,
                               .sum = s->sum,
                               .min = s->min,
                               .max = s->max,
                               .bucket_counts = s->buckets};
        (void)i;
}

/* Delta: what the next collection reports starts now. */
static void series_reset(const ss_instrument *i, series *s, uint64_t now)
{
        s->start_ns = now;
        if (i->m.kind == SS_METRIC_GAUGE)
                return;
        s->value = 0;
        s->count = 0;
        s->sum = s->min = s->max = 0;
        if (s->buckets)
                memset(s->buckets, 0, (i->m.n_bounds + 1) * sizeof(*s->buckets));
}

static int instrument_collect(ss_instrument *i, uint64_t now, ss_metric *out)
{
        size_t n = i->n + (i->overflow != NULL), k = 0;
        ss_metric_point *p = realloc(i->points, (n ? n : 1) * sizeof(*p));

        if (!p)
                return -ENOMEM;
        i->points = p;
        for (size_t j = 0; j < i->n; j++)
                point_of(i, i->series[j], now, &p[k++]);
        if (i->overflow)
                point_of(i, i->overflow, now, &p[k++]);
        *out = i->m;
        out->points = p;
        out->n_points = k;
        return 0;
}

void ss_registry_reset(ss_registry *r, uint64_t now)
{
        /* A series first seen from now on starts here too, not at the registry's start. */
        r->start_ns = now;
        for (size_t k = 0; k < r->n; k++) {
                ss_instrument *i = r->inst[k];

                for (size_t j = 0; j < i->n; j++)
                        series_reset(i, i->series[j], now);
                if (i->overflow)
                        series_reset(i, i->overflow, now);
        }
}

int ss_registry_collect(ss_registry *r, uint64_t now_ns, ss_metrics_snapshot *ret)
{
        ss_metric *m = realloc(r->metrics, (r->n ? r->n : 1) * sizeof(*m));

        if (!m)
                return -ENOMEM;
        r->metrics = m;
        for (size_t k = 0; k < r->n; k++)
                if (instrument_collect(r->inst[k], now_ns, &m[k]) < 0)
                        return -ENOMEM;
        r->snap.metrics = m;
        r->snap.n = r->n;
        *ret = r->snap;
        return 0;
}
