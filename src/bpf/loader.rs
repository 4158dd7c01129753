// SPDX-License-Identifier: GPL-3.0-or-later
//! The load cycle as plain functions, generic over the two embedded
//! objects: open and configure → load → fill the allowlist → attach; and
//! the counters read at the end. Each step's error says what failed and why.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, Object, OpenObject, PrintLevel};

use super::{comm_key, skel, skel_btffile, skel_nobtf, Hooks, KernelCounters, ProbeConfig};
use crate::abi;

/// One of the two embedded objects. They have the same maps and programs
/// but distinct generated types; this is everything the loader needs that
/// is not reachable through the generic `OpenObject`/`Object` API.
pub trait Flavor {
    /// For logs and errors.
    const LABEL: &'static str;
    /// The BTF-less object: user space resolves what the kernel cannot.
    const FALLBACK: bool;
    type Open<'obj>: OpenSkel<'obj, Output = Self::Loaded<'obj>>;
    type Loaded<'obj>: Skel<'obj>;

    fn open<'obj>(
        storage: &'obj mut MaybeUninit<OpenObject>,
        btf: Option<&Path>,
    ) -> Result<Self::Open<'obj>>;
    /// `cfg` in .rodata, before load.
    fn config<'a>(open: &'a mut Self::Open<'_>) -> Option<&'a mut skel::types::osprey_config>;
    /// `counters[]` in the mmap'ed .bss, after load.
    fn counters<'a>(loaded: &'a Self::Loaded<'_>) -> Option<&'a [u64; abi::COUNTER_NAMES.len()]>;
}

/// bpf/osprey.bpf.c: CO-RE, syscall and socket hooks.
pub struct CoRe;
/// bpf/osprey_nobtf.bpf.c: no CO-RE relocation, syscall hooks only.
pub struct NoBtf;
/// bpf/osprey_btffile.bpf.c: CO-RE without kfuncs, for `--btf FILE` on a
/// kernel without its own BTF (libbpf resolves kfuncs through that).
pub struct CoReBtfFile;

impl Flavor for CoRe {
    const LABEL: &'static str = "CO-RE";
    const FALLBACK: bool = false;
    type Open<'obj> = skel::OpenOspreySkel<'obj>;
    type Loaded<'obj> = skel::OspreySkel<'obj>;

    fn open<'obj>(
        storage: &'obj mut MaybeUninit<OpenObject>,
        btf: Option<&Path>,
    ) -> Result<Self::Open<'obj>> {
        let mut builder = skel::OspreySkelBuilder::default();
        custom_btf(&mut builder.obj_builder, btf)?;
        builder
            .open(storage)
            .map_err(|e| opening_failed(Self::LABEL, &e))
    }

    fn config<'a>(open: &'a mut Self::Open<'_>) -> Option<&'a mut skel::types::osprey_config> {
        open.maps.rodata_data.as_deref_mut().map(|r| &mut r.cfg)
    }

    fn counters<'a>(loaded: &'a Self::Loaded<'_>) -> Option<&'a [u64; abi::COUNTER_NAMES.len()]> {
        loaded.maps.bss_data.as_deref().map(|b| &b.counters)
    }
}

impl Flavor for NoBtf {
    const LABEL: &'static str = "BTF-less fallback";
    const FALLBACK: bool = true;
    type Open<'obj> = skel_nobtf::OpenOspreyNobtfSkel<'obj>;
    type Loaded<'obj> = skel_nobtf::OspreyNobtfSkel<'obj>;

    fn open<'obj>(
        storage: &'obj mut MaybeUninit<OpenObject>,
        _btf: Option<&Path>,
    ) -> Result<Self::Open<'obj>> {
        skel_nobtf::OspreyNobtfSkelBuilder::default()
            .open(storage)
            .map_err(|e| opening_failed(Self::LABEL, &e))
    }

    fn config<'a>(open: &'a mut Self::Open<'_>) -> Option<&'a mut skel::types::osprey_config> {
        open.maps
            .rodata_data
            .as_deref_mut()
            .map(|r| same_config(&mut r.cfg))
    }

    fn counters<'a>(loaded: &'a Self::Loaded<'_>) -> Option<&'a [u64; abi::COUNTER_NAMES.len()]> {
        loaded.maps.bss_data.as_deref().map(|b| &b.counters)
    }
}

