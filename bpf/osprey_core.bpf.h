/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Osprey kernel programs, shared by the two builds:
 *   bpf/osprey.bpf.c        CO-RE against BTF (the normal build)
 *   bpf/osprey_nobtf.bpf.c  OSPREY_NO_BTF: no CO-RE relocation at all, for
 *                           kernels without /sys/kernel/btf/vmlinux
 * Included once by each; the includer provides the kernel types.
 */
#ifndef __OSPREY_CORE_BPF_H
#define __OSPREY_CORE_BPF_H

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET      2
#define AF_INET6     10
#define SOCK_STREAM  1
#define S_IFMT       00170000
#define S_IFSOCK     0140000
#define EINPROGRESS  115

/* User-space ABI structs (stable; declared here so that reading them needs
 * no BTF and carries no CO-RE relocation). */
struct osp_iovec {
	__u64 iov_base;
	__u64 iov_len;
};

struct osp_msghdr {
	__u64 msg_name;
	__s32 msg_namelen;
	__u32 _pad;
	__u64 msg_iov;
	__u64 msg_iovlen;
	__u64 msg_control;
	__u64 msg_controllen;
	__u32 msg_flags;
};

/* ---- configuration (set by the loader before load) ---------------------- */

const volatile __u32 self_tgid = 0;        /* never traced */
const volatile bool filter_pids = false;   /* allowlist by tgid active */
const volatile bool filter_comms = false;  /* allowlist by comm active */
/* Short allowlists, in line: n > 0 replaces the map of the same kind.
 * Comms as two words each, zero-padded like bpf_get_current_comm(). */
const volatile __u32 n_inline_pids = 0;
const volatile __u32 inline_pids[OSPREY_INLINE_FILTER] = {};
const volatile __u32 n_inline_comms = 0;
const volatile __u64 inline_comms[OSPREY_INLINE_FILTER][2] = {};
const volatile __u32 capture_bytes = OSPREY_DEFAULT_CAPTURE;
const volatile __u32 iov_whole = OSPREY_DEFAULT_IOV_WHOLE; /* sent iovecs after the first */
const volatile __u64 wakeup_bytes = 0;     /* 0: wake the reader per record */
const volatile __u32 wakeup_records = 0;   /* ... and not before this many records */
const volatile __u64 wakeup_max_bytes = 0; /* ... unless this many bytes wait */

/* ---- counters and ids (.bss, read by user space) ------------------------ */

__u64 counters[OSPREY_CNT__MAX] = {};
__u64 next_gen = 0;

/* Instances so that the skeleton's BTF carries the ABI types (ABI test). */
struct osprey_open_event abi_open_event = {};
struct osprey_close_event abi_close_event = {};
struct osprey_data_event abi_data_event = {};

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

/* ---- maps --------------------------------------------------------------- */

/* Records to user space; size set by the loader (--ringbuf-size). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

/* Arguments of an in-flight syscall.
 * CO-RE build: task-local storage (one element per thread, created on the
 * thread's first traced syscall, freed by the kernel when the thread exits;
 * "deleted" after use by clearing `syscall`) -- a pointer chase instead of
 * a hash update + lookup + delete per syscall.
 * BTF-less build: hash keyed by pid_tgid, deleted on every exit path.
 * Lifetime of the contents: sys_enter -> sys_exit of the same thread; exit
 * only takes a stash written by the enter of its own syscall. */
struct stash {
	__u64 start_ns;
	__u64 buf;       /* user buffer, or iovec array when vectored */
	__s32 fd;
	__u32 iovcnt;
	__u8  syscall;   /* enum osprey_syscall; OSPREY_SYS_UNKNOWN: empty */
	__u8  vectored;
	__u8  _pad[6];
};

#ifndef OSPREY_NO_BTF
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct stash);
} stash SEC(".maps");
#else
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct stash);
} stash SEC(".maps");
#endif

