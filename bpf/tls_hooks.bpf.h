/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * TLS plaintext at the library boundary: uprobes (entry and return) on
 * OpenSSL's and BoringSSL's SSL_read, SSL_write, SSL_read_ex and
 * SSL_write_ex, and on SSL_free.  Uprobes need no BTF: both objects include
 * this file.  User space (src/tls/) attaches them once per library file
 * (by device and inode, pid -1), so the allowlist (--pid/--comm) is applied
 * here, at entry.  The kernel parses no protocol.
 *
 * Tying plaintext to its socket: while a TLS call is in flight on a thread
 * (`tls_calls`), the data hooks (syscall or socket hooks) that record the
 * ciphertext the call moves name the connection (tls_saw_conn()); the
 * session (SSL*) keeps it (`tls_sessions`), so that a read the library
 * serves from bytes it buffered earlier, with no syscall, still goes to
 * the right connection.  A session seen on another connection (an SSL*
 * reused after SSL_clear/SSL_set_fd) is tied to the new one and its
 * plaintext positions start over (counted: tls_rebound).  Plaintext goes
 * out as DATA records with the socket's conn id, addresses and role, the
 * library call in `syscall` (OSPREY_SYS_TLS_FIRST..LAST) and positions of
 * the plaintext stream; user space keeps the two streams apart.
 *
 * Processes that exec are queued (`tls_execs`) for user space to look for
 * TLS libraries in their mappings.
 */
#ifndef __OSPREY_TLS_HOOKS_BPF_H
#define __OSPREY_TLS_HOOKS_BPF_H

/* A TLS library call in flight.  key: pid_tgid; lifetime: entry uprobe →
 * return uprobe (LRU: a thread that dies mid-call leaves an entry that is
 * evicted or overwritten by the thread id's next call). */
struct tls_call {
	__u64 ssl;        /* the session: SSL* */
	__u64 buf;        /* plaintext buffer */
	__u64 len_ptr;    /* _ex calls: where the library writes the bytes moved */
	__u64 start_ns;
	__u64 gen;        /* the connection the call's syscalls moved bytes on */
	__u64 proc_start_ns;
	__u32 conn_tgid;
	__s32 fd;
	__u8  code;       /* OSPREY_SYS_* of the call */
	__u8  has_conn;   /* gen..fd are set */
	__u8  role;
	__u8  _pad[5];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, OSPREY_MAX_TLS_CALLS);
	__type(key, __u64);
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* A TLS session tied to its connection.  key: {tgid, SSL*}; value: the
 * connection's id (gen, proc_start_ns, role, conn_tgid, fd) and the
 * plaintext positions in cs.pos; lifetime: first call that moved bytes on
 * a known socket → SSL_free (LRU bounds sessions of processes that exit). */
struct tls_key {
	__u32 tgid;
	__u32 _pad;
	__u64 ssl;
};

struct tls_session {
	struct conn_state cs;
	__u32 conn_tgid;
	__s32 fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, OSPREY_MAX_TLS_SESSIONS);
	__type(key, struct tls_key);
	__type(value, struct tls_session);
} tls_sessions SEC(".maps");

/* Traced processes that exec'd (tgid), for user space to scan; popped by
 * the poller. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, OSPREY_MAX_TLS_EXECS);
	__type(value, __u32);
} tls_execs SEC(".maps");

/* Instances so that the skeleton's BTF carries the map value types. */
struct tls_call abi_tls_call = {};
struct tls_session abi_tls_session = {};

static __always_inline bool tls_is_ex(__u8 code)
{
	return code == OSPREY_SYS_OPENSSL_READ_EX || code == OSPREY_SYS_OPENSSL_WRITE_EX ||
	       code == OSPREY_SYS_BORINGSSL_READ_EX || code == OSPREY_SYS_BORINGSSL_WRITE_EX;
}

/* Called by the data hooks after they recorded bytes moved on connection
 * {conn_tgid, fd}: if the current thread is inside a TLS call, these are
 * that call's ciphertext, and this its connection. */