impl Flavor for CoReBtfFile {
    const LABEL: &'static str = "CO-RE (--btf FILE, no kernel BTF)";
    const FALLBACK: bool = false;
    type Open<'obj> = skel_btffile::OpenOspreyBtffileSkel<'obj>;
    type Loaded<'obj> = skel_btffile::OspreyBtffileSkel<'obj>;

    fn open<'obj>(
        storage: &'obj mut MaybeUninit<OpenObject>,
        btf: Option<&Path>,
    ) -> Result<Self::Open<'obj>> {
        let mut builder = skel_btffile::OspreyBtffileSkelBuilder::default();
        custom_btf(&mut builder.obj_builder, btf)?;
        builder
            .open(storage)
            .map_err(|e| opening_failed(Self::LABEL, &e))
    }

    fn config<'a>(open: &'a mut Self::Open<'_>) -> Option<&'a mut skel::types::osprey_config> {
        open.maps
            .rodata_data
            .as_deref_mut()
            .map(|r| same_config_btffile(&mut r.cfg))
    }

    fn counters<'a>(loaded: &'a Self::Loaded<'_>) -> Option<&'a [u64; abi::COUNTER_NAMES.len()]> {
        loaded.maps.bss_data.as_deref().map(|b| &b.counters)
    }
}

/// `--btf FILE`: CO-RE relocations against that file instead of the
/// kernel's own BTF.
fn custom_btf(ob: &mut libbpf_rs::ObjectBuilder, btf: Option<&Path>) -> Result<()> {
    if let Some(btf) = btf {
        ob.btf_custom_path(btf)
            .with_context(|| format!("--btf {}", btf.display()))?;
    }
    Ok(())
}

/// The `--btf FILE` object's `struct osprey_config` as the CO-RE object's:
/// the same source compiled with OSPREY_NO_KFUNC, which changes no type.
fn same_config_btffile(
    c: &mut skel_btffile::types::osprey_config,
) -> &mut skel::types::osprey_config {
    const _: () = assert!(
        std::mem::size_of::<skel_btffile::types::osprey_config>()
            == std::mem::size_of::<skel::types::osprey_config>()
            && std::mem::align_of::<skel_btffile::types::osprey_config>()
                == std::mem::align_of::<skel::types::osprey_config>()
    );
    // SAFETY: as same_config(): both #[repr(C)] plain integers generated
    // from one C struct; tests::config_layouts_match checks the offsets.
    unsafe {
        &mut *(c as *mut skel_btffile::types::osprey_config).cast::<skel::types::osprey_config>()
    }
}

/// The BTF-less object's `struct osprey_config` as the CO-RE object's: the
/// same C struct (bpf/common.bpf.h) compiled twice; `config_layouts_match`
/// checks every field's offset.
fn same_config(c: &mut skel_nobtf::types::osprey_config) -> &mut skel::types::osprey_config {
    const _: () = assert!(
        std::mem::size_of::<skel_nobtf::types::osprey_config>()
            == std::mem::size_of::<skel::types::osprey_config>()
            && std::mem::align_of::<skel_nobtf::types::osprey_config>()
                == std::mem::align_of::<skel::types::osprey_config>()
    );
    // SAFETY: both are #[repr(C)] plain integers and integer arrays with the
    // same size, alignment and field offsets (tests::config_layouts_match);
    // every bit pattern is valid for both.
    unsafe {
        &mut *(c as *mut skel_nobtf::types::osprey_config).cast::<skel::types::osprey_config>()
    }
}

// ---- libbpf's messages: kept for error reports, forwarded to the log under -v

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

/// Route libbpf's messages through `libbpf_print`.
pub fn capture_libbpf_log() {
    libbpf_rs::set_print(Some((PrintLevel::Debug, libbpf_print)));
}

fn libbpf_log_tail(n: usize) -> String {
    let v = LIBBPF_LOG.lock().map(|v| v.clone()).unwrap_or_default();
    let start = v.len().saturating_sub(n);
    v[start..].join("\n")
}

fn opening_failed(label: &str, e: &libbpf_rs::Error) -> anyhow::Error {
    anyhow!(
        "opening the embedded BPF object ({label}) failed: {e}\nlibbpf said:\n{}",
        libbpf_log_tail(12)
    )
}

/// Why loading (verifying) the programs failed, in the user's terms.
fn explain_load_error(e: &libbpf_rs::Error, verbose: bool) -> anyhow::Error {
    let tail = libbpf_log_tail(if verbose { 400 } else { 12 });
    let hint = if verbose {
        String::new()
    } else {
        "\n(rerun with -v for the full verifier log)".into()
    };
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
        anyhow!(
            "loading the BPF programs was refused ({e}): it needs CAP_BPF and CAP_PERFMON (or root); \
             a security module (lockdown, SELinux) can also refuse it\nlibbpf said:\n{tail}{hint}"
        )
    } else {
        anyhow!("loading the BPF programs failed: {e}\nlibbpf said:\n{tail}{hint}")
    }
}

