/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven eight
 * bytes a round: what the spool puts on its records. Any thread.
 */

#include <stddef.h>
#include <stdint.h>

/* CRC32C of n bytes at p, continuing from crc (0 to start). */
uint32_t ss_crc32c(uint32_t crc, const void *p, size_t n);
