/* SPDX-License-Identifier: MIT */
#include "policy/sampling.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hashmap.h"
#include "ss-id.h"
#include "ss-wire.h"

#define FLAG_SAMPLED       0x001u
#define FLAG_HAS_IS_REMOTE 0x100u
#define FLAG_IS_REMOTE     0x200u
#define STATUS_ERROR       2u
#define CAP_SERVICES       64u /* services capped apart; more share one budget */
#define SERVICE_NAME_MAX   128u
#define REMEMBER_DEFAULT   65536u

/* An early decision, remembered for the trace's later parts. */
typedef struct remembered {
        uint8_t id[SS_TRACE_ID_LEN];
        bool used;
        bool keep;
        bool root_seen;
} remembered;

/* Tail-kept traces of one service in the current second. */
typedef struct service_budget {
        char name[SERVICE_NAME_MAX];
        uint64_t second;
        uint32_t kept;
} service_budget;

struct ss_sampler {
        ss_sampling_config cfg;
        ss_map decided; /* trace id -> remembered */
        remembered *ring;
        uint32_t ring_cap, ring_next;
        service_budget budget[CAP_SERVICES + 1]; /* the last: every other service */
        size_t n_budget;
        ss_sampling_stats st;
};

/* ---- head --------------------------------------------------------------------------- */

bool ss_sampling_tail_active(const ss_sampling_config *c)
{
        return c->keep_errors || c->keep_slower_than_ms || c->n_match;
}

bool ss_sampling_head_keep(const uint8_t *trace_id, double daemon_rate, double client_rate,
                           uint32_t flags, bool has_parent)
{
        if (has_parent && (flags & (FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE)) ==
                              (FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE))
                return flags & FLAG_SAMPLED;
        return ss_sample_keep(trace_id, client_rate < daemon_rate ? client_rate : daemon_rate);
}

bool ss_span_is_local_root(const ss_span *s)
{
        return !s->has_parent || (s->flags & (FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE)) ==
                                     (FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE);
}

/* ---- tracestate ------------------------------------------------------------------------- */

static const char *skip_ows(const char *p, const char *end)
{
        while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        return p;
}

static size_t trim_ows(const char *p, size_t n)
{
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
        return n;
}

/* Append n bytes of p to out at *len; false when it would not fit. */
static bool put(char *out, size_t size, size_t *len, const char *p, size_t n)
{
        if (*len + n + 1 > size)
                return false;
        memcpy(out + *len, p, n);
        *len += n;
        out[*len] = '\0';
        return true;
}

/* The ot entry's value (after "ot=") without its th sub-key, th_hex's first, into out. */
static bool ot_value(const char *v, size_t n, const char *th_hex, char *out, size_t size,
                     size_t *len)
{
        const char *end = v + n;
        bool first = true;

        if (th_hex) {
                if (!put(out, size, len, "th:", 3) || !put(out, size, len, th_hex, strlen(th_hex)))
                        return false;
                first = false;
        }
        while (v < end) {
                const char *semi = memchr(v, ';', (size_t)(end - v));
                size_t m = semi ? (size_t)(semi - v) : (size_t)(end - v);

                if (m && !(m >= 3 && memcmp(v, "th:", 3) == 0)) {
                        if ((!first && !put(out, size, len, ";", 1)) || !put(out, size, len, v, m))
                                return false;
                        first = false;
                }
                v += m + (semi ? 1 : 0);
        }
        return true;
}

int ss_tracestate_set_th(const char *ts, size_t len, const char *th_hex, char *out, size_t size)
{
        const char *p = ts, *end = ts + len, *ot = NULL;
        size_t n_ot = 0, out_len = 0, mark;

        if (size > SS_TRACE_STATE_MAX + 1)
                size = SS_TRACE_STATE_MAX + 1;
        out[0] = '\0';
        /* Find the ot entry. */
        while (p < end) {
                const char *comma = memchr(p, ',', (size_t)(end - p));
                const char *m = skip_ows(p, comma ? comma : end);
                size_t mn = trim_ows(m, (size_t)((comma ? comma : end) - m));

                if (mn >= 3 && memcmp(m, "ot=", 3) == 0) {
                        ot = m + 3;
                        n_ot = mn - 3;
                }
                p = comma ? comma + 1 : end;
        }
        /* ot first, with th replaced. */
        if (!put(out, size, &out_len, "ot=", 3))
                return -EINVAL;
        mark = out_len;
        if (!ot_value(ot ? ot : "", n_ot, th_hex, out, size, &out_len))
                return -EINVAL;
        if (out_len == mark)
                out_len = 0; /* an empty ot entry is left out */
        out[out_len] = '\0';
        /* The other entries, in their order. */
        for (p = ts; p < end;) {
                const char *comma = memchr(p, ',', (size_t)(end - p));
                const char *m = skip_ows(p, comma ? comma : end);
                size_t mn = trim_ows(m, (size_t)((comma ? comma : end) - m));

                if (mn && !(mn >= 3 && memcmp(m, "ot=", 3) == 0))
                        if ((out_len && !put(out, size, &out_len, ",", 1)) ||
                            !put(out, size, &out_len, m, mn))
                                return -EINVAL;
                p = comma ? comma + 1 : end;
        }
        return (int)out_len;
}

