/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Socket hooks (included by the CO-RE object only: BTF tracepoints).
 *
 * On kernels with the sock:sock_send_length / sock:sock_recv_length
 * tracepoints (6.3+) the loader attaches these programs instead of every
 * syscall tracepoint (syscall_hooks.bpf.h).  They run inside sock_sendmsg()/sock_recvmsg(),
 * after the bytes moved, for socket I/O only: no program runs on the other
 * syscalls, and with no syscall tracepoint attached the kernel keeps every
 * task on its fast syscall path (the syscall hooks alone cost nginx
 * 8-14% on the 2-CPU bench machine, these 2-3%: docs/performance.md).
 * The syscall's arguments (fd, buffer, iovecs) come from the task's saved
 * user registers; connections are keyed by their struct sock, opened at
 * the first bytes a traced process moves (role from the TCP handshake seen
 * by sock:inet_sock_set_state) and closed by the owner's close() or exit
 * (its state change) or when the socket is destroyed (tcp:tcp_destroy_sock).
 * There is no syscall entry time: DATA records carry start_ns 0.
 */
#ifndef __OSPREY_SOCKET_HOOKS_BPF_H
#define __OSPREY_SOCKET_HOOKS_BPF_H

#define PF_IO_WORKER 0x00000010
#define PF_KTHREAD   0x00200000

/* A connection seen by the socket hooks: the conn id's process and fd
 * (whoever first moved bytes on it) and its name for CLOSE records, which
 * can fire in softirq context. */
struct sk_conn {
	struct conn_state cs;   /* cs.gen 0: "pending", role known, not opened */
	__u32 tgid;
	__s32 fd;
	char  comm[OSPREY_COMM_LEN];
};

/* Connections by socket: socket-local storage (a pointer chase from the
 * struct sock, no table to fill up, freed by the kernel with the socket).
 * value: struct sk_conn; lifetime: the handshake (pending, gen 0: role
 * only) or the first bytes a traced process moves (opened: OPEN record)
 * → TCP_CLOSE, or the close()/exit that sends the FIN (CLOSE record,
 * storage deleted); a socket connect()ed again after TCP_CLOSE starts over. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_conn);
} sk_conns SEC(".maps");

static __always_inline bool sk_is_tcp(const struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;

	return (family == AF_INET || family == AF_INET6) && sk->sk_protocol == IPPROTO_TCP;
}

/* The saved user registers of the current task's syscall, or NULL (kernel
 * threads and io_uring workers have none that describe this I/O). */
static __always_inline struct pt_regs *user_regs(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (task->flags & (PF_KTHREAD | PF_IO_WORKER))
		return NULL;
	return (struct pt_regs *)bpf_task_pt_regs(task);
}

/* Which data syscall moved the bytes, with its fd and buffer or iovec
 * array.  sendfile, splice, sendmmsg/recvmmsg: named, fd -1, buf 0;
 * anything else (io_uring, a kernel user of the socket):
 * OSPREY_SYS_UNKNOWN, fd -1, buf 0 -- the bytes are counted, not
 * captured. */
