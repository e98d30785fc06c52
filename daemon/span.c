/* SPDX-License-Identifier: MIT */
#include "span.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Memory layout: what is written once (strings, values, nested arrays and
 * maps) lives in the owner's msgpack_zone and goes with it; the arrays that
 * grow (attribute lists, the event list) are malloc'd so that realloc can
 * grow them in place. A replaced attribute value stays in the zone until the
 * span goes: spans are short-lived and the frame size bounds each value.
 *
 * Every string copied in is made well-formed UTF-8 and NUL-terminated (the
 * NUL not counted in size), so encoders may hand it to C string APIs.
 */

#define ZONE_CHUNK 2048u

static const uint32_t no_limit = 0;

static uint32_t lim_attrs(const ss_limits *lim)
{
        return lim ? lim->max_attrs : no_limit;
}

static uint32_t lim_events(const ss_limits *lim)
{
        return lim ? lim->max_events : no_limit;
}

static uint32_t lim_len(const ss_limits *lim)
{
        return lim ? lim->max_value_len : no_limit;
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

static bool is_cont(uint8_t c)
{
        return (c & 0xC0) == 0x80;
}

size_t ss_utf8_char_len(const uint8_t *p, size_t n)
{
        uint8_t c = p[0];

        if (c < 0x80)
                return 1;
        if (c < 0xC2 || c > 0xF4)
                return 0;
        if (c < 0xE0)
                return n >= 2 && is_cont(p[1]) ? 2 : 0;
        if (c < 0xF0) {
                if (n < 3 || !is_cont(p[1]) || !is_cont(p[2]))
                        return 0;
                if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))
                        return 0; /* overlong, surrogate */
                return 3;
        }
        if (n < 4 || !is_cont(p[1]) || !is_cont(p[2]) || !is_cont(p[3]))
                return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
                return 0; /* overlong, past U+10FFFF */
        return 4;
}

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

/*
 * Measure the sanitised form of p[0..n) cut to at most max bytes (0: no cut)
 * on a character boundary. Sets *ret_in to the input bytes it covers and
 * *ret_clean when no byte needs replacing; returns the output length.
 */
static size_t utf8_measure(const uint8_t *p, size_t n, size_t max, size_t *ret_in, bool *ret_clean)
{
        size_t in = 0, out = 0;
        bool clean = true;

        while (in < n) {
                size_t l, w;
                uint64_t v;

                /* Eight ASCII bytes at a time: content attributes are mostly ASCII. */
                if (n - in >= 8 && max - out >= 8) {
                        memcpy(&v, p + in, sizeof(v));
                        if (!(v & 0x8080808080808080ull)) {
                                in += 8;
                                out += 8;
                                continue;
                        }
                }
                l = p[in] < 0x80 ? 1 : ss_utf8_char_len(p + in, n - in);
                w = l ? l : sizeof(replacement) - 1;

                if (out + w > max)
                        break;
                clean = clean && l;
                out += w;
                in += l ? l : 1;
        }
        *ret_in = in;
        *ret_clean = clean;
        return out;
}

static void utf8_write(char *dst, const uint8_t *p, size_t n)
{
        size_t in = 0;

        while (in < n) {
                size_t l = ss_utf8_char_len(p + in, n - in);

                if (l) {
                        memcpy(dst, p + in, l);
                        dst += l;
                        in += l;
                } else {
                        memcpy(dst, replacement, sizeof(replacement) - 1);
                        dst += sizeof(replacement) - 1;
                        in++;
                }
        }
}

/* ---- copying msgpack objects into a zone ----------------------------------------------- */

/* Copy a string: well-formed UTF-8, cut to max bytes (0: no cut), NUL-terminated. */
static int zone_str(msgpack_zone *z, const char *p, size_t n, uint32_t max, msgpack_object_str *ret)
{
        size_t limit = max ? max : UINT32_MAX - 1, in, len;
        bool clean;
        char *d;

        len = utf8_measure((const uint8_t *)p, n, limit, &in, &clean);
        d = msgpack_zone_malloc_no_align(z, len + 1);
        if (!d)
                return -ENOMEM;
        if (clean)
                memcpy(d, p, len);
        else
                utf8_write(d, (const uint8_t *)p, in);
        d[len] = '\0';
        *ret = (msgpack_object_str){.size = (uint32_t)len, .ptr = d};
        return 0;
}

