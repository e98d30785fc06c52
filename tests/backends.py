#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Every backend an agent team uses (issue 7), against the real sidespand: the
configuration file and --check-config, the backend presets at a local receiver,
OTLP/JSON decoded strictly, TLS and mutual TLS with certificates made at test
time by openssl, the OpenTelemetry exporter environment, and fan-out to a dead,
a hanging and a healthy backend at once.

The receivers are tests/otlp_receiver.py (protobuf and OTLP/JSON, HTTP or
HTTPS). Deadlines ("within 20 s") only keep a broken daemon from hanging the
suite; no test asserts a timing. gRPC export is not tested
here (it has its own suites), only the choice of it: --check-config's
protocol line and the start-up line.

Run by meson with SIDESPAND, DEMO_AGENT and PROTO_DIR set (suite integration,
test backends).
"""

import base64
import configparser
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_lib import Base, Daemon, RawClient, by_trace, run, send_trace  # noqa: E402
from otlp_receiver import (  # noqa: E402
    JsonDecodeError, Receiver, decode_json, flatten_request, load_protos)

SIDESPAND = os.environ["SIDESPAND"]
DEMO_AGENT = os.environ["DEMO_AGENT"]
SHIPPED_CONF = os.path.join(os.environ["SIDESPAN_SOURCE_ROOT"], "deploy", "sidespand.conf")
DEMO_SPANS = 30  # spans of one demo agent run
LANGFUSE_PATH = "/api/public/otel/v1/traces"
# What the daemon reads from the environment besides its own flags: none of it may leak in
# from the environment the suite runs in.
FOREIGN_ENV = ("OTEL_", "UPSONIC_", "SIDESPAN_SOCKET", "LANGFUSE_", "PROMPTLAYER_",
               "RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR")


def dead_port():
    """A port of 127.0.0.1 nothing listens on: connections are refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def parse_check(text):
    """--check-config's output as {section: {key: value}}; it must be a valid INI file."""
    cp = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",),
                                   comment_prefixes=("#",), empty_lines_in_values=False)
    cp.read_string(text)
    return {name: dict(cp[name]) for name in cp.sections()}


class Hanging:
    """A TCP server that accepts, reads whatever comes and never answers. Records how many
    connections it took and when the first was closed by its peer."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.cond = threading.Condition()
        self.accepted = 0
        self.bytes_read = 0
        self.first_close = None  # time.time() when a peer first closed its connection
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            ready = [self.sock] + self.conns
            r, _, _ = select.select(ready, [], [], 0.1)
            for s in r:
                if s is self.sock:
                    conn, _ = self.sock.accept()
                    with self.cond:
                        self.accepted += 1
                        self.conns.append(conn)
                        self.cond.notify_all()
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                with self.cond:
                    self.bytes_read += len(data)
                    if not data:
                        self.conns.remove(s)
                        s.close()
                        if self.first_close is None:
                            self.first_close = time.time()
                    self.cond.notify_all()

    def stop(self):
        self.stopping = True
        self.thread.join()
        for s in self.conns + [self.sock]:
            s.close()


class Certs:
    """A CA, a server certificate for 127.0.0.1 and a client certificate it signed, and a
    second CA that signed neither, made with openssl in a temporary directory."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sidespan-certs-")
        self.ca, self.ca_key = self._ca("sidespan-test-ca")
        self.other_ca, _ = self._ca("sidespan-other-ca")
        self.server, self.server_key = self._leaf(
            "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        self.client, self.client_key = self._leaf(
            "sidespan-test-client", "extendedKeyUsage=clientAuth\n")

    def _openssl(self, *args):
        r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=60,
                           cwd=self.tmp.name)
        if r.returncode != 0:
            raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr))

    def _key_args(self, key):
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key]

    def _ca(self, name):
        pem, key = (os.path.join(self.tmp.name, name + ext) for ext in (".pem", ".key"))
        self._openssl("req", "-x509", *self._key_args(key), "-out", pem, "-days", "2",
                      "-subj", "/CN=" + name,
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return pem, key

    def _leaf(self, cn, ext):
        base = os.path.join(self.tmp.name, cn)
        pem, key, csr, extfile = base + ".pem", base + ".key", base + ".csr", base + ".ext"
        with open(extfile, "w") as f:
            f.write(ext)
        self._openssl("req", *self._key_args(key), "-out", csr, "-subj", "/CN=" + cn)
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                      "-CAcreateserial", "-out", pem, "-days", "2", "-extfile", extfile)
        return pem, key

    def cleanup(self):
        self.tmp.cleanup()


