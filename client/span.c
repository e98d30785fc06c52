/* SPDX-License-Identifier: MIT */
/*
 * The span API: the caller's thread encodes each message into a thread-local
 * scratch buffer, then ssc_queue_enqueue() copies the frame into the client's
 * queue under a short lock. No system call on this path except the
 * occasional wake-up of the sender.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attrs.h"
#include "client.h"
#include "span.h"
#include "ss-id.h"
#include "ss-wire.h"

#define SPAN_OPTIONS_MAX 96 /* {"flags": u32, "trace_state": str<32} */
#define NAME_STACK       256
#define SCRATCH_KEEP     (256u * 1024) /* a scratch grown past this is released after use */

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

struct sidespan_span {
        sidespan_client *client;
        uint8_t trace_id[SS_TRACE_ID_LEN];
        uint8_t span_id[SS_SPAN_ID_LEN];
        bool sampled;
        const char *trace_state; /* the client's string or NULL; lives as long as the client */
        uint32_t n_attrs;
        ss_buf attrs; /* packed map body sent with SPAN_END */
};

/* Per-thread scratch: one frame being encoded and one map body being packed. Freed at
 * thread exit through a key destructor, so threads that come and go leak nothing. */
typedef struct scratch {
        ss_buf frame;
        ss_buf map;
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local scratch *tls_scratch;

static void scratch_destroy(void *p)
{
        scratch *s = p;

        ss_buf_free(&s->frame);
        ss_buf_free(&s->map);
        free(s);
}

static void scratch_key_init(void)
{
        (void)pthread_key_create(&scratch_key, scratch_destroy);
}

/* The calling thread's scratch, emptied; NULL on out-of-memory. */
static scratch *scratch_get(void)
{
        scratch *s = tls_scratch;

        if (!s) {
                pthread_once(&scratch_once, scratch_key_init);
                s = calloc(1, sizeof(*s));
                if (!s)
                        return NULL;
                ss_buf_init(&s->frame, SS_FRAME_HEADER + SS_MAX_FRAME_LIMIT);
                ss_buf_init(&s->map, SS_MAX_FRAME_LIMIT);
                (void)pthread_setspecific(scratch_key, s);
                tls_scratch = s;
        }
        /* One huge message should not pin megabytes per thread for ever. */
        if (s->frame.cap > SCRATCH_KEEP)
                ss_buf_free(&s->frame);
        if (s->map.cap > SCRATCH_KEEP)
                ss_buf_free(&s->map);
        ss_buf_reset(&s->frame);
        ss_buf_reset(&s->map);
        return s;
}

/* Count a frame that could not be encoded (too large, out of memory) as dropped. */
static int encode_failed(sidespan_client *c, int r)
{
        ssc_count(&c->n.dropped, 1);
        return r == -ENOBUFS ? -EMSGSIZE : r;
}

/* The SPAN_START options map: OTLP Span.flags (W3C flags, has-is-remote, is-remote) and
 * the trace state, packed into mem (SPAN_OPTIONS_MAX bytes). */
static void pack_span_options(ss_buf *b, const sidespan_span *s, bool remote)
{
        uint32_t flags = 0x100u | (remote ? 0x200u : 0u) | (s->sampled ? 1u : 0u);
        msgpack_packer pk;

        msgpack_packer_init(&pk, b, ss_buf_msgpack_write);
        (void)ssc_attrs_pack_str(&pk, SS_OPT_FLAGS);
        (void)msgpack_pack_uint32(&pk, flags);
        if (s->trace_state && s->trace_state[0]) {
                (void)ssc_attrs_pack_str(&pk, SS_OPT_TRACE_STATE);
                (void)ssc_attrs_pack_str(&pk, s->trace_state);
        }
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

static sidespan_span *span_new(sidespan_client *c, const ssc_span_parent *p)
{
        sidespan_span *s = malloc(sizeof(*s));

        if (!s)
                return NULL;
        s->client = c;
        s->n_attrs = 0;
        /* Attributes must leave room for the rest of SPAN_END in one frame. */
        ss_buf_init(&s->attrs,
                    c->cfg.max_frame > 256 ? c->cfg.max_frame - 256 : c->cfg.max_frame / 2);
        if (p) {
                memcpy(s->trace_id, p->trace_id, SS_TRACE_ID_LEN);
                s->sampled = p->sampled;
                s->trace_state = p->trace_state;
        } else {
                ss_id_random(s->trace_id, SS_TRACE_ID_LEN);
                s->sampled = ss_sample_keep(s->trace_id, c->cfg.sample_rate);
                s->trace_state = c->cfg.trace_state;
        }
        ss_id_random(s->span_id, SS_SPAN_ID_LEN);
        return s;
}

/* Encode and queue SPAN_START with the attributes already packed in s->attrs. */
static int send_start(sidespan_span *s, const ssc_span_parent *p, const char *name, size_t name_len,
                      int kind)
{
        sidespan_client *c = s->client;
        uint8_t optmem[SPAN_OPTIONS_MAX];
        ss_buf opts = {.data = optmem, .cap = sizeof(optmem), .max = sizeof(optmem)};
        ss_rawmap attrs = {.count = s->n_attrs, .data = s->attrs.data, .len = s->attrs.len};
        ss_rawmap options = {.count = s->trace_state && s->trace_state[0] ? 2 : 1};
        ss_span_head h = {.trace_id = s->trace_id,
                          .span_id = s->span_id,
                          .parent_id = p ? p->span_id : NULL,
                          .name = name,
                          .name_len = name_len,
                          .kind = kind,
                          .start_ns = ss_now_ns()};
        scratch *sc = scratch_get();
        int r;

        if (!sc)
                return encode_failed(c, -ENOMEM);
        /* opts borrows stack memory: max == cap, so ss_buf never reallocates it. */
        pack_span_options(&opts, s, p && p->remote);
        options.data = opts.data;
        options.len = opts.len;
        r = ss_wire_put_span_start(&sc->frame, c->cfg.max_frame, &h, &attrs, &options);
        if (r < 0)
                return encode_failed(c, r);
        ssc_queue_enqueue(&c->q, sc->frame.data, sc->frame.len);
        return 0;
}

/* Join prefix and suffix into buf (or a malloc'd string when too long for it). */
static char *join_name(char *buf, size_t size, const char *prefix, const char *suffix,
                       size_t *ret_len)
{
        size_t a = strlen(prefix), b = suffix ? strlen(suffix) : 0;
        char *p = buf;

        if (a + b >= size) {
                if (a + b < a || a + b + 1 == 0)
                        return NULL;
                p = malloc(a + b + 1);
                if (!p)
                        return NULL;
        }
        memcpy(p, prefix, a);
        if (b)
                memcpy(p + a, suffix, b);
        p[a + b] = '\0';
        *ret_len = a + b;
        return p;
}

static int start_sampled(sidespan_span *s, const ssc_span_parent *p, const char *prefix,
                         const char *suffix, int kind, const sidespan_attr *attrs, size_t n)
{
        sidespan_client *c = s->client;
        char stack[NAME_STACK], *name;
        uint64_t skipped = 0;
        size_t name_len;
        int r;

        /* Start attributes that do not fit are left out and counted; the span goes on. */
        r = ssc_attrs_pack(&s->attrs, attrs, n, !c->cfg.include_content, &skipped, &s->n_attrs);
        if (skipped)
                ssc_count(&c->n.attrs_dropped, skipped);
        if (r < 0)
                return r;
        name = join_name(stack, sizeof(stack), prefix, suffix, &name_len);
        if (!name)
                return -ENOMEM;
        r = send_start(s, p, name, name_len, kind);
        if (name != stack)
                free(name);
        /* Start attributes went out; what is set from now on goes with SPAN_END. */
        ss_buf_reset(&s->attrs);
        s->n_attrs = 0;
        return r == -ENOMEM ? r : 0;
}

int ssc_span_start(sidespan_client *c, const ssc_span_parent *p, const char *prefix,
                   const char *suffix, int kind, const sidespan_attr *attrs, size_t n,
                   sidespan_span **ret)
{
        sidespan_span *s;
        int r;

        if (!ret)
                return -EINVAL;
        if (!c || !c->enabled) {
                *ret = NULL;
                return 0;
        }
        if (!prefix || (!prefix[0] && !(suffix && suffix[0])) || kind < 0 ||
            kind > SIDESPAN_KIND_CONSUMER)
                return -EINVAL;
        s = span_new(c, p);
        if (!s)
                return -ENOMEM;
        ssc_count(&c->n.spans_started, 1);
        if (!s->sampled) {
                ssc_count(&c->n.unsampled, 1);
        } else {
                r = start_sampled(s, p, prefix, suffix, kind, attrs, n);
                if (r < 0) {
                        ss_buf_free(&s->attrs);
                        free(s);
                        return r;
                }
        }
        *ret = s;
        return 0;
}

SIDESPAN_EXPORT int sidespan_span_start(sidespan_client *c, const sidespan_span *parent,
                                        const char *name, int kind, sidespan_span **ret)
{
        ssc_span_parent buf;

        return ssc_span_start(c, ssc_span_parent_of(parent, &buf), name, NULL, kind, NULL, 0, ret);
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

/* ---- attributes after start ------------------------------------------------------------- */

SIDESPAN_EXPORT int sidespan_span_set_attr(sidespan_span *s, const sidespan_attr *a)
{
        bool added;
        int r;

        if (!s)
                return 0;
        if (!s->sampled)
                return ssc_attrs_check(a);
        if (s->n_attrs == UINT32_MAX)
                return -ENOBUFS;
        r = ssc_attrs_pack_one(&s->attrs, a, !s->client->cfg.include_content, &added);
        if (r == -ENOBUFS || r == -ENOMEM)
                ssc_count(&s->client->n.attrs_dropped, 1);
        if (r < 0)
                return r;
        s->n_attrs += added;
        return 0;
}

SIDESPAN_EXPORT int sidespan_span_set_str(sidespan_span *s, const char *key, const char *value)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_STR, .value.s = value};

        return sidespan_span_set_attr(s, &a);
}

SIDESPAN_EXPORT int sidespan_span_set_int(sidespan_span *s, const char *key, int64_t value)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_INT, .value.i = value};

        return sidespan_span_set_attr(s, &a);
}

