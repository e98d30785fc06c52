/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * systemd's notification protocol (sd_notify(3)) without linking libsystemd:
 * one datagram to $NOTIFY_SOCKET. Does nothing when it is unset. Any thread;
 * one non-blocking send.
 */

/* Send state, e.g. "READY=1" or "STOPPING=1". */
void ss_notify(const char *state);
