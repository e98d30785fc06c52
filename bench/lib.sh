# SPDX-License-Identifier: MIT
# Shell helpers the benchmark scripts source (bench/run.sh, bench-e2e.sh, bench-scale.sh).

# stop_pid PID: stop a process this script started, by its pid, and reap it.
stop_pid() {
        local pid=$1
        [ -n "$pid" ] || return 0
        if kill -0 "$pid" 2>/dev/null; then
                kill -TERM "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        fi
}

# wait_path TEST PATH PID: until `test TEST PATH` holds (-S a socket, -s a non-empty file),
# for 10 s at most and while PID lives. 0 when it held.
wait_path() {
        for _ in $(seq 200); do
                test "$1" "$2" && return 0
                kill -0 "$3" 2>/dev/null || break
                sleep 0.05
        done
        return 1
}

# The daemon and the clients read these; a benchmark must not inherit them.
clean_env() {
        local v
        for v in $(compgen -e); do
                case $v in OTEL_* | UPSONIC_* | SIDESPAN_*) unset "$v" ;; esac
        done
}

# start_receiver PORT_FILE LOG SCRIPT [ARGS...]: tests/SCRIPT, an OTLP receiver that decodes
# what it gets, on $PYTHON3 (default Debian's python3, which has the protobuf and grpc
# modules), until it wrote its port(s) to PORT_FILE; sets RECEIVER_PID. $SRC: the source tree.
start_receiver() {
        local port_file=$1 log=$2 script=$3
        shift 3
        rm -f "$port_file"
        PROTO_DIR="$SRC/proto" "${PYTHON3:-/usr/bin/python3}" "$SRC/tests/$script" \
                --port-file "$port_file" "$@" 2>"$log" &
        RECEIVER_PID=$!
        wait_path -s "$port_file" "$RECEIVER_PID" && return 0
        echo "the OTLP receiver $script did not start:" >&2
        cat "$log" >&2
        exit 1
}
