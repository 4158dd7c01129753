/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Syscall hooks: syscalls:sys_enter_* / sys_exit_* of the data, connect,
 * accept and close syscalls (any supported kernel; the only hooks of the
 * BTF-less object).  Each data syscall is a sys_enter/sys_exit pair: enter
 * applies the allowlist and stashes the arguments per thread; exit checks
 * that the fd is a tracked connection or an AF_INET/AF_INET6 stream socket
 * and emits one DATA record for the bytes really moved (the return value).
 */
#ifndef __OSPREY_SYSCALL_HOOKS_BPF_H
#define __OSPREY_SYSCALL_HOOKS_BPF_H

/* ---- tracepoint contexts (layout checked by `osprey check`) ------------- */

struct sys_enter_ctx {
	__u64 common;           /* common_type/flags/preempt_count/pid */
	__s64 syscall_nr;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 common;
	__s64 syscall_nr;
	__s64 ret;
};

/* ---- data syscalls: enter ----------------------------------------------- */

static __always_inline int data_enter(__s32 fd, __u64 buf, __u32 iovcnt, __u8 vectored, __u8 syscall)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct stash st = {};

	if (!traced(pid_tgid))
		return 0;
	/* CO-RE: always; BTF-less: only for fds known to be connections */
	if (!stash_wanted(pid_tgid, fd)) {
		stash_clear();
		return 0;
	}
	st.start_ns = bpf_ktime_get_ns();
	st.buf = buf;
	st.fd = fd;
	st.iovcnt = iovcnt;
	st.syscall = syscall;
	st.vectored = vectored;
	stash_put(pid_tgid, &st);
	return 0;
}

/* ---- data syscalls: exit ------------------------------------------------ */

static __always_inline int data_exit(__s64 ret, __u8 dir, __u8 syscall)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct conn_key key = { .tgid = pid_tgid >> 32 };
	struct conn_state *cs;
	struct stash st;
	void *sk;

	if (!stash_take(pid_tgid, syscall, &st))
		return 0;
	if (ret <= 0)
		return 0;

	key.fd = st.fd;
	cs = bpf_map_lookup_elem(&conns, &key);
	if (!cs) {
		/* first seen mid-stream: a connection older than the probe */
		sk = tcp_sock_from_fd(st.fd);
		if (!sk)
			return 0;
		cs = conn_open(pid_tgid, st.fd, sk, OSPREY_ROLE_UNKNOWN, OSPREY_SYS_UNKNOWN,
			       OSPREY_F_MIDSTREAM);
		if (!cs)
			return 0;
	}
	emit_data(cs, &st, pid_tgid, key.tgid, dir, ret);
	return 0;
}

