/* SPDX-License-Identifier: MIT */
#include "model/span.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/pool.h"

/*
 * Memory layout: what is written once (strings, values, nested arrays and
 * maps) lives in the span's store (a bump arena, model/value.h); the arrays
 * that grow are apart: attribute lists from base/pool.h, the event list
 * malloc'd so that realloc can grow it in place. A replaced attribute value
 * becomes dead bytes in the store; once they outweigh the live ones the store
 * is rebuilt, so a client re-setting one key on a long-lived span keeps only
 * the last value.
 */

static void events_free(ss_event *ev, uint32_t n)
{
        for (uint32_t i = 0; i < n; i++)
                ss_attrs_free(&ev[i].attrs);
        free(ev);
}

static void span_free(ss_span *s)
{
        events_free(s->events, s->n_events);
        ss_attrs_free(&s->attrs);
        ss_store_free(&s->store);
        ss_resource_unref(s->resource);
        ss_pool_put(s, s->pool_class);
}

ss_span *ss_span_ref(ss_span *s)
{
        s->refs++;
        return s;
}

void ss_span_unref(ss_span *s)
{
        if (!s || --s->refs > 0)
                return;
        span_free(s);
}

/* ---- compaction ------------------------------------------------------------------------- */

/* Copy *s into st in place of the old one (an empty string points at no store). */
static int clone_str(ss_store *st, msgpack_object_str *s)
{
        if (!s->size) {
                *s = (msgpack_object_str){0};
                return 0;
        }
        return ss_store_str(st, s->ptr, s->size, 0, s) < 0 ? -ENOMEM : 0;
}

/* A copy of s's fields in *c with everything s references copied into c's new store and
 * new lists. -ENOMEM, with nothing left allocated. */
static int copy_deep(const ss_span *s, ss_span *c)
{
        ss_event *ev = calloc(s->cap_events ? s->cap_events : 1, sizeof(*ev));
        int r;

        *c = *s;
        c->events = ev;
        c->attrs = (ss_attrs){0};
        c->store = (ss_store){0};
        ss_store_init(&c->store);
        r = ev ? clone_str(&c->store, &c->name) : -ENOMEM;
        if (r == 0)
                r = clone_str(&c->store, &c->status_msg);
        if (r == 0)
                r = clone_str(&c->store, &c->trace_state);
        if (r == 0)
                r = ss_attrs_clone(&c->store, &c->attrs, &s->attrs);
        for (uint32_t i = 0; r == 0 && i < s->n_events; i++) {
                ev[i] = (ss_event){.time_ns = s->events[i].time_ns,
                                   .name = s->events[i].name,
                                   .dropped_attrs = s->events[i].dropped_attrs};
                r = clone_str(&c->store, &ev[i].name);
                if (r == 0)
                        r = ss_attrs_clone(&c->store, &ev[i].attrs, &s->events[i].attrs);
        }
        if (r < 0) {
                if (ev)
                        events_free(ev, s->n_events);
                ss_attrs_free(&c->attrs);
                ss_store_free(&c->store);
                return -ENOMEM;
        }
        return 0;
}

/* Copy everything the span references into a new store; the old one goes. On failure the
 * span is left as it was. */
static int compact(ss_span *s, const ss_limits *lim)
{
        ss_span c;

        if (copy_deep(s, &c) < 0)
                return -ENOMEM;
        events_free(s->events, s->n_events);
        ss_attrs_free(&s->attrs);
        ss_store_free(&s->store);
        *s = c;
        if (lim && lim->hits)
                lim->hits->compactions++;
        return 0;
}

ss_span *ss_span_clone(const ss_span *s)
{
        ss_span *c = malloc(sizeof(*c));

        if (!c)
                return NULL;
        if (copy_deep(s, c) < 0) {
                free(c);
                return NULL;
        }
        c->refs = 1;
        c->pool_class = 0; /* malloc'd, its own size */
        c->rollup = NULL;  /* the assembler's, with the span it began with */
        ss_resource_ref(c->resource);
        return c;
}

/* Reclaim replaced values once they outweigh the live ones. A failed rebuild only leaves the
 * memory in use until the next try. */
static void maybe_compact(ss_span *s, const ss_limits *lim)
{
        if (s->store.dead >= SS_SPAN_COMPACT_MIN && s->store.dead > s->store.live)
                (void)compact(s, lim);
}

/* ---- attributes and events -------------------------------------------------------------- */

int ss_span_set_attrs(ss_span *s, const msgpack_object_map *m, const ss_limits *lim)
{
        static const ss_mp_map no_bytes;

        return ss_span_set_msg_attrs(s, m, &no_bytes, lim);
}

