#!/usr/bin/env bash
# The test command (README, CI): installs what is missing, builds, runs unit
# tests, live BPF tests (root) and the smoke script.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
scripts/setup.sh
cargo build --release
# live tests load BPF programs and start servers: one at a time
cargo test --release -- --test-threads=1
tests/smoke/smoke.sh
