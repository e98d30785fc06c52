/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What a benchmark reads of a running sidespand: its own counters (a STATS
 * request over its socket, on a connection per query: one that never says
 * HELLO is closed after --hello-timeout-ms) and what /proc says of its
 * process. Blocking calls, for benchmarks only.
 */

#include <stdint.h>

/* The counters the benchmarks read; the exporter ones summed over exporters. */
typedef struct bench_dstats {
        uint64_t frames;
        uint64_t spans_started;
        uint64_t spans_finished;
        uint64_t span_errors;
        uint64_t spans_open;
        uint64_t traces_open;
        uint64_t connections_active;
        uint64_t open_span_limit; /* starts refused by any open-span limit */
        uint64_t exported;
        uint64_t export_dropped;
} bench_dstats;

/* The daemon's counters now: 0 or a negative errno. */
int bench_daemon_stats(const char *socket, bench_dstats *ret);

/* CPU seconds (user + system) process pid has used so far, or -1 when unknown. */
double bench_cpu_seconds(long pid);

/* The number after key in /proc/PID/file (e.g. "status" and "VmRSS:", "VmHWM:", in kB, or
 * "Threads:"; "smaps_rollup" and "Pss:"), or -1. */
long bench_proc_field(long pid, const char *file, const char *key);

uint64_t bench_now_ns(void);

/* An exporter showing no progress this long has given up (its spans held or lost). */
#define BENCH_SETTLE_NS (3ull * 1000000000ull)

/*
 * Poll the daemon's counters every 10 ms until its exporters accounted for every span
 * finished since base (exported or dropped), made no progress for BENCH_SETTLE_NS, or
 * timeout_s passed. *ret: the last counters; *ret_progress_ns: when the exporters last made
 * progress (bench_now_ns()). 0 or a negative errno.
 */
int bench_wait_export(const char *socket, const bench_dstats *base, long timeout_s,
                      bench_dstats *ret, uint64_t *ret_progress_ns);
