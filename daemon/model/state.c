/* SPDX-License-Identifier: MIT */
#include "model/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RESOURCE_FIELDS 5u /* uid, attrs, scope name, scope version, dropped attrs */
#define SPAN_FIELDS     16u
#define EVENT_FIELDS    4u /* time, name, attrs, dropped attrs */

/* ---- writing ---------------------------------------------------------------------------- */

/* msgpack's packer calls return 0 or -1; every failure is its buffer's allocation. */
static int pk_ok(int r)
{
        return r == 0 ? 0 : -ENOMEM;
}

static int pack_str(msgpack_packer *pk, const msgpack_object_str *s)
{
        return pk_ok(msgpack_pack_str_with_body(pk, s->size ? s->ptr : "", s->size));
}

static int pack_bin(msgpack_packer *pk, const uint8_t *p, size_t n)
{
        return pk_ok(msgpack_pack_bin_with_body(pk, p, n));
}

static int pack_attrs(msgpack_packer *pk, const ss_attrs *a)
{
        int r = pk_ok(msgpack_pack_map(pk, a->n));

        for (uint32_t i = 0; r == 0 && i < a->n; i++)
                r = pk_ok(msgpack_pack_object(pk, a->kv[i].key) |
                          msgpack_pack_object(pk, a->kv[i].val));
        return r;
}

int ss_resource_pack(const ss_resource *r, msgpack_packer *pk)
{
        int e = pk_ok(msgpack_pack_array(pk, RESOURCE_FIELDS) |
                      msgpack_pack_uint64(pk, (uint64_t)r->uid));

        if (e == 0)
                e = pack_attrs(pk, &r->attrs);
        if (e == 0)
                e = pack_str(pk, &r->scope_name);
        if (e == 0)
                e = pack_str(pk, &r->scope_version);
        return e ? e : pk_ok(msgpack_pack_uint32(pk, r->dropped_attrs));
}

static int pack_event(msgpack_packer *pk, const ss_event *e)
{
        int r = pk_ok(msgpack_pack_array(pk, EVENT_FIELDS) | msgpack_pack_uint64(pk, e->time_ns));

        if (r == 0)
                r = pack_str(pk, &e->name);
        if (r == 0)
                r = pack_attrs(pk, &e->attrs);
        return r ? r : pk_ok(msgpack_pack_uint32(pk, e->dropped_attrs));
}

int ss_span_pack(const ss_span *s, msgpack_packer *pk)
{
        int r = pk_ok(msgpack_pack_array(pk, SPAN_FIELDS));

        if (r == 0)
                r = pack_bin(pk, s->trace_id, SS_TRACE_ID_LEN);
        if (r == 0)
                r = pack_bin(pk, s->span_id, SS_SPAN_ID_LEN);
        if (r == 0)
                r = s->has_parent ? pack_bin(pk, s->parent_id, SS_SPAN_ID_LEN)
                                  : pk_ok(msgpack_pack_nil(pk));
        if (r == 0)
                r = pack_str(pk, &s->name);
        if (r == 0)
                r = pk_ok(msgpack_pack_uint8(pk, s->kind) | msgpack_pack_uint32(pk, s->flags) |
                          msgpack_pack_uint64(pk, s->start_ns));
        if (r == 0)
                r = pack_str(pk, &s->trace_state);
        if (r == 0)
                r = pack_attrs(pk, &s->attrs);
        if (r == 0)
                r = pk_ok(msgpack_pack_array(pk, s->n_events));
        for (uint32_t i = 0; r == 0 && i < s->n_events; i++)
                r = pack_event(pk, &s->events[i]);
        if (r == 0)
                r = pk_ok(msgpack_pack_uint32(pk, s->dropped_attrs) |
                          msgpack_pack_uint32(pk, s->dropped_events) |
                          msgpack_pack_double(pk, s->head_rate));
        if (r == 0)
                r = pk_ok((s->head_drop ? msgpack_pack_true(pk) : msgpack_pack_false(pk)) |
                          (s->discard ? msgpack_pack_true(pk) : msgpack_pack_false(pk)) |
                          (s->no_content ? msgpack_pack_true(pk) : msgpack_pack_false(pk)));
        return r;
}

/* ---- reading ---------------------------------------------------------------------------- */

/* The fields of an array of exactly n, or NULL. */
static const msgpack_object *fields(const msgpack_object *o, uint32_t n)
{
        return o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == n ? o->via.array.ptr : NULL;
}

static bool is_uint(const msgpack_object *o)
{
        return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
}

static bool is_u32(const msgpack_object *o)
{
        return is_uint(o) && o->via.u64 <= UINT32_MAX;
}

static bool is_bin(const msgpack_object *o, uint32_t n)
{
        return o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == n;
}

static bool is_bool(const msgpack_object *o)
{
        return o->type == MSGPACK_OBJECT_BOOLEAN;
}