int ss_span_set_msg_attrs(ss_span *s, const msgpack_object_map *m, const ss_mp_map *bytes,
                          const ss_limits *lim)
{
        int r = bytes->n ? ss_attrs_merge_bytes(&s->store, &s->attrs, bytes, lim, &s->dropped_attrs)
                         : ss_attrs_merge(&s->store, &s->attrs, m, lim, &s->dropped_attrs);

        maybe_compact(s, lim);
        return r;
}

static int span_set(ss_span *s, const char *key, const msgpack_object *val)
{
        msgpack_object_str k = {.size = (uint32_t)strlen(key), .ptr = key};

        /* Daemon-derived attributes (sidespan.orphaned, roll-ups) matter more
         * than the client's: no limit applies to them. */
        return ss_attrs_set(&s->store, &s->attrs, &k, val, NULL, NULL);
}

int ss_span_set_str(ss_span *s, const char *key, const char *value)
{
        msgpack_object v = {.type = MSGPACK_OBJECT_STR};

        v.via.str = (msgpack_object_str){.size = (uint32_t)strlen(value), .ptr = value};
        return span_set(s, key, &v);
}

int ss_span_set_bool(ss_span *s, const char *key, bool value)
{
        msgpack_object v = {.type = MSGPACK_OBJECT_BOOLEAN, .via.boolean = value};

        return span_set(s, key, &v);
}

int ss_span_set_u64(ss_span *s, const char *key, uint64_t value)
{
        msgpack_object v = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = value};

        return span_set(s, key, &v);
}

int ss_span_set_double(ss_span *s, const char *key, double value)
{
        msgpack_object v = {.type = MSGPACK_OBJECT_FLOAT64, .via.f64 = value};

        return span_set(s, key, &v);
}

int ss_span_set_trace_state(ss_span *s, const char *value, size_t len)
{
        msgpack_object_str old = s->trace_state;

        if (len > SS_TRACE_STATE_MAX)
                return -EINVAL;
        if (len == 0)
                s->trace_state = (msgpack_object_str){0};
        else if (ss_store_str(&s->store, value, len, 0, &s->trace_state) < 0)
                return -ENOMEM;
        if (old.size)
                ss_store_release(&s->store, old.size + 1ull);
        return 0;
}

static int events_grow(ss_span *s)
{
        uint32_t cap = s->cap_events ? s->cap_events * 2 : 4;
        ss_event *e;

        if (s->cap_events > UINT32_MAX / 2)
                return -ENOMEM;
        e = realloc(s->events, (size_t)cap * sizeof(*e));
        if (!e)
                return -ENOMEM;
        s->events = e;
        s->cap_events = cap;
        return 0;
}

/* Copy a name, cut to the limit; counted when cut. */
static int store_name(ss_store *st, const char *p, size_t n, const ss_limits *lim,
                      msgpack_object_str *ret)
{
        int r = ss_store_str(st, p, n, lim ? lim->max_name_len : 0, ret);

        if (r > 0 && lim && lim->hits)
                lim->hits->names_cut++;
        return r < 0 ? r : 0;
}

/* Count an event that does not fit. */
static int drop_event(ss_span *s, const ss_limits *lim, bool over_bytes)
{
        s->dropped_events++;
        if (lim && lim->hits) {
                if (over_bytes)
                        lim->hits->bytes_over++;
                else
                        lim->hits->events_over++;
        }
        return 0;
}

int ss_span_add_event(ss_span *s, const char *name, uint32_t name_len, uint64_t time_ns,
                      const msgpack_object_map *attrs, const ss_limits *lim)
{
        uint32_t max = lim ? lim->max_events : 0;
        ss_event e = {.time_ns = time_ns};

        if (max && s->n_events >= max)
                return drop_event(s, lim, false);
        if (lim && lim->max_bytes && s->store.live + name_len + 1ull > lim->max_bytes)
                return drop_event(s, lim, true);
        if (s->n_events == s->cap_events && events_grow(s) < 0)
                return -ENOMEM;
        if (store_name(&s->store, name, name_len, lim, &e.name) < 0 ||
            ss_attrs_merge(&s->store, &e.attrs, attrs, lim, &e.dropped_attrs) < 0) {
                ss_attrs_free(&e.attrs);
                return -ENOMEM;
        }
        s->events[s->n_events++] = e;
        return 0;
}

static uint8_t status_valid(int code)
{
        return code == SS_STATUS_OK || code == SS_STATUS_ERROR ? (uint8_t)code : SS_STATUS_UNSET;
}

void ss_span_end_limited(ss_span *s, uint64_t end_ns, int status_code, const char *msg,
                         uint32_t msg_len, const ss_limits *lim)
{
        uint8_t code = status_valid(status_code);
        msgpack_object_str m = {0};

        s->ended = true;
        s->end_ns = end_ns < s->start_ns ? s->start_ns : end_ns;
        /* ERROR is sticky: a run that failed stays failed, whatever a later end
         * says; a later ERROR without a message keeps the earlier message. */
        if (s->status_code == SS_STATUS_ERROR && (code != SS_STATUS_ERROR || !msg || !msg_len))
                return;
        /* On out-of-memory the status stands without its message. */
        if (msg && msg_len && store_name(&s->store, msg, msg_len, lim, &m) < 0)
                m = (msgpack_object_str){0};
        s->status_code = code;
        s->status_msg = m;
}

