/* SPDX-License-Identifier: MIT */
/*
 * Every line of sidespand that speaks to grpc core is in this file and, for
 * the configured headers as grpc metadata, grpc-metadata.c: its API moves
 * faster than the wrapped-language ones, so it stays in one place
 * (grpc-support.c checks the settings and names status codes without it). It
 * is built as the module sidespan-grpc.so (base/module.h): a daemon without a
 * gRPC exporter never maps grpc core.
 * What is not gRPC (batching, queueing, retry decisions, counting) is
 * export/dispatch.c's, shared with the OTLP/HTTP exporter.
 *
 * How the completion-queue thread and the loop meet: the loop thread creates
 * and starts every call (one batch of six ops, the attempt as its tag);
 * the cq thread only waits in grpc_completion_queue_next(), appends each
 * finished attempt to a list under mu and calls uv_async_send(); on_async()
 * on the loop takes the whole list (sends coalesce) and reads the outcome.
 * At destroy the loop cancels the calls in flight; once their completions
 * are back (and the channel is not halfway through connecting, see
 * channel_close()) it destroys the channel and shuts the queue down; the cq
 * thread drains it, says so, waits until the loop has let go of every grpc
 * object, calls grpc_shutdown() (which may take a while and so is kept off
 * the loop), says so, and leaves; the loop then joins it (it is past its last
 * uv_async_send()) and closes the async handle, whose close frees the
 * exporter.
 */
#include "export/exporter-grpc.h"

#include <errno.h>
#include <limits.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "export/dispatch.h"
#include "export/grpc-metadata.h"
#include "export/grpc-support.h"
#include "export/tls.h"
#include "otlp/otlp.h"
#include "sidespan-version.h"
#include "ss-macro.h"

#define GRPC_EXPORT_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
/* An ExportTraceServiceResponse is a few bytes; this is grpc's own default, said out loud. */
#define GRPC_MAX_RESPONSE_BYTES (4 << 20)
/* How long destroy() lets a connection attempt finish before it destroys the channel. */
#define GRPC_CLOSE_SETTLE_MS 1000
/* Bytes of a status's details quoted in a log line. */
#define GRPC_LOG_TEXT_MAX 200
#define GRPC_USER_AGENT   "sidespan/" SIDESPAN_VERSION_STRING

/* One call: its tag, what it sends, and what grpc writes back until the completion. */
typedef struct attempt {
        struct attempt *next; /* in the finished list */
        ss_req *req;          /* NULL once abandoned at destroy */
        grpc_call *call;
        grpc_byte_buffer *send;
        grpc_byte_buffer *recv;
        grpc_metadata_array initial_md;
        grpc_metadata_array trailing_md;
        grpc_status_code status;
        grpc_slice details;
} attempt;

typedef struct grpc_exporter {
        ss_dispatch d; /* first: batching, queueing, retries; its ss_exporter is ours */
        char *target;  /* "dns:///host:port" */
        bool tls;
        ss_tls_pems pem;     /* read at creation, freed once the channel has them */
        ss_grpc_metadata md; /* the configured headers */
        grpc_slice method;
        const char *method_name; /* static */
        uint32_t timeout_ms;
        bool gzip;
        bool grpc_ref; /* the loop owes grpc_shutdown(); the cq thread does once it runs */
        grpc_channel *channel;
        grpc_completion_queue *cq;
        uv_async_t async;
        uv_thread_t thread;
        size_t live;            /* calls started whose completion the loop has not had yet */
        bool closing;           /* destroy() came: once no call is live, the channel goes */
        bool watching;          /* for the channel to leave CONNECTING, before it goes */
        gpr_timespec settle_by; /* how long that may take */
        char watch_tag;         /* the watch's tag: its address tells it from an attempt */
        bool sync_init, async_open, thread_running, let_go;
        /* Shared with the cq thread, under mu. */
        uv_mutex_t mu;
        uv_cond_t cond;      /* let_go_shared, for the cq thread */
        attempt *done_head;  /* finished calls, oldest first */
        attempt **done_tail; /* where the next one goes */
        bool watch_fired;    /* the connectivity watch is over */
        bool drained;        /* the thread saw GRPC_QUEUE_SHUTDOWN */
        bool let_go_shared;  /* the loop holds no grpc object: grpc_shutdown() may run */
        bool finished;       /* the thread is past grpc_shutdown() and leaving */
} grpc_exporter;

