/* SPDX-License-Identifier: MIT */
/*
 * The configuration file (--config, INI) through ss_config_load(): every
 * section and kind of key lands in the field it names, the exporters come
 * out of their presets as the pipeline will build them, flags win over the
 * environment, the environment over the file, the file over the defaults;
 * every error names the file, the line, the key and the value; and
 * --check-config prints what was made, secrets masked. Each test writes its
 * file into a directory made once per test case, from an environment with
 * none of the variables the daemon reads.
 */
#include "ss-check.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf-load.h"
#include "conf/config.h"
#include "conf/settings.h"
#include "fixture.h"

#define SOCKET_ENV "/tmp/ss-test-conf-file-env.sock"

static char dir[64], conf_path[128];

/* Made and removed by Check's parent process, so a failed test leaves nothing behind. */
static void dir_make(void)
{
        fx_tmpdir(dir, sizeof(dir), "conf-file");
}

static void dir_remove(void)
{
        fx_tmpdir_remove(dir);
}

static void setup(void)
{
        env_clear();
        snprintf(conf_path, sizeof(conf_path), "%s/sidespand.conf", dir);
}

static void teardown(void)
{
        ss_config_free(&cfg);
        env_clear();
        fx_tmpdir_clear(dir);
}

/* Make text the configuration file at conf_path. */
static void write_conf(const char *text)
{
        FILE *f = fopen(conf_path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

/* Load with the file holding text and the socket from the environment (unless a test
 * says otherwise): what ss_config_load() returned. */
static int load_text(const char *text)
{
        write_conf(text);
        ck_assert_int_eq(setenv("SIDESPAN_SOCKET", SOCKET_ENV, 1), 0);
        return LOAD("--config", conf_path);
}

/* The exporter named name as it will be built, or NULL. */
static const ss_exporter_def *def_named(const char *name)
{
        for (size_t i = 0; i < cfg.export.n; i++)
                if (strcmp(cfg.export.defs[i].name, name) == 0)
                        return &cfg.export.defs[i];
        return NULL;
}

static const ss_exporter_spec *spec_named(const char *name)
{
        for (size_t i = 0; i < cfg.n_specs; i++)
                if (strcmp(cfg.specs[i].name, name) == 0)
                        return &cfg.specs[i];
        return NULL;
}

/* Header line i of the exporter named name, as sent ("Name: value"). */
static const char *header_of(const char *name, size_t i)
{
        const ss_exporter_def *d = def_named(name);

        ck_assert_ptr_nonnull(d);
        ck_assert_uint_lt(i, d->http.n_headers);
        return d->http.headers[i];
}

static size_t lines_in(const char *text)
{
        size_t n = 0;

        for (; *text; text++)
                n += *text == '\n';
        return n;
}

/* ---- sections and keys ------------------------------------------------------------------ */

START_TEST(daemon_section_lands)
{
        write_conf("# comment\n; comment\n[daemon]\nsocket = /tmp/ss-from-file.sock\n"
                   "log_level = warning\nallow_uids = root,4242\nallow_gids = 0,4343\n");
        ck_assert_int_eq(LOAD("--config", conf_path), 0);
        ck_assert_str_eq(err_text, "");
        ck_assert_str_eq(cfg.config_path, conf_path);
        ck_assert_str_eq(cfg.socket_path, "/tmp/ss-from-file.sock");
        ck_assert_ptr_eq(cfg.listener.path, cfg.socket_path);
        ck_assert_int_eq(cfg.log_level, 4);
        ck_assert_uint_eq(cfg.n_allow_uids, 2);
        ck_assert_uint_eq(cfg.allow_uids[0], 0);
        ck_assert_uint_eq(cfg.allow_uids[1], 4242);
        ck_assert_uint_eq(cfg.n_allow_gids, 2);
        ck_assert_uint_eq(cfg.allow_gids[1], 4343);
        ck_assert_ptr_eq(cfg.listener.allow_uids, cfg.allow_uids);
        ck_assert_uint_eq(cfg.listener.n_allow_gids, 2);
        /* Nothing exports: the console, as without a file. */
        ck_assert_uint_eq(cfg.export.exporters, SS_EXPORT_CONSOLE);
        ck_assert(cfg.export.exporters_defaulted);
}
END_TEST

/* A value for setting st that is in its range and not its default. */
static uint64_t other_value(const ss_setting *st, uint64_t dflt, size_t i)
{
        uint64_t v = st->min + 1 + i;

        if (v == dflt)
                v++;
        ck_assert_uint_le(v, st->max);
        return v;
}

START_TEST(every_limit_lands)
{
        ss_config dflt;
        uint64_t want[64];
        char text[4096], *p = text;

        ss_config_defaults(&dflt);
        p += sprintf(p, "[limits]\n");
        for (size_t i = 0; i < ss_n_settings; i++) {
                const ss_setting *st = &ss_settings[i];

                if (strcmp(st->section, "Limits") != 0)
                        continue;
                want[i] = other_value(st, ss_setting_get(&dflt, st), i);
                /* The file's names have _ where the flags have -. */
                for (const char *c = st->name; *c; c++)
                        *p++ = *c == '-' ? '_' : *c;
                p += sprintf(p, " = %llu\n", (unsigned long long)want[i]);
        }
        ss_config_free(&dflt);
        ck_assert_int_eq(load_text(text), 0);
        for (size_t i = 0; i < ss_n_settings; i++) {
                const ss_setting *st = &ss_settings[i];

                if (strcmp(st->section, "Limits") == 0)
                        ck_assert_msg(ss_setting_get(&cfg, st) == want[i], "%s: %llu, not %llu",
                                      st->name, (unsigned long long)ss_setting_get(&cfg, st),
                                      (unsigned long long)want[i]);
        }
}
END_TEST

START_TEST(every_exporter_number_lands)
{
        ss_http_config dflt;
        uint64_t want[16];
        char text[2048], *p = text;
        const ss_exporter_def *d;

        ss_http_config_defaults(&dflt);
        p += sprintf(p, "[exporter nums]\nendpoint = http://127.0.0.1:4318\n");
        for (size_t i = 0; i < ss_n_exporter_settings; i++) {
                const ss_setting *st = &ss_exporter_settings[i];

                want[i] = other_value(st, ss_setting_get(&dflt, st), i);
                p += sprintf(p, "%s = %llu\n", st->name, (unsigned long long)want[i]);
        }
        ck_assert_int_eq(load_text(text), 0);
        d = def_named("nums");
        ck_assert_ptr_nonnull(d);
        ck_assert_uint_eq(d->kind, SS_EXPORT_OTLP_HTTP);
        for (size_t i = 0; i < ss_n_exporter_settings; i++) {
                const ss_setting *st = &ss_exporter_settings[i];

                ck_assert_msg(ss_setting_get(&d->http, st) == want[i], "%s: %llu, not %llu",
                              st->name, (unsigned long long)ss_setting_get(&d->http, st),
                              (unsigned long long)want[i]);
        }
        /* The flags' exporter keeps its own numbers. */
        ck_assert_uint_eq(cfg.cli.http.timeout_ms, dflt.timeout_ms);
        ck_assert_uint_eq(cfg.cli.http.max_batch, dflt.max_batch);
}
END_TEST

START_TEST(exporter_strings_land)
{
        const ss_exporter_spec *s;
        const ss_exporter_def *d;

        char text[1024], ca[128], cert[128], key[128];

        fx_write_pem(dir, "ca.pem");
        fx_write_pem(dir, "client.pem");
        fx_write_pem(dir, "client.key");
        snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
        snprintf(cert, sizeof(cert), "%s/client.pem", dir);
        snprintf(key, sizeof(key), "%s/client.key", dir);
        snprintf(text, sizeof(text),
                 "[exporter full]\n"
                 "endpoint = https://collector.example:4318/otlp\n"
                 "protocol = http/json\n"
                 "headers = x-tenant=acme,x-note=a%%20b%%2Cc\n"
                 "compression = gzip\n"
                 "ca_file = %s\n"
                 "cert_file = %s\n"
                 "key_file = %s\n"
                 "insecure = on\n",
                 ca, cert, key);
        ck_assert_int_eq(load_text(text), 0);
        ck_assert_str_eq(err_text, "");
        d = def_named("full");
        s = spec_named("full");
        ck_assert_ptr_nonnull(d);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(d->kind, SS_EXPORT_OTLP_HTTP);
        /* A path given is kept: /v1/traces only goes where there is none. */
        ck_assert_str_eq(d->http.endpoint, "https://collector.example:4318/otlp");
        ck_assert(d->http.json);
        ck_assert(d->http.gzip);
        ck_assert_uint_eq(d->http.n_headers, 2);
        ck_assert_str_eq(header_of("full", 0), "x-tenant: acme");
        ck_assert_str_eq(header_of("full", 1), "x-note: a b,c");
        ck_assert_str_eq(d->http.ca_file, ca);
        ck_assert_str_eq(d->http.cert_file, cert);
        ck_assert_str_eq(d->http.key_file, key);
        ck_assert(s->insecure);
        ck_assert_ptr_null(d->why);
        /* What is built points at what the spec holds. */
        ck_assert_ptr_eq(d->http.endpoint, s->endpoint);
        ck_assert_ptr_eq(d->http.ca_file, s->ca_file);
        ck_assert_ptr_nonnull(strstr(s->origin, conf_path));
}
END_TEST

START_TEST(exporter_kinds_and_order)
{
        const ss_exporter_def *d;

        ck_assert_int_eq(load_text("[exporter people]\ntype = console\n"
                                   "[exporter archive]\ntype = file\npath = /tmp/ss-archive.jsonl\n"
                                   "[exporter plain]\ntype = file\n"
                                   "[exporter collector]\ntype = otel-collector\n"
                                   "endpoint = http://127.0.0.1:4317\ninsecure = true\n"
                                   "[exporter web]\nendpoint = http://127.0.0.1:4318\n"),
                         0);
        ck_assert_uint_eq(cfg.export.n, 5);
        ck_assert_str_eq(cfg.export.defs[0].name, "people");
        ck_assert_str_eq(cfg.export.defs[1].name, "archive");
        ck_assert_str_eq(cfg.export.defs[4].name, "web");
        ck_assert_uint_eq(cfg.export.defs[0].kind, SS_EXPORT_CONSOLE);
        ck_assert_uint_eq(cfg.export.defs[1].kind, SS_EXPORT_FILE);
        ck_assert_str_eq(cfg.export.defs[1].file_path, "/tmp/ss-archive.jsonl");
        ck_assert_str_eq(def_named("plain")->file_path, "sidespan-traces.jsonl");
        d = def_named("collector");
        ck_assert_uint_eq(d->kind, SS_EXPORT_OTLP_GRPC);
        ck_assert_str_eq(d->http.endpoint, "http://127.0.0.1:4317");
        ck_assert_ptr_nonnull(d->why);
        fx_assert_has(d->why, "4317");
        ck_assert_str_eq(def_named("web")->http.endpoint, "http://127.0.0.1:4318/v1/traces");
        ck_assert_uint_eq(cfg.export.exporters, SS_EXPORT_CONSOLE | SS_EXPORT_FILE |
                                                    SS_EXPORT_OTLP_GRPC | SS_EXPORT_OTLP_HTTP);
        ck_assert(!cfg.export.exporters_defaulted);
}
END_TEST

START_TEST(section_in_parts_is_one_exporter)
{
        const ss_exporter_def *d;

        ck_assert_int_eq(load_text("[exporter a]\nendpoint = http://127.0.0.1:4318\n"
                                   "[limits]\nmax_frame = 65536\n"
                                   "[exporter a]\ntimeout = 77\nheaders = k=v\n"),
                         0);
        ck_assert_uint_eq(cfg.export.n, 1);
        d = def_named("a");
        ck_assert_uint_eq(d->http.timeout_ms, 77);
        ck_assert_uint_eq(d->http.n_headers, 1);
        ck_assert_uint_eq(cfg.listener.max_frame, 65536);
}
END_TEST

START_TEST(file_and_flags_exporters_together)
{
        ck_assert_int_eq(
            setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces", 1), 0);
        ck_assert_int_eq(load_text("[exporter filed]\nendpoint = http://127.0.0.1:4318\n"), 0);
        ck_assert_uint_eq(cfg.export.n, 2);
        ck_assert_str_eq(cfg.export.defs[0].name, "filed");
        ck_assert_str_eq(cfg.export.defs[1].name, "otlp-http");
        ck_assert_str_eq(cfg.export.defs[1].http.endpoint, "http://127.0.0.1:9/v1/traces");
        ck_assert_str_eq(cfg.export.defs[0].http.endpoint, "http://127.0.0.1:4318/v1/traces");
}
END_TEST

START_TEST(too_many_exporters)
{
        char text[2048], *p = text;

        for (unsigned i = 0; i <= SS_PIPELINE_MAX_EXPORTERS; i++)
                p += sprintf(p, "[exporter e%u]\ntype = console\n", i);
        ck_assert_int_eq(load_text(text), -EINVAL);
        fx_assert_has(err_text, "too many [exporter] sections");
        /* The ninth section's key is line 18. */
        fx_assert_has(err_text, ":18:");
}
END_TEST

/* ---- precedence ------------------------------------------------------------------------- */

START_TEST(flags_over_environment_over_file_over_defaults)
{
        write_conf("[daemon]\nsocket = /tmp/ss-file.sock\nlog_level = debug\n"
                   "[limits]\nmax_frame = 65536\nmax_open_spans = 42\n");
        ck_assert_int_eq(LOAD("--config", conf_path), 0);
        ck_assert_str_eq(cfg.socket_path, "/tmp/ss-file.sock");
        ck_assert_uint_eq(cfg.listener.max_frame, 65536);
        ck_assert_uint_eq(cfg.listener.max_connections, 1024); /* default */
        ck_assert_int_eq(cfg.log_level, 7);
        ck_assert_int_eq(setenv("SIDESPAN_SOCKET", SOCKET_ENV, 1), 0);
        ck_assert_int_eq(LOAD("--config", conf_path), 0);
        ck_assert_str_eq(cfg.socket_path, SOCKET_ENV);
        ck_assert_int_eq(LOAD("--config", conf_path, "--socket", "/tmp/ss-flag.sock", "--max-frame",
                              "70000", "-l", "err"),
                         0);
        ck_assert_str_eq(cfg.socket_path, "/tmp/ss-flag.sock");
        ck_assert_ptr_eq(cfg.listener.path, cfg.socket_path);
        ck_assert_uint_eq(cfg.listener.max_frame, 70000);
        ck_assert_uint_eq(cfg.assembler.max_open_spans, 42);
        ck_assert_int_eq(cfg.log_level, 3);
        /* The flags' order around --config does not matter: the file is read first. */
        ck_assert_int_eq(LOAD("--max-frame", "70000", "--config", conf_path), 0);
        ck_assert_uint_eq(cfg.listener.max_frame, 70000);
        ck_assert_int_eq(LOAD("--max-frame=70000", "--config=/dev/null"), 0);
        ck_assert_uint_eq(cfg.listener.max_frame, 70000);
}
END_TEST

START_TEST(allow_list_flags_replace_the_files)
{
        write_conf("[daemon]\nallow_uids = 4242\nallow_gids = 4343\n");
        ck_assert_int_eq(setenv("SIDESPAN_SOCKET", SOCKET_ENV, 1), 0);
        ck_assert_int_eq(
            LOAD("--config", conf_path, "--allow-uids", "5151", "--allow-gids", "5252"), 0);
        /* The flags' lists replace the file's: a flag meant to narrow who may connect must not
         * let the file's users in too. */
        ck_assert_uint_eq(cfg.n_allow_uids, 1);
        ck_assert_uint_eq(cfg.allow_uids[0], 5151);
        ck_assert_uint_eq(cfg.n_allow_gids, 1);
        ck_assert_uint_eq(cfg.allow_gids[0], 5252);
}
END_TEST

START_TEST(help_answers_whatever_the_file_says)
{
        ck_assert_int_eq(LOAD("--config", "/nonexistent/sidespand.conf", "--help"), 1);
        fx_assert_has(out_text, "--config FILE");
        fx_assert_has(out_text, "--check-config");
        ck_assert_str_eq(err_text, "");
        ck_assert_int_eq(LOAD("--config", "/nonexistent/sidespand.conf"), -EINVAL);
        fx_assert_has(err_text, "/nonexistent/sidespand.conf");
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------- */

typedef struct bad_line {
        const char *text;
        unsigned line;       /* the line the error names */
        const char *says[2]; /* what else it names: the key, the value */
} bad_line;

#define EXPORTER "[exporter x]\nendpoint = http://127.0.0.1:4318\n"

static const bad_line bad_lines[] = {
    {"[metrics]\nexport_interval = 10\n", 2, {"export_interval", "'10'"}},
    {"[metrics]\ntemporality = later\n", 2, {"temporality", "'later'"}},
    {"[metrics]\ncardinality_limit = 0\n", 2, {"cardinality_limit", "'0'"}},
    {"[metrics]\nprometheus_listen = :9464\n", 2, {"prometheus_listen", "HOST:PORT"}},
    {"[metrics]\ndead_letter = /tmp/x\n", 2, {"dead_letter", "not a [metrics] key"}},
    {"[metrics]\ntype = langfuse\n", 2, {"type", "'langfuse'"}},
    {"[metrics]\ncolour = blue\n", 2, {"unknown key 'colour'", "[metrics]"}},
    {EXPORTER "endpoint = notaurl\n", 3, {"endpoint", "'notaurl'"}},
    {EXPORTER "endpoint = ftp://h/v1/traces\n", 3, {"endpoint", "'ftp://h/v1/traces'"}},
    {EXPORTER "endpoint = http://h:0\n", 3, {"endpoint", "'http://h:0'"}},
    {EXPORTER "endpoint = http://h:65536\n", 3, {"endpoint", "'http://h:65536'"}},
    {EXPORTER "timeout = -5\n", 3, {"timeout", "'-5'"}},
    {EXPORTER "timeout = 0\n", 3, {"timeout", "'0'"}},
    {EXPORTER "timeout = 3600001\n", 3, {"timeout", "'3600001'"}},
    {EXPORTER "timeout = 10s\n", 3, {"timeout", "'10s'"}},
    {EXPORTER "batch_size = 0\n", 3, {"batch_size", "'0'"}},
    {EXPORTER "batch_bytes = 4095\n", 3, {"batch_bytes", "'4095'"}},
    {EXPORTER "batch_delay = 0\n", 3, {"batch_delay", "'0'"}},
    {EXPORTER "queue_bytes = 1099511627777\n", 3, {"queue_bytes", "'1099511627777'"}},
    {EXPORTER "max_in_flight = 0\n", 3, {"max_in_flight", "'0'"}},
    {EXPORTER "max_in_flight = 1025\n", 3, {"max_in_flight", "'1025'"}},
    {EXPORTER "max_attempts = 1001\n", 3, {"max_attempts", "'1001'"}},
    {EXPORTER "compression = br\n", 3, {"compression", "'br'"}},
    {EXPORTER "protocol = http/xml\n", 3, {"protocol", "'http/xml'"}},
    {EXPORTER "insecure = maybe\n", 3, {"insecure", "'maybe'"}},
    {EXPORTER "headers = novalue\n", 3, {"headers", "'novalue'"}},
    {EXPORTER "headers = x=a%0D%0AEvil: 1\n", 3, {"headers", "'x=a%0D%0AEvil: 1'"}},
    {EXPORTER "type = kafka\n", 3, {"type", "'kafka'"}},
    {EXPORTER "ca_file =\n", 3, {"ca_file", "''"}},
    {EXPORTER "bogus = 1\n", 3, {"'bogus'", "[exporter x]"}},
    {"[daemon]\nlog_level = loud\n", 2, {"log_level", "'loud'"}},
    {"[daemon]\nallow_uids = no-such-user-sidespan\n", 2, {"allow_uids", "no-such-user-sidespan"}},
    {"[daemon]\nallow_gids = no-such-group-sidespan\n", 2, {"allow_gids", "no-such-group"}},
    {"[daemon]\nallow_uids = ,\n", 2, {"allow_uids", "','"}},
    {"[daemon]\ncolour = blue\n", 2, {"'colour'", "[daemon]"}},
    {"[limits]\nmax_frame = 10\n", 2, {"max_frame", "'10'"}},
    {"[limits]\nmax_frame = 67108865\n", 2, {"max_frame", "'67108865'"}},
    {"[limits]\nmax_open_spans = many\n", 2, {"max_open_spans", "'many'"}},
    /* An exporter's setting is no limit, nor a flag's name with its unit. */
    {"[limits]\nbatch_size = 5\n", 2, {"'batch_size'", "[limits]"}},
    {"[limits]\nmax_frames = 5\n", 2, {"'max_frames'", "[limits]"}},
    {"[weird]\na = b\n", 2, {"[weird]", "section"}},
    {"[daemon]\nthis is garbage\n", 2, {"not a [section]", ""}},
    {"[exporter]\nendpoint = http://127.0.0.1:1\ntimeout = 5\n", 2, {"[exporter NAME]", ""}},
};

START_TEST(bad_line_named)
{
        const bad_line *c = &bad_lines[_i];
        char where[160];

        ck_assert_int_eq(load_text(c->text), -EINVAL);
        snprintf(where, sizeof(where), "%s:%u:", conf_path, c->line);
        fx_assert_has(err_text, where);
        fx_assert_has(err_text, c->says[0]);
        fx_assert_has(err_text, c->says[1]);
        ck_assert_msg(lines_in(err_text) == 1, "one line for one error:\n%s", err_text);
        ck_assert_str_eq(out_text, "");
}
END_TEST

START_TEST(every_error_in_one_run)
{
        char text[8192] = "", where[160];
        unsigned line = 0;

        /* Every case after the other, each under its own section header. */
        for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++)
                strcat(text, bad_lines[i].text);
        ck_assert_int_eq(load_text(text), -EINVAL);
        ck_assert_msg(lines_in(err_text) == sizeof(bad_lines) / sizeof(bad_lines[0]),
                      "one line per error:\n%s", err_text);
        for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
                snprintf(where, sizeof(where), "%s:%u:", conf_path, line + bad_lines[i].line);
                fx_assert_has(err_text, where);
                line += (unsigned)lines_in(bad_lines[i].text);
        }
}
END_TEST

START_TEST(metrics_section_lands)
{
        ck_assert_int_eq(load_text("[daemon]\nstate_dir = /tmp/ss-state\n"
                                   "[metrics]\nenabled = true\nexport_interval = 15000\n"
                                   "temporality = delta\ncardinality_limit = 50\n"
                                   "prometheus_listen = 127.0.0.1:9100\n"
                                   "endpoint = https://collector.example:4317\n"
                                   "headers = authorization=Bearer%20k\ncompression = gzip\n"
                                   "timeout = 2500\nspool_bytes = 2097152\n"),
                         0);
        ck_assert(cfg.metrics.enabled);
        ck_assert_uint_eq(cfg.metrics.interval_ms, 15000);
        ck_assert_int_eq(cfg.metrics.temporality, SS_TEMPORALITY_DELTA);
        ck_assert_uint_eq(cfg.metrics.max_series, 50);
        ck_assert_str_eq(cfg.metrics.prometheus_listen, "127.0.0.1:9100");
        ck_assert(cfg.metrics.export_otlp);
        ck_assert_uint_eq(cfg.metrics.exporter.kind, SS_EXPORT_OTLP_GRPC);
        ck_assert(cfg.metrics.exporter.grpc.gzip);
        ck_assert_uint_eq(cfg.metrics.exporter.grpc.timeout_ms, 2500);
        ck_assert_uint_eq(cfg.metrics.exporter.grpc.spool.max_bytes, 2097152);
        ck_assert_str_eq(cfg.metrics.exporter.grpc.spool.dir, "/tmp/ss-state/spool/metrics");
        ck_assert_str_eq(cfg.metrics.exporter.grpc.headers[0], "authorization: Bearer k");
        ck_assert_ptr_null(cfg.metrics.exporter.grpc.dead_letter);
        /* A file's plain-text gRPC needs insecure = true, as an [exporter]'s does. */
        ck_assert_int_eq(load_text("[metrics]\nendpoint = http://c:4317\n"), -EINVAL);
        fx_assert_has(err_text, "insecure");
        ck_assert_int_eq(load_text("[metrics]\nendpoint = http://c:4317\ninsecure = true\n"), 0);
        ck_assert_int_eq(load_text("[metrics]\nenabled = false\n"), 0);
        ck_assert(!cfg.metrics.enabled);
}
END_TEST

START_TEST(empty_socket_refused)
{
        /* An empty socket path is refused (file and --socket ""): taken, it would bind an
         * autobound abstract address that no client can find. */
        write_conf("[daemon]\nsocket =\n");
        ck_assert_int_eq(LOAD("--config", conf_path), -EINVAL);
        fx_assert_has(err_text, "socket");
        ck_assert_int_eq(LOAD("--socket", ""), -EINVAL);
        fx_assert_has(err_text, "--socket");
}
END_TEST

START_TEST(every_garbage_line_reported)
{
        ck_assert_int_eq(load_text("[daemon]\nfirst garbage\nlog_level = info\nsecond garbage\n"),
                         -EINVAL);
        fx_assert_has(err_text, ":2:");
        /* Every bad line is reported, not only the first. */
        fx_assert_has(err_text, ":4:");
}
END_TEST

START_TEST(long_line_read_whole)
{
        char text[1024], value[301];

        memset(value, 'v', 300);
        value[300] = '\0';
        snprintf(text, sizeof(text),
                 "[exporter long]\nendpoint = http://127.0.0.1:4318\n"
                 "headers = x-long=%s\ntimeout = 77\n",
                 value);
        /* A line has no length limit (inih's 200 bytes cut a value in two). */
        ck_assert_msg(load_text(text) == 0, "%s", err_text);
        ck_assert_uint_eq(strlen(header_of("long", 0)), strlen("x-long: ") + 300);
}
END_TEST

/* ---- presets ---------------------------------------------------------------------------- */

START_TEST(langfuse_basic_auth)
{
        /* The daemon's own base64, each padding: 3, 4 and 5 bytes of "pk:sk". */
        static const char *const cases[][3] = {
            {"a", "b", "Authorization: Basic YTpi"},
            {"ab", "c", "Authorization: Basic YWI6Yw=="},
            {"abc", "d", "Authorization: Basic YWJjOmQ="},
            {"pk-lf-1", "sk-lf-2", "Authorization: Basic cGstbGYtMTpzay1sZi0y"},
        };
        char text[512];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                snprintf(text, sizeof(text),
                         "[exporter lf]\ntype = langfuse\npublic_key = %s\nsecret_key = %s\n",
                         cases[i][0], cases[i][1]);
                ck_assert_int_eq(load_text(text), 0);
                ck_assert_uint_eq(def_named("lf")->kind, SS_EXPORT_OTLP_HTTP);
                ck_assert_uint_eq(def_named("lf")->http.n_headers, 2);
                ck_assert_str_eq(header_of("lf", 0), cases[i][2]);
                ck_assert_str_eq(header_of("lf", 1), "x-langfuse-ingestion-version: 4");
                ck_assert_str_eq(def_named("lf")->http.endpoint,
                                 "https://cloud.langfuse.com/api/public/otel/v1/traces");
                ck_assert(!def_named("lf")->http.json);
        }
}
END_TEST

START_TEST(langfuse_from_environment)
{
        ck_assert_int_eq(setenv("LANGFUSE_PUBLIC_KEY", "pk-env", 1), 0);
        ck_assert_int_eq(setenv("LANGFUSE_SECRET_KEY", "sk-env", 1), 0);
        ck_assert_int_eq(setenv("LANGFUSE_HOST", "http://127.0.0.1:3000", 1), 0);
        ck_assert_int_eq(load_text("[exporter lf]\ntype = langfuse\n"), 0);
        ck_assert_str_eq(def_named("lf")->http.endpoint,
                         "http://127.0.0.1:3000/api/public/otel/v1/traces");
        ck_assert_str_eq(header_of("lf", 0), "Authorization: Basic cGstZW52OnNrLWVudg==");
        /* The file's key and host before the variables. */
        ck_assert_int_eq(load_text("[exporter lf]\ntype = langfuse\npublic_key = pk-file\n"
                                   "host = https://lf.example\n"),
                         0);
        ck_assert_str_eq(def_named("lf")->http.endpoint,
                         "https://lf.example/api/public/otel/v1/traces");
        ck_assert_str_eq(header_of("lf", 0), "Authorization: Basic cGstZmlsZTpzay1lbnY=");
        /* An empty variable is unset. */
        ck_assert_int_eq(setenv("LANGFUSE_SECRET_KEY", "", 1), 0);
        ck_assert_int_eq(load_text("[exporter lf]\ntype = langfuse\n"), -EINVAL);
        fx_assert_has(err_text, "LANGFUSE_SECRET_KEY");
}
END_TEST

START_TEST(langfuse_refusals)
{
        ck_assert_int_eq(load_text("[exporter lf]\ntype = langfuse\nsecret_key = s\n"), -EINVAL);
        fx_assert_has(err_text, "LANGFUSE_PUBLIC_KEY");
        fx_assert_has(err_text, "exporter lf");
        fx_assert_has(err_text, conf_path);
        ck_assert_int_eq(load_text("[exporter lf]\ntype = langfuse\npublic_key = p\n"), -EINVAL);
        fx_assert_has(err_text, "LANGFUSE_SECRET_KEY");
        ck_assert_int_eq(load_text("[exporter lf]\ntype = langfuse\npublic_key = p\n"
                                   "secret_key = s\nprotocol = grpc\n"),
                         -EINVAL);
        fx_assert_has(err_text, "grpc refused");
        ck_assert_int_eq(load_text("[exporter lf]\ntype = langfuse\npublic_key = p\n"
                                   "secret_key = s\nregion = us\n"),
                         0);
        ck_assert_str_eq(def_named("lf")->http.endpoint,
                         "https://us.cloud.langfuse.com/api/public/otel/v1/traces");
        ck_assert_int_eq(load_text("[exporter lf]\ntype = langfuse\npublic_key = p\n"
                                   "secret_key = s\nregion = mars\n"),
                         -EINVAL);
        fx_assert_has(err_text, "'mars'");
        /* The bad region's line names the file and line of its exporter. */
        fx_assert_has(err_text, conf_path);
}
END_TEST

START_TEST(langfuse_host_with_trailing_slash)
{
        ck_assert_int_eq(load_text("[exporter lf]\ntype = langfuse\npublic_key = p\n"
                                   "secret_key = s\nhost = http://127.0.0.1:3000/\n"),
                         0);
        /* The host's trailing slash is not doubled: not "http://127.0.0.1:3000//api/...". */
        ck_assert_str_eq(def_named("lf")->http.endpoint,
                         "http://127.0.0.1:3000/api/public/otel/v1/traces");
}
END_TEST

START_TEST(promptlayer_preset)
{
        ck_assert_int_eq(load_text("[exporter pl]\ntype = promptlayer\napi_key = pl_k\n"), 0);
        ck_assert_str_eq(def_named("pl")->http.endpoint, "https://api.promptlayer.com/v1/traces");
        ck_assert_str_eq(header_of("pl", 0), "X-API-KEY: pl_k");
        ck_assert_uint_eq(def_named("pl")->http.n_headers, 1);
        ck_assert_int_eq(setenv("PROMPTLAYER_API_KEY", "pl_env", 1), 0);
        ck_assert_int_eq(load_text("[exporter pl]\ntype = promptlayer\n"
                                   "endpoint = http://127.0.0.1:9/v1/traces\nheaders = x-a=1\n"),
                         0);
        ck_assert_str_eq(def_named("pl")->http.endpoint, "http://127.0.0.1:9/v1/traces");
        ck_assert_str_eq(header_of("pl", 0), "x-a: 1");
        ck_assert_str_eq(header_of("pl", 1), "X-API-KEY: pl_env");
        ck_assert_int_eq(unsetenv("PROMPTLAYER_API_KEY"), 0);
        ck_assert_int_eq(load_text("[exporter pl]\ntype = promptlayer\n"), -EINVAL);
        fx_assert_has(err_text, "PROMPTLAYER_API_KEY");
        fx_assert_has(err_text, "exporter pl");
}
END_TEST

/* Load an exporter b of type with the keys of rest; its def when it loaded, else NULL. */
static const ss_exporter_def *load_typed(const char *type, const char *rest)
{
        char text[256];

        snprintf(text, sizeof(text), "[exporter b]\ntype = %s\n%s", type, rest);
        return load_text(text) == 0 ? def_named("b") : NULL;
}

START_TEST(otlp_backends_by_port)
{
        static const char *const types[] = {"jaeger", "tempo", "otel-collector", "otlp"};
        const ss_exporter_def *d;

        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
                d = load_typed(types[i], "endpoint = http://127.0.0.1:4318\n");
                ck_assert_ptr_nonnull(d);
                ck_assert_uint_eq(d->kind, SS_EXPORT_OTLP_HTTP);
                ck_assert_str_eq(d->http.endpoint, "http://127.0.0.1:4318/v1/traces");
                d = load_typed(types[i], "endpoint = http://127.0.0.1:4317\ninsecure = true\n");
                ck_assert_ptr_nonnull(d);
                ck_assert_uint_eq(d->kind, SS_EXPORT_OTLP_GRPC);
                ck_assert_str_eq(d->http.endpoint, "http://127.0.0.1:4317");
                fx_assert_has(d->why, "4317");
                /* Plain text gRPC only when asked for; a path is no gRPC endpoint. */
                ck_assert_ptr_null(load_typed(types[i], "endpoint = http://127.0.0.1:4317\n"));
                fx_assert_has(err_text, "insecure");
                ck_assert_ptr_null(load_typed(types[i],
                                              "protocol = grpc\n"
                                              "endpoint = https://127.0.0.1:4317/v1/traces\n"));
                fx_assert_has(err_text, "no path");
        }
        ck_assert_int_eq(load_text("[exporter j]\ntype = jaeger\n"), 0);
        ck_assert_uint_eq(def_named("j")->kind, SS_EXPORT_OTLP_GRPC);
        ck_assert_str_eq(def_named("j")->http.endpoint, "http://localhost:4317");
        ck_assert(spec_named("j")->insecure);
        ck_assert_int_eq(load_text("[exporter t]\ntype = tempo\nprotocol = http/json\n"), 0);
        ck_assert_uint_eq(def_named("t")->kind, SS_EXPORT_OTLP_HTTP);
        ck_assert(def_named("t")->http.json);
        ck_assert_str_eq(def_named("t")->http.endpoint, "http://localhost:4318/v1/traces");
        ck_assert_int_eq(load_text("[exporter o]\ntype = otlp\n"), -EINVAL);
        fx_assert_has(err_text, "no endpoint");
}
END_TEST

