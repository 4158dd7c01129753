#!/usr/bin/env bash
# CO-RE kernel portability matrix: boots Debian kernels under qemu with a tiny
# initramfs (static busybox + static osprey + scripts/matrix/init.sh + two
# static TLS peers), runs `osprey check`, one captured wget → httpd exchange
# and one HTTPS request each to a Go crypto/tls and a statically linked
# OpenSSL server (TLS plaintext through uprobes) in each, and prints a
# PASS/FAIL/SKIP table. The host kernel is one more row (same checks, run here).
# The TLS peers (scripts/matrix/tls-go.go, tls-openssl.c) are built on every
# run with go (golang-go, CGO_ENABLED=0) and gcc -static against libssl.a
# (libssl-dev), with a fresh certificate from `openssl req`.
#
# Usage (as root):  scripts/kernel-matrix.sh [options]
#   --write-docs        also write the table to docs/compatibility.md
#   --no-btf            add rows with /sys/kernel/btf hidden (the BTF-less
#                       fallback): bookworm's kernel (6.1);
#                       OSPREY_MATRIX_NO_BTF_SUITES changes the suites (default
#                       "bookworm"; "bookworm trixie-backports" adds 7.3, where
#                       uprobe programs run on private stacks, guarded by busy
#                       slots -- not in CI: there the kernel skips some syscall
#                       tracepoint runs, see docs/compatibility.md)
#   --kernels "A B"     suites to boot (default: bullseye bookworm
#                       bookworm-backports trixie trixie-backports sid); a suite
#                       name picks the newest linux-image-amd64 from it and its
#                       -security/-updates pockets, e.g. bullseye, bookworm,
#                       bookworm-backports, trixie, trixie-backports, sid
#   --no-host           skip the host row
#   --accel kvm|tcg     default: kvm if /dev/kvm works, else tcg
#   --timeout SECS      per-VM timeout (default 300)
#   --refresh           refresh the private apt lists even if fresh (< 24 h)
#   --offline           no apt-get at all: use cached kernels only
#   --verbose           guests dump osprey's stderr and records even on PASS
#
# Environment: OSPREY_MATRIX_RETRY_FAIL=1 re-runs a failing row once (CI);
# CI=true (or OSPREY_MATRIX_REQUIRE_ALL=1) makes a SKIP row (a kernel that
# could not be fetched) fail the run, so CI cannot pass on the host row alone.
# the table then says "PASS (on retry)" and keeps the first verdict in notes.
# OSPREY_MATRIX_TLS_STRESS=N: the guests' Go TLS stress step makes N GETs
# (default 64; more to hunt a rare kernel fault).
# OSPREY_MATRIX_CACHE (default ~/.cache/osprey-matrix) holds the
# private apt state, the extracted vmlinuz files (.debs are deleted), the initrd and
# one serial log per row (logs/<row>.log). OSPREY_MATRIX_MIRROR overrides the
# Debian mirror (default: the one configured in /etc/apt/sources*).
#
# Kernels are fetched with apt-get download through a private apt
# configuration in the cache dir (own sources list, lists and cache): the
# host's apt configuration is never changed.
#
# Exit status: 0 unless a kernel >= 5.15 FAILs (or the script itself breaks).
# Older kernels failing are reported as expected; unreachable ones are SKIP,
# which fails the run too under CI=true / OSPREY_MATRIX_REQUIRE_ALL=1.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${OSPREY_MATRIX_CACHE:-$HOME/.cache/osprey-matrix}
DEFAULT_SUITES="bullseye bookworm bookworm-backports trixie trixie-backports sid"
SUITES=$DEFAULT_SUITES
NO_BTF_SUITES=${OSPREY_MATRIX_NO_BTF_SUITES:-bookworm}
WRITE_DOCS=0 NO_BTF=0 HOST_ROW=1 ACCEL="" TIMEOUT=300 REFRESH=0 OFFLINE=0 VERBOSE=0
MIN_SUPPORTED=5.15   # below this a FAIL is expected (no atomic fetch-add etc.)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-gnu/release/osprey

while [ $# -gt 0 ]; do
    case $1 in
        --write-docs) WRITE_DOCS=1 ;;
        --no-btf) NO_BTF=1 ;;
        --kernels) SUITES=$2; shift ;;
        --no-host) HOST_ROW=0 ;;
        --accel) ACCEL=$2; shift ;;
        --timeout) TIMEOUT=$2; shift ;;
        --refresh) REFRESH=1 ;;
        --offline) OFFLINE=1 ;;
        --verbose) VERBOSE=1 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "kernel-matrix: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

log() { echo "kernel-matrix: $*" >&2; }
die() { log "$*"; exit 2; }
[ "$(id -u)" = 0 ] || die "run as root (apt-get, and the host row loads BPF)"

T_START=$(date +%s)
mkdir -p "$CACHE"/{apt/lists/partial,apt/cache/archives/partial,debs,kernels,logs}
[ -f "$CACHE/apt/status" ] || : >"$CACHE/apt/status"   # empty dpkg status: nothing "installed"

