#!/bin/bash
# SPDX-License-Identifier: MIT
# Memory and scaling of sidespand (issue 11): idle RSS, 1/8/64/512 client
# connections, 10/10 000/1 000 000 open traces and, when asked, a paced soak.
# Starts a fresh sidespand per measurement on a temporary socket (exporting
# OTLP/JSON to /dev/null: the daemon has no discarding exporter; the idle
# figures of the network exporters to tests/' OTLP receivers, beside
# bench/floor-curl and floor-grpc), runs bench-scale against it and stops it
# by pid. Prints figures; asserts nothing.
#
#   bench/bench-scale.sh [BUILD_DIR]                  BUILD_DIR default build-bench
#   bench/bench-scale.sh [BUILD_DIR] soak [SECONDS]   only the soak (default 600 s)
#   bench/bench-scale.sh [BUILD_DIR] --soak SECONDS   everything, then the soak
#   BENCH_SCALE_SPANS=N      spans per connection level (default 600000)
#   BENCH_SCALE_RATE=N       soak spans/s (default 100000)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"
BUILD=${1:-build-bench}
[ $# -gt 0 ] && shift
case $BUILD in /*) ;; *) BUILD="$SRC/$BUILD" ;; esac
SOAK=0
ONLY_SOAK=0
while [ $# -gt 0 ]; do
        case $1 in
        soak)
                ONLY_SOAK=1
                SOAK=${2:-600}
                [ $# -gt 1 ] && shift
                ;;
        --soak)
                SOAK=${2:?--soak SECONDS}
                shift
                ;;
        *)
                echo "usage: $0 [BUILD_DIR] [soak [SECONDS] | --soak SECONDS]" >&2
                exit 2
                ;;
        esac
        shift
done
SPANS=${BENCH_SCALE_SPANS:-600000}
RATE=${BENCH_SCALE_RATE:-100000}
TMP=$(mktemp -d /tmp/sidespan-scale.XXXXXX)
DAEMON_PID=
RECEIVER_PID=

stop_daemon() {
        stop_pid "$DAEMON_PID"
        DAEMON_PID=
}

cleanup() {
        stop_daemon
        stop_pid "$RECEIVER_PID"
        rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

clean_env

if [ ! -d "$BUILD" ]; then
        meson setup "$BUILD" "$SRC" --buildtype=release >/dev/null
fi
ninja -C "$BUILD" daemon/sidespand daemon/sidespan-http.so daemon/sidespan-grpc.so bench/bench-scale \
        bench/floor-curl bench/floor-grpc >/dev/null

# The limits raised so that 512 connections from 8 processes and 1 000 000 open spans of one
# client fit: per instance and per process open spans, connections per process, the total.
LIMITS=(--max-connections 1024 --max-connections-per-process 0
        --max-open-spans 2000000 --max-open-spans-per-process 0
        --max-open-spans-total 2000000)

# start_daemon NAME [EXPORTER ARGS...]: a fresh sidespand on $TMP/NAME.sock, exporting to
# the file /dev/null unless told otherwise; sets SOCK and DAEMON_PID.
start_daemon() {
        local name=$1
        shift
        [ $# -gt 0 ] || set -- --exporter file --file /dev/null
        SOCK="$TMP/$name.sock"
        "$BUILD/daemon/sidespand" --socket "$SOCK" --log-level notice \
                "$@" "${LIMITS[@]}" \
                >"$TMP/$name.out" 2>"$TMP/$name.log" &
        DAEMON_PID=$!
        for _ in $(seq 200); do
                [ -S "$SOCK" ] && return 0
                kill -0 "$DAEMON_PID" 2>/dev/null || break
                sleep 0.05
        done
        echo "sidespand did not start:" >&2
        cat "$TMP/$name.log" >&2
        exit 1
}

# The daemon's warnings of the last run, one per kind (reason), at most 3.
daemon_notes() {
        local name=$1
        grep -o 'warning: .*' "$TMP/$name.log" | sed -e 's/ event=.*//' -e 's/[0-9][0-9]*/N/g' |
                sort | uniq -c | sort -rn | head -3 | sed 's/^ */  daemon log: /' || true
}