// ---- the steps ------------------------------------------------------------

/// The run's settings into the object's `cfg` (.rodata).
fn write_config(
    c: &mut skel::types::osprey_config,
    cfg: &ProbeConfig,
    cpus: usize,
    has_bpf_loop: bool,
) -> Result<()> {
    c.self_tgid = std::process::id();
    c.filter_pids = u8::from(!cfg.pids.is_empty());
    c.filter_comms = u8::from(!cfg.comms.is_empty());
    c.filter_cgroups = u8::from(!cfg.cgroup_filter.is_empty());
    // short allowlists are compared in line; longer ones go to the maps
    if cfg.pids.len() <= abi::INLINE_FILTER {
        c.n_inline_pids = cfg.pids.len() as u32;
        c.inline_pids[..cfg.pids.len()].copy_from_slice(&cfg.pids);
    }
    if cfg.comms.len() <= abi::INLINE_FILTER {
        c.n_inline_comms = cfg.comms.len() as u32;
        for (slot, name) in c.inline_comms.iter_mut().zip(&cfg.comms) {
            let key = comm_key(name)?;
            let (lo, hi) = key.split_at(8);
            slot[0] = u64::from_ne_bytes(lo.try_into()?);
            slot[1] = u64::from_ne_bytes(hi.try_into()?);
        }
    }
    c.capture_bytes = cfg.capture_bytes.min(abi::MAX_PAYLOAD as u32);
    // further records: at most MAX_CONT of MAX_PAYLOAD bytes each, or
    // CONT_NO_LOOP without bpf_loop() (compat.bpf.h, cont_loop())
    c.has_bpf_loop = u8::from(has_bpf_loop);
    let most = if has_bpf_loop {
        abi::MAX_CONT
    } else {
        abi::CONT_NO_LOOP
    };
    let most = c.capture_bytes + (most * abi::MAX_PAYLOAD) as u32;
    c.capture_max_per_call = cfg.capture_max_per_call.min(most);
    if !has_bpf_loop && c.capture_bytes > 0 && cfg.capture_max_per_call > most {
        log::warn!(
            "this kernel has no bpf_loop() (Linux 5.17+): --capture-max-per-call {} is lowered to {most} \
             (--capture-bytes and {} further records of {} bytes); the rest of a larger read or write \
             is counted, not captured",
            cfg.capture_max_per_call,
            abi::CONT_NO_LOOP,
            abi::MAX_PAYLOAD
        );
    }
    if c.capture_bytes == 0 {
        c.capture_max_per_call = 0;
    }
    c.body_skip = u32::from(cfg.body_skip.is_some());
    c.follow_children = 0;
    if cfg.follow_children && !cfg.pids.is_empty() {
        let off = crate::tracefs::find()
            .ok_or_else(|| "tracefs is not mounted".to_string())
            .and_then(|root| crate::tracefs::fork_child_offset(&root));
        match off {
            Ok(off) => {
                c.follow_children = 1;
                c.fork_child_off = off;
            }
            Err(why) => log::warn!(
                "--pid: the processes' descendants are not followed (sched:sched_process_fork: {why}); \
                 only the given processes are traced"
            ),
        }
    }
    c.iov_whole = cfg.iov_whole;
    // the threshold is per CPU; one near the ring size would only wake
    // the reader once the ring is already full: keep all CPUs' together
    // at most a quarter of it
    let quarter = cfg.ringbuf_bytes as u64 / 4;
    c.wakeup_max_bytes = (quarter / cpus as u64).max(1024).min(quarter);
    c.wakeup_bytes = cfg.wakeup_bytes.min(c.wakeup_max_bytes);
    c.wakeup_records = cfg.wakeup_records;
    c.tls = u32::from(cfg.tls);
    Ok(())
}

