// SPDX-License-Identifier: GPL-3.0-or-later
//! `--drop-page-cache`: the page cache behind a file Osprey writes, let go.
//!
//! Records written to a file stay in the page cache until memory runs
//! short, and the kernel writes them back later (after 30 s, or when a
//! tenth of memory is dirty). A long run fills the node's free memory with
//! pages nothing reads again, charged to Osprey's cgroup (a DaemonSet
//! pod's memory limit counts them).
//!
//! [`Recycle`] follows what a writer wrote, in windows of [`WINDOW`]
//! bytes. When a window is full it asks the kernel to write it back
//! (`posix_fadvise(POSIX_FADV_DONTNEED)` starts writeback of dirty pages
//! without waiting for it), and asks again for the window [`LAG`]
//! windows behind, whose writeback is done by then: clean pages are
//! dropped, and the next writes reuse them. Nothing waits for the disk:
//! a page still dirty or under writeback is left where it is (the kernel
//! reclaims it as before). A reader of the file's last [`LAG`] MiB (`tail
//! -f`, a log shipper keeping up) still finds them cached; one further
//! behind reads from the disk. Regular files only; any error turns it off
//! for that file (a file system without the call: nothing changes).
//!
//! The price: the writeback is started in Osprey's thread as the output
//! grows, instead of by the kernel's flusher threads later (or never, for
//! a file deleted within 30 s), which the benchmark measures as more CPU
//! a record (docs/performance.md). Hence a flag, not the default.

use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Bytes handed to the kernel at a time.
pub const WINDOW: u64 = 1 << 20;
/// Windows between starting a window's writeback and dropping its pages.
pub const LAG: u64 = 8;

/// Where a file's writing stands, in windows (no system calls: the
/// arithmetic of [`Recycle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    /// Where the first window starts (the offset writing started at).
    start: u64,
    /// File offset up to which windows were handed over.
    done: u64,
    /// File offset of the end of what was written.
    off: u64,
}

/// What to ask of the kernel for one window (its file offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    /// Start writing the window back.
    Write(u64),
    /// Drop the window's pages (written back by now).
    Drop(u64),
}

impl Windows {
    pub fn new(start: u64) -> Windows {
        Windows {
            start,
            done: start,
            off: start,
        }
    }

    /// `n` more bytes were written: `advise` is called for each window
    /// this completes (a write of many MiB: several), in file order.
    pub fn wrote(&mut self, n: usize, mut advise: impl FnMut(Advice)) {
        self.off += n as u64;
        while self.done + WINDOW <= self.off {
            advise(Advice::Write(self.done));
            if self.done >= self.start + LAG * WINDOW {
                advise(Advice::Drop(self.done - LAG * WINDOW));
            }
            self.done += WINDOW;
        }
    }

    /// The range written so far: (offset, length).
    pub fn written(&self) -> (u64, u64) {
        (self.start, self.off - self.start)
    }
}

/// One file's written range, advised window by window (see the module
/// documentation).
pub struct Recycle {
    file: File,
    windows: Windows,
    on: bool,
}

impl Recycle {
    /// For the file open on `fd` (through a clone of the descriptor of
    /// its own), from its current offset, or from the end of the file if
    /// it appends. `None` unless it is a regular file.
    pub fn of(fd: BorrowedFd<'_>) -> Option<Recycle> {
        let file = File::from(fd.try_clone_to_owned().ok()?);
        let meta = file.metadata().ok().filter(|m| m.is_file())?;
        let fd = file.as_raw_fd();
        // SAFETY: fcntl and lseek on a descriptor this handle owns
        let (flags, at) = unsafe {
            (
                libc::fcntl(fd, libc::F_GETFL),
                libc::lseek(fd, 0, libc::SEEK_CUR),
            )
        };
        // `osprey >> FILE`: an O_APPEND descriptor's offset says 0 until
        // its first write, and every write lands at the end
        let at = if flags >= 0 && flags & libc::O_APPEND != 0 {
            meta.len()
        } else {
            u64::try_from(at).ok()?
        };
        Some(Recycle {
            file,
            windows: Windows::new(at),
            on: true,
        })
    }

    /// `n` more bytes were written.
    pub fn wrote(&mut self, n: usize) {
        if !self.on {
            return;
        }
        let (file, on) = (&self.file, &mut self.on);
        self.windows.wrote(n, |a| {
            let (Advice::Write(at) | Advice::Drop(at)) = a;
            advise(file, on, at, WINDOW);
        });
    }

    /// The file is finished (rotated away): its writeback starts, and
    /// whatever of it is clean is dropped.
    pub fn finish(mut self) {
        let (at, len) = self.windows.written();
        if self.on && len > 0 {
            advise(&self.file, &mut self.on, at, len);
        }
    }
}

/// `POSIX_FADV_DONTNEED` for `len` bytes of `file` at `at`, while `on`;
/// an error turns it off.
fn advise(file: &File, on: &mut bool, at: u64, len: u64) {
    if !*on {
        return;
    }
    let (Ok(at), Ok(len)) = (i64::try_from(at), i64::try_from(len)) else {
        *on = false;
        return;
    };
    // SAFETY: a hint about a descriptor `file` owns
    let e = unsafe { libc::posix_fadvise(file.as_raw_fd(), at, len, libc::POSIX_FADV_DONTNEED) };
    if e != 0 {
        log::debug!(
            "posix_fadvise on the output: {} (its page cache is left to the kernel)",
            std::io::Error::from_raw_os_error(e)
        );
        *on = false;
    }
}

#[cfg(test)]
mod tests;
