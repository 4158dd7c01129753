// SPDX-License-Identifier: GPL-3.0-or-later
//! Osprey's own counters while it runs, for the metrics endpoint: the
//! pipeline's (updated as records go), the kernel's (the poller copies them
//! about once a second) and each worker's tracker statistics (copied at its
//! once-a-second tick). The final summary still comes from the pipeline.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

#[derive(Default)]
pub struct Health {
    pub events: AtomicU64,
    pub records: AtomicU64,
    pub decode_errors: AtomicU64,
    pub write_errors: AtomicU64,
    kernel: Mutex<Option<crate::bpf::KernelCounters>>,
    workers: Mutex<Vec<serde_json::Value>>,
}

impl Health {
    pub fn set_kernel(&self, k: crate::bpf::KernelCounters) {
        if let Ok(mut g) = self.kernel.lock() {
            *g = Some(k);
        }
    }

    pub fn kernel(&self) -> Option<crate::bpf::KernelCounters> {
        self.kernel.lock().ok().and_then(|g| g.clone())
    }

    pub fn set_worker(&self, i: usize, stats: serde_json::Value) {
        if let Ok(mut g) = self.workers.lock() {
            if g.len() <= i {
                g.resize(i + 1, serde_json::Value::Null);
            }
            g[i] = stats;
        }
    }

    /// A tracker counter summed over the workers.
    pub fn worker_sum(&self, key: &str) -> u64 {
        self.workers
            .lock()
            .map(|g| g.iter().filter_map(|w| w.get(key)?.as_u64()).sum())
            .unwrap_or(0)
    }
}

/// Resident set size in bytes and CPU seconds (user + system) of this
/// process.
pub fn process_usage() -> (u64, f64) {
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: plain sysconf/getrusage calls with a valid out pointer
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let cpu = if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(ru.ru_utime) + t(ru.ru_stime)
    } else {
        0.0
    };
    (rss * page, cpu)
}
