#!/bin/sh
# Install the Debian packages sidespan needs to build, run and test, when missing.
# Idempotent: prints nothing to do when everything is there. Uses sudo when not root.
#   sh scripts/install-deps.sh        what `run.sh demo` and `run.sh test` need
#   sh scripts/install-deps.sh fuzz   and what `run.sh fuzz` needs besides
#   sh scripts/install-deps.sh bench  and what bench/bench-e2e.sh needs besides
set -eu

# libtsan2: gcc's ThreadSanitizer runtime (the TSan build of the client's tests);
# valgrind: the memcheck run of the client's tests; scdoc: the man pages;
# docker-compose: tests/deploy.py validates deploy/docker-compose.yml;
# systemd: tests/systemd.py runs systemd-analyze verify and security on the units;
# libmicrohttpd-dev: the Prometheus scrape endpoint (daemon/metrics/prometheus.c);
# python3-prometheus-client: tests/prometheus_parse.py parses what it serves;
# curl: tests/genai_metrics.py scrapes the endpoint with it;
# libdeflate-dev: the exporters' gzip (daemon/export/gzip.c);
# libssl-dev: the HTTP exporter sets OpenSSL up lean when no TLS is used (daemon/base/curl-uv.c).
PACKAGES="gcc libc6-dev pkg-config meson ninja-build
libuv1-dev libcurl4-openssl-dev libssl-dev libmsgpack-dev libprotobuf-c-dev protobuf-c-compiler
zlib1g-dev libdeflate-dev libgrpc-dev libpcre2-dev libmicrohttpd-dev check libsubunit-dev libtsan2 valgrind
python3 python3-protobuf python3-msgpack protobuf-compiler python3-grpcio openssl
scdoc docker-compose systemd python3-pip python3-setuptools python3-prometheus-client curl"
# clang with libFuzzer: Debian 12's clang is clang 14, whose -fsanitize=fuzzer runtime
# (libclang_rt.fuzzer*.a) is in libclang-rt-14-dev.
if [ "${1:-}" = fuzz ]; then
        PACKAGES="$PACKAGES clang libclang-rt-14-dev"
fi
# nginx-light: the OTLP/HTTP receiver of bench/bench-e2e.sh (`return 200`, fast enough not to
# be the limit).
if [ "${1:-}" = bench ]; then
        PACKAGES="$PACKAGES nginx-light"
fi

missing=""
for p in $PACKAGES; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
                missing="$missing $p"
        fi
done
# node and npm for the JS span processor's tests (tests/js/run.sh): Debian's, unless the
# commands are there already (another node, e.g. NodeSource's, bundles its npm and
# conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
elif command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
else
        echo "install-deps: need root or sudo to install:$missing" >&2
        exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
