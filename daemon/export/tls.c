/* SPDX-License-Identifier: MIT */
#include "export/tls.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"

#define PEM_MAX ((size_t)1 << 20)

static int file_slurp(const char *path, char **ret)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        char *buf = NULL;
        ssize_t n;
        int r = 0;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                r = -errno;
        else if (!S_ISREG(st.st_mode))
                r = S_ISDIR(st.st_mode) ? -EISDIR : -ENOTSUP; /* a FIFO could block */
        else if ((size_t)st.st_size > PEM_MAX)
                r = -EFBIG;
        else if (!(buf = malloc((size_t)st.st_size + 1)))
                r = -ENOMEM;
        else if ((n = read(fd, buf, (size_t)st.st_size)) < 0)
                r = -errno;
        else
                buf[n] = '\0';
        close(fd);
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        return 0;
}

int ss_tls_read_pem(const char *exporter, const char *what, const char *path, char **ret)
{
        int r;

        if (!path)
                return 0;
        r = file_slurp(path, ret);
        if (r == 0 && !strstr(*ret, "-----BEGIN ")) {
                free(*ret);
                *ret = NULL;
                r = -EINVAL;
        }
        if (r < 0)
                ss_log(SS_LOG_ERR,
                       "%s: cannot use the %s %s: %s event=config-invalid exporter=%s "
                       "key=%s",
                       exporter, what, path,
                       r == -EINVAL    ? "not a PEM file"
                       : r == -ENOTSUP ? "not a regular file"
                                       : strerror(-r),
                       exporter, what);
        return r;
}

int ss_tls_read_files(const char *exporter, const ss_tls_files *f, ss_tls_pems *p)
{
        int r = ss_tls_read_pem(exporter, "ca_file", f->ca_file, &p->ca);

        if (r == 0)
                r = ss_tls_read_pem(exporter, "cert_file", f->cert_file, &p->cert);
        if (r == 0)
                r = ss_tls_read_pem(exporter, "key_file", f->key_file, &p->key);
        return r;
}

void ss_tls_pems_free(ss_tls_pems *p)
{
        free(p->ca);
        free(p->cert);
        free(p->key);
        *p = (ss_tls_pems){0};
}

int ss_tls_check(const char *exporter, const ss_tls_files *f)
{
        ss_tls_pems p = {0};
        int r;

        if (!f->cert_file != !f->key_file) {
                ss_log(SS_LOG_ERR,
                       "%s: a client certificate needs its key, and a key its "
                       "certificate (cert_file and key_file) event=config-invalid exporter=%s "
                       "key=cert_file",
                       exporter, exporter);
                return -EINVAL;
        }
        r = ss_tls_read_files(exporter, f, &p);
        ss_tls_pems_free(&p);
        return r;
}