static int zone_bin(msgpack_zone *z, const msgpack_object_bin *b, uint32_t max,
                    msgpack_object_bin *ret)
{
        uint32_t len = max && b->size > max ? max : b->size;
        char *d = msgpack_zone_malloc_no_align(z, len ? len : 1);

        if (!d)
                return -ENOMEM;
        if (len)
                memcpy(d, b->ptr, len);
        *ret = (msgpack_object_bin){.size = len, .ptr = d};
        return 0;
}

static int copy_value(msgpack_zone *z, msgpack_object *dst, const msgpack_object *src,
                      uint32_t max_len, unsigned depth);

static int copy_array(msgpack_zone *z, msgpack_object_array *dst, const msgpack_object_array *src,
                      uint32_t max_len, unsigned depth)
{
        msgpack_object *o = NULL;

        if (src->size) {
                o = msgpack_zone_malloc(z, (size_t)src->size * sizeof(*o));
                if (!o)
                        return -ENOMEM;
        }
        for (uint32_t i = 0; i < src->size; i++)
                if (copy_value(z, &o[i], &src->ptr[i], max_len, depth + 1) < 0)
                        return -ENOMEM;
        *dst = (msgpack_object_array){.size = src->size, .ptr = o};
        return 0;
}

/* Nested maps become OTLP kvlists: entries whose key is not a string are left out. */
static int copy_map(msgpack_zone *z, msgpack_object_map *dst, const msgpack_object_map *src,
                    uint32_t max_len, unsigned depth)
{
        msgpack_object_kv *kv = NULL;
        uint32_t n = 0;

        if (src->size) {
                kv = msgpack_zone_malloc(z, (size_t)src->size * sizeof(*kv));
                if (!kv)
                        return -ENOMEM;
        }
        for (uint32_t i = 0; i < src->size; i++) {
                const msgpack_object_kv *s = &src->ptr[i];

                if (s->key.type != MSGPACK_OBJECT_STR)
                        continue;
                kv[n].key.type = MSGPACK_OBJECT_STR;
                if (zone_str(z, s->key.via.str.ptr, s->key.via.str.size, 0, &kv[n].key.via.str) <
                        0 ||
                    copy_value(z, &kv[n].val, &s->val, max_len, depth + 1) < 0)
                        return -ENOMEM;
                n++;
        }
        *dst = (msgpack_object_map){.size = n, .ptr = kv};
        return 0;
}

/* Values the wire protocol does not allow (nil, ext, deeper than the wire
 * allows) become nil, which the encoders write as an empty AnyValue. */
static int copy_value(msgpack_zone *z, msgpack_object *dst, const msgpack_object *src,
                      uint32_t max_len, unsigned depth)
{
        *dst = (msgpack_object){.type = MSGPACK_OBJECT_NIL};
        if (depth > SS_ATTR_DEPTH_MAX)
                return 0;
        switch (src->type) {
        case MSGPACK_OBJECT_BOOLEAN:
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                *dst = *src;
                return 0;
        case MSGPACK_OBJECT_STR:
                dst->type = src->type;
                return zone_str(z, src->via.str.ptr, src->via.str.size, max_len, &dst->via.str);
        case MSGPACK_OBJECT_BIN:
                dst->type = src->type;
                return zone_bin(z, &src->via.bin, max_len, &dst->via.bin);
        case MSGPACK_OBJECT_ARRAY:
                dst->type = src->type;
                return copy_array(z, &dst->via.array, &src->via.array, max_len, depth);
        case MSGPACK_OBJECT_MAP:
                dst->type = src->type;
                return copy_map(z, &dst->via.map, &src->via.map, max_len, depth);
        default:
                return 0;
        }
}

/* ---- attribute lists ------------------------------------------------------------------- */

