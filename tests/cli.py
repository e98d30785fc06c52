#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The sidespan command (issue 10) against the real sidespand: status --json
against known traffic, flush, the no-daemon error, bad arguments.

Run by meson with SIDESPAND and SIDESPAN_CLI set (suite integration, test cli).
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_lib import Base, RawClient, run, send_trace  # noqa: E402

CLI = os.environ.get("SIDESPAN_CLI", "sidespan")


class Cli(Base):
    def cli(self, d, *args):
        return run([CLI, "--socket", d.socket] + list(args))

    def test_status_json_counts_known_traffic(self):
        d = self.http_daemon()
        c = RawClient(d.socket)
        c.hello()
        n_traces, n_children = 3, 4
        for i in range(n_traces):
            send_trace(c, "t%d" % i, n_children)
        c.flush()
        spans = self.wait_spans(n_traces * (n_children + 1))
        self.assertEqual(len(spans), n_traces * (n_children + 1))
        r = self.cli(d, "status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        ins = [v for k, v in st.items() if k.startswith("exporter.") and k.endswith(".spans_in")]
        exp = [v for k, v in st.items()
               if k.startswith("exporter.") and k.endswith(".spans_exported")]
        self.assertEqual(ins, [15])
        self.assertEqual(exp, [15])
        # the raw client and the CLI itself
        self.assertGreaterEqual(st["connections_active"], 2)
        c.close()

    def test_status_text(self):
        d = self.http_daemon()
        c = RawClient(d.socket)
        c.hello()
        send_trace(c, "s", 2)
        c.flush()
        self.wait_spans(3)
        r = self.cli(d, "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^connections_active +\d+$")
        # The headline first: clients and open work, then each exporter's figures.
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^sidespand at %s: 2 connection\(s\), 0 open span\(s\) "
                         r"in 0 open trace\(s\); 3 span\(s\) finished$" % d.socket)
        self.assertRegex(lines[1], r"^  exporter otlp-http: 3 in, 3 exported, 0 dropped, "
                         r"0 retries")
        self.assertRegex(lines[2], r"^  memory: \d+ kB in use by malloc, \d+ kB free, "
                         r"[1-9]\d* kB of input buffers; \d+ kB given back by \d+ trim\(s\)$")
        c.close()

    def test_flush(self):
        d = self.http_daemon()
        c = RawClient(d.socket)
        c.hello()
        send_trace(c, "f", 1)
        r = self.cli(d, "flush", "--timeout", "5000")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_spans(2)
        c.close()

    def test_no_daemon(self):
        path = os.path.join(self.tmp, "none.sock")
        r = run([CLI, "--socket", path, "status"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("sidespan: no daemon at " + path, r.stderr)
        self.assertIn("sidespand --socket", r.stderr)
        r = run([CLI, "status"], env={"SIDESPAN_SOCKET": path})
        self.assertEqual(r.returncode, 1)
        self.assertIn(path, r.stderr)

    def test_bad_arguments_name_the_value(self):
        r = run([CLI, "flush", "--timeout", "soon"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("'soon'", r.stderr)
        r = run([CLI, "frobnicate"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("'frobnicate'", r.stderr)
        for args in (["--help"], ["status", "--help"], ["flush", "--help"]):
            r = run([CLI] + args)
            self.assertEqual(r.returncode, 0)
            self.assertIn("Usage: sidespan", r.stdout)


if __name__ == "__main__":
    unittest.main()
