/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the daemon's suites share: msgpack objects built with a packer and
 * unpacked again, so suites hold real object trees, or put together in place
 * from fx_str() and friends; resources made from HELLO-like option maps;
 * spans built from one fx_span_spec; and a recording sink standing for the
 * stages after the one under test. Header-only: each suite compiles what it
 * uses.
 */

#include <check.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/counters.h"
#include "fx-rnd.h"
#include "model/sink.h"
#include "model/span.h"
#include "ss-wire.h"

typedef struct mp {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked up;
} mp;

static inline msgpack_packer *mp_begin(mp *m)
{
        msgpack_sbuffer_init(&m->sb);
        msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
        msgpack_unpacked_init(&m->up);
        return &m->pk;
}

/* The object packed since mp_begin(); valid until mp_done(). */
static inline const msgpack_object *mp_end(mp *m)
{
        size_t off = 0;

        ck_assert_int_eq(msgpack_unpack_next(&m->up, m->sb.data, m->sb.size, &off),
                         MSGPACK_UNPACK_SUCCESS);
        return &m->up.data;
}

static inline const msgpack_object_map *mp_map(mp *m)
{
        const msgpack_object *o = mp_end(m);

        ck_assert_int_eq(o->type, MSGPACK_OBJECT_MAP);
        return &o->via.map;
}

static inline void mp_done(mp *m)
{
        msgpack_unpacked_destroy(&m->up);
        msgpack_sbuffer_destroy(&m->sb);
}

