#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan, libraries
# instrumented) and runs each for SECONDS (default 60) on a copy of its
# seed corpus, after replaying every saved regression input. A crash saves
# its input under tests/fuzz/crashes/ and fails the run: add it to
# tests/fuzz/regressions/<target>/ once fixed. Prints executions per target.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
secs=${1:-60}
command -v clang >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null
cmake -S "$root" -B "$root/build-fuzz" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCOMPANION_FUZZ=ON -DCOMPANION_TESTS=OFF >/dev/null
targets=(rpc envelope jwt chat settings fs guard folder query sio)
cmake --build "$root/build-fuzz" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null
mkdir -p "$here/crashes"
work=$(mktemp -d)
trap 'rm -rf "$work" /tmp/companion-fuzz-fs-* /tmp/companion-fuzz-folder-*' EXIT
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
total=0
for t in "${targets[@]}"; do
  bin="$root/build-fuzz/tests/fuzz/fuzz_$t"
  if [ -d "$here/regressions/$t" ] && [ -n "$(ls -A "$here/regressions/$t")" ]; then
    "$bin" "$here/regressions/$t"/* >/dev/null 2>&1 || { echo "fuzz: $t regression input crashes again" >&2; exit 1; }
  fi
  mkdir -p "$work/$t"
  cp "$here/corpus/$t"/* "$work/$t/"
  log="$work/$t.log"
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
      -print_final_stats=1 -artifact_prefix="$here/crashes/$t-" "$work/$t" >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz: $t FAILED (input saved in tests/fuzz/crashes/)" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
  echo "fuzz: $t: $execs executions in ${secs} s, $cov, no crash"
  total=$((total + 1))
done
echo "fuzz: $total passed, 0 failed"