/* Tracked connections.
 * key: {tgid, fd}; value: identity and per-direction stream positions;
 * lifetime: connect/accept/first data → close (LRU bounds leaked entries of
 * processes that exit without closing). */
struct conn_key {
	__u32 tgid;
	__s32 fd;
};

struct conn_state {
	__u64 gen;
	__u64 proc_start_ns;
	__u64 pos[2];    /* indexed by enum osprey_dir */
	__u8  role;
	__u8  _pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, OSPREY_MAX_CONNS);
	__type(key, struct conn_key);
	__type(value, struct conn_state);
} conns SEC(".maps");

/* Process allowlist.  key: tgid / comm; value: unused; filled before attach. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OSPREY_MAX_FILTER_PIDS);
	__type(key, __u32);
	__type(value, __u8);
} allowed_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OSPREY_MAX_FILTER_COMMS);
	__type(key, char[OSPREY_COMM_LEN]);
	__type(value, __u8);
} allowed_comms SEC(".maps");

/* Scratch for building a data record (too big for the stack), per CPU.
 * key: cpu * OSPREY_SCRATCH_SLOTS + slot (entries sized by the loader to the
 * possible CPUs; a plain array because a per-CPU value is limited to 32 KiB);
 * value: a slot claimed with cmpxchg on `busy` for the time between filling
 * the record and writing it out; lifetime: the map.
 * Several slots per CPU, because on preemptible kernels (PREEMPT_FULL/LAZY)
 * a program can be preempted mid-record by another task whose program runs
 * on the same CPU: with a single unguarded buffer it would overwrite the
 * first record (seen on Debian 7.x kernels in the kernel matrix). */
struct scratch_slot {
	__u32 busy;
	__u32 fill;      /* payload bytes gathered so far (vectored syscalls) */
	struct osp_iovec iov[OSPREY_MAX_IOV];   /* the syscall's iovec array, read at once */
	__u32 lim;       /* bytes to copy of the current iovec (see emit_data) */
	__u32 cut_at;    /* first iovec captured in part (OSPREY_MAX_IOV: none) */
	struct osprey_segments segs;            /* appended to the record when iovecs follow cut_at */
	struct osprey_data_event ev;
	/* never sent: lets the verifier accept a copy of up to
	 * OSPREY_MAX_PAYLOAD bytes at any offset below OSPREY_MAX_PAYLOAD
	 * (iovecs gathered into one record) */
	__u8 slack[OSPREY_MAX_PAYLOAD];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OSPREY_SCRATCH_SLOTS);
	__type(key, __u32);
	__type(value, struct scratch_slot);
} scratch SEC(".maps");

/* ---- helpers ------------------------------------------------------------ */

#ifndef barrier_var
#define barrier_var(var) asm volatile("" : "+r"(var))
#endif

static __always_inline void count(enum osprey_counter c, __u64 n)
{
	if (c < OSPREY_CNT__MAX)
		__sync_fetch_and_add(&counters[c], n);
}

/* The current thread's name, zero-padded (the loader's allowlist names
 * are).  CO-RE build: two loads from task->comm instead of the helper
 * (every record and every allowlist check by name needs the name: 60-85 ns
 * less program time per nginx request, bpf_stats), zeroing what follows
 * the first NUL (kernels before __set_task_comm() padded can leave an
 * older, longer name's bytes there). */
static __always_inline void current_comm(__u64 comm[2])
{
#ifndef OSPREY_NO_BTF
	struct task_struct *task = bpf_get_current_task_btf();
	bool ended = false;

	comm[0] = *(__u64 *)&task->comm[0];
	comm[1] = *(__u64 *)&task->comm[8];
	for (int i = 0; i < 2; i++) {
		__u64 v = comm[i];
		/* the lowest flagged byte is the first NUL (exact) */
		__u64 z = (v - 0x0101010101010101ULL) & ~v & 0x8080808080808080ULL;

		if (ended) {
			comm[i] = 0;
		} else if (z) {
			comm[i] = v & (((z & -z) >> 7) - 1);
			ended = true;
		}
	}
	comm[1] &= 0x00ffffffffffffffULL;   /* always NUL-terminated */
#else
	/* zeroed first: before 6.x the helper did not pad (strscpy) */
	comm[0] = 0;
	comm[1] = 0;
	bpf_get_current_comm(comm, 2 * sizeof(__u64));
#endif
}

