/* SPDX-License-Identifier: MIT */
/*
 * sidespand: wires the stages together and runs one libuv loop. Data flows
 * ingest -> trace -> policy -> export -> otlp; start-up builds the stages
 * from the last to the first so each has its downstream, and SIGINT/SIGTERM
 * take them down from the first: stop accepting, end what is open, drain the
 * exports. SIGHUP reloads: a restart in place, with the listening socket kept
 * across exec (see reload()). No stage logic lives here.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "base/fdlimit.h"
#include "base/heap.h"
#include "base/listen-fds.h"
#include "base/log.h"
#include "base/module.h"
#include "base/notify.h"
#include "base/notify-timers.h"
#include "conf/config.h"
#include "export/dispatch.h"
#include "export/pipeline.h"
#include "ingest/control.h"
#include "ingest/hold.h"
#include "ingest/listener.h"
#include "ingest/tap.h"
#include "metrics/stage.h"
#include "policy/stage.h"
#include "sidespan-version.h"
#include "trace/assembler.h"
#include "trace/pricing.h"
#include "trace/state.h"

/* The file in the state directory that holds open spans across a restart. */
#define STATE_FILE "open-spans.state"

typedef struct sidespand {
        uv_loop_t loop;
        uv_signal_t sigint;
        uv_signal_t sigterm;
        uv_signal_t sighup;
        ss_config cfg;
        ss_pipeline *pipeline;
        ss_policy *policy;
        ss_pricing *pricing;
        ss_assembler *assembler;
        ss_metrics *metrics;
        ss_control *control;
        ss_tap *tap;
        ss_listener *listener;
        ss_notify_timers *notify_timers;
        ss_heap *heap;
        char *state_path; /* STATE_DIR/STATE_FILE, or NULL */
        int argc;
        char **argv;
        int reload_fd; /* the listening socket for the next image; -1: no reload */
        bool stopping;
} sidespand;

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
                        ss_log(SS_LOG_WARNING,
                               "cannot create %s event=socket-failed dir=\"%s\" "
                               "error=\"%s\"",
                               dir, dir, strerror(errno));
        }
        free(dir);
}

/* ---- shutdown --------------------------------------------------------------------------- */

/* First to last: what the listener held is ended by the assembler, and the pipeline drains. */
static void take_down(sidespand *d, const char *reason)
{
        /* Open spans saved for the next start are not ended here (a failed save is logged,
         * and they end as orphans). */
        if (d->assembler && d->state_path && ss_assembler_open_spans(d->assembler) > 0 &&
            ss_assembler_save(d->assembler, d->state_path) >= 0)
                reason = NULL;
        ss_assembler_free(d->assembler, reason);
        d->assembler = NULL;
        /* After the assembler, whose orphans it counts; its last collection is exported. */
        ss_metrics_drain(d->metrics, d->cfg.drain_timeout_ms, NULL, NULL);
        d->metrics = NULL;
        ss_control_free(d->control);
        d->control = NULL;
        ss_heap_close(d->heap);
        d->heap = NULL;
        ss_policy_free(d->policy);
        d->policy = NULL;
        ss_tap_free(d->tap);
        d->tap = NULL;
        if (d->pipeline)
                ss_pipeline_drain(d->pipeline, d->cfg.drain_timeout_ms, NULL, NULL);
        d->pipeline = NULL;
}

static void on_listener_closed(void *ctx)
{
        sidespand *d = ctx;

        d->listener = NULL;
        take_down(d, "daemon shutting down");
}

/* Stop accepting, close the connections, and take the stages down once they have. */
static void stop(sidespand *d)
{
        d->stopping = true;
        ss_notify_timers_close(d->notify_timers);
        uv_close((uv_handle_t *)&d->sigint, NULL);
        uv_close((uv_handle_t *)&d->sigterm, NULL);
        uv_close((uv_handle_t *)&d->sighup, NULL);
        ss_listener_close(d->listener, on_listener_closed, d);
}

static void on_signal(uv_signal_t *sig, int signum)
{
        sidespand *d = sig->data;

        if (d->stopping)
                return;
        ss_log(SS_LOG_INFO, "%s: draining and exiting event=drain signal=%d", strsignal(signum),
               signum);
        ss_notify("STOPPING=1");
        stop(d);
}

