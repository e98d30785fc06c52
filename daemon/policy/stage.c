/* SPDX-License-Identifier: MIT */
#include "policy/stage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "ss-id.h"
#include "ss-macro.h"

/* Exporters that see traces the same way. */
typedef struct view {
        ss_view_config cfg;
        size_t exporters[SS_PIPELINE_MAX_EXPORTERS];
        size_t n;
} view;

typedef struct policy_stats {
        uint64_t content_dropped; /* attributes dropped as content */
        uint64_t copies;          /* spans copied for one view of several */
        uint64_t no_memory;       /* spans left out of a view: a copy or redaction failed */
} policy_stats;

struct ss_policy {
        ss_sink sink;
        ss_policy_config cfg;
        ss_pipeline *out;
        ss_sampler *sampler;
        ss_redactor *redactor; /* NULL when no view redacts */
        ss_sink *tap;          /* borrowed, or NULL */
        view views[SS_PIPELINE_MAX_EXPORTERS];
        size_t n_views;
        ss_span **scratch; /* one view's copies */
        size_t cap_scratch;
        policy_stats st;
};

/* ---- content ---------------------------------------------------------------------------- */

bool ss_policy_content_key(const ss_policy_config *cfg, const msgpack_object_str *key)
{
        if (!cfg->n_content_keys)
                return ss_content_key(key->ptr, key->size);
        for (size_t i = 0; i < cfg->n_content_keys; i++)
                if (strlen(cfg->content_keys[i]) == key->size &&
                    memcmp(cfg->content_keys[i], key->ptr, key->size) == 0)
                        return true;
        return false;
}

static bool drop_content(const msgpack_object_str *key, void *ctx)
{
        return ss_policy_content_key(ctx, key);
}

static void strip_content(ss_policy *p, ss_span *s)
{
        int n = ss_attrs_remove_if(&s->store, &s->attrs, drop_content, &p->cfg);

        for (uint32_t i = 0; i < s->n_events; i++)
                n += ss_attrs_remove_if(&s->store, &s->events[i].attrs, drop_content, &p->cfg);
        p->st.content_dropped += (uint64_t)n;
}

/* ---- views ------------------------------------------------------------------------------ */

/* Nothing to change in spans for v. */
static bool view_is_plain(const view *v, ss_span *const *spans, size_t n)
{
        if (!v->cfg.include_content || v->cfg.redact)
                return false;
        for (size_t i = 0; i < n; i++)
                if (spans[i]->no_content)
                        return false;
        return true;
}

/* Change s for v (s is ours alone). false: s must be left out (out of memory). */
static bool apply_view(ss_policy *p, const view *v, ss_span *s)
{
        if (!v->cfg.include_content || s->no_content)
                strip_content(p, s);
        if (v->cfg.redact && p->redactor && ss_redact_span(p->redactor, v->cfg.redact, s) < 0) {
                p->st.no_memory++;
                ss_log_ratelimited(SS_LOG_ERR,
                                   "out of memory redacting a span: left out event=no-memory "
                                   "what=redaction");
                return false;
        }
        return true;
}

static void put_view(ss_policy *p, const view *v, ss_span *const *spans, size_t n)
{
        for (size_t i = 0; i < v->n; i++)
                ss_pipeline_put_one(p->out, v->exporters[i], spans, n);
}

static int scratch_reserve(ss_policy *p, size_t n)
{
        ss_span **s;

        if (n <= p->cap_scratch)
                return 0;
        s = realloc(p->scratch, n * sizeof(*s));
        if (!s)
                return -ENOMEM;
        p->scratch = s;
        p->cap_scratch = n;
        return 0;
}

/* One view of several: copies of the spans, changed. */
static void put_copies(ss_policy *p, const view *v, ss_span *const *spans, size_t n)
{
        size_t k = 0;

        if (scratch_reserve(p, n) < 0) {
                p->st.no_memory += n;
                return;
        }
        for (size_t i = 0; i < n; i++) {
                ss_span *c = ss_span_clone(spans[i]);

                if (!c) {
                        p->st.no_memory++;
                        continue;
                }
                p->st.copies++;
                if (apply_view(p, v, c))
                        p->scratch[k++] = c;
                else
                        ss_span_unref(c);
        }
        put_view(p, v, p->scratch, k);
        for (size_t i = 0; i < k; i++)
                ss_span_unref(p->scratch[i]);
}

