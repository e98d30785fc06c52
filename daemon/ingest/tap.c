/* SPDX-License-Identifier: MIT */
#include "ingest/tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "model/span.h"
#include "ss-macro.h"
#include "ss-wire.h"

/* Which traces one subscriber wants. */
typedef struct tap_filter {
        char service[SS_SUB_MAX_STR + 1]; /* "" : any */
        char agent[SS_SUB_MAX_STR + 1];
        int status; /* 0 any, SS_STATUS_ERROR: a span failed, SS_STATUS_OK: none did */
        uint64_t min_duration_ns;
} tap_filter;

struct ss_tap_sub {
        ss_tap_sub *prev, *next;
        uv_stream_t *stream;
        uid_t uid;
        bool all; /* every client's spans, not only those of uid */
        tap_filter f;
        uint64_t dropped; /* traces missed: the reader was too slow */
};

typedef struct tap_stats {
        uint64_t subscribed;
        uint64_t traces_sent;
        uint64_t traces_dropped; /* a subscriber's queue was full */
        uint64_t spans_omitted;  /* past SS_TAP_MAX_BODY in one message */
        uint64_t bytes_sent;
        uint64_t no_memory;
} tap_stats;

struct ss_tap {
        ss_sink sink;
        ss_tap_sub *subs;
        size_t n_subs;
        tap_stats st;
};

/* One encoded list of spans, shared by the writes of every subscriber that gets it. */
typedef struct body {
        unsigned refs;
        uint64_t omitted;
        ss_buf buf;
} body;

typedef struct tap_write {
        uv_write_t req;
        body *body;
        uint8_t head[SS_TRACE_HEAD_MAX];
} tap_write;

static void body_unref(body *b)
{
        if (b && --b->refs == 0) {
                ss_buf_free(&b->buf);
                free(b);
        }
}

/* ---- what a subscriber sees ------------------------------------------------------------- */

static bool visible(const ss_tap_sub *sub, const ss_span *s)
{
        return sub->all || s->resource->uid == sub->uid;
}

static bool str_is(const msgpack_object *v, const char *want)
{
        size_t n = strlen(want);

        return v && v->type == MSGPACK_OBJECT_STR && v->via.str.size == n &&
               memcmp(v->via.str.ptr, want, n) == 0;
}

static bool wanted(const ss_tap_sub *sub, ss_span *const *spans, size_t n)
{
        const tap_filter *f = &sub->f;
        bool seen = false, service = !f->service[0], agent = !f->agent[0], failed = false;
        uint64_t start = UINT64_MAX, end = 0;

        for (size_t i = 0; i < n; i++) {
                const ss_span *s = spans[i];

                if (!visible(sub, s))
                        continue;
                seen = true;
                service = service ||
                          str_is(ss_attrs_get(&s->resource->attrs, "service.name"), f->service);
                agent = agent || str_is(ss_attrs_get(&s->attrs, "upsonic.agent.name"), f->agent);
                failed = failed || s->status_code == SS_STATUS_ERROR;
                start = s->start_ns < start ? s->start_ns : start;
                end = s->end_ns > end ? s->end_ns : end;
        }
        if (!seen || !service || !agent)
                return false;
        if ((f->status == SS_STATUS_ERROR && !failed) || (f->status == SS_STATUS_OK && failed))
                return false;
        return !f->min_duration_ns || (end > start && end - start >= f->min_duration_ns);
}

/* ---- encoding ---------------------------------------------------------------------------- */

