#!/usr/bin/env bash
# Usage: tools/sanitize.sh address|thread [results.xml]
# Builds the package and its tests with AddressSanitizer or ThreadSanitizer (in .build-asan / .build-tsan, apart from
# the normal build) and runs the whole suite: unit tests in the instrumented test bundle, end-to-end tests against the
# instrumented `bfq` built beside it. Any sanitizer report fails the test that caused it (halt_on_error).
# Leak checking is off: Foundation and XCTest leak on purpose at exit, and a leak report would turn bfq's exit
# status 2 into 1. Needs the system packages (tools/install-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: tools/sanitize.sh address|thread [results.xml]}
case $kind in
    address) scratch=.build-asan; export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1} ;;
    thread) scratch=.build-tsan; export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1} ;;
    *) echo "tools/sanitize.sh: address or thread, not '$kind'" >&2; exit 2 ;;
esac
swift build --build-tests --sanitize="$kind" --scratch-path "$scratch"
swift test --skip-build --sanitize="$kind" --scratch-path "$scratch" --parallel --num-workers 2 \
    ${2:+--xunit-output "$2"}
