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
 *   -DFLOOR_SOCK_REC  tp_btf sock_send_length + sock_recv_length writing one
 *                     96-byte record (no payload) per nginx send/receive to
 *                     a ring buffer, without wakeups (bench-floor drains it)
 *   -DFLOOR_SOCK_MEM  the same records written to a plain array map instead
 *                     (8 MiB a CPU, round robin, no reader): the ring buffer's
 *                     own share of FLOOR_SOCK_REC
 *   -DFLOOR_SOCK_STAGE FLOOR_SOCK_REC's records gathered in a buffer per CPU
 *                     and written to the ring buffer 8 KiB at a time (the
 *                     best case of batching: no flush when a CPU goes quiet,
 *                     no guard against a preempted writer)
 *   -DFLOOR_SOCK_PAIR  FLOOR_SOCK_REC with one ring-buffer record per
 *                     exchange: a received message's record is held in the
 *                     socket's storage and written with the next sent one
 * The programs of the other builds only compare the tgid with a value that
 * never matches.
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
#elif defined(FLOOR_SOCK_REC) || defined(FLOOR_SOCK_MEM) || defined(FLOOR_SOCK_STAGE) || defined(FLOOR_SOCK_PAIR)
__u64 records = 0;   /* written */
__u64 lost = 0;      /* refused by the ring buffer */

/* The size of Osprey's DATA record header, with the fields a probe fills
 * for every message: who, when, which socket, how many bytes. */
struct floor_rec {
	__u64 w[12];
};

#if defined(FLOOR_SOCK_REC) || defined(FLOOR_SOCK_STAGE) || defined(FLOOR_SOCK_PAIR)
/* Records to bench-floor's reader, which polls (no wakeups). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} rb SEC(".maps");

/* Count a record written to the ring buffer (err: bpf_ringbuf_output's). */
static __always_inline void tally(long err)
{
	if (err)
		__sync_fetch_and_add(&lost, 1);
	else
		__sync_fetch_and_add(&records, 1);
}
#endif

#if defined(FLOOR_SOCK_STAGE)
#define STAGE_FLUSH 8192

struct stage {
	__u32 len;
	__u32 _pad;
	__u8 buf[2 * STAGE_FLUSH];
};

/* key: cpu (CPUs past 64 write nothing); value: records not yet written
 * to the ring buffer (left there when the run ends: they are not read) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct stage);
} stage SEC(".maps");

static __always_inline void put(struct floor_rec *r)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct stage *s = bpf_map_lookup_elem(&stage, &cpu);
	__u32 n;

	if (!s)
		return;
	n = s->len;
	if (n + sizeof(*r) > STAGE_FLUSH) {
		if (n > 2 * STAGE_FLUSH)
			n = 2 * STAGE_FLUSH;
		if (bpf_ringbuf_output(&rb, s->buf, n, BPF_RB_NO_WAKEUP))
			__sync_fetch_and_add(&lost, n / sizeof(*r));
		n = 0;
	}
	n &= STAGE_FLUSH - 8;
	for (int i = 0; i < 12; i++)
		*(__u64 *)&s->buf[n + 8 * i] = r->w[i];
	s->len = n + sizeof(*r);
	__sync_fetch_and_add(&records, 1);
}
#elif defined(FLOOR_SOCK_PAIR)
struct held {
	struct floor_rec rec[2];   /* [0]: the held received message, [1]: scratch */
	__u64 full;
};

/* key: socket; value: a received message's record until the next send */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct held);
} held SEC(".maps");

static __always_inline void put_pair(struct sock *sk, struct floor_rec *r)
{
	struct held *h = bpf_sk_storage_get(&held, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	long err;

	if (!h) {
		__sync_fetch_and_add(&lost, 1);
		return;
	}
	if (r->w[0] == 0) {   /* received: hold it (a held one first goes out alone) */
		if (h->full && bpf_ringbuf_output(&rb, &h->rec[0], sizeof(h->rec[0]), BPF_RB_NO_WAKEUP))
			__sync_fetch_and_add(&lost, 1);
		h->rec[0] = *r;
		h->full = 1;
		__sync_fetch_and_add(&records, 1);
		return;
	}
	if (h->full) {        /* sent after a received one: both in one record */
		h->rec[1] = *r;
		err = bpf_ringbuf_output(&rb, h->rec, sizeof(h->rec), BPF_RB_NO_WAKEUP);
		h->full = 0;
	} else {
		err = bpf_ringbuf_output(&rb, r, sizeof(*r), BPF_RB_NO_WAKEUP);
	}
	tally(err);
}
#elif defined(FLOOR_SOCK_REC)
static __always_inline void put(struct floor_rec *r)
{
	tally(bpf_ringbuf_output(&rb, r, sizeof(*r), BPF_RB_NO_WAKEUP));
}
#else
#define MEM_RECS (8 * 1024 * 1024 / sizeof(struct floor_rec))   /* a region */

/* key: region * MEM_RECS + n; value: a record; written round robin, never
 * read.  Two regions (the bench machine has 2 CPUs): with more CPUs, those
 * of the same parity share one (their writes may collide, no matter). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * MEM_RECS);
	__type(key, __u32);
	__type(value, struct floor_rec);
} mem SEC(".maps");

__u64 next[2] = {};

static __always_inline void put(struct floor_rec *r)
{
	__u32 region = bpf_get_smp_processor_id() & 1;
	struct floor_rec *slot;
	__u32 key;

	key = region * MEM_RECS + next[region]++ % MEM_RECS;
	slot = bpf_map_lookup_elem(&mem, &key);
	if (!slot)
		return;
	__builtin_memcpy(slot, r, sizeof(*r));
	__sync_fetch_and_add(&records, 1);
}
#endif

static __always_inline int record(struct sock *sk, int ret, __u64 dir)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct floor_rec r = {};

	if (ret <= 0)
		return 0;
	/* "nginx\0" as the first six bytes of the name, little-endian */
	if ((*(__u64 *)&task->comm[0] & 0xffffffffffffULL) != 0x786e69676eULL)
		return 0;
	r.w[0] = dir;
	r.w[1] = bpf_get_current_pid_tgid();
	r.w[2] = bpf_ktime_get_ns();
	r.w[3] = sk->__sk_common.skc_hash;
	r.w[4] = ret;
#if defined(FLOOR_SOCK_PAIR)
	put_pair(sk, &r);
#else
	put(&r);
#endif
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(send_len, struct sock *sk, int ret, int flags)
{
	return record(sk, ret, 1);
}
SEC("tp_btf/sock_recv_length")
int BPF_PROG(recv_len, struct sock *sk, int ret, int flags)
{
	return record(sk, ret, 0);
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
