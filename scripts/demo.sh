#!/bin/sh
# The main job: sidespand with its default console exporter (no outside service needed), the
# live view (sidespan tail) watching it, and the demo agent sending agent runs to it; each run
# shows as a tree with a waterfall as it finishes.
# Usage: scripts/demo.sh BUILD_DIR [demo-agent options...]
set -eu
build=$1
shift
dir=$(mktemp -d "${TMPDIR:-/tmp}/sidespan-demo.XXXXXX")
sock="$dir/sidespan.sock"
cli="$build/tools/sidespan"
pid=""
tail_pid=""
trap 'kill $tail_pid $pid 2>/dev/null || true; rm -rf "$dir"' EXIT INT TERM

# The console exporter's OTLP-shaped output goes to a file: the live view is what to watch.
"$build/daemon/sidespand" --socket "$sock" >"$dir/console.out" &
pid=$!
i=0
until "$cli" --socket "$sock" status >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
                echo "demo: sidespand did not start" >&2
                exit 1
        fi
        sleep 0.05
done

"$cli" --socket "$sock" tail &
tail_pid=$!
until "$cli" --socket "$sock" status | grep -q '^tap.subscribers  *1$'; do
        sleep 0.05
done

# 20 ms per model call, so that the waterfall has something to show; "$@" may override it.
"$build/examples/sidespan-demo-agent" --socket "$sock" --service demo-agent --latency 20 "$@"
"$cli" --socket "$sock" flush
sleep 0.3 # the last trace on its way to the terminal
kill "$tail_pid"
wait "$tail_pid" 2>/dev/null || true
tail_pid=""
echo "sidespand exported to its console exporter:"
"$cli" --socket "$sock" status | grep -E '^exporter\..*\.spans_(in|exported) '
# SIGTERM drains: every trace is exported before the daemon exits.
kill -TERM "$pid"
wait "$pid"
pid=""
