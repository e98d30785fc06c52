/* SPDX-License-Identifier: MIT */
#include "metrics/headline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/genai.h"

typedef struct figures {
        uint64_t requests, input, output;
        double cost; /* USD: rounded once, when read, so that rounding never adds up */
} figures;

/* One second of the last minute: sec says which, so a stale slot reads as empty. */
typedef struct slot {
        uint64_t sec;
        figures f;
} slot;

typedef struct model {
        char name[SS_HEADLINE_MODEL_MAX + 1];
        figures total;
        slot window[SS_HEADLINE_WINDOW_S];
} model;

struct ss_headline {
        model *models[SS_HEADLINE_MAX_MODELS + 1]; /* the last one is "_other" */
        uint32_t n;
};

ss_headline *ss_headline_new(void)
{
        return calloc(1, sizeof(ss_headline));
}

void ss_headline_free(ss_headline *h)
{
        if (!h)
                return;
        for (uint32_t i = 0; i < h->n; i++)
                free(h->models[i]);
        free(h);
}

/* A new model named name[0..len) (len <= SS_HEADLINE_MODEL_MAX). */
static model *model_add(ss_headline *h, const char *name, size_t len)
{
        model *m = calloc(1, sizeof(*m));

        if (!m)
                return NULL;
        memcpy(m->name, name, len); /* NUL-terminated by calloc() */
        h->models[h->n++] = m;
        return m;
}

/* The model of name (cut to SS_HEADLINE_MODEL_MAX bytes): known, new, or past the bound
 * "_other" (the last entry). Two spans a run come here: no formatting on the way. */
static model *model_get(ss_headline *h, const char *name)
{
        size_t len = strnlen(name, SS_HEADLINE_MODEL_MAX);

        for (uint32_t i = 0; i < h->n; i++)
                if (strncmp(h->models[i]->name, name, len) == 0 && h->models[i]->name[len] == '\0')
                        return h->models[i];
        if (h->n < SS_HEADLINE_MAX_MODELS)
                return model_add(h, name, len);
        if (h->n == SS_HEADLINE_MAX_MODELS)
                return model_add(h, "_other", strlen("_other"));
        return h->models[SS_HEADLINE_MAX_MODELS];
}

static void figures_add(figures *to, const figures *f)
{
        to->requests += f->requests;
        to->input += f->input;
        to->output += f->output;
        to->cost += f->cost;
}

void ss_headline_record(ss_headline *h, const ss_span *s, uint64_t now_ms)
{
        const char *name = ss_span_attr_str(s, "gen_ai.response.model");
        figures f = {.requests = 1};
        uint64_t sec = now_ms / 1000;
        double cost;
        model *m;
        slot *sl;

        if (!name)
                name = ss_span_attr_str(s, "gen_ai.request.model");
        m = model_get(h, name ? name : "unknown");
        if (!m)
                return;
        (void)ss_span_attr_count(s, "gen_ai.usage.input_tokens", &f.input);
        (void)ss_span_attr_count(s, "gen_ai.usage.output_tokens", &f.output);
        if (ss_span_attr_amount(s, "gen_ai.usage.cost", &cost) && cost < 1e12)
                f.cost = cost;
        figures_add(&m->total, &f);
        sl = &m->window[sec % SS_HEADLINE_WINDOW_S];
        if (sl->sec != sec)
                *sl = (slot){.sec = sec};
        figures_add(&sl->f, &f);
}

static void add_figures(ss_counters *out, const char *prefix, const figures *f, const char *suffix)
{
        char name[64];

        snprintf(name, sizeof(name), "requests%s", suffix);
        ss_counters_add(out, prefix, name, f->requests);
        snprintf(name, sizeof(name), "input_tokens%s", suffix);
        ss_counters_add(out, prefix, name, f->input);
        snprintf(name, sizeof(name), "output_tokens%s", suffix);
        ss_counters_add(out, prefix, name, f->output);
        snprintf(name, sizeof(name), "cost_micro_usd%s", suffix);
        ss_counters_add(out, prefix, name, (uint64_t)(f->cost * 1e6 + 0.5));
}

void ss_headline_counters(const ss_headline *h, uint64_t now_ms, ss_counters *out)
{
        uint64_t sec = now_ms / 1000;

        for (uint32_t i = 0; i < h->n; i++) {
                const model *m = h->models[i];
                char prefix[SS_COUNTER_NAME_MAX];
                figures last = {0};

                for (uint32_t k = 0; k < SS_HEADLINE_WINDOW_S; k++)
                        if (m->window[k].sec + SS_HEADLINE_WINDOW_S > sec &&
                            m->window[k].sec <= sec && m->window[k].f.requests)
                                figures_add(&last, &m->window[k].f);
                snprintf(prefix, sizeof(prefix), "genai.model.%s.", m->name);
                add_figures(out, prefix, &m->total, "");
                add_figures(out, prefix, &last, "_1m");
        }
}