static __always_inline void tls_saw_conn(__u64 pid_tgid, __u32 conn_tgid, __s32 fd,
					 const struct conn_state *cs)
{
	struct tls_call *c;

	if (!cfg.tls)
		return;
	go_tls_saw_conn(conn_tgid, fd, cs);   /* a Go crypto/tls socket? (go_tls.bpf.h) */
	c = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (!c)
		return;
	c->gen = cs->gen;
	c->proc_start_ns = cs->proc_start_ns;
	c->conn_tgid = conn_tgid;
	c->fd = fd;
	c->role = cs->role;
	c->has_conn = 1;
}

static __always_inline int tls_enter(__u64 ssl, __u64 buf, __u64 len_ptr, __u8 code)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tls_call c = {};

	if (!cfg.tls)
		return 0;
	if (!traced(pid_tgid)) {
		/* the uprobe is on the library file: it fires for every
		 * process using it; outside the allowlist nothing is kept */
		count(OSPREY_CNT_TLS_FILTERED, 1);
		return 0;
	}
	c.ssl = ssl;
	c.buf = buf;
	c.len_ptr = len_ptr;
	c.code = code;
	c.start_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&tls_calls, &pid_tgid, &c, BPF_ANY))
		count(OSPREY_CNT_TLS_TABLE_FULL, 1);
	return 0;
}
UPROBE_BODIES(tls_enter, (__u64 ssl, __u64 buf, __u64 len_ptr, __u8 code), (ssl, buf, len_ptr, code))

/* The call returned `ret`: tie its session to the connection its
 * syscalls named, then one DATA record for the plaintext it moved. */
static __always_inline int tls_exit(__s64 ret, __u8 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tls_key key = { .tgid = pid_tgid >> 32 };
	struct tls_session *s;
	struct tls_call *cp, c;
	struct stash st = {};
	__u64 len = 0;

	cp = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	if (!cp)
		return 0;
	c = *cp;
	bpf_map_delete_elem(&tls_calls, &pid_tgid);
	key.ssl = c.ssl;
	s = bpf_map_lookup_elem(&tls_sessions, &key);
	if (c.has_conn && (!s || s->cs.gen != c.gen || s->fd != c.fd || s->conn_tgid != c.conn_tgid)) {
		struct tls_session ns = {};

		if (s)
			count(OSPREY_CNT_TLS_REBOUND, 1);
		ns.cs.gen = c.gen;
		ns.cs.proc_start_ns = c.proc_start_ns;
		ns.cs.role = c.role;
		ns.conn_tgid = c.conn_tgid;
		ns.fd = c.fd;
		if (bpf_map_update_elem(&tls_sessions, &key, &ns, BPF_ANY)) {
			count(OSPREY_CNT_TLS_TABLE_FULL, 1);
			return 0;
		}
		s = bpf_map_lookup_elem(&tls_sessions, &key);
	}
	if (tls_is_ex(c.code)) {
		/* 1: success, the bytes moved in *len_ptr */
		if (ret != 1 || !c.len_ptr ||
		    bpf_probe_read_user(&len, sizeof(len), (const void *)c.len_ptr)) {
			count(OSPREY_CNT_TLS_FAILED, 1);
			return 0;
		}
	} else {
		if (ret <= 0) {
			count(OSPREY_CNT_TLS_FAILED, 1);
			return 0;
		}
		len = ret;
	}
	if (!len || len > 0x7fffffff) {
		count(OSPREY_CNT_TLS_FAILED, 1);
		return 0;
	}
	if (!s) {
		count(OSPREY_CNT_TLS_NO_CONN, 1);
		note_value(OSPREY_CNT_TLS_NO_CONN_PID, key.tgid);
		return 0;
	}
	if (s->cs.role == OSPREY_ROLE_UNKNOWN && c.has_conn)
		s->cs.role = c.role;
	st.start_ns = c.start_ns;
	st.buf = c.buf;
	st.fd = s->fd;
	st.syscall = c.code;
	count(OSPREY_CNT_TLS_RECORDS, 1);
	emit_data(&s->cs, &st, pid_tgid, s->conn_tgid, dir, len);
	return 0;
}
UPROBE_BODIES(tls_exit, (__s64 ret, __u8 dir), (ret, dir))

