// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/2 frames (RFC 9113 §4, §6): the client preface, the 9-byte frame
//! header (nom, streaming), every frame type's payload, and [`Framer`], a
//! direction's framing state: it asks for exactly the bytes it needs next,
//! so DATA payloads are counted as they go by, never buffered, and bytes
//! that moved uncaptured (the capture cap) are skipped by length inside a
//! frame whose length is known.

use nom::bytes::streaming::take;
use nom::number::streaming::{be_u24, be_u32, be_u8};
use nom::IResult;

use crate::protocol::http1::Parse;

/// What a client sends first (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The frame header's size.
pub const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE's initial value and its bounds (§6.5.2).
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
pub const MAX_MAX_FRAME: u32 = (1 << 24) - 1;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const FLAG_END_STREAM: u8 = 0x1;
pub const FLAG_ACK: u8 = 0x1;
pub const FLAG_END_HEADERS: u8 = 0x4;
pub const FLAG_PADDED: u8 = 0x8;
pub const FLAG_PRIORITY: u8 = 0x20;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// Is the client preface a prefix of `buf`, or `buf` a prefix of it?
pub fn parse_preface(buf: &[u8]) -> Parse<()> {
    let n = buf.len().min(PREFACE.len());
    if buf[..n] != PREFACE[..n] {
        Parse::Invalid("not the HTTP/2 client preface")
    } else if n < PREFACE.len() {
        Parse::NeedMore
    } else {
        Parse::Complete((), PREFACE.len())
    }
}

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub len: u32,
    pub ty: u8,
    pub flags: u8,
    /// The reserved bit cleared (§4.1: ignored on receipt).
    pub stream: u32,
}

impl FrameHeader {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// The frame types this parser knows (others are skipped by length).
    pub fn known(&self) -> bool {
        self.ty <= CONTINUATION
    }
}

fn header(i: &[u8]) -> IResult<&[u8], FrameHeader> {
    let (i, len) = be_u24(i)?;
    let (i, ty) = be_u8(i)?;
    let (i, flags) = be_u8(i)?;
    let (i, stream) = be_u32(i)?;
    Ok((
        i,
        FrameHeader {
            len,
            ty,
            flags,
            stream: stream & 0x7fff_ffff,
        },
    ))
}

/// The frame header at the start of `buf`, checked against the frame-size
/// limit `max_frame` and the stream-id rules of the known types.
pub fn parse_header(buf: &[u8], max_frame: u32) -> Parse<FrameHeader> {
    let h = match header(buf) {
        Ok((_, h)) => h,
        Err(nom::Err::Incomplete(_)) => return Parse::NeedMore,
        Err(_) => return Parse::Invalid("frame header"),
    };
    if h.len > max_frame {
        return Parse::Invalid("frame larger than SETTINGS_MAX_FRAME_SIZE");
    }
    let ok = match h.ty {
        DATA | HEADERS | PRIORITY | RST_STREAM | PUSH_PROMISE | CONTINUATION => h.stream != 0,
        SETTINGS | PING | GOAWAY => h.stream == 0,
        _ => true,
    };
    let len_ok = match h.ty {
        PRIORITY => h.len == 5,
        RST_STREAM | WINDOW_UPDATE => h.len == 4,
        PING => h.len == 8,
        SETTINGS => h.len % 6 == 0 && !(h.has(FLAG_ACK) && h.len != 0),
        GOAWAY => h.len >= 8,
        _ => true,
    };
    if !ok {
        return Parse::Invalid("stream id not allowed for this frame type");
    }
    if !len_ok {
        return Parse::Invalid("frame length wrong for its type");
    }
    Parse::Complete(h, HEADER_LEN)
}

/// A stream dependency (HEADERS with PRIORITY, PRIORITY frames).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    pub exclusive: bool,
    pub depends_on: u32,
    pub weight: u8,
}

/// A whole frame's payload, parsed (DATA frames are never buffered: see
/// [`Framer`]; their payload is here only when a caller has it whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Data {
        data: &'a [u8],
    },
    Headers {
        priority: Option<Priority>,
        block: &'a [u8],
    },
    Priority(Priority),
    RstStream {
        error: u32,
    },
    Settings {
        params: Vec<(u16, u32)>,
    },
    PushPromise {
        promised: u32,
        block: &'a [u8],
    },
    Ping {
        data: [u8; 8],
    },
    GoAway {
        last_stream: u32,
        error: u32,
        debug: &'a [u8],
    },
    WindowUpdate {
        increment: u32,
    },
    Continuation {
        block: &'a [u8],
    },
    Unknown,
}