static inline void pk_str(msgpack_packer *pk, const char *s)
{
        msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* A resource as a HELLO with service.name and, when not NULL, sdk.name and sdk.version makes. */
static inline ss_resource *mp_resource(const char *service, const char *sdk, const char *version)
{
        mp o;
        msgpack_packer *pk = mp_begin(&o);
        ss_resource *r;

        msgpack_pack_map(pk, 1 + (sdk != NULL) + (version != NULL));
        pk_str(pk, "service.name");
        pk_str(pk, service);
        if (sdk) {
                pk_str(pk, "sdk.name");
                pk_str(pk, sdk);
        }
        if (version) {
                pk_str(pk, "sdk.version");
                pk_str(pk, version);
        }
        r = ss_resource_new(mp_map(&o));
        mp_done(&o);
        ck_assert_ptr_nonnull(r);
        return r;
}

/* ---- msgpack objects in place: they point at their arguments, which must outlive them ---- */

static inline msgpack_object fx_str(const char *s)
{
        return (msgpack_object){.type = MSGPACK_OBJECT_STR,
                                .via.str = {.size = (uint32_t)strlen(s), .ptr = s}};
}

static inline msgpack_object fx_uint(uint64_t v)
{
        return (msgpack_object){.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = v};
}

static inline msgpack_object fx_f64(double v)
{
        return (msgpack_object){.type = MSGPACK_OBJECT_FLOAT64, .via.f64 = v};
}

static inline msgpack_object fx_neg(int64_t v)
{
        return (msgpack_object){.type = MSGPACK_OBJECT_NEGATIVE_INTEGER, .via.i64 = v};
}

static inline msgpack_object fx_bool(bool b)
{
        return (msgpack_object){.type = MSGPACK_OBJECT_BOOLEAN, .via.boolean = b};
}

static inline msgpack_object fx_array(msgpack_object *items, uint32_t n)
{
        return (msgpack_object){.type = MSGPACK_OBJECT_ARRAY,
                                .via.array = {.size = n, .ptr = items}};
}

static inline msgpack_object fx_map(msgpack_object_kv *kv, uint32_t n)
{
        return (msgpack_object){.type = MSGPACK_OBJECT_MAP, .via.map = {.size = n, .ptr = kv}};
}

static inline msgpack_object_kv fx_kv(const char *key, msgpack_object val)
{
        return (msgpack_object_kv){.key = fx_str(key), .val = val};
}

/* ---- spans -------------------------------------------------------------------------------- */

/*
 * One span as a test wants it. Ids are given as arrays or derived from seeds:
 * the trace id is 0xA0 bytes ending in trace_seed, a span id is its seed in
 * every byte; a span with neither parent_id nor parent_seed is a root.
 * whole: a SPAN message (end, status and events from the spec); else a
 * SPAN_START, ended with ss_span_end() when end_ns is set and left open when
 * it is 0. resource and name are required; maps and limits may be NULL.
 */
typedef struct fx_span_spec {
        ss_resource *resource;
        const char *name;
        const uint8_t *trace_id;  /* SS_TRACE_ID_LEN bytes, or NULL: from trace_seed */
        const uint8_t *span_id;   /* SS_SPAN_ID_LEN bytes, or NULL: from seed */
        const uint8_t *parent_id; /* SS_SPAN_ID_LEN bytes, or NULL: from parent_seed */
        uint8_t trace_seed;
        uint8_t seed;
        uint8_t parent_seed; /* 0: no parent */
        int32_t kind;
        uint64_t start_ns;
        uint64_t end_ns;
        int32_t status_code;
        const char *status_msg; /* NULL: none */
        const msgpack_object_map *attrs;
        const msgpack_object_map *options;
        const msgpack_object_array *events; /* of [name, time_ns, attrs]; whole spans only */
        const ss_limits *limits;
        bool whole;
} fx_span_spec;

/* Where fx_span_msg() keeps the ids it derives. */
typedef struct fx_span_ids {
        uint8_t trace[SS_TRACE_ID_LEN];
        uint8_t span[SS_SPAN_ID_LEN];
        uint8_t parent[SS_SPAN_ID_LEN];
} fx_span_ids;

/* The message ss_wire_decode() would make of the spec: every field set, whole or not.
 * It points into sp's arrays and maps and into ids. */
static inline ss_msg_span fx_span_msg(const fx_span_spec *sp, fx_span_ids *ids)
{
        const char *msg = sp->status_msg;
        ss_msg_span m;

        memset(ids->trace, 0xA0, sizeof(ids->trace));
        ids->trace[SS_TRACE_ID_LEN - 1] = sp->trace_seed;
        memset(ids->span, sp->seed, sizeof(ids->span));
        memset(ids->parent, sp->parent_seed, sizeof(ids->parent));
        m = (ss_msg_span){
            .trace_id = sp->trace_id ? sp->trace_id : ids->trace,
            .span_id = sp->span_id ? sp->span_id : ids->span,
            .parent_id = sp->parent_id     ? sp->parent_id
                         : sp->parent_seed ? ids->parent
                                           : NULL,
            .name = {.ptr = sp->name, .len = (uint32_t)strlen(sp->name)},
            .kind = sp->kind,
            .start_ns = sp->start_ns,
            .attrs = sp->attrs,
            .options = sp->options,
            .end_ns = sp->end_ns,
            .status_code = sp->status_code,
            .status_msg = {.ptr = msg, .len = msg ? (uint32_t)strlen(msg) : 0},
            .events = sp->events,
        };
        ss_wire_span_options(&m);
        return m;
}

/* The span of the spec, with one reference; it holds a reference to sp->resource. */
static inline ss_span *fx_span(const fx_span_spec *sp)
{
        fx_span_ids ids;
        ss_msg_span m = fx_span_msg(sp, &ids);
        ss_span *s = ss_span_new(&m, sp->whole, sp->resource, sp->limits);

        ck_assert_ptr_nonnull(s);
        if (!sp->whole && sp->end_ns)
                ss_span_end(s, sp->end_ns, sp->status_code, m.status_msg.ptr, m.status_msg.len);
        return s;
}

/* A sink that keeps a reference to every span handed to it; puts counts put() calls. */
typedef struct fx_sink {
        ss_sink base;
        ss_span *spans[256];
        size_t n;
        size_t puts;
        size_t flushes;
} fx_sink;

static inline void fx_sink_put(ss_sink *s, ss_span *const *spans, size_t n)
{
        fx_sink *r = (fx_sink *)s;

        r->puts++;
        for (size_t i = 0; i < n && r->n < 256; i++)
                r->spans[r->n++] = ss_span_ref(spans[i]);
}

static inline void fx_sink_flush(ss_sink *s)
{
        ((fx_sink *)s)->flushes++;
}

static inline void fx_sink_init(fx_sink *r)
{
        static const ss_sink_ops ops = {.put = fx_sink_put, .flush = fx_sink_flush};

        memset(r, 0, sizeof(*r));
        r->base.ops = &ops;
}

/* Drop the references the sink holds. */
static inline void fx_sink_clear(fx_sink *r)
{
        for (size_t i = 0; i < r->n; i++)
                ss_span_unref(r->spans[i]);
        r->n = 0;
}

/* Whether s holds exactly want. */
static inline bool fx_str_is(const msgpack_object_str *s, const char *want)
{
        return s->size == strlen(want) && memcmp(s->ptr, want, s->size) == 0;
}

/* o is the string want, NUL-terminated as the model promises its copies are. */
static inline void fx_assert_str(const msgpack_object *o, const char *want)
{
        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(o->type, MSGPACK_OBJECT_STR);
        ck_assert_msg(fx_str_is(&o->via.str, want), "got '%.*s', want '%s'", (int)o->via.str.size,
                      o->via.str.ptr, want);
        ck_assert_int_eq(o->via.str.ptr[o->via.str.size], '\0');
}

/* The span the sink got with this name, or NULL. */
static inline ss_span *fx_sink_find(const fx_sink *r, const char *name)
{
        for (size_t i = 0; i < r->n; i++)
                if (r->spans[i]->name.size == strlen(name) &&
                    memcmp(r->spans[i]->name.ptr, name, strlen(name)) == 0)
                        return r->spans[i];
        return NULL;
}

/* ---- loops, temporary directories and finished spans (ingest and export suites) ---- */

#include <dirent.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* How long a test may wait for something to happen: a bound against hanging, not a timing
 * assertion. */
#define FX_WAIT_MS 5000

static inline uint64_t fx_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Turn loop (UV_RUN_NOWAIT, then a 1 ms nap) until pred(ctx) holds; false after FX_WAIT_MS. */
static inline bool fx_run_until(uv_loop_t *loop, bool (*pred)(void *ctx), void *ctx)
{
        uint64_t deadline = fx_now_ms() + FX_WAIT_MS;

        while (!pred(ctx)) {
                if (fx_now_ms() > deadline)
                        return false;
                uv_run(loop, UV_RUN_NOWAIT);
                poll(NULL, 0, 1);
        }
        return true;
}

/* The value of counter name among those fn(ctx) appends, as STATS would report it now;
 * absent is a failure. */
static inline uint64_t fx_counter(ss_counters_fn fn, const void *ctx, const char *name)
{
        ss_counters all;
        uint64_t v = UINT64_MAX;

        ss_counters_init(&all);
        fn(ctx, &all);
        for (size_t i = 0; i < all.n; i++)
                if (strcmp(all.v[i].name, name) == 0)
                        v = all.v[i].value;
        ss_counters_free(&all);
        ck_assert_msg(v != UINT64_MAX, "no counter %s", name);
        return v;
}

typedef struct fx_counter_want {
        ss_counters_fn fn;
        const void *ctx;
        const char *name;
        uint64_t value;
} fx_counter_want;

static inline bool fx_counter_reached(void *ctx)
{
        const fx_counter_want *w = ctx;

        return fx_counter(w->fn, w->ctx, w->name) == w->value;
}

/* Turn loop until counter name of fn(ctx) has value. */
static inline void fx_wait_counter(uv_loop_t *loop, ss_counters_fn fn, const void *ctx,
                                   const char *name, uint64_t value)
{
        fx_counter_want w = {fn, ctx, name, value};

        ck_assert_msg(fx_run_until(loop, fx_counter_reached, &w), "%s stayed at %llu, not %llu",
                      name, (unsigned long long)fx_counter(fn, ctx, name),
                      (unsigned long long)value);
}

/* A fresh directory "/tmp/ss-test-<tag>-XXXXXX" written to dir. */
static inline void fx_tmpdir(char *dir, size_t size, const char *tag)
{
        ck_assert_int_lt(snprintf(dir, size, "/tmp/ss-test-%s-XXXXXX", tag), (int)size);
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Remove the files in dir (one level: the suites make no subdirectories). */
static inline void fx_tmpdir_clear(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        char path[512];

        if (!d)
                return;
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                        unlink(path);
                }
        closedir(d);
}

/* Remove dir and its files. Without assertions: an unchecked teardown calls it in Check's
 * parent process, so the directory goes even when a test failed half-way. */
static inline void fx_tmpdir_remove(const char *dir)
{
        fx_tmpdir_clear(dir);
        (void)rmdir(dir);
}

/* The ids fx_span() gives: byte i of a trace id is seed + i, of a span id seed * 16 + i. */
static inline void fx_trace_id(uint8_t seed, uint8_t *out)
{
        for (unsigned i = 0; i < SS_TRACE_ID_LEN; i++)
                out[i] = (uint8_t)(seed + i);
}

static inline void fx_span_id(uint8_t seed, uint8_t *out)
{
        for (unsigned i = 0; i < SS_SPAN_ID_LEN; i++)
                out[i] = (uint8_t)(seed * 16 + i);
}

/* A finished span of r in trace trace_seed: a root when parent_seed < 0, else the child of
 * span parent_seed; it starts span_seed microseconds after its trace and lasts 1 ms. Ids as
 * fx_trace_id() and fx_span_id() make them. */
static inline ss_span *fx_finished_span(ss_resource *r, const char *name, uint8_t trace_seed,
                                        uint8_t span_seed, int parent_seed)
{
        static const ss_limits lim = {.max_attrs = 16, .max_events = 16, .max_value_len = 1024};
        uint8_t tid[SS_TRACE_ID_LEN], sid[SS_SPAN_ID_LEN], pid[SS_SPAN_ID_LEN];
        uint64_t start = 1700000000000000000ull + span_seed * 1000ull;

        fx_trace_id(trace_seed, tid);
        fx_span_id(span_seed, sid);
        fx_span_id((uint8_t)parent_seed, pid);
        return fx_span(&(fx_span_spec){.resource = r,
                                       .name = name,
                                       .trace_id = tid,
                                       .span_id = sid,
                                       .parent_id = parent_seed >= 0 ? pid : NULL,
                                       .kind = SS_KIND_INTERNAL,
                                       .start_ns = start,
                                       .end_ns = start + 1000000u,
                                       .status_code = SS_STATUS_OK,
                                       .limits = &lim,
                                       .whole = true});
}

static inline void fx_on_tick(uv_timer_t *t)
{
        (*(unsigned *)t->data)++;
}

static inline bool fx_ticked_thrice(void *ctx)
{
        return *(unsigned *)ctx >= 3;
}

/* True when a repeating timer of loop fires three times: nothing blocks the loop. */
static inline bool fx_loop_turns(uv_loop_t *loop)
{
        unsigned ticks = 0;
        uv_timer_t t;
        bool ok;

        ck_assert_int_eq(uv_timer_init(loop, &t), 0);
        t.data = &ticks;
        ck_assert_int_eq(uv_timer_start(&t, fx_on_tick, 1, 1), 0);
        ok = fx_run_until(loop, fx_ticked_thrice, &ticks);
        uv_close((uv_handle_t *)&t, NULL);
        uv_run(loop, UV_RUN_NOWAIT); /* t lives on this stack: its close must be done */
        return ok;
}

static inline void fx_assert_has(const char *hay, const char *needle)
{
        ck_assert_msg(strstr(hay, needle), "missing \"%s\" in:\n%s", needle, hay);
}

/* A file dir/name shaped as PEM (the daemon checks its TLS files are readable PEM when it
 * loads its configuration; only a handshake would find this is no certificate). */
static inline void fx_write_pem(const char *dir, const char *name)
{
        char path[512];
        FILE *f;

        ck_assert_int_lt(snprintf(path, sizeof(path), "%s/%s", dir, name), (int)sizeof(path));
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", f);
        ck_assert_int_eq(fclose(f), 0);
}

/* The first size - 1 bytes of the file at path, NUL-terminated in buf; how many. */
static inline size_t fx_read_file(const char *path, char *buf, size_t size)
{
        FILE *f = fopen(path, "re");
        size_t n;

        ck_assert_msg(f != NULL, "cannot open %s", path);
        n = fread(buf, 1, size - 1, f);
        buf[n] = '\0';
        fclose(f);
        return n;
}
