/* SPDX-License-Identifier: MIT */
#include "conf/settings.h"

#include <errno.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "conf/parse.h"
#include "ss-macro.h"
#include "ss-wire.h"

#define SETTING(sec, flag, argname, lo, hi, field, text)                                           \
        {                                                                                          \
                .name = flag, .arg = argname, .section = sec, .min = lo, .max = hi,                \
                .offset = offsetof(ss_config, field), .width = WIDTH(field), .help = text          \
        }

/* The field's size, which must be 4 or 8 bytes (a compile error otherwise). */
#define WIDTH(field)                                                                               \
        (sizeof(((ss_config *)0)->field) +                                                         \
         0 * sizeof(                                                                               \
                 char[sizeof(((ss_config *)0)->field) == 4 || sizeof(((ss_config *)0)->field) == 8 \
                          ? 1                                                                      \
                          : -1]))

#define HOUR_MS 3600000u
#define DAY_MS  86400000u

const ss_setting ss_settings[] = {
    SETTING("Export", "timeout-ms", "MS", 1, HOUR_MS, cli.http.timeout_ms,
            "per request (env OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT)"),
    SETTING("Export", "retry-queue-bytes", "BYTES", 0, 1ull << 40, cli.http.max_queue_bytes,
            "encoded requests kept for retry and in flight"),
    SETTING("Export", "max-attempts", "N", 0, 1000, cli.http.retry.max_attempts,
            "tries per request before it is spooled or dropped; 0: no limit but time"),
    SETTING("Export", "retry-initial-ms", "MS", 1, HOUR_MS, cli.http.retry.backoff_initial_ms,
            "the first retry's wait at most (full jitter), times the multiplier after"),
    SETTING("Export", "retry-max-ms", "MS", 1, HOUR_MS, cli.http.retry.backoff_max_ms,
            "the longest wait between attempts"),
    SETTING("Export", "retry-max-elapsed-ms", "MS", 1, DAY_MS, cli.http.retry.max_elapsed_ms,
            "a request is retried this long after its first attempt, then spooled (or "
            "dropped without a spool)"),
    SETTING("Export", "spool-bytes", "BYTES", 1u << 20, 1ull << 44, cli.http.spool.max_bytes,
            "disk each exporter's spool may use; past it the oldest requests go"),
    SETTING("Export", "batch-size", "N", 1, 1000000, cli.http.max_batch,
            "spans per export request"),
    SETTING("Export", "batch-bytes", "BYTES", 4096, 32u << 20, cli.http.max_batch_bytes,
            "span bytes per export request: a batch goes when it holds this much"),
    SETTING("Export", "batch-delay-ms", "MS", 1, HOUR_MS, cli.http.batch_delay_ms,
            "longest a span waits for its batch"),
    SETTING("Limits", "max-frame", "BYTES", 64, SS_MAX_FRAME_LIMIT, listener.max_frame,
            "largest accepted frame"),
    SETTING("Limits", "max-connections", "N", 1, 1000000, listener.max_connections,
            "concurrent client connections"),
    SETTING("Limits", "max-connections-per-process", "N", 0, 1000000,
            listener.max_connections_process,
            "connections of one client process (pid and uid); 0: no limit"),
    SETTING("Limits", "max-input-bytes", "BYTES", 0, 1ull << 40, listener.max_input_bytes,
            "bytes in all connections' input buffers; past it reading pauses; 0: no limit"),
    SETTING("Limits", "hello-timeout-ms", "MS", 0, HOUR_MS, listener.hello_timeout_ms,
            "a connection must say HELLO within this; 0: no limit"),
    SETTING("Limits", "frame-timeout-ms", "MS", 0, HOUR_MS, listener.frame_timeout_ms,
            "a frame begun must arrive whole within this; 0: no limit"),
    SETTING("Limits", "idle-timeout-ms", "MS", 0, DAY_MS, listener.idle_timeout_ms,
            "a connection with nothing open and silent this long is closed; 0: never"),
    SETTING("Limits", "max-open-spans", "N", 1, 100000000, assembler.max_open_spans,
            "open spans per client instance"),
    SETTING("Limits", "max-open-spans-per-process", "N", 0, 100000000, assembler.max_open_process,
            "open spans per client process; 0: no limit"),
    SETTING("Limits", "max-open-spans-total", "N", 1, 100000000, assembler.max_open_total,
            "open spans of all clients, disconnected ones in their grace period included"),
    SETTING("Limits", "max-trace-spans", "N", 1, 100000000, assembler.max_trace_spans,
            "finished spans held per open trace"),
    SETTING("Limits", "max-trace-bytes", "BYTES", 0, 1ull << 34, assembler.max_trace_bytes,
            "bytes of finished spans held per open trace (past it a part goes out, and "
            "sampling decides early); at most half of an exporter's queue bytes; 0: no limit"),
    SETTING("Limits", "max-attributes", "N", 1, 100000, assembler.limits.max_attrs,
            "attributes per span or event"),
    SETTING("Limits", "max-resource-attributes", "N", 1, 100000, assembler.max_resource_attrs,
            "resource attributes per client (HELLO)"),
    SETTING("Limits", "max-events", "N", 0, 100000, assembler.limits.max_events, "events per span"),
    SETTING("Limits", "max-value-length", "BYTES", 1, SS_MAX_FRAME_LIMIT,
            assembler.limits.max_value_len, "bytes per string attribute value, cut beyond"),
    SETTING("Limits", "max-key-length", "BYTES", 1, 65536, assembler.limits.max_key_len,
            "bytes per attribute key; a longer key drops its attribute"),
    SETTING("Limits", "max-name-length", "BYTES", 1, 65536, assembler.limits.max_name_len,
            "bytes per span or event name and status message, cut beyond"),
    SETTING("Limits", "max-span-bytes", "BYTES", 4096, 16u << 20, assembler.limits.max_bytes,
            "bytes of names, keys and values per span; more attributes are dropped"),
    SETTING("Limits", "orphan-grace-ms", "MS", 0, DAY_MS, assembler.orphan_grace_ms,
            "how long a disconnected client may come back before its open spans end "
            "as orphaned"),
    SETTING("Limits", "foreign-wait-ms", "MS", 0, DAY_MS, assembler.foreign_wait_ms,
            "how long a client's finished spans wait for another client's open spans "
            "under the same trace; 0: send them at once"),
    SETTING("Limits", "drain-timeout-ms", "MS", 0, HOUR_MS, drain_timeout_ms,
            "on SIGTERM, how long to wait for exports"),
};