/*
 * SIGHUP: reload everything the configuration says, by a restart in place.
 * The new configuration is checked first; a bad one is refused (its errors
 * on stderr) and the daemon goes on unchanged. A good one: the daemon stops
 * as on SIGTERM (open spans saved to the state directory, batches flushed,
 * in-flight exports waited for up to drain_timeout_ms, the rest spooled),
 * keeping its listening socket, then exec's itself with the same arguments
 * and that socket, so no client sees a refused connection; they reconnect,
 * and their sessions come back from the state file.
 */
static void on_reload(uv_signal_t *sig, int signum)
{
        sidespand *d = sig->data;
        ss_config next;
        int r;

        (void)signum;
        if (d->stopping)
                return;
        r = ss_config_load(&next, d->argc, d->argv);
        ss_config_free(&next);
        if (r != 0) {
                ss_log(SS_LOG_ERR,
                       "reload refused: the configuration has errors (above); running on "
                       "unchanged event=reload-refused");
                return;
        }
        d->reload_fd = ss_listener_hand_over(d->listener);
        if (d->reload_fd < 0) {
                ss_log(SS_LOG_ERR,
                       "reload refused: cannot keep the listening socket event=reload-refused "
                       "error=\"%s\"",
                       strerror(-d->reload_fd));
                d->reload_fd = -1;
                return;
        }
        ss_log(SS_LOG_INFO, "SIGHUP: reloading: draining, then starting again on the same socket "
                            "event=reload");
        ss_notify("RELOADING=1");
        stop(d);
}

/* After the loop: become the new image, which takes the socket and the state file. Returns
 * only on failure. */
static void reload(sidespand *d)
{
        int r = ss_listen_fds_pass(d->reload_fd);

        if (r == 0) {
                execv("/proc/self/exe", d->argv);
                r = -errno;
        }
        ss_log(SS_LOG_ERR, "reload failed: cannot start again: %s event=reload-failed error=\"%s\"",
               strerror(-r), strerror(-r));
}

/* ---- start-up --------------------------------------------------------------------------- */

/* STATUS= reads every counter STATS would answer with. */
static void collect_counters(const void *control, ss_counters *out)
{
        ss_control_collect(control, out);
}

static int signals_start(sidespand *d)
{
        int r = uv_signal_init(&d->loop, &d->sigint);

        if (r == 0)
                r = uv_signal_init(&d->loop, &d->sigterm);
        if (r == 0)
                r = uv_signal_init(&d->loop, &d->sighup);
        d->sigint.data = d->sigterm.data = d->sighup.data = d;
        if (r == 0)
                r = uv_signal_start(&d->sigint, on_signal, SIGINT);
        if (r == 0)
                r = uv_signal_start(&d->sigterm, on_signal, SIGTERM);
        if (r == 0)
                r = uv_signal_start(&d->sighup, on_reload, SIGHUP);
        if (r < 0)
                ss_log(SS_LOG_ERR,
                       "cannot watch SIGINT, SIGTERM and SIGHUP event=start-failed "
                       "error=\"%s\"",
                       uv_strerror(r));
        return r;
}

/* The counters STATS answers with, from every stage that has them, and the tap of kept
 * traces SUBSCRIBE joins. */
static int control_start(sidespand *d)
{
        int r = ss_control_new(ss_policy_sink(d->policy), &d->control);

        if (r == 0)
                r = ss_tap_new(&d->tap);
        if (r < 0)
                return r;
        ss_control_set_tap(d->control, d->tap);
        ss_policy_set_tap(d->policy, ss_tap_sink(d->tap));
        r = ss_control_add_counters(d->control, ss_tap_counters, d->tap);
        if (r == 0 && d->metrics)
                r = ss_control_add_counters(d->control, ss_metrics_counters, d->metrics);
        if (r == 0)
                r = ss_control_add_counters(d->control, ss_assembler_counters, d->assembler);
        if (r == 0)
                r = ss_control_add_counters(d->control, ss_policy_counters, d->policy);
        if (r == 0)
                r = ss_control_add_counters(d->control, ss_pipeline_counters, d->pipeline);
        return r;
}

/* The daemon's counters for the health metrics; none once the listener is gone (at the last
 * collection, in the shutdown), as its counters went with it. */
static void health_counters(const void *daemon, ss_counters *out)
{
        const sidespand *d = daemon;

        if (d->control && d->listener)
                ss_control_collect(d->control, out);
}

/* The metrics stage, shown every finished span by the assembler. */
static int metrics_start(sidespand *d)
{
        int r;

        if (!d->cfg.metrics.enabled)
                return 0;
        r = ss_metrics_new(&d->loop, &d->cfg.metrics, health_counters, d, &d->metrics);
        if (r == 0)
                ss_assembler_set_observer(d->assembler, ss_metrics_span, d->metrics);
        return r;
}

