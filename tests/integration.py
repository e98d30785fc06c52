#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""End-to-end tests: the real sidespand on a temporary socket, a real OTLP/HTTP
receiver that decodes protobuf (tests/otlp_receiver.py), the demo agent, the
client library (tests/itest-client.c) and raw protocol clients.

Run by meson with SIDESPAND, DEMO_AGENT, ITEST_CLIENT and PROTO_DIR set.
"""

import fcntl
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_lib import (  # noqa: E402
    KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, MSG_SPAN_START, STATUS_ERROR, STATUS_OK,
    Base, Daemon, RawClient, by_trace, frame, project_version, run, send_trace, span_end,
    span_start)
from otlp_receiver import Receiver  # noqa: E402

SIDESPAND = os.environ["SIDESPAND"]
DEMO_AGENT = os.environ["DEMO_AGENT"]
ITEST_CLIENT = os.environ["ITEST_CLIENT"]

STEPS = [
    "initialization", "storage_connection", "cache_check", "llm_manager",
    "model_selection", "tool_setup", "memory_prepare", "system_prompt_build",
    "context_build", "chat_history", "user_policy", "user_input_build",
    "message_assembly", "call_manager_setup", "model_execution",
    "response_processing", "reflection", "task_management", "reliability",
    "agent_policy", "cache_storage", "finalization", "memory_save",
    "call_management",
]
CONTENT_KEYS = {
    "upsonic.input", "upsonic.output", "upsonic.tools_called",
    "gen_ai.input.messages", "gen_ai.output.messages",
    "gen_ai.system_instructions", "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result", "gen_ai.tool.definitions",
}


class DemoAgentTrace(Base):
    """The demo agent's run arrives as TRACE-MODEL.md describes it."""

    def check_run(self, spans):
        self.assertEqual(len(spans), 30, [s["name"] for s in spans])
        by_id = {s["span_id"]: s for s in spans}
        self.assertEqual(len(by_id), 30, "span ids are unique")
        names = [s["name"] for s in spans]

        run = [s for s in spans if s["name"] == "agent.run"]
        self.assertEqual(len(run), 1)
        run = run[0]
        self.assertEqual(run["parent_span_id"], "")
        self.assertEqual(run["kind"], KIND_SERVER)
        self.assertEqual(run["service_name"], "demo-agent")
        self.assertIn("process.pid", run["resource"])
        self.assertEqual(run["status_code"], STATUS_OK)
        a = run["attributes"]
        for key in ("upsonic.agent.name", "upsonic.agent.model", "upsonic.run_id",
                    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
                    "upsonic.usage.total_tokens", "upsonic.total_cost",
                    "upsonic.execution_time", "upsonic.model_execution_time",
                    "upsonic.tool_execution_time", "upsonic.framework_overhead_time",
                    "upsonic.tool_call_count", "upsonic.status", "upsonic.is_streaming",
                    "upsonic.pipeline.executed_steps", "upsonic.input", "upsonic.output"):
            self.assertIn(key, a, key)
        self.assertEqual(a["upsonic.status"], "COMPLETED")
        self.assertEqual(a["upsonic.tool_call_count"], 2)
        self.assertEqual(a["upsonic.pipeline.executed_steps"], 24)
        self.assertIs(a["upsonic.is_streaming"], False)
        self.assertIsInstance(a["upsonic.total_cost"], float)
        # The demo sets no cost: the daemon derived it from its pricing table, per chat span
        # and summed on the run.
        chats = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
        self.assertTrue(chats)
        self.assertGreater(a["upsonic.total_cost"], 0.0)
        self.assertAlmostEqual(a["upsonic.total_cost"],
                               sum(c["attributes"]["gen_ai.usage.cost"] for c in chats),
                               places=12)

        pipe = [s for s in spans if s["name"] == "pipeline.execute"]
        self.assertEqual(len(pipe), 1)
        pipe = pipe[0]
        self.assertEqual(pipe["parent_span_id"], run["span_id"])
        self.assertEqual(pipe["kind"], KIND_INTERNAL)
        self.assertEqual(pipe["attributes"]["upsonic.pipeline.total_steps"], 24)

        steps = [s for s in spans if s["name"].startswith("pipeline.step.")]
        self.assertEqual([s["name"] for s in sorted(steps, key=lambda s: s["start_time_unix_nano"])],
                         ["pipeline.step." + n for n in STEPS])
        for s in steps:
            self.assertEqual(s["parent_span_id"], pipe["span_id"])
            self.assertEqual(s["kind"], KIND_INTERNAL)
            self.assertEqual(s["attributes"]["upsonic.step.name"], s["name"][len("pipeline.step."):])
            self.assertEqual(s["attributes"]["upsonic.step.status"], "COMPLETED")
            self.assertIn("upsonic.step.execution_time", s["attributes"])
        model_step = [s for s in steps if s["name"] == "pipeline.step.model_execution"][0]

        chats = [s for s in spans if s["name"].startswith("chat ")]
        self.assertEqual(len(chats), 2)
        for c in chats:
            self.assertEqual(c["kind"], KIND_CLIENT)
            self.assertEqual(c["parent_span_id"], model_step["span_id"])
            ca = c["attributes"]
            self.assertEqual(c["name"], "chat " + ca["gen_ai.request.model"])
            self.assertEqual(ca["gen_ai.operation.name"], "chat")
            for key in ("gen_ai.provider.name", "gen_ai.response.model", "gen_ai.response.id",
                        "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
                        "gen_ai.input.messages", "gen_ai.output.messages"):
                self.assertIn(key, ca, key)
            self.assertIsInstance(ca["gen_ai.response.finish_reasons"], list)
            self.assertIsInstance(ca["gen_ai.usage.input_tokens"], int)
        first = min(chats, key=lambda s: s["start_time_unix_nano"])
        self.assertIn("gen_ai.first_token", [e["name"] for e in first["events"]])
        self.assertEqual(sum(c["attributes"]["gen_ai.usage.input_tokens"] for c in chats),
                         a["gen_ai.usage.input_tokens"])

        tools = [s for s in spans if s["name"] == "tool.execute"]
        self.assertEqual(len(tools), 2)
        for t in tools:
            self.assertEqual(t["kind"], KIND_INTERNAL)
            self.assertEqual(t["parent_span_id"], model_step["span_id"])
            for key in ("upsonic.tool.name", "upsonic.tool.call_id", "upsonic.tool.success",
                        "upsonic.tool.execution_time", "gen_ai.tool.call.arguments",
                        "gen_ai.tool.call.result"):
                self.assertIn(key, t["attributes"], key)

        for s in spans:
            self.assertGreater(s["end_time_unix_nano"], 0)
            self.assertGreaterEqual(s["end_time_unix_nano"], s["start_time_unix_nano"])
            if s is not run:
                self.assertIn(s["parent_span_id"], by_id, s["name"])
                parent = by_id[s["parent_span_id"]]
                self.assertGreaterEqual(s["start_time_unix_nano"], parent["start_time_unix_nano"])
        self.assertEqual(names.count("pipeline.step.model_execution"), 1)

    def test_demo_runs_arrive_whole(self):
        self.http_daemon()
        r = run([DEMO_AGENT, "--runs", "3", "--threads", "2", "--service", "demo-agent",
                 "--socket", self.daemons[0].socket], timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        spans = self.wait_spans(90)
        traces = by_trace(spans)
        self.assertEqual(len(traces), 3)
        for trace_id, t in traces.items():
            self.assertEqual(len(trace_id), 32)
            self.check_run(t)
        req = self.rx.requests[-1]
        self.assertEqual(req["content_type"], "application/x-protobuf")
        self.assertIsNone(req["decode_error"])

    def test_sigterm_flushes_and_exits_zero(self):
        # A long batch delay: only the drain on SIGTERM can deliver in time.
        d = self.daemon(["--endpoint", self.rx.url, "--batch-delay-ms", "600000"])
        c = RawClient(d.socket)
        c.hello()
        tid, root, child = os.urandom(16), os.urandom(8), os.urandom(8)
        c.send(span_start(tid, root, None, "held.root"))
        c.send(span_start(tid, child, root, "held.child"))
        c.send(span_end(child))
        c.send(span_end(root))
        c.send(span_start(os.urandom(16), os.urandom(8), None, "open.at.exit"))
        self.assertEqual(c.stats()["spans_started"], 3)
        self.assertEqual(d.stop(), 0, d.stderr())
        c.close()
        spans = {s["name"]: s for s in self.wait_spans(3, timeout=5)}
        self.assertEqual(spans["held.child"]["parent_span_id"], root.hex())
        self.assertEqual(spans["open.at.exit"]["status_code"], STATUS_ERROR)
        self.assertIs(spans["open.at.exit"]["attributes"]["sidespan.orphaned"], True)
        self.assertFalse(os.path.exists(d.socket), "socket removed at exit")


    def test_sigterm_with_dead_backend_reports_drops(self):
        dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]
        dead.close()  # nothing listens there now: connections are refused
        d = self.daemon(["--endpoint", "http://127.0.0.1:%d" % port, "--batch-delay-ms", "10",
                         "--drain-timeout-ms", "500"])
        c = RawClient(d.socket)
        c.hello()
        tid, sid = os.urandom(16), os.urandom(8)
        c.send(span_start(tid, sid, None, "undeliverable"))
        c.send(span_end(sid))
        c.flush()
        c.close()
        t0 = time.monotonic()
        self.assertEqual(d.stop(), 0)
        self.assertLess(time.monotonic() - t0, 10, "the drain timeout bounds the exit")
        self.assertRegex(d.stderr(), r"otlp-http exporter: 0 span\(s\) exported, 1 not delivered")


    def test_one_trace_over_two_connections(self):
        d = self.http_daemon()
        planner, worker = RawClient(d.socket), RawClient(d.socket)
        planner.hello(instance=10, **{"service.name": "planner"})
        worker.hello(instance=11, **{"service.name": "worker"})
        tid, root, child = os.urandom(16), os.urandom(8), os.urandom(8)
        planner.send(span_start(tid, root, None, "agent.run", KIND_SERVER))
        planner.stats()  # the root is open before the worker's child arrives
        worker.send(span_start(tid, child, root, "tool.execute"))
        worker.send(span_end(child))
        worker.flush()
        planner.send(span_end(root))
        planner.flush()
        spans = {s["name"]: s for s in self.wait_spans(2)}
        self.assertEqual(spans["tool.execute"]["trace_id"], tid.hex())
        self.assertEqual(spans["tool.execute"]["parent_span_id"], root.hex())
        self.assertEqual(spans["tool.execute"]["service_name"], "worker")
        self.assertEqual(spans["agent.run"]["service_name"], "planner")
        planner.close()
        worker.close()


