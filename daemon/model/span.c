/* SPDX-License-Identifier: MIT */
#include "model/span.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/value.h"

/*
 * Memory layout: what is written once (strings, values, nested arrays and
 * maps) lives in the span's msgpack_zone and goes with it; the arrays that
 * grow (attribute lists, the event list) are malloc'd so that realloc can
 * grow them in place. A replaced attribute value stays in the zone until the
 * span goes: spans are short-lived and the frame size bounds each value.
 */

#define ZONE_CHUNK 2048u

static void span_free(ss_span *s)
{
        for (uint32_t i = 0; i < s->n_events; i++)
                ss_attrs_free(&s->events[i].attrs);
        free(s->events);
        ss_attrs_free(&s->attrs);
        if (s->zone)
                msgpack_zone_free(s->zone);
        ss_resource_unref(s->resource);
        free(s);
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

int ss_span_set_attrs(ss_span *s, const msgpack_object_map *m, const ss_limits *lim)
{
        return ss_attrs_merge(s->zone, &s->attrs, m, lim, &s->dropped_attrs);
}

static int span_set(ss_span *s, const char *key, const msgpack_object *val)
{
        msgpack_object_str k = {.size = (uint32_t)strlen(key), .ptr = key};
        uint32_t unused = 0;

        /* Daemon-derived attributes (sidespan.orphaned, roll-ups) matter more
         * than the client's: they are not subject to max_attrs. */
        return ss_attrs_set(s->zone, &s->attrs, &k, val, 0, 0, &unused);
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

int ss_span_add_event(ss_span *s, const char *name, uint32_t name_len, uint64_t time_ns,
                      const msgpack_object_map *attrs, const ss_limits *lim)
{
        uint32_t max = lim ? lim->max_events : 0;
        ss_event e = {.time_ns = time_ns};

        if (max && s->n_events >= max) {
                s->dropped_events++;
                return 0;
        }
        if (s->n_events == s->cap_events && events_grow(s) < 0)
                return -ENOMEM;
        if (ss_zone_str(s->zone, name, name_len, 0, &e.name) < 0 ||
            ss_attrs_merge(s->zone, &e.attrs, attrs, lim, &e.dropped_attrs) < 0) {
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

void ss_span_end(ss_span *s, uint64_t end_ns, int status_code, const char *msg, uint32_t msg_len)
{
        uint8_t code = status_valid(status_code);
        msgpack_object_str m = {0};

        s->ended = true;
        s->end_ns = end_ns;
        /* ERROR is sticky: a run that failed stays failed, whatever a later end
         * says; a later ERROR without a message keeps the earlier message. */
        if (s->status_code == SS_STATUS_ERROR && (code != SS_STATUS_ERROR || !msg || !msg_len))
                return;
        /* On out-of-memory the status stands without its message. */
        if (msg && msg_len && ss_zone_str(s->zone, msg, msg_len, 0, &m) < 0)
                m = (msgpack_object_str){0};
        s->status_code = code;
        s->status_msg = m;
}

/* ---- building a span from a message ----------------------------------------------------- */

/* Options of SPAN_START: trace_state (str) and flags (uint, OTLP Span.flags). */
static int span_options(ss_span *s, const msgpack_object_map *opts)
{
        const msgpack_object *ts = ss_wire_map_get(opts, SS_OPT_TRACE_STATE);
        const msgpack_object *fl = ss_wire_map_get(opts, SS_OPT_FLAGS);

        if (fl && fl->type == MSGPACK_OBJECT_POSITIVE_INTEGER && fl->via.u64 <= UINT32_MAX)
                s->flags = (uint32_t)fl->via.u64;
        if (ts && ts->type == MSGPACK_OBJECT_STR && ts->via.str.size)
                return ss_zone_str(s->zone, ts->via.str.ptr, ts->via.str.size, 0, &s->trace_state);
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
        if (ss_zone_str(s->zone, m->name.ptr, m->name.len, 0, &s->name) < 0 ||
            span_options(s, m->options) < 0 || ss_span_set_attrs(s, m->attrs, lim) < 0)
                return -ENOMEM;
        if (!whole)
                return 0;
        if (span_events(s, m->events, lim) < 0)
                return -ENOMEM;
        ss_span_end(s, m->end_ns, m->status_code, m->status_msg.ptr, m->status_msg.len);
        return 0;
}

ss_span *ss_span_new(const ss_msg_span *m, bool whole, ss_resource *r, const ss_limits *lim)
{
        ss_span *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        s->refs = 1;
        s->resource = ss_resource_ref(r);
        s->zone = msgpack_zone_new(ZONE_CHUNK);
        if (!s->zone || span_fill(s, m, whole, lim) < 0) {
                span_free(s);
                return NULL;
        }
        return s;
}
