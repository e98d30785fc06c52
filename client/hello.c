/* SPDX-License-Identifier: MIT */
/*
 * The HELLO frame. The daemon turns every option but the protocol ones into
 * resource attributes of the session (see ss_hello_key()).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "hello.h"
#include "ss-wire.h"

/* msgpack calls return 0 or our callback's -errno: keep the first failure. */
static void keep(int *err, int r)
{
        if (!*err && r)
                *err = r < 0 ? r : -ENOBUFS;
}

static void pack_key(msgpack_packer *pk, int *err, const char *k)
{
        keep(err, msgpack_pack_str_with_body(pk, k, strlen(k)));
}

static void pack_str_option(msgpack_packer *pk, int *err, const char *k, const char *v)
{
        pack_key(pk, err, k);
        keep(err, msgpack_pack_str_with_body(pk, v, strlen(v)));
}

static void pack_options(const ssc_config *cfg, uint64_t instance, msgpack_packer *pk, int *err)
{
        pack_str_option(pk, err, SS_HELLO_SERVICE_NAME, cfg->service_name);
        pack_key(pk, err, SS_HELLO_PROCESS_PID);
        keep(err, msgpack_pack_int64(pk, getpid()));
        pack_str_option(pk, err, SS_HELLO_SDK_NAME, "libsidespan");
        pack_str_option(pk, err, SS_HELLO_SDK_VERSION, SIDESPAN_VERSION_STRING);
        pack_key(pk, err, SS_HELLO_INSTANCE);
        keep(err, msgpack_pack_uint64(pk, instance));
        pack_key(pk, err, SS_HELLO_SAMPLE_RATE);
        keep(err, msgpack_pack_double(pk, cfg->sample_rate));
        pack_key(pk, err, SS_HELLO_INCLUDE_CONTENT);
        keep(err, cfg->include_content ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
        keep(err, ss_buf_append(pk->data, cfg->resource.data, cfg->resource.len));
}

int ssc_hello_build(ss_buf *frame, ss_buf *scratch, const ssc_config *cfg, uint64_t instance)
{
        ss_rawmap map = {.count = SS_HELLO_N_KEYS + cfg->n_resource};
        msgpack_packer pk;
        int err = 0;

        ss_buf_reset(scratch);
        ss_buf_reset(frame);
        msgpack_packer_init(&pk, scratch, ss_buf_msgpack_write);
        pack_options(cfg, instance, &pk, &err);
        if (err)
                return err;
        map.data = scratch->data;
        map.len = scratch->len;
        return ss_wire_put_hello(frame, cfg->max_frame, &map);
}
