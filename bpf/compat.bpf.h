/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Every difference between the two objects, and between kernels and
 * architectures, in one place; the logic files (filter, records, hooks)
 * call these and carry no #ifdef of their own.
 *
 *   bpf/osprey.bpf.c        CO-RE against BTF: kernel structures (task,
 *                           file, sock) are read with CO-RE relocations
 *   bpf/osprey_nobtf.bpf.c  OSPREY_NO_BTF: not a single CO-RE relocation,
 *                           for kernels without /sys/kernel/btf/vmlinux
 *
 * Provided to the logic files:
 *   stash (map), stash_put(), stash_take(), stash_clear()
 *   current_comm(), proc_start_ns()
 *   tcp_sock_from_fd(), read_addrs(), sock_seq()
 *   stash_wanted()        should the enter of a data syscall stash at all
 *   setup_sock_ok()       may connect()/accept() start tracking this fd
 *   cont_loop(), cont_loop_max()  the further-records loop: bpf_loop()
 *                         where the kernel has it (cfg.has_bpf_loop)
 *   UPROBE_GUARDED(), UPROBE_BODIES()  every uprobe program's body runs
 *                         unpreempted (kfunc), or on a stack no other run
 *                         on its CPU uses (busy slots): private stacks, 6.13+
 *   SYSCALL_NR(), NR_*    syscall number register and numbers (socket
 *                         hooks; arguments come from libbpf's
 *                         PT_REGS_PARMn_SYSCALL)
 */
#ifndef __OSPREY_COMPAT_BPF_H
#define __OSPREY_COMPAT_BPF_H

#ifndef OSPREY_NO_BTF
/* ==== CO-RE build ========================================================= */

/* Arguments of an in-flight syscall, per thread: task-local storage (created
 * on the thread's first traced syscall, freed by the kernel when the thread
 * exits; "deleted" after use by clearing `syscall`) -- a pointer chase
 * instead of a hash update + lookup + delete per syscall. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct stash);
} stash SEC(".maps");

/* The current thread's name, zero-padded (the loader's allowlist names
 * are): two loads from task->comm instead of the helper (every record and
 * every allowlist check by name needs the name: 60-85 ns less program time
 * per nginx request, bpf_stats), zeroing what follows the first NUL
 * (kernels before __set_task_comm() padded can leave an older, longer
 * name's bytes there). */
static __always_inline void current_comm(__u64 comm[2])
{
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
}

/* Remember the arguments of the syscall this thread is entering. */
static __always_inline void stash_put(__u64 pid_tgid, const struct stash *st)
{
	struct stash *s = bpf_task_storage_get(&stash, bpf_get_current_task_btf(), 0,
					       BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!s) {
		count(OSPREY_CNT_STASH_FULL, 1);
		return;
	}
	*s = *st;
}

/* Take (and forget) the stash of this thread if it was written by the enter
 * of `syscall`; false when there is none (not traced, or a stale one left
 * by an exit the kernel skipped). */
static __always_inline bool stash_take(__u64 pid_tgid, __u8 syscall, struct stash *out)
{
	struct stash *s = bpf_task_storage_get(&stash, bpf_get_current_task_btf(), 0, 0);

	if (!s || s->syscall != syscall)
		return false;
	*out = *s;
	s->syscall = OSPREY_SYS_UNKNOWN;
	return true;
}

/* This thread's enter found nothing to trace: make sure its exit cannot
 * take an older stash of the same syscall. */
static __always_inline void stash_clear(void)
{
	struct stash *s = bpf_task_storage_get(&stash, bpf_get_current_task_btf(), 0, 0);

	if (s)
		s->syscall = OSPREY_SYS_UNKNOWN;
}

/* Stash unconditionally (a store into task storage): the exit, which has
 * to look the connection up anyway, decides whether the fd is a TCP
 * socket -- one hash lookup per syscall instead of two. */
static __always_inline bool stash_wanted(__u64 pid_tgid, __s32 fd)
{
	return true;
}

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

/* connect()/accept() start tracking only AF_INET/AF_INET6 stream sockets. */
static __always_inline bool setup_sock_ok(void *sk)
{
	return sk != NULL;
}

