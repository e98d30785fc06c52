/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * systemd's notification protocol (sd_notify(3)) without linking libsystemd:
 * one datagram to $NOTIFY_SOCKET. Does nothing when it is unset. Any thread;
 * one non-blocking send.
 */

/* Send state, e.g. "READY=1" or "STOPPING=1". */
void ss_notify(const char *state);

/*
 * The decimal number systemd put in the environment variable name
 * (LISTEN_PID, LISTEN_FDS, WATCHDOG_USEC, ...): 1 and *ret when it is set,
 * 0 when unset, -EINVAL when it is not a plain number. Main thread.
 */
int ss_notify_env_number(const char *name, unsigned long long *ret);
