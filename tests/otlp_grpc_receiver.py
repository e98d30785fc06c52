#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A real OTLP/gRPC trace and metrics receiver for sidespan's tests (grpcio + protobuf).

It serves the unary ``/opentelemetry.proto.collector.trace.v1.TraceService/Export``
and ``/opentelemetry.proto.collector.metrics.v1.MetricsService/Export`` on
127.0.0.1 with grpcio, plaintext, TLS or mutual TLS, and decodes every
request strictly with the classes protoc generates from the project's
proto/ (``otlp_receiver.load_protos``): a message that is not an
Export*ServiceRequest of its service is answered INVALID_ARGUMENT and counted as a
decode error. The server does not decompress (``grpc.per_message_decompression``
is off), so the receiver sees the message as it travelled: gzip is
recognised by its magic (an ExportTraceServiceRequest starts with 0x0a),
recorded as ``encoding=gzip`` and inflated here.

It records per call the metadata (lower-case keys, grpc's own included as
grpcio shows them), the encoding, the bytes on the wire, the client
certificate's common name under mTLS, the number of calls being served at
the same moment (``max_concurrent`` in the summary), and the spans (or, for
MetricsService, the data points: ``state.points``, as otlp_receiver.py
flattens them) of the calls it answered OK; failures and partial_success
apply to the next calls of either service. It can be told to fail the next N calls with a status
code, optionally with a google.rpc.RetryInfo in grpc-status-details-bin, to
answer a partial_success, and to hold each call for a while (so that calls
overlap).

Process use::

    otlp_grpc_receiver.py --port-file F [--port P] [--proto-dir D]
                          [--tls-cert F --tls-key F [--client-ca F]]

