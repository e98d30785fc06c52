/* SPDX-License-Identifier: MIT */
#include "model/resource.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/value.h"
#include "ss-wire.h"

/* The InstrumentationScope name and version: longer ones are cut. */
#define SCOPE_MAX 256u

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
            ss_store_str(&r->store, n->via.str.ptr, n->via.str.size, SCOPE_MAX, &r->scope_name) < 0)
                return -ENOMEM;
        if (v && v->type == MSGPACK_OBJECT_STR &&
            ss_store_str(&r->store, v->via.str.ptr, v->via.str.size, SCOPE_MAX, &r->scope_version) <
                0)
                return -ENOMEM;
        return 0;
}

static int set(ss_resource *r, const char *key, const msgpack_object *v)
{
        msgpack_object_str k = {.size = (uint32_t)strlen(key), .ptr = key};

        return ss_attrs_set(&r->store, &r->attrs, &k, v, NULL, NULL);
}

/* Keys the kernel answers for when the peer is known: a client's value is not taken. */
static bool identity_key(const msgpack_object_str *k)
{
        static const char *const keys[] = {SS_HELLO_PROCESS_PID, "process.owner",
                                           "sidespan.claimed_pid"};

        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                if (k->size == strlen(keys[i]) && memcmp(k->ptr, keys[i], k->size) == 0)
                        return true;
        return false;
}

/* The peer's real identity, after the client's attributes and outside their limit (the
 * client's own keys for it were skipped); a different pid claimed is kept as
 * sidespan.claimed_pid. */
static int resource_peer(ss_resource *r, const msgpack_object_map *opts, const ss_peer *peer)
{
        const msgpack_object *claimed = ss_wire_map_get(opts, SS_HELLO_PROCESS_PID);
        msgpack_object v = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};

        v.via.u64 = (uint64_t)peer->pid;
        if (set(r, SS_HELLO_PROCESS_PID, &v) < 0)
                return -ENOMEM;
        if (claimed &&
            !(claimed->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
              claimed->via.u64 == (uint64_t)peer->pid) &&
            set(r, "sidespan.claimed_pid", claimed) < 0)
                return -ENOMEM;
        if (!peer->owner)
                return 0;
        v.type = MSGPACK_OBJECT_STR;
        v.via.str = (msgpack_object_str){.size = (uint32_t)strlen(peer->owner), .ptr = peer->owner};
        return set(r, "process.owner", &v);
}

static int resource_fill(ss_resource *r, const msgpack_object_map *opts, const ss_peer *peer,
                         const ss_limits *lim)
{
        static const msgpack_object_str service_key = {.size = 12, .ptr = "service.name"};
        msgpack_object dflt = {.type = MSGPACK_OBJECT_STR};
        bool known = peer && peer->pid > 0;

        const msgpack_object *svc = ss_wire_map_get(opts, SS_HELLO_SERVICE_NAME);
        ss_limits svc_lim = {.max_value_len = lim ? lim->max_value_len : 0};

        /* service.name first and outside the limit: an OTLP resource must have one, however
         * many attributes come before it in the map. A missing or empty one is "upsonic". */
        if (!svc || svc->type != MSGPACK_OBJECT_STR || svc->via.str.size == 0) {
                dflt.via.str = (msgpack_object_str){.size = 7, .ptr = "upsonic"};
                svc = &dflt;
        }
        if (ss_attrs_set(&r->store, &r->attrs, &service_key, svc, &svc_lim, NULL) < 0)
                return -ENOMEM;
        for (uint32_t i = 0; opts && i < opts->size; i++) {
                const msgpack_object_kv *kv = &opts->ptr[i];

                /* As ss_attrs_merge() does: a map far past the limit is not read to its end
                 * (the protocol keys and the identity the kernel gives come on top). */
                if (lim && lim->max_attrs &&
                    i >= ss_attrs_merge_max(lim->max_attrs) + SS_HELLO_N_KEYS + 3) {
                        r->dropped_attrs += opts->size - i;
                        break;
                }
                if (kv->key.type != MSGPACK_OBJECT_STR || protocol_option(&kv->key.via.str) ||
                    (known && identity_key(&kv->key.via.str)) ||
                    (kv->key.via.str.size == service_key.size &&
                     memcmp(kv->key.via.str.ptr, service_key.ptr, service_key.size) == 0))
                        continue;
                if (ss_attrs_set(&r->store, &r->attrs, &kv->key.via.str, &kv->val, lim,
                                 &r->dropped_attrs) < 0)
                        return -ENOMEM;
        }
        if (known && resource_peer(r, opts, peer) < 0)
                return -ENOMEM;
        return resource_scope(r, opts);
}

static void resource_free(ss_resource *r)
{
        ss_attrs_free(&r->attrs);
        ss_store_free(&r->store);
        free(r);
}

ss_resource *ss_resource_new_for(const msgpack_object_map *hello_options, const ss_peer *peer,
                                 const ss_limits *lim)
{
        static uint64_t next_id; /* loop thread only */
        ss_resource *r = calloc(1, sizeof(*r));

        if (!r)
                return NULL;
        r->refs = 1;
        r->id = ++next_id;
        r->uid = peer ? peer->uid : (uid_t)-1;
        ss_store_init(&r->store);
        if (resource_fill(r, hello_options, peer, lim) < 0) {
                resource_free(r);
                return NULL;
        }
        return r;
}

ss_resource *ss_resource_new(const msgpack_object_map *hello_options)
{
        return ss_resource_new_for(hello_options, NULL, NULL);
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
