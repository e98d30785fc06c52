/* SPDX-License-Identifier: MIT */
/*
 * sidespan: a command-line client of sidespand over its Unix socket, built on
 * common/'s wire encoders and decoder with plain blocking socket I/O.
 * Verbs: status [--json], flush [--timeout MS].
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ss-buf.h"
#include "ss-wire.h"

#define CLI_TIMEOUT_MS_DEFAULT 10000

typedef struct cli {
        const char *socket_path;
        char *socket_alloc;
        int fd;
        int timeout_ms;
        uint8_t in[SS_MAX_FRAME_DEFAULT + SS_FRAME_HEADER];
        size_t in_len;
} cli;

static const char usage_main[] =
    "Usage: sidespan [--socket PATH] VERB [OPTIONS]\n"
    "\n"
    "A client of the sidespand tracing daemon.\n"
    "\n"
    "Verbs:\n"
    "  status [--json]        the daemon's counters\n"
    "  flush [--timeout MS]   ask the daemon to hand on what it batches\n"
    "\n"
    "Options:\n"
    "  --socket PATH   the daemon's socket (default $SIDESPAN_SOCKET, else\n"
    "                  $RUNTIME_DIRECTORY/sidespan.sock, /run/sidespan/sidespan.sock\n"
    "                  as root, $XDG_RUNTIME_DIR/sidespan.sock)\n"
    "  -h, --help      this text; VERB --help for a verb's\n";

static const char usage_status[] =
    "Usage: sidespan status [--json]\n"
    "\n"
    "Prints the daemon's counters: clients, open spans and traces,\n"
    "per exporter in/exported/dropped/retries/failures, sampling and\n"
    "redaction. --json prints one JSON object. Exit 0 when the\n"
    "daemon answered.\n";

static const char usage_flush[] =
    "Usage: sidespan flush [--timeout MS]\n"
    "\n"
    "A FLUSH round trip: returns when the daemon has handed what it\n"
    "batches to its exporters. --timeout (default 10000) bounds the wait.\n";

/* The daemon's default socket (daemon/conf/config.c), $SIDESPAN_SOCKET first. */
static int default_socket(cli *c)
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

static int cli_connect(cli *c)
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

static int send_all(cli *c, const ss_buf *b)
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

static int64_t now_ms(void)
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
                int64_t left = deadline - now_ms();
                ssize_t n;

                if (r != 0)
                        return r;
                if (left <= 0)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int)left);
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
static int recv_msg(cli *c, uint32_t want, msgpack_unpacked *u, uint8_t **ret_copy, ss_msg *ret)
{
        int64_t deadline = now_ms() + c->timeout_ms;

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

static int send_hello(cli *c)
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
                r = send_all(c, &b);
        ss_buf_free(&b);
        msgpack_sbuffer_destroy(&sb);
        return r;
}

static int send_seq(cli *c, uint32_t type, uint64_t seq)
{
        ss_buf b;
        int r;

        ss_buf_init(&b, 64);
        r = ss_wire_put_seq(&b, 64, type, seq);
        if (r >= 0)
                r = send_all(c, &b);
        ss_buf_free(&b);
        return r;
}

static void print_json_str(const char *p, size_t n)
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

static int cmp_kv(const void *a, const void *b)
{
        const msgpack_object_kv *x = a, *y = b;
        uint32_t n =
            x->key.via.str.size < y->key.via.str.size ? x->key.via.str.size : y->key.via.str.size;
        int r = memcmp(x->key.via.str.ptr, y->key.via.str.ptr, n);

        return r ? r
                 : (x->key.via.str.size > y->key.via.str.size) -
                       (x->key.via.str.size < y->key.via.str.size);
}

/* Counters sorted by name: as one JSON object, or one "name value" line each. */
static void print_counters(const msgpack_object_map *m, bool json)
{
        msgpack_object_kv *kv = malloc(sizeof(*kv) * (m->size ? m->size : 1));

        if (!kv)
                return;
        memcpy(kv, m->ptr, sizeof(*kv) * m->size);
        qsort(kv, m->size, sizeof(*kv), cmp_kv);
        if (json)
                putchar('{');
        for (uint32_t i = 0; i < m->size; i++) {
                if (json) {
                        printf(i ? ", " : "");
                        print_json_str(kv[i].key.via.str.ptr, kv[i].key.via.str.size);
                        printf(": %llu", (unsigned long long)kv[i].val.via.u64);
                } else
                        printf("%-48.*s %llu\n", (int)kv[i].key.via.str.size, kv[i].key.via.str.ptr,
                               (unsigned long long)kv[i].val.via.u64);
        }
        if (json)
                printf("}\n");
        free(kv);
}

