/* SPDX-License-Identifier: MIT */
/*
 * sidespand: one libuv loop owns ingest, assembly and export. Start-up
 * builds the exporters, the assembler and the listener in that order;
 * SIGINT/SIGTERM take them down in reverse, draining the exporters first.
 */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "assembler.h"
#include "config.h"
#include "exporter-console.h"
#include "exporter-file.h"
#include "exporter-http.h"
#include "log.h"
#include "server.h"

#define DRAIN_POLL_MS 50

typedef struct sidespand {
        uv_loop_t loop;
        uv_signal_t sigint;
        uv_signal_t sigterm;
        uv_timer_t drain;
        uint64_t drain_deadline;
        ss_config cfg;
        ss_exporter *exporters[3];
        size_t n_exporters;
        ss_assembler *assembler;
        ss_server *server;
        bool stopping;
} sidespand;

/* systemd Type=notify, without linking libsystemd: one datagram to $NOTIFY_SOCKET. */
static void notify(const char *state)
{
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t len;
        int fd;

        if (!path || (path[0] != '/' && path[0] != '@') ||
            (len = strlen(path)) >= sizeof(sa.sun_path))
                return;
        memcpy(sa.sun_path, path, len);
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = '\0';
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return;
        (void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
        close(fd);
}

static int build_exporters(sidespand *d)
{
        const ss_config *c = &d->cfg;
        int r = 0;

        if (c->exporters & SS_EXPORT_CONSOLE)
                r = ss_console_exporter_new(stdout, &d->exporters[d->n_exporters++]);
        if (r == 0 && (c->exporters & SS_EXPORT_FILE))
                r = ss_file_exporter_new(&d->loop, c->file_path, c->batch_size, c->batch_delay_ms,
                                         &d->exporters[d->n_exporters++]);
        if (r == 0 && (c->exporters & SS_EXPORT_OTLP_HTTP)) {
                ss_http_config h;

                ss_http_config_defaults(&h);
                h.endpoint = c->endpoint;
                h.headers = (const char *const *)c->headers;
                h.n_headers = c->n_headers;
                h.timeout_ms = c->timeout_ms;
                h.gzip = c->gzip;
                h.max_batch = c->batch_size;
                h.batch_delay_ms = c->batch_delay_ms;
                h.max_queue_bytes = c->retry_queue_bytes;
                h.max_attempts = c->max_attempts;
                r = ss_http_exporter_new(&d->loop, &h, &d->exporters[d->n_exporters++]);
        }
        if (r < 0) {
                d->n_exporters--;
                ss_log(SS_LOG_ERR, "cannot create the exporters: %s", strerror(-r));
        }
        return r;
}

static void log_exporters(const sidespand *d)
{
        const ss_config *c = &d->cfg;

        if (c->exporters & SS_EXPORT_OTLP_HTTP)
                ss_log(SS_LOG_INFO, "exporting OTLP/HTTP protobuf to %s%s", c->endpoint,
                       c->gzip ? " (gzip)" : "");
        if (c->exporters & SS_EXPORT_FILE)
                ss_log(SS_LOG_INFO, "writing OTLP/JSON lines to %s", c->file_path);
        if (c->exporters_defaulted && (c->exporters & SS_EXPORT_CONSOLE))
                ss_log(SS_LOG_NOTICE, "no exporter configured: printing finished traces to the "
                                      "console (set --endpoint or OTEL_EXPORTER_OTLP_ENDPOINT "
                                      "to export OTLP)");
}

/* Create the socket's directory when it is missing (one level, like systemd's RuntimeDirectory). */
static void make_socket_dir(const char *path)
{
        char *dir = strdup(path), *slash;

        if (!dir)
                return;
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        ss_log(SS_LOG_WARNING, "cannot create %s: %s", dir, strerror(errno));
        }
        free(dir);
}

/* ---- shutdown ------------------------------------------------------------------------- */

static bool exporters_busy(const sidespand *d)
{
        for (size_t i = 0; i < d->n_exporters; i++)
                if (d->exporters[i]->ops->busy(d->exporters[i]))
                        return true;
        return false;
}

