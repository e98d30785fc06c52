/* SPDX-License-Identifier: MIT */
#include "cli.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The daemon's default socket (daemon/conf/config.c), $SIDESPAN_SOCKET first. */
int cli_default_socket(cli *c)
{
        const char *v = getenv("SIDESPAN_SOCKET");
        int r;

        if (v && *v) {
                c->socket_path = v;
                return 0;
        }
        if ((v = getenv("RUNTIME_DIRECTORY")) && *v)
                r = asprintf(&c->socket_alloc, "%.*s/sidespan.sock", (int)strcspn(v, ":"), v);
        else if (geteuid() == 0)
                r = asprintf(&c->socket_alloc, "/run/sidespan/sidespan.sock");
        else if ((v = getenv("XDG_RUNTIME_DIR")) && *v)
                r = asprintf(&c->socket_alloc, "%s/sidespan.sock", v);
        else {
                fprintf(stderr, "sidespan: no socket path: pass --socket or set SIDESPAN_SOCKET "
                                "(XDG_RUNTIME_DIR is not set)\n");
                return -EINVAL;
        }
        if (r < 0)
                return -ENOMEM;
        c->socket_path = c->socket_alloc;
        return 0;
}

int cli_connect(cli *c)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        if (strlen(c->socket_path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "sidespan: socket path too long: %s\n", c->socket_path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, c->socket_path);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -errno;
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;

                fprintf(stderr,
                        "sidespan: no daemon at %s (%s): start it with systemctl start sidespand "
                        "or sidespand --socket %s\n",
                        c->socket_path, strerror(e), c->socket_path);
                return -e;
        }
        return 0;
}

int cli_send(cli *c, const ss_buf *b)
{
        size_t off = 0;

        while (off < b->len) {
                ssize_t n = send(c->fd, b->data + off, b->len - off, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                off += (size_t)n;
        }
        return 0;
}

int64_t cli_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read until one whole frame is buffered at the front of c->in; returns its size. */
static int fill_frame(cli *c, int64_t deadline, const uint8_t **ret_p, size_t *ret_len)
{
        for (;;) {
                int r = ss_frame_parse(c->in, c->in_len, SS_MAX_FRAME_DEFAULT, ret_p, ret_len);
                struct pollfd p = {.fd = c->fd, .events = POLLIN};
                int64_t left = deadline - cli_now_ms();
                ssize_t n;

                if (r != 0)
                        return r;
                if (left <= 0)
                        return -ETIMEDOUT;
                r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
                if (n < 0 && errno != EINTR)
                        return -errno;
                if (n == 0)
                        return -ECONNRESET;
                if (n > 0)
                        c->in_len += (size_t)n;
        }
}

/* Receive frames until one decodes to a message of type want (others are skipped). The
 * message points into *ret_copy, which the caller frees. */
int cli_recv(cli *c, uint32_t want, int64_t deadline, msgpack_unpacked *u, uint8_t **ret_copy,
             ss_msg *ret)
{

        for (;;) {
                const uint8_t *p;
                size_t len;
                uint8_t *copy;
                int r = fill_frame(c, deadline, &p, &len);

                if (r < 0)
                        return r;
                copy = malloc(len);
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, p, len);
                c->in_len -= (size_t)r;
                memmove(c->in, c->in + r, c->in_len);
                if (ss_msgpack_check(copy, len) < 0 || ss_wire_decode(copy, len, u, ret) < 0 ||
                    ret->type != want) {
                        free(copy);
                        continue;
                }
                *ret_copy = copy;
                return 0;
        }
}

int cli_send_hello(cli *c)
{
        msgpack_sbuffer sb;
        msgpack_packer pk;
        ss_buf b;
        int r;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_str_with_body(&pk, SS_HELLO_SERVICE_NAME, strlen(SS_HELLO_SERVICE_NAME));
        msgpack_pack_str_with_body(&pk, "sidespan-cli", 12);
        msgpack_pack_str_with_body(&pk, SS_HELLO_PROCESS_PID, strlen(SS_HELLO_PROCESS_PID));
        msgpack_pack_int64(&pk, getpid());
        ss_rawmap opts = {.count = 2, .data = (const uint8_t *)sb.data, .len = sb.size};
        ss_buf_init(&b, SS_MAX_FRAME_DEFAULT + SS_FRAME_HEADER);
        r = ss_wire_put_hello(&b, SS_MAX_FRAME_DEFAULT, &opts);
        if (r >= 0)
                r = cli_send(c, &b);
        ss_buf_free(&b);
        msgpack_sbuffer_destroy(&sb);
        return r;
}

int cli_send_seq(cli *c, uint32_t type, uint64_t seq)
{
        ss_buf b;
        int r;

        ss_buf_init(&b, 64);
        r = ss_wire_put_seq(&b, 64, type, seq);
        if (r >= 0)
                r = cli_send(c, &b);
        ss_buf_free(&b);
        return r;
}

void cli_json_str(const char *p, size_t n)
{
        putchar('"');
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)p[i];

                if (ch == '"' || ch == '\\')
                        printf("\\%c", ch);
                else if (ch < 0x20)
                        printf("\\u%04x", ch);
                else
                        putchar(ch);
        }
        putchar('"');
}
