/* SPDX-License-Identifier: MIT */
#include "metrics/stage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "metrics/genai.h"
#include "metrics/headline.h"
#include "metrics/health.h"
#include "metrics/prometheus.h"
#include "metrics/registry.h"
#include "otlp/otlp.h"
#include "sidespan-version.h"
#include "ss-id.h"

#define METRICS_GRPC_METHOD "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
/* The scrape endpoint's text is at most this old, whatever the export interval. */
#define PROM_REFRESH_MS 5000u
/* A snapshot's encoding; far above what max_series per instrument allows. */
#define METRICS_MAX_BODY ((size_t)32 << 20)

/* A registry and the instruments in it. Two when the OTLP export is delta and the scrape
 * endpoint wants cumulative sums. */
typedef struct inst_set {
        ss_registry *reg;
        ss_genai_instruments genai;
        ss_health health;
} inst_set;

typedef struct metrics_stats {
        uint64_t spans;          /* observed */
        uint64_t collections;    /* OTLP exports made */
        uint64_t points;         /* data points handed to the exporter */
        uint64_t no_memory;      /* recordings, collections or encodings that failed */
        uint64_t scrape_renders; /* Prometheus texts published */
} metrics_stats;

struct ss_metrics {
        uv_loop_t *loop;
        ss_metrics_config cfg;
        ss_counters_fn health;
        const void *health_ctx;
        inst_set sets[2];
        size_t n_sets;
        inst_set *otlp, *prom; /* into sets[], or NULL */
        ss_headline *headline;
        ss_pipeline *pipeline;                /* the metrics exporter's own, or NULL */
        const ss_prom_server_api *server_api; /* the module's, once a server is to start */
        ss_prom_server *server;
        uv_timer_t timer;
        uint64_t next_export_ms;
        char host[256];
        ss_metric_attr resource[3];
        metrics_stats st;
        unsigned closing;
        void (*done)(void *ctx);
        void *done_ctx;
};

void ss_metrics_config_defaults(ss_metrics_config *cfg)
{
        *cfg = (ss_metrics_config){.enabled = true,
                                   .interval_ms = SS_METRICS_INTERVAL_MS_DEFAULT,
                                   .temporality = SS_TEMPORALITY_CUMULATIVE};
}

/* ---- recording -------------------------------------------------------------------------- */

void ss_metrics_span(void *metrics, const ss_span *s)
{
        ss_metrics *m = metrics;
        ss_genai_kind kind = ss_genai_kind_of(s);

        m->st.spans++;
        for (size_t i = 0; i < m->n_sets; i++)
                if (ss_genai_record(&m->sets[i].genai, s, kind) < 0)
                        m->st.no_memory++;
        if (kind == SS_GENAI_OPERATION)
                ss_headline_record(m->headline, s, uv_now(m->loop));
}

/* ---- collection ------------------------------------------------------------------------- */

static void observe_health(ss_metrics *m)
{
        ss_counters c;

        if (!m->health)
                return;
        ss_counters_init(&c);
        m->health(m->health_ctx, &c);
        for (size_t i = 0; i < m->n_sets; i++)
                ss_health_observe(&m->sets[i].health, &c);
        ss_counters_free(&c);
}

static size_t points_of(const ss_metrics_snapshot *snap)
{
        size_t n = 0;

        for (size_t i = 0; i < snap->n; i++)
                n += snap->metrics[i].n_points;
        return n;
}

static void server_stop(ss_metrics *m)
{
        if (m->server)
                m->server_api->stop(m->server);
        m->server = NULL;
}

static void publish_scrape(ss_metrics *m, uint64_t now_ns)
{
        ss_metrics_snapshot snap;
        ss_buf text;

        ss_buf_init(&text, METRICS_MAX_BODY);
        if (ss_registry_collect(m->prom->reg, now_ns, &snap) < 0 ||
            ss_prom_render(&snap, &text) < 0)
                m->st.no_memory++;
        else {
                m->server_api->publish(m->server, &text);
                m->st.scrape_renders++;
        }
        ss_buf_free(&text);
}

