/* SPDX-License-Identifier: MIT */
/*
 * The JSON scanner: a chat message document walked as JSON, each string
 * value (not key) unescaped, run through the text scan and, when anything
 * matched, escaped again in place of the original; the rest is copied as it
 * was.
 */
#include "policy/redact.h"

#include <errno.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "base/utf8.h"
#include "policy/redact-internal.h"

#define JSON_DEPTH_MAX 64u

/* One document being copied: everything before copied is in out already (only once a string
 * needed redacting: a document without one is never copied). */
typedef struct jscan {
        ss_redactor *r;
        unsigned kinds;
        const char *p;
        size_t n, i, copied;
        ss_buf *out;
        uint32_t found;
} jscan;

#define J_INVALID 1 /* not JSON (or deeper than JSON_DEPTH_MAX): redact as text */

static void skip_ws(jscan *j)
{
        while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\n' ||
                               j->p[j->i] == '\r'))
                j->i++;
}

/* The escape at p[0] == '\\' (n bytes left) decoded into b (NULL: only checked); the bytes it
 * took, or -J_INVALID, or a negative errno. A lone surrogate decodes to U+FFFD. */
static int unescape(const char *p, size_t n, ss_buf *b)
{
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *x = n >= 2 ? memchr(from, p[1], sizeof(from) - 1) : NULL;
        uint32_t cp, lo;
        int used = 6;

        if (x)
                return b ? (ss_buf_append(b, &to[x - from], 1) < 0 ? -ENOMEM : 2) : 2;
        if (n < 6 || p[1] != 'u' || !ss_utf8_hex4(p + 2, &cp))
                return -J_INVALID;
        if (cp >= 0xd800 && cp <= 0xdbff && n >= 12 && p[6] == '\\' && p[7] == 'u' &&
            ss_utf8_hex4(p + 8, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                used = 12;
        } else if (cp >= 0xd800 && cp <= 0xdfff) {
                cp = 0xfffd;
        }
        if (b && ss_utf8_append(b, cp) < 0)
                return -ENOMEM;
        return used;
}

/* Append text as the body of a JSON string. */
static int put_json_str(ss_buf *out, const char *p, size_t n)
{
        size_t run = 0;
        int e = ss_buf_append(out, "\"", 1);

        for (size_t i = 0; e == 0 && i < n; i++) {
                unsigned char ch = (unsigned char)p[i];
                const char *esc = ch == '"'    ? "\\\""
                                  : ch == '\\' ? "\\\\"
                                  : ch == '\n' ? "\\n"
                                  : ch == '\r' ? "\\r"
                                  : ch == '\t' ? "\\t"
                                               : NULL;

                if (!esc && ch >= 0x20)
                        continue;
                e = ss_buf_append(out, p + run, i - run);
                if (e == 0)
                        e = esc ? ss_buf_append(out, esc, 2) : ss_buf_printf(out, "\\u%04x", ch);
                run = i + 1;
        }
        if (e == 0)
                e = ss_buf_append(out, p + run, n - run);
        return e == 0 ? ss_buf_append(out, "\"", 1) : e;
}

/* The string's text, unescaped when it has escapes (into r->decoded). */
static int json_text(jscan *j, size_t s, size_t e, bool escaped, const char **ret, size_t *len)
{
        ss_buf *d = &j->r->decoded;

        *ret = j->p + s;
        *len = e - s;
        if (!escaped)
                return 0;
        ss_buf_reset(d);
        for (size_t i = s; i < e;) {
                size_t run = i;
                int used;

                while (i < e && j->p[i] != '\\')
                        i++;
                if (ss_buf_append(d, j->p + run, i - run) < 0)
                        return -ENOMEM;
                if (i == e)
                        break;
                used = unescape(j->p + i, e - i, d);
                if (used < 0)
                        return used;
                i += (size_t)used;
        }
        *ret = (const char *)d->data;
        *len = d->len;
        return 0;
}

/* A string value redacted into out when anything in it matched. */
static int json_redact_str(jscan *j, size_t s, size_t e, bool escaped)
{
        ss_buf *red = &j->r->redacted;
        const char *t;
        size_t len;
        int rc = json_text(j, s, e, escaped, &t, &len);

        if (rc < 0)
                return rc;
        ss_buf_reset(red);
        rc = ss_redact_scan(j->r, j->kinds, t, len, red, &j->found);
        if (rc <= 0)
                return rc;
        rc = ss_buf_append(j->out, j->p + j->copied, s - 1 - j->copied);
        if (rc == 0)
                rc = put_json_str(j->out, (const char *)red->data, red->len);
        j->copied = e + 1;
        return rc < 0 ? rc : 0;
}

/* Bytes that end a run of plain string characters: the quote, an escape, a control. */
#define STOP4(c) [(c)] = true, [(c) + 1] = true, [(c) + 2] = true, [(c) + 3] = true
static const bool json_stop[256] = {
    STOP4(0x00), STOP4(0x04), STOP4(0x08), STOP4(0x0c),  STOP4(0x10),
    STOP4(0x14), STOP4(0x18), STOP4(0x1c), ['"'] = true, ['\\'] = true,
};
#undef STOP4

#ifdef __SSE2__
/* A bit for each byte of p[0..16) that json_stop[] holds (bit k: p[k]). */
static unsigned stop_mask(const char *p)
{
        const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* The controls are the bytes with none of 0xe0 set. */
        __m128i stop =
            _mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8((char)0xe0)), _mm_setzero_si128());

        stop = _mm_or_si128(stop, _mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
        stop = _mm_or_si128(stop, _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
        return (unsigned)_mm_movemask_epi8(stop);
}
#endif

/* The first byte from i on that ends a run of plain string characters, or n. Most of a
 * document is such runs: with SSE2, 16 bytes a test. */
static size_t plain_run(const char *p, size_t i, size_t n)
{
#ifdef __SSE2__
        for (; n - i >= 16; i += 16) {
                unsigned m = stop_mask(p + i);

                if (m)
                        return i + (size_t)__builtin_ctz(m);
        }
#endif
        while (i < n && !json_stop[(unsigned char)p[i]])
                i++;
        return i;
}

/* A string at j->i (its opening quote); redacted when it is a value. */
static int json_string(jscan *j, bool value)
{
        const char *p = j->p;
        size_t s = ++j->i, i = s, n = j->n;
        bool escaped = false;

        for (;;) {
                unsigned char ch;
                int used;

                i = plain_run(p, i, n);
                if (i >= n)
                        break;
                ch = (unsigned char)p[i];
                if (ch == '"') {
                        j->i = i + 1;
                        return value ? json_redact_str(j, s, i, escaped) : 0;
                }
                if (ch < 0x20)
                        break;
                used = unescape(p + i, n - i, NULL);
                if (used < 0)
                        return used;
                escaped = true;
                i += (size_t)used;
        }
        j->i = i;
        return -J_INVALID;
}

static size_t digits(jscan *j)
{
        size_t s = j->i;

        while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
                j->i++;
        return j->i - s;
}

static int json_number(jscan *j)
{
        if (j->i < j->n && j->p[j->i] == '-')
                j->i++;
        if (j->i < j->n && j->p[j->i] == '0')
                j->i++;
        else if (!digits(j))
                return -J_INVALID;
        if (j->i < j->n && j->p[j->i] == '.') {
                j->i++;
                if (!digits(j))
                        return -J_INVALID;
        }
        if (j->i < j->n && (j->p[j->i] == 'e' || j->p[j->i] == 'E')) {
                j->i++;
                if (j->i < j->n && (j->p[j->i] == '+' || j->p[j->i] == '-'))
                        j->i++;
                if (!digits(j))
                        return -J_INVALID;
        }
        return 0;
}

static int json_literal(jscan *j, const char *lit)
{
        size_t n = strlen(lit);

        if (j->n - j->i < n || memcmp(j->p + j->i, lit, n) != 0)
                return -J_INVALID;
        j->i += n;
        return 0;
}

static int json_value(jscan *j, unsigned depth);

/* An array or object at j->i: its members, separated by ',', closed by close. */
static int json_container(jscan *j, unsigned depth, char close)
{
        bool object = close == '}';
        int e;

        if (depth >= JSON_DEPTH_MAX)
                return -J_INVALID;
        j->i++;
        skip_ws(j);
        if (j->i < j->n && j->p[j->i] == close) {
                j->i++;
                return 0;
        }
        for (;;) {
                if (object) {
                        if (j->i >= j->n || j->p[j->i] != '"')
                                return -J_INVALID;
                        if ((e = json_string(j, false)) < 0)
                                return e;
                        skip_ws(j);
                        if (j->i >= j->n || j->p[j->i++] != ':')
                                return -J_INVALID;
                }
                if ((e = json_value(j, depth + 1)) < 0)
                        return e;
                skip_ws(j);
                if (j->i >= j->n)
                        return -J_INVALID;
                if (j->p[j->i] == close) {
                        j->i++;
                        return 0;
                }
                if (j->p[j->i++] != ',')
                        return -J_INVALID;
                skip_ws(j);
        }
}

static int json_value(jscan *j, unsigned depth)
{
        skip_ws(j);
        if (j->i >= j->n)
                return -J_INVALID;
        switch (j->p[j->i]) {
        case '{':
                return json_container(j, depth, '}');
        case '[':
                return json_container(j, depth, ']');
        case '"':
                return json_string(j, true);
        case 't':
                return json_literal(j, "true");
        case 'f':
                return json_literal(j, "false");
        case 'n':
                return json_literal(j, "null");
        default:
                return json_number(j);
        }
}

/* True when p[0..n) holds a backslash-u escape, which may stand for any character. */
static bool has_unicode_escape(const char *p, size_t n)
{
        const char *end = p + n;

        for (const char *b = p; b < end && (b = memchr(b, '\\', (size_t)(end - b))); b += 2) {
                if (end - b < 2)
                        return false;
                if (b[1] == 'u')
                        return true;
        }
        return false;
}

int ss_redact_json(ss_redactor *r, unsigned kinds, const char *p, size_t n, ss_buf *out,
                   uint32_t *count)
{
        jscan j = {.r = r, .kinds = kinds, .p = p, .n = n, .out = out};
        size_t base = out->len;
        int e;

        /*
         * Most documents hold nothing any pattern could match. Each string of one is the
         * document's bytes, the escapes other than backslash-u turned into characters no pattern
         * anchors on: when the prefilter rules every pattern out for the whole document, it
         * does for each of its strings, and for the document read as text (what one that is
         * not JSON gets). One pass over it, and no walk.
         */
        if (!has_unicode_escape(p, n) && ss_redact_none(r, kinds, p, n))
                return 0;
        e = json_value(&j, 0);

        if (e == 0) {
                skip_ws(&j);
                if (j.i != n)
                        e = -J_INVALID;
        }
        if (e == 0 && j.found)
                e = ss_buf_append(out, p + j.copied, n - j.copied);
        if (e < 0) {
                out->len = base;
                ss_redact_commit(r, false);
                return e == -J_INVALID ? ss_redact_text(r, kinds, p, n, out, count) : e;
        }
        ss_redact_commit(r, true);
        *count += j.found;
        return j.found ? 1 : 0;
}
