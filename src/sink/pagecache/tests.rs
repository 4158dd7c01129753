// SPDX-License-Identifier: GPL-3.0-or-later
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

use super::*;
use crate::sink::{JsonlSink, Sink};

const W: u64 = WINDOW;

/// Everything advised for these writes, from `start`.
fn advised(start: u64, writes: impl IntoIterator<Item = usize>) -> Vec<Advice> {
    let mut w = Windows::new(start);
    let mut out = Vec::new();
    for n in writes {
        w.wrote(n, |a| out.push(a));
    }
    out
}

/// Write sizes of a JSON-lines sink: about a 256 KiB buffer at a time,
/// never the same (xorshift, fixed seed).
fn sizes(total: u64) -> Vec<usize> {
    let (mut x, mut left, mut v) = (0x9e37_79b9_7f4a_7c15u64, total, Vec::new());
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (200_000 + x % 120_000).min(left);
        v.push(n as usize);
        left -= n;
    }
    v
}

#[test]
fn nothing_is_advised_before_a_whole_window_is_written() {
    assert_eq!(advised(0, [W as usize - 1]), []);
    assert_eq!(advised(0, [W as usize - 1, 1]), [Advice::Write(0)]);
}

#[test]
fn every_window_is_written_back_then_dropped_lag_windows_later() {
    let total = 30 * W + W / 2;
    let got = advised(0, sizes(total));
    let mut want = Vec::new();
    for k in 0..30 {
        want.push(Advice::Write(k * W));
        if k >= LAG {
            want.push(Advice::Drop((k - LAG) * W));
        }
    }
    assert_eq!(got, want);
}

#[test]
fn one_write_of_many_windows_advises_each_of_them() {
    let got = advised(0, [(LAG + 3) as usize * W as usize]);
    assert_eq!(got.len() as u64, LAG + 3 + 3);
    assert_eq!(got.last(), Some(&Advice::Drop(2 * W)));
}

#[test]
fn a_file_written_from_an_offset_counts_its_windows_from_there() {
    // `osprey >> FILE`: the shell's file already held 12345 bytes
    let got = advised(12345, [(LAG as usize + 1) * W as usize]);
    assert_eq!(got.first(), Some(&Advice::Write(12345)));
    assert_eq!(got.last(), Some(&Advice::Drop(12345)));
    assert_eq!(Windows::new(12345).written(), (12345, 0));
}

#[test]
fn only_regular_files_are_followed() {
    let null = File::options().write(true).open("/dev/null").unwrap();
    assert!(Recycle::of(null.as_fd()).is_none());
}

/// A file of `prefix` bytes, and where a `Recycle` of it opened with
/// `opts` starts its windows.
fn start_of(name: &str, prefix: usize, opts: &std::fs::OpenOptions, seek_end: bool) -> u64 {
    use std::io::Seek;
    let d = disk_dir(name);
    let path = d.join("o.jsonl");
    std::fs::write(&path, vec![b'x'; prefix]).unwrap();
    let mut f = opts.open(&path).unwrap();
    if seek_end {
        f.seek(std::io::SeekFrom::End(0)).unwrap();
    }
    let r = Recycle::of(f.as_fd()).unwrap();
    std::fs::remove_dir_all(&d).unwrap();
    r.windows.written().0
}

#[test]
fn a_descriptor_handed_over_mid_file_counts_from_its_offset() {
    // `osprey 1<>FILE` after a seek, or stdout of a parent that wrote first
    let start = start_of(
        "pagecache-offset",
        3 * W as usize + 12345,
        File::options().write(true),
        true,
    );
    assert_eq!(start, 3 * W + 12345);
}

#[test]
fn an_append_descriptor_counts_from_the_end_of_the_file() {
    // `osprey >> FILE`: the offset of an O_APPEND descriptor says 0 until
    // its first write, which lands at the end; windows from 0 would drop
    // the file's earlier pages and never reach the new ones
    let start = start_of(
        "pagecache-append",
        3 * W as usize + 12345,
        File::options().append(true),
        false,
    );
    assert_eq!(start, 3 * W + 12345);
}

/// Pages of `path` in the page cache, per window (mincore on a mapping).
fn resident_per_window(path: &std::path::Path) -> Vec<f64> {
    let f = File::open(path).unwrap();
    let len = f.metadata().unwrap().len() as usize;
    let page = 4096;
    // SAFETY: a read-only shared mapping of a file this test owns, unmapped below
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    let mut v = vec![0u8; len.div_ceil(page)];
    // SAFETY: `v` has a byte for every page of the mapping
    assert_eq!(unsafe { libc::mincore(p, len, v.as_mut_ptr()) }, 0);
    // SAFETY: the mapping made above
    unsafe { libc::munmap(p, len) };
    v.chunks((W as usize) / page)
        .map(|c| c.iter().filter(|&&b| b & 1 == 1).count() as f64 / c.len() as f64)
        .collect()
}

