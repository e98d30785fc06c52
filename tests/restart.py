#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Open spans across a daemon restart (issue 9): the real sidespand with a state
directory, SIGTERM while clients have spans open, a new daemon on the same
socket, and a real OTLP/HTTP receiver that must get each span once, with its
true end, status and attributes; spans whose client never returns end as
orphans at the time the client left; a damaged state file is set aside.

Run by meson with SIDESPAND and SIDESPAN_CLI set (suite integration, test restart).
"""

import os
import re
import signal
import subprocess
import sys
import time
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_lib import (MSG_SPAN_EVENT, Base, Daemon, RawClient, frame,  # noqa: E402
                       span_attrs, span_end, span_start)
from otlp_receiver import Receiver  # noqa: E402


STATUS_ERROR = 2
STATE = "open-spans.state"


class RestartBase(Base):
    def setUp(self):
        super().setUp()
        self.state = os.path.join(self.tmp, "state")

    def start(self, name="d", socket=None, grace_ms=30000, extra=()):
        args = ["--endpoint", self.rx.url, "--batch-delay-ms", "50", "--state-dir", self.state,
                "--orphan-grace-ms", str(grace_ms)] + list(extra)
        d = Daemon(self.tmp, args, name=name)
        if socket:  # the same socket as the daemon before: clients find it again
            d.socket = socket
            d.args[1] = socket
        self.daemons.append(d)
        return d.start()

    def open_run(self, d, instance=501):
        """A client with an agent.run open, a chat span open under it (with an event and
        attributes set after its start) and one finished tool span."""
        c = RawClient(d.socket)
        c.hello(instance=instance)
        ids = {"trace": os.urandom(16), "run": os.urandom(8), "chat": os.urandom(8),
               "tool": os.urandom(8)}
        c.send(span_start(ids["trace"], ids["run"], None, "agent.run",
                          attrs={"upsonic.agent.name": "restart-agent", "user.id": "u1"}))
        c.send(span_start(ids["trace"], ids["tool"], ids["run"], "tool.execute",
                          attrs={"tool.name": "search"}) + span_end(ids["tool"]))
        c.send(span_start(ids["trace"], ids["chat"], ids["run"], "chat gpt-4o",
                          attrs={"gen_ai.operation.name": "chat",
                                 "gen_ai.request.model": "gpt-4o"}))
        c.send(span_attrs(ids["chat"], {"gen_ai.usage.input_tokens": 1000}))
        c.send(frame(MSG_SPAN_EVENT, ids["chat"], "gen_ai.first_token", time.time_ns(), {}))
        c.flush()
        return c, ids

    def wait_stat(self, d, key, want, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if d.stats().get(key) == want:
                return
            time.sleep(0.05)
        self.fail("%s never reached %r: %r" % (key, want, d.stats().get(key)))



class Restart(RestartBase):
    def test_spans_open_across_a_restart_end_once_with_their_true_end(self):
        d = self.start()
        c, ids = self.open_run(d)
        self.wait_stat(d, "spans_open", 2)
        self.assertEqual(d.stop(), 0, d.stderr())
        c.close()
        self.assertIn("event=state-saved", d.stderr())
        self.assertTrue(os.path.exists(os.path.join(self.state, STATE)))
        # The tool span had ended: it went out at shutdown; the open ones did not.
        self.assertTrue(self.rx.wait_spans(1, 10))
        self.assertEqual([s["name"] for s in self.rx.spans()], ["tool.execute"])

        d2 = self.start(name="d2", socket=d.socket)
        self.assertIn("event=state-restored", d2.stderr())
        self.assertFalse(os.path.exists(os.path.join(self.state, STATE)))
        st = d2.stats()
        self.assertEqual(st["spans_open"], 2)
        c = RawClient(d2.socket)
        c.hello(instance=501)
        ends = {}
        c.send(span_end(ids["chat"], attrs={"gen_ai.usage.output_tokens": 500}))
        ends["chat"] = time.time_ns()
        c.send(span_end(ids["run"], status=STATUS_ERROR))
        ends["run"] = time.time_ns()
        c.flush()
        c.close()
        self.assertTrue(self.rx.wait_spans(3, 10), self.rx.spans())
        time.sleep(0.3)
        spans = {s["name"]: s for s in self.rx.spans()}
        self.assertEqual(len(self.rx.spans()), 3, "each span once")
        chat, run = spans["chat gpt-4o"], spans["agent.run"]
        self.assertEqual(chat["span_id"], ids["chat"].hex())
        self.assertLessEqual(chat["end_time_unix_nano"], ends["chat"])
        self.assertGreater(chat["end_time_unix_nano"], ends["chat"] - 2 * 10**9)
        self.assertEqual(chat["attributes"]["gen_ai.usage.input_tokens"], 1000)
        self.assertEqual(chat["attributes"]["gen_ai.usage.output_tokens"], 500)
        self.assertEqual([e["name"] for e in chat["events"]], ["gen_ai.first_token"])
        self.assertNotIn("sidespan.orphaned", chat["attributes"])
        self.assertEqual(run["status_code"], STATUS_ERROR)
        self.assertNotIn("sidespan.orphaned", run["attributes"])
        self.assertEqual(run["attributes"]["upsonic.agent.name"], "restart-agent")
        # The run's roll-up counts the tool that ended before the restart and the chat after.
        self.assertEqual(run["attributes"]["upsonic.tool_call_count"], 1)
        self.assertEqual(run["attributes"]["gen_ai.usage.input_tokens"], 1000)
        self.assertEqual(run["attributes"]["gen_ai.usage.output_tokens"], 500)
        self.assertEqual(run["resource"]["service.name"], "raw-client")
        self.assertEqual(run["resource"]["process.pid"], os.getpid())
        st = d2.stats()
        self.assertEqual(st["spans_open"], 0)
        self.assertEqual(st["unknown_span"], 0)
        self.assertEqual(st["spans_orphaned"], 0)

    def test_a_client_that_never_returns_gets_orphans_ended_when_it_left(self):
        d = self.start(grace_ms=500)
        c, ids = self.open_run(d, instance=502)
        self.wait_stat(d, "spans_open", 2)
        left = time.time_ns()
        self.assertEqual(d.stop(), 0, d.stderr())
        c.close()
        time.sleep(0.2)
        d2 = self.start(name="d2", socket=d.socket, grace_ms=500)
        self.assertTrue(self.rx.wait_spans(3, 10), self.rx.spans())
        spans = {s["name"]: s for s in self.rx.spans()}
        for name in ("agent.run", "chat gpt-4o"):
            s = spans[name]
            self.assertEqual(s["status_code"], STATUS_ERROR, name)
            self.assertTrue(s["attributes"]["sidespan.orphaned"], name)
            # Ended when the client left (the first daemon's shutdown), not at the sweep.
            self.assertLess(abs(s["end_time_unix_nano"] - left), 10**9, name)
        self.assertEqual(spans["chat gpt-4o"]["attributes"]["gen_ai.usage.input_tokens"], 1000)
        self.assertEqual(spans["agent.run"]["attributes"]["user.id"], "u1")
        self.assertEqual(d2.stats()["spans_orphaned"], 2)

    def test_a_client_process_gone_during_the_restart_is_orphaned_at_once(self):
        d = self.start()
        child = subprocess.Popen([sys.executable, "-c", CHILD, d.socket],
                                 stdout=subprocess.PIPE, text=True)
        self.assertEqual(child.stdout.readline().strip(), "open")
        self.wait_stat(d, "spans_open", 1)
        self.assertEqual(d.stop(), 0, d.stderr())
        child.stdin = None
        child.kill()
        child.wait()
        d2 = self.start(name="d2", socket=d.socket)
        self.assertTrue(self.rx.wait_spans(1, 5), self.rx.spans())
        s = self.rx.spans()[0]
        self.assertEqual(s["status_code"], STATUS_ERROR)
        self.assertTrue(s["attributes"]["sidespan.orphaned"])
        self.assertEqual(s["status_message"], "client process exited")
        st = d2.stats()
        self.assertEqual(st["spans_open"], 0)
        self.assertEqual(st["sessions_gone"], 1)

    def test_without_a_state_dir_open_spans_end_as_orphans_at_shutdown(self):
        d = self.daemon(["--endpoint", self.rx.url, "--batch-delay-ms", "50"])
        c, _ = self.open_run(d, instance=503)
        self.wait_stat(d, "spans_open", 2)
        self.assertEqual(d.stop(), 0)
        c.close()
        self.assertTrue(self.rx.wait_spans(3, 10))
        orphans = [s for s in self.rx.spans() if s["attributes"].get("sidespan.orphaned")]
        self.assertEqual(len(orphans), 2)

    def test_a_damaged_state_file_is_set_aside(self):
        os.makedirs(self.state)
        path = os.path.join(self.state, STATE)
        with open(path, "wb") as f:
            f.write(msgpack.packb(["sidespan-state", 1, 0, [["not a session"]]]))
        d = self.start()
        self.assertIn("skipped=1", d.stderr())
        self.assertFalse(os.path.exists(path))
        d.stop()
        with open(path, "wb") as f:
            f.write(b"\xc1garbage")
        d = self.start(name="d2")
        self.assertIn("event=state-restore-failed", d.stderr())
        self.assertTrue(os.path.exists(path + ".bad"))
        self.assertEqual(d.stats()["spans_open"], 0)

    def test_an_unusable_state_dir_stops_the_start_naming_it(self):
        blocker = os.path.join(self.tmp, "file")
        open(blocker, "w").close()
        d = Daemon(self.tmp, ["--state-dir", blocker + "/state"])
        self.daemons.append(d)
        with self.assertRaises(AssertionError):
            d.start()
        self.assertIn(blocker + "/state", d.stderr())
        self.assertIn("key=state_dir", d.stderr())

    def test_an_agent_running_across_a_restart_loses_nothing(self):
        d = self.start()
        runs, latency = 4, 150
        agent = subprocess.Popen([os.environ["SIDESPAN_CLI"], "--socket", d.socket, "emit",
                                  "--runs", str(runs), "--latency", str(latency),
                                  "--timeout", "30000"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Restart while the second run is in its model calls.
        time.sleep(1.2)
        self.assertGreater(d.stats()["spans_open"], 0)
        self.assertEqual(d.stop(), 0, d.stderr())
        d2 = self.start(name="d2", socket=d.socket)
        out, err = agent.communicate(timeout=60)
        self.assertEqual(agent.returncode, 0, err)
        self.assertTrue(self.rx.wait_spans(runs * 30, 20),
                        "%d of %d spans" % (len(self.rx.spans()), runs * 30))
        time.sleep(0.5)
        spans = self.rx.spans()
        ids = [s["span_id"] for s in spans]
        self.assertEqual(len(ids), runs * 30, "every span once")
        self.assertEqual(len(set(ids)), runs * 30)
        self.assertEqual([s for s in spans if s["attributes"].get("sidespan.orphaned")], [])
        for run in (s for s in spans if s["name"] == "agent.run"):
            self.assertEqual(run["attributes"]["upsonic.tool_call_count"], 2, run["attributes"])
        st = d2.stats()
        restored = int(re.search(r"event=state-restored .*? spans=(\d+)", d2.stderr()).group(1))
        print("\nrestart under an agent: %d runs, %d spans received once each, %d of them "
              "open across the restart" % (runs, len(ids), restored))
        self.assertGreater(restored, 0)
        self.assertEqual(st["unknown_span"], 0)
        self.assertEqual(st["spans_orphaned"], 0)


class Reload(RestartBase):
    """SIGHUP: the configuration file read again, by a restart in place on the same socket."""

    def conf(self, url):
        path = os.path.join(self.tmp, "sidespand.conf")
        with open(path, "w") as f:
            f.write("[daemon]\nstate_dir = %s\n\n[exporter main]\nendpoint = %s\n"
                    "batch_delay = 50\n" % (self.state, url))
        return path

    def wait_log(self, d, text, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in d.stderr():
                return
            time.sleep(0.05)
        self.fail("no %r in the log:\n%s" % (text, d.stderr()[-3000:]))

    def test_sighup_moves_to_the_new_exporter_and_keeps_open_spans(self):
        path = self.conf(self.rx.url)
        d = Daemon(self.tmp, ["--config", path, "--orphan-grace-ms", "30000"])
        self.daemons.append(d)
        d.start()
        pid = d.proc.pid
        c, ids = self.open_run(d, instance=601)
        self.wait_stat(d, "spans_open", 2)
        rx2 = Receiver(os.environ.get("PROTO_DIR")).start()
        self.addCleanup(rx2.stop)
        self.conf(rx2.url)
        d.proc.send_signal(signal.SIGHUP)
        self.wait_log(d, "event=state-restored")
        self.wait_log(d, "listening on " + d.socket)
        # What had ended went to the first receiver as the old configuration stopped.
        self.assertTrue(self.rx.wait_spans(1, 10))
        self.assertIsNone(d.proc.poll())
        self.assertEqual(d.proc.pid, pid)
        c.close()
        c = RawClient(d.socket)
        c.hello(instance=601)
        c.send(span_end(ids["chat"]) + span_end(ids["run"]))
        c.flush()
        c.close()
        self.assertTrue(rx2.wait_spans(2, 10), rx2.spans())
        time.sleep(0.3)
        self.assertEqual(sorted(s["name"] for s in rx2.spans()), ["agent.run", "chat gpt-4o"])
        self.assertEqual([s["name"] for s in self.rx.spans()], ["tool.execute"])
        for s in rx2.spans():
            self.assertNotIn("sidespan.orphaned", s["attributes"])
        self.assertEqual(rx2.spans()[0]["resource"]["service.name"], "raw-client")
        self.assertEqual(d.stats()["exporter.main.spans_exported"], 2)
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertFalse(os.path.exists(d.socket), "the socket is removed at the end")

    def test_sighup_with_a_bad_file_changes_nothing(self):
        path = self.conf(self.rx.url)
        d = Daemon(self.tmp, ["--config", path])
        self.daemons.append(d)
        d.start()
        with open(path, "a") as f:
            f.write("batch_delay = soon\n")
        d.proc.send_signal(signal.SIGHUP)
        self.wait_log(d, "event=reload-refused")
        self.assertIn("soon", d.stderr())
        c = RawClient(d.socket)
        c.hello()
        sid = os.urandom(8)
        c.send(span_start(os.urandom(16), sid, None, "after") + span_end(sid))
        c.flush()
        c.close()
        self.assertTrue(self.rx.wait_spans(1, 10), "the daemon goes on exporting")
        self.assertIsNone(d.proc.poll())
        self.assertEqual(d.stop(), 0)


# A client process that opens a span and waits to be killed.
CHILD = r"""
import os, sys, time
sys.path.insert(0, %r)
from itest_lib import RawClient, span_start
c = RawClient(sys.argv[1])
c.hello(instance=504)
c.send(span_start(os.urandom(16), os.urandom(8), None, "agent.run"))
c.flush()
print("open", flush=True)
time.sleep(60)
""" % os.path.dirname(os.path.abspath(__file__))


if __name__ == "__main__":
    unittest.main()
