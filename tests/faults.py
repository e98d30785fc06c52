#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Fault injection on the retry paths (issue 9), from outside: the real sidespand
against real OTLP receivers told to fail. HTTP 503, then 429 with Retry-After
in seconds and as an HTTP-date, then 400; gRPC UNAVAILABLE, RESOURCE_EXHAUSTED
with and without RetryInfo; each with and without a spool; an agent process
killed mid-run (the CLI's emit and itest-client hold); and a backend that
accepts and never answers, next to a healthy one, with a spool and in memory.
Every test ends with exact counts (sent, received by span id, retried,
spooled, dropped by reason) that must add up.

Run by meson with SIDESPAND, SIDESPAN_CLI and ITEST_CLIENT set (suite integration, test
faults).
"""

import ctypes
import email.utils
import json
import os
import signal
import subprocess
import sys
import time
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import otlp_grpc_receiver  # noqa: E402
from itest_lib import Base, RawClient, run, send_trace  # noqa: E402
from otlp_receiver import Receiver  # noqa: E402

HTTP = "exporter.otlp-http."
GRPC = "exporter.otlp-grpc."
STATUS_ERROR = 2
# Timing is only checked from below, with this slack for the clocks' granularity.
SLACK = 0.05


class Faults(Base):
    def setUp(self):
        super().setUp()
        self.spool = os.path.join(self.tmp, "spool")

    def start(self, endpoint, *extra, spool=False):
        args = ["--endpoint", endpoint, "--batch-delay-ms", "20", "--retry-initial-ms", "100",
                "--retry-max-ms", "400"] + list(extra)
        if spool:
            args += ["--spool-dir", self.spool]
        return self.daemon(args)

    def one_trace(self, d, children=4, tag="t"):
        """A trace of children + 1 spans through its own connection; their count."""
        c = RawClient(d.socket)
        c.hello()
        send_trace(c, tag, children)
        c.flush()
        c.close()
        return children + 1

    def wait(self, pred, what, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            time.sleep(0.05)
        self.fail("%s not reached" % what)

    def summary(self, name, sent, received, st, exp):
        print("\n%s: sent %d, received %d unique, retries %d, spooled %d, replayed %d, "
              "dropped %d (rejected %d, exhausted %d)"
              % (name, sent, received, st[exp + "retries"], st[exp + "spans_spooled"],
                 st[exp + "spans_replayed"], st[exp + "spans_dropped"],
                 st[exp + "dropped.rejected"], st[exp + "dropped.exhausted"]))

    # ---- HTTP ------------------------------------------------------------------------------

    def attempt_gap(self, n_before):
        """Seconds between the first two requests the receiver saw after n_before."""
        reqs = self.rx.requests
        self.assertGreaterEqual(len(reqs), n_before + 2)
        return reqs[n_before + 1]["time"] - reqs[n_before]["time"]

    def http_sequence(self, spool):
        d = self.start(self.rx.url, spool=spool)
        sent = delivered = 0

        # 503: retried, delivered.
        self.rx.fail_next(1, 503)
        n = self.one_trace(d, tag="s503")
        sent += n
        delivered += n
        self.assertTrue(self.rx.wait_spans(delivered, 20))

        # 429 with Retry-After in seconds: the next attempt waits at least that long.
        before = len(self.rx.requests)
        self.rx.fail_next(1, 429, retry_after=1)
        n = self.one_trace(d, tag="s429")
        sent += n
        delivered += n
        self.assertTrue(self.rx.wait_spans(delivered, 20))
        gap_s = self.attempt_gap(before)
        self.assertGreaterEqual(gap_s, 1.0 - SLACK)

        # 429 with Retry-After as an HTTP-date 2 s ahead (whole seconds: at least 1 s): the
        # next attempt comes no earlier than that date.
        before = len(self.rx.requests)
        date = email.utils.formatdate(time.time() + 2, usegmt=True)
        self.rx.fail_next(1, 429, retry_after=date)
        n = self.one_trace(d, tag="sdate")
        sent += n
        delivered += n
        self.assertTrue(self.rx.wait_spans(delivered, 20))
        gap_date = self.attempt_gap(before)
        self.assertGreaterEqual(gap_date, 1.0 - SLACK)
        self.assertGreaterEqual(self.rx.requests[before + 1]["time"],
                                email.utils.parsedate_to_datetime(date).timestamp() - SLACK)

        # 400: final, counted, never retried.
        before = len(self.rx.requests)
        self.rx.fail_next(1, 400)
        n = self.one_trace(d, tag="s400")
        sent += n
        self.wait(lambda: d.stats()[HTTP + "dropped.rejected"] == n, "the 400 counted")
        time.sleep(0.5)
        self.assertEqual(len(self.rx.requests), before + 1, "a 400 is not retried")

        st = d.stats()
        got = {s["span_id"] for s in self.rx.spans()}
        self.summary("http 503/429/429-date/400 (%s)" % ("spool" if spool else "memory"),
                     sent, len(got), st, HTTP)
        print("Retry-After 1 -> next attempt after %.2f s; Retry-After date +2 s -> %.2f s"
              % (gap_s, gap_date))
        self.assertEqual(len(got), delivered)
        self.assertEqual(st[HTTP + "spans_in"], sent)
        self.assertEqual(st[HTTP + "spans_exported"], delivered)
        self.assertEqual(st[HTTP + "spans_dropped"], sent - delivered)
        self.assertEqual(st[HTTP + "dropped.rejected"], sent - delivered)
        self.assertEqual(st[HTTP + "retries"] + st[HTTP + "spans_replayed"] > 0, True)
        if spool:
            self.assertEqual(st[HTTP + "spans_replayed"], st[HTTP + "spans_spooled"])
        else:
            self.assertEqual(st[HTTP + "retries"], 3)
            self.assertEqual(st[HTTP + "spans_spooled"], 0)

    def test_http_503_429_seconds_429_date_400_in_memory(self):
        self.http_sequence(spool=False)

    def test_http_503_429_seconds_429_date_400_with_a_spool(self):
        self.http_sequence(spool=True)

    # ---- gRPC ------------------------------------------------------------------------------

    def grpc_rx(self):
        rx = otlp_grpc_receiver.Receiver().start()
        self.addCleanup(rx.stop)
        return rx

    def grpc_fail(self, rx, n, code, retry_delay_ms=None):
        with rx.state.cond:
            rx.state.fail_n = n
            rx.state.fail_code = code
            rx.state.fail_retry_delay_ms = retry_delay_ms

    def grpc_daemon(self, rx, spool=False):
        return self.start("http://127.0.0.1:%d" % rx.port, "--protocol", "grpc", spool=spool)

    def grpc_spans(self, rx, n, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with rx.state.cond:
                got = {s["span_id"] for s in rx.state.spans}
            if len(got) >= n:
                return got
            time.sleep(0.05)
        return got

    def test_grpc_unavailable_is_retried_and_everything_arrives(self):
        for spool in (False, True):
            rx = self.grpc_rx()
            self.grpc_fail(rx, 3, grpc.StatusCode.UNAVAILABLE)
            d = self.grpc_daemon(rx, spool=spool)
            sent = sum(self.one_trace(d, tag="u%d" % i) for i in range(3))
            got = self.grpc_spans(rx, sent)
            st = self.wait_stats(d, "the answers counted",
                                 lambda st: st[GRPC + "spans_exported"] >= sent)
            self.summary("grpc UNAVAILABLE x3 (%s)" % ("spool" if spool else "memory"), sent,
                         len(got), st, GRPC)
            self.assertEqual(len(got), sent)
            self.assertEqual(st[GRPC + "spans_dropped"], 0)
            self.assertEqual(st[GRPC + "spans_exported"], sent)
            if spool:
                self.assertGreater(st[GRPC + "spans_spooled"], 0)
                self.wait(lambda: d.stats()[GRPC + "spool.records"] == 0, "spool emptied")
                self.assertEqual(d.stats()[GRPC + "spans_replayed"],
                                 d.stats()[GRPC + "spans_spooled"])
            else:
                self.assertGreaterEqual(st[GRPC + "retries"], 3)
            d.stop()

    def maps(self, d):
        with open("/proc/%d/maps" % d.proc.pid) as f:
            return f.read()

    def missing_module_is_named(self, name, args, env=None):
        """Without sidespan-NAME.so a daemon given args does not start and --check-config fails
        (exit 2), each naming the file it looked for; with it the check passes: its output."""
        env = env or {}
        empty = os.path.join(self.tmp, "no-%s-module" % name)
        os.mkdir(empty)
        d = self.daemon(args, env=dict(env, SIDESPAN_MODULE_DIR=empty), name="no-" + name,
                        wait=False)
        self.assertNotEqual(d.proc.wait(20), 0)
        self.assertIn("cannot load the %s module event=module-failed module=%s path=%s/"
                      "sidespan-%s.so" % (name, name, empty, name), d.stderr())
        # --check-config says so too, rather than passing a configuration that cannot start.
        check = [os.environ["SIDESPAND"], "--check-config"] + args
        r = run(check, env=dict(env, SIDESPAN_MODULE_DIR=empty))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("path=%s/sidespan-%s.so" % (empty, name), r.stderr)
        r = run(check, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_grpc_core_is_mapped_only_by_a_grpc_exporter_and_a_missing_module_is_named(self):
        # The gRPC exporter is the module sidespan-grpc.so (daemon/base/module.h): a daemon
        # exporting over HTTP never maps grpc core, one exporting over gRPC loads it and
        # delivers through it.
        d = self.start(self.rx.url)
        self.assertNotIn("libgrpc", self.maps(d))
        self.assertNotIn("sidespan-grpc.so", self.maps(d))
        d.stop()
        rx = self.grpc_rx()
        d = self.grpc_daemon(rx)
        self.assertIn("sidespan-grpc.so", self.maps(d))
        self.assertIn("libgrpc", self.maps(d))
        sent = self.one_trace(d, tag="module")
        self.assertEqual(len(self.grpc_spans(rx, sent)), sent)
        d.stop()
        # Without the module the daemon does not start, and says which file it looked for.
        out = self.missing_module_is_named(
            "grpc", ["--protocol", "grpc", "--endpoint", "http://127.0.0.1:%d" % rx.port],
            env={"OTEL_EXPORTER_OTLP_INSECURE": "true"})
        self.assertIn("protocol = grpc", out)

    def test_libcurl_is_mapped_only_by_an_http_exporter_and_a_missing_module_is_named(self):
        # The OTLP/HTTP exporter is the module sidespan-http.so: a daemon writing files, or
        # exporting over gRPC, never maps libcurl (nor the TLS, Kerberos and LDAP libraries
        # beneath it); one exporting over HTTP loads it and delivers through it.
        path = os.path.join(self.tmp, "spans.jsonl")
        d = self.daemon(["--exporter", "file", "--file", path, "--batch-delay-ms", "20"],
                        name="file")
        sent = self.one_trace(d, tag="file")

        def written():
            if not os.path.exists(path):
                return 0
            with open(path) as f:
                return f.read().count('"spanId"')
        self.wait(lambda: written() >= sent, "the file exporter wrote the trace")
        for lib in ("sidespan-http.so", "libcurl", "libssl", "sidespan-prometheus.so",
                    "libmicrohttpd", "libgnutls"):
            self.assertNotIn(lib, self.maps(d))
        d.stop()
        rx = self.grpc_rx()
        d = self.grpc_daemon(rx)
        self.assertNotIn("sidespan-http.so", self.maps(d))
        self.assertNotIn("libcurl", self.maps(d))
        d.stop()
        d = self.start(self.rx.url)
        self.assertIn("sidespan-http.so", self.maps(d))
        self.assertIn("libcurl", self.maps(d))
        sent = self.one_trace(d, tag="http-module")
        self.assertEqual(len(self.wait_spans(sent)), sent)
        d.stop()
        # Without the module the daemon does not start, and says which file it looked for.
        out = self.missing_module_is_named("http", ["--endpoint", self.rx.url])
        self.assertIn("protocol = http/protobuf", out)

    def watch_opens(self, path):
        """A function saying whether path was opened since this call (inotify's IN_OPEN)."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        self.assertGreaterEqual(fd, 0, os.strerror(ctypes.get_errno()))
        self.addCleanup(os.close, fd)
        self.assertGreaterEqual(libc.inotify_add_watch(fd, path.encode(), 0x20),  # IN_OPEN
                                0, os.strerror(ctypes.get_errno()))

        def opened():
            try:
                return len(os.read(fd, 4096)) > 0
            except BlockingIOError:
                return False
        return opened

    def test_openssl_is_set_up_lean_only_when_nothing_uses_tls(self):
        # libcurl sets OpenSSL up with the system's configuration file (OPENSSL_CONF here) and
        # its error strings. When no exporter uses TLS the HTTP module sets it up first,
        # without either (0.9 MB of resident pages): the file is never opened, and plaintext
        # HTTP delivers as before.
        conf = os.path.join(self.tmp, "openssl.cnf")
        with open(conf, "w") as f:
            f.write("# read only when TLS may be used\nopenssl_conf = init\n[init]\n")
        env = {"OPENSSL_CONF": conf}
        opened = self.watch_opens(conf)
        d = self.daemon(["--endpoint", self.rx.url, "--batch-delay-ms", "20"], env=env,
                        name="lean")
        sent = self.one_trace(d, tag="lean")
        self.assertEqual(len(self.wait_spans(sent)), sent)
        self.assertIn("OpenSSL set up without its configuration file and error strings "
                      "event=tls-lean", d.stderr())
        d.stop()
        self.assertFalse(opened(), "OPENSSL_CONF was read with no TLS anywhere")
        # With TLS anywhere in the process, libcurl's own set-up reads it, system policy and
        # all: an https:// endpoint; an https:// proxy for http:// URLs; a gRPC exporter
        # with TLS beside a plaintext HTTP one.
        both = os.path.join(self.tmp, "both.conf")
        with open(both, "w") as f:
            f.write("[exporter plain]\ntype = otlp\nprotocol = http/protobuf\nendpoint = %s\n"
                    "[exporter secure]\ntype = otlp\nprotocol = grpc\n"
                    "endpoint = https://127.0.0.1:9\n" % self.rx.url)
        cases = [("https endpoint", ["--endpoint", "https://127.0.0.1:9/v1/traces"], {}),
                 ("https proxy", ["--endpoint", self.rx.url],
                  {"http_proxy": "https://127.0.0.1:9"}),
                 ("gRPC with TLS", ["--config", both], {})]
        for i, (what, args, extra) in enumerate(cases):
            opened = self.watch_opens(conf)
            d = self.daemon(args, env=dict(env, **extra), name="tls%d" % i)
            self.wait(opened, "OPENSSL_CONF read (%s)" % what)
            self.assertNotIn("event=tls-lean", d.stderr(), what)
            self.assertIn("event=exporter-ready", d.stderr(), what)
            d.stop()

    def test_libmicrohttpd_is_mapped_only_with_a_scrape_endpoint(self):
        # The scrape endpoint's server is the module sidespan-prometheus.so: libmicrohttpd, and
        # GnuTLS beneath it, are mapped once --prometheus-listen asks for one, which answers.
        path = os.path.join(self.tmp, "spans.jsonl")
        args = ["--exporter", "file", "--file", path, "--prometheus-listen", "127.0.0.1:0"]
        d = self.daemon(args, name="prom")
        self.assertIn("sidespan-prometheus.so", self.maps(d))
        self.assertIn("libmicrohttpd", self.maps(d))
        r = run(["curl", "-sS", "--max-time", "5",
                 "http://127.0.0.1:%d/metrics" % self.prometheus_port(d)])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("target_info{", r.stdout)
        d.stop()
        # Without the module the daemon does not start, and says which file it looked for.
        self.missing_module_is_named("prometheus", args)

    def test_grpc_resource_exhausted_with_retry_info_waits_as_told(self):
        for spool in (False, True):
            rx = self.grpc_rx()
            self.grpc_fail(rx, 1, grpc.StatusCode.RESOURCE_EXHAUSTED, retry_delay_ms=1500)
            d = self.grpc_daemon(rx, spool=spool)
            sent = self.one_trace(d)
            got = self.grpc_spans(rx, sent)
            # The receiver keeps the spans before its answer reaches the daemon.
            st = self.wait_stats(d, "the answer counted",
                                 lambda st: st[GRPC + "spans_exported"] >= sent)
            with rx.state.cond:
                times = [r["time"] for r in rx.state.requests]
            self.summary("grpc RESOURCE_EXHAUSTED + RetryInfo 1.5 s (%s)"
                         % ("spool" if spool else "memory"), sent, len(got), st, GRPC)
            print("next attempt after %.2f s" % (times[1] - times[0]))
            self.assertEqual(len(got), sent)
            self.assertEqual(len(times), 2)
            self.assertGreaterEqual(times[1] - times[0], 1.5 - SLACK)
            self.assertEqual(st[GRPC + "spans_dropped"], 0)
            self.assertEqual(st[GRPC + "spans_exported"], sent)
            if spool:  # to disk at the failure, back as the probe once RetryInfo's delay is up
                self.assertEqual(st[GRPC + "retries"], 0)
                self.assertEqual(st[GRPC + "spans_spooled"], sent)
                self.assertEqual(st[GRPC + "spans_replayed"], sent)
            else:
                self.assertEqual(st[GRPC + "retries"], 1)
                self.assertEqual(st[GRPC + "spans_spooled"], 0)
            d.stop()

    def test_grpc_resource_exhausted_without_retry_info_is_final(self):
        rx = self.grpc_rx()
        self.grpc_fail(rx, 1, grpc.StatusCode.RESOURCE_EXHAUSTED)
        d = self.grpc_daemon(rx, spool=True)
        sent = self.one_trace(d)
        self.wait(lambda: d.stats()[GRPC + "spans_dropped"] == sent, "dropped")
        time.sleep(0.5)
        st = d.stats()
        with rx.state.cond:
            calls = len(rx.state.requests)
        self.summary("grpc RESOURCE_EXHAUSTED, no RetryInfo", sent, 0, st, GRPC)
        self.assertEqual(calls, 1, "not retried")
        self.assertEqual(st[GRPC + "dropped.rejected"], sent)
        self.assertEqual(st[GRPC + "retries"], 0)
        self.assertEqual(st[GRPC + "spans_spooled"], 0)
        # The exporter is not left failing: the next trace goes straight through.
        sent2 = self.one_trace(d, tag="after")
        self.assertEqual(len(self.grpc_spans(rx, sent2)), sent2)

    # ---- an agent killed mid-run -------------------------------------------------------------

    def test_an_agent_killed_mid_run_leaves_orphans_with_every_attribute(self):
        d = self.start(self.rx.url, "--orphan-grace-ms", "60000")
        # A real libsidespan agent: runs of 30 spans whose model calls take 400 ms each.
        agent = subprocess.Popen([os.environ["SIDESPAN_CLI"], "--socket", d.socket, "emit",
                                  "--runs", "5", "--latency", "400"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait(lambda: d.stats()["spans_open"] >= 3, "a run in its model calls")
        open_before = d.stats()["spans_open"]
        killed = time.time_ns()
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        # The process is gone (pidfd): its spans end at once, not after the 60 s grace.
        self.wait(lambda: d.stats()["spans_open"] == 0, "orphans ended", timeout=10)
        st = d.stats()
        self.assertEqual(st["spans_orphaned"], open_before)
        self.wait(lambda: len([s for s in self.rx.spans()
                               if s["attributes"].get("sidespan.orphaned")]) == open_before,
                  "orphans delivered")
        orphans = [s for s in self.rx.spans() if s["attributes"].get("sidespan.orphaned")]
        print("\nagent killed mid-run: %d spans open, %d orphans received, %d spans in all"
              % (open_before, len(orphans), len(self.rx.spans())))
        names = {s["name"] for s in orphans}
        self.assertIn("agent.run", names)
        for s in orphans:
            self.assertEqual(s["status_code"], STATUS_ERROR, s["name"])
            self.assertEqual(s["status_message"], "client process exited")
            # Ended when the process went, not when the daemon got round to it.
            self.assertLess(s["end_time_unix_nano"], killed + 2 * 10**9, s["name"])
            self.assertGreaterEqual(s["end_time_unix_nano"], s["start_time_unix_nano"])
        run = [s for s in orphans if s["name"] == "agent.run"][0]
        # What the agent set at the start is all there.
        for key in ("upsonic.agent.name", "upsonic.agent.model", "upsonic.run_id", "upsonic.input"):
            self.assertIn(key, run["attributes"], key)
        self.assertEqual(run["resource"]["service.name"], "sidespan-emit")
        ids = [s["span_id"] for s in self.rx.spans()]
        self.assertEqual(len(ids), len(set(ids)), "no span twice")

    # What itest-client hold starts its five open spans with, outermost first.
    HELD = [
        ("agent.run", {"upsonic.agent.name": "hold-agent", "upsonic.agent.model": "gpt-4o",
                       "upsonic.run_id": "run-hold", "user.id": "user-7",
                       "session.id": "session-hold", "upsonic.input": "What holds?"}),
        ("pipeline.execute", {"upsonic.pipeline.total_steps": 24,
                              "upsonic.pipeline.streaming": False}),
        ("pipeline.step.model_execution", {"upsonic.step.name": "model_execution",
                                           "upsonic.step.description": "Run the model"}),
        ("chat gpt-4o", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                         "gen_ai.request.model": "gpt-4o", "gen_ai.request.temperature": 0.25,
                         "gen_ai.request.max_tokens": 256, "gen_ai.request.top_p": 0.5,
                         "server.address": "api.openai.com", "server.port": 443,
                         "gen_ai.input.messages": '[{"role":"user","parts":[]}]',
                         "gen_ai.system_instructions": "[]"}),
        ("tool.execute", {"upsonic.tool.name": "get_weather", "upsonic.tool.call_id": "call_1",
                          "gen_ai.tool.call.arguments": '{"city":"Paris"}'}),
    ]

    def test_a_c_client_killed_with_a_run_open_ends_it_at_the_disconnect(self):
        grace_ms = 300
        d = self.start(self.rx.url, "--orphan-grace-ms", str(grace_ms))
        # itest-client hold (libsidespan): five nested spans left open, a tool call ended.
        agent = subprocess.Popen([os.environ["ITEST_CLIENT"], "hold"],
                                 env=dict(os.environ, SIDESPAN_SOCKET=d.socket),
                                 stdout=subprocess.PIPE, text=True)
        self.addCleanup(agent.wait)
        self.addCleanup(agent.kill)
        held = json.loads(agent.stdout.readline())
        agent.stdout.close()
        self.assertEqual(held["flush"], 0)
        n_open = len(self.HELD)
        self.assertEqual(d.stats()["spans_open"], n_open)
        killed = time.time_ns()
        agent.kill()
        agent.wait()
        sent = n_open + 1
        self.wait(lambda: d.stats()[HTTP + "spans_exported"] == sent, "the trace exported")
        st = d.stats()
        spans = {s["span_id"]: s for s in self.rx.spans()}
        orphans = [spans[i] for i in held["span_ids"] if i in spans]
        print("\nC client killed with %d spans open: sent %d, received %d unique, orphans %d, "
              "dropped %d" % (n_open, sent, len(spans), len(orphans),
                              st[HTTP + "spans_dropped"]))
        self.assertEqual(len(spans), sent)
        self.assertEqual(len(orphans), n_open)
        self.assertEqual(st["spans_orphaned"], n_open)
        self.assertEqual(st["spans_open"], 0)
        self.assertEqual(st[HTTP + "spans_in"], sent)
        self.assertEqual(st[HTTP + "spans_dropped"], 0)
        # All end together, when the connection went: after the kill, within the grace.
        ends = {s["end_time_unix_nano"] for s in orphans}
        self.assertEqual(len(ends), 1, ends)
        end = ends.pop()
        self.assertGreaterEqual(end, max(s["start_time_unix_nano"] for s in spans.values()))
        self.assertGreaterEqual(end, killed)
        self.assertLessEqual(end, killed + grace_ms * 10**6)
        parents = {held["span_ids"][0]: ""}
        parents.update(zip(held["span_ids"][1:], held["span_ids"]))
        for s, (name, attrs) in zip(orphans, self.HELD):
            self.assertEqual(s["name"], name)
            self.assertEqual(s["trace_id"], held["trace_id"])
            self.assertEqual(s["parent_span_id"], parents[s["span_id"]])
            self.assertEqual(s["status_code"], STATUS_ERROR)
            self.assertEqual(s["status_message"], "client process exited")
            # Every attribute it was started with, as it was, and the mark; nothing else but
            # the run's roll-ups (the daemon's totals of what ended under it).
            got = dict(s["attributes"])
            self.assertIs(got.pop("sidespan.orphaned"), True)
            self.assertEqual({k: got.pop(k, None) for k in attrs}, attrs, name)
            if name == "agent.run":
                self.assertIn("upsonic.tool_call_count", got)
                self.assertTrue(all(k.startswith("upsonic.") for k in got), got)
            else:
                self.assertEqual(got, {}, name)
        self.assertEqual([e["name"] for e in orphans[3]["events"]], ["gen_ai.first_token"])
        done = [s for s in spans.values() if s["span_id"] not in held["span_ids"]][0]
        self.assertEqual(done["name"], "tool.execute")
        self.assertEqual(done["parent_span_id"], held["span_ids"][2])
        self.assertNotIn("sidespan.orphaned", done["attributes"])

    # ---- a backend that accepts and never answers, next to a healthy one -------------------

    def fan_out(self, hung, *sections):
        """sidespand exporting to self.rx ("healthy") and to hung's URL under each of sections:
        (name, extra lines). Every request to hung times out after 500 ms."""
        text = "[exporter healthy]\nendpoint = %s\nbatch_delay = 20\n" % self.rx.url
        for name, extra in sections:
            text += ("\n[exporter %s]\nendpoint = %s\nbatch_delay = 20\ntimeout = 500\n"
                     "retry_initial_ms = 100\nretry_max_ms = 400\n%s"
                     % (name, hung.url, "".join(line + "\n" for line in extra)))
        path = os.path.join(self.tmp, "fan-out.conf")
        with open(path, "w") as f:
            f.write(text)
        return self.daemon(["--config", path])

    def hung_rx(self):
        rx = Receiver().start()
        self.addCleanup(rx.stop)
        rx.hang_next(10**9)
        return rx

    def send_rounds(self, d, rounds, traces=10, children=4):
        """rounds of traces, 0.3 s apart (later ones come while the hung exporter fails)."""
        sent = 0
        for i in range(rounds):
            for j in range(traces):
                sent += self.one_trace(d, children, tag="r%dt%d" % (i, j))
            time.sleep(0.3)
        return sent

    def healthy_got_everything(self, d, sent):
        got = self.wait_unique_at(self.rx, sent)
        st = d.stats()
        self.assertEqual(len(got), sent)
        self.assertEqual(st["exporter.healthy.spans_exported"], sent)
        self.assertEqual(st["exporter.healthy.spans_dropped"], 0)
        self.assertEqual(st["exporter.healthy.retries"], 0)
        self.assertEqual(st["exporter.healthy.failures"], 0)

    def wait_unique_at(self, rx, n, timeout=30):
        self.wait(lambda: len({s["span_id"] for s in rx.spans()}) >= n,
                  "%d spans received" % n, timeout)
        return {s["span_id"] for s in rx.spans()}

    def agreed_stats(self, d, hung, names):
        """STATS at a moment the receiver has read every request the exporters names
        started (the daemon counts one when it starts it, the receiver once it has read
        it: in between they differ by the requests on the wire). Returns the STATS and the
        receiver's count of hung requests."""
        def hung_seen():
            return len([r for r in hung.requests if r["status"] is None])

        def started(st):
            return sum(st["exporter.%s.requests" % n] for n in names)

        deadline = time.time() + 20
        while True:
            st = d.stats()
            seen = hung_seen()
            want = started(st)
            if seen == want:
                return st, seen
            if time.time() > deadline:
                # A backend retried without pause may never leave the wire empty, and a
                # receiver slowed by a loaded machine may read a request after the daemon
                # gave up on it. So: every request the daemon is done with (started, not in
                # flight) reaches the receiver, and the receiver never reads more requests
                # than the daemon started.
                flight = sum(st["exporter.%s.inflight_requests" % n] for n in names)
                self.wait(lambda: hung_seen() >= want - flight,
                          "the receiver reading the %d requests the daemon is done with"
                          % (want - flight))
                seen = hung_seen()
                self.assertLessEqual(seen, started(d.stats()),
                                     "the receiver read requests the daemon did not count")
                return st, want
            time.sleep(0.01)

    def held_for(self, hung):
        """How long the daemon held each request hung already gave up on, after asserting
        that it gave each up at its 500 ms timeout, not before: seconds, sorted."""
        held = sorted(r["closed"] - r["time"] for r in hung.requests
                      if r["status"] is None and r["closed"] is not None)
        self.assertTrue(held, "no request timed out")
        # The receiver stamps a request once it has read and decoded it: a little late.
        self.assertGreaterEqual(held[0], 0.5 - 0.2)
        return held

    def hung_summary(self, name, sent, received, st, exp):
        print("\n%s: sent %d, received %d unique, requests %d, timed out %d, retries %d, "
              "spooled %d, replayed %d, dropped %d (exhausted %d)"
              % (name, sent, received, st[exp + "requests"], st[exp + "failures"],
                 st[exp + "retries"], st.get(exp + "spans_spooled", 0),
                 st.get(exp + "spans_replayed", 0), st[exp + "spans_dropped"],
                 st[exp + "dropped.exhausted"]))

    def test_a_backend_that_never_answers_spools_everything_and_loses_nothing(self):
        hung = self.hung_rx()
        spool = os.path.join(self.tmp, "spool-hang")
        d = self.fan_out(hung, ("hang", ["spool_dir = " + spool]))
        exp = "exporter.hang."
        sent = self.send_rounds(d, 3)
        self.healthy_got_everything(d, sent)
        # Each request that timed out went to disk; the later ones went straight there.
        self.wait(lambda: d.stats()[exp + "spans_spooled"] == sent, "all spooled")
        # The spool's oldest probes the backend, and times out again, and again.
        self.wait(lambda: d.stats()[exp + "retries"] >= 2, "the probe retried")
        st, seen = self.agreed_stats(d, hung, ["hang"])
        self.hung_summary("never answers, spool (while hung)", sent, 0, st, exp)
        self.assertEqual(st[exp + "spans_in"], sent)
        self.assertEqual(st[exp + "spans_spooled"], sent)
        self.assertEqual(st[exp + "spans_exported"], 0)
        self.assertEqual(st[exp + "spans_dropped"], 0)
        self.assertEqual(st[exp + "spool.spans"], sent)  # nothing acknowledged, nothing lost
        self.assertEqual(st[exp + "failures"], st[exp + "requests"] - st[exp + "inflight_requests"])
        self.assertEqual(seen, st[exp + "requests"])
        self.assertEqual(len(hung.spans()), 0)
        held = self.held_for(hung)
        print("held %d requests %.2f s to %.2f s" % (len(held), held[0], held[-1]))
        # The backend answers again: the spool drains into it, each span once.
        hung.hang_next(0)
        got = self.wait_unique_at(hung, sent)
        st = self.wait_stats(d, "the spool drained", lambda st: st[exp + "spool.records"] == 0)
        self.hung_summary("never answers, spool (answering again)", sent, len(got), st, exp)
        self.assertEqual(len(got), sent)
        self.assertEqual(len(hung.spans()), sent)
        self.assertEqual(st[exp + "spans_replayed"], sent)
        self.assertEqual(st[exp + "spans_exported"], sent)
        self.assertEqual(st[exp + "spans_dropped"], 0)

    def test_a_backend_that_never_answers_is_retried_in_memory_until_max_elapsed(self):
        hung = self.hung_rx()
        d = self.fan_out(hung, ("hang", ["retry_max_elapsed_ms = 60000"]),
                         ("short", ["retry_max_elapsed_ms = 1500"]))
        sent = self.send_rounds(d, 2)
        self.healthy_got_everything(d, sent)
        # "short" gives its requests up at 1.5 s; "hang" keeps retrying them in memory.
        self.wait(lambda: d.stats()["exporter.short.dropped.exhausted"] == sent, "short gave up")
        self.wait(lambda: d.stats()["exporter.hang.retries"] >= 4, "hang retried")
        st, seen = self.agreed_stats(d, hung, ["hang", "short"])
        for name in ("hang", "short"):
            self.hung_summary("never answers, memory, %s (while hung)" % name, sent, 0, st,
                              "exporter.%s." % name)
        exp = "exporter.hang."
        self.assertEqual(st[exp + "spans_in"], sent)
        self.assertEqual(st[exp + "spans_exported"], 0)
        self.assertEqual(st[exp + "spans_dropped"], 0)
        self.assertNotIn(exp + "spans_spooled", [k for k, v in st.items() if v])
        self.assertGreater(st[exp + "queued_requests"] + st[exp + "inflight_requests"], 0)
        self.assertEqual(st[exp + "failures"], st[exp + "requests"] - st[exp + "inflight_requests"])
        self.assertEqual(st[exp + "retries"], st[exp + "failures"])  # every timeout retried
        self.assertEqual(seen, st[exp + "requests"] + st["exporter.short.requests"])
        held = self.held_for(hung)
        print("held %d requests %.2f s to %.2f s" % (len(held), held[0], held[-1]))
        short = "exporter.short."
        self.assertEqual(st[short + "spans_in"], sent)
        self.assertEqual(st[short + "spans_dropped"], sent)
        self.assertEqual(st[short + "dropped.exhausted"], sent)
        self.assertEqual(st[short + "queued_requests"] + st[short + "inflight_requests"], 0)
        # The backend answers again within hang's max elapsed: everything arrives, once.
        hung.hang_next(0)
        got = self.wait_unique_at(hung, sent)
        st = self.wait_stats(d, "hang delivered", lambda st: st[exp + "spans_exported"] == sent)
        self.hung_summary("never answers, memory, hang (answering again)", sent, len(got), st,
                          exp)
        self.assertEqual(len(got), sent)
        self.assertEqual(len(hung.spans()), sent)
        self.assertEqual(st[exp + "spans_dropped"], 0)
        self.assertEqual(st[short + "spans_exported"], 0)

    def test_sigterm_with_requests_hung_in_flight(self):
        # At SIGTERM, requests still in flight to a backend that never answers go to the
        # spool, and the next start sends them; without a spool they are counted as dropped.
        for spool in (True, False):
            hung = self.hung_rx()
            d = self.start(hung.url, "--timeout-ms", "30000", "--drain-timeout-ms", "500",
                           spool=spool)
            sent = sum(self.one_trace(d, tag="term%d" % i) for i in range(3))
            st = self.wait_stats(d, "3 requests in flight",
                                 lambda st: st[HTTP + "inflight_requests"] == 3)
            self.assertEqual(st[HTTP + "spans_in"], sent)
            self.assertEqual(d.stop(), 0)
            log = d.stderr()
            self.assertEqual(len([r for r in hung.requests if r["status"] is None]), 3)
            self.wait(lambda: all(r["closed"] for r in hung.requests), "requests let go")
            if not spool:
                print("\nSIGTERM, 3 requests hung (memory): sent %d, dropped at shutdown "
                      "(from the log)" % sent)
                self.assertIn("event=export-dropped exporter=otlp-http spans=%d reason=shutdown"
                              % sent, log)
                continue
            hung.hang_next(0)
            d2 = self.daemon(["--endpoint", hung.url, "--batch-delay-ms", "20",
                              "--spool-dir", self.spool], name="d2")
            got = self.wait_unique_at(hung, sent)
            st = self.wait_stats(d2, "replayed", lambda st: st[HTTP + "spool.records"] == 0)
            print("\nSIGTERM, 3 requests hung (spool): sent %d, spooled at exit, replayed %d, "
                  "received %d unique (%d in all)" % (sent, st[HTTP + "spans_replayed"],
                                                      len(got), len(hung.spans())))
            self.assertIn("spool", log)
            self.assertEqual(len(got), sent)
            self.assertEqual(len(hung.spans()), sent)
            self.assertEqual(st[HTTP + "spans_replayed"], sent)
            self.assertEqual(st[HTTP + "spans_dropped"], 0)
            d2.stop()

    # Known bug, daemon/export/dispatch.c req_spool(): spool_body() moves the request's body
    # to the spool, then ss_reqq_finish() takes the now empty body's length (0) off the
    # queue's bytes, so each request that fails and goes to the spool stays counted in
    # queued_bytes for good. Past half of --retry-queue-bytes the spool no longer replays
    # to a healthy backend (wants_replay()), clients' FLUSH waits on it, and the reading of
    # clients slows (pressure).
    def test_a_request_moved_to_the_spool_leaves_the_retry_queue_empty(self):
        d = self.start(self.rx.url, spool=True)
        sent = 0
        for i in range(3):
            self.rx.fail_next(1, 503)  # the request goes to the spool, then is replayed
            sent += self.one_trace(d, tag="leak%d" % i)
            self.wait(lambda: len({s["span_id"] for s in self.rx.spans()}) == sent, "delivered")
        st = self.wait_stats(d, "idle", lambda st: st[HTTP + "queued_requests"] +
                             st[HTTP + "inflight_requests"] + st[HTTP + "spool.records"] == 0)
        print("\nspooled then replayed: sent %d, spooled %d, replayed %d, queued_bytes %d with "
              "nothing queued" % (sent, st[HTTP + "spans_spooled"], st[HTTP + "spans_replayed"],
                                  st[HTTP + "queued_bytes"]))
        self.assertEqual(st[HTTP + "spans_spooled"], sent)
        self.assertEqual(st[HTTP + "spans_replayed"], sent)
        self.assertEqual(st[HTTP + "queued_bytes"], 0)


if __name__ == "__main__":
    unittest.main()