/* SSL_free(ssl): the session ends; forget it. */
static __always_inline int tls_free(__u64 ssl)
{
	struct tls_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .ssl = ssl };

	bpf_map_delete_elem(&tls_sessions, &key);
	return 0;
}
UPROBE_BODIES(tls_free, (__u64 ssl), (ssl))

/* OpenSSL-API libraries (OpenSSL 1.1.1/3.x, BoringSSL):
 * SSL_read/SSL_write(ssl, buf, int num) → int bytes (<= 0: none);
 * SSL_read_ex/SSL_write_ex(ssl, buf, size_t num, size_t *moved) → 1 on success. */
#define OSPREY_SSL_PROBES(lib, LIB)                                                     \
SEC("uprobe")                                                                           \
int BPF_KPROBE(tls_##lib##_read, void *ssl, void *buf)                                  \
{                                                                                       \
	return UPROBE_GUARDED(tls_enter, ((__u64)ssl, (__u64)buf, 0, OSPREY_SYS_##LIB##_READ)); \
}                                                                                       \
SEC("uprobe")                                                                           \
int BPF_KPROBE(tls_##lib##_write, void *ssl, void *buf)                                 \
{                                                                                       \
	return UPROBE_GUARDED(tls_enter, ((__u64)ssl, (__u64)buf, 0, OSPREY_SYS_##LIB##_WRITE)); \
}                                                                                       \
SEC("uprobe")                                                                           \
int BPF_KPROBE(tls_##lib##_read_ex, void *ssl, void *buf, __u64 num, void *moved)       \
{                                                                                       \
	return UPROBE_GUARDED(tls_enter, ((__u64)ssl, (__u64)buf, (__u64)moved, OSPREY_SYS_##LIB##_READ_EX)); \
}                                                                                       \
SEC("uprobe")                                                                           \
int BPF_KPROBE(tls_##lib##_write_ex, void *ssl, void *buf, __u64 num, void *moved)      \
{                                                                                       \
	return UPROBE_GUARDED(tls_enter, ((__u64)ssl, (__u64)buf, (__u64)moved, OSPREY_SYS_##LIB##_WRITE_EX)); \
}                                                                                       \
SEC("uretprobe")                                                                        \
int BPF_KRETPROBE(tls_##lib##_read_ret, int ret)                                        \
{                                                                                       \
	return UPROBE_GUARDED(tls_exit, (ret, OSPREY_DIR_INGRESS));                       \
}                                                                                       \
SEC("uretprobe")                                                                        \
int BPF_KRETPROBE(tls_##lib##_write_ret, int ret)                                       \
{                                                                                       \
	return UPROBE_GUARDED(tls_exit, (ret, OSPREY_DIR_EGRESS));                        \
}

OSPREY_SSL_PROBES(openssl, OPENSSL)
OSPREY_SSL_PROBES(boringssl, BORINGSSL)

SEC("uprobe")
int BPF_KPROBE(tls_ssl_free, void *ssl)
{
	return UPROBE_GUARDED(tls_free, ((__u64)ssl));
}

/* A process exec'd: user space looks at its mappings for TLS libraries
 * (and its executable for statically linked ones). */
SEC("tracepoint/sched/sched_process_exec")
int tls_exec(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;

	if (!cfg.tls || !traced(pid_tgid))
		return 0;
	if (bpf_map_push_elem(&tls_execs, &tgid, 0))
		count(OSPREY_CNT_TLS_EXEC_LOST, 1);
	return 0;
}

/* every uprobe program has its busy word (compat.bpf.h) */
UPROBE_GUARDS_END();

#endif /* __OSPREY_TLS_HOOKS_BPF_H */
