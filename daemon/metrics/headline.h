/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The headline `sidespan status` shows: per model, the model operations, their
 * input and output tokens and their cost, over the last minute and since
 * start, as STATS counters genai.model.<model>.<figure>[_1m] (cost in
 * micro-USD: counters are integers). The model is the response's, else the
 * request's, else "unknown"; past SS_HEADLINE_MAX_MODELS models the rest
 * count under "_other", and a name is cut at SS_HEADLINE_MODEL_MAX bytes, so
 * memory and the STATS answer stay bounded whatever clients send. Loop
 * thread.
 */

#include <stdint.h>

#include "base/counters.h"
#include "model/span.h"

#define SS_HEADLINE_MAX_MODELS 32u
#define SS_HEADLINE_MODEL_MAX  48u
#define SS_HEADLINE_WINDOW_S   60u

typedef struct ss_headline ss_headline;

ss_headline *ss_headline_new(void); /* NULL on out-of-memory */
void ss_headline_free(ss_headline *h);

/* A finished model operation span, at now_ms (a monotonic clock). */
void ss_headline_record(ss_headline *h, const ss_span *s, uint64_t now_ms);

/* The counters as of now_ms. */
void ss_headline_counters(const ss_headline *h, uint64_t now_ms, ss_counters *out);