static void export_otlp(ss_metrics *m, uint64_t now_ns)
{
        ss_metrics_snapshot snap;
        ss_buf body;
        size_t n = 0;
        int r;

        ss_buf_init(&body, METRICS_MAX_BODY);
        r = ss_registry_collect(m->otlp->reg, now_ns, &snap);
        if (r == 0) {
                n = points_of(&snap);
                r = m->cfg.exporter.kind == SS_EXPORT_OTLP_HTTP && m->cfg.exporter.http.json
                        ? ss_otlp_metrics_encode_json(&snap, &body)
                        : ss_otlp_metrics_encode(&snap, &body);
        }
        if (r < 0) {
                m->st.no_memory++;
                ss_log(SS_LOG_WARNING,
                       "metrics: cannot encode the collection: %s event=metrics-failed "
                       "error=\"%s\"",
                       strerror(-r), strerror(-r));
                ss_buf_free(&body);
                return;
        }
        /* Delta: what was just read is the exporter's now; the next starts from zero. */
        if (m->cfg.temporality == SS_TEMPORALITY_DELTA)
                ss_registry_reset(m->otlp->reg, now_ns);
        m->st.collections++;
        m->st.points += n;
        (void)ss_pipeline_push_one(m->pipeline, 0, &body, n);
}

static void collect(ss_metrics *m, bool last)
{
        uint64_t now_ns = ss_now_ns(), now_ms = uv_now(m->loop);

        observe_health(m);
        if (m->prom)
                publish_scrape(m, now_ns);
        if (m->otlp && (last || now_ms >= m->next_export_ms)) {
                export_otlp(m, now_ns);
                m->next_export_ms = now_ms + m->cfg.interval_ms;
        }
}

static void on_tick(uv_timer_t *t)
{
        collect(t->data, false);
}

/* ---- counters --------------------------------------------------------------------------- */

void ss_metrics_counters(const void *metrics, ss_counters *out)
{
        const ss_metrics *m = metrics;
        uint64_t overflows = 0;

        for (size_t i = 0; i < m->n_sets; i++)
                overflows += ss_registry_overflows(m->sets[i].reg);
        ss_counters_add(out, "metrics.", "spans_observed", m->st.spans);
        ss_counters_add(out, "metrics.", "collections", m->st.collections);
        ss_counters_add(out, "metrics.", "points", m->st.points);
        ss_counters_add(out, "metrics.", "series_overflow", overflows);
        ss_counters_add(out, "metrics.", "no_memory", m->st.no_memory);
        ss_counters_add(out, "metrics.", "scrape_renders", m->st.scrape_renders);
        ss_headline_counters(m->headline, uv_now(m->loop), out);
        if (m->pipeline)
                ss_pipeline_counters(m->pipeline, out);
}

/* ---- life ------------------------------------------------------------------------------- */

static int set_init(ss_metrics *m, inst_set *set, int temporality)
{
        set->reg = ss_registry_new(temporality, m->cfg.max_series, m->resource,
                                   sizeof(m->resource) / sizeof(m->resource[0]), "sidespand",
                                   SIDESPAN_VERSION_STRING);
        if (!set->reg)
                return -ENOMEM;
        m->n_sets++;
        if (ss_genai_instruments_init(&set->genai, set->reg) < 0 ||
            ss_health_init(&set->health, set->reg) < 0)
                return -ENOMEM;
        return 0;
}

/* The registries: one, cumulative unless the export asks for delta; a second, cumulative,
 * for the scrape endpoint when the export is delta. */
static int sets_init(ss_metrics *m)
{
        bool delta = m->cfg.export_otlp && m->cfg.temporality == SS_TEMPORALITY_DELTA;
        int r = set_init(m, &m->sets[0], delta ? SS_TEMPORALITY_DELTA : SS_TEMPORALITY_CUMULATIVE);

        if (r < 0)
                return r;
        if (m->cfg.export_otlp)
                m->otlp = &m->sets[0];
        if (m->cfg.prometheus_listen && !delta)
                m->prom = &m->sets[0];
        else if (m->cfg.prometheus_listen) {
                r = set_init(m, &m->sets[1], SS_TEMPORALITY_CUMULATIVE);
                m->prom = &m->sets[1];
        }
        return r;
}

static int exporter_start(ss_metrics *m)
{
        ss_export_config ec = {.n = 1, .exporters = m->cfg.exporter.kind};
        int r;

        ec.defs[0] = m->cfg.exporter;
        ec.defs[0].name = SS_METRICS_NAME;
        ec.defs[0].grpc.method = METRICS_GRPC_METHOD;
        ec.defs[0].http.dead_letter = ec.defs[0].grpc.dead_letter = NULL;
        r = ss_pipeline_new(m->loop, &m->pipeline);
        if (r == 0)
                r = ss_pipeline_add_configured(m->pipeline, &ec);
        return r;
}

