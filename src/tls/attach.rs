// SPDX-License-Identifier: GPL-3.0-or-later
//! Attaching the TLS uprobes: once per library file (device and inode),
//! for every process (pid -1). Files are found in the usual library
//! directories at start, in `/proc/PID/maps` of the traced processes at
//! start and every [`RESCAN_EVERY`] (a library loaded later with dlopen),
//! and in the maps of processes the kernel reports as having exec'd
//! (`tls_execs`), looked at for [`EXEC_WATCH`] after the exec while the
//! dynamic loader maps their libraries. Dropping the [`Attacher`] detaches
//! everything.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use libbpf_rs::{Link, MapCore, Object, UprobeOpts};
use serde::Serialize;

use super::elf::{self, Verdict};
use super::{library_by_name, probes, procmaps, LIBRARY_DIRS};
use crate::event::TlsLibrary;

/// Full rescan of the traced processes' mappings.
pub const RESCAN_EVERY: Duration = Duration::from_secs(2);
/// How long after its exec a process's mappings are watched.
pub const EXEC_WATCH: Duration = Duration::from_millis(500);
/// Processes watched after exec at once (more: the periodic rescan).
const MAX_WATCHED: usize = 1024;
/// Executables larger than this are not read for a TLS library inside.
const MAX_EXE: u64 = 1 << 30;

/// What the TLS attacher did (summary, `-v`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct TlsStats {
    /// Library files with their uprobes attached.
    pub tls_libraries: u64,
    /// Uprobes attached in all.
    pub tls_uprobes: u64,
    /// Library files whose required functions could not be attached.
    pub tls_attach_failed: u64,
    /// Exec notifications handled.
    pub tls_execs: u64,
    /// Executables with a TLS library linked in but no symbols to probe
    /// it by (each named once in the log).
    pub tls_no_symbols: u64,
    /// Entries of `tls_sessions` (an `SSL*` never freed) and `tls_calls`
    /// (a thread that exited inside a TLS call) whose process or thread is
    /// gone, removed by the sweep every [`RESCAN_EVERY`].
    pub tls_swept: u64,
    /// Go executables using crypto/tls with their uprobes attached.
    pub tls_go_binaries: u64,
    /// Go executables using crypto/tls that cannot be probed (Go < 1.17,
    /// not x86-64, an unreadable function table; each named once in the log).
    pub tls_go_unsupported: u64,
}

enum FileState {
    /// Uprobes attached (dropped: detached).
    Attached {
        _links: Vec<Link>,
    },
    Failed,
    /// Nothing to attach (no TLS library inside, or no symbols).
    Skipped,
}

/// The process allowlist, for choosing whose mappings to read (the kernel
/// applies it again to every call).
#[derive(Clone, Debug, Default)]
pub struct Allow {
    pub pids: Vec<u32>,
    pub comms: Vec<String>,
}

impl Allow {
    fn allows(&self, pid: u32) -> bool {
        if self.pids.is_empty() && self.comms.is_empty() {
            return true;
        }
        if self.pids.contains(&pid) {
            return true;
        }
        let comm = crate::procnet::comm(pid).unwrap_or_default();
        self.comms
            .iter()
            .any(|c| c.as_bytes()[..c.len().min(15)] == comm.as_bytes()[..comm.len().min(15)])
    }
}

pub struct Attacher {
    files: HashMap<(u64, u64), FileState>,
    watched: Vec<(u32, Instant)>,
    last_full: Instant,
    allow: Allow,
    me: u32,
    pub stats: TlsStats,
}

impl Attacher {
    /// Looks at the library directories and every traced process now.
    pub fn start(obj: &Object, allow: Allow) -> Attacher {
        let mut a = Attacher {
            files: HashMap::new(),
            watched: Vec::new(),
            last_full: Instant::now(),
            allow,
            me: std::process::id(),
            stats: TlsStats::default(),
        };
        for dir in LIBRARY_DIRS {
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in rd.flatten() {
                let path = e.path();
                let Some(p) = path.to_str() else { continue };
                if let Some(lib) = library_by_name(p) {
                    a.consider(obj, p, lib);
                }
            }
        }
        a.scan_all(obj);
        log::info!(
            "TLS: uprobes on {} library files ({} uprobes){}",
            a.stats.tls_libraries,
            a.stats.tls_uprobes,
            if a.stats.tls_attach_failed > 0 {
                format!(", {} could not be attached", a.stats.tls_attach_failed)
            } else {
                String::new()
            }
        );
        a
    }

