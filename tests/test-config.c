/* SPDX-License-Identifier: MIT */
/*
 * sidespand's configuration: defaults, the environment, flags over the
 * environment, OTLP endpoint rules, headers, and errors that name the flag
 * or variable and the value. Every test starts from an environment with none
 * of the variables the daemon reads, and standard output and error are
 * captured around each load.
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
#include "sidespan-version.h"

static void setup(void)
{
        env_clear();
        ck_assert_int_eq(setenv("SIDESPAN_SOCKET", "/tmp/ss-test-config.sock", 1), 0);
}

static void teardown(void)
{
        ss_config_free(&cfg);
        env_clear();
}

/* The path the file exporter writes to, or NULL when there is none. */
static const char *file_path(void)
{
        const ss_exporter_def *d = def_of(SS_EXPORT_FILE);

        return d ? d->file_path : NULL;
}

/* The stage configurations point at the strings cfg owns. */
static void assert_linked(void)
{
        const ss_exporter_def *d = def_of(SS_EXPORT_OTLP_HTTP);

        ck_assert_ptr_eq(cfg.listener.path, cfg.socket_path);
        if (!d)
                return;
        ck_assert_ptr_eq(d->http.endpoint, cfg.cli.endpoint);
        ck_assert_ptr_eq(d->http.headers, (const char *const *)cfg.cli.headers);
        ck_assert_uint_eq(d->http.n_headers, cfg.cli.n_headers);
}

/* ---- defaults --------------------------------------------------------------------------- */

START_TEST(defaults_without_endpoint_print_to_console)
{
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_str_eq(cfg.socket_path, "/tmp/ss-test-config.sock");
        ck_assert_str_eq(cfg.listener.path, "/tmp/ss-test-config.sock");
        ck_assert_uint_eq(cfg.export.exporters, SS_EXPORT_CONSOLE);
        ck_assert(cfg.export.exporters_defaulted);
        ck_assert_int_eq(cfg.export.console_fd, 1);
        ck_assert_ptr_null(cfg.cli.endpoint);
        ck_assert_ptr_null(file_path());
        ck_assert_uint_eq(cfg.cli.n_headers, 0);
        ck_assert_uint_eq(cfg.listener.max_frame, SS_MAX_FRAME_DEFAULT);
        ck_assert_uint_eq(cfg.listener.max_connections, 1024);
        ck_assert_uint_eq(cfg.assembler.max_open_spans, 10000);
        ck_assert_uint_eq(cfg.assembler.max_open_total, 1000000);
        ck_assert_uint_eq(cfg.assembler.max_trace_spans, 10000);
        ck_assert_uint_eq(cfg.assembler.orphan_grace_ms, 10000);
        ck_assert_uint_eq(cfg.assembler.limits.max_attrs, 128);
        ck_assert_uint_eq(cfg.assembler.limits.max_value_len, 256u * 1024u);
        ck_assert_uint_eq(cfg.cli.http.timeout_ms, 10000);
        ck_assert_uint_eq(cfg.cli.http.max_batch, 512);
        ck_assert(!cfg.cli.http.gzip);
        ck_assert_uint_eq(cfg.drain_timeout_ms, 15000);
        ck_assert_int_eq(cfg.log_level, 6);
        ck_assert_str_eq(err_text, "");
        assert_linked();
}
END_TEST

START_TEST(endpoint_makes_otlp_http_the_default)
{
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_uint_eq(cfg.export.exporters, SS_EXPORT_OTLP_HTTP);
        ck_assert_str_eq(cfg.cli.endpoint, "http://collector:4318/v1/traces");
        assert_linked();
        /* An exporter named on the command line is what runs, endpoint or not. */
        ck_assert_int_eq(LOAD("-e", "console"), 0);
        ck_assert_uint_eq(cfg.export.exporters, SS_EXPORT_CONSOLE);
        ck_assert(!cfg.export.exporters_defaulted);
}
END_TEST

