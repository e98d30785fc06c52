/* SPDX-License-Identifier: MIT */
#include "export/gzip.h"

#include <errno.h>
#include <libdeflate.h>
#include <zlib.h>

/* The fastest level: the daemon compresses on its loop thread. */
#define GZIP_LEVEL 1

/*
 * Requests are compressed whole, so libdeflate (whole-buffer, with a crc32 that
 * uses the CPU's carry-less multiply) rather than zlib's stream, at its
 * level GZIP_LEVEL: on agent spans zlib at its default level took 226 000
 * instructions per span, and at level 1 still 82 000.
 */
int ss_gzip_append(const uint8_t *in, size_t len, ss_buf *out)
{
        struct libdeflate_compressor *c = libdeflate_alloc_compressor(GZIP_LEVEL);
        size_t bound, n;
        int r;

        if (!c)
                return -ENOMEM;
        bound = libdeflate_gzip_compress_bound(c, len);
        r = ss_buf_reserve(out, bound);
        if (r == 0) {
                n = libdeflate_gzip_compress(c, in, len, out->data + out->len, bound);
                if (n)
                        out->len += n;
                else
                        r = -EIO;
        }
        libdeflate_free_compressor(c);
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
