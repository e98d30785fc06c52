/* SPDX-License-Identifier: MIT */
/*
 * The registry of open clients: one atexit() handler and one set of
 * pthread_atfork() handlers for the whole library, installed once, walking
 * the entries under one lock. It calls entries only through their ops.
 */
#include <pthread.h>
#include <stdlib.h>

#include "registry.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static ssc_registry_entry *registry;

static void at_exit(void)
{
        pthread_mutex_lock(&registry_lock);
        for (ssc_registry_entry *e = registry; e; e = e->next)
                e->ops->at_exit(e);
        pthread_mutex_unlock(&registry_lock);
}

/* The registry lock is held from prepare to parent/child, so that the list cannot change
 * across fork(). */
static void fork_prepare(void)
{
        pthread_mutex_lock(&registry_lock);
        for (ssc_registry_entry *e = registry; e; e = e->next)
                e->ops->fork_prepare(e);
}

static void fork_parent(void)
{
        for (ssc_registry_entry *e = registry; e; e = e->next)
                e->ops->fork_parent(e);
        pthread_mutex_unlock(&registry_lock);
}

static void fork_child(void)
{
        for (ssc_registry_entry *e = registry; e; e = e->next)
                e->ops->fork_child(e);
        pthread_mutex_unlock(&registry_lock);
}

static void registry_init(void)
{
        (void)pthread_atfork(fork_prepare, fork_parent, fork_child);
        (void)atexit(at_exit);
}

void ssc_registry_add(ssc_registry_entry *e, const ssc_registry_ops *ops)
{
        pthread_once(&registry_once, registry_init);
        pthread_mutex_lock(&registry_lock);
        e->ops = ops;
        e->prev = NULL;
        e->next = registry;
        if (registry)
                registry->prev = e;
        registry = e;
        pthread_mutex_unlock(&registry_lock);
}

void ssc_registry_remove(ssc_registry_entry *e)
{
        pthread_mutex_lock(&registry_lock);
        if (e->prev)
                e->prev->next = e->next;
        else
                registry = e->next;
        if (e->next)
                e->next->prev = e->prev;
        pthread_mutex_unlock(&registry_lock);
}
