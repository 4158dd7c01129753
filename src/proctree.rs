// SPDX-License-Identifier: GPL-3.0-or-later
//! The descendants of processes, from /proc: `--pid` follows them
//! (children forked before the probe started; later forks are followed
//! in the kernel, `sched:sched_process_fork`).

use std::collections::{HashMap, HashSet};

/// The parent pid from the text of `/proc/PID/stat` (the field after the
/// command name, which may itself hold spaces and parentheses: the last
/// `)` ends it). None when malformed.
pub fn stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let _state = f.next()?;
    f.next()?.parse().ok()
}

/// Every descendant of `roots` (not the roots themselves) in a list of
/// (pid, parent pid), in breadth-first order; each once, also if the list
/// holds a cycle.
pub fn descendants(procs: &[(u32, u32)], roots: &[u32]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(pid, ppid) in procs {
        if pid != ppid {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut seen: HashSet<u32> = roots.iter().copied().collect();
    let mut out = Vec::new();
    let mut queue: Vec<u32> = roots.to_vec();
    while let Some(p) = queue.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            if seen.insert(c) {
                out.push(c);
                queue.push(c);
            }
        }
    }
    out
}

/// (pid, parent pid) of every process in /proc now (processes that exit
/// while it is read are left out).
pub fn processes() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            Some((pid, stat_ppid(&stat)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_after_the_last_parenthesis() {
        assert_eq!(stat_ppid("42 (nginx) S 7 42 42 0 -1"), Some(7));
        assert_eq!(stat_ppid("43 (a) b) (c) R 9 1 1"), Some(9));
        assert_eq!(stat_ppid("44 (x y) Z 1"), Some(1));
        assert_eq!(stat_ppid("45 (cut"), None);
        assert_eq!(stat_ppid("46 (x) S"), None);
        assert_eq!(stat_ppid(""), None);
    }

    #[test]
    fn descendants_of_roots_each_once() {
        // 1 ─ 10 ─ 100 ─ 1000
        //        └ 101
        // 2 ─ 20;  a cycle 7 ↔ 8 under nothing traced
        let procs = [
            (10, 1),
            (100, 10),
            (101, 10),
            (1000, 100),
            (20, 2),
            (7, 8),
            (8, 7),
            (1, 0),
        ];
        let mut d = descendants(&procs, &[10]);
        d.sort();
        assert_eq!(d, [100, 101, 1000]);
        let mut d = descendants(&procs, &[1, 2]);
        d.sort();
        assert_eq!(d, [10, 20, 100, 101, 1000]);
        assert_eq!(descendants(&procs, &[7]), [8]);
        assert!(descendants(&procs, &[5]).is_empty());
        assert!(descendants(&[(3, 3)], &[3]).is_empty());
    }
}
