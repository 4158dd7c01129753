// SPDX-License-Identifier: GPL-3.0-or-later
//! The on-disk spool of the ClickHouse sink (`--clickhouse-spool DIR`):
//! batches that could not be delivered and no longer fit the in-memory
//! queue, one file each (`<seq>.jsonl`, mode 0600, written to a temporary
//! name and renamed, so a crash never leaves half a batch to replay),
//! replayed oldest first when ClickHouse answers again, also by the next
//! run. Bounded by `--clickhouse-spool-max` bytes: a batch that does not
//! fit is refused (the caller counts its rows as dropped).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    bytes: u64,
    rows: u64,
    /// Oldest first: (sequence number, bytes, rows).
    files: VecDeque<(u64, u64, u64)>,
    next: u64,
}

fn rows_in(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

impl Spool {
    /// Open (or create, mode 0700) `dir` and take up what a previous run
    /// left in it.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let meta = std::fs::symlink_metadata(dir)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a directory", dir.display()),
            ));
        }
        let mut files = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if let Some(seq) = name
                .strip_suffix(".jsonl")
                .and_then(|s| s.parse::<u64>().ok())
            {
                let m = e.metadata()?;
                if m.is_file() {
                    let rows = rows_in(&std::fs::read(e.path())?);
                    files.push((seq, m.len(), rows));
                }
            } else if name.starts_with(".tmp-") {
                // a batch a crash cut while it was written: never replayed
                let _ = std::fs::remove_file(e.path());
            }
        }
        files.sort();
        let next = files.last().map_or(0, |f| f.0 + 1);
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            bytes: files.iter().map(|f| f.1).sum(),
            rows: files.iter().map(|f| f.2).sum(),
            files: files.into(),
            next,
        })
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.jsonl"))
    }

    /// Keep `body` (`rows` JSON lines). Err(StorageFull-like) when it does
    /// not fit under the bound; nothing is written then.
    pub fn put(&mut self, body: &[u8], rows: u64) -> io::Result<()> {
        let len = body.len() as u64;
        if self.bytes + len > self.max_bytes {
            return Err(io::Error::other(format!(
                "spool {} full ({} of {} bytes)",
                self.dir.display(),
                self.bytes,
                self.max_bytes
            )));
        }
        let seq = self.next;
        let tmp = self.dir.join(format!(".tmp-{seq:020}"));
        let mut f = super::super::create_private(&tmp, false)?;
        let r = f.write_all(body).and_then(|_| f.flush());
        if let Err(e) = r {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, self.path(seq))?;
        self.next += 1;
        self.bytes += len;
        self.rows += rows;
        self.files.push_back((seq, len, rows));
        Ok(())
    }

    /// The oldest batch: its bytes and rows.
    pub fn oldest(&self) -> io::Result<Option<(Vec<u8>, u64)>> {
        match self.files.front() {
            None => Ok(None),
            Some(&(seq, _, rows)) => Ok(Some((std::fs::read(self.path(seq))?, rows))),
        }
    }

    /// The oldest batch was delivered (or dropped): forget it.
    pub fn remove_oldest(&mut self) -> io::Result<()> {
        if let Some((seq, len, rows)) = self.files.pop_front() {
            self.bytes -= len;
            self.rows -= rows;
            match std::fs::remove_file(self.path(seq)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_replay_bound_and_reopen() {
        let d = std::env::temp_dir().join(format!("osprey-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mut s = Spool::open(&d, 20).unwrap();
        s.put(b"{\"a\":1}\n", 1).unwrap();
        s.put(b"{\"b\":2}\n", 1).unwrap();
        assert!(s.put(b"{\"c\":3}\n", 1).is_err(), "past the bound");
        assert_eq!((s.rows(), s.bytes()), (2, 16));
        // a temporary file left by a crash is removed, never replayed
        std::fs::write(d.join(".tmp-00000000000000000009"), "{\"cut").unwrap();
        drop(s);
        let mut s = Spool::open(&d, 20).unwrap();
        assert_eq!(s.rows(), 2);
        assert!(!d.join(".tmp-00000000000000000009").exists());
        assert_eq!(s.oldest().unwrap().unwrap(), (b"{\"a\":1}\n".to_vec(), 1));
        s.remove_oldest().unwrap();
        s.put(b"{\"c\":3}\n", 1).unwrap();
        assert_eq!(s.oldest().unwrap().unwrap().0, b"{\"b\":2}\n");
        s.remove_oldest().unwrap();
        assert_eq!(s.oldest().unwrap().unwrap().0, b"{\"c\":3}\n");
        use std::os::unix::fs::PermissionsExt;
        let f = std::fs::read_dir(&d).unwrap().next().unwrap().unwrap();
        assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        s.remove_oldest().unwrap();
        assert!(s.is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
