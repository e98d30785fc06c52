/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The calling thread's scratch: one frame being encoded and one map body being
 * packed, and the spans the thread ended, kept with their buffers so that a
 * span costs no malloc (span.c takes and gives them). Freed at thread exit
 * through a key destructor, so threads that come and go leak nothing. Every
 * function works on the calling thread's own; none blocks.
 */

#include "span.h"
#include "ss-buf.h"

#define SSC_SCRATCH_KEEP (256u * 1024) /* a scratch grown past this is released after use */

typedef struct ssc_scratch {
        ss_buf frame;
        ss_buf map;
        sidespan_span *free_spans;
        unsigned n_free;
} ssc_scratch;

/* The calling thread's scratch, NULL before its first use. initial-exec: reached without a
 * call to __tls_get_addr() (8 bytes of the static TLS glibc keeps for libraries loaded later,
 * dlopen() included). */
extern _Thread_local ssc_scratch *ssc_tls_scratch __attribute__((tls_model("initial-exec")));

/* The calling thread's first scratch, made and registered for its exit; NULL on
 * out-of-memory. */
ssc_scratch *ssc_scratch_new(void);

/* The calling thread's scratch as it is; NULL on out-of-memory. */
static inline ssc_scratch *ssc_scratch_this_thread(void)
{
        ssc_scratch *s = ssc_tls_scratch;

        return s ? s : ssc_scratch_new();
}

/* The calling thread's scratch, its buffers emptied; NULL on out-of-memory. */
static inline ssc_scratch *ssc_scratch_get(void)
{
        ssc_scratch *s = ssc_scratch_this_thread();

        if (!s)
                return NULL;
        /* One huge message should not pin megabytes per thread for ever. */
        if (s->frame.cap > SSC_SCRATCH_KEEP)
                ss_buf_free(&s->frame);
        if (s->map.cap > SSC_SCRATCH_KEEP)
                ss_buf_free(&s->map);
        ss_buf_reset(&s->frame);
        ss_buf_reset(&s->map);
        return s;
}
