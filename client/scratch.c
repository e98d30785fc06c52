/* SPDX-License-Identifier: MIT */
#include "scratch.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
_Thread_local ssc_scratch *ssc_tls_scratch __attribute__((tls_model("initial-exec")));

static void scratch_destroy(void *p)
{
        ssc_scratch *s = p;

        if (ssc_tls_scratch == s)
                ssc_tls_scratch = NULL;
        while (s->free_spans) {
                sidespan_span *span = s->free_spans;

                s->free_spans = span->next_free;
                ssc_span_release(span);
        }
        ss_buf_free(&s->frame);
        ss_buf_free(&s->map);
        free(s);
}

static void scratch_key_init(void)
{
        (void)pthread_key_create(&scratch_key, scratch_destroy);
}

ssc_scratch *ssc_scratch_new(void)
{
        ssc_scratch *s;

        pthread_once(&scratch_once, scratch_key_init);
        s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        ss_buf_init(&s->frame, SS_FRAME_HEADER + SS_MAX_FRAME_LIMIT);
        ss_buf_init(&s->map, SS_MAX_FRAME_LIMIT);
        (void)pthread_setspecific(scratch_key, s);
        ssc_tls_scratch = s;
        return s;
}
