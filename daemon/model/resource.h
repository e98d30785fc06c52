/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The resource of a client session (OTLP Resource plus its one
 * InstrumentationScope), built from HELLO options and what the kernel says
 * of the peer, shared by reference count between the session and every span
 * it made. Loop thread only.
 */

#include <msgpack.h>
#include <stdint.h>
#include <sys/types.h>

#include "model/attrs.h"

typedef struct ss_resource {
        unsigned refs;
        uint64_t id; /* unique per resource, for grouping */
        uid_t uid;   /* the peer's (SO_PEERCRED); (uid_t)-1 when unknown */
        ss_store store;
        ss_attrs attrs;                   /* service.name, process.pid, ... */
        msgpack_object_str scope_name;    /* InstrumentationScope: sdk.name */
        msgpack_object_str scope_version; /* sdk.version */
        uint32_t dropped_attrs;           /* past the limits */
} ss_resource;

/* The peer process as the kernel reports it (SO_PEERCRED). */
typedef struct ss_peer {
        pid_t pid; /* 0: unknown */
        uid_t uid;
        const char *owner; /* the uid's user name, or NULL */
} ss_peer;

/*
 * A resource from HELLO options: every option except the protocol ones
 * (ss_hello_key()) becomes a resource attribute, under lim (max_attrs,
 * max_key_len, max_value_len; NULL: none); service.name defaults to
 * "upsonic". With a peer, process.pid is the peer's real pid and
 * process.owner its user, whatever HELLO claims; a claimed pid that differs
 * is kept as sidespan.claimed_pid. These come on top of the limit: they are
 * the daemon's, not the client's. One reference; NULL on out-of-memory.
 */
ss_resource *ss_resource_new_for(const msgpack_object_map *hello_options, const ss_peer *peer,
                                 const ss_limits *lim);

/* ss_resource_new_for() without a peer or limits. */
ss_resource *ss_resource_new(const msgpack_object_map *hello_options);

ss_resource *ss_resource_ref(ss_resource *r);
void ss_resource_unref(ss_resource *r); /* accepts NULL */
