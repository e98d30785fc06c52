/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The resource of a client session (OTLP Resource plus its one
 * InstrumentationScope), built from HELLO options and shared by reference
 * count between the session and every span it made. Loop thread only.
 */

#include <msgpack.h>
#include <stdint.h>

#include "model/attrs.h"

typedef struct ss_resource {
        unsigned refs;
        uint64_t id; /* unique per resource, for grouping */
        msgpack_zone *zone;
        ss_attrs attrs;                   /* service.name, process.pid, ... */
        msgpack_object_str scope_name;    /* InstrumentationScope: sdk.name */
        msgpack_object_str scope_version; /* sdk.version */
} ss_resource;

/* A resource from HELLO options: every option except the protocol ones
 * (ss_hello_key()) becomes a resource attribute; service.name defaults to
 * "upsonic". One reference; NULL on out-of-memory. */
ss_resource *ss_resource_new(const msgpack_object_map *hello_options);
ss_resource *ss_resource_ref(ss_resource *r);
void ss_resource_unref(ss_resource *r); /* accepts NULL */
