// SPDX-License-Identifier: GPL-3.0-or-later
//! /proc socket tables: what the BTF-less fallback uses instead of reading
//! `struct sock` in the kernel — TCP addresses by socket inode
//! (`/proc/<pid>/net/tcp{,6}`, the process's own network namespace) and the
//! sockets a process holds (`/proc/<pid>/fd`).

use std::collections::HashMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::event::SockAddrs;

/// TCP state "ESTABLISHED" in /proc/net/tcp.
pub const TCP_ESTABLISHED: u8 = 0x01;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpEntry {
    pub addrs: SockAddrs,
    pub state: u8,
}

/// "0100007F:22E3" (v4) or 32 hex digits + port (v6), as the kernel prints
/// them: each 32-bit word in host (little-endian) order.
fn parse_hex_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip, 16).ok()?.to_le_bytes(),
        )),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                // get(): a 32-byte field that is not ASCII has no char boundary there
                let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
                b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            Ipv6Addr::from(b).to_canonical()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Parse a /proc/net/tcp or tcp6 table into inode → entry. Never panics.
pub fn parse_tcp_table(text: &str, out: &mut HashMap<u64, TcpEntry>) {
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Some(local), Some(remote), Ok(state), Ok(inode)) = (
            parse_hex_addr(f[1]),
            parse_hex_addr(f[2]),
            u8::from_str_radix(f[3], 16),
            f[9].parse::<u64>(),
        ) else {
            continue;
        };
        if inode != 0 {
            out.insert(
                inode,
                TcpEntry {
                    addrs: SockAddrs { local, remote },
                    state,
                },
            );
        }
    }
}

/// TCP sockets visible from `pid`'s network namespace, by inode.
pub fn tcp_table(pid: u32) -> HashMap<u64, TcpEntry> {
    let mut m = HashMap::new();
    for t in ["tcp", "tcp6"] {
        if let Ok(text) = fs::read_to_string(format!("/proc/{pid}/net/{t}")) {
            parse_tcp_table(&text, &mut m);
        }
    }
    m
}

/// Socket inode behind `pid`'s `fd` ("socket:[12345]"), if it is a socket.
pub fn socket_inode(pid: u32, fd: i32) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    parse_socket_link(&link.to_string_lossy())
}

pub fn parse_socket_link(s: &str) -> Option<u64> {
    s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// (fd, inode) of every socket `pid` holds.
pub fn process_sockets(pid: u32) -> Vec<(i32, u64)> {
    let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    rd.filter_map(|e| {
        let e = e.ok()?;
        let fd: i32 = e.file_name().to_str()?.parse().ok()?;
        let ino = parse_socket_link(&fs::read_link(e.path()).ok()?.to_string_lossy())?;
        Some((fd, ino))
    })
    .collect()
}

/// Every process id in /proc.
pub fn pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// Resolves connection addresses by (pid, fd), re-reading a process's tables
/// only when an inode is not in the cached copy.
#[derive(Default)]
pub struct Resolver {
    cache: HashMap<u32, HashMap<u64, TcpEntry>>,
}

/// What became of a lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Tcp(SockAddrs),
    /// The fd is a socket but not a TCP one (UDP, AF_UNIX...).
    NotTcp,
    /// The fd is gone (closed, or the process exited) before we looked.
    Gone,
}

impl Resolver {
    pub fn lookup(&mut self, pid: u32, fd: i32) -> Lookup {
        let Some(ino) = socket_inode(pid, fd) else {
            return Lookup::Gone;
        };
        if let Some(e) = self.cache.get(&pid).and_then(|t| t.get(&ino)) {
            return Lookup::Tcp(e.addrs);
        }
        if self.cache.len() > 4096 {
            self.cache.clear();
        }
        let t = self.cache.entry(pid).or_default();
        *t = tcp_table(pid);
        match t.get(&ino) {
            Some(e) => Lookup::Tcp(e.addrs),
            // Not in the table: only proof of "not TCP" if the fd still
            // holds the same socket after the table was read (it existed
            // throughout); otherwise it closed meanwhile.
            None if socket_inode(pid, fd) == Some(ino) => Lookup::NotTcp,
            None => Lookup::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 13463 1 0000000000000000 100 0 0 10 0
   1: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 20001 1 0000000000000000 20 4 30 10 -1
   2: garbage
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000     0        0 30003 1 0000000000000000 20 4 0 10 -1
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D432 01 00000000:00000000 00:00000000 00000000     0        0 30004 1 0000000000000000 20 4 0 10 -1
";

    #[test]
    fn parses_v4_and_v6_tables() {
        let mut m = HashMap::new();
        parse_tcp_table(TCP, &mut m);
        parse_tcp_table(TCP6, &mut m);
        assert_eq!(m.len(), 4);
        let e = m[&20001];
        assert_eq!(e.state, TCP_ESTABLISHED);
        assert_eq!(e.addrs.local.to_string(), "127.0.0.1:40000");
        assert_eq!(e.addrs.remote.to_string(), "127.0.0.1:8080");
        assert_eq!(m[&13463].state, 0x0A);
        assert_eq!(m[&30003].addrs.local.to_string(), "[::1]:8080");
        assert_eq!(m[&30003].addrs.remote.port(), 0xD431);
        // v4-mapped v6 shows as v4, like the BTF path
        assert_eq!(m[&30004].addrs.remote.to_string(), "127.0.0.1:54322");
    }

    #[test]
    fn non_ascii_addresses_are_skipped_not_a_panic() {
        // 32 bytes, but 'é' straddles byte 8: no char boundary to cut at
        let line = "   0: 0000000é00000000000000000000001:1F90 00000000000000000000000001000000:D431 01 0:0 0:0 0 0 0 30005 1";
        let mut m = HashMap::new();
        parse_tcp_table(&format!("header\n{line}\n"), &mut m);
        assert!(m.is_empty());
        assert_eq!(parse_hex_addr("0000000é00000000000000000000001:1F90"), None);
    }

    #[test]
    fn socket_links() {
        assert_eq!(parse_socket_link("socket:[12345]"), Some(12345));
        assert_eq!(parse_socket_link("/dev/null"), None);
        assert_eq!(parse_socket_link("socket:[x]"), None);
    }

    #[test]
    fn resolves_a_real_connection_of_this_process() {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let me = std::process::id();
        let mut r = Resolver::default();
        match r.lookup(me, c.as_raw_fd()) {
            Lookup::Tcp(a) => {
                assert_eq!(a.local, c.local_addr().unwrap());
                assert_eq!(a.remote, l.local_addr().unwrap());
            }
            other => panic!("{other:?}"),
        }
        assert!(process_sockets(me)
            .iter()
            .any(|&(fd, _)| fd == s.as_raw_fd()));
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(r.lookup(me, u.as_raw_fd()), Lookup::NotTcp);
        assert_eq!(r.lookup(me, 99_999), Lookup::Gone);
    }
}
