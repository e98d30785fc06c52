/* SPDX-License-Identifier: MIT */
#include "base/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ss-id.h"

static int max_level = SS_LOG_INFO;

void ss_log_set_level(int level)
{
        max_level = level;
}

int ss_log_get_level(void)
{
        return max_level;
}

static const char *const level_names[] = {[SS_LOG_ERR] = "err",
                                          [SS_LOG_WARNING] = "warning",
                                          [SS_LOG_NOTICE] = "notice",
                                          [SS_LOG_INFO] = "info",
                                          [SS_LOG_DEBUG] = "debug"};

int ss_log_parse_level(const char *s)
{
        for (int i = SS_LOG_ERR; i <= SS_LOG_DEBUG; i++)
                if (strcmp(s, level_names[i]) == 0)
                        return i;
        return -EINVAL;
}

const char *ss_log_level_name(int level)
{
        return level >= SS_LOG_ERR && level <= SS_LOG_DEBUG ? level_names[level] : "info";
}

static void vlog(int level, const char *suffix, const char *fmt, va_list ap)
{
        static const char *const tags[] = {[SS_LOG_ERR] = "error",
                                           [SS_LOG_WARNING] = "warning",
                                           [SS_LOG_NOTICE] = "notice",
                                           [SS_LOG_INFO] = "info",
                                           [SS_LOG_DEBUG] = "debug"};
        char line[1024];
        int n;

        n = vsnprintf(line, sizeof(line), fmt, ap);
        if (n < 0)
                return;
        static int journal = -1;

        /* Under systemd the "<N>" prefix gives journald the level. Read once: the
         * environment does not change under us, and getenv() per line is not free. */
        if (journal < 0)
                journal = getenv("JOURNAL_STREAM") != NULL;
        if (journal)
                fprintf(stderr, "<%d>%s%s\n", level, line, suffix);
        else
                fprintf(stderr, "sidespand: %s: %s%s\n", tags[level], line, suffix);
}

void ss_log(int level, const char *fmt, ...)
{
        va_list ap;

        if (level > max_level)
                return;
        va_start(ap, fmt);
        vlog(level, "", fmt, ap);
        va_end(ap);
}

void ss_log_rl(ss_ratelimit *rl, int level, const char *fmt, ...)
{
        uint64_t now = ss_now_ns();
        char suffix[64] = "";
        va_list ap;

        if (level > max_level)
                return;
        if (rl->last_ns && now - rl->last_ns < SS_LOG_INTERVAL_NS) {
                rl->suppressed++;
                return;
        }
        if (rl->suppressed)
                snprintf(suffix, sizeof(suffix), " suppressed=%llu",
                         (unsigned long long)rl->suppressed);
        rl->last_ns = now;
        rl->suppressed = 0;
        va_start(ap, fmt);
        vlog(level, suffix, fmt, ap);
        va_end(ap);
}

void ss_log_text(char *out, size_t out_size, const char *p, size_t n)
{
        size_t i;

        if (n > out_size - 1)
                n = out_size - 1;
        for (i = 0; i < n; i++)
                /* '"' would end a quoted value of the key=value tail early. */
                out[i] = p[i] == '"' ? '\'' : isprint((unsigned char)p[i]) ? p[i] : '.';
        out[i] = '\0';
}
