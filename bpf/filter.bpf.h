/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The process allowlist (--pid / --comm / cgroups: --cgroup, --container,
 * --pod), OR-ed, applied before anything is copied.
 */
#ifndef __OSPREY_FILTER_BPF_H
#define __OSPREY_FILTER_BPF_H

/* Is `tgid` one of the --pid processes, or (cfg.follow_children) one of
 * their descendants? */
static __always_inline bool pid_allowed(__u32 tgid)
{
	if (cfg.n_inline_pids) {
		for (int i = 0; i < OSPREY_INLINE_FILTER && i < cfg.n_inline_pids; i++)
			if (cfg.inline_pids[i] == tgid)
				return true;
	} else if (bpf_map_lookup_elem(&allowed_pids, &tgid)) {
		return true;
	}
	return cfg.follow_children && bpf_map_lookup_elem(&child_pids, &tgid);
}

/* Allowlist check, before anything is copied. */
static __always_inline bool traced(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;

	if (tgid == cfg.self_tgid)
		return false;
	if (!cfg.filter_pids && !cfg.filter_comms && !cfg.filter_cgroups)
		return true;
	if (cfg.filter_pids && pid_allowed(tgid))
		return true;
	if (cfg.filter_comms) {
		__u64 comm[OSPREY_COMM_LEN / 8];

		current_comm(comm);
		if (cfg.n_inline_comms) {
			for (int i = 0; i < OSPREY_INLINE_FILTER && i < cfg.n_inline_comms; i++)
				if (cfg.inline_comms[i][0] == comm[0] && cfg.inline_comms[i][1] == comm[1])
					return true;
		} else if (bpf_map_lookup_elem(&allowed_comms, comm)) {
			return true;
		}
	}
	if (cfg.filter_cgroups) {
		/* the task's cgroup v2 id (also on hybrid hosts: the default
		 * hierarchy); user space puts every cgroup of a selected subtree
		 * in the map, so one lookup decides */
		__u64 cg = bpf_get_current_cgroup_id();

		if (bpf_map_lookup_elem(&allowed_cgroups, &cg))
			return true;
	}
	return false;
}

/* ---- --pid follows descendants (cfg.follow_children) --------------------
 * sched:sched_process_fork runs in the parent: a child of an allowed
 * process is allowed (a new thread's tid goes in too -- a thread is
 * traced by its tgid, the entry is unused and leaves at its exit).  The
 * offset of child_pid differs between kernels (char[16] comms before 6.x,
 * __data_loc strings after): the loader reads it from tracefs. */
struct sched_fork_ctx {
	__u64 common;
	__u8  rest[56];
};

SEC("tracepoint/sched/sched_process_fork")
int follow_fork(struct sched_fork_ctx *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 off = cfg.fork_child_off;
	__s32 child = 0;
	__u8 one = 1;

	if (!cfg.follow_children || tgid == cfg.self_tgid || !pid_allowed(tgid))
		return 0;
	if (off < 8 || off > sizeof(*ctx) - sizeof(child))
		return 0;
	if (bpf_probe_read_kernel(&child, sizeof(child), (void *)ctx + off) || child <= 0)
		return 0;
	if (bpf_map_update_elem(&child_pids, &child, &one, BPF_ANY))
		count(OSPREY_CNT_CHILD_PIDS_FULL, 1);
	else
		count(OSPREY_CNT_CHILD_PIDS, 1);
	return 0;
}

/* A task exits: it leaves the descendants (no-op for others). */
SEC("tracepoint/sched/sched_process_exit")
int follow_exit(void *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (cfg.follow_children)
		bpf_map_delete_elem(&child_pids, &tid);
	return 0;
}

#endif /* __OSPREY_FILTER_BPF_H */
