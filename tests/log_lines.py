#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The daemon's log lines (issue 10): one line per event with a stable
key=value tail starting event=, "<N>" priorities when JOURNAL_STREAM is set,
the level from --log-level or SIDESPAN_LOG_LEVEL, rate limits on what a peer
can trigger, and every log call in the source carrying its tail.

Run by meson with SIDESPAND set (suite integration, test logging).
"""

import glob
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_lib import Base, RawClient, frame, run, send_trace  # noqa: E402

SIDESPAND = os.environ.get("SIDESPAND", "sidespand")
SOURCE = os.environ.get("SIDESPAN_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), ".."))
VALUE = r'(?:"(?:[^"\\]|\\.)*"|[^\s"]+)'
TAIL = re.compile(r" event=[a-z0-9-]+(?: [a-z0-9_.]+=%s)*$" % VALUE)
JOURNAL_LINE = re.compile(r"^<[0-7]>\S")
PLAIN_LINE = re.compile(r"^sidespand: (error|warning|notice|info|debug): \S")


def tail(line):
    """The key=value pairs of a log line, as a dict."""
    m = TAIL.search(line)
    assert m, "no key=value tail: " + line
    return {k: v.strip('"') for k, v in re.findall(r" ([a-z0-9_.]+)=(%s)" % VALUE, m.group(0))}


class Logging(Base):
    def provoke(self, d):
        """Events a client can cause: a good trace, a flush, a bad frame, a late end."""
        c = RawClient(d.socket)
        c.hello()
        send_trace(c, "ok", 2)
        c.flush()
        c.send(frame(5, os.urandom(8), time.time_ns(), 1, None, {}))  # an unknown span
        c.flush(2)
        c.close()
        bad = RawClient(d.socket)
        bad.send(b"\x00\x00\x00\x03\xc1\xc1\xc1")  # not msgpack
        self.assertTrue(bad.closed_by_peer())
        bad.close()

    def lines(self, d):
        d.stop()
        return [l for l in d.stderr().splitlines() if l]

    def test_journal_lines_carry_priorities_and_tails(self):
        d = self.http_daemon(env={"JOURNAL_STREAM": "8:1234", "SIDESPAN_LOG_LEVEL": "debug"})
        self.provoke(d)
        lines = self.lines(d)
        self.assertGreater(len(lines), 5)
        for line in lines:
            self.assertRegex(line, JOURNAL_LINE)
            self.assertRegex(line, TAIL)
        events = [tail(l)["event"] for l in lines]
        for want in ("listening", "exporter-ready", "message-skipped", "conn-closed", "drain"):
            self.assertIn(want, events)
        closed = [tail(l) for l in lines if tail(l)["event"] == "conn-closed"][0]
        self.assertEqual(closed["reason"], "frame is not one msgpack object")
        self.assertRegex(closed["conn"], r"^\d+$")
        # the level of a closed connection: warning, <4>
        self.assertTrue([l for l in lines if "event=conn-closed" in l][0].startswith("<4>"))

    def test_plain_lines_name_the_level(self):
        d = self.http_daemon()
        self.provoke(d)
        for line in self.lines(d):
            self.assertRegex(line, PLAIN_LINE)
            self.assertRegex(line, TAIL)

    def raw_daemon(self, name, args=(), env=None):
        """sidespand without the harness's --log-level debug, up once its socket is."""
        sock = os.path.join(self.tmp, name + ".sock")
        log = open(os.path.join(self.tmp, name + ".log"), "w+")
        full = dict(os.environ)
        full.update(env or {})
        p = subprocess.Popen([SIDESPAND, "--socket", sock, "--endpoint", self.rx.url] +
                             list(args), env=full, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.time() + 10
        while not os.path.exists(sock):
            self.assertIsNone(p.poll(), "sidespand exited")
            self.assertLess(time.time(), deadline, "sidespand did not listen")
            time.sleep(0.02)
        return p, sock, log

    def raw_lines(self, p, log):
        p.send_signal(signal.SIGTERM)
        p.wait(20)
        log.seek(0)
        text = log.read()
        log.close()
        return [l for l in text.splitlines() if l]

    def test_the_level_from_the_environment_and_the_flag(self):
        p, sock, log = self.raw_daemon("w", env={"SIDESPAN_LOG_LEVEL": "warning"})
        bad = RawClient(sock)
        bad.send(b"\x00\x00\x00\x01\xc1")
        self.assertTrue(bad.closed_by_peer())
        lines = self.raw_lines(p, log)
        self.assertTrue([l for l in lines if "event=conn-closed" in l], lines)
        self.assertFalse([l for l in lines if ": info: " in l or ": notice: " in l], lines)
        # the flag wins over the environment
        p, sock, log = self.raw_daemon("f", ["--log-level", "info"],
                                       env={"SIDESPAN_LOG_LEVEL": "err"})
        self.assertTrue([l for l in self.raw_lines(p, log) if "event=listening" in l])

    def test_a_bad_level_names_the_variable(self):
        r = run([SIDESPAND, "--socket", os.path.join(self.tmp, "x.sock")],
                env={"SIDESPAN_LOG_LEVEL": "loud"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("SIDESPAN_LOG_LEVEL", r.stderr)
        self.assertIn("loud", r.stderr)

    def test_a_flood_of_bad_clients_logs_a_bounded_number_of_lines(self):
        d = self.http_daemon()
        for _ in range(100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.socket)
            s.sendall(b"\x00\x00\x00\x01\xc1")
            s.recv(16)
            s.close()
        c = RawClient(d.socket)
        st = c.stats()
        c.close()
        self.assertEqual(st["protocol_errors"], 100)
        time.sleep(0.2)
        lines = [l for l in self.lines(d) if "event=conn-closed" in l]
        self.assertEqual(len(lines), 1, "one line per 10 s per call site")

    def test_every_log_call_in_the_source_has_its_tail(self):
        missing = []
        n = 0
        for path in glob.glob(os.path.join(SOURCE, "daemon", "**", "*.c"), recursive=True):
            if path.endswith(os.path.join("base", "log.c")):
                continue
            with open(path) as f:
                src = f.read()
            for m in re.finditer(r"\bss_log(?:_ratelimited|_rl)?\(", src):
                # The format: string literals (and PRI macros) after the call's first quote.
                k = src.index('"', m.end())
                fmt = ""
                while True:
                    mm = re.match(r'\s*(?:"((?:[^"\\]|\\.)*)"|(PRI[a-zA-Z0-9]+))', src[k:])
                    if not mm:
                        break
                    fmt += mm.group(1) or "%d"
                    k += mm.end()
                n += 1
                if not re.search(r" event=[a-z0-9-]+", fmt):
                    missing.append("%s:%d" % (os.path.relpath(path, SOURCE),
                                              src.count("\n", 0, m.start()) + 1))
        self.assertGreater(n, 80)
        self.assertEqual(missing, [])


if __name__ == "__main__":
    unittest.main()