/// Strip the padding of a PADDED frame (§6.1): (padding length byte
/// included, the payload between it and the padding).
fn unpad<'a>(h: &FrameHeader, p: &'a [u8]) -> Result<&'a [u8], &'static str> {
    if !h.has(FLAG_PADDED) || !matches!(h.ty, DATA | HEADERS | PUSH_PROMISE) {
        return Ok(p);
    }
    let (&pad, rest) = p.split_first().ok_or("PADDED frame without pad length")?;
    rest.len()
        .checked_sub(pad as usize)
        .map(|n| &rest[..n])
        .ok_or("padding longer than the frame")
}

fn priority(i: &[u8]) -> IResult<&[u8], Priority> {
    let (i, dep) = be_u32(i)?;
    let (i, w) = be_u8(i)?;
    Ok((
        i,
        Priority {
            exclusive: dep >> 31 == 1,
            depends_on: dep & 0x7fff_ffff,
            weight: w,
        },
    ))
}

fn payload<'a>(h: &FrameHeader, p: &'a [u8]) -> IResult<&'a [u8], Frame<'a>> {
    Ok(match h.ty {
        DATA => (&p[p.len()..], Frame::Data { data: p }),
        HEADERS => {
            let (i, prio) = if h.has(FLAG_PRIORITY) {
                let (i, pr) = priority(p)?;
                (i, Some(pr))
            } else {
                (p, None)
            };
            (
                &i[i.len()..],
                Frame::Headers {
                    priority: prio,
                    block: i,
                },
            )
        }
        PRIORITY => {
            let (i, pr) = priority(p)?;
            (i, Frame::Priority(pr))
        }
        RST_STREAM => {
            let (i, error) = be_u32(p)?;
            (i, Frame::RstStream { error })
        }
        SETTINGS => {
            let mut params = Vec::with_capacity(p.len() / 6);
            for c in p.chunks_exact(6) {
                let id = u16::from_be_bytes([c[0], c[1]]);
                let v = u32::from_be_bytes([c[2], c[3], c[4], c[5]]);
                params.push((id, v));
            }
            (&p[p.len()..], Frame::Settings { params })
        }
        PUSH_PROMISE => {
            let (i, promised) = be_u32(p)?;
            (
                &i[i.len()..],
                Frame::PushPromise {
                    promised: promised & 0x7fff_ffff,
                    block: i,
                },
            )
        }
        PING => {
            let (i, d) = take(8usize)(p)?;
            let mut data = [0; 8];
            data.copy_from_slice(d);
            (i, Frame::Ping { data })
        }
        GOAWAY => {
            let (i, last) = be_u32(p)?;
            let (i, error) = be_u32(i)?;
            (
                &i[i.len()..],
                Frame::GoAway {
                    last_stream: last & 0x7fff_ffff,
                    error,
                    debug: i,
                },
            )
        }
        WINDOW_UPDATE => {
            let (i, inc) = be_u32(p)?;
            (
                i,
                Frame::WindowUpdate {
                    increment: inc & 0x7fff_ffff,
                },
            )
        }
        CONTINUATION => (&p[p.len()..], Frame::Continuation { block: p }),
        _ => (&p[p.len()..], Frame::Unknown),
    })
}

/// A frame's whole payload (`p.len() == h.len`), padding removed.
pub fn parse_payload<'a>(h: &FrameHeader, p: &'a [u8]) -> Result<Frame<'a>, &'static str> {
    let p = unpad(h, p)?;
    match payload(h, p) {
        Ok((_, f)) => Ok(f),
        Err(_) => Err("frame payload too short for its type"),
    }
}

/// The name of an RST_STREAM/GOAWAY error code (§7).
pub fn error_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("0x{code:x}"), |s| s.to_string())
}

// ---------------------------------------------------------------------------
// Framing a direction

