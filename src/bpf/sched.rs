// SPDX-License-Identifier: GPL-3.0-or-later
//! `--sched adaptive`: Osprey's threads run as SCHED_IDLE while the ring
//! buffer has room, so a traced task that wakes preempts the reader at
//! once instead of waiting behind a batch of records (the tail latency of
//! a service at moderate load); a watchdog raises them to SCHED_BATCH when
//! the ring fills past an eighth — a SCHED_IDLE thread on a busy machine
//! gets almost no CPU — and lowers them again once it is nearly empty.
//!
//! The watchdog reads the ring's consumer and producer positions from a
//! read-only mapping of its first two pages (the kernel allows a read-only
//! mapping of any part of a ring buffer map), every [`PERIOD`].

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Result};

/// How often the watchdog looks at the ring. It runs as SCHED_BATCH (its
/// wakeups do not preempt the traced tasks either), so on a saturated CPU
/// it may wait up to a scheduler slice more: an eighth of the default
/// 8 MiB ring holds ≈ 3 ms of records at 300 MB/s.
pub const PERIOD: Duration = Duration::from_millis(2);
/// Raise the threads when this fraction (1/N) of the ring is waiting.
/// (Raising at twice what the CPUs may hold back between wakeups instead
/// kept them raised at half of nginx's maximum rate, and the tail latency
/// with them: docs/performance.md.)
const HIGH_DIV: u64 = 8;
/// Lower them again when less than an eighth of that is waiting, at
/// [`CALM_CHECKS`] checks in a row (50 ms: fewer flaps under a load that
/// needs the fair share).
const CALM_CHECKS: u32 = 25;

/// What the watchdog did; printed with the run's summary.
#[derive(Debug, Default)]
pub struct AdaptiveStats {
    /// Times the threads were raised to SCHED_BATCH.
    pub raised: AtomicU64,
    /// Watchdog checks made while raised (× [`PERIOD`]: time raised).
    pub checks_raised: AtomicU64,
    pub checks: AtomicU64,
}

/// What the watchdog did, for the run's summary (`kernel.sched_adaptive`).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct SchedSummary {
    /// Times the threads were raised to SCHED_BATCH.
    pub raised: u64,
    /// Watchdog checks made while they were raised.
    pub checks_raised: u64,
    /// Watchdog checks in all (one every [`PERIOD`]).
    pub checks: u64,
}

impl AdaptiveStats {
    pub fn summary(&self) -> SchedSummary {
        SchedSummary {
            raised: self.raised.load(Ordering::Relaxed),
            checks_raised: self.checks_raised.load(Ordering::Relaxed),
            checks: self.checks.load(Ordering::Relaxed),
        }
    }
}

pub struct Adaptive {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    pub stats: Arc<AdaptiveStats>,
}

impl Drop for Adaptive {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().ok();
        }
    }
}

fn gettid() -> libc::pid_t {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::gettid() }
}

/// `sched_setscheduler(tid, policy)` at priority 0 (tid 0: the caller).
pub fn set_policy(tid: libc::pid_t, policy: libc::c_int) -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscall with a valid parameter.
    if unsafe { libc::sched_setscheduler(tid, policy, &param) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Every thread of this process but the caller to `policy`. Threads that
/// exited meanwhile are no error.
fn set_all_others(policy: libc::c_int) {
    let me = gettid();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for e in dir.flatten() {
        let Some(tid) = e
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if tid != me {
            if let Err(e) = set_policy(tid, policy) {
                log::debug!("sched of thread {tid}: {e}");
            }
        }
    }
}

/// Leaving SCHED_IDLE needs CAP_SYS_NICE (or an RLIMIT_NICE that allows
/// nice 0): tried on a thread of its own, which then exits, so that a
/// refusal leaves no thread of ours stuck at SCHED_IDLE.
fn can_leave_idle() -> std::io::Result<()> {
    std::thread::spawn(|| {
        set_policy(0, libc::SCHED_IDLE)?;
        set_policy(0, libc::SCHED_BATCH)
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("probe thread panicked")))
}

/// The first two pages of a ring buffer map, read-only: the consumer
/// position at the start of the first, the producer's at the second.
struct Positions {
    ptr: *mut libc::c_void,
    len: usize,
    page: usize,
}

// SAFETY: a read-only shared mapping, read with atomic loads only.
unsafe impl Send for Positions {}

impl Positions {
    fn map(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Self> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let len = 2 * page;
        // SAFETY: a new read-only shared mapping of a valid fd; the result
        // is checked and only read through atomics.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Positions { ptr, len, page })
    }

    /// Bytes written and not yet consumed.
    fn pending(&self) -> u64 {
        // SAFETY: both words lie in the mapping, are 8-byte aligned (page
        // starts) and are written by the kernel and libbpf as whole words.
        let (cons, prod) = unsafe {
            let c = &*(self.ptr as *const AtomicU64);
            let p = &*((self.ptr as *const u8).add(self.page) as *const AtomicU64);
            (c.load(Ordering::Acquire), p.load(Ordering::Acquire))
        };
        prod.wrapping_sub(cons)
    }
}

impl Drop for Positions {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Start the watchdog over the ring buffer map `events` of `ring_bytes`
/// and lower every other thread of the process to SCHED_IDLE. Threads
/// started later inherit their creator's policy. Errors (no CAP_SYS_NICE,
/// no mapping) leave every thread as it was.
pub fn start(events: &impl AsFd, ring_bytes: u32) -> Result<Adaptive> {
    if let Err(e) = can_leave_idle() {
        bail!("a thread cannot leave SCHED_IDLE here ({e}; needs CAP_SYS_NICE)");
    }
    let pos = match Positions::map(events.as_fd()) {
        Ok(p) => p,
        Err(e) => bail!("mapping the ring buffer's positions: {e}"),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(AdaptiveStats::default());
    let high = ring_bytes as u64 / HIGH_DIV;
    let low = high / 8;
    let handle = {
        let (stop, stats) = (stop.clone(), stats.clone());
        std::thread::Builder::new()
            .name("osprey-sched".into())
            .spawn(move || watchdog(pos, high, low, &stop, &stats))?
    };
    Ok(Adaptive {
        stop,
        handle: Some(handle),
        stats,
    })
}

fn watchdog(pos: Positions, high: u64, low: u64, stop: &AtomicBool, stats: &AdaptiveStats) {
    // the watchdog itself: never idle (it must run to raise the others),
    // never preempting (its wakeups are no cheaper than the reader's)
    if let Err(e) = set_policy(0, libc::SCHED_BATCH) {
        log::warn!("--sched adaptive: watchdog stays at its policy: {e}");
    }
    set_all_others(libc::SCHED_IDLE);
    let mut raised = false;
    let mut calm = 0u32;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(PERIOD);
        let pending = pos.pending();
        stats.checks.fetch_add(1, Ordering::Relaxed);
        if raised {
            stats.checks_raised.fetch_add(1, Ordering::Relaxed);
            calm = if pending < low { calm + 1 } else { 0 };
            if calm >= CALM_CHECKS {
                set_all_others(libc::SCHED_IDLE);
                raised = false;
            }
        } else if pending >= high {
            set_all_others(libc::SCHED_BATCH);
            stats.raised.fetch_add(1, Ordering::Relaxed);
            raised = true;
            calm = 0;
        }
    }
    // the drain after the detach: at the fair share
    set_all_others(libc::SCHED_BATCH);
}
