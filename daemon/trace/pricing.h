/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The pricing table the roll-ups turn tokens into USD with: per model, USD
 * per million input, output, cache-read and cache-write tokens. The table
 * ships as data/pricing.tsv (installed to <datadir>/sidespan/pricing.tsv and
 * compiled into the daemon as its default); [pricing] file replaces it.
 *
 * Model names match exactly, else by the longest listed prefix (so a dated
 * "gpt-4o-2024-08-06" finds "gpt-4o"), else without a provider
 * qualification ("anthropic/claude-sonnet-4-6" finds "claude-sonnet-4-6").
 * Loaded at start and not changed after, except that a lookup remembers its
 * answer: one thread at a time (the loop's). Never blocks.
 */

#include <stddef.h>

#define SS_PRICING_MAX_MODELS 4096u
#define SS_PRICING_MAX_LINE   1024u

typedef struct ss_price {
        double input; /* USD per million tokens */
        double output;
        double cache_read;  /* input tokens read from the provider's prompt cache */
        double cache_write; /* input tokens written to it */
} ss_price;

typedef struct ss_pricing ss_pricing;

/* Parse a table (the format is described at the top of data/pricing.tsv). 0, -ENOMEM, or
 * -EINVAL with the line number and what is wrong in err. */
int ss_pricing_parse(const char *text, size_t len, ss_pricing **ret, char *err, size_t err_size);

/* Read and parse a table file; as ss_pricing_parse(), or -errno naming the file in err. */
int ss_pricing_load(const char *path, ss_pricing **ret, char *err, size_t err_size);

/* The table compiled into the daemon (data/pricing.tsv at build time). */
int ss_pricing_builtin(ss_pricing **ret, char *err, size_t err_size);

void ss_pricing_free(ss_pricing *p); /* accepts NULL */

/* The price of model (provider may be NULL or empty), or NULL when unknown. */
const ss_price *ss_pricing_find(const ss_pricing *p, const char *provider, const char *model);

/* Models in the table. */
size_t ss_pricing_size(const ss_pricing *p);