/// What a direction's framing produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// The client preface.
    Preface,
    /// A whole non-DATA frame.
    Frame(FrameHeader, Frame<'a>),
    /// The end of a DATA frame of `body` bytes (its length less padding):
    /// exact even when its bytes went by uncaptured.
    Data(FrameHeader, u64),
    /// A non-DATA frame whose payload went by uncaptured (or was larger
    /// than the buffer cap): skipped by its length.
    Lost(FrameHeader),
    /// Payload bytes of a DATA frame or a lost frame went by.
    Skipped(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Preface,
    Header,
    /// A DATA frame's pad-length byte.
    PadLen(FrameHeader),
    /// A DATA frame's payload going by: bytes left, body bytes.
    Data(FrameHeader, u64, u64),
    /// A non-DATA frame's payload, buffered whole.
    Payload(FrameHeader),
    /// A frame's payload skipped unseen: bytes left.
    Lost(FrameHeader, u64),
}

/// One direction's framing. [`Framer::want`] says how many more bytes the
/// next step needs; [`Framer::next`] takes the buffered bytes and returns
/// a step and how many of them it consumed; [`Framer::skip`] accounts for
/// bytes that went by uncaptured.
#[derive(Clone, Debug)]
pub struct Framer {
    state: State,
    /// The frame-size limit of this direction (the receiver's
    /// SETTINGS_MAX_FRAME_SIZE).
    pub max_frame: u32,
    /// Frames larger than this are skipped by length, not buffered.
    pub max_buffered: usize,
}

impl Framer {
    pub fn new(preface: bool, max_frame: u32, max_buffered: usize) -> Framer {
        Framer {
            state: if preface {
                State::Preface
            } else {
                State::Header
            },
            max_frame,
            max_buffered,
        }
    }

    /// Bytes the next step needs in the buffer that holds `have`.
    pub fn want(&self, have: usize) -> usize {
        let need = match self.state {
            State::Preface => PREFACE.len(),
            State::Header => HEADER_LEN,
            State::PadLen(_) => 1,
            State::Payload(h) => h.len as usize,
            State::Data(_, left, _) | State::Lost(_, left) => {
                return usize::try_from(left).unwrap_or(usize::MAX)
            }
        };
        need.saturating_sub(have)
    }

    /// Payload bytes go by without being buffered.
    pub fn skipping(&self) -> bool {
        matches!(self.state, State::Data(..) | State::Lost(..))
    }

    /// Inside a DATA frame's payload.
    pub fn skipping_data(&self) -> bool {
        matches!(self.state, State::Data(..))
    }

    /// Inside a DATA frame's payload: its header and how many of the
    /// bytes left are body (the rest is padding).
    pub fn data_body_left(&self) -> Option<(FrameHeader, u64)> {
        match self.state {
            State::Data(h, left, body) => {
                let total = h.len as u64 - h.has(FLAG_PADDED) as u64;
                Some((h, left.saturating_sub(total - body)))
            }
            _ => None,
        }
    }

    /// Expecting the client preface.
    pub fn expects_preface(&self) -> bool {
        self.state == State::Preface
    }

    /// Between frames.
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Header | State::Preface)
    }

    /// The next step from the bytes in `buf`.
    pub fn next<'a>(&mut self, buf: &'a [u8]) -> Parse<Step<'a>> {
        match self.state {
            State::Preface => match parse_preface(buf) {
                Parse::Complete((), n) => {
                    self.state = State::Header;
                    Parse::Complete(Step::Preface, n)
                }
                Parse::NeedMore => Parse::NeedMore,
                Parse::Invalid(e) => Parse::Invalid(e),
            },
            State::Header => match parse_header(buf, self.max_frame) {
                Parse::Complete(h, n) => {
                    self.state = self.after_header(h);
                    self.finish_empty(n)
                }
                Parse::NeedMore => Parse::NeedMore,
                Parse::Invalid(e) => Parse::Invalid(e),
            },
            State::PadLen(h) => {
                let Some(&pad) = buf.first() else {
                    return Parse::NeedMore;
                };
                let Some(body) = (h.len as u64 - 1).checked_sub(pad as u64) else {
                    return Parse::Invalid("padding longer than the frame");
                };
                self.state = State::Data(h, h.len as u64 - 1, body);
                self.finish_empty(1)
            }
            State::Payload(h) => {
                let n = h.len as usize;
                if buf.len() < n {
                    return Parse::NeedMore;
                }
                self.state = State::Header;
                match parse_payload(&h, &buf[..n]) {
                    Ok(f) => Parse::Complete(Step::Frame(h, f), n),
                    Err(e) => Parse::Invalid(e),
                }
            }
            State::Data(_, left, _) | State::Lost(_, left) => {
                if buf.is_empty() {
                    return Parse::NeedMore;
                }
                let n = (buf.len() as u64).min(left) as usize;
                self.went_by(n as u64);
                Parse::Complete(Step::Skipped(n), n)
            }
        }
    }

    fn after_header(&self, h: FrameHeader) -> State {
        if h.ty == DATA {
            if h.has(FLAG_PADDED) {
                State::PadLen(h)
            } else {
                State::Data(h, h.len as u64, h.len as u64)
            }
        } else if h.len as usize > self.max_buffered {
            State::Lost(h, h.len as u64)
        } else {
            State::Payload(h)
        }
    }

    /// After a header or pad length: a frame with nothing left to read
    /// ends here.
    fn finish_empty<'a>(&mut self, n: usize) -> Parse<Step<'a>> {
        match self.state {
            State::PadLen(h) if h.len == 0 => Parse::Invalid("PADDED frame without pad length"),
            State::Data(h, 0, body) => {
                self.state = State::Header;
                Parse::Complete(Step::Data(h, body), n)
            }
            State::Lost(h, 0) => {
                self.state = State::Header;
                Parse::Complete(Step::Lost(h), n)
            }
            State::Payload(h) if h.len == 0 => {
                self.state = State::Header;
                match parse_payload(&h, &[]) {
                    Ok(f) => Parse::Complete(Step::Frame(h, f), n),
                    Err(e) => Parse::Invalid(e),
                }
            }
            _ => Parse::Complete(Step::Skipped(0), n),
        }
    }

    fn went_by(&mut self, n: u64) {
        match &mut self.state {
            State::Data(_, left, _) | State::Lost(_, left) => *left -= n.min(*left),
            _ => {}
        }
    }

    /// The frame that just ended, if the last bytes ended one.
    pub fn ended(&mut self) -> Option<Step<'static>> {
        match self.state {
            State::Data(h, 0, body) => {
                self.state = State::Header;
                Some(Step::Data(h, body))
            }
            State::Lost(h, 0) => {
                self.state = State::Header;
                Some(Step::Lost(h))
            }
            _ => None,
        }
    }

    /// `n` bytes went by uncaptured, with `buffered` bytes of the current
    /// step already buffered (thrown away by the caller). true: they were
    /// inside a frame of known length (the frame goes on, or ended:
    /// [`Framer::ended`]); false: framing is lost.
    pub fn skip(&mut self, n: u64, buffered: usize) -> bool {
        match self.state {
            State::Data(_, left, _) | State::Lost(_, left) if n <= left => {
                self.went_by(n);
                true
            }
            State::Payload(h) if buffered as u64 + n <= h.len as u64 => {
                self.state = State::Lost(h, h.len as u64 - buffered as u64 - n);
                true
            }
            _ => false,
        }
    }

    /// Lost sync: look for frame headers.
    pub fn reset(&mut self) {
        self.state = State::Header;
    }
}

