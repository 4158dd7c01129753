// SPDX-License-Identifier: GPL-3.0-or-later
//! `osprey check`: can this kernel run Osprey?

use std::fs;
use std::path::Path;

use anyhow::{bail, Result};

use crate::{bpf, tracefs};

pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// (major, minor) of a release string like "6.1.0-26-amd64".
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The oldest kernel Osprey supports (docs/compatibility.md). The programs
/// need the BPF ring buffer (5.8), task-local storage and
/// `bpf_get_current_task_btf` in tracing programs (5.11) and BPF atomic
/// fetch-and-add/cmpxchg (5.12); 5.12-5.14 were short-lived (no LTS) and
/// no row of scripts/kernel-matrix.sh runs them, so `check` does not pass
/// them: 5.15 is the oldest LTS kernel with all of it (the socket hooks
/// need 6.3, and fall back to the syscall hooks below).
pub const MIN_KERNEL: (u32, u32) = (5, 15);

/// Why a kernel older than [`MIN_KERNEL`] fails `check`.
fn too_old(v: (u32, u32)) -> &'static str {
    if v < (5, 8) {
        "too old: no BPF ring buffer (5.8+); supported: 5.15+"
    } else if v < (5, 11) {
        "too old: no task-local storage for tracing programs (5.11+); supported: 5.15+"
    } else if v < (5, 12) {
        "too old: no BPF atomic fetch-and-add and cmpxchg (5.12+); supported: 5.15+"
    } else {
        "not supported: 5.12-5.14 were short-lived releases (no LTS) that no test runs; supported: 5.15+"
    }
}

