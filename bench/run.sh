#!/bin/bash
# SPDX-License-Identifier: MIT
# Build the release tree build-bench and run the benchmarks, starting and
# stopping sidespand (and, for the OTLP/HTTP and OTLP/gRPC cases, the Python
# test receivers) on a temporary socket. Prints figures only; asserts nothing
# (STYLE.md rule 15).
#
#   bench/run.sh            everything
#   BENCH_HTTP=0 bench/run.sh   skip the OTLP/HTTP receiver case
#   BENCH_HOSTILE=0 bench/run.sh   skip the hostile-frame benchmark (bench-hostile.py)
#   BENCH_GRPC=0 bench/run.sh   skip the OTLP/gRPC exporter case
#   BENCH_OUTAGE=0 bench/run.sh   skip the outage benchmark (bench-outage.py, 70 s)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD="$SRC/build-bench"
PYTHON3=/usr/bin/python3 # Debian's: it has the protobuf and grpc modules the receivers need
TMP=$(mktemp -d /tmp/sidespan-bench.XXXXXX)
DAEMON_PID=
RECEIVER_PID=
BENCH_PID=

# Only what this script started, by pid.
stop_pid() {
        local pid=$1
        [ -n "$pid" ] || return 0
        if kill -0 "$pid" 2>/dev/null; then
                kill -TERM "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        fi
}

cleanup() {
        stop_pid "$BENCH_PID"
        stop_pid "$DAEMON_PID"
        stop_pid "$RECEIVER_PID"
        rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The daemon and the clients read these; a benchmark must not inherit them.
for v in $(compgen -e); do
        case $v in OTEL_* | UPSONIC_* | SIDESPAN_SOCKET) unset "$v" ;; esac
done

build() {
        if [ ! -d "$BUILD" ]; then
                meson setup "$BUILD" "$SRC" --buildtype=release >/dev/null
        fi
        ninja -C "$BUILD" daemon/sidespand bench/bench-client bench/bench-daemon \
                bench/bench-encode bench/bench-exporter-grpc bench/bench-policy >/dev/null
}

# start_daemon NAME ARGS...: sidespand on $TMP/NAME.sock; sets SOCK and DAEMON_PID.
start_daemon() {
        local name=$1
        shift
        SOCK="$TMP/$name.sock"
        "$BUILD/daemon/sidespand" --socket "$SOCK" --log-level info "$@" \
                >"$TMP/$name.out" 2>"$TMP/$name.log" &
        DAEMON_PID=$!
        for _ in $(seq 200); do
                grep -q "listening on $SOCK" "$TMP/$name.log" && return 0
                kill -0 "$DAEMON_PID" 2>/dev/null || break
                sleep 0.05
        done
        echo "sidespand did not start:" >&2
        cat "$TMP/$name.log" >&2
        exit 1
}

stop_daemon() {
        stop_pid "$DAEMON_PID"
        DAEMON_PID=
}

# start_receiver [SCRIPT]: tests/SCRIPT (otlp_receiver.py) with its port in $TMP/receiver.port.
start_receiver() {
        rm -f "$TMP/receiver.port"
        PROTO_DIR="$SRC/proto" "$PYTHON3" "$SRC/tests/${1:-otlp_receiver.py}" \
                --port-file "$TMP/receiver.port" 2>"$TMP/receiver.log" &
        RECEIVER_PID=$!
        for _ in $(seq 200); do
                [ -s "$TMP/receiver.port" ] && return 0
                sleep 0.05
        done
        echo "the OTLP receiver did not start:" >&2
        cat "$TMP/receiver.log" >&2
        exit 1
}

# A benchmark program, waited for in the background so that a signal reaches the trap at once.
run() {
        "$@" &
        BENCH_PID=$!
        wait "$BENCH_PID"
        BENCH_PID=
}

section() {
        printf '\n==== %s\n\n' "$1"
}

build
section "machine"
echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')," \
        "Linux $(uname -r), $(git -C "$SRC" describe --always --dirty 2>/dev/null || echo '?')"

section "bench-encode: OTLP encoders (daemon modules, no I/O)"
run "$BUILD/bench/bench-encode"
if command -v valgrind >/dev/null; then
        # Instructions per span: two runs' counts differ by 4 batches of 512 spans.
        for enc in protobuf protobuf-c json; do
                for n in 2 6; do
                        valgrind --tool=callgrind --callgrind-out-file=/dev/null \
                                "$BUILD/bench/bench-encode" --count $enc $n >/dev/null 2>"$TMP/cg.enc.$n"
                done
                a=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$TMP/cg.enc.2")
                b=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$TMP/cg.enc.6")
                printf '  %-11s %6d instructions/span (callgrind)\n' "$enc" $(((b - a) / 2048))
        done
fi

