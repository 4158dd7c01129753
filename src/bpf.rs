// SPDX-License-Identifier: GPL-3.0-or-later
//! Thin loader: open → configure (rodata, map sizes) → load → fill the
//! allowlist → attach, each step checked; then poll the ring buffer and hand
//! decoded events to the pipeline until asked to stop.

use std::ffi::OsStr;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};

use crate::abi;
use crate::pipeline::Pipeline;

pub mod caps;
mod cgwatch;
mod enrich;
pub(crate) mod loader;
mod poll;
mod preflight;
pub mod sched;

pub use preflight::preflight;

#[allow(
    clippy::all,
    dead_code,
    non_camel_case_types,
    non_snake_case,
    unused_imports
)]
pub(crate) mod skel {
    include!(concat!(env!("OUT_DIR"), "/osprey.skel.rs"));
}
#[allow(
    clippy::all,
    dead_code,
    non_camel_case_types,
    non_snake_case,
    unused_imports
)]
pub(crate) mod skel_nobtf {
    include!(concat!(env!("OUT_DIR"), "/osprey_nobtf.skel.rs"));
}
#[allow(
    clippy::all,
    dead_code,
    non_camel_case_types,
    non_snake_case,
    unused_imports
)]
pub(crate) mod skel_btffile {
    include!(concat!(env!("OUT_DIR"), "/osprey_btffile.skel.rs"));
}

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

pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// `--btf FILE` must be what libbpf takes as BTF: raw BTF (magic 0xeB9F,
/// as `/sys/kernel/btf/vmlinux` or `bpftool btf dump ... format raw`
/// writes it) or an ELF file (a vmlinux with a `.BTF` section). Anything
/// else is refused here, before libbpf would fail with "Unknown error
/// 4001" (LIBBPF_ERRNO__FORMAT).
pub fn check_btf_file(path: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let mut n = 0;
    let mut f =
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("--btf {}: {e}", path.display()))?;
    if !f.metadata().map(|m| m.is_file()).unwrap_or(false) {
        anyhow::bail!("--btf {}: not a regular file", path.display());
    }
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => anyhow::bail!("--btf {}: {e}", path.display()),
        }
    }
    let raw_btf =
        n >= 8 && (head[..2] == [0x9f, 0xeb] || head[..2] == [0xeb, 0x9f]) && head[2] == 1;
    let elf = n >= 4 && head[..4] == *b"\x7fELF";
    if !raw_btf && !elf {
        anyhow::bail!(
            "--btf {}: not a BTF file (neither raw BTF, magic 0xeB9F, nor an ELF file with a .BTF section); \
             give this kernel's BTF, e.g. a copy of /sys/kernel/btf/vmlinux from the same kernel build",
            path.display()
        );
    }
    Ok(())
}

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
pub const SOCKET_TRACEPOINTS: [&str; 4] = [
    "sock/sock_send_length",
    "sock/sock_recv_length",
    "sock/inet_sock_set_state",
    "tcp/tcp_destroy_sock",
];

/// Why the socket hooks cannot run here (None: they can).
pub fn socket_hooks_unavailable(mode: &BtfMode, tracefs: &Path) -> Option<String> {
    let missing: Vec<&str> = SOCKET_TRACEPOINTS
        .iter()
        .copied()
        .filter(|tp| !tracefs.join("events").join(tp).is_dir())
        .collect();
    if *mode != BtfMode::Kernel {
        Some(format!(
            "they attach through the kernel's own BTF ({KERNEL_BTF})"
        ))
    } else if !missing.is_empty() {
        Some(format!(
            "this kernel has no {} tracepoint (added in 6.3)",
            missing.join(", ").replace('/', ":")
        ))
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
        (Hooks::Socket, Some(why)) => {
            bail!("--hooks socket: not available here: {why}; use --hooks syscalls")
        }
    }
}