/* Allowlist check, before anything is copied. */
static __always_inline bool traced(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;

	if (tgid == self_tgid)
		return false;
	if (!filter_pids && !filter_comms)
		return true;
	if (filter_pids) {
		if (n_inline_pids) {
			for (int i = 0; i < OSPREY_INLINE_FILTER && i < n_inline_pids; i++)
				if (inline_pids[i] == tgid)
					return true;
		} else if (bpf_map_lookup_elem(&allowed_pids, &tgid)) {
			return true;
		}
	}
	if (filter_comms) {
		__u64 comm[OSPREY_COMM_LEN / 8];

		current_comm(comm);
		if (n_inline_comms) {
			for (int i = 0; i < OSPREY_INLINE_FILTER && i < n_inline_comms; i++)
				if (inline_comms[i][0] == comm[0] && inline_comms[i][1] == comm[1])
					return true;
		} else if (bpf_map_lookup_elem(&allowed_comms, comm)) {
			return true;
		}
	}
	return false;
}

/* Remember the arguments of the syscall this thread is entering. */
static __always_inline void stash_put(__u64 pid_tgid, const struct stash *st)
{
#ifndef OSPREY_NO_BTF
	struct stash *s = bpf_task_storage_get(&stash, bpf_get_current_task_btf(), 0,
					       BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!s) {
		count(OSPREY_CNT_STASH_FULL, 1);
		return;
	}
	*s = *st;
#else
	if (bpf_map_update_elem(&stash, &pid_tgid, st, BPF_ANY))
		count(OSPREY_CNT_STASH_FULL, 1);
#endif
}

/* Take (and forget) the stash of this thread if it was written by the enter
 * of `syscall`; false when there is none (not traced, or a stale one left
 * by an exit the kernel skipped). */
static __always_inline bool stash_take(__u64 pid_tgid, __u8 syscall, struct stash *out)
{
	struct stash *s;

#ifndef OSPREY_NO_BTF
	s = bpf_task_storage_get(&stash, bpf_get_current_task_btf(), 0, 0);
	if (!s || s->syscall != syscall)
		return false;
	*out = *s;
	s->syscall = OSPREY_SYS_UNKNOWN;
	return true;
#else
	s = bpf_map_lookup_elem(&stash, &pid_tgid);
	if (!s)
		return false;
	*out = *s;
	bpf_map_delete_elem(&stash, &pid_tgid);
	return out->syscall == syscall;
#endif
}

/* This thread's enter found nothing to trace: make sure its exit cannot
 * take an older stash of the same syscall (cheap with task storage only). */
static __always_inline void stash_clear(void)
{
#ifndef OSPREY_NO_BTF
	struct stash *s = bpf_task_storage_get(&stash, bpf_get_current_task_btf(), 0, 0);

	if (s)
		s->syscall = OSPREY_SYS_UNKNOWN;
#endif
}

#ifndef OSPREY_NO_BTF

/* fd → struct sock of an AF_INET/AF_INET6 stream socket, or NULL. */
static __always_inline struct sock *tcp_sock_from_fd(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt;
	struct file **fds;
	struct file *file = NULL;
	struct socket *sock;
	struct sock *sk;
	unsigned int max_fds;
	umode_t mode;
	__u16 family, type;

	if (fd < 0)
		return NULL;
	fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return NULL;
	max_fds = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned int)fd >= max_fds)
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	type = BPF_CORE_READ(sk, sk_type);
	if (type != SOCK_STREAM)
		return NULL;
	return sk;
}

