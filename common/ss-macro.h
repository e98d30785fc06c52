/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* The struct of type that embeds *ptr as member (STYLE.md rule 6: handles live in their owner). */
#define ss_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define SS_ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
