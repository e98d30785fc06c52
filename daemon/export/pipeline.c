/* SPDX-License-Identifier: MIT */
#include "export/pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "export/exporter-console.h"
#include "export/exporter-file.h"
#include "ss-macro.h"

#define DRAIN_POLL_MS 50

struct ss_pipeline {
        ss_sink sink;
        uv_loop_t *loop;
        uv_timer_t drain; /* polls the exporters while they drain */
        bool drain_started;
        uint64_t drain_deadline;
        uint32_t drain_timeout_ms;
        ss_exporter *exporters[SS_PIPELINE_MAX_EXPORTERS];
        size_t n;
        size_t closing; /* exporters destroyed and not yet freed, and the drain timer */
        void (*done)(void *ctx);
        void *done_ctx;
};

static void pipeline_put(ss_sink *s, ss_span *const *spans, size_t n)
{
        ss_pipeline *p = ss_container_of(s, ss_pipeline, sink);

        for (size_t i = 0; i < p->n; i++)
                p->exporters[i]->ops->add(p->exporters[i], spans, n);
}

static void pipeline_flush(ss_sink *s)
{
        ss_pipeline *p = ss_container_of(s, ss_pipeline, sink);

        for (size_t i = 0; i < p->n; i++)
                p->exporters[i]->ops->flush(p->exporters[i]);
}

static const ss_sink_ops pipeline_sink_ops = {.put = pipeline_put, .flush = pipeline_flush};

int ss_pipeline_new(uv_loop_t *loop, ss_pipeline **ret)
{
        ss_pipeline *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        p->sink.ops = &pipeline_sink_ops;
        p->loop = loop;
        *ret = p;
        return 0;
}

int ss_pipeline_add(ss_pipeline *p, ss_exporter *e)
{
        if (p->n == SS_PIPELINE_MAX_EXPORTERS) {
                e->ops->destroy(e);
                return -E2BIG;
        }
        p->exporters[p->n++] = e;
        return 0;
}

static void log_def(const ss_exporter_def *d)
{
        switch (d->kind) {
        case SS_EXPORT_OTLP_HTTP:
                ss_log(SS_LOG_INFO,
                       "exporting OTLP/HTTP %s to %s%s (exporter %s%s%s) event=exporter-ready "
                       "exporter=%s protocol=otlp-http endpoint=%s",
                       d->http.json ? "JSON" : "protobuf", d->http.endpoint,
                       d->http.gzip ? " with gzip" : "", d->name, d->why ? "; " : "",
                       d->why ? d->why : "", d->name, d->http.endpoint);
                break;
        case SS_EXPORT_OTLP_GRPC:
                ss_log(SS_LOG_INFO,
                       "exporting OTLP/gRPC to %s%s%s (exporter %s%s%s) event=exporter-ready "
                       "exporter=%s protocol=otlp-grpc endpoint=%s",
                       d->grpc.endpoint, d->grpc.gzip ? " with gzip" : "",
                       d->grpc.insecure ? " in plain text" : "", d->name, d->why ? "; " : "",
                       d->why ? d->why : "", d->name, d->grpc.endpoint);
                break;
        case SS_EXPORT_FILE:
                ss_log(SS_LOG_INFO,
                       "writing OTLP/JSON lines to %s (exporter %s) event=exporter-ready "
                       "exporter=%s protocol=file path=\"%s\"",
                       d->file_path, d->name, d->name, d->file_path);
                break;
        default:
                break;
        }
}

/* The network exporters are modules, each loaded once one is configured. */
static int grpc_exporter_new(uv_loop_t *loop, const ss_grpc_config *cfg, ss_exporter **ret)
{
        ss_grpc_exporter_new_fn *fn = ss_grpc_exporter_load();

        return fn ? fn(loop, cfg, ret) : -ENOENT;
}

static int http_exporter_new(uv_loop_t *loop, const ss_http_config *cfg, ss_exporter **ret)
{
        ss_http_exporter_new_fn *fn = ss_http_exporter_load();

        return fn ? fn(loop, cfg, ret) : -ENOENT;
}