writes "<grpc port> <control port>\\n" to F (atomically) when ready. The
control port is HTTP on 127.0.0.1 (otlp_receiver.py's handler):

    GET  /_sidespan/spans     recorded spans as JSON (bytes as hex strings)
    GET  /_sidespan/points    recorded metric data points as JSON
    GET  /_sidespan/requests  {"count", "decode_errors", "requests": [...]} as JSON
    GET  /_sidespan/summary   requests=N / accepted=N / decode_errors=N / spans=N /
                              max_concurrent=N, then per call
                              "request code=C encoding=E spans=N client=CN|-" and
                              "metadata <key>: <value>" lines, then otlp_receiver.py's
                              span, attr, resource and event lines
    POST /_sidespan/fail?n=N&code=C[&retry_delay_ms=D][&message=M]
    POST /_sidespan/partial?rejected=N[&message=M]
    POST /_sidespan/delay?ms=D  hold every call D ms before answering
    POST /_sidespan/reset       forget calls, spans, failures and the delay

SIGTERM (or SIGINT) exits cleanly with status 0.
"""

import argparse
import concurrent.futures
import gzip
import http.server
import os
import sys
import threading
import time
import urllib.parse

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import otlp_receiver  # noqa: E402  (beside this file)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
METRICS_SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
METHOD = "Export"
MAX_MESSAGE = 80 << 20  # above OTLP's recommended 64 MiB request maximum
RETRY_INFO_URL = "type.googleapis.com/google.rpc.RetryInfo"


class _State(otlp_receiver._State):
    """The HTTP receiver's state, failures as gRPC codes, and what concurrency was seen."""

    def __init__(self):
        super().__init__()
        self.fail_code = grpc.StatusCode.UNAVAILABLE
        self.fail_retry_delay_ms = None
        self.fail_message = "test receiver fails this call"
        self.delay_ms = 0
        self.concurrent = 0
        self.max_concurrent = 0

    def reset(self):
        super().reset()
        with self.cond:
            self.delay_ms = 0
            self.max_concurrent = 0


_CODES = {c.value[0]: c for c in grpc.StatusCode}


def _summary(st):
    ok = sum(1 for r in st.requests if r["code"] == 0)
    lines = ["requests=%d" % len(st.requests), "accepted=%d" % ok,
             "decode_errors=%d" % sum(1 for r in st.requests if r["decode_error"]),
             "spans=%d" % len(st.spans), "max_concurrent=%d" % st.max_concurrent]
    for r in st.requests:
        lines.append("request code=%d encoding=%s spans=%d client=%s"
                     % (r["code"], r["encoding"], r["n_spans"], r["client"] or "-"))
        for k, v in r["metadata"]:
            lines.append("metadata %s: %s" % (k, v))
    return "\n".join(lines + otlp_receiver.span_lines(st.spans)) + "\n"


class _Control(otlp_receiver._Handler):
    """The control port: otlp_receiver.py's handler with gRPC failures, and no traces path."""

    server_version = "sidespan-otlp-grpc-receiver"

    def summary(self, st):
        return _summary(st)

    def _export(self, path, raw):
        self._reply(404, b"this receiver speaks gRPC on its other port\n", "text/plain")

    def _export_metrics(self, path, raw):
        self._export(path, raw)

    def _control(self, path, query):
        q = urllib.parse.parse_qs(query)
        st = self.state
        with st.cond:
            if path == "/_sidespan/fail":
                st.fail_n = int(q.get("n", ["1"])[0])
                st.fail_code = _CODES[int(q.get("code", ["14"])[0])]
                delay = q.get("retry_delay_ms", [None])[0]
                st.fail_retry_delay_ms = int(delay) if delay is not None else None
                st.fail_message = q.get("message", [st.fail_message])[0]
            elif path == "/_sidespan/delay":
                st.delay_ms = int(q.get("ms", ["0"])[0])
            else:
                return super()._control(path, query)
        return True


class Receiver:
    """An OTLP/gRPC receiver on 127.0.0.1 and its HTTP control port, from background threads."""

    def __init__(self, proto_dir=None, port=0, tls=None, verbose=False):
        """tls: None, or (cert_pem, key_pem, client_ca_pem or None) as bytes."""
        proto_dir = proto_dir or os.environ.get("PROTO_DIR")
        if not proto_dir:
            raise RuntimeError("no proto directory: pass proto_dir or set PROTO_DIR")
        self._svc = otlp_receiver.load_protos(proto_dir, "trace_service_pb2")
        self._pbs = {"traces": self._svc,
                     "metrics": otlp_receiver.load_protos(proto_dir, "metrics_service_pb2")}
        self._status = otlp_receiver.load_protos(proto_dir, "status_pb2")
        self._details = otlp_receiver.load_protos(proto_dir, "error_details_pb2")
        self._want_port = port
        self._tls = tls
        self._verbose = verbose
        self.state = _State()
        self._server = None
        self._control = None
        self.port = None
        self.control_port = None

    # ---- the Export call ----

    def _decode(self, raw, signal):
        """(Export<signal>ServiceRequest, encoding, None) or (None, encoding, error text)."""
        enc = "identity"
        try:
            if raw[:2] == b"\x1f\x8b":
                enc = "gzip"
                raw = gzip.decompress(raw)
            msg = getattr(self._pbs[signal], otlp_receiver._SIGNALS[signal][0])()
            msg.ParseFromString(raw)
            return msg, enc, None
        except Exception as e:  # gzip, zlib and protobuf DecodeError alike: a decode error
            return None, enc, "%s: %s" % (type(e).__name__, e)

    def _record(self, context, raw, signal):
        msg, enc, err = self._decode(raw, signal)
        auth = context.auth_context() or {}
        cn = auth.get("x509_common_name", [b""])[0].decode(errors="replace")
        return msg, {
            "metadata": [(k.lower(), v if isinstance(v, str) else v.hex())
                         for k, v in context.invocation_metadata()],
            "encoding": enc,
            "wire_len": len(raw),
            "client": cn,
            "decode_error": err,
            "n_spans": 0,
            "time": time.time(),
            "signal": signal,
            "n_points": 0,
        }

    def _failure(self, context, st):
        """Fail this call as told (st.cond held): trailers first, then the status."""
        if st.fail_retry_delay_ms is not None:
            ms = st.fail_retry_delay_ms
            info = self._details.RetryInfo()
            info.retry_delay.seconds = ms // 1000
            info.retry_delay.nanos = (ms % 1000) * 1000000
            status = self._status.Status(code=st.fail_code.value[0], message=st.fail_message)
            any_ = status.details.add()
            any_.type_url = RETRY_INFO_URL
            any_.value = info.SerializeToString()
            context.set_trailing_metadata((("grpc-status-details-bin",
                                            status.SerializeToString()),))
        return st.fail_code, st.fail_message

    def _answer(self, msg, rec, context, signal):
        """The code and details to answer, or (OK, response bytes); records the call."""
        st = self.state
        spans, points = [], []
        if msg is not None and signal == "traces":
            spans = otlp_receiver.flatten_request(msg)
        elif msg is not None:
            points = otlp_receiver.flatten_metrics_request(msg)
        rec["n_spans"] = len(spans)
        rec["n_points"] = len(points)
        with st.cond:
            if rec["decode_error"] is not None:
                code, text = grpc.StatusCode.INVALID_ARGUMENT, rec["decode_error"]
            elif st.fail_n > 0:
                st.fail_n -= 1
                code, text = self._failure(context, st)
            else:
                code, text = grpc.StatusCode.OK, None
                partial, st.partial = st.partial, None
                st.spans.extend(spans)
                st.points.extend(points)
            rec["code"] = code.value[0]
            st.requests.append(rec)
            st.cond.notify_all()
        if code != grpc.StatusCode.OK:
            return code, text
        _, resp_name, rejected = otlp_receiver._SIGNALS[signal]
        resp = getattr(self._pbs[signal], resp_name)()
        if partial is not None:
            setattr(resp.partial_success, rejected, partial[0])
            resp.partial_success.error_message = partial[1]
        return code, resp.SerializeToString()

    def _export(self, raw, context):
        return self._export_signal(raw, context, "traces")

    def _export_metrics(self, raw, context):
        return self._export_signal(raw, context, "metrics")

    def _export_signal(self, raw, context, signal):
        st = self.state
        with st.cond:
            st.concurrent += 1
            st.max_concurrent = max(st.max_concurrent, st.concurrent)
            delay = st.delay_ms
        try:
            msg, rec = self._record(context, raw, signal)
            if delay:
                time.sleep(delay / 1000.0)
            code, out = self._answer(msg, rec, context, signal)
        finally:
            with st.cond:
                st.concurrent -= 1
        if code != grpc.StatusCode.OK:
            context.abort(code, out)
        return out

    # ---- serving ----

    def _credentials(self):
        cert, key, client_ca = self._tls
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                           require_client_auth=client_ca is not None)

    def start(self):
        handlers = (
            grpc.method_handlers_generic_handler(
                SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(self._export)}),
            grpc.method_handlers_generic_handler(
                METRICS_SERVICE,
                {METHOD: grpc.unary_unary_rpc_method_handler(self._export_metrics)}),
        )
        self._server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=32),
            handlers=handlers,
            options=(("grpc.per_message_decompression", 0),
                     ("grpc.max_receive_message_length", MAX_MESSAGE),
                     ("grpc.so_reuseport", 0)))
        addr = "127.0.0.1:%d" % self._want_port
        if self._tls:
            self.port = self._server.add_secure_port(addr, self._credentials())
        else:
            self.port = self._server.add_insecure_port(addr)
        if not self.port:
            raise RuntimeError("cannot listen on %s" % addr)
        self._server.start()
        control = type("Control", (_Control,), {"verbose": self._verbose})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), control)
        srv.daemon_threads = True
        srv.sidespan_state = self.state
        self._control = srv
        self.control_port = srv.server_address[1]
        threading.Thread(target=srv.serve_forever, name="otlp-grpc-control", daemon=True).start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.stop(None).wait()
            self._server = None
        if self._control is not None:
            self._control.shutdown()
            self._control.server_close()
            self._control = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proto-dir", default=os.environ.get("PROTO_DIR"))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--client-ca", help="require a client certificate signed by this CA (mTLS)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    if not args.proto_dir:
        ap.error("--proto-dir or PROTO_DIR is required")
    if bool(args.tls_cert) != bool(args.tls_key) or (args.client_ca and not args.tls_cert):
        ap.error("--tls-cert and --tls-key go together, and --client-ca needs them")
    tls = None
    if args.tls_cert:
        tls = (_read(args.tls_cert), _read(args.tls_key),
               _read(args.client_ca) if args.client_ca else None)

    rx = Receiver(args.proto_dir, args.port, tls, args.verbose).start()
    return otlp_receiver.serve_until_signalled(rx, args.port_file,
                                               "%d %d" % (rx.port, rx.control_port))


if __name__ == "__main__":
    sys.exit(main())