static void destroy_exporters(sidespand *d)
{
        for (size_t i = 0; i < d->n_exporters; i++) {
                ss_exporter *e = d->exporters[i];
                /* Past the drain, whatever came in and was not exported is lost: dropped on
                 * the way, or still queued now (destroy() drops it). */
                uint64_t lost = e->stats.spans_in - e->stats.spans_exported;

                ss_log(lost ? SS_LOG_WARNING : SS_LOG_INFO,
                       "%s exporter: %llu span(s) exported, %llu not delivered", e->name,
                       (unsigned long long)e->stats.spans_exported, (unsigned long long)lost);
                e->ops->destroy(e);
        }
        d->n_exporters = 0;
}

static void on_drain_tick(uv_timer_t *t)
{
        sidespand *d = t->data;

        if (exporters_busy(d) && uv_now(&d->loop) < d->drain_deadline)
                return;
        if (exporters_busy(d))
                ss_log(SS_LOG_WARNING, "drain timeout (%u ms) reached with exports pending",
                       d->cfg.drain_timeout_ms);
        uv_close((uv_handle_t *)t, NULL);
        destroy_exporters(d);
}

static void on_server_closed(void *ctx)
{
        sidespand *d = ctx;

        d->server = NULL;
        /* Connections are gone: end what they left open and hand every trace on. */
        ss_assembler_free(d->assembler, "daemon shutting down");
        d->assembler = NULL;
        for (size_t i = 0; i < d->n_exporters; i++)
                d->exporters[i]->ops->flush(d->exporters[i]);
        d->drain_deadline = uv_now(&d->loop) + d->cfg.drain_timeout_ms;
        uv_timer_init(&d->loop, &d->drain);
        d->drain.data = d;
        uv_timer_start(&d->drain, on_drain_tick, 0, DRAIN_POLL_MS);
}

static void on_signal(uv_signal_t *sig, int signum)
{
        sidespand *d = sig->data;

        if (d->stopping)
                return;
        d->stopping = true;
        ss_log(SS_LOG_INFO, "%s: draining and exiting", strsignal(signum));
        notify("STOPPING=1");
        uv_close((uv_handle_t *)&d->sigint, NULL);
        uv_close((uv_handle_t *)&d->sigterm, NULL);
        ss_server_close(d->server, on_server_closed, d);
}

/* ---- start-up ------------------------------------------------------------------------- */

static int start(sidespand *d)
{
        ss_server_config sc = {.path = d->cfg.socket_path,
                               .max_frame = d->cfg.max_frame,
                               .max_connections = d->cfg.max_connections};
        int r;

        r = build_exporters(d);
        if (r < 0)
                return r;
        r = ss_assembler_new(&d->loop, &d->cfg.assembler, d->exporters, d->n_exporters,
                             &d->assembler);
        if (r < 0)
                return r;
        make_socket_dir(d->cfg.socket_path);
        r = ss_server_new(&d->loop, &sc, d->assembler, d->exporters, d->n_exporters, &d->server);
        if (r < 0)
                return r;
        uv_signal_init(&d->loop, &d->sigint);
        uv_signal_init(&d->loop, &d->sigterm);
        d->sigint.data = d->sigterm.data = d;
        uv_signal_start(&d->sigint, on_signal, SIGINT);
        uv_signal_start(&d->sigterm, on_signal, SIGTERM);
        ss_log(SS_LOG_INFO, "listening on %s", d->cfg.socket_path);
        log_exporters(d);
        notify("READY=1");
        return 0;
}

/* A failed start: take down what was built and let the loop run the close callbacks. */
static void abort_start(sidespand *d)
{
        ss_assembler_free(d->assembler, "daemon failed to start");
        destroy_exporters(d);
        uv_run(&d->loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
        static sidespand d;
        int r;

        r = ss_config_load(&d.cfg, argc, argv);
        if (r != 0) {
                ss_config_free(&d.cfg);
                return r > 0 ? EXIT_SUCCESS : 2;
        }
        ss_log_set_level(d.cfg.log_level);
        signal(SIGPIPE, SIG_IGN);
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                ss_log(SS_LOG_ERR, "curl_global_init failed");
                return EXIT_FAILURE;
        }
        uv_loop_init(&d.loop);
        r = start(&d);
        if (r < 0)
                abort_start(&d);
        else
                uv_run(&d.loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&d.loop) != 0)
                ss_log(SS_LOG_WARNING, "event loop closed with handles still open");
        curl_global_cleanup();
        ss_config_free(&d.cfg);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
