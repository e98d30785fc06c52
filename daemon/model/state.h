/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The persistent form of the model's objects, for the daemon's state file
 * (trace/state.h): a resource and an open span as msgpack arrays, written
 * with msgpack-c's packer and read back from an unpacked object. What comes
 * back is what went: attributes, events, ids, times, flags, the head
 * decision and the counts of what the limits dropped. The reader checks
 * every type and size, since the file may be damaged; values are copied
 * again through model/value.h, so strings stay well-formed UTF-8. Loop
 * thread; pure functions of their arguments.
 */

#include <msgpack.h>

#include "model/resource.h"
#include "model/span.h"

/* Append r as one msgpack array to pk. 0, or msgpack's error (-ENOMEM). */
int ss_resource_pack(const ss_resource *r, msgpack_packer *pk);

/* A resource (one reference) from what ss_resource_pack() wrote. -EBADMSG when o is not
 * one, -ENOMEM. */
int ss_resource_unpack(const msgpack_object *o, ss_resource **ret);

/* Append an open span s (not ended) as one msgpack array to pk. 0 or -ENOMEM. */
int ss_span_pack(const ss_span *s, msgpack_packer *pk);

/* A span (one reference, holding a reference to r) from what ss_span_pack() wrote.
 * -EBADMSG when o is not one, -ENOMEM. */
int ss_span_unpack(const msgpack_object *o, ss_resource *r, ss_span **ret);