/* grpc core's own log lines (errors only, at its default verbosity) join ours. Any thread. */
static void on_grpc_log(gpr_log_func_args *args)
{
        ss_log(SS_LOG_DEBUG, "grpc: %s event=grpc-log", args->message);
}

/* ---- calls (loop thread) ---- */

static void attempt_free(attempt *a)
{
        if (a->send)
                grpc_byte_buffer_destroy(a->send);
        if (a->recv)
                grpc_byte_buffer_destroy(a->recv);
        grpc_metadata_array_destroy(&a->initial_md);
        grpc_metadata_array_destroy(&a->trailing_md);
        grpc_slice_unref(a->details);
        if (a->call)
                grpc_call_unref(a->call);
        free(a);
}

static attempt *attempt_new(ss_req *r)
{
        attempt *a = calloc(1, sizeof(*a));
        grpc_slice body;

        if (!a)
                return NULL;
        a->req = r;
        a->status = GRPC_STATUS_UNKNOWN; /* unless grpc says otherwise */
        a->details = grpc_empty_slice();
        grpc_metadata_array_init(&a->initial_md);
        grpc_metadata_array_init(&a->trailing_md);
        /* A copy per attempt: grpc may hold its slices until the call is gone, and r may be
         * dropped before that. */
        body = grpc_slice_from_copied_buffer((const char *)r->body.data, r->body.len);
        a->send = grpc_raw_byte_buffer_create(&body, 1);
        grpc_slice_unref(body);
        return a;
}

static void ops_fill(grpc_exporter *e, attempt *a, grpc_op ops[6])
{
        memset(ops, 0, 6 * sizeof(*ops));
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[0].data.send_initial_metadata.count = e->md.n;
        ops[0].data.send_initial_metadata.metadata = e->md.md;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = a->send;
        ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[3].data.recv_initial_metadata.recv_initial_metadata = &a->initial_md;
        ops[4].op = GRPC_OP_RECV_MESSAGE;
        ops[4].data.recv_message.recv_message = &a->recv;
        ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        ops[5].data.recv_status_on_client.trailing_metadata = &a->trailing_md;
        ops[5].data.recv_status_on_client.status = &a->status;
        ops[5].data.recv_status_on_client.status_details = &a->details;
}

/* The dispatch's start(): one call for r, in flight from now until its completion. */
static int grpc_start(ss_dispatch *d, ss_req *r)
{
        grpc_exporter *e = (grpc_exporter *)d;
        gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                             gpr_time_from_millis(e->timeout_ms, GPR_TIMESPAN));
        attempt *a = attempt_new(r);
        grpc_op ops[6];
        grpc_call_error err;

        if (!a)
                return -ENOMEM;
        a->call = grpc_channel_create_call(e->channel, NULL, GRPC_PROPAGATE_DEFAULTS, e->cq,
                                           e->method, NULL, deadline, NULL);
        if (!a->call) {
                attempt_free(a);
                return -ENOMEM;
        }
        ops_fill(e, a, ops);
        err = grpc_call_start_batch(a->call, ops, SS_ELEMENTSOF(ops), a, NULL);
        if (err != GRPC_CALL_OK) {
                /* No completion will come for this one. */
                ss_log_rl(&e->d.rl_error, SS_LOG_ERR,
                          "otlp-grpc: cannot start a call event=grpc-call-failed "
                          "exporter=otlp-grpc error=%s",
                          grpc_call_error_to_string(err));
                attempt_free(a);
                return -EIO;
        }
        r->transport = a;
        e->live++;
        return 0;
}

/* The dispatch's abandon(): cancel; the attempt goes when its completion comes through. */
static void grpc_abandon(ss_dispatch *d, ss_req *r)
{
        attempt *a = r->transport;

        a->req = NULL;
        r->transport = NULL;
        grpc_call_cancel(a->call, NULL);
}

/* ---- outcomes (loop thread) ---- */

/* RetryInfo's delay in the grpc-status-details-bin trailer (grpc has decoded the base64),
 * or -1. */
static long retry_info_ms(const grpc_metadata_array *md)
{
        for (size_t i = 0; i < md->count; i++)
                if (grpc_slice_str_cmp(md->metadata[i].key, "grpc-status-details-bin") == 0)
                        return ss_retry_info_parse(GRPC_SLICE_START_PTR(md->metadata[i].value),
                                                   GRPC_SLICE_LENGTH(md->metadata[i].value));
        return -1;
}