class BackendsBase(Base):
    """Base with a configuration file, --check-config and STATS at hand."""

    def setUp(self):
        super().setUp()
        self.n_conf = 0

    def tearDown(self):
        """Every daemon still running drains and exits 0; none reported a sanitizer error
        (under ASan, a leak at exit is one)."""
        try:
            for d in self.daemons:
                if d.proc and d.proc.poll() is None:
                    self.assertEqual(d.stop(), 0, d.stderr())
                self.assertNotRegex(d.stderr(), r"Sanitizer|runtime error:")
        finally:
            super().tearDown()

    def daemon(self, args=(), env=None, name="d", wait=True, preexec_fn=None):
        d = Daemon(self.tmp, args, env, name, preexec_fn)
        for k in list(d.env):
            if k.startswith(FOREIGN_ENV) and k not in (env or {}):
                del d.env[k]
        self.daemons.append(d)
        return d.start(wait)

    def conf(self, text):
        """A configuration file holding text; its path."""
        self.n_conf += 1
        path = os.path.join(self.tmp, "sidespand-%d.conf" % self.n_conf)
        with open(path, "w") as f:
            f.write(text)
        return path

    def pem(self, name):
        """A file shaped as PEM (the daemon reads TLS files at --check-config too; only the
        TLS handshake would find it is no certificate); its path."""
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        return path

    def sidespand(self, args, env=None):
        """sidespand with args in a clean environment (plus env); the finished process."""
        full = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
        full["XDG_RUNTIME_DIR"] = self.tmp
        full.update(env or {})
        return subprocess.run([SIDESPAND] + list(args), env=full, capture_output=True,
                              text=True, timeout=30)

    def check(self, conf_path=None, args=(), env=None):
        """--check-config, which must pass: its output parsed (parse_check())."""
        r = self.check_fails(conf_path, args, env, expect=0)
        self.assertEqual(r.stderr, "", "a passing --check-config says nothing on stderr")
        return parse_check(r.stdout)

    def check_fails(self, conf_path=None, args=(), env=None, expect=2):
        """--check-config with the exit status expect (2: refused); the finished process."""
        full = (["--config", conf_path] if conf_path else []) + ["--check-config"] + list(args)
        r = self.sidespand(full, env)
        self.assertEqual(r.returncode, expect, "exit %d, stdout:\n%s\nstderr:\n%s"
                         % (r.returncode, r.stdout, r.stderr))
        if expect:
            self.assertEqual(r.stdout, "", "a refused configuration prints none")
        return r

    def start_fails(self, args, env=None):
        """A daemon that must refuse to start: its exit status and what it logged."""
        d = self.daemon(args, env, name="refused-%d" % len(self.daemons), wait=False)
        rc = d.proc.wait(20)
        d.stop()
        self.assertNotEqual(rc, 0, d.stderr())
        self.assertFalse(os.path.exists(d.socket), "no socket left behind")
        return rc, d.stderr()

    def exported(self, d, name, n):
        """STATS once exporter name has exported n spans (its answers may come after the
        receiver has them)."""
        return self.wait_stats(d, "%d spans exported by %s" % (n, name),
                               lambda st: st["exporter.%s.spans_exported" % name] >= n)

    def send_trace(self, d, name, children=0):
        """One trace of 1 + children spans from a raw client, flushed."""
        c = RawClient(d.socket)
        c.hello()
        send_trace(c, name, children)
        c.flush()
        c.close()

    def dropped(self, d, name, n, why):
        """STATS once exporter name has dropped n spans (why they must be)."""
        return self.wait_stats(d, why, lambda st: st["exporter.%s.spans_dropped" % name] == n)

    def demo(self, d, runs=1):
        r = run([DEMO_AGENT, "--runs", str(runs), "--service", "demo-agent", "--socket",
                 d.socket], timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def receiver(self, **kw):
        rx = Receiver(os.environ.get("PROTO_DIR"), **kw).start()
        self.addCleanup(rx.stop)
        return rx

    def assert_demo_tree(self, spans, runs=1):
        """runs demo agent traces, each a tree of DEMO_SPANS spans under one agent.run."""
        self.assertEqual(len(spans), runs * DEMO_SPANS)
        traces = by_trace(spans)
        self.assertEqual(len(traces), runs)
        for t in traces.values():
            ids = {s["span_id"] for s in t}
            roots = [s for s in t if not s["parent_span_id"]]
            self.assertEqual([s["name"] for s in roots], ["agent.run"])
            for s in t:
                self.assertTrue(s is roots[0] or s["parent_span_id"] in ids, s["name"])
            self.assertEqual(roots[0]["service_name"], "demo-agent")


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


# ---- the configuration file and --check-config ---------------------------------------------


class CheckConfig(BackendsBase):
    def test_every_section_and_key_lands(self):
        path = self.conf("""\
# a comment
; another
[daemon]
socket = {tmp}/from-file.sock
log_level = notice
allow_uids = 0,4242
allow_gids = 0,4343

[limits]
max_frame = 65536
max_connections_per_process = 3
max_open_spans_total = 777
orphan_grace_ms = 0
drain_timeout_ms = 1234

[exporter numbers]
endpoint = http://127.0.0.1:4318
protocol = http/json
headers = x-tenant=acme,x-note=a%20b
compression = gzip
timeout = 2345
batch_size = 11
batch_bytes = 5000
batch_delay = 22
queue_bytes = 333333
max_in_flight = 3
max_attempts = 2
include_content = false
redact_secrets = off
ca_file = {ca}
cert_file = {cert}
key_file = {key}

[exporter plain]
type = otel-collector
endpoint = http://127.0.0.1:4317
insecure = yes

[exporter archive]
type = file
path = {tmp}/archive.jsonl

[exporter people]
type = console

[sampling]
rate = 0.5
keep_errors = true
keep_slower_than_ms = 250
keep_attribute = upsonic.agent.name=billing
max_kept_per_second = 7

[content]
keys = upsonic.input, my.prompt

[redaction]
personal = off
hash_key = 000102030405060708090a0b0c0d0e0f
pattern.ticket = TICKET-[0-9]{{4}}

[pricing]
file = {tmp}/pricing.tsv

[metrics]
export_interval = 30000
temporality = delta
cardinality_limit = 100
prometheus_listen = 127.0.0.1:9464
endpoint = http://127.0.0.1:4317
insecure = yes
compression = gzip
""".format(tmp=self.tmp, ca=self.pem("ca.pem"), cert=self.pem("client.pem"),
           key=self.pem("client.key")))
        with open(os.path.join(self.tmp, "pricing.tsv"), "w") as f:
            f.write("testco\ttest-model\t1\t2\t-\t-\n")
        cfg = self.check(path)
        self.assertEqual(list(cfg), ["daemon", "limits", "exporter numbers", "exporter plain",
                                     "exporter archive", "exporter people", "sampling",
                                     "content", "redaction", "pricing", "metrics"])
        m = cfg["metrics"]
        self.assertEqual({k: m[k] for k in ("enabled", "export_interval", "temporality",
                                           "cardinality_limit", "prometheus_listen", "protocol",
                                           "endpoint", "compression", "insecure")},
                         {"enabled": "true", "export_interval": "30000", "temporality": "delta",
                          "cardinality_limit": "100", "prometheus_listen": "127.0.0.1:9464",
                          "protocol": "grpc", "endpoint": "http://127.0.0.1:4317",
                          "compression": "gzip", "insecure": "true"})
        self.assertEqual(cfg["sampling"], {
            "rate": "0.5", "keep_errors": "true", "keep_slower_than_ms": "250",
            "keep_attribute": "upsonic.agent.name=billing", "max_kept_per_second": "7"})
        self.assertEqual(cfg["content"], {"include_content": "true",
                                          "keys": "upsonic.input, my.prompt"})
        self.assertEqual(cfg["redaction"], {"secrets": "on", "personal": "off", "custom": "on",
                                            "hash_key": "(set)",
                                            "pattern.ticket": "TICKET-[0-9]{4}"})
        self.assertEqual(cfg["pricing"], {"file": self.tmp + "/pricing.tsv"})
        self.assertEqual(cfg["daemon"], {"socket": self.tmp + "/from-file.sock",
                                         "log_level": "notice", "allow_uids": "0,4242",
                                         "allow_gids": "0,4343"})
        lim = cfg["limits"]
        self.assertEqual(lim["max_frame"], "65536")
        self.assertEqual(lim["max_connections_per_process"], "3")
        self.assertEqual(lim["max_open_spans_total"], "777")
        self.assertEqual(lim["orphan_grace_ms"], "0")
        self.assertEqual(lim["drain_timeout_ms"], "1234")
        self.assertEqual(lim["max_connections"], "1024", "a key not in the file: its default")
        n = cfg["exporter numbers"]
        self.assertEqual(n, {
            "type": "otlp", "protocol": "http/json",
            "endpoint": "http://127.0.0.1:4318/v1/traces",
            "headers": "x-tenant=acme,x-note=a b", "compression": "gzip", "insecure": "false",
            "ca_file": self.tmp + "/ca.pem", "cert_file": self.tmp + "/client.pem",
            "key_file": self.tmp + "/client.key", "timeout": "2345", "batch_size": "11",
            "batch_bytes": "5000", "batch_delay": "22", "queue_bytes": "333333",
            "max_in_flight": "3", "max_attempts": "2", "include_content": "false",
            "redact_secrets": "off", "redact_personal": "off", "redact_custom": "on",
            "spool_fsync": "interval", "retry_multiplier": "2", "retry_initial_ms": "1000",
            "retry_max_ms": "30000", "retry_max_elapsed_ms": "300000",
            "spool_bytes": "1073741824"})
        self.assertEqual(cfg["exporter plain"]["redact_secrets"], "on")
        self.assertEqual(cfg["exporter plain"]["include_content"], "true")
        p = cfg["exporter plain"]
        self.assertEqual((p["type"], p["protocol"], p["endpoint"], p["insecure"]),
                         ("otel-collector", "grpc", "http://127.0.0.1:4317", "true"))
        self.assertEqual(cfg["exporter archive"]["type"], "file")
        self.assertEqual(cfg["exporter archive"]["path"], self.tmp + "/archive.jsonl")
        self.assertEqual(cfg["exporter people"]["type"], "console")

    def test_file_settings_reach_the_running_exporter(self):
        path = self.conf("""\
[exporter small]
endpoint = {url}
batch_size = 7
batch_delay = 50
compression = gzip
headers = x-tenant=acme,x-note=a%20b
""".format(url=self.rx.url))
        d = self.daemon(["--config", path])
        self.demo(d)
        spans = self.wait_spans(DEMO_SPANS)
        self.assert_demo_tree(spans)
        reqs = self.rx.requests
        self.assertGreaterEqual(len(reqs), DEMO_SPANS // 7)
        for q in reqs:
            self.assertLessEqual(q["n_spans"], 7, "batch_size bounds each request")
            self.assertEqual(q["content_encoding"], "gzip")
            self.assertEqual(q["headers"].get("x-tenant"), "acme")
            self.assertEqual(q["headers"].get("x-note"), "a b")
            self.assertIsNone(q["decode_error"])
        st = self.exported(d, "small", DEMO_SPANS)
        self.assertEqual(st["exporter.small.requests"], len(reqs))
        self.assertEqual(st["exporter.small.failures"], 0)
        self.assertIn("exporting OTLP/HTTP protobuf to %s with gzip (exporter small)"
                      % self.rx.url, d.stderr())

    def test_precedence_flags_environment_file_defaults(self):
        path = self.conf("""\
[daemon]
socket = {tmp}/file.sock
log_level = debug
[limits]
max_frame = 65536
drain_timeout_ms = 1234
""".format(tmp=self.tmp))
        cfg = self.check(path)
        self.assertEqual(cfg["daemon"]["socket"], self.tmp + "/file.sock")
        self.assertEqual(cfg["daemon"]["log_level"], "debug")
        self.assertEqual(cfg["limits"]["max_frame"], "65536")
        self.assertEqual(cfg["limits"]["max_open_spans"], "10000", "default")
        env = {"SIDESPAN_SOCKET": self.tmp + "/env.sock"}
        cfg = self.check(path, env=env)
        self.assertEqual(cfg["daemon"]["socket"], self.tmp + "/env.sock", "environment > file")
        cfg = self.check(path, ["--socket", self.tmp + "/flag.sock", "--max-frame", "70000",
                                "--log-level", "err", "--max-open-spans", "5"], env=env)
        self.assertEqual(cfg["daemon"]["socket"], self.tmp + "/flag.sock", "flags > environment")
        self.assertEqual(cfg["daemon"]["log_level"], "err", "flags > file")
        self.assertEqual(cfg["limits"]["max_frame"], "70000", "flags > file")
        self.assertEqual(cfg["limits"]["drain_timeout_ms"], "1234", "the file's, no flag")
        self.assertEqual(cfg["limits"]["max_open_spans"], "5", "flags > defaults")
        # And what runs: the daemon listens where the flag says, with the file's limit.
        d = self.daemon(["--config", path], env=env)
        self.assertIn("listening on " + d.socket, d.stderr())
        self.assertFalse(os.path.exists(self.tmp + "/file.sock"))
        self.assertFalse(os.path.exists(self.tmp + "/env.sock"))

    def test_allow_list_flags_replace_the_files(self):
        path = self.conf("[daemon]\nallow_uids = 4242\nallow_gids = 4343\n")
        cfg = self.check(path, ["--allow-uids", "5151", "--allow-gids", "5252"])
        # --allow-uids and --allow-gids replace the file's lists (flags > file): a flag meant
        # to narrow who may connect must not let the file's users in too.
        self.assertEqual(cfg["daemon"].get("allow_uids"), "5151")
        self.assertEqual(cfg["daemon"].get("allow_gids"), "5252")

    def bad_file(self):
        """A file with one error of each kind, and what each error line must name."""
        text = """\
[daemon]
log_level = loud
colour = blue

[limits]
max_frame = 10

[exporter x]
endpoint = notaurl
timeout = -5
batch_delay = 0
queue_bytes = lots
max_in_flight = 1025
bogus_key = 1
compression = zstd
protocol = thrift
insecure = maybe
headers = novalue
type = kafka

[weird]
a = b

this line is garbage

[exporter]
endpoint = http://127.0.0.1:1
timeout = 5
"""
        want = [  # line, then what else the line must hold
            (2, "log_level", "'loud'"), (3, "colour"), (6, "max_frame", "'10'"),
            (9, "endpoint", "'notaurl'"), (10, "timeout", "'-5'"), (11, "batch_delay", "'0'"),
            (12, "queue_bytes", "'lots'"), (13, "max_in_flight", "'1025'"), (14, "bogus_key"),
            (15, "compression", "'zstd'"), (16, "protocol", "'thrift'"),
            (17, "insecure", "'maybe'"), (18, "headers", "'novalue'"), (19, "type", "'kafka'"),
            (22, "[weird]"), (24, "not a [section]"), (27, "[exporter"),
        ]
        return self.conf(text), want

    def assert_errors(self, stderr, path, want):
        lines = stderr.splitlines()
        for line_no, *says in want:
            where = "%s:%d:" % (path, line_no)
            mine = [ln for ln in lines if where in ln]
            self.assertEqual(len(mine), 1, "one line for %s in:\n%s" % (where, stderr))
            for s in says:
                self.assertIn(s, mine[0])
        self.assertEqual(len(lines), len(want), "one line per error, nothing else:\n" + stderr)

    def test_every_error_reported_in_one_run(self):
        path, want = self.bad_file()
        r = self.check_fails(path)
        self.assert_errors(r.stderr, path, want)
        # Starting with it is refused the same way, before anything listens.
        rc, err = self.start_fails(["--config", path])
        self.assertEqual(rc, 2)
        self.assert_errors(err, path, want)

    def test_every_unparsable_line_reported(self):
        path = self.conf("[daemon]\nfirst garbage\nlog_level = info\nsecond garbage\n")
        r = self.check_fails(path)
        self.assertIn(path + ":2:", r.stderr)
        # Every bad line is reported, so one run finds them all.
        self.assertIn(path + ":4:", r.stderr)

    def test_long_line(self):
        value = "v" * 300
        path = self.conf("[exporter long]\nendpoint = http://127.0.0.1:4318\n"
                         "headers = x-long=%s\ntimeout = 77\n" % value)
        r = self.sidespand(["--config", path, "--check-config"])
        # A line has no length limit: a long bearer token or path is taken whole.
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("x-long=" + value + "\n", r.stdout)

    def test_check_config_masks_secrets(self):
        path = self.conf("""\
[exporter a]
endpoint = http://127.0.0.1:4318
headers = Authorization=Bearer%20SECRET-AUTH,X-API-KEY=SECRET-XAPIKEY,x-goog-api-key=SECRET-GOOG,my-Token=SECRET-TOKEN,x-client-secret=SECRET-CLIENT,x-tenant=visible-tenant

[exporter lf]
type = langfuse
host = http://127.0.0.1:1
public_key = pk-lf-SECRET-PK
secret_key = sk-lf-SECRET-SK

[exporter pl]
type = promptlayer
api_key = pl_SECRET-PL
""")
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
               "OTEL_EXPORTER_OTLP_HEADERS": "api-key=SECRET-ENV,x-env=visible-env"}
        r = self.check_fails(path, env=env, expect=0)
        out = r.stdout + r.stderr
        self.assertNotIn("SECRET", out)
        pair = base64.b64encode(b"pk-lf-SECRET-PK:sk-lf-SECRET-SK").decode()
        self.assertNotIn(pair, out)
        self.assertNotIn(pair[:12], out)
        cfg = parse_check(r.stdout)
        self.assertEqual(cfg["exporter a"]["headers"],
                         "Authorization=****,X-API-KEY=****,x-goog-api-key=****,my-Token=****,"
                         "x-client-secret=****,x-tenant=visible-tenant")
        self.assertEqual(cfg["exporter lf"]["headers"],
                         "Authorization=****,x-langfuse-ingestion-version=4")
        self.assertEqual(cfg["exporter pl"]["headers"], "X-API-KEY=****")
        env_section = [s for s in cfg if s.startswith("exporter otlp")]
        self.assertEqual(len(env_section), 1, list(cfg))
        self.assertEqual(cfg[env_section[0]]["headers"], "api-key=****,x-env=visible-env")

    def test_shipped_file_passes(self):
        cfg = self.check(SHIPPED_CONF)
        self.assertEqual([s for s in cfg if s.startswith("exporter")], ["exporter console"],
                         "nothing configured: the console")

    def shipped_blocks(self):
        """The shipped file's commented-out key = value lines, by section ("exporter NAME" for
        each example)."""
        blocks, section = {}, None
        with open(SHIPPED_CONF) as f:
            for line in f:
                m = re.match(r"^#? ?\[([a-z]+(?: [a-z]+)?)\]\s*$", line)
                if m:
                    section = m.group(1)
                    blocks.setdefault(section, [])
                    continue
                m = re.match(r"^# ([a-z_]+) = (\S.*)$", line)
                if m and section:
                    blocks[section].append((m.group(1), m.group(2)))
        return blocks

    def test_shipped_limits_are_the_defaults(self):
        blocks = self.shipped_blocks()
        limits = dict(blocks["limits"])
        cfg = self.check(SHIPPED_CONF)
        self.assertEqual(limits, cfg["limits"], "every limit documented, with its default")
        text = "[limits]\n" + "".join("%s = %s\n" % kv for kv in blocks["limits"])
        self.assertEqual(self.check(self.conf(text))["limits"], limits)

    def test_shipped_exporter_keys_and_examples(self):
        with open(SHIPPED_CONF) as f:
            text = f.read()
        defaults = dict(re.findall(r"^#   ([a-z_]+) .*\(default (\d+)\)", text, re.M))
        keys = set(re.findall(r"^#   ([a-z_]+) ", text, re.M))
        cfg = self.check(self.conf("[exporter bare]\nendpoint = http://127.0.0.1:4318\n"))
        bare = cfg["exporter bare"]
        self.assertLessEqual(set(bare), keys, "every key of an OTLP exporter is documented")
        for key in ("timeout", "batch_size", "batch_bytes", "batch_delay", "queue_bytes",
                    "max_in_flight", "max_attempts", "retry_initial_ms", "retry_max_ms",
                    "retry_max_elapsed_ms", "spool_bytes"):
            self.assertEqual(defaults.get(key), bare[key], key)
        want = {  # each example as --check-config resolves it
            "exporter jaeger": ("grpc", "http://localhost:4317"),
            "exporter tempo": ("http/protobuf", "https://tempo.example.com:4318/v1/traces"),
            "exporter langfuse": ("http/protobuf", "https://cloud.langfuse.com" + LANGFUSE_PATH),
            "exporter promptlayer": ("http/protobuf", "https://api.promptlayer.com/v1/traces"),
        }
        blocks = self.shipped_blocks()
        examples = [s for s in blocks if s.startswith("exporter ")]
        self.assertEqual(sorted(examples), sorted(list(want) + ["exporter archive",
                                                                "exporter console"]))
        for section in examples:
            # A CA bundle the test has, for the one that names an example path.
            body = "".join("%s = %s\n" % (k, self.pem("ca.pem") if k == "ca_file" else v)
                           for k, v in blocks[section])
            got = self.check(self.conf("[%s]\n%s" % (section, body)))[section]
            if section in want:
                self.assertEqual((got["protocol"], got["endpoint"]), want[section], section)
            elif section == "exporter archive":
                self.assertEqual((got["type"], got["path"]),
                                 ("file", "/var/lib/sidespan/traces.jsonl"))
            else:
                self.assertEqual(got["type"], "console")

    def test_check_config_refuses_unreadable_tls_files(self):
        missing = os.path.join(self.tmp, "no-such-ca.pem")
        path = self.conf("[exporter s]\nendpoint = https://127.0.0.1:4318\nca_file = %s\n"
                         % missing)
        rc, err = self.start_fails(["--config", path])
        self.assertIn(missing, err)
        # --check-config refuses what the start refuses: an unreadable ca_file, a cert_file
        # without its key_file.
        r = self.sidespand(["--config", path, "--check-config"])
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn(missing, r.stderr)
        path = self.conf("[exporter s]\nendpoint = https://127.0.0.1:4318\ncert_file = %s\n"
                         % SHIPPED_CONF)
        self.start_fails(["--config", path])
        r = self.sidespand(["--config", path, "--check-config"])
        self.assertEqual(r.returncode, 2, r.stdout)

    def test_check_config_names_the_flags_exporter_as_it_runs(self):
        args = ["--endpoint", self.rx.url]
        cfg = self.check(args=args)
        d = self.daemon(args)
        names = {k.split(".")[1] for k in self.stats(d) if k.startswith("exporter.")}
        self.assertEqual(names, {"otlp-http"})
        self.assertIn("(exporter otlp-http)", d.stderr())
        # Once printed as [exporter otlp], the name of the spec, not of what runs.
        self.assertIn("exporter otlp-http", cfg)


# ---- presets -------------------------------------------------------------------------------


class Presets(BackendsBase):
    def langfuse_conf(self, extra=""):
        return self.conf("[exporter lf]\ntype = langfuse\nbatch_delay = 50\n" + extra)

    def assert_langfuse_requests(self, user, password):
        self.assertTrue(self.rx.requests)
        for q in self.rx.requests:
            self.assertEqual(q["path"], LANGFUSE_PATH)
            self.assertEqual(q["headers"].get("authorization"), basic(user, password))
            self.assertEqual(q["headers"].get("x-langfuse-ingestion-version"), "4")
            self.assertEqual(q["content_type"], "application/x-protobuf")
            self.assertIsNone(q["decode_error"])

    def test_langfuse_path_basic_auth_and_json_answer(self):
        # Langfuse answers JSON, whatever was sent: a success all the same.
        self.rx.respond_with(b'{"status": "accepted", "rejected": 30, "errors": []}',
                             "application/json")
        host = "http://127.0.0.1:%d" % self.rx.port
        path = self.langfuse_conf("host = %s\npublic_key = pk-lf-test\nsecret_key = sk-lf-test\n"
                                  % host)
        d = self.daemon(["--config", path])
        self.assertIn("exporting OTLP/HTTP protobuf to %s%s (exporter lf)" % (host, LANGFUSE_PATH),
                      d.stderr())
        self.demo(d)
        self.assert_demo_tree(self.wait_spans(DEMO_SPANS))
        self.assert_langfuse_requests("pk-lf-test", "sk-lf-test")
        st = self.exported(d, "lf", DEMO_SPANS)
        self.assertEqual(st["exporter.lf.spans_exported"], DEMO_SPANS)
        self.assertEqual(st["exporter.lf.spans_dropped"], 0)
        self.assertEqual(st["exporter.lf.failures"], 0)
        self.assertEqual(st["exporter.lf.retries"], 0)

    def test_langfuse_keys_and_host_from_environment(self):
        env = {"LANGFUSE_PUBLIC_KEY": "pk-lf-env", "LANGFUSE_SECRET_KEY": "sk-lf-env",
               "LANGFUSE_HOST": "http://127.0.0.1:%d" % self.rx.port}
        d = self.daemon(["--config", self.langfuse_conf()], env=env)
        self.demo(d)
        self.wait_spans(DEMO_SPANS)
        self.assert_langfuse_requests("pk-lf-env", "sk-lf-env")
        # A key in the file is used before its variable.
        cfg = self.check(self.langfuse_conf("public_key = pk-lf-file\n"), env=env)
        self.assertEqual(cfg["exporter lf"]["endpoint"],
                         "http://127.0.0.1:%d%s" % (self.rx.port, LANGFUSE_PATH))
        d2 = self.daemon(["--config", self.langfuse_conf("public_key = pk-lf-file\n")], env=env,
                         name="d2")
        self.rx.reset()
        self.demo(d2)
        self.wait_spans(DEMO_SPANS)
        self.assert_langfuse_requests("pk-lf-file", "sk-lf-env")

    def test_langfuse_missing_key_names_the_variable(self):
        cases = [("public_key = pk\n", {}, "LANGFUSE_SECRET_KEY"),
                 ("secret_key = sk\n", {}, "LANGFUSE_PUBLIC_KEY"),
                 ("", {"LANGFUSE_PUBLIC_KEY": "pk"}, "LANGFUSE_SECRET_KEY")]
        for extra, env, var in cases:
            path = self.langfuse_conf(extra)
            r = self.check_fails(path, env=env)
            self.assertIn(var, r.stderr)
            self.assertIn("exporter lf (%s:" % path, r.stderr)
            rc, err = self.start_fails(["--config", path], env=env)
            self.assertEqual(rc, 2)
            self.assertIn(var, err)

    def test_exporter_errors_name_the_section_line(self):
        path = self.conf("# first\n\n[exporter lf]\n# the keys\ntype = langfuse\n")
        r = self.check_fails(path)
        # An exporter's origin is the FILE:LINE of its section (3), not of its first key.
        self.assertIn("exporter lf (%s:3)" % path, r.stderr)

    def test_langfuse_refuses_grpc(self):
        path = self.langfuse_conf("protocol = grpc\npublic_key = pk\nsecret_key = sk\n")
        r = self.check_fails(path)
        self.assertIn("exporter lf", r.stderr)
        self.assertIn("grpc refused", r.stderr)
        # http/json is OTLP/HTTP: taken.
        cfg = self.check(self.langfuse_conf("protocol = http/json\npublic_key = pk\n"
                                            "secret_key = sk\n"))
        self.assertEqual(cfg["exporter lf"]["protocol"], "http/json")

    def test_langfuse_regions(self):
        keys = "public_key = pk\nsecret_key = sk\n"
        cases = [("", "https://cloud.langfuse.com"), ("region = eu\n", "https://cloud.langfuse.com"),
                 ("region = us\n", "https://us.cloud.langfuse.com"),
                 ("region = jp\n", "https://jp.cloud.langfuse.com"),
                 ("region = hipaa\n", "https://hipaa.cloud.langfuse.com"),
                 ("region = us\nhost = http://127.0.0.1:1\n", "http://127.0.0.1:1")]
        for extra, host in cases:
            cfg = self.check(self.langfuse_conf(keys + extra))
            self.assertEqual(cfg["exporter lf"]["endpoint"], host + LANGFUSE_PATH, extra)
        # An endpoint given whole is used as it is.
        cfg = self.check(self.langfuse_conf(keys + "endpoint = http://127.0.0.1:1/x/v1/traces\n"))
        self.assertEqual(cfg["exporter lf"]["endpoint"], "http://127.0.0.1:1/x/v1/traces")

    def test_langfuse_bad_region_names_file_and_line(self):
        path = self.langfuse_conf("public_key = pk\nsecret_key = sk\nregion = mars\n")
        r = self.check_fails(path)
        self.assertIn("'mars'", r.stderr)
        # A bad region names the file and line of its exporter; a bad LANGFUSE_HOST names
        # the variable.
        self.assertIn(path + ":", r.stderr)
        r = self.check_fails(self.langfuse_conf("public_key = pk\nsecret_key = sk\n"),
                             env={"LANGFUSE_HOST": "notaurl"})
        self.assertIn("LANGFUSE_HOST", r.stderr)

    def test_langfuse_host_with_a_trailing_slash(self):
        cfg = self.check(self.langfuse_conf("public_key = pk\nsecret_key = sk\n"
                                            "host = http://127.0.0.1:%d/\n" % self.rx.port))
        # A host with a trailing slash, as LANGFUSE_HOST is often written, makes no "//".
        self.assertEqual(cfg["exporter lf"]["endpoint"],
                         "http://127.0.0.1:%d%s" % (self.rx.port, LANGFUSE_PATH))

    def test_promptlayer_sends_x_api_key(self):
        conf = "[exporter pl]\ntype = promptlayer\nendpoint = %s\nbatch_delay = 50\n" % self.rx.url
        d = self.daemon(["--config", self.conf(conf + "api_key = pl_file\n")])
        self.demo(d)
        self.assert_demo_tree(self.wait_spans(DEMO_SPANS))
        for q in self.rx.requests:
            self.assertEqual(q["path"], "/v1/traces")
            self.assertEqual(q["headers"].get("x-api-key"), "pl_file")
        self.assertEqual(self.exported(d, "pl", DEMO_SPANS)["exporter.pl.spans_exported"],
                         DEMO_SPANS)
        # From the environment when the file has none.
        self.rx.reset()
        d2 = self.daemon(["--config", self.conf(conf)], env={"PROMPTLAYER_API_KEY": "pl_env"},
                         name="d2")
        self.demo(d2)
        self.wait_spans(DEMO_SPANS)
        self.assertEqual({q["headers"].get("x-api-key") for q in self.rx.requests}, {"pl_env"})

    def test_promptlayer_default_endpoint_and_missing_key(self):
        cfg = self.check(self.conf("[exporter pl]\ntype = promptlayer\napi_key = k\n"))
        self.assertEqual(cfg["exporter pl"]["endpoint"], "https://api.promptlayer.com/v1/traces")
        self.assertEqual(cfg["exporter pl"]["protocol"], "http/protobuf")
        path = self.conf("[exporter pl]\ntype = promptlayer\n")
        r = self.check_fails(path)
        self.assertIn("PROMPTLAYER_API_KEY", r.stderr)
        self.assertIn("exporter pl", r.stderr)
        rc, err = self.start_fails(["--config", path])
        self.assertIn("PROMPTLAYER_API_KEY", err)
        r = self.check_fails(self.conf("[exporter pl]\ntype = promptlayer\napi_key = k\n"
                                       "protocol = grpc\n"))
        self.assertIn("grpc refused", r.stderr)

    def test_protocol_by_port(self):
        for t in ("jaeger", "tempo", "otel-collector", "otlp"):
            conf = "[exporter b]\ntype = %s\n" % t
            cfg = self.check(self.conf(conf + "endpoint = http://127.0.0.1:4318\n"))
            self.assertEqual((cfg["exporter b"]["protocol"], cfg["exporter b"]["endpoint"]),
                             ("http/protobuf", "http://127.0.0.1:4318/v1/traces"), t)
            cfg = self.check(self.conf(conf + "endpoint = http://127.0.0.1:4317\n"
                                              "insecure = true\n"))
            self.assertEqual((cfg["exporter b"]["protocol"], cfg["exporter b"]["endpoint"]),
                             ("grpc", "http://127.0.0.1:4317"), t)
            cfg = self.check(self.conf(conf + "endpoint = https://127.0.0.1:4317\n"))
            self.assertEqual(cfg["exporter b"]["protocol"], "grpc", t)
            # A protocol set wins over the port.
            cfg = self.check(self.conf(conf + "endpoint = http://127.0.0.1:4317\n"
                                              "protocol = http/protobuf\n"))
            self.assertEqual((cfg["exporter b"]["protocol"], cfg["exporter b"]["endpoint"]),
                             ("http/protobuf", "http://127.0.0.1:4317/v1/traces"), t)
            # gRPC over http:// is plain text: only with insecure = true.
            r = self.check_fails(self.conf(conf + "endpoint = http://127.0.0.1:4317\n"))
            self.assertIn("insecure", r.stderr)
        for t in ("jaeger", "tempo", "otel-collector"):
            cfg = self.check(self.conf("[exporter b]\ntype = %s\n" % t))
            self.assertEqual((cfg["exporter b"]["protocol"], cfg["exporter b"]["endpoint"]),
                             ("grpc", "http://localhost:4317"), t)
            cfg = self.check(self.conf("[exporter b]\ntype = %s\nprotocol = http/protobuf\n" % t))
            self.assertEqual(cfg["exporter b"]["endpoint"], "http://localhost:4318/v1/traces", t)

    def test_start_log_says_which_protocol_and_why(self):
        # Nothing is exported here (gRPC export has its own suite): only the start-up line.
        for t, port, line in (
                ("jaeger", 4318, "exporting OTLP/HTTP protobuf to http://127.0.0.1:4318/v1/traces "
                                 "(exporter jaeger)"),
                ("tempo", 4318, "exporting OTLP/HTTP protobuf to http://127.0.0.1:4318/v1/traces "
                                "(exporter tempo)"),
                ("tempo", 4317, "exporting OTLP/gRPC to http://127.0.0.1:4317 in plain text "
                                "(exporter tempo; gRPC chosen for port 4317 (set the protocol to "
                                "override))")):
            d = self.daemon(["--config", self.conf("[exporter %s]\ntype = %s\ninsecure = true\n"
                                                   "endpoint = http://127.0.0.1:%d\n"
                                                   % (t, t, port))],
                            name="%s-%d" % (t, port))
            self.assertIn(line, d.stderr())
            self.assertEqual(d.stop(), 0)


# ---- OTLP/JSON -----------------------------------------------------------------------------


class ReceiverJson(unittest.TestCase):
    """The receiver's OTLP/JSON decoder is as strict as the tests that rely on it say."""

    GOOD = ('{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
            '{"stringValue":"s"}}]},"scopeSpans":[{"scope":{"name":"x"},"spans":[{'
            '"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708",'
            '"parentSpanId":"1112131415161718","name":"n","kind":2,'
            '"startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{"key":"i","value":'
            '{"intValue":"-7"}},{"key":"b","value":{"bytesValue":"AAE="}},{"key":"a","value":'
            '{"arrayValue":{}}}],"droppedAttributesCount":3,"status":{"code":2}}]}]}]}')

    @classmethod
    def setUpClass(cls):
        cls.pb = load_protos(os.environ["PROTO_DIR"])

    def spans(self, text):
        return flatten_request(decode_json(self.pb, text.encode()))

    def test_good_request(self):
        (s,) = self.spans(self.GOOD)
        self.assertEqual((s["trace_id"], s["span_id"], s["parent_span_id"]),
                         ("0102030405060708090a0b0c0d0e0f10", "0102030405060708",
                          "1112131415161718"))
        self.assertEqual((s["kind"], s["status_code"], s["start_time_unix_nano"]), (2, 2, 1))
        self.assertEqual(s["attributes"], {"i": -7, "b": b"\x00\x01", "a": []})
        self.assertEqual(s["dropped_attributes_count"], 3)
        self.assertEqual(s["service_name"], "s")

    def test_what_is_refused(self):
        bad = [
            ('"resourceSpans"', '"resource_spans"'),          # the protobuf name
            ('"spanId":"0102030405060708"', '"spanId":"AQIDBAUGBwg="'),  # base64 id
            ('"spanId":"0102030405060708"', '"spanId":"01020304050607"'),  # short id
            ('"spanId":"0102030405060708"', '"spanId":"0102030405060A08"'),  # upper case
            ('"kind":2', '"kind":"SPAN_KIND_SERVER"'),       # enum by name
            ('"kind":2', '"kind":9'),                          # no such value
            ('"startTimeUnixNano":"1"', '"startTimeUnixNano":1'),  # int64 as a number
            ('{"intValue":"-7"}', '{"intValue":-7}'),
            ('"droppedAttributesCount":3', '"droppedAttributesCount":"3"'),  # uint32 string
            ('"name":"n"', '"name":null'),
            ('"name":"n"', '"name":"n","name":"m"'),          # duplicate key
            ('{"intValue":"-7"}', '{"intValue":"-7","stringValue":"x"}'),  # two of a oneof
            ('"name":"n"', '"name":"n","extra":1'),           # unknown key
        ]
        for old, new in bad:
            self.assertIn(old, self.GOOD)
            with self.assertRaises(JsonDecodeError, msg=new):
                self.spans(self.GOOD.replace(old, new, 1))


class OtlpJson(BackendsBase):
    def json_and_protobuf(self, before_start=None):
        """A daemon with exporters json (OTLP/JSON to self.rx) and proto (protobuf to a
        receiver of its own, returned with the daemon); before_start(rx) for each receiver."""
        proto_rx = self.receiver()
        path = self.conf("""\
[exporter json]
endpoint = {json}
protocol = http/json
batch_delay = 50

[exporter proto]
endpoint = {proto}
batch_delay = 50
""".format(json=self.rx.url, proto=proto_rx.url))
        for rx in (self.rx, proto_rx):
            if before_start:
                before_start(rx)
        return self.daemon(["--config", path]), proto_rx

    def test_demo_trace_is_the_same_over_json_and_protobuf(self):
        d, proto_rx = self.json_and_protobuf()
        self.assertIn("exporting OTLP/HTTP JSON to %s (exporter json)" % self.rx.url, d.stderr())
        self.demo(d, runs=2)
        json_spans = self.wait_spans(2 * DEMO_SPANS)
        self.assertTrue(proto_rx.wait_spans(2 * DEMO_SPANS, 20))
        self.assert_demo_tree(json_spans, runs=2)
        for q in self.rx.requests:
            self.assertEqual((q["content_type"], q["format"], q["decode_error"], q["status"]),
                             ("application/json", "json", None, 200))
        for q in proto_rx.requests:
            self.assertEqual(q["content_type"], "application/x-protobuf")
        by_id = {s["span_id"]: s for s in proto_rx.spans()}
        self.assertEqual(len(by_id), 2 * DEMO_SPANS)
        for s in json_spans:
            self.assertEqual(s, by_id[s["span_id"]], s["name"])
        st = self.exported(d, "json", 2 * DEMO_SPANS)
        self.assertEqual(st["exporter.json.spans_exported"], 2 * DEMO_SPANS)
        self.assertEqual(st["exporter.json.failures"], 0)

    def test_environment_protocol_json_with_gzip(self):
        d = self.daemon(["--batch-delay-ms", "50"],
                        env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": self.rx.url,
                             "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                             "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"})
        self.assertIn("exporting OTLP/HTTP JSON to %s with gzip" % self.rx.url, d.stderr())
        self.demo(d)
        self.assert_demo_tree(self.wait_spans(DEMO_SPANS))
        for q in self.rx.requests:
            self.assertEqual((q["format"], q["content_encoding"], q["decode_error"]),
                             ("json", "gzip", None))

    def test_partial_success_is_counted(self):
        d, proto_rx = self.json_and_protobuf(
            lambda rx: rx.partial_next(3, "three spans refused"))
        self.send_trace(d, "partly", 4)
        self.assertTrue(self.rx.wait_spans(5, 20) and proto_rx.wait_spans(5, 20))
        self.assertEqual([q["n_spans"] for q in self.rx.requests], [5])
        st = self.wait_stats(d, "both requests done",
                             lambda st: st["exporter.proto.spans_exported"] +
                             st["exporter.proto.spans_dropped"] == 5 and
                             st["exporter.json.spans_exported"] +
                             st["exporter.json.spans_dropped"] == 5)
        self.assertEqual(st["exporter.proto.spans_dropped"], 3)
        # The answer to an OTLP/JSON request is OTLP/JSON, {"partialSuccess":
        # {"rejectedSpans": "3", ...}}: its rejected spans are counted and logged too.
        self.assertEqual(st["exporter.json.spans_dropped"], 3)
        self.assertIn("rejected 3 of 5 spans: three spans refused", d.stderr())


# ---- TLS -----------------------------------------------------------------------------------


class Tls(BackendsBase):
    @classmethod
    def setUpClass(cls):
        cls.certs = Certs()

    @classmethod
    def tearDownClass(cls):
        cls.certs.cleanup()

    def tls_receiver(self, mutual=False):
        c = self.certs
        return self.receiver(tls={"cert": c.server, "key": c.server_key,
                                  "client_ca": c.ca if mutual else None})

    def tls_conf(self, rx, **keys):
        lines = ["[exporter secure]", "endpoint = https://127.0.0.1:%d" % rx.port,
                 "batch_delay = 50"] + ["%s = %s" % kv for kv in keys.items()]
        return ["--config", self.conf("\n".join(lines) + "\n")]

    def deliver(self, d, rx, runs=1):
        self.demo(d, runs)
        self.assertTrue(rx.wait_spans(runs * DEMO_SPANS, 20),
                        "%d spans; TLS errors: %s" % (len(rx.spans()), rx.tls_errors))
        self.assert_demo_tree(rx.spans(), runs)
        self.assertEqual(rx.tls_errors, [])

    def test_ca_file_delivers(self):
        rx = self.tls_receiver()
        d = self.daemon(self.tls_conf(rx, ca_file=self.certs.ca))
        self.deliver(d, rx)
        self.assertEqual({q["client_cert"] for q in rx.requests}, {None})
        st = self.exported(d, "secure", DEMO_SPANS)
        self.assertEqual(st["exporter.secure.spans_exported"], DEMO_SPANS)
        self.assertEqual(st["exporter.secure.failures"], 0)

    def test_mutual_tls_delivers(self):
        rx = self.tls_receiver(mutual=True)
        c = self.certs
        d = self.daemon(self.tls_conf(rx, ca_file=c.ca, cert_file=c.client, key_file=c.client_key))
        self.deliver(d, rx)
        self.assertEqual({q["client_cert"] for q in rx.requests}, {"sidespan-test-client"})

    def tls_errors(self, rx, timeout=10):
        """rx's failed handshakes, once it has one: its thread may note the client's abort
        after the daemon has counted the failure."""
        deadline = time.monotonic() + timeout
        while not rx.tls_errors and time.monotonic() < deadline:
            time.sleep(0.02)
        return rx.tls_errors

    def failing(self, rx, **keys):
        """A daemon whose exporter cannot reach rx: one span sent, failures awaited."""
        d = self.daemon(self.tls_conf(rx, max_attempts=1, **keys) + ["--drain-timeout-ms", "500"])
        self.send_trace(d, "refused")
        st = self.dropped(d, "secure", 1, "the request failed")
        self.assertGreaterEqual(st["exporter.secure.failures"], 1)
        self.assertEqual(st["exporter.secure.spans_exported"], 0)
        self.assertEqual(rx.spans(), [])
        return d

    def test_mutual_tls_without_client_certificate_fails(self):
        rx = self.tls_receiver(mutual=True)
        self.failing(rx, ca_file=self.certs.ca)
        self.assertTrue(self.tls_errors(rx), "the receiver refused the handshake")

    def test_wrong_ca_fails_counted_and_logged(self):
        rx = self.tls_receiver()
        d = self.failing(rx, ca_file=self.certs.other_ca)
        self.assertTrue(self.tls_errors(rx), "the handshake failed")
        err = d.stderr()
        self.assertRegex(err, r"(?i)certificate")
        self.assertIn("dropping 1 spans", err)
        # Under the exporter's name: with several, the log says which backend failed.
        failure = [ln for ln in err.splitlines() if "dropping 1 spans" in ln]
        self.assertIn("secure", failure[0])

    def test_unreadable_files_are_start_errors(self):
        c = self.certs
        missing = os.path.join(self.tmp, "missing.pem")
        rx = self.tls_receiver()
        cases = [
            ({"ca_file": missing}, [missing]),
            ({"ca_file": c.ca, "cert_file": missing, "key_file": c.client_key}, [missing]),
            ({"ca_file": c.ca, "cert_file": c.client, "key_file": missing}, [missing]),
            ({"cert_file": c.client}, ["cert_file", "key_file"]),
            ({"key_file": c.client_key}, ["cert_file", "key_file"]),
        ]
        for keys, says in cases:
            rc, err = self.start_fails(self.tls_conf(rx, **keys))
            for s in says:
                self.assertIn(s, err, keys)
            self.assertIn("exporter secure", err)
        env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rx.url}
        for var in ("OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"):
            rc, err = self.start_fails([], env=dict(env, **{var: missing}))
            self.assertIn(missing, err, var)
        rc, err = self.start_fails([], env=dict(env, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=c.client))
        self.assertIn("key_file", err)

    def test_environment_certificates(self):
        rx = self.tls_receiver(mutual=True)
        c = self.certs
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://127.0.0.1:%d" % rx.port,
               "OTEL_EXPORTER_OTLP_CERTIFICATE": c.other_ca,  # the TRACES_ one wins
               "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": c.ca,
               "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": c.client,
               "OTEL_EXPORTER_OTLP_CLIENT_KEY": c.client_key}
        d = self.daemon(["--batch-delay-ms", "50"], env=env)
        self.deliver(d, rx)
        self.assertEqual({q["client_cert"] for q in rx.requests}, {"sidespan-test-client"})
        cfg = self.check(env=env)
        sec = [v for k, v in cfg.items() if k.startswith("exporter otlp")][0]
        self.assertEqual((sec["ca_file"], sec["cert_file"], sec["key_file"]),
                         (c.ca, c.client, c.client_key))


