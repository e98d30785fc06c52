/* SPDX-License-Identifier: MIT */
#include "trace/rollup.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/genai.h"

/*
 * Conventions the roll-ups follow:
 *
 * - Token counts. gen_ai.usage.input_tokens includes the tokens read from and
 *   written to the provider's prompt cache (OpenTelemetry GenAI: "SHOULD
 *   include all types of input tokens, including cached tokens"), so a chat's
 *   cost is
 *       max(input - cache_read - cache_write, 0) * price.input
 *     + cache_read * price.cache_read + cache_write * price.cache_write
 *     + output * price.output,                       all per million tokens.
 *   Reasoning tokens are part of output_tokens (OpenAI and Google bill them
 *   as output): summed for upsonic.usage.reasoning_tokens, never costed twice.
 *   They are read from gen_ai.usage.reasoning_tokens, else from
 *   gen_ai.usage.output_tokens_details.reasoning (the OpenAI usage shape).
 * - A count is a non-negative integer: msgpack positive or non-negative
 *   "negative" integers, or floats with an integral value. Anything else
 *   (strings, negatives, fractions) is ignored as if absent.
 * - A chat span whose client set gen_ai.usage.cost keeps it, and that value
 *   (when a finite number >= 0) is what the run's total adds up.
 * - The run's token sums are set once any chat span carried a token count;
 *   counts and times always. A client that writes its run sums as
 *   gen_ai.aggregated_usage.* (Upsonic's use_aggregated_usage_attribute_names)
 *   has set gen_ai.usage.* too: adding those would count the tokens twice in
 *   backends that sum usage over every span.
 */

#define MILLION 1e6

struct ss_rollup {
        uint64_t input, output, cache_read, cache_write, reasoning;
        uint64_t requests, tools, steps;
        uint64_t chat_ns, tool_ns;
        double cost;
        uint64_t priced;   /* chat spans whose cost is known */
        uint64_t unpriced; /* chat spans with tokens but no price */
        uint64_t first_start_ns;
        uint64_t ttft_ns;
        bool usage_seen; /* some chat span carried a token count */
        bool have_first; /* first_start_ns holds the earliest chat's start */
        bool have_ttft;
};

/* ---- reading spans ---------------------------------------------------------------------- */

static bool str_is(const msgpack_object_str *s, const char *want)
{
        return s->size == strlen(want) && memcmp(s->ptr, want, s->size) == 0;
}

