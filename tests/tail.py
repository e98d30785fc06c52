#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""sidespan tail and sidespan emit (issue 10) against the real sidespand and a
real OTLP/HTTP receiver: the tree of an emitted run in order, indentation,
durations and waterfalls; --json; colours under a pseudo-terminal and NO_COLOR;
the daemon-side filters; a subscriber that never reads, which must cost the
agents and the exporters nothing; SUBSCRIBE's wire checks.

Run by meson with SIDESPAND and SIDESPAN_CLI set (suite integration, test tail).
"""

import json
import os
import pty
import re
import select
import socket
import subprocess
import sys
import time
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_lib import Base, RawClient, frame, run  # noqa: E402

CLI = os.environ.get("SIDESPAN_CLI", "sidespan")
MSG_SUBSCRIBE, MSG_TRACE = 9, 67
STEPS = 24
DURATION = re.compile(r"(\d+(?:\.\d+)?) (µs|us|ms|s)$")


def seconds(value, unit):
    return float(value) * {"µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


class Tail(Base):
    def cli(self, d, *args, env=None):
        return run([CLI, "--socket", d.socket] + list(args), env=env)

    def subscribers(self, d):
        c = RawClient(d.socket)
        try:
            return c.stats().get("tap.subscribers", 0)
        finally:
            c.close()

    def start_tail(self, d, *args, env=None, stdout=subprocess.PIPE):
        """sidespan tail in the background, returned once the daemon counts it."""
        before = self.subscribers(d)
        full = dict(os.environ)
        full.update(env or {})
        p = subprocess.Popen([CLI, "--socket", d.socket, "tail"] + list(args), env=full,
                             stdout=stdout, stderr=subprocess.PIPE, text=stdout is not None)
        deadline = time.time() + 10
        while self.subscribers(d) <= before:
            self.assertIsNone(p.poll(), "tail exited early")
            self.assertLess(time.time(), deadline, "tail never subscribed")
            time.sleep(0.02)
        return p

    def emit(self, d, *args):
        r = self.cli(d, "emit", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.findall(r"traceparent 00-([0-9a-f]{32})-", r.stdout)
        self.assertTrue(m, r.stdout)
        return m

    def test_json_tree_of_an_emitted_run(self):
        d = self.http_daemon()
        p = self.start_tail(d, "--json", "--count", "1", "--timeout", "20000")
        (tid,) = self.emit(d, "--latency", "5")
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        t = json.loads(out)
        self.assertEqual(t["trace_id"], tid)
        self.assertEqual((t["dropped"], t["omitted"]), (0, 0))
        spans = t["spans"]
        self.assertEqual(len(spans), 30)
        # Depth first, children by start time.
        self.assertEqual([(s["name"], s["depth"]) for s in spans[:2]],
                         [("agent.run", 0), ("pipeline.execute", 1)])
        steps = [s for s in spans if s["depth"] == 2]
        self.assertEqual(len(steps), STEPS)
        self.assertTrue(all(s["name"].startswith("pipeline.step.") for s in steps))
        starts = [s["start_ns"] for s in steps]
        self.assertEqual(starts, sorted(starts))
        i = next(i for i, s in enumerate(spans) if s["name"] == "pipeline.step.model_execution")
        under = spans[i + 1:i + 5]
        self.assertEqual([(s["name"], s["depth"]) for s in under],
                         [("chat gpt-4o", 3), ("tool.execute", 3), ("tool.execute", 3),
                          ("chat gpt-4o", 3)])
        self.assertTrue(all(s["parent_id"] == spans[i]["span_id"] for s in under))
        by_id = {s["span_id"]: s for s in spans}
        for s in spans[1:]:
            self.assertIn(s["parent_id"], by_id)
            self.assertEqual(by_id[s["parent_id"]]["depth"], s["depth"] - 1)
        run_ = spans[0]
        self.assertIsNone(run_["parent_id"])
        self.assertEqual(run_["service"], "sidespan-emit")
        a = run_["attributes"]
        self.assertEqual(a["upsonic.agent.name"], "emit-agent")
        self.assertEqual((a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]),
                         (412 + 538, 46 + 71))
        self.assertGreater(a["upsonic.total_cost"], 0)
        chat = under[0]["attributes"]
        self.assertEqual(chat["gen_ai.usage.input_tokens"], 412)
        self.assertGreater(chat["gen_ai.usage.cost"], 0)
        # A summary, never content.
        for s in spans:
            self.assertFalse(set(s["attributes"]) & {"gen_ai.input.messages", "upsonic.input",
                                                     "gen_ai.tool.call.arguments"})
            self.assertGreaterEqual(s["end_ns"], s["start_ns"])
        # The latency the run simulated shows in the chat spans' durations.
        self.assertGreaterEqual(under[0]["duration_ms"], 5)
        # And the trace went to the exporter whole, as before.
        got = self.wait_spans(30)
        self.assertEqual({s["trace_id"] for s in got}, {tid})

    def text_tail(self, d, env, *emit_args):
        p = self.start_tail(d, "--count", "1", "--timeout", "20000", env=env)
        (tid,) = self.emit(d, *emit_args)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        return tid, out.splitlines()

    def test_text_tree_indentation_durations_and_bars(self):
        d = self.http_daemon()
        tid, lines = self.text_tail(d, {"LC_ALL": "C.UTF-8"}, "--latency", "20")
        self.assertRegex(lines[0], r"^trace %s  sidespan-emit  30 spans  [\d.]+ (ms|s)$" % tid)
        rows = lines[1:31]
        self.assertEqual(lines[31:], [""])
        self.assertNotIn("\033[", "\n".join(lines))  # not a terminal: no colours
        self.assertTrue(rows[0].startswith("agent.run "))
        self.assertTrue(rows[1].startswith("└─ pipeline.execute "))
        self.assertTrue(rows[2].startswith("   ├─ pipeline.step.initialization "))
        self.assertTrue(rows[-1].startswith("   └─ pipeline.step.call_management "))
        i = next(i for i, r in enumerate(rows) if "pipeline.step.model_execution" in r)
        self.assertTrue(rows[i + 1].startswith("   │  ├─ chat gpt-4o "))
        self.assertTrue(rows[i + 4].startswith("   │  └─ chat gpt-4o "))
        # Every row: a duration in one column, then its bar in one 40-column waterfall.
        col = None
        for r in rows:
            m = re.search(r"(\d+(?:\.\d+)? (?:µs|ms|s))  ", r)
            self.assertIsNotNone(m, r)
            col = col or m.end()
            self.assertEqual(m.end(), col, "durations not aligned:\n" + "\n".join(rows))
            self.assertIn("█", r[col:col + 40])
        self.assertEqual(rows[0][col:col + 40], "█" * 40)  # the root spans the trace
        chat = DURATION.search(re.search(r"^.*?\d (?:µs|ms|s)", rows[i + 1]).group(0))
        self.assertGreaterEqual(seconds(*chat.groups()), 0.020)
        self.assertRegex(rows[0], r"emit-agent tokens 950 in / 117 out \$0\.\d{4}$")
        self.assertRegex(rows[i + 1], r"gpt-4o tokens 412 in / 46 out \$0\.\d{4}$")
        self.assertRegex(rows[i + 2], r"get_weather$")

    def test_ascii_without_a_utf8_locale(self):
        d = self.http_daemon()
        _, lines = self.text_tail(d, {"LC_ALL": "C"})
        self.assertTrue(lines[2].startswith("`- pipeline.execute ") or
                        lines[2].startswith("`- "), lines[:3])
        self.assertNotIn("█", "\n".join(lines))
        self.assertIn("=" * 40, lines[1])

    def tty_tail(self, d, env):
        master, slave = pty.openpty()
        p = self.start_tail(d, "--count", "1", "--timeout", "20000", env=env, stdout=slave)
        os.close(slave)
        self.emit(d)
        out = b""
        deadline = time.time() + 20
        while time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        p.wait(timeout=10)
        os.close(master)
        self.assertEqual(p.returncode, 0)
        return out.decode("utf-8", "replace")

    def test_colours_on_a_terminal_unless_no_color(self):
        d = self.http_daemon()
        out = self.tty_tail(d, {"LC_ALL": "C.UTF-8"})
        self.assertIn("agent.run", out)
        self.assertIn("\033[", out)
        out = self.tty_tail(d, {"LC_ALL": "C.UTF-8", "NO_COLOR": "1"})
        self.assertIn("agent.run", out)
        self.assertNotIn("\033[", out)

    def test_filters(self):
        d = self.http_daemon()
        by_agent = self.start_tail(d, "--json", "--agent", "b", "--count", "1",
                                   "--timeout", "20000")
        failed = self.start_tail(d, "--json", "--status", "error", "--count", "1",
                                 "--timeout", "20000")
        fine = self.start_tail(d, "--json", "--status", "ok", "--count", "2",
                               "--timeout", "20000")
        service = self.start_tail(d, "--json", "--service", "svc-c", "--count", "1",
                                  "--timeout", "20000")
        slow = self.start_tail(d, "--json", "--min-duration", "60000", "--timeout", "3000")
        (ta,) = self.emit(d, "--agent", "a")
        (tb,) = self.emit(d, "--agent", "b", "--error")
        (tc,) = self.emit(d, "--agent", "c", "--service", "svc-c")
        results = {}
        for name, p in (("agent", by_agent), ("error", failed), ("ok", fine),
                        ("service", service), ("slow", slow)):
            out, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, name + ": " + err)
            results[name] = [json.loads(line)["trace_id"] for line in out.splitlines()]
        self.assertEqual(results["agent"], [tb])
        self.assertEqual(results["error"], [tb])
        self.assertEqual(results["ok"], [ta, tc])
        self.assertEqual(results["service"], [tc])
        self.assertEqual(results["slow"], [])
        # --count not met before --timeout: exit 1.
        r = self.cli(d, "tail", "--min-duration", "60000", "--count", "1", "--timeout", "300")
        self.assertEqual(r.returncode, 1)

    def test_a_reader_that_never_reads_costs_ingest_nothing(self):
        d = self.http_daemon()
        lazy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.connect(d.socket)
        lazy.sendall(frame(MSG_SUBSCRIBE, {}))
        deadline = time.time() + 10
        while self.subscribers(d) < 1:
            self.assertLess(time.time(), deadline)
            time.sleep(0.02)
        runs = 1000
        r = self.cli(d, "emit", "--runs", str(runs))
        self.assertEqual(r.returncode, 0, r.stderr)
        # Every span reached the backend while the reader slept.
        spans = self.wait_spans(runs * 30, timeout=60)
        self.assertEqual(len(spans), runs * 30)
        c = RawClient(d.socket)
        st = c.stats()
        c.flush()
        c.close()
        self.assertGreater(st["tap.traces_dropped"], 0)
        self.assertEqual(st["tap.traces_sent"] + st["tap.traces_dropped"], runs)
        # The reader wakes up and drains what was queued; the next trace says how many it
        # missed.
        lazy.settimeout(10)
        reader = RawClient.__new__(RawClient)
        reader.sock, reader.buf = lazy, b""
        for _ in range(st["tap.traces_sent"]):
            self.assertEqual(reader.recv_frame()[0], MSG_TRACE)
        (tid,) = self.emit(d)
        last = reader.recv_frame()
        self.assertEqual(last[0], MSG_TRACE)
        self.assertEqual(last[1], st["tap.traces_dropped"])
        self.assertEqual(bytes(last[3][0][0]).hex(), tid)
        lazy.close()

    def test_subscribe_checks(self):
        d = self.http_daemon()
        for bad in ({"status": 5}, {"service": "x" * 300}, {"min_duration_ms": "soon"}):
            c = RawClient(d.socket)
            c.send(frame(MSG_SUBSCRIBE, bad))
            self.assertTrue(c.closed_by_peer(), bad)
            c.close()
        c = RawClient(d.socket)
        c.send(frame(MSG_SUBSCRIBE, {}) + frame(MSG_SUBSCRIBE, {}))
        self.assertTrue(c.closed_by_peer())
        c.close()
        c = RawClient(d.socket)
        c.send(frame(MSG_TRACE, 0, 0, []))
        self.assertTrue(c.closed_by_peer())
        c.close()
        # A subscriber has no HELLO and may be silent: the timeouts leave it alone.
        quiet = self.daemon(["--hello-timeout-ms", "200", "--idle-timeout-ms", "200"], name="q")
        c = RawClient(quiet.socket)
        c.send(frame(MSG_SUBSCRIBE, {}))
        self.assertFalse(c.closed_by_peer(timeout=1.0))
        st = RawClient(quiet.socket).stats()
        self.assertEqual(st["tap.subscribers"], 1)
        self.assertEqual(st["timeouts_hello"] + st["timeouts_idle"], 0)
        c.close()

    def test_emit_and_tail_without_a_daemon(self):
        path = os.path.join(self.tmp, "none.sock")
        for verb in ("emit", "tail"):
            r = run([CLI, "--socket", path, verb])
            self.assertEqual(r.returncode, 1, verb)
            self.assertIn("sidespan: no daemon at " + path, r.stderr)

    def test_tail_ends_when_the_daemon_goes(self):
        d = self.http_daemon()
        p = self.start_tail(d)
        d.stop()
        _, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 1)
        self.assertIn("the daemon closed the connection", err)

    def test_arguments(self):
        for args in (["tail", "--help"], ["emit", "--help"]):
            r = run([CLI] + args)
            self.assertEqual(r.returncode, 0)
            self.assertIn("Usage: sidespan " + args[0], r.stdout)
        for args, word in ((["tail", "--status", "maybe"], "'maybe'"),
                           (["tail", "--min-duration", "long"], "'long'"),
                           (["tail", "--frobnicate"], "'--frobnicate'"),
                           (["emit", "--runs", "-3"], "'-3'"),
                           (["emit", "--runs"], "'--runs'")):
            r = run([CLI] + args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(word, r.stderr)


if __name__ == "__main__":
    unittest.main()
