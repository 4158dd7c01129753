// SPDX-License-Identifier: GPL-3.0-or-later
//! Owned, platform-independent event model.
//!
//! Everything past the ring buffer works on these types: the decoder turns raw
//! kernel records (see `include/osprey.h`) into them, `--synthetic` generates
//! them, and the connection tracker consumes them. Nothing here needs root.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// A connection id that survives pid and fd reuse: the process (tgid plus its
/// start time) and the fd, plus a generation the probe assigns each time it
/// starts tracking a connection on that fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ConnId {
    pub tgid: u32,
    /// Process start time (ns since boot), distinguishes reused pids.
    pub proc_start_ns: u64,
    pub fd: i32,
    /// Per-probe unique generation number of this connection.
    pub gen: u64,
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}-{}",
            self.tgid, self.proc_start_ns, self.fd, self.gen
        )
    }
}

/// Direction of bytes relative to the traced process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The process sent these bytes (write/send*).
    Egress,
    /// The process received these bytes (read/recv*).
    Ingress,
}

impl Direction {
    pub fn index(self) -> usize {
        match self {
            Direction::Egress => 0,
            Direction::Ingress => 1,
        }
    }
    pub fn opposite(self) -> Direction {
        match self {
            Direction::Egress => Direction::Ingress,
            Direction::Ingress => Direction::Egress,
        }
    }
}

/// Which end of the TCP connection the traced process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Not known (connection first seen mid-stream); the tracker infers it
    /// from which side sends a request first.
    Unknown,
    /// The process called connect().
    Client,
    /// The process accepted the connection.
    Server,
}

impl Role {
    /// The serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Unknown => "unknown",
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The syscall that produced an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Syscall {
    Connect,
    Accept,
    Accept4,
    Close,
    Read,
    Write,
    Readv,
    Writev,
    Sendto,
    Recvfrom,
    Sendmsg,
    Recvmsg,
    /// sendfile(2): bytes counted, not captured.
    Sendfile,
    /// splice(2) from or to the socket: bytes counted, not captured.
    Splice,
    /// sendmmsg(2): the messages' bytes counted, not captured.
    Sendmmsg,
    /// recvmmsg(2): the messages' bytes counted, not captured.
    Recvmmsg,
    /// Not a syscall: the connection was first seen mid-stream by a data event.
    Unknown,
    // TLS plaintext: the library call that moved the bytes (positions are
    // the plaintext stream's; the connection is the socket's under it).
    #[serde(rename = "ssl_read")]
    OpensslRead,
    #[serde(rename = "ssl_write")]
    OpensslWrite,
    #[serde(rename = "ssl_read_ex")]
    OpensslReadEx,
    #[serde(rename = "ssl_write_ex")]
    OpensslWriteEx,
    #[serde(rename = "ssl_read")]
    BoringsslRead,
    #[serde(rename = "ssl_write")]
    BoringsslWrite,
    #[serde(rename = "ssl_read_ex")]
    BoringsslReadEx,
    #[serde(rename = "ssl_write_ex")]
    BoringsslWriteEx,
    #[serde(rename = "go_tls_read")]
    GoTlsRead,
    #[serde(rename = "go_tls_write")]
    GoTlsWrite,
}

/// A TLS library whose plaintext Osprey captures (records' `tls_library`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsLibrary {
    OpenSsl,
    BoringSsl,
    Go,
}

impl TlsLibrary {
    /// The serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsLibrary::OpenSsl => "openssl",
            TlsLibrary::BoringSsl => "boringssl",
            TlsLibrary::Go => "go",
        }
    }

    /// The library named `s` (records read back).
    pub fn from_name(s: &str) -> Option<TlsLibrary> {
        [TlsLibrary::OpenSsl, TlsLibrary::BoringSsl, TlsLibrary::Go]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

impl Syscall {
    /// The TLS library of a plaintext event's call (None: a syscall).
    pub fn tls_library(self) -> Option<TlsLibrary> {
        use Syscall::*;
        match self {
            OpensslRead | OpensslWrite | OpensslReadEx | OpensslWriteEx => {
                Some(TlsLibrary::OpenSsl)
            }
            BoringsslRead | BoringsslWrite | BoringsslReadEx | BoringsslWriteEx => {
                Some(TlsLibrary::BoringSsl)
            }
            GoTlsRead | GoTlsWrite => Some(TlsLibrary::Go),
            _ => None,
        }
    }
}

/// Local and remote address of a connection (IPv4 or IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SockAddrs {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl SockAddrs {
    pub fn is_ipv6(&self) -> bool {
        matches!(self.local.ip(), IpAddr::V6(_))
    }
}

/// The traced process/thread that made the syscall.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcInfo {
    pub tgid: u32,
    pub tid: u32,
    pub comm: Comm,
}

/// A process's command name: the kernel's bytes as the decoder read them
/// (no allocation, nothing counted per event), or text. [`Comm::shared`]
/// gives it as text shared with every other use of the same name.
#[derive(Clone)]
pub enum Comm {
    /// Up to the first NUL; not UTF-8 checked until read.
    Raw([u8; crate::abi::COMM_LEN]),
    Text(std::sync::Arc<str>),
}

impl Comm {
    /// As shared text: a raw name is converted once and then shared with
    /// the events before it of the same name ([`crate::decode`]).
    pub fn shared(&self) -> std::sync::Arc<str> {
        match self {
            Comm::Raw(raw) => crate::decode::comm_shared(raw),
            Comm::Text(t) => t.clone(),
        }
    }

    /// As text (invalid UTF-8 replaced).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Comm::Raw(raw) => crate::decode::comm_text(raw),
            Comm::Text(t) => std::borrow::Cow::Borrowed(t),
        }
    }
}