    /// Once per poll round: exec'd processes, watched ones, the periodic rescan.
    pub fn tick(&mut self, obj: &Object, execs: Option<&libbpf_rs::Map>) {
        if let Some(q) = execs {
            while let Some(pid) = pop_exec(q) {
                self.stats.tls_execs += 1;
                if self.watched.len() < MAX_WATCHED && !self.watched.iter().any(|w| w.0 == pid) {
                    self.watched.push((pid, Instant::now()));
                }
            }
        }
        if !self.watched.is_empty() {
            let now = Instant::now();
            let mut w = std::mem::take(&mut self.watched);
            w.retain(|(_, t)| now.duration_since(*t) < EXEC_WATCH);
            for (pid, _) in &w {
                self.scan_pid(obj, *pid);
            }
            self.watched = w;
        }
        if self.last_full.elapsed() >= RESCAN_EVERY {
            self.last_full = Instant::now();
            self.scan_all(obj);
            self.stats.tls_swept += sweep(obj);
        }
    }

    fn scan_all(&mut self, obj: &Object) {
        for pid in crate::procnet::pids() {
            if pid != self.me && self.allow.allows(pid) {
                self.scan_pid(obj, pid);
            }
        }
    }

    /// A TLS library inside `pid`'s executable (statically linked).
    fn scan_exe(&mut self, obj: &Object, pid: u32) {
        let Ok(link) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
            return;
        };
        let Some(link) = link.to_str().filter(|l| !l.ends_with(" (deleted)")) else {
            return;
        };
        let path = format!("/proc/{pid}/root{link}");
        let Ok(md) = std::fs::metadata(&path) else {
            return;
        };
        let key = (md.dev(), md.ino());
        if self.files.contains_key(&key) || !md.is_file() {
            return;
        }
        // once per file: executables are read whole (at most MAX_EXE)
        let data = (md.len() <= MAX_EXE)
            .then(|| std::fs::read(&path).ok())
            .flatten();
        if let Some(d) = &data {
            if self.consider_go(obj, &path, link, key, d) {
                return;
            }
        }
        let verdict = data.as_deref().map_or(Verdict::NotTls, elf::inspect);
        match verdict {
            Verdict::Defines(lib) => self.consider(obj, &path, lib),
            Verdict::NoSymbols(lib) => {
                log::warn!(
                    "TLS: {link} has {} linked in but no symbol table: its TLS is not captured \
                     (ciphertext only); a build with symbols (not stripped) can be",
                    lib.as_str()
                );
                self.stats.tls_no_symbols += 1;
                self.files.insert(key, FileState::Skipped);
            }
            Verdict::NotTls => {
                self.files.insert(key, FileState::Skipped);
            }
        }
    }

    /// The TLS libraries `pid` has mapped, and one in its executable.
    fn scan_pid(&mut self, obj: &Object, pid: u32) {
        self.scan_exe(obj, pid);
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
            return; // gone, or not ours to read
        };
        for m in procmaps::parse(&text) {
            let Some(lib) = library_by_name(&m.path) else {
                continue;
            };
            // seen through the process's root: its mount namespace
            let path = format!("/proc/{pid}/root{}", m.path);
            self.consider(obj, &path, lib);
        }
    }

    /// A Go executable using crypto/tls (src/tls/gobin.rs): its uprobes
    /// attached, or one log line and `tls_go_unsupported`. False: not Go TLS.
    fn consider_go(
        &mut self,
        obj: &Object,
        path: &str,
        shown: &str,
        key: (u64, u64),
        d: &[u8],
    ) -> bool {
        let state = match super::gobin::inspect(d) {
            super::gobin::GoVerdict::NotGoTls => return false,
            super::gobin::GoVerdict::Unsupported(why) => {
                log::warn!("TLS: {shown} is Go with crypto/tls but not captured: {why}");
                self.stats.tls_go_unsupported += 1;
                FileState::Skipped
            }
            super::gobin::GoVerdict::Supported(t) => match super::go::attach(obj, path, &t) {
                Ok(links) => {
                    log::info!(
                        "TLS: {} uprobes on {shown} (go, {}, symbols from {})",
                        links.len(),
                        t.version.as_deref().unwrap_or("version unknown"),
                        if t.from_pclntab {
                            ".gopclntab"
                        } else {
                            ".symtab"
                        }
                    );
                    self.stats.tls_go_binaries += 1;
                    self.stats.tls_uprobes += links.len() as u64;
                    FileState::Attached { _links: links }
                }
                Err(e) => {
                    log::warn!("TLS: not capturing Go binary {shown}: {e}");
                    self.stats.tls_attach_failed += 1;
                    FileState::Failed
                }
            },
        };
        self.files.insert(key, state);
        true
    }

    /// Attach `lib`'s uprobes to the file at `path` unless done already.
    fn consider(&mut self, obj: &Object, path: &str, lib: TlsLibrary) {
        let Ok(md) = std::fs::metadata(path) else {
            return;
        };
        let key = (md.dev(), md.ino());
        if self.files.contains_key(&key) || !md.is_file() {
            return;
        }
        let lib = refine(path, md.len(), lib);
        let state = match attach_file(obj, path, lib) {
            Ok(links) => {
                log::info!("TLS: {} uprobes on {path} ({})", links.len(), lib.as_str());
                self.stats.tls_libraries += 1;
                self.stats.tls_uprobes += links.len() as u64;
                FileState::Attached { _links: links }
            }
            Err(e) => {
                // one line per file, never again for it
                log::warn!("TLS: not capturing {path}: {e}");
                self.stats.tls_attach_failed += 1;
                FileState::Failed
            }
        };
        self.files.insert(key, state);
    }

    /// Library files with uprobes attached.
    pub fn attached(&self) -> usize {
        self.files
            .values()
            .filter(|f| matches!(f, FileState::Attached { .. }))
            .count()
    }
}

