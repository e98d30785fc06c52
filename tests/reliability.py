#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Nothing lost (issue 9): the real sidespand against a real OTLP/HTTP receiver
that goes away and comes back, with and without a disk spool, across SIGTERM
and kill -9, with corrupted spool segments and a spool too small. Every test
ends with exact counts: spans sent, spans received (de-duplicated by span id),
spooled, dropped by reason, and they must add up.

Run by meson with SIDESPAND set (suite integration, test reliability).
"""

import glob
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_lib import Base, RawClient, send_trace  # noqa: E402
from otlp_receiver import Receiver  # noqa: E402

EXP = "exporter.otlp-http."


def unique(spans):
    return {s["span_id"] for s in spans}


class Reliability(Base):
    def setUp(self):
        super().setUp()
        self.spool = os.path.join(self.tmp, "spool")
        self.port = self.rx.port

    def down(self):
        """The collector goes away (its port stays free for its return)."""
        self.rx.stop()

    def up(self):
        """The collector comes back on the same port, with nothing received."""
        self.rx = Receiver(os.environ.get("PROTO_DIR"), port=self.port).start()

    def start(self, *extra, name="d", spool=True):
        args = ["--endpoint", "http://127.0.0.1:%d/v1/traces" % self.port,
                "--batch-delay-ms", "50", "--retry-initial-ms", "100", "--retry-max-ms", "500"]
        if spool:
            args += ["--spool-dir", self.spool]
        return self.daemon(args + list(extra), name=name)

    def send(self, d, traces, children, tag="t"):
        c = RawClient(d.socket)
        c.hello()
        for i in range(traces):
            send_trace(c, "%s%d" % (tag, i), children)
        c.flush()
        c.close()
        return traces * (children + 1)

    def wait_stat(self, d, pred, timeout=30, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.stats(d)
            if pred(st):
                return st
            time.sleep(0.1)
        self.fail("%s not reached: %r" % (what, {k: v for k, v in self.stats(d).items()
                                                 if k.startswith(EXP)}))

    def wait_unique(self, n, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline and len(unique(self.rx.spans())) < n:
            time.sleep(0.1)
        return unique(self.rx.spans())

    def test_outage_of_10s_in_a_100k_span_run_loses_nothing(self):
        d = self.start()
        self.down()
        t0 = time.time()
        sent = 0
        # 100 000 spans while the collector is away for 10 s, then more once it is back.
        for _ in range(10):
            sent += self.send(d, 100, 99)
        time.sleep(max(0, 10 - (time.time() - t0)))
        self.up()
        sent += self.send(d, 10, 99, tag="after")
        got = self.wait_unique(sent, timeout=120)
        st = self.stats(d)
        print("\noutage 10 s: sent %d, received %d unique (%d with duplicates), spooled %d, "
              "dropped %d" % (sent, len(got), len(self.rx.spans()), st[EXP + "spans_spooled"],
                              st[EXP + "spans_dropped"]))
        self.assertEqual(len(got), sent)
        self.assertEqual(st[EXP + "spans_dropped"], 0)
        self.assertEqual(st[EXP + "spans_in"], sent)

    def test_outage_without_a_spool_loses_nothing_within_the_retry_time(self):
        d = self.start(spool=False)
        self.down()
        sent = self.send(d, 50, 19)
        time.sleep(3)
        self.up()
        got = self.wait_unique(sent)
        st = self.stats(d)
        self.assertEqual(len(got), sent)
        self.assertEqual(st[EXP + "spans_dropped"], 0)
        self.assertGreater(st[EXP + "retries"], 0)
        self.assertNotIn(EXP + "spool.records", st)

    def spooled_then_killed(self, traces=60, children=49, *extra):
        """Spans spooled while the collector is away, then the daemon killed with -9."""
        d = self.start("--retry-max-elapsed-ms", "300", *extra)
        self.down()
        sent = self.send(d, traces, children)
        self.wait_stat(d, lambda st: st[EXP + "spans_spooled"] == sent, what="all spooled")
        # The interval fsync needs no power cut to matter: the page cache outlives us.
        os.kill(d.proc.pid, signal.SIGKILL)
        d.proc.wait()
        return sent

    def test_kill_9_with_a_spool_then_restart_delivers_everything(self):
        sent = self.spooled_then_killed()
        self.assertTrue(glob.glob(os.path.join(self.spool, "otlp", "*.seg")))
        self.up()
        d = self.start(name="d2")
        got = self.wait_unique(sent)
        st = self.stats(d)
        print("\nkill -9: sent %d, spooled %d, replayed %d, received %d unique, %d in all"
              % (sent, sent, st[EXP + "spans_replayed"], len(got), len(self.rx.spans())))
        self.assertEqual(len(got), sent)
        self.assertEqual(st[EXP + "spans_replayed"], sent)
        self.assertEqual(st[EXP + "spool.corrupt"], 0)
        self.wait_stat(d, lambda st: st[EXP + "spool.records"] == 0, what="spool emptied")
        # A third start has nothing left to send: acknowledged records never come back.
        d.stop()
        before = len(self.rx.spans())
        d3 = self.start(name="d3")
        time.sleep(1)
        self.assertEqual(self.stats(d3)[EXP + "spans_replayed"], 0)
        self.assertEqual(len(self.rx.spans()), before)

    def test_corrupt_and_torn_segments_skip_only_the_bad_records(self):
        sent = self.spooled_then_killed(traces=60, children=49)
        segs = sorted(glob.glob(os.path.join(self.spool, "otlp", "*.seg")))
        self.assertTrue(segs)
        # Flip a byte in the middle of the first segment, cut the last one mid-record.
        with open(segs[0], "r+b") as f:
            size = os.path.getsize(segs[0])
            f.seek(size // 2)
            b = f.read(1)
            f.seek(size // 2)
            f.write(bytes([b[0] ^ 0xFF]))
        with open(segs[-1], "r+b") as f:
            f.truncate(os.path.getsize(segs[-1]) - 7)
        self.up()
        d = self.start(name="d2")
        st = self.wait_stat(d, lambda st: st[EXP + "spool.records"] == 0, what="spool read")
        got = self.wait_unique(st[EXP + "spans_replayed"])
        print("\ncorrupt: sent %d, received %d, corrupt records %d"
              % (sent, len(got), st[EXP + "spool.corrupt"]))
        self.assertGreaterEqual(st[EXP + "spool.corrupt"], 2)
        self.assertLess(len(got), sent)
        self.assertEqual(len(got), st[EXP + "spans_replayed"])
        self.assertGreater(len(got), 0)

    def test_a_full_spool_drops_the_oldest_and_keeps_the_newest(self):
        d = self.start("--retry-max-elapsed-ms", "300", "--spool-bytes", str(1 << 20))
        self.down()
        attrs = {"payload": "x" * 2000}
        c = RawClient(d.socket)
        c.hello()
        tids = []
        for i in range(120):
            tids.append(send_trace(c, "big%d" % i, 9, attrs=attrs))
        c.flush()
        c.close()
        sent = 120 * 10
        st = self.wait_stat(d, lambda st: st[EXP + "spans_spooled"] == sent, what="spooled")
        self.assertGreater(st[EXP + "spool.dropped_full"], 0)
        self.up()
        st = self.wait_stat(d, lambda st: st[EXP + "spool.records"] == 0 and
                            st[EXP + "queued_requests"] + st[EXP + "inflight_requests"] == 0,
                            what="drained")
        got = self.wait_unique(sent - st[EXP + "dropped.spool_full"])
        lost = st[EXP + "dropped.spool_full"]
        print("\nspool full: sent %d, dropped oldest %d, received %d" % (sent, lost, len(got)))
        self.assertGreater(lost, 0)
        self.assertEqual(len(got) + lost, sent)
        self.assertEqual(st[EXP + "spans_dropped"], lost)
        received = {s["trace_id"] for s in self.rx.spans()}
        self.assertIn(tids[-1].hex(), received)  # the newest are kept
        # The oldest went, but for the one probing the backend when the cap struck (held in
        # memory, it went through once the collector came back).
        self.assertLess(len(received), len(tids))
        missing = [i for i, t in enumerate(tids) if t.hex() not in received]
        self.assertLess(max(missing), len(tids) - 1)

    def test_sigterm_spools_what_is_left_and_the_next_start_sends_it(self):
        d = self.start("--drain-timeout-ms", "500")
        self.down()
        sent = self.send(d, 20, 9)
        self.wait_stat(d, lambda st: st[EXP + "spans_in"] == sent, what="all in")
        d.stop()
        self.assertEqual(d.proc.returncode, 0)
        self.assertIn("spool", d.stderr())
        self.up()
        d2 = self.start(name="d2")
        got = self.wait_unique(sent)
        self.assertEqual(len(got), sent)
        self.assertEqual(self.stats(d2)[EXP + "spans_replayed"], sent)

    def test_a_final_failure_is_counted_not_retried(self):
        d = self.start()
        self.rx.fail_next(1, 400)
        sent = self.send(d, 1, 4)
        st = self.wait_stat(d, lambda st: st[EXP + "spans_dropped"] == sent, what="dropped")
        self.assertEqual(st[EXP + "dropped.rejected"], sent)
        self.assertEqual(st[EXP + "retries"], 0)
        self.assertEqual(st[EXP + "spans_spooled"], 0)
        sent2 = self.send(d, 2, 4, tag="ok")
        self.assertEqual(len(self.wait_unique(sent2)), sent2)


if __name__ == "__main__":
    unittest.main()
