#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora of tests/fuzz/corpus/<target>/.

Real traffic: the demo agent (build/examples/sidespan-demo-agent) sends one
agent run to a socket this script listens on, which records the raw bytes
and answers FLUSH with FLUSHED, as sidespand would. Its frames are split into
seeds for each target. Hand-made edge cases follow: every message type, zero
and huge lengths, attribute maps nested at depth 8 (the wire's limit) and 9,
ill-formed UTF-8, NULs, non-string keys.

    python3 tests/fuzz/make-corpus.py [BUILD_DIR]     (default: build)

The output is deterministic for a given demo agent, apart from ids and times,
which the agent draws at random; the corpus is committed, and this script
is how it was made.
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

HELLO, SPAN_START, SPAN_ATTRS, SPAN_EVENT, SPAN_END, SPAN, FLUSH, STATS, SUBSCRIBE = range(1, 10)
FLUSHED, STATS_REPLY = 65, 66

TID = bytes(range(1, 17))
SID = bytes(range(0xA1, 0xA9))
PID = bytes(range(0xB1, 0xB9))


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def raw_map(pairs):
    """A msgpack map of packed pairs, keeping duplicate and non-string keys."""
    n = len(pairs)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return head + b"".join(k + v for k, v in pairs)


def raw_array(items):
    n = len(items)
    head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
    return head + b"".join(items)


def limits(max_attrs=0, max_value_len=0, max_key_len=0, max_bytes=0):
    """The limits fuzz-attrs.c reads before its msgpack object (0: none)."""
    return struct.pack(">BHBH", max_attrs, max_value_len, max_key_len, max_bytes)


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- real traffic ---------------------------------------------------------------------------


def split_frames(stream):
    frames, off = [], 0
    while off + 4 <= len(stream):
        (n,) = struct.unpack(">I", stream[off : off + 4])
        if off + 4 + n > len(stream):
            break
        frames.append(stream[off + 4 : off + 4 + n])
        off += 4 + n
    return frames


def serve(sock, streams):
    """Accept connections, record each one's bytes, answer every FLUSH."""
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        buf = bytearray()
        streams.append(buf)
        pending = b""
        while True:
            data = conn.recv(65536)
            if not data:
                break
            buf += data
            pending += data
            for payload in split_frames(pending):
                msg = msgpack.unpackb(payload, raw=False)
                if msg[0] == FLUSH:
                    conn.sendall(frame(pack([FLUSHED, msg[1]])))
            # keep only the unfinished tail
            off = 0
            for payload in split_frames(pending):
                off += 4 + len(payload)
            pending = pending[off:]
        conn.close()


def capture(build, extra):
    """The frames the demo agent sends for one run."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(4)
        streams = []
        t = threading.Thread(target=serve, args=(sock, streams), daemon=True)
        t.start()
        agent = os.path.join(build, "examples", "sidespan-demo-agent")
        subprocess.run(
            [agent, "--socket", path, "--runs", "1", "-T", "3000", "-q", "-S", "corpus"] + extra,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        t.join(2)
    return split_frames(bytes(b"".join(streams)))


def real_traffic(build):
    frames = capture(build, []) + capture(build, ["--streaming"])
    # frame: runs of consecutive frames as one connection sends them, cut in various ways
    runs = [frames[0:6], frames[6:14], frames[14:20], frames[30:40], frames[60:66]]
    cuts = [b"\x00", b"\x01\x07", b"\x03\x01\x02\x03", b"\x02\x40\x05", b"\x01\x00"]
    for i, (run, cut) in enumerate(zip(runs, cuts)):
        write("frame", "demo-stream-%d" % i, cut + b"".join(frame(p) for p in run))
    # message: one payload per type and shape seen, the smallest and the largest of each
    by_type = {}
    for p in frames:
        by_type.setdefault(msgpack.unpackb(p, raw=False)[0], []).append(p)
    for t, ps in sorted(by_type.items()):
        ps.sort(key=len)
        for tag, p in (("small", ps[0]), ("large", ps[-1])):
            write("message", "demo-type%d-%s" % (t, tag), p)
    # attrs: the attribute maps of span messages, under three sets of limits
    maps = []
    for p in frames:
        m = msgpack.unpackb(p, raw=False)
        if m[0] == SPAN_START and m[7]:
            maps.append(m[7])
        elif m[0] == SPAN_END and m[5]:
            maps.append(m[5])
    maps.sort(key=lambda m: len(pack(m)))
    picks = [maps[0], maps[len(maps) // 2], maps[-1]]
    for i, (m, lim) in enumerate(zip(picks, [limits(), limits(2, 4, 8, 200), limits(0x80, 0x1ff, 0, 0)])):
        write("attrs", "demo-attrs-%d" % i, lim + pack(m))
    return frames


# ---- hand-made ------------------------------------------------------------------------------


def nested(depth, leaf):
    """A value nested depth levels deep as the wire counts them (1 = a plain value)."""
    v = leaf
    for i in range(depth - 1):
        v = {"d": v} if i % 2 else [v]
    return v


def span_start(name="step", attrs=None, options=None, parent=PID):
    return [SPAN_START, TID, SID, parent, name, 1, 1000, attrs or {}, options or {}]


def span_whole(attrs=None, events=None, status=(2, "boom")):
    return [SPAN, TID, SID, None, "whole", 3, 1000, attrs or {}, {"flags": 1}, 2000,
            status[0], status[1], events or []]


def messages():
    m = {
        "hello": [HELLO, 1, {"service.name": "svc", "process.pid": 42, "sdk.name": "libsidespan",
                             "sdk.version": "0.1.0", "instance": 7, "sample_rate": 0.5,
                             "include_content": True, "deployment.environment": "ci"}],
        "hello-v2": [HELLO, 2, {}],
        "hello-nil-options": [HELLO, 1, None],
        "span-start": span_start(attrs={"gen_ai.system": "openai", "n": -3, "f": 1.5, "b": b"\x00\x01",
                                        "ok": True, "list": [1, "a", 2.5]},
                                 options={"trace_state": "k=v", "flags": 1}),
        "span-start-root": span_start(parent=None),
        "span-attrs": [SPAN_ATTRS, SID, {"tokens": 12, "cost": 0.25}],
        "span-event": [SPAN_EVENT, SID, "gen_ai.content.prompt", 1500, {"text": "hi"}],
        "span-event-empty-name": [SPAN_EVENT, SID, "", 1500, None],
        "span-end": [SPAN_END, SID, 2000, 2, "tool failed", {"error.type": "Timeout"}],
        "span-end-ok": [SPAN_END, SID, 500, 1, None, None],
        "span-whole": span_whole(events=[["e1", 1100, {"a": 1}], ["e2", 1200, None]]),
        "flush": [FLUSH, 9],
        "stats": [STATS, 3],
        "subscribe": [SUBSCRIBE],
        "flushed": [FLUSHED, 9],
        "stats-reply": [STATS_REPLY, 3, {"frames": 10, "spans": 4}],
        "unknown-type": [100, "future", 1],
        "trailing-fields": [FLUSH, 1, "extra", [1, 2]],
        "attrs-depth8": span_start(attrs={"deep": nested(8, "leaf")}),
        "attrs-depth9": span_start(attrs={"deep": nested(9, "leaf")}),
        "end-before-start": [SPAN, TID, SID, None, "x", 1, 2000, {}, {}, 1000, 0, None, None],
        "zero-trace-id": span_start(options=None) [:1] + [bytes(16)] + span_start()[2:],
        "bad-kind": span_start()[:5] + [9] + span_start()[6:],
        "utf8-invalid-name": span_start(name="x")[:4] + [b"\xff\xfe ok \xc0\xaf \xed\xa0\x80"] + span_start()[5:],
        "nul-and-controls": span_start(name="a\x00b\x01\x1f\"\\", attrs={"k\x00": "v\x00\x7f\n"}),
        "empty-key": span_start(attrs={"": 1}),
        "not-an-array": {"type": 1},
        "empty-array": [],
    }
    out = {}
    for name, v in m.items():
        # raw strings for the invalid UTF-8 name: pack bytes as str
        if name == "utf8-invalid-name":
            items = [pack(x) for x in v]
            s = v[4]
            items[4] = bytes([0xA0 | len(s)]) + s
            out[name] = raw_array(items)
        else:
            out[name] = pack(v)
    # a map with a non-string key, and the same key twice
    out["attrs-int-key"] = raw_array([pack(x) for x in span_start()[:7]] +
                                     [raw_map([(pack(1), pack("v"))]), pack({})])
    out["attrs-dup-key"] = raw_array([pack(SPAN_ATTRS), pack(SID),
                                      raw_map([(pack("k"), pack(1)), (pack("k"), pack(2))])])
    out["truncated"] = pack(span_start())[:-3]
    out["two-objects"] = pack([FLUSH, 1]) + pack([FLUSH, 2])
    out["msgpack-map32-count"] = b"\xdf\xff\xff\xff\xff"
    out["ext-value"] = raw_array([pack(SPAN_ATTRS), pack(SID),
                                  raw_map([(pack("x"), b"\xd4\x01\x02")])])
    return out


def hand_made():
    msgs = messages()
    for name, p in msgs.items():
        write("message", name, p)
    # frame: edge cases of the length header
    write("frame", "zero-length", b"\x00" + b"\x00\x00\x00\x00")
    write("frame", "huge-length", b"\x00" + b"\xff\xff\xff\xff" + b"x" * 8)
    write("frame", "max-frame-header", b"\x00" + struct.pack(">I", 1 << 20) + b"\x91\x07")
    write("frame", "max-frame-plus-one", b"\x00" + struct.pack(">I", (1 << 20) + 1))
    write("frame", "partial-header", b"\x00" + b"\x00\x00")
    write("frame", "every-type", b"\x02\x01\x05" + b"".join(frame(p) for p in msgs.values()))
    write("frame", "bad-then-good", b"\x00" + frame(b"\xc1") + frame(pack([FLUSH, 1])))
    write("frame", "msgpack-array32-count", b"\x00" + frame(b"\xdd\xff\xff\xff\xff"))
    write("frame", "daemon-message", b"\x00" + frame(pack([FLUSHED, 1])) + frame(pack([FLUSH, 2])))
    # attrs: limits then a map
    write("attrs", "depth8", limits() + pack({"k": nested(8, 1)}))
    write("attrs", "depth9", limits() + pack({"k": nested(9, 1)}))
    write("attrs", "dup-keys", limits(1, 2) + raw_map([(pack("a"), pack("xyz")), (pack("b"), pack(1)),
                                                         (pack("a"), pack("second"))]))
    write("attrs", "utf8-collide", limits() + raw_map([(b"\xa1\xff", pack(1)), (b"\xa1\xfe", pack(2)),
                                                             (b"\xa2\xc3\xa9", b"\xa3\xe2\x82\xac")]))
    write("attrs", "non-string-keys", limits() + raw_map([(pack(1), pack(1)), (pack(None), pack(2)),
                                                                (pack("ok"), raw_map([(pack(2), pack(3))]))]))
    write("attrs", "cut-values", limits(3, 2, 1, 64) + pack({"s": "\u00e9\u00e9\u00e9", "b": b"abcdef",
                                                        "a": ["long string", b"bytes"]}))
    write("attrs", "nil-ext", limits() + raw_map([(pack("n"), pack(None)), (pack("e"), b"\xd4\x01\x02")]))
    write("attrs", "not-a-map", limits() + pack([1, "a", {"b": None}]))
    # once crashes: a NULL ptr of the first empty string, counts msgpack-c allocated unread
    write("attrs", "empty-str-null-ptr", limits() + b"\x91\xa0")
    write("attrs", "empty-key-null-ptr", limits() + b"\x81\xa0\x11")
    write("attrs", "msgpack-array32-count", limits() + b"\xdd\xff\xff\xff\xff")
    write("attrs", "over-merge-max", limits(2, 0, 3, 0) + raw_map(
        [(pack(k), pack(i)) for i, k in enumerate(["a", "long-key", "b", "c", "a", "d", "e"])]))
    # kvlist: [mode][NAME\0VALUE] or [mode][args\0...]
    write("kvlist", "resource-attrs", b"\x00OTEL_RESOURCE_ATTRIBUTES\x00service.name=svc, deployment.environment = prod ,,")
    write("kvlist", "percent", b"\x00H\x00a%20b=c%2Cd,e=%41%zz")
    write("kvlist", "header-inject", b"\x01OTEL_EXPORTER_OTLP_HEADERS\x00x-a=1%0D%0AEvil: 1,b:c=2, =3")
    write("kvlist", "no-equals", b"\x00H\x00novalue,k=v")
    write("kvlist", "argv-full", b"\x02--socket\x00/tmp/s.sock\x00--exporter\x00console,file,otlp-http\x00"
          b"--endpoint\x00http://localhost:4318\x00-H\x00a=b\x00--max-frame\x0064\x00--compression\x00gzip")
    write("kvlist", "argv-help", b"\x02-hV")
    write("kvlist", "argv-bad", b"\x02--max-frame\x0063\x00--bogus")
    write("kvlist", "argv-endpoint-empty", b"\x02--endpoint\x00\x00")
    write("kvlist", "env-endpoint", b"\x17http://collector\x00-s\x00/tmp/x")  # (0x17 >> 2) % 15 = 5
    write("kvlist", "env-headers", b"\x23k=v,k2=%20v2\x00-s\x00/tmp/x")  # (0x23 >> 2) % 15 = 8
    # json: the layout of fuzz-json.c
    res = j_resource(b"libsidespan", b"0.1.0", [(b"service.name", "svc")])
    write("json", "one-span", b"\x00" + res + res + j_span(
        0x13, 1000, 2000, b"n", [(b"k", "v"), (b"n", -5), (b"f", 0.5), (b"b", Bin(b"\x00\xff")),
                                 (b"a", [1, True, None]), (b"m", {b"x": 1, 7: b"int key"})],
        events=[(1500, b"ev", [(b"e", Ext(b"\x01"))])], msg=b"err", ts=b"k=v"))
    write("json", "two-resources", b"\x03" + res + j_resource(b"", b"", []) + b"".join(
        j_span(bits, 10, 20, b"s%d" % bits, []) for bits in (0x00, 0x80, 0x01, 0x81)))
    deep = "leaf"
    for i in range(20):
        deep = [deep] if i % 2 else {b"d": deep}
    write("json", "deep", b"\x00" + res + res + j_span(0, 1, 2, b"deep", [(b"k", deep)]))
    write("json", "floats", b"\x00" + res + res + j_span(0, 1, 2, b"f", [
        (b"nan", float("nan")), (b"inf", float("inf")), (b"-inf", float("-inf")),
        (b"neg0", -0.0), (b"tiny", 5e-324), (b"big", 1.7976931348623157e308), (b"u64", 2**64 - 1)]))
    write("json", "bytes-in-strings", b"\x00" + j_resource(b"\xff\xfe", b"\xc0\xaf", [
        (b"\xed\xa0\x80", b"\xf4\x90\x80\x80")]) + res + j_span(
        0, 1, 2, bytes(range(32)) + b'"\\/\x7f', [(b"nul\x00key", b"\x00" * 3),
                                                  (b"cut", b"\xe2\x82"), (b"ok", "\u20ac\U0001f600")],
        msg=b"\xf0\x9f\x98", ts=b"\x80"))


class Bin(bytes):
    pass


class Ext(bytes):
    pass


def j_str(b):
    if isinstance(b, str):
        b = b.encode()
    return (bytes([len(b)]) if len(b) < 255 else b"\xff" + struct.pack(">H", len(b))) + b


def j_val(v):
    if v is None:
        return b"\x00"
    if isinstance(v, bool):
        return b"\x01" + bytes([v])
    if isinstance(v, int):
        return (b"\x02" if v >= 0 else b"\x03") + struct.pack(">Q", v & (2**64 - 1))
    if isinstance(v, float):
        return b"\x04" + struct.pack(">d", v)
    if isinstance(v, Bin):
        return b"\x07" + j_str(bytes(v))
    if isinstance(v, Ext):
        return b"\x0a" + j_str(bytes(v))
    if isinstance(v, (str, bytes)):
        return b"\x06" + j_str(v)
    if isinstance(v, list):
        return b"\x08" + bytes([len(v)]) + b"".join(j_val(x) for x in v)
    return b"\x09" + bytes([len(v)]) + b"".join(j_val(k) + j_val(x) for k, x in v.items())


def j_map(pairs):
    return bytes([len(pairs)]) + b"".join(j_str(k) + j_val(v) for k, v in pairs)


def j_resource(name, version, attrs):
    return j_str(name) + j_str(version) + j_map(attrs)


def j_span(bits, start, end, name, attrs, events=(), msg=b"", ts=b""):
    out = bytes([bits]) + struct.pack(">QQ", start, end) + b"\x01\x00\x00"
    out += j_str(name) + j_str(msg) + j_str(ts) + j_map(attrs) + bytes([len(events)])
    for t, n, a in events:
        out += struct.pack(">Q", t) + j_str(n) + j_map(a) + b"\x00"
    return out

def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    real_traffic(build)
    hand_made()
    for t in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, t))
        size = sum(os.path.getsize(os.path.join(OUT, t, f)) for f in files)
        print("%-8s %3d files %7d bytes" % (t, len(files), size))


if __name__ == "__main__":
    main()
