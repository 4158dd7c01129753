// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Osprey kernel side: syscall tracepoints on TCP sockets.
 *
 * Each data syscall is a sys_enter/sys_exit pair: enter applies the process
 * allowlist and stashes the arguments per thread; exit checks that the fd is
 * a tracked connection or an AF_INET/AF_INET6 stream socket, reads the bytes
 * really moved (the return value) from the user buffer or the iovecs and
 * emits one DATA record.
 * No protocol parsing happens here.
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

#include "osprey_core.bpf.h"
