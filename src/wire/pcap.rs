// SPDX-License-Identifier: GPL-3.0-or-later
//! Minimal streaming readers for classic pcap and pcapng, plus link/IP/TCP
//! header decoding down to one TCP segment.
//!
//! Nothing here panics on any input: malformed data is an `Err` (for the
//! file structure) or `None` (for a packet we cannot or need not decode).

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Link-layer header types (LINKTYPE_*) we decode.
pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LOOP: u32 = 108;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_IPV4: u32 = 228;
pub const LINKTYPE_IPV6: u32 = 229;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// Largest packet/block we accept (a corrupt length must not allocate GBs).
const MAX_RECORD: usize = 16 * 1024 * 1024;

/// One captured packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Capture time, ns since the Unix epoch (0 if the format has none).
    pub ts_ns: u64,
    pub linktype: u32,
    /// Length on the wire (may exceed `data.len()` when the snaplen cut it).
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// A file-structure error: `offset` is the byte offset of the bad record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapError {
    pub offset: u64,
    pub msg: String,
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.msg)
    }
}

impl std::error::Error for PcapError {}

/// Which container format a file is, by its first four bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pcap,
    PcapNg,
}

/// Identify pcap/pcapng by magic.
pub fn sniff(head: &[u8]) -> Option<Format> {
    let m: [u8; 4] = head.get(..4)?.try_into().ok()?;
    match m {
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d] => Some(Format::Pcap),
        [0x0a, 0x0d, 0x0d, 0x0a] => Some(Format::PcapNg),
        _ => None,
    }
}

fn rd_u16(b: &[u8], off: usize, be: bool) -> Option<u16> {
    let x: [u8; 2] = b.get(off..off + 2)?.try_into().ok()?;
    Some(if be {
        u16::from_be_bytes(x)
    } else {
        u16::from_le_bytes(x)
    })
}

fn rd_u32(b: &[u8], off: usize, be: bool) -> Option<u32> {
    let x: [u8; 4] = b.get(off..off + 4)?.try_into().ok()?;
    Some(if be {
        u32::from_be_bytes(x)
    } else {
        u32::from_le_bytes(x)
    })
}

/// pcapng interface: link type and timestamp resolution (units per second).
#[derive(Clone, Copy, Debug)]
struct Iface {
    linktype: u32,
    /// Timestamp unit in ns numerator/denominator form: ts_ns = ts * mul / div.
    units_per_sec: u64,
}

enum Kind {
    Pcap {
        be: bool,
        nanos: bool,
        linktype: u32,
    },
    PcapNg {
        be: bool,
        ifaces: Vec<Iface>,
    },
}

/// Streaming reader over either format.
pub struct Reader<R: Read> {
    r: R,
    kind: Kind,
    offset: u64,
    done: bool,
}