# ---------------------------------------------------------------- host tools
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v gzip >/dev/null || need+=(gzip)
command -v file >/dev/null || need+=(file)
if [ ${#need[@]} -gt 0 ]; then
    [ $OFFLINE = 1 ] && die "missing ${need[*]} and --offline given"
    log "installing ${need[*]}"
    apt-get update -qq >/dev/null || log "apt-get update failed (continuing)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
        die "apt-get install ${need[*]} failed"
fi
# busybox-static installs /bin/busybox; re-check it is the static one
file -L /bin/busybox | grep -q 'statically linked' || die "/bin/busybox is not static (install busybox-static)"

# always: cargo rebuilds only what changed, and a binary left from another
# revision would test the wrong code (this once sent a bisection astray)
log "building osprey (cargo build --release)"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
(cd "$ROOT" && cargo build --release) || die "cargo build failed"
file "$BIN" | grep -qE 'statically linked|static-pie' || die "$BIN is not a static binary"

# KVM only if it really runs a guest: nested KVM can exist as /dev/kvm and
# still hang (or abort on MSRs) before the kernel prints a line. The probe
# boots the first cached kernel for up to 20 s; its answer is cached per
# host kernel + qemu version.
kvm_probe() {
    local k stamp=$CACHE/kvm-probe.$(uname -r)-$(qemu-system-x86_64 --version | head -1 | awk '{print $4}')
    [ -f "$stamp" ] && { cat "$stamp"; return; }
    k=$(ls "$CACHE"/kernels/*/vmlinuz 2>/dev/null | head -1)
    [ -n "$k" ] || { echo unknown; return; }   # nothing to boot yet: don't cache
    if timeout -k 5 20 qemu-system-x86_64 -accel kvm -cpu host -m 256 -nographic -no-reboot -monitor none \
            -serial stdio -nic none -kernel "$k" -append "console=ttyS0 panic=-1 rdinit=/nonexistent" \
            </dev/null 2>&1 | tr -d '\r' | grep -q 'Linux version'; then
        echo kvm | tee "$stamp"
    else
        echo tcg | tee "$stamp"
    fi
}
set_accel() {
case $ACCEL in
    kvm) QEMU_ACCEL=(-accel kvm -cpu host) ;;
    # single-threaded TCG by default: with thread=multi, Debian 7.2/7.3 kernels
    # intermittently oopsed on an int3 in trace_syscall_exit while osprey
    # attached/detached (static-key text patching racing across vCPUs)
    tcg) QEMU_ACCEL=(-accel "tcg,thread=${OSPREY_MATRIX_TCG_THREAD:-single}" -cpu max) ;;
    *) die "--accel: kvm or tcg" ;;
esac
}

# ------------------------------------------------------ private apt config
MIRROR=${OSPREY_MATRIX_MIRROR:-}
if [ -z "$MIRROR" ]; then
    MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -E '^[[:space:]]*(URIs:|deb[[:space:]])' | grep -oE 'https?://[^ ]*/debian/?( |$)' | tr -d ' ' | head -1)
    MIRROR=${MIRROR%/}
fi
SEC_MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -E '^[[:space:]]*(URIs:|deb[[:space:]])' | grep -oE 'https?://[^ ]*/debian-security/?' | head -1)
SEC_MIRROR=${SEC_MIRROR%/}
[ -n "$SEC_MIRROR" ] || SEC_MIRROR=${MIRROR}-security
[ -n "$MIRROR" ] || [ $OFFLINE = 1 ] || die "no Debian mirror configured in /etc/apt/sources* (set OSPREY_MATRIX_MIRROR)"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

APTOPT=(-o "Dir::Etc::sourcelist=$CACHE/apt/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::lists=$CACHE/apt/lists" -o "Dir::Cache=$CACHE/apt/cache"
    -o "Dir::State::status=$CACHE/apt/status" -o "Dir::Cache::pkgcache=$CACHE/apt/cache/pkgcache.bin"
    -o "Dir::Cache::srcpkgcache=$CACHE/apt/cache/srcpkgcache.bin" -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::CNF::DefaultEnabled=false"
    -o "APT::Get::List-Cleanup=false" -o "Debug::NoLocking=true" -o "APT::Sandbox::User=root")

declare -A SUITE_OK=()   # suite -> 1 if its InRelease was fetched
APT_STATE="not run"
apt_prepare() {
    local s pockets list="" all=$SUITES
    # the no-BTF rows' suites too (a kernel fetched for them alone)
    [ $NO_BTF = 1 ] && for s in $NO_BTF_SUITES; do
        [[ " $all " == *" $s "* ]] || all+=" $s"
    done
    for s in $all; do
        pockets=$s
        case $s in
            *-backports|sid|unstable|experimental) ;;
            *) pockets="$s $s-updates" ;;
        esac
        for p in $pockets; do list+="deb [signed-by=$KEYRING] $MIRROR $p main"$'\n'; done
        case $s in
            *-backports|sid|unstable|experimental) ;;
            *) list+="deb [signed-by=$KEYRING] $SEC_MIRROR $s-security main"$'\n' ;;
        esac
    done
    local fresh=0
    if [ -f "$CACHE/apt/sources.list" ] && [ "$(cat "$CACHE/apt/sources.list")" = "${list%$'\n'}" ] &&
        [ -n "$(find "$CACHE/apt/stamp" -mmin -1440 2>/dev/null)" ] && [ $REFRESH = 0 ]; then
        fresh=1
    fi
    printf '%s' "$list" >"$CACHE/apt/sources.list"
    if [ $fresh = 0 ]; then
        local t0=$(date +%s)
        log "apt-get update (private lists: $CACHE/apt)"
        apt-get "${APTOPT[@]}" update >"$CACHE/logs/apt-update.log" 2>&1
        APT_STATE="updated in $(( $(date +%s) - t0 )) s"
        touch "$CACHE/apt/stamp"
    else
        APT_STATE="lists < 24 h old, reused"
    fi
    for s in $all; do
        # a suite is reachable if apt holds its Release file now
        if ls "$CACHE/apt/lists/" 2>/dev/null | grep -qE "_dists_${s}_(In)?Release$"; then
            SUITE_OK[$s]=1
        fi
    done
}

