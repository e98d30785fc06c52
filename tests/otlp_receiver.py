#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A real OTLP/HTTP trace receiver for sidespan's tests (stdlib + protobuf only).

At start it compiles the project's .proto files with
``protoc --python_out=<tmpdir> -I PROTO_DIR PROTO_DIR/*.proto`` and imports
the modules (``trace_service_pb2`` is the one this receiver decodes with). It serves ``POST /v1/traces`` and any path ending in
``/v1/traces`` (e.g. ``/api/public/otel/v1/traces``) on 127.0.0.1, decodes
every body strictly (gunzip for ``Content-Encoding: gzip``; a body that is not
an ExportTraceServiceRequest is answered 400 and recorded as a decode error)
and answers 200 with a serialized ExportTraceServiceResponse.

Module use (e.g. from tests/integration.py in the same directory)::

    from otlp_receiver import Receiver
    rx = Receiver(proto_dir).start()   # proto_dir None: $PROTO_DIR
    rx.port, rx.url                    # url = http://127.0.0.1:<port>/v1/traces
    rx.requests                        # list of request dicts, see below
    rx.spans()                         # accepted spans, flattened to dicts
    rx.fail_next(n, status, retry_after=None)  # next n POSTs answer status
    rx.partial_next(rejected, message) # next POST answers partial_success
    rx.wait_spans(count, timeout)      # -> bool: at least count spans seen
    rx.stop()

A request dict has: path, headers (dict, lower-case names), content_type,
content_encoding ("" when none), user_agent, body_len (bytes on the wire),
status (what was answered), decode_error (str or None), n_spans, time.

A span dict has: resource (attribute dict), service_name, scope_name,
scope_version, trace_id, span_id (lower-case hex), parent_span_id (hex or
""), name, kind, start_time_unix_nano, end_time_unix_nano, status_code,
status_message, attributes (dict of python values: str, int, float, bool,
bytes, list, dict for kvlists), dropped_attributes_count, events (list of
{name, time_unix_nano, attributes, dropped_attributes_count}),
dropped_events_count, links (list of {trace_id, span_id, trace_state,
attributes, flags}), flags, trace_state. Spans of a request answered with a
failure status are not recorded (the exporter must send them again); spans
of a partial_success answer are.

Process use::

    otlp_receiver.py --port-file F [--port P] [--proto-dir D]
                     [--fail-first N --fail-status 503 --retry-after S]

writes its port to F (atomically) when ready and serves, besides the traces
path:

    GET  /_sidespan/spans     recorded spans as JSON (bytes as hex strings)
    GET  /_sidespan/requests  {"count", "decode_errors", "requests": [...]} as JSON
    GET  /_sidespan/summary   line-based text for C tests:
                              requests=N / accepted=N / decode_errors=N / spans=N,
                              "request status=S encoding=E spans=N path=P" per request,
                              "header <name>: <value>" per request header,
                              "span name=.. trace_id=.. span_id=.. parent=.. kind=..
                              status=.. service=.." per span, then
                              "attr <span name> <key>=<json value>",
                              "resource <span name> <key>=<json value>",
                              "event <span name> <event name>" lines
    POST /_sidespan/fail?n=N&status=S[&retry_after=X]
    POST /_sidespan/partial?rejected=N[&message=M]
    POST /_sidespan/reset     forget requests, spans and pending failures

SIGTERM (or SIGINT) exits cleanly with status 0.
"""

import argparse
import glob
import gzip
import http.server
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

MAX_BODY = 80 << 20  # above OTLP's recommended 64 MiB request maximum

_pb_lock = threading.Lock()
_pb_modules = {}


def load_protos(proto_dir, name="trace_service_pb2"):
    """Compile the .proto files of proto_dir once, import every module, return module name
    (e.g. status_pb2 for the OTLP/gRPC receiver; cached)."""
    proto_dir = os.path.abspath(proto_dir)
    with _pb_lock:
        if proto_dir in _pb_modules:
            return _pb_modules[proto_dir][name]
        if _pb_modules:
            raise RuntimeError("one proto directory per process: protobuf's descriptor pool is global")
        files = sorted(glob.glob(os.path.join(proto_dir, "*.proto")))
        if not files:
            raise RuntimeError("no .proto files in %s" % proto_dir)
        out = tempfile.mkdtemp(prefix="sidespan-pb-")
        mods = {}
        try:
            subprocess.run(["protoc", "--python_out=" + out, "-I", proto_dir] + files, check=True)
            sys.path.insert(0, out)
            try:
                for f in files:
                    mod = os.path.basename(f)[:-len(".proto")] + "_pb2"
                    mods[mod] = importlib.import_module(mod)
            finally:
                sys.path.remove(out)
        finally:
            # Imported modules live in memory; the generated files are no longer needed.
            shutil.rmtree(out, ignore_errors=True)
        _pb_modules[proto_dir] = mods
        return mods[name]


def any_value(v):
    """An AnyValue as a python value (None when unset)."""
    fields = v.ListFields()
    if not fields:
        return None
    fd, val = fields[0]
    if fd.name == "array_value":
        return [any_value(x) for x in val.values]
    if fd.name == "kvlist_value":
        return kv_dict(val.values)
    if fd.name == "bytes_value":
        return bytes(val)
    return val


def kv_dict(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def flatten_span(resource, scope, s):
    return {
        "resource": resource,
        "service_name": resource.get("service.name"),
        "scope_name": scope.name,
        "scope_version": scope.version,
        "trace_id": s.trace_id.hex(),
        "span_id": s.span_id.hex(),
        "parent_span_id": s.parent_span_id.hex(),
        "name": s.name,
        "kind": int(s.kind),
        "start_time_unix_nano": s.start_time_unix_nano,
        "end_time_unix_nano": s.end_time_unix_nano,
        "status_code": int(s.status.code),
        "status_message": s.status.message,
        "attributes": kv_dict(s.attributes),
        "dropped_attributes_count": s.dropped_attributes_count,
        "events": [{"name": ev.name, "time_unix_nano": ev.time_unix_nano,
                    "attributes": kv_dict(ev.attributes),
                    "dropped_attributes_count": ev.dropped_attributes_count}
                   for ev in s.events],
        "dropped_events_count": s.dropped_events_count,
        "links": [{"trace_id": ln.trace_id.hex(), "span_id": ln.span_id.hex(),
                   "trace_state": ln.trace_state, "attributes": kv_dict(ln.attributes),
                   "flags": ln.flags}
                  for ln in s.links],
        "flags": s.flags,
        "trace_state": s.trace_state,
    }


def flatten_request(req):
    spans = []
    for rs in req.resource_spans:
        resource = kv_dict(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append(flatten_span(resource, ss.scope, s))
    return spans


def _json_default(o):
    if isinstance(o, (bytes, bytearray)):
        return o.hex()
    raise TypeError("not JSON serializable: %r" % type(o))


def to_json(obj):
    return json.dumps(obj, default=_json_default, sort_keys=True)


class _State:
    """What the receiver saw and the failures it was told to answer; guarded by cond."""

    def __init__(self):
        self.cond = threading.Condition()
        self.requests = []
        self.spans = []
        self.fail_n = 0
        self.fail_status = 503
        self.fail_retry_after = None
        self.partial = None  # (rejected, message)

    def reset(self):
        with self.cond:
            self.requests.clear()
            self.spans.clear()
            self.fail_n = 0
            self.partial = None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as OTLP exporters expect
    server_version = "sidespan-otlp-receiver"
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("otlp_receiver: " + (fmt % args) + "\n")

    def _reply(self, status, body=b"", ctype="application/x-protobuf", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0"))
        if n < 0 or n > MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(n)

    @property
    def state(self):
        return self.server.sidespan_state

    def summary(self, st):
        """/_sidespan/summary's text; st.cond is held."""
        return summary(st.requests, st.spans)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        st = self.state
        with st.cond:
            if path == "/_sidespan/spans":
                body = to_json(st.spans)
            elif path == "/_sidespan/requests":
                body = to_json({"count": len(st.requests),
                                "decode_errors": sum(1 for r in st.requests if r["decode_error"]),
                                "requests": st.requests})
            elif path == "/_sidespan/summary":
                body = self.summary(st)
            else:
                body = None
        if body is None:
            self._reply(404, b"not found\n", "text/plain")
        else:
            self._reply(200, body.encode(), "application/json" if path != "/_sidespan/summary"
                        else "text/plain")

    def _control(self, path, query):
        q = urllib.parse.parse_qs(query)
        st = self.state
        with st.cond:
            if path == "/_sidespan/fail":
                st.fail_n = int(q.get("n", ["1"])[0])
                st.fail_status = int(q.get("status", ["503"])[0])
                st.fail_retry_after = q.get("retry_after", [None])[0]
            elif path == "/_sidespan/partial":
                st.partial = (int(q.get("rejected", ["0"])[0]), q.get("message", [""])[0])
            elif path == "/_sidespan/reset":
                st.reset()
            else:
                return False
        return True

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._reply(400, b"unreadable body\n", "text/plain")
            return
        if url.path.startswith("/_sidespan/"):
            ok = self._control(url.path, url.query)
            self._reply(200 if ok else 404, b"ok\n" if ok else b"not found\n", "text/plain")
            return
        if not url.path.endswith("/v1/traces"):
            self._reply(404, b"not found\n", "text/plain")
            return
        self._export(url.path, raw)

    def _decode(self, raw):
        """(ExportTraceServiceRequest, None) or (None, error text)."""
        enc = self.headers.get("Content-Encoding", "").strip().lower()
        try:
            if enc == "gzip":
                raw = gzip.decompress(raw)
            elif enc not in ("", "identity"):
                return None, "unsupported Content-Encoding %r" % enc
            msg = self.server.sidespan_pb.ExportTraceServiceRequest()
            msg.ParseFromString(raw)
            return msg, None
        except Exception as e:  # gzip, zlib and protobuf DecodeError alike: a decode error
            return None, "%s: %s" % (type(e).__name__, e)

    def _export(self, path, raw):
        msg, err = self._decode(raw)
        spans = flatten_request(msg) if msg is not None else []
        st = self.state
        rec = {
            "path": path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "content_type": self.headers.get("Content-Type", ""),
            "content_encoding": self.headers.get("Content-Encoding", ""),
            "user_agent": self.headers.get("User-Agent", ""),
            "body_len": len(raw),
            "decode_error": err,
            "n_spans": len(spans),
            "time": time.time(),
        }
        extra, partial = [], None
        with st.cond:
            if err is not None:
                status = 400
            elif st.fail_n > 0:
                st.fail_n -= 1
                status = st.fail_status
                if st.fail_retry_after is not None:
                    extra.append(("Retry-After", str(st.fail_retry_after)))
            else:
                status = 200
                partial, st.partial = st.partial, None
                st.spans.extend(spans)
            rec["status"] = status
            st.requests.append(rec)
            st.cond.notify_all()
        if status == 200:
            resp = self.server.sidespan_pb.ExportTraceServiceResponse()
            if partial is not None:
                resp.partial_success.rejected_spans = partial[0]
                resp.partial_success.error_message = partial[1]
            self._reply(200, resp.SerializeToString())
        elif err is not None:
            self._reply(400, ("cannot decode request: %s\n" % err).encode(), "text/plain")
        else:
            self._reply(status, b"test receiver says %d\n" % status, "text/plain", extra)


def summary(requests, spans):
    ok = sum(1 for r in requests if 200 <= r["status"] < 300)
    lines = ["requests=%d" % len(requests), "accepted=%d" % ok,
             "decode_errors=%d" % sum(1 for r in requests if r["decode_error"]),
             "spans=%d" % len(spans)]
    for r in requests:
        lines.append("request status=%d encoding=%s spans=%d path=%s"
                     % (r["status"], r["content_encoding"] or "identity", r["n_spans"], r["path"]))
        for k, v in r["headers"].items():
            lines.append("header %s: %s" % (k, v))
    return "\n".join(lines + span_lines(spans)) + "\n"


def span_lines(spans):
    """The summary's lines for accepted spans (shared with otlp_grpc_receiver.py)."""
    lines = []
    for s in spans:
        lines.append("span name=%s trace_id=%s span_id=%s parent=%s kind=%d status=%d service=%s"
                     % (s["name"], s["trace_id"], s["span_id"], s["parent_span_id"] or "-",
                        s["kind"], s["status_code"], s["service_name"]))
    for s in spans:
        for k, v in s["attributes"].items():
            lines.append("attr %s %s=%s" % (s["name"], k, to_json(v)))
        for k, v in s["resource"].items():
            lines.append("resource %s %s=%s" % (s["name"], k, to_json(v)))
        for ev in s["events"]:
            lines.append("event %s %s" % (s["name"], ev["name"]))
    return lines


class Receiver:
    """An OTLP/HTTP receiver on 127.0.0.1 serving from a background thread."""

    def __init__(self, proto_dir=None, port=0, verbose=False):
        proto_dir = proto_dir or os.environ.get("PROTO_DIR")
        if not proto_dir:
            raise RuntimeError("no proto directory: pass proto_dir or set PROTO_DIR")
        self._pb = load_protos(proto_dir)
        self._want_port = port
        self._verbose = verbose
        self._state = _State()
        self._server = None
        self._thread = None
        self.port = None
        self.url = None

    def start(self):
        handler = type("Handler", (_Handler,), {"verbose": self._verbose})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", self._want_port), handler)
        srv.daemon_threads = True
        srv.sidespan_state = self._state
        srv.sidespan_pb = self._pb
        self._server = srv
        self.port = srv.server_address[1]
        self.url = "http://127.0.0.1:%d/v1/traces" % self.port
        self._thread = threading.Thread(target=srv.serve_forever, name="otlp-receiver",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = None

    @property
    def requests(self):
        return self._state.requests

    def spans(self):
        with self._state.cond:
            return list(self._state.spans)

    def fail_next(self, n, status, retry_after=None):
        with self._state.cond:
            self._state.fail_n = n
            self._state.fail_status = status
            self._state.fail_retry_after = retry_after

    def partial_next(self, rejected, message):
        with self._state.cond:
            self._state.partial = (rejected, message)

    def reset(self):
        self._state.reset()

    def wait_spans(self, count, timeout):
        deadline = time.monotonic() + timeout
        with self._state.cond:
            while len(self._state.spans) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._state.cond.wait(left)
            return True

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _write_port_file(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%s\n" % port)
    os.rename(tmp, path)


def serve_until_signalled(rx, port_file, ports):
    """Say where rx listens (ports: "PORT", or "PORT CONTROL_PORT") in port_file, atomically,
    or on stdout; serve until SIGTERM or SIGINT, then stop rx. Returns the exit status, 0."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if port_file:
        _write_port_file(port_file, ports)
    else:
        print(ports, flush=True)
    while not stop.wait(1.0):
        pass
    rx.stop()
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proto-dir", default=os.environ.get("PROTO_DIR"))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-status", type=int, default=503)
    ap.add_argument("--retry-after")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    if not args.proto_dir:
        ap.error("--proto-dir or PROTO_DIR is required")

    rx = Receiver(args.proto_dir, args.port, args.verbose).start()
    if args.fail_first:
        rx.fail_next(args.fail_first, args.fail_status, args.retry_after)
    return serve_until_signalled(rx, args.port_file, "%d" % rx.port)


if __name__ == "__main__":
    sys.exit(main())