/* The only view that changes spans: change them in place (nobody else reads them). */
static void put_in_place(ss_policy *p, const view *v, ss_span *const *spans, size_t n)
{
        size_t k = 0;

        if (scratch_reserve(p, n) < 0) {
                p->st.no_memory += n;
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (apply_view(p, v, spans[i]))
                        p->scratch[k++] = spans[i];
        put_view(p, v, p->scratch, k);
}

static void policy_put(ss_sink *sink, ss_span *const *spans, size_t n)
{
        ss_policy *p = ss_container_of(sink, ss_policy, sink);
        bool plain[SS_PIPELINE_MAX_EXPORTERS];
        size_t n_plain = 0;

        if (n == 0 || !ss_sampler_decide(p->sampler, spans, n, ss_now_ns()))
                return;
        if (p->tap)
                ss_sink_put(p->tap, spans, n);
        for (size_t i = 0; i < p->n_views; i++)
                n_plain += plain[i] = view_is_plain(&p->views[i], spans, n);
        /* Plain views first: they hand on the spans as they are. */
        for (size_t i = 0; i < p->n_views; i++)
                if (plain[i])
                        put_view(p, &p->views[i], spans, n);
        /* Views that change them get copies, made from the spans as they came; with no plain
         * view holding the spans, the last changes them in place. */
        for (size_t i = 0; i < p->n_views; i++) {
                if (plain[i])
                        continue;
                if (n_plain == 0 && i + 1 == p->n_views)
                        put_in_place(p, &p->views[i], spans, n);
                else
                        put_copies(p, &p->views[i], spans, n);
        }
}

static void policy_flush(ss_sink *sink)
{
        ss_policy *p = ss_container_of(sink, ss_policy, sink);

        ss_sink_flush(ss_pipeline_sink(p->out));
}

static const ss_sink_ops policy_sink_ops = {.put = policy_put, .flush = policy_flush};

/* Group the exporters by view. */
static void build_views(ss_policy *p, size_t n_exporters)
{
        for (size_t i = 0; i < n_exporters; i++) {
                ss_view_config c = i < p->cfg.n_views ? p->cfg.views[i]
                                                      : (ss_view_config){.include_content = true};
                view *v = NULL;

                c.include_content = c.include_content && p->cfg.include_content;
                for (size_t j = 0; j < p->n_views && !v; j++)
                        if (p->views[j].cfg.include_content == c.include_content &&
                            p->views[j].cfg.redact == c.redact)
                                v = &p->views[j];
                if (!v) {
                        v = &p->views[p->n_views++];
                        v->cfg = c;
                }
                v->exporters[v->n++] = i;
        }
}

/* Once, at start: without JIT every string costs more to scan, which an operator should know. */
static void log_jit(const ss_redactor *r)
{
        char why[128];

        if (!ss_redactor_jit(r, why, sizeof(why)))
                ss_log(SS_LOG_NOTICE,
                       "redaction: PCRE2 JIT unavailable (%s): patterns run in the slower "
                       "interpreter event=redaction-no-jit reason=\"%s\"",
                       why, why);
}

int ss_policy_new(const ss_policy_config *cfg, ss_pipeline *out, ss_policy **ret, char *err,
                  size_t err_size)
{
        ss_policy *p = calloc(1, sizeof(*p));
        size_t n_exporters = ss_pipeline_exporters(out);
        bool redacts = false;
        int r;

        if (!p)
                return -ENOMEM;
        p->sink.ops = &policy_sink_ops;
        p->cfg = *cfg;
        p->out = out;
        if (cfg->n_views > n_exporters) {
                snprintf(err, err_size, "%zu exporter policies for %zu exporters", cfg->n_views,
                         n_exporters);
                free(p);
                return -EINVAL;
        }
        build_views(p, n_exporters);
        for (size_t i = 0; i < p->n_views; i++)
                redacts = redacts || p->views[i].cfg.redact;
        r = ss_sampler_new(&cfg->sampling, &p->sampler);
        if (r == 0 && redacts)
                r = ss_redactor_new(&cfg->redaction, &p->redactor, err, err_size);
        if (r == 0 && redacts)
                log_jit(p->redactor);
        if (r < 0) {
                ss_policy_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

void ss_policy_free(ss_policy *p)
{
        if (!p)
                return;
        ss_sampler_free(p->sampler);
        ss_redactor_free(p->redactor);
        free(p->scratch);
        free(p);
}

ss_sink *ss_policy_sink(ss_policy *p)
{
        return &p->sink;
}

void ss_policy_set_tap(ss_policy *p, ss_sink *tap)
{
        p->tap = tap;
}

void ss_policy_counters(const void *policy, ss_counters *out)
{
        const ss_policy *p = policy;

        ss_sampler_counters(p->sampler, out);
        ss_counters_add(out, "content.", "attrs_dropped", p->st.content_dropped);
        if (p->redactor)
                ss_redactor_counters(p->redactor, out);
        ss_counters_add(out, "policy.", "span_copies", p->st.copies);
        ss_counters_add(out, "policy.", "no_memory", p->st.no_memory);
}