# resolve SUITE: prints "VERSION PKG" of the newest linux-image-amd64 in it
# (PKG: the package that holds boot/vmlinuz-*)
resolve() {
    local s=$1 best="" v suite
    while IFS='|' read -r _ v src; do
        v=$(echo $v); suite=$(echo "$src" | awk '{print $2}'); suite=${suite%%/*}
        case $suite in "$s"|"$s-security"|"$s-updates") ;; *) continue ;; esac
        if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
    done < <(apt-cache "${APTOPT[@]}" madison linux-image-amd64 2>/dev/null)
    [ -n "$best" ] || return 1
    local img bin
    img=$(apt-cache "${APTOPT[@]}" show "linux-image-amd64=$best" 2>/dev/null |
        sed -n 's/^Depends: //p' | head -1 | grep -oE 'linux-image-[0-9][^ ,]*' | head -1)
    [ -n "$img" ] || return 1
    # newer Debian kernels split the image: vmlinuz is in linux-binary-*
    bin=$(apt-cache "${APTOPT[@]}" show "$img=$best" 2>/dev/null |
        sed -n 's/^Depends: //p' | head -1 | grep -oE 'linux-binary-[0-9][^ ,]*' | head -1)
    echo "$best ${bin:-$img}"
}

# fetch SUITE: sets KDIR (dir with vmlinuz) or SKIP_REASON; cache first
fetch() {
    local s=$1 dir=$CACHE/kernels/$1 ver pkg deb t0 vm
    KDIR="" SKIP_REASON="" FETCH_NOTE=""
    if [ $OFFLINE = 0 ] && [ -n "${SUITE_OK[$s]:-}" ]; then
        if read -r ver pkg < <(resolve "$s"); then
            if [ -f "$dir/vmlinuz" ] && [ "$(cat "$dir/deb-version" 2>/dev/null)" = "$ver $pkg" ]; then
                KDIR=$dir; FETCH_NOTE="cached"; return 0
            fi
            t0=$(date +%s)
            log "$s: apt-get download $pkg=$ver"
            if (cd "$CACHE/debs" && apt-get "${APTOPT[@]}" download "$pkg=$ver" >>"$CACHE/logs/apt-download.log" 2>&1); then
                deb=$(ls -t "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | head -1)
                rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/x" &&
                    dpkg-deb -x "$deb" "$dir.tmp/x" &&
                    vm=$(find "$dir.tmp/x" \( -path '*/boot/vmlinuz-*' -o -path '*/lib/modules/*/vmlinuz' \) -type f | head -1) &&
                    [ -n "$vm" ] && cp "$vm" "$dir.tmp/vmlinuz" &&
                    case $vm in
                        */boot/vmlinuz-*) echo "${vm##*/vmlinuz-}" ;;
                        *) basename "$(dirname "$vm")" ;;
                    esac >"$dir.tmp/kernel-release" &&
                    echo "$ver $pkg" >"$dir.tmp/deb-version" && rm -rf "$dir.tmp/x" &&
                    rm -rf "$dir" && mv "$dir.tmp" "$dir" || { rm -rf "$dir.tmp"; SKIP_REASON="$pkg=$ver: no boot/vmlinuz-* nor usr/lib/modules/*/vmlinuz in the package"; }
                if [ -z "$SKIP_REASON" ]; then
                    KDIR=$dir; FETCH_NOTE="fetched in $(( $(date +%s) - t0 )) s ($(du -m "$deb" | cut -f1) MB)"
                    rm -f "$deb"   # the cache keeps the extracted vmlinuz only
                    return 0
                fi
            else
                SKIP_REASON="apt-get download $pkg=$ver failed: $(tail -1 "$CACHE/logs/apt-download.log")"
            fi
        else
            SKIP_REASON="no linux-image-amd64 in $s"
        fi
    elif [ $OFFLINE = 0 ]; then
        SKIP_REASON="suite $s not reachable via $MIRROR (see $CACHE/logs/apt-update.log)"
    else
        SKIP_REASON="--offline and nothing cached"
    fi
    if [ -f "$dir/vmlinuz" ]; then
        KDIR=$dir; FETCH_NOTE="cached (could not refresh: $SKIP_REASON)"; SKIP_REASON=""; return 0
    fi
    return 1
}

