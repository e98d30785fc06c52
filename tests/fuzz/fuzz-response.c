/* SPDX-License-Identifier: MIT */
/*
 * fuzz-response: a backend's answer to an export, which the backend
 * controls, through both readers the exporters call on it:
 * ss_otlp_parse_response() (protobuf, OTLP/HTTP and gRPC) and
 * ss_otlp_json_parse_response() (OTLP/JSON).
 *
 * Input: the body, whole, handed to both.
 *
 * Checks: each returns 0 or -EBADMSG (-ENOMEM only from malloc); on 0 the
 * message is NULL or a NUL-terminated string no longer than the body and
 * never empty; on failure nothing is returned.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "otlp/otlp.h"

static void check(int (*parse)(const uint8_t *, size_t, int64_t *, char **), const uint8_t *data,
                  size_t size)
{
        int64_t rejected = -12345;
        char *msg = (char *)data; /* must be overwritten on success, left alone on failure */
        int r = parse(data, size, &rejected, &msg);

        FZ_ASSERT(r == 0 || r == -EBADMSG || r == -ENOMEM);
        if (r < 0) {
                FZ_ASSERT(msg == (char *)data);
                FZ_ASSERT(rejected == -12345);
                return;
        }
        if (msg) {
                size_t n = strlen(msg);

                FZ_ASSERT(n > 0 && n <= size);
                free(msg);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        check(ss_otlp_parse_response, data, size);
        check(ss_otlp_json_parse_response, data, size);
        return 0;
}
