#!/usr/bin/env bash
# Installs what building and testing Osprey needs on a fresh Debian machine
# (run as root). Idempotent: packages already present are not reinstalled.
set -euo pipefail

PKGS=(
  clang llvm            # BPF compiler (clang 14 is enough)
  libelf-dev zlib1g-dev # libbpf's static dependencies (libelf.a, libz.a)
  pkg-config make gcc file
  bpftool               # vmlinux.h regeneration, `bpftool prog list` in tests
  libbpf1               # scripts/bench-floor loads its programs through it
  curl python3 nginx-light jq wrk tcpdump iproute2 util-linux
  openssl               # tests/live_blind.rs: a certificate for nginx ssl (nginx-light has ssl and http2)
  nghttp2-client        # h2load and nghttp for tests/live_http2.rs (h2c)
  prometheus            # tests/live_sinks.rs: a Prometheus scraping Osprey, promtool
  clickhouse-server     # tests/live_sinks.rs: the ClickHouse sink against 18.16
  tshark                # the wire reference in tests/live_exact.rs and live_framing.rs, the HTTP/2 oracle in live_grpc.rs; tests/live_tls.rs decrypts with it
  python3-pip           # grpcio for tests/live_grpc.rs
  libssl-dev binutils   # tests/live_tls.rs: a server linked statically with libssl.a, stripped;
                        # scripts/kernel-matrix.sh: the guest's static OpenSSL peer (libssl.a)
  android-libboringssl  # tests/live_tls_paths.rs: BoringSSL as a shared library (libssl.so.0)
  python3-yaml          # tests/deploy.rs reads the DaemonSet manifest
  golang-go             # tests/live_tls_go.rs builds Go HTTPS servers and clients (stdlib only, offline);
                        # scripts/kernel-matrix.sh: the guest's static Go crypto/tls peer
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # tshark's wireshark-common asks whether non-root users may capture: no
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# tests/live_grpc.rs: Python gRPC peers (grpcio), installed once
if ! python3 -c 'import grpc' >/dev/null 2>&1; then
  echo "setup.sh: installing grpcio (pip)" >&2
  python3 -m pip install -q grpcio || python3 -m pip install -q --break-system-packages grpcio
fi

# tests/live_h2c_upgrade.rs: the h2c upgrade server (tests/h2c/server.py)
# is built on Python's `h2` package
if ! python3 -c 'import h2.connection' >/dev/null 2>&1; then
  echo "setup.sh: installing h2 (pip)" >&2
  python3 -m pip install -q h2 || python3 -m pip install -q --break-system-packages h2
fi

# tests/deploy.rs parses YAML with the python3 on PATH (which may not be
# Debian's, e.g. a pyenv one): make sure that one has PyYAML
if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "setup.sh: installing PyYAML for $(command -v python3)" >&2
  python3 -m pip install -q pyyaml
fi

# tests/live_tls_paths.rs: OpenSSL 1.1.1 next to bookworm's 3.x. Bookworm
# has no libssl1.1: bullseye-security's package is downloaded with apt
# (that suite in a private source list and state directory, nothing added
# to the system's sources) and only its two libraries are extracted into
# /opt/osprey-test/openssl-1.1 (nothing installed, nothing else links them)
OSSL11=/opt/osprey-test/openssl-1.1
if [ ! -f "$OSSL11/libssl.so.1.1" ] || [ ! -f "$OSSL11/libcrypto.so.1.1" ]; then
  echo "setup.sh: fetching OpenSSL 1.1.1 (libssl1.1 from bullseye-security) into $OSSL11" >&2
  t=$(mktemp -d)
  mkdir -p "$t/lists/partial" "$t/cache/archives/partial" "$t/x"
  echo "deb http://deb.debian.org/debian-security bullseye-security main" >"$t/sources.list"
  apt_o=(-o "Dir::Etc::SourceList=$t/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o "Dir::State::Lists=$t/lists" -o "Dir::Cache=$t/cache" -o APT::Sandbox::User=root)
  apt-get "${apt_o[@]}" update -qq
  (cd "$t" && apt-get "${apt_o[@]}" download -qq libssl1.1)
  dpkg-deb -x "$t"/libssl1.1_*.deb "$t/x"
  mkdir -p "$OSSL11"
  find "$t/x" \( -name libssl.so.1.1 -o -name libcrypto.so.1.1 \) -exec cp {} "$OSSL11/" \;
  rm -rf "$t"
  [ -f "$OSSL11/libssl.so.1.1" ] && [ -f "$OSSL11/libcrypto.so.1.1" ] || {
    echo "setup.sh: libssl1.1's package had no libssl.so.1.1/libcrypto.so.1.1" >&2; exit 1; }
fi

# nginx-light's package starts a default server on :80; tests start their own.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
pkill -x nginx 2>/dev/null || true
# prometheus and clickhouse-server start system services on install
# (:9090, :8123/:9000); the tests start their own on ports of their own.
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now prometheus clickhouse-server >/dev/null 2>&1 || true
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup.sh: cargo not found: install a Rust toolchain (rustup) first" >&2
  exit 1
fi
rustup target list --installed 2>/dev/null | grep -q x86_64-unknown-linux-gnu || true

# scripts/build-release (the profile-guided binary) merges its profile with
# llvm-profdata, from the toolchain's llvm-tools component
. "$(dirname "$0")/lib/common.sh"
if ! [ -x "$(llvm_profdata)" ]; then
  echo "setup.sh: adding the llvm-tools component (llvm-profdata, for scripts/build-release)" >&2
  rustup component add llvm-tools
fi

# scripts/fuzz (part of the test command) runs cargo fuzz: the nightly
# toolchain (for -Zsanitizer) and cargo-fuzz, pinned to a version that
# builds with the stable toolchain here
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "setup.sh: installing the nightly toolchain (for cargo fuzz)" >&2
  rustup toolchain install nightly --profile minimal
fi
CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
  echo "setup.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# tracefs: Osprey mounts it itself, but tools like bpftool expect it.
if [ ! -d /sys/kernel/tracing/events ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
echo "setup.sh: ok (clang $(clang --version | head -1 | grep -o '[0-9][0-9.]*' | head -1), $(cargo --version), $(cargo fuzz --version))" >&2
