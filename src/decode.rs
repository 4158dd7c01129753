// SPDX-License-Identifier: GPL-3.0-or-later
//! Raw ring-buffer record → owned [`Event`]. Never panics on any input.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use crate::abi::{self, Addrs, CloseRaw, DataHdrRaw, Hdr, OpenRaw, SegmentsRaw};
use crate::event::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Short {
        kind: u8,
        len: usize,
        need: usize,
    },
    UnknownKind(u8),
    BadLength {
        cap_len: u32,
        avail: usize,
    },
    /// A data record's table of segments does not add up.
    BadSegments(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Short { kind, len, need } => {
                write!(f, "record of kind {kind} is {len} bytes, need {need}")
            }
            DecodeError::UnknownKind(k) => write!(f, "unknown record kind {k}"),
            DecodeError::BadLength { cap_len, avail } => {
                write!(
                    f,
                    "data record claims {cap_len} payload bytes, {avail} present"
                )
            }
            DecodeError::BadSegments(why) => write!(f, "data record segments: {why}"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn read<T: plain::Plain + Default + Copy>(buf: &[u8], kind: u8) -> Result<T, DecodeError> {
    let mut v = T::default();
    plain::copy_from_bytes(&mut v, buf).map_err(|_| DecodeError::Short {
        kind,
        len: buf.len(),
        need: std::mem::size_of::<T>(),
    })?;
    Ok(v)
}

/// A raw command name as text: up to its first NUL, invalid UTF-8 replaced.
pub fn comm_text(comm: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end])
}

thread_local! {
    /// The last command name decoded (this thread's), raw and as text.
    static LAST_COMM: std::cell::RefCell<Option<([u8; abi::COMM_LEN], Arc<str>)>> =
        const { std::cell::RefCell::new(None) };
}

/// `comm` as text, shared with the events before it of the same name
/// (a burst of events is mostly one process's): no allocation per event.
pub(crate) fn comm_shared(comm: &[u8; abi::COMM_LEN]) -> Arc<str> {
    LAST_COMM.with_borrow_mut(|last| match last {
        Some((raw, s)) if raw == comm => s.clone(),
        _ => {
            let s: Arc<str> = comm_text(comm).into();
            *last = Some((*comm, s.clone()));
            s
        }
    })
}

fn conn_id(h: &Hdr) -> ConnId {
    ConnId {
        tgid: h.conn.tgid,
        proc_start_ns: h.conn.proc_start_ns,
        fd: h.conn.fd,
        gen: h.conn.gen,
    }
}

fn proc_info(h: &Hdr) -> ProcInfo {
    ProcInfo {
        tgid: h.tgid,
        tid: h.tid,
        // as read: made text only where a connection or a line needs it
        comm: crate::event::Comm::Raw(h.comm),
    }
}

pub fn syscall(n: u8) -> Syscall {
    match n {
        1 => Syscall::Connect,
        2 => Syscall::Accept,
        3 => Syscall::Accept4,
        4 => Syscall::Close,
        5 => Syscall::Read,
        6 => Syscall::Write,
        7 => Syscall::Readv,
        8 => Syscall::Writev,
        9 => Syscall::Sendto,
        10 => Syscall::Recvfrom,
        11 => Syscall::Sendmsg,
        12 => Syscall::Recvmsg,
        13 => Syscall::Sendfile,
        14 => Syscall::Splice,
        15 => Syscall::Sendmmsg,
        16 => Syscall::Recvmmsg,
        64 => Syscall::OpensslRead,
        65 => Syscall::OpensslWrite,
        66 => Syscall::OpensslReadEx,
        67 => Syscall::OpensslWriteEx,
        68 => Syscall::BoringsslRead,
        69 => Syscall::BoringsslWrite,
        70 => Syscall::BoringsslReadEx,
        71 => Syscall::BoringsslWriteEx,
        72 => Syscall::GoTlsRead,
        73 => Syscall::GoTlsWrite,
        _ => Syscall::Unknown,
    }
}

