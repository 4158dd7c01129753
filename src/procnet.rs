// SPDX-License-Identifier: GPL-3.0-or-later
//! /proc socket tables: what the BTF-less fallback uses instead of reading
//! `struct sock` in the kernel — TCP addresses by socket inode
//! (`/proc/<pid>/net/tcp{,6}`, the process's own network namespace), the
//! sockets a process holds (`/proc/<pid>/fd`) and their protocols (the
//! `system.sockprotoname` attribute of the socket the fd links to).

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

/// The kernel's name for the protocol of the socket behind `pid`'s `fd`
/// ("TCP", "TCPv6", "UDP", "UNIX-STREAM"...: the `system.sockprotoname`
/// extended attribute sockfs gives every socket, Linux 3.9+), if it is a
/// socket and the kernel says. One `getxattr(2)`, no table read; the same
/// access as reading the fd's link (ptrace read access to `pid`).
pub fn socket_proto(pid: u32, fd: i32) -> Option<String> {
    let path = std::ffi::CString::new(format!("/proc/{pid}/fd/{fd}")).ok()?;
    // struct proto's name is char[32]
    let mut buf = [0u8; 64];
    // SAFETY: both strings are NUL-terminated; buf is writable for its length
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"system.sockprotoname".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let v = buf.get(..usize::try_from(n).ok()?)?;
    let name = v.split(|&b| b == 0).next()?;
    (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned())
}

