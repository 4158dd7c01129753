/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Syscall hooks: syscalls:sys_enter_* / sys_exit_* of the data, connect,
 * accept and close syscalls (any supported kernel; the only hooks of the
 * BTF-less object).  Each data syscall is a sys_enter/sys_exit pair: enter
 * applies the allowlist and stashes the arguments per thread; exit checks
 * that the fd is a tracked connection or an AF_INET/AF_INET6 stream socket
 * and emits one DATA record for the bytes really moved (the return value).
 * sendfile, splice and sendmmsg/recvmmsg move bytes without a buffer of
 * the process to read (or with one per message): their bytes are counted
 * (positions advance), not captured -- as the socket hooks count them.
 * copy_file_range (regular files only), vmsplice and tee (pipes only)
 * never move socket bytes.
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

static __always_inline int data_enter_as(__s32 fd, __u64 buf, __u32 iovcnt, __u8 vectored,
					 __u8 syscall, __u8 fault)
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
	st.fault = fault;
	stash_put(pid_tgid, &st);
	return 0;
}

static __always_inline int data_enter(__s32 fd, __u64 buf, __u32 iovcnt, __u8 vectored, __u8 syscall)
{
	return data_enter_as(fd, buf, iovcnt, vectored, syscall, 0);
}

/* ---- data syscalls: exit ------------------------------------------------ */

/* `ret` > 0 bytes moved on st->fd: one DATA record if it is a connection
 * (or, looked up once, a TCP socket first seen now). */
static __always_inline int data_moved(__s64 ret, __u8 dir, const struct stash *stp)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct conn_key key = { .tgid = pid_tgid >> 32 };
	struct conn_state *cs;
	struct stash st = *stp;
	__u32 seq;
	void *sk;

	if (ret < 0)
		return 0;
	key.fd = st.fd;
	cs = bpf_map_lookup_elem(&conns, &key);
	if (ret == 0) {
		/* end of stream: the FIN in the socket's position */
		if (cs && dir == OSPREY_DIR_INGRESS && sock_seq(cs->sk, dir, &seq))
			account_eof(cs, pid_tgid, key.tgid, st.fd, seq, NULL);
		return 0;
	}
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
	if (sock_seq(cs->sk, dir, &seq))
		account_unseen(cs, pid_tgid, key.tgid, st.fd, dir, seq, ret, NULL);
	emit_data(cs, &st, pid_tgid, key.tgid, dir, ret);
	tls_saw_conn(pid_tgid, key.tgid, st.fd, cs);   /* inside a TLS call? */
	return 0;
}