/// Does the kernel have the bpf_loop() helper (5.17+) for tracepoint
/// programs? Probed by loading a tiny program (libbpf). OSPREY_NO_BPF_LOOP=1
/// pretends it has not (tests of the older kernels' path on a newer one).
fn has_bpf_loop() -> bool {
    if std::env::var_os("OSPREY_NO_BPF_LOOP").is_some_and(|v| v == "1") {
        log::info!("OSPREY_NO_BPF_LOOP=1: bpf_loop() is not used");
        return false;
    }
    // SAFETY: plain FFI call; a null opts is allowed
    let rc = unsafe {
        libbpf_sys::libbpf_probe_bpf_helper(
            libbpf_sys::BPF_PROG_TYPE_TRACEPOINT,
            libbpf_sys::BPF_FUNC_loop,
            std::ptr::null(),
        )
    };
    log::debug!("bpf_loop() probe: {rc}");
    rc == 1
}

/// Open the object and configure it: .rodata, map sizes, and which hook
/// set is loaded.
pub fn open_and_configure<'obj, F: Flavor>(
    storage: &'obj mut MaybeUninit<OpenObject>,
    cfg: &ProbeConfig,
    btf: Option<&Path>,
    hooks: Hooks,
) -> Result<F::Open<'obj>> {
    let mut open = F::open(storage, btf)?;
    let cpus = libbpf_rs::num_possible_cpus()
        .context("counting the possible CPUs (/sys/devices/system/cpu/possible)")?;
    let c = F::config(&mut open)
        .ok_or_else(|| anyhow!("the embedded BPF object ({}) has no .rodata", F::LABEL))?;
    write_config(c, cfg, cpus, has_bpf_loop())?;
    let follow = c.follow_children != 0;
    let obj = open.open_object_mut();
    for mut map in obj.maps_mut() {
        match map.name().to_str() {
            Some("events") => map.set_max_entries(cfg.ringbuf_bytes).with_context(|| {
                format!(
                    "sizing the ring buffer to --ringbuf-size {}",
                    cfg.ringbuf_bytes
                )
            })?,
            // OSPREY_SCRATCH_SLOTS record-building slots per possible CPU
            Some("scratch") => map
                .set_max_entries((cpus * abi::SCRATCH_SLOTS) as u32)
                .with_context(|| format!("sizing the scratch map for {cpus} CPUs"))?,
            _ => {}
        }
    }
    // one hook set: tp_btf/ programs are the socket hooks; the TLS
    // programs (uprobes, the exec tracepoint) with --tls on only; the
    // sched tracepoints follow --pid's descendants, when asked to
    for mut prog in obj.progs_mut() {
        let section = prog.section().to_string_lossy().into_owned();
        if is_uprobe(&section) || prog.name().to_string_lossy().starts_with("tls_") {
            prog.set_autoload(cfg.tls);
            continue;
        }
        if section.starts_with("tracepoint/sched/") {
            prog.set_autoload(follow);
            continue;
        }
        let socket = section.starts_with("tp_btf/");
        prog.set_autoload(socket == (hooks == Hooks::Socket));
    }
    Ok(open)
}

/// Load (the verifier runs here).
pub fn load<'obj, F: Flavor>(
    open: F::Open<'obj>,
    cfg: &ProbeConfig,
    hooks: Hooks,
) -> Result<F::Loaded<'obj>> {
    let loaded = open.load().map_err(|e| match &cfg.btf {
        // LIBBPF_ERRNO__FORMAT: an ELF file without usable .BTF
        Some(p) if e.to_string().contains("4001") => anyhow!(
            "--btf {}: libbpf could not read BTF from this file ({e}): give raw BTF or a vmlinux ELF file \
             with a .BTF section of this kernel",
            p.display()
        ),
        _ => explain_load_error(&e, cfg.verbose),
    })?;
    log::debug!(
        "BPF programs loaded and verified ({}, {})",
        F::LABEL,
        hooks.label()
    );
    Ok(loaded)
}

/// A map of the loaded object by name.
pub fn map<'a>(obj: &'a Object, name: &str) -> Result<libbpf_rs::Map<'a>> {
    obj.maps()
        .find(|m| m.name().to_str() == Some(name))
        .ok_or_else(|| anyhow!("the BPF object has no map {name:?}"))
}

/// The `skips` map (body skips, `crate::skip`) mmap'ed into `hints`.
pub fn map_skips(obj: &Object, hints: &crate::skip::SkipHints) -> Result<()> {
    let m = map(obj, "skips")?;
    let bytes = (abi::SKIP_SLOTS * std::mem::size_of::<abi::SkipRaw>()).next_multiple_of(4096);
    // SAFETY: a shared read-write mapping of the map's fd (an array map
    // created with BPF_F_MMAPABLE, bpf/maps.bpf.h); checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            m.as_fd().as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(anyhow!(
            "mapping the skips map into memory: {}",
            std::io::Error::last_os_error()
        ));
    }
    let ptr =
        std::ptr::NonNull::new(p.cast::<abi::SkipRaw>()).expect("mmap gave a non-null address");
    // SAFETY: p is the mapping just made, `bytes` long; the table owns it.
    if !unsafe { hints.attach_mmap(ptr, bytes) } {
        // SAFETY: not attached: unmap what was just mapped
        unsafe { libc::munmap(p, bytes) };
    }
    Ok(())
}