SIDESPAN_EXPORT int sidespan_span_set_double(sidespan_span *s, const char *key, double value)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_DOUBLE, .value.d = value};

        return sidespan_span_set_attr(s, &a);
}

SIDESPAN_EXPORT int sidespan_span_set_bool(sidespan_span *s, const char *key, bool value)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_BOOL, .value.b = value};

        return sidespan_span_set_attr(s, &a);
}

SIDESPAN_EXPORT int sidespan_span_set_str_array(sidespan_span *s, const char *key,
                                                const char *const *v, size_t n)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_STR_ARRAY};

        a.value.strs.v = v;
        a.value.strs.n = n;
        return sidespan_span_set_attr(s, &a);
}

SIDESPAN_EXPORT int sidespan_span_set_int_array(sidespan_span *s, const char *key, const int64_t *v,
                                                size_t n)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_INT_ARRAY};

        a.value.ints.v = v;
        a.value.ints.n = n;
        return sidespan_span_set_attr(s, &a);
}

SIDESPAN_EXPORT int sidespan_span_set_double_array(sidespan_span *s, const char *key,
                                                   const double *v, size_t n)
{
        sidespan_attr a = {.key = key, .type = SIDESPAN_ATTR_DOUBLE_ARRAY};

        a.value.doubles.v = v;
        a.value.doubles.n = n;
        return sidespan_span_set_attr(s, &a);
}