static void stage_free(ss_metrics *m)
{
        for (size_t i = 0; i < m->n_sets; i++)
                ss_registry_free(m->sets[i].reg);
        ss_headline_free(m->headline);
        free(m);
}

static void closed_one(ss_metrics *m)
{
        void (*done)(void *ctx) = m->done;
        void *ctx = m->done_ctx;

        if (--m->closing > 0)
                return;
        stage_free(m);
        if (done)
                done(ctx);
}

static void on_timer_closed(uv_handle_t *h)
{
        closed_one(h->data);
}

static void on_pipeline_drained(void *ctx)
{
        closed_one(ctx);
}

int ss_metrics_new(uv_loop_t *loop, const ss_metrics_config *cfg, ss_counters_fn health,
                   const void *health_ctx, ss_metrics **ret)
{
        ss_metrics *m = calloc(1, sizeof(*m));
        uint64_t tick;
        int r;

        if (!m)
                return -ENOMEM;
        m->loop = loop;
        m->cfg = *cfg;
        if (!m->cfg.interval_ms)
                m->cfg.interval_ms = SS_METRICS_INTERVAL_MS_DEFAULT;
        m->health = health;
        m->health_ctx = health_ctx;
        if (gethostname(m->host, sizeof(m->host) - 1) < 0)
                strcpy(m->host, "unknown");
        m->resource[0] = (ss_metric_attr){"service.name", "sidespand"};
        m->resource[1] = (ss_metric_attr){"service.version", SIDESPAN_VERSION_STRING};
        m->resource[2] = (ss_metric_attr){"host.name", m->host};
        m->headline = ss_headline_new();
        r = m->headline ? sets_init(m) : -ENOMEM;
        if (r == 0 && m->cfg.export_otlp)
                r = exporter_start(m);
        if (r == 0 && m->cfg.prometheus_listen)
                r = (m->server_api = ss_prom_server_load())
                        ? m->server_api->start(m->cfg.prometheus_listen, &m->server)
                        : -ENOENT;
        if (r == 0)
                r = uv_timer_init(loop, &m->timer);
        if (r < 0) {
                ss_log(SS_LOG_ERR, "metrics: cannot start: %s event=start-failed error=\"%s\"",
                       strerror(-r), strerror(-r));
                server_stop(m);
                /* An exporter that started closes in later loop iterations. */
                if (m->pipeline)
                        ss_pipeline_drain(m->pipeline, 0, NULL, NULL);
                stage_free(m);
                return r;
        }
        m->timer.data = m;
        m->next_export_ms = uv_now(loop) + m->cfg.interval_ms;
        tick = m->cfg.interval_ms;
        if (m->prom && tick > PROM_REFRESH_MS)
                tick = PROM_REFRESH_MS;
        if (m->otlp || m->prom)
                (void)uv_timer_start(&m->timer, on_tick, tick, tick);
        if (m->prom)
                publish_scrape(m, ss_now_ns()); /* the server logs where it listens */
        ss_log(SS_LOG_INFO,
               "metrics: derived from every span%s, every %llu ms, %s event=metrics-ready "
               "export=%s interval_ms=%llu temporality=%s",
               m->otlp ? ", exported over OTLP" : "", (unsigned long long)m->cfg.interval_ms,
               m->cfg.temporality == SS_TEMPORALITY_DELTA ? "delta" : "cumulative",
               m->otlp ? "otlp" : "none", (unsigned long long)m->cfg.interval_ms,
               m->cfg.temporality == SS_TEMPORALITY_DELTA ? "delta" : "cumulative");
        *ret = m;
        return 0;
}

void ss_metrics_drain(ss_metrics *m, uint32_t timeout_ms, void (*done)(void *ctx), void *ctx)
{
        if (!m) {
                if (done)
                        done(ctx);
                return;
        }
        if (m->otlp || m->prom)
                collect(m, true); /* what came since the last interval is not lost */
        server_stop(m);
        m->done = done;
        m->done_ctx = ctx;
        m->closing = 1 + (m->pipeline != NULL);
        uv_close((uv_handle_t *)&m->timer, on_timer_closed);
        if (m->pipeline)
                ss_pipeline_drain(m->pipeline, timeout_ms, on_pipeline_drained, m);
}