/// The --pid/--comm allowlist maps, before anything is attached (short
/// lists are in .rodata already; the maps are filled either way).
pub fn fill_allowlist(obj: &Object, cfg: &ProbeConfig) -> Result<()> {
    let pids = map(obj, "allowed_pids")?;
    for pid in &cfg.pids {
        pids.update(&pid.to_ne_bytes(), &[1], MapFlags::ANY)
            .with_context(|| format!("--pid {pid}: adding it to the allowlist map"))?;
    }
    let comms = map(obj, "allowed_comms")?;
    for c in &cfg.comms {
        comms
            .update(&comm_key(c)?, &[1], MapFlags::ANY)
            .with_context(|| format!("--comm {c}: adding it to the allowlist map"))?;
    }
    Ok(())
}

/// With --pid following descendants (the fork tracepoint attached): the
/// processes' descendants that exist already, from /proc, into
/// `child_pids` (later forks are added by the kernel). Returns how many.
pub fn seed_descendants(obj: &Object, cfg: &ProbeConfig) -> Result<usize> {
    let following = obj
        .progs()
        .any(|p| p.name().to_str() == Some("follow_fork") && p.autoload());
    if !following {
        return Ok(0);
    }
    let kids = crate::proctree::descendants(&crate::proctree::processes(), &cfg.pids);
    let m = map(obj, "child_pids")?;
    let mut n = 0;
    for pid in kids.iter().take(abi::MAX_CHILD_PIDS) {
        if m.update(&pid.to_ne_bytes(), &[1], MapFlags::ANY).is_ok() {
            n += 1;
        }
    }
    if n < kids.len() {
        log::warn!(
            "--pid: {} of {} descendants could not be followed (at most {})",
            kids.len() - n,
            kids.len(),
            abi::MAX_CHILD_PIDS
        );
    }
    Ok(n)
}

/// A uprobe program: attached per library file by `crate::tls::attach`.
pub fn is_uprobe(section: &str) -> bool {
    section.starts_with("uprobe") || section.starts_with("uretprobe")
}

/// Attach the loaded programs, one at a time so that a failure names its
/// tracepoint. Dropping the links detaches them. Uprobes are not attached
/// here (`crate::tls::attach`).
pub fn attach(obj: &Object, cfg: &ProbeConfig, hooks: Hooks) -> Result<Vec<Link>> {
    let mut links = Vec::new();
    for prog in obj.progs_mut().filter(|p| p.autoload()) {
        let section = prog.section().to_string_lossy().into_owned();
        if is_uprobe(&section) {
            continue;
        }
        let tp = section
            .trim_start_matches("tracepoint/")
            .trim_start_matches("tp_btf/")
            .replace('/', ":");
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
    Ok(links)
}

/// The kernel counters (`counters[]` in the mmap'ed .bss) and the runs the
/// kernel skipped, for the attached programs.
pub fn counters(bss: Option<&[u64; abi::COUNTER_NAMES.len()]>, obj: &Object) -> KernelCounters {
    let mut k = read_counters(bss);
    k.prog_misses = prog_misses(
        obj.progs()
            .filter(|p| p.autoload())
            .map(|p| p.as_fd().as_raw_fd()),
    );
    k
}

/// `counters[]` only (cheap: for progress lines).
pub fn read_counters(bss: Option<&[u64; abi::COUNTER_NAMES.len()]>) -> KernelCounters {
    let Some(src) = bss else {
        return KernelCounters::default();
    };
    let mut c = [0u64; abi::COUNTER_NAMES.len()];
    for (slot, v) in c.iter_mut().zip(src) {
        // SAFETY: the .bss map is mmap'ed and updated by the kernel
        // concurrently; a volatile read of an aligned u64 is atomic.
        *slot = unsafe { std::ptr::read_volatile(v) };
    }
    KernelCounters::from_array(&c)
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
        // SAFETY: fd is a program fd owned by the object; info/len as above.
        let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
        if rc == 0 {
            total += info.recursion_misses;
        }
    }
    total
}
