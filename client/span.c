/* SPDX-License-Identifier: MIT */
/*
 * The span API. A content string is copied twice on its way to the socket:
 * into the span's buffer when it is set (packed there once, as the map body of
 * SPAN_END, whose head is written in front of it at the end), and into the
 * client's queue by ssc_queue_enqueue() under a short lock. SPAN_START is
 * encoded into a thread-local scratch frame, its attributes straight into it.
 * Spans come from a per-thread cache (scratch.c), so a span costs no malloc;
 * ids come from the per-thread generator of ss-id.c. No system call on this
 * path except the occasional wake-up of the sender.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attrs.h"
#include "client.h"
#include "scratch.h"
#include "span.h"
#include "ss-id.h"
#include "ss-wire.h"

#define NAME_STACK      256
#define END_FIRST       512u         /* the first allocation of a span's buffer */
#define SPAN_CACHE_MAX  64u          /* ended spans a thread keeps for its next starts */
#define SPAN_CACHE_KEEP (16u * 1024) /* a span whose buffer grew past this is not kept */

/* The public values are the wire's (OTLP's): the span API passes them through. */
#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(SIDESPAN_KIND_INTERNAL, SS_KIND_INTERNAL) &&
                   SAME(SIDESPAN_KIND_SERVER, SS_KIND_SERVER) &&
                   SAME(SIDESPAN_KIND_CLIENT, SS_KIND_CLIENT) &&
                   SAME(SIDESPAN_KIND_PRODUCER, SS_KIND_PRODUCER) &&
                   SAME(SIDESPAN_KIND_CONSUMER, SS_KIND_CONSUMER),
               "SIDESPAN_KIND_* must equal the wire's SpanKind values");
_Static_assert(SAME(SIDESPAN_STATUS_UNSET, SS_STATUS_UNSET) &&
                   SAME(SIDESPAN_STATUS_OK, SS_STATUS_OK) &&
                   SAME(SIDESPAN_STATUS_ERROR, SS_STATUS_ERROR),
               "SIDESPAN_STATUS_* must equal the wire's Status.code values");
#undef SAME

/* Count a frame that could not be encoded (too large, out of memory) as dropped. */
static int encode_failed(sidespan_client *c, int r)
{
        ssc_count(&c->n.dropped, 1);
        return r == -ENOBUFS ? -EMSGSIZE : r;
}

/* The SPAN_START options map body: OTLP Span.flags (W3C flags, has-is-remote, is-remote) and
 * the trace state, written into mem (SSC_SPAN_OPTIONS_MAX bytes, or none for a trace state
 * too long for it, which is then left out). */
static ss_rawmap options_write(uint8_t *mem, const char *trace_state, bool sampled, bool remote)
{
        uint32_t flags = 0x100u | (remote ? 0x200u : 0u) | (sampled ? 1u : 0u);
        size_t ts = trace_state && trace_state[0] ? strlen(trace_state) : 0;
        uint8_t *p = mem;
        uint32_t n = 1;

        p = ss_mp_put_str(p, SS_OPT_FLAGS, sizeof(SS_OPT_FLAGS) - 1);
        p = ss_mp_put_uint(p, flags);
        if (ts && ts <= SSC_SPAN_OPTIONS_MAX - 32) {
                p = ss_mp_put_str(p, SS_OPT_TRACE_STATE, sizeof(SS_OPT_TRACE_STATE) - 1);
                p = ss_mp_put_str(p, trace_state, (uint32_t)ts);
                n = 2;
        }
        return (ss_rawmap){.count = n, .data = mem, .len = (size_t)(p - mem)};
}

void ssc_span_tmpl_init(ssc_span_tmpl *t, const ssc_config *cfg)
{
        ss_rawmap m = options_write(t->opts, cfg->trace_state, true, false);

        /* Attributes must leave room for the rest of SPAN_END in one frame. */
        t->span_max =
            SSC_END_ROOM + (cfg->max_frame > 256 ? cfg->max_frame - 256 : cfg->max_frame / 2);
        t->opts_count = m.count;
        t->opts_len = (uint32_t)m.len;
}

