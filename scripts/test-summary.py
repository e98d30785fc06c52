#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Count every test case of one or more meson runs and print 'N passed, N failed'.

Reads meson-logs/testlog.json of each build directory given; a directory
without one (its build failed) counts as one failure. A Check suite
counts its checks ("Checks: N, Failures: F, Errors: E"), a Python unittest
run its cases ("Ran N tests" / "FAILED (failures=F, errors=E)"), node's test
runner its tests ("ℹ pass N" / "ℹ fail F"); a test with
neither counts as one case by its meson result. A test meson failed without
a failing case in its output (a crash after the summary, a timeout) adds one
failure, so nothing fails silently.
"""
import json
import re
import sys

CHECK = re.compile(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)")
RAN = re.compile(r"^Ran (\d+) tests?", re.M)
FAILED = re.compile(r"^FAILED \(([^)]*)\)", re.M)
NODE_PASS = re.compile(r"^ℹ pass (\d+)$", re.M)
NODE_FAIL = re.compile(r"^ℹ fail (\d+)$", re.M)


def count(test):
    out = (test.get("stdout") or "") + "\n" + (test.get("stderr") or "")
    ok = test.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
    passed = failed = 0
    found = False
    for m in CHECK.finditer(out):
        n, f, e = map(int, m.groups())
        passed += n - f - e
        failed += f + e
        found = True
    ran = RAN.search(out)
    if ran:
        n = int(ran.group(1))
        bad = 0
        fm = FAILED.search(out)
        if fm:
            for part in fm.group(1).split(","):
                key, _, val = part.strip().partition("=")
                if key in ("failures", "errors", "unexpected successes"):
                    bad += int(val)
        # Skipped cases (which say why in the log) pass nothing.
        skipped = re.search(r"^(?:OK|FAILED) \([^)]*skipped=(\d+)", out, re.M)
        passed += n - bad - (int(skipped.group(1)) if skipped else 0)
        failed += bad
        found = True
    node_pass, node_fail = NODE_PASS.search(out), NODE_FAIL.search(out)
    if node_pass and node_fail:
        passed += int(node_pass.group(1))
        failed += int(node_fail.group(1))
        found = True
    if not found:
        return (1, 0) if ok else (0, 1)
    if not ok and failed == 0:
        failed = 1
    return passed, failed


def main(dirs):
    passed = failed = 0
    for d in dirs:
        try:
            f = open(d + "/meson-logs/testlog.json")
        except FileNotFoundError:
            print("%s: no meson-logs/testlog.json, counted as one failure" % d)
            failed += 1
            continue
        with f:
            for line in f:
                if line.strip():
                    p, fl = count(json.loads(line))
                    passed += p
                    failed += fl
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
