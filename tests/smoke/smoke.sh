#!/usr/bin/env bash
# Smoke test, as root: build → check → load → curl → assert → unload.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=target/x86_64-unknown-linux-gnu/release/osprey
work=$(mktemp -d)
pass=0; fail=0
ok()   { echo "smoke: ok   $*"; pass=$((pass+1)); }
bad()  { echo "smoke: FAIL $*"; fail=$((fail+1)); }
cleanup() { [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null; [ -n "${osp:-}" ] && kill "$osp" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release -q
"$BIN" check >"$work/check.txt" && ok "osprey check" || { cat "$work/check.txt"; bad "osprey check"; }

echo "smoke payload" >"$work/index.html"
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
(cd "$work" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) & srv=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done

before=$(bpftool prog list | grep -cE 'name (enter|exit)_' || true)
"$BIN" -v --records events --comm curl -o "$work/out.jsonl" 2>"$work/err.txt" & osp=$!
for _ in $(seq 200); do grep -q attached "$work/err.txt" && break; sleep 0.1; done
grep -q attached "$work/err.txt" && ok "probe attached" || { cat "$work/err.txt"; bad "probe attached"; }

curl -s -o /dev/null "http://127.0.0.1:$port/index.html"
sleep 0.3
kill -INT "$osp"; wait "$osp" && ok "clean exit on SIGINT" || bad "exit status"
osp=

jq -s -e --argjson p "$port" 'any(.[]; .kind=="open" and .role=="client" and .remote_port==$p)' "$work/out.jsonl" >/dev/null \
  && ok "connect seen with addresses" || bad "connect event"
jq -s -e 'any(.[]; .kind=="data" and .dir=="egress" and (.payload|startswith("GET /index.html HTTP/1.1")))' "$work/out.jsonl" >/dev/null \
  && ok "request bytes captured" || bad "request bytes"
jq -s -e 'any(.[]; .kind=="data" and .dir=="ingress" and (.payload|contains("smoke payload")))' "$work/out.jsonl" >/dev/null \
  && ok "response bytes captured" || bad "response bytes"
grep -q "0 ring-buffer drops" "$work/err.txt" && ok "summary, no drops" || { cat "$work/err.txt"; bad "summary"; }
after=$(bpftool prog list | grep -cE 'name (enter|exit)_' || true)
[ "$before" = "$after" ] && ok "programs unloaded" || bad "programs left loaded ($before → $after)"

[ "$fail" -eq 0 ] || { echo "--- records:"; cat "$work/out.jsonl"; echo "--- stderr:"; cat "$work/err.txt"; }
echo "smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
