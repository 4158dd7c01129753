// SPDX-License-Identifier: GPL-3.0-or-later
//! Thin loader: open → configure (rodata, map sizes) → load → fill the
//! allowlist → attach, each step checked; then poll the ring buffer and hand
//! decoded events to the pipeline until asked to stop.

use std::ffi::OsStr;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, PrintLevel, RingBufferBuilder};

use crate::abi;
use crate::decode;
use crate::pipeline::Pipeline;
use crate::tracefs;

#[allow(clippy::all, dead_code, non_camel_case_types, non_snake_case, unused_imports)]
pub(crate) mod skel {
    include!(concat!(env!("OUT_DIR"), "/osprey.skel.rs"));
}
#[allow(clippy::all, dead_code, non_camel_case_types, non_snake_case, unused_imports)]
pub(crate) mod skel_nobtf {
    include!(concat!(env!("OUT_DIR"), "/osprey_nobtf.skel.rs"));
}
use skel::*;
use skel_nobtf::OspreyNobtfSkelBuilder;

/// Which program set is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtfMode {
    /// CO-RE against /sys/kernel/btf/vmlinux.
    Kernel,
    /// CO-RE against a BTF file given with --btf.
    File(PathBuf),
    /// No BTF anywhere: the fallback program set without CO-RE.
    None,
}

/// Generation numbers user space gives connections it seeds (fallback
/// mode); far above anything the kernel's counter reaches.
const USER_GEN_BASE: u64 = 1 << 62;

pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Where the probe hooks the kernel (`--hooks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hooks {
    /// Socket hooks where the kernel has them, else syscall hooks.
    #[default]
    Auto,
    /// `sock:sock_send_length`/`sock_recv_length`, `sock:inet_sock_set_state`
    /// and `tcp:tcp_destroy_sock` as BTF tracepoints (kernel BTF, 6.3+): the
    /// bytes of socket I/O only,
    /// no program on other syscalls and no syscall tracepoint, so every task
    /// keeps the fast syscall path.
    Socket,
    /// `syscalls:sys_enter_*`/`sys_exit_*` of the data, connect, accept and
    /// close syscalls (any supported kernel; the BTF-less fallback).
    Syscalls,
}

impl Hooks {
    pub fn as_str(self) -> &'static str {
        match self {
            Hooks::Auto => "auto",
            Hooks::Socket => "socket",
            Hooks::Syscalls => "syscalls",
        }
    }

    /// For logs: "socket hooks", "syscall hooks".
    pub fn label(self) -> &'static str {
        match self {
            Hooks::Auto => "auto hooks",
            Hooks::Socket => "socket hooks",
            Hooks::Syscalls => "syscall hooks",
        }
    }
}

/// The socket-layer tracepoints the socket hooks need, by tracefs name.
pub const SOCKET_TRACEPOINTS: [&str; 4] =
    ["sock/sock_send_length", "sock/sock_recv_length", "sock/inet_sock_set_state", "tcp/tcp_destroy_sock"];

/// Why the socket hooks cannot run here (None: they can).
pub fn socket_hooks_unavailable(mode: &BtfMode, tracefs: &Path) -> Option<String> {
    let missing: Vec<&str> =
        SOCKET_TRACEPOINTS.iter().copied().filter(|tp| !tracefs.join("events").join(tp).is_dir()).collect();
    if *mode != BtfMode::Kernel {
        Some(format!("they attach through the kernel's own BTF ({KERNEL_BTF})"))
    } else if !missing.is_empty() {
        Some(format!("this kernel has no {} tracepoint (added in 6.3)", missing.join(", ").replace('/', ":")))
    } else {
        None
    }
}

/// Which hooks `wanted` resolves to on this kernel, or why it cannot.
pub fn resolve_hooks(wanted: Hooks, mode: &BtfMode, tracefs: &Path) -> Result<Hooks> {
    let why_not = socket_hooks_unavailable(mode, tracefs);
    match (wanted, why_not) {
        (Hooks::Syscalls, _) => Ok(Hooks::Syscalls),
        (_, None) => Ok(Hooks::Socket),
        (Hooks::Auto, Some(why)) => {
            log::info!("socket hooks unavailable ({why}): using the syscall tracepoints");
            Ok(Hooks::Syscalls)
        }
        (Hooks::Socket, Some(why)) => bail!("--hooks socket: not available here: {why}; use --hooks syscalls"),
    }
}

/// What the user asked of the probe.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub pids: Vec<u32>,
    pub comms: Vec<String>,
    pub capture_bytes: u32,
    /// Sent iovecs after the first larger than this: only their first
    /// `abi::IOV_PEEK` bytes are captured.
    pub iov_whole: u32,
    pub ringbuf_bytes: u32,
    /// Wake the reader once this many bytes are pending (0: every record).
    pub wakeup_bytes: u64,
    /// Also at least this many records (unless a quarter of the ring waits).
    pub wakeup_records: u32,
    /// Poll timeout; bounds how long a record waits without a wakeup.
    pub poll_interval: Duration,
    pub btf: Option<PathBuf>,
    pub hooks: Hooks,
    pub verbose: bool,
    /// Log counters every this often (None: never).
    pub progress: Option<Duration>,
}

/// Kernel counters at the end of a run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct KernelCounters {
    pub events: u64,
    pub ringbuf_drops: u64,
    pub ringbuf_drop_bytes: u64,
    pub read_errors: u64,
    pub stash_full: u64,
    pub conn_table_full: u64,
    pub truncated_bytes: u64,
    pub iov_overflow: u64,
    /// Records lost because every per-CPU scratch slot was in use.
    pub scratch_busy: u64,
    /// Program runs the kernel skipped (another BPF program was active on
    /// that CPU; `recursion_misses`, kernels 6.7+ count it for tracepoints).
    pub prog_misses: u64,
    /// Fallback mode: connections dropped in user space as not TCP.
    pub non_tcp_dropped: u64,
    /// Fallback mode: connections whose addresses could not be resolved.
    pub addr_unresolved: u64,
    /// The hook set that ran: "socket" or "syscalls".
    pub hooks: &'static str,
}

impl KernelCounters {
    fn from_array(c: &[u64; 9]) -> Self {
        KernelCounters {
            events: c[0],
            ringbuf_drops: c[1],
            ringbuf_drop_bytes: c[2],
            read_errors: c[3],
            stash_full: c[4],
            conn_table_full: c[5],
            truncated_bytes: c[6],
            iov_overflow: c[7],
            scratch_busy: c[8],
            ..Default::default()
        }
    }
}

// libbpf's messages: kept for error reports, forwarded to the log under -v.
static LIBBPF_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn libbpf_print(level: PrintLevel, msg: String) {
    let msg = msg.trim_end().to_string();
    match level {
        PrintLevel::Debug => log::trace!("libbpf: {msg}"),
        PrintLevel::Info => log::debug!("libbpf: {msg}"),
        PrintLevel::Warn => log::debug!("libbpf: {msg}"),
    }
    if let Ok(mut v) = LIBBPF_LOG.lock() {
        if v.len() > 20_000 {
            v.drain(..10_000);
        }
        v.push(msg);
    }
}

fn libbpf_log_tail(n: usize) -> String {
    let v = LIBBPF_LOG.lock().map(|v| v.clone()).unwrap_or_default();
    let start = v.len().saturating_sub(n);
    v[start..].join("\n")
}

fn is_root() -> bool {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Checks that do not need the BPF object: privileges, BTF, tracefs.
pub fn preflight(cfg: &ProbeConfig) -> Result<(PathBuf, BtfMode)> {
    if !is_root() {
        bail!(
            "permission denied: loading BPF programs needs root (or CAP_BPF + CAP_PERFMON); \
             run `sudo osprey ...`, or `osprey --synthetic` to try the output path without BPF"
        );
    }
    let mode = match &cfg.btf {
        Some(p) if !p.is_file() => bail!("--btf {}: no such file", p.display()),
        Some(p) => BtfMode::File(p.clone()),
        None if !Path::new(KERNEL_BTF).exists() => BtfMode::None,
        None => BtfMode::Kernel,
    };
    let tracefs = tracefs::ensure_mounted()?;
    if mode == BtfMode::None {
        // the fallback relies on the tracepoint layout alone: check it
        let bad: Vec<String> = tracefs::verify_layouts(&tracefs)
            .into_iter()
            .filter_map(|(tp, r)| r.err().map(|e| format!("{tp}: {e}")))
            .collect();
        if !bad.is_empty() {
            bail!(
                "no kernel BTF ({KERNEL_BTF} missing) and the syscall tracepoints do not have the layout \
                 the BTF-less fallback needs:\n  {}\npass --btf FILE with this kernel's BTF",
                bad.join("\n  ")
            );
        }
        log::warn!(
            "no kernel BTF at {KERNEL_BTF}: running the BTF-less fallback. Lost: connections older than \
             the probe are found only by a /proc scan at start-up, addresses come from /proc socket tables \
             (missing for connections closed before they are looked up), accept() on non-TCP stream \
             sockets is filtered in user space, and conn ids carry no process start time. \
             Pass --btf FILE to get everything back."
        );
    }
    Ok((tracefs, mode))
}

fn explain_load_error(e: &libbpf_rs::Error, verbose: bool) -> anyhow::Error {
    let tail = libbpf_log_tail(if verbose { 400 } else { 12 });
    let hint = if verbose { String::new() } else { "\n(rerun with -v for the full verifier log)".into() };
    let perm = matches!(e.kind(), libbpf_rs::ErrorKind::PermissionDenied);
    let rel = crate::check::kernel_release();
    if tail.contains("BPF_STX uses reserved fields") || tail.contains("unknown opcode") {
        return anyhow!(
            "loading the BPF programs failed: this kernel ({rel}) lacks BPF atomic fetch-and-add/cmpxchg \
             (Linux 5.12+); Osprey supports kernels 5.15 and newer\nlibbpf said:\n{tail}{hint}"
        );
    }
    if tail.contains("map 'stash': failed to create") {
        return anyhow!(
            "loading the BPF programs failed: this kernel ({rel}) cannot create task-local storage for tracing \
             programs (Linux 5.11+); Osprey supports kernels 5.15 and newer\nlibbpf said:\n{tail}{hint}"
        );
    }
    if crate::check::kernel_version(&rel).is_some_and(|v| v < (5, 15)) {
        return anyhow!(
            "loading the BPF programs failed: {e}; this kernel ({rel}) is older than 5.15, the oldest \
             Osprey supports\nlibbpf said:\n{tail}{hint}"
        );
    }
    if perm {
        anyhow!("loading the BPF programs was refused ({e}): run as root with CAP_BPF/CAP_SYS_ADMIN\n{tail}")
    } else {
        anyhow!("loading the BPF programs failed: {e}\nlibbpf said:\n{tail}{hint}")
    }
}

fn comm_key(c: &str) -> Result<[u8; abi::COMM_LEN]> {
    let b = c.as_bytes();
    if b.is_empty() {
        bail!("--comm: empty name");
    }
    if b.len() >= abi::COMM_LEN {
        log::warn!("--comm {c}: the kernel keeps only 15 bytes of a command name; matching {:?}", &c[..15.min(c.len())]);
    }
    let mut k = [0u8; abi::COMM_LEN];
    let n = b.len().min(abi::COMM_LEN - 1);
    k[..n].copy_from_slice(&b[..n]);
    Ok(k)
}

/// Sum of `recursion_misses` over the given program fds: runs the kernel
/// skipped because a BPF program was already active on that CPU (possible
/// when a program is preempted, on PREEMPT_FULL/LAZY kernels).
fn prog_misses(fds: impl Iterator<Item = std::os::fd::RawFd>) -> u64 {
    let mut total = 0;
    for fd in fds {
        // SAFETY: zeroed bpf_prog_info is a valid out-parameter; len matches.
        let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
        if rc == 0 {
            total += info.recursion_misses;
        }
    }
    total
}

/// Read the kernel counters (`counters[]` in the mmap'ed .bss).
fn read_counters(counters: Option<&[u64; 9]>) -> KernelCounters {
    match counters {
        Some(src) => {
            let mut c = [0u64; 9];
            for (i, slot) in c.iter_mut().enumerate() {
                // SAFETY: the .bss map is mmap'ed and updated by the kernel
                // concurrently; a volatile read of an aligned u64 is atomic.
                *slot = unsafe { std::ptr::read_volatile(&src[i]) };
            }
            KernelCounters::from_array(&c)
        }
        None => KernelCounters::default(),
    }
}

/// Load, attach, and pump events into `pipeline` until `stop` is set.
pub fn run(cfg: &ProbeConfig, pipeline: &Pipeline, stop: &AtomicBool) -> Result<KernelCounters> {
    let (tracefs, mode) = preflight(cfg)?;
    let hooks = resolve_hooks(cfg.hooks, &mode, &tracefs)?;
    libbpf_rs::set_print(Some((PrintLevel::Debug, libbpf_print)));
    match mode {
        BtfMode::None => run_skel!(OspreyNobtfSkelBuilder, cfg, pipeline, stop, None::<&Path>, true, hooks),
        BtfMode::File(p) => run_skel!(OspreySkelBuilder, cfg, pipeline, stop, Some(p.as_path()), false, hooks),
        BtfMode::Kernel => run_skel!(OspreySkelBuilder, cfg, pipeline, stop, None::<&Path>, false, hooks),
    }
}

/// One body for both program sets (their skeletons have the same shape).
macro_rules! run_skel {
    ($builder:ty, $cfg:expr, $pipeline:expr, $stop:expr, $btf:expr, $fallback:expr, $hooks:expr) => {{
        let hooks: Hooks = $hooks;
        let cfg: &ProbeConfig = $cfg;
        let pipeline: &Pipeline = $pipeline;
        let stop: &AtomicBool = $stop;
        let fallback: bool = $fallback;

        // open
        let mut builder = <$builder>::default();
        if let Some(btf) = $btf {
            builder.obj_builder.btf_custom_path(btf).context("--btf")?;
        }
        let mut storage = MaybeUninit::uninit();
        let mut open = builder.open(&mut storage).map_err(|e| explain_load_error(&e, cfg.verbose))?;

        // configure
        let ro = open.maps.rodata_data.as_deref_mut().ok_or_else(|| anyhow!("BPF object has no .rodata"))?;
        ro.cfg.self_tgid = std::process::id();
        ro.cfg.filter_pids = u8::from(!cfg.pids.is_empty());
        ro.cfg.filter_comms = u8::from(!cfg.comms.is_empty());
        // short allowlists are compared in line; longer ones go to the maps
        if cfg.pids.len() <= abi::INLINE_FILTER {
            ro.cfg.n_inline_pids = cfg.pids.len() as u32;
            ro.cfg.inline_pids[..cfg.pids.len()].copy_from_slice(&cfg.pids);
        }
        if cfg.comms.len() <= abi::INLINE_FILTER {
            ro.cfg.n_inline_comms = cfg.comms.len() as u32;
            for (slot, c) in ro.cfg.inline_comms.iter_mut().zip(&cfg.comms) {
                let key = comm_key(c)?;
                slot[0] = u64::from_ne_bytes(key[..8].try_into().unwrap());
                slot[1] = u64::from_ne_bytes(key[8..].try_into().unwrap());
            }
        }
        ro.cfg.capture_bytes = cfg.capture_bytes.min(abi::MAX_PAYLOAD as u32);
        ro.cfg.iov_whole = cfg.iov_whole;
        // the threshold is per CPU; one near the ring size would only wake
        // the reader once the ring is already full: keep all CPUs' together
        // at most a quarter of it
        let cpus = libbpf_rs::num_possible_cpus().context("counting the possible CPUs")?;
        let quarter = cfg.ringbuf_bytes as u64 / 4;
        ro.cfg.wakeup_max_bytes = (quarter / cpus as u64).max(1024).min(quarter);
        ro.cfg.wakeup_bytes = cfg.wakeup_bytes.min(ro.cfg.wakeup_max_bytes);
        ro.cfg.wakeup_records = cfg.wakeup_records;
        open.maps
            .events
            .set_max_entries(cfg.ringbuf_bytes)
            .with_context(|| format!("--ringbuf-size {}", cfg.ringbuf_bytes))?;
        // OSPREY_SCRATCH_SLOTS record-building slots per possible CPU
        open.maps
            .scratch
            .set_max_entries((cpus * abi::SCRATCH_SLOTS) as u32)
            .context("sizing the scratch map")?;
        // one hook set: tp_btf/ programs are the socket hooks
        for mut prog in open.open_object_mut().progs_mut() {
            let socket = prog.section().to_string_lossy().starts_with("tp_btf/");
            prog.set_autoload(socket == (hooks == Hooks::Socket));
        }

        // load
        let skel = open.load().map_err(|e| explain_load_error(&e, cfg.verbose))?;
        log::debug!(
            "BPF programs loaded and verified ({}, {})",
            if fallback { "BTF-less fallback" } else { "CO-RE" },
            hooks.label()
        );

        // allowlist, before anything is attached
        for pid in &cfg.pids {
            skel.maps.allowed_pids.update(&pid.to_ne_bytes(), &[1], MapFlags::ANY).context("--pid: filling allowlist")?;
        }
        for c in &cfg.comms {
            skel.maps.allowed_comms.update(&comm_key(c)?, &[1], MapFlags::ANY).context("--comm: filling allowlist")?;
        }
        // fallback: the kernel cannot find pre-existing sockets; seed them
        if fallback {
            let seeded = seed_existing_connections(cfg, pipeline, |key, val| {
                skel.maps.conns.update(key, val, MapFlags::NO_EXIST).is_ok()
            });
            log::info!("BTF-less fallback: seeded {seeded} established TCP connections from /proc");
        }

        // attach, one program at a time so a failure names its tracepoint
        let mut links: Vec<Link> = Vec::new();
        for prog in skel.object().progs_mut().filter(|p| p.autoload()) {
            let section = prog.section().to_string_lossy().into_owned();
            let tp = section.trim_start_matches("tracepoint/").trim_start_matches("tp_btf/").replace('/', ":");
            let link = prog.attach().map_err(|e| {
                anyhow!(
                    "attaching {} to tracepoint {tp} failed: {e}\n\
                     (is the tracepoint there? `osprey check` lists what this kernel has)",
                    prog.name().to_string_lossy()
                )
            })?;
            links.push(link);
        }
        log::info!(
            "attached {} tracepoints ({}); capturing {} bytes per event; ring buffer {} KiB",
            links.len(),
            hooks.label(),
            cfg.capture_bytes,
            cfg.ringbuf_bytes / 1024
        );

        // poll
        let mut decode_errors = 0u64;
        let mut enrich = Enricher::new(fallback);
        let batch = std::cell::RefCell::new(pipeline.batcher());
        let mut rbb = RingBufferBuilder::new();
        rbb.add(&skel.maps.events, |data: &[u8]| {
            let res = decode::decode_each(data, |ev, payload| {
                if let Some(ev) = enrich.event(ev, |key| {
                    let _ = skel.maps.conns.delete(key);
                }) {
                    batch.borrow_mut().push_parts(ev, payload)
                }
            });
            match res {
                Ok(()) => {}
                Err(e) => {
                    decode_errors += 1;
                    if decode_errors <= 5 {
                        log::warn!("undecodable record: {e}");
                    }
                }
            }
            0
        })?;
        let rb = rbb.build()?;
        let mut last_progress = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if !pipeline.healthy() {
                log::info!("output closed or failing: stopping");
                break;
            }
            if let Err(e) = rb.poll(cfg.poll_interval) {
                if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                    return Err(e).context("polling the ring buffer");
                }
            }
            // records written with BPF_RB_NO_WAKEUP wait for us here
            rb.consume().ok();
            batch.borrow_mut().flush();
            if let Some(every) = cfg.progress {
                if last_progress.elapsed() >= every {
                    last_progress = Instant::now();
                    let k = read_counters(skel.maps.bss_data.as_deref().map(|b| &b.counters));
                    let p = pipeline.stats();
                    log::info!(
                        "progress: kernel events {} drops {} | decoded {} records {}",
                        k.events,
                        k.ringbuf_drops,
                        p.events,
                        p.records
                    );
                }
            }
        }

        // detach first, then drain what is left
        drop(links);
        rb.consume().ok();
        drop(rb);
        batch.borrow_mut().flush();
        let mut counters = read_counters(skel.maps.bss_data.as_deref().map(|b| &b.counters));
        counters.prog_misses = prog_misses(skel.object().progs().filter(|p| p.autoload()).map(|p| {
            use std::os::fd::{AsFd, AsRawFd};
            p.as_fd().as_raw_fd()
        }));
        counters.non_tcp_dropped = enrich.non_tcp;
        counters.addr_unresolved = enrich.unresolved;
        counters.hooks = hooks.as_str();
        pipeline.add_decode_errors(decode_errors);
        Ok(counters)
    }};
}
use run_skel;

/// Bytes of `struct conn_key { __u32 tgid; __s32 fd; }`, the `conns` map key.
fn conn_key(tgid: u32, fd: i32) -> [u8; 8] {
    let mut key = [0u8; 8];
    key[..4].copy_from_slice(&tgid.to_ne_bytes());
    key[4..].copy_from_slice(&fd.to_ne_bytes());
    key
}

/// Fallback mode only: give OPEN records without addresses their addresses
/// from /proc, and drop connections that turn out not to be TCP.
struct Enricher {
    on: bool,
    resolver: crate::procnet::Resolver,
    not_tcp: std::collections::HashSet<crate::event::ConnId>,
    non_tcp: u64,
    unresolved: u64,
}

impl Enricher {
    fn new(on: bool) -> Self {
        Enricher { on, resolver: Default::default(), not_tcp: Default::default(), non_tcp: 0, unresolved: 0 }
    }

    fn event(&mut self, mut ev: crate::event::Event, forget: impl FnOnce(&[u8])) -> Option<crate::event::Event> {
        use crate::event::Event;
        use crate::procnet::Lookup;
        if !self.on {
            return Some(ev);
        }
        if !self.not_tcp.is_empty() && self.not_tcp.contains(ev.conn()) {
            if let Event::Close(c) = &ev {
                self.not_tcp.remove(&c.conn);
            }
            return None;
        }
        if let Event::Open(o) = &mut ev {
            if o.addrs.is_none() {
                let res = self.resolver.lookup(o.conn.tgid, o.conn.fd);
                log::debug!("fallback: {}/{} fd {} resolved as {res:?}", o.proc.comm, o.conn.tgid, o.conn.fd);
                match res {
                    Lookup::Tcp(a) => o.addrs = Some(a),
                    Lookup::NotTcp => {
                        self.non_tcp += 1;
                        self.not_tcp.insert(o.conn);
                        forget(&conn_key(o.conn.tgid, o.conn.fd));
                        return None;
                    }
                    Lookup::Gone => self.unresolved += 1,
                }
            }
        }
        Some(ev)
    }
}

/// Fallback mode: find established TCP connections of the traced processes
/// in /proc, register them in the kernel's `conns` map (so their data is
/// captured) and announce them as mid-stream OPEN events. Returns how many.
fn seed_existing_connections(cfg: &ProbeConfig, pipeline: &Pipeline, mut insert: impl FnMut(&[u8], &[u8]) -> bool) -> u64 {
    use crate::event::{ConnId, ConnOpen, Event, ProcInfo, Role, Syscall};
    use crate::procnet;
    let me = std::process::id();
    let now = crate::clock::mono_now_ns();
    let mut n = 0u64;
    for pid in procnet::pids() {
        if pid == me {
            continue;
        }
        let comm = procnet::comm(pid).unwrap_or_default();
        let allowed = (cfg.pids.is_empty() && cfg.comms.is_empty())
            || cfg.pids.contains(&pid)
            || cfg.comms.iter().any(|c| c.as_bytes()[..c.len().min(15)] == comm.as_bytes()[..comm.len().min(15)]);
        if !allowed {
            continue;
        }
        let socks = procnet::process_sockets(pid);
        if socks.is_empty() {
            continue;
        }
        let table = procnet::tcp_table(pid);
        for (fd, ino) in socks {
            let Some(e) = table.get(&ino) else { continue };
            if e.state != procnet::TCP_ESTABLISHED {
                continue;
            }
            let generation = USER_GEN_BASE + n;
            let key = conn_key(pid, fd);
            let val = skel_nobtf::types::conn_state { r#gen: generation, ..Default::default() };
            // SAFETY: conn_state is a repr(C) POD generated from the object's BTF.
            let bytes = unsafe {
                std::slice::from_raw_parts(&val as *const _ as *const u8, std::mem::size_of_val(&val))
            };
            if !insert(&key, bytes) {
                continue;
            }
            n += 1;
            pipeline.submit(Event::Open(ConnOpen {
                ts_ns: now,
                conn: ConnId { tgid: pid, proc_start_ns: 0, fd, gen: generation },
                proc: ProcInfo { tgid: pid, tid: pid, comm: comm.clone() },
                role: Role::Unknown,
                addrs: Some(e.addrs),
                midstream: true,
                syscall: Syscall::Unknown,
            }));
        }
    }
    n
}

/// Names of the programs in the object with their sections (for `check`).
pub fn program_sections() -> Result<Vec<(String, String)>> {
    let builder = OspreySkelBuilder::default();
    let mut storage = MaybeUninit::uninit();
    let open = builder.open(&mut storage).context("opening the embedded BPF object")?;
    Ok(open
        .open_object()
        .progs()
        .map(|p| (p.name().to_string_lossy().into_owned(), OsStr::to_string_lossy(p.section()).into_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// A fake tracefs with these event directories.
    fn fake_tracefs(name: &str, events: &[&str]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("osprey-hooks-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for e in events {
            std::fs::create_dir_all(d.join("events").join(e)).unwrap();
        }
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn hooks_resolve_to_socket_only_where_they_can_run() {
        let all = fake_tracefs("all", &SOCKET_TRACEPOINTS);
        let old = fake_tracefs("old", &SOCKET_TRACEPOINTS[2..]); // a 6.1-like kernel
        let k = BtfMode::Kernel;
        let file = BtfMode::File("/x".into());
        assert_eq!(resolve_hooks(Hooks::Auto, &k, &all).unwrap(), Hooks::Socket);
        assert_eq!(resolve_hooks(Hooks::Socket, &k, &all).unwrap(), Hooks::Socket);
        assert_eq!(resolve_hooks(Hooks::Syscalls, &k, &all).unwrap(), Hooks::Syscalls);
        // auto falls back; an explicit request is refused with the reason
        for (mode, dir, why) in [
            (&k, &old, "this kernel has no sock:sock_send_length, sock:sock_recv_length tracepoint"),
            (&file, &all, "kernel's own BTF"),
            (&BtfMode::None, &all, "kernel's own BTF"),
        ] {
            assert_eq!(resolve_hooks(Hooks::Auto, mode, dir).unwrap(), Hooks::Syscalls);
            assert_eq!(resolve_hooks(Hooks::Syscalls, mode, dir).unwrap(), Hooks::Syscalls);
            let e = resolve_hooks(Hooks::Socket, mode, dir).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("--hooks syscalls"), "{e}");
        }
        for d in [all, old] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    // ABI: the Rust mirror (src/abi.rs) must match the C layout the compiled
    // object carries in its BTF (the skeleton's generated types).
    #[test]
    fn abi_layouts_match_c() {
        use skel::types as c;
        assert_eq!(size_of::<abi::Hdr>(), size_of::<c::osprey_hdr>());
        assert_eq!(size_of::<c::osprey_hdr>(), 64, "include/osprey.h documents a 64-byte header");
        assert_eq!(offset_of!(abi::Hdr, kind), offset_of!(c::osprey_hdr, kind));
        assert_eq!(offset_of!(abi::Hdr, syscall), offset_of!(c::osprey_hdr, syscall));
        assert_eq!(offset_of!(abi::Hdr, tgid), offset_of!(c::osprey_hdr, tgid));
        assert_eq!(offset_of!(abi::Hdr, tid), offset_of!(c::osprey_hdr, tid));
        assert_eq!(offset_of!(abi::Hdr, ts_ns), offset_of!(c::osprey_hdr, ts_ns));
        assert_eq!(offset_of!(abi::Hdr, comm), offset_of!(c::osprey_hdr, comm));
        assert_eq!(offset_of!(abi::Hdr, conn), offset_of!(c::osprey_hdr, conn));
        assert_eq!(size_of::<abi::ConnIdRaw>(), size_of::<c::osprey_conn_id>());
        assert_eq!(offset_of!(abi::ConnIdRaw, fd), offset_of!(c::osprey_conn_id, fd));
        assert_eq!(offset_of!(abi::ConnIdRaw, proc_start_ns), offset_of!(c::osprey_conn_id, proc_start_ns));
        assert_eq!(offset_of!(abi::ConnIdRaw, gen), offset_of!(c::osprey_conn_id, gen));
        assert_eq!(size_of::<abi::Addrs>(), size_of::<c::osprey_addrs>());
        assert_eq!(offset_of!(abi::Addrs, lport), offset_of!(c::osprey_addrs, lport));
        assert_eq!(offset_of!(abi::Addrs, rport), offset_of!(c::osprey_addrs, rport));
        assert_eq!(offset_of!(abi::Addrs, laddr), offset_of!(c::osprey_addrs, laddr));
        assert_eq!(offset_of!(abi::Addrs, raddr), offset_of!(c::osprey_addrs, raddr));
        assert_eq!(size_of::<abi::OpenRaw>(), size_of::<c::osprey_open_event>());
        assert_eq!(offset_of!(abi::OpenRaw, addrs), offset_of!(c::osprey_open_event, addrs));
        assert_eq!(size_of::<abi::CloseRaw>(), size_of::<c::osprey_close_event>());
        assert_eq!(offset_of!(abi::CloseRaw, tx_bytes), offset_of!(c::osprey_close_event, tx_bytes));
        assert_eq!(offset_of!(abi::CloseRaw, rx_bytes), offset_of!(c::osprey_close_event, rx_bytes));
        assert_eq!(offset_of!(abi::DataHdrRaw, start_ns), offset_of!(c::osprey_data_event, start_ns));
        assert_eq!(offset_of!(abi::DataHdrRaw, pos), offset_of!(c::osprey_data_event, pos));
        assert_eq!(offset_of!(abi::DataHdrRaw, orig_len), offset_of!(c::osprey_data_event, orig_len));
        assert_eq!(offset_of!(abi::DataHdrRaw, cap_len), offset_of!(c::osprey_data_event, cap_len));
        assert_eq!(abi::DATA_HDR_SIZE, offset_of!(c::osprey_data_event, payload));
        assert_eq!(size_of::<c::osprey_data_event>(), abi::DATA_HDR_SIZE + abi::MAX_PAYLOAD);
        assert_eq!(size_of::<abi::SegmentsRaw>(), size_of::<c::osprey_segments>());
        assert_eq!(offset_of!(abi::SegmentsRaw, seg), offset_of!(c::osprey_segments, seg));
        assert_eq!(size_of::<abi::SegmentRaw>(), size_of::<c::osprey_segment>());
        assert_eq!(offset_of!(abi::SegmentRaw, cap_len), offset_of!(c::osprey_segment, cap_len));
        // counters[] in .bss: one slot per name
        // SAFETY: plain integers and byte arrays; all-zero is valid.
        let bss: c::bss = unsafe { std::mem::zeroed() };
        assert_eq!(bss.counters.len(), abi::COUNTER_NAMES.len());
    }
}