/* The socket's addresses into `a`; false when there is no socket. */
static __always_inline bool read_addrs(void *sock, struct osprey_addrs *a)
{
	struct sock *sk = sock;

	if (!sk)
		return false;
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
	return true;
}

static __always_inline __u64 proc_start_ns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, group_leader, start_time);
}

/* The TCP socket's own stream position in direction `dir` (bytes the
 * process took: copied_seq; bytes it queued: write_seq); false when the
 * socket is not known. */
#define OSPREY_RCV_SHUTDOWN 1

/* Bytes of data the process took: copied_seq, less the peer's FIN once a
 * read took it (copied_seq counts the FIN as one byte; a read that returns
 * data can take the FIN behind it, as can one that returns 0). Taken:
 * the FIN arrived (RCV_SHUTDOWN) and copied_seq has reached rcv_nxt. */
static __always_inline __u32 rx_data_seq(struct tcp_sock *tp)
{
	__u32 copied = BPF_CORE_READ(tp, copied_seq);
	struct sock *sk = (struct sock *)tp;   /* its first member */

	/* a bitfield on some kernels, a u8 on others: probed either way */
	if ((BPF_CORE_READ_BITFIELD_PROBED(sk, sk_shutdown) & OSPREY_RCV_SHUTDOWN) &&
	    copied == BPF_CORE_READ(tp, rcv_nxt))
		return copied - 1;
	return copied;
}

static __always_inline bool sock_seq(__u64 sk, __u8 dir, __u32 *seq)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	if (!tp)
		return false;
	*seq = dir == OSPREY_DIR_INGRESS ? rx_data_seq(tp) : BPF_CORE_READ(tp, write_seq);
	return true;
}

#else /* OSPREY_NO_BTF */
/* ==== BTF-less build ======================================================
 * Nothing in the kernel's own structures can be read: sockets are known
 * only from connect()/accept() (and the entries user space seeds from /proc
 * at start-up), addresses are resolved by user space from the /proc socket
 * tables, and the process start time is filled in there. */

/* Arguments of an in-flight syscall: hash keyed by pid_tgid, deleted on
 * every exit path. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct stash);
} stash SEC(".maps");

/* The current thread's name; zeroed first: before 6.x the helper did not
 * pad (strscpy). */
static __always_inline void current_comm(__u64 comm[2])
{
	comm[0] = 0;
	comm[1] = 0;
	bpf_get_current_comm(comm, 2 * sizeof(__u64));
}

static __always_inline void stash_put(__u64 pid_tgid, const struct stash *st)
{
	if (bpf_map_update_elem(&stash, &pid_tgid, st, BPF_ANY))
		count(OSPREY_CNT_STASH_FULL, 1);
}

static __always_inline bool stash_take(__u64 pid_tgid, __u8 syscall, struct stash *out)
{
	struct stash *s = bpf_map_lookup_elem(&stash, &pid_tgid);

	if (!s)
		return false;
	*out = *s;
	bpf_map_delete_elem(&stash, &pid_tgid);
	return out->syscall == syscall;
}

/* Nothing to do: every exit deletes the hash entry it finds. */
static __always_inline void stash_clear(void)
{
}

/* A hash update per syscall only for fds known to be connections. */
static __always_inline bool stash_wanted(__u64 pid_tgid, __s32 fd)
{
	struct conn_key key = { .tgid = pid_tgid >> 32, .fd = fd };

	return bpf_map_lookup_elem(&conns, &key) != NULL;
}

static __always_inline void *tcp_sock_from_fd(int fd)
{
	return NULL;
}

/* The socket cannot be inspected: track it, user space drops it if it
 * turns out not to be TCP (/proc). */
static __always_inline bool setup_sock_ok(void *sk)
{
	return true;
}

static __always_inline bool read_addrs(void *sk, struct osprey_addrs *a)
{
	return false;
}

static __always_inline __u64 proc_start_ns(void)
{
	return 0;
}

/* The socket cannot be read: positions are the hooks' count alone. */
static __always_inline bool sock_seq(__u64 sk, __u8 dir, __u32 *seq)
{
	return false;
}


#endif /* OSPREY_NO_BTF */

