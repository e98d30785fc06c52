/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * User names of peer uids, for process.owner. The first lookup of a uid asks
 * NSS (getpwuid_r: /etc/passwd on a plain host, which answers at once; a
 * directory service could take longer, once per uid); the answer is cached
 * for the life of the daemon. Loop thread only.
 */

#include <sys/types.h>

#define SS_USER_CACHE_MAX 256u

/* The name of uid, or NULL when it has none. Valid until the daemon exits. */
const char *ss_user_name(uid_t uid);
