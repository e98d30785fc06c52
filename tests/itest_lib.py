#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Helpers shared by the end-to-end suites (tests/integration.py, tests/attack.py)
and bench/bench-hostile.py: frames written from DESIGN.md section 3, a raw
protocol client independent of libsidespan, the real sidespand on a temporary
socket, and a unittest base with a real OTLP/HTTP receiver (tests/otlp_receiver.py).

Daemon reads SIDESPAND (the sidespand binary) and Base PROTO_DIR from the environment.
"""

import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from otlp_receiver import Receiver  # noqa: E402

KIND_INTERNAL, KIND_SERVER, KIND_CLIENT = 1, 2, 3
STATUS_OK, STATUS_ERROR = 1, 2

MSG_HELLO, MSG_SPAN_START, MSG_SPAN_ATTRS, MSG_SPAN_EVENT, MSG_SPAN_END = 1, 2, 3, 4, 5
MSG_SPAN, MSG_FLUSH, MSG_STATS = 6, 7, 8
MSG_FLUSHED, MSG_STATS_REPLY = 65, 66

def frame(*fields):
    body = msgpack.packb(list(fields), use_bin_type=True)
    return struct.pack(">I", len(body)) + body


class RawClient:
    """A protocol client written from DESIGN.md section 3, independent of libsidespan."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def hello(self, **options):
        opts = {"service.name": "raw-client", "process.pid": os.getpid(), "instance": 77}
        opts.update(options)
        self.send(frame(MSG_HELLO, 1, opts))

    def recv_frame(self):
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack(">I", self.buf[:4])
                if len(self.buf) >= 4 + n:
                    body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return msgpack.unpackb(body, raw=False)
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def stats(self):
        self.send(frame(MSG_STATS, 1))
        reply = self.recv_frame()
        assert reply[0] == MSG_STATS_REPLY and reply[1] == 1, reply
        return reply[2]

    def flush(self, seq=1):
        self.send(frame(MSG_FLUSH, seq))
        reply = self.recv_frame()
        assert reply == [MSG_FLUSHED, seq], reply

    def closed_by_peer(self, timeout=5):
        """True when the daemon closes this connection within timeout."""
        deadline = time.time() + timeout
        self.sock.setblocking(False)
        try:
            while time.time() < deadline:
                r, _, _ = select.select([self.sock], [], [], 0.1)
                if r:
                    try:
                        if not self.sock.recv(65536):
                            return True
                    except ConnectionResetError:
                        return True
            return False
        finally:
            self.sock.setblocking(True)

    def close(self):
        self.sock.close()


def span_start(trace_id, span_id, parent, name, kind=KIND_INTERNAL, attrs=None):
    return frame(MSG_SPAN_START, trace_id, span_id, parent, name, kind,
                 time.time_ns(), attrs or {}, {})


def span_end(span_id, status=STATUS_OK, attrs=None):
    return frame(MSG_SPAN_END, span_id, time.time_ns(), status, None, attrs or {})


def span_fields(trace_id, span_id, parent, name, start, end, attrs=None, events=None,
                status=STATUS_OK):
    """The fields of a whole SPAN message after its type."""
    return [trace_id, span_id, parent, name, KIND_INTERNAL, start, attrs or {}, {}, end, status,
            None, events]


def whole_span(*args, **kw):
    """A whole SPAN: span_fields()' arguments."""
    return frame(MSG_SPAN, *span_fields(*args, **kw))


def span_attrs(span_id, attrs):
    return frame(MSG_SPAN_ATTRS, span_id, attrs)


def hello_bomb(n_attrs=110000):
    """A HELLO of about 1 MB: n_attrs resource attributes (5-hex-digit keys, 2-byte values)."""
    opts = {"service.name": "bomb", "process.pid": os.getpid(), "instance": 9}
    for i in range(n_attrs):
        opts["%05x" % i] = "vv"
    return frame(MSG_HELLO, 1, opts)


def send_trace(client, name, n_children, attrs=None):
    """A whole trace over client: a root and n_children children, each ended at once.
    Returns its trace id."""
    tid, root = os.urandom(16), os.urandom(8)
    client.send(span_start(tid, root, None, name, KIND_SERVER))
    for _ in range(n_children):
        sid = os.urandom(8)
        client.send(span_start(tid, sid, root, name + ".child", attrs=attrs) + span_end(sid))
    client.send(span_end(root))
    return tid