static int pack_span(msgpack_packer *pk, const ss_span *s)
{
        static const char *const keys[SS_TAP_N_KEYS] = {SS_TAP_KEYS};
        const msgpack_object *svc = ss_attrs_get(&s->resource->attrs, "service.name");
        msgpack_object_kv kv[SS_TAP_N_KEYS];
        ss_tap_span t = {
            .trace_id = s->trace_id,
            .span_id = s->span_id,
            .parent_id = s->has_parent ? s->parent_id : NULL,
            .name = {.ptr = s->name.ptr, .len = s->name.size},
            .kind = s->kind,
            .start_ns = s->start_ns,
            .end_ns = s->end_ns,
            .status_code = s->status_code,
            .attrs = kv,
        };

        if (svc && svc->type == MSGPACK_OBJECT_STR)
                t.service = (ss_str){.ptr = svc->via.str.ptr, .len = svc->via.str.size};
        for (size_t i = 0; i < SS_TAP_N_KEYS; i++) {
                const msgpack_object *v = ss_attrs_get(&s->attrs, keys[i]);

                if (!v)
                        continue;
                kv[t.n_attrs].key = (msgpack_object){.type = MSGPACK_OBJECT_STR};
                kv[t.n_attrs].key.via.str =
                    (msgpack_object_str){.size = (uint32_t)strlen(keys[i]), .ptr = keys[i]};
                kv[t.n_attrs++].val = *v;
        }
        return ss_wire_pack_tap_span(pk, &t);
}

/* The spans sub may see as an array of summaries, cut at SS_TAP_MAX_BODY. NULL: no memory. */
static body *encode(const ss_tap_sub *sub, ss_span *const *spans, size_t n)
{
        body *b = calloc(1, sizeof(*b));
        uint8_t array32[5] = {0xdd};
        uint32_t count = 0;
        msgpack_packer pk;

        if (!b)
                return NULL;
        b->refs = 1;
        ss_buf_init(&b->buf, SS_TAP_MAX_BODY + 4096);
        msgpack_packer_init(&pk, &b->buf, ss_buf_msgpack_write);
        if (ss_buf_append(&b->buf, array32, sizeof(array32)) < 0)
                goto fail;
        for (size_t i = 0; i < n; i++) {
                size_t mark = b->buf.len;

                if (!visible(sub, spans[i]))
                        continue;
                if (b->omitted || pack_span(&pk, spans[i]) < 0 || b->buf.len > SS_TAP_MAX_BODY) {
                        b->buf.len = mark;
                        b->omitted++;
                        continue;
                }
                count++;
        }
        b->buf.data[1] = (uint8_t)(count >> 24);
        b->buf.data[2] = (uint8_t)(count >> 16);
        b->buf.data[3] = (uint8_t)(count >> 8);
        b->buf.data[4] = (uint8_t)count;
        return b;
fail:
        body_unref(b);
        return NULL;
}

/* ---- writing ----------------------------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
        tap_write *w = ss_container_of(req, tap_write, req);

        (void)status; /* a subscriber that went away: its connection reports it */
        body_unref(w->body);
        free(w);
}

static void send_trace(ss_tap *t, ss_tap_sub *sub, body *b)
{
        tap_write *w = malloc(sizeof(*w));
        uv_buf_t bufs[2];

        if (!w) {
                t->st.no_memory++;
                sub->dropped++;
                return;
        }
        w->body = b;
        b->refs++;
        bufs[0] = uv_buf_init((char *)w->head, (unsigned)ss_wire_trace_head(
                                                   w->head, sub->dropped, b->omitted, b->buf.len));
        bufs[1] = uv_buf_init((char *)b->buf.data, (unsigned)b->buf.len);
        if (uv_write(&w->req, sub->stream, bufs, 2, on_written) < 0) {
                on_written(&w->req, 0);
                sub->dropped++;
                t->st.traces_dropped++;
                return;
        }
        t->st.traces_sent++;
        t->st.spans_omitted += b->omitted;
        t->st.bytes_sent += bufs[0].len + bufs[1].len;
}

static void tap_put(ss_sink *sink, ss_span *const *spans, size_t n)
{
        ss_tap *t = ss_container_of(sink, ss_tap, sink);
        body *shared = NULL; /* what every subscriber that sees all gets */

        for (ss_tap_sub *sub = t->subs; sub; sub = sub->next) {
                body *b;

                if (!wanted(sub, spans, n))
                        continue;
                /* A reader that does not keep up misses traces; it never holds us up. */
                if (uv_stream_get_write_queue_size(sub->stream) > SS_TAP_MAX_QUEUED) {
                        sub->dropped++;
                        t->st.traces_dropped++;
                        continue;
                }
                if (sub->all && !shared)
                        shared = encode(sub, spans, n);
                b = sub->all ? shared : encode(sub, spans, n);
                if (b) {
                        send_trace(t, sub, b);
                } else {
                        t->st.no_memory++;
                        sub->dropped++;
                }
                if (!sub->all)
                        body_unref(b);
        }
        body_unref(shared);
}