# ------------------------------------------------------------- TLS peers
# scripts/matrix/tls-go.go and tls-openssl.c, static, with their symbols
# (osprey finds SSL_read/SSL_write and crypto/tls by them), and a P-256
# certificate (cheap handshakes under TCG). Rebuilt on every run (go and gcc
# are quick with go's build cache in $CACHE/go): never a stale binary.
TLSBUILD=$CACHE/tls
build_tls() {
    local d=$TLSBUILD src=$ROOT/scripts/matrix blog=$CACHE/logs/tls-build.log
    rm -rf "$d" && mkdir -p "$d" "$CACHE/go"
    command -v go >/dev/null || die "go not found: install golang-go (scripts/setup.sh)"
    : >"$blog"
    # GOPATH mode, offline: the peer is stdlib only
    (cd "$d" && CGO_ENABLED=0 GO111MODULE=off GOPROXY=off GOFLAGS= GOTOOLCHAIN=local HOME="$CACHE/go" \
        GOCACHE="$CACHE/go/cache" GOPATH="$CACHE/go/path" go build -ldflags=-w -o "$d/tls-go" "$src/tls-go.go") \
        >>"$blog" 2>&1 || die "building $src/tls-go.go failed: $(tail -3 "$blog")"
    # the linker warns that getaddrinfo/dlopen in a static binary need glibc's
    # shared libraries at run time: this program calls neither
    gcc -O2 -Wall -static -o "$d/tls-openssl" "$src/tls-openssl.c" -lssl -lcrypto -lpthread >>"$blog" 2>&1 ||
        die "building $src/tls-openssl.c failed (libssl-dev?): $(grep -m3 -E 'error|cannot find' "$blog")"
    for b in tls-go tls-openssl; do
        file "$d/$b" | grep -q 'statically linked' || die "$d/$b is not a static binary"
    done
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -subj /CN=localhost -keyout "$d/key.pem" -out "$d/cert.pem" >>"$blog" 2>&1 ||
        die "openssl req failed: $(tail -3 "$blog")"
    log "TLS peers built: tls-go $(du -k "$d/tls-go" | cut -f1) KiB ($(go version | awk '{print $3}')), tls-openssl $(du -k "$d/tls-openssl" | cut -f1) KiB ($(openssl version | awk '{print $1, $2}'))"
}

# ------------------------------------------------------------- initramfs
INITRD=$CACHE/initrd.gz
build_initrd() {
    local r=$CACHE/initrd.root
    rm -rf "$r" && mkdir -p "$r"/{bin,sbin,proc,sys,dev,tmp,run,etc,tls}
    cp /bin/busybox "$r/bin/busybox"
    cp "$BIN" "$r/bin/osprey"
    cp "$TLSBUILD"/{tls-go,tls-openssl,cert.pem,key.pem} "$r/tls/"
    cp "$ROOT/scripts/matrix/init.sh" "$r/init"
    chmod 755 "$r/init" "$r/bin/busybox" "$r/bin/osprey"
    ln -s busybox "$r/bin/sh"
    # the kernel wants /dev/console before devtmpfs is mounted
    mknod -m 600 "$r/dev/console" c 5 1 2>/dev/null || true
    (cd "$r" && find . | cpio -o -H newc --quiet | gzip -1) >"$INITRD.tmp" && mv "$INITRD.tmp" "$INITRD"
    rm -rf "$r"
}

# ------------------------------------------------------------------- rows
ROWS=()       # row ids in order
declare -A R_KVER R_BTF R_RES R_SECS R_NOTE R_SRC R_COUNT

# verdict ROW KVER RESULTLINE: fills R_RES / R_COUNT (1 = counts as a matrix failure)
verdict() {
    local row=$1 kver=$2 line=$3 mm old=0
    mm=$(echo "$kver" | grep -oE '^[0-9]+\.[0-9]+')
    if [ -n "$mm" ] && [ "$mm" != "$MIN_SUPPORTED" ] &&
        [ "$(printf '%s\n%s\n' "$mm" "$MIN_SUPPORTED" | sort -V | head -1)" = "$mm" ]; then old=1; fi
    R_COUNT[$row]=0
    case $line in
        PASS*) R_RES[$row]=PASS; return ;;
        FAIL*) R_NOTE[$row]="${line#FAIL }${R_NOTE[$row]:+; ${R_NOTE[$row]}}"; R_RES[$row]=FAIL ;;
        *) R_RES[$row]="FAIL (no result line)" ;;
    esac
    # the BTF-less row counts: the fallback is a supported mode (a broken
    # allowlist in it once passed CI here as "informational")
    if [ $old = 1 ]; then
        R_RES[$row]+=" (expected: < $MIN_SUPPORTED)"
    else
        R_COUNT[$row]=1
    fi
}

# tls_line LOG RESULTLINE: the result, made a FAIL if it is a PASS without
# the TLS step's success line (a guest that skipped it must not pass)
tls_line() {
    if [[ $2 == PASS* ]] && ! grep -q '^OSPREY-MATRIX-TLS: go+openssl' "$1"; then
        echo "FAIL no TLS line in the guest's output (TLS step not run)"
    else
        echo "$2"
    fi
}