static __always_inline void read_addrs(struct sock *sk, struct osprey_addrs *a)
{
	a->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	a->lport = bpf_htons(BPF_CORE_READ(sk, __sk_common.skc_num));
	a->rport = BPF_CORE_READ(sk, __sk_common.skc_dport);
	if (a->family == AF_INET) {
		BPF_CORE_READ_INTO((__u32 *)a->laddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)a->raddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO(&a->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&a->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

static __always_inline __u64 proc_start_ns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, group_leader, start_time);
}

#else /* OSPREY_NO_BTF */

/* Without BTF nothing in the kernel's own structures can be read: sockets
 * are known only from connect()/accept() (and the entries user space seeds
 * from /proc at start-up), addresses are resolved by user space from the
 * /proc socket tables, and the process start time is filled in there. */
static __always_inline void *tcp_sock_from_fd(int fd)
{
	return NULL;
}

static __always_inline __u64 proc_start_ns(void)
{
	return 0;
}

#endif /* OSPREY_NO_BTF */

/* What this CPU has written since it last woke the reader.
 * key: 0; value: per-CPU bytes and records; lifetime: the map.  Per CPU (and not
 * bpf_ringbuf_query(BPF_RB_AVAIL_DATA)) because the query reads the
 * consumer position the reader keeps writing from another CPU: a cache
 * miss per record, measured at 65-110 ns. */
struct unwoken {
	__u64 bytes;
	__u64 records;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwoken);
} unwoken SEC(".maps");

/* Write a record; wake the reader only once this CPU has written
 * `wakeup_bytes` and `wakeup_records` since its last wakeup, or
 * `wakeup_max_bytes` whatever the count (the reader also polls on a
 * timer); at once when `urgent` (OPEN records: user space may have to look
 * the connection up in /proc while it still exists).  Both minimums
 * because a wakeup costs the reader a context switch and an inter-processor
 * interrupt whatever it then reads: small records would wake it too often
 * by count, large ones by bytes. */
static __always_inline void submit(void *rec, __u64 size, __u64 payload, bool urgent)
{
	__u64 flags = 0;

	if (urgent) {
		flags = BPF_RB_FORCE_WAKEUP;
	} else if (wakeup_bytes) {
		__u32 zero = 0;
		struct unwoken *acc = bpf_map_lookup_elem(&unwoken, &zero);

		flags = BPF_RB_NO_WAKEUP;
		if (acc) {
			acc->bytes += size;
			acc->records++;
			if (acc->bytes >= wakeup_max_bytes ||
			    (acc->bytes >= wakeup_bytes && acc->records >= wakeup_records)) {
				acc->bytes = 0;
				acc->records = 0;
				flags = BPF_RB_FORCE_WAKEUP;
			}
		}
	}
	if (bpf_ringbuf_output(&events, rec, size, flags)) {
		count(OSPREY_CNT_RB_DROPS, 1);
		count(OSPREY_CNT_RB_DROP_BYTES, payload);
	} else {
		count(OSPREY_CNT_EVENTS, 1);
	}
}

/* `conn_tgid`/`fd`: the connection id's process and descriptor (syscall
 * hooks: this process; socket hooks: the process that opened it). */
static __always_inline void fill_hdr(struct osprey_hdr *h, __u8 kind, __u8 syscall, __u64 pid_tgid,
				     __u32 conn_tgid, __s32 fd, const struct conn_state *cs)
{
	h->kind = kind;
	h->dir = 0;
	h->role = cs->role;
	h->flags = 0;
	h->syscall = syscall;
	h->tgid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->ts_ns = bpf_ktime_get_ns();
	current_comm((__u64 *)h->comm);
	h->conn.tgid = conn_tgid;
	h->conn.fd = fd;
	h->conn.proc_start_ns = cs->proc_start_ns;
	h->conn.gen = cs->gen;
}