/* ==== preemption around uprobe programs =================================== */
#if !defined(OSPREY_NO_BTF) && !defined(OSPREY_NO_KFUNC)
/* Uprobe programs (TLS plaintext) run with preemption enabled: since 6.0
 * only migration is disabled around them.  Since 6.13 the x86-64 JIT gives
 * a KPROBE-type program whose stack is 64 bytes or more a per-CPU private
 * stack, assuming it cannot be preempted; a uprobe program preempted by
 * another run of itself on the same CPU then finds its stack overwritten
 * (seen in the kernel matrix on 7.3: a spilled map-value pointer with its
 * low half replaced, an oops in go_tls_ret).  bpf_preempt_disable() (6.10+)
 * around each uprobe program's body closes that window; before 6.10 there
 * are no private stacks.  A weak kfunc: where the kernel lacks it,
 * bpf_ksym_exists() is the constant 0 and the verifier drops both calls. */
extern void bpf_preempt_disable(void) __ksym __weak;
extern void bpf_preempt_enable(void) __ksym __weak;

static __always_inline bool uprobe_preempt_off(void)
{
	if (!bpf_ksym_exists(bpf_preempt_disable))
		return false;
	bpf_preempt_disable();
	return true;
}

static __always_inline void uprobe_preempt_on(bool off)
{
	if (off)
		bpf_preempt_enable();
}

/* A uprobe program's body: UPROBE_GUARDED(fn, (args)) calls the
 * __always_inline function fn with preemption off around it where the
 * kernel has the kfuncs (see uprobe_preempt_off()).  UPROBE_BODIES()
 * declares the copies the build without kfuncs needs; here, none. */
#define UPROBE_BODIES(fn, params, args)
#define UPROBE_GUARDED(fn, args)                        \
	({                                              \
		bool __off = uprobe_preempt_off();      \
		int __r = fn args;                      \
		uprobe_preempt_on(__off);               \
		__r;                                    \
	})
#define UPROBE_GUARDS_END()

#else
/* No kfuncs (the BTF-less object; bpf/osprey_btffile.bpf.c for --btf FILE
 * on a kernel without its own BTF): preemption cannot be turned off, so a
 * run must never find the stack it runs on in use by another run on the
 * same CPU.  Each uprobe program's body has UPROBE_GUARD_SLOTS copies,
 * each a __noinline subprogram (UPROBE_BODIES), so each with a private
 * stack of its own; a run takes a free slot on its CPU -- a bit of the
 * program's busy word, set with an atomic fetch-or (migration is disabled
 * for the whole run: the CPU stays the same) before anything writes its
 * stack -- runs that slot's copy and frees the bit (atomic fetch-and).  A
 * run that finds every slot taken (it preempted that many runs of the same
 * program on its CPU, each preempted inside the body) returns at once,
 * without writing the stack, and counts the dropped call
 * (tls_reentry_dropped).  One slot is not enough: in the kernel matrix's
 * Go TLS stress on 7.3 (300 GETs, 8 at a time, two CPUs under TCG) one
 * slot dropped 31 runs and lost 6 transactions at each end.  The words are
 * in .bss, reached by address (no map key on the stack), one row of
 * UPROBE_GUARD_PROGS per CPU (128 bytes: CPUs share no more than the line
 * at a row's edge -- the array is not cache-line aligned); a machine with more than UPROBE_GUARD_CPUS CPUs shares rows
 * between CPUs UPROBE_GUARD_CPUS apart (a run there may find a slot taken
 * that it need not; safe, and counted the same).  Programs are numbered by
 * __COUNTER__, one per UPROBE_GUARDED; UPROBE_GUARDS_END() checks they fit.
 * What a body calls is inlined, except the bpf_loop() callback of
 * records.bpf.h (cont_one), whose stack (40 bytes) is below the JIT's
 * private-stack threshold (64): it runs on the task's own kernel stack. */
#define UPROBE_GUARD_CPUS 256   /* power of two */
#define UPROBE_GUARD_PROGS 32
#define UPROBE_GUARD_SLOTS 3     /* the copies in UPROBE_BODIES/_GUARDED_N */

__u32 uprobe_busy[UPROBE_GUARD_CPUS][UPROBE_GUARD_PROGS] = {};

#define UPROBE_BODIES(fn, params, args)                                                 \
	static __noinline int fn##__slot0 params { return fn args; }                    \
	static __noinline int fn##__slot1 params { return fn args; }                    \
	static __noinline int fn##__slot2 params { return fn args; }

