/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The process allowlist (--pid / --comm / cgroups: --cgroup, --container,
 * --pod), OR-ed, applied before anything is copied.
 */
#ifndef __OSPREY_FILTER_BPF_H
#define __OSPREY_FILTER_BPF_H

/* Allowlist check, before anything is copied. */
static __always_inline bool traced(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;

	if (tgid == cfg.self_tgid)
		return false;
	if (!cfg.filter_pids && !cfg.filter_comms && !cfg.filter_cgroups)
		return true;
	if (cfg.filter_pids) {
		if (cfg.n_inline_pids) {
			for (int i = 0; i < OSPREY_INLINE_FILTER && i < cfg.n_inline_pids; i++)
				if (cfg.inline_pids[i] == tgid)
					return true;
		} else if (bpf_map_lookup_elem(&allowed_pids, &tgid)) {
			return true;
		}
	}
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

#endif /* __OSPREY_FILTER_BPF_H */
