#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A real OTLP/HTTP trace and metrics receiver for sidespan's tests (stdlib + protobuf only).

At start it compiles the project's .proto files with
``protoc --python_out=<tmpdir> -I PROTO_DIR PROTO_DIR/*.proto`` and imports
the modules (``trace_service_pb2`` and ``metrics_service_pb2`` are the ones this receiver decodes
with). It serves ``POST /v1/traces`` and any path ending in
``/v1/traces`` (e.g. ``/api/public/otel/v1/traces``) on 127.0.0.1, decodes
every body strictly (gunzip for ``Content-Encoding: gzip``; a body that is not
an ExportTraceServiceRequest is answered 400 and recorded as a decode error)
and answers 200 with a serialized ExportTraceServiceResponse.

``POST /v1/metrics`` (or any path ending in it) is served the same way with
ExportMetricsServiceRequest and ExportMetricsServiceResponse: same encodings,
same strictness, same failures (fail_next and partial_next count every POST,
whichever the signal), its data points flattened into ``points()``.

A body sent as ``Content-Type: application/json`` is OTLP/JSON and is decoded
as strictly (decode_json()): keys are the lowerCamelCase JSON names and
nothing else, trace and span ids lower-case hex of their exact length, other
bytes base64, enums integers, 64-bit integers decimal strings, 32-bit ones
numbers, no nulls, no duplicate keys, at most one member of a oneof. It lands
in the same ExportTraceServiceRequest, so its spans are the same dicts as
protobuf's; the answer is the response as OTLP/JSON, as the specification
says for JSON requests.

With ``tls={"cert": PEM, "key": PEM, "client_ca": PEM or None}`` it serves
HTTPS (url ``https://...``); with client_ca it requires a client certificate
signed by it (mutual TLS). Handshakes that fail are recorded in
``tls_errors``; the client certificate's common name in each request's
``client_cert``.

Module use (e.g. from tests/integration.py in the same directory)::

    from otlp_receiver import Receiver
    rx = Receiver(proto_dir).start()   # proto_dir None: $PROTO_DIR
    rx.port, rx.url                    # url = http://127.0.0.1:<port>/v1/traces
    rx.requests                        # list of request dicts, see below
    rx.spans()                         # accepted spans, flattened to dicts
    rx.points()                        # accepted metric data points, flattened to dicts
    rx.metrics_url                     # http://127.0.0.1:<port>/v1/metrics
    rx.fail_next(n, status, retry_after=None)  # next n POSTs answer status
    rx.hang_next(n)                    # next n POSTs are read and never answered
    rx.partial_next(rejected, message) # next POST answers partial_success
    rx.respond_with(body, content_type)  # successes answer this body (Langfuse's JSON)
    rx.tls_errors                      # failed TLS handshakes, as text
    rx.wait_spans(count, timeout)      # -> bool: at least count spans seen
    rx.wait_points(count, timeout)     # -> bool: at least count data points seen
    rx.stop()

A request dict has: path, headers (dict, lower-case names), content_type,
content_encoding ("" when none), user_agent, body_len (bytes on the wire),
status (what was answered; None for one hung), decode_error (str or None), n_spans,
time, format ("json" or "protobuf"), client_cert (its common name, or None), signal
("traces" or "metrics"), n_points (data points of a metrics request); a hung request also
has closed: when its peer closed the connection (time.time(); None until then, and when
the receiver stopped first).

A hung request is not answered at all: the connection stays open, read and ignored,
until the client gives up and closes it or the receiver stops (a backend that accepts
and never answers). Its spans are not recorded. Failures (fail_next) come first.

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

A data point dict has: resource (attribute dict), scope_name, scope_version,
metric, description, unit, kind ("sum", "gauge", "histogram",
"exponential_histogram" or "summary"), temporality (int, 0 for gauges),
monotonic (bool, sums), attributes (dict), start_time_unix_nano,
time_unix_nano, flags; sums and gauges: value (int for as_int, float for
as_double), value_type ("int" or "double"); histograms: count, sum,
bucket_counts, explicit_bounds, min, max (None when not set).

Process use::

    otlp_receiver.py --port-file F [--port P] [--proto-dir D]
                     [--fail-first N --fail-status 503 --retry-after S]
                     [--tls-cert PEM --tls-key PEM [--client-ca PEM]]

writes its port to F (atomically) when ready and serves, besides the traces
path:

    GET  /_sidespan/spans     recorded spans as JSON (bytes as hex strings)
    GET  /_sidespan/points    recorded metric data points as JSON
    GET  /_sidespan/requests  {"count", "decode_errors", "requests": [...]} as JSON
    GET  /_sidespan/summary   line-based text for C tests:
                              requests=N / accepted=N / decode_errors=N / spans=N,
                              "request status=S encoding=E spans=N path=P" per request
                              (S 0 for a hung one),
                              "header <name>: <value>" per request header,
                              "span name=.. trace_id=.. span_id=.. parent=.. kind=..
                              status=.. service=.." per span, then
                              "attr <span name> <key>=<json value>",
                              "resource <span name> <key>=<json value>",
                              "event <span name> <event name>" lines
    POST /_sidespan/fail?n=N&status=S[&retry_after=X]
    POST /_sidespan/hang?n=N
    POST /_sidespan/partial?rejected=N[&message=M]
    POST /_sidespan/reset     forget requests, spans, points and pending failures

SIGTERM (or SIGINT) exits cleanly with status 0.
"""

import argparse
import base64
import glob
import gzip
import http.server
import importlib
import json
import os
import re
import select
import shutil
import signal
import ssl
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


# ---- metrics ---------------------------------------------------------------------------------

def _number_value(dp):
    """A NumberDataPoint's value and its type ("int", "double", or None when unset)."""
    which = dp.WhichOneof("value")
    if which == "as_int":
        return dp.as_int, "int"
    if which == "as_double":
        return dp.as_double, "double"
    return None, None


def _optional(msg, name):
    return getattr(msg, name) if msg.HasField(name) else None


def flatten_point(base, kind, data, dp):
    """One data point of a metric (base: its resource, scope and metric fields) as a dict."""
    d = dict(base)
    d.update({
        "kind": kind,
        "temporality": int(getattr(data, "aggregation_temporality", 0)),
        "monotonic": bool(getattr(data, "is_monotonic", False)),
        "attributes": kv_dict(dp.attributes),
        "start_time_unix_nano": dp.start_time_unix_nano,
        "time_unix_nano": dp.time_unix_nano,
        "flags": dp.flags,
    })
    if kind in ("sum", "gauge"):
        d["value"], d["value_type"] = _number_value(dp)
    elif kind in ("histogram", "exponential_histogram"):
        d.update({"count": dp.count, "sum": _optional(dp, "sum"),
                  "min": _optional(dp, "min"), "max": _optional(dp, "max")})
        if kind == "histogram":
            d["bucket_counts"] = list(dp.bucket_counts)
            d["explicit_bounds"] = list(dp.explicit_bounds)
    else:
        d.update({"count": dp.count, "sum": dp.sum})
    return d


def flatten_metrics_request(req):
    """Every data point of an ExportMetricsServiceRequest, flattened (module docstring)."""
    points = []
    for rm in req.resource_metrics:
        resource = kv_dict(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind is None:
                    continue
                base = {"resource": resource, "scope_name": sm.scope.name,
                        "scope_version": sm.scope.version, "metric": m.name,
                        "description": m.description, "unit": m.unit}
                data = getattr(m, kind)
                points.extend(flatten_point(base, kind, data, dp) for dp in data.data_points)
    return points


# Each signal's request and response class names in its pb module, and the response's
# rejected-count field.
_SIGNALS = {
    "traces": ("ExportTraceServiceRequest", "ExportTraceServiceResponse", "rejected_spans"),
    "metrics": ("ExportMetricsServiceRequest", "ExportMetricsServiceResponse",
                "rejected_data_points"),
}


def _json_default(o):
    if isinstance(o, (bytes, bytearray)):
        return o.hex()
    raise TypeError("not JSON serializable: %r" % type(o))


def to_json(obj):
    return json.dumps(obj, default=_json_default, sort_keys=True)


# ---- OTLP/JSON -------------------------------------------------------------------------------

# Protobuf field types by how OTLP/JSON writes them (FieldDescriptor.TYPE_*).
_INT64_TYPES = {3, 4, 6, 16, 18}   # int64, uint64, fixed64, sfixed64, sint64: decimal strings
_INT32_TYPES = {5, 7, 13, 15, 17}  # int32, fixed32, uint32, sfixed32, sint32: numbers
_UNSIGNED = {4, 6, 7, 13}
_TYPE_DOUBLE, _TYPE_FLOAT, _TYPE_BOOL, _TYPE_STRING = 1, 2, 8, 9
_TYPE_MESSAGE, _TYPE_BYTES, _TYPE_ENUM = 11, 12, 14
_LABEL_REPEATED = 3
# The ids OTLP/JSON writes as hex, not base64: field name -> bytes, in Span and Span.Link.
_HEX_IDS = {"trace_id": 16, "span_id": 8, "parent_span_id": 8}
_HEX_ID_MESSAGES = {"opentelemetry.proto.trace.v1.Span", "opentelemetry.proto.trace.v1.Span.Link",
                    "opentelemetry.proto.metrics.v1.Exemplar"}


class JsonDecodeError(ValueError):
    """A body that is not OTLP/JSON; the text says where (a path of keys) and why."""


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise JsonDecodeError("duplicate key(s) %s" % sorted(dup))
    return dict(pairs)


def _no_constant(name):
    raise JsonDecodeError("%s is not JSON" % name)


def _json_int(v, where, signed, bits):
    if type(v) is not int:
        raise JsonDecodeError("%s: %r is not an integer number" % (where, v))
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= v <= hi:
        raise JsonDecodeError("%s: %d out of range" % (where, v))
    return v


def _json_scalar(msg_name, fd, v, where):
    """One JSON value of field fd (of message msg_name) as the python value protobuf takes."""
    t = fd.type
    if t == _TYPE_BYTES:
        if not isinstance(v, str):
            raise JsonDecodeError("%s: bytes must be a string, not %r" % (where, v))
        if msg_name in _HEX_ID_MESSAGES and fd.name in _HEX_IDS:
            n = _HEX_IDS[fd.name]
            if v == "" and fd.name == "parent_span_id":
                return b""
            if not re.fullmatch("[0-9a-f]{%d}" % (2 * n), v):
                raise JsonDecodeError("%s: %r is not %d bytes of lower-case hex" % (where, v, n))
            return bytes.fromhex(v)
        try:
            return base64.b64decode(v, validate=True)
        except ValueError as e:
            raise JsonDecodeError("%s: %r is not base64: %s" % (where, v, e)) from None
    if t in _INT64_TYPES:
        if not isinstance(v, str) or not re.fullmatch(r"-?(0|[1-9][0-9]*)", v):
            raise JsonDecodeError("%s: a 64-bit integer must be a decimal string, not %r"
                                  % (where, v))
        return _json_int(int(v), where, t not in _UNSIGNED, 64)
    if t in _INT32_TYPES:
        return _json_int(v, where, t not in _UNSIGNED, 32)
    if t == _TYPE_ENUM:
        _json_int(v, where, True, 32)
        if fd.enum_type.values_by_number.get(v) is None:
            raise JsonDecodeError("%s: %d is no value of %s" % (where, v, fd.enum_type.name))
        return v
    if t == _TYPE_BOOL:
        if type(v) is not bool:
            raise JsonDecodeError("%s: %r is not true or false" % (where, v))
        return v
    if t in (_TYPE_DOUBLE, _TYPE_FLOAT):
        if v in ("NaN", "Infinity", "-Infinity"):
            return float(v.replace("Infinity", "inf"))
        if type(v) not in (int, float):
            raise JsonDecodeError("%s: %r is not a number" % (where, v))
        return float(v)
    if t == _TYPE_STRING:
        if not isinstance(v, str):
            raise JsonDecodeError("%s: %r is not a string" % (where, v))
        return v
    raise JsonDecodeError("%s: field type %d is not in OTLP" % (where, t))


def _json_field(msg, fd, v, where):
    name = msg.DESCRIPTOR.full_name
    if fd.label == _LABEL_REPEATED:
        if not isinstance(v, list):
            raise JsonDecodeError("%s: a repeated field must be a list" % where)
        box = getattr(msg, fd.name)
        for i, item in enumerate(v):
            at = "%s[%d]" % (where, i)
            if fd.type == _TYPE_MESSAGE:
                _json_message(box.add(), item, at)
            else:
                box.append(_json_scalar(name, fd, item, at))
    elif fd.type == _TYPE_MESSAGE:
        sub = getattr(msg, fd.name)
        sub.SetInParent()  # {"arrayValue": {}} is an empty array, still set
        _json_message(sub, v, where)
    else:
        setattr(msg, fd.name, _json_scalar(name, fd, v, where))


def _json_message(msg, obj, where):
    if not isinstance(obj, dict):
        raise JsonDecodeError("%s: expected an object, not %r" % (where or "body", obj))
    fields = msg.DESCRIPTOR.fields
    by_json = {fd.json_name: fd for fd in fields}
    proto_names = {fd.name for fd in fields}
    oneofs = {}
    for key, v in obj.items():
        at = "%s.%s" % (where, key) if where else key
        fd = by_json.get(key)
        if fd is None:
            hint = " (the protobuf name: OTLP/JSON keys are lowerCamelCase)" \
                if key in proto_names else ""
            raise JsonDecodeError("%s: unknown key in %s%s" % (at, msg.DESCRIPTOR.name, hint))
        if v is None:
            raise JsonDecodeError("%s: null" % at)
        if fd.containing_oneof is not None:
            other = oneofs.setdefault(fd.containing_oneof.name, key)
            if other != key:
                raise JsonDecodeError("%s: %s and %s of one oneof" % (at, other, key))
        _json_field(msg, fd, v, at)


def decode_json(pb, raw, message="ExportTraceServiceRequest"):
    """raw (bytes of OTLP/JSON) as pb.<message> (the trace request unless told); JsonDecodeError
    when it is not OTLP/JSON to the letter (module docstring)."""
    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates,
                         parse_constant=_no_constant)
    except UnicodeDecodeError as e:
        raise JsonDecodeError("not UTF-8: %s" % e) from None
    except json.JSONDecodeError as e:
        raise JsonDecodeError("not JSON: %s" % e) from None
    msg = getattr(pb, message)()
    _json_message(msg, obj, "")
    return msg


def response_json(resp):
    """An Export*ServiceResponse as OTLP/JSON bytes: {} or {"partialSuccess": {...}}, whose
    field 1 is rejectedSpans or rejectedDataPoints by the signal."""
    out = {}
    if resp.HasField("partial_success"):
        ps = resp.partial_success
        rejected = ps.DESCRIPTOR.fields_by_number[1]
        out["partialSuccess"] = {rejected.json_name: str(getattr(ps, rejected.name)),
                                 "errorMessage": ps.error_message}
    return json.dumps(out).encode()


def _is_json(content_type):
    return content_type.split(";")[0].strip().lower() == "application/json"


class _State:
    """What the receiver saw and the failures it was told to answer; guarded by cond."""

    def __init__(self):
        self.cond = threading.Condition()
        self.requests = []
        self.spans = []
        self.points = []
        self.fail_n = 0
        self.fail_status = 503
        self.fail_retry_after = None
        self.hang_n = 0
        self.stopping = False
        self.partial = None  # (rejected, message)
        self.respond = None  # (body, content type) of every success, or None: OTLP's
        self.tls_errors = []

    def reset(self):
        with self.cond:
            self.requests.clear()
            self.spans.clear()
            self.points.clear()
            self.fail_n = 0
            self.hang_n = 0
            self.partial = None
            self.respond = None
            self.tls_errors.clear()


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
            elif path == "/_sidespan/points":
                body = to_json(st.points)
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
            elif path == "/_sidespan/hang":
                st.hang_n = int(q.get("n", ["1"])[0])
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
        if url.path.endswith("/v1/traces"):
            self._export(url.path, raw)
        elif url.path.endswith("/v1/metrics"):
            self._export_metrics(url.path, raw)
        else:
            self._reply(404, b"not found\n", "text/plain")

    def _decode(self, raw, signal="traces"):
        """(Export<signal>ServiceRequest, None) or (None, error text)."""
        enc = self.headers.get("Content-Encoding", "").strip().lower()
        try:
            if enc == "gzip":
                raw = gzip.decompress(raw)
            elif enc not in ("", "identity"):
                return None, "unsupported Content-Encoding %r" % enc
            pb, name = self.server.sidespan_pbs[signal], _SIGNALS[signal][0]
            if _is_json(self.headers.get("Content-Type", "")):
                return decode_json(pb, raw, name), None
            msg = getattr(pb, name)()
            msg.ParseFromString(raw)
            return msg, None
        except Exception as e:  # gzip, zlib and protobuf DecodeError alike: a decode error
            return None, "%s: %s" % (type(e).__name__, e)

    def _client_cert(self):
        """The common name of the TLS client's certificate, or None."""
        if not isinstance(self.connection, ssl.SSLSocket):
            return None
        cert = self.connection.getpeercert() or {}
        for rdn in cert.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

    def _export(self, path, raw):
        self._export_signal(path, raw, "traces")

    def _export_metrics(self, path, raw):
        self._export_signal(path, raw, "metrics")

    def _export_signal(self, path, raw, signal):
        msg, err = self._decode(raw, signal)
        spans = flatten_request(msg) if msg is not None and signal == "traces" else []
        points = flatten_metrics_request(msg) if msg is not None and signal == "metrics" else []
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
            "format": "json" if _is_json(self.headers.get("Content-Type", "")) else "protobuf",
            "client_cert": self._client_cert(),
            "signal": signal,
            "n_points": len(points),
        }
        extra, partial, respond = [], None, None
        with st.cond:
            if err is not None:
                status = 400
            elif st.fail_n > 0:
                st.fail_n -= 1
                status = st.fail_status
                if st.fail_retry_after is not None:
                    extra.append(("Retry-After", str(st.fail_retry_after)))
            elif st.hang_n > 0:
                st.hang_n -= 1
                status = None
                rec["closed"] = None
            else:
                status = 200
                partial, st.partial = st.partial, None
                respond = st.respond
                st.spans.extend(spans)
                st.points.extend(points)
            rec["status"] = status
            st.requests.append(rec)
            st.cond.notify_all()
        if status is None:
            self._hang(rec)
        elif status == 200 and respond is not None:
            self._reply(200, respond[0], respond[1])
        elif status == 200:
            _, resp_name, rejected = _SIGNALS[signal]
            resp = getattr(self.server.sidespan_pbs[signal], resp_name)()
            if partial is not None:
                setattr(resp.partial_success, rejected, partial[0])
                resp.partial_success.error_message = partial[1]
            if rec["format"] == "json":
                self._reply(200, response_json(resp), "application/json")
            else:
                self._reply(200, resp.SerializeToString())
        elif err is not None:
            self._reply(400, ("cannot decode request: %s\n" % err).encode(), "text/plain")
        else:
            self._reply(status, b"test receiver says %d\n" % status, "text/plain", extra)

    def _hang(self, rec):
        """Answer nothing: read and ignore until the peer closes or the receiver stops."""
        st = self.state
        self.close_connection = True
        while not st.stopping:
            r, _, _ = select.select([self.connection], [], [], 0.05)
            try:
                if r and not self.connection.recv(65536):
                    break
            except OSError:
                break
        else:
            return  # the receiver stopped first: closed stays None
        with st.cond:
            rec["closed"] = time.time()
            st.cond.notify_all()


def summary(requests, spans):
    ok = sum(1 for r in requests if 200 <= (r["status"] or 0) < 300)
    lines = ["requests=%d" % len(requests), "accepted=%d" % ok,
             "decode_errors=%d" % sum(1 for r in requests if r["decode_error"]),
             "spans=%d" % len(spans)]
    for r in requests:
        lines.append("request status=%d encoding=%s spans=%d path=%s"
                     % (r["status"] or 0, r["content_encoding"] or "identity", r["n_spans"],
                        r["path"]))
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


class _Server(http.server.ThreadingHTTPServer):
    """The HTTP server; with an SSL context, each connection's TLS handshake happens in its
    own thread, so a client that never finishes one holds up no other."""

    daemon_threads = True
    sidespan_tls = None

    def finish_request(self, request, client_address):
        if self.sidespan_tls is None:
            super().finish_request(request, client_address)
            return
        try:
            request.settimeout(30)  # a handshake that never ends must not keep the thread
            tls = self.sidespan_tls.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError) as e:
            with self.sidespan_state.cond:
                self.sidespan_state.tls_errors.append("%s: %s" % (type(e).__name__, e))
                self.sidespan_state.cond.notify_all()
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


def _tls_context(tls):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls["cert"], tls["key"])
    if tls.get("client_ca"):
        ctx.load_verify_locations(tls["client_ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class Receiver:
    """An OTLP/HTTP receiver on 127.0.0.1 serving from a background thread."""

    def __init__(self, proto_dir=None, port=0, verbose=False, tls=None):
        proto_dir = proto_dir or os.environ.get("PROTO_DIR")
        if not proto_dir:
            raise RuntimeError("no proto directory: pass proto_dir or set PROTO_DIR")
        self._pb = load_protos(proto_dir)
        self._metrics_pb = load_protos(proto_dir, "metrics_service_pb2")
        self._want_port = port
        self._verbose = verbose
        self._tls = tls
        self._state = _State()
        self._server = None
        self._thread = None
        self.port = None
        self.url = None
        self.metrics_url = None

    def start(self):
        handler = type("Handler", (_Handler,), {"verbose": self._verbose})
        srv = _Server(("127.0.0.1", self._want_port), handler)
        self._state.stopping = False
        srv.sidespan_state = self._state
        srv.sidespan_pb = self._pb
        srv.sidespan_pbs = {"traces": self._pb, "metrics": self._metrics_pb}
        srv.sidespan_tls = _tls_context(self._tls) if self._tls else None
        self._server = srv
        self.port = srv.server_address[1]
        self.url = "%s://127.0.0.1:%d/v1/traces" % ("https" if self._tls else "http", self.port)
        self.metrics_url = self.url[:-len("traces")] + "metrics"
        self._thread = threading.Thread(target=srv.serve_forever, name="otlp-receiver",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._state.stopping = True  # hung requests let go
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

    def points(self):
        with self._state.cond:
            return list(self._state.points)

    def fail_next(self, n, status, retry_after=None):
        with self._state.cond:
            self._state.fail_n = n
            self._state.fail_status = status
            self._state.fail_retry_after = retry_after

    def hang_next(self, n):
        """Read the next n trace requests and never answer them (0: answer again)."""
        with self._state.cond:
            self._state.hang_n = n

    def partial_next(self, rejected, message):
        with self._state.cond:
            self._state.partial = (rejected, message)

    def respond_with(self, body, content_type):
        """Answer every later success with body (bytes) instead of an OTLP response, as
        Langfuse answers JSON whatever was sent; None for OTLP's again."""
        with self._state.cond:
            self._state.respond = None if body is None else (body, content_type)

    @property
    def tls_errors(self):
        with self._state.cond:
            return list(self._state.tls_errors)

    def reset(self):
        self._state.reset()

    def wait_spans(self, count, timeout):
        return self._wait("spans", count, timeout)

    def wait_points(self, count, timeout):
        return self._wait("points", count, timeout)

    def _wait(self, what, count, timeout):
        """True once the state's list named what holds at least count entries."""
        deadline = time.monotonic() + timeout
        with self._state.cond:
            while len(getattr(self._state, what)) < count:
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
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate")
    ap.add_argument("--tls-key", help="and this PEM key")
    ap.add_argument("--client-ca", help="require client certificates signed by this PEM CA")
    args = ap.parse_args(argv)
    if not args.proto_dir:
        ap.error("--proto-dir or PROTO_DIR is required")
    if bool(args.tls_cert) != bool(args.tls_key) or (args.client_ca and not args.tls_cert):
        ap.error("--tls-cert and --tls-key go together, and --client-ca needs them")
    tls = {"cert": args.tls_cert, "key": args.tls_key,
           "client_ca": args.client_ca} if args.tls_cert else None

    rx = Receiver(args.proto_dir, args.port, args.verbose, tls).start()
    if args.fail_first:
        rx.fail_next(args.fail_first, args.fail_status, args.retry_after)
    return serve_until_signalled(rx, args.port_file, "%d" % rx.port)


if __name__ == "__main__":
    sys.exit(main())