/// What the user asked of the probe.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub pids: Vec<u32>,
    pub comms: Vec<String>,
    pub capture_bytes: u32,
    /// Bytes copied of one plain-buffer syscall in all (further records
    /// past `capture_bytes`); at most `capture_bytes` disables them.
    pub capture_max_per_call: u32,
    /// `--pid` follows the processes' descendants.
    pub follow_children: bool,
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
    /// Capture TLS plaintext with uprobes on the TLS libraries.
    pub tls: bool,
    pub verbose: bool,
    /// Log counters every this often (None: never).
    pub progress: Option<Duration>,
    /// Cgroup resolution (None: identity fields stay null, no cgroup
    /// filters).
    pub identity: Option<std::sync::Arc<crate::identity::Shared>>,
    /// Resolve the identity of every connection (else only the filters
    /// use `identity`).
    pub resolve_identity: bool,
    /// `--cgroup`, `--container`, `--pod`.
    pub cgroup_filter: crate::identity::filter::Selection,
    /// How often the cgroup filter is recomputed.
    pub cgroup_rescan: Duration,
    /// Body skips (`crate::skip`): the trackers' hints, written into the
    /// mmap'ed `skips` map (None: off, `--body-skip off`).
    pub body_skip: Option<std::sync::Arc<crate::skip::SkipHints>>,
    /// `--sched adaptive`: SCHED_IDLE while the ring has room, raised by a
    /// watchdog when it fills (`sched`).
    pub sched_adaptive: bool,
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
    /// Bytes no hook saw move on a traced connection, found by the TCP
    /// socket's own position and counted (a DATA record, nothing captured).
    pub unseen_bytes: u64,
    /// Further DATA records of one syscall: bytes past `--capture-bytes`
    /// copied, up to `--capture-max-per-call`.
    pub cont_records: u64,
    /// Descendants of the --pid processes added to the allowlist (forks
    /// seen by the probe).
    pub child_pids: u64,
    /// Descendants not followed: their table was full.
    pub child_pids_full: u64,
    /// MSG_PEEK reads skipped: they consume no bytes.
    pub peeks: u64,
    /// Program runs the kernel skipped (another BPF program was active on
    /// that CPU; `recursion_misses`, kernels 6.7+ count it for tracepoints).
    pub prog_misses: u64,
    /// Fallback mode: connections dropped in user space as not TCP (the
    /// kernel names another protocol for the socket).
    pub non_tcp_dropped: u64,
    /// Fallback mode: connections whose addresses could not be resolved
    /// (their fd closed before user space looked, or held another
    /// connection by then, or their TCP socket had left the kernel's
    /// tables — reset or closed, the fd still open): `null` addresses,
    /// never another socket's.
    pub addr_unresolved: u64,
    /// Fallback mode: of `addr_unresolved`, the fd already held another
    /// connection (closed and reused before the OPEN record was read).
    pub addr_fd_reused: u64,
    /// `--sched adaptive`: what its watchdog did; None when it did not run.
    pub sched_adaptive: Option<sched::SchedSummary>,
    /// The hook set that ran: "socket" or "syscalls".
    pub hooks: &'static str,
    /// What identity resolution could not do (None: it was off).
    pub identity: Option<crate::identity::IdentityStats>,
    /// TLS plaintext records written (bpf/tls_hooks.bpf.h).
    pub tls_records: u64,
    /// TLS calls that moved bytes on a session whose socket was never
    /// seen (no record).
    pub tls_no_conn: u64,
    /// TLS sessions (SSL*) seen on a new connection.
    pub tls_rebound: u64,
    /// TLS calls or sessions not tracked: their map was full.
    pub tls_table_full: u64,
    /// TLS calls that returned an error or no bytes.
    pub tls_failed: u64,
    /// Exec notifications lost (queue full; the periodic rescan remains).
    pub tls_exec_lost: u64,
    /// TLS calls of processes outside the allowlist (--pid/--comm/cgroups):
    /// the uprobes go on the library file, so they fire for every process
    /// using it; these are dropped at entry, nothing copied.
    pub tls_filtered: u64,
    /// Go crypto/tls returns whose entry was not seen (a call in flight
    /// when the uprobes were attached, or evicted): not recorded.
    pub tls_go_no_call: u64,
    /// Body bytes the kernel counted instead of copying, on user space's
    /// word that they were a body of known length (`osprey::skip`).
    pub skipped_body_bytes: u64,
    /// TLS uprobe runs dropped because they preempted runs of the same
    /// program on their CPU and found all its busy slots taken (the
    /// objects without kfuncs: bpf/compat.bpf.h); 0 with the kernel's
    /// BTF, where preemption is off around them instead.
    pub tls_reentry_dropped: u64,
    /// Not a count: the process (tgid) of the last TLS call counted in
    /// `tls_no_conn` (0: none), so that a user can tell whose sessions
    /// were never tied to a socket.
    pub tls_no_conn_pid: u64,
    /// What user space attached (libraries, uprobes, failures).
    #[serde(flatten)]
    pub tls: crate::tls::attach::TlsStats,
}

