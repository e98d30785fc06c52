#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The dead-letter file (issue 9): the real sidespand against a real OTLP/HTTP
receiver that refuses what it is sent. Every request given up for good must
be one line of the file, that line OTLP/JSON to the letter (the receiver's
own strict decoder reads it), holding exactly the spans of the request, and
the counters must agree: dropped by reason and dead_letter.* alike.

Run by meson with SIDESPAND set (suite integration, test dead-letter).
"""

import errno
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_lib import KIND_SERVER, Base, RawClient, span_end, span_start  # noqa: E402
from otlp_receiver import decode_json, load_protos  # noqa: E402

EXP = "exporter.otlp-http."

# One of each AnyValue kind the client can send, so that every line carries them.
ATTRS = {"s": "caf\u00e9 \"q\"\n", "i": -42, "big": 2**63 + 5, "d": 0.25, "b": True,
         "bin": b"\x00\xff", "arr": [1, "two", [3]], "map": {"k": {"n": 1}}}


def line_span_ids(obj):
    return [s["spanId"] for rs in obj.get("resourceSpans", [])
            for ss in rs.get("scopeSpans", []) for s in ss.get("spans", [])]


class DeadLetter(Base):
    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.tmp, "dead.jsonl")
        self.pb = load_protos(os.environ.get("PROTO_DIR"))

    def start(self, *extra, name="d"):
        return self.daemon(["--endpoint", self.rx.url, "--batch-delay-ms", "50",
                            "--batch-size", "20", "--dead-letter", self.path] + list(extra),
                           name=name)

    def send(self, d, traces, children, attrs=ATTRS):
        """Whole traces; returns the hex ids of every span sent."""
        c = RawClient(d.socket)
        c.hello()
        ids = []
        for i in range(traces):
            tid, root = os.urandom(16), os.urandom(8)
            c.send(span_start(tid, root, None, "root%d" % i, KIND_SERVER))
            for _ in range(children):
                sid = os.urandom(8)
                c.send(span_start(tid, sid, root, "child", attrs=attrs) + span_end(sid))
                ids.append(sid.hex())
            c.send(span_end(root))
            ids.append(root.hex())
        c.flush()
        c.close()
        return ids

    def lines(self):
        with open(self.path, "rb") as f:
            raw = f.read()
        self.assertTrue(raw.endswith(b"\n"), "the file ends with a whole line")
        return raw.split(b"\n")[:-1]

    def check_file(self, d, ids, reason, exp=EXP):
        """The file and the counters once every span sent is given up under reason."""
        st = self.wait_stats(d, "%d spans dead-lettered" % len(ids),
                             lambda st: st.get(exp + "dead_letter.spans") == len(ids), timeout=30)
        self.assertEqual(st[exp + "dropped." + reason], len(ids))
        self.assertEqual(st[exp + "spans_dropped"], len(ids))
        self.assertEqual(st[exp + "dead_letter.refused"], 0)
        self.assertEqual(st[exp + "dead_letter.write_errors"], 0)
        # The counters count lines handed to the writer: the disk may be a moment behind.
        deadline = time.time() + 10
        want = st[exp + "dead_letter.bytes"]
        while time.time() < deadline and os.path.getsize(self.path) < want:
            time.sleep(0.05)
        lines = self.lines()
        self.assertEqual(len(lines), st[exp + "dead_letter.requests"])
        self.assertEqual(sum(len(x) + 1 for x in lines), st[exp + "dead_letter.bytes"])
        got = []
        for raw in lines:
            obj = json.loads(raw)
            got += line_span_ids(obj)
            # OTLP/JSON to the letter: the receiver's strict decoder takes it, and the spans it
            # reads are the ones the line names.
            msg = decode_json(self.pb, raw)
            self.assertEqual([s.span_id.hex() for rs in msg.resource_spans
                              for ss in rs.scope_spans for s in ss.spans], line_span_ids(obj))
        self.assertEqual(sorted(got), sorted(ids))
        self.assertEqual(len(got), len(set(got)), "no span written twice")
        return lines, msg

    def check_attrs(self, msg):
        """Every AnyValue kind came through the JSON mapping and back."""
        span = [s for rs in msg.resource_spans for ss in rs.scope_spans for s in ss.spans
                if s.name == "child"][0]
        a = {kv.key: kv.value for kv in span.attributes}
        self.assertEqual(a["s"].string_value, ATTRS["s"])
        self.assertEqual(a["i"].int_value, -42)
        self.assertEqual(a["big"].double_value, float(2**63 + 5))
        self.assertEqual(a["d"].double_value, 0.25)
        self.assertTrue(a["b"].bool_value)
        self.assertEqual(a["bin"].bytes_value, b"\x00\xff")
        self.assertEqual(a["arr"].array_value.values[2].array_value.values[0].int_value, 3)
        self.assertEqual(a["map"].kvlist_value.values[0].value.kvlist_value.values[0].key, "n")

    def rejected(self, *extra):
        d = self.start(*extra)
        self.rx.fail_next(10**6, 400)
        ids = self.send(d, 6, 9)
        lines, msg = self.check_file(d, ids, "rejected")
        self.assertEqual(len(lines), len([r for r in self.rx.requests if r["status"] == 400]))
        self.assertGreater(len(lines), 1, "more than one request, one line each")
        self.check_attrs(msg)
        return d

    def test_rejected_protobuf_requests_are_dead_lettered(self):
        self.rejected()

    def test_rejected_gzip_requests_are_dead_lettered(self):
        self.rejected("--compression", "gzip")
        self.assertTrue(all(r["content_encoding"] == "gzip" for r in self.rx.requests))

    def test_rejected_json_requests_are_dead_lettered(self):
        self.rejected("--protocol", "http/json")
        self.assertTrue(all(r["format"] == "json" for r in self.rx.requests))

    def test_rejected_grpc_calls_are_dead_lettered(self):
        import grpc
        import otlp_grpc_receiver

        rx = otlp_grpc_receiver.Receiver().start()
        self.addCleanup(rx.stop)
        with rx.state.cond:
            rx.state.fail_n = 10**6
            rx.state.fail_code = grpc.StatusCode.INVALID_ARGUMENT
        d = self.daemon(["--endpoint", "http://127.0.0.1:%d" % rx.port, "--protocol", "grpc",
                         "--compression", "gzip", "--batch-delay-ms", "50", "--batch-size", "20",
                         "--dead-letter", self.path])
        ids = self.send(d, 3, 9)
        lines, msg = self.check_file(d, ids, "rejected", exp="exporter.otlp-grpc.")
        self.assertEqual(len(lines), len(rx.state.requests))
        self.assertTrue(all(r["encoding"] == "gzip" for r in rx.state.requests))
        self.check_attrs(msg)

    def test_retries_exhausted_are_dead_lettered(self):
        d = self.start("--retry-initial-ms", "50", "--retry-max-ms", "100",
                       "--retry-max-elapsed-ms", "300")
        self.rx.fail_next(10**6, 503)
        ids = self.send(d, 2, 4)
        self.check_file(d, ids, "exhausted")

    def test_a_request_that_goes_through_is_not_dead_lettered(self):
        d = self.start()
        self.rx.partial_next(1, "one refused")
        ids = self.send(d, 1, 3)
        self.wait_spans(len(ids))
        st = self.stats(d)
        self.assertEqual(st[EXP + "dead_letter.requests"], 0)
        self.assertEqual(os.path.getsize(self.path), 0)

    def test_lines_written_at_shutdown_are_not_lost(self):
        d = self.start("--retry-initial-ms", "5000")
        self.rx.fail_next(10**6, 503)
        ids = self.send(d, 3, 9)
        deadline = time.time() + 20
        while time.time() < deadline and not self.rx.requests:
            time.sleep(0.05)
        self.assertEqual(d.stop(), 0)
        got = [i for raw in self.lines() for i in line_span_ids(json.loads(raw))]
        self.assertEqual(sorted(got), sorted(ids))

    def test_a_fifo_nobody_reads_costs_the_backlog_then_lines_are_refused(self):
        self.path = os.path.join(self.tmp, "dead.fifo")
        os.mkfifo(self.path)
        rd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # a reader that never reads
        self.addCleanup(os.close, rd)
        d = self.start()
        self.rx.fail_next(10**6, 400)
        # About 16 MiB of lines: twice the backlog the file may hold.
        ids = self.send(d, 40, 49, attrs={"blob": "x" * 8000})
        st = self.wait_stats(d, "every span rejected",
                             lambda st: st[EXP + "dropped.rejected"] == len(ids))
        self.assertGreater(st[EXP + "dead_letter.refused"], 0)
        self.assertGreater(st[EXP + "dead_letter.requests"], 0)
        self.assertEqual(st[EXP + "dead_letter.requests"] + st[EXP + "dead_letter.refused"],
                         len([r for r in self.rx.requests if r["status"] == 400]))
        self.assertIn("event=dead-letter-refused", d.stderr())
        # Shutdown does not wait for a reader that never comes.
        t0 = time.monotonic()
        self.assertEqual(d.stop(), 0)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn("event=dead-letter-write-failed", d.stderr())

    def test_an_unopenable_file_stops_the_start(self):
        # Refused by the configuration's check (--check-config too), and by the open itself
        # (a directory is writable, but cannot be opened as the file).
        cases = [(os.path.join(self.tmp, "no-such-dir", "dead.jsonl"), errno.ENOENT),
                 (self.tmp, errno.EISDIR)]
        for i, (path, err) in enumerate(cases):
            d = self.daemon(["--endpoint", self.rx.url, "--dead-letter", path], wait=False,
                            name="bad%d" % i)
            self.assertNotEqual(d.proc.wait(20), 0)
            d.stop()
            log = d.stderr()
            self.assertIn('path="%s"' % path, log)
            self.assertIn(os.strerror(err), log)
            self.assertIn("event=dead-letter-failed", log)
        r = subprocess.run([os.environ["SIDESPAND"], "--endpoint", self.rx.url, "--dead-letter",
                            cases[0][0], "--check-config"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn(cases[0][0], r.stderr)

    def test_the_configuration_file_key(self):
        conf = os.path.join(self.tmp, "s.conf")
        with open(conf, "w") as f:
            f.write("[exporter up]\nendpoint = %s\ndead_letter = %s\n"
                    "[exporter f]\ntype = file\npath = %s\n"
                    % (self.rx.url, self.path, os.path.join(self.tmp, "out.jsonl")))
        r = subprocess.run([os.environ["SIDESPAND"], "--config", conf, "--check-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("dead_letter = %s\n" % self.path, r.stdout)
        with open(conf, "a") as f:
            f.write("dead_letter = %s\n" % self.path)
        r = subprocess.run([os.environ["SIDESPAND"], "--config", conf, "--check-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("dead_letter is for the network exporters", r.stderr)


if __name__ == "__main__":
    unittest.main()