# ---- the environment -----------------------------------------------------------------------


class Environment(BackendsBase):
    def env_daemon(self, env, args=()):
        d = self.daemon(["--batch-delay-ms", "50"] + list(args), env=env)
        self.demo(d)
        self.assert_demo_tree(self.wait_spans(DEMO_SPANS))
        return d

    def test_base_endpoint_gets_v1_traces(self):
        self.env_daemon({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:%d/base" % self.rx.port})
        self.assertEqual({q["path"] for q in self.rx.requests}, {"/base/v1/traces"})

    def test_traces_endpoint_is_taken_as_given_and_wins(self):
        self.env_daemon({
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:%d" % dead_port(),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:%d/custom/v1/traces"
                                                  % self.rx.port})
        self.assertEqual({q["path"] for q in self.rx.requests}, {"/custom/v1/traces"})

    def test_headers_percent_decoded_traces_variant_wins(self):
        self.env_daemon({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": self.rx.url,
                         "OTEL_EXPORTER_OTLP_HEADERS": "x-general=no",
                         "OTEL_EXPORTER_OTLP_TRACES_HEADERS":
                             "x-one=a%20b,x-two=%3D%2C%25,Authorization=Basic%20YTpi"})
        for q in self.rx.requests:
            h = q["headers"]
            self.assertEqual((h.get("x-one"), h.get("x-two"), h.get("authorization")),
                             ("a b", "=,%", "Basic YTpi"))
            self.assertNotIn("x-general", h)

    def test_traces_variants_win(self):
        self.env_daemon({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": self.rx.url,
                         "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                         "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json",
                         "OTEL_EXPORTER_OTLP_COMPRESSION": "none",
                         "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip"})
        for q in self.rx.requests:
            self.assertEqual((q["format"], q["content_encoding"]), ("json", "gzip"))

    def test_compression_gzip(self):
        self.env_daemon({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": self.rx.url,
                         "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"})
        for q in self.rx.requests:
            self.assertEqual((q["format"], q["content_encoding"], q["decode_error"]),
                             ("protobuf", "gzip", None))

    def test_flags_win_over_environment(self):
        d = self.env_daemon({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":
                                 "http://127.0.0.1:%d/v1/traces" % dead_port(),
                             "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
                             "OTEL_EXPORTER_OTLP_HEADERS": "x-env=1"},
                            ["--endpoint", self.rx.url, "--compression", "none",
                             "--header", "x-flag=2"])
        for q in self.rx.requests:
            self.assertEqual(q["content_encoding"], "")
            self.assertEqual(q["headers"].get("x-flag"), "2")
            self.assertNotIn("x-env", q["headers"])
        self.assertEqual(self.stats(d)["exporter.otlp-http.failures"], 0)

    def test_timeout(self):
        hang = Hanging()
        self.addCleanup(hang.stop)
        env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:%d/v1/traces" % hang.port,
               "OTEL_EXPORTER_OTLP_TIMEOUT": "600000",
               "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "300"}
        cfg = self.check(env=env)
        self.assertEqual([v["timeout"] for k, v in cfg.items() if k.startswith("exporter")],
                         ["300"])
        d = self.daemon(["--batch-delay-ms", "50", "--max-attempts", "1",
                         "--drain-timeout-ms", "500"], env=env)
        self.send_trace(d, "never.answered")
        # The general variable's ten minutes would hold the request past this deadline.
        st = self.dropped(d, "otlp-http", 1, "the request timed out")
        self.assertEqual(st["exporter.otlp-http.failures"], 1)
        self.assertGreaterEqual(hang.accepted, 1)
        self.assertGreater(hang.bytes_read, 0, "the request was sent")
        self.assertRegex(d.stderr(), r"(?i)time(d)? ?out")


# ---- fan-out -------------------------------------------------------------------------------


class FanOut(BackendsBase):
    def test_dead_and_hanging_backends_do_not_hold_up_a_healthy_one(self):
        stopped = self.receiver()
        stopped.stop()  # gone: its port refuses connections
        hang = Hanging()
        self.addCleanup(hang.stop)
        path = self.conf("""\
[limits]
drain_timeout_ms = 500

[exporter dead]
endpoint = http://127.0.0.1:{dead}
batch_delay = 50

[exporter hang]
endpoint = http://127.0.0.1:{hang}
batch_delay = 50
timeout = 3000
max_attempts = 1

[exporter healthy]
endpoint = {url}
batch_delay = 50
""".format(dead=stopped.port, hang=hang.port, url=self.rx.url))
        d = self.daemon(["--config", path])
        runs = 3
        self.demo(d, runs)
        spans = self.wait_spans(runs * DEMO_SPANS, timeout=10)
        self.assert_demo_tree(spans, runs)
        delivered = self.rx.requests[-1]["time"]
        with hang.cond:
            self.assertTrue(hang.cond.wait_for(lambda: hang.bytes_read > 0, 20),
                            "the hanging backend got a request")
        st = self.wait_stats(d, "both bad exporters failed",
                             lambda st: st["exporter.dead.failures"] >= 1 and
                             st["exporter.hang.failures"] >= 1)
        # The healthy backend had every span before the hanging one's first request ended.
        # (The daemon counts the failure when it closes; the server thread sees the close a
        # poll later.)
        with hang.cond:
            self.assertTrue(hang.cond.wait_for(lambda: hang.first_close is not None, 20),
                            "the daemon closed its request to the hanging backend")
        self.assertLess(delivered, hang.first_close)
        n = runs * DEMO_SPANS
        for name in ("dead", "hang", "healthy"):
            self.assertEqual(st["exporter.%s.spans_in" % name], n, name)
        self.assertEqual(st["exporter.healthy.spans_exported"], n)
        self.assertEqual(st["exporter.healthy.spans_dropped"], 0)
        self.assertEqual(st["exporter.healthy.failures"], 0)
        self.assertEqual(st["exporter.healthy.retries"], 0)
        self.assertEqual(st["exporter.dead.spans_exported"], 0)
        self.assertEqual(st["exporter.hang.spans_exported"], 0)
        self.assertEqual(d.stop(), 0, d.stderr())


if __name__ == "__main__":
    unittest.main()
