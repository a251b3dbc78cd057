#!/usr/bin/env bash
# The whole test suite (what the README's test command and CI run).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-deps.sh
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --all-targets --locked "$@"