/// A shared `libssl.so*` found by its name is OpenSSL's unless its bytes
/// say BoringSSL (Android's and Chromium's shared builds keep the name).
fn refine(path: &str, size: u64, lib: TlsLibrary) -> TlsLibrary {
    if lib != TlsLibrary::OpenSsl || size > MAX_EXE {
        return lib;
    }
    match std::fs::read(path).map(|d| elf::linked_in(&d)) {
        Ok(Some(TlsLibrary::BoringSsl)) => TlsLibrary::BoringSsl,
        _ => lib,
    }
}

/// Remove the entries of exited processes (sessions) and threads (calls
/// in flight) from the TLS maps: the kernel cannot see a process's
/// sessions at its exit (they are keyed by `SSL*`). Returns how many.
fn sweep(obj: &Object) -> u64 {
    let mut gone = 0;
    // one stat per process, not per session
    let mut tgids: HashMap<u32, bool> = HashMap::new();
    for name in ["tls_sessions", "tls_calls"] {
        let Ok(m) = crate::bpf::loader::map(obj, name) else {
            continue;
        };
        let mut alive = |k: &[u8]| {
            if name == "tls_calls" {
                tid_alive(k)
            } else {
                let t = key_tgid(k);
                t == 0
                    || *tgids
                        .entry(t)
                        .or_insert_with(|| std::path::Path::new(&format!("/proc/{t}")).exists())
            }
        };
        // collected first: deleting while walking restarts a hash walk
        let dead: Vec<Vec<u8>> = m.keys().filter(|k| !alive(k)).collect();
        for k in dead {
            if m.delete(&k).is_ok() {
                gone += 1;
            }
        }
    }
    gone
}