static void on_ok(grpc_exporter *e, attempt *a, ss_req *r)
{
        grpc_byte_buffer_reader rd;
        grpc_slice resp = grpc_empty_slice();

        if (a->recv && grpc_byte_buffer_reader_init(&rd, a->recv)) {
                resp = grpc_byte_buffer_reader_readall(&rd);
                grpc_byte_buffer_reader_destroy(&rd);
        }
        ss_dispatch_succeeded(&e->d, r, GRPC_SLICE_START_PTR(resp), GRPC_SLICE_LENGTH(resp), false);
        grpc_slice_unref(resp);
}

static void on_status(grpc_exporter *e, attempt *a, ss_req *r)
{
        long after_ms = retry_info_ms(&a->trailing_md);
        char text[GRPC_LOG_TEXT_MAX + 1];
        char why[GRPC_LOG_TEXT_MAX + 64];

        ss_log_text(text, sizeof(text), (const char *)GRPC_SLICE_START_PTR(a->details),
                    GRPC_SLICE_LENGTH(a->details));
        snprintf(why, sizeof(why), "gRPC %s (%s)", ss_grpc_code_name((int)a->status), text);
        ss_dispatch_failed(&e->d, r, ss_retry_grpc_status((int)a->status, after_ms >= 0), after_ms,
                           why);
}

static void attempt_done(grpc_exporter *e, attempt *a)
{
        ss_req *r = a->req;

        e->live--;
        if (r) {
                r->transport = NULL;
                if (a->status == GRPC_STATUS_OK)
                        on_ok(e, a, r);
                else
                        on_status(e, a, r);
        }
        attempt_free(a);
}

/* ---- the completion-queue thread ---- */

/* Hand a finished attempt, the connectivity watch (tag == &e->watch_tag), or only news
 * (tag == NULL) to the loop. */
static void hand_over(grpc_exporter *e, void *tag)
{
        uv_mutex_lock(&e->mu);
        if (tag == &e->watch_tag) {
                e->watch_fired = true;
        } else if (tag) {
                attempt *a = tag;

                *e->done_tail = a;
                e->done_tail = &a->next;
        }
        uv_mutex_unlock(&e->mu);
        uv_async_send(&e->async);
}

static void cq_thread(void *arg)
{
        grpc_exporter *e = arg;
        grpc_event ev;

        for (;;) {
                ev = grpc_completion_queue_next(e->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                        break;
                /* success is 1 even for a failed RPC: the status says how it went. */
                if (ev.type == GRPC_OP_COMPLETE)
                        hand_over(e, ev.tag);
        }
        uv_mutex_lock(&e->mu);
        e->drained = true;
        uv_mutex_unlock(&e->mu);
        hand_over(e, NULL);
        uv_mutex_lock(&e->mu);
        while (!e->let_go_shared)
                uv_cond_wait(&e->cond, &e->mu);
        uv_mutex_unlock(&e->mu);
        grpc_shutdown();
        uv_mutex_lock(&e->mu);
        e->finished = true;
        uv_mutex_unlock(&e->mu);
        hand_over(e, NULL);
}

/* ---- the loop's side of the bridge ---- */

/* Drained: nothing will use the queue or the slices again; let the thread shut grpc down. */
static void let_go(grpc_exporter *e)
{
        grpc_completion_queue_destroy(e->cq);
        e->cq = NULL;
        ss_grpc_metadata_free(&e->md);
        e->let_go = true;
        uv_mutex_lock(&e->mu);
        e->let_go_shared = true;
        uv_cond_signal(&e->cond);
        uv_mutex_unlock(&e->mu);
}

static void on_async_closed(uv_handle_t *h)
{
        ss_dispatch_release(&ss_container_of(h, grpc_exporter, async)->d);
}

/*
 * No call is left: the channel goes, and the thread drains the queue and
 * leaves. Not while it connects, though: grpc 1.51 destroying a channel
 * whose connection attempt is under way now and then keeps the connection,
 * its descriptor and its own initialisation for ever. So while it is
 * CONNECTING (a live collector answers in milliseconds) we watch it for up to
 * GRPC_CLOSE_SETTLE_MS first.
 */
static void channel_close(grpc_exporter *e)
{
        if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), e->settle_by) < 0 &&
            grpc_channel_check_connectivity_state(e->channel, 0) == GRPC_CHANNEL_CONNECTING) {
                grpc_channel_watch_connectivity_state(e->channel, GRPC_CHANNEL_CONNECTING,
                                                      e->settle_by, e->cq, &e->watch_tag);
                e->watching = true;
                return;
        }
        grpc_channel_destroy(e->channel);
        e->channel = NULL;
        grpc_completion_queue_shutdown(e->cq);
}

