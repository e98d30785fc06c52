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

/* Grow out in steps as the stream inflates: its size is unknown until the end. */
#define GUNZIP_STEP ((size_t)64 << 10)

int ss_gunzip_append(const uint8_t *in, size_t len, ss_buf *out)
{
        z_stream z = {0};
        size_t start = out->len;
        int r = 0, zr = Z_OK;

        if (len > UINT32_MAX)
                return -ENOBUFS;
        if (inflateInit2(&z, 15 + 16) != Z_OK)
                return -ENOMEM;
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)len;
        while (zr != Z_STREAM_END) {
                size_t room = out->max - out->len < GUNZIP_STEP ? out->max - out->len : GUNZIP_STEP;

                r = room ? ss_buf_reserve(out, room) : -ENOBUFS;
                if (r < 0)
                        break;
                z.next_out = out->data + out->len;
                z.avail_out = (uInt)room;
                zr = inflate(&z, Z_NO_FLUSH);
                out->len += room - z.avail_out;
                if (zr == Z_BUF_ERROR && z.avail_in == 0)
                        zr = Z_DATA_ERROR; /* cut short */
                if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
                        r = zr == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
                        break;
                }
        }
        inflateEnd(&z);
        if (r < 0)
                out->len = start;
        return r;
}
