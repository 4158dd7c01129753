// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Osprey kernel side, CO-RE object: the syscall hooks and, on kernels with
 * the sock:sock_{send,recv}_length tracepoints (6.3+), the socket hooks
 * (the loader autoloads one set).  No protocol parsing happens here.
 *
 *   common.bpf.h         license, constants, config (.rodata), counters
 *   maps.bpf.h           ring buffer, connections, allowlists, scratch
 *   compat.bpf.h         every BTF/no-BTF, kernel and architecture difference
 *   filter.bpf.h         the process allowlist
 *   records.bpf.h        OPEN/CLOSE/DATA records into the ring buffer
 *   go_tls.bpf.h         TLS plaintext: uprobes on Go crypto/tls
 *   tls_hooks.bpf.h      TLS plaintext: uprobes on the TLS libraries
 *   syscall_hooks.bpf.h  syscalls:sys_enter_* and sys_exit_* programs
 *   socket_hooks.bpf.h   sock:* and tcp:* BTF tracepoint programs
 *
 * Tracepoint contexts are declared locally (not taken from vmlinux.h) so that
 * their layout does not depend on BTF; `osprey check` verifies it against the
 * tracefs format files.  Kernel structures (task, file, sock) are read with
 * CO-RE relocations.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "osprey.h"

#include "common.bpf.h"
#include "maps.bpf.h"
#include "compat.bpf.h"
#include "filter.bpf.h"
#include "records.bpf.h"
#include "go_tls.bpf.h"
#include "tls_hooks.bpf.h"
#include "syscall_hooks.bpf.h"
#include "socket_hooks.bpf.h"