/// Whether a `socket_proto` name is TCP's (IPv4 or IPv6). MPTCP is not:
/// like the socket hooks (`sk_protocol == IPPROTO_TCP`), Osprey traces TCP.
pub fn is_tcp_proto(name: &str) -> bool {
    matches!(name, "TCP" | "TCPv6")
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
    /// The fd is a socket and the kernel names another protocol than TCP
    /// (UDP, AF_UNIX...).
    NotTcp,
    /// The fd still holds a socket that is in no TCP table: a TCP socket
    /// that left the kernel's tables while the process keeps its fd (reset
    /// by the peer, or closed: a short connection may be, by the time its
    /// OPEN record is read), or not connected (yet); or a socket whose
    /// protocol the kernel did not name. Its addresses are unknown; it is
    /// not "not TCP".
    Unlisted,
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
        // "Not TCP" only on the kernel's word: absence from the TCP tables
        // is no proof (a reset or closed TCP socket the process still
        // holds is not listed), and it saves reading the tables.
        let res = match socket_proto(pid, fd) {
            Some(p) if !is_tcp_proto(&p) => Lookup::NotTcp,
            _ => {
                if self.cache.len() > 4096 {
                    self.cache.clear();
                }
                let t = self.cache.entry(pid).or_default();
                *t = tcp_table(pid);
                match t.get(&ino) {
                    // the inode is this socket's, whatever the fd holds now
                    Some(e) => return Lookup::Tcp(e.addrs),
                    None => Lookup::Unlisted,
                }
            }
        };
        // The protocol, or the absence, is this socket's only if the fd
        // still holds it after they were read (it did throughout);
        // otherwise it closed meanwhile.
        if socket_inode(pid, fd) == Some(ino) {
            res
        } else {
            Lookup::Gone
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

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

    /// A loopback TCP connection of this process: the listener, the
    /// connecting end and the accepted end.
    fn connected_pair() -> (TcpListener, TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (l, c, s)
    }

    #[test]
    fn resolves_a_real_connection_of_this_process() {
        use std::os::fd::AsRawFd;
        let (l, c, s) = connected_pair();
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

    #[test]
    fn the_kernel_names_socket_protocols() {
        use std::os::fd::AsRawFd;
        let me = std::process::id();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (x, _y) = std::os::unix::net::UnixStream::pair().unwrap();
        let proto = |fd| socket_proto(me, fd);
        assert_eq!(proto(l.as_raw_fd()).as_deref(), Some("TCP"));
        assert_eq!(proto(u.as_raw_fd()).as_deref(), Some("UDP"));
        // "UNIX-STREAM" since Linux 5.15, "UNIX" before
        assert!(proto(x.as_raw_fd()).unwrap().starts_with("UNIX"));
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        assert_eq!(proto(f.as_raw_fd()), None, "not a socket");
        assert_eq!(proto(99_999), None);
        assert!(is_tcp_proto("TCP") && is_tcp_proto("TCPv6"));
        assert!(!is_tcp_proto("UDP") && !is_tcp_proto("MPTCP") && !is_tcp_proto(""));
    }

    #[test]
    fn udp_and_unix_sockets_are_not_tcp() {
        use std::os::fd::AsRawFd;
        let me = std::process::id();
        let mut r = Resolver::default();
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        u.connect(u.local_addr().unwrap()).unwrap();
        let (x, _y) = std::os::unix::net::UnixStream::pair().unwrap();
        let d = std::os::unix::net::UnixDatagram::unbound().unwrap();
        for fd in [u.as_raw_fd(), x.as_raw_fd(), d.as_raw_fd()] {
            assert_eq!(r.lookup(me, fd), Lookup::NotTcp, "fd {fd}");
        }
    }

    /// The inode of the socket behind our `fd`, asserted to be in no TCP
    /// table of this process.
    fn unlisted_inode(fd: i32) -> u64 {
        let me = std::process::id();
        let ino = socket_inode(me, fd).unwrap();
        assert!(!tcp_table(me).contains_key(&ino), "socket {ino} is listed");
        ino
    }

    /// The CI flake: a TCP connection reset by its peer leaves the kernel's
    /// tables while the process still holds its fd; /proc/net/tcp does not
    /// list it. It was dropped as "not TCP".
    #[test]
    fn a_reset_tcp_connection_still_held_is_not_called_not_tcp() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let me = std::process::id();
        let (_l, mut c, s) = connected_pair();
        let mut r = Resolver::default();
        // it was listed: the cache holds another copy of the table
        assert!(matches!(r.lookup(me, c.as_raw_fd()), Lookup::Tcp(_)));
        let ino = socket_inode(me, c.as_raw_fd()).unwrap();
        r.cache.clear();
        // SO_LINGER 0: close() sends an RST instead of a FIN
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid fd and a linger struct of the size given
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                std::ptr::from_ref(&linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
        drop(s);
        // the read returns once the RST has been processed
        let e = c.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
        assert_eq!(unlisted_inode(c.as_raw_fd()), ino);
        assert_eq!(r.lookup(me, c.as_raw_fd()), Lookup::Unlisted);
    }

    /// Closed both ways (the peer's FIN, then ours, acknowledged): gone from
    /// the tables while the fd is open; as is a socket not connected yet.
    #[test]
    fn a_closed_or_unconnected_tcp_socket_still_held_is_unlisted() {
        use std::io::Read;
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let me = std::process::id();
        let (_l, mut c, s) = connected_pair();
        let ino = socket_inode(me, c.as_raw_fd()).unwrap();
        drop(s); // FIN: c in CLOSE_WAIT
        assert_eq!(c.read(&mut [0u8; 16]).unwrap(), 0);
        // our FIN: LAST_ACK, then closed
        c.shutdown(std::net::Shutdown::Write).unwrap();
        // the peer's ACK is a packet away: wait for the state, not a time
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while tcp_table(me).contains_key(&ino) {
            assert!(std::time::Instant::now() < deadline, "still listed");
            std::thread::yield_now();
        }
        assert_eq!(unlisted_inode(c.as_raw_fd()), ino);
        let mut r = Resolver::default();
        assert_eq!(r.lookup(me, c.as_raw_fd()), Lookup::Unlisted);
        // SAFETY: socket(2) returns a new fd or -1 (then from_raw_fd is not reached)
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        assert!(raw >= 0);
        // SAFETY: raw is a new fd we own
        let u = unsafe { OwnedFd::from_raw_fd(raw) };
        unlisted_inode(u.as_raw_fd());
        assert_eq!(socket_proto(me, u.as_raw_fd()).as_deref(), Some("TCP"));
        assert_eq!(r.lookup(me, u.as_raw_fd()), Lookup::Unlisted);
    }
}
