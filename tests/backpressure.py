#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Backpressure (issue 9): a client that sends faster than the backend takes is
read more slowly instead of growing the daemon's memory or dropping. The real
sidespand exports to a real OTLP/HTTP receiver that decodes every request and
answers each only after a pause; the client pushes far more than the export
queue may hold. Every span must arrive, none be dropped, and the daemon must
say it held its reading.

Run by meson with SIDESPAND set (suite integration, test backpressure).
"""

import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import otlp_receiver  # noqa: E402
from itest_lib import Base, RawClient, rss_kib, send_trace, span_end, span_start  # noqa: E402

EXP = "exporter.otlp-http."


class SlowReceiver(otlp_receiver.Receiver):
    """The receiver, answering each export only after delay seconds."""

    def __init__(self, delay):
        super().__init__(os.environ.get("PROTO_DIR"))
        self.delay = delay

    def start(self):
        delay = self.delay
        base = otlp_receiver._Handler

        class Slow(base):
            def _export(self, path, raw):
                time.sleep(delay)
                base._export(self, path, raw)

        orig = otlp_receiver._Handler
        otlp_receiver._Handler = Slow
        try:
            return super().start()
        finally:
            otlp_receiver._Handler = orig



def big_trace(c, tid, parent, children, content):
    """Over c: a root under parent (None: none) and children finished at once, each with
    content bytes. Returns the root's span id: the root stays open."""
    root = os.urandom(8)
    c.send(span_start(tid, root, parent, "big-run"))
    for _ in range(children):
        sid = os.urandom(8)
        c.send(span_start(tid, sid, root, "step", attrs={"content": "w" * content}) +
               span_end(sid))
    return root


def open_run_and_wait(sock, children, content):
    """A client process: a big run left open, "ready" on stdout, then exit at stdin's end."""
    c = RawClient(sock)
    c.sock.settimeout(120)
    c.hello()
    big_trace(c, os.urandom(16), None, children, content)
    c.flush()
    print("ready", flush=True)
    sys.stdin.read()
    os._exit(0)