impl KernelCounters {
    fn from_array(c: &[u64; abi::COUNTER_NAMES.len()]) -> Self {
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
            unseen_bytes: c[9],
            cont_records: c[10],
            child_pids: c[11],
            child_pids_full: c[12],
            peeks: c[13],
            tls_records: c[14],
            tls_no_conn: c[15],
            tls_rebound: c[16],
            tls_table_full: c[17],
            tls_failed: c[18],
            tls_exec_lost: c[19],
            tls_filtered: c[20],
            tls_go_no_call: c[21],
            skipped_body_bytes: c[22],
            tls_reentry_dropped: c[23],
            tls_no_conn_pid: c[24],
            ..Default::default()
        }
    }
}

/// The allowlist key of a command name: its first 15 bytes, zero-padded.
pub(crate) fn comm_key(c: &str) -> Result<[u8; abi::COMM_LEN]> {
    let b = c.as_bytes();
    if b.is_empty() {
        bail!("--comm: empty name");
    }
    let mut k = [0u8; abi::COMM_LEN];
    let n = b.len().min(abi::COMM_LEN - 1);
    k[..n].copy_from_slice(&b[..n]);
    Ok(k)
}

/// Load, attach, and pump events into `pipeline` until `stop` is set.
pub fn run(cfg: &ProbeConfig, pipeline: &Pipeline, stop: &AtomicBool) -> Result<KernelCounters> {
    let (tracefs, mode) = preflight(cfg)?;
    let hooks = resolve_hooks(cfg.hooks, &mode, &tracefs)?;
    loader::capture_libbpf_log();
    match mode {
        BtfMode::None => run_with::<loader::NoBtf>(cfg, pipeline, stop, None, hooks),
        // the kernel has no BTF of its own, hence no kfuncs: the CO-RE
        // object built without them (bpf/osprey_btffile.bpf.c; its uprobe
        // programs are guarded by busy slots, bpf/compat.bpf.h)
        BtfMode::File(p) if !Path::new(KERNEL_BTF).exists() => {
            run_with::<loader::CoReBtfFile>(cfg, pipeline, stop, Some(&p), hooks)
        }
        BtfMode::File(p) => run_with::<loader::CoRe>(cfg, pipeline, stop, Some(&p), hooks),
        BtfMode::Kernel => run_with::<loader::CoRe>(cfg, pipeline, stop, None, hooks),
    }
}

