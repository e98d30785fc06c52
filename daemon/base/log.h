/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Daemon logging to stderr (journald picks it up under systemd), with
 * syslog-style levels and "<N>" prefixes when stderr is the journal.
 * Anything a peer can trigger goes through ss_log_ratelimited(), which
 * prints at most once per SS_LOG_INTERVAL_NS per call site and says how many
 * were suppressed. Loop thread, or any thread for plain ss_log().
 *
 * Every line is one event: a sentence for people, then a tail of key=value
 * pairs for grep (journalctl -u sidespand -o cat | grep event=conn-closed),
 * stable across releases: " event=<kebab-case id>" first, then lowercase
 * snake_case keys; numbers bare, identifiers bare, free text (errors,
 * reasons, paths) double-quoted. Peer text goes through ss_log_text() first,
 * which also turns '"' into '\''. A rate-limited line that stood for others
 * ends with " suppressed=N".
 */

#include <stddef.h>
#include <stdint.h>

enum {
        SS_LOG_ERR = 3,
        SS_LOG_WARNING = 4,
        SS_LOG_NOTICE = 5,
        SS_LOG_INFO = 6,
        SS_LOG_DEBUG = 7,
};

#define SS_LOG_INTERVAL_NS (10ull * 1000000000ull)

void ss_log_set_level(int level);
int ss_log_get_level(void);

/* Parse "err", "warning", "notice", "info", "debug": the level or -EINVAL. */
int ss_log_parse_level(const char *s);

/* The name ss_log_parse_level() reads for level. */
const char *ss_log_level_name(int level);

void ss_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copy n bytes of peer text (a response body, an error message) into out for a log line:
 * cut to out_size - 1 bytes, unprintable bytes as '.', '"' as '\'', NUL-terminated. */
void ss_log_text(char *out, size_t out_size, const char *p, size_t n);

typedef struct ss_ratelimit {
        uint64_t last_ns;
        uint64_t suppressed;
} ss_ratelimit;

void ss_log_rl(ss_ratelimit *rl, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ss_log_ratelimited(level, ...)                                                             \
        do {                                                                                       \
                static ss_ratelimit ss__rl;                                                        \
                ss_log_rl(&ss__rl, level, __VA_ARGS__);                                            \
        } while (0)
