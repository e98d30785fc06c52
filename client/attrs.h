/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Attributes: validating sidespan_attr values and packing them into msgpack
 * map bodies (key, value, key, value ... without the map header, which the
 * wire encoders write with the count). Pure functions on caller-owned
 * buffers: any thread, never block, never lock.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "sidespan.h"
#include "ss-buf.h"

/* 0 when a is a well-formed attribute (a non-empty key, a known type, no NULL where a value
 * is due), else -EINVAL. */
int ssc_attrs_check(const sidespan_attr *a);

/*
 * Append one attribute to the map body b, validating it first; content keys are skipped
 * (0 with *ret_added false) when drop_content. On failure b is unchanged: -EINVAL for a
 * malformed attribute, -ENOBUFS/-ENOMEM when b is full.
 */
int ssc_attrs_pack_one(ss_buf *b, const sidespan_attr *a, bool drop_content, bool *ret_added);

/*
 * Append n attributes to the map body b and give the number added in *ret_count. A
 * malformed one (-EINVAL) leaves b as it was. One that does not fit: with skipped non-NULL
 * it is left out and *skipped incremented (also when a later attribute then fails), with
 * skipped NULL b is restored and -ENOBUFS/-ENOMEM returned.
 */
int ssc_attrs_pack(ss_buf *b, const sidespan_attr *attrs, size_t n, bool drop_content,
                   uint64_t *skipped, uint32_t *ret_count);
