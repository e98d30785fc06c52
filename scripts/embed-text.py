#!/usr/bin/env python3
# Write a C file defining one text file's bytes as a NUL-terminated array and its length:
#   embed-text.py IN OUT SYMBOL   ->   const char SYMBOL[]; const size_t SYMBOL_len;
# Used at build time to compile data files (data/pricing.tsv) into the daemon as defaults.
import sys

src, dst, sym = sys.argv[1:4]
data = open(src, "rb").read()
with open(dst, "w") as f:
    f.write("/* Generated from %s by scripts/embed-text.py; do not edit. */\n" % src.split("/")[-1])
    f.write("#include <stddef.h>\n\n")
    f.write("const char %s[] = {\n" % sym)
    for i in range(0, len(data), 16):
        f.write("        " + ", ".join("0x%02x" % b for b in data[i:i + 16]) + ",\n")
    f.write("        0x00,\n};\n")
    f.write("const size_t %s_len = %d;\n" % (sym, len(data)))