static void on_async(uv_async_t *h)
{
        grpc_exporter *e = ss_container_of(h, grpc_exporter, async);
        attempt *list, *next;
        bool drained, finished;

        uv_mutex_lock(&e->mu);
        list = e->done_head;
        e->done_head = NULL;
        e->done_tail = &e->done_head;
        if (e->watch_fired)
                e->watching = false;
        e->watch_fired = false;
        drained = e->drained;
        finished = e->finished;
        uv_mutex_unlock(&e->mu);
        for (; list; list = next) {
                next = list->next;
                attempt_done(e, list);
        }
        if (e->closing && e->live == 0 && e->channel && !e->watching)
                channel_close(e);
        if (drained && !e->let_go)
                let_go(e);
        if (finished) {
                /* It is past its last uv_async_send(): this returns at once. */
                uv_thread_join(&e->thread);
                e->thread_running = false;
                uv_close((uv_handle_t *)&e->async, on_async_closed);
                return;
        }
        ss_dispatch_kick(&e->d);
}

/* The dispatch's close(): every call is cancelled; the channel goes once their completions
 * are back. */
static void grpc_close(ss_dispatch *d)
{
        grpc_exporter *e = (grpc_exporter *)d;

        if (e->thread_running) {
                e->closing = true;
                e->settle_by =
                    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                 gpr_time_from_millis(GRPC_CLOSE_SETTLE_MS, GPR_TIMESPAN));
                if (e->live == 0)
                        channel_close(e);
                return;
        }
        if (e->async_open)
                uv_close((uv_handle_t *)&e->async, on_async_closed);
}

