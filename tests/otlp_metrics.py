#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The OTLP metrics encoder against the real receivers (issue 13): the bytes
ss_otlp_metrics_encode writes for tests/fixture-metrics.h's snapshot
(tests/otlp-metrics-dump) must decode in tests/otlp_receiver.py over
OTLP/HTTP (protobuf, gzip, and as OTLP/JSON through the receiver's strict
decoder) and in tests/otlp_grpc_receiver.py over gRPC, into exactly the
data points the snapshot holds. Also the receivers' metrics paths
themselves: failures, partial_success, decode errors, and traces untouched.

Run by meson with OTLP_METRICS_DUMP and PROTO_DIR set (suite integration,
test otlp-metrics-receivers).
"""

import gzip
import json
import os
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

import grpc
from google.protobuf import json_format

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import otlp_grpc_receiver  # noqa: E402
from otlp_receiver import Receiver, load_protos  # noqa: E402

START, TIME = 1700000000000000000, 1700000060000000000
RESOURCE = {"service.name": "sidespand", "service.version": "0.1.0", "host.name": "build-host"}
MODEL = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"}


def _point(metric, description, unit, kind, temporality, monotonic, attributes, start=START,
           **values):
    d = {"resource": RESOURCE, "scope_name": "sidespand", "scope_version": "0.1.0",
         "metric": metric, "description": description, "unit": unit, "kind": kind,
         "temporality": temporality, "monotonic": monotonic, "attributes": attributes,
         "start_time_unix_nano": start, "time_unix_nano": TIME, "flags": 0}
    d.update(values)
    return d


# fixture-metrics.h's snapshot, as the receivers flatten it (cumulative: 2).
EXPECTED = [
    _point("sidespan.spans.exported", "Spans handed to an exporter", "{span}", "sum", 2, True,
           {"exporter": "otlp"}, value=42, value_type="int"),
    _point("sidespan.spans.exported", "Spans handed to an exporter", "{span}", "sum", 2, True,
           {"exporter": "file", "format": "json"}, value=2**53 - 1, value_type="int"),
    _point("gen_ai.client.cost", "Cost of model calls", "USD", "sum", 2, True, MODEL,
           value=0.125, value_type="double"),
    _point("sidespan.traces.open", "", "{trace}", "sum", 2, False, {}, value=-3,
           value_type="int"),
    _point("sidespan.spool.fill", "Share of the spool in use", "1", "gauge", 0, False,
           {"spool": ""}, start=0, value=0.5, value_type="double"),
    _point("gen_ai.client.operation.duration", "Model call duration", "s", "histogram", 2,
           False, MODEL, count=5, sum=7.5, min=0.05, max=4.0, bucket_counts=[1, 2, 2, 0],
           explicit_bounds=[0.1, 1.0, 10.0]),
    _point("gen_ai.client.operation.duration", "Model call duration", "s", "histogram", 2,
           False, {"exporter": "otlp"}, count=0, sum=0.0, min=None, max=None,
           bucket_counts=[0, 0, 0, 0], explicit_bounds=[0.1, 1.0, 10.0]),
]


def dump():
    """The encoder's bytes for the fixture snapshot."""
    return subprocess.run([os.environ["OTLP_METRICS_DUMP"]], check=True, capture_output=True,
                          timeout=30).stdout


