#!/usr/bin/env bash
# The test command (README, CI): installs what is missing, builds, runs unit
# tests, live BPF tests (root), the fuzz targets (bounded), the smoke script
# (on the plain and on the profile-guided build) and the kernel matrix.
# Nothing here may be skipped and still pass: OSPREY_SKIP_LIVE is refused,
# any test the harness reports as ignored fails the run, and in CI
# (CI=true, set by .ci/run) a kernel the matrix could not fetch fails it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if [ -n "${OSPREY_SKIP_LIVE:-}" ]; then
    echo "scripts/test.sh: OSPREY_SKIP_LIVE is set, but the test command runs every live test: unset it" >&2
    exit 1
fi
# cargo test ARGS..., failing when a test was ignored (a skip is not a pass)
cargo_test() {
    local log rc=0
    log=$(mktemp)
    cargo test "$@" 2>&1 | tee "$log" || rc=$?
    if [ $rc = 0 ] && grep -qE '^test result: .* [1-9][0-9]* ignored' "$log"; then
        echo "scripts/test.sh: cargo test $*: tests were ignored (skipped); that fails the run" >&2
        rc=1
    fi
    rm -f "$log"
    return $rc
}
scripts/setup.sh
cargo build --release
# live tests load BPF programs and start servers: one at a time
cargo_test --release -- --test-threads=1
# the live tests again on the other hook set (the default is the socket
# hooks where the kernel has them: the syscall hooks must keep working for
# kernels before 6.3 and the BTF-less fallback)
OSPREY_TEST_HOOKS=syscalls cargo_test --release --test live_probe --test live_http --test live_http2 --test live_grpc --test live_h2c_upgrade --test live_recon --test live_caps --test live_blind --test live_exact --test live_framing --test live_follow --test live_sinks --test live_identity --test live_tls --test live_tls_paths --test live_tls_fault --test live_tls_go -- --test-threads=1
# unit tests and the non-live targets once more in a debug build: overflow
# checks and debug_assert! are on there
cargo_test --lib --test output_docs --test cli
# every cargo-fuzz target for a bounded time (OSPREY_FUZZ_SECONDS each,
# default 40); a crash fails the run and prints the input
scripts/fuzz
tests/smoke/smoke.sh
# the opt-in sink training of the profile-guided build (osprey --synthetic
# to a file, metrics and a ClickHouse stub: every line must arrive as a
# row), then the binary to ship: profile-guided on replay alone (its JSON
# lines checked against the instrumented build's on the way), then the
# smoke test on it
scripts/build-release --train-sinks
scripts/build-release
OSPREY_BIN="${CARGO_TARGET_DIR:-target}/pgo/osprey" tests/smoke/smoke.sh
# CO-RE portability: Debian kernels under qemu, plus this host
# (OSPREY_SKIP_MATRIX=1 skips it; a failing row is re-run once and says so)
if [ "${OSPREY_SKIP_MATRIX:-0}" != 1 ]; then
  OSPREY_MATRIX_RETRY_FAIL=1 scripts/kernel-matrix.sh --no-btf
elif [ "${CI:-}" = true ]; then
  echo "scripts/test.sh: OSPREY_SKIP_MATRIX=1 in CI: the matrix is part of the test" >&2
  exit 1
fi