/// The header's number of `s`: [`syscall`] backwards (exhaustive, so a new
/// syscall cannot be left out of one direction).
pub fn syscall_code(s: Syscall) -> u8 {
    match s {
        Syscall::Connect => 1,
        Syscall::Accept => 2,
        Syscall::Accept4 => 3,
        Syscall::Close => 4,
        Syscall::Read => 5,
        Syscall::Write => 6,
        Syscall::Readv => 7,
        Syscall::Writev => 8,
        Syscall::Sendto => 9,
        Syscall::Recvfrom => 10,
        Syscall::Sendmsg => 11,
        Syscall::Recvmsg => 12,
        Syscall::Sendfile => 13,
        Syscall::Splice => 14,
        Syscall::Sendmmsg => 15,
        Syscall::Recvmmsg => 16,
        Syscall::OpensslRead => 64,
        Syscall::OpensslWrite => 65,
        Syscall::OpensslReadEx => 66,
        Syscall::OpensslWriteEx => 67,
        Syscall::BoringsslRead => 68,
        Syscall::BoringsslWrite => 69,
        Syscall::BoringsslReadEx => 70,
        Syscall::BoringsslWriteEx => 71,
        Syscall::GoTlsRead => 72,
        Syscall::GoTlsWrite => 73,
        Syscall::Unknown => 0,
    }
}

fn role(n: u8) -> Role {
    match n {
        abi::ROLE_CLIENT => Role::Client,
        abi::ROLE_SERVER => Role::Server,
        _ => Role::Unknown,
    }
}

/// IPv4-mapped IPv6 addresses (dual-stack sockets) are shown as IPv4.
pub fn sock_addrs(a: &Addrs) -> Option<SockAddrs> {
    let ip = |b: &[u8; 16]| -> Option<IpAddr> {
        match a.family {
            abi::AF_INET => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            abi::AF_INET6 => Some(Ipv6Addr::from(*b).to_canonical()),
            _ => None,
        }
    };
    Some(SockAddrs {
        local: SocketAddr::new(ip(&a.laddr)?, u16::from_be(a.lport)),
        remote: SocketAddr::new(ip(&a.raddr)?, u16::from_be(a.rport)),
    })
}

/// Decode one ring-buffer record into its events: one, or one per segment
/// of a data record whose iovecs were captured in part (`F_SEGMENTS`).
pub fn decode_all(buf: &[u8]) -> Result<Vec<Event>, DecodeError> {
    let mut v = Vec::with_capacity(1);
    decode_each(buf, |ev, payload| v.push(ev.with_payload(payload)))?;
    Ok(v)
}

/// Decode one ring-buffer record without copying its payload: `f` gets
/// each event (a DATA event with an empty `payload`) and its captured
/// bytes as a slice of `buf` (empty for other kinds). The poller hands
/// both to an inline worker, which copies only the bytes it keeps. A
/// record flagged `F_SEGMENTS` becomes one DATA event per segment, each
/// with its own position, length and captured part; `f` is called only
/// once the whole record is known to be valid.
pub fn decode_each(buf: &[u8], mut f: impl FnMut(Event, &[u8])) -> Result<(), DecodeError> {
    let (ev, payload) = decode_one(buf)?;
    let d = match &ev {
        Event::Data(d)
            if buf
                .get(std::mem::offset_of!(Hdr, flags))
                .is_some_and(|fl| fl & abi::F_SEGMENTS != 0) =>
        {
            d
        }
        _ => {
            f(ev, payload);
            return Ok(());
        }
    };
    let table = buf.get(abi::DATA_HDR_SIZE + payload.len()..).unwrap_or(&[]);
    let t: SegmentsRaw = read(table, abi::KIND_DATA)?;
    let n = t.count as usize;
    if n == 0 || n > abi::MAX_IOV {
        return Err(DecodeError::BadSegments("count out of range"));
    }
    let segs = &t.seg[..n];
    let orig: u64 = segs.iter().map(|s| s.orig_len as u64).sum();
    let cap: u64 = segs.iter().map(|s| s.cap_len as u64).sum();
    if segs.iter().any(|s| s.cap_len > s.orig_len)
        || cap != payload.len() as u64
        || orig > d.orig_len as u64
    {
        return Err(DecodeError::BadSegments("lengths do not add up"));
    }
    let (mut pos, mut at) = (d.pos, 0usize);
    for (i, s) in segs.iter().enumerate() {
        // bytes past the segments were not captured: the last one's tail
        let mut len = s.orig_len as u64;
        if i + 1 == n {
            len += d.orig_len as u64 - orig;
        }
        let part = &payload[at..at + s.cap_len as usize];
        at += s.cap_len as usize;
        if len > 0 {
            let mut sub = d.clone();
            sub.pos = pos;
            sub.orig_len = len as u32;
            // a failed read ends the gathering: the last segment holds it
            sub.fault = d.fault && i + 1 == n;
            f(Event::Data(sub), part);
        }
        // pos comes from the kernel: a bogus one must not overflow
        pos = pos.wrapping_add(len);
    }
    Ok(())
}