def post(url, body, headers):
    """(status, body) of a POST; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


PROTOBUF = {"Content-Type": "application/x-protobuf"}


class HttpReceiver(unittest.TestCase):
    def setUp(self):
        self.pb = load_protos(os.environ["PROTO_DIR"], "metrics_service_pb2")
        self.rx = Receiver().start()
        self.body = dump()

    def tearDown(self):
        self.rx.stop()

    def response(self, body):
        resp = self.pb.ExportMetricsServiceResponse()
        resp.ParseFromString(body)
        return resp

    def test_protobuf(self):
        status, body = post(self.rx.metrics_url, self.body, PROTOBUF)
        self.assertEqual(status, 200, body)
        self.assertFalse(self.response(body).HasField("partial_success"))
        self.assertEqual(self.rx.points(), EXPECTED)
        req = self.rx.requests[-1]
        self.assertEqual((req["signal"], req["n_points"], req["n_spans"], req["path"]),
                         ("metrics", len(EXPECTED), 0, "/v1/metrics"))
        self.assertEqual(self.rx.spans(), [])

    def test_gzip_and_a_prefixed_path(self):
        url = self.rx.metrics_url.replace("/v1/metrics", "/api/otel/v1/metrics")
        status, body = post(url, gzip.compress(self.body),
                            dict(PROTOBUF, **{"Content-Encoding": "gzip"}))
        self.assertEqual(status, 200, body)
        self.assertTrue(self.rx.wait_points(len(EXPECTED), 5))
        self.assertEqual(self.rx.points(), EXPECTED)

    def test_json(self):
        msg = self.pb.ExportMetricsServiceRequest()
        msg.ParseFromString(self.body)
        text = json_format.MessageToJson(msg, use_integers_for_enums=True)
        status, body = post(self.rx.metrics_url, text.encode(),
                            {"Content-Type": "application/json"})
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), {})
        self.assertEqual(self.rx.requests[-1]["format"], "json")
        self.assertEqual(self.rx.points(), EXPECTED)

    def test_fail_next_then_partial_success(self):
        self.rx.fail_next(1, 503, retry_after=2)
        status, _ = post(self.rx.metrics_url, self.body, PROTOBUF)
        self.assertEqual(status, 503)
        self.assertEqual(self.rx.points(), [])  # a failed request is sent again: not kept
        self.rx.partial_next(2, "two refused")
        status, body = post(self.rx.metrics_url, self.body, PROTOBUF)
        self.assertEqual(status, 200)
        ps = self.response(body).partial_success
        self.assertEqual((ps.rejected_data_points, ps.error_message), (2, "two refused"))
        self.assertEqual(len(self.rx.points()), len(EXPECTED))
        self.rx.partial_next(1, "json too")
        status, body = post(self.rx.metrics_url, json_format.MessageToJson(
            self.pb.ExportMetricsServiceRequest()).encode(), {"Content-Type": "application/json"})
        self.assertEqual(json.loads(body), {"partialSuccess": {"rejectedDataPoints": "1",
                                                               "errorMessage": "json too"}})

    def test_decode_error_and_reset(self):
        status, body = post(self.rx.metrics_url, b"\x0a\xff\xff", PROTOBUF)
        self.assertEqual(status, 400, body)
        self.assertIsNotNone(self.rx.requests[-1]["decode_error"])
        post(self.rx.metrics_url, self.body, PROTOBUF)
        self.assertEqual(len(self.rx.points()), len(EXPECTED))
        self.rx.reset()
        self.assertEqual((self.rx.points(), self.rx.requests), ([], []))

    def test_points_over_the_control_port(self):
        post(self.rx.metrics_url, self.body, PROTOBUF)
        url = "http://127.0.0.1:%d/_sidespan/points" % self.rx.port
        with urllib.request.urlopen(url, timeout=30) as r:
            self.assertEqual(json.loads(r.read()), EXPECTED)


class GrpcReceiver(unittest.TestCase):
    def setUp(self):
        self.pb = load_protos(os.environ["PROTO_DIR"], "metrics_service_pb2")
        self.rx = otlp_grpc_receiver.Receiver().start()
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.rx.port)
        self.export = self.channel.unary_unary(
            "/%s/Export" % otlp_grpc_receiver.METRICS_SERVICE)
        self.body = dump()

    def tearDown(self):
        self.channel.close()
        self.rx.stop()

    def test_export(self):
        resp = self.pb.ExportMetricsServiceResponse()
        resp.ParseFromString(self.export(self.body, timeout=30))
        self.assertFalse(resp.HasField("partial_success"))
        with self.rx.state.cond:
            self.assertEqual(self.rx.state.points, EXPECTED)
            self.assertEqual(self.rx.state.spans, [])
            rec = self.rx.state.requests[-1]
        self.assertEqual((rec["signal"], rec["n_points"], rec["code"]),
                         ("metrics", len(EXPECTED), 0))

    def test_gzip_failure_and_partial(self):
        with self.rx.state.cond:
            self.rx.state.fail_n = 1
        with self.assertRaises(grpc.RpcError) as cm:
            self.export(self.body, timeout=30)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        with self.rx.state.cond:
            self.assertEqual(self.rx.state.points, [])
            self.rx.state.partial = (3, "three")
        resp = self.pb.ExportMetricsServiceResponse()
        resp.ParseFromString(self.export(gzip.compress(self.body), timeout=30))
        self.assertEqual(resp.partial_success.rejected_data_points, 3)
        with self.rx.state.cond:
            self.assertEqual(self.rx.state.points, EXPECTED)
            self.assertEqual(self.rx.state.requests[-1]["encoding"], "gzip")


if __name__ == "__main__":
    unittest.main()