int ss_resource_unpack(const msgpack_object *o, ss_resource **ret)
{
        const msgpack_object *f = fields(o, RESOURCE_FIELDS);
        ss_resource *r;

        if (!f || !is_uint(&f[0]) || f[1].type != MSGPACK_OBJECT_MAP ||
            f[2].type != MSGPACK_OBJECT_STR || f[3].type != MSGPACK_OBJECT_STR || !is_u32(&f[4]))
                return -EBADMSG;
        /* A resource of no options, then the saved attributes and scope over its defaults. */
        r = ss_resource_new(NULL);
        if (!r)
                return -ENOMEM;
        r->uid = (uid_t)f[0].via.u64;
        r->dropped_attrs = (uint32_t)f[4].via.u64;
        if (ss_attrs_merge(&r->store, &r->attrs, &f[1].via.map, NULL, NULL) < 0 ||
            (f[2].via.str.size &&
             ss_store_str(&r->store, f[2].via.str.ptr, f[2].via.str.size, 0, &r->scope_name) < 0) ||
            ss_store_str(&r->store, f[3].via.str.ptr, f[3].via.str.size, 0, &r->scope_version) <
                0) {
                ss_resource_unref(r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

static bool event_ok(const msgpack_object *e)
{
        const msgpack_object *f = fields(e, EVENT_FIELDS);

        return f && is_uint(&f[0]) && f[1].type == MSGPACK_OBJECT_STR &&
               f[2].type == MSGPACK_OBJECT_MAP && is_u32(&f[3]);
}

static bool span_ok(const msgpack_object *f)
{
        if (!f || !is_bin(&f[0], SS_TRACE_ID_LEN) || !is_bin(&f[1], SS_SPAN_ID_LEN) ||
            !(f[2].type == MSGPACK_OBJECT_NIL || is_bin(&f[2], SS_SPAN_ID_LEN)) ||
            f[3].type != MSGPACK_OBJECT_STR || !is_uint(&f[4]) || f[4].via.u64 > SS_KIND_CONSUMER ||
            !is_u32(&f[5]) || !is_uint(&f[6]) || f[7].type != MSGPACK_OBJECT_STR ||
            f[8].type != MSGPACK_OBJECT_MAP || f[9].type != MSGPACK_OBJECT_ARRAY ||
            !is_u32(&f[10]) || !is_u32(&f[11]) || f[12].type != MSGPACK_OBJECT_FLOAT64 ||
            !is_bool(&f[13]) || !is_bool(&f[14]) || !is_bool(&f[15]))
                return false;
        for (uint32_t i = 0; i < f[9].via.array.size; i++)
                if (!event_ok(&f[9].via.array.ptr[i]))
                        return false;
        return true;
}

static int span_events(ss_span *s, const msgpack_object_array *events)
{
        for (uint32_t i = 0; i < events->size; i++) {
                const msgpack_object *e = events->ptr[i].via.array.ptr;

                if (ss_span_add_event(s, e[1].via.str.ptr, e[1].via.str.size, e[0].via.u64,
                                      &e[2].via.map, NULL) < 0)
                        return -ENOMEM;
                s->events[s->n_events - 1].dropped_attrs = (uint32_t)e[3].via.u64;
        }
        return 0;
}

int ss_span_unpack(const msgpack_object *o, ss_resource *r, ss_span **ret)
{
        const msgpack_object *f = fields(o, SPAN_FIELDS);
        ss_msg_span m;
        ss_span *s;

        if (!span_ok(f))
                return -EBADMSG;
        m = (ss_msg_span){
            .trace_id = (const uint8_t *)f[0].via.bin.ptr,
            .span_id = (const uint8_t *)f[1].via.bin.ptr,
            .parent_id = f[2].type == MSGPACK_OBJECT_BIN ? (const uint8_t *)f[2].via.bin.ptr : NULL,
            .name = {.ptr = f[3].via.str.ptr, .len = f[3].via.str.size},
            .kind = (int32_t)f[4].via.u64,
            .start_ns = f[6].via.u64,
            .attrs = &f[8].via.map};
        s = ss_span_new(&m, false, r, NULL);
        if (!s)
                return -ENOMEM;
        s->flags = (uint32_t)f[5].via.u64;
        if (ss_span_set_trace_state(s, f[7].via.str.ptr, f[7].via.str.size) == -ENOMEM ||
            span_events(s, &f[9].via.array) < 0) {
                ss_span_unref(s);
                return -ENOMEM;
        }
        s->dropped_attrs = (uint32_t)f[10].via.u64;
        s->dropped_events = (uint32_t)f[11].via.u64;
        s->head_rate = f[12].via.f64;
        s->head_drop = f[13].via.boolean;
        s->discard = f[14].via.boolean;
        s->no_content = f[15].via.boolean;
        *ret = s;
        return 0;
}
