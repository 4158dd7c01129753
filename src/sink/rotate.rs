// SPDX-License-Identifier: GPL-3.0-or-later
//! `-o FILE` for long runs: the file is rotated by size (`--rotate-size`)
//! and time (`--rotate-interval`), keeping at most `--rotate-keep` files in
//! all (FILE, FILE.1 the newest rotated one, … FILE.N-1), so a probe left
//! running for weeks cannot fill a disk.
//!
//! Rotation happens only between records: [`RotatingFile`] is the writer
//! under a [`super::JsonlSink`], which hands it whole lines; it writes the
//! whole lines that still fit and rotates before the next one. A single
//! record longer than the size limit gets a file of its own (the only way a
//! file exceeds the limit). Every file is created as [`create_private`]
//! creates `-o FILE`: mode 0600, `O_EXCL`, never through a symbolic link
//! unless `--force`.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::create_private;
use super::pagecache::Recycle;

/// When to rotate and how many files to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotateConfig {
    /// Rotate before a record that would take the file past this size.
    pub max_bytes: Option<u64>,
    /// Rotate before the first record written this long after the file
    /// was opened.
    pub interval: Option<Duration>,
    /// Files kept in all, the one being written included (at least 1).
    pub keep: usize,
}

/// Smallest `--rotate-size` (a few records).
pub const MIN_ROTATE_BYTES: u64 = 4096;

impl RotateConfig {
    pub fn active(&self) -> bool {
        self.max_bytes.is_some() || self.interval.is_some()
    }
}

/// The writer of `-o FILE` with rotation (see the module documentation).
pub struct RotatingFile {
    path: PathBuf,
    force: bool,
    cfg: RotateConfig,
    file: File,
    size: u64,
    opened: Instant,
    /// The last byte written was not a newline (a short write cut a line):
    /// no rotation until the line is whole.
    mid_line: bool,
    /// Rotations done.
    pub rotations: u64,
    /// `--drop-page-cache`: the current file's written pages, let go of
    /// behind the writer (`pagecache.rs`), and every later file's.
    recycle: Option<Recycle>,
    drop_cache: bool,
}

