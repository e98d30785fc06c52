/* SPDX-License-Identifier: MIT */
/*
 * fuzz-message: one frame payload through ss_wire_decode() and, when it is a
 * HELLO or a span message, through the daemon's span model as the assembler
 * applies it (trace/assembler.c, trace/session.c): HELLO options and a peer
 * make the resource (ss_resource_new_for()), SPAN_START and SPAN make a span
 * (ss_span_new()), SPAN_ATTRS, SPAN_EVENT and SPAN_END change an open span of
 * that resource. The result goes through both OTLP encoders
 * (fz_check_encoders()). Each message is applied twice: under the daemon's
 * default limits and under tiny ones that drop and cut everything; and each
 * twice more as the daemon decodes it (a span frame's attributes left as
 * bytes, ss_attrs_merge_bytes()).
 *
 * Input: the payload of one frame (no length header).
 */
#include <errno.h>
#include <stdlib.h>

#include "fuzz-util.h"

static const uint8_t open_trace[SS_TRACE_ID_LEN] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                                    0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t open_id[SS_SPAN_ID_LEN] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};

/* The span a SPAN_ATTRS, SPAN_EVENT or SPAN_END names, as SPAN_START left it. */
static ss_span *open_span(ss_resource *r, const ss_limits *lim)
{
        static const char name[] = "open";
        ss_msg_span m = {.trace_id = open_trace,
                         .span_id = open_id,
                         .name = {.ptr = name, .len = sizeof(name) - 1},
                         .kind = SS_KIND_INTERNAL,
                         .start_ns = 1000};
        ss_span *s = ss_span_new(&m, false, r, lim);

        FZ_ASSERT(s != NULL);
        return s;
}

/* A stored string of at most max bytes (0: any); "none" is all zero. */
static void check_str(msgpack_object_str str, uint32_t max)
{
        msgpack_object o = {.type = MSGPACK_OBJECT_STR, .via.str = str};

        if (str.ptr || str.size)
                fz_check_value(&o, max, 1);
}

/* The model's promises about a span it built: sanitised strings, limits kept. */
static void check_span(const ss_span *s, const ss_limits *lim)
{
        check_str(s->name, lim->max_name_len);
        check_str(s->status_msg, lim->max_name_len);
        check_str(s->trace_state, 3 * SS_TRACE_STATE_MAX); /* repaired: 3 bytes a byte */
        FZ_ASSERT(s->kind <= SS_KIND_CONSUMER && s->status_code <= SS_STATUS_ERROR);
        FZ_ASSERT(!s->ended || s->end_ns >= s->start_ns);
        FZ_ASSERT(!lim->max_attrs || s->attrs.n <= lim->max_attrs);
        FZ_ASSERT(!lim->max_events || s->n_events <= lim->max_events);
        for (uint32_t i = 0; i < s->attrs.n; i++)
                fz_check_value(&s->attrs.kv[i].val, lim->max_value_len, 1);
        for (uint32_t i = 0; i < s->n_events; i++) {
                check_str(s->events[i].name, lim->max_name_len);
                FZ_ASSERT(!lim->max_attrs || s->events[i].attrs.n <= lim->max_attrs);
                for (uint32_t j = 0; j < s->events[i].attrs.n; j++)
                        fz_check_value(&s->events[i].attrs.kv[j].val, lim->max_value_len, 1);
        }
}

/* The resource's promises: no protocol option among its attributes, the peer's pid. */
static void check_resource(const ss_resource *r)
{
        const msgpack_object *pid = ss_attrs_get(&r->attrs, SS_HELLO_PROCESS_PID);

        FZ_ASSERT(ss_attrs_get(&r->attrs, SS_HELLO_SERVICE_NAME) != NULL);
        FZ_ASSERT(pid && pid->type == MSGPACK_OBJECT_POSITIVE_INTEGER && pid->via.u64 == 4242);
        for (uint32_t i = 0; i < r->attrs.n; i++) {
                const msgpack_object_str *k = &r->attrs.kv[i].key.via.str;
                bool protocol = false;

                FZ_ASSERT(!ss_hello_key(k->ptr, k->size, &protocol) || !protocol);
                fz_check_value(&r->attrs.kv[i].val, 0, 1); /* the daemon's own are not cut */
        }
}