/* The pair of key in a, writable: the span owns it. */
static msgpack_object_kv *attrs_find(const ss_attrs *a, const char *key, size_t len)
{
        return (msgpack_object_kv *)ss_wire_kv_find(a->kv, a->n, key, len);
}

static int attrs_grow(ss_attrs *a)
{
        uint32_t cap = a->cap ? a->cap * 2 : 8;
        msgpack_object_kv *kv;

        if (a->cap > UINT32_MAX / 2)
                return -ENOMEM;
        kv = realloc(a->kv, (size_t)cap * sizeof(*kv));
        if (!kv)
                return -ENOMEM;
        a->kv = kv;
        a->cap = cap;
        return 0;
}

static bool str_is_utf8(const char *p, size_t n)
{
        size_t in;
        bool clean;

        utf8_measure((const uint8_t *)p, n, SIZE_MAX, &in, &clean);
        return clean;
}

/* The key as it is stored: raw when it is well-formed, else its sanitised copy. */
static int attr_key(msgpack_zone *z, const msgpack_object_str *key, msgpack_object_str *ret)
{
        if (str_is_utf8(key->ptr, key->size)) {
                *ret = *key;
                return 0;
        }
        return zone_str(z, key->ptr, key->size, 0, ret);
}

/*
 * Set one attribute: replace the value of an existing key in place (its
 * position kept), else append unless max_attrs (0: none) is reached, in
 * which case count it in *dropped.
 */
static int attrs_set(msgpack_zone *z, ss_attrs *a, const msgpack_object_str *raw_key,
                     const msgpack_object *val, uint32_t max_attrs, uint32_t max_len,
                     uint32_t *dropped)
{
        msgpack_object_str key;
        msgpack_object v;
        msgpack_object_kv *kv;

        if (attr_key(z, raw_key, &key) < 0)
                return -ENOMEM;
        kv = attrs_find(a, key.ptr, key.size);
        if (!kv && max_attrs && a->n >= max_attrs) {
                (*dropped)++;
                return 0;
        }
        if (copy_value(z, &v, val, max_len, 1) < 0)
                return -ENOMEM;
        if (kv) {
                kv->val = v;
                return 0;
        }
        if (a->n == a->cap && attrs_grow(a) < 0)
                return -ENOMEM;
        kv = &a->kv[a->n];
        kv->key.type = MSGPACK_OBJECT_STR;
        if (key.ptr == raw_key->ptr && zone_str(z, key.ptr, key.size, 0, &key) < 0)
                return -ENOMEM;
        kv->key.via.str = key;
        kv->val = v;
        a->n++;
        return 0;
}

static int attrs_merge(msgpack_zone *z, ss_attrs *a, const msgpack_object_map *m,
                       const ss_limits *lim, uint32_t *dropped)
{
        for (uint32_t i = 0; m && i < m->size; i++) {
                const msgpack_object_kv *kv = &m->ptr[i];

                if (kv->key.type != MSGPACK_OBJECT_STR)
                        continue;
                if (attrs_set(z, a, &kv->key.via.str, &kv->val, lim_attrs(lim), lim_len(lim),
                              dropped) < 0)
                        return -ENOMEM;
        }
        return 0;
}

const msgpack_object *ss_attrs_get(const ss_attrs *a, const char *key)
{
        const msgpack_object_kv *kv = attrs_find(a, key, strlen(key));

        return kv ? &kv->val : NULL;
}

/* ---- spans ---------------------------------------------------------------------------- */

static void span_free(ss_span *s)
{
        for (uint32_t i = 0; i < s->n_events; i++)
                free(s->events[i].attrs.kv);
        free(s->events);
        free(s->attrs.kv);
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
        return attrs_merge(s->zone, &s->attrs, m, lim, &s->dropped_attrs);
}