/// Read exactly `buf.len()` bytes; Ok(false) on a clean EOF before the first
/// byte, Err on EOF in the middle.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> Reader<R> {
    /// Read the file header (pcap global header or the first pcapng SHB).
    pub fn new(mut r: R) -> Result<Reader<R>, PcapError> {
        let mut magic = [0u8; 4];
        let n = read_full(&mut r, &mut magic).map_err(|e| err(0, e.to_string()))?;
        match sniff(&magic[..n]) {
            Some(Format::Pcap) => {
                let mut h = [0u8; 20];
                let k = read_full(&mut r, &mut h).map_err(|e| err(4, e.to_string()))?;
                if k < 20 {
                    return Err(err(0, "truncated pcap file header".into()));
                }
                let (be, nanos) = match magic {
                    [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
                    [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
                    [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
                    _ => (false, true),
                };
                // version(2+2) thiszone(4) sigfigs(4) snaplen(4) network(4)
                let lt = rd_u32(&h, 16, be).unwrap_or(0);
                // Upper bits may hold FCS info; link type is the low 16 bits.
                Ok(Reader {
                    r,
                    kind: Kind::Pcap {
                        be,
                        nanos,
                        linktype: lt & 0xffff,
                    },
                    offset: 24,
                    done: false,
                })
            }
            Some(Format::PcapNg) => {
                let mut rd = Reader {
                    r,
                    kind: Kind::PcapNg {
                        be: false,
                        ifaces: Vec::new(),
                    },
                    offset: 0,
                    done: false,
                };
                // Parse the SHB via the common block path (magic already read).
                rd.read_ng_block(Some(magic))?;
                Ok(rd)
            }
            None => Err(err(
                0,
                format!("not a pcap or pcapng file (magic {:02x?})", &magic[..n]),
            )),
        }
    }

    /// Next packet; `Ok(None)` at a clean end of file. After an error the
    /// reader is finished (further calls return `Ok(None)`).
    pub fn next_packet(&mut self) -> Result<Option<Packet>, PcapError> {
        if self.done {
            return Ok(None);
        }
        let r = match self.kind {
            Kind::Pcap {
                be,
                nanos,
                linktype,
            } => self.next_pcap(be, nanos, linktype),
            Kind::PcapNg { .. } => loop {
                match self.read_ng_block(None) {
                    Ok(Some(p)) => break Ok(Some(p)),
                    Ok(None) if self.done => break Ok(None),
                    Ok(None) => continue,
                    Err(e) => break Err(e),
                }
            },
        };
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }

    fn next_pcap(
        &mut self,
        be: bool,
        nanos: bool,
        linktype: u32,
    ) -> Result<Option<Packet>, PcapError> {
        let at = self.offset;
        let mut h = [0u8; 16];
        let n = read_full(&mut self.r, &mut h).map_err(|e| err(at, e.to_string()))?;
        if n == 0 {
            return Ok(None);
        }
        if n < 16 {
            return Err(err(
                at,
                format!("truncated packet header ({n} of 16 bytes)"),
            ));
        }
        let sec = rd_u32(&h, 0, be).unwrap_or(0) as u64;
        let frac = rd_u32(&h, 4, be).unwrap_or(0) as u64;
        let caplen = rd_u32(&h, 8, be).unwrap_or(0) as usize;
        let orig_len = rd_u32(&h, 12, be).unwrap_or(0);
        if caplen > MAX_RECORD {
            return Err(err(
                at,
                format!("packet length {caplen} is implausible (corrupt file?)"),
            ));
        }
        let mut data = vec![0u8; caplen];
        let k = read_full(&mut self.r, &mut data).map_err(|e| err(at, e.to_string()))?;
        if k < caplen {
            return Err(err(
                at,
                format!("truncated packet: {k} of {caplen} bytes present"),
            ));
        }
        self.offset += 16 + caplen as u64;
        let ts_ns = sec.saturating_mul(1_000_000_000).saturating_add(if nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        });
        Ok(Some(Packet {
            ts_ns,
            linktype,
            orig_len: orig_len.max(caplen as u32),
            data,
        }))
    }

    /// Read one pcapng block; returns a packet for EPB/SPB/PB, None otherwise
    /// (sets `done` at clean EOF).
    fn read_ng_block(&mut self, magic: Option<[u8; 4]>) -> Result<Option<Packet>, PcapError> {
        let at = self.offset;
        let mut h = [0u8; 8];
        let start = match magic {
            Some(m) => {
                h[..4].copy_from_slice(&m);
                4
            }
            None => 0,
        };
        let n = read_full(&mut self.r, &mut h[start..]).map_err(|e| err(at, e.to_string()))?;
        if n == 0 && start == 0 {
            self.done = true;
            return Ok(None);
        }
        if start + n < 8 {
            return Err(err(at, "truncated block header".into()));
        }
        let btype_raw: [u8; 4] = h[..4].try_into().unwrap_or_default();
        let is_shb = btype_raw == [0x0a, 0x0d, 0x0d, 0x0a];
        let mut be = match &self.kind {
            Kind::PcapNg { be, .. } => *be,
            Kind::Pcap { .. } => false,
        };
        let mut pre = Vec::new();
        if is_shb {
            // The byte-order magic follows the length; read it to learn endianness.
            let mut bom = [0u8; 4];
            let k = read_full(&mut self.r, &mut bom).map_err(|e| err(at, e.to_string()))?;
            if k < 4 {
                return Err(err(at, "truncated section header".into()));
            }
            be = match bom {
                [0x1a, 0x2b, 0x3c, 0x4d] => true,
                [0x4d, 0x3c, 0x2b, 0x1a] => false,
                _ => return Err(err(at, "bad pcapng byte-order magic".into())),
            };
            pre.extend_from_slice(&bom);
        }
        let btype = rd_u32(&h, 0, be).unwrap_or(0);
        let blen = rd_u32(&h, 4, be).unwrap_or(0) as usize;
        if blen < 12 || blen & 3 != 0 || blen > MAX_RECORD {
            return Err(err(at, format!("bad pcapng block length {blen}")));
        }
        let body_len = blen - 12;
        if pre.len() > body_len {
            return Err(err(at, "section header too short".into()));
        }
        let mut body = pre;
        let have = body.len();
        body.resize(body_len + 4, 0);
        let k = read_full(&mut self.r, &mut body[have..]).map_err(|e| err(at, e.to_string()))?;
        if have + k < body_len + 4 {
            return Err(err(
                at,
                format!(
                    "truncated block (type {btype:#x}): {} of {blen} bytes present",
                    8 + have + k
                ),
            ));
        }
        let trailer = rd_u32(&body, body_len, be).unwrap_or(0) as usize;
        if trailer != blen {
            return Err(err(
                at,
                format!("block length mismatch ({blen} vs trailer {trailer})"),
            ));
        }
        body.truncate(body_len);
        self.offset += blen as u64;
        let Kind::PcapNg { be: kbe, ifaces } = &mut self.kind else {
            return Ok(None);
        };
        match btype {
            0x0a0d0d0a => {
                *kbe = be;
                ifaces.clear();
                Ok(None)
            }
            1 => {
                // IDB: linktype u16, reserved u16, snaplen u32, options.
                let lt = rd_u16(&body, 0, be).ok_or_else(|| err(at, "short IDB".into()))? as u32;
                let mut units = 1_000_000u64;
                let mut o = 8;
                while o + 4 <= body.len() {
                    let code = rd_u16(&body, o, be).unwrap_or(0);
                    let len = rd_u16(&body, o + 2, be).unwrap_or(0) as usize;
                    if code == 0 {
                        break;
                    }
                    if code == 9 && len >= 1 {
                        if let Some(&v) = body.get(o + 4) {
                            let exp = (v & 0x7f) as u32;
                            let base: u64 = if v & 0x80 != 0 { 2 } else { 10 };
                            units = base.checked_pow(exp).unwrap_or(0);
                        }
                    }
                    o += 4 + len.div_ceil(4) * 4;
                }
                ifaces.push(Iface {
                    linktype: lt,
                    units_per_sec: units,
                });
                Ok(None)
            }
            6 | 2 => {
                // EPB: if_id u32, ts hi, ts lo, caplen, origlen, data.
                // Obsolete PB: if_id u16, drops u16, then the same.
                let ifid = if btype == 6 {
                    rd_u32(&body, 0, be)
                } else {
                    rd_u16(&body, 0, be).map(u32::from)
                }
                .ok_or_else(|| err(at, "short packet block".into()))?;
                let hi = rd_u32(&body, 4, be).unwrap_or(0) as u64;
                let lo = rd_u32(&body, 8, be).unwrap_or(0) as u64;
                let caplen = rd_u32(&body, 12, be).unwrap_or(0) as usize;
                let orig = rd_u32(&body, 16, be).unwrap_or(0);
                let data = body
                    .get(20..20usize.saturating_add(caplen))
                    .ok_or_else(|| err(at, "packet block data exceeds block".into()))?
                    .to_vec();
                let iface = ifaces
                    .get(ifid as usize)
                    .copied()
                    .ok_or_else(|| err(at, format!("packet for undeclared interface {ifid}")))?;
                let ts = (hi << 32) | lo;
                let ts_ns = match iface.units_per_sec {
                    0 => 0,
                    u => (ts as u128 * 1_000_000_000 / u as u128).min(u64::MAX as u128) as u64,
                };
                Ok(Some(Packet {
                    ts_ns,
                    linktype: iface.linktype,
                    orig_len: orig.max(caplen as u32),
                    data,
                }))
            }
            3 => {
                // SPB: origlen u32, data (no timestamp, interface 0).
                let orig = rd_u32(&body, 0, be).ok_or_else(|| err(at, "short SPB".into()))?;
                let iface = ifaces
                    .first()
                    .copied()
                    .ok_or_else(|| err(at, "simple packet block before any interface".into()))?;
                let cap = (orig as usize).min(body.len() - 4);
                Ok(Some(Packet {
                    ts_ns: 0,
                    linktype: iface.linktype,
                    orig_len: orig,
                    data: body[4..4 + cap].to_vec(),
                }))
            }
            _ => Ok(None),
        }
    }
}

fn err(offset: u64, msg: String) -> PcapError {
    PcapError { offset, msg }
}

// ---------------------------------------------------------------------------
// Packet decoding

/// TCP flag bits.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// One decoded TCP segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// Payload length per the IP header (what was on the wire).
    pub len: u32,
    /// The captured part of the payload (shorter when the snaplen cut it).
    pub payload: &'a [u8],
}