/* The OPEN record of connection {conn_tgid, fd}, with its addresses when
 * the socket is known (CO-RE build). */
static __always_inline void emit_open(__u64 pid_tgid, __u32 conn_tgid, __s32 fd, const struct conn_state *cs,
				      void *sk, __u8 syscall, __u8 flags)
{
	struct osprey_open_event ev = {};

	fill_hdr(&ev.hdr, OSPREY_KIND_OPEN, syscall, pid_tgid, conn_tgid, fd, cs);
	ev.hdr.flags = flags;
#ifndef OSPREY_NO_BTF
	if (sk) {
		read_addrs(sk, &ev.addrs);
		ev.hdr.flags |= OSPREY_F_ADDRS;
	}
#endif
	submit(&ev, sizeof(ev), 0, true);
}

/* The CLOSE record of connection {conn_tgid, fd}: its final positions.
 * `comm`: the owner's name, or NULL for the current task's. */
static __always_inline void emit_close(__u64 pid_tgid, __u32 conn_tgid, __s32 fd, const struct conn_state *cs,
				       const char *comm)
{
	struct osprey_close_event ev = {};

	fill_hdr(&ev.hdr, OSPREY_KIND_CLOSE, OSPREY_SYS_CLOSE, pid_tgid, conn_tgid, fd, cs);
	if (comm)
		__builtin_memcpy(ev.hdr.comm, comm, sizeof(ev.hdr.comm));
	ev.tx_bytes = cs->pos[OSPREY_DIR_EGRESS];
	ev.rx_bytes = cs->pos[OSPREY_DIR_INGRESS];
	submit(&ev, sizeof(ev), 0, false);
}

/* Start tracking {tgid, fd} as a new connection and emit an OPEN record. */
static __always_inline struct conn_state *conn_open(__u64 pid_tgid, __s32 fd, void *sk,
						    __u8 role, __u8 syscall, __u8 flags)
{
	struct conn_key key = { .tgid = pid_tgid >> 32, .fd = fd };
	struct conn_state cs = {};

	cs.gen = __sync_fetch_and_add(&next_gen, 1) + 1;
	cs.proc_start_ns = proc_start_ns();
	cs.role = role;
	if (bpf_map_update_elem(&conns, &key, &cs, BPF_ANY)) {
		count(OSPREY_CNT_CONN_TABLE_FULL, 1);
		return NULL;
	}
	emit_open(pid_tgid, key.tgid, fd, &cs, sk, syscall, flags);
	return bpf_map_lookup_elem(&conns, &key);
}

/* Claim a free per-CPU scratch slot (NULL: all busy, counted). */
static __always_inline struct scratch_slot *claim_slot(void)
{
	__u32 base = bpf_get_smp_processor_id() * OSPREY_SCRATCH_SLOTS;

	for (__u32 i = 0; i < OSPREY_SCRATCH_SLOTS; i++) {
		__u32 k = base + i;
		struct scratch_slot *s = bpf_map_lookup_elem(&scratch, &k);

		if (s && __sync_val_compare_and_swap(&s->busy, 0, 1) == 0)
			return s;
	}
	count(OSPREY_CNT_SCRATCH_BUSY, 1);
	return NULL;
}

/* Copy up to `n` bytes from user memory to `off` in the record's payload;
 * returns the bytes copied (0 on a fault, counted). */
static __always_inline __s64 copy_payload(struct scratch_slot *slot, __s64 off, __s64 n, __u64 ubuf)
{
	if (off < 0 || off >= OSPREY_MAX_PAYLOAD)
		return 0;
	if (n > OSPREY_MAX_PAYLOAD)
		n = OSPREY_MAX_PAYLOAD;
	if (n <= 0)
		return 0;
	/* Restate the bounds as masks the compiler cannot drop: 6.1's verifier
	 * can reach this point with contradictory ranges (umin > umax) on a
	 * dead path and then refuses the pointer arithmetic (kernel matrix). */
	barrier_var(off);
	barrier_var(n);
	off &= OSPREY_MAX_PAYLOAD - 1;
	n = ((n - 1) & (OSPREY_MAX_PAYLOAD - 1)) + 1;
	/* off < MAX and n <= MAX: within ev.payload + slack */
	if (bpf_probe_read_user(&slot->ev.payload[off], n, (const void *)ubuf)) {
		count(OSPREY_CNT_READ_ERRORS, 1);
		return 0;
	}
	return n;
}