scale() {
        "$BUILD/bench/bench-scale" --socket "$SOCK" --pid "$DAEMON_PID" "$@"
}

section() {
        printf '\n== %s ==\n' "$*"
}

echo "sidespand memory and scaling, $(date -u +%FT%TZ), $(nproc) CPUs," \
        "commit $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "sidespand --exporter file --file /dev/null (OTLP/JSON) ${LIMITS[*]}"

if [ "$ONLY_SOAK" = 0 ]; then
        # Each network exporter is a module that maps its own libraries: gRPC grpc core,
        # abseil and libstdc++; HTTP libcurl with its TLS, Kerberos and LDAP libraries. The
        # console (the default) and the file exporter map neither. The network exporters send
        # to tests/' receivers, which decode what they get: plain HTTP, HTTPS (a certificate
        # made here) and gRPC. After each, bench/floor-curl or floor-grpc does the same with
        # the library alone (libc and the library, no code of ours): the floor under the
        # daemon's figure.
        section "idle: VmRSS 2 s after start, then 2 s after one agent run was exported, per exporter kind, beside the exporter library's floor"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/tls.key" -out "$TMP/tls.pem" \
                -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
        for kind in console file otlp-http otlp-https otlp-grpc; do
                floor=()
                case $kind in
                console) set -- --exporter console ;;
                file) set -- --exporter file --file /dev/null ;;
                otlp-http | otlp-https)
                        tls_args=()
                        [ $kind = otlp-https ] && tls_args=(--tls-cert "$TMP/tls.pem" --tls-key "$TMP/tls.key")
                        start_receiver "$TMP/rx.port" "$TMP/rx-$kind.log" otlp_receiver.py "${tls_args[@]}"
                        url="${kind#otlp-}://127.0.0.1:$(cat "$TMP/rx.port")/v1/traces"
                        set -- --exporter otlp-http --endpoint "$url"
                        floor=("$BUILD/bench/floor-curl" "$url")
                        [ $kind = otlp-https ] && floor+=("$TMP/tls.pem")
                        ;;
                otlp-grpc)
                        start_receiver "$TMP/rx.port" "$TMP/rx-$kind.log" otlp_grpc_receiver.py
                        read -r grpc_port _ <"$TMP/rx.port"
                        set -- --exporter otlp-grpc --endpoint "http://127.0.0.1:$grpc_port"
                        floor=("$BUILD/bench/floor-grpc" "127.0.0.1:$grpc_port")
                        ;;
                esac
                echo "exporter $kind"
                if [ $kind = otlp-https ]; then
                        export OTEL_EXPORTER_OTLP_CERTIFICATE="$TMP/tls.pem"
                fi
                OTEL_EXPORTER_OTLP_INSECURE=true start_daemon "idle-$kind" "$@"
                unset OTEL_EXPORTER_OTLP_CERTIFICATE
                sleep 2
                scale idle
                stop_daemon
                [ ${#floor[@]} -eq 0 ] || "${floor[@]}" || echo "floor: ${floor[0]##*/} failed"
                stop_pid "$RECEIVER_PID"
                RECEIVER_PID=
        done

        section "connections: agent-shaped runs (30 spans, 1 KiB per chat message), $SPANS spans in all, a fresh daemon per level"
        for n in 1 8 64 512; do
                start_daemon "conn$n"
                scale --spans "$SPANS" connections "$n"
                stop_daemon
                daemon_notes "conn$n"
        done

        section "open traces: a root agent.run with 5 string attributes each, never ended, one client, a fresh daemon per level"
        for n in 10 10000 1000000; do
                start_daemon "open$n"
                scale open "$n"
                stop_daemon
                daemon_notes "open$n"
        done
fi

if [ "$SOAK" -gt 0 ]; then
        section "soak: $RATE spans/s for $SOAK s"
        start_daemon soak
        scale --rate "$RATE" soak "$SOAK"
        stop_daemon
        daemon_notes soak
fi