/// `tls_sessions` key: {u32 tgid, pad, u64 ssl}; 0 (never a process:
/// kept) when short.
fn key_tgid(key: &[u8]) -> u32 {
    key.get(..4)
        .and_then(|t| t.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

/// `tls_calls` key: the u64 pid_tgid (tid low, tgid high).
fn tid_alive(key: &[u8]) -> bool {
    let Some(k) = key.get(..8) else { return true };
    let v = u64::from_ne_bytes(k.try_into().unwrap_or([0; 8]));
    let (tgid, tid) = (v >> 32, v & 0xffff_ffff);
    std::path::Path::new(&format!("/proc/{tgid}/task/{tid}")).exists()
}

/// One exec'd tgid from the kernel's queue.
fn pop_exec(q: &libbpf_rs::Map) -> Option<u32> {
    let mut v = 0u32;
    // SAFETY: a queue map has no key (NULL); `v` is the 4-byte value.
    let rc = unsafe {
        libbpf_sys::bpf_map_lookup_and_delete_elem(
            q.as_fd().as_raw_fd(),
            std::ptr::null(),
            (&mut v as *mut u32).cast(),
        )
    };
    (rc == 0).then_some(v)
}

/// Every probe of `lib` on `path`: the required ones must attach.
fn attach_file(obj: &Object, path: &str, lib: TlsLibrary) -> Result<Vec<Link>, String> {
    let mut links = Vec::new();
    for p in probes(lib) {
        let Some(prog) = obj.progs_mut().find(|x| x.name().to_str() == Some(p.prog)) else {
            return Err(format!("the BPF object has no program {}", p.prog));
        };
        let opts = UprobeOpts {
            retprobe: p.ret,
            func_name: Some(p.func.to_string()),
            ..Default::default()
        };
        match prog.attach_uprobe_with_opts(-1, path, 0, opts) {
            Ok(l) => links.push(l),
            Err(e) if p.required => {
                return Err(format!(
                    "{} {} failed: {e}",
                    if p.ret { "uretprobe on" } else { "uprobe on" },
                    p.func
                ))
            }
            Err(e) => log::debug!("TLS: {path}: no {} ({e})", p.func),
        }
    }
    Ok(links)
}

/// Whether a uprobe can be created here: one on the first byte of this
/// program's executable, through `perf_event_open` with the `uprobe` event
/// source, created disabled (never installed) and closed at once. An
/// error says why not.
pub fn uprobe_probe() -> Result<(), String> {
    let ty = std::fs::read_to_string("/sys/bus/event_source/devices/uprobe/type")
        .map_err(|_| "missing: no uprobe event source (CONFIG_UPROBE_EVENTS)".to_string())?;
    let ty: u32 = ty
        .trim()
        .parse()
        .map_err(|_| format!("uprobe event source type {ty:?} unreadable"))?;
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| format!("/proc/self/exe: {e}"))?;
    let path = std::ffi::CString::new(exe.as_os_str().as_encoded_bytes())
        .map_err(|_| "executable path has a NUL".to_string())?;
    // struct perf_event_attr up to config2 (PERF_ATTR_SIZE_VER1, 72 bytes)
    #[repr(C)]
    #[derive(Default)]
    struct Attr {
        ty: u32,
        size: u32,
        config: u64,
        sample_period: u64,
        sample_type: u64,
        read_format: u64,
        flags: u64,
        wakeup_events: u32,
        bp_type: u32,
        config1: u64,
        config2: u64,
    }
    let attr = Attr {
        ty,
        size: std::mem::size_of::<Attr>() as u32,
        flags: 1, // disabled
        config1: path.as_ptr() as u64,
        config2: 0,
        ..Default::default()
    };
    // SAFETY: perf_event_open(2) reads `attr` (valid, its size given) and
    // the path it points to (alive until the call returns).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const Attr,
            0,    // this process
            -1,   // any CPU
            -1,   // no group
            8u64, // PERF_FLAG_FD_CLOEXEC
        )
    };
    if fd < 0 {
        return Err(format!(
            "perf_event_open of a uprobe failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the fd was just opened here and is not used elsewhere.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

/// A TLS library file found by [`find_libraries`].
#[derive(Clone, Debug)]
pub struct FoundLib {
    /// Its path (as the processes see it).
    pub path: String,
    pub lib: TlsLibrary,
    /// How it is used: "mapped by N", "linked into N".
    pub how: String,
}

/// The TLS library files found now, one line per file: those in the
/// library directories (uprobes go on them at start) and those mapped by,
/// or linked into the executable of, the processes `allow` selects (every
/// process when it is empty); for `osprey check`.
pub fn find_libraries(allow: &Allow) -> Vec<FoundLib> {
    // (dev, ino) -> (shown path, library, processes mapping it, executables)
    let mut seen: HashMap<(u64, u64), (String, TlsLibrary, usize, usize)> = HashMap::new();
    let mut add = |path: &str, shown: &str, lib: TlsLibrary, mapped: usize, exe: usize| {
        if let Ok(md) = std::fs::metadata(path) {
            let e = seen
                .entry((md.dev(), md.ino()))
                .or_insert_with(|| (shown.to_string(), refine(path, md.len(), lib), 0, 0));
            e.2 += mapped;
            e.3 += exe;
        }
    };
    for dir in LIBRARY_DIRS {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if let Some(p) = e.path().to_str() {
                    if let Some(lib) = library_by_name(p) {
                        // libssl.so -> libssl.so.3: the file's own name
                        let real = std::fs::canonicalize(p).ok();
                        let shown = real.as_ref().and_then(|r| r.to_str()).unwrap_or(p);
                        add(p, shown, lib, 0, 0);
                    }
                }
            }
        }
    }
    let me = std::process::id();
    let selected = !allow.pids.is_empty() || !allow.comms.is_empty();
    for pid in crate::procnet::pids() {
        if pid == me || !allow.allows(pid) {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            for m in procmaps::parse(&text) {
                if let Some(lib) = library_by_name(&m.path) {
                    add(&format!("/proc/{pid}/root{}", m.path), &m.path, lib, 1, 0);
                }
            }
        }
        // statically linked: only for the processes asked about (an
        // executable is read whole)
        if !selected {
            continue;
        }
        let Ok(link) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
            continue;
        };
        let Some(link) = link.to_str() else { continue };
        let path = format!("/proc/{pid}/root{link}");
        let small = std::fs::metadata(&path).is_ok_and(|m| m.len() <= MAX_EXE);
        if let Some(Ok(data)) = small.then(|| std::fs::read(&path)) {
            match elf::inspect(&data) {
                Verdict::Defines(lib) => add(&path, link, lib, 0, 1),
                Verdict::NoSymbols(lib) => add(
                    &path,
                    &format!("{link} (no symbols: not capturable)"),
                    lib,
                    0,
                    1,
                ),
                Verdict::NotTls => {}
            }
        }
    }
    let mut v: Vec<FoundLib> = seen
        .into_values()
        .map(|(path, lib, mapped, exe)| FoundLib {
            path,
            lib,
            how: if exe > 0 {
                format!("linked into the executable of {exe}")
            } else {
                format!("mapped by {mapped}")
            },
        })
        .collect();
    v.sort_by(|a, b| a.path.cmp(&b.path));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_keys_name_live_and_gone_processes() {
        let me = std::process::id();
        // tls_sessions: {tgid, pad, SSL*}
        let mut k = me.to_ne_bytes().to_vec();
        k.extend([0u8; 12]);
        assert_eq!(key_tgid(&k), me);
        assert_eq!(key_tgid(&[1, 2]), 0, "short: kept");
        // tls_calls: pid_tgid (this thread is alive; tid 0x7fffffff is not)
        // SAFETY: gettid(2) takes no arguments.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u64;
        assert!(tid_alive(&((me as u64) << 32 | tid).to_ne_bytes()));
        assert!(!tid_alive(&((me as u64) << 32 | 0x7fff_fffe).to_ne_bytes()));
        assert!(tid_alive(&[0u8; 4]), "short: kept");
    }
}
