/* SPDX-License-Identifier: MIT */
#include "base/curl-uv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef SS_HAVE_OPENSSL
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#endif

#include "base/list.h"
#include "base/log.h"

/* One curl socket watched by the loop; freed in its close callback. */
struct ss_curl_sock {
        uv_poll_t poll;
        curl_socket_t fd;
        ss_curl_uv *owner;
        ss_curl_sock *prev, *next;
};

/* Report finished transfers after curl_multi_socket_action(), then let the owner refill. */
static void check_done(ss_curl_uv *cu)
{
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(cu->multi, &left))) {
                CURLcode rc = m->data.result;
                CURL *easy = m->easy_handle;

                if (m->msg != CURLMSG_DONE)
                        continue;
                /* m is invalid once its handle is removed: read it all first. */
                curl_multi_remove_handle(cu->multi, easy);
                cu->done(cu->ctx, easy, rc);
        }
        cu->after(cu->ctx);
}

static void socket_action(ss_curl_uv *cu, curl_socket_t fd, int flags)
{
        int running;

        curl_multi_socket_action(cu->multi, fd, flags, &running);
        check_done(cu);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
        ss_curl_sock *s = p->data;
        int flags = 0;

        if (status < 0)
                flags = CURL_CSELECT_ERR;
        if (events & UV_READABLE)
                flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
                flags |= CURL_CSELECT_OUT;
        socket_action(s->owner, s->fd, flags);
}

static void on_timeout(uv_timer_t *t)
{
        socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
        ss_curl_uv *cu = userp;

        if (timeout_ms < 0)
                return uv_timer_stop(&cu->timer) < 0 ? -1 : 0;
        return uv_timer_start(&cu->timer, on_timeout, (uint64_t)timeout_ms, 0) < 0 ? -1 : 0;
}

static void on_sock_closed(uv_handle_t *h)
{
        free(h->data);
}

static void sock_close(ss_curl_uv *cu, ss_curl_sock *s)
{
        SS_LIST_REMOVE(cu->socks, s);
        uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static ss_curl_sock *sock_new(ss_curl_uv *cu, curl_socket_t fd)
{
        ss_curl_sock *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return NULL;
        r = uv_poll_init_socket(cu->loop, &s->poll, fd);
        if (r < 0) {
                ss_log_ratelimited(SS_LOG_ERR,
                                   "cannot watch an HTTP connection event=poll-failed "
                                   "error=\"%s\"",
                                   uv_strerror(r));
                free(s);
                return NULL;
        }
        s->poll.data = s;
        s->fd = fd;
        s->owner = cu;
        SS_LIST_PREPEND(cu->socks, s);
        curl_multi_assign(cu->multi, fd, s);
        return s;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
        ss_curl_uv *cu = userp;
        ss_curl_sock *s = socketp;
        int events = 0;

        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        curl_multi_assign(cu->multi, fd, NULL);
                        sock_close(cu, s);
                }
                return 0;
        }
        if (!s && !(s = sock_new(cu, fd)))
                return -1;
        if (what & CURL_POLL_IN)
                events |= UV_READABLE;
        if (what & CURL_POLL_OUT)
                events |= UV_WRITABLE;
        if (events)
                return uv_poll_start(&s->poll, events, on_poll) < 0 ? -1 : 0;
        return uv_poll_stop(&s->poll) < 0 ? -1 : 0;
}

/* libcurl's global state (TLS included) is set up by its first user, not at start: a daemon
 * that sends nothing over HTTP never maps the pages it takes, about 2 MB. */
static bool global_ready;

/* A proxy of the environment that libcurl would reach over TLS for an http:// URL. */
static bool env_proxy_tls(void)
{
        static const char *const names[] = {"http_proxy", "all_proxy", "ALL_PROXY"};

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                const char *v = getenv(names[i]);

                if (v && strncasecmp(v, "https://", 8) == 0)
                        return true;
        }
        return false;
}

/*
 * libcurl sets OpenSSL up with the system's configuration file and every error string, about
 * 0.9 MB of resident pages, whatever its URLs' scheme. When nothing of the process will use
 * TLS, OpenSSL is set up first, without either: OpenSSL takes the first set-up, and libcurl's
 * asks for nothing more. With TLS anywhere (an https:// URL, an https:// proxy, or another
 * user of OpenSSL, see ss_curl_uv_global_init()), libcurl's own set-up is left to do it all.
 */
static void tls_lean_init(void)
{
#ifdef SS_HAVE_OPENSSL
        const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

        if (env_proxy_tls() || !v->ssl_version || strncmp(v->ssl_version, "OpenSSL/", 8) != 0)
                return;
        OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS,
                            NULL);
        OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_SSL_STRINGS, NULL);
        ss_log(SS_LOG_DEBUG, "no TLS in this process: OpenSSL set up without its configuration "
                             "file and error strings event=tls-lean");
#endif
}

int ss_curl_uv_global_init(bool tls)
{
        if (global_ready)
                return 0;
        if (!tls)
                tls_lean_init();
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -ENOMEM;
        global_ready = true;
        return 0;
}

void ss_curl_uv_global_cleanup(void)
{
        if (global_ready)
                curl_global_cleanup();
        global_ready = false;
}

int ss_curl_uv_init(ss_curl_uv *cu, uv_loop_t *loop,
                    void (*done)(void *ctx, CURL *easy, CURLcode result), void (*after)(void *ctx),
                    void *ctx)
{
        int r;

        *cu = (ss_curl_uv){.loop = loop, .done = done, .after = after, .ctx = ctx};
        r = ss_curl_uv_global_init(true);
        if (r < 0)
                return r;
        cu->multi = curl_multi_init();
        if (!cu->multi)
                return -ENOMEM;
        if (curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu) != CURLM_OK ||
            curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu) != CURLM_OK) {
                r = -ENOMEM;
                goto fail;
        }
        r = uv_timer_init(loop, &cu->timer);
        if (r < 0)
                goto fail;
        cu->timer.data = cu;
        return 0;
fail:
        curl_multi_cleanup(cu->multi);
        cu->multi = NULL;
        return r;
}

int ss_curl_uv_add(ss_curl_uv *cu, CURL *easy)
{
        return curl_multi_add_handle(cu->multi, easy) == CURLM_OK ? 0 : -ENOMEM;
}

void ss_curl_uv_remove(ss_curl_uv *cu, CURL *easy)
{
        curl_multi_remove_handle(cu->multi, easy);
}

void ss_curl_uv_close(ss_curl_uv *cu, uv_close_cb closed)
{
        /* Cleanup may still call the socket and timer functions for cached connections. */
        curl_multi_cleanup(cu->multi);
        cu->multi = NULL;
        while (cu->socks)
                sock_close(cu, cu->socks);
        uv_close((uv_handle_t *)&cu->timer, closed);
}