/* The options of s's SPAN_START: the client's, made at open, for the common case. */
static ss_rawmap span_options(uint8_t *mem, const sidespan_span *s, bool remote)
{
        const ssc_span_tmpl *t = &s->client->span;

        if (s->sampled && !remote && s->trace_state == s->client->cfg.trace_state)
                return (ss_rawmap){.count = t->opts_count, .data = t->opts, .len = t->opts_len};
        return options_write(mem, s->trace_state, s->sampled, remote);
}

/* ---- span start ----------------------------------------------------------------------- */

const ssc_span_parent *ssc_span_parent_of(const sidespan_span *s, ssc_span_parent *buf)
{
        if (!s)
                return NULL;
        *buf = (ssc_span_parent){.trace_id = s->trace_id,
                                 .span_id = s->span_id,
                                 .sampled = s->sampled,
                                 .trace_state = s->trace_state};
        return buf;
}

void ssc_span_release(sidespan_span *s)
{
        ss_buf_free(&s->end);
        free(s);
}

/* A span from the thread's cache, else a new one; its buffer empty with SSC_END_ROOM reserved
 * when it is sampled. */
static sidespan_span *span_alloc(sidespan_client *c, bool sampled)
{
        size_t max = c->span.span_max;
        ssc_scratch *sc = ssc_tls_scratch;
        sidespan_span *s;

        if (sc && sc->free_spans) {
                s = sc->free_spans;
                sc->free_spans = s->next_free;
                sc->n_free--;
                if (s->end.cap > max)
                        ss_buf_free(&s->end);
        } else {
                s = malloc(sizeof(*s));
                if (!s)
                        return NULL;
                ss_buf_init(&s->end, max);
        }
        s->end.max = max;
        s->end.len = 0;
        if (sampled && s->end.cap < SSC_END_ROOM &&
            ss_buf_reserve(&s->end, max < END_FIRST ? max : END_FIRST) < 0) {
                ssc_span_release(s);
                return NULL;
        }
        s->end.len = sampled ? SSC_END_ROOM : 0;
        return s;
}

/* Back to the calling thread's cache (whichever thread started it), or freed. */
static void span_free(sidespan_span *s)
{
        ssc_scratch *sc = ssc_scratch_this_thread();

        if (!sc || sc->n_free >= SPAN_CACHE_MAX || s->end.cap > SPAN_CACHE_KEEP) {
                ssc_span_release(s);
                return;
        }
        s->next_free = sc->free_spans;
        sc->free_spans = s;
        sc->n_free++;
}

static sidespan_span *span_new(sidespan_client *c, const ssc_span_parent *p)
{
        uint8_t trace_id[SS_TRACE_ID_LEN];
        const uint8_t *tid = trace_id;
        uint8_t span_id[SS_SPAN_ID_LEN];
        bool sampled;
        sidespan_span *s;

        ss_id_span(p ? NULL : trace_id, span_id);
        if (p) {
                tid = p->trace_id;
                sampled = p->sampled;
        } else {
                sampled = c->cfg.sample_rate >= 1.0 || ss_sample_keep(trace_id, c->cfg.sample_rate);
        }
        s = span_alloc(c, sampled);
        if (!s)
                return NULL;
        s->client = c;
        s->n_attrs = 0;
        s->sampled = sampled;
        s->live = false;
        s->drop_content = !c->cfg.include_content;
        s->trace_state = p ? p->trace_state : c->cfg.trace_state;
        memcpy(s->trace_id, tid, SS_TRACE_ID_LEN);
        memcpy(s->span_id, span_id, SS_SPAN_ID_LEN);
        return s;
}

/*
 * Encode SPAN_START into the thread's scratch frame, its attributes packed straight into
 * it, and queue it. Start attributes that do not fit are left out and counted; the span
 * goes on.
 */
