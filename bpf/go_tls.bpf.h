/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * TLS plaintext of Go's crypto/tls: uprobes on `crypto/tls.(*Conn).Write`
 * and `crypto/tls.(*Conn).Read`, at entry (past the stack check, which
 * re-runs the function from its start after growing the stack) and at
 * each of their RET instructions (user space finds them by disassembling
 * the function, src/tls/gobin.rs).  No uretprobes: a uretprobe rewrites the return
 * address on the stack, and a goroutine's stack moves when it grows.
 * x86-64 only (Go's register ABI there, Go >= 1.17); on arm64 the
 * programs are empty and user space attaches nothing.
 *
 * Go's register ABI (ABIInternal, amd64): the receiver (*Conn) in RAX,
 * the []byte in RBX (pointer) and RCX (length); results n in RAX, err in
 * RBX/RCX; the current goroutine's g in R14.  Entry stashes the call in
 * `go_tls_calls` keyed by {tgid, g}: the goroutine may continue on another
 * thread after blocking in the poller, but g stays the same for the call.
 *
 * The connection: the socket fd is read through fixed offsets of the Go
 * structures (see GO_* below and docs/compatibility.md):
 *   tls.Conn.conn (net.Conn interface, data word at +8) → *net.TCPConn
 *   → conn.fd (*netFD, +0) → pfd poll.FD → Sysfd (+16);
 *   netFD.family (+56) and netFD.sotype (+64) must say an INET stream
 *   socket (a net.Conn of another type is not followed: counted as
 *   tls_no_conn).
 * `go_tls_conns` {tgid, fd} holds the plaintext positions; the data hooks
 * name its connection (go_tls_saw_conn(), called from tls_saw_conn())
 * when they move the ciphertext on that fd, so the plaintext records carry
 * the socket's conn id, addresses and role, with either hook set and in
 * the BTF-less object.
 */
#ifndef __OSPREY_GO_TLS_BPF_H
#define __OSPREY_GO_TLS_BPF_H

/* Go struct offsets (amd64; verified against Debian's Go 1.19 by
 * tests/live_tls_go.rs; other versions not verified).  src/tls/go.rs
 * has the same numbers (a unit test compares them). */
#define GO_TLS_CONN_IFACE_DATA 8   /* tls.Conn.conn: interface data word */
#define GO_TCPCONN_FD          0   /* net.TCPConn{conn{fd *netFD}} */
#define GO_NETFD_SYSFD         16  /* netFD.pfd.Sysfd (after fdMutex, 16 bytes) */
#define GO_NETFD_FAMILY        56  /* netFD.family */
#define GO_NETFD_SOTYPE        64  /* netFD.sotype */

/* A Go TLS call in flight.  key: {tgid, g}; lifetime: entry uprobe → a RET
 * uprobe of the same function (LRU: a goroutine that never returns, or
 * a process that exits mid-call, leaves an entry that is evicted). */
struct go_call_key {
	__u32 tgid;
	__u32 _pad;
	__u64 g;
};

struct go_call {
	__u64 buf;
	__u64 len;       /* the []byte's length */
	__u64 start_ns;
	__s32 fd;        /* -1: the net.Conn was not a socket we can name */
	__u8  code;      /* OSPREY_SYS_GO_TLS_READ / _WRITE */
	__u8  emitted;   /* a Write recorded at entry */
	__u8  _pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, OSPREY_MAX_TLS_CALLS);
	__type(key, struct go_call_key);
	__type(value, struct go_call);
} go_tls_calls SEC(".maps");

/* A Go TLS connection by socket.  key: {tgid, fd}; value: the
 * connection's id (filled by the data hooks) and the plaintext positions;
 * lifetime: the first Go TLS call on the fd → LRU (an fd reused for a new
 * connection is seen by its new gen: positions start over, tls_rebound). */
struct go_conn {
	struct conn_state cs;
	__u32 conn_tgid;
	__s32 fd;
	__u8  has_conn;
	__u8  _pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, OSPREY_MAX_TLS_SESSIONS);
	__type(key, struct conn_key);
	__type(value, struct go_conn);
} go_tls_conns SEC(".maps");

/* Set by the first Go entry uprobe that ran: until then the data hooks
 * skip the go_tls_conns lookup (no cost without Go TLS programs). */
volatile __u32 go_tls_armed = 0;

struct go_call abi_go_call = {};
struct go_conn abi_go_conn = {};

/* The data hooks moved ciphertext on {conn_tgid, fd} (connection cs): if
 * a Go TLS connection uses that fd, this names it. */