impl From<&str> for Comm {
    fn from(s: &str) -> Comm {
        Comm::Text(s.into())
    }
}

impl From<String> for Comm {
    fn from(s: String) -> Comm {
        Comm::Text(s.into())
    }
}

impl From<std::sync::Arc<str>> for Comm {
    fn from(s: std::sync::Arc<str>) -> Comm {
        Comm::Text(s)
    }
}

/// Equal as text, however each is held.
impl PartialEq for Comm {
    fn eq(&self, other: &Comm) -> bool {
        self.text() == other.text()
    }
}

impl Eq for Comm {}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text(), f)
    }
}

impl Serialize for Comm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

/// A connection started being tracked: connect() or accept() returned, or a
/// data syscall was seen on a socket the probe did not know yet.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConnOpen {
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    pub conn: ConnId,
    pub proc: ProcInfo,
    pub role: Role,
    /// None when the kernel could not read the addresses (e.g. no BTF).
    pub addrs: Option<SockAddrs>,
    /// The connection existed before the probe saw its setup.
    pub midstream: bool,
    pub syscall: Syscall,
    /// cgroup v2 id of the task that opened it (0: not known).
    pub cgroup_id: u64,
    /// Who opened it (cgroup, container, Pod, executable), filled by user
    /// space from `cgroup_id` and the process ([`crate::identity`]); None
    /// where nothing resolved it (synthetic, wire, tests).
    #[serde(skip)]
    pub identity: Option<crate::identity::ConnIdentity>,
}

/// Bytes moved by one data syscall (or one iovec of it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataEvent {
    /// CLOCK_MONOTONIC nanoseconds at syscall exit.
    pub ts_ns: u64,
    /// CLOCK_MONOTONIC nanoseconds at syscall entry (0 if unknown).
    pub start_ns: u64,
    pub conn: ConnId,
    pub proc: ProcInfo,
    pub dir: Direction,
    /// Stream position of the first byte of this event in its direction.
    pub pos: u64,
    /// Bytes the syscall really moved (may exceed `payload.len()`).
    pub orig_len: u32,
    /// Captured bytes: the first `payload.len()` bytes of the transfer.
    #[serde(skip_serializing)]
    pub payload: Vec<u8>,
    pub syscall: Syscall,
    /// The kernel could not read (part of) the process's buffer
    /// (`OSPREY_F_READ_FAULT`: a page not resident at the hook): the bytes
    /// past `payload` are missing for that reason, not the capture cap.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fault: bool,
}

impl DataEvent {
    pub fn cap_len(&self) -> u32 {
        self.payload.len() as u32
    }
    pub fn truncated(&self) -> bool {
        (self.payload.len() as u64) < self.orig_len as u64
    }
}

/// The traced process closed the connection (or the probe stopped tracking it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CloseEvent {
    pub ts_ns: u64,
    pub conn: ConnId,
    pub proc: ProcInfo,
    /// Final stream positions: total bytes sent / received while tracked.
    pub tx_bytes: u64,
    pub rx_bytes: u64,
}

/// One decoded probe event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// Boxed: an OPEN comes once a connection, and the others, moved a
    /// few times an event, stay small (104 bytes, not 160).
    Open(Box<ConnOpen>),
    Data(DataEvent),
    Close(CloseEvent),
}

impl Event {
    pub fn open(o: ConnOpen) -> Event {
        Event::Open(Box::new(o))
    }

    pub fn conn(&self) -> &ConnId {
        match self {
            Event::Open(e) => &e.conn,
            Event::Data(e) => &e.conn,
            Event::Close(e) => &e.conn,
        }
    }
    /// A DATA event decoded apart from its captured bytes
    /// ([`crate::decode::decode_each`]) gets them back as its own.
    pub fn with_payload(mut self, payload: &[u8]) -> Event {
        if let Event::Data(d) = &mut self {
            d.payload = payload.to_vec();
        }
        self
    }

    pub fn ts_ns(&self) -> u64 {
        match self {
            Event::Open(e) => e.ts_ns,
            Event::Data(e) => e.ts_ns,
            Event::Close(e) => e.ts_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    /// An event is moved by value from the decoder to the tracker a few
    /// times: kept at or under 128 bytes, each move is a few register
    /// copies, not a call to memcpy.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_event_stays_small_enough_to_move_without_memcpy() {
        assert!(std::mem::size_of::<super::Event>() <= 128);
    }

    #[test]
    fn a_raw_command_name_reads_as_the_text_up_to_its_nul_and_is_shared() {
        use super::Comm;
        let mut raw = [0u8; crate::abi::COMM_LEN];
        raw[..5].copy_from_slice(b"nginx");
        raw[6] = b'x'; // past the NUL: not part of the name
        let c = Comm::Raw(raw);
        assert_eq!(c.text(), "nginx");
        assert_eq!(c, Comm::from("nginx"));
        assert_ne!(c, Comm::from("nginx:"));
        assert_eq!(format!("{c} {c:?}"), "nginx \"nginx\"");
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"nginx\"");
        // converted once, then the same allocation for the same name
        assert!(std::sync::Arc::ptr_eq(
            &c.shared(),
            &Comm::Raw(raw).shared()
        ));
        assert_eq!(&*c.shared(), "nginx");
        // bytes that are not UTF-8 are replaced, all 16 used when no NUL
        let mut odd = [b'a'; crate::abi::COMM_LEN];
        odd[0] = 0xff;
        assert_eq!(Comm::Raw(odd).text(), format!("\u{fffd}{}", "a".repeat(15)));
    }
}