/* ---- --check-config --------------------------------------------------------------------- */

START_TEST(check_config_prints_masked)
{
        write_conf("[daemon]\nsocket = /tmp/ss-check.sock\n"
                   "[exporter a]\nendpoint = http://127.0.0.1:4318\n"
                   "headers = Authorization=Bearer%20SECRET1,x-api-key=SECRET2,"
                   "X-Auth-Token=SECRET3,client_secret=SECRET4,x-tenant=acme\n"
                   "[exporter lf]\ntype = langfuse\npublic_key = pk-SECRET5\n"
                   "secret_key = sk-SECRET6\n"
                   "[exporter pl]\ntype = promptlayer\napi_key = SECRET7\n");
        ck_assert_int_eq(LOAD("--config", conf_path, "--check-config"), 1);
        ck_assert_str_eq(err_text, "");
        ck_assert_ptr_null(strstr(out_text, "SECRET"));
        fx_assert_has(out_text, "socket = /tmp/ss-check.sock\n");
        fx_assert_has(out_text, "\n[exporter a]\n");
        fx_assert_has(out_text, "headers = Authorization=****,x-api-key=****,X-Auth-Token=****,"
                                "client_secret=****,x-tenant=acme\n");
        fx_assert_has(out_text, "headers = Authorization=****,x-langfuse-ingestion-version=4\n");
        fx_assert_has(out_text, "headers = X-API-KEY=****\n");
        fx_assert_has(out_text, "\n[limits]\nmax_frame = ");
        /* A configuration it refuses prints nothing on standard output. */
        write_conf("[exporter a]\ntimeout = -5\n");
        ck_assert_int_eq(LOAD("--config", conf_path, "--check-config"), -EINVAL);
        ck_assert_str_eq(out_text, "");
        fx_assert_has(err_text, "timeout");
}
END_TEST

