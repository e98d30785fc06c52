#!/bin/bash
# SPDX-License-Identifier: MIT
# End to end (issue 11): agent-shaped runs (bench-daemon's default workload, 30 spans a run)
# from 4 client threads through sidespand to a local receiver fast enough not to be the
# limit: over OTLP/HTTP protobuf to Debian's nginx answering `return 200` (gzip off, then on),
# and over OTLP/gRPC to bench/grpc-sink, which counts and discards (gzip off, then on). For
# each: 10k and 100k spans/s held for BENCH_E2E_SECONDS (default 10) with the client's default
# 4 MiB buffer, then the maximum (unpaced, a 256 MiB client buffer so the clients do not drop
# while the daemon catches up). A fresh daemon (and sink) for each measurement, so the RSS is
# that rate's. The daemon runs with its defaults but --batch-delay-ms 100. Prints figures and a table; asserts nothing (STYLE.md rule 15). The check
# column compares the daemon's STATS (every finished span exported, none dropped) and, for
# gRPC, the sink's span count with the daemon's final exported count.
#
#   bench/bench-e2e.sh [BUILD]      BUILD: a built tree (default build-bench, from the top)
#   BENCH_E2E_SECONDS=3 bench/bench-e2e.sh       shorter paced runs
#   BENCH_E2E_RATES="10000 100000 200000"        other paced rates
#   BENCH_E2E_CASES="grpc http"                  some of http http+gzip grpc grpc+gzip
#
# nginx: `sh scripts/install-deps.sh bench` installs nginx-light; without it the HTTP cases
# are skipped.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"
BUILD=${1:-build-bench}
[[ $BUILD = /* ]] || BUILD="$SRC/$BUILD"
SECS=${BENCH_E2E_SECONDS:-10}
RATES=${BENCH_E2E_RATES:-10000 100000}
CASES=" ${BENCH_E2E_CASES:-http http+gzip grpc grpc+gzip} "
THREADS=4
MAX_RUNS=${BENCH_E2E_MAX_RUNS:-5000} # runs per thread for the maximum: 600 000 spans
# A batch of 512 spans fills in 51 ms at 10k spans/s, so this changes no paced figure; it
# keeps the last partial batch of the maximum run from waiting the default 1 s, which would
# count as export time.
BATCH_DELAY_MS=100
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TMP=$(mktemp -d /tmp/sidespan-e2e.XXXXXX)
DAEMON_PID=
SINK_PID=
NGINX_PID=
BENCH_PID=
ROWS=()

cleanup() {
        stop_pid "$BENCH_PID"
        stop_pid "$DAEMON_PID"
        stop_pid "$SINK_PID"
        stop_pid "$NGINX_PID"
        rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The daemon and the clients read these; a benchmark must not inherit them.
clean_env

for exe in daemon/sidespand bench/bench-daemon bench/grpc-sink; do
        if [ ! -x "$BUILD/$exe" ]; then
                echo "bench-e2e: no $BUILD/$exe (ninja -C $BUILD $exe)" >&2
                exit 1
        fi
done

free_port() {
        /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for FILE PID WHAT: until FILE is non-empty, while PID lives.
wait_for() {
        for _ in $(seq 200); do
                [ -s "$1" ] && return 0
                kill -0 "$2" 2>/dev/null || break
                sleep 0.05
        done
        echo "bench-e2e: $3 did not start" >&2
        return 1
}

# nginx on 127.0.0.1:$NGINX_PORT, everything of its own under $TMP/nginx.
start_nginx() {
        local d="$TMP/nginx"
        mkdir -p "$d"
        NGINX_PORT=$(free_port)
        cat >"$d/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
        access_log off;
        client_body_temp_path $d/body;
        proxy_temp_path $d/proxy;
        client_max_body_size 64m;
        client_body_buffer_size 64m;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
        server {
                listen 127.0.0.1:$NGINX_PORT;
                location /v1/traces { return 200; }
        }
}
EOF
        "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/error.log" 2>"$d/stderr" &
        NGINX_PID=$!
        if ! wait_for "$d/nginx.pid" "$NGINX_PID" nginx; then
                cat "$d/error.log" "$d/stderr" >&2
                exit 1
        fi
}

start_sink() {
        rm -f "$TMP/sink.port"
        "$BUILD/bench/grpc-sink" --port-file "$TMP/sink.port" >"$TMP/sink.out" 2>"$TMP/sink.err" &
        SINK_PID=$!
        wait_for "$TMP/sink.port" "$SINK_PID" grpc-sink || { cat "$TMP/sink.err" >&2; exit 1; }
        SINK_PORT=$(cat "$TMP/sink.port")
}

# SINK_SPANS: the sink's span count, which it prints on SIGTERM.
stop_sink() {
        stop_pid "$SINK_PID"
        SINK_PID=
        SINK_SPANS=$(sed -n 's/.*spans=\([0-9]*\).*/\1/p' "$TMP/sink.out")
}

# start_daemon ARGS...: sidespand on $TMP/d.sock with its log in $TMP/d.log.
start_daemon() {
        rm -f "$TMP/d.sock"
        "$BUILD/daemon/sidespand" --socket "$TMP/d.sock" --log-level info \
                --batch-delay-ms "$BATCH_DELAY_MS" "$@" \
                >"$TMP/d.out" 2>"$TMP/d.log" &
        DAEMON_PID=$!
        for _ in $(seq 200); do
                grep -q "listening on $TMP/d.sock" "$TMP/d.log" && return 0
                kill -0 "$DAEMON_PID" 2>/dev/null || break
                sleep 0.05
        done
        echo "sidespand did not start:" >&2
        cat "$TMP/d.log" >&2
        exit 1
}

# FINAL: the exporter's final count (its exit summary), after its drain.
stop_daemon() {
        stop_pid "$DAEMON_PID"
        DAEMON_PID=
        FINAL=$(sed -n 's/.*event=exporter-summary.* exported=\([0-9]*\).*/\1/p' "$TMP/d.log" |
                tail -1)
}

# kv KEY: KEY's value in the summary line of $TMP/bench.out.
kv() {
        sed -n "s/.*summary:.* $1=\([^ ]*\).*/\1/p" "$TMP/bench.out"
}

# measure CASE LABEL RATE|max DAEMON-ARGS...: one fresh daemon (and sink for gRPC), one
# bench-daemon run, one table row.
measure() {
        local case=$1 label=$2 rate=$3 check args
        shift 3
        if [[ $case = grpc* ]]; then
                start_sink
                set -- "$@" --endpoint "http://127.0.0.1:$SINK_PORT"
        fi
        OTEL_EXPORTER_OTLP_TRACES_INSECURE=true start_daemon "$@"
        if [ "$rate" = max ]; then
                args=(--runs "$MAX_RUNS" --buffer-mb 256)
        else
                args=(--rate "$rate" --seconds "$SECS")
        fi
        printf -- '-- %s, %s spans/s\n' "$label" "$rate"
        "$BUILD/bench/bench-daemon" --socket "$TMP/d.sock" --pid "$DAEMON_PID" \
                --threads "$THREADS" "${args[@]}" >"$TMP/bench.out" 2>&1 &
        BENCH_PID=$!
        wait "$BENCH_PID" || true
        BENCH_PID=
        cat "$TMP/bench.out"
        stop_daemon
        SINK_SPANS=-
        [[ $case = grpc* ]] && stop_sink
        check=ok
        if [ "$(kv export_dropped)" != 0 ] || [ "$(kv exported)" != "$(kv finished)" ]; then
                check="STATS: $(kv exported) of $(kv finished) exported, $(kv export_dropped) dropped"
        fi
        if [ "$SINK_SPANS" != - ] && [ "$SINK_SPANS" != "$FINAL" ]; then
                check="sink $SINK_SPANS != daemon $FINAL"
        fi
        [ "$(kv client_dropped)" = 0 ] || check="$check; $(kv client_dropped) client frames dropped"
        # What the daemon had to say beyond info, shortened.
        grep -E '^sidespand: (notice|warning|err)' "$TMP/d.log" | head -5 | cut -c1-160 |
                sed 's/^/   /' || true
        printf '   daemon exit summary: %s exported; sink: %s spans\n\n' "${FINAL:-?}" "$SINK_SPANS"
        ROWS+=("$(awk -v l="$label" -v r="$rate" -v o="$(kv offered_per_s)" \
                -v e="$(kv exported_per_s)" -v n="$(kv exported)" -v f="$(kv finished)" \
                -v cd="$(kv client_dropped)" -v xd="$(kv export_dropped)" -v c="$(kv cpu_s)" \
                -v rss="$(kv rss_kib)" -v hwm="$(kv hwm_kib)" -v chk="$check" 'BEGIN {
                us = f > 0 ? c * 1e6 / f : 0; sps = c > 0 ? f / c : 0
                printf "%-10s %7s %9.0f %9.0f %8d %7d %6d %6.2f %6.2f %9.0f %6.1f %6.1f  %s",
                        l, r, o, e, n, cd, xd, c, us, sps, rss / 1024, hwm / 1024, chk }')")
}

# measure_all CASE LABEL DAEMON-ARGS...: the paced rates, then the maximum.
measure_all() {
        local case=$1 label=$2
        shift 2
        [[ $CASES = *" $label "* ]] || return 0
        for rate in $RATES max; do
                measure "$case" "$label" "$rate" "$@"
        done
}

echo "bench-e2e: $(nproc) CPUs, $THREADS client threads, agent-shaped runs of 30 spans," \
        "paced runs of $SECS s"
echo

if [ -x "$NGINX" ]; then
        start_nginx
        url="http://127.0.0.1:$NGINX_PORT/v1/traces"
        echo "==== OTLP/HTTP protobuf to nginx (return 200) at $url"
        echo
        measure_all http http --endpoint "$url" --protocol http/protobuf
        if grep -q -- --compression <<<"$("$BUILD/daemon/sidespand" --help)"; then
                measure_all http http+gzip --endpoint "$url" --protocol http/protobuf \
                        --compression gzip
        fi
        stop_pid "$NGINX_PID"
        NGINX_PID=
else
        echo "(no nginx: the OTLP/HTTP cases are skipped; sh scripts/install-deps.sh bench)"
fi

echo "==== OTLP/gRPC to bench/grpc-sink"
echo
measure_all grpc grpc --protocol grpc
measure_all grpc grpc+gzip --protocol grpc --compression gzip

echo "==== end to end, agent-shaped runs: rates in spans/s; cpu_s is the daemon's over the run;"
echo "     us/sp = daemon CPU s per million spans; sp/cpu_s = spans per daemon CPU-second;"
echo "     max: unpaced, exported = the daemon's sustained rate (offered = the clients' into"
echo "     256 MiB buffers)"
echo
printf '%-10s %7s %9s %9s %8s %7s %6s %6s %6s %9s %6s %6s  %s\n' transport target offered \
        exported spans cl.drop ex.drop cpu_s us/sp sp/cpu_s rss_MB peak check
for row in "${ROWS[@]}"; do
        echo "$row"
done
