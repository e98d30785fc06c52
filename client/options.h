/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Options and environment: the size-versioned public structs, the checks on
 * sidespan_options, the variables sidespan_client_open_env() reads, and the
 * resolution of options into the read-only settings a client runs with.
 * Nothing here locks or keeps state: any thread; only getenv() and malloc().
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sidespan.h"
#include "ss-buf.h"

/* The settings of one client, resolved at open and read-only afterwards: any thread reads
 * them without a lock. Owned by the client; ssc_options_config_free() releases them. */
typedef struct ssc_config {
        bool include_content;
        bool flush_on_exit;
        int exit_timeout_ms;
        double sample_rate;
        size_t buffer_size;
        size_t max_frame;
        char *socket_path; /* explicit path or $SIDESPAN_SOCKET; NULL: resolve per attempt */
        char *xdg_socket;  /* $XDG_RUNTIME_DIR/sidespan.sock, the fallback, or NULL */
        char *service_name;
        ss_buf resource; /* packed map body of the extra resource attributes */
        uint32_t n_resource;
        char trace_state[32]; /* "ot=th:<hex>" for traces rooted here, "" at rate 1 */
} ssc_config;

/* What the environment lent a sidespan_options (the strings of OTEL_RESOURCE_ATTRIBUTES and
 * the merged attribute list): the caller keeps it until the options are used, then frees it
 * with ssc_options_env_free(). */
typedef struct ssc_options_env {
        char *buf;
        sidespan_attr *attrs;
        size_t n;
        sidespan_attr *merged;
} ssc_options_env;

/* Size-versioned public structs (their first field is the caller's sizeof). Fill dst, the
 * caller's struct of size bytes, from defaults of ours bytes: an older caller's struct is a
 * prefix of ours, a newer caller's extra fields are zeroed. Any thread. */
void ssc_options_init_sized(void *dst, size_t size, const void *defaults, size_t ours);

/* Overlay what a caller's struct in (NULL allowed) holds onto dst, our full-size struct of
 * ours bytes already filled with defaults, and mark dst full-size. Any thread. */
void ssc_options_copy_sized(void *dst, size_t ours, const void *in);

/* Copy src, our full-size struct of ours bytes, into the caller's dst as far as dst's size
 * reaches; dst keeps its size. Any thread. */
void ssc_options_put_sized(void *dst, const void *src, size_t ours);

/* Our full-size copy of the caller's options in (NULL: the defaults) in *ret. -EINVAL for a
 * struct older than the first published layout. Any thread. */
int ssc_options_get(const sidespan_options *in, sidespan_options *ret);

/* 0 when every option of o (full-size) is in range; -EINVAL, or -ENAMETOOLONG for a socket
 * path. Any thread. */
int ssc_options_check(const sidespan_options *o);

/* 0 when st is a caller's stats struct we can fill (at least the first layout), else
 * -EINVAL. Any thread. */
int ssc_options_stats_check(const sidespan_stats *st);

/* Whether sidespan_client_open_env() opens an enabled client: OTEL_SDK_DISABLED=true says
 * no, UPSONIC_OTEL_ENABLED or force_enable yes. -EINVAL for a malformed OTEL_SDK_DISABLED.
 * Reads the environment: not concurrently with setenv(). */
int ssc_options_env_enabled(bool force_enable, bool *ret_enabled);

/* Overlay the environment's settings on o (UPSONIC_OTEL_*, OTEL_*, SIDESPAN_SOCKET). o may
 * then point into env, which the caller frees after o's last use, also on failure. -EINVAL
 * for a malformed value, -ENOMEM. Reads the environment: not concurrently with setenv(). */
int ssc_options_apply_env(sidespan_options *o, ssc_options_env *env);

/* Release what ssc_options_apply_env() allocated. Accepts a zeroed env. Any thread. */
void ssc_options_env_free(ssc_options_env *env);

/* Resolve checked options o into cfg (zeroed by the caller): copies of the strings, the
 * socket paths ($SIDESPAN_SOCKET, $XDG_RUNTIME_DIR), the packed resource attributes.
 * -ENOMEM, -ENAMETOOLONG, -EINVAL for a malformed resource attribute; on failure cfg is
 * half-built and still freed with ssc_options_config_free(). Reads the environment, at open:
 * not concurrently with setenv(). */
int ssc_options_resolve(const sidespan_options *o, ssc_config *cfg);

/* Release what cfg holds, once no thread reads it. Accepts a zeroed or half-built cfg. */
void ssc_options_config_free(ssc_config *cfg);
