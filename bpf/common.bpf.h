/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Osprey kernel side, shared by both objects: license, constants, the
 * user-space ABI structs read from syscall arguments, the one configuration
 * struct (.rodata) and the counters (.bss).
 */
#ifndef __OSPREY_COMMON_BPF_H
#define __OSPREY_COMMON_BPF_H


char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET      2
#define AF_INET6     10
#define SOCK_STREAM  1
#define S_IFMT       00170000
#define S_IFSOCK     0140000
#define EINPROGRESS  115
#define MSG_PEEK     2

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

/* struct mmsghdr: a msghdr, then the bytes that message moved (set by
 * sendmmsg/recvmmsg on return). */
struct osp_mmsghdr {
	struct osp_msghdr msg_hdr;
	__u32 msg_len;
	__u32 _pad;
};

/* ---- configuration (.rodata: set by the loader before load) ------------- */

/* Every setting the loader gives the programs, in one read-only struct
 * (src/bpf.rs fills it through the skeleton's rodata type; the verifier
 * sees the values as constants and prunes what they turn off). */
struct osprey_config {
	__u64 wakeup_bytes;      /* 0: wake the reader per record */
	__u64 wakeup_max_bytes;  /* ... unless this many bytes wait */
	__u32 wakeup_records;    /* ... and not before this many records */
	__u32 self_tgid;         /* never traced */
	__u32 capture_bytes;     /* bytes captured per record (<= OSPREY_MAX_PAYLOAD) */
	__u32 iov_whole;         /* sent iovecs after the first: captured whole up to this */
	__u8  filter_pids;       /* allowlist by tgid active (0/1) */
	__u8  filter_comms;      /* allowlist by comm active (0/1) */
	__u8  _pad[2];
	/* Short allowlists, in line: n > 0 replaces the map of the same kind.
	 * Comms as two words each, zero-padded like bpf_get_current_comm(). */
	__u32 n_inline_pids;
	__u32 inline_pids[OSPREY_INLINE_FILTER];
	__u32 n_inline_comms;
	__u32 _pad2;
	__u64 inline_comms[OSPREY_INLINE_FILTER][2];
	/* appended (issue 17) */
	__u32 capture_max_per_call; /* bytes copied of one plain-buffer syscall, all records */
	__u32 fork_child_off;       /* sched_process_fork: offset of child_pid (tracefs) */
	__u8  follow_children;      /* --pid follows descendants (0/1) */
	/* appended (issue 20) */
	__u8  filter_cgroups;    /* allowlist by cgroup v2 id active (0/1) */
	__u8  _pad3[7];
	/* appended (bpf_loop) */
	__u8  has_bpf_loop;         /* the kernel has bpf_loop() (5.17+; loader probe) */
	__u8  _pad4[7];
	/* TLS plaintext capture (bpf/tls_hooks.bpf.h) on (0/1): off, the data
	 * hooks skip their look for a TLS call in flight */
	__u32 tls;
	/* body skips (struct osprey_skip) are looked up (0/1) */
	__u32 body_skip;
};

const volatile struct osprey_config cfg = {
	.capture_bytes = OSPREY_DEFAULT_CAPTURE,
	.iov_whole = OSPREY_DEFAULT_IOV_WHOLE,
	.capture_max_per_call = OSPREY_DEFAULT_CAPTURE_MAX,
};

/* ---- counters and ids (.bss, read by user space) ------------------------ */

__u64 counters[OSPREY_CNT__MAX] = {};
__u64 next_gen = 0;

/* Instances so that the skeleton's BTF carries the ABI types (ABI test). */
struct osprey_open_event abi_open_event = {};
struct osprey_close_event abi_close_event = {};
struct osprey_data_event abi_data_event = {};
struct osprey_skip abi_skip = {};

#ifndef barrier_var
#define barrier_var(var) asm volatile("" : "+r"(var))
#endif

static __always_inline void count(enum osprey_counter c, __u64 n)
{
	if (c < OSPREY_CNT__MAX)
		__sync_fetch_and_add(&counters[c], n);
}

/* A slot that holds a value, not a count (the last one written wins). */
static __always_inline void note_value(enum osprey_counter c, __u64 v)
{
	if (c < OSPREY_CNT__MAX)
		*(volatile __u64 *)&counters[c] = v;
}

#endif /* __OSPREY_COMMON_BPF_H */
