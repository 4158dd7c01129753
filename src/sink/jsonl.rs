// SPDX-License-Identifier: GPL-3.0-or-later
//! The JSON-lines sink: stdout, a file, or rotating files (`rotate.rs`).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::Path;

use super::pagecache::Recycle;
use super::{Sink, SinkLoss};
use crate::jsonline::RecordFormat;
use crate::output::Output;
use crate::record::Record;

/// One JSON object per line. Lines are built straight in the output
/// buffer, which goes to the writer once it holds `BUF` bytes (or on flush).
///
/// After the first write error (a full disk, a closed pipe) nothing more is
/// written: the output ends with whole records, except for a record the
/// error cut, which is removed when the output is a regular file (truncated
/// back to its last newline) and counted otherwise ([`Sink::loss`]).
pub struct JsonlSink<W: Write + Send> {
    out: W,
    buf: Vec<u8>,
    /// Lines in `buf`.
    lines: u64,
    /// The output file, when it is a regular one (to cut a partial line).
    file: Option<File>,
    written: u64,
    failed: Option<SinkLoss>,
    first_err: Option<(io::ErrorKind, String)>,
    /// The fields of transaction lines (`--record-format`).
    format: RecordFormat,
    /// `--drop-page-cache` and the output is a regular file: its written
    /// pages leave the page cache behind it (`pagecache.rs`).
    recycle: Option<Recycle>,
}

const BUF: usize = 256 * 1024;

impl<W: Write + Send> JsonlSink<W> {
    pub fn new(w: W) -> Self {
        JsonlSink {
            out: w,
            buf: Vec::with_capacity(BUF + 4096),
            lines: 0,
            file: None,
            written: 0,
            failed: None,
            first_err: None,
            format: RecordFormat::Full,
            recycle: None,
        }
    }

    /// Transactions written in `format` (other records are not changed).
    pub fn with_format(mut self, format: RecordFormat) -> Self {
        self.format = format;
        self
    }

    /// The error every write returns once one failed.
    fn stopped(&self) -> io::Error {
        let (kind, msg) = self
            .first_err
            .clone()
            .unwrap_or((io::ErrorKind::Other, String::new()));
        io::Error::new(kind, format!("{msg} (no record written after it)"))
    }

