#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""sidespand under systemd (issue 10), without systemd running: what a socket
unit and a Type=notify service do to a process, done by this test.

- socket activation: a listening socket passed as fd 3 with LISTEN_PID and
  LISTEN_FDS is used instead of --socket, left in place at exit, and serves a
  second daemon the connections queued while none ran; a descriptor that is
  no listening AF_UNIX stream socket fails start-up naming what is wrong;
  LISTEN_PID of another process is ignored;
- the notification protocol: READY=1, STATUS= with counters, WATCHDOG=1 at
  half of WATCHDOG_USEC, STOPPING=1 on SIGTERM, on a path and an abstract
  NOTIFY_SOCKET;
- MemoryDenyWriteExecute=yes (the kernel's PR_SET_MDWE, as systemd sets it):
  redaction still masks, in PCRE2's interpreter, and says so once;
- the installed units: systemd-analyze verify, and systemd-analyze security
  with its exposure score printed and held under EXPOSURE_MAX.

Run by meson with SIDESPAND, SIDESPAN_BUILD_ROOT and SIDESPAN_SOURCE_ROOT set
(suite integration, test systemd).
"""

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest_lib import RawClient, send_trace, span_end, span_start  # noqa: E402

SIDESPAND = os.environ.get("SIDESPAND", "sidespand")
# systemd-analyze security's overall exposure for sidespand.service was 1.2 with
# systemd 252 (README.md); a hardening setting lost pushes it past this.
EXPOSURE_MAX = 2.0
# Move the socket given as stdin to fd 3 and become sidespand with LISTEN_PID naming
# the process itself, as systemd does: the shell's pid is sidespand's after exec.
ACTIVATE = 'exec 3<&0 0</dev/null; LISTEN_PID=${TEST_LISTEN_PID:-$$} exec "$0" "$@"'
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1


def file_spans(path):
    """The spans of the file exporter's OTLP/JSON lines, as {name: attributes}."""
    spans = {}
    if not os.path.exists(path):
        return spans
    with open(path) as f:
        for line in f:
            if not line.endswith("\n"):
                break  # a line still being written
            for rs in json.loads(line)["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for s in ss["spans"]:
                        spans[s["name"]] = {a["key"]: a["value"] for a in s.get("attributes", [])}
    return spans


def wait_for(what, timeout=15, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = what()
        if v:
            return v
        time.sleep(step)
    return what()


def set_mdwe():
    """In the child: refuse writable+executable memory from now on (Linux 6.3)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        os._exit(125)


def mdwe_supported():
    pid = os.fork()
    if pid == 0:
        set_mdwe()
        os._exit(0)
    return os.waitpid(pid, 0)[1] == 0


class Proc:
    """sidespand (perhaps behind the activation shell) with its stderr in a file."""

    def __init__(self, tmp, name, args, env=None, stdin=None, activated=False, preexec_fn=None):
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "w")
        full = {k: v for k, v in os.environ.items()
                if not k.startswith(("OTEL_", "UPSONIC_", "SIDESPAN_", "LISTEN_", "NOTIFY_",
                                     "WATCHDOG_"))}
        full.update(env or {})
        argv = [SIDESPAND, "--log-level", "debug"] + list(args)
        if activated:
            argv = ["sh", "-c", ACTIVATE] + argv
            full["LISTEN_FDS"] = "1"
        self.proc = subprocess.Popen(argv, env=full, stdin=stdin, stdout=subprocess.DEVNULL,
                                     stderr=self.log, preexec_fn=preexec_fn)

    def stderr(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, text, timeout=10):
        ok = wait_for(lambda: text in self.stderr() or self.proc.poll() is not None, timeout)
        if not ok or text not in self.stderr():
            raise AssertionError("no %r in sidespand's log: %s" % (text, self.stderr()))

    def stop(self, send=True):
        """SIGTERM (unless sent already: a second one kills) and the exit status."""
        if send and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(20)
        self.log.close()
        return rc


class Case(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory(prefix="sidespan-sd-")
        self.tmp = self.tmpdir.name
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()
            p.log.close()
        self.tmpdir.cleanup()

    def spawn(self, *args, **kw):
        p = Proc(self.tmp, "d%d" % len(self.procs), *args, **kw)
        self.procs.append(p)
        return p

    def listening_socket(self, name="act.sock"):
        path = os.path.join(self.tmp, name)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(16)
        self.addCleanup(s.close)
        return s, path

    def file_args(self, name="out.jsonl"):
        out = os.path.join(self.tmp, name)
        return out, ["--exporter", "file", "--file", out, "--batch-delay-ms", "50"]


class SocketActivation(Case):
    def test_passed_socket_is_used_and_left_in_place(self):
        s, path = self.listening_socket()
        out, args = self.file_args()
        unused = os.path.join(self.tmp, "unused.sock")
        d = self.spawn(["--socket", unused] + args, stdin=s.fileno(), activated=True)
        d.wait_log("listening on %s (socket activated)" % path)
        c = RawClient(path)
        c.hello()
        send_trace(c, "activated", 2)
        c.flush()
        spans = wait_for(lambda: len(file_spans(out)) == 2 and file_spans(out))
        self.assertEqual(sorted(spans), ["activated", "activated.child"], d.stderr())
        c.close()
        self.assertFalse(os.path.exists(unused), "bound --socket despite the passed socket")
        self.assertEqual(d.stop(), 0, d.stderr())
        # systemd's socket: still there, still accepting into its queue.
        self.assertTrue(stat.S_ISSOCK(os.lstat(path).st_mode))
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(path)
        probe.close()

    def test_connection_queued_while_down_is_served_by_the_next_daemon(self):
        s, path = self.listening_socket()
        out, args = self.file_args()
        d = self.spawn(args, stdin=s.fileno(), activated=True)
        d.wait_log("(socket activated)")
        self.assertEqual(d.stop(), 0, d.stderr())
        # No daemon now: the connection waits in the socket's backlog, the frames in its
        # buffer, as they do while systemd restarts the service.
        c = RawClient(path)
        c.hello()
        tid, sid = os.urandom(16), os.urandom(8)
        c.send(span_start(tid, sid, None, "while-down") + span_end(sid))
        d2 = self.spawn(args, stdin=s.fileno(), activated=True)
        c.flush()
        self.assertIn("while-down", wait_for(lambda: file_spans(out)), d2.stderr())
        c.close()
        self.assertEqual(d2.stop(), 0, d2.stderr())

    def test_listen_pid_of_another_process_is_ignored(self):
        s, path = self.listening_socket()
        own = os.path.join(self.tmp, "own.sock")
        d = self.spawn(["--socket", own, "--exporter", "console"], stdin=s.fileno(),
                       activated=True, env={"TEST_LISTEN_PID": str(os.getpid())})
        d.wait_log("listening on " + own)
        self.assertNotIn("socket activated", d.stderr())
        self.assertTrue(stat.S_ISSOCK(os.lstat(own).st_mode))
        self.assertEqual(d.stop(), 0, d.stderr())

    def bad_fd_fails(self, fd_source, reason):
        d = self.spawn(["--socket", os.path.join(self.tmp, "x.sock"), "--exporter", "console"],
                       stdin=fd_source, activated=True)
        rc = d.proc.wait(20)
        log = d.stderr()
        self.assertEqual(rc, 1, log)
        self.assertIn("socket activation: fd 3 " + reason, log)
        self.assertIn("needs a listening AF_UNIX stream socket", log)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.sock")), log)

    def test_udp_socket_is_refused(self):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(u.close)
        u.bind(("127.0.0.1", 0))
        self.bad_fd_fails(u.fileno(), "is a datagram socket")

    def test_regular_file_is_refused(self):
        path = os.path.join(self.tmp, "plain")
        with open(path, "w") as f:
            f.write("x")
        with open(path) as f:
            self.bad_fd_fails(f.fileno(), "is not a socket")

    def test_tcp_listener_is_refused(self):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(t.close)
        t.bind(("127.0.0.1", 0))
        t.listen(1)
        self.bad_fd_fails(t.fileno(), "is an AF_INET socket")

    def test_unix_socket_not_listening_is_refused(self):
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(u.close)
        u.bind(os.path.join(self.tmp, "bound-only.sock"))
        self.bad_fd_fails(u.fileno(), "is not listening")


class Notify(Case):
    """A datagram socket standing in for systemd's notification socket."""

    def notify_socket(self, abstract=False):
        n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(n.close)
        if abstract:
            name = "sidespan-test-%d-%s" % (os.getpid(), os.urandom(4).hex())
            n.bind("\0" + name)
            addr = "@" + name
        else:
            addr = os.path.join(self.tmp, "notify")
            n.bind(addr)
        n.settimeout(0.05)
        self.messages = []
        return n, addr

    def collect(self, n, until, timeout=10):
        """Read datagrams into self.messages until until(messages) or timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline and not until(self.messages):
            try:
                self.messages.append(n.recv(4096).decode())
            except socket.timeout:
                pass
        return until(self.messages)

    def test_ready_status_watchdog_stopping(self):
        n, addr = self.notify_socket()
        out, args = self.file_args()
        sock = os.path.join(self.tmp, "d.sock")
        d = self.spawn(["--socket", sock] + args,
                       env={"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "200000"})
        self.assertTrue(self.collect(n, lambda m: "READY=1" in m), d.stderr())
        status = [m for m in self.messages if m.startswith("STATUS=")]
        self.assertTrue(status, self.messages)
        self.assertRegex(status[0], r"^STATUS=\d+ clients, \d+ open spans, \d+ spans exported, "
                                    r"\d+ dropped$")
        # READY=1 comes once the socket listens: a client connects at once.
        c = RawClient(sock)
        c.hello()
        send_trace(c, "counted", 2)
        c.flush()
        want = "STATUS=1 clients, 0 open spans, 3 spans exported, 0 dropped"
        self.assertTrue(self.collect(n, lambda m: want in m, timeout=15),
                        [m for m in self.messages if m.startswith("STATUS=")])
        # The pings come at about 100 ms; over seconds of the test there are many.
        self.assertGreaterEqual(self.messages.count("WATCHDOG=1"), 2, self.messages)
        c.close()
        d.proc.send_signal(signal.SIGTERM)
        self.assertTrue(self.collect(n, lambda m: "STOPPING=1" in m), self.messages)
        self.assertEqual(d.stop(send=False), 0, d.stderr())
        self.collect(n, lambda m: False, timeout=0.3)
        after = self.messages[self.messages.index("STOPPING=1") + 1:]
        self.assertNotIn("WATCHDOG=1", after, "pings after STOPPING=1")
        self.assertLess(self.messages.index("READY=1"), self.messages.index("STOPPING=1"))

    def test_abstract_socket_and_watchdog_of_another_process(self):
        n, addr = self.notify_socket(abstract=True)
        d = self.spawn(["--socket", os.path.join(self.tmp, "d.sock"), "--exporter", "console"],
                       env={"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "200000",
                            "WATCHDOG_PID": "1"})
        self.assertTrue(self.collect(n, lambda m: "READY=1" in m), d.stderr())
        # WATCHDOG_PID names another process: that one is watched, not sidespand.
        self.collect(n, lambda m: False, timeout=1)
        self.assertNotIn("WATCHDOG=1", self.messages)
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertTrue(self.collect(n, lambda m: "STOPPING=1" in m), self.messages)

    def test_garbled_watchdog_usec_fails_start(self):
        n, addr = self.notify_socket()
        d = self.spawn(["--socket", os.path.join(self.tmp, "d.sock"), "--exporter", "console"],
                       env={"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "soon"})
        self.assertEqual(d.proc.wait(20), 1, d.stderr())
        self.assertIn("WATCHDOG_USEC=soon", d.stderr())


class MemoryDenyWriteExecute(Case):
    def test_redaction_without_jit(self):
        if not mdwe_supported():
            self.skipTest("prctl(PR_SET_MDWE) unsupported by this kernel (Linux 6.3 and later)")
        out, args = self.file_args()
        sock = os.path.join(self.tmp, "d.sock")
        d = self.spawn(["--socket", sock] + args, preexec_fn=set_mdwe)
        d.wait_log("listening on " + sock)
        self.assertIn("PCRE2 JIT unavailable (no writable and executable memory", d.stderr())
        c = RawClient(sock)
        c.hello()
        tid, sid = os.urandom(16), os.urandom(8)
        c.send(span_start(tid, sid, None, "agent.run",
                          attrs={"upsonic.input": "Process SSN: 123-45-6789"}) + span_end(sid))
        c.flush()
        spans = wait_for(lambda: file_spans(out))
        self.assertEqual(spans["agent.run"]["upsonic.input"],
                         {"stringValue": "Process SSN: [REDACTED:ssn]"})
        c.close()
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertEqual(d.stderr().count("PCRE2 JIT unavailable"), 1)


class Units(unittest.TestCase):
    """The units as `meson install` puts them, with paths pointed into DESTDIR."""

    @classmethod
    def setUpClass(cls):
        cls.analyze = shutil.which("systemd-analyze")
        if not cls.analyze:
            return
        build = os.environ["SIDESPAN_BUILD_ROOT"]
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="sidespan-units-")
        dest = os.path.join(cls.tmpdir.name, "dest")
        r = subprocess.run(["meson", "install", "-C", build, "--destdir", dest, "--no-rebuild",
                            "--quiet"], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("meson install failed:\n" + r.stdout + r.stderr)
        opts = {o["name"]: o["value"] for o in json.loads(subprocess.run(
            ["meson", "introspect", build, "--buildoptions"], capture_output=True, text=True,
            check=True).stdout)}
        prefix = opts["prefix"].rstrip("/")
        cls.mandir = dest + os.path.join(prefix, opts["mandir"])
        # systemd-analyze checks that ExecStart= names an executable: the installed one is
        # in DESTDIR, so each path under the prefix is pointed there in a copy.
        cls.units = os.path.join(cls.tmpdir.name, "units")
        os.mkdir(cls.units)
        found = {}
        for root, _, files in os.walk(dest):
            for f in files:
                if f in ("sidespand.service", "sidespand.socket"):
                    found[f] = os.path.join(root, f)
        cls.found = found
        for name, path in found.items():
            with open(path) as f:
                text = f.read()
            with open(os.path.join(cls.units, name), "w") as f:
                f.write(re.sub(r"(?<=[=\s])%s/" % re.escape(prefix), dest + prefix + "/", text))

    @classmethod
    def tearDownClass(cls):
        if cls.analyze:
            cls.tmpdir.cleanup()

    def setUp(self):
        if not self.analyze:
            self.skipTest("systemd-analyze absent (Debian package systemd)")
        self.assertEqual(sorted(self.found), ["sidespand.service", "sidespand.socket"])

    def unit(self, name):
        return os.path.join(self.units, name)

    def test_exec_start_points_into_destdir(self):
        with open(self.unit("sidespand.service")) as f:
            m = re.search(r"(?m)^ExecStart=(\S+)", f.read())
        self.assertTrue(m and os.access(m.group(1), os.X_OK), m and m.group(1))

    def verify(self, *units, man=False):
        env = dict(os.environ, MANPATH=self.mandir, SYSTEMD_LOG_COLOR="0")
        argv = [self.analyze, "verify"] + ([] if man else ["--man=no"]) + list(units)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
        return r.returncode, r.stdout + r.stderr

    def test_verify(self):
        # A unit that cannot be wrong: when even it draws complaints, the host is the cause
        # (no unit directories, as in some containers), not our units.
        plain = os.path.join(self.units, "plain.service")
        with open(plain, "w") as f:
            f.write("[Service]\nExecStart=/bin/true\n")
        rc, out = self.verify(plain)
        os.unlink(plain)
        if (rc, out) != (0, ""):
            self.skipTest("systemd-analyze verify fails here on a minimal unit too: " + out)
        man = os.path.isdir(self.mandir) and shutil.which("man") is not None
        if not man:
            print("systemd: man pages or man(1) absent, Documentation=man: not checked",
                  file=sys.stderr)
        # verify exits 0 on unknown keys and bad values, which it only prints.
        self.assertEqual(self.verify(self.unit("sidespand.service"),
                                     self.unit("sidespand.socket"), man=man), (0, ""))

    def test_security_exposure(self):
        r = subprocess.run([self.analyze, "security", "--offline=yes", "--no-pager",
                            self.unit("sidespand.service")],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"Overall exposure level for sidespand\.service: ([0-9.]+) (\w+)", r.stdout)
        self.assertTrue(m, r.stdout + r.stderr)
        print("systemd: systemd-analyze security sidespand.service: %s %s"
              % (m.group(1), m.group(2)), file=sys.stderr)
        self.assertLess(float(m.group(1)), EXPOSURE_MAX, r.stdout)
        for setting in ("SystemCallFilter=", "MemoryDenyWriteExecute=", "ProtectSystem=",
                        "CapabilityBoundingSet=~CAP_SYS_ADMIN"):
            self.assertRegex(r.stdout, r"(?m)^✓ %s" % re.escape(setting))


if __name__ == "__main__":
    unittest.main()