static __always_inline int data_exit(__s64 ret, __u8 dir, __u8 syscall)
{
	struct stash st;

	if (!stash_take(bpf_get_current_pid_tgid(), syscall, &st))
		return 0;
	return data_moved(ret, dir, &st);
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

/* A MSG_PEEK read consumes nothing (nginx peeks 1 byte of each new
 * connection): no record, the position does not move -- the bytes come
 * again in the read that takes them. */
static __always_inline bool peek(__u64 flags)
{
	if (!(flags & MSG_PEEK))
		return false;
	if (traced(bpf_get_current_pid_tgid()))
		count(OSPREY_CNT_PEEKS, 1);
	stash_clear();
	return true;
}

/* recvfrom: (fd, buf, len, flags, ...) */
#define RECVFROM_PAIR(name, sys, dir)                                           \
SEC("tracepoint/syscalls/sys_enter_" #name)                                     \
int enter_##name(struct sys_enter_ctx *ctx)                                     \
{                                                                               \
	if (peek(ctx->args[3]))                                                 \
		return 0;                                                       \
	return data_enter((__s32)ctx->args[0], ctx->args[1], 0, 0, sys);        \
}                                                                               \
DATA_EXIT(name, sys, dir)

/* sendmsg/recvmsg: (fd, struct user_msghdr *, flags) */
#define MSG_PAIR(name, sys, dir)                                                \
SEC("tracepoint/syscalls/sys_enter_" #name)                                     \
int enter_##name(struct sys_enter_ctx *ctx)                                     \
{                                                                               \
	struct osp_msghdr mh = {};                                              \
	if (dir == OSPREY_DIR_INGRESS && peek(ctx->args[2]))                    \
		return 0;                                                       \
	/* unreadable here (a page not present: the kernel's own copy will  \
	 * fault it in): the bytes the call moves are still counted, in a  \
	 * record flagged OSPREY_F_READ_FAULT with none of them copied */   \
	if (bpf_probe_read_user(&mh, sizeof(mh), (const void *)ctx->args[1])) { \
		count(OSPREY_CNT_READ_ERRORS, 1);                               \
		return data_enter_as((__s32)ctx->args[0], 0, 0, 0, sys, 1);     \
	}                                                                       \
	return data_enter((__s32)ctx->args[0], mh.msg_iov,                      \
			  (__u32)mh.msg_iovlen, 1, sys);                        \
}                                                                               \
DATA_EXIT(name, sys, dir)

/* ---- bytes moved without a user buffer: counted, not captured ----------- */

/* sendfile(out_fd, in_fd, offset, count): `ret` bytes sent on out_fd. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int enter_sendfile64(struct sys_enter_ctx *ctx)
{
	return data_enter((__s32)ctx->args[0], 0, 0, 0, OSPREY_SYS_SENDFILE);
}
DATA_EXIT(sendfile64, OSPREY_SYS_SENDFILE, OSPREY_DIR_EGRESS)

/* splice(fd_in, off_in, fd_out, off_out, len, flags): one end is a pipe,
 * the other may be a socket -- fd_out: sent, fd_in: received. */
SEC("tracepoint/syscalls/sys_enter_splice")
int enter_splice(struct sys_enter_ctx *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__s32 fd_in = (__s32)ctx->args[0], fd_out = (__s32)ctx->args[2];
	struct stash st = {};

	if (!traced(pid_tgid))
		return 0;
	if (!stash_wanted(pid_tgid, fd_out) && !stash_wanted(pid_tgid, fd_in)) {
		stash_clear();
		return 0;
	}
	st.start_ns = bpf_ktime_get_ns();
	st.fd = fd_out;
	st.fd_in = fd_in;
	st.syscall = OSPREY_SYS_SPLICE;
	stash_put(pid_tgid, &st);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_splice")
int exit_splice(struct sys_exit_ctx *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct conn_key key = { .tgid = pid_tgid >> 32 };
	struct stash st;

	if (!stash_take(pid_tgid, OSPREY_SYS_SPLICE, &st))
		return 0;
	if (ctx->ret <= 0)
		return 0;
	/* a pipe is never a tracked connection nor a TCP socket: at most one
	 * end is */
	key.fd = st.fd;
	if (bpf_map_lookup_elem(&conns, &key) || tcp_sock_from_fd(st.fd))
		return data_moved(ctx->ret, OSPREY_DIR_EGRESS, &st);
	st.fd = st.fd_in;
	return data_moved(ctx->ret, OSPREY_DIR_INGRESS, &st);
}

/* sendmmsg/recvmmsg(fd, mmsg, vlen, ...): `ret` messages, the bytes of
 * each in its msg_len. */
static __always_inline int mmsg_exit(__s64 ret, __u8 dir, __u8 syscall)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct osp_mmsghdr *vec;
	struct stash st;
	__u64 bytes = 0;

	if (!stash_take(pid_tgid, syscall, &st))
		return 0;
	if (ret <= 0)
		return 0;
	if (ret > st.iovcnt)
		ret = st.iovcnt;
	vec = (struct osp_mmsghdr *)st.buf;
	for (__u32 i = 0; i < OSPREY_MAX_MMSG; i++) {
		__u32 n = 0;

		if (i >= ret)
			break;
		if (bpf_probe_read_user(&n, sizeof(n), &vec[i].msg_len)) {
			count(OSPREY_CNT_READ_ERRORS, 1);
			break;
		}
		bytes += n;
	}
	st.buf = 0;   /* counted, not captured */
	st.vectored = 0;
	return data_moved(bytes, dir, &st);
}

#define MMSG_PAIR(name, sys, dir)                                               \
SEC("tracepoint/syscalls/sys_enter_" #name)                                     \
int enter_##name(struct sys_enter_ctx *ctx)                                     \
{                                                                               \
	return data_enter((__s32)ctx->args[0], ctx->args[1],                    \
			  (__u32)ctx->args[2], 0, sys);                         \
}                                                                               \
SEC("tracepoint/syscalls/sys_exit_" #name)                                      \
int exit_##name(struct sys_exit_ctx *ctx)                                       \
{                                                                               \
	return mmsg_exit(ctx->ret, dir, sys);                                   \
}

MMSG_PAIR(sendmmsg, OSPREY_SYS_SENDMMSG, OSPREY_DIR_EGRESS)
MMSG_PAIR(recvmmsg, OSPREY_SYS_RECVMMSG, OSPREY_DIR_INGRESS)

PLAIN_PAIR(read, OSPREY_SYS_READ, OSPREY_DIR_INGRESS)
PLAIN_PAIR(write, OSPREY_SYS_WRITE, OSPREY_DIR_EGRESS)
RECVFROM_PAIR(recvfrom, OSPREY_SYS_RECVFROM, OSPREY_DIR_INGRESS)
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

	if (!stash_take(pid_tgid, syscall, &st)) {
		/* an accept() already blocked when the probe attached: its
		 * enter was never seen, but what it needs is here (the new
		 * socket is the return value). Without this the BTF-less
		 * fallback would never trace that connection (nothing there
		 * finds a socket by its fd later); the CO-RE hooks would adopt
		 * it at its first read or write. A connect() in flight stays
		 * missed: its fd is an argument. */
		if (syscall == OSPREY_SYS_CONNECT || ret < 0 || !traced(pid_tgid))
			return 0;
		st.fd = -1;
	}
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
	/* bytes received unseen since the last record: counted before the end */
	__u32 seq;

	if (sock_seq(cs->sk, OSPREY_DIR_INGRESS, &seq))
		account_unseen(cs, pid_tgid, key.tgid, key.fd, OSPREY_DIR_INGRESS, seq, 0, NULL);
	emit_close(pid_tgid, key.tgid, key.fd, cs, NULL);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

#endif /* __OSPREY_SYSCALL_HOOKS_BPF_H */
