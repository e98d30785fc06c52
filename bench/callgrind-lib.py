#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""
callgrind-lib.py CALLGRIND_OUT LIB PROGRAM[,MODULE...]: the instructions a program spent
inside one library, from callgrind_annotate's caller tree: the inclusive cost of every call
from the program's objects (the executable and the modules it loads, named by file name)
into an object whose file name holds LIB, less that of the calls LIB made back into them
(its callbacks, whose work is the program's). Prints the count.

bench/run.sh subtracts libcurl's share from the daemon's instructions per span: the target
of issue 11 counts from the socket read to the request handed to libcurl.
"""
import os
import re
import subprocess
import sys

EDGE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+([<*>])\s+(.*?)(?:\s+\((\d+)x\))?\s+\[(.*)\]\s*$")


def main():
    out, lib, progs = sys.argv[1], sys.argv[2], sys.argv[3].split(",")

    def is_lib(o):
        return lib in os.path.basename(o)

    def is_prog(o):
        return os.path.basename(o) in progs

    tree = subprocess.run(
        ["callgrind_annotate", "--tree=caller", "--inclusive=yes", "--threshold=100", out],
        capture_output=True, text=True, check=True).stdout
    callers = []  # the "<" lines above the current "*" line
    into = back = 0
    for line in tree.splitlines():
        m = EDGE.match(line)
        if not m:
            if not line.strip():
                callers = []
            continue
        cost, mark, obj = int(m.group(1).replace(",", "")), m.group(2), m.group(5)
        if mark == "<":
            callers.append((cost, obj))
        elif mark == "*":
            for c, caller in callers:
                if is_lib(obj) and is_prog(caller):
                    into += c
                elif is_prog(obj) and is_lib(caller):
                    back += c
            callers = []
    print(into - back)


if __name__ == "__main__":
    main()
