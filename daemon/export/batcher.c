/* SPDX-License-Identifier: MIT */
#include "export/batcher.h"

#include <errno.h>
#include <stdlib.h>

#include "base/log.h"

static void on_timer(uv_timer_t *t)
{
        ss_batcher_flush(t->data);
}

int ss_batcher_init(ss_batcher *b, uv_loop_t *loop, size_t max_batch, uint64_t delay_ms,
                    ss_batch_send_fn send, void *ctx)
{
        int r;

        *b = (ss_batcher){
            .max_batch = max_batch ? max_batch : 1, .delay_ms = delay_ms, .send = send, .ctx = ctx};
        b->spans = calloc(b->max_batch, sizeof(*b->spans));
        if (!b->spans)
                return -ENOMEM;
        r = uv_timer_init(loop, &b->timer);
        if (r < 0) {
                free(b->spans);
                b->spans = NULL;
                return r;
        }
        b->timer.data = b;
        return 0;
}

void ss_batcher_flush(ss_batcher *b)
{
        size_t n = b->n;

        /* uv_timer_stop() cannot fail on an initialised timer. */
        (void)uv_timer_stop(&b->timer);
        if (n == 0)
                return;
        b->n = 0;
        b->bytes = 0;
        b->send(b->ctx, b->spans, n);
        for (size_t i = 0; i < n; i++)
                ss_span_unref(b->spans[i]);
}

void ss_batcher_add(ss_batcher *b, ss_span *const *spans, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                /* A timer that cannot start (only when closing) leaves the batch to the size
                 * trigger and the next flush. */
                if (b->n == 0 && b->delay_ms &&
                    uv_timer_start(&b->timer, on_timer, b->delay_ms, 0) < 0)
                        ss_log_ratelimited(
                            SS_LOG_ERR, "batch timer did not start event=timer-failed what=batch");
                b->spans[b->n++] = ss_span_ref(spans[i]);
                b->bytes += ss_span_size(spans[i]);
                if (b->n == b->max_batch || !b->delay_ms ||
                    (b->max_bytes && b->bytes >= b->max_bytes))
                        ss_batcher_flush(b);
        }
}

size_t ss_batcher_close(ss_batcher *b, uv_close_cb cb)
{
        size_t n = b->n;

        for (size_t i = 0; i < n; i++)
                ss_span_unref(b->spans[i]);
        b->n = 0;
        b->bytes = 0;
        free(b->spans);
        b->spans = NULL;
        uv_close((uv_handle_t *)&b->timer, cb);
        return n;
}