static bool str_starts(const msgpack_object_str *s, const char *prefix)
{
        size_t n = strlen(prefix);

        return s->size >= n && memcmp(s->ptr, prefix, n) == 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static double seconds(uint64_t ns)
{
        return (double)ns / 1e9;
}

bool ss_rollup_is_run(const ss_span *s)
{
        return str_is(&s->name, "agent.run");
}

/* ---- setting attributes ----------------------------------------------------------------- */

/* Whether the client set key (or, for a gen_ai.usage.* run sum, its aggregated name). */
static bool client_set(const ss_span *s, const char *key, ss_rollup_stats *st)
{
        static const char usage[] = "gen_ai.usage.", aggregated[] = "gen_ai.aggregated_usage.";
        size_t len = strlen(key), rest = len - (sizeof(usage) - 1);
        char agg[96];
        bool set = ss_attrs_get_n(&s->attrs, key, len) != NULL;

        /* Joined by hand: this runs for every sum of every run, and snprintf() cost more
         * than the rest of the roll-up's attribute work. */
        if (!set && len >= sizeof(usage) - 1 && memcmp(key, usage, sizeof(usage) - 1) == 0 &&
            sizeof(aggregated) - 1 + rest <= sizeof(agg)) {
                memcpy(agg, aggregated, sizeof(aggregated) - 1);
                memcpy(agg + sizeof(aggregated) - 1, key + sizeof(usage) - 1, rest);
                set = ss_attrs_get_n(&s->attrs, agg, sizeof(aggregated) - 1 + rest) != NULL;
        }
        if (set)
                st->client_set_kept++;
        return set;
}

/* Daemon-derived values: no limit applies (ss_span_set_u64()). */
static int set_uint(ss_span *s, const char *key, uint64_t v, ss_rollup_stats *st)
{
        return client_set(s, key, st) ? 0 : ss_span_set_u64(s, key, v);
}

static int set_double(ss_span *s, const char *key, double v, ss_rollup_stats *st)
{
        return client_set(s, key, st) ? 0 : ss_span_set_double(s, key, v);
}

/* ---- chat spans ------------------------------------------------------------------------- */

typedef struct usage {
        uint64_t input, output, cache_read, cache_write, reasoning;
        bool seen;
} usage;

static void read_usage(const ss_span *s, usage *u)
{
        *u = (usage){0};
        u->seen |= ss_span_attr_count(s, "gen_ai.usage.input_tokens", &u->input);
        u->seen |= ss_span_attr_count(s, "gen_ai.usage.output_tokens", &u->output);
        u->seen |= ss_span_attr_count(s, "gen_ai.usage.cache_read.input_tokens", &u->cache_read);
        u->seen |=
            ss_span_attr_count(s, "gen_ai.usage.cache_creation.input_tokens", &u->cache_write);
        if (!ss_span_attr_count(s, "gen_ai.usage.reasoning_tokens", &u->reasoning))
                (void)ss_span_attr_count(s, "gen_ai.usage.output_tokens_details.reasoning",
                                         &u->reasoning);
}

static double chat_cost(const usage *u, const ss_price *pr)
{
        uint64_t cached = add_sat(u->cache_read, u->cache_write);
        uint64_t uncached = u->input > cached ? u->input - cached : 0;

        return ((double)uncached * pr->input + (double)u->cache_read * pr->cache_read +
                (double)u->cache_write * pr->cache_write + (double)u->output * pr->output) /
               MILLION;
}

static const ss_price *chat_price(const ss_span *s, const ss_pricing *p)
{
        const char *model = ss_span_attr_str(s, "gen_ai.response.model");
        const char *provider = ss_span_attr_str(s, "gen_ai.provider.name");
        const ss_price *pr = NULL;

        if (!provider)
                provider = ss_span_attr_str(s, "gen_ai.system");
        if (model)
                pr = ss_pricing_find(p, provider, model);
        /* A response model the table does not know (a fine-tune, a new date) may still be
         * priced by the model asked for. */
        model = ss_span_attr_str(s, "gen_ai.request.model");
        if (!pr && model)
                pr = ss_pricing_find(p, provider, model);
        return pr;
}

/* Price the chat span: its own gen_ai.usage.cost, added to the run's total. */
static int cost_chat(ss_rollup *r, ss_span *s, const usage *u, const ss_pricing *p,
                     ss_rollup_stats *st)
{
        bool tokens = u->input || u->output || u->cache_read || u->cache_write;
        const ss_price *pr;
        double cost;

        if (ss_attrs_get(&s->attrs, "gen_ai.usage.cost")) {
                st->client_set_kept++;
                if (ss_span_attr_amount(s, "gen_ai.usage.cost", &cost)) {
                        r->cost += cost;
                        r->priced++;
                } else if (tokens) {
                        r->unpriced++;
                        st->unknown_model++;
                }
                return 0;
        }
        pr = u->seen ? chat_price(s, p) : NULL;
        if (!pr) {
                if (tokens) {
                        r->unpriced++;
                        st->unknown_model++;
                }
                return 0;
        }
        cost = chat_cost(u, pr);
        r->cost += cost;
        r->priced++;
        st->chat_costed++;
        return ss_span_set_double(s, "gen_ai.usage.cost", cost);
}

static int add_chat(ss_rollup *r, ss_span *s, const ss_pricing *p, ss_rollup_stats *st)
{
        usage u;

        read_usage(s, &u);
        r->requests++;
        r->chat_ns = add_sat(r->chat_ns, ss_span_duration_ns(s));
        r->usage_seen |= u.seen;
        r->input = add_sat(r->input, u.input);
        r->output = add_sat(r->output, u.output);
        r->cache_read = add_sat(r->cache_read, u.cache_read);
        r->cache_write = add_sat(r->cache_write, u.cache_write);
        r->reasoning = add_sat(r->reasoning, u.reasoning);
        /* Spans finish in any order: the earliest-starting chat is the first call. */
        if (!r->have_first || s->start_ns < r->first_start_ns) {
                r->have_first = true;
                r->first_start_ns = s->start_ns;
                r->have_ttft = ss_span_first_token(s, &r->ttft_ns);
        }
        return cost_chat(r, s, &u, p, st);
}

/* ---- the roll-up ------------------------------------------------------------------------ */

ss_rollup *ss_rollup_new(void)
{
        return calloc(1, sizeof(ss_rollup));
}

void ss_rollup_free(ss_rollup *r)
{
        free(r);
}

/* ---- the persistent form ---------------------------------------------------------------- */

/* The counters in the order they are saved; the flags and the cost follow. */
/* clang-format off: it reflows this list differently at each pass */
#define ROLLUP_U64S(X)                                                                             \
        X(input)                                                                                   \
        X(output)                                                                                  \
        X(cache_read)                                                                              \
        X(cache_write)                                                                             \
        X(reasoning)                                                                               \
        X(requests)                                                                                \
        X(tools)                                                                                   \
        X(steps)                                                                                   \
        X(chat_ns)                                                                                 \
        X(tool_ns)                                                                                 \
        X(priced)                                                                                  \
        X(unpriced)                                                                                \
        X(first_start_ns)                                                                          \
        X(ttft_ns)
/* clang-format on */
#define ROLLUP_COUNT(f) +1
#define ROLLUP_FIELDS   (0 ROLLUP_U64S(ROLLUP_COUNT) + 4) /* + usage_seen, have_*, cost */

int ss_rollup_pack(const ss_rollup *r, msgpack_packer *pk)
{
        int e = msgpack_pack_array(pk, ROLLUP_FIELDS);

#define ROLLUP_PACK(f) e |= msgpack_pack_uint64(pk, r->f);
        ROLLUP_U64S(ROLLUP_PACK)
#undef ROLLUP_PACK
        e |= r->usage_seen ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        e |= r->have_first ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        e |= r->have_ttft ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        e |= msgpack_pack_double(pk, r->cost);
        return e ? -ENOMEM : 0;
}

int ss_rollup_unpack(const msgpack_object *o, ss_rollup **ret)
{
        const msgpack_object *f;
        unsigned i = 0;
        ss_rollup *r;

        if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != ROLLUP_FIELDS)
                return -EBADMSG;
        f = o->via.array.ptr;
        for (; i < ROLLUP_FIELDS - 4; i++)
                if (f[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                        return -EBADMSG;
        for (; i < ROLLUP_FIELDS - 1; i++)
                if (f[i].type != MSGPACK_OBJECT_BOOLEAN)
                        return -EBADMSG;
        if (f[i].type != MSGPACK_OBJECT_FLOAT64)
                return -EBADMSG;
        r = ss_rollup_new();
        if (!r)
                return -ENOMEM;
        i = 0;
#define ROLLUP_UNPACK(f_) r->f_ = f[i++].via.u64;
        ROLLUP_U64S(ROLLUP_UNPACK)
#undef ROLLUP_UNPACK
        r->usage_seen = f[i++].via.boolean;
        r->have_first = f[i++].via.boolean;
        r->have_ttft = f[i++].via.boolean;
        r->cost = f[i].via.f64;
        *ret = r;
        return 0;
}

int ss_rollup_child(ss_rollup *r, ss_span *child, const ss_pricing *p, ss_rollup_stats *st)
{
        if (ss_span_is_chat(child))
                return add_chat(r, child, p, st);
        if (str_is(&child->name, "tool.execute")) {
                r->tools++;
                r->tool_ns = add_sat(r->tool_ns, ss_span_duration_ns(child));
        } else if (str_starts(&child->name, "pipeline.step.")) {
                r->steps++;
        }
        return 0;
}

static int apply_usage(const ss_rollup *r, ss_span *run, ss_rollup_stats *st)
{
        int e = 0;

        if (!r->usage_seen)
                return 0;
        e |= set_uint(run, "gen_ai.usage.input_tokens", r->input, st);
        e |= set_uint(run, "gen_ai.usage.output_tokens", r->output, st);
        e |= set_uint(run, "upsonic.usage.total_tokens", add_sat(r->input, r->output), st);
        e |= set_uint(run, "upsonic.usage.cache_read_tokens", r->cache_read, st);
        e |= set_uint(run, "upsonic.usage.cache_write_tokens", r->cache_write, st);
        e |= set_uint(run, "upsonic.usage.reasoning_tokens", r->reasoning, st);
        return e ? -ENOMEM : 0;
}

static int apply_times(const ss_rollup *r, ss_span *run, ss_rollup_stats *st)
{
        uint64_t busy = add_sat(r->chat_ns, r->tool_ns), run_ns = ss_span_duration_ns(run);
        int e = 0;

        e |= set_double(run, "upsonic.model_execution_time", seconds(r->chat_ns), st);
        e |= set_double(run, "upsonic.tool_execution_time", seconds(r->tool_ns), st);
        /* Chat and tool calls may overlap (parallel tools): never below zero. */
        if (run->ended)
                e |= set_double(run, "upsonic.framework_overhead_time",
                                seconds(run_ns > busy ? run_ns - busy : 0), st);
        if (r->have_ttft)
                e |= set_double(run, "upsonic.time_to_first_token", seconds(r->ttft_ns), st);
        return e ? -ENOMEM : 0;
}

int ss_rollup_apply(const ss_rollup *r, ss_span *run, ss_rollup_stats *st)
{
        int e = 0;

        st->runs++;
        e |= set_uint(run, "upsonic.tool_call_count", r->tools, st);
        e |= set_uint(run, "upsonic.usage.requests", r->requests, st);
        e |= set_uint(run, "upsonic.pipeline.executed_steps", r->steps, st);
        e |= apply_usage(r, run, st);
        e |= apply_times(r, run, st);
        /* A partial sum would pass for the run's cost: only a complete one is set. */
        if (r->priced && !r->unpriced)
                e |= set_double(run, "upsonic.total_cost", r->cost, st);
        return e ? -ENOMEM : 0;
}

void ss_rollup_counters(const void *stats, ss_counters *out)
{
        const ss_rollup_stats *st = stats;

        ss_counters_add(out, "rollup.", "runs", st->runs);
        ss_counters_add(out, "rollup.", "chat_costed", st->chat_costed);
        ss_counters_add(out, "rollup.", "unknown_model", st->unknown_model);
        ss_counters_add(out, "rollup.", "client_set_kept", st->client_set_kept);
}