/// The cycle for one of the two objects: open and configure, load, fill the
/// allowlist (and, BTF-less, seed connections from /proc), attach, poll,
/// counters.
fn run_with<F: loader::Flavor>(
    cfg: &ProbeConfig,
    pipeline: &Pipeline,
    stop: &AtomicBool,
    btf: Option<&Path>,
    hooks: Hooks,
) -> Result<KernelCounters> {
    let mut storage = MaybeUninit::uninit();
    let open = loader::open_and_configure::<F>(&mut storage, cfg, btf, hooks)?;
    let skel = loader::load::<F>(open, cfg, hooks)?;
    let obj = skel.object();
    loader::fill_allowlist(obj, cfg)?;
    if let Some(h) = &cfg.body_skip {
        loader::map_skips(obj, h)?;
    }
    // the cgroup allowlist: filled now, then kept up to date
    let _watch = match (&cfg.identity, cfg.cgroup_filter.is_empty()) {
        (Some(shared), false) => {
            let m = loader::map(obj, "allowed_cgroups")?;
            let handle = libbpf_rs::MapHandle::try_from(&m).context("the allowed_cgroups map")?;
            let mut current = std::collections::HashSet::new();
            cgwatch::sync(shared, &cfg.cgroup_filter, &handle, &mut current);
            log::info!("cgroup filter: {} cgroups selected now", current.len());
            Some(
                cgwatch::Watch::start(
                    shared.clone(),
                    cfg.cgroup_filter.clone(),
                    handle,
                    current,
                    cfg.cgroup_rescan,
                )
                .context("starting the cgroup watcher thread")?,
            )
        }
        _ => None,
    };
    if F::FALLBACK {
        // the kernel cannot find pre-existing sockets: seed them
        let seeded = poll::seed_existing_connections(obj, cfg, pipeline)?;
        log::info!("BTF-less fallback: seeded {seeded} established TCP connections from /proc");
    }
    // the TLS libraries: uprobes attached per file, found now and later
    // (before the tracepoints, whose "attached" line says the probe runs)
    let tls = cfg.tls.then(|| {
        crate::tls::attach::Attacher::start(
            obj,
            crate::tls::attach::Allow {
                pids: cfg.pids.clone(),
                comms: cfg.comms.clone(),
            },
        )
    });
    let links = loader::attach(obj, cfg, hooks)?;
    // after the fork tracepoint is attached: no child falls in between
    let kids = loader::seed_descendants(obj, cfg)?;
    if kids > 0 {
        log::info!("--pid: following {kids} existing descendants");
    }
    let bss = F::counters(&skel);
    let stats = poll::poll(obj, bss, links, tls, cfg, pipeline, stop, F::FALLBACK)?;
    let mut counters = loader::counters(bss, obj);
    counters.tls = stats.tls.clone();
    counters.non_tcp_dropped = stats.non_tcp;
    counters.addr_unresolved = stats.unresolved;
    counters.addr_fd_reused = stats.fd_reused;
    counters.sched_adaptive = stats.sched_adaptive;
    counters.hooks = hooks.as_str();
    drop(_watch);
    counters.identity = cfg.identity.as_ref().map(|s| s.stats());
    pipeline.add_decode_errors(stats.decode_errors);
    Ok(counters)
}

