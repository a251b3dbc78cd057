#!/usr/bin/env bash
# The whole test suite (what the README's test command runs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets --locked "$@"