def project_version():
    """The version in the project() call of the top-level meson.build."""
    with open(os.path.join(os.environ["SIDESPAN_SOURCE_ROOT"], "meson.build")) as f:
        m = re.search(r"project\s*\(.*?\bversion\s*:\s*'([^']+)'", f.read(), re.S)
    assert m, "no version in meson.build's project()"
    return m.group(1)


class Daemon:
    """sidespand on its own socket in a temporary directory."""

    def __init__(self, tmp, args=(), env=None, name="d", preexec_fn=None):
        self.socket = os.path.join(tmp, name + ".sock")
        self.log_path = os.path.join(tmp, name + ".log")
        self.out_path = os.path.join(tmp, name + ".out")
        self.args = ["--socket", self.socket, "--log-level", "debug"] + list(args)
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith(("OTEL_", "UPSONIC_", "SIDESPAN_SOCKET")):
                del self.env[k]
        self.env.update(env or {})
        self.preexec_fn = preexec_fn
        self.proc = None

    def start(self, wait=True):
        self.log = open(self.log_path, "w")
        self.out = open(self.out_path, "w")
        self.proc = subprocess.Popen([os.environ["SIDESPAND"]] + self.args, env=self.env,
                                     stdout=self.out, stderr=self.log,
                                     preexec_fn=self.preexec_fn)
        if wait:
            deadline = time.time() + 10
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError("sidespand exited: " + self.stderr())
                # Not the socket file: a stale one may be there before we bind.
                if "listening on " + self.socket in self.stderr():
                    return self
                time.sleep(0.02)
            raise AssertionError("sidespand did not listen: " + self.stderr())
        return self

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)
        for f in (self.log, self.out):
            f.close()
        return self.proc.returncode

    def stats(self):
        """The daemon's counters, over a connection of its own."""
        c = RawClient(self.socket)
        try:
            return c.stats()
        finally:
            c.close()

    def stderr(self):
        with open(self.log_path) as f:
            return f.read()

    def stdout(self):
        with open(self.out_path) as f:
            return f.read()


def run(cmd, env=None, timeout=60):
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=timeout)


def rss_kib(pid):
    """The resident set of process pid, in KiB (0 once it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def by_trace(spans):
    traces = {}
    for s in spans:
        traces.setdefault(s["trace_id"], []).append(s)
    return traces


class Base(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory(prefix="sidespan-it-")
        self.tmp = self.tmpdir.name
        self.rx = Receiver(os.environ.get("PROTO_DIR")).start()
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            if d.proc and d.proc.poll() is None:
                d.stop()
        self.rx.stop()
        self.tmpdir.cleanup()

    def daemon(self, args=(), env=None, name="d", wait=True, preexec_fn=None):
        d = Daemon(self.tmp, args, env, name, preexec_fn)
        self.daemons.append(d)
        return d.start(wait)

    def http_daemon(self, extra=(), **kw):
        return self.daemon(["--endpoint", self.rx.url, "--batch-delay-ms", "100"] + list(extra),
                           **kw)

    def stats(self, d):
        return d.stats()

    def wait_stats(self, d, what, ok, timeout=20):
        """STATS once ok(stats) holds; fails (saying what) at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.stats(d)
            if ok(st):
                return st
            if time.monotonic() > deadline:
                self.fail("%s: not within %d s: %s" % (what, timeout, {
                    k: v for k, v in st.items() if k.startswith("exporter.")}))
            time.sleep(0.05)

    def prometheus_port(self, d, timeout=10):
        """The port d's scrape endpoint (--prometheus-listen ...:0) says it listens on."""
        m = None
        deadline = time.time() + timeout
        while not m and time.time() < deadline:
            m = re.search(r"event=prometheus-listening addr=\S+ port=(\d+)", d.stderr())
            time.sleep(0.05)
        self.assertTrue(m, d.stderr()[-2000:])
        return int(m.group(1))

    def wait_spans(self, n, timeout=20):
        ok = self.rx.wait_spans(n, timeout)
        self.assertTrue(ok, "receiver got %d of %d spans" % (len(self.rx.spans()), n))
        return self.rx.spans()
