/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Parts of the daemon built as loadable modules, so that a daemon that does
 * not use them never maps their libraries:
 * - sidespan-http.so, the OTLP/HTTP exporter (libcurl, with its TLS,
 *   Kerberos, LDAP and SSH libraries: about 3 MB of resident pages only
 *   mapped, 8 MB once set up);
 * - sidespan-grpc.so, the OTLP/gRPC exporter (grpc core, OpenSSL, C++ and
 *   abseil beneath it: about 10 MB);
 * - sidespan-prometheus.so, the scrape endpoint's server (libmicrohttpd,
 *   GnuTLS beneath it: about 2.5 MB).
 * A module is looked for in $SIDESPAN_MODULE_DIR when set, else next to the
 * executable (a build tree), else in SS_MODULE_DIR (LIBDIR/sidespan). It
 * resolves the daemon's own functions against the executable, which exports
 * them. Main or loop thread, at configuration.
 */

/* Any function; the caller casts it to the type the module defines. */
typedef void (*ss_module_fn)(void);

/*
 * The function sym of module name ("grpc": sidespan-grpc.so), loading the
 * module once. 0, or -ENOENT with a line logged that names the file and
 * what the loader said.
 */
int ss_module_fn_get(const char *name, const char *sym, ss_module_fn *ret);

/* At the daemon's exit, after its loop: call ss_module_exit() of each module loaded that
 * defines one (a library's global state to undo). Main thread. */
void ss_module_exit_all(void);