/// Why a packet was not turned into a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Unsupported link type.
    LinkType,
    /// Not IPv4/IPv6 (ARP etc.).
    NotIp,
    /// IP but not TCP.
    NotTcp,
    /// An IP fragment (not reassembled).
    Fragment,
    /// Headers cut short or inconsistent.
    Malformed,
}

/// Decode a link-layer frame down to a TCP segment.
pub fn decode(linktype: u32, data: &[u8]) -> Result<Segment<'_>, Skip> {
    match linktype {
        LINKTYPE_ETHERNET => {
            let et = u16::from_be_bytes(
                data.get(12..14)
                    .ok_or(Skip::Malformed)?
                    .try_into()
                    .unwrap_or_default(),
            );
            ethertype(et, data.get(14..).ok_or(Skip::Malformed)?)
        }
        LINKTYPE_LINUX_SLL => {
            let et = rd_u16(data, 14, true).ok_or(Skip::Malformed)?;
            ethertype(et, data.get(16..).ok_or(Skip::Malformed)?)
        }
        LINKTYPE_LINUX_SLL2 => {
            let et = rd_u16(data, 0, true).ok_or(Skip::Malformed)?;
            ethertype(et, data.get(20..).ok_or(Skip::Malformed)?)
        }
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            // Address family in the capturing host's byte order (NULL) or
            // network order (LOOP): accept either.
            let le = rd_u32(data, 0, false).ok_or(Skip::Malformed)?;
            let be = rd_u32(data, 0, true).ok_or(Skip::Malformed)?;
            let rest = &data[4..];
            match (le, be) {
                (2, _) | (_, 2) => ipv4(rest),
                (24 | 28 | 30, _) | (_, 24 | 28 | 30) => ipv6(rest),
                _ => Err(Skip::NotIp),
            }
        }
        LINKTYPE_RAW | 12 => match data.first().map(|b| b >> 4) {
            Some(4) => ipv4(data),
            Some(6) => ipv6(data),
            _ => Err(Skip::NotIp),
        },
        LINKTYPE_IPV4 => ipv4(data),
        LINKTYPE_IPV6 => ipv6(data),
        _ => Err(Skip::LinkType),
    }
}

