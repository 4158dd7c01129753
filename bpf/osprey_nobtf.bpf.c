// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Osprey kernel side, BTF-less fallback object: the syscall hooks of
 * bpf/osprey.bpf.c without a single CO-RE relocation, for kernels that have
 * no /sys/kernel/btf/vmlinux.  Only tracepoint contexts (layout checked
 * against tracefs at start-up) and helper calls are used; what that loses is
 * listed in docs/architecture.md ("BTF-less fallback") and implemented in
 * the OSPREY_NO_BTF half of compat.bpf.h.  The TLS uprobes
 * (tls_hooks.bpf.h) need no BTF and are here too.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <asm/ptrace.h>
#include <bpf/bpf_tracing.h>
#include "osprey.h"

#define OSPREY_NO_BTF 1
#include "common.bpf.h"
#include "maps.bpf.h"
#include "compat.bpf.h"
#include "filter.bpf.h"
#include "records.bpf.h"
#include "go_tls.bpf.h"
#include "tls_hooks.bpf.h"
#include "syscall_hooks.bpf.h"