fn decode_one(buf: &[u8]) -> Result<(Event, &[u8]), DecodeError> {
    let kind = *buf.first().ok_or(DecodeError::Short {
        kind: 0,
        len: 0,
        need: 1,
    })?;
    match kind {
        abi::KIND_OPEN => {
            let r: OpenRaw = read(buf, kind)?;
            let addrs = if r.hdr.flags & abi::F_ADDRS != 0 {
                sock_addrs(&r.addrs)
            } else {
                None
            };
            Ok((
                Event::open(ConnOpen {
                    ts_ns: r.hdr.ts_ns,
                    conn: conn_id(&r.hdr),
                    proc: proc_info(&r.hdr),
                    role: role(r.hdr.role),
                    addrs,
                    midstream: r.hdr.flags & abi::F_MIDSTREAM != 0,
                    syscall: syscall(r.hdr.syscall),
                    cgroup_id: r.cgroup_id,
                    identity: None,
                }),
                &[],
            ))
        }
        abi::KIND_DATA => {
            let r: DataHdrRaw = read(buf, kind)?;
            let avail = buf.len() - abi::DATA_HDR_SIZE;
            let cap = r.cap_len as usize;
            if cap > avail || cap > abi::MAX_PAYLOAD {
                return Err(DecodeError::BadLength {
                    cap_len: r.cap_len,
                    avail,
                });
            }
            let payload = &buf[abi::DATA_HDR_SIZE..abi::DATA_HDR_SIZE + cap];
            let ev = Event::Data(DataEvent {
                ts_ns: r.hdr.ts_ns,
                start_ns: r.start_ns,
                conn: conn_id(&r.hdr),
                proc: proc_info(&r.hdr),
                dir: if r.hdr.dir == abi::DIR_INGRESS {
                    Direction::Ingress
                } else {
                    Direction::Egress
                },
                pos: r.pos,
                orig_len: r.orig_len.max(r.cap_len),
                payload: Vec::new(),
                syscall: syscall(r.hdr.syscall),
                fault: r.hdr.flags & abi::F_READ_FAULT != 0,
            });
            Ok((ev, payload))
        }
        abi::KIND_CLOSE => {
            let r: CloseRaw = read(buf, kind)?;
            Ok((
                Event::Close(CloseEvent {
                    ts_ns: r.hdr.ts_ns,
                    conn: conn_id(&r.hdr),
                    proc: proc_info(&r.hdr),
                    tx_bytes: r.tx_bytes,
                    rx_bytes: r.rx_bytes,
                }),
                &[],
            ))
        }
        k => Err(DecodeError::UnknownKind(k)),
    }
}