class ClientLibrary(Base):
    def test_attribute_types_and_events(self):
        d = self.http_daemon()
        r = run([ITEST_CLIENT, "spans", "3"], env={"SIDESPAN_SOCKET": d.socket})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout)
        spans = self.wait_spans(9)
        traces = by_trace(spans)
        self.assertEqual(sorted(traces), sorted(out["trace_ids"]))
        for t in traces.values():
            self.assertEqual(len(t), 3)
            roots = [s for s in t if not s["parent_span_id"]]
            self.assertEqual(len(roots), 1)
            for s in t:
                if s is not roots[0]:
                    self.assertEqual(s["parent_span_id"], roots[0]["span_id"])
        values = {}
        events = []
        for s in spans:
            values.update(s["attributes"])
            events += s["events"]
        kinds = {type(v) for v in values.values()}
        self.assertTrue({str, int, float, bool, list} <= kinds, kinds)
        lists = [v for v in values.values() if isinstance(v, list)]
        self.assertTrue(any(all(isinstance(x, str) for x in v) for v in lists))
        self.assertTrue(any(all(isinstance(x, int) for x in v) for v in lists))
        self.assertTrue(any(all(isinstance(x, float) for x in v) for v in lists))
        self.assertTrue(events and any(e["attributes"] for e in events))

    def test_remote_parent_continues_trace(self):
        d = self.http_daemon()
        parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        r = run([ITEST_CLIENT, "remote", parent], env={"SIDESPAN_SOCKET": d.socket})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout)
        spans = self.wait_spans(2)
        self.assertEqual({s["trace_id"] for s in spans}, {"4bf92f3577b34da6a3ce929d0e0e4736"})
        top = [s for s in spans if s["parent_span_id"] == "00f067aa0ba902b7"]
        self.assertEqual(len(top), 1)
        self.assertTrue(out["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-"))
        self.assertIn(out["traceparent"][36:52], {s["span_id"] for s in spans})

    def test_include_content_false_drops_content(self):
        d = self.http_daemon()
        r = run([ITEST_CLIENT, "nocontent"], env={"SIDESPAN_SOCKET": d.socket})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        spans = self.wait_spans(1)
        keys = set()
        for s in spans:
            keys |= set(s["attributes"])
            for e in s["events"]:
                keys |= set(e["attributes"])
        self.assertFalse(keys & CONTENT_KEYS, keys & CONTENT_KEYS)
        self.assertTrue(keys - CONTENT_KEYS, "non-content attributes still arrive")

    def test_sampling_keeps_whole_traces(self):
        d = self.http_daemon()
        r = run([ITEST_CLIENT, "sampled", "0.5", "200"], env={"SIDESPAN_SOCKET": d.socket})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout)
        kept = out["trace_ids"]
        self.assertTrue(40 < len(kept) < 160, len(kept))
        time.sleep(0.5)
        spans = self.wait_spans(len(kept) * 1)
        self.assertEqual(set(by_trace(spans)), set(kept))

    def test_absent_daemon_returns_promptly(self):
        sock = os.path.join(self.tmp, "nobody-here.sock")
        t0 = time.monotonic()
        r = run([ITEST_CLIENT, "absent", "2000"], env={"SIDESPAN_SOCKET": sock}, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["sent"], 0)
        self.assertLess(out["flush"], 0, "flush reports the daemon as absent")
        # A liveness bound, not a benchmark: blocking on a missing daemon would hang.
        self.assertLess(time.monotonic() - t0, 20)

    def test_demo_without_daemon_exits_zero(self):
        sock = os.path.join(self.tmp, "nobody-here.sock")
        r = run([DEMO_AGENT, "--runs", "2", "--socket", sock], timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_client_reconnects_after_daemon_restart(self):
        d = self.http_daemon()
        proc = subprocess.Popen([ITEST_CLIENT, "reconnect"],
                                env=dict(os.environ, SIDESPAN_SOCKET=d.socket),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(proc.stdout.readline().strip(), "first 0")
            self.wait_spans(1)
            self.assertEqual(d.stop(), 0)
            self.http_daemon()  # same socket path, a new daemon
            proc.stdin.write("go\n")
            proc.stdin.flush()
            out = json.loads(proc.stdout.readline())
            self.assertEqual(out["flush"], 0, out)
            self.assertGreaterEqual(out["reconnects"], 1, out)
            spans = self.wait_spans(2)
            self.assertEqual(sorted(s["name"] for s in spans), ["after.restart", "before.restart"])
        finally:
            proc.kill()
            proc.wait()


class BadInput(Base):
    def test_garbage_is_disconnected_other_client_unharmed(self):
        d = self.http_daemon()
        good = RawClient(d.socket)
        good.hello(instance=1)
        tid, sid = os.urandom(16), os.urandom(8)
        good.send(span_start(tid, sid, None, "good.before"))

        cases = [
            struct.pack(">I", 5) + b"\xc1\xc1\xc1\xc1\xc1",           # not msgpack
            struct.pack(">I", 0x7fffffff),                              # over max_frame
            struct.pack(">I", 0),                                       # empty frame
            frame(MSG_SPAN_START, b"short", 1, 2),                      # wrong shape
            frame(MSG_SPAN_START, os.urandom(16), os.urandom(8), None, "x", 1, 1, {}, {}),  # before HELLO
        ]
        for data in cases:
            bad = RawClient(d.socket)
            if data is not cases[-1]:
                bad.hello(instance=2)
            bad.send(data)
            self.assertTrue(bad.closed_by_peer(), "daemon closed the connection for %r" % data[:16])
            bad.close()

        # An unknown message type is skipped, not fatal.
        odd = RawClient(d.socket)
        odd.hello(instance=3)
        odd.send(frame(42, "from the future"))
        odd.flush(9)
        stats = odd.stats()
        odd.close()

        good.send(span_end(sid))
        good.flush()
        spans = self.wait_spans(1)
        self.assertEqual(spans[0]["name"], "good.before")
        self.assertEqual(spans[0]["span_id"], sid.hex())
        self.assertGreaterEqual(stats["protocol_errors"], len(cases))
        self.assertEqual(stats["unknown_messages"], 1)
        good.close()
        self.assertIn("closing connection", d.stderr())
        self.assertEqual(d.stop(), 0)

    def test_end_for_unknown_span_is_counted(self):
        d = self.http_daemon()
        c = RawClient(d.socket)
        c.hello()
        c.send(span_end(os.urandom(8)))
        stats = c.stats()
        self.assertEqual(stats["unknown_span"], 1)
        self.assertEqual(stats["span_errors"], 1)
        self.assertFalse(c.closed_by_peer(0.3))
        c.close()

    def test_orphaned_spans_end_with_error(self):
        d = self.http_daemon(["--orphan-grace-ms", "200"])
        c = RawClient(d.socket)
        c.hello(instance=5)
        tid, sid = os.urandom(16), os.urandom(8)
        c.send(span_start(tid, sid, None, "abandoned"))
        c.stats()
        c.close()
        s = self.wait_spans(1)[0]
        self.assertEqual(s["name"], "abandoned")
        self.assertEqual(s["status_code"], STATUS_ERROR)
        self.assertIs(s["attributes"]["sidespan.orphaned"], True)


class Exporters(Base):
    def test_console_is_the_default(self):
        d = self.daemon()
        r = run([DEMO_AGENT, "--runs", "1", "--service", "demo-agent", "--socket", d.socket])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(d.stop(), 0)
        out = d.stdout()
        self.assertIn("no exporter configured", d.stderr())
        self.assertRegex(out, r"trace [0-9a-f]{32}  service=demo-agent  30 spans")
        self.assertIn("agent.run [server]", out)
        self.assertIn("pipeline.step.model_execution", out)
        self.assertRegex(out, r"chat \S+ \[client\]")
        self.assertEqual(out.count("tool.execute"), 2)

    def test_file_exporter_writes_otlp_json_lines(self):
        path = os.path.join(self.tmp, "traces.jsonl")
        d = self.daemon(["--exporter", "file", "--file", path, "--batch-delay-ms", "50"])
        r = run([DEMO_AGENT, "--runs", "1", "--service", "demo-agent", "--socket", d.socket])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(d.stop(), 0)
        spans = []
        with open(path) as f:
            for line in f:
                req = json.loads(line)
                for rs in req["resourceSpans"]:
                    svc = [a for a in rs["resource"]["attributes"] if a["key"] == "service.name"]
                    self.assertEqual(svc[0]["value"]["stringValue"], "demo-agent")
                    for ss in rs["scopeSpans"]:
                        spans += ss["spans"]
        self.assertEqual(len(spans), 30)
        self.assertEqual(len({s["traceId"] for s in spans}), 1)
        for s in spans:
            self.assertRegex(s["traceId"], r"^[0-9a-f]{32}$")
            self.assertRegex(s["spanId"], r"^[0-9a-f]{16}$")
            self.assertIsInstance(s["startTimeUnixNano"], str)
        run_span = [s for s in spans if s["name"] == "agent.run"][0]
        self.assertEqual(run_span["kind"], KIND_SERVER)
        self.assertNotIn("parentSpanId", run_span)

    def fifo(self):
        path = os.path.join(self.tmp, "traces.fifo")
        os.mkfifo(path)
        return path

    def pipe_full(self, rfd, timeout=20):
        """True once the pipe read by rfd holds as many bytes as it can."""
        size = fcntl.fcntl(rfd, fcntl.F_GETPIPE_SZ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = struct.unpack("i", fcntl.ioctl(rfd, termios.FIONREAD, b"\0" * 4))[0]
            if held == size:
                return True
            time.sleep(0.02)
        return False

    def test_fifo_nobody_reads_does_not_stall(self):
        # The file exporter once wrote with stdio on the loop thread: a full pipe hung the
        # whole daemon. Now its writer queues, and the other exporter and clients go on.
        path = self.fifo()
        rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a reader that never reads
        self.addCleanup(os.close, rfd)
        d = self.daemon(["--exporter", "file,otlp-http", "--file", path,
                         "--endpoint", self.rx.url, "--batch-delay-ms", "50",
                         "--drain-timeout-ms", "1000"])
        load = RawClient(d.socket)
        load.hello(instance=1)
        n_traces, n_children = 4, 99
        payload = {"gen_ai.output.messages": "x" * 4096}
        for i in range(n_traces):
            send_trace(load, "load.%d" % i, n_children, payload)
        n_load = n_traces * (n_children + 1)  # some 1.7 MB of JSON for a 64 KiB pipe
        self.wait_spans(n_load, timeout=30)
        self.assertTrue(self.pipe_full(rfd), "the file exporter filled the pipe")

        probe = RawClient(d.socket)
        probe.hello(instance=2)
        tid = send_trace(probe, "after.the.flood", 1)
        probe.flush()
        spans = self.wait_spans(n_load + 2)
        self.assertEqual(sorted(s["name"] for s in spans if s["trace_id"] == tid.hex()),
                         ["after.the.flood", "after.the.flood.child"])
        stats = probe.stats()
        self.assertEqual(stats["spans_started"], n_load + 2)
        self.assertEqual(stats["exporter.file.spans_in"], n_load + 2)
        # held in the writer's queue behind the full pipe: neither written nor dropped
        self.assertLess(stats["exporter.file.spans_exported"], n_load)
        self.assertEqual(stats["exporter.file.spans_dropped"], 0)
        probe.flush(2)
        load.flush(3)
        load.close()
        probe.close()

        # The pipe never drains: SIGTERM ends the wait at the drain timeout, with exit 0.
        self.assertEqual(d.stop(timeout=15), 0, d.stderr())
        err = d.stderr()
        self.assertIn("drain timeout (1000 ms) reached", err)
        m = re.search(r"file exporter: (\d+) span\(s\) exported, (\d+) not delivered", err)
        self.assertTrue(m, err)
        self.assertEqual(int(m.group(1)) + int(m.group(2)), n_load + 2)
        self.assertGreater(int(m.group(2)), 0)

    def test_fifo_without_reader_fails_fast(self):
        path = self.fifo()
        d = self.daemon(["--exporter", "file", "--file", path], wait=False)
        self.assertEqual(d.proc.wait(10), 1, d.stderr())
        d.stop()
        self.assertIn("cannot open " + path, d.stderr())
        self.assertIn("no reader", d.stderr())
        self.assertFalse(os.path.exists(d.socket), "no socket left behind")

    def test_gzip_and_headers(self):
        d = self.http_daemon(["--compression", "gzip", "--header", "x-api-key=s%20ecret",
                              "--header", "x-tenant=acme"])
        r = run([DEMO_AGENT, "--runs", "1", "--socket", d.socket])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_spans(30)
        req = self.rx.requests[-1]
        self.assertEqual(req["content_encoding"], "gzip")
        self.assertEqual(req["headers"].get("x-api-key"), "s ecret")
        self.assertEqual(req["headers"].get("x-tenant"), "acme")
        self.assertTrue(req["user_agent"].startswith("sidespan/"))

    def test_retry_after_backend_failure(self):
        self.rx.fail_next(2, 503)
        d = self.daemon(["--endpoint", self.rx.url, "--batch-delay-ms", "50"])
        r = run([DEMO_AGENT, "--runs", "1", "--socket", d.socket])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_spans(30, timeout=30)
        self.assertEqual([q["status"] for q in self.rx.requests][:2], [503, 503])


class Packaging(unittest.TestCase):
    def test_installed_library_and_pkg_config(self):
        build = os.environ["SIDESPAN_BUILD_ROOT"]
        source = os.environ["SIDESPAN_SOURCE_ROOT"]
        with tempfile.TemporaryDirectory(prefix="sidespan-install-") as dest:
            r = run(["meson", "install", "-C", build, "--destdir", dest, "--no-rebuild",
                     "--quiet"], timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            pcs = [os.path.join(root, f) for root, _, files in os.walk(dest)
                   for f in files if f == "sidespan.pc"]
            self.assertEqual(len(pcs), 1, pcs)
            env = {"PKG_CONFIG_PATH": os.path.dirname(pcs[0]), "PKG_CONFIG_SYSROOT_DIR": dest}
            flags = run(["pkg-config", "--cflags", "--libs", "sidespan"], env=env)
            self.assertEqual(flags.returncode, 0, flags.stderr)
            exe = os.path.join(dest, "quickstart")
            sanitize = os.environ.get("SIDESPAN_SANITIZE", "none")
            cflags = [] if sanitize == "none" else ["-fsanitize=" + sanitize]
            quickstart = os.path.join(source, "examples", "quickstart.c")
            cc = run(["cc", "-std=c11", "-Wall", "-Werror", "-o", exe, quickstart] + cflags
                     + flags.stdout.split(), env=env)
            self.assertEqual(cc.returncode, 0, cc.stderr)
            libdir = [a[2:] for a in flags.stdout.split() if a.startswith("-L")][0]
            for unit in ("sidespand.service", "sidespan.conf"):
                self.assertTrue(any(unit in files for _, _, files in os.walk(dest)), unit)

            rx = Receiver(os.environ.get("PROTO_DIR")).start()
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    d = Daemon(tmp, ["--endpoint", rx.url, "--batch-delay-ms", "50"]).start()
                    q = run([exe], env={"LD_LIBRARY_PATH": libdir, "UPSONIC_OTEL_ENABLED": "1",
                                        "SIDESPAN_SOCKET": d.socket})
                    self.assertEqual(q.returncode, 0, q.stderr)
                    self.assertTrue(rx.wait_spans(2, 20))
                    self.assertEqual(sorted(s["name"] for s in rx.spans()),
                                     ["agent.run", "chat gpt-4o"])
                    self.assertEqual(d.stop(), 0)
            finally:
                rx.stop()


class Configuration(Base):
    def test_environment_endpoint_is_a_base(self):
        base = self.rx.url[: -len("v1/traces")]
        d = self.daemon(env={"OTEL_EXPORTER_OTLP_ENDPOINT": base})
        r = run([DEMO_AGENT, "--runs", "1", "--socket", d.socket])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_spans(30)
        self.assertEqual(self.rx.requests[-1]["path"], "/v1/traces")
        self.assertIn("exporting OTLP/HTTP protobuf to " + self.rx.url, d.stderr())

    def test_traces_endpoint_and_headers_from_env(self):
        d = self.daemon(env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": self.rx.url,
                             "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Basic%20abc",
                             "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
        r = run([DEMO_AGENT, "--runs", "1", "--socket", d.socket])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_spans(30)
        self.assertEqual(self.rx.requests[-1]["headers"].get("authorization"), "Basic abc")

    def test_bad_values_are_named(self):
        sock = os.path.join(self.tmp, "x.sock")
        cases = [
            (["--batch-size", "abc"], {}, "--batch-size: 'abc'"),
            (["--exporter", "kafka"], {}, "--exporter: 'kafka'"),
            (["--endpoint", "ftp://x"], {}, "--endpoint: 'ftp://x'"),
            ([], {"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, "OTEL_EXPORTER_OTLP_TIMEOUT: 'soon'"),
            ([], {"OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}, "OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift'"),
            ([], {"OTEL_EXPORTER_OTLP_COMPRESSION": "br"}, "OTEL_EXPORTER_OTLP_COMPRESSION: 'br'"),
            ([], {"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS: 'novalue'"),
            (["--exporter", "otlp-http"], {}, "needs --endpoint"),
        ]
        for args, env, message in cases:
            full = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
            full.update(env)
            r = subprocess.run([SIDESPAND, "--socket", sock] + args, env=full,
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 2, (args, env, r.stderr))
            self.assertIn(message, r.stderr)

    def test_help_documents_every_flag(self):
        r = run([SIDESPAND, "--help"])
        self.assertEqual(r.returncode, 0)
        for flag in ("--socket", "--exporter", "--endpoint", "--header", "--timeout-ms",
                     "--compression", "--file", "--batch-size", "--batch-delay-ms", "--max-frame",
                     "--max-open-spans", "--max-open-spans-total", "--orphan-grace-ms", "--log-level", "--version"):
            self.assertIn(flag, r.stdout)

    def test_version_is_the_project_version(self):
        version = project_version()
        self.assertRegex(version, r"^\d+\.\d+\.\d+")
        for flag in ("--version", "-V"):
            r = run([SIDESPAND, flag])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "sidespand %s\n" % version)

    def test_second_daemon_refused_stale_socket_replaced(self):
        d = self.daemon()
        other = Daemon(self.tmp, [], name="d")
        other.start(wait=False)
        self.assertEqual(other.proc.wait(10), 1)
        other.stop()
        self.assertIn("another sidespand is listening", other.stderr())
        self.assertEqual(d.stop(), 0)
        # A socket file nobody listens on is stale: the next daemon replaces it.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(d.socket)
        s.close()
        self.assertTrue(os.path.exists(d.socket))
        d2 = self.daemon(name="d")
        self.assertIn("removed stale socket", d2.stderr())
        c = RawClient(d2.socket)
        c.hello()
        self.assertEqual(c.stats()["connections"], 1)
        c.close()


if __name__ == "__main__":
    unittest.main()
