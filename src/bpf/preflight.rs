// SPDX-License-Identifier: GPL-3.0-or-later
//! Checks that need no BPF object: capabilities, BTF, tracefs.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::caps::{self, CapSet};
use super::{BtfMode, ProbeConfig, KERNEL_BTF};
use crate::tracefs;

/// Capabilities, BTF and tracefs: where tracefs is, and which object loads.
pub fn preflight(cfg: &ProbeConfig) -> Result<(PathBuf, BtfMode)> {
    let caps = check_capabilities()?;
    let mode = btf_mode(cfg)?;
    let tracefs = find_tracefs(caps)?;
    if mode == BtfMode::None {
        check_fallback_layouts(&tracefs)?;
        if !caps.has(caps::CAP_SYS_PTRACE) {
            log::warn!(
                "no CAP_SYS_PTRACE: the BTF-less fallback cannot read /proc/PID/fd of other users' processes, \
                 so their connections older than the probe are not found and their addresses stay unresolved"
            );
        }
    }
    Ok((tracefs, mode))
}

/// CAP_BPF and CAP_PERFMON in the effective set (or CAP_SYS_ADMIN), whatever the uid.
fn check_capabilities() -> Result<CapSet> {
    let Some(caps) = CapSet::current() else {
        bail!(
            "cannot read the capabilities of this process (/proc/self/status): is /proc mounted?"
        );
    };
    let missing = caps.missing_for_load();
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|c| c.to_string()).collect();
        bail!(
            "permission denied: loading BPF programs needs CAP_BPF and CAP_PERFMON (or root), and this process \
             lacks {}; run as root (`sudo osprey ...`) or grant them, e.g. \
             `setcap cap_bpf,cap_perfmon,cap_dac_read_search+ep osprey` ({}); \
             `osprey --synthetic` tries the output path without BPF",
            names.join(" and "),
            caps::NEEDED,
        );
    }
    Ok(caps)
}

fn btf_mode(cfg: &ProbeConfig) -> Result<BtfMode> {
    Ok(match &cfg.btf {
        Some(p) if !p.is_file() => bail!("--btf {}: no such file", p.display()),
        Some(p) => BtfMode::File(p.clone()),
        None if !Path::new(KERNEL_BTF).exists() => BtfMode::None,
        None => BtfMode::Kernel,
    })
}

/// tracefs, mounting it if needed (that takes CAP_SYS_ADMIN); a mounted
/// but unreadable one (root's, mode 0700) is named as such.
fn find_tracefs(caps: CapSet) -> Result<PathBuf> {
    if tracefs::find().is_none() {
        for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
            if let Err(e) = Path::new(dir).join("events").metadata() {
                if e.kind() == ErrorKind::PermissionDenied && !caps.reads_any_file() {
                    bail!(
                        "tracefs at {dir} is not readable by this user ({e}): attaching to tracepoints needs \
                         CAP_DAC_READ_SEARCH (tracefs is root's, mode 0700), or run as root"
                    );
                }
            }
        }
        if !caps.has(caps::CAP_SYS_ADMIN) {
            bail!(
                "tracefs is not mounted, and mounting it needs CAP_SYS_ADMIN: mount it first \
                 (`mount -t tracefs nodev /sys/kernel/tracing`) or run as root"
            );
        }
    }
    tracefs::ensure_mounted()
}

/// The BTF-less fallback relies on the syscall tracepoint layout alone: check it.
fn check_fallback_layouts(tracefs: &Path) -> Result<()> {
    let bad: Vec<String> = tracefs::verify_layouts(tracefs)
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
    Ok(())
}
