// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Osprey kernel side, CO-RE object for `--btf FILE` on a kernel without
 * its own BTF: bpf/osprey.bpf.c compiled without kfunc calls.  libbpf
 * resolves a kfunc, even a weak one, through the kernel's own BTF
 * (/sys/kernel/btf/vmlinux) and fails to load an object that declares one
 * where that is missing; such a kernel has no kfuncs anyway.  The one
 * kfunc use is the uprobe programs' preemption guard (compat.bpf.h,
 * uprobe_preempt_off()): here, as in the BTF-less object, it is absent,
 * and the loader attaches no uprobes on kernels that need it (6.13+).
 */
#define OSPREY_NO_KFUNC
#include "osprey.bpf.c"