static int send_start(sidespan_span *s, const ssc_span_parent *p, const char *name, size_t name_len,
                      int kind, const sidespan_attr *attrs, size_t n, bool *counted)
{
        sidespan_client *c = s->client;
        uint8_t optmem[SSC_SPAN_OPTIONS_MAX];
        ss_rawmap options = span_options(optmem, s, p && p->remote);
        ss_span_head h = {.trace_id = s->trace_id,
                          .span_id = s->span_id,
                          .parent_id = p ? p->span_id : NULL,
                          .name = name,
                          .name_len = name_len,
                          .kind = kind,
                          .start_ns = ss_now_ns()};
        uint8_t small[SS_SPAN_START_MAX(NAME_STACK, SSC_SPAN_OPTIONS_MAX)];
        uint64_t skipped = 0;
        uint32_t count = 0;
        ss_wire_open o;
        ssc_scratch *sc;
        int r;

        /* The generic API's start: no attributes yet, a short name; written on the stack. */
        if (!n && name_len <= NAME_STACK) {
                r = ss_wire_span_start_write(small, c->cfg.max_frame, &h, &options);
                if (r < 0)
                        return encode_failed(c, r);
                s->live = ssc_queue_enqueue(&c->q, small, (size_t)r, true);
                *counted = true;
                return 0;
        }
        sc = ssc_scratch_get();
        if (!sc)
                return encode_failed(c, -ENOMEM);
        r = ss_wire_span_start_open(&sc->frame, &h, &o);
        if (r < 0)
                return encode_failed(c, r);
        if (n) {
                /* Room for the options is kept back so that attributes cannot crowd them out. */
                sc->frame.max = o.start + SS_FRAME_HEADER + c->cfg.max_frame - options.len - 8;
                r = ssc_attrs_pack(&sc->frame, attrs, n, !c->cfg.include_content, &skipped, &count);
                sc->frame.max = SS_FRAME_HEADER + SS_MAX_FRAME_LIMIT;
                if (skipped)
                        ssc_count(&c->n.attrs_dropped, skipped);
                if (r < 0) {
                        ss_buf_reset(&sc->frame);
                        return r;
                }
        }
        r = ss_wire_span_start_close(&sc->frame, &o, c->cfg.max_frame, count, &options);
        if (r < 0)
                return encode_failed(c, r);
        s->live = ssc_queue_enqueue(&c->q, sc->frame.data, sc->frame.len, true);
        *counted = true;
        return 0;
}

/* Join prefix (a bytes) and suffix into buf (or a malloc'd string when too long for it). */
static char *join_name(char *buf, size_t size, const char *prefix, size_t a, const char *suffix,
                       size_t *ret_len)
{
        size_t b = strlen(suffix);
        char *p = buf;

        if (a + b >= size) {
                if (a + b < a || a + b + 1 == 0)
                        return NULL;
                p = malloc(a + b + 1);
                if (!p)
                        return NULL;
        }
        memcpy(p, prefix, a);
        memcpy(p + a, suffix, b);
        p[a + b] = '\0';
        *ret_len = a + b;
        return p;
}

/* Send the SPAN_START of a sampled span; *counted once the queue counted it as started. */
static int start_sampled(sidespan_span *s, const ssc_span_parent *p, const char *prefix,
                         size_t prefix_len, const char *suffix, int kind,
                         const sidespan_attr *attrs, size_t n, bool *counted)
{
        char stack[NAME_STACK], *name = (char *)prefix;
        size_t name_len = prefix_len;
        int r;

        if (n && !attrs)
                return -EINVAL;
        /* The generic API's name is used as it is; the GenAI helpers' are joined. */
        if (suffix && suffix[0])
                name = join_name(stack, sizeof(stack), prefix, prefix_len, suffix, &name_len);
        if (!name)
                return -ENOMEM;
        r = send_start(s, p, name, name_len, kind, attrs, n, counted);
        if (name != prefix && name != stack)
                free(name);
        /* -EINVAL (a malformed start attribute) and -ENOMEM fail the start; a frame that
         * could not be queued was counted as dropped and the span goes on. */
        return r == -ENOMEM || r == -EINVAL ? r : 0;
}

