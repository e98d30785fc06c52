#!/bin/sh
# The main job: sidespand with its default console exporter (no outside service needed),
# the demo agent sending one agent run to it, and the resulting trace printed as a tree.
# Usage: scripts/demo.sh BUILD_DIR [demo-agent options...]
set -eu
build=$1
shift
dir=$(mktemp -d "${TMPDIR:-/tmp}/sidespan-demo.XXXXXX")
sock="$dir/sidespan.sock"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT INT TERM

"$build/daemon/sidespand" --socket "$sock" &
pid=$!
i=0
while [ ! -S "$sock" ]; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
                echo "demo: sidespand did not start" >&2
                exit 1
        fi
        sleep 0.05
done

"$build/examples/sidespan-demo-agent" --socket "$sock" --service demo-agent "$@"
# SIGTERM drains: every finished trace is printed before the daemon exits.
kill -TERM "$pid"
wait "$pid"