/* The pricing table: the configured file, else the one built in. */
static int pricing_load(sidespand *d)
{
        char err[512];
        int r = d->cfg.pricing_file
                    ? ss_pricing_load(d->cfg.pricing_file, &d->pricing, err, sizeof(err))
                    : ss_pricing_builtin(&d->pricing, err, sizeof(err));

        if (r < 0) {
                ss_log(SS_LOG_ERR, "pricing table %s: %s event=config-invalid key=pricing",
                       d->cfg.pricing_file ? d->cfg.pricing_file : "(built in)", err);
                return r;
        }
        ss_log(SS_LOG_INFO, "pricing: %zu models from %s event=pricing-loaded models=%zu",
               ss_pricing_size(d->pricing),
               d->cfg.pricing_file ? d->cfg.pricing_file : "the built-in table",
               ss_pricing_size(d->pricing));
        d->cfg.assembler.pricing = d->pricing;
        return 0;
}

static int policy_start(sidespand *d)
{
        const ss_sampling_config *s = &d->cfg.policy.sampling;
        char err[512];
        int r = ss_policy_new(&d->cfg.policy, d->pipeline, &d->policy, err, sizeof(err));

        if (r == -EINVAL)
                ss_log(SS_LOG_ERR, "policy: %s event=config-invalid key=policy", err);
        if (r < 0)
                return r;
        ss_log(SS_LOG_INFO,
               "sampling: head rate %g%s%s; content %s daemon-wide event=policy-ready "
               "rate=%g tail=%s",
               s->rate, ss_sampling_tail_active(s) ? ", tail policies on" : "",
               s->max_kept_per_second ? " (capped)" : "",
               d->cfg.policy.include_content ? "kept" : "dropped", s->rate,
               ss_sampling_tail_active(s) ? "on" : "off");
        return 0;
}

/* The state directory, created when missing; its file of open spans read back into the
 * assembler. A directory that cannot be used stops the start: the operator asked for it. */
static int state_start(sidespand *d)
{
        const char *dir = d->cfg.state_dir;

        if (!dir)
                return 0;
        if ((mkdir(dir, 0700) < 0 && errno != EEXIST) || access(dir, W_OK | X_OK) < 0) {
                ss_log(SS_LOG_ERR,
                       "state directory %s: %s event=start-failed key=state_dir path=\"%s\" "
                       "error=\"%s\"",
                       dir, strerror(errno), dir, strerror(errno));
                return -errno;
        }
        if (asprintf(&d->state_path, "%s/%s", dir, STATE_FILE) < 0)
                return -ENOMEM;
        (void)ss_assembler_restore(d->assembler, d->state_path); /* logged; a bad file is set
                                                                   aside, the start goes on */
        return 0;
}

/*
 * The backpressure holds input once an exporter's memory passes half its queue, checked after
 * each frame that hands spans on: the other half must take what one frame hands on, a trace's
 * finished spans, up to max_trace_bytes. Said once at the start when it cannot (a spool takes
 * what memory cannot: nothing to say then).
 */
static void warn_queue_room(const ss_config *cfg)
{
        uint64_t trace = cfg->assembler.max_trace_bytes;

        for (size_t i = 0; i < cfg->export.n; i++) {
                const ss_exporter_def *e = &cfg->export.defs[i];
                uint64_t queue = ss_dispatch_queue_bytes(e->http.max_queue_bytes);

                if (!(e->kind & (SS_EXPORT_OTLP_HTTP | SS_EXPORT_OTLP_GRPC)) || e->http.spool.dir ||
                    (trace && trace <= queue / 2))
                        continue;
                ss_log(SS_LOG_WARNING,
                       "max_trace_bytes %llu is %s half of exporter %s's queue_bytes %llu: a "
                       "trace that large ending can fill its queue and drop spans; lower "
                       "max_trace_bytes, raise queue_bytes or give it a spool "
                       "event=config-queue-room exporter=%s max_trace_bytes=%llu "
                       "queue_bytes=%llu",
                       (unsigned long long)trace, trace ? "over" : "(0: no limit) not under",
                       e->name, (unsigned long long)queue, e->name, (unsigned long long)trace,
                       (unsigned long long)queue);
        }
}

/* Room after the assembler for what its timer hands on: an exporter's memory under the mark
 * at which input is held. */
