# Sourced by the benchmarks that compare builds of bfq in one run. Needs $tmp (a temporary folder the caller removes
# on exit). Builds this tree's bfq (release) and sets `bfq`; sets `variants`, entries "label|binary|OPENBLAS_CORETYPE":
# this bfq; with BASELINE_REV, bfq built from that git revision in a worktree under $tmp (removed on exit); with
# CORETYPES="A B", this bfq under each OpenBLAS kernel set forced.
swift build -c release --product bfq >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; exit 1; }
bfq=$PWD/.build/release/bfq
variants=("bfq|$bfq|")
if [ -n "${BASELINE_REV:-}" ]; then
  rev=$(git rev-parse --short "$BASELINE_REV")
  git worktree add --detach "$tmp/baseline" "$rev" >/dev/null 2>&1
  trap 'git worktree remove --force "$tmp/baseline" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
  echo "building bfq at $rev for the baseline rows" >&2
  (cd "$tmp/baseline" && swift build -c release --product bfq >"$tmp/baseline.log" 2>&1) \
    || { cat "$tmp/baseline.log" >&2; exit 1; }
  variants+=("bfq $rev|$tmp/baseline/.build/release/bfq|")
fi
for core in ${CORETYPES:-}; do variants+=("bfq, OPENBLAS_CORETYPE=$core|$bfq|$core"); done