int ssc_span_start_n(sidespan_client *c, const ssc_span_parent *p, const char *prefix,
                     size_t prefix_len, const char *suffix, int kind, const sidespan_attr *attrs,
                     size_t n, sidespan_span **ret)
{
        sidespan_span *s;
        int r;

        if (!ret)
                return -EINVAL;
        if (!c || !c->enabled) {
                *ret = NULL;
                return 0;
        }
        if (!prefix || (!prefix_len && !(suffix && suffix[0])) || kind < 0 ||
            kind > SIDESPAN_KIND_CONSUMER)
                return -EINVAL;
        s = span_new(c, p);
        if (!s)
                return -ENOMEM;
        if (!s->sampled) {
                ssc_count(&c->n.spans_started, 1);
                ssc_count(&c->n.unsampled, 1);
        } else {
                bool counted = false;

                /* Counted with its SPAN_START under the queue lock, which that takes anyway:
                 * one locked instruction fewer a span. A start that never got there is
                 * counted here, whatever its outcome, as before. */
                r = start_sampled(s, p, prefix, prefix_len, suffix, kind, attrs, n, &counted);
                if (!counted)
                        ssc_count(&c->n.spans_started, 1);
                if (r < 0) {
                        span_free(s);
                        return r;
                }
        }
        *ret = s;
        return 0;
}

SIDESPAN_EXPORT int sidespan_span_start_n(sidespan_client *c, const sidespan_span *parent,
                                          const char *name, size_t name_len, int kind,
                                          sidespan_span **ret)
{
        ssc_span_parent buf;

        return ssc_span_start_n(c, ssc_span_parent_of(parent, &buf), name, name_len, NULL, kind,
                                NULL, 0, ret);
}

/* The function form of sidespan.h's inline sidespan_span_start() (see the setters below). */
SIDESPAN_EXPORT int(sidespan_span_start)(sidespan_client *c, const sidespan_span *parent,
                                         const char *name, int kind, sidespan_span **ret)
{
        return sidespan_span_start_n(c, parent, name, ssc_len(name), kind, ret);
}

SIDESPAN_EXPORT int sidespan_span_start_remote(sidespan_client *c, const char *traceparent,
                                               const char *name, int kind, sidespan_span **ret)
{
        uint8_t trace_id[SS_TRACE_ID_LEN], span_id[SS_SPAN_ID_LEN];
        ssc_span_parent p = {.trace_id = trace_id, .span_id = span_id, .remote = true};
        int r;

        if (!c || !c->enabled || !ret)
                return ssc_span_start(c, NULL, name, NULL, kind, NULL, 0, ret);
        if (!traceparent)
                return -EINVAL;
        r = ss_traceparent_parse(traceparent, trace_id, span_id, &p.sampled);
        if (r < 0)
                return r;
        return ssc_span_start(c, &p, name, NULL, kind, NULL, 0, ret);
}

/* ---- events and end ------------------------------------------------------------------- */

SIDESPAN_EXPORT int sidespan_span_add_event(sidespan_span *s, const char *name,
                                            const sidespan_attr *attrs, size_t n)
{
        sidespan_client *c;
        ss_rawmap map;
        ssc_scratch *sc;
        int r;

        if (!s)
                return 0;
        if (!name || !name[0])
                return -EINVAL;
        c = s->client;
        if (!s->live) {
                if (s->sampled)
                        ssc_count(&c->n.dropped, 1);
                return 0;
        }
        sc = ssc_scratch_get();
        if (!sc)
                return encode_failed(c, -ENOMEM);
        r = ssc_attrs_pack(&sc->map, attrs, n, !c->cfg.include_content, NULL, &map.count);
        if (r == -EINVAL)
                return r;
        if (r < 0)
                return encode_failed(c, r);
        map.data = sc->map.data;
        map.len = sc->map.len;
        r = ss_wire_put_span_event(&sc->frame, c->cfg.max_frame, s->span_id, name, ss_now_ns(),
                                   &map);
        if (r < 0)
                return encode_failed(c, r);
        ssc_queue_enqueue(&c->q, sc->frame.data, sc->frame.len, false);
        return 0;
}