const size_t ss_n_settings = SS_ELEMENTSOF(ss_settings);

#define EXPORTER_SETTING(key, lo, hi, field)                                                       \
        {                                                                                          \
                .name = key, .arg = "N", .section = "exporter", .min = lo, .max = hi,              \
                .offset = offsetof(ss_http_config, field),                                         \
                .width = sizeof(((ss_http_config *)0)->field)                                      \
        }

const ss_setting ss_exporter_settings[] = {
    EXPORTER_SETTING("timeout", 1, HOUR_MS, timeout_ms),
    EXPORTER_SETTING("batch_size", 1, 1000000, max_batch),
    EXPORTER_SETTING("batch_bytes", 4096, 32u << 20, max_batch_bytes),
    EXPORTER_SETTING("batch_delay", 1, HOUR_MS, batch_delay_ms),
    EXPORTER_SETTING("queue_bytes", 0, 1ull << 40, max_queue_bytes),
    EXPORTER_SETTING("max_in_flight", 1, 1024, max_inflight),
    EXPORTER_SETTING("max_attempts", 0, 1000, retry.max_attempts),
    EXPORTER_SETTING("retry_initial_ms", 1, HOUR_MS, retry.backoff_initial_ms),
    EXPORTER_SETTING("retry_max_ms", 1, HOUR_MS, retry.backoff_max_ms),
    EXPORTER_SETTING("retry_max_elapsed_ms", 1, DAY_MS, retry.max_elapsed_ms),
    EXPORTER_SETTING("spool_bytes", 1u << 20, 1ull << 44, spool.max_bytes),
};

