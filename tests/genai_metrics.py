#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""GenAI metrics end to end (issue 13): a real sidespand fed agent runs over its
socket by a raw protocol client, its metrics exported to the real OTLP
receivers (HTTP protobuf and JSON, gRPC), which decode them with the classes
generated from proto/, and scraped from its Prometheus endpoint with curl and
parsed with prometheus_client's parser.

The runs are known, so every figure is computed here by hand and compared:
token and duration histograms (count, sum, buckets), time to first token, runs
by status, cost from the pricing table, tool calls and steps per run. Traces
are sampled at 1 %: the metrics still count every run.

Run by meson (suite integration, test genai-metrics) with SIDESPAND,
SIDESPAN_CLI and PROTO_DIR set.
"""

import bisect
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import otlp_grpc_receiver  # noqa: E402
from itest_lib import (STATUS_ERROR, STATUS_OK, Base, RawClient, by_trace, frame,  # noqa: E402
                       run, span_fields, MSG_SPAN, MSG_SPAN_START, MSG_SPAN_END, KIND_INTERNAL)

RUNS = 200
TOKEN_BOUNDS = [4.0 ** i for i in range(14)]
DURATION_BOUNDS = [0.01 * 2 ** i for i in range(14)]
PRICE_IN, PRICE_OUT = 2.50, 10.00  # data/pricing.tsv: openai gpt-4o, USD per million
MODEL, AGENT, SERVER = "gpt-4o", "planner", "api.openai.com"


def buckets(values, bounds):
    """Explicit-bucket counts: (-inf, b0], (b0, b1], ..., (bn-1, +inf)."""
    counts = [0] * (len(bounds) + 1)
    for v in values:
        counts[bisect.bisect_left(bounds, v)] += 1
    return counts


class Runs:
    """RUNS agent runs, each: agent.run > pipeline.step.model_execution > two chats
    (the first with a first-token event 200 ms in) and a tool call. Every 10th run ends
    in ERROR; every 20th has its second chat fail with error.type=timeout. What the
    metrics must say is kept here as it is sent."""

    def __init__(self, n=RUNS, models=None):
        self.n = n
        self.models = models or [MODEL] * n
        self.input, self.output, self.durations, self.ttft = [], [], [], []
        self.errors, self.costs, self.status = 0, [], {"COMPLETED": 0, "ERROR": 0}

    def send(self, client):
        sec = 1_000_000_000
        for i in range(self.n):
            tid, run_id, step = os.urandom(16), os.urandom(8), os.urandom(8)
            t0 = time.time_ns()
            model = self.models[i]
            client.send(frame(MSG_SPAN_START, tid, run_id, None, "agent.run", KIND_INTERNAL, t0,
                              {"upsonic.agent.name": AGENT, "upsonic.agent.model": model}, {}))
            client.send(frame(MSG_SPAN_START, tid, step, run_id, "pipeline.step.model_execution",
                              KIND_INTERNAL, t0, {}, {}))
            run_cost = 0.0
            for k, (start, end) in enumerate([(0.1, 0.6), (0.7, 2.2)]):
                tin, tout = 100 + i + k, 10 + (i % 7)
                attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                         "gen_ai.request.model": model, "gen_ai.response.model": model,
                         "server.address": SERVER, "gen_ai.usage.input_tokens": tin,
                         "gen_ai.usage.output_tokens": tout}
                events, status = None, STATUS_OK
                s, e = t0 + int(start * sec), t0 + int(end * sec)
                if k == 0:
                    events = [["gen_ai.first_token", s + 200_000_000, {}]]
                    self.ttft.append(0.2)
                if k == 1 and i % 20 == 0:
                    attrs["error.type"] = "timeout"
                    status = STATUS_ERROR
                    self.errors += 1
                client.send(frame(MSG_SPAN, *span_fields(tid, os.urandom(8), step,
                                                         "chat " + model, s, e, attrs, events,
                                                         status)))
                self.input.append(tin)
                self.output.append(tout)
                self.durations.append((e - s) / sec)
                run_cost += (tin * PRICE_IN + tout * PRICE_OUT) / 1e6
            client.send(frame(MSG_SPAN, *span_fields(
                tid, os.urandom(8), step, "tool.execute",
                t0 + int(2.3 * sec), t0 + int(2.4 * sec),
                {"gen_ai.operation.name": "execute_tool", "upsonic.tool.name": "lookup"})))
            client.send(frame(MSG_SPAN_END, step, t0 + int(2.5 * sec), STATUS_OK, None, {}))
            failed = i % 10 == 9
            client.send(frame(MSG_SPAN_END, run_id, t0 + 3 * sec,
                              STATUS_ERROR if failed else STATUS_OK, None, {}))
            self.status["ERROR" if failed else "COMPLETED"] += 1
            self.costs.append(run_cost)


def latest(points, metric):
    """The points of metric from the last collection, keyed by sorted attribute items."""
    mine = [p for p in points if p["metric"] == metric]
    if not mine:
        return {}
    last = max(p["time_unix_nano"] for p in mine)
    return {tuple(sorted(p["attributes"].items())): p for p in mine
            if p["time_unix_nano"] == last}


def total(points, metric, field="value"):
    return sum(p[field] for p in latest(points, metric).values())


class GenAIMetrics(Base):
    def metrics_daemon(self, extra=(), endpoint=None, **kw):
        args = ["--sample-rate", "0.01", "--metrics-interval", "1000",
                "--metrics-endpoint", endpoint or self.rx.metrics_url] + list(extra)
        return self.http_daemon(args, **kw)

    def feed(self, d, runs):
        c = RawClient(d.socket)
        c.hello(**{"service.name": "agent"})
        runs.send(c)
        c.flush()
        return c

    def wait_points(self, get, runs_total, timeout=20):
        """The receiver's points once a collection counts runs_total runs."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            pts = get()
            if total(pts, "upsonic.agent.runs") == runs_total:
                return pts
            time.sleep(0.1)
        self.fail("no collection with %d runs: %s" % (runs_total, latest(get(),
                                                                       "upsonic.agent.runs")))

    def check_runs(self, pts, runs):
        # Token usage, by type, with the convention's attributes.
        for kind, values in (("input", runs.input), ("output", runs.output)):
            key = tuple(sorted({"gen_ai.token.type": kind, "gen_ai.operation.name": "chat",
                                "gen_ai.provider.name": "openai",
                                "gen_ai.request.model": MODEL,
                                "gen_ai.response.model": MODEL,
                                "server.address": SERVER}.items()))
            p = latest(pts, "gen_ai.client.token.usage")[key]
            self.assertEqual(p["kind"], "histogram")
            self.assertEqual(p["unit"], "{token}")
            self.assertEqual(p["count"], len(values))
            self.assertEqual(p["sum"], float(sum(values)))
            self.assertEqual(p["min"], float(min(values)))
            self.assertEqual(p["max"], float(max(values)))
            self.assertEqual(p["explicit_bounds"], TOKEN_BOUNDS)
            self.assertEqual(p["bucket_counts"], buckets(values, TOKEN_BOUNDS))
        # Operation duration: the failed calls in their own series, with error.type.
        dur = latest(pts, "gen_ai.client.operation.duration")
        self.assertEqual(sum(p["count"] for p in dur.values()), len(runs.durations))
        self.assertAlmostEqual(sum(p["sum"] for p in dur.values()), sum(runs.durations),
                               places=6)
        failed = [p for k, p in dur.items() if ("error.type", "timeout") in k]
        self.assertEqual(len(failed), 1)
        self.assertEqual(failed[0]["count"], runs.errors)
        self.assertEqual(failed[0]["bucket_counts"], buckets([1.5] * runs.errors,
                                                             DURATION_BOUNDS))
        ok = [p for k, p in dur.items() if not any(a == "error.type" for a, _ in k)]
        self.assertEqual(ok[0]["bucket_counts"],
                         buckets([0.5] * RUNS + [1.5] * (RUNS - runs.errors), DURATION_BOUNDS))
        self.assertEqual(ok[0]["unit"], "s")
        # Time to first token.
        ttft = list(latest(pts, "gen_ai.server.time_to_first_token").values())
        self.assertEqual(sum(p["count"] for p in ttft), len(runs.ttft))
        self.assertAlmostEqual(sum(p["sum"] for p in ttft), sum(runs.ttft), places=6)
        # Runs by status; per run: duration, tool calls, steps.
        by_status = {dict(k)["upsonic.status"]: p["value"]
                     for k, p in latest(pts, "upsonic.agent.runs").items()}
        self.assertEqual(by_status, runs.status)
        rd = latest(pts, "upsonic.agent.run.duration")
        self.assertEqual(sum(p["count"] for p in rd.values()), RUNS)
        self.assertAlmostEqual(sum(p["sum"] for p in rd.values()), 3.0 * RUNS, places=6)
        tools = list(latest(pts, "upsonic.agent.tool_calls").values())
        self.assertEqual((tools[0]["count"], tools[0]["sum"]), (RUNS, float(RUNS)))
        steps = list(latest(pts, "upsonic.agent.executed_steps").values())
        self.assertEqual((steps[0]["count"], steps[0]["sum"]), (RUNS, float(RUNS)))
        # Cost from the pricing table, by agent and model.
        cost = latest(pts, "upsonic.cost")
        key = tuple(sorted({"upsonic.agent.name": AGENT, "gen_ai.request.model": MODEL}.items()))
        self.assertEqual(cost[key]["unit"], "USD")
        self.assertTrue(cost[key]["monotonic"])
        self.assertAlmostEqual(cost[key]["value"], sum(runs.costs), places=9)
        # The daemon's own health rides along.
        self.assertGreaterEqual(total(pts, "sidespan.spans.received"), 5 * RUNS)
        self.assertTrue(latest(pts, "sidespan.clients.connected"))
        # Its memory, as each collection reads it: the resident set, malloc's by state, the
        # input buffers.
        rss = list(latest(pts, "process.memory.usage").values())
        self.assertEqual(len(rss), 1)
        self.assertEqual(rss[0]["unit"], "By")
        self.assertGreater(rss[0]["value"], 1 << 20)
        heap = {dict(k)["state"]: p["value"]
                for k, p in latest(pts, "sidespan.memory.heap").items()}
        self.assertEqual(set(heap), {"used", "free"})
        if os.environ.get("SIDESPAN_SANITIZE", "none") == "none":  # else its allocator's
            self.assertGreater(heap["used"], 0)
        self.assertTrue(latest(pts, "sidespan.memory.input_buffers"))
        for p in pts:
            self.assertEqual(p["resource"]["service.name"], "sidespand")
            self.assertEqual(p["scope_name"], "sidespand")

    def test_http_at_one_percent_counts_every_run(self):
        d = self.metrics_daemon()
        runs = Runs()
        self.feed(d, runs)
        pts = self.wait_points(self.rx.points, RUNS)
        self.check_runs(pts, runs)
        cumulative = [p for p in pts if p["kind"] in ("sum", "histogram")]
        self.assertTrue(all(p["temporality"] == 2 for p in cumulative))
        # The traces were sampled: few arrive, while the metrics counted all of them.
        st = d.stats()
        kept = len(by_trace(self.rx.spans()))
        self.assertLess(kept, RUNS // 10)
        self.assertEqual(st["sampling.dropped_traces"] + kept, RUNS)
        self.assertEqual(st["metrics.spans_observed"], 5 * RUNS)
        self.assertGreater(st["exporter.metrics.spans_exported"], 0)
        metrics_reqs = [r for r in self.rx.requests if r["signal"] == "metrics"]
        self.assertTrue(all(r["decode_error"] is None for r in metrics_reqs))
        self.assertTrue(all(r["path"] == "/v1/metrics" for r in metrics_reqs))
        # The status headline: tokens and cost per model.
        out = run([os.environ["SIDESPAN_CLI"], "--socket", d.socket, "status"]).stdout
        line = [x for x in out.splitlines() if x.startswith("  model %s:" % MODEL)]
        self.assertEqual(len(line), 1, out[:2000])
        self.assertIn("since start %d call(s), %d input + %d output tokens, $%.6f" % (
            2 * RUNS, sum(runs.input), sum(runs.output), sum(runs.costs)), line[0])
        self.assertIn("last minute %d call(s)" % (2 * RUNS), line[0])

    def test_http_json(self):
        d = self.metrics_daemon(["--metrics-protocol", "http/json"])
        runs = Runs()
        self.feed(d, runs)
        pts = self.wait_points(self.rx.points, RUNS)
        self.check_runs(pts, runs)
        reqs = [r for r in self.rx.requests if r["signal"] == "metrics"]
        self.assertTrue(reqs and all(r["format"] == "json" and r["decode_error"] is None
                                     for r in reqs))

    def test_grpc(self):
        rx = otlp_grpc_receiver.Receiver().start()
        self.addCleanup(rx.stop)

        def points():
            with rx.state.cond:
                return list(rx.state.points)

        d = self.metrics_daemon(["--metrics-protocol", "grpc"],
                                endpoint="http://127.0.0.1:%d" % rx.port)
        runs = Runs()
        self.feed(d, runs)
        self.check_runs(self.wait_points(points, RUNS), runs)
        with rx.state.cond:
            self.assertEqual(rx.state.decode_errors if hasattr(rx.state, "decode_errors")
                             else 0, 0)

    def test_delta_temporality_adds_up(self):
        d = self.metrics_daemon(["--metrics-temporality", "delta"])
        runs = Runs(n=RUNS)
        self.feed(d, runs)
        # Each collection holds what came since the one before: the sum over all of them
        # is the whole.
        deadline = time.time() + 20
        while time.time() < deadline:
            pts = [p for p in self.rx.points() if p["metric"] == "upsonic.agent.runs"]
            if sum(p["value"] for p in pts) == RUNS:
                break
            time.sleep(0.1)
        self.assertEqual(sum(p["value"] for p in pts), RUNS)
        self.assertTrue(all(p["temporality"] == 1 for p in pts))
        time.sleep(2.5)  # two more collections: nothing new, nothing counted twice
        pts = [p for p in self.rx.points() if p["metric"] == "upsonic.agent.runs"]
        self.assertEqual(sum(p["value"] for p in pts), RUNS)
        tok = [p for p in self.rx.points() if p["metric"] == "gen_ai.client.token.usage"]
        self.assertEqual(sum(p["sum"] for p in tok), float(sum(runs.input) + sum(runs.output)))

    def test_last_collection_exported_at_shutdown(self):
        d = self.metrics_daemon(["--metrics-interval", "600000"])
        runs = Runs(n=20)
        self.feed(d, runs)
        time.sleep(0.5)
        self.assertEqual([p for p in self.rx.points()], [])
        d.stop()
        self.assertEqual(total(self.rx.points(), "upsonic.agent.runs"), 20)

    def test_failed_exports_are_retried_and_spooled(self):
        # The metrics exporter is a network exporter like the traces': a backend that
        # answers 503 gets the same request again after the backoff, from the spool.
        self.rx.fail_next(3, 503)
        # No traces (rate 0): the receiver's failures are all the metrics exporter's.
        d = self.metrics_daemon(["--state-dir", os.path.join(self.tmp, "state"),
                                 "--sample-rate", "0"])
        runs = Runs(n=30)
        self.feed(d, runs)
        self.wait_points(self.rx.points, 30)
        st = d.stats()
        self.assertGreaterEqual(st["exporter.metrics.failures"], 1)
        self.assertGreater(st["exporter.metrics.spool.appended"], 0)
        self.assertEqual(st["exporter.metrics.spans_dropped"], 0)
        self.assertTrue(os.path.isdir(os.path.join(self.tmp, "state", "spool", "metrics")))

    def test_cardinality_overflow(self):
        conf = os.path.join(self.tmp, "m.conf")
        with open(conf, "w") as f:
            f.write("[metrics]\ncardinality_limit = 5\n")
        d = self.metrics_daemon(["--config", conf])
        models = ["model-%02d" % (i % 20) for i in range(RUNS)]
        runs = Runs(models=models)
        self.feed(d, runs)
        pts = self.wait_points(self.rx.points, RUNS)
        usage = latest(pts, "gen_ai.client.token.usage")
        overflow = [p for k, p in usage.items() if k == (("otel.metric.overflow", "true"),)]
        self.assertEqual(len(usage), 6, sorted(usage))  # 5 sets, then the overflow one
        self.assertEqual(len(overflow), 1)
        # Nothing is lost to the cap: every recording is in some series.
        self.assertEqual(sum(p["count"] for p in usage.values()), 4 * RUNS)
        self.assertEqual(sum(p["sum"] for p in usage.values()),
                         float(sum(runs.input) + sum(runs.output)))
        self.assertGreater(d.stats()["metrics.series_overflow"], 0)

    def test_prometheus_scrape(self):
        d = self.http_daemon(["--sample-rate", "0.01", "--prometheus-listen", "127.0.0.1:0",
                              "--metrics-interval", "1000"])
        url = "http://127.0.0.1:%d/metrics" % self.prometheus_port(d)
        runs = Runs()
        self.feed(d, runs)
        deadline = time.time() + 20
        while time.time() < deadline:
            text = run(["curl", "-sS", "--max-time", "5", url]).stdout
            if 'upsonic_agent_runs_total{' in text and \
               'upsonic_status="COMPLETED"} %d' % runs.status["COMPLETED"] in text:
                break
            time.sleep(0.2)
        parsed = subprocess.run(
            [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                          "prometheus_parse.py")],
            input=text, capture_output=True, text=True, timeout=30)
        self.assertEqual(parsed.returncode, 0, parsed.stderr)
        samples = {}
        for line in parsed.stdout.splitlines():
            name, value = line.rsplit(" ", 1)
            samples[name] = samples.get(name, 0.0) + float(value)
        self.assertEqual(samples["upsonic_agent_runs_total"], RUNS)
        self.assertEqual(samples["gen_ai_client_token_usage_count"], 4 * RUNS)
        self.assertEqual(samples["gen_ai_client_token_usage_sum"],
                         float(sum(runs.input) + sum(runs.output)))
        self.assertIn("gen_ai_client_token_usage_bucket", samples)
        self.assertEqual(samples["gen_ai_client_operation_duration_seconds_count"], 2 * RUNS)
        self.assertAlmostEqual(samples["upsonic_cost_USD_total"]
                               if "upsonic_cost_USD_total" in samples
                               else samples["upsonic_cost_usd_total"], sum(runs.costs),
                               places=9)
        self.assertIn("target_info", samples)
        # The raw text, as Prometheus reads it: le labels, the unit in the name.
        self.assertRegex(text, r'gen_ai_client_token_usage_bucket\{[^}]*le="\+Inf"[^}]*\} %d'
                         % (2 * RUNS))
        self.assertIn("# TYPE gen_ai_client_operation_duration_seconds histogram", text)


if __name__ == "__main__":
    unittest.main()