/* ---- events and end ------------------------------------------------------------------- */

SIDESPAN_EXPORT int sidespan_span_add_event(sidespan_span *s, const char *name,
                                            const sidespan_attr *attrs, size_t n)
{
        sidespan_client *c;
        ss_rawmap map;
        scratch *sc;
        int r;

        if (!s)
                return 0;
        if (!name || !name[0])
                return -EINVAL;
        if (!s->sampled)
                return 0;
        c = s->client;
        sc = scratch_get();
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
        ssc_queue_enqueue(&c->q, sc->frame.data, sc->frame.len);
        return 0;
}

static int send_end(sidespan_span *s, int status, const char *message)
{
        sidespan_client *c = s->client;
        ss_rawmap attrs = {.count = s->n_attrs, .data = s->attrs.data, .len = s->attrs.len};
        scratch *sc = scratch_get();
        int r;

        if (!sc)
                return encode_failed(c, -ENOMEM);
        if (status != SIDESPAN_STATUS_ERROR)
                message = NULL;
        r = ss_wire_put_span_end(&sc->frame, c->cfg.max_frame, s->span_id, ss_now_ns(), status,
                                 message, &attrs);
        /* A message too long for the frame must not cost the span its end. */
        if (r == -EMSGSIZE && message)
                r = ss_wire_put_span_end(&sc->frame, c->cfg.max_frame, s->span_id, ss_now_ns(),
                                         status, NULL, &attrs);
        if (r < 0)
                return encode_failed(c, r);
        ssc_queue_enqueue(&c->q, sc->frame.data, sc->frame.len);
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
        if (s->sampled) {
                int q = send_end(s, status, message);

                if (!r)
                        r = q;
        }
        ss_buf_free(&s->attrs);
        free(s);
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