fn ethertype(mut et: u16, mut rest: &[u8]) -> Result<Segment<'_>, Skip> {
    // 802.1Q / 802.1ad / QinQ tags: 2 bytes TCI then the inner ethertype.
    for _ in 0..4 {
        if !matches!(et, 0x8100 | 0x88a8 | 0x9100) {
            break;
        }
        et = rd_u16(rest, 2, true).ok_or(Skip::Malformed)?;
        rest = rest.get(4..).ok_or(Skip::Malformed)?;
    }
    match et {
        0x0800 => ipv4(rest),
        0x86dd => ipv6(rest),
        _ => Err(Skip::NotIp),
    }
}

fn ipv4(b: &[u8]) -> Result<Segment<'_>, Skip> {
    if b.len() < 20 || b[0] >> 4 != 4 {
        return Err(Skip::Malformed);
    }
    let ihl = (b[0] & 0x0f) as usize * 4;
    if ihl < 20 || b.len() < ihl {
        return Err(Skip::Malformed);
    }
    let total = u16::from_be_bytes([b[2], b[3]]) as usize;
    let frag = u16::from_be_bytes([b[6], b[7]]);
    if frag & 0x3fff != 0 {
        return Err(Skip::Fragment);
    }
    if b[9] != 6 {
        return Err(Skip::NotTcp);
    }
    let src = IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19]));
    // total == 0 happens with TSO on the capturing host: trust the capture.
    let ip_payload_len = if total == 0 {
        None
    } else {
        Some(total.checked_sub(ihl).ok_or(Skip::Malformed)?)
    };
    tcp(src, dst, &b[ihl..], ip_payload_len)
}

