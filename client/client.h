/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A client, composed of its parts, each created and freed by its own module:
 * the settings (options.c), the counters, the queue (queue.c), the sender
 * (sender.c) and its place in the registry (registry.c). client.c builds and
 * tears down the whole; the span API reads the settings, counts, and hands
 * frames to the queue. Nothing here is exported.
 */

#include <stdbool.h>

#include "counters.h"
#include "options.h"
#include "queue.h"
#include "registry.h"
#include "sender.h"
#include "span.h"

struct sidespan_client {
        bool enabled;       /* false for a disabled client: every call is a no-op */
        ssc_config cfg;     /* read-only after open */
        ssc_span_tmpl span; /* from cfg, read-only after open */
        ssc_counters n;
        ssc_queue q;
        ssc_sender snd;         /* drains q; its thread runs while q says so */
        ssc_registry_entry reg; /* exit flush and fork */
};
