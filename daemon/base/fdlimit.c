/* SPDX-License-Identifier: MIT */
#include "base/fdlimit.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "base/log.h"

int ss_fd_limit_raise(uint64_t want)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
                ss_log(SS_LOG_WARNING, "cannot read RLIMIT_NOFILE event=fd-limit error=\"%s\"",
                       strerror(errno));
                return 0;
        }
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        ss_log(SS_LOG_WARNING,
                               "cannot raise RLIMIT_NOFILE to %llu event=fd-limit "
                               "error=\"%s\"",
                               (unsigned long long)rl.rlim_max, strerror(errno));
                (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
                ss_log(SS_LOG_WARNING,
                       "%llu file descriptors allowed, %llu wanted for --max-connections: "
                       "connections past the limit are closed at accept (raise LimitNOFILE= "
                       "or ulimit -Hn, or lower --max-connections) event=fd-limit allowed=%llu "
                       "wanted=%llu",
                       (unsigned long long)rl.rlim_cur, (unsigned long long)want,
                       (unsigned long long)rl.rlim_cur, (unsigned long long)want);
                return -EMFILE;
        }
        return 0;
}

uint64_t ss_fd_limit(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
                return 0;
        return rl.rlim_cur;
}