#define UPROBE_GUARDED(fn, args) UPROBE_GUARDED_N(fn, args, __COUNTER__)
/* slot k of the busy word: taken by this run if the bit was clear */
#define UPROBE_SLOT(busy, k) (!(__sync_fetch_and_or((busy), 1u << (k)) & (1u << (k))))
#define UPROBE_GUARDED_N(fn, args, n)                                                   \
	({                                                                              \
		__u32 *__busy = &uprobe_busy[bpf_get_smp_processor_id() &               \
					     (UPROBE_GUARD_CPUS - 1)][(n)];             \
		int __r = 0;                                                            \
		if (UPROBE_SLOT(__busy, 0)) {                                           \
			__r = fn##__slot0 args;                                         \
			__sync_fetch_and_and(__busy, ~(1u << 0));                       \
		} else if (UPROBE_SLOT(__busy, 1)) {                                    \
			__r = fn##__slot1 args;                                         \
			__sync_fetch_and_and(__busy, ~(1u << 1));                       \
		} else if (UPROBE_SLOT(__busy, 2)) {                                    \
			__r = fn##__slot2 args;                                         \
			__sync_fetch_and_and(__busy, ~(1u << 2));                       \
		} else {                                                                \
			count(OSPREY_CNT_TLS_REENTRY_DROPPED, 1);                       \
		}                                                                       \
		__r;                                                                    \
	})
#define UPROBE_GUARDS_END()                                                             \
	_Static_assert(__COUNTER__ < UPROBE_GUARD_PROGS,                                \
		       "more uprobe programs than UPROBE_GUARD_PROGS")
#endif

/* ==== helpers by kernel version ==========================================
 * A loop over further records (records.bpf.h, emit_more()): bpf_loop()
 * (5.17+; the loader probes it, cfg.has_bpf_loop) calls the callback up to
 * OSPREY_MAX_CONT times and the verifier checks its body once; without it
 * the loop is unrolled by the verifier per iteration in every program that
 * copies a buffer, so it is bounded to OSPREY_CONT_NO_LOOP (the loader
 * clamps cfg.capture_max_per_call to match).  cfg is constant to the
 * verifier: the branch the kernel cannot run is never checked (a 5.15
 * kernel does not see the bpf_loop() call it does not know). */
static __always_inline __u32 cont_loop_max(void)
{
	return cfg.has_bpf_loop ? OSPREY_MAX_CONT : OSPREY_CONT_NO_LOOP;
}

static __always_inline void cont_loop(long (*cb)(__u64, void *), void *ctx)
{
	if (cfg.has_bpf_loop) {
		bpf_loop(OSPREY_MAX_CONT, cb, ctx, 0);
		return;
	}
	for (__u32 i = 0; i < OSPREY_CONT_NO_LOOP; i++)
		if (cb(i, ctx))
			break;
}

/* ==== architectures ======================================================
 * The socket hooks find the data syscall behind a socket operation from the
 * task's saved user registers: the syscall number here, the arguments with
 * libbpf's PT_REGS_PARMn_SYSCALL (bpf_tracing.h; direct loads, relocated by
 * CO-RE through vmlinux.h's pt_regs). */
#if defined(__TARGET_ARCH_arm64)
#define NR_read 63
#define NR_write 64
#define NR_readv 65
#define NR_writev 66
#define NR_sendto 206
#define NR_recvfrom 207
#define NR_sendmsg 211
#define NR_recvmsg 212
#define NR_sendfile 71
#define NR_splice 76
#define NR_sendmmsg 269
#define NR_recvmmsg 243
#define NR_close 57
#define NR_exit 93
#define NR_exit_group 94
#define SYSCALL_NR(r) ((r)->syscallno)
#else /* x86_64 */
#define NR_read 0
#define NR_write 1
#define NR_readv 19
#define NR_writev 20
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47
#define NR_sendfile 40
#define NR_splice 275
#define NR_sendmmsg 307
#define NR_recvmmsg 299
#define NR_close 3
#define NR_exit 60
#define NR_exit_group 231
#define SYSCALL_NR(r) ((r)->orig_ax)
#endif

#endif /* __OSPREY_COMPAT_BPF_H */