fn ipv6(b: &[u8]) -> Result<Segment<'_>, Skip> {
    if b.len() < 40 || b[0] >> 4 != 6 {
        return Err(Skip::Malformed);
    }
    let plen = u16::from_be_bytes([b[4], b[5]]) as usize;
    let mut next = b[6];
    let src: [u8; 16] = b[8..24].try_into().map_err(|_| Skip::Malformed)?;
    let dst: [u8; 16] = b[24..40].try_into().map_err(|_| Skip::Malformed)?;
    let mut off = 40usize;
    // plen == 0: jumbogram or TSO; trust the capture.
    let mut remaining = if plen == 0 { None } else { Some(plen) };
    for _ in 0..8 {
        match next {
            6 => {
                return tcp(
                    IpAddr::V6(Ipv6Addr::from(src)),
                    IpAddr::V6(Ipv6Addr::from(dst)),
                    b.get(off..).ok_or(Skip::Malformed)?,
                    remaining,
                )
            }
            0 | 43 | 60 => {
                let h = b.get(off..off + 2).ok_or(Skip::Malformed)?;
                let len = (h[1] as usize + 1) * 8;
                next = h[0];
                off += len;
                remaining = match remaining {
                    Some(r) => Some(r.checked_sub(len).ok_or(Skip::Malformed)?),
                    None => None,
                };
            }
            44 => return Err(Skip::Fragment),
            _ => return Err(Skip::NotTcp),
        }
    }
    Err(Skip::Malformed)
}

fn tcp(
    src: IpAddr,
    dst: IpAddr,
    b: &[u8],
    ip_payload_len: Option<usize>,
) -> Result<Segment<'_>, Skip> {
    if b.len() < 20 {
        return Err(Skip::Malformed);
    }
    let doff = (b[12] >> 4) as usize * 4;
    if doff < 20 || b.len() < doff {
        return Err(Skip::Malformed);
    }
    let captured = &b[doff..];
    let (len, payload) = match ip_payload_len {
        Some(l) => {
            let l = l.checked_sub(doff).ok_or(Skip::Malformed)?;
            // Trim link padding (e.g. Ethernet minimum frame size).
            (l, &captured[..captured.len().min(l)])
        }
        None => (captured.len(), captured),
    };
    Ok(Segment {
        src: SocketAddr::new(src, u16::from_be_bytes([b[0], b[1]])),
        dst: SocketAddr::new(dst, u16::from_be_bytes([b[2], b[3]])),
        seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ack: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        flags: b[13],
        len: len.min(u32::MAX as usize) as u32,
        payload,
    })
}
