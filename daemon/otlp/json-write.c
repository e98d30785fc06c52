/* SPDX-License-Identifier: MIT */
#include "otlp/json-write.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/utf8.h"
#include "ss-id.h"
#include "ss-wire.h"

/* The escape of an ASCII byte, or NULL when it stands for itself. */
static const char *escape_ascii(uint8_t c, char ubuf[7])
{
        switch (c) {
        case '"':
                return "\\\"";
        case '\\':
                return "\\\\";
        case '\n':
                return "\\n";
        case '\r':
                return "\\r";
        case '\t':
                return "\\t";
        case '\b':
                return "\\b";
        case '\f':
                return "\\f";
        default:
                if (c >= 0x20)
                        return NULL;
                snprintf(ubuf, 7, "\\u%04x", c);
                return ubuf;
        }
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static uint64_t has_zero_byte(uint64_t v)
{
        return (v - ONES) & ~v & HIGHS;
}

/* True when none of the 8 bytes at p needs a look: no control character,
 * quote, backslash or non-ASCII byte. */
static bool plain8(const uint8_t *p)
{
        uint64_t v;

        memcpy(&v, p, sizeof(v));
        return !((v | ((v - 0x20 * ONES) & ~v)) & HIGHS) && !has_zero_byte(v ^ ('"' * ONES)) &&
               !has_zero_byte(v ^ ('\\' * ONES));
}

/* A JSON string: well-formed UTF-8 passes through, each ill-formed byte
 * becomes U+FFFD. Runs that need no escape are copied in one piece. */
void ss_jw_str(ss_jw *w, const char *p, size_t n)
{
        const uint8_t *s = (const uint8_t *)p;
        size_t start = 0, i = 0;
        char ubuf[7];

        ss_jw_put(w, "\"", 1);
        while (i < n) {
                const char *esc;

                if (n - i >= 8 && plain8(s + i)) {
                        i += 8;
                        continue;
                }

                if (s[i] >= 0x80) {
                        size_t l = ss_utf8_char_len(s + i, n - i);

                        if (l) {
                                i += l;
                                continue;
                        }
                        esc = "\xEF\xBF\xBD";
                } else {
                        esc = escape_ascii(s[i], ubuf);
                        if (!esc) {
                                i++;
                                continue;
                        }
                }
                ss_jw_put(w, p + start, i - start);
                ss_jw_lit(w, esc);
                start = ++i;
        }
        ss_jw_put(w, p + start, n - start);
        ss_jw_put(w, "\"", 1);
}

void ss_jw_hex(ss_jw *w, const uint8_t *p, size_t len)
{
        char buf[2 * SS_TRACE_ID_LEN + 1];

        ss_jw_put(w, "\"", 1);
        /* In id-sized pieces: a malformed id of any length is still written whole. */
        for (size_t i = 0; i < len; i += SS_TRACE_ID_LEN) {
                size_t n = len - i < SS_TRACE_ID_LEN ? len - i : SS_TRACE_ID_LEN;

                ss_hex(buf, p + i, n);
                ss_jw_put(w, buf, 2 * n);
        }
        ss_jw_put(w, "\"", 1);
}

/* Decimal digits of v, optionally quoted (64-bit integers are JSON strings). */
void ss_jw_u64(ss_jw *w, uint64_t v, bool quoted)
{
        char tmp[24], *p = tmp + sizeof(tmp);

        if (quoted)
                *--p = '"';
        do {
                *--p = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        if (quoted)
                *--p = '"';
        ss_jw_put(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

void ss_jw_i64(ss_jw *w, int64_t v, bool quoted)
{
        if (v >= 0) {
                ss_jw_u64(w, (uint64_t)v, quoted);
                return;
        }
        ss_jw_put(w, quoted ? "\"-" : "-", quoted ? 2 : 1);
        /* two's complement negation, defined for INT64_MIN too */
        ss_jw_u64(w, 0 - (uint64_t)v, false);
        if (quoted)
                ss_jw_put(w, "\"", 1);
}

/* The shortest of %.15g..%.17g that reads back as the same double; NaN and
 * the infinities, which JSON has no numbers for, as protobuf JSON's strings. */
void ss_jw_dbl(ss_jw *w, double d)
{
        char tmp[40];

        if (isnan(d)) {
                ss_jw_lit(w, "\"NaN\"");
                return;
        }
        if (isinf(d)) {
                ss_jw_lit(w, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
                return;
        }
        for (int prec = 15; prec <= 17; prec++) {
                snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
                if (strtod(tmp, NULL) == d)
                        break;
        }
        ss_jw_lit(w, tmp);
}

void ss_jw_base64(ss_jw *w, const uint8_t *p, size_t n)
{
        static const char tab[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char q[4];

        ss_jw_put(w, "\"", 1);
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16;

                if (i + 1 < n)
                        v |= (uint32_t)p[i + 1] << 8;
                if (i + 2 < n)
                        v |= p[i + 2];
                q[0] = tab[v >> 18 & 63];
                q[1] = tab[v >> 12 & 63];
                q[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
                q[3] = i + 2 < n ? tab[v & 63] : '=';
                ss_jw_put(w, q, 4);
        }
        ss_jw_put(w, "\"", 1);
}