# extra_notes ROW LOG: what osprey check said that the verdict alone hides
extra_notes() {
    local row=$1 logf=$2 b
    # the TLS step (a failure is in the result's reason already)
    b=$(sed -n 's/^OSPREY-MATRIX-TLS: //p' "$logf" | tail -1)
    [ -n "$b" ] && [[ $b != FAIL* ]] && R_NOTE[$row]="${R_NOTE[$row]:+${R_NOTE[$row]}; }TLS: $b"
    # which hook set the default run attached (and whether the other was checked)
    b=$(grep -m1 -oE 'NOTE: events: attached after [0-9]+ s \([a-z]+ hooks\)' "$logf" | grep -oE '[a-z]+ hooks')
    if [ -n "$b" ]; then
        grep -q 'NOTE: syscall hooks checked' "$logf" && b="$b (syscall hooks also checked)"
        R_NOTE[$row]="${R_NOTE[$row]:+${R_NOTE[$row]}; }$b"
    fi
    if [[ $row == *no-btf* ]]; then
        b=$(grep -m1 -E '^\[check\] [a-zA-Z]+ +kernel BTF' "$logf" | sed 's/^\[check\] //' | tr -s ' ')
        [ -n "$b" ] && R_NOTE[$row]="${R_NOTE[$row]:+${R_NOTE[$row]}; }osprey check: \"$b\""
    fi
    if [[ ${R_RES[$row]} == FAIL* ]] && grep -q '^\[check\] all checks passed' "$logf"; then
        R_NOTE[$row]="${R_NOTE[$row]:+${R_NOTE[$row]}; }osprey check had passed (all checks ok)"
    fi
}

boot() {   # boot KDIR EXTRA_APPEND LOG: one VM run; sets BOOT_RC
    timeout --foreground -k 10 "$TIMEOUT" qemu-system-x86_64 "${QEMU_ACCEL[@]}" -m 1024 -smp 2 \
        -nographic -no-reboot -monitor none -serial stdio -nic none \
        -kernel "$1/vmlinuz" -initrd "$INITRD" \
        -append "console=ttyS0 panic=-1 quiet $2${OSPREY_MATRIX_TLS_STRESS:+ OSPREY_MATRIX_TLS_STRESS=$OSPREY_MATRIX_TLS_STRESS}" \
        </dev/null >"$3" 2>&1
    BOOT_RC=$?
    tr -d '\r' <"$3" >"$3.tmp" && mv "$3.tmp" "$3"
}

# why_no_result LOG: one line on why a boot printed no result
why_no_result() {
    local w
    if [ $BOOT_RC = 124 ] || [ $BOOT_RC = 137 ]; then w="timed out after ${TIMEOUT}s"
    else w="qemu exit $BOOT_RC, no result line"; fi
    if grep -qE 'Kernel panic|BUG:|Oops' "$1"; then
        w+=": $(grep -m1 -E 'Oops|BUG:|Kernel panic' "$1" | sed 's/^\[ *[0-9.]*\] //')"
        w+=" in $(grep -m1 -oE 'RIP: 0010:[^ ]+' "$1" | sed 's/RIP: 0010://') (comm $(grep -m1 -oE 'Comm: [^ ]+' "$1" | cut -d' ' -f2))"
    fi
    echo "$w"
}

run_guest() {   # run_guest ROW KDIR EXTRA_APPEND
    local row=$1 kdir=$2 extra=$3 logf=$CACHE/logs/$1.log t0 line kver btf first=""
    ROWS+=("$row")
    R_SRC[$row]="$(cat "$kdir/deb-version" 2>/dev/null)"
    log "$row: booting $(cat "$kdir/kernel-release" 2>/dev/null) ($ACCEL, timeout ${TIMEOUT}s) → $logf"
    t0=$(date +%s)
    rm -f "$CACHE/logs/$row.attempt1.log"
    boot "$kdir" "$extra" "$logf"
    line=$(sed -n 's/^OSPREY-MATRIX-RESULT: //p' "$logf" | tail -1)
    if [ -z "$line" ]; then
        # no verdict (kernel oops, hang): boot once more, keep both logs, and say so
        first=$(why_no_result "$logf")
        mv "$logf" "$CACHE/logs/$row.attempt1.log"
        log "$row: attempt 1 gave no result ($first); retrying once"
        boot "$kdir" "$extra" "$logf"
        line=$(sed -n 's/^OSPREY-MATRIX-RESULT: //p' "$logf" | tail -1)
    fi
    if [ "${OSPREY_MATRIX_RETRY_FAIL:-0}" = 1 ] && [ -z "$first" ] && [[ $line == FAIL* ]] \
        && ! [[ $row == bullseye* ]]; then
        # CI: a failing verdict is re-run once; the table keeps the first one
        first="verdict $line"
        mv "$logf" "$CACHE/logs/$row.attempt1.log"
        log "$row: attempt 1 failed ($line); retrying once (OSPREY_MATRIX_RETRY_FAIL=1)"
        boot "$kdir" "$extra" "$logf"
        line=$(sed -n 's/^OSPREY-MATRIX-RESULT: //p' "$logf" | tail -1)
    fi
    line=$(tls_line "$logf" "$line")
    R_SECS[$row]=$(( $(date +%s) - t0 ))
    kver=$(sed -n 's/^OSPREY-MATRIX-KERNEL: //p' "$logf" | head -1)
    btf=$(sed -n 's/^OSPREY-MATRIX-BTF: //p' "$logf" | head -1)
    R_KVER[$row]=${kver:-$(cat "$kdir/kernel-release" 2>/dev/null)}
    R_BTF[$row]=${btf:-?}
    [[ $row == *no-btf* ]] && R_BTF[$row]="hidden"
    [ -z "$line" ] && R_NOTE[$row]=$(why_no_result "$logf")
    [ -n "$first" ] && R_NOTE[$row]="${R_NOTE[$row]:+${R_NOTE[$row]}; }attempt 1: $first (logs/$row.attempt1.log)"
    verdict "$row" "${R_KVER[$row]}" "$line"
    [ -n "$first" ] && [ "${R_RES[$row]}" = PASS ] && R_RES[$row]="PASS (on retry)"
    extra_notes "$row" "$logf"
    log "$row: ${R_RES[$row]} in ${R_SECS[$row]} s${R_NOTE[$row]:+ — ${R_NOTE[$row]}}"
}

