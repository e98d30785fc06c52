#!/bin/sh
# The JS processor's tests (node's test runner) with the npm packages the project's
# lockfile names, installed here when missing.
set -eu
cd "$SIDESPAN_SOURCE_ROOT"
if ! command -v node >/dev/null 2>&1; then
        echo "js tests: node is missing: run scripts/install-deps.sh" >&2
        exit 1
fi
[ -d node_modules/@opentelemetry/sdk-trace-base ] || npm ci --no-audit --no-fund >&2
exec node --test --test-reporter=spec tests/js/
