// SPDX-License-Identifier: GPL-3.0-or-later
//! Output sinks. The writer thread owns one `Sink`; JSON lines first.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use crate::output::Output;
use crate::record::Record;

/// Where records go. Implementations must not write anything but records.
pub trait Sink: Send {
    fn emit(&mut self, item: &Output) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

/// One JSON object per line. Lines are built straight in the output
/// buffer, which goes to the writer once it holds `BUF` bytes (or on flush).
pub struct JsonlSink<W: Write + Send> {
    out: W,
    buf: Vec<u8>,
}

const BUF: usize = 256 * 1024;

impl<W: Write + Send> JsonlSink<W> {
    pub fn new(w: W) -> Self {
        JsonlSink {
            out: w,
            buf: Vec::with_capacity(BUF + 4096),
        }
    }

    fn drain(&mut self) -> io::Result<()> {
        let r = self.out.write_all(&self.buf);
        // on an error the lines are dropped (and counted by the caller),
        // not retried: the buffer must not grow without bound
        self.buf.clear();
        r
    }
}

impl JsonlSink<Box<dyn Write + Send>> {
    /// stdout when `path` is None or "-", else the file (created/truncated
    /// by [`create_private`]; `force`: follow a symlink).
    pub fn open(path: Option<&Path>, force: bool) -> io::Result<Self> {
        let w: Box<dyn Write + Send> = match path {
            None => Box::new(io::stdout()),
            Some(p) if p.as_os_str() == "-" => Box::new(io::stdout()),
            Some(p) => Box::new(create_private(p, force)?),
        };
        Ok(JsonlSink::new(w))
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
        let start = self.buf.len();
        match item {
            // the hot path: same bytes as serde_json, written directly
            Output::Record(Record::Transaction(t)) => {
                crate::jsonline::write_transaction(t, &mut self.buf)
            }
            _ => {
                if let Err(e) = serde_json::to_writer(&mut self.buf, item) {
                    self.buf.truncate(start); // no half line
                    return Err(io::Error::other(e));
                }
            }
        }
        self.buf.push(b'\n');
        if self.buf.len() >= BUF {
            self.drain()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.drain()?;
        }
        self.out.flush()
    }
}

/// Collects records in memory (tests).
#[derive(Default)]
pub struct VecSink(pub std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Sink for VecSink {
    fn emit(&mut self, item: &Output) -> io::Result<()> {
        let s = serde_json::to_string(item).map_err(io::Error::other)?;
        self.0.lock().unwrap().push(s);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer the test can look into, or one that always fails.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>, bool);

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

    fn txn(i: u16) -> Output {
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
        s.emit(&txn(1)).unwrap();
        assert!(s.flush().is_err());
        assert!(s.buf.is_empty());
    }
}
