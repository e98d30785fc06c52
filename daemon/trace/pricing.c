/* SPDX-License-Identifier: MIT */
#include "trace/pricing.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/hashmap.h"

/*
 * The table is a flat array searched linearly: it is looked up once per chat
 * span, holds a few dozen models (at most SS_PRICING_MAX_MODELS), and a scan
 * is what longest-prefix matching needs anyway. Names are compared in ASCII
 * case only, so the locale never changes a match.
 */

/* data/pricing.tsv, compiled in by scripts/embed-text.py. */
extern const char ss_pricing_tsv[];
extern const size_t ss_pricing_tsv_len;

/* Longer provider names are refused in a table and match nothing in a lookup. */
#define PROVIDER_MAX 64u
/* A table file larger than this is refused before it is read: 4096 lines of 1024 bytes
 * plus as much again in comments. */
#define PRICING_FILE_MAX ((size_t)SS_PRICING_MAX_MODELS * SS_PRICING_MAX_LINE * 2)

typedef struct entry {
        char *model;
        size_t model_len;
        char provider[PROVIDER_MAX]; /* normalised: provider_norm() */
        unsigned line;
        ss_price price;
} entry;

/*
 * Lookups remembered, a slot for each of MEMO_SLOTS hashes of (provider, model): agents
 * price the same few models again and again, and a lookup of "gpt-4o" compared about 900
 * instructions' worth of entries. A pair longer than MEMO_KEY_MAX is looked up each time.
 */
#define MEMO_SLOTS   64u
#define MEMO_KEY_MAX 120u

typedef struct memo {
        uint32_t len;          /* of key (provider, NUL, model); 0: empty */
        const ss_price *price; /* NULL: the table has none */
        char key[MEMO_KEY_MAX];
} memo;

struct ss_pricing {
        entry *v;
        size_t n;
        size_t cap;
        /* v's positions by the lowercased first byte of the model, in table order: a name
         * can only be priced by the entries of its own first byte. */
        uint32_t *by_first;
        uint32_t first_start[257];
        memo *memo; /* MEMO_SLOTS, written by lookups; NULL: none (out of memory) */
};

/* ---- names ------------------------------------------------------------------------------ */

