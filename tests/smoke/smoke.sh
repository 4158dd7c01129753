#!/usr/bin/env bash
# Smoke test, as root: build → check → load → curl → assert → unload.
# OSPREY_BIN: the binary to test (default the release build; scripts/test.sh
# runs it again on the profile-guided one of scripts/build-release).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${OSPREY_BIN:-target/x86_64-unknown-linux-gnu/release/osprey}
[ -x "$BIN" ] || { echo "smoke: FAIL $BIN: no executable"; exit 1; }
echo "smoke: $BIN"
work=$(mktemp -d)
pass=0; fail=0
ok()   { echo "smoke: ok   $*"; pass=$((pass+1)); }
bad()  { echo "smoke: FAIL $*"; fail=$((fail+1)); }
cleanup() { [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null; [ -n "${osp:-}" ] && kill "$osp" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

command -v bpftool >/dev/null || { echo "smoke: FAIL bpftool missing (scripts/setup.sh installs it)"; exit 1; }
command -v jq >/dev/null || { echo "smoke: FAIL jq missing (scripts/setup.sh installs it)"; exit 1; }

# Osprey's program names, from the skeletons generated out of its BPF objects
out_dir=$(cargo build --release -q --message-format=json |
    jq -r 'select(.reason == "build-script-executed" and (.package_id | test("osprey"))) | .out_dir' | tail -1)
NAMES=$(grep -ohE '\.prog\("[A-Za-z0-9_]+"\)' "$out_dir"/*.skel.rs | sed -E 's/.*"(.*)".*/\1/' | sort -u | jq -R . | jq -cs .)
[ "$(echo "$NAMES" | jq length)" -gt 20 ] || { echo "smoke: FAIL program names from $out_dir: $NAMES"; exit 1; }
# osprey_bpf: "PROGRAMS LINKS" of Osprey's loaded now (the kernel keeps 15 bytes of a name)
osprey_bpf() {
    local ids
    ids=$(bpftool -j prog list | jq -c --argjson names "$NAMES" \
        '[.[] | select(.name as $n | $names | any(. == $n or (($n | length) == 15 and startswith($n)))) | .id]') || return 1
    echo "$(echo "$ids" | jq length) $(bpftool -j link list | jq --argjson ids "$ids" '[.[] | select(.prog_id as $p | $ids | any(. == $p))] | length')"
}
"$BIN" check >"$work/check.txt" && ok "osprey check" || { cat "$work/check.txt"; bad "osprey check"; }

echo "smoke payload" >"$work/index.html"
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
(cd "$work" && exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) & srv=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done

# the baseline once no program of an earlier probe is still being freed
# (loaded without its link), polled, bounded
for _ in $(seq 150); do
    before=$(osprey_bpf)
    read -r p0 l0 <<<"$before"
    [ "$p0" = "$l0" ] && break
    sleep 0.2
done
# start_probe ARGS... OUT ERR: "$BIN" ARGS -o OUT 2>ERR in the background
# ($osp), waited for until it says it attached (polled, bounded: 20 s)
start_probe() {
    local out=${*: -2:1} err=${*: -1}
    local args=("${@:1:$#-2}")
    "$BIN" "${args[@]}" -o "$out" 2>"$err" & osp=$!
    for _ in $(seq 200); do grep -qs attached "$err" && break; sleep 0.1; done
    grep -q attached "$err" && ok "probe attached (${args[*]})" || { cat "$err"; bad "probe attached (${args[*]})"; }
}
start_probe -v --tls off --records events --comm curl "$work/out.jsonl" "$work/err.txt"
# the hook set attached: 4 socket-hook programs or 23 syscall-hook ones, one link each
# (--tls off above: the TLS uprobes' programs, one per library function and
# loaded whenever a TLS library is found, are counted by tests/live_tls*.rs)
n=23; grep -q '(socket hooks)' "$work/err.txt" && n=4
during=$(osprey_bpf)
read -r p0 l0 <<<"$before"
[ "$during" = "$((p0 + n)) $((l0 + n))" ] && ok "$n programs and links loaded" || bad "programs/links loaded: $before → $during, want +$n"

curl -s -o /dev/null "http://127.0.0.1:$port/index.html"
kill -INT "$osp"; wait "$osp" && ok "clean exit on SIGINT" || bad "exit status"
osp=

jq -s -e --argjson p "$port" 'any(.[]; .kind=="open" and .role=="client" and .remote_port==$p)' "$work/out.jsonl" >/dev/null \
  && ok "connect seen with addresses" || bad "connect event"
jq -s -e 'any(.[]; .kind=="data" and .dir=="egress" and (.payload|startswith("GET /index.html HTTP/1.1")))' "$work/out.jsonl" >/dev/null \
  && ok "request bytes captured" || bad "request bytes"
jq -s -e 'any(.[]; .kind=="data" and .dir=="ingress" and (.payload|contains("smoke payload")))' "$work/out.jsonl" >/dev/null \
  && ok "response bytes captured" || bad "response bytes"
drops=$(sed -nE 's/^osprey: .*\(([0-9]+) ring-buffer drops.*/\1/p' "$work/err.txt")
jdrops=$(sed -n 's/^osprey: summary //p' "$work/err.txt" | jq '.kernel.ringbuf_drops')
[ "$drops" = 0 ] && [ "$jdrops" = 0 ] && ok "summary, no drops" || { cat "$work/err.txt"; bad "summary: drops '$drops' (JSON: '$jdrops')"; }
# the same requests as transactions (the parsing path, which the
# profile-guided build was trained on)
# -v: the line saying it attached is logged at info
start_probe -v --tls off --comm curl "$work/txn.jsonl" "$work/err2.txt"
for i in 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:$port/index.html?n=$i"; done
kill -INT "$osp"; wait "$osp" || bad "exit status (transactions)"
osp=
jq -s -e --argjson p "$port" '[.[] | select(.type=="http_transaction" and .status==200 and .path=="/index.html"
    and .method=="GET" and .remote_port==$p and .resp_body_bytes==14)] | length == 3' "$work/txn.jsonl" >/dev/null \
  && ok "three transactions recorded" || { cat "$work/err2.txt" "$work/txn.jsonl"; bad "transactions"; }
# the kernel frees a closed program after an RCU grace period: poll, bounded
for _ in $(seq 150); do
    after=$(osprey_bpf)
    [ "$after" = "$before" ] && break
    sleep 0.2
done
[ -n "$after" ] && [ "$before" = "$after" ] && ok "programs and links unloaded" || bad "programs/links left loaded ($before → $after)"

[ "$fail" -eq 0 ] || { echo "--- records:"; cat "$work/out.jsonl"; echo "--- stderr:"; cat "$work/err.txt"; }
echo "smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
