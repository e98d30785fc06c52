#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What `meson install --destdir` puts where (issue 10): the daemon and the demo
agent executable, libsidespan with its soname and version symlinks, the headers,
sidespan.pc, the systemd units and sysusers file, the default configuration,
the pricing table, and every man page of man/*.scd as roff that groff renders
without a warning.

The directories come from the build's own options (meson introspect), so the
test holds for any --prefix. Run by meson with SIDESPAN_BUILD_ROOT and
SIDESPAN_SOURCE_ROOT set (suite integration, test install).
"""

import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

BUILD = os.environ["SIDESPAN_BUILD_ROOT"]
SOURCE = os.environ["SIDESPAN_SOURCE_ROOT"]


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)


def introspect(what):
    r = run(["meson", "introspect", BUILD, what])
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout)


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        opts = {o["name"]: o["value"] for o in introspect("--buildoptions")}
        cls.version = introspect("--projectinfo")["version"]
        cls.man_enabled = opts["man"] != "disabled" and shutil.which("scdoc") is not None
        cls.tmp = tempfile.TemporaryDirectory(prefix="sidespan-install-")
        cls.dest = cls.tmp.name
        r = run(["meson", "install", "-C", BUILD, "--destdir", cls.dest, "--no-rebuild",
                 "--quiet"])
        if r.returncode != 0:
            raise RuntimeError("meson install failed:\n" + r.stdout + r.stderr)
        prefix = opts["prefix"]

        def d(name):  # an installed directory inside DESTDIR
            return os.path.join(cls.dest + prefix, opts[name]) if not os.path.isabs(
                opts[name]) else cls.dest + opts[name]
        cls.dirs = {k: d(k) for k in ("bindir", "sbindir", "libdir", "includedir",
                                        "sysconfdir", "datadir", "mandir")}
        cls.unitdir = os.path.join(cls.dest + prefix, "lib", "systemd", "system")
        cls.sysusersdir = os.path.join(cls.dest + prefix, "lib", "sysusers.d")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def assertExecutable(self, path):
        self.assertTrue(os.path.isfile(path), path)
        self.assertTrue(os.access(path, os.X_OK), path)

    def test_programs(self):
        sidespand = os.path.join(self.dirs["sbindir"], "sidespand")
        self.assertExecutable(sidespand)
        self.assertExecutable(os.path.join(self.dirs["bindir"], "sidespan-demo-agent"))
        r = run([sidespand, "--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(self.version, r.stdout)

    def module_loads_into_the_installed_daemon(self, name, lib, args):
        # A network exporter is LIBDIR/sidespan/sidespan-NAME.so; the daemon itself does not
        # link its library, and the module resolves the daemon's functions against it.
        module = os.path.join(self.dirs["libdir"], "sidespan", "sidespan-%s.so" % name)
        self.assertTrue(os.path.isfile(module), module)
        if shutil.which("readelf"):
            self.assertIn(lib, run(["readelf", "-d", module]).stdout)
            sbin = os.path.join(self.dirs["sbindir"], "sidespand")
            self.assertNotIn(lib, run(["readelf", "-d", sbin]).stdout)
        with tempfile.TemporaryDirectory(prefix="sidespan-module-") as tmp:
            sock = os.path.join(tmp, "s.sock")
            env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
            env.update(SIDESPAN_MODULE_DIR=os.path.dirname(module),
                       OTEL_EXPORTER_OTLP_INSECURE="true")
            with open(os.path.join(tmp, "log"), "w+") as log:
                p = subprocess.Popen([os.path.join(self.dirs["sbindir"], "sidespand"),
                                      "--socket", sock, "--log-level", "debug"] + args,
                                     env=env, stdout=subprocess.DEVNULL, stderr=log)
                try:
                    deadline = time.time() + 10
                    while time.time() < deadline and p.poll() is None:
                        log.seek(0)
                        if "listening on " + sock in log.read():
                            break
                        time.sleep(0.05)
                    log.seek(0)
                    text = log.read()
                    self.assertIsNone(p.poll(), text)
                    self.assertIn("loaded the %s module event=module-loaded module=%s "
                                  "path=%s" % (name, name, module), text)
                finally:
                    p.terminate()
                    p.wait(20)

    def test_grpc_module_loads_into_the_installed_daemon(self):
        self.module_loads_into_the_installed_daemon(
            "grpc", "libgrpc.so", ["--protocol", "grpc", "--endpoint", "http://127.0.0.1:9"])

    def test_http_module_loads_into_the_installed_daemon(self):
        self.module_loads_into_the_installed_daemon(
            "http", "libcurl.so", ["--endpoint", "http://127.0.0.1:9"])

    def test_library_soname_and_symlinks(self):
        lib = self.dirs["libdir"]
        real = os.path.join(lib, "libsidespan.so." + self.version)
        soname = "libsidespan.so." + self.version.split(".")[0]
        self.assertTrue(os.path.isfile(real) and not os.path.islink(real), real)
        self.assertEqual(os.readlink(os.path.join(lib, soname)), os.path.basename(real))
        self.assertEqual(os.readlink(os.path.join(lib, "libsidespan.so")), soname)
        r = run(["readelf", "-d", real]) if shutil.which("readelf") else None
        if r is None:
            print("install: readelf absent, SONAME not read", file=sys.stderr)
        else:
            self.assertIn("Library soname: [%s]" % soname, r.stdout)

    def test_headers_and_pkg_config(self):
        for h in ("sidespan.h", "sidespan-version.h"):
            self.assertTrue(os.path.isfile(os.path.join(self.dirs["includedir"], h)), h)
        pc = os.path.join(self.dirs["libdir"], "pkgconfig", "sidespan.pc")
        with open(pc) as f:
            text = f.read()
        self.assertIn("Version: " + self.version, text)
        self.assertIn("-lsidespan", text)

    def test_systemd_units_and_sysusers(self):
        service = os.path.join(self.unitdir, "sidespand.service")
        with open(service) as f:
            text = f.read()
        self.assertNotIn("@sbindir@", text)
        self.assertIn("ExecStart=" + self.dirs["sbindir"][len(self.dest):] + "/sidespand",
                      text)
        # The socket unit is another change's; it must be installed once it exists.
        if os.path.exists(os.path.join(SOURCE, "systemd", "sidespand.socket")):
            self.assertTrue(os.path.isfile(os.path.join(self.unitdir, "sidespand.socket")))
        with open(os.path.join(self.sysusersdir, "sidespan.conf")) as f:
            self.assertRegex(f.read(), r"(?m)^u sidespan ")

    def test_configuration_and_pricing(self):
        conf = os.path.join(self.dirs["sysconfdir"], "sidespan", "sidespand.conf")
        self.assertTrue(filecmp.cmp(conf, os.path.join(SOURCE, "deploy", "sidespand.conf"),
                                    shallow=False))
        r = run([os.path.join(self.dirs["sbindir"], "sidespand"), "--config", conf,
                 "--check-config"])
        self.assertEqual(r.returncode, 0, r.stderr)
        pricing = os.path.join(self.dirs["datadir"], "sidespan", "pricing.tsv")
        self.assertTrue(filecmp.cmp(pricing, os.path.join(SOURCE, "data", "pricing.tsv"),
                                    shallow=False))

    def test_man_pages(self):
        if not self.man_enabled:
            self.skipTest("man pages not built: scdoc absent or -Dman=disabled")
        stems = sorted(f[:-4] for f in os.listdir(os.path.join(SOURCE, "man"))
                       if f.endswith(".scd"))
        self.assertIn("sidespand.8", stems)
        for stem in stems:
            with self.subTest(page=stem):
                name, section = stem.rsplit(".", 1)
                page = os.path.join(self.dirs["mandir"], "man" + section, stem)
                self.assertTrue(os.path.isfile(page), page + " (listed in man/meson.build?)")
                with open(page) as f:
                    roff = f.read()
                self.assertRegex(roff, r'(?m)^\.TH "?%s"? "?%s"?' % (name.replace(".", r"\."),
                                                                      section))
                # the NAME section; scdoc escapes a dot in a name with \&
                self.assertIn(name, roff.split(".SH", 2)[1].replace("\\&", ""))
                if shutil.which("groff"):
                    r = run(["groff", "-man", "-Tutf8", "-ww", "-z", page])
                    self.assertEqual((r.returncode, r.stderr), (0, ""))
                elif shutil.which("mandoc"):
                    r = run(["mandoc", "-Tlint", "-Wwarning", page])
                    self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                else:
                    print("install: neither groff nor mandoc, %s not rendered" % stem,
                          file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