/// Encode an event as the kernel would (used by tests and `--synthetic`
/// so that the decoder is on the synthetic path too).
pub fn encode(ev: &Event) -> Vec<u8> {
    fn bytes_of<T: plain::Plain>(v: &T) -> &[u8] {
        // SAFETY: T is Plain (POD, repr(C)); reading its bytes is sound.
        unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }
    }
    fn hdr(kind: u8, ts: u64, c: &ConnId, p: &ProcInfo, sys: Syscall) -> Hdr {
        let mut comm = [0u8; abi::COMM_LEN];
        let text = p.comm.text();
        let n = text.len().min(abi::COMM_LEN - 1);
        comm[..n].copy_from_slice(&text.as_bytes()[..n]);
        Hdr {
            kind,
            syscall: syscall_code(sys),
            tgid: p.tgid,
            tid: p.tid,
            ts_ns: ts,
            comm,
            conn: abi::ConnIdRaw {
                tgid: c.tgid,
                fd: c.fd,
                proc_start_ns: c.proc_start_ns,
                gen: c.gen,
            },
            ..Default::default()
        }
    }
    match ev {
        Event::Open(o) => {
            let mut r = OpenRaw {
                hdr: hdr(abi::KIND_OPEN, o.ts_ns, &o.conn, &o.proc, o.syscall),
                cgroup_id: o.cgroup_id,
                ..Default::default()
            };
            r.hdr.role = match o.role {
                Role::Client => abi::ROLE_CLIENT,
                Role::Server => abi::ROLE_SERVER,
                Role::Unknown => abi::ROLE_UNKNOWN,
            };
            if o.midstream {
                r.hdr.flags |= abi::F_MIDSTREAM;
            }
            if let Some(a) = &o.addrs {
                r.hdr.flags |= abi::F_ADDRS;
                let put = |ip: IpAddr, out: &mut [u8; 16]| match ip {
                    IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
                    IpAddr::V6(v6) => *out = v6.octets(),
                };
                r.addrs.family = if a.is_ipv6() {
                    abi::AF_INET6
                } else {
                    abi::AF_INET
                };
                r.addrs.lport = a.local.port().to_be();
                r.addrs.rport = a.remote.port().to_be();
                put(a.local.ip(), &mut r.addrs.laddr);
                put(a.remote.ip(), &mut r.addrs.raddr);
            }
            bytes_of(&r).to_vec()
        }
        Event::Data(d) => {
            let mut r = DataHdrRaw {
                hdr: hdr(abi::KIND_DATA, d.ts_ns, &d.conn, &d.proc, d.syscall),
                start_ns: d.start_ns,
                pos: d.pos,
                orig_len: d.orig_len,
                cap_len: d.payload.len() as u32,
            };
            r.hdr.dir = if d.dir == Direction::Ingress {
                abi::DIR_INGRESS
            } else {
                abi::DIR_EGRESS
            };
            if d.fault {
                r.hdr.flags |= abi::F_READ_FAULT;
            }
            let mut v = bytes_of(&r).to_vec();
            v.extend_from_slice(&d.payload);
            v
        }
        Event::Close(c) => {
            let r = CloseRaw {
                hdr: hdr(abi::KIND_CLOSE, c.ts_ns, &c.conn, &c.proc, Syscall::Close),
                tx_bytes: c.tx_bytes,
                rx_bytes: c.rx_bytes,
            };
            bytes_of(&r).to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_() -> ProcInfo {
        ProcInfo {
            tgid: 42,
            tid: 43,
            comm: "curl".into(),
        }
    }
    fn conn() -> ConnId {
        ConnId {
            tgid: 42,
            proc_start_ns: 7,
            fd: 5,
            gen: 9,
        }
    }

    fn samples() -> Vec<Event> {
        vec![
            Event::open(ConnOpen {
                ts_ns: 1,
                conn: conn(),
                proc: proc_(),
                role: Role::Client,
                addrs: Some(SockAddrs {
                    local: "127.0.0.1:40000".parse().unwrap(),
                    remote: "127.0.0.1:8080".parse().unwrap(),
                }),
                midstream: false,
                syscall: Syscall::Connect,
                cgroup_id: 0,
                identity: None,
            }),
            Event::open(ConnOpen {
                ts_ns: 1,
                conn: conn(),
                proc: proc_(),
                role: Role::Unknown,
                addrs: Some(SockAddrs {
                    local: "[::1]:80".parse().unwrap(),
                    remote: "[2001:db8::1]:5555".parse().unwrap(),
                }),
                midstream: true,
                syscall: Syscall::Unknown,
                cgroup_id: 0,
                identity: None,
            }),
            Event::Data(DataEvent {
                ts_ns: 2,
                start_ns: 1,
                conn: conn(),
                proc: proc_(),
                dir: Direction::Ingress,
                pos: 100,
                orig_len: 9000,
                payload: b"GET / HTTP/1.1\r\n".to_vec(),
                syscall: Syscall::Recvfrom,
                fault: false,
            }),
            Event::Close(CloseEvent {
                ts_ns: 3,
                conn: conn(),
                proc: proc_(),
                tx_bytes: 10,
                rx_bytes: 20,
            }),
        ]
    }

    /// The one event of a record that is not split into segments.
    fn decode(b: &[u8]) -> Result<Event, DecodeError> {
        let mut v = decode_all(b)?;
        assert_eq!(v.len(), 1, "one event");
        Ok(v.remove(0))
    }

    /// A data record as the kernel writes an iovec array captured in part:
    /// `segs` are (bytes moved, bytes captured); the payload holds the
    /// captured parts back to back, the table follows it.
    fn segmented(orig_len: u32, segs: &[(u32, u32)], count: u32) -> Vec<u8> {
        let mut payload = Vec::new();
        for (i, &(_, c)) in segs.iter().enumerate() {
            payload.extend((0..c).map(|k| b'a' + ((i as u32 * 7 + k) % 26) as u8));
        }
        let ev = Event::Data(DataEvent {
            ts_ns: 2,
            start_ns: 0,
            conn: conn(),
            proc: proc_(),
            dir: Direction::Egress,
            pos: 1000,
            orig_len,
            payload,
            syscall: Syscall::Writev,
            fault: false,
        });
        let mut b = encode(&ev);
        b[std::mem::offset_of!(Hdr, flags)] |= abi::F_SEGMENTS;
        let mut t = SegmentsRaw {
            count,
            ..Default::default()
        };
        for (i, &(o, c)) in segs.iter().enumerate() {
            t.seg[i] = abi::SegmentRaw {
                orig_len: o,
                cap_len: c,
            };
        }
        // SAFETY: SegmentsRaw is plain old data.
        b.extend_from_slice(unsafe {
            std::slice::from_raw_parts(
                &t as *const SegmentsRaw as *const u8,
                std::mem::size_of::<SegmentsRaw>(),
            )
        });
        b
    }

    #[test]
    fn each_event_gets_its_own_comm_though_names_are_shared() {
        let names = ["curl", "nginx", "nginx", "curl", "", "a-fifteen-chars"];
        let mut got = Vec::new();
        for n in names {
            let mut e = samples().remove(0);
            if let Event::Open(o) = &mut e {
                o.proc.comm = n.into();
            }
            match decode_all(&encode(&e)).unwrap().remove(0) {
                Event::Open(o) => got.push(o.proc.comm.to_string()),
                _ => panic!("not open"),
            }
        }
        assert_eq!(got, names);
    }

    #[test]
    fn segmented_records_become_one_event_per_segment() {
        // head 200 B whole, body 4096 B of which 64 captured, a second head
        // whole, a body of 5000 B of which 64, and 100 B past the segments
        let b = segmented(
            200 + 4096 + 150 + 5000 + 100,
            &[(200, 200), (4096, 64), (150, 150), (5000, 64)],
            4,
        );
        let evs = decode_all(&b).unwrap();
        let got: Vec<(u64, u32, usize)> = evs
            .iter()
            .map(|e| match e {
                Event::Data(d) => (d.pos, d.orig_len, d.payload.len()),
                _ => panic!("not data"),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1000, 200, 200),
                (1200, 4096, 64),
                (5296, 150, 150),
                (5446, 5100, 64)
            ]
        );
        // the captured parts, in order, are the payload split at the table
        let Event::Data(d) = &evs[2] else {
            unreachable!()
        };
        assert_eq!(d.payload[0], b'a' + 14);
        // zero-length iovecs make no event
        let b = segmented(300, &[(100, 100), (0, 0), (200, 64)], 3);
        assert_eq!(decode_all(&b).unwrap().len(), 2);
    }

    #[test]
    fn a_read_fault_is_decoded_and_kept_by_the_last_segment_only() {
        // the flag, and no other, makes a data event's `fault`
        let Event::Data(mut d) = samples().remove(2) else {
            unreachable!()
        };
        let mut b = encode(&Event::Data(d.clone()));
        assert!(matches!(decode(&b).unwrap(), Event::Data(e) if !e.fault));
        b[std::mem::offset_of!(Hdr, flags)] |= abi::F_READ_FAULT;
        d.fault = true;
        assert_eq!(decode(&b).unwrap(), Event::Data(d.clone()));
        assert_eq!(encode(&Event::Data(d)), b, "encode writes the flag");
        // an iovec array whose third iovec was unreadable: the gathering
        // stopped there, the second was cut by the peek policy (no fault)
        let mut b = segmented(200 + 4096 + 150, &[(200, 200), (4096, 64), (150, 0)], 3);
        b[std::mem::offset_of!(Hdr, flags)] |= abi::F_READ_FAULT;
        let faults: Vec<bool> = decode_all(&b)
            .unwrap()
            .iter()
            .map(|e| match e {
                Event::Data(d) => d.fault,
                _ => panic!("not data"),
            })
            .collect();
        assert_eq!(faults, [false, false, true]);
    }

    #[test]
    fn a_segmented_record_at_the_end_of_the_stream_does_not_overflow() {
        let mut b = segmented(300, &[(100, 100), (200, 64)], 2);
        let at = std::mem::offset_of!(DataHdrRaw, pos);
        b[at..at + 8].copy_from_slice(&(u64::MAX - 50).to_ne_bytes());
        let pos: Vec<u64> = decode_all(&b)
            .unwrap()
            .iter()
            .map(|e| match e {
                Event::Data(d) => d.pos,
                _ => panic!("not data"),
            })
            .collect();
        assert_eq!(pos, vec![u64::MAX - 50, 49]);
    }

    #[test]
    fn segment_tables_that_do_not_add_up_are_errors() {
        let bad = [
            segmented(300, &[(100, 100), (200, 64)], 0), // no segments
            segmented(300, &[(100, 100), (200, 64)], 17), // too many
            segmented(300, &[(100, 100), (200, 64)], 1), // payload not covered
            segmented(250, &[(100, 100), (200, 64)], 2), // more moved than the record
            segmented(300, &[(100, 100), (20, 64)], 2),  // more captured than moved
        ];
        for b in &bad {
            assert!(
                matches!(decode_all(b), Err(DecodeError::BadSegments(_))),
                "{:?}",
                decode_all(b)
            );
        }
        // a table cut short
        let b = segmented(300, &[(100, 100), (200, 64)], 2);
        for n in abi::DATA_HDR_SIZE + 164..b.len() {
            assert!(decode_all(&b[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn roundtrip() {
        for ev in samples() {
            assert_eq!(decode(&encode(&ev)).unwrap(), ev);
        }
    }

    #[test]
    fn v4_mapped_is_shown_as_v4() {
        let mut a = Addrs {
            family: abi::AF_INET6,
            lport: 80u16.to_be(),
            rport: 1234u16.to_be(),
            ..Default::default()
        };
        a.laddr = "::ffff:127.0.0.1".parse::<Ipv6Addr>().unwrap().octets();
        a.raddr = a.laddr;
        let s = sock_addrs(&a).unwrap();
        assert_eq!(s.local.to_string(), "127.0.0.1:80");
        assert_eq!(s.remote.port(), 1234);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for ev in samples() {
            let bytes = encode(&ev);
            let min = match ev {
                Event::Data(_) => abi::DATA_HDR_SIZE + 16,
                _ => bytes.len(),
            };
            for n in 0..min {
                assert!(decode(&bytes[..n]).is_err(), "prefix {n} of {ev:?} decoded");
            }
        }
        assert_eq!(decode(&[9u8; 200]), Err(DecodeError::UnknownKind(9)));
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..20000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 300) as usize;
            let mut buf: Vec<u8> = (0..len).map(|i| (x >> (i % 56)) as u8).collect();
            if let Some(b) = buf.first_mut() {
                *b = (x % 4) as u8;
            }
            let flags = std::mem::offset_of!(Hdr, flags);
            if buf.len() > flags && x % 3 == 0 {
                buf[flags] |= abi::F_SEGMENTS;
            }
            let _ = decode_all(&buf);
        }
    }
}
