/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Maps shared by both objects (the per-thread syscall stash, whose type
 * depends on BTF, is in compat.bpf.h; the socket hooks' socket storage in
 * socket_hooks.bpf.h).  Each with its key, value and lifetime.
 */
#ifndef __OSPREY_MAPS_BPF_H
#define __OSPREY_MAPS_BPF_H

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
	__u8  fault;     /* the msghdr was unreadable: buf 0, bytes counted (OSPREY_F_READ_FAULT) */
	__u8  _pad;
	__s32 fd_in;     /* splice: the input fd (`fd` is the output) */
};

/* The `stash` map itself differs by build: see compat.bpf.h. */

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
	__u64 sk;        /* syscall hooks, CO-RE: the struct sock (0: unknown) */
	__u32 seq[2];    /* the socket's own position (TCP copied_seq/write_seq)
			  * after the last bytes counted, per direction */
	__u8  seq_ok;    /* bit per direction: seq[] holds one */
	__u8  role;
	__u8  _pad[6];
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

/* Descendants of the --pid processes (cfg.follow_children).
 * key: pid (a forked process's tgid, or a new thread's tid: harmless, a
 * thread is traced by its tgid); value: unused; lifetime: its fork (or
 * the loader's /proc walk at start-up) → its exit; full: counted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OSPREY_MAX_CHILD_PIDS);
	__type(key, __u32);
	__type(value, __u8);
} child_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OSPREY_MAX_FILTER_COMMS);
	__type(key, char[OSPREY_COMM_LEN]);
	__type(value, __u8);
} allowed_comms SEC(".maps");

/* Cgroup allowlist.  key: cgroup v2 id (what bpf_get_current_cgroup_id()
 * returns: the inode number of the cgroup's directory); value: unused;
 * filled before attach and updated by user space at run time (containers
 * that start later; ids of removed cgroups are deleted). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OSPREY_MAX_FILTER_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} allowed_cgroups SEC(".maps");

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
	__u64 cont_at;   /* offset in the syscall's bytes of the next further record */
	__u32 cont_iov;  /* vectored: the iovec holding cont_at ... */
	__u32 cont_niov; /* (of the cont_niov read into iov[]) */
	__u64 cont_iov_off;   /* ... and cont_at's offset in it */
	struct osprey_segments segs;            /* appended to the record when iovecs follow cut_at */
	struct osprey_data_event ev;
	/* never sent: lets the verifier accept a copy of up to
	 * OSPREY_MAX_PAYLOAD bytes at any offset below OSPREY_MAX_PAYLOAD
	 * (iovecs gathered into one record) */
	__u8 slack[OSPREY_MAX_PAYLOAD];
};

/* Body skips: written by user space through mmap (include/osprey.h,
 * struct osprey_skip), read by emit_data().
 * key: osprey_skip_slot(tgid, fd, dir); lifetime: the probe (entries are
 * overwritten, never removed: a stale one no longer matches). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, OSPREY_SKIP_SLOTS);
	__type(key, __u32);
	__type(value, struct osprey_skip);
} skips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OSPREY_SCRATCH_SLOTS);
	__type(key, __u32);
	__type(value, struct scratch_slot);
} scratch SEC(".maps");

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

#endif /* __OSPREY_MAPS_BPF_H */
