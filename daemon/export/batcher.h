/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A batcher collects spans for one exporter and hands them on when max_batch
 * spans or max_bytes of them are waiting or delay_ms has passed since the
 * first of them, or at once on ss_batcher_flush(). It holds one reference per span and drops them
 * after send() returns: send() takes its own references if it keeps spans, and must not
 * call back into its batcher.
 * Embedded in its exporter (STYLE.md rule 6); loop thread only.
 */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "model/span.h"

typedef void (*ss_batch_send_fn)(void *ctx, ss_span *const *spans, size_t n);

typedef struct ss_batcher {
        uv_timer_t timer;
        ss_span **spans;
        size_t n;
        size_t max_batch;
        uint64_t max_bytes; /* ss_span_size() of a batch: it goes when it holds this; 0 none */
        uint64_t bytes;
        uint64_t delay_ms;
        ss_batch_send_fn send;
        void *ctx;
} ss_batcher;

/* 0, -ENOMEM or a libuv error. The timer is a handle of loop: close with ss_batcher_close(). */
int ss_batcher_init(ss_batcher *b, uv_loop_t *loop, size_t max_batch, uint64_t delay_ms,
                    ss_batch_send_fn send, void *ctx);

/* Add spans (refs taken), sending full batches on the way. */
void ss_batcher_add(ss_batcher *b, ss_span *const *spans, size_t n);

/* Send what is waiting now. */
void ss_batcher_flush(ss_batcher *b);

/* Drop what is waiting (returns how many spans) and close the timer; cb runs from the loop. */
size_t ss_batcher_close(ss_batcher *b, uv_close_cb cb);
