#!/bin/sh
# The project's two commands (README.md), runnable on a bare Debian 12 machine:
#   sh scripts/run.sh demo   install what is missing, build, run sidespand with the demo agent
#   sh scripts/run.sh test   install what is missing, build, run every test in a plain and a
#                            sanitizer (ASan+UBSan) build; the last line counts every case
# Also: build, asan, format, clean. BUILD and BUILD_ASAN name the build directories.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BUILD_ASAN=${BUILD_ASAN:-build-asan}

setup() { # dir [meson options...]
        dir=$1
        shift
        [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@"
        ninja -C "$dir"
}

run_tests() { # dir -> 0 when every test passed
        meson test -C "$1" --verbose --print-errorlogs
}

cmd=${1:-}
case "$cmd" in
demo)
        shift
        # One run with simulated model latency, so the durations look like an agent's.
        [ $# -gt 0 ] || set -- --runs 1 --latency 150
        sh scripts/install-deps.sh
        setup "$BUILD"
        exec sh scripts/demo.sh "$BUILD" "$@"
        ;;
test)
        sh scripts/install-deps.sh
        setup "$BUILD"
        setup "$BUILD_ASAN" -Db_sanitize=address,undefined -Db_lundef=false
        status=0
        run_tests "$BUILD" || status=1
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
                UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                run_tests "$BUILD_ASAN" || status=1
        /usr/bin/python3 scripts/test-summary.py "$BUILD" "$BUILD_ASAN" || status=1
        exit $status
        ;;
build)
        sh scripts/install-deps.sh
        setup "$BUILD"
        ;;
format)
        clang-format -i $(git ls-files '*.c' '*.h')
        ;;
clean)
        rm -rf "$BUILD" "$BUILD_ASAN"
        ;;
*)
        echo "usage: sh scripts/run.sh demo [demo-agent options] | test | build | format | clean" >&2
        exit 2
        ;;
esac
