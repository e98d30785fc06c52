/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * libcurl's multi interface driven by a libuv loop: one uv_poll_t per socket
 * curl opens (CURLMOPT_SOCKETFUNCTION) and one uv_timer_t for its timeouts
 * (CURLMOPT_TIMERFUNCTION). Each finished transfer is reported to done(),
 * which owns the easy handle from then on (it is already removed from the
 * multi handle); after() runs once curl has made progress and every finished
 * transfer was reported, so the owner may start more. Embedded in its owner
 * (STYLE.md rule 6). Loop thread only; nothing blocks. The first
 * ss_curl_uv_global_init() or ss_curl_uv_init() does libcurl's global set-up;
 * ss_curl_uv_global_cleanup() undoes it. Part of the sidespan-http module
 * (export/exporter-http.h).
 */

#include <curl/curl.h>
#include <stdbool.h>
#include <uv.h>

typedef struct ss_curl_sock ss_curl_sock;

typedef struct ss_curl_uv {
        uv_loop_t *loop;
        CURLM *multi;
        uv_timer_t timer; /* curl's deadline */
        ss_curl_sock *socks;
        void (*done)(void *ctx, CURL *easy, CURLcode result);
        void (*after)(void *ctx);
        void *ctx;
} ss_curl_uv;

/* libcurl's global set-up, once: tls false when nothing of the process will ever use TLS
 * (OpenSSL is then set up without its configuration file and error strings, unless a proxy
 * of the environment is https://). Later calls do nothing. 0 or -ENOMEM. */
int ss_curl_uv_global_init(bool tls);

/* Undo the libcurl global set-up the first ss_curl_uv_init() did, if any: at exit. */
void ss_curl_uv_global_cleanup(void);

/* 0, -ENOMEM, or a libuv error. On failure nothing needs closing. */
int ss_curl_uv_init(ss_curl_uv *cu, uv_loop_t *loop,
                    void (*done)(void *ctx, CURL *easy, CURLcode result), void (*after)(void *ctx),
                    void *ctx);

/* Start a transfer. 0 or -ENOMEM (the easy handle stays the caller's). */
int ss_curl_uv_add(ss_curl_uv *cu, CURL *easy);

/* Abandon a transfer before done() (shutdown); the easy handle stays the caller's. */
void ss_curl_uv_remove(ss_curl_uv *cu, CURL *easy);

/* Free the multi handle (every transfer removed first) and close the sockets' polls and
 * the timer; closed(timer) runs from the loop once the timer is closed. */
void ss_curl_uv_close(ss_curl_uv *cu, uv_close_cb closed);