int main(void)
{
        Suite *s = suite_create("conf-file");
        TCase *tc = tcase_create("conf-file");

        tcase_add_unchecked_fixture(tc, dir_make, dir_remove);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, daemon_section_lands);
        tcase_add_test(tc, every_limit_lands);
        tcase_add_test(tc, every_exporter_number_lands);
        tcase_add_test(tc, exporter_strings_land);
        tcase_add_test(tc, exporter_kinds_and_order);
        tcase_add_test(tc, section_in_parts_is_one_exporter);
        tcase_add_test(tc, file_and_flags_exporters_together);
        tcase_add_test(tc, too_many_exporters);
        tcase_add_test(tc, flags_over_environment_over_file_over_defaults);
        tcase_add_test(tc, allow_list_flags_replace_the_files);
        tcase_add_test(tc, help_answers_whatever_the_file_says);
        tcase_add_loop_test(tc, bad_line_named, 0, (int)(sizeof(bad_lines) / sizeof(bad_lines[0])));
        tcase_add_test(tc, every_error_in_one_run);
        tcase_add_test(tc, empty_socket_refused);
        tcase_add_test(tc, every_garbage_line_reported);
        tcase_add_test(tc, long_line_read_whole);
        tcase_add_test(tc, langfuse_basic_auth);
        tcase_add_test(tc, langfuse_from_environment);
        tcase_add_test(tc, langfuse_refusals);
        tcase_add_test(tc, langfuse_host_with_trailing_slash);
        tcase_add_test(tc, promptlayer_preset);
        tcase_add_test(tc, otlp_backends_by_port);
        tcase_add_test(tc, check_config_prints_masked);
        tcase_add_test(tc, metrics_section_lands);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