static __always_inline void go_tls_saw_conn(__u32 conn_tgid, __s32 fd, const struct conn_state *cs)
{
	struct conn_key key = { .tgid = conn_tgid, .fd = fd };
	struct go_conn *g;

	if (!go_tls_armed)
		return;
	g = bpf_map_lookup_elem(&go_tls_conns, &key);
	if (!g)
		return;
	if (g->has_conn && g->cs.gen == cs->gen && g->cs.proc_start_ns == cs->proc_start_ns) {
		if (g->cs.role == OSPREY_ROLE_UNKNOWN)
			g->cs.role = cs->role;
		return;
	}
	if (g->has_conn)
		count(OSPREY_CNT_TLS_REBOUND, 1);
	g->cs.gen = cs->gen;
	g->cs.proc_start_ns = cs->proc_start_ns;
	g->cs.role = cs->role;
	g->cs.pos[0] = 0;
	g->cs.pos[1] = 0;
	g->conn_tgid = conn_tgid;
	g->fd = fd;
	g->has_conn = 1;
}

#if !defined(__TARGET_ARCH_arm64)

#if defined(__KERNEL__) || defined(__VMLINUX_H__)
#define GO_RAX(r) ((r)->ax)
#define GO_RBX(r) ((r)->bx)
#define GO_RCX(r) ((r)->cx)
#define GO_G(r)   ((r)->r14)
#else
#define GO_RAX(r) ((r)->rax)
#define GO_RBX(r) ((r)->rbx)
#define GO_RCX(r) ((r)->rcx)
#define GO_G(r)   ((r)->r14)
#endif

/* The socket fd behind a *tls.Conn, or -1. */
static __always_inline __s32 go_conn_fd(__u64 conn)
{
	__u64 tcp = 0, nfd = 0;
	__s64 sysfd = -1, family = 0, sotype = 0;

	if (bpf_probe_read_user(&tcp, sizeof(tcp), (const void *)(conn + GO_TLS_CONN_IFACE_DATA)) || !tcp)
		return -1;
	if (bpf_probe_read_user(&nfd, sizeof(nfd), (const void *)(tcp + GO_TCPCONN_FD)) || !nfd)
		return -1;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (const void *)(nfd + GO_NETFD_SYSFD)) ||
	    bpf_probe_read_user(&family, sizeof(family), (const void *)(nfd + GO_NETFD_FAMILY)) ||
	    bpf_probe_read_user(&sotype, sizeof(sotype), (const void *)(nfd + GO_NETFD_SOTYPE)))
		return -1;
	/* AF_INET, AF_INET6; SOCK_STREAM */
	if ((family != 2 && family != 10) || sotype != 1 || sysfd < 0 || sysfd > 0x7fffffff)
		return -1;
	return (__s32)sysfd;
}

/* Start watching the socket of *tls.Conn `conn` (its go_tls_conns entry,
 * which the data hooks fill in); returns the fd or -1. */
static __always_inline __s32 go_tls_watch(__u64 pid_tgid, __u64 conn)
{
	struct conn_key ck = { .tgid = pid_tgid >> 32, .fd = go_conn_fd(conn) };
	struct go_conn gc = {};

	if (ck.fd < 0)
		return -1;
	if (!go_tls_armed)
		go_tls_armed = 1;
	/* BPF_NOEXIST: an entry there keeps its connection and positions */
	if (bpf_map_update_elem(&go_tls_conns, &ck, &gc, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&go_tls_conns, &ck))
		count(OSPREY_CNT_TLS_TABLE_FULL, 1);
	return ck.fd;
}

/* The connection of Go TLS socket {tgid, fd}, once named (by the data
 * hooks, or with the syscall hooks by their connection table), or NULL. */
static __always_inline struct go_conn *go_tls_conn(__u32 tgid, __s32 fd)
{
	struct conn_key ck = { .tgid = tgid, .fd = fd };
	struct go_conn *g;

	if (fd < 0)
		return NULL;
	g = bpf_map_lookup_elem(&go_tls_conns, &ck);
	if (g && !g->has_conn) {
		struct conn_state *cs = bpf_map_lookup_elem(&conns, &ck);

		if (cs && cs->gen)
			go_tls_saw_conn(tgid, fd, cs);
	}
	return g && g->has_conn ? g : NULL;
}

/* One DATA record of `n` plaintext bytes at `buf` on `g`. */
static __always_inline void go_tls_emit(struct go_conn *g, __u64 pid_tgid, __u64 buf, __u64 start_ns,
					__u8 code, __u64 n)
{
	struct stash st = {};

	st.start_ns = start_ns;
	st.buf = buf;
	st.fd = g->fd;
	st.syscall = code;
	count(OSPREY_CNT_TLS_RECORDS, 1);
	emit_data(&g->cs, &st, pid_tgid, g->conn_tgid,
		  code == OSPREY_SYS_GO_TLS_WRITE ? OSPREY_DIR_EGRESS : OSPREY_DIR_INGRESS, n);
}