pub fn run(mount: bool, allow: &crate::tls::attach::Allow) -> Result<()> {
    let mut failures = 0;
    let mut line = |ok: bool, what: &str, detail: String| {
        if !ok {
            failures += 1;
        }
        println!("{:4}  {what:<38} {detail}", if ok { "ok" } else { "FAIL" });
    };
    let rel = kernel_release();
    let ver = kernel_version(&rel);
    line(
        ver.is_some_and(|v| v >= MIN_KERNEL),
        "kernel (5.15+)",
        match ver {
            Some(v) if v < MIN_KERNEL => format!("{rel}: {}", too_old(v)),
            None => format!("{rel}: cannot tell the version; supported: 5.15+"),
            _ => rel.clone(),
        },
    );
    let btf = Path::new(bpf::KERNEL_BTF).exists();
    line(
        true,
        "kernel BTF",
        if btf {
            bpf::KERNEL_BTF.into()
        } else {
            format!(
                "{} missing: the BTF-less fallback will run (or pass --btf FILE)",
                bpf::KERNEL_BTF
            )
        },
    );
    // capabilities, not the uid: root without them cannot load either
    let missing = bpf::caps::CapSet::current().map(|c| c.missing_for_load());
    line(
        missing.as_ref().is_some_and(|m| m.is_empty()),
        "privileges",
        match missing {
            None => "cannot read CapEff in /proc/self/status".into(),
            Some(m) if m.is_empty() => "CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN) effective".into(),
            Some(m) => format!(
                "missing {}: loading needs CAP_BPF + CAP_PERFMON",
                m.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    );

    let root_dir = if mount {
        tracefs::ensure_mounted().map_err(|e| e.to_string())
    } else {
        tracefs::find().ok_or_else(|| "not mounted".to_string())
    };
    match root_dir {
        Err(e) => line(false, "tracefs", e),
        Ok(dir) => {
            line(true, "tracefs", dir.display().to_string());
            let mode = if btf {
                bpf::BtfMode::Kernel
            } else {
                bpf::BtfMode::None
            };
            line(
                true,
                "hooks (--hooks auto)",
                match bpf::socket_hooks_unavailable(&mode, &dir) {
                    None => "socket: sock:sock_send_length/sock_recv_length, sock:inet_sock_set_state, tcp:tcp_destroy_sock".into(),
                    Some(why) => format!("syscalls: the socket hooks cannot run ({why})"),
                },
            );
            for (tp, res) in tracefs::verify_layouts(&dir) {
                match res {
                    Ok(()) => line(true, &tp, "present, layout as assumed".into()),
                    Err(e) => line(false, &tp, e),
                }
            }
        }
    }
    // TLS plaintext: uprobes (one is created, disabled, and closed), and
    // the libraries they would go on
    let uprobes = crate::tls::attach::uprobe_probe();
    line(
        uprobes.is_ok(),
        "uprobes (TLS plaintext)",
        match &uprobes {
            Ok(()) => {
                let guard = crate::tls::kfuncless_uprobe_guard(&rel).filter(|_| !btf);
                format!(
                    "work (a uprobe was created through perf_event_open){}",
                    guard.map(|g| format!("; {g}")).unwrap_or_default()
                )
            }
            Err(e) => format!("{e}: TLS stays ciphertext (--tls off)"),
        },
    );
    let selected = !allow.pids.is_empty() || !allow.comms.is_empty();
    for pid in &allow.pids {
        let here = Path::new(&format!("/proc/{pid}")).exists();
        line(
            here,
            &format!("--pid {pid}"),
            if here {
                format!(
                    "running ({})",
                    crate::procnet::comm(*pid).unwrap_or_default()
                )
            } else {
                "no such process".into()
            },
        );
    }
    let libs = crate::tls::attach::find_libraries(allow);
    line(
        true,
        if selected {
            "TLS libraries (--pid/--comm)"
        } else {
            "TLS libraries"
        },
        if libs.is_empty() {
            "none found (libssl.so* in the library directories or mapped by a process, \
             OpenSSL/BoringSSL linked into an executable)"
                .into()
        } else {
            libs.iter()
                .map(|l| {
                    let who = if selected {
                        "selected processes"
                    } else {
                        "processes"
                    };
                    format!("{} ({}, {} {who})", l.path, l.lib.as_str(), l.how)
                })
                .collect::<Vec<_>>()
                .join("; ")
        },
    );
    // Go crypto/tls in the executables of running processes
    let go = crate::tls::go::find_go_binaries();
    line(
        true,
        "Go TLS binaries",
        if go.is_empty() {
            "none running (Go executables using crypto/tls)".into()
        } else {
            go.iter()
                .map(|(p, v, n)| match v {
                    crate::tls::gobin::GoVerdict::Supported(t) => format!(
                        "{p} ({}, symbols from {}, run by {n} processes)",
                        t.version.as_deref().unwrap_or("go, version unknown"),
                        if t.from_pclntab {
                            ".gopclntab"
                        } else {
                            ".symtab"
                        }
                    ),
                    crate::tls::gobin::GoVerdict::Unsupported(why) => {
                        format!("{p} (not captured: {why})")
                    }
                    crate::tls::gobin::GoVerdict::NotGoTls => String::new(),
                })
                .collect::<Vec<_>>()
                .join("; ")
        },
    );
    match bpf::program_sections() {
        Ok(p) => line(true, "embedded BPF object", format!("{} programs", p.len())),
        Err(e) => line(false, "embedded BPF object", format!("{e:#}")),
    }
    if failures > 0 {
        bail!("{failures} check(s) failed");
    }
    println!("all checks passed");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions() {
        assert_eq!(super::kernel_version("6.1.0-26-amd64"), Some((6, 1)));
        assert_eq!(super::kernel_version("5.15.0"), Some((5, 15)));
        assert_eq!(super::kernel_version("garbage"), None);
    }

    #[test]
    fn the_oldest_kernel_is_the_documented_one() {
        use super::{too_old, MIN_KERNEL};
        assert_eq!(MIN_KERNEL, (5, 15));
        // the README's requirement and the kernel matrix's expected-FAIL line
        assert!(include_str!("../README.md").contains("**Linux 5.15 or newer.**"));
        assert!(include_str!("../scripts/kernel-matrix.sh").contains("\nMIN_SUPPORTED=5.15 "));
        assert!(too_old((5, 10)).contains("task-local storage"));
        assert!(too_old((5, 14)).contains("not supported"));
        assert!(too_old((4, 19)).contains("ring buffer"));
    }
}
