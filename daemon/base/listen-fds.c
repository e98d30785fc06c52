/* SPDX-License-Identifier: MIT */
#include "base/listen-fds.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/notify.h"
#include "ss-macro.h"

/* How many sockets were passed to this process: 0 when none or they were another's. */
static int passed_fds(void)
{
        unsigned long long pid, n;
        int r = ss_notify_env_number("LISTEN_PID", &pid),
            q = ss_notify_env_number("LISTEN_FDS", &n);

        if (r == 0 || q == 0)
                return 0;
        if (r < 0 || q < 0 || n > INT_MAX - SS_LISTEN_FDS_START) {
                ss_log(SS_LOG_ERR,
                       "socket activation: LISTEN_PID=%s LISTEN_FDS=%s are not numbers "
                       "event=config-invalid key=LISTEN_FDS",
                       getenv("LISTEN_PID"), getenv("LISTEN_FDS"));
                return -EINVAL;
        }
        /* Inherited from a parent that was activated itself: not ours to take. */
        if (pid != (unsigned long long)getpid())
                return 0;
        return (int)n;
}

typedef struct named {
        int value;
        const char *what;
} named;

/* What a socket of type or family v is, for the error: "is a datagram socket". */
static const char *name_of(const named *names, size_t n, int v, const char *other)
{
        for (size_t i = 0; i < n; i++)
                if (names[i].value == v)
                        return names[i].what;
        return other;
}

static const named types[] = {{SOCK_DGRAM, "is a datagram socket"},
                              {SOCK_SEQPACKET, "is a seqpacket socket"},
                              {SOCK_RAW, "is a raw socket"}};
static const named families[] = {{AF_INET, "is an AF_INET socket"},
                                 {AF_INET6, "is an AF_INET6 socket"},
                                 {AF_NETLINK, "is an AF_NETLINK socket"}};

static int bad_fd(int fd, const char *what, int err)
{
        ss_log(SS_LOG_ERR,
               "socket activation: fd %d %s; sidespand needs a listening AF_UNIX stream socket "
               "(ListenStream=/path in the socket unit) event=socket-failed fd=%d",
               fd, what, fd);
        return err;
}

/* The address as a log shows it: a path, "@name" for the abstract namespace. */
static void socket_name(const struct sockaddr_un *sa, socklen_t len, char *out, size_t size)
{
        size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? len - offsetof(struct sockaddr_un, sun_path)
                       : 0;

        if (n == 0)
                snprintf(out, size, "(unnamed)");
        else if (sa->sun_path[0] == '\0')
                snprintf(out, size, "@%.*s", (int)(n - 1), sa->sun_path + 1);
        else
                snprintf(out, size, "%.*s", (int)strnlen(sa->sun_path, n), sa->sun_path);
}

/* Whether fd is what a ListenStream= path gives: its name in out when it is. */
static int check_socket(int fd, char *out, size_t size)
{
        struct sockaddr_un sa = {0};
        socklen_t len = sizeof(int), sa_len = sizeof(sa);
        int type, listening;

        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
                return bad_fd(fd,
                              errno == ENOTSOCK ? "is not a socket"
                              : errno == EBADF  ? "is not open"
                                                : strerror(errno),
                              -errno);
        if (type != SOCK_STREAM)
                return bad_fd(
                    fd, name_of(types, SS_ELEMENTSOF(types), type, "is a socket of another type"),
                    -EPROTOTYPE);
        if (getsockname(fd, (struct sockaddr *)&sa, &sa_len) < 0)
                return bad_fd(fd, strerror(errno), -errno);
        if (sa.sun_family != AF_UNIX)
                return bad_fd(fd,
                              name_of(families, SS_ELEMENTSOF(families), sa.sun_family,
                                      "is a socket of another family"),
                              -EAFNOSUPPORT);
        len = sizeof(listening);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
                return bad_fd(fd, strerror(errno), -errno);
        if (!listening)
                return bad_fd(fd, "is not listening", -EINVAL);
        socket_name(&sa, sa_len, out, size);
        return 0;
}

static int set_flag(int fd, int get, int set, int flag)
{
        int flags = fcntl(fd, get);

        if (flags < 0 || fcntl(fd, set, flags | flag) < 0)
                return -errno;
        return 0;
}

int ss_listen_fds_take(int *ret_fd, char *ret_name, size_t name_size)
{
        const int fd = SS_LISTEN_FDS_START;
        char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];
        const char *names = getenv("LISTEN_FDNAMES");
        int n = passed_fds(), r, own = names && strcmp(names, SS_LISTEN_FDS_RELOAD) == 0;

        (void)unsetenv("LISTEN_PID");
        (void)unsetenv("LISTEN_FDS");
        (void)unsetenv("LISTEN_FDNAMES");
        if (n <= 0)
                return n;
        /* The others are not used, but no program this one starts should inherit them. */
        for (int i = 1; i < n; i++)
                (void)set_flag(fd + i, F_GETFD, F_SETFD, FD_CLOEXEC);
        if (n > 1)
                ss_log(SS_LOG_WARNING,
                       "socket activation: %d sockets passed, using fd %d only "
                       "event=socket-activated sockets=%d fd=%d",
                       n, fd, n, fd);
        r = check_socket(fd, name, sizeof(name));
        if (r < 0)
                return r;
        r = set_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC);
        if (r == 0)
                r = set_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK);
        if (r < 0) {
                ss_log(SS_LOG_ERR,
                       "socket activation: cannot set the flags of fd %d "
                       "event=socket-failed fd=%d error=\"%s\"",
                       fd, fd, strerror(-r));
                return r;
        }
        snprintf(ret_name, name_size, "%s", name);
        *ret_fd = fd;
        return own ? 2 : 1;
}

int ss_listen_fds_pass(int fd)
{
        char pid[24];
        int flags;

        if (fd != SS_LISTEN_FDS_START) {
                if (dup2(fd, SS_LISTEN_FDS_START) < 0)
                        return -errno;
                close(fd);
        }
        /* dup2 clears close-on-exec; a socket already at fd 3 still has it. */
        flags = fcntl(SS_LISTEN_FDS_START, F_GETFD);
        if (flags < 0 || fcntl(SS_LISTEN_FDS_START, F_SETFD, flags & ~FD_CLOEXEC) < 0)
                return -errno;
        snprintf(pid, sizeof(pid), "%ld", (long)getpid());
        if (setenv("LISTEN_PID", pid, 1) < 0 || setenv("LISTEN_FDS", "1", 1) < 0 ||
            setenv("LISTEN_FDNAMES", SS_LISTEN_FDS_RELOAD, 1) < 0)
                return -errno;
        return 0;
}
