/* SPDX-License-Identifier: MIT */
#include "json-check.h"

/* Nesting deeper than this is refused rather than recursed into. */
#define MAX_DEPTH 1000

/* The length of the UTF-8 sequence at p (at most n bytes), 0 when ill-formed. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
        uint32_t cp;
        size_t len;

        if (p[0] < 0x80)
                return 1;
        if ((p[0] & 0xE0) == 0xC0) {
                len = 2;
                cp = p[0] & 0x1F;
        } else if ((p[0] & 0xF0) == 0xE0) {
                len = 3;
                cp = p[0] & 0x0F;
        } else if ((p[0] & 0xF8) == 0xF0) {
                len = 4;
                cp = p[0] & 0x07;
        } else {
                return 0;
        }
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xC0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
                return 0; /* overlong */
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
                return 0;
        return len;
}

bool fz_utf8_valid(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n;) {
                size_t l = utf8_len(p + i, n - i);

                if (!l)
                        return false;
                i += l;
        }
        return true;
}

typedef struct parser {
        const uint8_t *p;
        size_t n;
        size_t i;
        const char *err;
} parser;

static bool fail(parser *s, const char *err)
{
        if (!s->err)
                s->err = err;
        return false;
}

static int peek(const parser *s)
{
        return s->i < s->n ? s->p[s->i] : -1;
}

static void ws(parser *s)
{
        while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\t' || s->p[s->i] == '\n' ||
                               s->p[s->i] == '\r'))
                s->i++;
}

static bool literal(parser *s, const char *word)
{
        for (const char *w = word; *w; w++, s->i++)
                if (peek(s) != *w)
                        return fail(s, "bad literal");
        return true;
}

static bool digits(parser *s)
{
        size_t start = s->i;

        while (peek(s) >= '0' && peek(s) <= '9')
                s->i++;
        return s->i > start ? true : fail(s, "digit expected");
}

static bool number(parser *s)
{
        if (peek(s) == '-')
                s->i++;
        if (peek(s) == '0')
                s->i++;
        else if (!digits(s))
                return false;
        if (peek(s) == '.') {
                s->i++;
                if (!digits(s))
                        return false;
        }
        if (peek(s) == 'e' || peek(s) == 'E') {
                s->i++;
                if (peek(s) == '+' || peek(s) == '-')
                        s->i++;
                if (!digits(s))
                        return false;
        }
        return true;
}

/* Four hex digits after \u; -1 when they are not. */
static long hex4(parser *s)
{
        long v = 0;

        for (int k = 0; k < 4; k++, s->i++) {
                int c = peek(s);

                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= c - '0';
                else if (c >= 'a' && c <= 'f')
                        v |= c - 'a' + 10;
                else if (c >= 'A' && c <= 'F')
                        v |= c - 'A' + 10;
                else
                        return -1;
        }
        return v;
}

/* After "\u": one code unit, or a high surrogate followed by "\u" and a low one. */
static bool unicode_escape(parser *s)
{
        long hi = hex4(s), lo;

        if (hi < 0)
                return fail(s, "bad \\u escape");
        if (hi >= 0xDC00 && hi <= 0xDFFF)
                return fail(s, "lone low surrogate");
        if (hi < 0xD800 || hi > 0xDBFF)
                return true;
        if (peek(s) != '\\' || (s->i++, peek(s) != 'u'))
                return fail(s, "lone high surrogate");
        s->i++;
        lo = hex4(s);
        if (lo < 0xDC00 || lo > 0xDFFF)
                return fail(s, "high surrogate without a low one");
        return true;
}

static bool escape(parser *s)
{
        int c = peek(s);

        s->i++;
        switch (c) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
                return true;
        case 'u':
                return unicode_escape(s);
        default:
                return fail(s, "bad escape");
        }
}

static bool string(parser *s)
{
        s->i++; /* the opening quote */
        for (;;) {
                int c = peek(s);
                size_t l;

                if (c < 0)
                        return fail(s, "unterminated string");
                if (c == '"') {
                        s->i++;
                        return true;
                }
                if (c < 0x20)
                        return fail(s, "raw control character in a string");
                if (c == '\\') {
                        s->i++;
                        if (!escape(s))
                                return false;
                        continue;
                }
                l = utf8_len(s->p + s->i, s->n - s->i);
                if (!l)
                        return fail(s, "ill-formed UTF-8 in a string");
                s->i += l;
        }
}

static bool value(parser *s, unsigned depth);

/* The members or elements of an object or array, after its opening bracket. */
static bool members(parser *s, unsigned depth, int close, bool object)
{
        ws(s);
        if (peek(s) == close) {
                s->i++;
                return true;
        }
        for (;;) {
                ws(s);
                if (object) {
                        if (peek(s) != '"')
                                return fail(s, "object key expected");
                        if (!string(s))
                                return false;
                        ws(s);
                        if (peek(s) != ':')
                                return fail(s, "':' expected");
                        s->i++;
                }
                if (!value(s, depth + 1))
                        return false;
                ws(s);
                if (peek(s) == close) {
                        s->i++;
                        return true;
                }
                if (peek(s) != ',')
                        return fail(s, "',' or a closing bracket expected");
                s->i++;
        }
}

static bool value(parser *s, unsigned depth)
{
        if (depth > MAX_DEPTH)
                return fail(s, "nested too deep");
        ws(s);
        switch (peek(s)) {
        case '{':
                s->i++;
                return members(s, depth, '}', true);
        case '[':
                s->i++;
                return members(s, depth, ']', false);
        case '"':
                return string(s);
        case 't':
                return literal(s, "true");
        case 'f':
                return literal(s, "false");
        case 'n':
                return literal(s, "null");
        default:
                if (peek(s) == '-' || (peek(s) >= '0' && peek(s) <= '9'))
                        return number(s);
                return fail(s, "value expected");
        }
}

bool fz_json_valid(const uint8_t *p, size_t n, const char **ret_err)
{
        parser s = {.p = p, .n = n};
        bool ok = value(&s, 0);

        if (ok) {
                ws(&s);
                if (s.i != n)
                        ok = fail(&s, "trailing bytes after the value");
        }
        if (ret_err)
                *ret_err = s.err;
        return ok;
}