/* One DATA record for the `len` bytes (the syscall's return value) moved at
 * st->buf, or gathered from st->buf's iovec array when vectored: the first
 * min(len, capture_bytes) bytes are captured, except that a sent iovec
 * after the first larger than `iov_whole` gives only its first
 * OSPREY_IOV_PEEK (with a segment table when captured bytes follow it);
 * all `len` are counted (none captured when st->buf is 0: bytes moved by
 * something else than a data syscall, seen by the socket hooks).  The
 * connection is {conn_tgid, st->fd}. */
static __always_inline void emit_data(struct conn_state *cs, const struct stash *st, __u64 pid_tgid,
				      __u32 conn_tgid, __u8 dir, __u64 len)
{
	struct scratch_slot *slot;
	struct osprey_data_event *e;
	__s64 cap = capture_bytes;
	__s64 got = 0;
	__u64 pos;

	/* the position advances even if the record is lost: user space sees
	 * exactly which bytes are missing */
	pos = __sync_fetch_and_add(&cs->pos[dir & 1], len);

	slot = claim_slot();
	if (!slot)
		return;
	e = &slot->ev;
	fill_hdr(&e->hdr, OSPREY_KIND_DATA, st->syscall, pid_tgid, conn_tgid, st->fd, cs);
	e->hdr.dir = dir;
	e->start_ns = st->start_ns;
	e->pos = pos;
	e->orig_len = len;

	if (cap > OSPREY_MAX_PAYLOAD)
		cap = OSPREY_MAX_PAYLOAD;
	if ((__s64)len < cap)
		cap = len;
	if (!st->buf)
		cap = 0;

	if (!st->vectored) {
		got = copy_payload(slot, 0, cap, st->buf);
	} else {
		/* The running offset lives in the map value, not in a register:
		 * loaded back it is an unknown scalar bounded by copy_payload(),
		 * so the verifier does not carry (and multiply states by) its
		 * exact range from one iovec to the next -- 6.1 gave up at 1M
		 * instructions otherwise. */
		volatile __u32 *fill = &slot->fill;
		__u64 left = len;
		__u32 niov = st->iovcnt;
		int i;

		*fill = 0;
		/* one read for the whole array (the syscall itself just read it) */
		if (niov > OSPREY_MAX_IOV)
			niov = OSPREY_MAX_IOV;
		if (niov == 0 || bpf_probe_read_user(slot->iov, niov * sizeof(struct osp_iovec),
						     (const void *)st->buf)) {
			if (niov)
				count(OSPREY_CNT_READ_ERRORS, 1);
			niov = 0;
		}
		volatile __u32 *lim = &slot->lim;

		slot->cut_at = OSPREY_MAX_IOV;
		slot->segs.count = 0;
		for (i = 0; i < OSPREY_MAX_IOV; i++) {
			struct osp_iovec *iov = &slot->iov[i];
			__s64 seg, n, c, off = *fill;

			if (i >= niov || !left || off >= cap)
				break;
			seg = iov->iov_len < left ? iov->iov_len : left;
			left -= seg;
			n = cap - off;
			if (seg < n)
				n = seg;
			/* a large sent iovec after the first is a body: its
			 * start only (the bytes are counted all the same).
			 * The length goes through the map value, like `fill`:
			 * reloaded it is one unknown scalar on both paths, so
			 * the verifier does not double its states per iovec
			 * (7.x gave up at 1M instructions otherwise). */
			*lim = n;
			if (i > 0 && dir == OSPREY_DIR_EGRESS && seg > iov_whole && n > OSPREY_IOV_PEEK) {
				*lim = OSPREY_IOV_PEEK;
				if (slot->cut_at == OSPREY_MAX_IOV)
					slot->cut_at = i;
			}
			n = *lim;
			c = copy_payload(slot, off, n, iov->iov_base);
			*fill = off + c;
			slot->segs.seg[i & (OSPREY_MAX_IOV - 1)].orig_len = seg;
			slot->segs.seg[i & (OSPREY_MAX_IOV - 1)].cap_len = c;
			slot->segs.count = i + 1;
			if (c < n)
				break;   /* unreadable: keep the contiguous prefix */
		}
		got = *fill;
		if (i == OSPREY_MAX_IOV && left && got < cap)
			count(OSPREY_CNT_IOV_OVERFLOW, 1);   /* counted, not captured */
	}
	if (got < 0)
		got = 0;
	if (got > OSPREY_MAX_PAYLOAD)
		got = OSPREY_MAX_PAYLOAD;
	e->cap_len = got;
	if (len > (__u64)got)
		count(OSPREY_CNT_TRUNC_BYTES, len - got);
	__u64 table = 0;   /* bytes of segment table after the payload */

	if (st->vectored && slot->cut_at + 1 < slot->segs.count) {
		/* captured bytes with holes between them: the table of
		 * segments after the payload says where (the slack holds it) */
		__s64 at = got;

		barrier_var(at);
		at &= 2 * OSPREY_MAX_PAYLOAD - 1;
		if (at <= OSPREY_MAX_PAYLOAD &&
		    !bpf_probe_read_kernel(&e->payload[at], sizeof(slot->segs), &slot->segs)) {
			e->hdr.flags |= OSPREY_F_SEGMENTS;
			table = sizeof(slot->segs);
		} else {
			/* (cannot happen) no table: nothing captured, all counted */
			e->cap_len = 0;
			got = 0;
		}
	}
	submit(e, OSPREY_DATA_HDR_SIZE + got + table, got, false);
	slot->busy = 0;
}