/* Whether no exporter of c uses TLS: plaintext HTTP endpoints, insecure gRPC ones. */
static bool no_tls(const ss_export_config *c)
{
        for (size_t i = 0; i < c->n; i++) {
                const ss_exporter_def *d = &c->defs[i];

                if ((d->kind == SS_EXPORT_OTLP_HTTP &&
                     strncasecmp(d->http.endpoint, "http://", 7) != 0) ||
                    (d->kind == SS_EXPORT_OTLP_GRPC && !d->grpc.insecure))
                        return false;
        }
        return true;
}

/* One exporter of the configuration. */
static int build(ss_pipeline *p, const ss_export_config *c, const ss_exporter_def *d)
{
        ss_http_config http;
        ss_exporter *e = NULL;
        int r;

        switch (d->kind) {
        case SS_EXPORT_CONSOLE:
                r = ss_console_exporter_new(p->loop, c->console_fd, &e);
                break;
        case SS_EXPORT_FILE:
                r = ss_file_exporter_new(p->loop, d->file_path, d->http.max_batch,
                                         d->http.batch_delay_ms, &e);
                break;
        case SS_EXPORT_OTLP_HTTP:
                http = d->http;
                http.no_tls_in_process = no_tls(c);
                r = http_exporter_new(p->loop, &http, &e);
                break;
        default:
                r = grpc_exporter_new(p->loop, &d->grpc, &e);
                break;
        }
        if (r < 0) {
                ss_log(SS_LOG_ERR,
                       "cannot create the exporter %s event=exporter-failed exporter=%s "
                       "error=\"%s\"",
                       d->name, d->name, strerror(-r));
                return r;
        }
        e->name = d->name;
        log_def(d);
        return ss_pipeline_add(p, e);
}

int ss_pipeline_add_configured(ss_pipeline *p, const ss_export_config *c)
{
        int r = 0;

        for (size_t i = 0; i < c->n && r == 0; i++)
                r = build(p, c, &c->defs[i]);
        if (r == 0 && c->exporters_defaulted)
                ss_log(SS_LOG_NOTICE, "no exporter configured: printing finished traces to the "
                                      "console (set --endpoint or OTEL_EXPORTER_OTLP_ENDPOINT, "
                                      "or --config, to export OTLP) event=exporter-ready "
                                      "exporter=console protocol=console");
        return r;
}

ss_sink *ss_pipeline_sink(ss_pipeline *p)
{
        return &p->sink;
}

size_t ss_pipeline_exporters(const ss_pipeline *p)
{
        return p->n;
}

void ss_pipeline_put_one(ss_pipeline *p, size_t i, ss_span *const *spans, size_t n)
{
        if (i < p->n)
                p->exporters[i]->ops->add(p->exporters[i], spans, n);
}

int ss_pipeline_push_one(ss_pipeline *p, size_t i, ss_buf *body, size_t n)
{
        if (i >= p->n || !p->exporters[i]->ops->push) {
                ss_buf_free(body);
                return -ENOTSUP;
        }
        p->exporters[i]->ops->push(p->exporters[i], body, n);
        return 0;
}

bool ss_pipeline_busy(const ss_pipeline *p)
{
        for (size_t i = 0; i < p->n; i++)
                if (p->exporters[i]->ops->busy(p->exporters[i]))
                        return true;
        return false;
}

unsigned ss_pipeline_pressure(const void *pipeline)
{
        const ss_pipeline *p = pipeline;
        unsigned most = 0;

        for (size_t i = 0; i < p->n; i++) {
                const ss_exporter *e = p->exporters[i];
                unsigned v = e->ops->pressure ? e->ops->pressure(e) : 0;

                most = v > most ? v : most;
        }
        return most;
}

