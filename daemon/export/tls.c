/* SPDX-License-Identifier: MIT */
#include "export/tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"

#define PEM_MAX ((size_t)1 << 20)

static int readable(const char *exporter, const char *what, const char *path)
{
        FILE *f;

        if (!path)
                return 0;
        f = fopen(path, "re");
        if (!f) {
                int r = -errno;

                ss_log(SS_LOG_ERR, "%s: cannot read the %s %s: %s", exporter, what, path,
                       strerror(-r));
                return r;
        }
        fclose(f);
        return 0;
}

int ss_tls_check(const char *exporter, const ss_tls_files *f)
{
        int r;

        if (!f->cert_file != !f->key_file) {
                ss_log(SS_LOG_ERR, "%s: a client certificate needs its key, and a key its "
                                   "certificate (cert_file and key_file)",
                       exporter);
                return -EINVAL;
        }
        r = readable(exporter, "CA file", f->ca_file);
        if (r == 0)
                r = readable(exporter, "client certificate", f->cert_file);
        if (r == 0)
                r = readable(exporter, "client key", f->key_file);
        return r;
}

int ss_tls_read(const char *path, ss_buf *out)
{
        FILE *f = fopen(path, "re");
        char chunk[4096];
        size_t n;
        int r = 0;

        ss_buf_init(out, PEM_MAX);
        if (!f)
                return -errno;
        while (r == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                r = ss_buf_append(out, chunk, n);
        if (r == 0 && ferror(f))
                r = -EIO;
        if (r == 0)
                r = ss_buf_append(out, "", 1);
        fclose(f);
        if (r < 0)
                ss_buf_free(out);
        return r;
}
