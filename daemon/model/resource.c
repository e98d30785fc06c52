/* SPDX-License-Identifier: MIT */
#include "model/resource.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/value.h"
#include "ss-wire.h"

#define ZONE_CHUNK 2048u

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
            ss_zone_str(r->zone, n->via.str.ptr, n->via.str.size, 0, &r->scope_name) < 0)
                return -ENOMEM;
        if (v && v->type == MSGPACK_OBJECT_STR &&
            ss_zone_str(r->zone, v->via.str.ptr, v->via.str.size, 0, &r->scope_version) < 0)
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
                if (ss_attrs_set(r->zone, &r->attrs, &service_key, &dflt, 0, 0, &unused) < 0)
                        return -ENOMEM;
        }
        for (uint32_t i = 0; opts && i < opts->size; i++) {
                const msgpack_object_kv *kv = &opts->ptr[i];

                if (kv->key.type != MSGPACK_OBJECT_STR || protocol_option(&kv->key.via.str))
                        continue;
                if (ss_attrs_set(r->zone, &r->attrs, &kv->key.via.str, &kv->val, 0, 0, &unused) < 0)
                        return -ENOMEM;
        }
        return resource_scope(r, opts);
}

static void resource_free(ss_resource *r)
{
        ss_attrs_free(&r->attrs);
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
