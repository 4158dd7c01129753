# SPDX-License-Identifier: GPL-3.0-or-later
# Shell functions shared by scripts/ (sourced, not run):
#   . "$(dirname "$0")/lib/common.sh"

# llvm-profdata of the active Rust toolchain (rustup component llvm-tools):
# the path, whether it is installed or not
llvm_profdata() {
    echo "$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-profdata"
}

# stub_clickhouse DIR: starts scripts/lib/clickhouse-stub.py in the
# background and waits until it listens; sets stub_pid and stub_port
# (rows received: DIR/rows). The caller kills $stub_pid.
stub_clickhouse() {
    python3 "$(dirname "${BASH_SOURCE[0]}")/clickhouse-stub.py" "$1/port" "$1/rows" &
    stub_pid=$!
    local _
    for _ in $(seq 100); do
        [ -s "$1/port" ] && break
        kill -0 "$stub_pid" 2>/dev/null || { echo "the ClickHouse stub did not start" >&2; return 1; }
        sleep 0.05
    done
    [ -s "$1/port" ] || { echo "the ClickHouse stub did not listen within 5 s" >&2; return 1; }
    stub_port=$(cat "$1/port")
}

# a TCP port free on 127.0.0.1 now (for a listener given ADDR:PORT)
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
