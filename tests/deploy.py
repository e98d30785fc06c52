#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""deploy/docker-compose.yml and deploy/Dockerfile, checked without a container
engine (issue 10): `docker-compose config -q` parses and validates the compose
file, and a structural check reads the Dockerfile (stages, the final stage's
user, HEALTHCHECK, ENTRYPOINT, no ADD of a URL). Debian 12 packages no
Dockerfile linter, so the structural check is all the Dockerfile gets.

Run by meson with SIDESPAN_SOURCE_ROOT set (suite integration, test deploy).
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

DEPLOY = os.path.join(os.environ["SIDESPAN_SOURCE_ROOT"], "deploy")
COMPOSE = os.path.join(DEPLOY, "docker-compose.yml")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")


def dockerfile_instructions(path):
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, cur = [], ""
    with open(path) as f:
        for line in f:
            s = line.rstrip("\n")
            if not cur and (not s.strip() or s.lstrip().startswith("#")):
                continue
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            cur += s
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    return out


class Compose(unittest.TestCase):
    def test_config_is_valid(self):
        exe = shutil.which("docker-compose")
        if exe is None:
            self.skipTest("docker-compose absent (sh scripts/install-deps.sh installs it)")
        r = subprocess.run([exe, "-f", COMPOSE, "config", "-q"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_services(self):
        exe = shutil.which("docker-compose")
        if exe is None:
            self.skipTest("docker-compose absent")
        r = subprocess.run([exe, "-f", COMPOSE, "config", "--services"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(sorted(r.stdout.split()), ["demo-agent", "jaeger", "sidespand"])
        r = subprocess.run([exe, "-f", COMPOSE, "config", "--volumes"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.stdout.split(), ["sidespan-socket"])


class Dockerfile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ins = dockerfile_instructions(DOCKERFILE)
        last_from = max(i for i, (w, _) in enumerate(cls.ins) if w == "FROM")
        cls.final = cls.ins[last_from:]

    def test_two_stages_on_debian_12(self):
        froms = [a for w, a in self.ins if w == "FROM"]
        self.assertEqual(len(froms), 2, froms)
        self.assertRegex(froms[0], r"^debian:12 AS build$")
        self.assertEqual(froms[1], "debian:12-slim")
        self.assertIn(("COPY", "--from=build /dest/usr/sbin/sidespand /usr/sbin/sidespand"),
                      self.final)

    def test_final_stage_is_not_root(self):
        users = [a for w, a in self.final if w == "USER"]
        self.assertTrue(users, "no USER in the final stage")
        self.assertNotRegex(users[-1], r"^(root|0)(:|$)")

    def test_healthcheck_runs_the_installed_cli_as_it_parses(self):
        """The health check's command line, run with the built sidespan against a real
        daemon on a temporary socket, exits 0; the image has that binary."""
        (hc,) = [a for w, a in self.final if w == "HEALTHCHECK"]
        cmd = hc.split(" CMD ", 1)[1].split(">")[0].split()
        self.assertEqual(cmd[0], "sidespan")
        self.assertIn(("COPY", "--from=build /dest/usr/bin/sidespan /usr/bin/sidespan"),
                      self.final)
        build = " ".join(a for w, a in self.ins[:self.ins.index(("FROM", "debian:12-slim"))]
                         if w == "RUN")
        self.assertIn("tools/sidespan", build, "the build stage compiles the CLI")
        with tempfile.TemporaryDirectory() as tmp:
            sock = os.path.join(tmp, "d.sock")
            d = subprocess.Popen([os.environ["SIDESPAND"], "--socket", sock],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for _ in range(500):
                    if os.path.exists(sock):
                        break
                    time.sleep(0.02)
                args = [a.replace("/run/sidespan/sidespan.sock", sock) for a in cmd[1:]]
                r = subprocess.run([os.environ["SIDESPAN_CLI"]] + args, capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stderr)
            finally:
                d.terminate()
                d.wait()
            # and it fails when no daemon answers, as a health check must
            r = subprocess.run([os.environ["SIDESPAN_CLI"]] + args, capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(r.returncode, 1, r.stderr)

    def test_healthcheck_entrypoint_volume(self):
        words = [w for w, _ in self.final]
        self.assertIn("HEALTHCHECK", words)
        self.assertIn('VOLUME', words)
        entry = [a for w, a in self.final if w == "ENTRYPOINT"]
        self.assertEqual(len(entry), 1)
        self.assertIn('"--socket", "/run/sidespan/sidespan.sock"', entry[0])

    def test_no_add_of_urls_and_no_unknown_instructions(self):
        known = {"FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "VOLUME",
                 "EXPOSE", "HEALTHCHECK", "ENTRYPOINT", "CMD", "LABEL", "STOPSIGNAL", "SHELL"}
        for w, a in self.ins:
            self.assertIn(w, known, (w, a))
            if w == "ADD":
                self.assertNotRegex(a, r"https?://")

    def test_runtime_packages_cover_the_daemons_libraries(self):
        run = " ".join(a for w, a in self.final if w == "RUN")
        for pkg in ("libuv1", "libcurl4", "libmsgpackc2", "libprotobuf-c1", "libgrpc29",
                    "libpcre2-8-0", "libmicrohttpd12", "zlib1g"):
            self.assertRegex(run, r"\b%s\b" % re.escape(pkg))


if __name__ == "__main__":
    unittest.main()