/* The threshold of rate as th's hex: 14 digits, trailing zeros removed; "" at 0 and 1. */
static void th_of(double rate, char *out, size_t size)
{
        char ts[32];
        size_t skip;

        ss_sample_tracestate(ts, sizeof(ts), rate);
        skip = ts[0] ? strlen("ot=th:") : 0;
        if (strlen(ts + skip) >= size)
                ts[skip] = '\0';
        memcpy(out, ts + skip, strlen(ts + skip) + 1);
}

/* Give every kept span of one decision its th: the head's rate, or none (a tail policy). */
static void set_th(ss_span *const *spans, size_t n, bool by_head)
{
        char out[SS_TRACE_STATE_MAX + 1], th[16];
        double last = -2.0;
        int len;

        th[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                ss_span *sp = spans[i];

                if (by_head && sp->head_rate < 0)
                        continue; /* a remote parent's decision: its tracestate says it */
                if (by_head && sp->head_rate != last) {
                        th_of(sp->head_rate, th, sizeof(th));
                        last = sp->head_rate;
                }
                if (by_head && !th[0] && !sp->trace_state.size)
                        continue;
                len = ss_tracestate_set_th(sp->trace_state.ptr ? sp->trace_state.ptr : "",
                                           sp->trace_state.size, by_head && th[0] ? th : NULL, out,
                                           sizeof(out));
                if (len >= 0 && ((size_t)len != sp->trace_state.size ||
                                 (len > 0 && memcmp(out, sp->trace_state.ptr, (size_t)len) != 0)))
                        (void)ss_span_set_trace_state(sp, out, (size_t)len);
        }
}

/* ---- tail ------------------------------------------------------------------------------- */

/* v as text equals want. */
static bool value_is(const msgpack_object *v, const char *want)
{
        char buf[64];

        switch (v->type) {
        case MSGPACK_OBJECT_STR:
                return v->via.str.size == strlen(want) &&
                       memcmp(v->via.str.ptr, want, v->via.str.size) == 0;
        case MSGPACK_OBJECT_BOOLEAN:
                return strcmp(want, v->via.boolean ? "true" : "false") == 0;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
                snprintf(buf, sizeof(buf), "%" PRIu64, v->via.u64);
                return strcmp(buf, want) == 0;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                snprintf(buf, sizeof(buf), "%" PRId64, v->via.i64);
                return strcmp(buf, want) == 0;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: {
                char *end;
                double d = strtod(want, &end);

                return *want && !*end && d == v->via.f64;
        }
        default:
                return false;
        }
}

static bool matches(const ss_sampling_config *c, const ss_span *s)
{
        for (size_t i = 0; i < c->n_match; i++) {
                const msgpack_object *v = ss_attrs_get(&s->attrs, c->match[i].key);

                if (v && value_is(v, c->match[i].value))
                        return true;
        }
        return false;
}

enum { KEPT_NONE, KEPT_ERROR, KEPT_LATENCY, KEPT_ATTRIBUTE };

static int tail_reason(const ss_sampling_config *c, ss_span *const *spans, size_t n)
{
        for (size_t i = 0; c->keep_errors && i < n; i++)
                if (spans[i]->status_code == STATUS_ERROR)
                        return KEPT_ERROR;
        for (size_t i = 0; c->keep_slower_than_ms && i < n; i++)
                if (ss_span_is_local_root(spans[i]) &&
                    spans[i]->end_ns - spans[i]->start_ns >= c->keep_slower_than_ms * 1000000ull)
                        return KEPT_LATENCY;
        for (size_t i = 0; c->n_match && i < n; i++)
                if (matches(c, spans[i]))
                        return KEPT_ATTRIBUTE;
        return KEPT_NONE;
}

/* The service of a trace's spans, for the cap. */
static void service_of(const ss_span *s, char *out, size_t size)
{
        const msgpack_object *v = ss_attrs_get(&s->resource->attrs, "service.name");

        if (v && v->type == MSGPACK_OBJECT_STR)
                snprintf(out, size, "%.*s", (int)v->via.str.size, v->via.str.ptr);
        else
                snprintf(out, size, "%s", "");
}