static char lower(char c)
{
        return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool eq_nocase(const char *a, const char *b, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (lower(a[i]) != lower(b[i]))
                        return false;
        return true;
}

/* Aliases of the OpenTelemetry gen_ai.provider.name values the table uses. A provider only
 * breaks ties, so a host of several vendors' models (Vertex AI) maps to its own vendor. */
static const struct {
        const char *alias;
        const char *name;
} provider_aliases[] = {
    {"azure.ai.openai", "openai"},
    {"azure_openai", "openai"},
    {"google", "gcp.gemini"},
    {"gemini", "gcp.gemini"},
    {"google_genai", "gcp.gemini"},
    {"gcp.gen_ai", "gcp.gemini"},
    {"gcp.vertex_ai", "gcp.gemini"},
    {"vertex_ai", "gcp.gemini"},
    {"mistral", "mistral_ai"},
    {"mistralai", "mistral_ai"},
    {"xai", "x_ai"},
    {"x.ai", "x_ai"},
    {"deepseek_ai", "deepseek"},
};

/*
 * The canonical lower-case name of provider p (n bytes) in out (PROVIDER_MAX bytes). False
 * when it does not fit; out is then empty, which matches no listed provider.
 */
static bool provider_norm(const char *p, size_t n, char *out)
{
        out[0] = '\0';
        if (n >= PROVIDER_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                out[i] = lower(p[i]);
        out[n] = '\0';
        for (size_t i = 0; i < sizeof(provider_aliases) / sizeof(provider_aliases[0]); i++)
                if (strcmp(out, provider_aliases[i].alias) == 0) {
                        strcpy(out, provider_aliases[i].name);
                        break;
                }
        return true;
}

/* ---- parsing ---------------------------------------------------------------------------- */

static void fail(char *err, size_t err_size, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(char *err, size_t err_size, unsigned line, const char *fmt, ...)
{
        va_list ap;
        int n = 0;

        if (!err || !err_size)
                return;
        if (line)
                n = snprintf(err, err_size, "line %u: ", line);
        if (n < 0 || (size_t)n >= err_size)
                return;
        va_start(ap, fmt);
        vsnprintf(err + n, err_size - (size_t)n, fmt, ap);
        va_end(ap);
}

static const char *const field_names[] = {"provider", "model",      "input",
                                          "output",   "cache_read", "cache_write"};
#define N_FIELDS 6u

/* Digits with at most one '.' between digits: no sign, exponent, hex, inf or nan. */
static bool decimal_shaped(const char *s)
{
        bool dot = false;
        size_t digits = 0;

        for (; *s; s++) {
                if (*s >= '0' && *s <= '9') {
                        digits++;
                } else if (*s == '.' && !dot && digits) {
                        dot = true;
                        digits = 0;
                } else {
                        return false;
                }
        }
        return digits > 0;
}

/* Price field i of a line; '-' (for the cache prices only) is *missing. */
static int parse_price(const char *f, unsigned i, unsigned line, double *ret, bool *missing,
                       char *err, size_t err_size)
{
        *missing = false;
        if (strcmp(f, "-") == 0) {
                if (i >= 4) {
                        *missing = true;
                        return 0;
                }
                fail(err, err_size, line, "%s price is required ('-' only for cache prices)",
                     field_names[i]);
                return -EINVAL;
        }
        if (f[0] == '-') {
                fail(err, err_size, line, "%s price '%.32s' is negative", field_names[i], f);
                return -EINVAL;
        }
        if (!decimal_shaped(f)) {
                fail(err, err_size, line, "%s price '%.32s' is not a decimal number",
                     field_names[i], f);
                return -EINVAL;
        }
        *ret = strtod(f, NULL);
        if (!isfinite(*ret)) {
                fail(err, err_size, line, "%s price '%.32s...' is not finite", field_names[i], f);
                return -EINVAL;
        }
        return 0;
}

/* Split s in place into at most N_FIELDS + 1 fields at runs of tabs and spaces; how many. */
static unsigned split(char *s, char **fields)
{
        unsigned n = 0;

        for (;;) {
                while (*s == '\t' || *s == ' ')
                        *s++ = '\0';
                if (!*s || n == N_FIELDS + 1)
                        return n;
                fields[n++] = s;
                while (*s && *s != '\t' && *s != ' ')
                        s++;
        }
}

/* A model name: no control characters (spaces and tabs already split fields). */
static bool name_ok(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

static const entry *find_exact(const ss_pricing *p, const char *provider, const char *model,
                               size_t len)
{
        for (size_t i = 0; i < p->n; i++)
                if (p->v[i].model_len == len && strcmp(p->v[i].provider, provider) == 0 &&
                    eq_nocase(p->v[i].model, model, len))
                        return &p->v[i];
        return NULL;
}

static int append(ss_pricing *p, const entry *e)
{
        if (p->n == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 64;
                entry *v = realloc(p->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                p->v = v;
                p->cap = cap;
        }
        p->v[p->n] = *e;
        p->v[p->n].model = strdup(e->model);
        if (!p->v[p->n].model)
                return -ENOMEM;
        p->n++;
        return 0;
}

/* Names and prices of one split line into e (model still pointing into the line). */
static int parse_fields(char **f, unsigned line, entry *e, char *err, size_t err_size)
{
        double v[N_FIELDS];
        bool missing[N_FIELDS] = {false};

        if (!provider_norm(f[0], strlen(f[0]), e->provider)) {
                fail(err, err_size, line, "provider name longer than %u bytes", PROVIDER_MAX - 1);
                return -EINVAL;
        }
        if (!name_ok(f[0]) || !name_ok(f[1])) {
                fail(err, err_size, line, "control character in the provider or model name");
                return -EINVAL;
        }
        for (unsigned i = 2; i < N_FIELDS; i++)
                if (parse_price(f[i], i, line, &v[i], &missing[i], err, err_size) < 0)
                        return -EINVAL;
        /* Without a cache price the provider bills those tokens as input. */
        e->price = (ss_price){.input = v[2],
                              .output = v[3],
                              .cache_read = missing[4] ? v[2] : v[4],
                              .cache_write = missing[5] ? v[2] : v[5]};
        e->model = f[1];
        e->model_len = strlen(f[1]);
        e->line = line;
        return 0;
}

/* One line without its newline (len <= SS_PRICING_MAX_LINE): a comment, blank, or model. */
static int parse_line(ss_pricing *p, const char *s, size_t len, unsigned line, char *err,
                      size_t err_size)
{
        char buf[SS_PRICING_MAX_LINE + 1];
        char *f[N_FIELDS + 1];
        const entry *dup;
        entry e = {0};
        unsigned n;

        if (memchr(s, '\0', len)) {
                fail(err, err_size, line, "NUL byte");
                return -EINVAL;
        }
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (len && buf[len - 1] == '\r')
                buf[len - 1] = '\0';
        n = split(buf, f);
        if (n == 0 || f[0][0] == '#')
                return 0;
        if (n != N_FIELDS) {
                fail(err, err_size, line,
                     "%s%u fields, want 6: provider model input output cache_read cache_write",
                     n > N_FIELDS ? "more than " : "", n > N_FIELDS ? N_FIELDS : n);
                return -EINVAL;
        }
        if (parse_fields(f, line, &e, err, err_size) < 0)
                return -EINVAL;
        dup = find_exact(p, e.provider, e.model, e.model_len);
        if (dup) {
                fail(err, err_size, line, "%s model '%.64s' already listed on line %u", e.provider,
                     e.model, dup->line);
                return -EINVAL;
        }
        if (p->n == SS_PRICING_MAX_MODELS) {
                fail(err, err_size, line, "more than %u models", SS_PRICING_MAX_MODELS);
                return -EINVAL;
        }
        return append(p, &e);
}

/* Fill by_first and first_start: a counting sort, so each bucket keeps the table's order. */
static int index_first_bytes(ss_pricing *p)
{
        uint32_t next[256];

        p->by_first = malloc((p->n ? p->n : 1) * sizeof(*p->by_first));
        if (!p->by_first)
                return -ENOMEM;
        memset(p->first_start, 0, sizeof(p->first_start));
        for (size_t i = 0; i < p->n; i++)
                p->first_start[(unsigned char)lower(p->v[i].model[0]) + 1]++;
        for (unsigned c = 0; c < 256; c++)
                p->first_start[c + 1] += p->first_start[c];
        memcpy(next, p->first_start, sizeof(next));
        for (size_t i = 0; i < p->n; i++)
                p->by_first[next[(unsigned char)lower(p->v[i].model[0])]++] = (uint32_t)i;
        return 0;
}

static int parse_all(ss_pricing *p, const char *text, size_t len, char *err, size_t err_size)
{
        unsigned line = 0;
        size_t off = 0;

        while (off < len) {
                const char *nl = memchr(text + off, '\n', len - off);
                size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
                int r;

                line++;
                if (n > SS_PRICING_MAX_LINE) {
                        fail(err, err_size, line, "longer than %u bytes", SS_PRICING_MAX_LINE);
                        return -EINVAL;
                }
                r = parse_line(p, text + off, n, line, err, err_size);
                if (r < 0)
                        return r;
                off += n + 1;
        }
        if (p->n == 0) {
                fail(err, err_size, 0, "no models in the table");
                return -EINVAL;
        }
        return index_first_bytes(p);
}

int ss_pricing_parse(const char *text, size_t len, ss_pricing **ret, char *err, size_t err_size)
{
        ss_pricing *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return -ENOMEM;
        r = parse_all(p, text, len, err, err_size);
        if (r < 0) {
                if (r == -ENOMEM)
                        fail(err, err_size, 0, "out of memory");
                ss_pricing_free(p);
                return r;
        }
        p->memo = calloc(MEMO_SLOTS, sizeof(*p->memo)); /* without it, lookups are slower */
        *ret = p;
        return 0;
}

/* ---- files ------------------------------------------------------------------------------ */

/* The whole of fd (at most PRICING_FILE_MAX bytes) in a malloc'd buffer. -errno. */
static int read_all(int fd, char **ret, size_t *ret_len)
{
        struct stat sb;
        size_t len = 0, cap;
        char *buf;

        if (fstat(fd, &sb) < 0)
                return -errno;
        if (!S_ISREG(sb.st_mode))
                return -EINVAL;
        if ((uint64_t)sb.st_size > PRICING_FILE_MAX)
                return -EFBIG;
        cap = (size_t)sb.st_size + 1; /* one more: a file that grew is seen to grow */
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + len, cap - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;

                        free(buf);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len == cap) {
                        free(buf);
                        return -EFBIG; /* grew while being read: refuse rather than guess */
                }
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

int ss_pricing_load(const char *path, ss_pricing **ret, char *err, size_t err_size)
{
        char perr[256] = "";
        size_t len = 0;
        char *text = NULL;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                fail(err, err_size, 0, "%s: %s", path, strerror(-r));
                return r;
        }
        r = read_all(fd, &text, &len);
        close(fd);
        if (r < 0) {
                fail(err, err_size, 0, "%s: %s", path,
                     r == -EFBIG    ? "larger than the pricing table limit"
                     : r == -EINVAL ? "not a regular file"
                                    : strerror(-r));
                return r;
        }
        r = ss_pricing_parse(text, len, ret, perr, sizeof(perr));
        free(text);
        if (r < 0)
                fail(err, err_size, 0, "%s: %s", path, perr);
        return r;
}

int ss_pricing_builtin(ss_pricing **ret, char *err, size_t err_size)
{
        return ss_pricing_parse(ss_pricing_tsv, ss_pricing_tsv_len, ret, err, err_size);
}

void ss_pricing_free(ss_pricing *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++)
                free(p->v[i].model);
        free(p->v);
        free(p->by_first);
        free(p->memo);
        free(p);
}

size_t ss_pricing_size(const ss_pricing *p)
{
        return p ? p->n : 0;
}

/* ---- lookup ----------------------------------------------------------------------------- */

static bool boundary(char c)
{
        return c == '\0' || c == '-' || c == '.' || c == ':' || c == '@';
}

/*
 * The entry whose model is model exactly or its longest prefix ending at a boundary; of
 * several listing the same name, the one of provider (normalised, may be empty).
 */
static const entry *best_match(const ss_pricing *p, const char *provider, const char *model)
{
        size_t len = strlen(model), best_len = 0;
        unsigned c = (unsigned char)lower(model[0]);
        const entry *best = NULL;

        for (uint32_t k = p->first_start[c]; k < p->first_start[c + 1]; k++) {
                const entry *e = &p->v[p->by_first[k]];

                if (e->model_len > len || e->model_len < best_len ||
                    !boundary(model[e->model_len]) || !eq_nocase(e->model, model, e->model_len))
                        continue;
                if (best && e->model_len == best_len &&
                    (strcmp(best->provider, provider) == 0 || strcmp(e->provider, provider) != 0))
                        continue;
                best = e;
                best_len = e->model_len;
        }
        return best;
}

/* The price of model, provider_len bytes of provider (NULL: none) asking. */
static const ss_price *lookup(const ss_pricing *p, const char *provider, size_t provider_len,
                              const char *model)
{
        char prov[PROVIDER_MAX];
        const char *m = model;

        provider_norm(provider ? provider : "", provider_len, prov);
        while (*m) {
                const entry *e = best_match(p, prov, m);
                const char *slash;

                if (e)
                        return &e->price;
                /* "anthropic/claude-sonnet-4-6", "models/gemini-2.5-pro": the qualification
                 * names the provider when the caller did not. */
                slash = strchr(m, '/');
                if (!slash)
                        break;
                if (!prov[0])
                        provider_norm(m, (size_t)(slash - m), prov);
                m = slash + 1;
        }
        return NULL;
}

const ss_price *ss_pricing_find(const ss_pricing *p, const char *provider, const char *model)
{
        size_t pl, ml, len;
        char key[MEMO_KEY_MAX];
        memo *slot = NULL;
        const ss_price *price;

        if (!p || !model)
                return NULL;
        pl = provider ? strlen(provider) : 0;
        ml = strlen(model);
        len = pl + 1 + ml;
        if (p->memo && len <= MEMO_KEY_MAX) {
                if (pl)
                        memcpy(key, provider, pl);
                key[pl] = '\0';
                memcpy(key + pl + 1, model, ml);
                slot = &p->memo[ss_hash_bytes(key, len) & (MEMO_SLOTS - 1)];
                if (slot->len == len && memcmp(slot->key, key, len) == 0)
                        return slot->price;
        }
        price = lookup(p, provider, pl, model);
        if (slot) {
                memcpy(slot->key, key, len);
                slot->len = (uint32_t)len;
                slot->price = price;
        }
        return price;
}