/* ---- data syscalls: enter ----------------------------------------------- */

static __always_inline int data_enter(__s32 fd, __u64 buf, __u32 iovcnt, __u8 vectored, __u8 syscall)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct stash st = {};

	if (!traced(pid_tgid))
		return 0;
#ifdef OSPREY_NO_BTF
	/* a hash update per syscall only for fds known to be connections */
	struct conn_key key = { .tgid = pid_tgid >> 32, .fd = fd };

	if (!bpf_map_lookup_elem(&conns, &key)) {
		stash_clear();
		return 0;
	}
#endif
	/* CO-RE build: stash unconditionally (a store into task storage);
	 * the exit, which has to look the connection up anyway, decides
	 * whether the fd is a TCP socket -- one hash lookup per syscall
	 * instead of two */
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
#ifndef OSPREY_NO_BTF
	if (!sk)
		return 0;   /* not an AF_INET/AF_INET6 stream socket */
#endif
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

/* ==== socket-layer hooks (CO-RE build only) ==============================
 *
 * On kernels with the sock:sock_send_length / sock:sock_recv_length
 * tracepoints (6.3+) the loader attaches these programs instead of every
 * syscall tracepoint above.  They run inside sock_sendmsg()/sock_recvmsg(),
 * after the bytes moved, for socket I/O only: no program runs on the other
 * syscalls, and with no syscall tracepoint attached the kernel keeps every
 * task on its fast syscall path (the syscall hooks alone cost nginx
 * 8-14% on the 2-CPU bench machine, these 2-3%: docs/performance.md).
 * The syscall's arguments (fd, buffer, iovecs) come from the task's saved
 * user registers; connections are keyed by their struct sock, opened at
 * the first bytes a traced process moves (role from the TCP handshake seen
 * by sock:inet_sock_set_state) and closed by the owner's close() or exit
 * (its state change) or when the socket is destroyed (tcp:tcp_destroy_sock).
 * There is no syscall entry time: DATA records carry start_ns 0. */
