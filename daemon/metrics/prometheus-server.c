/* SPDX-License-Identifier: MIT */
/* The scrape endpoint: libmicrohttpd on its own thread serving the text the loop published.
 * The published text is immutable and reference-counted, so a scrape holds the lock only to
 * take a reference and the loop only to swap the pointer. */
#include "metrics/prometheus.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct prom_text {
        atomic_uint refs;
        size_t len;
        char data[];
} prom_text;

struct ss_prom_server {
        struct MHD_Daemon *mhd;
        pthread_mutex_t lock; /* guards text */
        prom_text *text;
        uint16_t port;
};

static void text_unref(prom_text *t)
{
        if (t && atomic_fetch_sub(&t->refs, 1) == 1)
                free(t);
}

static void text_unref_cb(void *t)
{
        text_unref(t);
}

/* A reference to the published text, or NULL before the first publish. MHD thread. */
static prom_text *text_get(ss_prom_server *p)
{
        prom_text *t;

        pthread_mutex_lock(&p->lock);
        t = p->text;
        if (t)
                atomic_fetch_add(&t->refs, 1);
        pthread_mutex_unlock(&p->lock);
        return t;
}

static enum MHD_Result reply_static(struct MHD_Connection *c, unsigned status, const char *body)
{
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result r;

        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
}

static enum MHD_Result reply_metrics(ss_prom_server *p, struct MHD_Connection *c)
{
        prom_text *t = text_get(p);
        struct MHD_Response *resp;
        enum MHD_Result r;

        if (t)
                resp = MHD_create_response_from_buffer_with_free_callback_cls(t->len, t->data,
                                                                              text_unref_cb, t);
        else
                resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!resp) {
                text_unref(t);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
        r = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return r;
}

/* GET (and HEAD) /metrics; 404 for other paths, 405 for other methods. A request body is
 * never read: the reply is queued at the first call. MHD thread. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
        (void)version;
        (void)upload;
        (void)upload_size;
        (void)req_cls;
        if (strcmp(url, "/metrics") != 0)
                return reply_static(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return reply_static(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
        return reply_metrics(cls, c);
}

static int parse_port(const char *s, uint16_t *ret)
{
        unsigned long v = 0;

        if (!*s || strlen(s) > 5)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned long)(*s - '0');
        }
        if (v > 65535)
                return -EINVAL;
        *ret = (uint16_t)v;
        return 0;
}

/* "a.b.c.d:port" or "[v6]:port", numeric only: no name lookup that could block. */
static int parse_listen(const char *listen, struct sockaddr_storage *ret)
{
        char host[INET6_ADDRSTRLEN + 1];
        const char *colon = listen[0] == '[' ? strstr(listen, "]:") : strrchr(listen, ':');
        bool v6 = listen[0] == '[';
        const char *h = listen + v6;
        size_t n = colon ? (size_t)(colon - h) : 0;
        uint16_t port;

        memset(ret, 0, sizeof(*ret));
        if (!colon || n == 0 || n >= sizeof(host) || parse_port(colon + 1 + v6, &port) < 0)
                return -EINVAL;
        memcpy(host, h, n);
        host[n] = '\0';
        if (v6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)ret;

                a->sin6_family = AF_INET6;
                a->sin6_port = htons(port);
                return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? 0 : -EINVAL;
        }
        struct sockaddr_in *a = (struct sockaddr_in *)ret;

        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

static struct MHD_Daemon *mhd_start(ss_prom_server *p, const struct sockaddr_storage *sa)
{
        unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD;

        if (sa->ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        return MHD_start_daemon(flags, 0, NULL, NULL, on_request, p, MHD_OPTION_SOCK_ADDR, sa,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)SS_PROM_CONNECTIONS,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SS_PROM_TIMEOUT_S,
                                MHD_OPTION_END);
}

static uint16_t mhd_port(struct MHD_Daemon *mhd)
{
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);

        return info ? info->port : 0;
}

int ss_prom_server_start(const char *listen, ss_prom_server **ret)
{
        struct sockaddr_storage sa;
        ss_prom_server *p;

        if (!listen || parse_listen(listen, &sa) < 0) {
                char shown[128];

                ss_log_text(shown, sizeof(shown), listen ? listen : "",
                            listen ? strlen(listen) : 0);
                ss_log(SS_LOG_ERR,
                       "prometheus: bad listen address \"%s\", want a.b.c.d:port or [v6]:port "
                       "event=prometheus-bad-address addr=\"%s\"",
                       shown, shown);
                return -EINVAL;
        }
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        pthread_mutex_init(&p->lock, NULL);
        errno = 0;
        p->mhd = mhd_start(p, &sa);
        if (!p->mhd) {
                int r = errno == EADDRINUSE || errno == EACCES || errno == EADDRNOTAVAIL ? -errno
                                                                                         : -EIO;

                ss_log(SS_LOG_ERR,
                       "prometheus: cannot listen on %s: %s event=prometheus-failed addr=%s "
                       "error=\"%s\"",
                       listen, strerror(-r), listen, strerror(-r));
                ss_prom_server_stop(p);
                return r;
        }
        p->port = mhd_port(p->mhd);
        ss_log(SS_LOG_INFO,
               "prometheus: serving /metrics on %s event=prometheus-listening addr=%s port=%u",
               listen, listen, (unsigned)p->port);
        *ret = p;
        return 0;
}

uint16_t ss_prom_server_port(const ss_prom_server *p)
{
        return p->port;
}

void ss_prom_server_publish(ss_prom_server *p, const ss_buf *text)
{
        prom_text *t = malloc(sizeof(*t) + text->len), *old;

        if (!t) {
                ss_log_ratelimited(SS_LOG_WARNING,
                                   "prometheus: out of memory, serving the previous metrics "
                                   "event=prometheus-publish-failed bytes=%zu",
                                   text->len);
                return;
        }
        atomic_init(&t->refs, 1);
        t->len = text->len;
        if (text->len)
                memcpy(t->data, text->data, text->len);
        pthread_mutex_lock(&p->lock);
        old = p->text;
        p->text = t;
        pthread_mutex_unlock(&p->lock);
        text_unref(old);
}

void ss_prom_server_stop(ss_prom_server *p)
{
        if (!p)
                return;
        if (p->mhd)
                MHD_stop_daemon(p->mhd);
        text_unref(p->text);
        pthread_mutex_destroy(&p->lock);
        free(p);
}

const ss_prom_server_api *ss_prom_server_api_get(void)
{
        static const ss_prom_server_api api = {
            .start = ss_prom_server_start,
            .publish = ss_prom_server_publish,
            .stop = ss_prom_server_stop,
        };

        return &api;
}