static int verb_status(cli *c, bool json)
{
        msgpack_unpacked u;
        uint8_t *copy = NULL;
        ss_msg m;
        int r;

        msgpack_unpacked_init(&u);
        r = send_hello(c);
        if (r >= 0)
                r = send_seq(c, SS_MSG_STATS, 1);
        if (r >= 0)
                r = recv_msg(c, SS_MSG_STATS_REPLY, &u, &copy, &m);
        if (r >= 0)
                print_counters(m.stats.counters, json);
        else
                fprintf(stderr, "sidespan: status: no answer from %s: %s\n", c->socket_path,
                        strerror(-r));
        msgpack_unpacked_destroy(&u);
        free(copy);
        return r;
}

static int verb_flush(cli *c)
{
        msgpack_unpacked u;
        uint8_t *copy = NULL;
        ss_msg m;
        int r;

        msgpack_unpacked_init(&u);
        r = send_hello(c);
        if (r >= 0)
                r = send_seq(c, SS_MSG_FLUSH, 1);
        if (r >= 0)
                r = recv_msg(c, SS_MSG_FLUSHED, &u, &copy, &m);
        if (r < 0)
                fprintf(stderr, "sidespan: flush: no answer from %s: %s\n", c->socket_path,
                        strerror(-r));
        msgpack_unpacked_destroy(&u);
        free(copy);
        return r;
}

static bool is_help(const char *a)
{
        return !strcmp(a, "-h") || !strcmp(a, "--help");
}

static int parse_ms(const char *opt, const char *v, int *ret)
{
        char *end;
        long n;

        errno = 0;
        n = v ? strtol(v, &end, 10) : 0;
        if (!v || errno || *end || end == v || n <= 0 || n > 86400000) {
                fprintf(stderr, "sidespan: %s: not a time in ms: '%s'\n", opt, v ? v : "");
                return -EINVAL;
        }
        *ret = (int)n;
        return 0;
}

/* Verb arguments: returns 2 for --help (printed), 0 to run, -EINVAL for a bad one. */
static int parse_verb(cli *c, const char *verb, int argc, char **argv, bool *json)
{
        const char *usage = !strcmp(verb, "status") ? usage_status : usage_flush;

        for (int i = 0; i < argc; i++) {
                if (is_help(argv[i])) {
                        fputs(usage, stdout);
                        return 2;
                } else if (!strcmp(verb, "status") && !strcmp(argv[i], "--json"))
                        *json = true;
                else if (!strcmp(verb, "flush") && !strcmp(argv[i], "--timeout")) {
                        if (parse_ms("--timeout", i + 1 < argc ? argv[++i] : NULL, &c->timeout_ms) <
                            0)
                                return -EINVAL;
                } else {
                        fprintf(stderr, "sidespan %s: unknown argument '%s'\n%s", verb, argv[i],
                                usage);
                        return -EINVAL;
                }
        }
        return 0;
}

int main(int argc, char **argv)
{
        static cli c = {.fd = -1, .timeout_ms = CLI_TIMEOUT_MS_DEFAULT};
        const char *verb;
        bool json = false;
        int i = 1, r;

        for (; i < argc && argv[i][0] == '-'; i++) {
                if (is_help(argv[i])) {
                        fputs(usage_main, stdout);
                        return 0;
                } else if (!strcmp(argv[i], "--socket") && i + 1 < argc)
                        c.socket_path = argv[++i];
                else {
                        fprintf(stderr, "sidespan: unknown option '%s'\n%s", argv[i], usage_main);
                        return 2;
                }
        }
        if (i == argc) {
                fputs(usage_main, stderr);
                return 2;
        }
        verb = argv[i++];
        if (strcmp(verb, "status") && strcmp(verb, "flush")) {
                fprintf(stderr, "sidespan: unknown verb '%s'\n%s", verb, usage_main);
                return 2;
        }
        r = parse_verb(&c, verb, argc - i, argv + i, &json);
        if (r != 0)
                return r == 2 ? 0 : 2;
        if (!c.socket_path && default_socket(&c) < 0)
                return 1;
        if (cli_connect(&c) < 0)
                r = -1;
        else
                r = !strcmp(verb, "status") ? verb_status(&c, json) : verb_flush(&c);
        if (c.fd >= 0)
                close(c.fd);
        free(c.socket_alloc);
        return r < 0 ? 1 : 0;
}
