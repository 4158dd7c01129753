// SPDX-License-Identifier: GPL-3.0-or-later
//! The cgroup v2 hierarchy: where it is mounted (`/sys/fs/cgroup` on a
//! pure v2 host, `/sys/fs/cgroup/unified` on a hybrid one), an index of
//! cgroup id → path made by walking it, and the lazy lookup of one id
//! (`open_by_handle_at`: a cgroup v2 id is the kernfs file handle of its
//! directory).
//!
//! A cgroup's id, as `bpf_get_current_cgroup_id()` returns it, is the
//! inode number of its directory in the v2 hierarchy.

use std::collections::HashMap;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Walks stop here (directories; a node has a few thousand).
pub const MAX_WALK_ENTRIES: usize = 262_144;
/// Nesting deeper than this is not followed.
const MAX_DEPTH: usize = 32;

/// The mount points of cgroup2 filesystems in a `/proc/self/mountinfo`,
/// those mounting the hierarchy's root first.
pub fn v2_mounts(mountinfo: &str) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let mut others = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        if post.split(' ').next() != Some("cgroup2") {
            continue;
        }
        let f: Vec<&str> = pre.split(' ').collect();
        if f.len() < 5 {
            continue;
        }
        let mp = PathBuf::from(unescape_mount(f[4]));
        if f[3] == "/" {
            roots.push(mp);
        } else {
            others.push(mp);
        }
    }
    roots.extend(others);
    roots
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if v <= 255 {
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This host's cgroup v2 root: the first cgroup2 mount of the hierarchy's
/// root in our mount namespace, else the usual places.
pub fn find_v2_root() -> Option<PathBuf> {
    if let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") {
        if let Some(p) = v2_mounts(&mi).into_iter().next() {
            return Some(p);
        }
    }
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| is_v2(p))
}

/// Is `p` the root of a cgroup2 filesystem (statfs magic)?
pub fn is_v2(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: zeroed statfs is a valid out-parameter; c is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    rc == 0 && st.f_type as i64 == CGROUP2_SUPER_MAGIC
}

/// The id of the cgroup at `dir` (the inode number of its directory).
pub fn id_of(dir: &Path) -> Option<u64> {
    std::fs::metadata(dir)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| m.ino())
}

/// id → path (rooted: `/`, `/a/b`) of every cgroup under `root`, by a walk
/// of the directories (the directory entries give the inode numbers, no
/// stat per cgroup). Stops at `max` entries; returns whether it did.
pub fn walk(root: &Path, max: usize) -> (HashMap<u64, Arc<str>>, bool) {
    let mut out = HashMap::new();
    let Some(root_id) = id_of(root) else {
        return (out, false);
    };
    out.insert(root_id, Arc::from("/"));
    let mut stack: Vec<(PathBuf, String, usize)> = vec![(root.to_path_buf(), String::new(), 0)];
    let mut capped = false;
    while let Some((dir, rel, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue; // removed meanwhile, or not readable
        };
        for e in rd.flatten() {
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !is_dir {
                continue;
            }
            if out.len() >= max {
                capped = true;
                break;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let path = format!("{rel}/{name}");
            out.insert(e.ino(), Arc::from(path.as_str()));
            if depth + 1 < MAX_DEPTH {
                stack.push((e.path(), path, depth + 1));
            }
        }
    }
    (out, capped)
}

/// The path (rooted) of cgroup `id` under `root`, by its file handle: the
/// kernel finds the directory itself, however new. Needs
/// CAP_DAC_READ_SEARCH; None when the cgroup is gone or that is refused.
pub fn path_by_handle(root: &Path, id: u64) -> Option<String> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    #[repr(C)]
    struct Handle {
        handle_bytes: u32,
        handle_type: i32,
        f_handle: [u8; 8],
    }
    /// FILEID_KERNFS (include/linux/exportfs.h)
    const FILEID_KERNFS: i32 = 0xfe;
    let dir = std::fs::File::open(root).ok()?;
    let mut h = Handle {
        handle_bytes: 8,
        handle_type: FILEID_KERNFS,
        f_handle: id.to_ne_bytes(),
    };
    // SAFETY: a valid mount fd and a file_handle with 8 bytes of handle.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            dir.as_raw_fd(),
            &mut h as *mut Handle,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: the syscall returned a new fd that we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    // the link names the directory in our mount namespace: under root
    let rel = target.strip_prefix(root).ok()?;
    // a handle of another filesystem's inode is refused by the kernel;
    // check the id anyway
    if id_of(&target)? != id {
        return None;
    }
    let s = rel.to_string_lossy();
    Some(if s.is_empty() {
        "/".into()
    } else {
        format!("/{s}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_hybrid_and_v2() {
        let hybrid = "\
25 30 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
";
        assert_eq!(v2_mounts(hybrid), [PathBuf::from("/sys/fs/cgroup/unified")]);
        let v2 = "\
35 24 0:30 /kubepods.slice /host/pod rw - cgroup2 cgroup2 rw
30 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw
";
        // the mount of the root comes first, a bind of a subtree after
        assert_eq!(
            v2_mounts(v2),
            [PathBuf::from("/sys/fs/cgroup"), PathBuf::from("/host/pod")]
        );
        assert_eq!(
            v2_mounts("1 2 0:1 / /a\\040b rw - cgroup2 none rw\n"),
            [PathBuf::from("/a b")]
        );
        // v1 only, and garbage
        assert!(
            v2_mounts("27 25 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
                .is_empty()
        );
        for g in [
            "",
            " - cgroup2",
            "a b - cgroup2 x",
            "\\",
            "1 2 3 4 \\7777 - cgroup2",
        ] {
            let _ = v2_mounts(g);
        }
    }

    #[test]
    fn walk_gives_inode_numbers_and_paths() {
        let d = std::env::temp_dir().join(format!("osprey-cgwalk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::create_dir_all(d.join("c")).unwrap();
        std::fs::write(d.join("a/cgroup.procs"), "").unwrap();
        let (m, capped) = walk(&d, 100);
        assert!(!capped);
        let mut paths: Vec<&str> = m.values().map(|s| &**s).collect();
        paths.sort();
        assert_eq!(paths, ["/", "/a", "/a/b", "/c"]);
        assert_eq!(
            m.get(&id_of(&d.join("a/b")).unwrap()).map(|s| &**s),
            Some("/a/b")
        );
        let (m, capped) = walk(&d, 2);
        assert!(capped);
        assert_eq!(m.len(), 2);
        let (m, _) = walk(&d.join("missing"), 10);
        assert!(m.is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
