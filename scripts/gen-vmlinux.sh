#!/usr/bin/env bash
# Regenerates vmlinux/<arch>/vmlinux.h from a kernel's BTF.
#   scripts/gen-vmlinux.sh                       # this kernel, this arch
#   scripts/gen-vmlinux.sh /path/to/vmlinux arm64
# CO-RE makes the header kernel-independent in practice: only the types the
# BPF code names are used, and libbpf relocates field offsets at load time.
set -euo pipefail
btf=${1:-/sys/kernel/btf/vmlinux}
arch=${2:-$(uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/vmlinux/$arch"
bpftool btf dump file "$btf" format c > "$root/vmlinux/$arch/vmlinux.h.tmp"
mv "$root/vmlinux/$arch/vmlinux.h.tmp" "$root/vmlinux/$arch/vmlinux.h"
echo "wrote vmlinux/$arch/vmlinux.h from $btf"
