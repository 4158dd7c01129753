#!/bin/busybox sh
# Osprey kernel-matrix guest script.
#
# As /init of the tiny initramfs built by scripts/kernel-matrix.sh: mounts the
# pseudo file systems, runs `osprey check`, captures one wget → busybox httpd
# exchange with osprey and asserts on the records, prints exactly one
#   OSPREY-MATRIX-RESULT: PASS | FAIL <reason>
# line on the serial console and powers the VM off.
#
# With OSPREY_MATRIX_HOST=1 it runs the same checks on the running host instead
# (no mounts, no poweroff; OSPREY_MATRIX_OSPREY / OSPREY_MATRIX_BUSYBOX name the
# binaries, OSPREY_MATRIX_PORT the port), and exits 0 on PASS.
#
# Guest options on the kernel command line:
#   osprey_matrix_nobtf   hide /sys/kernel/btf (tmpfs over it) before osprey runs
#   osprey_matrix_verbose dump osprey's stderr and records even on PASS

HOST=${OSPREY_MATRIX_HOST:-0}
PORT=${OSPREY_MATRIX_PORT:-8080}
BB=${OSPREY_MATRIX_BUSYBOX:-/bin/busybox}
TEXT="osprey-matrix hello from the guest"

if [ "$HOST" = 1 ]; then
    W=$(mktemp -d /tmp/osprey-matrix.XXXXXX) || exit 2
    mkdir -p "$W/bin" "$W/www"
    for a in wget httpd; do ln -s "$BB" "$W/bin/$a"; done
    cp "${OSPREY_MATRIX_OSPREY:?}" "$W/bin/osprey"
    BIN=$W/bin
    CMDLINE=""
else
    export PATH=/bin:/sbin
    /bin/busybox mkdir -p /proc /sys /dev /tmp /run
    /bin/busybox --install -s /bin 2>/dev/null
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s
    mount -t tmpfs tmpfs /tmp
    mount -t tmpfs tmpfs /run
    ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
    W=/tmp/m
    mkdir -p "$W/www"
    BIN=/bin
    CMDLINE=$(cat /proc/cmdline)
fi
OSPREY=$BIN/osprey
echo "$TEXT" >"$W/www/hello.txt"

say() { echo "OSPREY-MATRIX-$*"; }
# dump FILE PREFIX: a file onto the console, each line prefixed (grep-able in the log)
dump() { [ -s "$1" ] && sed "s/^/$2 /" "$1"; }
has() { case " $CMDLINE " in *" $1 "*) return 0;; esac; return 1; }

finish() {
    say "RESULT: $*"
    if [ "$HOST" = 1 ]; then
        [ -n "${HTTPD:-}" ] && kill "$HTTPD" 2>/dev/null
        rm -rf "$W"
        [ "$1" = PASS ]; exit $?
    fi
    sync
    poweroff -f
    echo o >/proc/sysrq-trigger
    sleep 30
}

say "KERNEL: $(uname -r)"
if [ -f /sys/kernel/btf/vmlinux ]; then say "BTF: yes"; else say "BTF: no"; fi
if [ "$HOST" != 1 ] && has osprey_matrix_nobtf; then
    mount -t tmpfs none /sys/kernel/btf && say "NOTE: BTF hidden (tmpfs over /sys/kernel/btf)"
fi
VERBOSE=0; has osprey_matrix_verbose && VERBOSE=1

# 1. osprey check
"$OSPREY" check >"$W/check.txt" 2>&1; rc=$?
dump "$W/check.txt" "[check]"
if [ $rc -ne 0 ]; then
    bad=$(grep -E '^(FAIL|fail|error|Error)' "$W/check.txt" | head -3 | tr '\n' ';' | tr -s ' ')
    CHECK_FAIL="osprey check exited $rc: ${bad:-see [check] lines}"
    say "NOTE: $CHECK_FAIL"
fi

# 2. traffic: busybox httpd serving a known file
"$BIN/httpd" -f -p "127.0.0.1:$PORT" -h "$W/www" & HTTPD=$!

# why ERRFILE: the gist of osprey's failure, on one line: the program the kernel
# refused and the verifier's last word, else osprey's own error line
why() {
    prog=$(grep -m1 -oE "prog '[^']+': BPF program load failed[^;]*" "$1")
    vlog=$(sed -n '/BEGIN PROG LOAD LOG/,/END PROG LOAD LOG/p' "$1" |
        grep -vE 'BEGIN PROG LOAD LOG|END PROG LOAD LOG|^processed |^[[:space:]]*$' | tail -1)
    err=$(grep -m1 -E '(^|: )error' "$1")
    if [ -n "$prog" ]; then
        echo "$prog: ${vlog:-no verifier log} ($err)"
    else
        echo "${err:-$(tail -1 "$1")}"
    fi | tr -s ' \t' ' '
}