static __always_inline void current_call(struct stash *st, bool ingress)
{
	struct pt_regs *regs = user_regs();
	struct osp_msghdr mh;
	bool in = false;
	__u8 sys;

	st->syscall = OSPREY_SYS_UNKNOWN;
	st->fd = -1;
	if (!regs)
		return;
	switch (SYSCALL_NR(regs)) {
	case NR_read:     sys = OSPREY_SYS_READ;     in = true; break;
	case NR_recvfrom: sys = OSPREY_SYS_RECVFROM; in = true; break;
	case NR_readv:    sys = OSPREY_SYS_READV;    in = true; break;
	case NR_recvmsg:  sys = OSPREY_SYS_RECVMSG;  in = true; break;
	case NR_write:    sys = OSPREY_SYS_WRITE;    break;
	case NR_sendto:   sys = OSPREY_SYS_SENDTO;   break;
	case NR_writev:   sys = OSPREY_SYS_WRITEV;   break;
	case NR_sendmsg:  sys = OSPREY_SYS_SENDMSG;  break;
	/* no buffer of the process to read: named, counted, not captured */
	case NR_sendfile: if (!ingress) st->syscall = OSPREY_SYS_SENDFILE; return;
	case NR_splice:   st->syscall = OSPREY_SYS_SPLICE; return;
	case NR_sendmmsg: if (!ingress) st->syscall = OSPREY_SYS_SENDMMSG; return;
	case NR_recvmmsg: if (ingress) st->syscall = OSPREY_SYS_RECVMMSG; return;
	default:          return;
	}
	if (in != ingress)
		return;   /* e.g. a send inside a read: not the syscall's own bytes */
	st->syscall = sys;
	st->fd = (__s32)PT_REGS_PARM1_SYSCALL(regs);
	st->buf = PT_REGS_PARM2_SYSCALL(regs);
	if (st->syscall == OSPREY_SYS_READV || st->syscall == OSPREY_SYS_WRITEV) {
		st->iovcnt = (__u32)PT_REGS_PARM3_SYSCALL(regs);
		st->vectored = 1;
	} else if (st->syscall == OSPREY_SYS_RECVMSG || st->syscall == OSPREY_SYS_SENDMSG) {
		if (bpf_probe_read_user(&mh, sizeof(mh), (const void *)st->buf)) {
			count(OSPREY_CNT_READ_ERRORS, 1);
			st->buf = 0;
			st->fault = 1;
			return;
		}
		st->buf = mh.msg_iov;
		st->iovcnt = (__u32)mh.msg_iovlen;
		st->vectored = 1;
	}
}

/* Open (or claim a pending entry for) the connection of `sk` as {tgid, fd}
 * of the current process, with an OPEN record. */
static __always_inline struct sk_conn *sk_conn_open(struct sock *sk, __u64 pid_tgid, __s32 fd,
						    __u8 role, __u8 flags)
{
	struct sk_conn *c;

	c = bpf_sk_storage_get(&sk_conns, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!c) {
		count(OSPREY_CNT_CONN_TABLE_FULL, 1);
		return NULL;
	}
	c->cs.gen = __sync_fetch_and_add(&next_gen, 1) + 1;
	c->cs.proc_start_ns = proc_start_ns();
	c->cs.pos[0] = 0;
	c->cs.pos[1] = 0;
	c->cs.role = role;
	c->tgid = pid_tgid >> 32;
	c->fd = fd;
	current_comm((__u64 *)c->comm);
	emit_open(pid_tgid, c->tgid, fd, &c->cs, sk,
		  role == OSPREY_ROLE_CLIENT ? OSPREY_SYS_CONNECT :
		  role == OSPREY_ROLE_SERVER ? OSPREY_SYS_ACCEPT : OSPREY_SYS_UNKNOWN,
		  flags);
	return c;
}

/* Bytes moved on `sk` by the current task (`ret`: the socket layer's
 * return value). */
static __always_inline int sock_data(struct sock *sk, int ret, int flags, __u8 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct stash st = {};
	struct tcp_sock *tp;
	struct sk_conn *c;

	if (ret < 0)
		return 0;
	if (dir == OSPREY_DIR_INGRESS && (flags & MSG_PEEK)) {
		/* nothing consumed: the bytes come again */
		if (ret > 0 && traced(pid_tgid))
			count(OSPREY_CNT_PEEKS, 1);
		return 0;
	}
	if (!sk_is_tcp(sk))
		return 0;
	c = bpf_sk_storage_get(&sk_conns, sk, 0, 0);
	if (ret == 0) {
		/* end of stream: the FIN in the socket's position */
		tp = bpf_skc_to_tcp_sock(sk);
		if (c && c->cs.gen && dir == OSPREY_DIR_INGRESS && tp)
			account_eof(&c->cs, pid_tgid, c->tgid, c->fd, rx_data_seq(tp), NULL);
		return 0;
	}
	/* the allowlist is per process and was applied when this process
	 * opened the connection: only bytes of other processes, or of
	 * sockets not opened yet, are checked (it costs a comm read) */
	if (!(c && c->cs.gen && c->tgid == pid_tgid >> 32) && !traced(pid_tgid))
		return 0;
	current_call(&st, dir == OSPREY_DIR_INGRESS);
	if (!c || !c->cs.gen) {
		/* first bytes: a connection opened since the probe started
		 * (pending, role from its handshake) or an older one */
		if (st.fd < 0)
			return 0;   /* no fd to name it by */
		c = sk_conn_open(sk, pid_tgid, st.fd, c ? c->cs.role : OSPREY_ROLE_UNKNOWN,
				 c ? 0 : OSPREY_F_MIDSTREAM);
		if (!c)
			return 0;
	}
	st.fd = c->fd;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp)
		account_unseen(&c->cs, pid_tgid, c->tgid, c->fd, dir,
			       dir == OSPREY_DIR_INGRESS ? rx_data_seq(tp) : tp->write_seq, ret, NULL);
	emit_data(&c->cs, &st, pid_tgid, c->tgid, dir, ret);
	tls_saw_conn(pid_tgid, c->tgid, c->fd, &c->cs);   /* inside a TLS call? */
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv, struct sock *sk, int ret, int flags)
{
	return sock_data(sk, ret, flags, OSPREY_DIR_INGRESS);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send, struct sock *sk, int ret, int flags)
{
	return sock_data(sk, ret, flags, OSPREY_DIR_EGRESS);
}