/* The exit of every data syscall: the return value is the bytes moved. */
#define DATA_EXIT(name, sys, dir)                                               \
SEC("tracepoint/syscalls/sys_exit_" #name)                                      \
int exit_##name(struct sys_exit_ctx *ctx)                                       \
{                                                                               \
	return data_exit(ctx->ret, dir, sys);                                   \
}

/* read/write/recvfrom/sendto: (fd, buf, len, ...) */
#define PLAIN_PAIR(name, sys, dir)                                              \
SEC("tracepoint/syscalls/sys_enter_" #name)                                     \
int enter_##name(struct sys_enter_ctx *ctx)                                     \
{                                                                               \
	return data_enter((__s32)ctx->args[0], ctx->args[1], 0, 0, sys);        \
}                                                                               \
DATA_EXIT(name, sys, dir)

/* readv/writev: (fd, iov, iovcnt) */
#define VEC_PAIR(name, sys, dir)                                                \
SEC("tracepoint/syscalls/sys_enter_" #name)                                     \
int enter_##name(struct sys_enter_ctx *ctx)                                     \
{                                                                               \
	return data_enter((__s32)ctx->args[0], ctx->args[1],                    \
			  (__u32)ctx->args[2], 1, sys);                         \
}                                                                               \
DATA_EXIT(name, sys, dir)

/* sendmsg/recvmsg: (fd, struct user_msghdr *, flags) */
#define MSG_PAIR(name, sys, dir)                                                \
SEC("tracepoint/syscalls/sys_enter_" #name)                                     \
int enter_##name(struct sys_enter_ctx *ctx)                                     \
{                                                                               \
	struct osp_msghdr mh = {};                                              \
	if (bpf_probe_read_user(&mh, sizeof(mh), (const void *)ctx->args[1])) { \
		stash_clear();                                                  \
		return 0;                                                       \
	}                                                                       \
	return data_enter((__s32)ctx->args[0], mh.msg_iov,                      \
			  (__u32)mh.msg_iovlen, 1, sys);                        \
}                                                                               \
DATA_EXIT(name, sys, dir)

PLAIN_PAIR(read, OSPREY_SYS_READ, OSPREY_DIR_INGRESS)
PLAIN_PAIR(write, OSPREY_SYS_WRITE, OSPREY_DIR_EGRESS)
PLAIN_PAIR(recvfrom, OSPREY_SYS_RECVFROM, OSPREY_DIR_INGRESS)
PLAIN_PAIR(sendto, OSPREY_SYS_SENDTO, OSPREY_DIR_EGRESS)
VEC_PAIR(readv, OSPREY_SYS_READV, OSPREY_DIR_INGRESS)
VEC_PAIR(writev, OSPREY_SYS_WRITEV, OSPREY_DIR_EGRESS)
MSG_PAIR(recvmsg, OSPREY_SYS_RECVMSG, OSPREY_DIR_INGRESS)
MSG_PAIR(sendmsg, OSPREY_SYS_SENDMSG, OSPREY_DIR_EGRESS)

/* ---- connection setup and teardown -------------------------------------- */

static __always_inline int setup_enter(__s32 fd, __u8 syscall)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct stash st = {};

	if (!traced(pid_tgid))
		return 0;
	st.start_ns = bpf_ktime_get_ns();
	st.fd = fd;
	st.syscall = syscall;
	stash_put(pid_tgid, &st);
	return 0;
}

static __always_inline int setup_exit(__s64 ret, __u8 syscall)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct stash st;
	void *sk;
	__s32 fd;
	__u8 role;

	if (!stash_take(pid_tgid, syscall, &st))
		return 0;
	fd = st.fd;

	if (syscall == OSPREY_SYS_CONNECT) {
		if (ret != 0 && ret != -EINPROGRESS)
			return 0;
		role = OSPREY_ROLE_CLIENT;
	} else {
		if (ret < 0)
			return 0;
		fd = ret;   /* the accepted socket */
		role = OSPREY_ROLE_SERVER;
	}
	sk = tcp_sock_from_fd(fd);
	if (!setup_sock_ok(sk))
		return 0;   /* not an AF_INET/AF_INET6 stream socket */
	conn_open(pid_tgid, fd, sk, role, syscall, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct sys_enter_ctx *ctx)
{
	__u16 family = 0;

	/* only IP destinations (also what keeps AF_UNIX out without BTF) */
	if (bpf_probe_read_user(&family, sizeof(family), (const void *)ctx->args[1]) ||
	    (family != AF_INET && family != AF_INET6)) {
		stash_clear();
		return 0;
	}
	return setup_enter((__s32)ctx->args[0], OSPREY_SYS_CONNECT);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct sys_exit_ctx *ctx)
{
	return setup_exit(ctx->ret, OSPREY_SYS_CONNECT);
}

/* accept/accept4: (fd, ...); the new socket is the return value */
#define ACCEPT_PAIR(name, sys)                                                  \
SEC("tracepoint/syscalls/sys_enter_" #name)                                     \
int enter_##name(struct sys_enter_ctx *ctx)                                     \
{                                                                               \
	return setup_enter((__s32)ctx->args[0], sys);                           \
}                                                                               \
SEC("tracepoint/syscalls/sys_exit_" #name)                                      \
int exit_##name(struct sys_exit_ctx *ctx)                                       \
{                                                                               \
	return setup_exit(ctx->ret, sys);                                       \
}

ACCEPT_PAIR(accept, OSPREY_SYS_ACCEPT)
ACCEPT_PAIR(accept4, OSPREY_SYS_ACCEPT4)

/* close() of a tracked connection: final positions, then forget it. */
SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct sys_enter_ctx *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct conn_key key = { .tgid = pid_tgid >> 32, .fd = (__s32)ctx->args[0] };
	struct conn_state *cs;

	cs = bpf_map_lookup_elem(&conns, &key);
	if (!cs)
		return 0;
	emit_close(pid_tgid, key.tgid, key.fd, cs, NULL);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

#endif /* __OSPREY_SYSCALL_HOOKS_BPF_H */