run_host() {
    local row=host logf=$CACHE/logs/host.log t0 line
    ROWS+=("$row")
    R_SRC[$row]="(host kernel, checks run directly)"
    log "host: running the guest checks on this kernel → $logf"
    t0=$(date +%s)
    OSPREY_MATRIX_HOST=1 OSPREY_MATRIX_PORT=${OSPREY_MATRIX_PORT:-18080} OSPREY_MATRIX_OSPREY=$BIN \
        OSPREY_MATRIX_TLS=$TLSBUILD \
        OSPREY_MATRIX_BUSYBOX=/bin/busybox timeout -k 10 "$TIMEOUT" /bin/busybox sh "$ROOT/scripts/matrix/init.sh" >"$logf" 2>&1
    R_SECS[$row]=$(( $(date +%s) - t0 ))
    R_KVER[$row]=$(uname -r)
    [ -f /sys/kernel/btf/vmlinux ] && R_BTF[$row]=yes || R_BTF[$row]=no
    line=$(tls_line "$logf" "$(sed -n 's/^OSPREY-MATRIX-RESULT: //p' "$logf" | tail -1)")
    verdict "$row" "${R_KVER[$row]}" "$line"
    extra_notes "$row" "$logf"
    log "host: ${R_RES[$row]} in ${R_SECS[$row]} s${R_NOTE[$row]:+ — ${R_NOTE[$row]}}"
}

REQUIRE_ALL=0
[ "${CI:-}" = true ] || [ "${OSPREY_MATRIX_REQUIRE_ALL:-0}" = 1 ] && REQUIRE_ALL=1
skip_row() {   # skip_row ROW REASON: counts as a failure under REQUIRE_ALL
    ROWS+=("$1"); R_KVER[$1]="-"; R_BTF[$1]="-"; R_RES[$1]=SKIP; R_SECS[$1]=0; R_NOTE[$1]=$2; R_COUNT[$1]=$REQUIRE_ALL
    [ $REQUIRE_ALL = 1 ] && R_RES[$1]="SKIP (a failure in CI)"
    R_SRC[$1]=""
    log "$1: SKIP — $2"
}

# ------------------------------------------------------------------- main
if [ $OFFLINE = 0 ]; then apt_prepare; else APT_STATE="--offline"; fi
build_tls
build_initrd || die "initramfs build failed"

T_FETCH=0
declare -A KDIRS=() FETCH_SKIP=()
for s in $SUITES; do
    t0=$(date +%s)
    if fetch "$s"; then
        KDIRS[$s]=$KDIR
        log "$s: $(cat "$KDIR/kernel-release") ($FETCH_NOTE)"
    else
        KDIRS[$s]=""; FETCH_SKIP[$s]=$SKIP_REASON
    fi
    T_FETCH=$((T_FETCH + $(date +%s) - t0))
done
if [ -z "$ACCEL" ]; then
    ACCEL=tcg
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
        ACCEL=$(kvm_probe); [ "$ACCEL" = unknown ] && ACCEL=tcg
    fi
fi
set_accel
log "accelerator: $ACCEL"
T_BOOT0=$(date +%s)

[ $HOST_ROW = 1 ] && run_host
for s in $SUITES; do
    if [ -n "${KDIRS[$s]}" ]; then
        run_guest "$s" "${KDIRS[$s]}" "$([ $VERBOSE = 1 ] && echo osprey_matrix_verbose)"
    else
        skip_row "$s" "${FETCH_SKIP[$s]}"
    fi
done
# the BTF-less fallback: bookworm's 6.1 (OSPREY_MATRIX_NO_BTF_SUITES adds
# e.g. trixie-backports, a 6.13+ kernel whose uprobe programs run on
# private stacks: the busy-slot guard, bpf/compat.bpf.h)
if [ $NO_BTF = 1 ]; then
    for s in $NO_BTF_SUITES; do
        if [ -n "${KDIRS[$s]:-}" ]; then
            run_guest "$s-no-btf" "${KDIRS[$s]}" "osprey_matrix_nobtf $([ $VERBOSE = 1 ] && echo osprey_matrix_verbose)"
        elif [[ " $SUITES " != *" $s "* ]] && fetch "$s"; then
            run_guest "$s-no-btf" "$KDIR" "osprey_matrix_nobtf $([ $VERBOSE = 1 ] && echo osprey_matrix_verbose)"
        else
            skip_row "$s-no-btf" "$s kernel unavailable"
        fi
    done
fi
T_END=$(date +%s)

