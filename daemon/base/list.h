/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Intrusive doubly-linked lists (systemd's LIST_* in miniature): the items
 * carry prev and next fields, the owner a head pointer. O(1) insert at the
 * head and removal. Not thread-safe.
 */

#include <stddef.h>

#define SS_LIST_PREPEND(head, item)                                                                \
        do {                                                                                       \
                (item)->prev = NULL;                                                               \
                (item)->next = (head);                                                             \
                if (head)                                                                          \
                        (head)->prev = (item);                                                     \
                (head) = (item);                                                                   \
        } while (0)

#define SS_LIST_REMOVE(head, item)                                                                 \
        do {                                                                                       \
                if ((item)->prev)                                                                  \
                        (item)->prev->next = (item)->next;                                         \
                else                                                                               \
                        (head) = (item)->next;                                                     \
                if ((item)->next)                                                                  \
                        (item)->next->prev = (item)->prev;                                         \
                (item)->prev = (item)->next = NULL;                                                \
        } while (0)
