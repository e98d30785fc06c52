#!/bin/sh
# The project's two commands (README.md), runnable on a bare Debian 12 machine:
#   sh scripts/run.sh demo   install what is missing, build, run sidespand with the demo agent
#   sh scripts/run.sh test   install what is missing, build, run every test in a plain and a
#                            sanitizer (ASan+UBSan) build, the client's tests under TSan and
#                            under valgrind too; the last line counts every case
# Also: fuzz [SECONDS] (FUZZ_TARGETS picks targets), build, format, clean. BUILD, BUILD_ASAN,
# BUILD_TSAN and BUILD_FUZZ name the build directories.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BUILD_ASAN=${BUILD_ASAN:-build-asan}
BUILD_TSAN=${BUILD_TSAN:-build-tsan}
BUILD_FUZZ=${BUILD_FUZZ:-build-fuzz}
FUZZ_TARGETS=${FUZZ_TARGETS:-frame message attrs kvlist json response redact}

setup() { # dir [meson options...]
        dir=$1
        shift
        [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@"
        ninja -C "$dir"
}

run_tests() { # dir -> 0 when every test passed
        meson test -C "$1" --verbose --print-errorlogs
}

# The client library's suite under ThreadSanitizer (gcc's libtsan): its sender thread, the
# threads that share a client, fork, and its futex lock. Only test-client and
# test-client-lock are built there.
#  die_after_fork=0: test_fork_child_keeps_working forks a threaded process and the child
#    starts a sender thread, which TSan refuses by default; the child's accesses are
#    still checked.
#  halt_on_error=1: a report ends the check with an error rather than a message to read.
# A build that fails leaves no test log, which the summary counts as a failure.
tsan_client() {
        rm -f "$BUILD_TSAN/meson-logs/testlog.json"
        { [ -f "$BUILD_TSAN/build.ninja" ] ||
                meson setup "$BUILD_TSAN" -Db_sanitize=thread -Db_lundef=false; } &&
                ninja -C "$BUILD_TSAN" tests/test-client tests/test-client-lock &&
                TSAN_OPTIONS=die_after_fork=0:halt_on_error=1:second_deadlock_stack=1 \
                        meson test -C "$BUILD_TSAN" --no-rebuild --verbose --print-errorlogs \
                        client client-lock
}

max_len() { # fuzz target -> the -max_len its inputs need
        case $1 in
        frame) echo 16384 ;; # a few frames of a real session, cut into reads
        message) echo 8192 ;;
        kvlist) echo 1024 ;;
        *) echo 4096 ;;
        esac
}

# sh scripts/run.sh fuzz [SECONDS]: each libFuzzer target for SECONDS (default 60) on a copy
# of its corpus in $BUILD_FUZZ/corpus/<target> (kept between runs); crashes are saved under
# $BUILD_FUZZ/crashes/<target>/. FUZZ_FLAGS adds libFuzzer flags, e.g. "-fork=2
# -ignore_crashes=1" to go on past crashes. Exits 1 when a target crashed.
fuzz() {
        seconds=${1:-60}
        sh scripts/install-deps.sh fuzz
        # -fsanitize=fuzzer-no-link: coverage of the daemon and common code, not only of the
        # targets. daemon/base/log.c's vlog() lacks a format attribute, which clang's
        # -Wformat=2 reports: a warning, not an error, here.
        [ -f "$BUILD_FUZZ/build.ninja" ] || CC=clang meson setup "$BUILD_FUZZ" -Dfuzzing=true \
                -Db_sanitize=address,undefined -Db_lundef=false \
                "-Dc_args=-fsanitize=fuzzer-no-link -Wno-error=format-nonliteral"
        # shellcheck disable=SC2046
        ninja -C "$BUILD_FUZZ" $(for t in $FUZZ_TARGETS; do echo "tests/fuzz/fuzz-$t"; done)
        # FUZZ_ASAN_OPTIONS adds ASan options; UBSan findings still open are named in
        # tests/fuzz/ubsan.supp so that fuzzing gets past them.
        asan=fast_unwind_on_malloc=0${FUZZ_ASAN_OPTIONS:+:$FUZZ_ASAN_OPTIONS}
        failed=""
        for t in $FUZZ_TARGETS; do
                mkdir -p "$BUILD_FUZZ/corpus/$t" "$BUILD_FUZZ/crashes/$t"
                cp tests/fuzz/corpus/"$t"/* "$BUILD_FUZZ/corpus/$t/"
                echo "fuzz-$t: ${seconds}s, log in $BUILD_FUZZ/fuzz-$t.log"
                # shellcheck disable=SC2086
                if ! ASAN_OPTIONS=$asan \
                        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/fuzz/ubsan.supp \
                        "$BUILD_FUZZ/tests/fuzz/fuzz-$t" -max_total_time="$seconds" \
                        -max_len="$(max_len "$t")" -timeout=25 -print_final_stats=1 \
                        -artifact_prefix="$BUILD_FUZZ/crashes/$t/" ${FUZZ_FLAGS:-} \
                        "$BUILD_FUZZ/corpus/$t" >"$BUILD_FUZZ/fuzz-$t.log" 2>&1; then
                        failed="$failed $t"
                fi
                grep -E '^#[0-9]+([[:space:]]+(DONE|pulse|NEW|REDUCE)|: cov)|stat::average_exec_per_sec' \
                        "$BUILD_FUZZ/fuzz-$t.log" | tail -2 | sed "s/^/  /"
        done
        echo "crash inputs so far:"
        find "$BUILD_FUZZ/crashes" -type f | sort | sed "s/^/  /"
        if [ -n "$failed" ]; then
                echo "fuzz: crashed:$failed (inputs under $BUILD_FUZZ/crashes/, logs above)" >&2
                return 1
        fi
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
        tsan_client || status=1
        /usr/bin/python3 scripts/test-summary.py "$BUILD" "$BUILD_ASAN" "$BUILD_TSAN" || status=1
        exit $status
        ;;
fuzz)
        shift
        fuzz "$@"
        ;;
bench)
        # Figures, not pass or fail: bench/run.sh writes them to bench/RESULTS.md.
        sh scripts/install-deps.sh bench
        exec bash bench/run.sh
        ;;
build)
        sh scripts/install-deps.sh
        setup "$BUILD"
        ;;
format)
        clang-format -i $(git ls-files '*.c' '*.h')
        ;;
clean)
        rm -rf "$BUILD" "$BUILD_ASAN" "$BUILD_TSAN" "$BUILD_FUZZ"
        ;;
*)
        echo "usage: sh scripts/run.sh demo [demo-agent options] | test | fuzz [SECONDS] | bench | build | format | clean" >&2
        exit 2
        ;;
esac
