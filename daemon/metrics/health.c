/* SPDX-License-Identifier: MIT */
#include "metrics/health.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int ss_health_init(ss_health *h, ss_registry *r)
{
        *h = (ss_health){
            .received =
                ss_registry_counter(r, "sidespan.spans.received",
                                    "Spans clients started (or sent whole)", "{span}", true),
            .refused = ss_registry_counter(r, "sidespan.spans.refused",
                                           "Span messages refused, by reason", "{span}", true),
            .exported = ss_registry_counter(r, "sidespan.spans.exported",
                                            "Spans (data points for the metrics exporter) "
                                            "the backend accepted, by exporter",
                                            "{span}", true),
            .dropped =
                ss_registry_counter(r, "sidespan.spans.dropped",
                                    "Spans given up, by exporter and reason", "{span}", true),
            .queue_bytes =
                ss_registry_gauge(r, "sidespan.exporter.queue.size",
                                  "Encoded bytes waiting or in flight, by exporter", "By", true),
            .spool_bytes = ss_registry_gauge(r, "sidespan.exporter.spool.size",
                                             "Bytes in the exporter's disk spool", "By", true),
            .clients = ss_registry_gauge(r, "sidespan.clients.connected", "Client connections open",
                                         "{client}", true),
            .open_spans = ss_registry_gauge(r, "sidespan.spans.open", "Spans open", "{span}", true),
            .memory = ss_registry_gauge(r, "process.memory.usage",
                                        "The daemon's resident memory (VmRSS)", "By", true),
            .heap =
                ss_registry_gauge(r, "sidespan.memory.heap",
                                  "Bytes malloc has in use and holds free, by state", "By", true),
            .input_buffers =
                ss_registry_gauge(r, "sidespan.memory.input_buffers",
                                  "Bytes of the client connections' input buffers", "By", true),
        };
        return h->received && h->refused && h->exported && h->dropped && h->queue_bytes &&
                       h->spool_bytes && h->clients && h->open_spans && h->memory && h->heap &&
                       h->input_buffers
                   ? 0
                   : -ENOMEM;
}

static bool ends_with(const char *s, size_t len, const char *suffix, size_t *ret_stem)
{
        size_t n = strlen(suffix);

        if (len <= n || memcmp(s + len - n, suffix, n))
                return false;
        *ret_stem = len - n;
        return true;
}

/* One exporter counter "exporter.<name>.<what>": the instrument it feeds, if any. */
static void exporter_counter(const ss_health *h, const ss_stat *st)
{
        static const char pre[] = "exporter.";
        const char *rest = st->name + sizeof(pre) - 1, *drop;
        size_t len = strlen(rest), stem;
        char name[SS_COUNTER_NAME_MAX];
        ss_metric_attr a[2] = {{"sidespan.exporter", name}, {"reason", NULL}};
        ss_instrument *i = NULL;
        uint32_t n = 1;

        if (ends_with(rest, len, ".spans_exported", &stem))
                i = h->exported;
        else if (ends_with(rest, len, ".queued_bytes", &stem))
                i = h->queue_bytes;
        else if (ends_with(rest, len, ".spool.bytes", &stem))
                i = h->spool_bytes;
        else if ((drop = strstr(rest, ".dropped.")) && !strchr(drop + 9, '.')) {
                stem = (size_t)(drop - rest);
                a[1].value = drop + 9;
                n = 2;
                i = h->dropped;
        } else
                return;
        snprintf(name, sizeof(name), "%.*s", (int)stem, rest);
        (void)ss_instrument_observe(i, (double)st->value, a, n);
}

void ss_health_observe(const ss_health *h, const ss_counters *c)
{
        static const char *const refused[] = {"open_span_limit", "unknown_span", "duplicate_span"};

        for (size_t k = 0; k < c->n; k++) {
                const ss_stat *st = &c->v[k];

                if (!strncmp(st->name, "exporter.", 9))
                        exporter_counter(h, st);
        }
        (void)ss_instrument_observe(h->received, (double)ss_counters_get(c, "spans_started"), NULL,
                                    0);
        for (size_t k = 0; k < sizeof(refused) / sizeof(refused[0]); k++)
                (void)ss_instrument_observe(h->refused, (double)ss_counters_get(c, refused[k]),
                                            &(ss_metric_attr){"reason", refused[k]}, 1);
        (void)ss_instrument_observe(h->clients, (double)ss_counters_get(c, "connections_active"),
                                    NULL, 0);
        (void)ss_instrument_observe(h->open_spans, (double)ss_counters_get(c, "spans_open"), NULL,
                                    0);
        (void)ss_instrument_observe(h->memory, (double)ss_counters_get(c, "heap.resident_bytes"),
                                    NULL, 0);
        (void)ss_instrument_observe(h->heap, (double)ss_counters_get(c, "heap.in_use_bytes"),
                                    &(ss_metric_attr){"state", "used"}, 1);
        (void)ss_instrument_observe(h->heap, (double)ss_counters_get(c, "heap.free_bytes"),
                                    &(ss_metric_attr){"state", "free"}, 1);
        (void)ss_instrument_observe(h->input_buffers,
                                    (double)ss_counters_get(c, "input_buffer_bytes"), NULL, 0);
}