# ------------------------------------------------------------------ table
fails=0
table() {   # table md|text
    local r
    if [ "$1" = md ]; then
        echo "| row | kernel | BTF | result | seconds | notes |"
        echo "| --- | --- | --- | --- | ---: | --- |"
    else
        printf '%-20s %-28s %-6s %-34s %7s  %s\n' ROW KERNEL BTF RESULT SECONDS NOTES
    fi
    for r in "${ROWS[@]}"; do
        if [ "$1" = md ]; then
            printf '| %s | %s | %s | %s | %s | %s |\n' "$r" "${R_KVER[$r]}" "${R_BTF[$r]}" "${R_RES[$r]}" "${R_SECS[$r]}" \
                "$(echo "${R_NOTE[$r]:-}" | sed 's/|/\\|/g')"
        else
            printf '%-20s %-28s %-6s %-34s %7s  %s\n' "$r" "${R_KVER[$r]}" "${R_BTF[$r]}" "${R_RES[$r]}" "${R_SECS[$r]}" "${R_NOTE[$r]:-}"
        fi
    done
}
for r in "${ROWS[@]}"; do fails=$((fails + ${R_COUNT[$r]:-0})); done

echo
echo "Osprey kernel matrix ($ACCEL; apt: $APT_STATE; fetch ${T_FETCH} s, boots/checks $((T_END - T_BOOT0)) s, total $((T_END - T_START)) s)"
table text
echo "logs: $CACHE/logs/"

