/* SPDX-License-Identifier: MIT */
#include "model/genai.h"

#include <math.h>
#include <string.h>

static bool str_is(const msgpack_object_str *s, const char *want)
{
        return s->size == strlen(want) && memcmp(s->ptr, want, s->size) == 0;
}

static bool str_starts(const msgpack_object_str *s, const char *prefix)
{
        size_t n = strlen(prefix);

        return s->size >= n && memcmp(s->ptr, prefix, n) == 0;
}

/* The NUL-terminated string value (the store terminates its strings), or NULL. */
const char *ss_attr_value_str(const msgpack_object *o)
{
        return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size ? o->via.str.ptr : NULL;
}

/* A token count: true with *ret when o is a non-negative integral number. */
bool ss_attr_value_count(const msgpack_object *o, uint64_t *ret)
{
        if (!o)
                return false;
        switch (o->type) {
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
                *ret = o->via.u64;
                return true;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                if (o->via.i64 < 0)
                        return false;
                *ret = (uint64_t)o->via.i64;
                return true;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                /* 2^63: beyond it no token count is real, and the cast would be undefined. */
                if (!isfinite(o->via.f64) || o->via.f64 < 0 ||
                    o->via.f64 >= 9223372036854775808.0 || floor(o->via.f64) != o->via.f64)
                        return false;
                *ret = (uint64_t)o->via.f64;
                return true;
        default:
                return false;
        }
}

/* A cost or time the client set: a finite number >= 0. */
bool ss_attr_value_amount(const msgpack_object *o, double *ret)
{
        uint64_t n;

        if (o && (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)) {
                if (!isfinite(o->via.f64) || o->via.f64 < 0)
                        return false;
                *ret = o->via.f64;
                return true;
        }
        if (!ss_attr_value_count(o, &n))
                return false;
        *ret = (double)n;
        return true;
}

uint64_t ss_span_duration_ns(const ss_span *s)
{
        return s->ended && s->end_ns > s->start_ns ? s->end_ns - s->start_ns : 0;
}

bool ss_span_is_chat(const ss_span *s)
{
        const msgpack_object *op = ss_attrs_get(&s->attrs, "gen_ai.operation.name");

        if (op && op->type == MSGPACK_OBJECT_STR && str_is(&op->via.str, "chat"))
                return true;
        return str_is(&s->name, "chat") || str_starts(&s->name, "chat ");
}

/* The first token's delay in chat span s, from its earliest first-token event. */
bool ss_span_first_token(const ss_span *s, uint64_t *ret)
{
        bool found = false;

        for (uint32_t i = 0; i < s->n_events; i++) {
                const ss_event *e = &s->events[i];

                if (!str_is(&e->name, "gen_ai.first_token") &&
                    !str_is(&e->name, "gen_ai.content.first_token"))
                        continue;
                if (e->time_ns < s->start_ns || (found && e->time_ns - s->start_ns >= *ret))
                        continue;
                *ret = e->time_ns - s->start_ns;
                found = true;
        }
        return found;
}
