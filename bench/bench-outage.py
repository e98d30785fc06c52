#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Memory and delivery through a backend outage (issue 9).

Clients send agent-shaped traces at a steady rate while the OTLP/HTTP
receiver is down for --outage seconds, then up again. sidespand runs with a
spool (in a temporary directory) and its default limits. Printed each second:
the daemon's RSS (from /proc/PID/status), spans in, spooled, in the spool,
exported; at the end the peak RSS, and spans sent against spans received by
the receiver (unique span ids). Prints figures; asserts nothing.

    bench-outage.py --sidespand build-bench/daemon/sidespand [--outage 60] [--rate 10000]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from itest_lib import RawClient, rss_kib, send_trace  # noqa: E402
from otlp_receiver import Receiver  # noqa: E402

EXP = "exporter.otlp-http."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sidespand", required=True)
    ap.add_argument("--outage", type=float, default=60)
    ap.add_argument("--after", type=float, default=10, help="seconds of sending once it is up")
    ap.add_argument("--rate", type=int, default=10000, help="spans per second")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sidespan-outage-")
    rx = Receiver(os.environ.get("PROTO_DIR")).start()
    port = rx.port
    rx.stop()
    sock = os.path.join(tmp, "d.sock")
    log = open(os.path.join(tmp, "d.log"), "w")
    d = subprocess.Popen([args.sidespand, "--socket", sock, "--spool-dir", tmp + "/spool",
                          "--endpoint", "http://127.0.0.1:%d/v1/traces" % port,
                          "--retry-initial-ms", "200", "--retry-max-ms", "1000"],
                         stdout=subprocess.DEVNULL, stderr=log)
    while not os.path.exists(sock):
        time.sleep(0.02)
    stats_client = RawClient(sock)
    stats_client.hello()
    stop = threading.Event()
    sent = [0]

    def sender():
        c = RawClient(sock)
        c.hello()
        per_trace = 30  # a root and 29 children: the agent run's size
        t0 = time.time()
        while not stop.is_set():
            send_trace(c, "run", per_trace - 1, attrs={"gen_ai.input.messages": "x" * 1024})
            sent[0] += per_trace
            ahead = sent[0] / args.rate - (time.time() - t0)
            if ahead > 0:
                time.sleep(ahead)
        c.flush()
        c.close()

    th = threading.Thread(target=sender)
    th.start()
    peak = 0
    t0 = time.time()
    up = None
    print("   t  rss_MiB  spans_in  spooled  in_spool  exported")
    while time.time() - t0 < args.outage + args.after:
        time.sleep(1)
        if up is None and time.time() - t0 >= args.outage:
            up = Receiver(os.environ.get("PROTO_DIR"), port=port).start()
        rss = rss_kib(d.pid)
        peak = max(peak, rss)
        st = stats_client.stats()
        print("%4.0f  %7.1f  %8d  %7d  %8d  %8d" % (
            time.time() - t0, rss / 1024, st[EXP + "spans_in"], st[EXP + "spans_spooled"],
            st.get(EXP + "spool.spans", 0), st[EXP + "spans_exported"]))
    stop.set()
    th.join()
    deadline = time.time() + 120
    while time.time() < deadline and len({s["span_id"] for s in up.spans()}) < sent[0]:
        time.sleep(0.5)
    got = len({s["span_id"] for s in up.spans()})
    print("outage %.0f s at %d spans/s: sent %d, received %d unique, peak RSS %.1f MiB"
          % (args.outage, args.rate, sent[0], got, peak / 1024))
    stats_client.close()
    d.terminate()
    d.wait()
    up.stop()
    log.close()
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
