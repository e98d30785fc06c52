/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The TLS files of a network exporter: a CA bundle to verify the backend
 * with, and a client certificate and key for mutual TLS, as PEM paths. They
 * are checked when the exporter is created, so a path that cannot be read
 * is a start-up error naming it, not a failure at the first request. Main
 * or loop thread; reads local files.
 */

#include <stddef.h>

typedef struct ss_tls_files {
        const char *ca_file;   /* NULL: the system's trust store */
        const char *cert_file; /* with key_file, or both NULL */
        const char *key_file;
} ss_tls_files;

/* 0 when every file given can be read; else -errno, logged as "<exporter>: cannot read the
 * <what> <path>: <reason>". A certificate without its key (or the reverse) is -EINVAL. */
int ss_tls_check(const char *exporter, const ss_tls_files *f);

/* The files' contents, NUL-terminated; NULL for a file not given. */
typedef struct ss_tls_pems {
        char *ca, *cert, *key;
} ss_tls_pems;

/* Read f's files, in that order, into p (zeroed) with ss_tls_read_pem(): 0, or the first
 * failure, logged. ss_tls_pems_free() in either case. */
int ss_tls_read_files(const char *exporter, const ss_tls_files *f, ss_tls_pems *p);
void ss_tls_pems_free(ss_tls_pems *p);

/*
 * The whole of the PEM file at path (what names it in the log: "ca_file"),
 * NUL-terminated, into *ret (the caller frees); a NULL path leaves *ret NULL.
 * 0, or -errno logged naming the file: unreadable, not a regular file
 * (-ENOTSUP: a FIFO could block), over 1 MiB (-EFBIG), no PEM in it (-EINVAL).
 */
int ss_tls_read_pem(const char *exporter, const char *what, const char *path, char **ret);
