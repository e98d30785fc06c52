/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Prometheus scrape endpoint: a snapshot rendered as the text exposition
 * format 0.0.4, and an HTTP server that serves the last rendered text.
 *
 * The mapping follows OpenTelemetry's "Prometheus and OpenMetrics
 * compatibility" specification: names and label keys sanitized, the unit as
 * a suffix (s -> _seconds, By -> _bytes, {annotations} dropped), _total on
 * counters, histograms as cumulative _bucket{le=...}, _sum and _count,
 * otel_scope_name/otel_scope_version labels, the resource as target_info.
 * Delta sums and histograms are dropped, as the specification asks of an
 * exporter that does not accumulate them.
 *
 * The server runs libmicrohttpd's own polling thread. The loop thread renders
 * and publishes; the HTTP thread only takes a reference to the published text
 * under a mutex held for a pointer copy, so the loop never waits on a scrape.
 * The server (metrics/prometheus-server.c, the one file that includes
 * libmicrohttpd) is the module sidespan-prometheus.so (base/module.h): a
 * daemon that serves no scrapes never maps libmicrohttpd, nor the GnuTLS,
 * p11-kit and nettle libraries it links, about 2.5 MB of resident pages.
 */

#include <stdint.h>

#include "base/module.h"
#include "metrics/metrics.h"
#include "ss-buf.h"

/* Longest metric name or label key rendered, suffixes included. */
#define SS_PROM_NAME_MAX 256

/* At most this many scrapes at once, each idle for at most SS_PROM_TIMEOUT_S seconds. */
#define SS_PROM_CONNECTIONS 16
#define SS_PROM_TIMEOUT_S   10

/* Append s as Prometheus text to out. 0; -ENOBUFS past out's maximum, -ENOMEM; -EINVAL for a
 * metric name or label key longer than SS_PROM_NAME_MAX. On failure out is as it was. Never
 * blocks. A metric whose name another already took is dropped with a rate-limited warning,
 * which makes this loop thread only. */
int ss_prom_render(const ss_metrics_snapshot *s, ss_buf *out);

typedef struct ss_prom_server ss_prom_server;

/* Listen on listen ("127.0.0.1:9464", "[::1]:9464"; port 0 picks a free port) and serve GET
 * /metrics from the published text (empty until the first publish). *ret is written on
 * success and owned by the caller until ss_prom_server_stop(). -EINVAL for a bad address
 * (logged, naming it), -EADDRINUSE or -EIO when libmicrohttpd cannot start, -ENOMEM. Binds
 * and starts a thread: call at startup, on the loop thread. */
int ss_prom_server_start(const char *listen, ss_prom_server **ret);

/* The port the server is bound to (the chosen one when started with port 0). Any thread. */
uint16_t ss_prom_server_port(const ss_prom_server *p);

/* Serve a copy of text from now on. The copy is made before the lock, which is held only to
 * swap a pointer: the loop thread never waits on a scrape. When the copy cannot be made the
 * previous text stays, with a rate-limited warning. Loop thread. */
void ss_prom_server_publish(ss_prom_server *p, const ss_buf *text);

/* Stop serving, wait for libmicrohttpd's thread, free p. Scrapes in flight are cut off. Blocks
 * for as long as the thread takes to finish a request: at shutdown only. Accepts NULL. */
void ss_prom_server_stop(ss_prom_server *p);

/* The server's calls, as the module hands them over. */
typedef struct ss_prom_server_api {
        int (*start)(const char *listen, ss_prom_server **ret);
        void (*publish)(ss_prom_server *p, const ss_buf *text);
        void (*stop)(ss_prom_server *p);
} ss_prom_server_api;

/* In the module: the calls above. */
const ss_prom_server_api *ss_prom_server_api_get(void);
typedef const ss_prom_server_api *ss_prom_server_api_get_fn(void);

/* The server's calls as the daemon reaches them: from the module sidespan-prometheus.so,
 * loaded the first time. NULL, with a line logged naming the file, when it cannot be
 * loaded. */
static inline const ss_prom_server_api *ss_prom_server_load(void)
{
        ss_module_fn fn;

        return ss_module_fn_get("prometheus", "ss_prom_server_api_get", &fn) == 0
                   ? ((ss_prom_server_api_get_fn *)fn)()
                   : NULL;
}
