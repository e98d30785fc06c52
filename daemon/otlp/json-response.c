/* SPDX-License-Identifier: MIT */
/*
 * The answer to an OTLP/JSON request: an ExportTraceServiceResponse in the
 * protobuf JSON mapping, {"partialSuccess": {"rejectedSpans": "3",
 * "errorMessage": "..."}}. The body is the backend's, so this reads it as
 * hostile: a strict JSON scanner with a depth bound and no allocation but
 * the message, which skips whatever else the object holds.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "otlp/otlp.h"
#include "ss-buf.h"

#define JSON_MAX_DEPTH  32          /* deeper nesting in a response is refused */
#define JSON_MAX_STRING (64 * 1024) /* a longer key or message is refused */

typedef struct scan {
        const char *p, *end;
        unsigned depth;
} scan;

static void ws(scan *s)
{
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

static bool eat(scan *s, char c)
{
        ws(s);
        if (s->p < s->end && *s->p == c) {
                s->p++;
                return true;
        }
        return false;
}

/* A string; its decoded bytes appended to out when out is not NULL. Escapes are decoded,
 * a lone surrogate or \u0000 becomes U+FFFD. */
static int string(scan *s, ss_buf *out)
{
        if (!eat(s, '"'))
                return -EBADMSG;
        while (s->p < s->end && *s->p != '"') {
                uint32_t cp, lo;
                char c = *s->p++;

                if ((unsigned char)c < 0x20)
                        return -EBADMSG;
                if (c != '\\') {
                        if (out && ss_buf_append(out, &c, 1) < 0)
                                return -EBADMSG;
                        continue;
                }
                if (s->p >= s->end)
                        return -EBADMSG;
                c = *s->p++;
                switch (c) {
                case '"':
                case '\\':
                case '/':
                        break;
                case 'b':
                        c = '\b';
                        break;
                case 'f':
                        c = '\f';
                        break;
                case 'n':
                        c = '\n';
                        break;
                case 'r':
                        c = '\r';
                        break;
                case 't':
                        c = '\t';
                        break;
                case 'u':
                        if (s->end - s->p < 4 || !ss_utf8_hex4(s->p, &cp))
                                return -EBADMSG;
                        s->p += 4;
                        if (cp >= 0xd800 && cp < 0xdc00 && s->end - s->p >= 6 && s->p[0] == '\\' &&
                            s->p[1] == 'u' && ss_utf8_hex4(s->p + 2, &lo) && lo >= 0xdc00 &&
                            lo < 0xe000) {
                                s->p += 6;
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        } else if ((cp >= 0xd800 && cp < 0xe000) || cp == 0) {
                                cp = 0xfffd; /* a lone surrogate; a NUL would cut the text */
                        }
                        if (out && ss_utf8_append(out, cp) < 0)
                                return -EBADMSG;
                        continue;
                default:
                        return -EBADMSG;
                }
                if (out && ss_buf_append(out, &c, 1) < 0)
                        return -EBADMSG;
        }
        return eat(s, '"') ? 0 : -EBADMSG;
}

/* A number's text (sign, digits, fraction, exponent), checked but not converted. */
static int number(scan *s, const char **ret_start)
{
        const char *start = s->p;

        if (s->p < s->end && *s->p == '-')
                s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
                return -EBADMSG;
        while (s->p < s->end && ((*s->p >= '0' && *s->p <= '9') || *s->p == '.' || *s->p == 'e' ||
                                 *s->p == 'E' || *s->p == '+' || *s->p == '-'))
                s->p++;
        if (ret_start)
                *ret_start = start;
        return 0;
}

static int literal(scan *s, const char *word)
{
        size_t n = strlen(word);

        if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
                return -EBADMSG;
        s->p += n;
        return 0;
}

static int value(scan *s);

/* An object's members; each key is handed to on_key(), which reads its value (or skips it
 * with value()). */
static int object(scan *s, int (*on_key)(scan *s, const char *key, size_t n, void *ctx), void *ctx)
{
        ss_buf key;
        int r = 0;

        if (++s->depth > JSON_MAX_DEPTH || !eat(s, '{'))
                return -EBADMSG;
        ss_buf_init(&key, JSON_MAX_STRING);
        if (eat(s, '}')) {
                s->depth--;
                return 0;
        }
        do {
                key.len = 0;
                r = string(s, &key);
                if (r == 0 && !eat(s, ':'))
                        r = -EBADMSG;
                if (r == 0)
                        r = on_key(s, (const char *)key.data, key.len, ctx);
        } while (r == 0 && eat(s, ','));
        ss_buf_free(&key);
        if (r == 0 && !eat(s, '}'))
                r = -EBADMSG;
        s->depth--;
        return r;
}

static int skip_key(scan *s, const char *key, size_t n, void *ctx)
{
        (void)key;
        (void)n;
        (void)ctx;
        return value(s);
}

static int value(scan *s)
{
        int r = 0;

        ws(s);
        if (s->p >= s->end)
                return -EBADMSG;
        switch (*s->p) {
        case '{':
                return object(s, skip_key, NULL);
        case '[':
                if (++s->depth > JSON_MAX_DEPTH)
                        return -EBADMSG;
                s->p++;
                if (!eat(s, ']')) {
                        do
                                r = value(s);
                        while (r == 0 && eat(s, ','));
                        if (r == 0 && !eat(s, ']'))
                                r = -EBADMSG;
                }
                s->depth--;
                return r;
        case '"':
                return string(s, NULL);
        case 't':
                return literal(s, "true");
        case 'f':
                return literal(s, "false");
        case 'n':
                return literal(s, "null");
        default:
                return number(s, NULL);
        }
}

typedef struct partial {
        int64_t rejected;
        ss_buf message;
} partial;

static bool key_is(const char *key, size_t n, const char *want)
{
        return n == strlen(want) && memcmp(key, want, n) == 0;
}

/* rejectedSpans: an int64, a string in the JSON mapping, though a number is taken too. */
static int rejected_spans(scan *s, int64_t *ret)
{
        ss_buf digits;
        const char *start;
        char *end;
        int r;

        ss_buf_init(&digits, 64);
        ws(s);
        if (s->p < s->end && *s->p == '"') {
                r = string(s, &digits);
        } else {
                r = number(s, &start);
                if (r == 0 && ss_buf_append(&digits, start, (size_t)(s->p - start)) < 0)
                        r = -EBADMSG;
        }
        if (r == 0 && ss_buf_append(&digits, "", 1) < 0)
                r = -EBADMSG; /* longer than any int64 */
        if (r == 0) {
                errno = 0;
                *ret = strtoll((const char *)digits.data, &end, 10);
                if (errno || end == (const char *)digits.data || *end)
                        r = -EBADMSG;
        }
        ss_buf_free(&digits);
        return r;
}

static int partial_key(scan *s, const char *key, size_t n, void *ctx)
{
        partial *ps = ctx;

        if (key_is(key, n, "rejectedSpans"))
                return rejected_spans(s, &ps->rejected);
        if (key_is(key, n, "errorMessage")) {
                ps->message.len = 0;
                return string(s, &ps->message);
        }
        return value(s);
}

static int response_key(scan *s, const char *key, size_t n, void *ctx)
{
        if (key_is(key, n, "partialSuccess")) {
                ws(s);
                if (s->p < s->end && *s->p == 'n') /* null: no partial success */
                        return literal(s, "null");
                return object(s, partial_key, ctx);
        }
        return value(s);
}

int ss_otlp_json_parse_response(const uint8_t *body, size_t len, int64_t *ret_rejected,
                                char **ret_message)
{
        scan s = {.p = (const char *)body, .end = (const char *)body + len};
        partial ps = {0};
        char *msg = NULL;
        int r;

        ss_buf_init(&ps.message, JSON_MAX_STRING);
        r = object(&s, response_key, &ps);
        ws(&s);
        if (r == 0 && s.p != s.end)
                r = -EBADMSG;
        if (r == 0 && ps.message.len > 0) {
                msg = strndup((const char *)ps.message.data, ps.message.len);
                if (!msg)
                        r = -ENOMEM;
        }
        ss_buf_free(&ps.message);
        if (r < 0)
                return r;
        *ret_rejected = ps.rejected;
        *ret_message = msg;
        return 0;
}