/// The flags each known frame type defines (§6).
fn defined_flags(ty: u8) -> u8 {
    match ty {
        DATA => FLAG_END_STREAM | FLAG_PADDED,
        HEADERS => FLAG_END_STREAM | FLAG_END_HEADERS | FLAG_PADDED | FLAG_PRIORITY,
        SETTINGS | PING => FLAG_ACK,
        PUSH_PROMISE => FLAG_END_HEADERS | FLAG_PADDED,
        CONTINUATION => FLAG_END_HEADERS,
        _ => 0,
    }
}

/// Where a plausible frame header starts in `buf`, for resynchronising
/// after lost bytes: valid headers of known types with only their defined
/// flags (unknown types after the first), chained frame after frame either to exactly the end of `buf`
/// (writes carry whole frames) or through three headers. Linear in `buf`.
pub fn find_frame_start(buf: &[u8], max_frame: u32) -> Option<usize> {
    let ok = |at: usize| match parse_header(&buf[at..], max_frame) {
        Parse::Complete(h, _) if !h.known() || h.flags & !defined_flags(h.ty) == 0 => Some(h),
        _ => None,
    };
    // What the chain from a position comes to, memoised: every start's
    // chain soon joins one walked before, so the search stays linear in
    // `buf` (empty frames chain through all of it). 0: not known yet,
    // 1: an invalid header on the way, else 2 + 4 * ends-exactly + headers
    // (at most 3).
    let mut memo = vec![0u8; buf.len() + 1];
    let mut path = Vec::new();
    let mut chain = |start: usize| -> u8 {
        let mut at = start;
        let mut r = loop {
            if at + HEADER_LEN > buf.len() {
                break 2 + if at == buf.len() { 4 } else { 0 };
            }
            if memo[at] != 0 {
                break memo[at];
            }
            match ok(at) {
                None => break 1,
                Some(h) => {
                    path.push(at);
                    at += HEADER_LEN + h.len as usize;
                }
            }
        };
        while let Some(p) = path.pop() {
            if r != 1 {
                r = 2 + (r - 2) / 4 * 4 + ((r - 2) % 4 + 1).min(3);
            }
            memo[p] = r;
        }
        r
    };
    (0..buf.len().saturating_sub(HEADER_LEN - 1)).find(|&start| {
        if !ok(start).is_some_and(|h| h.known()) {
            return false;
        }
        let r = chain(start);
        r != 1 && ((r - 2) / 4 == 1 || (r - 2) % 4 >= 3)
    })
}

/// Does `buf` hold whole frames, one after the other, to exactly its end?
pub fn frames_to_end(buf: &[u8], max_frame: u32) -> bool {
    let mut at = 0;
    while at < buf.len() {
        match parse_header(&buf[at..], max_frame) {
            Parse::Complete(h, _) => at += HEADER_LEN + h.len as usize,
            _ => return false,
        }
    }
    at == buf.len() && !buf.is_empty()
}

#[cfg(test)]
#[path = "frame_tests.rs"]
pub(crate) mod tests;
