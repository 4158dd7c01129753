// SPDX-License-Identifier: GPL-3.0-or-later
//! New cgroups as they are made: inotify on every directory of the v2
//! hierarchy (`IN_CREATE`), read when the index misses an id. A container
//! that lives a few milliseconds is gone before user space reads its
//! connection's OPEN record, but its `mkdir` was queued before: the path is
//! in the index by then. Bounded: at most `MAX_WATCHES` directories
//! watched; a full queue (`IN_Q_OVERFLOW`) or a refused watch leaves the
//! index to the walks and the file-handle lookups.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const MAX_WATCHES: usize = 65_536;

pub struct TreeWatch {
    fd: OwnedFd,
    root: PathBuf,
    /// watch descriptor → rooted path of the directory
    dirs: HashMap<i32, Arc<str>>,
    /// The queue overflowed or a watch was refused: walk again (and
    /// watch what the walk finds).
    pub lost: bool,
}

impl TreeWatch {
    pub fn new(root: &Path) -> Option<TreeWatch> {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            log::debug!("inotify: {}", std::io::Error::last_os_error());
            return None;
        }
        Some(TreeWatch {
            // SAFETY: a new fd we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            root: root.to_path_buf(),
            dirs: HashMap::new(),
            lost: false,
        })
    }

    /// Watch the directory at rooted path `rel` (idempotent).
    pub fn watch(&mut self, rel: &Arc<str>) -> bool {
        if self.dirs.len() >= MAX_WATCHES {
            self.lost = true;
            return false;
        }
        let abs = self.abs(rel);
        let Ok(c) = CString::new(abs.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: valid fd and NUL-terminated path.
        let wd = unsafe {
            libc::inotify_add_watch(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::IN_CREATE | libc::IN_ONLYDIR | libc::IN_EXCL_UNLINK,
            )
        };
        if wd < 0 {
            // ENOENT: removed meanwhile; ENOSPC: the user's watch limit
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSPC) {
                self.lost = true;
            }
            return false;
        }
        self.dirs.insert(wd, rel.clone());
        true
    }

    fn abs(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    pub fn watched(&self) -> usize {
        self.dirs.len()
    }

    /// Read what is queued: every new directory (and what it already holds)
    /// goes into `index` and is watched in turn. Returns how many entries
    /// it added.
    pub fn drain(&mut self, index: &mut HashMap<u64, Arc<str>>) -> usize {
        let mut buf = [0u8; 16 * 1024];
        let before = index.len();
        loop {
            // SAFETY: valid fd and buffer.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                // EAGAIN: nothing more
                return index.len().saturating_sub(before);
            }
            let n = n as usize;
            let mut off = 0;
            let head = std::mem::size_of::<libc::inotify_event>();
            while off + head <= n {
                // SAFETY: the kernel writes whole events; read unaligned.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[off..].as_ptr().cast()) };
                let name_bytes = &buf[off + head..(off + head + ev.len as usize).min(n)];
                off += head + ev.len as usize;
                if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                    self.lost = true;
                    continue;
                }
                if ev.mask & libc::IN_IGNORED != 0 {
                    self.dirs.remove(&ev.wd);
                    continue;
                }
                if ev.mask & libc::IN_CREATE == 0 || ev.mask & libc::IN_ISDIR == 0 {
                    continue;
                }
                let Some(parent) = self.dirs.get(&ev.wd).cloned() else {
                    continue;
                };
                let end = name_bytes
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(name_bytes.len());
                let name = String::from_utf8_lossy(&name_bytes[..end]);
                let rel: Arc<str> = if &*parent == "/" {
                    format!("/{name}").into()
                } else {
                    format!("{parent}/{name}").into()
                };
                self.add_tree(&rel, index);
            }
        }
    }

    /// A new directory: into the index, watched, and its subdirectories
    /// (made before the watch was) likewise.
    fn add_tree(&mut self, rel: &Arc<str>, index: &mut HashMap<u64, Arc<str>>) {
        let mut stack = vec![rel.clone()];
        while let Some(r) = stack.pop() {
            let abs = self.abs(&r);
            let Ok(m) = std::fs::metadata(&abs) else {
                continue; // gone already
            };
            index.insert(m.ino(), r.clone());
            self.watch(&r);
            if let Ok(rd) = std::fs::read_dir(&abs) {
                for e in rd.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        stack.push(format!("{r}/{}", e.file_name().to_string_lossy()).into());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_directories_and_their_children_are_indexed() {
        let d = std::env::temp_dir().join(format!("osprey-inotify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("a")).unwrap();
        let mut w = TreeWatch::new(&d).unwrap();
        assert!(w.watch(&Arc::from("/")));
        assert!(w.watch(&Arc::from("/a")));
        std::fs::create_dir_all(d.join("a/b/c")).unwrap();
        std::fs::create_dir(d.join("x")).unwrap();
        std::fs::write(d.join("a/file"), "").unwrap();
        let mut index = HashMap::new();
        w.drain(&mut index);
        let mut paths: Vec<&str> = index.values().map(|p| &**p).collect();
        paths.sort();
        assert_eq!(paths, ["/a/b", "/a/b/c", "/x"]);
        let ino = std::fs::metadata(d.join("a/b/c")).unwrap().ino();
        assert_eq!(index.get(&ino).map(|p| &**p), Some("/a/b/c"));
        // the new ones are watched too
        std::fs::create_dir(d.join("a/b/c/d")).unwrap();
        w.drain(&mut index);
        assert!(index.values().any(|p| &**p == "/a/b/c/d"));
        assert!(!w.lost);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