/* CLOSE record for an opened connection; forget the socket either way. */
static __always_inline void sk_conn_close(struct sock *sk, struct sk_conn *c)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	/* may run in softirq: name the owner, not the current task */
	if (c->cs.gen && tp) {
		/* bytes received unseen since the last record: counted first */
		__u64 owner = ((__u64)c->tgid << 32) | c->tgid;

		account_unseen(&c->cs, owner, c->tgid, c->fd, OSPREY_DIR_INGRESS, rx_data_seq(tp), 0, c->comm);
	}
	if (c->cs.gen)
		emit_close(((__u64)c->tgid << 32) | c->tgid, c->tgid, c->fd, &c->cs, c->comm);
	bpf_sk_storage_delete(&sk_conns, sk);
}

/* Is the current task the connection's owner ending it: close() of its fd,
 * or exit?  (A state change can run in another task's syscall: over
 * loopback the peer's close() delivers its FIN or RST to this socket
 * synchronously.) */
static __always_inline bool owner_closing(const struct sk_conn *c)
{
	struct pt_regs *regs;
	long nr;

	if ((bpf_get_current_pid_tgid() >> 32) != c->tgid)
		return false;
	regs = user_regs();
	if (!regs)
		return false;
	nr = SYSCALL_NR(regs);
	if (nr == NR_close)
		return (__s32)PT_REGS_PARM1_SYSCALL(regs) == c->fd;
	return nr == NR_exit || nr == NR_exit_group;
}

/* TCP state changes: the role of new connections, and their end. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sock_state, struct sock *sk, int oldstate, int newstate)
{
	struct sk_conn *c;

	if (!sk_is_tcp(sk))
		return 0;
	if (newstate == TCP_SYN_SENT || (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED)) {
		/* connect() (process context: only for traced processes), or a
		 * passive open completing (softirq: any process may accept it) */
		if (newstate == TCP_SYN_SENT && !traced(bpf_get_current_pid_tgid()))
			return 0;
		c = bpf_sk_storage_get(&sk_conns, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!c) {
			count(OSPREY_CNT_CONN_TABLE_FULL, 1);
			return 0;
		}
		c->cs.gen = 0;
		c->cs.role = newstate == TCP_SYN_SENT ? OSPREY_ROLE_CLIENT : OSPREY_ROLE_SERVER;
	} else if (newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK || newstate == TCP_CLOSE) {
		/* the owner's close() or exit: the end, as close() is for the
		 * syscall hooks.  Any other way to TCP_CLOSE (a reset, a
		 * timeout) can race with the owner's last send or receive
		 * still on its way here: the connection ends when the owner
		 * lets go of the socket (tcp_destroy_sock, below). */
		c = bpf_sk_storage_get(&sk_conns, sk, 0, 0);
		if (c && owner_closing(c))
			sk_conn_close(sk, c);
	}
	return 0;
}

/* The socket is destroyed: ends a connection the owner did not close
 * through a state change (reset or timed out before its close()). */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(sock_destroy, struct sock *sk)
{
	struct sk_conn *c = bpf_sk_storage_get(&sk_conns, sk, 0, 0);

	if (c)
		sk_conn_close(sk, c);
	return 0;
}

#endif /* __OSPREY_SOCKET_HOOKS_BPF_H */