section "bench-policy: sampling, content and redaction per span (daemon modules, no I/O)"
run "$BUILD/bench/bench-policy"
if command -v valgrind >/dev/null; then
        # Instructions per span: the difference of two run counts, so set-up (pattern JIT
        # compilation, the template run) cancels out.
        for mode in clone plain redact no-content two-views metrics; do
                for n in 50 150; do
                        valgrind --tool=callgrind --callgrind-out-file=/dev/null \
                                "$BUILD/bench/bench-policy" --iterations $n --mode $mode \
                                >/dev/null 2>"$TMP/cg.$mode.$n"
                done
                a=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$TMP/cg.$mode.50")
                b=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$TMP/cg.$mode.150")
                printf '  %-11s %6d instructions/span (callgrind)\n' "$mode" $(((b - a) / 3000))
        done
fi

section "bench-client: caller-side cost (sidespand --exporter file --file /dev/null)"
start_daemon client --exporter file --file /dev/null
run "$BUILD/bench/bench-client" --socket "$SOCK"
echo
run "$BUILD/bench/bench-client" --socket "$SOCK" --agent --iterations 60000
stop_daemon

section "bench-daemon: sidespand --exporter file --file /dev/null (OTLP/JSON)"
start_daemon d1 --exporter file --file /dev/null
run "$BUILD/bench/bench-daemon" --socket "$SOCK" --pid "$DAEMON_PID" --threads 4 --runs 2000
stop_daemon
echo
start_daemon d2 --exporter file --file /dev/null
run "$BUILD/bench/bench-daemon" --socket "$SOCK" --pid "$DAEMON_PID" --threads 4 --runs 5000 \
        --buffer-mb 256
stop_daemon
echo
start_daemon d3 --exporter file --file /dev/null
run "$BUILD/bench/bench-daemon" --socket "$SOCK" --pid "$DAEMON_PID" --threads 4 --runs 150000 \
        --simple --buffer-mb 256
stop_daemon

if [ "${BENCH_HTTP:-1}" != 0 ]; then
        section "bench-daemon: sidespand --endpoint (OTLP/HTTP protobuf) to tests/otlp_receiver.py"
        echo "(the Python receiver, which decodes and keeps every span, is the bottleneck here)"
        echo
        start_receiver
        start_daemon http --endpoint "http://127.0.0.1:$(cat "$TMP/receiver.port")/v1/traces"
        run "$BUILD/bench/bench-daemon" --socket "$SOCK" --pid "$DAEMON_PID" --threads 4 \
                --runs 1000 --buffer-mb 256
        stop_daemon
        stop_pid "$RECEIVER_PID"
        RECEIVER_PID=
fi

if [ "${BENCH_HOSTILE:-1}" != 0 ]; then
        section "bench-hostile: the worst frame of each limit against a concurrent client's FLUSH"
        # It starts its own sidespand (and one under callgrind per kind) and an HTTP sink.
        callgrind=()
        command -v callgrind_control >/dev/null || callgrind=(--no-callgrind)
        run "$PYTHON3" "$SRC/bench/bench-hostile.py" --sidespand "$BUILD/daemon/sidespand" \
                "${callgrind[@]}"
fi

if [ "${BENCH_PYTHON:-1}" != 0 ]; then
        section "bench-python: the Python package's cost on the calling thread"
        SIDESPAN_LIBRARY="$BUILD/client/libsidespan.so.0" run "$PYTHON3" \
                "$SRC/bench/bench-python.py" --sidespand "$BUILD/daemon/sidespand"
fi

if [ "${BENCH_JS:-1}" != 0 ] && command -v node >/dev/null; then
        section "bench-js: the JS span processor beside the SDK's BatchSpanProcessor"
        (cd "$SRC" && { [ -d node_modules/@opentelemetry/sdk-trace-base ] || npm ci --no-audit --no-fund; })
        PYTHON3="$PYTHON3" run node "$SRC/bench/bench-js.mjs" --sidespand "$BUILD/daemon/sidespand"
fi

if [ "${BENCH_OUTAGE:-1}" != 0 ]; then
        section "bench-outage: RSS and delivery through a 60 s backend outage, with a spool"
        PROTO_DIR="$SRC/proto" run "$PYTHON3" "$SRC/bench/bench-outage.py" \
                --sidespand "$BUILD/daemon/sidespand" --outage "${BENCH_OUTAGE_SECONDS:-60}"
fi

if [ "${BENCH_GRPC:-1}" != 0 ]; then
        section "bench-exporter-grpc: the OTLP/gRPC exporter alone to tests/otlp_grpc_receiver.py"
        echo "(the Python receiver, which decodes and keeps every span, is the bottleneck here)"
        echo
        start_receiver otlp_grpc_receiver.py
        run "$BUILD/bench/bench-exporter-grpc" \
                --endpoint "http://127.0.0.1:$(cut -d' ' -f1 "$TMP/receiver.port")" --calls 2000
        stop_pid "$RECEIVER_PID"
        RECEIVER_PID=
fi