static int span_set(ss_span *s, const char *key, const msgpack_object *val)
{
        msgpack_object_str k = {.size = (uint32_t)strlen(key), .ptr = key};
        uint32_t unused = 0;

        /* Daemon-derived attributes (sidespan.orphaned, roll-ups) matter more
         * than the client's: they are not subject to max_attrs. */
        return attrs_set(s->zone, &s->attrs, &k, val, 0, 0, &unused);
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
        uint32_t max = lim_events(lim);
        ss_event e = {.time_ns = time_ns};

        if (max && s->n_events >= max) {
                s->dropped_events++;
                return 0;
        }
        if (s->n_events == s->cap_events && events_grow(s) < 0)
                return -ENOMEM;
        if (zone_str(s->zone, name, name_len, 0, &e.name) < 0 ||
            attrs_merge(s->zone, &e.attrs, attrs, lim, &e.dropped_attrs) < 0) {
                free(e.attrs.kv);
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
        if (msg && msg_len && zone_str(s->zone, msg, msg_len, 0, &m) < 0)
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
                return zone_str(s->zone, ts->via.str.ptr, ts->via.str.size, 0, &s->trace_state);
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
        if (zone_str(s->zone, m->name.ptr, m->name.len, 0, &s->name) < 0 ||
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

/* ---- resources ------------------------------------------------------------------------- */

static bool protocol_option(const msgpack_object_str *k)
{
        bool protocol;

        return ss_hello_key(k->ptr, k->size, &protocol) && protocol;
}

static int resource_scope(ss_resource *r, const msgpack_object_map *opts)
{
        const msgpack_object *n = ss_wire_map_get(opts, SS_HELLO_SDK_NAME);
        const msgpack_object *v = ss_wire_map_get(opts, SS_HELLO_SDK_VERSION);

        r->scope_name = (msgpack_object_str){.size = 11, .ptr = "libsidespan"};
        r->scope_version = (msgpack_object_str){.size = 0, .ptr = ""};
        if (n && n->type == MSGPACK_OBJECT_STR && n->via.str.size &&
            zone_str(r->zone, n->via.str.ptr, n->via.str.size, 0, &r->scope_name) < 0)
                return -ENOMEM;
        if (v && v->type == MSGPACK_OBJECT_STR &&
            zone_str(r->zone, v->via.str.ptr, v->via.str.size, 0, &r->scope_version) < 0)
                return -ENOMEM;
        return 0;
}

static int resource_fill(ss_resource *r, const msgpack_object_map *opts)
{
        static const msgpack_object_str service_key = {.size = 12, .ptr = "service.name"};
        msgpack_object dflt = {.type = MSGPACK_OBJECT_STR};
        uint32_t unused = 0;

        /* The default goes first, where the client's own would usually be. */
        if (!ss_wire_map_get(opts, SS_HELLO_SERVICE_NAME)) {
                dflt.via.str = (msgpack_object_str){.size = 7, .ptr = "upsonic"};
                if (attrs_set(r->zone, &r->attrs, &service_key, &dflt, 0, 0, &unused) < 0)
                        return -ENOMEM;
        }
        for (uint32_t i = 0; opts && i < opts->size; i++) {
                const msgpack_object_kv *kv = &opts->ptr[i];

                if (kv->key.type != MSGPACK_OBJECT_STR || protocol_option(&kv->key.via.str))
                        continue;
                if (attrs_set(r->zone, &r->attrs, &kv->key.via.str, &kv->val, 0, 0, &unused) < 0)
                        return -ENOMEM;
        }
        return resource_scope(r, opts);
}

static void resource_free(ss_resource *r)
{
        free(r->attrs.kv);
        if (r->zone)
                msgpack_zone_free(r->zone);
        free(r);
}

ss_resource *ss_resource_new(const msgpack_object_map *hello_options)
{
        static uint64_t next_id; /* loop thread only */
        ss_resource *r = calloc(1, sizeof(*r));

        if (!r)
                return NULL;
        r->refs = 1;
        r->id = ++next_id;
        r->zone = msgpack_zone_new(ZONE_CHUNK);
        if (!r->zone || resource_fill(r, hello_options) < 0) {
                resource_free(r);
                return NULL;
        }
        return r;
}

ss_resource *ss_resource_ref(ss_resource *r)
{
        r->refs++;
        return r;
}

void ss_resource_unref(ss_resource *r)
{
        if (!r || --r->refs > 0)
                return;
        resource_free(r);
}
