#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""How long the worst frame of each limit keeps sidespand's loop busy (issue 6).

For each kind of worst frame (the largest HELLO, the largest attribute map, the
largest span name, 128 attributes with the largest values that fit a frame, a
256 KiB value re-set on one key, over-long keys), one client sends it over and
over while a second client, in a process of its own, measures FLUSH round
trips; the table gives their median and maximum under each attack and at rest,
and the daemon's CPU time per worst frame (utime + stime from /proc/PID/stat).
Then, unless --no-callgrind, sidespand runs under valgrind --tool=callgrind for
each kind: counters zeroed after a warm-up frame, a few worst frames and a FLUSH,
the instructions counted divided by the frames (stable on a shared machine).

The daemon exports OTLP/HTTP to a sink in this script that reads each request
and answers 200 (a Python receiver that decodes protobuf would be the
bottleneck). Default limits throughout. Prints figures; asserts nothing.

    bench-hostile.py --sidespand build-bench/daemon/sidespand [--seconds 3] [--no-callgrind]
"""

import argparse
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import itest_lib  # noqa: E402
from itest_lib import (  # noqa: E402
    MSG_FLUSH, MSG_FLUSHED, RawClient, frame, hello_bomb, span_attrs, span_start)

KiB, MiB = 1 << 10, 1 << 20
MAX_FRAME = 1 * MiB  # sidespand's default --max-frame
THIS = os.path.abspath(__file__)


# ---- the worst frames (default limits) ------------------------------------------------------

def whole_span(name, attrs):
    now = time.time_ns()
    return itest_lib.whole_span(os.urandom(16), os.urandom(8), None, name, now, now + 1000, attrs)


def attr_map(span_id):
    """SPAN_ATTRS of 32 000 attributes on one open span (max_attributes 128): the largest map a
    frame may hold (65 536 msgpack objects, SS_WIRE_MAX_OBJECTS); a larger one is refused."""
    return span_attrs(span_id, {"%05x" % i: "vv" for i in range(32000)})


def max_attrs():
    """A whole span of 128 attributes (max_attributes), each value as large as a frame allows."""
    per = (MAX_FRAME - 4 * KiB) // 128 - 16
    return whole_span("max.attrs", {"k%03d" % i: "%03d" % i + "v" * (per - 3) for i in range(128)})


def big_name():
    """A whole span whose name fills the frame (max_name_length cuts it to 1024)."""
    return whole_span("N" * (MAX_FRAME - 256), {})


def reset_value(span_id):
    """A 256 KiB value (max_value_length) re-set on one key of one open span."""
    return span_attrs(span_id, {"gen_ai.output.messages": "x" * (256 * KiB)})


def long_keys():
    """A whole span with 9 keys of 100 KiB (max_key_length drops them)."""
    return whole_span("keys", {("%d." % i) + "k" * (100 * KiB): "v" for i in range(9)})


class Attacker:
    """Sends one kind of worst frame; send() one frame, finish() a FLUSH round trip."""

    def __init__(self, path, kind):
        self.path, self.kind = path, kind
        self.c = None
        if kind != "hello":
            self.c = self._connect()
            if kind in ("attr-map", "reset-value"):
                self.sid = os.urandom(8)
                self.c.send(span_start(os.urandom(16), self.sid, None, "long.lived"))
        # The largest HELLO a frame may hold: 32 000 resource attributes (65 536 objects).
        self.data = {"hello": lambda: hello_bomb(32000), "name": big_name, "max-attrs": max_attrs,
                     "keys": long_keys}.get(kind)
        self.data = self.data() if self.data else \
            (attr_map if kind == "attr-map" else reset_value)(self.sid)

    def _connect(self):
        c = RawClient(self.path)
        c.sock.settimeout(120)
        c.hello(**{"service.name": "attacker", "instance": 1})
        return c

    def send(self):
        if self.kind == "hello":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.path)
            s.sendall(self.data)
            s.close()
        else:
            self.c.send(self.data)

    def finish(self):
        c = self.c or self._connect()
        c.flush(99)
        c.close()


# ---- measuring ------------------------------------------------------------------------------

def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def probe_main(path, seconds):
    """The measuring client (a process of its own): FLUSH round trips every 10 ms, printed."""
    c = RawClient(path)
    c.sock.settimeout(120)
    c.hello(**{"service.name": "probe", "instance": 2})
    c.flush(0)
    print("ready", flush=True)
    rtts, seq, end = [], 0, time.monotonic() + seconds
    while time.monotonic() < end:
        seq += 1
        t0 = time.monotonic()
        c.send(frame(MSG_FLUSH, seq))
        reply = c.recv_frame()
        rtts.append(time.monotonic() - t0)
        if reply != [MSG_FLUSHED, seq]:
            break
        time.sleep(0.01)
    c.close()
    print(json.dumps(rtts))


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        while n > 0:
            n -= len(self.rfile.read(min(n, 1 << 20)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


def sink_main(port_file):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    srv.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="sidespan-bench-hostile-")
        port_file = os.path.join(self.tmp, "sink.port")
        self.sink = subprocess.Popen([sys.executable, THIS, "--sink", port_file])
        while not os.path.exists(port_file):
            time.sleep(0.02)
        with open(port_file) as f:
            self.endpoint = "http://127.0.0.1:%s/v1/traces" % f.read()

    def close(self):
        self.sink.terminate()
        self.sink.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def daemon(self, name, wrapper=()):
        sock = os.path.join(self.tmp, name + ".sock")
        log = open(os.path.join(self.tmp, name + ".log"), "w+")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OTEL_", "UPSONIC_", "SIDESPAN_SOCKET"))}
        p = subprocess.Popen(list(wrapper) + [self.args.sidespand, "--socket", sock, "--endpoint",
                                              self.endpoint, "--batch-delay-ms", "50"],
                             stdout=subprocess.DEVNULL, stderr=log, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            log.seek(0)
            if "listening on " + sock in log.read():
                return p, sock
            if p.poll() is not None:
                break
            time.sleep(0.05)
        log.seek(0)
        raise SystemExit("sidespand did not start:\n" + log.read())

    @staticmethod
    def stop(p):
        p.terminate()
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def under_attack(self, kind):
        """(FLUSH round trips, frames sent, daemon CPU seconds) with kind sent for --seconds."""
        p, sock = self.daemon("d-" + kind)
        try:
            attacker = Attacker(sock, kind) if kind != "rest" else None
            probe = subprocess.Popen([sys.executable, THIS, "--probe", sock,
                                      str(self.args.seconds)], stdout=subprocess.PIPE, text=True)
            probe.stdout.readline()  # "ready": the attack and the measure start together
            cpu0, frames = cpu_seconds(p.pid), 0
            end = time.monotonic() + self.args.seconds
            while attacker and time.monotonic() < end:
                attacker.send()
                frames += 1
            if attacker:
                attacker.finish()
            cpu = cpu_seconds(p.pid) - cpu0
            rtts = json.loads(probe.communicate(timeout=300)[0])
        finally:
            self.stop(p)
        return rtts, frames, cpu

    def instructions(self, kind, k=5):
        """Instructions sidespand executes per worst frame, under callgrind."""
        out = os.path.join(self.tmp, "cg-%s.out" % kind)
        p, sock = self.daemon("cg-" + kind, ["valgrind", "--tool=callgrind", "--quiet",
                                             "--callgrind-out-file=" + out])
        try:
            attacker = Attacker(sock, kind)
            attacker.send()  # warm-up: the first frame sets what later ones replace
            if attacker.c:
                attacker.c.flush(1)
            time.sleep(0.5)
            subprocess.run(["callgrind_control", "-z", str(p.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(k):
                attacker.send()
            attacker.finish()
            time.sleep(0.5)  # the export request leaves
            subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            self.stop(p)
        dumps = sorted(f for f in os.listdir(self.tmp) if f.startswith("cg-%s.out." % kind))
        with open(os.path.join(self.tmp, dumps[0])) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1]) / k
        return float("nan")


KINDS = [
    ("rest", "at rest (no attacker)"),
    ("hello", "HELLO, 32 000 resource attrs"),
    ("attr-map", "SPAN_ATTRS, 32 000 attrs"),
    ("name", "SPAN, 1 MB name"),
    ("max-attrs", "SPAN, 128 attrs x 8 KB values"),
    ("reset-value", "SPAN_ATTRS, 256 KiB value re-set"),
    ("keys", "SPAN, 9 keys of 100 KiB"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sidespand", required=True)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--no-callgrind", action="store_true")
    args = ap.parse_args()
    b = Bench(args)
    try:
        print("FLUSH round trips of a second client while one client sends a worst frame "
              "for %.0f s;\nCPU: the daemon's utime+stime per worst frame.\n" % args.seconds)
        print("%-40s %8s %10s %10s %8s %12s" % ("attack", "frames", "median ms", "max ms",
                                               "flushes", "CPU ms/frame"))
        for kind, label in KINDS:
            rtts, frames, cpu = b.under_attack(kind)
            print("%-40s %8s %10.2f %10.2f %8d %12s" % (
                label, frames if frames else "-", 1000 * statistics.median(rtts),
                1000 * max(rtts), len(rtts), "%.2f" % (1000 * cpu / frames) if frames else "-"),
                flush=True)
        if args.no_callgrind or not shutil.which("valgrind") or \
                not shutil.which("callgrind_control"):
            return 0
        print("\nInstructions per worst frame (valgrind --tool=callgrind, after one warm-up "
              "frame, 5 frames and a FLUSH):\n")
        for kind, label in KINDS[1:]:
            print("%-40s %14.0f" % (label, b.instructions(kind)), flush=True)
    finally:
        b.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--probe":
        probe_main(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) > 2 and sys.argv[1] == "--sink":
        sink_main(sys.argv[2])
    else:
        sys.exit(main())
