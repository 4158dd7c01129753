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
