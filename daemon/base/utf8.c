/* SPDX-License-Identifier: MIT */
#include "base/utf8.h"

#include <string.h>

static bool is_cont(uint8_t c)
{
        return (c & 0xC0) == 0x80;
}

size_t ss_utf8_char_len(const uint8_t *p, size_t n)
{
        uint8_t c = p[0];

        if (c < 0x80)
                return 1;
        if (c < 0xC2 || c > 0xF4)
                return 0;
        if (c < 0xE0)
                return n >= 2 && is_cont(p[1]) ? 2 : 0;
        if (c < 0xF0) {
                if (n < 3 || !is_cont(p[1]) || !is_cont(p[2]))
                        return 0;
                if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))
                        return 0; /* overlong, surrogate */
                return 3;
        }
        if (n < 4 || !is_cont(p[1]) || !is_cont(p[2]) || !is_cont(p[3]))
                return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
                return 0; /* overlong, past U+10FFFF */
        return 4;
}

/* 16 bytes as one vector: SSE2 on x86-64, NEON on arm64, words elsewhere. */
typedef uint64_t v16 __attribute__((vector_size(16)));

static v16 load16(const uint8_t *p)
{
        v16 v;

        memcpy(&v, p, sizeof(v));
        return v;
}

bool ss_utf8_is_ascii_long(const uint8_t *p, size_t n)
{
        v16 acc = {0, 0};
        size_t i = 0;

        for (; n - i >= 64; i += 64)
                acc |= load16(p + i) | load16(p + i + 16) | load16(p + i + 32) | load16(p + i + 48);
        for (; n - i > 16; i += 16)
                acc |= load16(p + i);
        acc |= load16(p + n - 16); /* the last 16, some perhaps again */
        return !((acc[0] | acc[1]) & SS_UTF8_HIGH_BITS);
}

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Up to this many bytes ss_utf8_is_ascii() costs less than ascii_prefix()'s loops. */
#define ASCII_SHORT 32u

/* The length of the ASCII run at the start of p[0..n): 32 bytes a step, then 8, then 1. */
static size_t ascii_prefix(const uint8_t *p, size_t n)
{
        size_t i = 0;
        uint64_t a, b, c, d;

        for (; n - i >= 32; i += 32) {
                memcpy(&a, p + i, 8);
                memcpy(&b, p + i + 8, 8);
                memcpy(&c, p + i + 16, 8);
                memcpy(&d, p + i + 24, 8);
                if ((a | b | c | d) & SS_UTF8_HIGH_BITS)
                        break;
        }
        for (; n - i >= 8; i += 8) {
                memcpy(&a, p + i, 8);
                if (a & SS_UTF8_HIGH_BITS)
                        break;
        }
        while (i < n && p[i] < 0x80)
                i++;
        return i;
}

size_t ss_utf8_measure(const uint8_t *p, size_t n, size_t max, size_t *ret_in, bool *ret_clean)
{
        size_t in, out;
        bool clean = true;

        /* A short string, all ASCII, in a few word loads; a longer one's ASCII run is read by
         * ascii_prefix() alone (the whole of it, often), not once more. */
        if (n <= ASCII_SHORT && n <= max && ss_utf8_is_ascii(p, n)) {
                *ret_in = n;
                *ret_clean = true;
                return n;
        }
        in = out = ascii_prefix(p, n < max ? n : max);

        while (in < n) {
                size_t l, w;
                uint64_t v;

                /* Eight ASCII bytes at a time: content attributes are mostly ASCII. */
                if (n - in >= 8 && max - out >= 8) {
                        memcpy(&v, p + in, sizeof(v));
                        if (!(v & SS_UTF8_HIGH_BITS)) {
                                in += 8;
                                out += 8;
                                continue;
                        }
                }
                l = p[in] < 0x80 ? 1 : ss_utf8_char_len(p + in, n - in);
                w = l ? l : sizeof(replacement) - 1;

                if (out + w > max)
                        break;
                clean = clean && l;
                out += w;
                in += l ? l : 1;
        }
        *ret_in = in;
        *ret_clean = clean;
        return out;
}

void ss_utf8_write(char *dst, const uint8_t *p, size_t n)
{
        size_t in = 0;

        while (in < n) {
                size_t l = ss_utf8_char_len(p + in, n - in);

                if (l) {
                        memcpy(dst, p + in, l);
                        dst += l;
                        in += l;
                } else {
                        memcpy(dst, replacement, sizeof(replacement) - 1);
                        dst += sizeof(replacement) - 1;
                        in++;
                }
        }
}

bool ss_utf8_valid_slow(const char *p, size_t n)
{
        size_t in;
        bool clean;

        ss_utf8_measure((const uint8_t *)p, n, SIZE_MAX, &in, &clean);
        return clean;
}

int ss_utf8_append(ss_buf *b, uint32_t cp)
{
        uint8_t u[4];
        size_t n;

        if (cp < 0x80) {
                u[0] = (uint8_t)cp;
                n = 1;
        } else if (cp < 0x800) {
                u[0] = (uint8_t)(0xc0 | cp >> 6);
                u[1] = (uint8_t)(0x80 | (cp & 0x3f));
                n = 2;
        } else if (cp < 0x10000) {
                u[0] = (uint8_t)(0xe0 | cp >> 12);
                u[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
                u[2] = (uint8_t)(0x80 | (cp & 0x3f));
                n = 3;
        } else {
                u[0] = (uint8_t)(0xf0 | cp >> 18);
                u[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
                u[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
                u[3] = (uint8_t)(0x80 | (cp & 0x3f));
                n = 4;
        }
        return ss_buf_append(b, u, n);
}

bool ss_utf8_hex4(const char *p, uint32_t *ret)
{
        uint32_t v = 0;

        for (int k = 0; k < 4; k++) {
                char ch = p[k];

                v <<= 4;
                if (ch >= '0' && ch <= '9')
                        v |= (uint32_t)(ch - '0');
                else if (ch >= 'a' && ch <= 'f')
                        v |= (uint32_t)(ch - 'a' + 10);
                else if (ch >= 'A' && ch <= 'F')
                        v |= (uint32_t)(ch - 'A' + 10);
                else
                        return false;
        }
        *ret = v;
        return true;
}
