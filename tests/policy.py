#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Decisions where the whole trace is (issue 8), against the real sidespand and real
OTLP/HTTP receivers that decode protobuf (tests/otlp_receiver.py). The client here is
the raw protocol client of itest_lib, which neither samples nor redacts, so everything
asserted is the daemon's doing:

- head sampling: the kept traces are exactly those the trace-id rule keeps (computed
  here from the rule, apart from the C code), whole; two daemons agree; a client's
  stricter HELLO rate wins; a remote parent's flag decides; ot=th in the tracestate;
- tail policies: at rate 0 every trace with an ERROR span is kept, whole; a trace over
  its memory bound is decided early and its root says so;
- content: with include_content off (daemon-wide, per exporter, per client) no content
  key reaches a receiver anywhere; two receivers see one trace two ways;
- redaction: 'Process SSN: 123-45-6789', e-mails, keys and a card number never reach a
  receiver in any field, the message JSON stays valid, counts on the span;
- roll-ups and cost on agent.run against values computed by hand, with a pricing file.

Deadlines only keep a broken daemon from hanging the suite; no test asserts a timing.
Run by meson with SIDESPAND and PROTO_DIR set (suite integration, test policy).
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_lib import (  # noqa: E402
    KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, MSG_SPAN_END, MSG_SPAN_EVENT, MSG_SPAN_START,
    STATUS_ERROR,
    STATUS_OK, Base, RawClient, by_trace, frame, span_end, span_start, whole_span)
from otlp_receiver import Receiver  # noqa: E402

CONTENT_KEYS = ("upsonic.input", "upsonic.output", "upsonic.tools_called",
                "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
                "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
                "gen_ai.tool.definitions", "langfuse.trace.input", "langfuse.trace.output",
                "langfuse.observation.input", "langfuse.observation.output")
SECRETS = ("123-45-6789", "jane.doe@example.com", "sk-proj-abcdefghijklmnopqrstuvwxyz0123",
           "4111 1111 1111 1111", "AKIAIOSFODNN7EXAMPLE")