#ifndef OSPREY_NO_BTF

#define MSG_PEEK     2
#define PF_IO_WORKER 0x00000010
#define PF_KTHREAD   0x00200000

#if defined(__TARGET_ARCH_arm64)
#define NR_read 63
#define NR_write 64
#define NR_readv 65
#define NR_writev 66
#define NR_sendto 206
#define NR_recvfrom 207
#define NR_sendmsg 211
#define NR_recvmsg 212
#define NR_close 57
#define NR_exit 93
#define NR_exit_group 94
#define REG_NR(r)   ((r)->syscallno)
#define REG_ARG0(r) ((r)->orig_x0)
#define REG_ARG1(r) ((r)->regs[1])
#define REG_ARG2(r) ((r)->regs[2])
#else /* x86_64 */
#define NR_read 0
#define NR_write 1
#define NR_readv 19
#define NR_writev 20
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47
#define NR_close 3
#define NR_exit 60
#define NR_exit_group 231
#define REG_NR(r)   ((r)->orig_ax)
#define REG_ARG0(r) ((r)->di)
#define REG_ARG1(r) ((r)->si)
#define REG_ARG2(r) ((r)->dx)
#endif

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
 * array.  Anything else (io_uring, sendfile/splice, a kernel user of the
 * socket): OSPREY_SYS_UNKNOWN, fd -1, buf 0 -- the bytes are counted, not
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
	switch (REG_NR(regs)) {
	case NR_read:     sys = OSPREY_SYS_READ;     in = true; break;
	case NR_recvfrom: sys = OSPREY_SYS_RECVFROM; in = true; break;
	case NR_readv:    sys = OSPREY_SYS_READV;    in = true; break;
	case NR_recvmsg:  sys = OSPREY_SYS_RECVMSG;  in = true; break;
	case NR_write:    sys = OSPREY_SYS_WRITE;    break;
	case NR_sendto:   sys = OSPREY_SYS_SENDTO;   break;
	case NR_writev:   sys = OSPREY_SYS_WRITEV;   break;
	case NR_sendmsg:  sys = OSPREY_SYS_SENDMSG;  break;
	default:          return;
	}
	if (in != ingress)
		return;   /* e.g. a send inside a read: not the syscall's own bytes */
	st->syscall = sys;
	st->fd = (__s32)REG_ARG0(regs);
	st->buf = REG_ARG1(regs);
	if (st->syscall == OSPREY_SYS_READV || st->syscall == OSPREY_SYS_WRITEV) {
		st->iovcnt = (__u32)REG_ARG2(regs);
		st->vectored = 1;
	} else if (st->syscall == OSPREY_SYS_RECVMSG || st->syscall == OSPREY_SYS_SENDMSG) {
		if (bpf_probe_read_user(&mh, sizeof(mh), (const void *)st->buf)) {
			count(OSPREY_CNT_READ_ERRORS, 1);
			st->buf = 0;
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
	struct sk_conn *c;

	if (ret <= 0)
		return 0;
	if (dir == OSPREY_DIR_INGRESS && (flags & MSG_PEEK))
		return 0;   /* nothing consumed: the bytes come again */
	if (!sk_is_tcp(sk))
		return 0;
	c = bpf_sk_storage_get(&sk_conns, sk, 0, 0);
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
	emit_data(&c->cs, &st, pid_tgid, c->tgid, dir, ret);
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
	/* may run in softirq: name the owner, not the current task */
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
	nr = REG_NR(regs);
	if (nr == NR_close)
		return (__s32)REG_ARG0(regs) == c->fd;
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

#endif /* !OSPREY_NO_BTF */

#endif /* __OSPREY_CORE_BPF_H */
