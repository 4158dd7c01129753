// SPDX-License-Identifier: GPL-3.0-or-later
//! Capabilities: what loading and attaching the probe needs, checked from
//! the effective set (`CapEff` in /proc/self/status), never from the uid.

use std::fmt;

/// A capability Osprey may need, by its number in <linux/capability.h>.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap(pub u32, pub &'static str);

pub const CAP_DAC_OVERRIDE: Cap = Cap(1, "CAP_DAC_OVERRIDE");
pub const CAP_DAC_READ_SEARCH: Cap = Cap(2, "CAP_DAC_READ_SEARCH");
pub const CAP_SYS_PTRACE: Cap = Cap(19, "CAP_SYS_PTRACE");
pub const CAP_SYS_ADMIN: Cap = Cap(21, "CAP_SYS_ADMIN");
pub const CAP_PERFMON: Cap = Cap(38, "CAP_PERFMON");
pub const CAP_BPF: Cap = Cap(39, "CAP_BPF");

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }
}

/// The effective capability set of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapSet(pub u64);

impl CapSet {
    /// This process's effective set; None if /proc/self/status cannot be read.
    pub fn current() -> Option<CapSet> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        Self::from_status(&status)
    }

    /// `CapEff:` of a /proc/PID/status text.
    pub fn from_status(status: &str) -> Option<CapSet> {
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))?
            .trim();
        u64::from_str_radix(hex, 16).ok().map(CapSet)
    }

    pub fn has(self, c: Cap) -> bool {
        c.0 < 64 && self.0 & (1u64 << c.0) != 0
    }

    /// The capabilities loading and attaching need that this set lacks:
    /// CAP_BPF (maps, programs, BTF) and CAP_PERFMON (tracing programs,
    /// kernel memory reads, perf-event tracepoint links). CAP_SYS_ADMIN
    /// implies both (and is what kernels before 5.8 want instead).
    pub fn missing_for_load(self) -> Vec<Cap> {
        if self.has(CAP_SYS_ADMIN) {
            return Vec::new();
        }
        [CAP_BPF, CAP_PERFMON]
            .into_iter()
            .filter(|c| !self.has(*c))
            .collect()
    }

    /// Can this process read files it does not own (tracefs is mode 0700,
    /// root's; /proc/PID/fd of other users' processes)?
    pub fn reads_any_file(self) -> bool {
        self.has(CAP_DAC_READ_SEARCH) || self.has(CAP_DAC_OVERRIDE)
    }
}

/// The capabilities Osprey runs with, for messages and docs.
pub const NEEDED: &str = "CAP_DAC_READ_SEARCH reads tracefs, root's and mode 0700 by default; \
                          CAP_SYS_PTRACE lets the BTF-less fallback read other users' /proc/PID/fd";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_set_from_status() {
        let s = "Name:\tosprey\nCapInh:\t0000000000000000\nCapPrm:\t000000c000000004\nCapEff:\t000000c000000004\n";
        let c = CapSet::from_status(s).unwrap();
        assert!(c.has(CAP_BPF) && c.has(CAP_PERFMON) && c.has(CAP_DAC_READ_SEARCH));
        assert!(!c.has(CAP_SYS_ADMIN) && !c.has(CAP_SYS_PTRACE));
        assert!(c.missing_for_load().is_empty());
        assert!(c.reads_any_file());
        assert_eq!(CapSet(1 << 39).missing_for_load(), vec![CAP_PERFMON]);
        assert_eq!(CapSet(0).missing_for_load(), vec![CAP_BPF, CAP_PERFMON]);
        assert!(CapSet(1 << 21).missing_for_load().is_empty());
        assert_eq!(CapSet::from_status("Name:\tx\n"), None);
    }
}
