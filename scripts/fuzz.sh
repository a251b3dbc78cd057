#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for TIDEMARK_FUZZ_SECONDS seconds each
# (default 20: the short run CI does; docs/reliability.md gives the long one),
# starting from the inputs that once crashed (fuzz/regressions/<target>/).
# Installs cargo-fuzz if missing. Builds without sanitizers (`-s none`), which
# works on the stable toolchain; Rust's own checks still turn bugs into crashes.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${TIDEMARK_FUZZ_SECONDS:-20}"
tools="${TIDEMARK_TOOLS_DIR:-$HOME/.cache/tidemark-tools}"
target_dir="${TIDEMARK_FUZZ_TARGET_DIR:-$HOME/.cache/tidemark-fuzz-target}"
export PATH="$tools/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked --root "$tools" cargo-fuzz@0.13.2
fi

targets=(${TIDEMARK_FUZZ_TARGETS:-storage_files sql_parser pgwire_messages})
cargo fuzz build -s none --target-dir "$target_dir"
for t in "${targets[@]}"; do
    corpus="$(mktemp -d)"
    if [ -d "regressions/$t" ]; then
        cp "regressions/$t"/* "$corpus"/
    fi
    echo "fuzzing $t for ${seconds}s"
    log="$(mktemp)"
    status=0
    cargo fuzz run -s none --target-dir "$target_dir" "$t" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^stat::(number_of_executed_units|new_units_added)' "$log" || true
    rm -rf "$corpus"
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log" >&2
        echo "fuzz target $t failed (exit $status); the crashing input is under fuzz/artifacts/$t/" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
done