def head_keep(tid, rate):
    """The consistent sampling rule, written from the OpenTelemetry specification: keep when
    the low 56 bits of the trace id are at least (1 - rate) * 2^56."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    return int.from_bytes(tid[9:16], "big") >= int((1.0 - rate) * 2 ** 56)


def send_tree(client, tid, n_children=3, error_child=None, whole_children=False, attrs=None):
    """A root and n_children children under it; child error_child ends with ERROR."""
    root = os.urandom(8)
    client.send(span_start(tid, root, None, "agent.run", KIND_SERVER, attrs=attrs))
    for i in range(n_children):
        sid = os.urandom(8)
        status = STATUS_ERROR if i == error_child else STATUS_OK
        if whole_children:
            now = time.time_ns()
            client.send(whole_span(tid, sid, root, "child", now, now + 1000, status=status))
        else:
            client.send(span_start(tid, sid, root, "child") + span_end(sid, status))
    client.send(span_end(root))
    return root


def all_text(spans):
    """Every key and value a receiver decoded, as one string to search."""
    return json.dumps(spans, default=lambda o: o.hex() if isinstance(o, bytes) else str(o))


def all_keys(spans):
    keys = set()
    for s in spans:
        keys.update(s["attributes"])
        keys.update(s["resource"])
        for ev in s["events"]:
            keys.update(ev["attributes"])
    return keys


class PolicyBase(Base):
    def conf(self, text):
        path = os.path.join(self.tmp, "sidespand-%d.conf" % len(self.daemons))
        with open(path, "w") as f:
            f.write(text)
        return path

    def receiver(self):
        rx = Receiver(os.environ.get("PROTO_DIR")).start()
        self.addCleanup(rx.stop)
        return rx

    def client(self, d, **hello):
        c = RawClient(d.socket)
        self.addCleanup(c.close)
        c.hello(**hello)
        return c

    def settle(self, c, d):
        """FLUSH, then wait until the daemon has nothing in flight."""
        c.flush()
        deadline = time.time() + 20
        while time.time() < deadline:
            st = c.stats()
            busy = sum(v - st[k[:-len("spans_in")] + "spans_exported"] -
                       st[k[:-len("spans_in")] + "spans_dropped"]
                       for k, v in st.items()
                       if k.startswith("exporter.") and k.endswith(".spans_in"))
            if st.get("spans_open", 0) == 0 and busy == 0:
                return st
            time.sleep(0.05)
        self.fail("daemon still busy: %s" % d.stderr()[-2000:])


class HeadSampling(PolicyBase):
    def run_traces(self, d, n, hello=None, n_children=3):
        c = self.client(d, **(hello or {}))
        tids = [os.urandom(16) for _ in range(n)]
        for i, tid in enumerate(tids):
            send_tree(c, tid, n_children, whole_children=i % 2 == 1)
        return c, tids

    def rate_keeps_whole_traces(self, flags):
        d = self.http_daemon(["--sample-rate", "0.25"] + flags)
        c, tids = self.run_traces(d, 400)
        want = {t.hex() for t in tids if head_keep(t, 0.25)}
        self.assertTrue(50 < len(want) < 150, len(want))
        st = self.settle(c, d)
        spans = self.wait_spans(4 * len(want))
        time.sleep(0.3)
        traces = by_trace(self.rx.spans())
        self.assertEqual(set(traces), want)
        for tid, spans in traces.items():
            self.assertEqual(len(spans), 4, "trace %s not whole" % tid)
            for s in spans:
                self.assertTrue(s["trace_state"].startswith("ot=th:c"), s["trace_state"])
        return st, 400 - len(want)

    def test_rate_keeps_whole_traces_by_trace_id(self):
        # Metrics off: a dropped trace is discarded at its first span, holding nothing.
        st, dropped = self.rate_keeps_whole_traces(["--no-metrics"])
        self.assertEqual(st["traces_discarded"], dropped)
        self.assertEqual(st["spans_discarded"], 4 * dropped)
        self.assertEqual(st["metrics.spans_observed"] if "metrics.spans_observed" in st else 0, 0)

    def test_rate_with_metrics_sees_every_span(self):
        # Metrics on (the default): dropped traces are held whole for the metrics, and the
        # policy stage drops them.
        st, dropped = self.rate_keeps_whole_traces([])
        self.assertEqual(st["traces_discarded"], 0)
        self.assertEqual(st["sampling.dropped_traces"], dropped)
        self.assertEqual(st["sampling.dropped_spans"], 4 * dropped)
        self.assertEqual(st["metrics.spans_observed"], 4 * 400)

    def test_two_daemons_agree(self):
        rx2 = self.receiver()
        d1 = self.http_daemon(["--sample-rate", "0.1"])
        d2 = self.daemon(["--endpoint", rx2.url, "--batch-delay-ms", "100",
                          "--sample-rate", "0.1"], name="d2")
        c1, c2 = self.client(d1), self.client(d2)
        tids = [os.urandom(16) for _ in range(300)]
        for tid in tids:
            send_tree(c1, tid, 1)
            send_tree(c2, tid, 1)
        self.settle(c1, d1)
        self.settle(c2, d2)
        want = {t.hex() for t in tids if head_keep(t, 0.1)}
        self.assertTrue(self.rx.wait_spans(2 * len(want), 20))
        self.assertTrue(rx2.wait_spans(2 * len(want), 20))
        self.assertEqual(set(by_trace(self.rx.spans())), want)
        self.assertEqual(set(by_trace(rx2.spans())), want)

    def test_client_rate_stricter_wins(self):
        d = self.http_daemon(["--sample-rate", "0.5"])
        c, tids = self.run_traces(d, 300, hello={"sample_rate": 0.1}, n_children=1)
        self.settle(c, d)
        want = {t.hex() for t in tids if head_keep(t, 0.1)}
        self.wait_spans(2 * len(want))
        time.sleep(0.3)
        self.assertEqual(set(by_trace(self.rx.spans())), want)

    def test_remote_parent_flag_decides(self):
        d = self.http_daemon(["--sample-rate", "0"])
        c = self.client(d)
        kept, dropped = os.urandom(16), os.urandom(16)
        for tid, flags in ((kept, 0x301), (dropped, 0x300)):
            sid = os.urandom(8)
            c.send(frame(MSG_SPAN_START, tid, sid, os.urandom(8), "continued", KIND_SERVER,
                         time.time_ns(), {}, {"flags": flags}) + span_end(sid))
        self.settle(c, d)
        spans = self.wait_spans(1)
        time.sleep(0.3)
        self.assertEqual([s["trace_id"] for s in self.rx.spans()], [kept.hex()])
        self.assertEqual(spans[0]["trace_state"], "")  # the upstream's decision, not ours

    def test_environment_rate(self):
        d = self.http_daemon(env={"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                                  "OTEL_TRACES_SAMPLER_ARG": "0.25"})
        self.assertIn("head rate 0.25", d.stderr())
        bad = self.daemon(env={"OTEL_TRACES_SAMPLER_ARG": "1.5"}, name="bad", wait=False)
        self.assertEqual(bad.proc.wait(10), 2)
        self.assertIn("OTEL_TRACES_SAMPLER_ARG", bad.stderr())
        self.assertIn("1.5", bad.stderr())


class TailSampling(PolicyBase):
    def test_errors_kept_at_rate_zero(self):
        path = self.conf("[sampling]\nrate = 0\nkeep_errors = true\n")
        d = self.http_daemon(["--config", path])
        c = self.client(d)
        errors = set()
        for i in range(60):
            tid = os.urandom(16)
            error = i % 6 == 0
            send_tree(c, tid, 3, error_child=1 if error else None, whole_children=i % 2 == 1)
            if error:
                errors.add(tid.hex())
        st = self.settle(c, d)
        self.wait_spans(4 * len(errors))
        time.sleep(0.3)
        traces = by_trace(self.rx.spans())
        self.assertEqual(set(traces), errors)
        for spans in traces.values():
            self.assertEqual(len(spans), 4)
            self.assertEqual(spans[0]["trace_state"], "")  # no th: kept by a tail policy
        self.assertEqual(st["sampling.kept_error"], len(errors))
        self.assertEqual(st["sampling.dropped_traces"], 60 - len(errors))

    def test_latency_and_attribute(self):
        path = self.conf("[sampling]\nrate = 0\nkeep_slower_than_ms = 200\n"
                         "keep_attribute = upsonic.agent.name=billing\n")
        d = self.http_daemon(["--config", path])
        c = self.client(d)
        slow, billing, plain = os.urandom(16), os.urandom(16), os.urandom(16)
        now = time.time_ns()
        c.send(whole_span(slow, os.urandom(8), None, "agent.run", now, now + 300_000_000))
        c.send(whole_span(plain, os.urandom(8), None, "agent.run", now, now + 1_000_000))
        send_tree(c, billing, 1, attrs={"upsonic.agent.name": "billing"})
        st = self.settle(c, d)
        self.wait_spans(3)
        time.sleep(0.3)
        self.assertEqual(set(by_trace(self.rx.spans())), {slow.hex(), billing.hex()})
        self.assertEqual(st["sampling.kept_latency"], 1)
        self.assertEqual(st["sampling.kept_attribute"], 1)

    def test_memory_bound_decides_early(self):
        path = self.conf("[sampling]\nrate = 0\nkeep_errors = true\n")
        d = self.http_daemon(["--config", path, "--max-trace-spans", "5"])
        c = self.client(d)
        tid, quiet = os.urandom(16), os.urandom(16)
        send_tree(c, tid, 12, error_child=2)
        send_tree(c, quiet, 12)
        st = self.settle(c, d)
        spans = self.wait_spans(13)
        time.sleep(0.3)
        spans = self.rx.spans()
        self.assertEqual(set(by_trace(spans)), {tid.hex()})
        self.assertEqual(len(spans), 13)
        root = [s for s in spans if s["name"] == "agent.run"][0]
        self.assertIs(root["attributes"].get("sidespan.sampling.early_decision"), True)
        self.assertGreaterEqual(st["sampling.early_decisions"], 2)
        self.assertGreaterEqual(st["chunks_early"], 4)


class Content(PolicyBase):
    def send_content(self, c):
        tid, root, chat = os.urandom(16), os.urandom(8), os.urandom(8)
        attrs = {k: "secret content of " + k for k in CONTENT_KEYS}
        c.send(span_start(tid, root, None, "agent.run", KIND_SERVER, attrs=attrs))
        c.send(span_start(tid, chat, root, "chat gpt-4o", KIND_CLIENT,
                          attrs={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                                 "gen_ai.input.messages": "[]"}))
        c.send(frame(MSG_SPAN_EVENT, chat, "gen_ai.choice", time.time_ns(),
                     {"gen_ai.output.messages": "[...]", "index": 0}))
        c.send(span_end(chat) + span_end(root, attrs={"upsonic.output": "the answer"}))
        return tid

    def assert_no_content(self, spans):
        self.assertTrue(spans)
        leaked = all_keys(spans) & set(CONTENT_KEYS)
        self.assertFalse(leaked, "content keys reached the receiver: %s" % leaked)
        self.assertNotIn("secret content", all_text(spans))
        self.assertNotIn("the answer", all_text(spans))

    def test_per_exporter(self):
        rx2 = self.receiver()
        path = self.conf("[exporter full]\nendpoint = %s\nbatch_delay = 100\n\n"
                         "[exporter shared]\nendpoint = %s\nbatch_delay = 100\n"
                         "include_content = false\n" % (self.rx.url, rx2.url))
        d = self.daemon(["--config", path])
        c = self.client(d)
        self.send_content(c)
        st = self.settle(c, d)
        self.assertTrue(self.rx.wait_spans(2, 20) and rx2.wait_spans(2, 20))
        full = self.rx.spans()
        self.assertEqual(set(CONTENT_KEYS) - all_keys(full), set())
        self.assert_no_content(rx2.spans())
        # The same trace, whole, on both.
        self.assertEqual(sorted(s["span_id"] for s in full),
                         sorted(s["span_id"] for s in rx2.spans()))
        self.assertEqual(st["content.attrs_dropped"], len(CONTENT_KEYS) + 2)

    def test_daemon_wide_off_wins(self):
        path = self.conf("[content]\ninclude_content = false\n\n"
                         "[exporter full]\nendpoint = %s\nbatch_delay = 100\n"
                         "include_content = true\n" % self.rx.url)
        d = self.daemon(["--config", path])
        c = self.client(d)
        self.send_content(c)
        self.settle(c, d)
        self.assert_no_content(self.wait_spans(2))

    def test_client_hello_off(self):
        d = self.http_daemon()
        c = self.client(d, include_content=False)
        self.send_content(c)
        self.settle(c, d)
        self.assert_no_content(self.wait_spans(2))

    def test_configured_keys(self):
        path = self.conf("[content]\nkeys = upsonic.input, my.prompt\n")
        d = self.http_daemon(["--config", path, "--exporter", "otlp"])
        c = self.client(d, include_content=False)
        tid, sid = os.urandom(16), os.urandom(8)
        c.send(span_start(tid, sid, None, "agent.run", attrs={
            "my.prompt": "p", "upsonic.input": "i", "upsonic.output": "o"}) + span_end(sid))
        self.settle(c, d)
        attrs = self.wait_spans(1)[0]["attributes"]
        self.assertNotIn("my.prompt", attrs)
        self.assertNotIn("upsonic.input", attrs)
        self.assertEqual(attrs["upsonic.output"], "o")


class Redaction(PolicyBase):
    MESSAGES = json.dumps([{"role": "user", "parts": [
        {"type": "text", "content": "Process SSN: 123-45-6789 for jane.doe@example.com, "
                                    "card 4111 1111 1111 1111"}]}])

    def send_secrets(self, c):
        tid, root, chat = os.urandom(16), os.urandom(8), os.urandom(8)
        c.send(span_start(tid, root, None, "agent.run", KIND_SERVER, attrs={
            "upsonic.input": "Process SSN: 123-45-6789",
            "note": ["key sk-proj-abcdefghijklmnopqrstuvwxyz0123", "order 1234567890123"],
            "nested": {"who": "jane.doe@example.com", "aws": "AKIAIOSFODNN7EXAMPLE"}}))
        c.send(span_start(tid, chat, root, "chat gpt-4o", KIND_CLIENT,
                          attrs={"gen_ai.input.messages": self.MESSAGES}))
        c.send(frame(MSG_SPAN_EVENT, chat, "exception", time.time_ns(),
                     {"exception.message": "bad card 4111 1111 1111 1111"}))
        c.send(span_end(chat))
        c.send(frame(MSG_SPAN_END, root, time.time_ns(), STATUS_ERROR, "failed for 123-45-6789", {}))
        return tid

    def test_nothing_reaches_a_receiver(self):
        d = self.http_daemon()
        c = self.client(d)
        self.send_secrets(c)
        st = self.settle(c, d)
        spans = self.wait_spans(2)
        text = all_text(spans)
        for secret in SECRETS:
            self.assertNotIn(secret, text)
        self.assertIn("order 1234567890123", text)  # fails Luhn: not a card
        root = [s for s in spans if s["name"] == "agent.run"][0]
        chat = [s for s in spans if s["name"] != "agent.run"][0]
        self.assertEqual(root["attributes"]["upsonic.input"], "Process SSN: [REDACTED:ssn]")
        self.assertIn("[REDACTED:", root["status_message"])
        msgs = json.loads(chat["attributes"]["gen_ai.input.messages"])  # still valid JSON
        self.assertEqual(msgs[0]["role"], "user")
        self.assertIn("[REDACTED:ssn]", msgs[0]["parts"][0]["content"])
        self.assertEqual(root["attributes"]["sidespan.redacted_count"], 5)
        self.assertEqual(chat["attributes"]["sidespan.redacted_count"], 4)
        self.assertEqual(st["redaction.ssn"], 3)
        self.assertEqual(st["redaction.spans"], 2)

    def test_per_exporter_switch_and_hash(self):
        rx2 = self.receiver()
        path = self.conf("[redaction]\nhash_key = 000102030405060708090a0b0c0d0e0f\n"
                         "pattern.ticket = TICKET-[0-9]{4}\n\n"
                         "[exporter internal]\nendpoint = %s\nbatch_delay = 100\n"
                         "redact_personal = off\n\n"
                         "[exporter public]\nendpoint = %s\nbatch_delay = 100\n"
                         % (self.rx.url, rx2.url))
        d = self.daemon(["--config", path])
        c = self.client(d)
        tid, a, b = os.urandom(16), os.urandom(8), os.urandom(8)
        c.send(span_start(tid, a, None, "agent.run", attrs={
            "who": "jane.doe@example.com", "again": "jane.doe@example.com",
            "t": "see TICKET-1234", "k": "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"}))
        c.send(span_end(a))
        self.settle(c, d)
        self.assertTrue(self.rx.wait_spans(1, 20) and rx2.wait_spans(1, 20))
        internal = self.rx.spans()[0]["attributes"]
        public = rx2.spans()[0]["attributes"]
        self.assertEqual(internal["who"], "jane.doe@example.com")
        self.assertRegex(internal["k"], r"^\[REDACTED:anthropic_key:[0-9a-f]{8}\]$")
        self.assertRegex(public["who"], r"^\[REDACTED:email:[0-9a-f]{8}\]$")
        self.assertEqual(public["who"], public["again"])  # equal values, equal tags
        self.assertRegex(public["t"], r"^see \[REDACTED:ticket:[0-9a-f]{8}\]$")
        del b

    def test_bad_pattern_refused_at_start(self):
        path = self.conf("[redaction]\npattern.acct = ACCT-(\\d+\n")
        r = self.daemon(["--config", path, "--check-config"], wait=False)
        self.assertEqual(r.proc.wait(10), 2)
        self.assertIn("acct", r.stderr())


class Limits(PolicyBase):
    def test_limits_fill_dropped_counts_and_utf8_is_repaired(self):
        d = self.http_daemon(["--max-attributes", "10", "--max-events", "3",
                              "--max-value-length", "16"])
        c = self.client(d)
        tid, sid = os.urandom(16), os.urandom(8)
        attrs = {"k%02d" % i: i for i in range(30)}
        attrs["k00"] = "x" + "\u00e9" * 9  # 19 bytes, cut to 16: not inside a character
        attrs["k01"] = "XXXXXX"   # replaced below by ill-formed UTF-8 of the same length
        start = span_start(tid, sid, None, "work", attrs=attrs)  # not a run: no roll-ups
        i = start.index(b"\xa6XXXXXX")
        start = start[:i] + b"\xa6\xffab\xfe\xc3(" + start[i + 7:]
        c.send(start)
        for n in range(6):
            c.send(frame(MSG_SPAN_EVENT, sid, "ev%d" % n, time.time_ns(),
                         {"a%02d" % j: j for j in range(15)}))
        c.send(span_end(sid))
        st = self.settle(c, d)
        s = self.wait_spans(1)[0]
        self.assertEqual(len(s["attributes"]), 10)
        self.assertEqual(s["dropped_attributes_count"], 20)
        self.assertEqual(s["attributes"]["k00"], "x" + "\u00e9" * 7)
        self.assertEqual(s["attributes"]["k01"], "\ufffdab\ufffd\ufffd(")
        self.assertEqual(len(s["events"]), 3)
        self.assertEqual(s["dropped_events_count"], 3)
        for ev in s["events"]:
            self.assertEqual(len(ev["attributes"]), 10)
            self.assertEqual(ev["dropped_attributes_count"], 5)
        self.assertEqual(st["events_dropped"], 3)
        self.assertGreaterEqual(st["values_cut"], 1)


class RollUps(PolicyBase):
    PRICING = ("# provider\tmodel\tinput\toutput\tcache_read\tcache_write\n"
               "testco\ttest-model\t2\t8\t0.5\t2.5\n")

    def test_run_rollups_and_cost(self):
        pricing = os.path.join(self.tmp, "pricing.tsv")
        with open(pricing, "w") as f:
            f.write(self.PRICING)
        path = self.conf("[pricing]\nfile = %s\n" % pricing)
        d = self.http_daemon(["--config", path])
        c = self.client(d)
        t0 = time.time_ns()
        ms = 1_000_000
        tid, run, pipe = os.urandom(16), os.urandom(8), os.urandom(8)
        step1, step2, chat1, chat2, tool = (os.urandom(8) for _ in range(5))
        c.send(frame(MSG_SPAN_START, tid, run, None, "agent.run", KIND_SERVER, t0, {}, {}))
        c.send(frame(MSG_SPAN_START, tid, pipe, run, "pipeline.execute", KIND_INTERNAL,
                     t0 + 1 * ms, {}, {}))
        c.send(whole_span(tid, step1, pipe, "pipeline.step.initialization", t0 + 2 * ms,
                          t0 + 3 * ms))
        c.send(frame(MSG_SPAN_START, tid, step2, pipe, "pipeline.step.model_execution",
                     KIND_INTERNAL, t0 + 10 * ms, {}, {}))
        chat_attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "testco",
                      "gen_ai.request.model": "test-model"}
        # chat 1: 100 ms, 1000 in (200 of them cached), 500 out, first token after 40 ms.
        c.send(whole_span(tid, chat1, step2, "chat test-model", t0 + 20 * ms, t0 + 120 * ms,
                          attrs=dict(chat_attrs, **{
                              "gen_ai.usage.input_tokens": 1000,
                              "gen_ai.usage.output_tokens": 500,
                              "gen_ai.usage.cache_read.input_tokens": 200}),
                          events=[["gen_ai.first_token", t0 + 60 * ms, {}]]))
        # tool: 50 ms.
        c.send(whole_span(tid, tool, step2, "tool.execute", t0 + 130 * ms, t0 + 180 * ms,
                          attrs={"upsonic.tool.name": "search"}))
        # chat 2: 200 ms, 2000 in, 300 out.
        c.send(whole_span(tid, chat2, step2, "chat test-model", t0 + 200 * ms, t0 + 400 * ms,
                          attrs=dict(chat_attrs, **{"gen_ai.usage.input_tokens": 2000,
                                                    "gen_ai.usage.output_tokens": 300})))
        c.send(frame(MSG_SPAN_END, step2, t0 + 410 * ms, STATUS_OK, None, {}))
        c.send(frame(MSG_SPAN_END, pipe, t0 + 420 * ms, STATUS_OK, None, {}))
        c.send(frame(MSG_SPAN_END, run, t0 + 1000 * ms, STATUS_OK, None,
                     {"upsonic.usage.requests": 7}))  # the client's value stays
        self.settle(c, d)
        spans = self.wait_spans(7)
        a = [s for s in spans if s["name"] == "agent.run"][0]["attributes"]
        self.assertEqual(a["upsonic.tool_call_count"], 1)
        self.assertEqual(a["gen_ai.usage.input_tokens"], 3000)
        self.assertEqual(a["gen_ai.usage.output_tokens"], 800)
        self.assertEqual(a["upsonic.usage.total_tokens"], 3800)
        self.assertEqual(a["upsonic.usage.cache_read_tokens"], 200)
        self.assertEqual(a["upsonic.usage.requests"], 7)
        self.assertEqual(a["upsonic.pipeline.executed_steps"], 2)
        self.assertAlmostEqual(a["upsonic.model_execution_time"], 0.300, places=9)
        self.assertAlmostEqual(a["upsonic.tool_execution_time"], 0.050, places=9)
        self.assertAlmostEqual(a["upsonic.framework_overhead_time"], 0.650, places=9)
        self.assertAlmostEqual(a["upsonic.time_to_first_token"], 0.040, places=9)
        # chat 1: (1000-200)*2 + 200*0.5 + 500*8 = 1600 + 100 + 4000 = 5700 per million
        # chat 2: 2000*2 + 300*8 = 4000 + 2400 = 6400 per million
        self.assertAlmostEqual(a["upsonic.total_cost"], 0.0121, places=12)
        costs = sorted(s["attributes"]["gen_ai.usage.cost"] for s in spans
                       if s["name"] == "chat test-model")
        self.assertAlmostEqual(costs[0], 0.0057, places=12)
        self.assertAlmostEqual(costs[1], 0.0064, places=12)

    def test_unknown_model_no_cost(self):
        d = self.http_daemon()
        c = self.client(d)
        tid, run, chat = os.urandom(16), os.urandom(8), os.urandom(8)
        now = time.time_ns()
        c.send(span_start(tid, run, None, "agent.run", KIND_SERVER))
        c.send(whole_span(tid, chat, run, "chat nobody-knows", now, now + 1000, attrs={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "nobody-knows-7b",
            "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}))
        c.send(span_end(run))
        st = self.settle(c, d)
        spans = self.wait_spans(2)
        a = [s for s in spans if s["name"] == "agent.run"][0]["attributes"]
        self.assertEqual(a["gen_ai.usage.input_tokens"], 10)
        self.assertNotIn("upsonic.total_cost", a)
        self.assertEqual(st["rollup.unknown_model"], 1)


if __name__ == "__main__":
    unittest.main()
