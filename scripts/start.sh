#!/usr/bin/env bash
# Builds the server and starts it on ./data (PostgreSQL protocol on 127.0.0.1:8812,
# user admin, password quest). Extra arguments go to `tidemark serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p tidemark-server
exec "${CARGO_TARGET_DIR:-target}/release/tidemark" serve "$@"