/// A directory for files that must live on a disk file system (tmpfs
/// pages are the file: they never leave), beside the test binary.
fn disk_dir(name: &str) -> PathBuf {
    let d = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let c = std::ffi::CString::new(d.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statfs into a zeroed struct of its own type
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statfs(c.as_ptr(), &mut st) }, 0);
    assert_ne!(
        st.f_type,
        libc::TMPFS_MAGIC,
        "{} is on tmpfs, whose pages are the files themselves: these tests need the target \
         directory on a disk file system",
        d.display()
    );
    d
}

/// Lines of the sink: 1 KiB each.
fn fill(s: &mut JsonlSink<Box<dyn Write + Send>>, bytes: u64) {
    let line = [b"x".repeat(1023), b"\n".to_vec()].concat();
    let item = crate::sink::jsonl::tests::txn(200);
    for _ in 0..bytes / 1024 {
        s.emit_line(&item, &line).unwrap();
    }
    s.flush().unwrap();
}

#[test]
fn written_pages_leave_the_page_cache_lag_windows_behind_the_writer() {
    let d = disk_dir("pagecache-test");
    // the same writes through the sink with --drop-page-cache and without
    // it, each made clean (written back) half-way, then as many again
    let (ours, plain) = (d.join("sink.jsonl"), d.join("plain.jsonl"));
    let mut s = JsonlSink::open(Some(&ours), false, true).unwrap();
    let mut q = JsonlSink::open(Some(&plain), false, false).unwrap();
    let half = 12 * W;
    fill(&mut s, half);
    fill(&mut q, half);
    File::open(&ours).unwrap().sync_all().unwrap();
    File::open(&plain).unwrap().sync_all().unwrap();
    fill(&mut s, half);
    fill(&mut q, half);

    let (r, p) = (resident_per_window(&ours), resident_per_window(&plain));
    // 24 windows written; the second half's windows 12..=23 each asked to
    // drop the one LAG behind: 4..=15. Of those, 4..=11 were clean (the
    // sync) and must be gone; 12..=15 may still have been under writeback
    // (left to the kernel), and the first half's drops (0..=3) too
    assert!(
        r[4..=11].iter().all(|&x| x < 0.05),
        "windows 4..=11 should have left the page cache: {r:?}"
    );
    // the newest windows are still there (a reader keeping up finds them)
    assert!(
        r[r.len() - 4..].iter().all(|&x| x > 0.95),
        "the newest windows: {r:?}"
    );
    // and the file written the same way without the flag kept everything:
    // the drops are this code's, not the kernel's
    assert!(
        p[4..=11].iter().all(|&x| x > 0.95),
        "the plain file's windows: {p:?}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// Page residency per window of the rotated file and of the new one,
/// after the same writes as in the test below, with or without
/// `--drop-page-cache`.
fn rotated_then_new(name: &str, drop: bool) -> (Vec<f64>, Vec<f64>) {
    use crate::sink::rotate::{RotateConfig, RotatingFile};
    let d = disk_dir(name);
    let path = d.join("o.jsonl");
    let cfg = RotateConfig {
        max_bytes: Some(16 * W),
        interval: None,
        keep: 2,
    };
    let mut f = RotatingFile::create(&path, false, cfg).unwrap();
    if drop {
        f = f.dropping_page_cache();
    }
    let chunk = [vec![b'x'; 1023], b"\n".to_vec()].concat();
    let put = |f: &mut RotatingFile, bytes: u64| {
        for _ in 0..bytes / 1024 {
            f.write_all(&chunk).unwrap();
        }
    };
    // 12 MiB, written back, then 4 more: the file is full, and the next
    // line rotates it (finished: its clean pages dropped, all of them)
    put(&mut f, 12 * W);
    File::open(&path).unwrap().sync_all().unwrap();
    put(&mut f, 4 * W);
    put(&mut f, 1024);
    assert_eq!(f.rotations, 1);
    let old = resident_per_window(&d.join("o.jsonl.1"));
    assert_eq!(old.len(), 16);
    // the new file follows its own windows from its start
    // (10 + 5 MiB: under the limit; windows 10..=14 drop 2..=6, clean)
    put(&mut f, 10 * W);
    File::open(&path).unwrap().sync_all().unwrap();
    put(&mut f, 5 * W);
    assert_eq!(f.rotations, 1);
    let new = resident_per_window(&path);
    std::fs::remove_dir_all(&d).unwrap();
    (old, new)
}

#[test]
fn a_rotated_file_lets_go_of_its_pages_and_the_new_one_recycles_too() {
    let (old, new) = rotated_then_new("pagecache-rotate-test", true);
    assert!(
        old[..12].iter().all(|&x| x < 0.05),
        "the rotated file's clean windows: {old:?}"
    );
    assert!(
        new[2..=6].iter().all(|&x| x < 0.05),
        "the new file's windows: {new:?}"
    );
    assert!(
        new[new.len() - 3..].iter().all(|&x| x > 0.95),
        "the new file's newest windows: {new:?}"
    );
}

#[test]
fn without_the_flag_rotated_files_keep_their_pages() {
    let (old, new) = rotated_then_new("pagecache-rotate-control", false);
    assert!(
        old[..12].iter().all(|&x| x > 0.95),
        "the rotated file's windows: {old:?}"
    );
    assert!(
        new[2..=6].iter().all(|&x| x > 0.95),
        "the new file's windows (the rotation must not turn the flag on): {new:?}"
    );
}
