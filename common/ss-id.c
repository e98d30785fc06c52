/* SPDX-License-Identifier: MIT */
#include "ss-id.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* wyrand state per thread (64 bits, one add and one 64x64->128 multiply an id), seeded from
 * getrandom() once per thread and again in a forked child (the generation moves on at fork),
 * so parent and child never share ids. getpid() would cost a system call per id.
 * initial-exec: the state is reached without a call to __tls_get_addr() per id, from the
 * library too (16 bytes of the static TLS that glibc keeps for libraries loaded later,
 * dlopen() included). */
#define SS_TLS __attribute__((tls_model("initial-exec")))

typedef struct rng {
        uint64_t s;
        unsigned gen; /* fork_gen it was seeded in; 0: never */
} rng;

static _Thread_local rng tls_rng SS_TLS;
static atomic_uint fork_gen = 1;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
        atomic_fetch_add(&fork_gen, 1);
}

static void register_fork(void)
{
        (void)pthread_atfork(NULL, NULL, on_fork_child);
}

static uint64_t splitmix(uint64_t *x)
{
        uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

/* Out of line: once per thread and after a fork. */
static __attribute__((noinline)) void rng_seed(rng *g, unsigned gen)
{
        uint64_t seed[2] = {0};
        struct timespec ts;

        pthread_once(&fork_once, register_fork);
        /* getrandom() cannot fail for 16 bytes once the pool is ready; mix the
         * clock and the stack address in so a failure still varies the ids. */
        (void)getrandom(seed, sizeof(seed), GRND_NONBLOCK);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed[0] ^= (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&ts;
        seed[1] ^= (uint64_t)ts.tv_sec ^ (uint64_t)getpid();
        g->s = splitmix(&seed[0]) ^ splitmix(&seed[1]);
        g->gen = gen;
}

/* wyrand (Wang Yi): a 64-bit output from a Weyl sequence mixed by one wide multiply. */
static inline uint64_t rng_next(uint64_t *s)
{
        unsigned __int128 t;

        *s += 0xa0761d6478bd642full;
        t = (unsigned __int128)*s * (*s ^ 0xe7037ed1a0b428dbull);
        return (uint64_t)(t >> 64) ^ (uint64_t)t;
}

/* The calling thread's generator, seeded for this process. */
static inline rng *rng_ready(void)
{
        rng *g = &tls_rng;
        unsigned gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);

        if (__builtin_expect(g->gen != gen, 0))
                rng_seed(g, gen);
        return g;
}

void ss_id_random(uint8_t *id, size_t len)
{
        rng *g = rng_ready();
        uint64_t s = g->s, r, any;
        size_t i;

        /* The state in a register while id is written: id may not alias it for the compiler. */
        do {
                any = 0;
                for (i = 0; i + 8 <= len; i += 8) {
                        r = rng_next(&s);
                        memcpy(id + i, &r, 8);
                        any |= r;
                }
                if (i < len) {
                        r = rng_next(&s);
                        memcpy(id + i, &r, len - i);
                        any |= r & ((1ull << (8 * (len - i))) - 1);
                }
        } while (!any);
        g->s = s;
}

void ss_id_span(uint8_t *trace_id, uint8_t *span_id)
{
        rng *g = rng_ready();
        uint64_t s = g->s, a, b;

        if (trace_id) {
                do {
                        a = rng_next(&s);
                        b = rng_next(&s);
                } while (!(a | b));
                memcpy(trace_id, &a, 8);
                memcpy(trace_id + 8, &b, 8);
        }
        do
                a = rng_next(&s);
        while (!a);
        memcpy(span_id, &a, 8);
        g->s = s;
}

void ss_hex(char *out, const uint8_t *in, size_t len)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * len] = '\0';
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int ss_unhex(uint8_t *out, const char *in, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                int hi = hexval(in[2 * i]), lo = hi < 0 ? -1 : hexval(in[2 * i + 1]);

                if (hi < 0 || lo < 0)
                        return -EINVAL;
                out[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
}

void ss_traceparent_format(char *out, const uint8_t *trace_id, const uint8_t *span_id, bool sampled)
{
        memcpy(out, "00-", 3);
        ss_hex(out + 3, trace_id, 16);
        out[35] = '-';
        ss_hex(out + 36, span_id, 8);
        out[52] = '-';
        out[53] = '0';
        out[54] = sampled ? '1' : '0';
        out[55] = '\0';
}

static bool all_zero(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

int ss_traceparent_parse(const char *s, uint8_t *ret_trace_id, uint8_t *ret_span_id,
                         bool *ret_sampled)
{
        uint8_t version, tid[16], sid[8], flags;
        size_t len = strlen(s);

        if (len < SS_TRACEPARENT_LEN || s[2] != '-' || s[35] != '-' || s[52] != '-')
                return -EINVAL;
        if (ss_unhex(&version, s, 1) < 0 || version == 0xff)
                return -EINVAL;
        /* Version 00 has exactly this length; later versions may append "-...". */
        if ((version == 0 && len != SS_TRACEPARENT_LEN) ||
            (len > SS_TRACEPARENT_LEN && s[SS_TRACEPARENT_LEN] != '-'))
                return -EINVAL;
        if (ss_unhex(tid, s + 3, 16) < 0 || ss_unhex(sid, s + 36, 8) < 0 ||
            ss_unhex(&flags, s + 53, 1) < 0)
                return -EINVAL;
        if (all_zero(tid, 16) || all_zero(sid, 8))
                return -EINVAL;
        memcpy(ret_trace_id, tid, 16);
        memcpy(ret_span_id, sid, 8);
        *ret_sampled = flags & 1;
        return 0;
}

uint64_t ss_sample_threshold(double rate)
{
        return (uint64_t)((1.0 - rate) * 72057594037927936.0);
}

bool ss_sample_keep(const uint8_t *trace_id, double rate)
{
        uint64_t r = 0;

        if (!(rate > 0.0))
                return false;
        if (rate >= 1.0)
                return true;
        for (int i = 9; i < 16; i++)
                r = r << 8 | trace_id[i];
        return r >= ss_sample_threshold(rate);
}

void ss_sample_tracestate(char *out, size_t size, double rate)
{
        char hex[17];
        uint64_t t;
        int n = 14;

        out[0] = '\0';
        if (!(rate > 0.0 && rate < 1.0))
                return;
        /* A rate too small for a double to tell from 0 keeps nothing; say the largest T. */
        t = ss_sample_threshold(rate);
        if (t >= (1ull << 56))
                t = (1ull << 56) - 1;
        snprintf(hex, sizeof(hex), "%014" PRIx64, t);
        while (n > 1 && hex[n - 1] == '0')
                n--;
        hex[n] = '\0';
        snprintf(out, size, "ot=th:%s", hex);
}

bool ss_content_key(const char *key, size_t len)
{
        static const char *const keys[] = {
            "upsonic.input",
            "upsonic.output",
            "upsonic.tools_called",
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.system_instructions",
            "gen_ai.tool.call.arguments",
            "gen_ai.tool.call.result",
            "gen_ai.tool.definitions",
            "langfuse.trace.input",
            "langfuse.trace.output",
            "langfuse.observation.input",
            "langfuse.observation.output",
        };

        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                if (strlen(keys[i]) == len && memcmp(keys[i], key, len) == 0)
                        return true;
        return false;
}