START_TEST(default_socket_paths)
{
        ck_assert_int_eq(unsetenv("SIDESPAN_SOCKET"), 0);
        /* systemd may list several runtime directories: the first is the daemon's. */
        ck_assert_int_eq(setenv("RUNTIME_DIRECTORY", "/run/a:/run/b", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_str_eq(cfg.socket_path, "/run/a/sidespan.sock");
        ck_assert_int_eq(unsetenv("RUNTIME_DIRECTORY"), 0);
        ck_assert_int_eq(setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        if (geteuid() == 0) {
                ck_assert_str_eq(cfg.socket_path, "/run/sidespan/sidespan.sock");
        } else {
                ck_assert_str_eq(cfg.socket_path, "/run/user/1000/sidespan.sock");
                ck_assert_int_eq(unsetenv("XDG_RUNTIME_DIR"), 0);
                ck_assert_int_eq(LOAD_NO_ARGS(), -EINVAL);
                fx_assert_has(err_text, "SIDESPAN_SOCKET");
        }
        assert_linked();
}
END_TEST

START_TEST(file_exporter_default_path)
{
        ck_assert_int_eq(LOAD("-e", "file,console"), 0);
        ck_assert_uint_eq(cfg.export.exporters, SS_EXPORT_FILE | SS_EXPORT_CONSOLE);
        ck_assert_str_eq(file_path(), "sidespan-traces.jsonl");
        assert_linked();
        ck_assert_int_eq(LOAD("--file", "/tmp/out.jsonl", "--exporter", "file"), 0);
        ck_assert_uint_eq(cfg.export.exporters, SS_EXPORT_FILE);
        ck_assert_str_eq(file_path(), "/tmp/out.jsonl");
        assert_linked();
}
END_TEST

/* ---- precedence ------------------------------------------------------------------------- */

START_TEST(flags_override_environment)
{
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5000", 1), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_uint_eq(cfg.cli.http.timeout_ms, 5000);
        ck_assert(cfg.cli.http.gzip);
        ck_assert_int_eq(
            LOAD("--socket", "/tmp/flag.sock", "--timeout-ms", "7000", "--compression", "none"), 0);
        ck_assert_str_eq(cfg.socket_path, "/tmp/flag.sock");
        ck_assert_uint_eq(cfg.cli.http.timeout_ms, 7000);
        ck_assert(!cfg.cli.http.gzip);
        assert_linked();
}
END_TEST

START_TEST(traces_variables_win_over_general_ones)
{
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5000", 1), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "6000", 1), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_uint_eq(cfg.cli.http.timeout_ms, 6000);
        ck_assert(!cfg.cli.http.gzip);
        /* An empty variable counts as unset. */
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_uint_eq(cfg.cli.http.timeout_ms, 5000);
}
END_TEST

START_TEST(limit_flags_reach_their_stages)
{
        ck_assert_int_eq(LOAD("--max-frame", "65536", "--max-connections", "3", "--max-open-spans",
                              "5", "--max-trace-spans", "6", "--max-attributes", "7",
                              "--orphan-grace-ms", "0", "--drain-timeout-ms", "9", "--batch-size",
                              "10", "--batch-delay-ms", "11", "-l", "debug"),
                         0);
        ck_assert_uint_eq(cfg.listener.max_frame, 65536);
        ck_assert_uint_eq(cfg.listener.max_connections, 3);
        ck_assert_uint_eq(cfg.assembler.max_open_spans, 5);
        ck_assert_uint_eq(cfg.assembler.max_trace_spans, 6);
        ck_assert_uint_eq(cfg.assembler.limits.max_attrs, 7);
        ck_assert_uint_eq(cfg.assembler.orphan_grace_ms, 0);
        ck_assert_uint_eq(cfg.drain_timeout_ms, 9);
        ck_assert_uint_eq(cfg.cli.http.max_batch, 10);
        ck_assert_uint_eq(cfg.cli.http.batch_delay_ms, 11);
        ck_assert_int_eq(cfg.log_level, 7);
}
END_TEST

START_TEST(hostile_client_flags_reach_their_stages)
{
        ck_assert_int_eq(LOAD("--max-connections-per-process", "2", "--max-input-bytes", "1048576",
                              "--hello-timeout-ms", "3", "--frame-timeout-ms", "4",
                              "--idle-timeout-ms", "5", "--max-open-spans-per-process", "6",
                              "--max-resource-attributes", "7", "--max-key-length", "8",
                              "--max-name-length", "9", "--max-span-bytes", "10000",
                              "--foreign-wait-ms", "11", "--batch-bytes", "12000", "--allow-uids",
                              "root,4242", "--allow-gids", "0,4343"),
                         0);
        ck_assert_uint_eq(cfg.listener.max_connections_process, 2);
        ck_assert_uint_eq(cfg.listener.max_input_bytes, 1048576);
        ck_assert_uint_eq(cfg.listener.hello_timeout_ms, 3);
        ck_assert_uint_eq(cfg.listener.frame_timeout_ms, 4);
        ck_assert_uint_eq(cfg.listener.idle_timeout_ms, 5);
        ck_assert_uint_eq(cfg.assembler.max_open_process, 6);
        ck_assert_uint_eq(cfg.assembler.max_resource_attrs, 7);
        ck_assert_uint_eq(cfg.assembler.limits.max_key_len, 8);
        ck_assert_uint_eq(cfg.assembler.limits.max_name_len, 9);
        ck_assert_uint_eq(cfg.assembler.limits.max_bytes, 10000);
        ck_assert_uint_eq(cfg.assembler.foreign_wait_ms, 11);
        ck_assert_uint_eq(cfg.cli.http.max_batch_bytes, 12000);
        /* Names and numbers alike; the stage's lists point at the config's. */
        ck_assert_uint_eq(cfg.n_allow_uids, 2);
        ck_assert_uint_eq(cfg.allow_uids[0], 0);
        ck_assert_uint_eq(cfg.allow_uids[1], 4242);
        ck_assert_uint_eq(cfg.n_allow_gids, 2);
        ck_assert_uint_eq(cfg.allow_gids[0], 0);
        ck_assert_uint_eq(cfg.allow_gids[1], 4343);
        ck_assert_ptr_eq(cfg.listener.allow_uids, cfg.allow_uids);
        ck_assert_uint_eq(cfg.listener.n_allow_uids, 2);
        ck_assert_ptr_eq(cfg.listener.allow_gids, cfg.allow_gids);
        ck_assert_uint_eq(cfg.listener.n_allow_gids, 2);
        ck_assert_str_eq(err_text, "");
}
END_TEST

START_TEST(hostile_client_limits_off_and_at_their_bounds)
{
        /* 0 turns the optional limits off; 64-bit settings take values past 32 bits. */
        ck_assert_int_eq(LOAD("--max-connections-per-process", "0", "--max-input-bytes",
                              "1099511627776", "--hello-timeout-ms", "0", "--frame-timeout-ms", "0",
                              "--idle-timeout-ms", "86400000", "--max-open-spans-per-process", "0",
                              "--max-key-length", "65536", "--max-span-bytes", "16777216",
                              "--foreign-wait-ms", "0", "--batch-bytes", "33554432"),
                         0);
        ck_assert_uint_eq(cfg.listener.max_connections_process, 0);
        ck_assert_uint_eq(cfg.listener.max_input_bytes, 1ull << 40);
        ck_assert_uint_eq(cfg.listener.hello_timeout_ms, 0);
        ck_assert_uint_eq(cfg.listener.idle_timeout_ms, 86400000);
        ck_assert_uint_eq(cfg.assembler.max_open_process, 0);
        ck_assert_uint_eq(cfg.assembler.limits.max_key_len, 65536);
        ck_assert_uint_eq(cfg.assembler.limits.max_bytes, 16u << 20);
        ck_assert_uint_eq(cfg.assembler.foreign_wait_ms, 0);
        ck_assert_uint_eq(cfg.cli.http.max_batch_bytes, 32u << 20);
}
END_TEST

/* ---- endpoints -------------------------------------------------------------------------- */

START_TEST(base_endpoint_gets_v1_traces)
{
        static const char *const cases[][2] = {
            {"http://collector:4318", "http://collector:4318/v1/traces"},
            {"http://collector:4318/", "http://collector:4318/v1/traces"},
            {"https://otel.example/api/otel", "https://otel.example/api/otel/v1/traces"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_ENDPOINT", cases[i][0], 1), 0);
                ck_assert_int_eq(LOAD_NO_ARGS(), 0);
                ck_assert_str_eq(cfg.cli.endpoint, cases[i][1]);
                ck_assert_str_eq(cfg.cli.http.endpoint, cases[i][1]);
        }
}
END_TEST

START_TEST(traces_endpoint_used_as_given)
{
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318", 1), 0);
        ck_assert_int_eq(setenv("UPSONIC_OTEL_ENDPOINT", "http://upsonic:4318", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_str_eq(cfg.cli.endpoint, "http://upsonic:4318/v1/traces");
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4318/custom", 1),
                         0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_str_eq(cfg.cli.endpoint, "http://t:4318/custom");
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4318", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_str_eq(cfg.cli.endpoint, "http://t:4318");
        assert_linked();
}
END_TEST

START_TEST(endpoint_flag_without_path_gets_v1_traces)
{
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env:4318/x", 1), 0);
        ck_assert_int_eq(LOAD("--endpoint", "http://flag:4318/"), 0);
        ck_assert_str_eq(cfg.cli.endpoint, "http://flag:4318/v1/traces");
        ck_assert_int_eq(LOAD("--endpoint", "http://flag:4318"), 0);
        ck_assert_str_eq(cfg.cli.endpoint, "http://flag:4318/v1/traces");
        ck_assert_int_eq(LOAD("--endpoint", "https://flag/api/public/otel/v1/traces"), 0);
        ck_assert_str_eq(cfg.cli.endpoint, "https://flag/api/public/otel/v1/traces");
        ck_assert_uint_eq(cfg.export.exporters, SS_EXPORT_OTLP_HTTP);
        assert_linked();
}
END_TEST

/* ---- headers ---------------------------------------------------------------------------- */

START_TEST(headers_percent_decoded)
{
        ck_assert_int_eq(
            setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=abc%20def,Authorization=Basic%3Dx", 1),
            0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_uint_eq(cfg.cli.n_headers, 2);
        ck_assert_str_eq(cfg.cli.headers[0], "api-key: abc def");
        ck_assert_str_eq(cfg.cli.headers[1], "Authorization: Basic=x");
        assert_linked();
}
END_TEST

START_TEST(header_sources_combine_and_traces_wins)
{
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_HEADERS", "general=1", 1), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "traces=2", 1), 0);
        ck_assert_int_eq(setenv("UPSONIC_OTEL_HEADERS", "upsonic=3", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_uint_eq(cfg.cli.n_headers, 2);
        ck_assert_str_eq(cfg.cli.headers[0], "traces: 2");
        ck_assert_str_eq(cfg.cli.headers[1], "upsonic: 3");
}
END_TEST

START_TEST(header_flags_replace_environment)
{
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_HEADERS", "env-a=1,env-b=2", 1), 0);
        ck_assert_int_eq(LOAD("-H", "flag-a=x", "--header", "flag-b=y,flag-c=z"), 0);
        ck_assert_uint_eq(cfg.cli.n_headers, 3);
        ck_assert_str_eq(cfg.cli.headers[0], "flag-a: x");
        ck_assert_str_eq(cfg.cli.headers[1], "flag-b: y");
        ck_assert_str_eq(cfg.cli.headers[2], "flag-c: z");
        assert_linked();
}
END_TEST

/* ---- protocol and TLS from the environment ---------------------------------------------- */

/* setenv(var, dir/name), name written as a PEM file; the path in path. */
static void set_pem_env(const char *var, const char *dir, const char *name, char *path, size_t size)
{
        fx_write_pem(dir, name);
        ck_assert_int_lt(snprintf(path, size, "%s/%s", dir, name), (int)size);
        ck_assert_int_eq(setenv(var, path, 1), 0);
}

START_TEST(environment_tls_files_land)
{
        const ss_exporter_def *d;
        char dir[64], general_ca[128], traces_ca[128], client[128], general_key[128],
            traces_key[128];

        fx_tmpdir(dir, sizeof(dir), "config-tls");
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318", 1), 0);
        set_pem_env("OTEL_EXPORTER_OTLP_CERTIFICATE", dir, "general-ca.pem", general_ca,
                    sizeof(general_ca));
        set_pem_env("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", dir, "traces-ca.pem", traces_ca,
                    sizeof(traces_ca));
        set_pem_env("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", dir, "client.pem", client,
                    sizeof(client));
        set_pem_env("OTEL_EXPORTER_OTLP_CLIENT_KEY", dir, "general.key", general_key,
                    sizeof(general_key));
        set_pem_env("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", dir, "traces.key", traces_key,
                    sizeof(traces_key));
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        d = def_of(SS_EXPORT_OTLP_HTTP);
        ck_assert_ptr_nonnull(d);
        ck_assert_str_eq(d->http.endpoint, "https://c:4318/v1/traces");
        ck_assert_str_eq(d->http.ca_file, traces_ca);
        ck_assert_str_eq(d->http.cert_file, client);
        ck_assert_str_eq(d->http.key_file, traces_key);
        ck_assert_ptr_eq(d->http.ca_file, cfg.cli.ca_file);
        /* An empty variable counts as unset: the general one is used. */
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_str_eq(def_of(SS_EXPORT_OTLP_HTTP)->http.ca_file, general_ca);
        /* A file that cannot be read is refused at load, naming it. */
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), -EINVAL);
        fx_tmpdir_remove(dir);
}
END_TEST

START_TEST(protocol_from_environment_and_flags)
{
        const ss_exporter_def *d;

        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", 1), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        d = def_of(SS_EXPORT_OTLP_HTTP);
        ck_assert_ptr_nonnull(d);
        ck_assert(d->http.json);
        ck_assert_str_eq(d->http.endpoint, "http://c:4318/v1/traces");
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert(!def_of(SS_EXPORT_OTLP_HTTP)->http.json);
        ck_assert_int_eq(LOAD("--protocol", "http/json"), 0);
        ck_assert(def_of(SS_EXPORT_OTLP_HTTP)->http.json);
        /* gRPC takes the base's scheme, host and port; http:// is plain text, as the SDKs
         * read it. */
        ck_assert_int_eq(LOAD("--protocol", "grpc"), 0);
        ck_assert_uint_eq(cfg.export.exporters, SS_EXPORT_OTLP_GRPC);
        ck_assert_str_eq(def_of(SS_EXPORT_OTLP_GRPC)->http.endpoint, "http://c:4318");
        /* No protocol: port 4317 is gRPC, and says why; unless --exporter says otlp-http. */
        ck_assert_int_eq(unsetenv("OTEL_EXPORTER_OTLP_PROTOCOL"), 0);
        ck_assert_int_eq(unsetenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        d = def_of(SS_EXPORT_OTLP_GRPC);
        ck_assert_ptr_nonnull(d);
        ck_assert_str_eq(d->name, "otlp-grpc");
        fx_assert_has(d->why, "4317");
        ck_assert_int_eq(LOAD("-e", "otlp-http"), 0);
        ck_assert_str_eq(def_of(SS_EXPORT_OTLP_HTTP)->http.endpoint, "http://c:4317/v1/traces");
}
END_TEST

START_TEST(check_config_prints_the_flags_exporter)
{
        ck_assert_int_eq(
            setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20SECRET,x-a=1", 1), 0);
        ck_assert_int_eq(
            LOAD("--endpoint", "http://c:4318", "--check-config", "--max-frame", "65536"), 1);
        ck_assert_str_eq(err_text, "");
        ck_assert_ptr_null(strstr(out_text, "SECRET"));
        fx_assert_has(out_text, "# sidespand without --config");
        fx_assert_has(out_text, "socket = /tmp/ss-test-config.sock\n");
        fx_assert_has(out_text, "max_frame = 65536\n");
        fx_assert_has(out_text, "endpoint = http://c:4318/v1/traces\n");
        fx_assert_has(out_text, "headers = Authorization=****,x-a=1\n");
}
END_TEST

/* ---- help, version, errors -------------------------------------------------------------- */

START_TEST(help_and_version_exit_zero)
{
        char want[64];

        /* Even with a bad value in the environment. */
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift", 1), 0);
        ck_assert_int_eq(LOAD("--help"), 1);
        fx_assert_has(out_text, "Usage: sidespand");
        fx_assert_has(out_text, "--max-frame");
        ck_assert_str_eq(err_text, "");
        ck_assert_int_eq(LOAD("-V"), 1);
        snprintf(want, sizeof(want), "sidespand %s\n", SIDESPAN_VERSION_STRING);
        ck_assert_str_eq(out_text, want);
        ck_assert_int_eq(LOAD("--version"), 1);
        ck_assert_str_eq(out_text, want);
}
END_TEST

/* The text --help gives for the setting: from its flag to the next flag or section, the
 * lines joined with one space. */
static void help_of(const char *help, const char *flag, char *out, size_t size)
{
        const char *p = strstr(help, flag), *end;
        size_t n = 0;

        ck_assert_msg(p != NULL, "--help does not list %s", flag);
        end = strstr(p + 1, "\n      --");
        if (!end || (strstr(p, "\n\n") && strstr(p, "\n\n") < end))
                end = strstr(p, "\n\n");
        if (!end)
                end = p + strlen(p);
        for (; p < end && n + 1 < size; p++) {
                if (*p == '\n' || *p == ' ') {
                        if (n && out[n - 1] != ' ')
                                out[n++] = ' ';
                        continue;
                }
                out[n++] = *p;
        }
        out[n] = '\0';
}

START_TEST(help_lists_every_setting_with_its_default)
{
        static char help[sizeof(out_text)];
        ss_config dflt;
        char flag[64], text[1024], want[64];

        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        dflt = cfg; /* the defaults, as a load without flags leaves them; dflt owns them now */
        memset(&cfg, 0, sizeof(cfg));
        ck_assert_int_eq(LOAD("--help"), 1);
        ck_assert_uint_lt(strlen(out_text), sizeof(out_text) - 1); /* not cut short */
        memcpy(help, out_text, sizeof(help));
        for (size_t i = 0; i < ss_n_settings; i++) {
                const ss_setting *st = &ss_settings[i];

                snprintf(flag, sizeof(flag), "--%s %s", st->name, st->arg);
                help_of(help, flag, text, sizeof(text));
                snprintf(want, sizeof(want), "(default %llu)",
                         (unsigned long long)ss_setting_get(&dflt, st));
                ck_assert_msg(strstr(text, want), "%s: \"%s\" has no %s", st->name, text, want);
        }
        ss_config_free(&dflt);
}
END_TEST

typedef struct bad_case {
        const char *env, *value; /* a variable to set, or NULL */
        const char *argv[3];     /* flags after the program name */
        const char *says[2];     /* what the error must name */
} bad_case;

static const bad_case bad_cases[] = {
    {NULL, NULL, {"--metrics-interval", "999"}, {"--metrics-interval", "from 1000 to 86400000"}},
    {NULL, NULL, {"--metrics-temporality", "sometimes"}, {"'sometimes'", "cumulative, delta"}},
    {NULL, NULL, {"--prometheus-listen", "localhost:9464"}, {"'localhost:9464'", "HOST:PORT"}},
    {NULL, NULL, {"--prometheus-listen", "127.0.0.1:70000"}, {"'127.0.0.1:70000'", "HOST:PORT"}},
    {NULL, NULL, {"--prometheus-listen", "127.0.0.1"}, {"--prometheus-listen", "HOST:PORT"}},
    {NULL, NULL, {"--metrics-endpoint", "ftp://x"}, {"--metrics-endpoint", "'ftp://x'"}},
    {NULL, NULL, {"--metrics-protocol", "udp"}, {"--metrics-protocol", "'udp'"}},
    {"OTEL_METRICS_EXPORTER", "otlp,pigeon", {NULL}, {"OTEL_METRICS_EXPORTER", "'otlp,pigeon'"}},
    {"OTEL_METRIC_EXPORT_INTERVAL", "often", {NULL}, {"OTEL_METRIC_EXPORT_INTERVAL", "'often'"}},
    {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
     "both",
     {NULL},
     {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "'both'"}},
    {NULL, NULL, {"--max-frame", "10"}, {"--max-frame", "'10'"}},
    {NULL, NULL, {"--max-frame", "67108865"}, {"--max-frame", "'67108865'"}},
    {NULL, NULL, {"--compression", "zstd"}, {"--compression", "'zstd'"}},
    {NULL, NULL, {"--endpoint", "collector:4318"}, {"--endpoint", "'collector:4318'"}},
    {NULL, NULL, {"--endpoint", "http://"}, {"--endpoint", "'http://'"}},
    {NULL, NULL, {"--exporter", "kafka"}, {"--exporter", "'kafka'"}},
    {NULL, NULL, {"--max-connections", "0"}, {"--max-connections", "'0'"}},
    {NULL, NULL, {"--batch-size", "-1"}, {"--batch-size", "'-1'"}},
    {NULL, NULL, {"--timeout-ms", "12abc"}, {"--timeout-ms", "'12abc'"}},
    {NULL, NULL, {"--log-level", "loud"}, {"--log-level", "'loud'"}},
    {NULL, NULL, {"--header", "novalue"}, {"--header", "'novalue'"}},
    {NULL,
     NULL,
     {"--max-connections-per-process", "1000001"},
     {"--max-connections-per-process", "'1000001'"}},
    {NULL, NULL, {"--max-input-bytes", "1099511627777"}, {"--max-input-bytes", "'1099511627777'"}},
    {NULL, NULL, {"--max-input-bytes", "-1"}, {"--max-input-bytes", "'-1'"}},
    {NULL, NULL, {"--hello-timeout-ms", "3600001"}, {"--hello-timeout-ms", "'3600001'"}},
    {NULL, NULL, {"--frame-timeout-ms", "3600001"}, {"--frame-timeout-ms", "'3600001'"}},
    {NULL, NULL, {"--idle-timeout-ms", "86400001"}, {"--idle-timeout-ms", "'86400001'"}},
    {NULL,
     NULL,
     {"--max-open-spans-per-process", "100000001"},
     {"--max-open-spans-per-process", "'100000001'"}},
    {NULL, NULL, {"--max-resource-attributes", "0"}, {"--max-resource-attributes", "'0'"}},
    {NULL,
     NULL,
     {"--max-resource-attributes", "100001"},
     {"--max-resource-attributes", "'100001'"}},
    {NULL, NULL, {"--max-key-length", "0"}, {"--max-key-length", "'0'"}},
    {NULL, NULL, {"--max-key-length", "65537"}, {"--max-key-length", "'65537'"}},
    {NULL, NULL, {"--max-name-length", "0"}, {"--max-name-length", "'0'"}},
    {NULL, NULL, {"--max-name-length", "65537"}, {"--max-name-length", "'65537'"}},
    {NULL, NULL, {"--max-span-bytes", "4095"}, {"--max-span-bytes", "'4095'"}},
    {NULL, NULL, {"--max-span-bytes", "16777217"}, {"--max-span-bytes", "'16777217'"}},
    {NULL, NULL, {"--foreign-wait-ms", "86400001"}, {"--foreign-wait-ms", "'86400001'"}},
    {NULL, NULL, {"--batch-bytes", "4095"}, {"--batch-bytes", "'4095'"}},
    {NULL, NULL, {"--batch-bytes", "33554433"}, {"--batch-bytes", "'33554433'"}},
    {NULL,
     NULL,
     {"--allow-uids", "no-such-user-sidespan"},
     {"--allow-uids", "'no-such-user-sidespan'"}},
    {NULL,
     NULL,
     {"--allow-uids", "0,no-such-user-sidespan"},
     {"--allow-uids", "'no-such-user-sidespan'"}},
    {NULL,
     NULL,
     {"--allow-gids", "no-such-group-sidespan"},
     {"--allow-gids", "'no-such-group-sidespan'"}},
    {NULL, NULL, {"--allow-uids", "4294967296"}, {"--allow-uids", "'4294967296'"}},
    {NULL, NULL, {"--bogus"}, {"bogus", "--help"}},
    {NULL, NULL, {"stray"}, {"unexpected argument", "'stray'"}},
    {"OTEL_EXPORTER_OTLP_PROTOCOL", "thrift", {NULL}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "'thrift'"}},
    {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
     "http/xml",
     {NULL},
     {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "'http/xml'"}},
    {"OTEL_EXPORTER_OTLP_ENDPOINT",
     "localhost:4318",
     {NULL},
     {"OTEL_EXPORTER_OTLP_ENDPOINT", "'localhost:4318'"}},
    {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
     "ftp://c/v1/traces",
     {NULL},
     {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "'ftp://c/v1/traces'"}},
    {"OTEL_EXPORTER_OTLP_TIMEOUT", "soon", {NULL}, {"OTEL_EXPORTER_OTLP_TIMEOUT", "'soon'"}},
    {"OTEL_EXPORTER_OTLP_COMPRESSION", "br", {NULL}, {"OTEL_EXPORTER_OTLP_COMPRESSION", "'br'"}},
    {"OTEL_EXPORTER_OTLP_HEADERS",
     "x=a%0D%0AEvil: 1",
     {NULL},
     {"OTEL_EXPORTER_OTLP_HEADERS", "'x=a%0D%0AEvil: 1'"}},
    {NULL, NULL, {"--protocol", "thrift"}, {"--protocol", "'thrift'"}},
    {"OTEL_EXPORTER_OTLP_INSECURE", "maybe", {NULL}, {"OTEL_EXPORTER_OTLP_INSECURE", "'maybe'"}},
    {"OTEL_EXPORTER_OTLP_TRACES_INSECURE",
     "2",
     {NULL},
     {"OTEL_EXPORTER_OTLP_TRACES_INSECURE", "'2'"}},
    {NULL, NULL, {"--config", "/nonexistent/sidespand.conf"}, {"/nonexistent/sidespand.conf", ""}},
};

START_TEST(bad_value_names_what_and_value)
{
        const bad_case *c = &bad_cases[_i];
        char *argv[5] = {"sidespand"};

        for (size_t i = 0; i < 3 && c->argv[i]; i++)
                argv[i + 1] = (char *)c->argv[i];
        if (c->env)
                ck_assert_int_eq(setenv(c->env, c->value, 1), 0);
        ck_assert_int_eq(load_argv(argv), -EINVAL);
        fx_assert_has(err_text, c->says[0]);
        fx_assert_has(err_text, c->says[1]);
}
END_TEST

/* An allow list that names nobody is no list: the socket would be open to anyone. */
START_TEST(empty_allow_list_is_refused)
{
        static const char *const empty[] = {"", ",", " "};

        for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
                /* A value with no entry ("" or ",") once made an empty list, which reads as
                 * "anyone": it is refused, naming the flag. */
                ck_assert_msg(load_argv((char *[]){"sidespand", "--allow-uids", (char *)empty[i],
                                                   NULL}) == -EINVAL,
                              "--allow-uids '%s' accepted: %zu uids", empty[i], cfg.n_allow_uids);
                fx_assert_has(err_text, "--allow-uids");
        }
}
END_TEST

START_TEST(otlp_http_without_endpoint)
{
        ck_assert_int_eq(LOAD("-e", "otlp-http"), -EINVAL);
        fx_assert_has(err_text, "otlp-http");
        fx_assert_has(err_text, "--endpoint");
}
END_TEST

START_TEST(empty_endpoint_flag)
{
        /* The value on the heap, as small as it is, so that a read outside it is seen by
         * AddressSanitizer: set_endpoint() once read url[strlen(url) - 1], one byte before an
         * empty value. */
        char *empty = calloc(1, 1);

        ck_assert_ptr_nonnull(empty);
        ck_assert_int_eq(load_argv((char *[]){"sidespand", "--endpoint", empty, NULL}), -EINVAL);
        fx_assert_has(err_text, "--endpoint");
        fx_assert_has(err_text, "''");
        free(empty);
}
END_TEST

START_TEST(load_again_after_grouped_short_flags)
{
        /* getopt stops inside "-hV" at the h; a later load must not carry its V over.
         * load_flags() once reset optind to 1, which does not reset glibc's getopt state
         * (optind = 0 does): the next load went on with the V of the previous argv. */
        ck_assert_int_eq(LOAD("-hV"), 1);
        ck_assert_int_eq(LOAD("--socket", "/tmp/again.sock"), 0);
        ck_assert_str_eq(cfg.socket_path, "/tmp/again.sock");
}
END_TEST

/* ---- metrics ---------------------------------------------------------------------------- */

START_TEST(metrics_defaults)
{
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert(cfg.metrics.enabled);
        ck_assert_uint_eq(cfg.metrics.interval_ms, 60000);
        ck_assert_int_eq(cfg.metrics.temporality, SS_TEMPORALITY_CUMULATIVE);
        ck_assert(!cfg.metrics.export_otlp);
        ck_assert_ptr_null(cfg.metrics.prometheus_listen);
        /* The general endpoint exports metrics too, as the SDKs' default OTEL_METRICS_EXPORTER
         * (otlp) has it; the flag --endpoint is for traces alone. */
        ck_assert_int_eq(LOAD("--endpoint", "http://collector:4318"), 0);
        ck_assert(!cfg.metrics.export_otlp);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert(cfg.metrics.export_otlp);
        ck_assert_str_eq(cfg.metrics.exporter.http.endpoint, "http://collector:4318/v1/metrics");
        /* Unless OTEL_METRICS_EXPORTER leaves otlp out (Jaeger takes no metrics). */
        ck_assert_int_eq(setenv("OTEL_METRICS_EXPORTER", "none", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert(!cfg.metrics.export_otlp);
}
END_TEST

START_TEST(metrics_endpoint_forms)
{
        ck_assert_int_eq(LOAD("--metrics-endpoint", "http://collector:4318"), 0);
        ck_assert(cfg.metrics.export_otlp);
        ck_assert_uint_eq(cfg.metrics.exporter.kind, SS_EXPORT_OTLP_HTTP);
        ck_assert_str_eq(cfg.metrics.exporter.http.endpoint, "http://collector:4318/v1/metrics");
        ck_assert_str_eq(cfg.metrics.exporter.name, "metrics");
        ck_assert_ptr_null(cfg.metrics.exporter.http.dead_letter);
        /* The traces' exporter is untouched by it. */
        ck_assert_uint_eq(cfg.export.exporters, SS_EXPORT_CONSOLE);

        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://c:9/custom", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_str_eq(cfg.metrics.exporter.http.endpoint, "http://c:9/custom");
        ck_assert_int_eq(unsetenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"), 0);

        /* The general endpoint, as a base, when OTEL_METRICS_EXPORTER lists otlp. */
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318/otlp", 1), 0);
        ck_assert_int_eq(setenv("OTEL_METRICS_EXPORTER", "prometheus, otlp", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert(cfg.metrics.export_otlp);
        ck_assert_str_eq(cfg.metrics.exporter.http.endpoint, "http://base:4318/otlp/v1/metrics");
        ck_assert_str_eq(cfg.metrics.prometheus_listen, "127.0.0.1:9464");
        ck_assert_str_eq(def_of(SS_EXPORT_OTLP_HTTP)->http.endpoint,
                         "http://base:4318/otlp/v1/traces");

        /* Port 4317: gRPC, plain text from the environment as the SDKs read it. */
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4317", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_uint_eq(cfg.metrics.exporter.kind, SS_EXPORT_OTLP_GRPC);
        ck_assert(cfg.metrics.exporter.grpc.insecure);
}
END_TEST

START_TEST(metrics_variables_and_flags)
{
        ck_assert_int_eq(setenv("OTEL_METRIC_EXPORT_INTERVAL", "5000", 1), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta", 1),
                         0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://c:4318/v1/m", 1), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "4000", 1), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "3000", 1), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-k=v", 1), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json", 1), 0);
        ck_assert_int_eq(setenv("OTEL_METRICS_EXPORTER", "prometheus", 1), 0);
        ck_assert_int_eq(setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "9999", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert_uint_eq(cfg.metrics.interval_ms, 5000);
        ck_assert_int_eq(cfg.metrics.temporality, SS_TEMPORALITY_DELTA);
        ck_assert_uint_eq(cfg.metrics.exporter.http.timeout_ms, 3000);
        ck_assert(cfg.metrics.exporter.http.gzip);
        ck_assert(cfg.metrics.exporter.http.json);
        ck_assert_uint_eq(cfg.metrics.exporter.http.n_headers, 1);
        ck_assert_str_eq(cfg.metrics.exporter.http.headers[0], "x-k: v");
        ck_assert_str_eq(cfg.metrics.prometheus_listen, "127.0.0.1:9999");
        /* The traces' timeout is the general one: the metrics' own stays its own. */
        ck_assert_uint_eq(cfg.cli.http.timeout_ms, 4000);

        /* Flags win. */
        ck_assert_int_eq(LOAD("--metrics-interval", "2000", "--metrics-temporality", "cumulative",
                              "--prometheus-listen", "[::1]:0", "--metrics-protocol",
                              "http/protobuf"),
                         0);
        ck_assert_uint_eq(cfg.metrics.interval_ms, 2000);
        ck_assert_int_eq(cfg.metrics.temporality, SS_TEMPORALITY_CUMULATIVE);
        ck_assert_str_eq(cfg.metrics.prometheus_listen, "[::1]:0");
        ck_assert(!cfg.metrics.exporter.http.json);
        ck_assert_int_eq(LOAD("--no-metrics"), 0);
        ck_assert(!cfg.metrics.enabled);
        ck_assert_int_eq(setenv("SIDESPAN_METRICS", "0", 1), 0);
        ck_assert_int_eq(LOAD_NO_ARGS(), 0);
        ck_assert(!cfg.metrics.enabled);
}
END_TEST

START_TEST(metrics_in_check_config)
{
        ck_assert_int_eq(LOAD("--check-config", "--metrics-endpoint", "http://c:4318", "-H", "x=y",
                              "--prometheus-listen", "127.0.0.1:9464"),
                         1);
        fx_assert_has(out_text, "\n[metrics]\nenabled = true\nexport_interval = 60000\n");
        fx_assert_has(out_text, "prometheus_listen = 127.0.0.1:9464\n");
        fx_assert_has(out_text, "endpoint = http://c:4318/v1/metrics\n");
}
END_TEST

START_TEST(free_twice_is_harmless)
{
        ck_assert_int_eq(LOAD("-H", "a=b", "--endpoint", "http://c", "-e", "file"), 0);
        ss_config_free(&cfg);
        ck_assert_ptr_null(cfg.socket_path);
        ck_assert_uint_eq(cfg.cli.n_headers, 0);
        ss_config_free(&cfg);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("config");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, defaults_without_endpoint_print_to_console);
        tcase_add_test(tc, endpoint_makes_otlp_http_the_default);
        tcase_add_test(tc, default_socket_paths);
        tcase_add_test(tc, file_exporter_default_path);
        tcase_add_test(tc, flags_override_environment);
        tcase_add_test(tc, traces_variables_win_over_general_ones);
        tcase_add_test(tc, limit_flags_reach_their_stages);
        tcase_add_test(tc, hostile_client_flags_reach_their_stages);
        tcase_add_test(tc, hostile_client_limits_off_and_at_their_bounds);
        tcase_add_test(tc, base_endpoint_gets_v1_traces);
        tcase_add_test(tc, traces_endpoint_used_as_given);
        tcase_add_test(tc, endpoint_flag_without_path_gets_v1_traces);
        tcase_add_test(tc, headers_percent_decoded);
        tcase_add_test(tc, header_sources_combine_and_traces_wins);
        tcase_add_test(tc, header_flags_replace_environment);
        tcase_add_test(tc, environment_tls_files_land);
        tcase_add_test(tc, protocol_from_environment_and_flags);
        tcase_add_test(tc, check_config_prints_the_flags_exporter);
        tcase_add_test(tc, help_and_version_exit_zero);
        tcase_add_test(tc, help_lists_every_setting_with_its_default);
        tcase_add_loop_test(tc, bad_value_names_what_and_value, 0,
                            (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
        tcase_add_test(tc, empty_allow_list_is_refused);
        tcase_add_test(tc, otlp_http_without_endpoint);
        tcase_add_test(tc, empty_endpoint_flag);
        tcase_add_test(tc, load_again_after_grouped_short_flags);
        tcase_add_test(tc, free_twice_is_harmless);
        tcase_add_test(tc, metrics_defaults);
        tcase_add_test(tc, metrics_endpoint_forms);
        tcase_add_test(tc, metrics_variables_and_flags);
        tcase_add_test(tc, metrics_in_check_config);
        suite_add_tcase(s, tc);
        return ss_check_run(s);
}