/// Names of the programs in the object with their sections (for `check`).
pub fn program_sections() -> Result<Vec<(String, String)>> {
    let builder = skel::OspreySkelBuilder::default();
    let mut storage = MaybeUninit::uninit();
    let open = builder
        .open(&mut storage)
        .context("opening the embedded BPF object")?;
    Ok(open
        .open_object()
        .progs()
        .map(|p| {
            (
                p.name().to_string_lossy().into_owned(),
                OsStr::to_string_lossy(p.section()).into_owned(),
            )
        })
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
        assert_eq!(
            resolve_hooks(Hooks::Socket, &k, &all).unwrap(),
            Hooks::Socket
        );
        assert_eq!(
            resolve_hooks(Hooks::Syscalls, &k, &all).unwrap(),
            Hooks::Syscalls
        );
        // auto falls back; an explicit request is refused with the reason
        for (mode, dir, why) in [
            (
                &k,
                &old,
                "this kernel has no sock:sock_send_length, sock:sock_recv_length tracepoint",
            ),
            (&file, &all, "kernel's own BTF"),
            (&BtfMode::None, &all, "kernel's own BTF"),
        ] {
            assert_eq!(
                resolve_hooks(Hooks::Auto, mode, dir).unwrap(),
                Hooks::Syscalls
            );
            assert_eq!(
                resolve_hooks(Hooks::Syscalls, mode, dir).unwrap(),
                Hooks::Syscalls
            );
            let e = resolve_hooks(Hooks::Socket, mode, dir)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why) && e.contains("--hooks syscalls"), "{e}");
        }
        for d in [all, old] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    // The loader writes the BTF-less object's .rodata through the CO-RE
    // object's type (loader::same_config): same struct, same layout.
    #[test]
    fn config_layouts_match() {
        use skel::types::osprey_config as a;
        use skel_nobtf::types::osprey_config as b;
        assert_eq!(size_of::<a>(), size_of::<b>());
        assert_eq!(offset_of!(a, wakeup_bytes), offset_of!(b, wakeup_bytes));
        assert_eq!(
            offset_of!(a, wakeup_max_bytes),
            offset_of!(b, wakeup_max_bytes)
        );
        assert_eq!(offset_of!(a, wakeup_records), offset_of!(b, wakeup_records));
        assert_eq!(offset_of!(a, self_tgid), offset_of!(b, self_tgid));
        assert_eq!(offset_of!(a, capture_bytes), offset_of!(b, capture_bytes));
        assert_eq!(offset_of!(a, iov_whole), offset_of!(b, iov_whole));
        assert_eq!(offset_of!(a, filter_pids), offset_of!(b, filter_pids));
        assert_eq!(offset_of!(a, filter_comms), offset_of!(b, filter_comms));
        assert_eq!(offset_of!(a, n_inline_pids), offset_of!(b, n_inline_pids));
        assert_eq!(offset_of!(a, inline_pids), offset_of!(b, inline_pids));
        assert_eq!(offset_of!(a, n_inline_comms), offset_of!(b, n_inline_comms));
        assert_eq!(offset_of!(a, inline_comms), offset_of!(b, inline_comms));
        assert_eq!(
            offset_of!(a, capture_max_per_call),
            offset_of!(b, capture_max_per_call)
        );
        assert_eq!(offset_of!(a, fork_child_off), offset_of!(b, fork_child_off));
        assert_eq!(
            offset_of!(a, follow_children),
            offset_of!(b, follow_children)
        );
        assert_eq!(offset_of!(a, has_bpf_loop), offset_of!(b, has_bpf_loop));
        // .rodata holds the config and nothing else, in both objects
        assert_eq!(size_of::<skel::types::rodata>(), size_of::<a>());
        assert_eq!(size_of::<skel_nobtf::types::rodata>(), size_of::<b>());
    }

    // The --btf FILE object (loader::same_config_btffile) is the CO-RE
    // source compiled without kfuncs: the same struct.
    #[test]
    fn btffile_config_layout_matches() {
        use skel::types::osprey_config as a;
        use skel_btffile::types::osprey_config as c;
        assert_eq!(size_of::<a>(), size_of::<c>());
        assert_eq!(offset_of!(a, self_tgid), offset_of!(c, self_tgid));
        assert_eq!(offset_of!(a, capture_bytes), offset_of!(c, capture_bytes));
        assert_eq!(offset_of!(a, inline_comms), offset_of!(c, inline_comms));
        assert_eq!(offset_of!(a, has_bpf_loop), offset_of!(c, has_bpf_loop));
        assert_eq!(offset_of!(a, tls), offset_of!(c, tls));
        assert_eq!(offset_of!(a, body_skip), offset_of!(c, body_skip));
        assert_eq!(size_of::<skel_btffile::types::rodata>(), size_of::<c>());
    }

    // ABI: the Rust mirror (src/abi.rs) must match the C layout the compiled
    // object carries in its BTF (the skeleton's generated types).
    #[test]
    fn abi_layouts_match_c() {
        use skel::types as c;
        assert_eq!(size_of::<abi::Hdr>(), size_of::<c::osprey_hdr>());
        assert_eq!(
            size_of::<c::osprey_hdr>(),
            64,
            "include/osprey.h documents a 64-byte header"
        );
        assert_eq!(offset_of!(abi::Hdr, kind), offset_of!(c::osprey_hdr, kind));
        assert_eq!(
            offset_of!(abi::Hdr, syscall),
            offset_of!(c::osprey_hdr, syscall)
        );
        assert_eq!(offset_of!(abi::Hdr, tgid), offset_of!(c::osprey_hdr, tgid));
        assert_eq!(offset_of!(abi::Hdr, tid), offset_of!(c::osprey_hdr, tid));
        assert_eq!(
            offset_of!(abi::Hdr, ts_ns),
            offset_of!(c::osprey_hdr, ts_ns)
        );
        assert_eq!(offset_of!(abi::Hdr, comm), offset_of!(c::osprey_hdr, comm));
        assert_eq!(offset_of!(abi::Hdr, conn), offset_of!(c::osprey_hdr, conn));
        assert_eq!(size_of::<abi::ConnIdRaw>(), size_of::<c::osprey_conn_id>());
        assert_eq!(
            offset_of!(abi::ConnIdRaw, fd),
            offset_of!(c::osprey_conn_id, fd)
        );
        assert_eq!(
            offset_of!(abi::ConnIdRaw, proc_start_ns),
            offset_of!(c::osprey_conn_id, proc_start_ns)
        );
        assert_eq!(
            offset_of!(abi::ConnIdRaw, gen),
            offset_of!(c::osprey_conn_id, gen)
        );
        assert_eq!(size_of::<abi::Addrs>(), size_of::<c::osprey_addrs>());
        assert_eq!(
            offset_of!(abi::Addrs, lport),
            offset_of!(c::osprey_addrs, lport)
        );
        assert_eq!(
            offset_of!(abi::Addrs, rport),
            offset_of!(c::osprey_addrs, rport)
        );
        assert_eq!(
            offset_of!(abi::Addrs, laddr),
            offset_of!(c::osprey_addrs, laddr)
        );
        assert_eq!(
            offset_of!(abi::Addrs, raddr),
            offset_of!(c::osprey_addrs, raddr)
        );
        assert_eq!(size_of::<abi::OpenRaw>(), size_of::<c::osprey_open_event>());
        assert_eq!(
            offset_of!(abi::OpenRaw, addrs),
            offset_of!(c::osprey_open_event, addrs)
        );
        assert_eq!(
            size_of::<abi::CloseRaw>(),
            size_of::<c::osprey_close_event>()
        );
        assert_eq!(
            offset_of!(abi::CloseRaw, tx_bytes),
            offset_of!(c::osprey_close_event, tx_bytes)
        );
        assert_eq!(
            offset_of!(abi::CloseRaw, rx_bytes),
            offset_of!(c::osprey_close_event, rx_bytes)
        );
        assert_eq!(
            offset_of!(abi::DataHdrRaw, start_ns),
            offset_of!(c::osprey_data_event, start_ns)
        );
        assert_eq!(
            offset_of!(abi::DataHdrRaw, pos),
            offset_of!(c::osprey_data_event, pos)
        );
        assert_eq!(
            offset_of!(abi::DataHdrRaw, orig_len),
            offset_of!(c::osprey_data_event, orig_len)
        );
        assert_eq!(
            offset_of!(abi::DataHdrRaw, cap_len),
            offset_of!(c::osprey_data_event, cap_len)
        );
        assert_eq!(
            abi::DATA_HDR_SIZE,
            offset_of!(c::osprey_data_event, payload)
        );
        assert_eq!(
            size_of::<c::osprey_data_event>(),
            abi::DATA_HDR_SIZE + abi::MAX_PAYLOAD
        );
        assert_eq!(
            size_of::<abi::SegmentsRaw>(),
            size_of::<c::osprey_segments>()
        );
        assert_eq!(
            offset_of!(abi::SegmentsRaw, seg),
            offset_of!(c::osprey_segments, seg)
        );
        assert_eq!(size_of::<abi::SegmentRaw>(), size_of::<c::osprey_segment>());
        assert_eq!(
            offset_of!(abi::SegmentRaw, cap_len),
            offset_of!(c::osprey_segment, cap_len)
        );
        // counters[] in .bss: one slot per name
        // SAFETY: plain integers and byte arrays; all-zero is valid.
        let bss: c::bss = unsafe { std::mem::zeroed() };
        assert_eq!(bss.counters.len(), abi::COUNTER_NAMES.len());
    }
}
