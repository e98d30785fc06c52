/* SPDX-License-Identifier: MIT */
#include "export/retry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ss-id.h"

void ss_retry_config_defaults(ss_retry_config *c)
{
        *c = (ss_retry_config){
            .max_attempts = SS_RETRY_MAX_ATTEMPTS_DEFAULT,
            .backoff_initial_ms = SS_RETRY_BACKOFF_INITIAL_MS_DEFAULT,
            .backoff_max_ms = SS_RETRY_BACKOFF_MAX_MS_DEFAULT,
        };
}

bool ss_retry_http_status(long status)
{
        return status == 429 || status == 502 || status == 503 || status == 504;
}

static long capped_ms(unsigned long long seconds)
{
        return seconds > SS_RETRY_AFTER_MAX_MS / 1000 ? (long)SS_RETRY_AFTER_MAX_MS
                                                      : (long)(seconds * 1000);
}

long ss_retry_after_parse(const char *v, time_t now)
{
        unsigned long long s;
        char *end;
        time_t t;

        while (*v == ' ' || *v == '\t')
                v++;
        if (isdigit((unsigned char)*v)) {
                errno = 0;
                s = strtoull(v, &end, 10);
                end += strspn(end, " \t");
                /* delta-seconds is 1*DIGIT: a number too large for us is a long wait. */
                if (*end == '\0')
                        return errno == ERANGE ? (long)SS_RETRY_AFTER_MAX_MS : capped_ms(s);
                return -1;
        }
        t = curl_getdate(v, NULL);
        if (t == -1)
                return -1;
        return t <= now ? 0 : capped_ms((unsigned long long)(t - now));
}

uint64_t ss_retry_backoff_ms(const ss_retry_config *c, uint32_t attempts)
{
        uint64_t d = c->backoff_initial_ms;
        uint32_t rnd;

        for (uint32_t i = 1; i < attempts && d < c->backoff_max_ms; i++)
                d *= 2;
        if (d > c->backoff_max_ms)
                d = c->backoff_max_ms;
        ss_id_random((uint8_t *)&rnd, sizeof(rnd));
        return d / 2 + rnd % (d / 2 + 1);
}
