// SPDX-License-Identifier: GPL-3.0-or-later
//! Go `crypto/tls`: the uprobes of bpf/go_tls.bpf.h on a Go executable
//! ([`gobin`](super::gobin) finds the offsets). Attached once per file
//! (device and inode) for every process (pid -1), like the libraries; the
//! allowlist is applied in the kernel. x86-64 only.

use libbpf_rs::{Link, Object, UprobeOpts};

use super::gobin::GoTls;

/// The Go struct offsets the kernel side reads (bpf/go_tls.bpf.h has the
/// same numbers; a unit test compares them, tests/live_tls_go.rs checks
/// them against the installed Go): `tls.Conn.conn`'s interface data word,
/// `net.TCPConn`'s `fd`, `netFD.pfd.Sysfd`, `netFD.family`, `netFD.sotype`.
pub const OFFSETS: [(&str, u64); 5] = [
    ("GO_TLS_CONN_IFACE_DATA", 8),
    ("GO_TCPCONN_FD", 0),
    ("GO_NETFD_SYSFD", 16),
    ("GO_NETFD_FAMILY", 56),
    ("GO_NETFD_SOTYPE", 64),
];

/// Attach the Go TLS uprobes to `path`: RETs first (an entry seen must
/// find its returns attached), then the entries. The handshake probe is
/// optional.
pub fn attach(obj: &Object, path: &str, t: &GoTls) -> Result<Vec<Link>, String> {
    let mut links = Vec::new();
    let mut one = |prog: &str, off: u64, required: bool| -> Result<(), String> {
        let Some(p) = obj.progs_mut().find(|x| x.name().to_str() == Some(prog)) else {
            return Err(format!("the BPF object has no program {prog}"));
        };
        let off = usize::try_from(off).map_err(|_| format!("offset {off:#x} too large"))?;
        match p.attach_uprobe_with_opts(-1, path, off, UprobeOpts::default()) {
            Ok(l) => {
                links.push(l);
                Ok(())
            }
            Err(e) if required => Err(format!("uprobe {prog} at {off:#x} failed: {e}")),
            Err(e) => {
                log::debug!("TLS: {path}: {prog} at {off:#x} not attached ({e})");
                Ok(())
            }
        }
    };
    for off in t.write.rets.iter().chain(&t.read.rets) {
        one("go_tls_ret", *off, true)?;
    }
    one("go_tls_write", t.write.entry, true)?;
    one("go_tls_read", t.read.entry, true)?;
    if let Some(h) = &t.handshake {
        one("go_tls_handshake", h.entry, false)?;
    }
    Ok(links)
}

/// Is the ELF file at `path` a Go binary (a `.gopclntab` or
/// `.go.buildinfo` section)? Reads the headers only.
fn is_go_file(path: &str) -> bool {
    use object::{Object, ObjectSection};
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let cache = object::ReadCache::new(f);
    let Ok(file) = object::File::parse(&cache) else {
        return false;
    };
    let found = file
        .sections()
        .any(|s| matches!(s.name(), Ok(".gopclntab" | ".go.buildinfo")));
    found
}

/// The Go executables using crypto/tls that running processes execute,
/// one per file: (path as the process sees it, what it is, processes),
/// for `osprey check`.
pub fn find_go_binaries() -> Vec<(String, super::gobin::GoVerdict, usize)> {
    use std::os::unix::fs::MetadataExt;
    let mut seen: std::collections::HashMap<
        (u64, u64),
        (String, Option<super::gobin::GoVerdict>, usize),
    > = Default::default();
    let me = std::process::id();
    for pid in crate::procnet::pids() {
        if pid == me {
            continue;
        }
        let Ok(link) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
            continue;
        };
        let Some(link) = link.to_str().filter(|l| !l.ends_with(" (deleted)")) else {
            continue;
        };
        let path = format!("/proc/{pid}/root{link}");
        let Ok(md) = std::fs::metadata(&path) else {
            continue;
        };
        let e = seen.entry((md.dev(), md.ino())).or_insert_with(|| {
            let v = (is_go_file(&path) && md.len() <= 1 << 30)
                .then(|| std::fs::read(&path).ok())
                .flatten()
                .map(|d| super::gobin::inspect(&d));
            (link.to_string(), v, 0)
        });
        e.2 += 1;
    }
    let mut v: Vec<_> = seen
        .into_values()
        .filter_map(|(p, v, n)| match v {
            Some(super::gobin::GoVerdict::NotGoTls) | None => None,
            Some(v) => Some((p, v, n)),
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_the_kernel_side() {
        let h = include_str!("../../bpf/go_tls.bpf.h");
        for (name, v) in OFFSETS {
            let line = h
                .lines()
                .find(|l| l.starts_with(&format!("#define {name} ")))
                .unwrap_or_else(|| panic!("{name} not in bpf/go_tls.bpf.h"));
            let n: u64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
            assert_eq!(n, v, "{name}");
        }
    }
}
