/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture-metrics.h"
#include "otlp/otlp.h"
#include "ss-buf.h"

/*
 * Write fixture-metrics.h's snapshot as ss_otlp_metrics_encode encodes it (an
 * ExportMetricsServiceRequest) to stdout, for otlp_metrics.py to hand to the
 * real Python receivers. A test helper, not a test: exit status 0 when every
 * byte was written.
 */
int main(void)
{
        ss_buf b;
        int r;

        ss_buf_init(&b, 1 << 20);
        r = ss_otlp_metrics_encode(&fxm_snapshot, &b);
        if (r < 0) {
                fprintf(stderr, "otlp-metrics-dump: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0) {
                perror("otlp-metrics-dump: stdout");
                return EXIT_FAILURE;
        }
        ss_buf_free(&b);
        return EXIT_SUCCESS;
}