void ss_span_end(ss_span *s, uint64_t end_ns, int status_code, const char *msg, uint32_t msg_len)
{
        ss_span_end_limited(s, end_ns, status_code, msg, msg_len, NULL);
}

/* ---- building a span from a message ----------------------------------------------------- */

/* Options of SPAN_START: trace_state (str) and flags (uint, OTLP Span.flags). */
static int span_options(ss_span *s, const ss_msg_span *m)
{
        s->flags = m->flags;
        if (m->trace_state.len && m->trace_state.len <= SS_TRACE_STATE_MAX)
                return ss_store_str(&s->store, m->trace_state.ptr, m->trace_state.len, 0,
                                    &s->trace_state) < 0
                           ? -ENOMEM
                           : 0;
        return 0;
}

/* Events of a SPAN message: arrays of [name, time_ns, attrs]; others are skipped. */
static int span_events(ss_span *s, const msgpack_object_array *ev, const ss_limits *lim)
{
        for (uint32_t i = 0; ev && i < ev->size; i++) {
                const msgpack_object *e = &ev->ptr[i];
                const msgpack_object *f;

                if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 3)
                        continue;
                f = e->via.array.ptr;
                if (f[0].type != MSGPACK_OBJECT_STR || f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                        continue;
                if (ss_span_add_event(s, f[0].via.str.ptr, f[0].via.str.size, f[1].via.u64,
                                      f[2].type == MSGPACK_OBJECT_MAP ? &f[2].via.map : NULL,
                                      lim) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int span_fill(ss_span *s, const ss_msg_span *m, bool whole, const ss_limits *lim)
{
        memcpy(s->trace_id, m->trace_id, SS_TRACE_ID_LEN);
        memcpy(s->span_id, m->span_id, SS_SPAN_ID_LEN);
        if (m->parent_id) {
                memcpy(s->parent_id, m->parent_id, SS_SPAN_ID_LEN);
                s->has_parent = true;
        }
        s->kind = m->kind >= SS_KIND_UNSPECIFIED && m->kind <= SS_KIND_CONSUMER
                      ? (uint8_t)m->kind
                      : SS_KIND_UNSPECIFIED;
        s->start_ns = m->start_ns;
        if (store_name(&s->store, m->name.ptr, m->name.len, lim, &s->name) < 0 ||
            span_options(s, m) < 0 || ss_span_set_msg_attrs(s, m->attrs, &m->attrs_bytes, lim) < 0)
                return -ENOMEM;
        if (!whole)
                return 0;
        if (span_events(s, m->events, lim) < 0)
                return -ENOMEM;
        ss_span_end_limited(s, m->end_ns, m->status_code, m->status_msg.ptr, m->status_msg.len,
                            lim);
        return 0;
}

/*
 * About what the message's name and attributes take once stored: the store's first block,
 * so that an open span holds no more than it needs (a fixed 2 KiB block was two thirds of
 * what a span of a few attributes cost).
 */
static size_t store_hint(const ss_msg_span *m)
{
        size_t n = (size_t)m->name.len + m->status_msg.len + 2;

        /* Attributes left as bytes take about as many in the store: a string's header byte
         * for its NUL, a number's bytes more than it takes. */
        n += m->attrs_bytes.len;
        for (uint32_t i = 0; m->attrs && i < m->attrs->size; i++) {
                const msgpack_object_kv *kv = &m->attrs->ptr[i];

                if (kv->key.type == MSGPACK_OBJECT_STR)
                        n += kv->key.via.str.size + 1ull + ss_value_size_min(&kv->val, 0);
        }
        return n;
}

ss_span *ss_span_new(const ss_msg_span *m, bool whole, ss_resource *r, const ss_limits *lim)
{
        /* The store's first region comes with the span, one allocation for both, and has
         * what the pool's size class rounds up. */
        size_t first = ss_store_first_size(store_hint(m));
        unsigned c = ss_pool_class(sizeof(ss_span) + first);
        ss_span *s = ss_pool_get(c, sizeof(ss_span) + first);

        if (!s)
                return NULL;
        if (c)
                first = ss_pool_class_size(c) - sizeof(ss_span);
        *s = (ss_span){
            .refs = 1, .pool_class = (uint8_t)c, .head_rate = 1.0, .resource = ss_resource_ref(r)};
        ss_store_init_in(&s->store, s + 1, first);
        if (span_fill(s, m, whole, lim) < 0) {
                span_free(s);
                return NULL;
        }
        return s;
}
