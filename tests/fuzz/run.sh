#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds each (default 10), starting from the seeds in
# tests/fuzz/corpus/. `cargo fuzz` needs nightly compiler flags: RUSTC_BOOTSTRAP lets the stable
# toolchain take them. New inputs found go to a scratch corpus, not into the repository;
# a crash stops the run and leaves its input in tests/fuzz/artifacts/<target>/.
# The short run builds unoptimised (a cold optimised, instrumented build of every dependency
# takes twice as long as the whole test build); FUZZ_OPTIMIZED=1 builds with -O, for long runs.
#   bash tests/fuzz/run.sh                     # the short run CI makes
#   FUZZ_OPTIMIZED=1 SECONDS_PER_TARGET=3600 bash tests/fuzz/run.sh jwt   # one target, an hour
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
fuzz=tests/fuzz

per_target="${SECONDS_PER_TARGET:-10}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(token_request jwt jwks config cel)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2

export RUSTC_BOOTSTRAP=1
scratch="${FUZZ_SCRATCH:-$(mktemp -d)}"
build=(--dev)
[ "${FUZZ_OPTIMIZED:-0}" = 1 ] && build=(-O)
cargo fuzz build --fuzz-dir "$fuzz" "${build[@]}"
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target"
  echo "fuzzing $target for ${per_target}s"
  cargo fuzz run --fuzz-dir "$fuzz" "${build[@]}" "$target" "$scratch/$target" "$fuzz/corpus/$target" -- \
    -max_total_time="$per_target" -max_len=16384 -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
    2>&1 | grep -E "^(#[0-9]+.*DONE|==|SUMMARY|Done|stat::number_of_executed_units|.*ERROR|.*panicked)" || true
  # grep hides libFuzzer's progress lines; the exit status is cargo fuzz's own.
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz target $target failed; see $fuzz/artifacts/$target/"; exit 1; }
done
