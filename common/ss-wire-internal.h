/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the general decoder (ss-wire.c) and the span frames' reader (ss-wire-span.c) share;
 * not for the users of ss-wire.h.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ss-wire.h"

/* Whether the id's len bytes are all zero, which the protocol refuses for an id. */
static inline bool ss_wire_id_is_zero(const uint8_t *id, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if (id[i])
                        return false;
        return true;
}

/* One pair of a SPAN_START's options map into s->flags or s->trace_state: the first of each
 * key counts (*seen: what the pairs before named, 0 before the first). */
void ss_wire_span_option(ss_msg_span *s, const msgpack_object *k, const msgpack_object *v,
                         unsigned *seen);

/* A SPAN_START or SPAN_END read field by field into ret (zone: for nested values): true, or
 * false for anything not as the general decoder would take it, or not in the usual
 * encoding; the general decoder's answer then stands. */
bool ss_wire_decode_span_frame(const uint8_t *payload, size_t len, msgpack_zone *zone, ss_msg *ret);
