/* SPDX-License-Identifier: MIT */
#include "ingest/socket.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"

/* Remove a stale socket file; refuse when a daemon answers on it or it is no socket. */
static int clear_stale_socket(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct stat st;
        int fd, r;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode)) {
                ss_log(SS_LOG_ERR,
                       "%s exists and is not a socket; not touching it "
                       "event=socket-failed path=\"%s\"",
                       path, path);
                return -EEXIST;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (r == 0) {
                ss_log(SS_LOG_ERR,
                       "another sidespand is listening on %s event=socket-failed "
                       "reason=in-use path=\"%s\"",
                       path, path);
                return -EADDRINUSE;
        }
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        ss_log(SS_LOG_INFO, "removed stale socket %s event=socket-stale path=\"%s\"", path, path);
        return 0;
}

/* The directory of path must not let another user swap the socket for their own. */
static int check_dir(const char *path)
{
        char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
        const char *slash = strrchr(path, '/');
        struct stat st;

        if (!slash)
                snprintf(dir, sizeof(dir), ".");
        else
                snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
        if (stat(dir, &st) < 0) {
                ss_log(SS_LOG_ERR,
                       "cannot use the socket directory %s event=socket-failed "
                       "dir=\"%s\" error=\"%s\"",
                       dir, dir, strerror(errno));
                return -errno;
        }
        if (st.st_uid != geteuid() && st.st_uid != 0) {
                ss_log(SS_LOG_ERR,
                       "socket directory %s belongs to uid %u, neither the daemon's (%u) nor root "
                       "event=socket-failed reason=dir-owner dir=\"%s\" uid=%u",
                       dir, (unsigned)st.st_uid, (unsigned)geteuid(), dir, (unsigned)st.st_uid);
                return -EPERM;
        }
        if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
                ss_log(SS_LOG_ERR,
                       "socket directory %s is writable by every user and not sticky: "
                       "anyone could replace the socket event=socket-failed reason=dir-mode "
                       "dir=\"%s\"",
                       dir, dir);
                return -EPERM;
        }
        return 0;
}

int ss_socket_listen(uv_pipe_t *pipe, const char *path, int backlog, uv_connection_cb cb)
{
        mode_t old;
        int r;

        if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
                ss_log(SS_LOG_ERR,
                       "socket path too long (max %zu bytes): %s event=socket-failed "
                       "reason=path-too-long",
                       sizeof(((struct sockaddr_un *)0)->sun_path) - 1, path);
                return -ENAMETOOLONG;
        }
        r = check_dir(path);
        if (r == 0)
                r = clear_stale_socket(path);
        if (r < 0)
                return r;
        /* Agents of the daemon's group may connect (systemd sets the group); the mode is the
         * socket's from its creation, a single-threaded start makes the umask ours. */
        old = umask(0117);
        r = uv_pipe_bind(pipe, path);
        umask(old);
        if (r == 0)
                r = uv_listen((uv_stream_t *)pipe, backlog, cb);
        if (r < 0)
                ss_log(SS_LOG_ERR,
                       "cannot listen on %s event=socket-failed path=\"%s\" error=\"%s\"", path,
                       path, uv_strerror(r));
        return r;
}