static bool pipeline_room(const void *pipeline)
{
        return ss_pipeline_pressure(pipeline) < SS_HOLD_HIGH_PCT;
}

static int start(sidespand *d)
{
        int r;

        r = pricing_load(d);
        if (r == 0)
                r = ss_pipeline_new(&d->loop, &d->pipeline);
        if (r == 0)
                r = ss_pipeline_add_configured(d->pipeline, &d->cfg.export);
        if (r == 0)
                r = policy_start(d);
        if (r == 0)
                r = ss_assembler_new(&d->loop, &d->cfg.assembler, ss_policy_sink(d->policy),
                                     &d->assembler);
        if (r == 0)
                r = metrics_start(d);
        if (r == 0)
                r = state_start(d);
        if (r == 0)
                r = control_start(d);
        if (r == 0)
                r = ss_heap_start(&d->loop, &d->heap);
        if (r == 0)
                r = ss_control_add_counters(d->control, ss_heap_counters, d->heap);
        if (r < 0)
                return r;
        warn_queue_room(&d->cfg);
        /* A connection and, at worst, the pidfd of its own process for each. */
        (void)ss_fd_limit_raise(2ull * d->cfg.listener.max_connections + SS_FD_RESERVE);
        make_socket_dir(d->cfg.listener.path);
        r = ss_listener_new(&d->loop, &d->cfg.listener, d->assembler, d->control, &d->listener);
        if (r == 0)
                r = ss_control_add_counters(d->control, ss_listener_counters, d->listener);
        if (r == 0) {
                ss_listener_set_pressure(d->listener, ss_pipeline_pressure, d->pipeline);
                ss_assembler_set_room(d->assembler, pipeline_room, d->pipeline);
        }
        if (r == 0)
                r = signals_start(d);
        if (r == 0)
                r = ss_notify_timers_start(&d->loop, collect_counters, d->control,
                                           &d->notify_timers);
        if (r < 0)
                return r;
        ss_log(SS_LOG_INFO, "sidespand %s listening on %s event=listening version=%s path=\"%s\"",
               SIDESPAN_VERSION_STRING, ss_listener_path(d->listener), SIDESPAN_VERSION_STRING,
               ss_listener_path(d->listener));
        ss_notify("READY=1");
        return 0;
}

/* A failed start: take down what was built and let the loop run the close callbacks. */
static void abort_start(sidespand *d)
{
        if (d->listener) {
                ss_listener_close(d->listener, on_listener_closed, d);
        } else {
                take_down(d, "daemon failed to start");
        }
        if (d->sigint.loop)
                uv_close((uv_handle_t *)&d->sigint, NULL);
        if (d->sigterm.loop)
                uv_close((uv_handle_t *)&d->sigterm, NULL);
        if (d->sighup.loop)
                uv_close((uv_handle_t *)&d->sighup, NULL);
        uv_run(&d->loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
        static sidespand d;
        int r;

        /* GnuTLS, which Debian's libcurl (through librtmp) and libmicrohttpd bring along, sets
         * itself up as it is loaded unless told not to: 0.6 MB of resident pages in a daemon
         * that never uses it. Those that do use it (libmicrohttpd, librtmp's RTMPE, OpenLDAP)
         * set it up themselves. Before any module is loaded, alone on the only thread; an
         * operator's own setting stands. */
        setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 0);
        d.argc = argc;
        d.argv = argv;
        d.reload_fd = -1;
        r = ss_config_load(&d.cfg, argc, argv);
        if (r != 0) {
                ss_config_free(&d.cfg);
                return r > 0 ? EXIT_SUCCESS : 2;
        }
        ss_log_set_level(d.cfg.log_level);
        signal(SIGPIPE, SIG_IGN);
        r = uv_loop_init(&d.loop);
        if (r < 0) {
                ss_log(SS_LOG_ERR, "cannot create the event loop event=start-failed error=\"%s\"",
                       uv_strerror(r));
                return EXIT_FAILURE;
        }
        r = start(&d);
        if (r < 0)
                abort_start(&d);
        else
                uv_run(&d.loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&d.loop) != 0)
                ss_log(SS_LOG_WARNING,
                       "event loop closed with handles still open event=handle-leak");
        ss_module_exit_all();
        ss_pricing_free(d.pricing);
        free(d.state_path);
        ss_config_free(&d.cfg);
        if (r == 0 && d.reload_fd >= 0) {
                reload(&d);
                r = -1;
        }
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