/* Apply m as the assembler does; spans[0] is the open span, a new one goes to spans[1]. */
static size_t apply(const ss_msg *m, ss_span **spans, ss_resource *r, const ss_limits *lim)
{
        ss_span *s = spans[0];

        switch (m->type) {
        case SS_MSG_SPAN_START:
        case SS_MSG_SPAN:
                spans[1] = ss_span_new(&m->span, m->type == SS_MSG_SPAN, r, lim);
                FZ_ASSERT(spans[1] != NULL);
                return 2;
        case SS_MSG_SPAN_ATTRS:
                FZ_ASSERT(ss_span_set_attrs(s, m->attrs.attrs, lim) == 0);
                break;
        case SS_MSG_SPAN_EVENT:
                FZ_ASSERT(ss_span_add_event(s, m->event.name.ptr, m->event.name.len,
                                            m->event.time_ns, m->event.attrs, lim) == 0);
                break;
        case SS_MSG_SPAN_END:
                FZ_ASSERT(ss_span_set_msg_attrs(s, m->end.attrs, &m->end.attrs_bytes, lim) == 0);
                ss_span_end_limited(s, m->end.end_ns, m->end.status_code, m->end.status_msg.ptr,
                                    m->end.status_msg.len, lim);
                break;
        default:
                break;
        }
        return 1;
}

/* lim for spans; the resource's as trace/assembler.c derives them (its max_attrs is
 * max_resource_attrs, 128 by default like max_attrs). */
static void model(const ss_msg *m, const ss_limits *lim)
{
        const ss_peer peer = {.pid = 4242, .uid = 1000, .owner = "fuzz"};
        const ss_limits rlim = {.max_attrs = lim->max_attrs,
                                .max_value_len = lim->max_value_len,
                                .max_key_len = lim->max_key_len};
        ss_resource *r =
            ss_resource_new_for(m->type == SS_MSG_HELLO ? m->hello.options : NULL, &peer, &rlim);
        ss_span *spans[2] = {NULL, NULL};
        size_t n;

        FZ_ASSERT(r != NULL);
        check_resource(r);
        spans[0] = open_span(r, lim);
        n = apply(m, spans, r, lim);
        for (size_t i = 0; i < n; i++)
                check_span(spans[i], lim);
        fz_check_encoders(spans, n);
        for (size_t i = 0; i < n; i++)
                ss_span_unref(spans[i]);
        ss_resource_unref(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* The daemon's defaults (conf/config.c), then limits that cut almost everything. */
        static const ss_limits limits[] = {
            {.max_attrs = 128,
             .max_events = 128,
             .max_value_len = 256u * 1024u,
             .max_key_len = 256,
             .max_name_len = 1024,
             .max_bytes = 4u << 20},
            {.max_attrs = 2,
             .max_events = 1,
             .max_value_len = 3,
             .max_key_len = 12, /* "service.name" still fits */
             .max_name_len = 5,
             .max_bytes = 300},
        };
        msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
        msgpack_unpacked u;
        ss_msg m, daemons;

        FZ_ASSERT(zone != NULL);
        /* The general decode's message, then the daemon's (attributes left as bytes). */
        if (fz_decode(data, size, &u, &m) == 0 &&
            ss_wire_decode_zone(data, size, zone, &daemons, NULL) == 0)
                for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
                        model(&m, &limits[i]);
                        model(&daemons, &limits[i]);
                }
        msgpack_unpacked_destroy(&u);
        msgpack_zone_free(zone);
        return 0;
}
