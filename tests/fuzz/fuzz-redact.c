/* SPDX-License-Identifier: MIT */
/*
 * fuzz-redact: text from a client through the redactor the policy stage
 * applies to every string it exports: ss_redact_text() and ss_redact_json()
 * with every class of patterns, one custom pattern, with and without the
 * keyed hash.
 *
 * Input: one byte of switches (bit 0: hash; bits 1..3: the classes), then
 * the text.
 *
 * Checks: each returns 0, 1 or -ENOMEM; on 0 nothing was appended; on 1
 * something was, and at least one redaction was counted; well-formed UTF-8
 * stays well-formed; valid JSON through ss_redact_json() stays valid JSON;
 * redacting the output again leaves every replacement as it was (no pattern
 * matches inside a "[REDACTED:...]" tag). A second pass may find more: a
 * pattern's lookahead sees the tag where the first saw the replaced text
 * ("a@b.codTICKET-1234" holds no address until the ticket is replaced).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "json-check.h"
#include "policy/redact.h"

#define OUT_MAX (4u << 20)

static ss_redactor *redactors[2]; /* without and with the hash */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        ss_redact_config cfg = {.custom = {{.kind = "ticket", .regex = "TICKET-[0-9]{4,}"}},
                                .n_custom = 1};
        char err[256];

        (void)argc;
        (void)argv;
        for (int i = 0; i < 2; i++) {
                cfg.hash = i == 1;
                memset(cfg.hash_key, 0x5a, sizeof(cfg.hash_key));
                if (ss_redactor_new(&cfg, &redactors[i], err, sizeof(err)) < 0)
                        fz_fail(__FILE__, __LINE__, err);
        }
        return 0;
}

/* Every "[REDACTED:...]" of first is in second, whole. */
static void check_tags_kept(const ss_buf *first, const ss_buf *second)
{
        static const char tag[] = "[REDACTED:";
        const uint8_t *p = first->data, *end = first->data + first->len, *t, *close;

        while ((t = memmem(p, (size_t)(end - p), tag, sizeof(tag) - 1))) {
                close = memchr(t, ']', (size_t)(end - t));
                FZ_ASSERT(close);
                FZ_ASSERT(memmem(second->data, second->len, t, (size_t)(close - t) + 1));
                p = close + 1;
        }
}

typedef int (*redact_fn)(ss_redactor *, unsigned, const char *, size_t, ss_buf *, uint32_t *);

static void check(redact_fn fn, ss_redactor *r, unsigned kinds, const uint8_t *p, size_t n,
                  bool json)
{
        ss_buf out, again;
        uint32_t count = 0, count2 = 0;
        int rc;

        ss_buf_init(&out, OUT_MAX);
        rc = fn(r, kinds, (const char *)p, n, &out, &count);
        FZ_ASSERT(rc == 0 || rc == 1 || rc == -ENOMEM);
        if (rc == 0)
                FZ_ASSERT(out.len == 0 && count == 0);
        if (rc == 1) {
                FZ_ASSERT(count > 0);
                if (fz_utf8_valid(p, n))
                        FZ_ASSERT(fz_utf8_valid(out.data, out.len));
                if (json && fz_json_valid(p, n, NULL))
                        FZ_ASSERT(fz_json_valid(out.data, out.len, NULL));
                /* Every tag survives a second pass whole. */
                ss_buf_init(&again, OUT_MAX);
                rc = fn(r, kinds, (const char *)out.data, out.len, &again, &count2);
                FZ_ASSERT(rc == 0 || rc == 1 || rc == -ENOMEM);
                if (rc == 1 && !memmem(p, n, "[REDACTED:", 10)) /* tags of its own: unclear */
                        check_tags_kept(&out, &again);
                ss_buf_free(&again);
        }
        ss_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        ss_redactor *r;
        unsigned kinds;

        if (size < 1)
                return 0;
        r = redactors[data[0] & 1];
        kinds = (data[0] >> 1) & (SS_REDACT_SECRETS | SS_REDACT_PERSONAL | SS_REDACT_CUSTOM);
        check(ss_redact_text, r, kinds, data + 1, size - 1, false);
        check(ss_redact_json, r, kinds, data + 1, size - 1, true);
        return 0;
}