/* What is left when no thread ever ran: nothing was started, so nothing waits. */
static void grpc_teardown_here(grpc_exporter *e)
{
        if (e->channel)
                grpc_channel_destroy(e->channel);
        if (e->cq) {
                grpc_completion_queue_shutdown(e->cq);
                while (grpc_completion_queue_next(e->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
                           .type != GRPC_QUEUE_SHUTDOWN)
                        ;
                grpc_completion_queue_destroy(e->cq);
        }
        ss_grpc_metadata_free(&e->md);
        if (e->grpc_ref)
                grpc_shutdown();
}

/* The dispatch's free(): the last step, whatever was built. */
static void grpc_free(ss_dispatch *d)
{
        grpc_exporter *e = (grpc_exporter *)d;

        grpc_teardown_here(e);
        if (e->sync_init) {
                uv_cond_destroy(&e->cond);
                uv_mutex_destroy(&e->mu);
        }
        ss_tls_pems_free(&e->pem);
        free(e->target);
        ss_exporter_free(&e->d.base, e);
}

static int grpc_encode(void *exporter, ss_span *const *spans, size_t n, ss_buf *out)
{
        return ss_otlp_encode(spans, n, out);
}

static const ss_dispatch_ops grpc_ops = {
    .encode = grpc_encode,
    .start = grpc_start,
    .abandon = grpc_abandon,
    .close = grpc_close,
    .free = grpc_free,
};

/* ---- construction: grpc ---- */

static grpc_arg arg_int(const char *key, uint32_t v)
{
        return (grpc_arg){.type = GRPC_ARG_INTEGER,
                          .key = (char *)key,
                          .value.integer = v > INT_MAX ? INT_MAX : (int)v};
}

static grpc_channel_credentials *credentials(grpc_exporter *e)
{
        grpc_ssl_pem_key_cert_pair pair = {.private_key = e->pem.key, .cert_chain = e->pem.cert};

        if (!e->tls)
                return grpc_insecure_credentials_create();
        /* A NULL CA bundle: grpc's default, the system's roots. */
        return grpc_ssl_credentials_create(e->pem.ca, e->pem.cert ? &pair : NULL, NULL, NULL);
}

static int channel_create(grpc_exporter *e)
{
        const ss_retry_config *rc = &e->d.retry;
        grpc_arg args[] = {
            {.type = GRPC_ARG_STRING,
             .key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING,
             .value.string = (char *)GRPC_USER_AGENT},
            /* Our retry policy is the one: no hidden second one, no buffered copy. */
            arg_int(GRPC_ARG_ENABLE_RETRIES, 0),
            /* Back within our backoff of a restarted collector, not grpc's 2 minutes. */
            arg_int(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, rc->backoff_initial_ms),
            arg_int(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, rc->backoff_max_ms),
            arg_int(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, GRPC_MAX_RESPONSE_BYTES),
            arg_int(GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM, GRPC_COMPRESS_GZIP),
        };
        grpc_channel_args ca = {.num_args = SS_ELEMENTSOF(args) - !e->gzip, .args = args};
        grpc_channel_credentials *creds = credentials(e);

        ss_tls_pems_free(&e->pem); /* the credentials keep copies */
        if (!creds)
                return -ENOMEM;
        e->channel = grpc_channel_create(e->target, creds, &ca);
        grpc_channel_credentials_release(creds);
        return e->channel ? 0 : -ENOMEM;
}

/* grpc, the queue, the channel and the thread that waits on the queue. */
static int transport_start(grpc_exporter *e)
{
        int r;

        gpr_set_log_function(on_grpc_log);
        grpc_init();
        e->grpc_ref = true;
        e->method = grpc_slice_from_static_string(e->method_name);
        e->cq = grpc_completion_queue_create_for_next(NULL);
        if (!e->cq)
                return -ENOMEM;
        r = channel_create(e);
        if (r < 0)
                return r;
        r = uv_mutex_init(&e->mu);
        if (r < 0)
                return r;
        r = uv_cond_init(&e->cond);
        if (r < 0) {
                uv_mutex_destroy(&e->mu);
                return r;
        }
        e->sync_init = true;
        e->done_tail = &e->done_head;
        r = uv_async_init(e->d.loop, &e->async, on_async);
        if (r < 0)
                return r;
        e->async_open = true;
        ss_dispatch_hold(&e->d);
        r = uv_thread_create(&e->thread, cq_thread, e);
        if (r < 0)
                return r;
        e->thread_running = true;
        e->grpc_ref = false; /* the thread's grpc_shutdown() now */
        return 0;
}

int ss_grpc_exporter_new(uv_loop_t *loop, const ss_grpc_config *cfg, ss_exporter **ret)
{
        ss_tls_files files = {cfg->ca_file, cfg->cert_file, cfg->key_file};
        grpc_exporter *e = calloc(1, sizeof(*e));
        int r;

        if (!e)
                return -ENOMEM;
        e->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : SS_GRPC_TIMEOUT_MS_DEFAULT;
        e->gzip = cfg->gzip;
        e->method_name = cfg->method ? cfg->method : GRPC_EXPORT_METHOD;
        r = ss_grpc_target(cfg->endpoint, &e->target, &e->tls);
        if (r == 0)
                r = ss_grpc_security_check(e->tls, cfg);
        if (r == 0)
                r = ss_grpc_metadata_build(&e->md, cfg);
        if (r == 0)
                r = ss_tls_read_files("otlp-grpc", &files, &e->pem);
        if (r < 0) {
                grpc_free(&e->d);
                return r;
        }
        r = ss_dispatch_init(&e->d, loop, "otlp-grpc", &grpc_ops,
                             &(ss_dispatch_config){
                                 .max_batch = cfg->max_batch,
                                 .max_batch_bytes = cfg->max_batch_bytes,
                                 .batch_delay_ms = cfg->batch_delay_ms,
                                 .max_queue_bytes = cfg->max_queue_bytes,
                                 .max_inflight = cfg->max_inflight,
                                 .retry = cfg->retry,
                                 .spool = cfg->spool,
                                 .dead_letter = cfg->dead_letter,
                             });
        if (r < 0)
                return r; /* freed by the dispatch */
        r = transport_start(e);
        if (r < 0) {
                ss_log(SS_LOG_ERR,
                       "otlp-grpc: cannot start event=exporter-failed exporter=otlp-grpc "
                       "error=\"%s\"",
                       strerror(-r));
                e->d.base.ops->destroy(&e->d.base); /* frees it, maybe later */
                return r;
        }
        *ret = &e->d.base;
        return 0;
}
