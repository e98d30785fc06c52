/* SPDX-License-Identifier: MIT */
/*
 * The floor programs' one shared piece (floor-curl.c, floor-grpc.c): this process's resident
 * memory, printed the way bench-scale prints the daemon's, so that the two lines compare. A
 * header of static functions and nothing else: the floor programs link libc and the one
 * library they measure, and no code of the project's, whose libraries would be part of the
 * figure.
 */
#ifndef SIDESPAN_BENCH_FLOOR_H
#define SIDESPAN_BENCH_FLOOR_H

#include <stdio.h>
#include <string.h>
#include <time.h>

/* The number after key in /proc/self/status (kB), or -1. */
static long floor_status(const char *key)
{
        char line[256];
        long v = -1;
        FILE *f = fopen("/proc/self/status", "re");

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, strlen(key)) == 0) {
                        if (sscanf(line + strlen(key), "%ld", &v) != 1)
                                v = -1;
                        break;
                }
        fclose(f);
        return v;
}

/* The resident set after what, as "floor: LIBRARY WHAT: RSS N kB (anonymous N kB, ...)". */
static void floor_print(const char *library, const char *what)
{
        printf("floor: %s %s: RSS %ld kB (anonymous %ld kB, file-backed %ld kB), %ld threads\n",
               library, what, floor_status("VmRSS:"), floor_status("RssAnon:"),
               floor_status("RssFile:"), floor_status("Threads:"));
        fflush(stdout);
}

/* The daemon's figures are read 2 s after what they measure; these are too. */
static void floor_settle(void)
{
        struct timespec ts = {.tv_sec = 2};

        nanosleep(&ts, NULL);
}

#endif