/* One more tail-kept trace of the spans' service this second: false past the cap. */
static bool under_cap(ss_sampler *s, const ss_span *sp, uint64_t now_ns)
{
        char name[SERVICE_NAME_MAX];
        uint64_t second = now_ns / 1000000000ull;
        service_budget *b = NULL;

        if (!s->cfg.max_kept_per_second)
                return true;
        service_of(sp, name, sizeof(name));
        for (size_t i = 0; i < s->n_budget && !b; i++)
                if (strcmp(s->budget[i].name, name) == 0)
                        b = &s->budget[i];
        if (!b) {
                b = &s->budget[s->n_budget < CAP_SERVICES ? s->n_budget++ : CAP_SERVICES];
                if (b != &s->budget[CAP_SERVICES] || !b->name[0])
                        snprintf(b->name, sizeof(b->name), "%s", name);
        }
        if (b->second != second) {
                b->second = second;
                b->kept = 0;
        }
        if (b->kept >= s->cfg.max_kept_per_second)
                return false;
        b->kept++;
        return true;
}

/* ---- remembered decisions --------------------------------------------------------------- */

static remembered *remember(ss_sampler *s, const uint8_t *id, bool keep)
{
        remembered *r = &s->ring[s->ring_next];

        if (r->used)
                ss_map_remove(&s->decided, r->id);
        *r = (remembered){.used = true, .keep = keep};
        memcpy(r->id, id, SS_TRACE_ID_LEN);
        if (ss_map_put(&s->decided, r->id, r) < 0) {
                r->used = false;
                return NULL;
        }
        s->ring_next = (s->ring_next + 1) % s->ring_cap;
        return r;
}

static bool has_root(ss_span *const *spans, size_t n, size_t *ret)
{
        for (size_t i = 0; i < n; i++)
                if (ss_span_is_local_root(spans[i])) {
                        *ret = i;
                        return true;
                }
        return false;
}

bool ss_sampler_decide(ss_sampler *s, ss_span *const *spans, size_t n, uint64_t now_ns)
{
        remembered *r = ss_map_get(&s->decided, spans[0]->trace_id);
        bool head = true, keep, root;
        size_t root_at = 0;
        int why = KEPT_NONE;

        root = has_root(spans, n, &root_at);
        if (r) {
                keep = r->keep;
                s->st.followed++;
                if (root && !r->root_seen) {
                        r->root_seen = true;
                        if (keep)
                                (void)ss_span_set_bool(spans[root_at],
                                                       "sidespan.sampling.early_decision", true);
                }
                head = !spans[0]->head_drop;
        } else {
                for (size_t i = 0; i < n && head; i++)
                        head = !spans[i]->head_drop;
                keep = head;
                if (!keep && ss_sampling_tail_active(&s->cfg)) {
                        why = tail_reason(&s->cfg, spans, n);
                        if (why != KEPT_NONE && !under_cap(s, spans[0], now_ns)) {
                                s->st.capped++;
                                why = KEPT_NONE;
                        }
                        keep = why != KEPT_NONE;
                }
                if (keep)
                        (*(why == KEPT_ERROR       ? &s->st.kept_error
                           : why == KEPT_LATENCY   ? &s->st.kept_latency
                           : why == KEPT_ATTRIBUTE ? &s->st.kept_attribute
                                                   : &s->st.kept_head))++;
                /* Decided without the root: later parts must follow. */
                if (!root) {
                        s->st.early++;
                        (void)remember(s, spans[0]->trace_id, keep);
                }
        }
        if (!keep) {
                s->st.dropped_traces++;
                s->st.dropped_spans += n;
                return false;
        }
        set_th(spans, n, head);
        return true;
}

/* ---- lifetime ------------------------------------------------------------------------- */

int ss_sampler_new(const ss_sampling_config *cfg, ss_sampler **ret)
{
        ss_sampler *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->cfg = *cfg;
        s->ring_cap = cfg->remember ? cfg->remember : REMEMBER_DEFAULT;
        s->ring = calloc(s->ring_cap, sizeof(*s->ring));
        if (!s->ring) {
                free(s);
                return -ENOMEM;
        }
        ss_map_init(&s->decided, SS_TRACE_ID_LEN);
        *ret = s;
        return 0;
}

void ss_sampler_free(ss_sampler *s)
{
        if (!s)
                return;
        ss_map_free(&s->decided);
        free(s->ring);
        free(s);
}

const ss_sampling_stats *ss_sampler_stats(const ss_sampler *s)
{
        return &s->st;
}

void ss_sampler_counters(const void *sampler, ss_counters *out)
{
        const ss_sampling_stats *st = &((const ss_sampler *)sampler)->st;

        ss_counters_add(out, "sampling.", "kept_head", st->kept_head);
        ss_counters_add(out, "sampling.", "kept_error", st->kept_error);
        ss_counters_add(out, "sampling.", "kept_latency", st->kept_latency);
        ss_counters_add(out, "sampling.", "kept_attribute", st->kept_attribute);
        ss_counters_add(out, "sampling.", "capped", st->capped);
        ss_counters_add(out, "sampling.", "dropped_traces", st->dropped_traces);
        ss_counters_add(out, "sampling.", "dropped_spans", st->dropped_spans);
        ss_counters_add(out, "sampling.", "early_decisions", st->early);
        ss_counters_add(out, "sampling.", "followed", st->followed);
}
