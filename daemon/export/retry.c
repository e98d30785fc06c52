/* SPDX-License-Identifier: MIT */
#include "export/retry.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error_details.pb-c.h"
#include "ss-id.h"
#include "ss-macro.h"
#include "status.pb-c.h"

/* A google.rpc.Status comes from the peer; gRPC caps its metadata far below this anyway. */
#define RETRY_STATUS_MAX_BYTES ((size_t)64 << 10)

/* gRPC status codes (the protocol's numbers; grpc_status_code in grpc core). */
enum {
        GRPC_CODE_CANCELLED = 1,
        GRPC_CODE_DEADLINE_EXCEEDED = 4,
        GRPC_CODE_RESOURCE_EXHAUSTED = 8,
        GRPC_CODE_ABORTED = 10,
        GRPC_CODE_OUT_OF_RANGE = 11,
        GRPC_CODE_UNAVAILABLE = 14,
        GRPC_CODE_DATA_LOSS = 15,
};

#define RETRY_INFO_TYPE "google.rpc.RetryInfo"

void ss_retry_config_defaults(ss_retry_config *c)
{
        *c = (ss_retry_config){
            .max_attempts = SS_RETRY_MAX_ATTEMPTS_DEFAULT,
            .backoff_initial_ms = SS_RETRY_BACKOFF_INITIAL_MS_DEFAULT,
            .backoff_max_ms = SS_RETRY_BACKOFF_MAX_MS_DEFAULT,
            .multiplier = SS_RETRY_MULTIPLIER_DEFAULT,
            .max_elapsed_ms = SS_RETRY_MAX_ELAPSED_MS_DEFAULT,
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

/*
 * An HTTP-date (RFC 9110 5.6.7) in any of the three forms a recipient must accept, blanks
 * after it allowed; -1 when v is none of them. The daemon never sets a locale, so strptime()
 * reads the English day and month names of the C locale.
 */
static time_t http_date(const char *v)
{
        static const char *const forms[] = {
            "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate, the preferred form */
            "%A, %d-%b-%y %H:%M:%S GMT", /* obsolete RFC 850 form */
            "%a %b %e %H:%M:%S %Y",      /* obsolete asctime() form */
        };

        for (size_t i = 0; i < SS_ELEMENTSOF(forms); i++) {
                struct tm tm = {0};
                const char *end = strptime(v, forms[i], &tm);

                if (end && end[strspn(end, " \t")] == '\0')
                        return timegm(&tm);
        }
        return -1;
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
        t = http_date(v);
        if (t == -1)
                return -1;
        return t <= now ? 0 : capped_ms((unsigned long long)(t - now));
}

bool ss_retry_grpc_status(int code, bool has_retry_info)
{
        switch (code) {
        case GRPC_CODE_CANCELLED:
        case GRPC_CODE_DEADLINE_EXCEEDED:
        case GRPC_CODE_ABORTED:
        case GRPC_CODE_OUT_OF_RANGE:
        case GRPC_CODE_UNAVAILABLE:
        case GRPC_CODE_DATA_LOSS:
                return true;
        case GRPC_CODE_RESOURCE_EXHAUSTED:
                return has_retry_info;
        default:
                return false;
        }
}

/* Whether an Any's type URL names RetryInfo: whatever comes before the last '/' is the
 * type server's, which plays no part. */
static bool is_retry_info(const char *type_url)
{
        const char *slash = type_url ? strrchr(type_url, '/') : NULL;

        return slash && strcmp(slash + 1, RETRY_INFO_TYPE) == 0;
}

static long duration_ms(const Google__Protobuf__Duration *d)
{
        uint64_t ms;

        if (!d || d->seconds < 0 || d->nanos < 0 || (d->seconds == 0 && d->nanos == 0))
                return 0;
        if ((uint64_t)d->seconds >= SS_RETRY_AFTER_MAX_MS / 1000)
                return (long)SS_RETRY_AFTER_MAX_MS;
        ms = (uint64_t)d->seconds * 1000u + ((uint64_t)d->nanos + 999999u) / 1000000u;
        return ms > SS_RETRY_AFTER_MAX_MS ? (long)SS_RETRY_AFTER_MAX_MS : (long)ms;
}

long ss_retry_info_parse(const uint8_t *status, size_t len)
{
        Google__Rpc__Status *st;
        long ms = -1;

        if (!status || len > RETRY_STATUS_MAX_BYTES)
                return -1;
        st = google__rpc__status__unpack(NULL, len, status);
        if (!st)
                return -1;
        for (size_t i = 0; i < st->n_details && ms < 0; i++) {
                const Google__Protobuf__Any *any = st->details[i];
                Google__Rpc__RetryInfo *ri;

                if (!is_retry_info(any->type_url))
                        continue;
                ri = google__rpc__retry_info__unpack(NULL, any->value.len, any->value.data);
                if (!ri)
                        continue;
                ms = duration_ms(ri->retry_delay);
                google__rpc__retry_info__free_unpacked(ri, NULL);
        }
        google__rpc__status__free_unpacked(st, NULL);
        return ms;
}

int64_t ss_retry_delay_ms(const ss_retry_config *c, uint32_t attempts, uint64_t elapsed_ms,
                          long after_ms)
{
        int64_t delay;

        if (c->max_attempts && attempts >= c->max_attempts)
                return -1;
        delay = after_ms >= 0 ? (int64_t)after_ms : (int64_t)ss_retry_backoff_ms(c, attempts);
        if (c->max_elapsed_ms && elapsed_ms + (uint64_t)delay > c->max_elapsed_ms)
                return -1;
        return delay;
}

uint64_t ss_retry_backoff_ms(const ss_retry_config *c, uint32_t attempts)
{
        double mult = c->multiplier >= 1.0 ? c->multiplier : SS_RETRY_MULTIPLIER_DEFAULT;
        double d = c->backoff_initial_ms;
        uint64_t ceiling;
        uint32_t rnd;

        for (uint32_t i = 1; i < attempts && d < c->backoff_max_ms; i++)
                d *= mult;
        ceiling = d > c->backoff_max_ms ? c->backoff_max_ms : (uint64_t)d;
        /* Full jitter: clients that failed together spread over the whole interval. */
        ss_id_random((uint8_t *)&rnd, sizeof(rnd));
        return rnd % (ceiling + 1);
}
