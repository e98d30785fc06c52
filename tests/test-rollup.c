/* SPDX-License-Identifier: MIT */
#include "ss-check.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "trace/pricing.h"
#include "trace/rollup.h"

/* data/pricing.tsv as compiled into the daemon. */
extern const char ss_pricing_tsv[];
extern const size_t ss_pricing_tsv_len;

#define TOL 1e-12

static ss_pricing *parse_ok(const char *text)
{
        char err[256] = "";
        ss_pricing *p = NULL;

        ck_assert_msg(ss_pricing_parse(text, strlen(text), &p, err, sizeof(err)) == 0, "%s", err);
        ck_assert_ptr_nonnull(p);
        return p;
}

/* text is refused with -EINVAL and an error containing want; *ret is left alone. */
static void parse_bad(const char *text, size_t len, const char *want)
{
        ss_pricing *sentinel = (ss_pricing *)&sentinel, *p = sentinel;
        char err[256] = "";

        ck_assert_int_eq(ss_pricing_parse(text, len, &p, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_eq(p, sentinel);
        fx_assert_has(err, want);
}

/* ---- parsing ---------------------------------------------------------------------------- */

START_TEST(test_parse_errors)
{
        static const struct {
                const char *text;
                const char *want;
        } cases[] = {
            {"openai\tgpt-4o\t2.5\t10\n", "line 1: 4 fields, want 6"},
            {"openai\tgpt-4o\t2.5\t10\t-\t-\textra\n", "line 1: more than 6 fields"},
            {"# c\n\nopenai\tgpt-4o\tabc\t10\t-\t-\n",
             "line 3: input price 'abc' is not a decimal"},
            {"openai\tgpt-4o\t-1\t10\t-\t-\n", "line 1: input price '-1' is negative"},
            {"openai\tgpt-4o\t1\t-0.5\t-\t-\n", "line 1: output price '-0.5' is negative"},
            {"openai\tgpt-4o\t1\tnan\t-\t-\n", "line 1: output price 'nan' is not a decimal"},
            {"openai\tgpt-4o\t1\tinf\t-\t-\n", "line 1: output price 'inf' is not a decimal"},
            {"openai\tgpt-4o\t1\t2\t1e3\t-\n", "line 1: cache_read price '1e3' is not a decimal"},
            {"openai\tgpt-4o\t1\t2\t-\t0x10\n", "line 1: cache_write price '0x10' is not a"},
            {"openai\tgpt-4o\t1\t2\t.5\t-\n", "line 1: cache_read price '.5' is not a decimal"},
            {"openai\tgpt-4o\t1.\t2\t-\t-\n", "line 1: input price '1.' is not a decimal"},
            {"openai\tgpt-4o\t-\t2\t-\t-\n", "line 1: input price is required"},
            {"openai\tgpt-4o\t1\t-\t-\t-\n", "line 1: output price is required"},
            {"openai\tgpt-4o\t1\t2\t-\t-\nOpenAI\tGPT-4O\t1\t2\t-\t-\n",
             "line 2: openai model 'GPT-4O' already listed on line 1"},
            {"xai\tgrok-4\t1\t2\t-\t-\nx_ai\tgrok-4\t1\t2\t-\t-\n", "line 2: x_ai model"},
            {"openai\tgpt\x01x\t1\t2\t-\t-\n", "line 1: control character"},
            {"", "no models in the table"},
            {"# only a comment\n\n", "no models in the table"},
        };
        char big[2048];
        char *many;
        size_t off = 0;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                parse_bad(cases[i].text, strlen(cases[i].text), cases[i].want);

        /* Not finite: a decimal too large for a double. */
        off = (size_t)snprintf(big, sizeof(big), "openai\tgpt-4o\t");
        memset(big + off, '9', 400);
        off += 400;
        off += (size_t)snprintf(big + off, sizeof(big) - off, "\t1\t-\t-\n");
        parse_bad(big, off, "line 1: input price '9999");
        parse_bad(big, off, "is not finite");

        /* A NUL inside a line. */
        static const char nul[] = "openai\tgpt-4o\t1\t2\t-\t-\nopenai\tx\0y\t1\t2\t-\t-\n";
        parse_bad(nul, sizeof(nul) - 1, "line 2: NUL byte");

        /* SS_PRICING_MAX_LINE is 1024: a line of 1025 bytes is refused, one of 1024 is not. */
        memset(big, ' ', sizeof(big));
        memcpy(big, "# c\n", 4);
        big[4 + 1025] = '\n';
        parse_bad(big, 4 + 1026, "line 2: longer than 1024 bytes");
        memcpy(big + 4, "openai\tm\t1\t2\t-\t-", 16);
        big[4 + 1024] = '\n';
        big[4 + 1025] = '\0';
        ss_pricing_free(parse_ok(big));

        /* SS_PRICING_MAX_MODELS is 4096. */
        many = malloc(4097 * 32);
        ck_assert_ptr_nonnull(many);
        off = 0;
        for (unsigned i = 0; i < 4097; i++)
                off += (size_t)sprintf(many + off, "openai\tm%u\t1\t2\t-\t-\n", i);
        parse_bad(many, off, "line 4097: more than 4096 models");
        ss_pricing *p = NULL;
        char err[128];
        off -= strlen("openai\tm4096\t1\t2\t-\t-\n");
        ck_assert_int_eq(ss_pricing_parse(many, off, &p, err, sizeof(err)), 0);
        ck_assert_uint_eq(ss_pricing_size(p), 4096);
        ss_pricing_free(p);
        free(many);
}
END_TEST

START_TEST(test_parse_values)
{
        /* CRLF, spaces as separators, '-' cache prices, an alias provider. */
        ss_pricing *p = parse_ok("# provider model input output cache_read cache_write\r\n"
                                 "openai   gpt-4o   2.50  10   1.25  -\r\n"
                                 "\r\n"
                                 "  # an indented comment\n"
                                 "google\tgemini-2.0-flash\t0.1\t0.4\t-\t-\n"
                                 "anthropic\tclaude-sonnet-4-5\t3\t15\t0.30\t3.75");
        const ss_price *pr;

        ck_assert_uint_eq(ss_pricing_size(p), 3);
        pr = ss_pricing_find(p, NULL, "gpt-4o");
        ck_assert_ptr_nonnull(pr);
        ck_assert_double_eq_tol(pr->input, 2.50, TOL);
        ck_assert_double_eq_tol(pr->output, 10.0, TOL);
        ck_assert_double_eq_tol(pr->cache_read, 1.25, TOL);
        ck_assert_double_eq_tol(pr->cache_write, 2.50, TOL); /* '-': the input price */
        pr = ss_pricing_find(p, "gcp.gemini", "gemini-2.0-flash");
        ck_assert_ptr_nonnull(pr);
        ck_assert_double_eq_tol(pr->cache_read, 0.1, TOL);
        ck_assert_double_eq_tol(pr->cache_write, 0.1, TOL);
        pr = ss_pricing_find(p, NULL, "claude-sonnet-4-5");
        ck_assert_ptr_nonnull(pr);
        ck_assert_double_eq_tol(pr->cache_read, 0.30, TOL);
        ck_assert_double_eq_tol(pr->cache_write, 3.75, TOL);
        ss_pricing_free(p);
        ss_pricing_free(NULL);
        ck_assert_uint_eq(ss_pricing_size(NULL), 0);
}
END_TEST

START_TEST(test_load)
{
        char dir[64], path[128], err[512];
        ss_pricing *p = NULL;
        FILE *f;

        fx_tmpdir(dir, sizeof(dir), "pricing");
        snprintf(path, sizeof(path), "%s/pricing.tsv", dir);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs("openai\tgpt-4o\t2.5\t10\t1.25\t-\n", f);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(ss_pricing_load(path, &p, err, sizeof(err)), 0);
        ck_assert_uint_eq(ss_pricing_size(p), 1);
        ss_pricing_free(p);

        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs("openai\tgpt-4o\t2.5\t10\t1.25\t-\nopenai\tgpt-4o-mini\tcheap\t1\t-\t-\n", f);
        ck_assert_int_eq(fclose(f), 0);
        p = NULL;
        ck_assert_int_eq(ss_pricing_load(path, &p, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_null(p);
        fx_assert_has(err, path);
        fx_assert_has(err, ": line 2: input price 'cheap' is not a decimal number");

        ck_assert_int_eq(ss_pricing_load(dir, &p, err, sizeof(err)), -EINVAL);
        fx_assert_has(err, "not a regular file");
        unlink(path);
        ck_assert_int_eq(ss_pricing_load(path, &p, err, sizeof(err)), -ENOENT);
        fx_assert_has(err, path);
        fx_assert_has(err, strerror(ENOENT));
        fx_tmpdir_remove(dir);
}
END_TEST

/* ---- the shipped table ------------------------------------------------------------------ */

START_TEST(test_builtin)
{
        static const char *const providers[] = {"openai",     "anthropic", "gcp.gemini",
                                                "mistral_ai", "deepseek",  "x_ai"};
        static const char *const models[] = {"gpt-4o",
                                             "gpt-4o-mini",
                                             "gpt-4.1",
                                             "gpt-4.1-mini",
                                             "gpt-4.1-nano",
                                             "o1",
                                             "o3",
                                             "o3-mini",
                                             "o4-mini",
                                             "gpt-5",
                                             "gpt-5-mini",
                                             "gpt-5-nano",
                                             "claude-opus-4-1",
                                             "claude-opus-4",
                                             "claude-sonnet-4-5",
                                             "claude-sonnet-4",
                                             "claude-3-7-sonnet",
                                             "claude-3-5-haiku",
                                             "claude-haiku-4-5",
                                             "claude-sonnet-4-6",
                                             "claude-opus-4-5",
                                             "gemini-2.5-pro",
                                             "gemini-2.5-flash",
                                             "gemini-2.5-flash-lite",
                                             "gemini-2.0-flash",
                                             "mistral-large",
                                             "mistral-medium",
                                             "mistral-small",
                                             "codestral",
                                             "deepseek-chat",
                                             "deepseek-reasoner",
                                             "grok-4",
                                             "grok-3",
                                             "grok-3-mini"};
        char err[256] = "", want[32];
        ss_pricing *p = NULL;
        const ss_price *pr;

        ck_assert_msg(ss_pricing_builtin(&p, err, sizeof(err)) == 0, "%s", err);
        ck_assert_uint_ge(ss_pricing_size(p), 30);
        for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++) {
                snprintf(want, sizeof(want), "\n%s\t", providers[i]);
                ck_assert_msg(strstr(ss_pricing_tsv, want) && ss_pricing_tsv_len > 0,
                              "no model of %s", providers[i]);
        }
        for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
                ck_assert_msg(ss_pricing_find(p, NULL, models[i]), "%s not priced", models[i]);
        /* A few prices, as listed. */
        pr = ss_pricing_find(p, "openai", "gpt-4o-mini-2024-07-18");
        ck_assert_double_eq_tol(pr->input, 0.15, TOL);
        ck_assert_double_eq_tol(pr->output, 0.60, TOL);
        pr = ss_pricing_find(p, "anthropic", "claude-opus-4-1-20250805");
        ck_assert_double_eq_tol(pr->cache_write, 18.75, TOL);
        pr = ss_pricing_find(p, "deepseek", "deepseek-chat");
        ck_assert_double_eq_tol(pr->cache_write, pr->input, TOL); /* '-' */
        ss_pricing_free(p);
}
END_TEST

/* ---- matching --------------------------------------------------------------------------- */

/* Longer names listed before and after their prefixes: the order must not matter. */
static const char match_table[] = "openai\tgpt-4o-mini\t0.15\t0.6\t-\t-\n"
                                  "openai\tgpt-4o\t2.5\t10\t-\t-\n"
                                  "openai\tgpt-4\t30\t60\t-\t-\n"
                                  "openai\tgpt-4.1\t2\t8\t-\t-\n"
                                  "anthropic\tclaude-sonnet-4\t3\t15\t-\t-\n"
                                  "anthropic\tclaude-sonnet-4-6\t3.5\t16\t-\t-\n"
                                  "gcp.gemini\tgemini-2.5-pro\t1.25\t10\t-\t-\n"
                                  "openai\tshared\t1\t1\t-\t-\n"
                                  "x_ai\tshared\t2\t2\t-\t-\n"
                                  "mistral_ai\tshared\t3\t3\t-\t-\n"
                                  "meta\tLlama-4\t0.5\t0.5\t-\t-\n";

static double input_of(const ss_pricing *p, const char *provider, const char *model)
{
        const ss_price *pr = ss_pricing_find(p, provider, model);

        ck_assert_msg(pr != NULL, "%s/%s not found", provider ? provider : "-", model);
        return pr->input;
}

/* Every lookup of test_find; run twice, the second time from what lookups remember. */
static void check_find(const ss_pricing *p)
{
        /* Exact, any case. */
        ck_assert_double_eq_tol(input_of(p, NULL, "gpt-4o"), 2.5, TOL);
        ck_assert_double_eq_tol(input_of(p, "", "GPT-4o-Mini"), 0.15, TOL);
        ck_assert_double_eq_tol(input_of(p, NULL, "llama-4-scout"), 0.5, TOL);
        ck_assert_double_eq_tol(input_of(p, NULL, "LLAMA-4"), 0.5, TOL);
        /* Dated suffixes: the longest listed prefix ending at a boundary. */
        ck_assert_double_eq_tol(input_of(p, NULL, "gpt-4o-2024-08-06"), 2.5, TOL);
        ck_assert_double_eq_tol(input_of(p, NULL, "gpt-4o-mini-2024-07-18"), 0.15, TOL);
        ck_assert_double_eq_tol(input_of(p, NULL, "gpt-4.1-2025-04-14"), 2.0, TOL);
        ck_assert_double_eq_tol(input_of(p, NULL, "claude-sonnet-4-20250514"), 3.0, TOL);
        ck_assert_double_eq_tol(input_of(p, NULL, "claude-sonnet-4-6-20260217"), 3.5, TOL);
        ck_assert_double_eq_tol(input_of(p, NULL, "claude-sonnet-4@20250514"), 3.0, TOL);
        ck_assert_double_eq_tol(input_of(p, NULL, "claude-sonnet-4-6:0"), 3.5, TOL);
        ck_assert_double_eq_tol(input_of(p, NULL, "gpt-4.5-preview"), 30.0, TOL); /* at '.' */
        /* Not at a boundary: no match. */
        ck_assert_ptr_null(ss_pricing_find(p, NULL, "gpt-4ox"));
        ck_assert_ptr_null(ss_pricing_find(p, NULL, "gpt"));
        /* A provider qualification, which also names the provider. */
        ck_assert_double_eq_tol(input_of(p, NULL, "anthropic/claude-sonnet-4-6"), 3.5, TOL);
        ck_assert_double_eq_tol(input_of(p, NULL, "openai/gpt-4o"), 2.5, TOL);
        ck_assert_double_eq_tol(input_of(p, NULL, "models/gemini-2.5-pro"), 1.25, TOL);
        ck_assert_double_eq_tol(input_of(p, NULL, "openrouter/openai/gpt-4o-mini"), 0.15, TOL);
        ck_assert_double_eq_tol(input_of(p, NULL, "xai/shared"), 2.0, TOL);
        /* Several providers list a name: the asked one, under any of its names, wins. */
        ck_assert_double_eq_tol(input_of(p, "openai", "shared"), 1.0, TOL);
        ck_assert_double_eq_tol(input_of(p, "xai", "shared"), 2.0, TOL);
        ck_assert_double_eq_tol(input_of(p, "x_ai", "shared-2025"), 2.0, TOL);
        ck_assert_double_eq_tol(input_of(p, "Mistral", "shared"), 3.0, TOL);
        ck_assert_double_eq_tol(input_of(p, "mistral_ai", "SHARED"), 3.0, TOL);
        ck_assert_double_eq_tol(input_of(p, "groq", "shared"), 1.0, TOL); /* else the first */
        /* The provider never keeps a model from matching. */
        ck_assert_double_eq_tol(input_of(p, "x_ai", "gpt-4o"), 2.5, TOL);
        /* Unknown. */
        ck_assert_ptr_null(ss_pricing_find(p, "meta", "llama-3-70b"));
        ck_assert_ptr_null(ss_pricing_find(p, NULL, "anthropic/unknown"));
        ck_assert_ptr_null(ss_pricing_find(p, NULL, ""));
        ck_assert_ptr_null(ss_pricing_find(p, NULL, "/"));
        ck_assert_ptr_null(ss_pricing_find(p, NULL, NULL));
        ck_assert_ptr_null(ss_pricing_find(NULL, NULL, "gpt-4o"));
}

START_TEST(test_find)
{
        ss_pricing *p = parse_ok(match_table);

        check_find(p);
        check_find(p);
        ss_pricing_free(p);
}
END_TEST

/* Far more pairs than lookups remember (64): each answer stays right however they collide,
 * the unknown ones included, and so does a pair too long to be remembered. */
START_TEST(test_find_remembered)
{
        enum { N = 300 };
        char *table = malloc(N * 64), name[300];
        size_t len = 0;
        ss_pricing *p;

        for (int i = 0; i < N; i++)
                len += (size_t)sprintf(table + len, "openai\tm%d\t%d\t1\t-\t-\n", i, i + 1);
        p = parse_ok(table);
        for (int round = 0; round < 4; round++) {
                for (int k = 0; k < N; k++) {
                        int i = round % 2 ? N - 1 - k : (k * 7) % N; /* 7 and 300: coprime */
                        const char *prov = round < 2 ? NULL : "openai";

                        snprintf(name, sizeof(name), "m%d-2025", i);
                        ck_assert_double_eq_tol(input_of(p, prov, name), i + 1, TOL);
                        snprintf(name, sizeof(name), "u%d", i);
                        ck_assert_ptr_null(ss_pricing_find(p, prov, name));
                }
                memset(name, 'x', sizeof(name) - 1);
                name[sizeof(name) - 1] = '\0';
                memcpy(name, "m5-", 3);
                ck_assert_double_eq_tol(input_of(p, NULL, name), 6, TOL);
        }
        /* The same pair as provider and model split elsewhere is another pair. */
        ck_assert_double_eq_tol(input_of(p, "", "m12"), 13, TOL);
        ck_assert_ptr_null(ss_pricing_find(p, "m", "12"));
        ss_pricing_free(p);
        free(table);
}
END_TEST

/* ---- roll-ups --------------------------------------------------------------------------- */

/* Times: the run starts at T0 and lasts 10 s; MS(x) is x milliseconds after T0. */
#define T0    1700000000000000000ull
#define MS(x) (T0 + (uint64_t)(x)*1000000ull)

static const char rollup_table[] = "openai\tgpt-4o\t2.50\t10.00\t1.25\t-\n"
                                   "anthropic\tclaude-sonnet-4-5\t3.00\t15.00\t0.30\t3.75\n";

typedef struct run_fixture {
        ss_resource *res;
        ss_pricing *pricing;
        ss_rollup *r;
        ss_rollup_stats st;
} run_fixture;

static void fixture_init(run_fixture *f)
{
        memset(f, 0, sizeof(*f));
        f->res = mp_resource("agent", NULL, NULL);
        f->pricing = parse_ok(rollup_table);
        f->r = ss_rollup_new();
        ck_assert_ptr_nonnull(f->r);
}

static void fixture_free(run_fixture *f)
{
        ss_rollup_free(f->r);
        ss_pricing_free(f->pricing);
        ss_resource_unref(f->res);
}

/* A finished span [start_ms, end_ms] after T0 with attributes kv and events ev. */
static ss_span *mk(run_fixture *f, const char *name, uint32_t start_ms, uint32_t end_ms,
                   msgpack_object_kv *kv, uint32_t n_kv, const msgpack_object_array *ev)
{
        msgpack_object_map attrs = {.size = n_kv, .ptr = kv};

        return fx_span(&(fx_span_spec){.resource = f->res,
                                       .name = name,
                                       .seed = (uint8_t)(start_ms / 10 + 1),
                                       .kind = SS_KIND_INTERNAL,
                                       .start_ns = MS(start_ms),
                                       .end_ns = MS(end_ms),
                                       .status_code = SS_STATUS_OK,
                                       .attrs = &attrs,
                                       .events = ev,
                                       .whole = true});
}

/* Feed a span to the roll-up and drop it. */
static void child(run_fixture *f, ss_span *s)
{
        ck_assert_int_eq(ss_rollup_child(f->r, s, f->pricing, &f->st), 0);
        ss_span_unref(s);
}

static void assert_uint_attr(const ss_span *s, const char *key, uint64_t want)
{
        const msgpack_object *o = ss_attrs_get(&s->attrs, key);

        ck_assert_msg(o != NULL, "%s missing", key);
        ck_assert_msg(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER, "%s: type %d", key, o->type);
        ck_assert_msg(o->via.u64 == want, "%s: %llu, want %llu", key,
                      (unsigned long long)o->via.u64, (unsigned long long)want);
}

static void assert_double_attr(const ss_span *s, const char *key, double want)
{
        const msgpack_object *o = ss_attrs_get(&s->attrs, key);

        ck_assert_msg(o != NULL, "%s missing", key);
        ck_assert_msg(o->type == MSGPACK_OBJECT_FLOAT64, "%s: type %d", key, o->type);
        ck_assert_msg(fabs(o->via.f64 - want) < 1e-9, "%s: %.12g, want %.12g", key, o->via.f64,
                      want);
}

/* An event array of one [name, time_ns, {}]. */
typedef struct one_event {
        msgpack_object fields[3];
        msgpack_object item;
        msgpack_object_array arr;
} one_event;

static const msgpack_object_array *event_at(one_event *e, const char *name, uint64_t time_ns)
{
        e->fields[0] = fx_str(name);
        e->fields[1] = fx_uint(time_ns);
        e->fields[2] = fx_map(NULL, 0);
        e->item = fx_array(e->fields, 3);
        e->arr = (msgpack_object_array){.size = 1, .ptr = &e->item};
        return &e->arr;
}

START_TEST(test_run_rollup)
{
        run_fixture f;
        one_event ev1, ev2;
        ss_span *run, *chat1, *chat2;

        fixture_init(&f);
        /* Chat 1, 1.000-3.000 s: a chat by its name; first token at 1.250 s. Tokens: 1000 in
         * (400 of them read from the cache), 200 out. Priced as gpt-4o (2.50 / 10 / 1.25):
         *   (1000 - 400) * 2.50 + 400 * 1.25 + 200 * 10 = 1500 + 500 + 2000 = 4000 -> $0.004 */
        msgpack_object_kv c1[] = {
            fx_kv("gen_ai.provider.name", fx_str("openai")),
            fx_kv("gen_ai.request.model", fx_str("gpt-4o")),
            fx_kv("gen_ai.response.model", fx_str("gpt-4o-2024-08-06")),
            fx_kv("gen_ai.usage.input_tokens", fx_uint(1000)),
            fx_kv("gen_ai.usage.output_tokens", fx_uint(200)),
            fx_kv("gen_ai.usage.cache_read.input_tokens", fx_uint(400)),
        };
        /* Chat 2, 4.000-5.500 s: a chat by gen_ai.operation.name (legacy gen_ai.system), its
         * counts as a float and a non-negative msgpack "negative" integer; a first-token event
         * that is not the run's (chat 1 started earlier). Tokens: 3000 in, of which 1000
         * cache reads and 500 cache writes; 500 out, 50 of them reasoning. As
         * claude-sonnet-4-5 (3 / 15 / 0.30 / 3.75):
         *   (3000 - 1000 - 500) * 3 + 1000 * 0.30 + 500 * 3.75 + 500 * 15
         *   = 4500 + 300 + 1875 + 7500 = 14175 -> $0.014175 */
        msgpack_object_kv c2[] = {
            fx_kv("gen_ai.operation.name", fx_str("chat")),
            fx_kv("gen_ai.system", fx_str("anthropic")),
            fx_kv("gen_ai.request.model", fx_str("claude-sonnet-4-5-20250929")),
            fx_kv("gen_ai.usage.input_tokens", fx_f64(3000.0)),
            fx_kv("gen_ai.usage.output_tokens", fx_neg(500)),
            fx_kv("gen_ai.usage.cache_read.input_tokens", fx_uint(1000)),
            fx_kv("gen_ai.usage.cache_creation.input_tokens", fx_uint(500)),
            fx_kv("gen_ai.usage.output_tokens_details.reasoning", fx_uint(50)),
        };
        msgpack_object_kv tool[] = {fx_kv("upsonic.tool.name", fx_str("search"))};

        run = mk(&f, "agent.run", 0, 10000, NULL, 0, NULL);
        ck_assert(ss_rollup_is_run(run));
        chat1 = mk(&f, "chat gpt-4o", 1000, 3000, c1, 6,
                   event_at(&ev1, "gen_ai.first_token", MS(1250)));
        chat2 =
            mk(&f, "llm call", 4000, 5500, c2, 8, event_at(&ev2, "gen_ai.first_token", MS(4100)));
        ck_assert(!ss_rollup_is_run(chat1));

        /* In finishing order: steps and calls before the pipeline; chat 2 before chat 1. */
        child(&f, mk(&f, "pipeline.step.initialization", 100, 200, NULL, 0, NULL));
        child(&f, mk(&f, "tool.execute", 3200, 3700, tool, 1, NULL)); /* 0.50 s */
        ck_assert_int_eq(ss_rollup_child(f.r, chat2, f.pricing, &f.st), 0);
        ck_assert_int_eq(ss_rollup_child(f.r, chat1, f.pricing, &f.st), 0);
        child(&f, mk(&f, "tool.execute", 6000, 6250, tool, 1, NULL)); /* 0.25 s */
        child(&f, mk(&f, "pipeline.step.model_execution", 900, 6300, NULL, 0, NULL));
        child(&f, mk(&f, "pipeline.step.finalization", 9000, 9800, NULL, 0, NULL));
        child(&f, mk(&f, "pipeline.execute", 50, 9900, NULL, 0, NULL));

        /* Each chat span got its own cost. */
        assert_double_attr(chat1, "gen_ai.usage.cost", 0.004);
        assert_double_attr(chat2, "gen_ai.usage.cost", 0.014175);

        ck_assert_int_eq(ss_rollup_apply(f.r, run, &f.st), 0);
        assert_uint_attr(run, "upsonic.tool_call_count", 2);
        assert_uint_attr(run, "gen_ai.usage.input_tokens", 4000);       /* 1000 + 3000 */
        assert_uint_attr(run, "gen_ai.usage.output_tokens", 700);       /* 200 + 500 */
        assert_uint_attr(run, "upsonic.usage.total_tokens", 4700);      /* 4000 + 700 */
        assert_uint_attr(run, "upsonic.usage.cache_read_tokens", 1400); /* 400 + 1000 */
        assert_uint_attr(run, "upsonic.usage.cache_write_tokens", 500);
        assert_uint_attr(run, "upsonic.usage.reasoning_tokens", 50);
        assert_uint_attr(run, "upsonic.usage.requests", 2);
        assert_uint_attr(run, "upsonic.pipeline.executed_steps", 3);
        assert_double_attr(run, "upsonic.model_execution_time", 3.5);     /* 2.0 + 1.5 */
        assert_double_attr(run, "upsonic.tool_execution_time", 0.75);     /* 0.5 + 0.25 */
        assert_double_attr(run, "upsonic.framework_overhead_time", 5.75); /* 10 - 3.5 - 0.75 */
        assert_double_attr(run, "upsonic.time_to_first_token", 0.25);     /* 1.250 - 1.000 */
        assert_double_attr(run, "upsonic.total_cost", 0.018175);          /* 0.004 + 0.014175 */

        ck_assert_uint_eq(fx_counter(ss_rollup_counters, &f.st, "rollup.runs"), 1);
        ck_assert_uint_eq(fx_counter(ss_rollup_counters, &f.st, "rollup.chat_costed"), 2);
        ck_assert_uint_eq(fx_counter(ss_rollup_counters, &f.st, "rollup.unknown_model"), 0);
        ck_assert_uint_eq(fx_counter(ss_rollup_counters, &f.st, "rollup.client_set_kept"), 0);
        ss_span_unref(chat1);
        ss_span_unref(chat2);
        ss_span_unref(run);
        fixture_free(&f);
}
END_TEST

START_TEST(test_client_set_kept)
{
        run_fixture f;
        ss_span *run, *chat;
        /* The client counted its own tools, wrote its token sums under the aggregated names,
         * and costed its chat itself ($1.5, kept and used for the total). */
        msgpack_object_kv run_kv[] = {
            fx_kv("upsonic.tool_call_count", fx_uint(7)),
            fx_kv("gen_ai.aggregated_usage.input_tokens", fx_uint(99)),
            fx_kv("upsonic.total_cost", fx_str("client's")),
        };
        msgpack_object_kv chat_kv[] = {
            fx_kv("gen_ai.request.model", fx_str("gpt-4o")),
            fx_kv("gen_ai.usage.input_tokens", fx_uint(100)),
            fx_kv("gen_ai.usage.output_tokens", fx_uint(10)),
            fx_kv("gen_ai.usage.cost", fx_f64(1.5)),
        };

        fixture_init(&f);
        run = mk(&f, "agent.run", 0, 2000, run_kv, 3, NULL);
        chat = mk(&f, "chat gpt-4o", 100, 600, chat_kv, 4, NULL);
        ck_assert_int_eq(ss_rollup_child(f.r, chat, f.pricing, &f.st), 0);
        child(&f, mk(&f, "tool.execute", 700, 800, NULL, 0, NULL));
        ck_assert_int_eq(ss_rollup_apply(f.r, run, &f.st), 0);

        assert_double_attr(chat, "gen_ai.usage.cost", 1.5);
        assert_uint_attr(run, "upsonic.tool_call_count", 7);
        ck_assert_ptr_null(ss_attrs_get(&run->attrs, "gen_ai.usage.input_tokens"));
        fx_assert_str(ss_attrs_get(&run->attrs, "upsonic.total_cost"), "client's");
        assert_uint_attr(run, "gen_ai.usage.output_tokens", 10);
        assert_double_attr(run, "upsonic.framework_overhead_time", 1.4); /* 2.0 - 0.5 - 0.1 */
        /* The chat's cost, upsonic.tool_call_count, the input sum, upsonic.total_cost. */
        ck_assert_uint_eq(fx_counter(ss_rollup_counters, &f.st, "rollup.client_set_kept"), 4);
        ck_assert_uint_eq(fx_counter(ss_rollup_counters, &f.st, "rollup.chat_costed"), 0);
        ss_span_unref(chat);
        ss_span_unref(run);
        fixture_free(&f);
}
END_TEST

START_TEST(test_unknown_model)
{
        run_fixture f;
        one_event ev1, ev2;
        ss_span *run, *known, *unknown, *garbage;
        msgpack_object_kv known_kv[] = {
            fx_kv("gen_ai.response.model", fx_str("gpt-4o")),
            fx_kv("gen_ai.usage.input_tokens", fx_uint(1000000)),
            fx_kv("gen_ai.usage.output_tokens", fx_uint(0)),
        };
        msgpack_object_kv unknown_kv[] = {
            fx_kv("gen_ai.provider.name", fx_str("meta")),
            fx_kv("gen_ai.request.model", fx_str("llama-3-70b")),
            fx_kv("gen_ai.usage.input_tokens", fx_uint(10)),
            fx_kv("gen_ai.usage.output_tokens", fx_uint(5)),
        };
        /* Counts that are no counts: ignored, so this chat has no tokens to price. */
        msgpack_object_kv garbage_kv[] = {
            fx_kv("gen_ai.request.model", fx_str("mystery")),
            fx_kv("gen_ai.usage.input_tokens", fx_str("12")),
            fx_kv("gen_ai.usage.output_tokens", fx_neg(-5)),
            fx_kv("gen_ai.usage.cache_read.input_tokens", fx_f64(2.5)),
            fx_kv("gen_ai.usage.reasoning_tokens", fx_f64(-1.0)),
        };

        fixture_init(&f);
        run = mk(&f, "agent.run", 0, 1000, NULL, 0, NULL);
        /* The first chat finishes first: a later chat's first token is not the run's. */
        known = mk(&f, "chat a", 100, 200, known_kv, 3,
                   event_at(&ev1, "gen_ai.content.first_token", MS(130)));
        unknown = mk(&f, "chat b", 300, 400, unknown_kv, 4,
                     event_at(&ev2, "gen_ai.first_token", MS(310)));
        garbage = mk(&f, "chat c", 500, 600, garbage_kv, 5, NULL);
        ck_assert_int_eq(ss_rollup_child(f.r, known, f.pricing, &f.st), 0);
        ck_assert_int_eq(ss_rollup_child(f.r, unknown, f.pricing, &f.st), 0);
        ck_assert_int_eq(ss_rollup_child(f.r, garbage, f.pricing, &f.st), 0);
        ck_assert_int_eq(ss_rollup_apply(f.r, run, &f.st), 0);

        assert_double_attr(known, "gen_ai.usage.cost", 2.5); /* 1M input tokens at $2.50 */
        ck_assert_ptr_null(ss_attrs_get(&unknown->attrs, "gen_ai.usage.cost"));
        ck_assert_ptr_null(ss_attrs_get(&garbage->attrs, "gen_ai.usage.cost"));
        ck_assert_ptr_null(ss_attrs_get(&run->attrs, "upsonic.total_cost"));
        assert_double_attr(run, "upsonic.time_to_first_token", 0.03); /* 0.130 - 0.100 */
        assert_uint_attr(run, "gen_ai.usage.input_tokens", 1000010);
        assert_uint_attr(run, "gen_ai.usage.output_tokens", 5);
        assert_uint_attr(run, "upsonic.usage.cache_read_tokens", 0);
        assert_uint_attr(run, "upsonic.usage.reasoning_tokens", 0);
        assert_uint_attr(run, "upsonic.usage.requests", 3);
        assert_uint_attr(run, "upsonic.tool_call_count", 0);
        assert_double_attr(run, "upsonic.framework_overhead_time", 0.7);
        ck_assert_uint_eq(fx_counter(ss_rollup_counters, &f.st, "rollup.unknown_model"), 1);
        ck_assert_uint_eq(fx_counter(ss_rollup_counters, &f.st, "rollup.chat_costed"), 1);
        ss_span_unref(known);
        ss_span_unref(unknown);
        ss_span_unref(garbage);
        ss_span_unref(run);
        fixture_free(&f);
}
END_TEST

/* A run without chats: counts and times, no token sums, no cost. */
START_TEST(test_run_without_chats)
{
        run_fixture f;
        ss_span *run;

        fixture_init(&f);
        run = mk(&f, "agent.run", 0, 500, NULL, 0, NULL);
        child(&f, mk(&f, "tool.execute", 100, 900, NULL, 0, NULL)); /* longer than the run */
        ck_assert_int_eq(ss_rollup_apply(f.r, run, &f.st), 0);
        assert_uint_attr(run, "upsonic.tool_call_count", 1);
        assert_uint_attr(run, "upsonic.usage.requests", 0);
        assert_double_attr(run, "upsonic.model_execution_time", 0.0);
        assert_double_attr(run, "upsonic.tool_execution_time", 0.8);
        assert_double_attr(run, "upsonic.framework_overhead_time", 0.0); /* clamped */
        ck_assert_ptr_null(ss_attrs_get(&run->attrs, "gen_ai.usage.input_tokens"));
        ck_assert_ptr_null(ss_attrs_get(&run->attrs, "upsonic.total_cost"));
        ck_assert_ptr_null(ss_attrs_get(&run->attrs, "upsonic.time_to_first_token"));
        ss_span_unref(run);
        fixture_free(&f);
        ss_rollup_free(NULL);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("rollup");
        TCase *tc = tcase_create("all");

        tcase_add_test(tc, test_parse_errors);
        tcase_add_test(tc, test_parse_values);
        tcase_add_test(tc, test_load);
        tcase_add_test(tc, test_builtin);
        tcase_add_test(tc, test_find);
        tcase_add_test(tc, test_find_remembered);
        tcase_add_test(tc, test_run_rollup);
        tcase_add_test(tc, test_client_set_kept);
        tcase_add_test(tc, test_unknown_model);
        tcase_add_test(tc, test_run_without_chats);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
