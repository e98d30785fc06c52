/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The process-wide list of open clients, for the two moments that concern
 * them all: exit() (flush what is buffered) and fork() (hand the child whole
 * buffers and working clients). The registry knows entries, not clients: an
 * owner embeds an ssc_registry_entry and says through its ops what to do.
 */

typedef struct ssc_registry_entry ssc_registry_entry;

/* What the registry calls on each entry, with the registry lock held: an op must not add
 * or remove entries. */
typedef struct ssc_registry_ops {
        /* At exit(), on the exiting thread; may block (a flush with a deadline). */
        void (*at_exit)(ssc_registry_entry *e);
        /* Before fork(), on the forking thread: take the locks the child must find free.
         * Entries are prepared in list order. */
        void (*fork_prepare)(ssc_registry_entry *e);
        /* After fork(), in the parent: release what fork_prepare took. */
        void (*fork_parent)(ssc_registry_entry *e);
        /* After fork(), in the child (one thread): reset what was the parent's, then
         * release what fork_prepare took. */
        void (*fork_child)(ssc_registry_entry *e);
} ssc_registry_ops;

/* Embedded in its owner, who keeps it alive while registered. Fields are the registry's. */
struct ssc_registry_entry {
        const ssc_registry_ops *ops;
        ssc_registry_entry *prev;
        ssc_registry_entry *next;
};

/* Register e with ops (static storage). The first call installs the atexit() and
 * pthread_atfork() handlers. Any thread; takes the registry lock, which an at_exit op in
 * progress holds for the length of its flush. */
void ssc_registry_add(ssc_registry_entry *e, const ssc_registry_ops *ops);

/* Unregister e; afterwards no op runs on it. Any thread; takes the registry lock. */
void ssc_registry_remove(ssc_registry_entry *e);