    fn drain(&mut self) -> io::Result<()> {
        if self.failed.is_some() {
            let n = self.lines;
            if let Some(l) = self.failed.as_mut() {
                l.lost += n;
            }
            self.lines = 0;
            self.buf.clear();
            return Err(self.stopped());
        }
        let mut done = 0;
        let r = loop {
            if done == self.buf.len() {
                break Ok(());
            }
            match self.out.write(&self.buf[done..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if let Some(r) = self.recycle.as_mut() {
            r.wrote(done);
        }
        // the buffer holds `lines` whole lines: all of them went out unless
        // the write stopped part-way (then count the ones that did)
        let whole = if done == self.buf.len() {
            self.lines
        } else {
            memchr::memchr_iter(b'\n', &self.buf[..done]).count() as u64
        };
        self.written += whole;
        if let Err(e) = &r {
            // the lines are dropped, not retried (the buffer must not grow
            // without bound), and nothing is written after them
            let cut = done - memchr::memrchr(b'\n', &self.buf[..done]).map_or(0, |i| i + 1);
            let cut_removed = cut > 0 && self.remove_tail(cut as u64);
            self.failed = Some(SinkLoss {
                written: self.written,
                lost: self.lines - whole,
                cut_bytes: if cut_removed { 0 } else { cut as u64 },
                cut_removed,
            });
            self.first_err = Some((e.kind(), e.to_string()));
        }
        self.lines = 0;
        self.buf.clear();
        r
    }

    /// Cut the last `n` bytes off the output file (a partial line).
    fn remove_tail(&mut self, n: u64) -> bool {
        let Some(f) = &self.file else { return false };
        match f.metadata() {
            Ok(m) if m.len() >= n => f.set_len(m.len() - n).is_ok(),
            _ => false,
        }
    }
}

impl JsonlSink<Box<dyn Write + Send>> {
    /// stdout when `path` is None or "-", else the file (created/truncated
    /// by [`create_private`]; `force`: follow a symlink). `drop_cache`
    /// (`--drop-page-cache`): either one, when it is a regular file, lets
    /// go of its written pages (`pagecache.rs`).
    pub fn open(path: Option<&Path>, force: bool, drop_cache: bool) -> io::Result<Self> {
        match path {
            Some(p) if p.as_os_str() != "-" => {
                let f = create_private(p, force)?;
                let file = f
                    .metadata()
                    .is_ok_and(|m| m.is_file())
                    .then(|| f.try_clone().ok())
                    .flatten();
                let mut s = JsonlSink::new(Box::new(f) as Box<dyn Write + Send>);
                if drop_cache {
                    s.recycle = file.as_ref().and_then(|f| Recycle::of(f.as_fd()));
                }
                s.file = file;
                Ok(s)
            }
            _ => {
                let mut s = JsonlSink::new(Box::new(io::stdout()) as Box<dyn Write + Send>);
                if drop_cache {
                    // `osprey > FILE`: the shell's file
                    s.recycle = Recycle::of(io::stdout().as_fd());
                }
                Ok(s)
            }
        }
    }
}

/// Opens `path` for writing, truncated, like `File::create`, but a file it
/// creates is mode 0600 whatever the umask: records hold payloads and
/// headers. An existing file keeps its mode (it may be a FIFO, a device,
/// or a file made readable on purpose); one that others can read is
/// warned about.
///
/// An existing `path` that is a symbolic link is refused (an error naming
/// it) unless `force`: Osprey runs as root, and a link planted where it
/// writes would make it truncate and overwrite the link's target. The
/// check is the open itself (`O_CREAT|O_EXCL`, then `O_NOFOLLOW`), not a
/// look before it, so a link swapped in between cannot win. Only the last
/// component of the path is checked (as with `O_NOFOLLOW`).
pub fn create_private(path: &Path, force: bool) -> io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut o = std::fs::OpenOptions::new();
    o.write(true).mode(0o600);
    match o.clone().create_new(true).open(path) {
        Ok(f) => {
            // the umask may have taken bits from 0600 (e.g. 0400)
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            Ok(f)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if !force {
                o.custom_flags(libc::O_NOFOLLOW);
            }
            let f = match o.truncate(true).open(path) {
                Ok(f) => f,
                Err(e) if !force && e.raw_os_error() == Some(libc::ELOOP) => {
                    // a link to a terminal, pipe or socket (`-o /dev/stdout`)
                    // cannot clobber a file's contents: opened without
                    // truncating, then checked on the descriptor itself
                    use std::os::unix::fs::FileTypeExt;
                    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(path) {
                        let t = f.metadata()?.file_type();
                        if t.is_char_device() || t.is_fifo() || t.is_socket() {
                            return Ok(f);
                        }
                    }
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!(
                            "{} is a symbolic link: refusing to write through it (remove it, or pass --force){}",
                            path.display(),
                            if path.starts_with("/dev") || path.starts_with("/proc") {
                                "; for standard output write -o -"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
                Err(e) => return Err(e),
            };
            let meta = f.metadata()?;
            if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
                log::warn!(
                    "{}: existing file with mode {:04o}: records (payloads, headers) written to it are readable \
                     by others; remove it or chmod 600 it first",
                    path.display(),
                    meta.permissions().mode() & 0o7777
                );
            }
            Ok(f)
        }
        Err(e) => Err(e),
    }
}

impl<W: Write + Send> Sink for JsonlSink<W> {
    fn emit(&mut self, item: &Output) -> io::Result<()> {
        if self.failed.is_some() {
            if let Some(l) = self.failed.as_mut() {
                l.lost += 1;
            }
            return Err(self.stopped());
        }
        let start = self.buf.len();
        match item {
            // the hot path: same bytes as serde_json, written directly
            Output::Record(Record::Transaction(t)) => {
                crate::jsonline::write_transaction_as(t, self.format, &mut self.buf)
            }
            _ => {
                if let Err(e) = serde_json::to_writer(&mut self.buf, item) {
                    self.buf.truncate(start); // no half line
                    return Err(io::Error::other(e));
                }
            }
        }
        self.buf.push(b'\n');
        self.lines += 1;
        if self.buf.len() >= BUF {
            self.drain()?;
        }
        Ok(())
    }
    fn emit_line(&mut self, _item: &Output, line: &[u8]) -> io::Result<()> {
        if self.failed.is_some() {
            if let Some(l) = self.failed.as_mut() {
                l.lost += 1;
            }
            return Err(self.stopped());
        }
        self.buf.extend_from_slice(line);
        self.lines += 1;
        if self.buf.len() >= BUF {
            self.drain()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() || self.failed.is_some() {
            self.drain()?;
        }
        self.out.flush()
    }
    fn loss(&self) -> Option<SinkLoss> {
        self.failed.clone()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer the test can look into, or one that always fails.
    #[derive(Clone, Default)]
    pub(crate) struct Shared(pub(crate) Arc<Mutex<Vec<u8>>>, pub(crate) bool);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.1 {
                return Err(io::Error::other("disk full"));
            }
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A transaction record with status `i`.
    pub(crate) fn txn(i: u16) -> Output {
        let mut t = crate::jsonline::tests::base();
        t.status = Some(i);
        Output::Record(Record::Transaction(Box::new(t)))
    }

    #[test]
    fn created_files_are_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("osprey-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out.jsonl");
        let _ = std::fs::remove_file(&p);
        // SAFETY: umask only changes the mask of this process (the other
        // tests create no files whose mode they check)
        let old = unsafe { libc::umask(0) };
        let f = create_private(&p, false);
        unsafe { libc::umask(old) };
        drop(f.unwrap());
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        // an existing file is truncated, its mode kept
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        drop(create_private(&p, false).unwrap());
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.len(), m.permissions().mode() & 0o7777), (0, 0o640));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_is_refused_unless_forced() {
        let dir = std::env::temp_dir().join(format!("osprey-sink-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, "keep me").unwrap();
        let link = dir.join("out.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = create_private(&link, false).unwrap_err();
        assert!(
            e.to_string().contains("out.jsonl is a symbolic link"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        // forced: written through the link
        drop(create_private(&link, true).unwrap());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_to_a_terminal_pipe_or_device_is_written_through() {
        // `-o /dev/stdout` is a link to /proc/self/fd/1: a stream, not a file to clobber
        let dir = std::env::temp_dir().join(format!("osprey-sink-devlink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("out.jsonl");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let mut f = create_private(&link, false).expect("a link to a character device is allowed");
        f.write_all(b"{}\n").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_dangling_symlink_is_refused_not_followed() {
        let dir = std::env::temp_dir().join(format!("osprey-sink-dangling-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("created-through-link");
        let link = dir.join("out.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = create_private(&link, false).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert!(!target.exists(), "the link was followed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lines_are_buffered_until_flush_and_equal_serde_json() {
        let w = Shared::default();
        let mut s = JsonlSink::new(w.clone());
        for i in 0..3 {
            s.emit(&txn(i)).unwrap();
        }
        assert!(
            w.0.lock().unwrap().is_empty(),
            "written before the buffer filled or a flush"
        );
        s.flush().unwrap();
        let out = String::from_utf8(w.0.lock().unwrap().clone()).unwrap();
        let want: String = (0..3)
            .map(|i| serde_json::to_string(&txn(i)).unwrap() + "\n")
            .collect();
        assert_eq!(out, want);
    }

    #[test]
    fn a_full_buffer_goes_out_without_a_flush() {
        let w = Shared::default();
        let mut s = JsonlSink::new(w.clone());
        let line = serde_json::to_string(&txn(1)).unwrap().len() + 1;
        let n = BUF / line + 1;
        for _ in 0..n {
            s.emit(&txn(1)).unwrap();
        }
        assert_eq!(w.0.lock().unwrap().len(), n * line);
    }

    #[test]
    fn a_failing_writer_is_reported_and_does_not_grow_the_buffer() {
        let mut s = JsonlSink::new(Shared(Arc::default(), true));
        let errors = (0..2 * BUF / 1000)
            .filter(|_| s.emit(&txn(1)).is_err())
            .count();
        assert!(errors >= 1, "write errors not reported");
        assert!(s.buf.len() < BUF, "buffer kept what it could not write");
        // once failed, records are refused (and counted), not buffered
        assert!(s.emit(&txn(1)).is_err());
        assert!(s.flush().is_err());
        assert!(s.buf.is_empty());
        assert_eq!(s.loss().unwrap().lost, 2 * BUF as u64 / 1000 + 1);
    }

    /// Accepts `limit` bytes, then fails like a full disk (the last write
    /// partly succeeding, as write(2) does).
    struct Limited<W: Write>(W, usize);

    impl<W: Write> Write for Limited<W> {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.1 == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = self.0.write(&b[..b.len().min(self.1)])?;
            self.1 -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.0.flush()
        }
    }

    #[test]
    fn a_write_error_mid_line_is_counted_and_nothing_is_written_after_it() {
        let w = Shared::default();
        let line = serde_json::to_string(&txn(1)).unwrap().len() + 1;
        let mut s = JsonlSink::new(Limited(w.clone(), line + line / 2));
        for _ in 0..5 {
            s.emit(&txn(1)).unwrap();
        }
        let e = s.flush().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        let want = SinkLoss {
            written: 1,
            lost: 4,
            cut_bytes: (line / 2) as u64,
            cut_removed: false,
        };
        assert_eq!(s.loss(), Some(want.clone()));
        assert!(want
            .to_string()
            .contains(&format!("ends with {} bytes of a cut record", line / 2)));
        // later records are refused and counted, never appended after the cut
        assert!(s.emit(&txn(2)).is_err());
        assert!(s.flush().is_err());
        assert_eq!(s.loss().unwrap().lost, 5);
        assert_eq!(w.0.lock().unwrap().len(), line + line / 2);
    }

    #[test]
    fn a_record_cut_by_a_full_disk_is_removed_from_the_file() {
        let dir = std::env::temp_dir().join(format!("osprey-sink-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out.jsonl");
        let f = create_private(&p, false).unwrap();
        let line = serde_json::to_string(&txn(1)).unwrap().len() + 1;
        let mut s = JsonlSink::new(Limited(f.try_clone().unwrap(), 2 * line + 10));
        s.file = Some(f);
        for _ in 0..4 {
            s.emit(&txn(1)).unwrap();
        }
        assert!(s.flush().is_err());
        let l = s.loss().unwrap();
        assert_eq!(
            (l.written, l.lost, l.cut_bytes, l.cut_removed),
            (2, 2, 0, true)
        );
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.len(), 2 * line);
        assert!(text.ends_with('\n'));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