static void tap_flush(ss_sink *sink)
{
        (void)sink;
}

static const ss_sink_ops tap_sink_ops = {.put = tap_put, .flush = tap_flush};

/* ---- subscribers ------------------------------------------------------------------------- */

static void copy_str(char *dst, const msgpack_object *v)
{
        /* The decoder checked the type and SS_SUB_MAX_STR. */
        if (v && v->type == MSGPACK_OBJECT_STR && v->via.str.size <= SS_SUB_MAX_STR) {
                memcpy(dst, v->via.str.ptr, v->via.str.size);
                dst[v->via.str.size] = '\0';
        }
}

static void filter_read(tap_filter *f, const msgpack_object_map *m)
{
        const msgpack_object *status = ss_wire_map_get(m, SS_SUB_STATUS);
        const msgpack_object *ms = ss_wire_map_get(m, SS_SUB_MIN_DUR_MS);

        copy_str(f->service, ss_wire_map_get(m, SS_SUB_SERVICE));
        copy_str(f->agent, ss_wire_map_get(m, SS_SUB_AGENT));
        if (str_is(status, "error"))
                f->status = SS_STATUS_ERROR;
        else if (str_is(status, "ok"))
                f->status = SS_STATUS_OK;
        if (ms && ms->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                f->min_duration_ns =
                    ms->via.u64 > UINT64_MAX / 1000000u ? UINT64_MAX : ms->via.u64 * 1000000u;
}

int ss_tap_subscribe(ss_tap *t, uv_stream_t *stream, uid_t uid, bool all,
                     const msgpack_object_map *filter, ss_tap_sub **ret)
{
        ss_tap_sub *sub;

        if (t->n_subs >= SS_TAP_MAX_SUBSCRIBERS)
                return -EUSERS;
        sub = calloc(1, sizeof(*sub));
        if (!sub)
                return -ENOMEM;
        sub->stream = stream;
        sub->uid = uid;
        sub->all = all;
        filter_read(&sub->f, filter);
        sub->next = t->subs;
        if (t->subs)
                t->subs->prev = sub;
        t->subs = sub;
        t->n_subs++;
        t->st.subscribed++;
        *ret = sub;
        return 0;
}

void ss_tap_unsubscribe(ss_tap *t, ss_tap_sub *s)
{
        if (!s)
                return;
        if (s->prev)
                s->prev->next = s->next;
        else
                t->subs = s->next;
        if (s->next)
                s->next->prev = s->prev;
        t->n_subs--;
        free(s);
}

/* ---- the tap ---------------------------------------------------------------------------- */

int ss_tap_new(ss_tap **ret)
{
        ss_tap *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        t->sink.ops = &tap_sink_ops;
        *ret = t;
        return 0;
}

void ss_tap_free(ss_tap *t)
{
        if (!t)
                return;
        if (t->subs)
                ss_log(SS_LOG_WARNING,
                       "tap freed with %zu subscriber(s) event=tap-leak subscribers=%zu", t->n_subs,
                       t->n_subs);
        free(t);
}

ss_sink *ss_tap_sink(ss_tap *t)
{
        return &t->sink;
}

void ss_tap_counters(const void *tap, ss_counters *out)
{
        const ss_tap *t = tap;

        ss_counters_add(out, "tap.", "subscribers", t->n_subs);
        ss_counters_add(out, "tap.", "subscribed", t->st.subscribed);
        ss_counters_add(out, "tap.", "traces_sent", t->st.traces_sent);
        ss_counters_add(out, "tap.", "traces_dropped", t->st.traces_dropped);
        ss_counters_add(out, "tap.", "spans_omitted", t->st.spans_omitted);
        ss_counters_add(out, "tap.", "bytes_sent", t->st.bytes_sent);
        ss_counters_add(out, "tap.", "no_memory", t->st.no_memory);
}