const size_t ss_n_exporter_settings = SS_ELEMENTSOF(ss_exporter_settings);

/* Names compare with '-' and '_' as one: a file says max_frame for --max-frame. */
static bool same_name(const char *a, const char *b)
{
        for (; *a && *b; a++, b++)
                if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_')))
                        return false;
        return *a == *b;
}

const ss_setting *ss_setting_find_in(const ss_setting *table, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (same_name(table[i].name, name))
                        return &table[i];
        return NULL;
}

const ss_setting *ss_setting_find(const char *name)
{
        return ss_setting_find_in(ss_settings, ss_n_settings, name);
}

int ss_setting_set(void *base, const ss_setting *s, const char *what, const char *value)
{
        uint8_t *field = (uint8_t *)base + s->offset;
        uint64_t v;
        int r = ss_conf_u64(what, value, s->min, s->max, &v);

        if (r < 0)
                return r;
        if (s->width == sizeof(uint32_t)) {
                uint32_t v32 = (uint32_t)v;

                memcpy(field, &v32, sizeof(v32));
        } else {
                memcpy(field, &v, sizeof(v));
        }
        return 0;
}

uint64_t ss_setting_get(const void *base, const ss_setting *s)
{
        const uint8_t *field = (const uint8_t *)base + s->offset;
        uint32_t v32;
        uint64_t v;

        if (s->width == sizeof(uint32_t)) {
                memcpy(&v32, field, sizeof(v32));
                return v32;
        }
        memcpy(&v, field, sizeof(v));
        return v;
}

#define USAGE_INDENT 29
#define USAGE_WIDTH  80

/* text from column col, wrapped at word boundaries to USAGE_WIDTH, lines indented. */
static void wrap(FILE *out, const char *text, int col)
{
        while (*text) {
                size_t room = USAGE_WIDTH - (size_t)(col > USAGE_INDENT ? col : USAGE_INDENT);
                size_t n = strlen(text);

                if (n > room) {
                        n = room;
                        while (n > 0 && text[n] != ' ')
                                n--;
                        if (n == 0)
                                n = strcspn(text, " ");
                }
                fprintf(out, "%*s%.*s\n", col < USAGE_INDENT ? USAGE_INDENT - col : 0, "", (int)n,
                        text);
                text += n;
                text += strspn(text, " ");
                col = 0;
        }
}

void ss_settings_usage(FILE *out, const char *section, const ss_config *dflt)
{
        for (size_t i = 0; i < ss_n_settings; i++) {
                const ss_setting *s = &ss_settings[i];
                char help[512];
                int n;

                if (strcmp(s->section, section) != 0)
                        continue;
                n = fprintf(out, "      --%s %s", s->name, s->arg);
                if (n >= USAGE_INDENT) {
                        fputc('\n', out);
                        n = 0;
                }
                snprintf(help, sizeof(help), "%s (default %llu)", s->help,
                         (unsigned long long)ss_setting_get(dflt, s));
                wrap(out, help, n);
        }
}

void ss_settings_print(FILE *out, const char *section, const ss_config *cfg)
{
        for (size_t i = 0; i < ss_n_settings; i++) {
                const ss_setting *s = &ss_settings[i];

                if (strcmp(s->section, section) != 0)
                        continue;
                for (const char *c = s->name; *c; c++)
                        fputc(*c == '-' ? '_' : *c, out);
                fprintf(out, " = %llu\n", (unsigned long long)ss_setting_get(cfg, s));
        }
}