# capture MODE: run osprey --records MODE around one wget; sets CAP_FAIL on failure
# capture MODE [TAG [OSPREY ARGS...]]: files out-TAG.jsonl / err-TAG.txt
capture() {
    mode=$1; tag=${2:-$1}
    shift $(( $# < 2 ? $# : 2 ))
    out=$W/out-$tag.jsonl; err=$W/err-$tag.txt
    CAP_FAIL=""
    : >"$err"
    t0=$(date +%s)
    "$OSPREY" --records "$mode" --comm wget --comm httpd "$@" -o "$out" -v 2>"$err" & pid=$!
    i=0
    while ! grep -q attached "$err"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"; rc=$?
            CAP_FAIL="osprey --records $mode${*:+ $*} exited $rc before attaching: $(why "$err")"
            LOAD_FAILED=1
            return 1
        fi
        i=$((i + 1))
        if [ $i -gt 1800 ]; then     # 180 s: the verifier is slow under TCG, not that slow
            kill -9 "$pid"
            CAP_FAIL="osprey --records $mode did not attach within 180 s"
            return 1
        fi
        sleep 0.1
    done
    say "NOTE: $tag: attached after $(( $(date +%s) - t0 )) s $(grep -o -m1 '([a-z]* hooks)' "$err")"
    if ! "$BIN/wget" -q -O "$W/got.txt" "http://127.0.0.1:$PORT/hello.txt"; then
        CAP_FAIL="wget failed (httpd not serving?)"
    elif ! grep -q "$TEXT" "$W/got.txt"; then
        CAP_FAIL="wget got the wrong body"
    fi
    sleep 1
    kill -INT "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid"; wait "$pid"
        CAP_FAIL="${CAP_FAIL:-osprey --records $mode did not exit within 30 s of SIGINT}"
        return 1
    fi
    wait "$pid"; rc=$?
    if [ $rc -ne 0 ]; then
        CAP_FAIL="${CAP_FAIL:-osprey --records $mode exited $rc after SIGINT: $(tail -1 "$err")}"
    fi
    [ -z "$CAP_FAIL" ]
}

# expect FILE DESCRIPTION ERE [ERE2]: a line of FILE matches ERE (and ERE2)
expect() {
    if [ -n "$4" ]; then
        grep -E "$3" "$1" | grep -qE "$4"
    else
        grep -qE "$3" "$1"
    fi && return 0
    MISSING="${MISSING:+$MISSING, }$2"
    return 1
}

# check_events TAG: the records of one wget in out-TAG.jsonl; adds to FAIL
check_events() {
    f=$W/out-$1.jsonl
    MISSING=""
    expect "$f" "open/client/wget" '"kind":"open"' '"comm":"wget".*"role":"client"'
    expect "$f" "egress GET /hello.txt" '"kind":"data"' '"dir":"egress".*"payload":"GET /hello.txt HTTP/1\.1'
    expect "$f" "ingress body" '"kind":"data"' "\"dir\":\"ingress\".*$TEXT"
    # the same data record twice (byte-identical) means another record was lost:
    # a per-CPU buffer reused by a program that preempted the first one
    dups=$(grep '"kind":"data"' "$f" | sort | uniq -d | wc -l)
    [ -n "$MISSING" ] && FAIL="${FAIL:+$FAIL; }$1: missing $MISSING"
    [ "$dups" -gt 0 ] && FAIL="${FAIL:+$FAIL; }$1: $dups data record(s) emitted twice (another lost?)"
}

FAIL=""
MISSING=""
if capture events; then
    check_events events
else
    FAIL=$CAP_FAIL
fi
if [ $VERBOSE = 1 ] || [ -n "$FAIL" ]; then
    dump "$W/err-events.txt" "[osprey-events]"; dump "$W/out-events.jsonl" "[records-events]"
else
    grep -h 'summary' "$W/err-events.txt" 2>/dev/null | head -1 | sed 's/^/[osprey-events] /'
fi

# 3. transactions (the default record type): always checked; only when the
# programs did not load at all (the row has failed already) is it not tried
if [ -n "${LOAD_FAILED:-}" ]; then
    say "NOTE: transactions mode not tried: the BPF programs did not load"
else
    MISSING=""
    if capture transactions; then
        expect "$W/out-transactions.jsonl" "http_transaction status 200" '"type":"http_transaction"' '"status":200'
        [ -n "$MISSING" ] && FAIL="${FAIL:+$FAIL; }transactions: missing $MISSING"
    else
        FAIL="${FAIL:+$FAIL; }$CAP_FAIL"
    fi
    [ $VERBOSE = 1 ] || [ -n "$MISSING$CAP_FAIL" ] && { dump "$W/err-transactions.txt" "[osprey-transactions]"; dump "$W/out-transactions.jsonl" "[records-transactions]"; }
    say "NOTE: transactions mode checked"
fi

# 4. the syscall hooks too, where the socket hooks were the default
if grep -q '(socket hooks)' "$W/err-events.txt" 2>/dev/null; then
    if capture events events-syscalls --hooks syscalls; then
        check_events events-syscalls
    else
        FAIL="${FAIL:+$FAIL; }$CAP_FAIL"
    fi
    [ $VERBOSE = 1 ] && { dump "$W/err-events-syscalls.txt" "[osprey-events-syscalls]"; dump "$W/out-events-syscalls.jsonl" "[records-events-syscalls]"; }
    say "NOTE: syscall hooks checked"
fi

[ -n "${CHECK_FAIL:-}" ] && FAIL="${FAIL:+$FAIL; }$CHECK_FAIL"
if [ -n "$FAIL" ]; then finish "FAIL $FAIL"; else finish PASS; fi