if [ $WRITE_DOCS = 1 ]; then
    doc=$ROOT/docs/compatibility.md
    args=""
    [ "$SUITES" != "$DEFAULT_SUITES" ] && args+=" --kernels \"$SUITES\""
    [ $NO_BTF = 1 ] && args+=" --no-btf"
    [ $HOST_ROW = 0 ] && args+=" --no-host"
    {
        echo "# Kernel compatibility"
        echo
        echo "Generated $(date -u +%Y-%m-%d) by \`sudo scripts/kernel-matrix.sh --write-docs$args\`"
        echo "(osprey $("$BIN" --version 2>/dev/null | awk '{print $2}'), $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?');"
        echo "qemu accelerator: $ACCEL; boots and checks took $((T_END - T_BOOT0)) s in all)."
        echo
        echo "Each row boots one Debian kernel under qemu with an initramfs holding only"
        echo "static busybox, the static \`osprey\` binary,"
        echo "[\`scripts/matrix/init.sh\`](../scripts/matrix/init.sh) and two static TLS peers built"
        echo "by the script on every run with a fresh P-256 certificate (\`openssl req\`):"
        echo "[\`tls-go\`](../scripts/matrix/tls-go.go) (Go crypto/tls, $(go version 2>/dev/null | awk '{print $3}'), \`CGO_ENABLED=0\`) and"
        echo "[\`tls-openssl\`](../scripts/matrix/tls-openssl.c) ($(openssl version 2>/dev/null | awk '{print $1, $2}') linked in from"
        echo "Debian's \`libssl.a\`, symbols kept). No kernel modules are loaded:"
        echo "everything used (loopback, BPF, tracefs, BTF, serial console) is built in."
        echo "In the guest the script runs \`osprey check\`, serves a file with \`busybox httpd\`,"
        echo "captures one \`busybox wget\` of it with \`osprey --records events --comm wget --comm httpd\`"
        echo "and asserts that the records hold the client's \`open\` event, the egress"
        echo "\`GET /hello.txt\` request and the ingress response body; a second capture with"
        echo "\`--records transactions\` must hold wget's \`http_transaction\` with status 200."
        echo "That capture also traces the TLS peers: each server (\`gotls-server\`,"
        echo "\`ssltls-server\`, started before osprey) gets one HTTPS GET over loopback from its"
        echo "own client (\`gotls-client\`, \`ssltls-client\`: the same executable under another"
        echo "name), and each of the four ends must have an \`http_transaction\` with status 200,"
        echo "the request's target, \`\"tls\": true\` and \`tls_library\` \`go\` or \`openssl\`:"
        echo "plaintext read by the uprobes, which need no BTF (the *notes* say \`TLS: go+openssl"
        echo "plaintext\`). A row where that fails is a FAIL naming the missing ends and what"
        echo "osprey said about the two files (uprobes attached or why not); a guest that did"
        echo "not run the TLS step cannot PASS. The OpenSSL server waits in a blocking"
        echo "\`accept()\` from before osprey starts: its connection is one whose accept enter"
        echo "the probe never saw (the BTF-less fallback once missed it entirely: this check's"
        echo "first run failed on \`bookworm-no-btf\`, server end only; fixed in"
        echo "\`bpf/syscall_hooks.bpf.h\`); the Go server polls (epoll) and then accepts."
        echo "Then the Go client makes ${OSPREY_MATRIX_TLS_STRESS:-64} more GETs, 8 connections at a time, and every one"
        echo "must be a TLS transaction at both ends: threads of both Go processes in the"
        echo "uprobe programs at once on the guest's two CPUs. Before the guard below, 300 such"
        echo "GETs oopsed 7.3 within seconds in \`go_tls_ret\` (a CI run had oopsed there once"
        echo "with the single GETs): from 6.13 the JIT gives uprobe programs a per-CPU private stack,"
        echo "yet runs them preemptible, so a run preempted by another run of the same program"
        echo "on that CPU loses its stack; the programs now turn preemption off around their"
        echo "bodies (\`bpf_preempt_disable()\`, 6.10+, \`bpf/compat.bpf.h\`). The objects"
        echo "without kernel BTF cannot call kfuncs: there each uprobe program takes one of three"
        echo "per-CPU busy slots (an atomic fetch-or; each slot runs its own copy of the body,"
        echo "with its own private stack) before it touches its stack, and a run that finds"
        echo "all three taken is dropped and counted (\`tls_reentry_dropped\`; the opt-in"
        echo "\`trixie-backports-no-btf\` row runs that on 7.3)."
        echo "Where the default run attached the socket hooks (\`--hooks auto\`: kernel BTF and the"
        echo "\`sock:sock_send_length\`/\`sock_recv_length\` tracepoints of 6.3+), the events capture"
        echo "runs a second time with \`--hooks syscalls\` and must pass the same assertions."
        echo "The \`host\` row runs the same script directly on the machine that ran the matrix."
        echo
        table md
        echo
        echo "Columns:"
        echo
        echo "- **row**: the Debian suite the kernel comes from (newest \`linux-image-amd64\` in that"
        echo "  suite and its -security/-updates pockets), \`host\` for the running kernel,"
        echo "  \`SUITE-no-btf\` for that suite's kernel with \`/sys/kernel/btf\` hidden under a tmpfs"
        echo "  (the BTF-less fallback)."
        echo "- **kernel**: \`uname -r\` as seen inside the guest."
        echo "- **BTF**: whether \`/sys/kernel/btf/vmlinux\` exists (\`hidden\`: it exists but the row hides it)."
        echo "- **result**: \`PASS\` when \`osprey check\` passes and every record assertion holds;"
        echo "  \`FAIL\` otherwise, with the reason in *notes*. A FAIL on a kernel older than"
        echo "  $MIN_SUPPORTED is expected (\`FAIL (expected: < $MIN_SUPPORTED)\`) and does not make the"
        echo "  matrix fail; the no-BTF row does. \`SKIP\`: the kernel could not be fetched"
        echo "  (in CI, \`CI=true\`, a SKIP fails the run)."
        echo "- **seconds**: wall time of the row: VM boot, checks and power-off (under TCG"
        echo "  software emulation when the accelerator is \`tcg\`), both boots if it was retried."
        echo "  A boot that prints no result line at all (kernel oops, hang) is retried once;"
        echo "  \`PASS (on retry)\` says so and *notes* keeps the first attempt's oops."
        echo "- **notes**: the guest's failure reason (first error lines of osprey's stderr), the"
        echo "  TLS step's result, and which hook set the default run attached."
        echo
        echo "Kernels 5.15 and 5.16 have no \`bpf_loop()\` helper (5.17+): there the"
        echo "further records of one large read or write (\`--capture-max-per-call\`) are at"
        echo "most 4 instead of 64, so at most \`--capture-bytes\` + 64 KiB of one syscall is"
        echo "copied (the loader lowers the option and warns; the rest is counted, \`gap_cause\`"
        echo "\`capture_cap\`). No Debian suite in this matrix ships such a kernel; that path"
        echo "is tested on newer kernels with \`OSPREY_NO_BPF_LOOP=1\`, which makes the loader"
        echo "act as if the helper were missing."
        echo
        echo "Go \`crypto/tls\` plaintext (uprobes, any kernel of this matrix: they need no BTF)"
        echo "works for Go 1.17 and newer (the register ABI) on x86-64 only; on arm64 the Go"
        echo "programs are not attached (their BPF programs are empty there) and a Go TLS"
        echo "binary is named once in the log and counted (\`tls_go_unsupported\`). Stripped"
        echo "binaries are read through \`.gopclntab\` in the Go 1.18+ formats. The Go struct"
        echo "offsets read (tls.Conn.conn +8, net.TCPConn fd +0, netFD.pfd.Sysfd +16,"
        echo "netFD.family +56, netFD.sotype +64) are checked against Debian's Go 1.19 by"
        echo "tests/live_tls_go.rs; other Go versions are not verified here: a Go"
        echo "release that changes it would need new offsets (not detected at run time"
        echo "beyond the family/sotype check). The guest checks above run a Go 1.19"
        echo "binary (Debian's golang-go) on every row."
        echo
        echo "Kernel packages:"
        echo
        for r in "${ROWS[@]}"; do [ -n "${R_SRC[$r]:-}" ] && echo "- $r: ${R_SRC[$r]}"; done
        echo
        echo "Runner notes: with no working KVM the guests run under TCG, single-threaded"
        echo "(\`-accel tcg,thread=single -cpu max -smp 2\`; \`OSPREY_MATRIX_TCG_THREAD=multi\` to change):"
        echo "with multi-threaded TCG the 7.2 and 7.3 kernels twice oopsed on an \`int3\` in"
        echo "\`trace_syscall_exit\` while osprey attached/detached its tracepoints (static-key text"
        echo "patching across two vCPUs); it did not recur in 8 later multi-threaded or 8"
        echo "single-threaded boots, and was not seen on the host kernel. A boot with no result"
        echo "line is retried once; its first log stays as \`logs/ROW.attempt1.log\`. Kernel fetch this run: $T_FETCH s ($APT_STATE)."
        echo
        echo "The full serial log of each row is kept in \`\$OSPREY_MATRIX_CACHE/logs/ROW.log\`"
        echo "(default \`~/.cache/osprey-matrix\`); osprey's own output is in it, prefixed"
        echo "\`[check]\`, \`[osprey-events]\`, \`[records-events]\` (and \`-transactions\`)."
    } >"$doc"
    log "wrote $doc"
fi

[ $fails -eq 0 ]