class Backpressure(Base):
    def slow_backend_daemon(self, delay, queue, batch_size, more=()):
        """A daemon exporting to a receiver that answers each request after delay seconds,
        its memory queue bounded to queue bytes; more: further arguments."""
        self.rx.stop()
        self.rx = SlowReceiver(delay).start()
        return self.daemon(["--endpoint", self.rx.url, "--batch-delay-ms", "20",
                            "--batch-size", str(batch_size), "--retry-queue-bytes", str(queue)] +
                           list(more))

    def all_delivered_after_a_hold(self, d, sent, what, held="input_held"):
        """Once the exporter has settled all sent spans: none dropped, every one received,
        and the counter held (the input held, or a timer's hand-off waited) moved."""
        st = self.wait_stats(d, "every span exported or dropped",
                             lambda s: s[EXP + "spans_exported"] + s[EXP + "spans_dropped"] >=
                             sent, 60)
        print("\n%s; %s %d; dropped %d" % (what, held, st.get(held, -1), st[EXP + "spans_dropped"]))
        self.assertEqual(st[EXP + "dropped.queue_full"], 0)
        self.assertEqual(st[EXP + "spans_dropped"], 0)
        self.assertEqual(len({s["span_id"] for s in self.rx.spans()}), sent)
        self.assertGreater(st[held], 0)

    def test_a_fast_client_is_read_no_faster_than_the_backend_takes(self):
        queue = 2 << 20
        d = self.slow_backend_daemon(0.3, queue, 200)
        attrs = {"content": "x" * 1024}
        traces, children = 100, 99
        sent = traces * (children + 1)
        peak = [0]
        done = threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kib(d.proc.pid))
                time.sleep(0.05)
        t = threading.Thread(target=watch)
        t.start()
        c = RawClient(d.socket)
        c.sock.settimeout(120)
        c.hello()
        t0 = time.time()
        for i in range(traces):
            send_trace(c, "bp%d" % i, children, attrs=attrs)
        c.flush()
        c.close()
        sending = time.time() - t0
        ok = self.rx.wait_spans(sent, 120)
        done.set()
        t.join()
        st = d.stats()
        got = {s["span_id"] for s in self.rx.spans()}
        print("\nbackpressure: sent %d spans of 1 KiB in %.1f s to a backend taking 300 ms a "
              "request; received %d; held %d times for %d ms in all; dropped %d; queue bound "
              "%d KiB; peak RSS %d KiB" % (sent, sending, len(got), st["input_held"],
                                           st["input_held_ms"], st[EXP + "spans_dropped"],
                                           queue >> 10, peak[0]))
        self.assertTrue(ok, "received %d of %d" % (len(self.rx.spans()), sent))
        self.assertEqual(len(got), sent)
        self.assertEqual(st[EXP + "spans_dropped"], 0)
        self.assertEqual(st[EXP + "dropped.queue_full"], 0)
        self.assertGreater(st["input_held"], 0)
        self.assertGreater(st["input_held_ms"], 0)
        self.assertEqual(st["connections_active"], 1)  # the STATS connection: none left held

    def test_a_burst_from_many_connections_loses_nothing(self):
        # Every connection has frames waiting when the exporter fills: one loop iteration
        # then hands a read to each of them, and all of it must wait for room, not overflow
        # the queue.
        d = self.slow_backend_daemon(0.05, 1 << 20, 500)
        conns, traces, children = 48, 6, 49
        sent = conns * traces * (children + 1)
        clients = []
        for _ in range(conns):
            c = RawClient(d.socket)
            c.sock.settimeout(120)
            c.hello()
            clients.append(c)
        go = threading.Event()

        def burst(c, k):
            go.wait()
            for i in range(traces):
                send_trace(c, "burst%d.%d" % (k, i), children, attrs={"content": "y" * 1024})
            c.flush()
        threads = [threading.Thread(target=burst, args=(c, k)) for k, c in enumerate(clients)]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join()
        for c in clients:
            c.close()
        ok = self.rx.wait_spans(sent, 120)
        st = d.stats()
        got = {s["span_id"] for s in self.rx.spans()}
        print("\nburst: %d connections sent %d spans of 1 KiB; received %d; held %d times; "
              "dropped %d" % (conns, sent, len(got), st["input_held"], st[EXP + "spans_dropped"]))
        self.assertTrue(ok, "received %d of %d" % (len(self.rx.spans()), sent))
        self.assertEqual(len(got), sent)
        self.assertEqual(st[EXP + "spans_dropped"], 0)
        self.assertGreater(st["input_held"], 0)

    def test_a_batch_filling_under_the_watermark_waits_for_room(self):
        # A request more than half the queue: the queue sits just under the high watermark
        # with one request in flight, and the spans filling the next batch are memory the
        # exporter holds too. Counted, they hold the input before that batch overflows the
        # queue; uncounted, the batch goes out whole and has no room (issue 11's burst).
        queue, batch, content = 1 << 20, 80, 8000
        d = self.slow_backend_daemon(2.0, queue, batch)
        c = RawClient(d.socket)
        c.sock.settimeout(120)
        c.hello()

        def one_span_traces(n):
            for _ in range(n):
                tid, sid = os.urandom(16), os.urandom(8)
                c.send(span_start(tid, sid, None, "big", attrs={"content": "z" * content}) +
                       span_end(sid))
            c.flush()
        first = 60
        one_span_traces(first)  # under a batch: the batch timer sends it, 2 s in flight
        st = self.wait_stats(d, "the first request in flight",
                             lambda s: s[EXP + "inflight_requests"] > 0)
        queued = st[EXP + "queued_bytes"]
        per_span = queued / first
        self.assertLess(queued, queue // 2, "the first request is over the high watermark")
        self.assertGreater(queued + batch * per_span, queue,
                           "a full batch would fit beside the first request: nothing tested")
        one_span_traces(100)
        self.all_delivered_after_a_hold(d, first + 100, "under the watermark: %d bytes in "
                                        "flight, batches of %d spans of ~%d bytes, queue %d"
                                        % (queued, batch, per_span, queue))
        c.close()

    def test_traces_ending_in_one_read_wait_for_room(self):
        # Each trace holds its finished spans until its root ends, then hands them all on at
        # once: here each is more than half the queue. The roots' ends arrive in one read;
        # checked only after the read, all four traces were handed on together and overflowed
        # the queue. Checked after each frame that handed spans on, the rest wait for room.
        queue, children, content, traces = 1 << 20, 100, 6000, 4
        d = self.slow_backend_daemon(1.0, queue, children)
        c = RawClient(d.socket)
        c.sock.settimeout(120)
        c.hello()
        roots = [big_trace(c, os.urandom(16), None, children, content)
                 for _ in range(traces)]
        c.flush()
        st = self.wait_stats(d, "every child finished",
                             lambda s: s["spans_finished"] == traces * children)
        self.assertEqual(st[EXP + "spans_in"], 0, "a trace was handed on before its root ended")
        c.send(b"".join(span_end(r) for r in roots))  # one write, one read: four traces end
        self.all_delivered_after_a_hold(d, traces * (children + 1), "traces ending together: "
                                        "%d traces of ~%d KiB, queue %d KiB"
                                        % (traces, children * content >> 10, queue >> 10))
        c.close()

    def test_traces_orphaned_together_wait_for_room(self):
        # Four clients leave together, each with a run of ~585 KiB open: their grace periods
        # end in one sweep. Orphaned all at once, the four traces overflowed the queue; the
        # sweep hands one on, then leaves the rest for a later sweep while the exporter's
        # memory is past its high watermark.
        queue, children, content, traces = 1 << 20, 100, 6000, 4
        d = self.slow_backend_daemon(1.0, queue, children, ["--orphan-grace-ms", "300"])
        clients = []
        for i in range(traces):
            c = RawClient(d.socket)
            c.sock.settimeout(120)
            c.hello(instance=100 + i)
            big_trace(c, os.urandom(16), None, children, content)
            c.flush()
            clients.append(c)
        st = self.wait_stats(d, "every child finished",
                             lambda s: s["spans_finished"] == traces * children)
        self.assertEqual(st[EXP + "spans_in"], 0, "a trace was handed on before it ended")
        for c in clients:
            c.close()
        self.all_delivered_after_a_hold(d, traces * (children + 1), "runs orphaned together",
                                        "timer_handoffs_waited")
        self.assertEqual(d.stats()["spans_orphaned"], traces)

    def test_runs_of_exited_processes_wait_for_room(self):
        # Four client processes exit together, each with a ~585 KiB run open: their spans end
        # as orphans as soon as the exits are seen, not at the end of a grace period. What
        # does not fit waits for a sweep.
        queue, children, content, traces = 1 << 20, 100, 6000, 4
        d = self.slow_backend_daemon(1.0, queue, children, ["--orphan-grace-ms", "600000"])
        procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--open-run",
                                   d.socket, str(children), str(content)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                 for _ in range(traces)]
        for p in procs:
            self.assertEqual(p.stdout.readline().strip(), "ready")
        st = self.wait_stats(d, "every child finished",
                             lambda s: s["spans_finished"] == traces * children)
        self.assertEqual(st[EXP + "spans_in"], 0, "a trace was handed on before it ended")
        for p in procs:
            p.stdin.close()
        for p in procs:
            self.assertEqual(p.wait(30), 0)
            p.stdout.close()
        self.all_delivered_after_a_hold(d, traces * (children + 1), "runs of exited processes",
                                        "timer_handoffs_waited")
        st = d.stats()
        self.assertEqual(st["spans_orphaned"], traces)
        self.assertEqual(st["sessions_gone"], traces)

    def test_traces_released_together_wait_for_room(self):
        # One client keeps a span open in each of four traces; another finishes a ~585 KiB
        # run under each. Its done spans wait --foreign-wait-ms for the first client's, then
        # go out without them: all four in one sweep, which must leave what does not fit.
        queue, children, content, traces = 1 << 20, 100, 6000, 4
        d = self.slow_backend_daemon(1.0, queue, children, ["--foreign-wait-ms", "300"])
        holder, worker = RawClient(d.socket), RawClient(d.socket)
        worker.sock.settimeout(120)
        holder.hello(instance=1)
        worker.hello(instance=2)
        for i in range(traces):
            tid, parent = os.urandom(16), os.urandom(8)
            holder.send(span_start(tid, parent, None, "remote-parent"))
            holder.flush()
            started = i * (children + 2) + 1
            self.wait_stats(d, "the holder's span open",
                            lambda s: s["spans_started"] >= started)
            worker.send(span_end(big_trace(worker, tid, parent, children, content)))
        worker.flush()
        self.all_delivered_after_a_hold(d, traces * (children + 1), "runs released together",
                                        "timer_handoffs_waited")
        self.assertEqual(d.stats()["traces_released"], traces)
        holder.close()
        worker.close()

    def test_a_queue_too_small_for_a_trace_is_said_at_the_start(self):
        # Half the queue above the high watermark must take a whole trace's spans.
        ep = ["--endpoint", self.rx.url]
        small = self.daemon(ep + ["--retry-queue-bytes", str(8 << 20)], name="small")
        unbounded = self.daemon(ep + ["--max-trace-bytes", "0"], name="unbounded")
        fits = self.daemon(ep + ["--retry-queue-bytes", str(32 << 20)], name="fits")
        spooled = self.daemon(ep + ["--retry-queue-bytes", str(8 << 20), "--spool-dir",
                                    os.path.join(self.tmp, "spool")], name="spooled")
        self.assertRegex(small.stderr(), r"max_trace_bytes 16777216 is over half of exporter "
                         r"otlp-http's queue_bytes 8388608: .*event=config-queue-room")
        self.assertRegex(unbounded.stderr(), r"max_trace_bytes 0 is \(0: no limit\) not under "
                         r"half of exporter otlp-http's queue_bytes 67108864")
        self.assertNotIn("config-queue-room", fits.stderr())
        self.assertNotIn("config-queue-room", spooled.stderr())
        self.assertIn("listening", spooled.stderr())

    def test_a_failing_backend_does_not_hold_clients(self):
        # The collector is gone: its work waits in memory for retries (no spool) and the
        # clients are not held for it. The first trace finds it gone: until a request has
        # failed, a burst filling the exporter's memory is held like any other.
        self.rx.stop()
        d = self.daemon(["--endpoint", self.rx.url, "--batch-delay-ms", "20",
                         "--retry-queue-bytes", str(1 << 20), "--retry-initial-ms", "5000"])
        c = RawClient(d.socket)
        c.hello()
        send_trace(c, "first", 0)
        self.wait_stats(d, "the first request failed", lambda s: s[EXP + "failures"] > 0)
        for i in range(40):
            send_trace(c, "f%d" % i, 99, attrs={"content": "x" * 1024})
        c.flush()
        c.close()
        st = d.stats()
        self.assertEqual(st["input_held"], 0)
        self.assertGreater(st[EXP + "dropped.queue_full"], 0)

    def test_memory_a_burst_freed_is_given_back(self):
        """Thousands of spans of 2 KiB held open, a few opened after them, then the many
        ended: malloc keeps what they freed below the few that live on, and the daemon must
        give it back (daemon/base/heap.h) without touching what lives."""
        d = self.http_daemon()
        base = rss_kib(d.proc.pid)
        c = RawClient(d.socket)
        c.sock.settimeout(120)
        c.hello()
        many = [(os.urandom(16), os.urandom(8)) for _ in range(8000)]
        for tid, sid in many:
            c.send(span_start(tid, sid, None, "burst", attrs={"content": "b" * 2048}))
        c.flush()
        few = [(os.urandom(16), os.urandom(8)) for _ in range(5)]
        for i, (tid, sid) in enumerate(few):
            c.send(span_start(tid, sid, None, "survivor", attrs={"n": i, "text": "s%d" % i * 50}))
        c.flush()
        self.wait_stats(d, "every span open", lambda s: s["spans_open"] == len(many) + len(few))
        held = rss_kib(d.proc.pid)
        trims = d.stats()["heap.trims"]
        for _, sid in many:
            c.send(span_end(sid))
        c.flush()
        self.wait_spans(len(many), 60)
        self.assertGreater(held - base, 16 << 10)  # the burst took at least 16 MiB
        # Under a sanitizer its allocator holds the memory, not malloc: nothing to trim (the
        # counters are there all the same), and the survivors are checked below.
        if os.environ.get("SIDESPAN_SANITIZE", "none") == "none":
            st = self.wait_stats(d, "a trim of the freed memory",
                                 lambda s: s["heap.trims"] > trims, 20)
            after = rss_kib(d.proc.pid)
            print("\nburst: RSS %d kB at the start, %d kB with %d spans of 2 KiB open, %d kB "
                  "after they ended and the heap was trimmed (%d kB given back, %d kB in use)" %
                  (base, held, len(many), after, st["heap.trimmed_bytes"] >> 10,
                   st["heap.in_use_bytes"] >> 10))
            self.assertLess(after - base, (held - base) // 2)
            self.assertGreater(st["heap.trimmed_bytes"] >> 10, (held - base) // 2)
        # What lived through the trim is intact.
        for _, sid in few:
            c.send(span_end(sid))
        c.flush()
        c.close()
        spans = self.wait_spans(len(many) + len(few))
        survivors = sorted((s for s in spans if s["name"] == "survivor"),
                           key=lambda s: s["attributes"]["n"])
        self.assertEqual([s["attributes"]["text"] for s in survivors],
                         ["s%d" % i * 50 for i in range(len(few))])

    def test_idle_connections_hold_no_input_buffer(self):
        """Twenty agents send a burst and stay connected, idle: their input buffers are given
        back (STATS input_buffer_bytes falls to the STATS connection's own), and each is read
        again, into a new buffer, when it sends more."""
        d = self.http_daemon()
        own = d.stats()["input_buffer_bytes"]  # the STATS connection's, reading its request
        clients, sent = [], 0
        for _ in range(20):
            c = RawClient(d.socket)
            c.hello()
            clients.append(c)
        for c in clients:
            send_trace(c, "burst", 40, attrs={"content": "x" * 1024})
            sent += 41
        for c in clients:
            c.flush()
        busy = d.stats()["input_buffer_bytes"]
        self.assertGreaterEqual(busy, own + 20 * 64 * 1024)
        st = self.wait_stats(d, "the idle connections' buffers given back",
                             lambda s: s["input_buffer_bytes"] == own, 15)
        print("\nidle connections: input buffers %d kB after the burst, %d kB idle; "
              "RSS %d kB" % (busy >> 10, st["input_buffer_bytes"] >> 10, rss_kib(d.proc.pid)))
        self.assertEqual(st["connections_active"], 21)
        for c in clients:
            send_trace(c, "again", 2)
            sent += 3
            c.flush()
        self.assertEqual(len({s["span_id"] for s in self.wait_spans(sent, 30)}), sent)
        for c in clients:
            c.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--open-run"]:
        open_run_and_wait(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    unittest.main()
