#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What the Python package costs the calling thread (issue 12): the 30-span
run of examples/python/agent.py with 1 KiB of content in each chat span's
input and output messages, against a running sidespand (started here, file
exporter to /dev/null). Prints ns per span: median and p99 over rounds of
runs, and the same for a span with 5 small attributes. Asserts nothing.

    SIDESPAN_LIBRARY=build/client/libsidespan.so.0 bench-python.py --sidespand build/daemon/sidespand
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "client", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "examples", "python"))
import agent  # noqa: E402
import sidespan  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sidespand", required=True)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--runs", type=int, default=20, help="agent runs per round")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sidespan-bench-py-")
    sock = os.path.join(tmp, "d.sock")
    d = subprocess.Popen([args.sidespand, "--socket", sock, "--exporter", "file", "--file",
                          "/dev/null", "--log-level", "warning"])
    while not os.path.exists(sock):
        time.sleep(0.02)
    p = sidespan.TracingProvider(socket=sock, service_name="bench-py")
    content = "x" * 1024
    agent.agent_run(p, 0, content=content)  # warm up
    p.flush(5.0)
    per_span = []
    for r in range(args.rounds):
        t0 = time.perf_counter_ns()
        for n in range(args.runs):
            agent.agent_run(p, n, content=content)
        per_span.append((time.perf_counter_ns() - t0) / (args.runs * 30))
        p.flush(5.0)  # not timed: the daemon keeps up between rounds
    small = []
    attrs = {"k1": "v", "k2": 1, "k3": 2.5, "k4": True, "k5": "w"}
    for r in range(args.rounds):
        t0 = time.perf_counter_ns()
        for n in range(200):
            with p.span("small", attributes=attrs):
                pass
        small.append((time.perf_counter_ns() - t0) / 200)
        p.flush(5.0)
    st = p.stats()
    p.shutdown()
    d.terminate()
    d.wait()
    q = lambda v, f: sorted(v)[min(len(v) - 1, int(f * len(v)))]  # noqa: E731
    print("python %s, libsidespan %s" % (sys.version.split()[0], sidespan.version()))
    print("agent run (30 spans, 1 KiB content on chats): %.0f ns/span median, %.0f p99 of "
          "rounds" % (statistics.median(per_span), q(per_span, 0.99)))
    print("span with 5 small attributes: %.0f ns/span median, %.0f p99 of rounds"
          % (statistics.median(small), q(small, 0.99)))
    print("client: %d spans started, %d messages dropped" % (st["spans_started"], st["dropped"]))
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