impl RotatingFile {
    pub fn create(path: &Path, force: bool, cfg: RotateConfig) -> io::Result<Self> {
        if cfg.keep == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--rotate-keep: at least 1",
            ));
        }
        let file = create_private(path, force)?;
        Ok(RotatingFile {
            path: path.to_path_buf(),
            force,
            cfg,
            file,
            size: 0,
            opened: Instant::now(),
            mid_line: false,
            rotations: 0,
            recycle: None,
            drop_cache: false,
        })
    }

    /// `--drop-page-cache` (see `pagecache.rs`).
    pub fn dropping_page_cache(mut self) -> Self {
        self.drop_cache = true;
        self.recycle = Recycle::of(self.file.as_fd());
        self
    }

    /// FILE.i
    fn numbered(&self, i: usize) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{i}"));
        PathBuf::from(s)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.cfg.keep > 1 {
            // the oldest goes, the others move up one; `rename` replaces a
            // link planted at a destination, never writes through it
            match std::fs::remove_file(self.numbered(self.cfg.keep - 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            for i in (1..self.cfg.keep - 1).rev() {
                match std::fs::rename(self.numbered(i), self.numbered(i + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, self.numbered(1))?;
        }
        if let Some(r) = self.recycle.take() {
            r.finish();
        }
        // keep 1: the file starts again (truncated)
        self.file = create_private(&self.path, self.force)?;
        if self.drop_cache {
            self.recycle = Recycle::of(self.file.as_fd());
        }
        self.size = 0;
        self.opened = Instant::now();
        self.rotations += 1;
        Ok(())
    }

    fn due_by_time(&self) -> bool {
        self.cfg
            .interval
            .is_some_and(|d| self.opened.elapsed() >= d)
    }
}

impl Write for RotatingFile {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if b.is_empty() {
            return Ok(0);
        }
        if !self.mid_line && self.size > 0 && self.due_by_time() {
            self.rotate()?;
        }
        let mut take = b.len();
        if let Some(max) = self.cfg.max_bytes {
            let room = max.saturating_sub(self.size) as usize;
            if b.len() > room {
                // whole lines that fit (the rest of a cut line always fits:
                // the file had room for all of it)
                let fit = memchr::memrchr(b'\n', &b[..room.min(b.len())]).map_or(0, |i| i + 1);
                take = if fit > 0 {
                    fit
                } else if self.mid_line {
                    // finish the line a short write cut, whatever the size
                    memchr::memchr(b'\n', b).map_or(b.len(), |i| i + 1)
                } else if self.size > 0 {
                    self.rotate()?;
                    return self.write(b);
                } else {
                    // one record longer than the limit: a file of its own
                    memchr::memchr(b'\n', b).map_or(b.len(), |i| i + 1)
                };
            }
        }
        let n = self.file.write(&b[..take])?;
        if let Some(r) = self.recycle.as_mut() {
            r.wrote(n);
        }
        if n > 0 {
            self.size += n as u64;
            self.mid_line = b[n - 1] != b'\n';
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// `--rotate-size`: bytes, or with a K, M, G suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mul) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: a size in bytes, e.g. 100M, 512K, 1G or 1048576"))?;
    n.checked_mul(mul)
        .ok_or_else(|| format!("{s:?}: too large"))
}

/// `--rotate-interval` and other durations: seconds, or with an s, m, h, d
/// suffix.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, mul) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1u64),
        Some((i, 'm')) => (&t[..i], 60),
        Some((i, 'h')) => (&t[..i], 3600),
        Some((i, 'd')) => (&t[..i], 86400),
        _ => (t, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: a duration, e.g. 30s, 15m, 1h, 1d or 3600"))?;
    if n == 0 {
        return Err(format!("{s:?}: must be more than 0"));
    }
    n.checked_mul(mul)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?}: too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::jsonl::tests::txn;
    use crate::sink::{JsonlSink, Sink};

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("osprey-rotate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn files(d: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn size_rotation_keeps_at_most_n_files_none_over_the_limit_no_line_split() {
        let d = dir("size");
        let p = d.join("out.jsonl");
        let cfg = RotateConfig {
            max_bytes: Some(8192),
            interval: None,
            keep: 3,
        };
        let w = RotatingFile::create(&p, false, cfg).unwrap();
        let mut s = JsonlSink::new(w);
        let n = 300;
        for i in 0..n {
            s.emit(&txn(i)).unwrap();
            if i % 7 == 0 {
                s.flush().unwrap();
            }
        }
        s.flush().unwrap();
        let fs = files(&d);
        assert_eq!(
            fs.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
            ["out.jsonl", "out.jsonl.1", "out.jsonl.2"]
        );
        let mut statuses = Vec::new();
        for (name, bytes) in &fs {
            assert!(bytes.len() <= 8192, "{name}: {} bytes", bytes.len());
            assert!(bytes.ends_with(b"\n"), "{name} ends inside a record");
            for l in bytes.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(l).expect("a whole record");
                statuses.push(v["status"].as_u64().unwrap());
            }
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(d.join(name)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{name}");
        }
        // the newest records are kept, contiguous, up to the last one
        statuses.sort();
        assert_eq!(*statuses.last().unwrap(), n as u64 - 1);
        assert!(statuses.windows(2).all(|w| w[1] == w[0] + 1));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_record_longer_than_the_limit_gets_a_file_of_its_own() {
        let d = dir("long");
        let p = d.join("o");
        let mut w = RotatingFile::create(
            &p,
            false,
            RotateConfig {
                max_bytes: Some(10),
                interval: None,
                keep: 5,
            },
        )
        .unwrap();
        w.write_all(b"abc\nlonger than ten\nxy\n").unwrap();
        let fs = files(&d);
        let got: Vec<&[u8]> = fs.iter().map(|f| f.1.as_slice()).collect();
        assert_eq!(got, [&b"xy\n"[..], b"longer than ten\n", b"abc\n"]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_short_write_is_finished_before_rotating() {
        let d = dir("short");
        let p = d.join("o");
        let mut w = RotatingFile::create(
            &p,
            false,
            RotateConfig {
                max_bytes: Some(6),
                interval: Some(Duration::from_nanos(1)),
                keep: 9,
            },
        )
        .unwrap();
        // a writer returning after part of a line: the rest follows it
        let n = w.write(b"ab").unwrap();
        assert_eq!(n, 2);
        w.write_all(b"cd\nef\n").unwrap();
        let fs = files(&d);
        let got: Vec<&[u8]> = fs.iter().map(|f| f.1.as_slice()).collect();
        assert_eq!(got, [&b"ef\n"[..], b"abcd\n"]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn time_rotation_and_keep_one() {
        let d = dir("time");
        let p = d.join("o");
        let mut w = RotatingFile::create(
            &p,
            false,
            RotateConfig {
                max_bytes: None,
                interval: Some(Duration::from_nanos(1)),
                keep: 1,
            },
        )
        .unwrap();
        w.write_all(b"1\n").unwrap();
        w.write_all(b"2\n").unwrap();
        assert_eq!(files(&d), [("o".to_string(), b"2\n".to_vec())]);
        assert_eq!(w.rotations, 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_symlink_planted_at_the_path_is_refused_at_rotation() {
        let d = dir("link");
        let p = d.join("o");
        let mut w = RotatingFile::create(
            &p,
            false,
            RotateConfig {
                max_bytes: Some(4),
                interval: None,
                keep: 1,
            },
        )
        .unwrap();
        w.write_all(b"abc\n").unwrap();
        std::fs::remove_file(&p).unwrap();
        std::fs::write(d.join("target"), "keep").unwrap();
        std::os::unix::fs::symlink(d.join("target"), &p).unwrap();
        let e = w.write_all(b"def\n").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(d.join("target")).unwrap(), "keep");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999999G").is_err());
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("h").is_err());
    }
}