/* SPAN_END with a status message: encoded into the thread's scratch frame, the attributes
 * copied behind it (an error's message is rare; its length varies the head). */
static int send_end_message(sidespan_span *s, int status, const char *message, uint64_t end_ns)
{
        sidespan_client *c = s->client;
        ss_rawmap attrs = {.count = s->n_attrs,
                           .data = s->end.data + SSC_END_ROOM,
                           .len = s->end.len - SSC_END_ROOM};
        ssc_scratch *sc = ssc_scratch_get();
        int r;

        if (!sc)
                return encode_failed(c, -ENOMEM);
        r = ss_wire_put_span_end(&sc->frame, c->cfg.max_frame, s->span_id, end_ns, status, message,
                                 &attrs);
        /* A message too long for the frame must not cost the span its end. */
        if (r == -EMSGSIZE || r == -ENOBUFS)
                return -EMSGSIZE;
        if (r < 0)
                return encode_failed(c, r);
        ssc_queue_enqueue(&c->q, sc->frame.data, sc->frame.len, false);
        return 0;
}

/* SPAN_END: its head written in front of the attributes packed as they were set, and the
 * whole frame queued from the span's buffer: the attributes are not copied on the way. */
static int send_end(sidespan_span *s, int status, const char *message)
{
        sidespan_client *c = s->client;
        uint64_t end_ns = ss_now_ns();
        size_t body = s->end.len - SSC_END_ROOM;
        int n;

        if (status == SIDESPAN_STATUS_ERROR && message) {
                n = send_end_message(s, status, message, end_ns);
                if (n != -EMSGSIZE)
                        return n;
        }
        n = ss_wire_span_end_head(s->end.data + SSC_END_ROOM, c->cfg.max_frame, s->span_id, end_ns,
                                  status, s->n_attrs, body);
        if (n < 0)
                return encode_failed(c, n);
        ssc_queue_enqueue(&c->q, s->end.data + SSC_END_ROOM - n, (size_t)n + body, false);
        return 0;
}

SIDESPAN_EXPORT int sidespan_span_end(sidespan_span *s, int status, const char *message)
{
        int r = 0;

        if (!s)
                return 0;
        if (status < SIDESPAN_STATUS_UNSET || status > SIDESPAN_STATUS_ERROR) {
                status = SIDESPAN_STATUS_UNSET;
                r = -EINVAL;
        }
        if (s->live) {
                int q = send_end(s, status, message);

                if (!r)
                        r = q;
        } else if (s->sampled) {
                ssc_count(&s->client->n.dropped, 1);
        }
        span_free(s);
        return r;
}

/* ---- context ---------------------------------------------------------------------------- */

SIDESPAN_EXPORT int sidespan_span_traceparent(const sidespan_span *s, char *buf, size_t size)
{
        if (!s || !buf)
                return -EINVAL;
        if (size < SS_TRACEPARENT_LEN + 1)
                return -ENOBUFS;
        ss_traceparent_format(buf, s->trace_id, s->span_id, s->sampled);
        return 0;
}

SIDESPAN_EXPORT int sidespan_span_trace_id_hex(const sidespan_span *s, char *buf, size_t size)
{
        if (!s || !buf)
                return -EINVAL;
        if (size < 2 * SS_TRACE_ID_LEN + 1)
                return -ENOBUFS;
        ss_hex(buf, s->trace_id, SS_TRACE_ID_LEN);
        return 0;
}

SIDESPAN_EXPORT int sidespan_span_span_id_hex(const sidespan_span *s, char *buf, size_t size)
{
        if (!s || !buf)
                return -EINVAL;
        if (size < 2 * SS_SPAN_ID_LEN + 1)
                return -ENOBUFS;
        ss_hex(buf, s->span_id, SS_SPAN_ID_LEN);
        return 0;
}

SIDESPAN_EXPORT bool sidespan_span_is_sampled(const sidespan_span *s)
{
        return s && s->sampled;
}