void ss_pipeline_counters(const void *pipeline, ss_counters *out)
{
        const ss_pipeline *p = pipeline;

        for (size_t i = 0; i < p->n; i++) {
                const ss_exporter *e = p->exporters[i];
                const ss_exporter_stats *st = &e->stats;
                char prefix[SS_COUNTER_NAME_MAX];

                snprintf(prefix, sizeof(prefix), "exporter.%s.", e->name);
                ss_counters_add(out, prefix, "spans_in", st->spans_in);
                ss_counters_add(out, prefix, "spans_exported", st->spans_exported);
                ss_counters_add(out, prefix, "spans_dropped", st->spans_dropped);
                ss_counters_add(out, prefix, "requests", st->requests);
                ss_counters_add(out, prefix, "failures", st->failures);
                ss_counters_add(out, prefix, "retries", st->retries);
                ss_counters_add(out, prefix, "spans_spooled", st->spans_spooled);
                ss_counters_add(out, prefix, "spans_replayed", st->spans_replayed);
                if (e->ops->counters)
                        e->ops->counters(e, prefix, out);
        }
}

/* ---- drain ------------------------------------------------------------------------------ */

/* One more of the exporters or the drain timer is gone; the last frees the pipeline. */
static void closed_one(void *ctx)
{
        ss_pipeline *p = ctx;
        void (*done)(void *ctx) = p->done;
        void *done_ctx = p->done_ctx;

        if (--p->closing > 0)
                return;
        free(p);
        if (done)
                done(done_ctx);
}

static void destroy_exporters(ss_pipeline *p)
{
        for (size_t i = 0; i < p->n; i++) {
                ss_exporter *e = p->exporters[i];
                /* Past the drain, whatever came in and was not exported is lost: dropped on
                 * the way, or still queued now (destroy() drops it). */
                uint64_t lost = e->stats.spans_in - e->stats.spans_exported;

                ss_log(lost ? SS_LOG_WARNING : SS_LOG_INFO,
                       "%s exporter: %llu span(s) exported, %llu not delivered "
                       "event=exporter-summary exporter=%s exported=%llu not_delivered=%llu",
                       e->name, (unsigned long long)e->stats.spans_exported,
                       (unsigned long long)lost, e->name,
                       (unsigned long long)e->stats.spans_exported, (unsigned long long)lost);
                e->freed = closed_one;
                e->freed_ctx = p;
                e->ops->destroy(e);
        }
        p->n = 0;
}

static void on_drain_closed(uv_handle_t *h)
{
        closed_one(h->data);
}

static void drain_finish(ss_pipeline *p)
{
        /* One for the timer (or for no timer): the pipeline outlives every callback. */
        p->closing = p->n + 1;
        destroy_exporters(p);
        if (p->drain_started)
                uv_close((uv_handle_t *)&p->drain, on_drain_closed);
        else
                closed_one(p);
}

static void on_drain_tick(uv_timer_t *t)
{
        ss_pipeline *p = t->data;
        bool busy = ss_pipeline_busy(p);

        if (busy && uv_now(p->loop) < p->drain_deadline)
                return;
        if (busy)
                ss_log(SS_LOG_WARNING,
                       "drain timeout (%u ms) reached with exports pending "
                       "event=drain-timeout drain_timeout_ms=%u",
                       p->drain_timeout_ms, p->drain_timeout_ms);
        drain_finish(p);
}

void ss_pipeline_drain(ss_pipeline *p, uint32_t timeout_ms, void (*done)(void *ctx), void *ctx)
{
        int r;

        p->done = done;
        p->done_ctx = ctx;
        p->drain_timeout_ms = timeout_ms;
        p->drain.data = p; /* also the pipeline when there is no timer to close */
        pipeline_flush(&p->sink);
        p->drain_deadline = uv_now(p->loop) + timeout_ms;
        r = uv_timer_init(p->loop, &p->drain);
        if (r == 0) {
                p->drain_started = true;
                r = uv_timer_start(&p->drain, on_drain_tick, 0, DRAIN_POLL_MS);
        }
        if (r < 0) {
                ss_log(SS_LOG_ERR,
                       "cannot wait for the exports to finish event=drain-failed "
                       "error=\"%s\"",
                       uv_strerror(r));
                drain_finish(p);
        }
}
