#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Parse Prometheus text (stdin) with prometheus_client's own parser, the one
Python scrapers use: test-prometheus runs it on what ss_prom_render() wrote.
Prints one line per sample, "name value", and exits 1 when the text does not
parse."""

import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    try:
        for family in text_string_to_metric_families(sys.stdin.read()):
            for s in family.samples:
                print("%s %r" % (s.name, s.value))
    except Exception as e:  # the parser raises ValueError and others on bad text
        print("parse error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
