// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Osprey kernel side, BTF-less fallback build: the same programs as
 * bpf/osprey.bpf.c without a single CO-RE relocation, for kernels that have
 * no /sys/kernel/btf/vmlinux.  Only tracepoint contexts (layout checked
 * against tracefs at start-up) and helper calls are used; what that loses is
 * listed in docs/architecture.md ("BTF-less fallback").
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "osprey.h"

#define OSPREY_NO_BTF 1
#include "osprey_core.bpf.h"
