// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * bench-floor: near-empty programs on the hooks a syscall probe can use, to
 * measure what attaching alone costs a traced workload (scripts/bench-floor).
 * One source, one build per hook:
 *   -DFLOOR_TP        per-syscall perf tracepoints, the 23 Osprey's syscall hooks attach
 *   -DFLOOR_TP_EXIT   the same, exits only (plus sys_enter_close)
 *   -DFLOOR_CLOSE     sys_enter_close alone (what any syscall tracepoint costs)
 *   -DFLOOR_RAW       raw_tp sys_enter/sys_exit (every syscall), by number
 *   -DFLOOR_TP_BTF    tp_btf sys_enter/sys_exit (every syscall), by number
 *   -DFLOOR_BTF_EXIT  tp_btf sys_exit alone
 *   -DFLOOR_SOCK_BTF  tp_btf sock_send_length + sock_recv_length (the socket hooks)
 *   -DFLOOR_SOCK_TP   the same as perf tracepoints
 * Each program only compares the tgid with a value that never matches.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

__u64 hits = 0;

static __always_inline int touch(void)
{
	if ((bpf_get_current_pid_tgid() >> 32) == 1)
		hits++;
	return 0;
}

/* x86_64: read write close readv writev connect accept sendto recvfrom
 * sendmsg recvmsg accept4 */
static __always_inline bool wanted(long id)
{
	return id <= 3 || id == 19 || id == 20 || (id >= 42 && id <= 47) || id == 288;
}

#if defined(FLOOR_TP)
#define PAIR(n)                                                                         \
	SEC("tracepoint/syscalls/sys_enter_" #n) int enter_##n(void *ctx) { return touch(); } \
	SEC("tracepoint/syscalls/sys_exit_" #n) int exit_##n(void *ctx) { return touch(); }
PAIR(read) PAIR(write) PAIR(readv) PAIR(writev) PAIR(recvfrom) PAIR(sendto)
PAIR(recvmsg) PAIR(sendmsg) PAIR(connect) PAIR(accept) PAIR(accept4)
SEC("tracepoint/syscalls/sys_enter_close") int enter_close(void *ctx) { return touch(); }
#elif defined(FLOOR_TP_EXIT)
#define EXIT(n)                                                                         \
	SEC("tracepoint/syscalls/sys_exit_" #n) int exit_##n(void *ctx) { return touch(); }
EXIT(read) EXIT(write) EXIT(readv) EXIT(writev) EXIT(recvfrom) EXIT(sendto)
EXIT(recvmsg) EXIT(sendmsg) EXIT(connect) EXIT(accept) EXIT(accept4)
SEC("tracepoint/syscalls/sys_enter_close") int enter_close(void *ctx) { return touch(); }
#elif defined(FLOOR_BTF_EXIT)
SEC("tp_btf/sys_exit")
int BPF_PROG(btf_exit, struct pt_regs *regs, long ret)
{
	return touch();
}
#elif defined(FLOOR_CLOSE)
SEC("tracepoint/syscalls/sys_enter_close") int enter_close(void *ctx) { return touch(); }
#elif defined(FLOOR_SOCK_BTF)
SEC("tp_btf/sock_send_length")
int BPF_PROG(send_len, struct sock *sk, int ret, int flags)
{
	return touch();
}
SEC("tp_btf/sock_recv_length")
int BPF_PROG(recv_len, struct sock *sk, int ret, int flags)
{
	return touch();
}
#elif defined(FLOOR_SOCK_TP)
SEC("tracepoint/sock/sock_send_length") int send_len(void *ctx) { return touch(); }
SEC("tracepoint/sock/sock_recv_length") int recv_len(void *ctx) { return touch(); }
#elif defined(FLOOR_RAW)
SEC("raw_tp/sys_enter")
int raw_enter(struct bpf_raw_tracepoint_args *ctx)
{
	return wanted(ctx->args[1]) ? touch() : 0;
}
SEC("raw_tp/sys_exit")
int raw_exit(struct bpf_raw_tracepoint_args *ctx)
{
	return touch();
}
#elif defined(FLOOR_TP_BTF)
SEC("tp_btf/sys_enter")
int BPF_PROG(btf_enter, struct pt_regs *regs, long id)
{
	return wanted(id) ? touch() : 0;
}
SEC("tp_btf/sys_exit")
int BPF_PROG(btf_exit, struct pt_regs *regs, long ret)
{
	return touch();
}
#else
#error "build with -DFLOOR_TP, -DFLOOR_RAW or -DFLOOR_TP_BTF"
#endif