/* Entry.  A Write on a named connection is recorded here, whole (RCX
 * bytes): Go's HTTP client writes requests and reads responses on two
 * goroutines, and the reader's return can come before the writer's, so
 * a Write recorded at its return could follow its own answer.  The RET
 * then only checks that all of it was written (else tls_failed).  A
 * Write before the connection is named, and every Read, is recorded at
 * its RET. */
static __always_inline int go_tls_enter(struct pt_regs *ctx, __u8 code)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct go_call_key key = { .tgid = pid_tgid >> 32, .g = GO_G(ctx) };
	struct go_call c = {};
	struct go_conn *g;

	if (!cfg.tls || !traced(pid_tgid))
		return 0;
	c.buf = GO_RBX(ctx);
	c.len = GO_RCX(ctx);
	c.start_ns = bpf_ktime_get_ns();
	c.code = code;
	c.fd = go_tls_watch(pid_tgid, GO_RAX(ctx));
	if (code == OSPREY_SYS_GO_TLS_WRITE && c.len > 0 && c.len <= 0x7fffffff) {
		g = go_tls_conn(key.tgid, c.fd);
		if (g) {
			go_tls_emit(g, pid_tgid, c.buf, c.start_ns, code, c.len);
			c.emitted = 1;
		}
	}
	if (bpf_map_update_elem(&go_tls_calls, &key, &c, BPF_ANY))
		count(OSPREY_CNT_TLS_TABLE_FULL, 1);
	return 0;
}
UPROBE_BODIES(go_tls_enter, (struct pt_regs *ctx, __u8 code), (ctx, code))

/* A RET of (*Conn).Read or (*Conn).Write: n in RAX. */
static __always_inline int go_tls_exit(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct go_call_key key = { .tgid = pid_tgid >> 32, .g = GO_G(ctx) };
	struct go_call *cp, c;
	struct go_conn *g;
	__s64 n = GO_RAX(ctx);

	cp = bpf_map_lookup_elem(&go_tls_calls, &key);
	if (!cp) {
		/* an untraced process, or a call in flight when the probes
		 * were attached (or evicted) */
		if (traced(pid_tgid))
			count(OSPREY_CNT_TLS_GO_NO_CALL, 1);
		return 0;
	}
	c = *cp;
	bpf_map_delete_elem(&go_tls_calls, &key);
	if (c.emitted) {
		/* recorded at entry: a Write that did not write it all */
		if (n != (__s64)c.len)
			count(OSPREY_CNT_TLS_FAILED, 1);
		return 0;
	}
	if (n <= 0 || n > 0x7fffffff) {
		count(OSPREY_CNT_TLS_FAILED, 1);
		return 0;
	}
	g = go_tls_conn(key.tgid, c.fd);
	if (!g) {
		count(OSPREY_CNT_TLS_NO_CONN, 1);
		note_value(OSPREY_CNT_TLS_NO_CONN_PID, key.tgid);
		return 0;
	}
	go_tls_emit(g, pid_tgid, c.buf, c.start_ns, c.code, n);
	return 0;
}
UPROBE_BODIES(go_tls_exit, (struct pt_regs *ctx), (ctx))

SEC("uprobe")
int go_tls_write(struct pt_regs *ctx)
{
	return UPROBE_GUARDED(go_tls_enter, (ctx, OSPREY_SYS_GO_TLS_WRITE));
}

SEC("uprobe")
int go_tls_read(struct pt_regs *ctx)
{
	return UPROBE_GUARDED(go_tls_enter, (ctx, OSPREY_SYS_GO_TLS_READ));
}

SEC("uprobe")
int go_tls_ret(struct pt_regs *ctx)
{
	return UPROBE_GUARDED(go_tls_exit, (ctx));
}

/* (*Conn).handshakeContext (Go 1.17+) entry: the handshake's ciphertext
 * names the connection before the first Read, which may be served from
 * bytes the handshake read ahead. */
static __always_inline int go_tls_handshake_enter(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (cfg.tls && traced(pid_tgid))
		go_tls_watch(pid_tgid, GO_RAX(ctx));
	return 0;
}
UPROBE_BODIES(go_tls_handshake_enter, (struct pt_regs *ctx), (ctx))

SEC("uprobe")
int go_tls_handshake(struct pt_regs *ctx)
{
	return UPROBE_GUARDED(go_tls_handshake_enter, (ctx));
}

#else /* arm64: not supported (user space attaches nothing) */

SEC("uprobe")
int go_tls_write(struct pt_regs *ctx)
{
	return 0;
}

SEC("uprobe")
int go_tls_read(struct pt_regs *ctx)
{
	return 0;
}

SEC("uprobe")
int go_tls_ret(struct pt_regs *ctx)
{
	return 0;
}

SEC("uprobe")
int go_tls_handshake(struct pt_regs *ctx)
{
	return 0;
}

#endif

#endif /* __OSPREY_GO_TLS_BPF_H */
