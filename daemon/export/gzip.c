/* SPDX-License-Identifier: MIT */
#include "export/gzip.h"

#include <errno.h>
#include <zlib.h>

int ss_gzip_append(const uint8_t *in, size_t len, ss_buf *out)
{
        z_stream z = {0};
        uLong bound;
        int r;

        if (len > UINT32_MAX)
                return -ENOBUFS;
        if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK)
                return -ENOMEM;
        /* With the gzip wrapper set up, deflateBound() covers header and trailer too. */
        bound = deflateBound(&z, (uLong)len);
        r = ss_buf_reserve(out, bound);
        if (r < 0)
                goto out;
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)len;
        z.next_out = out->data + out->len;
        z.avail_out = (uInt)bound;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
                r = -EIO;
                goto out;
        }
        out->len += z.total_out;
out:
        deflateEnd(&z);
        return r;
}
