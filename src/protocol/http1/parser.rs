// SPDX-License-Identifier: GPL-3.0-or-later
//! Streaming HTTP/1.0 and HTTP/1.1 parser built on `nom` streaming combinators.
//!
//! Everything here is a pure function of its input bytes. Head parsers return a
//! three-way [`Parse`] result: a complete value with the number of bytes it
//! consumed, "need more bytes", or "this can never become a valid message".
//! Limits ([`MAX_HEAD_BYTES`], [`MAX_HEADERS`]) are enforced before bytes past
//! them are looked at, so a hostile peer cannot make the parser buffer without
//! bound.

use std::borrow::Cow;

use nom::branch::alt;
use nom::bytes::streaming::{tag, take_while, take_while1, take_while_m_n};
use nom::IResult;

pub use super::message::{parse_full_request, parse_full_response, Message};

/// Largest request/response head (start line + headers + empty line) accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields accepted in one head (or one trailer section).
pub const MAX_HEADERS: usize = 100;
/// Longest chunk-size line (size + extensions) accepted.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Longest method token accepted.
pub const MAX_METHOD_LEN: usize = 32;

/// Result of a streaming parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parse<T> {
    /// Parsed value and the number of input bytes it consumed.
    Complete(T, usize),
    /// The input is a valid prefix; more bytes are needed.
    NeedMore,
    /// The input can never become valid.
    Invalid(&'static str),
}

impl<T> Parse<T> {
    pub fn is_invalid(&self) -> bool {
        matches!(self, Parse::Invalid(_))
    }
}

pub use super::headers::Headers;
use super::headers::{CONTENT_LENGTH, TRANSFER_ENCODING};
use crate::text::Text;

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// Borrowed for the common methods (no allocation per request).
    pub method: Cow<'static, str>,
    pub target: Text,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub headers: Headers,
}

/// A parsed response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub minor: u8,
    pub status: u16,
    pub reason: Text,
    pub headers: Headers,
}

/// How the body of a message is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the connection closes (responses only).
    CloseDelimited,
    /// The connection stops being HTTP after this head (101, CONNECT 2xx).
    Tunnel,
}

/// 1xx responses other than 101 are interim: a final response follows.
pub fn is_interim(status: u16) -> bool {
    (100..200).contains(&status) && status != 101
}

// ---------------------------------------------------------------------------
// character classes

/// RFC 9110 tchar, as a table (this runs for every byte of every name).
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        c += 1;
    }
    t
};

fn is_tchar(c: u8) -> bool {
    TCHAR[c as usize]
}
fn is_target_char(c: u8) -> bool {
    c > 0x20 && c != 0x7f
}
/// field-vchar / SP / HTAB / obs-text
fn is_field_char(c: u8) -> bool {
    c == b'\t' || (c >= 0x20 && c != 0x7f)
}
fn is_ows(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

// ---------------------------------------------------------------------------
// nom pieces

type R<'a> = IResult<&'a [u8], &'a [u8], ()>;

fn eol(i: &[u8]) -> R<'_> {
    alt((tag("\r\n"), tag("\n")))(i)
}

enum Stop {
    More,
    Bad(&'static str),
}

macro_rules! step {
    ($e:expr, $msg:expr) => {
        match {
            let r: IResult<&[u8], _, ()> = $e;
            r
        } {
            Ok(v) => v,
            Err(nom::Err::Incomplete(_)) => return Err(Stop::More),
            Err(_) => return Err(Stop::Bad($msg)),
        }
    };
}

fn version(i: &[u8]) -> Result<(&[u8], u8), Stop> {
    // "HTTP/1.x": compared directly, a prefix of it needs more bytes
    const V: &[u8] = b"HTTP/1.";
    let n = i.len().min(V.len());
    if i[..n] != V[..n] {
        return Err(Stop::Bad(
            if i[..n.min(5)] == V[..n.min(5)] && i.len() > 5 && i[5].is_ascii_digit() {
                "unsupported http version"
            } else {
                "bad http version"
            },
        ));
    }
    match i.get(V.len()) {
        None => Err(Stop::More),
        Some(b'0') => Ok((&i[V.len() + 1..], 0)),
        Some(b'1') => Ok((&i[V.len() + 1..], 1)),
        Some(c) if c.is_ascii_digit() => Err(Stop::Bad("unsupported http version")),
        Some(_) => Err(Stop::Bad("bad http version")),
    }
}

/// A request method: the registered ones as static strings.
fn method_str(b: &[u8]) -> Cow<'static, str> {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    match KNOWN.iter().find(|m| m.as_bytes() == b) {
        Some(m) => Cow::Borrowed(m),
        None => Cow::Owned(lossy(b)),
    }
}

fn lossy(b: &[u8]) -> String {
    lossy_cow(b).into_owned()
}

/// [`lossy`] as a [`Text`]: a short one inline, not allocated.
fn lossy_text(b: &[u8]) -> Text {
    Text::from(lossy_cow(b))
}

/// `b` as text, borrowed when it is valid UTF-8 (the normal case: checked
/// once, not chunk by chunk as `String::from_utf8_lossy` does).
fn lossy_cow(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(String::from_utf8_lossy(b).into_owned()),
    }
}

/// The first `b` in `hay`. Lines of a head are short: a word at a time
/// for their first 64 bytes (memchr's set-up costs more than the search
/// there), memchr past that. In the word, a lane equal to `b` becomes 0,
/// and the lowest zero lane is found exactly (a borrow only runs upwards
/// from a true one).
fn find_byte(b: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(w) = hay.get(at..at + 8) {
        let x = u64::from_le_bytes(w.try_into().unwrap_or([0; 8])) ^ (LO * b as u64);
        let z = x.wrapping_sub(LO) & !x & HI;
        if z != 0 {
            return Some(at + (z.trailing_zeros() / 8) as usize);
        }
        at += 8;
        if at >= 64 {
            return memchr::memchr(b, &hay[at..]).map(|p| p + at);
        }
    }
    hay[at..].iter().position(|&c| c == b).map(|p| p + at)
}

/// The request target, up to (not including) the space before the version.
fn request_target(i: &[u8]) -> Result<(&[u8], &[u8]), Stop> {
    let end = find_byte(b' ', i).unwrap_or(i.len());
    let t = &i[..end];
    if !t.iter().fold(true, |ok, &c| ok & is_target_char(c)) {
        return Err(Stop::Bad("bad request target"));
    }
    if end == i.len() {
        return Err(Stop::More);
    }
    if t.is_empty() {
        return Err(Stop::Bad("bad request target"));
    }
    Ok((&i[end..], t))
}

/// A field value up to and including its line end (CRLF or LF), and
/// whether it is ASCII. Values are the bulk of a head, so this finds the
/// line end a word at a time and checks the bytes in one branch-free pass
/// instead of a per-byte combinator; the same pass tells ASCII text apart
/// (the header block then needs no UTF-8 validation of its own).
fn field_value(i: &[u8]) -> Result<(&[u8], &[u8], bool), Stop> {
    /// (all field chars, all ASCII)
    fn field_chars(b: &[u8]) -> (bool, bool) {
        let (ok, or) = b
            .iter()
            .fold((true, 0u8), |(ok, or), &c| (ok & is_field_char(c), or | c));
        (ok, or < 0x80)
    }
    match find_byte(b'\n', i) {
        Some(p) => {
            let line = &i[..p];
            let value = line.strip_suffix(b"\r").unwrap_or(line);
            match field_chars(value) {
                (true, ascii) => Ok((&i[p + 1..], value, ascii)),
                (false, _) => Err(Stop::Bad("bad header value")),
            }
        }
        None => {
            // a valid prefix so far, possibly ending in the CR of a CRLF
            let body = i.strip_suffix(b"\r").unwrap_or(i);
            if field_chars(body).0 {
                Err(Stop::More)
            } else {
                Err(Stop::Bad("bad header value"))
            }
        }
    }
}

/// Header fields up to and including the empty line. Written out rather
/// than with combinators (this is most of the parsing work of a message);
/// the same results as `eol`, `take_while1(is_tchar)`, `tag(":")`,
/// `take_while(is_ows)` and [`field_value`] in streaming mode.
fn header_block(block: &[u8]) -> Result<(&[u8], Headers), Stop> {
    let mut i = block;
    let off = |s: &[u8]| (s.as_ptr() as usize - block.as_ptr() as usize) as u32;
    // the ranges of the fields: on the stack for the first `INLINE`,
    // copied to `spill` past that
    const INLINE: usize = 16;
    let mut inline = [[0u32; 4]; INLINE];
    let mut spill: Vec<[u32; 4]> = Vec::new();
    let mut n_fields = 0;
    // every byte of the block outside the values is ASCII (names are
    // tokens, then ':', OWS, CR, LF): the values tell whether it all is
    let mut ascii = true;
    loop {
        // the empty line: CRLF or LF
        let end = match i {
            [] | [b'\r'] => return Err(Stop::More),
            [b'\r', b'\n', ..] => Some(2),
            [b'\n', ..] => Some(1),
            _ => None,
        };
        if let Some(n) = end {
            let at = off(i) as usize;
            let fields = match n_fields {
                n if n <= INLINE => &inline[..n],
                _ => &spill[..],
            };
            return Ok((&i[n..], Headers::from_block(&block[..at], fields, ascii)));
        }
        if n_fields >= MAX_HEADERS {
            return Err(Stop::Bad("too many headers"));
        }
        if is_ows(i[0]) {
            return Err(Stop::Bad("obsolete line folding"));
        }
        let name_len = match i.iter().position(|&c| !is_tchar(c)) {
            None => return Err(Stop::More),
            Some(0) => return Err(Stop::Bad("bad header name")),
            Some(n) => n,
        };
        let (name, r) = i.split_at(name_len);
        if r[0] != b':' {
            return Err(Stop::Bad("bad header name"));
        }
        let r = &r[1..];
        let r = match r.iter().position(|&c| !is_ows(c)) {
            None => return Err(Stop::More),
            Some(n) => &r[n..],
        };
        let (r, value, value_ascii) = field_value(r)?;
        ascii &= value_ascii;
        let v = value.trim_ascii_end();
        let (n0, v0) = (off(name), off(v));
        let f = [n0, n0 + name.len() as u32, v0, v0 + v.len() as u32];
        if n_fields < INLINE {
            inline[n_fields] = f;
        } else {
            if n_fields == INLINE {
                spill.extend_from_slice(&inline);
            }
            spill.push(f);
        }
        n_fields += 1;
        i = r;
    }
}

fn request_head(i: &[u8]) -> Result<(&[u8], RequestHead), Stop> {
    // RFC 9112 §2.2: ignore at least one empty line before the request line.
    let mut i = i;
    for _ in 0..2 {
        match eol(i) {
            Ok((r, _)) => i = r,
            Err(nom::Err::Incomplete(_)) => return Err(Stop::More),
            Err(_) => break,
        }
    }
    let (r, method) = step!(take_while1(is_tchar)(i), "bad method");
    if method.len() > MAX_METHOD_LEN {
        return Err(Stop::Bad("method too long"));
    }
    let (r, _) = step!(tag(" ")(r), "bad method");
    let (r, target) = request_target(r)?;
    let (r, _) = step!(tag(" ")(r), "bad request target");
    let (r, minor) = version(r)?;
    let (r, _) = step!(eol(r), "bad request line");
    let (r, headers) = header_block(r)?;
    Ok((
        r,
        RequestHead {
            method: method_str(method),
            target: lossy_text(target),
            minor,
            headers,
        },
    ))
}

fn response_head(i: &[u8]) -> Result<(&[u8], ResponseHead), Stop> {
    let (r, minor) = version(i)?;
    let (r, _) = step!(tag(" ")(r), "bad status line");
    let (r, code) = step!(
        take_while_m_n(3, 3, |c: u8| c.is_ascii_digit())(r),
        "bad status code"
    );
    let status =
        (code[0] - b'0') as u16 * 100 + (code[1] - b'0') as u16 * 10 + (code[2] - b'0') as u16;
    if status < 100 {
        return Err(Stop::Bad("bad status code"));
    }
    let (r, reason) = match eol(r) {
        Ok((r, _)) => (r, &b""[..]),
        Err(nom::Err::Incomplete(_)) => return Err(Stop::More),
        Err(_) => {
            let (r, _) = step!(tag(" ")(r), "bad status line");
            let (r, reason) = step!(take_while(is_field_char)(r), "bad reason phrase");
            let (r, _) = step!(eol(r), "bad reason phrase");
            (r, reason)
        }
    };
    let (r, headers) = header_block(r)?;
    Ok((
        r,
        ResponseHead {
            minor,
            status,
            reason: lossy_text(reason.trim_ascii_end()),
            headers,
        },
    ))
}

type HeadFn<T> = fn(&[u8]) -> Result<(&[u8], T), Stop>;

fn run_head<T>(buf: &[u8], f: HeadFn<T>) -> Parse<T> {
    let lim = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    match f(lim) {
        Ok((rest, v)) => Parse::Complete(v, lim.len() - rest.len()),
        Err(Stop::More) if buf.len() >= MAX_HEAD_BYTES => Parse::Invalid("head too large"),
        Err(Stop::More) => Parse::NeedMore,
        Err(Stop::Bad(m)) => Parse::Invalid(m),
    }
}

/// Parse a request head (request line, header fields, empty line).
pub fn parse_request(buf: &[u8]) -> Parse<RequestHead> {
    run_head(buf, request_head)
}

/// Parse a response head (status line, header fields, empty line).
pub fn parse_response(buf: &[u8]) -> Parse<ResponseHead> {
    run_head(buf, response_head)
}

// ---------------------------------------------------------------------------
// body framing (RFC 9112 §6.3)

fn content_length(h: &Headers) -> Result<Option<u64>, &'static str> {
    let mut found: Option<u64> = None;
    for v in h.get_all_known(CONTENT_LENGTH) {
        // the usual: one number (19 digits cannot overflow a u64)
        if !v.is_empty() && v.len() <= 19 && v.bytes().all(|c| c.is_ascii_digit()) {
            let n = v.bytes().fold(0u64, |n, c| n * 10 + (c - b'0') as u64);
            match found {
                Some(prev) if prev != n => return Err("conflicting content-length"),
                _ => found = Some(n),
            }
            continue;
        }
        // A list of identical values ("42, 42") is allowed, anything else is not.
        for part in v.split(',') {
            let p = part.trim();
            if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err("bad content-length");
            }
            let n: u64 = p.parse().map_err(|_| "content-length overflow")?;
            match found {
                Some(prev) if prev != n => return Err("conflicting content-length"),
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// `Some(true)` if Transfer-Encoding is present and its final coding is
/// chunked, `Some(false)` if present otherwise, `None` if absent.
fn te_chunked(h: &Headers) -> Option<bool> {
    let mut last: Option<String> = None;
    let mut present = false;
    for v in h.get_all_known(TRANSFER_ENCODING) {
        present = true;
        for c in v.split(',') {
            let c = c.trim();
            if !c.is_empty() {
                last = Some(c.to_ascii_lowercase());
            }
        }
    }
    if !present {
        return None;
    }
    Some(
        last.as_deref()
            .map(|c| c.split(';').next().unwrap_or("").trim() == "chunked")
            .unwrap_or(false),
    )
}

/// Body framing of a request.
pub fn request_framing(h: &RequestHead) -> Result<BodyFraming, &'static str> {
    match te_chunked(&h.headers) {
        Some(true) => return Ok(BodyFraming::Chunked),
        // A request whose final coding is not chunked cannot be delimited.
        Some(false) => return Err("transfer-encoding without final chunked"),
        None => {}
    }
    Ok(match content_length(&h.headers)? {
        Some(0) | None => BodyFraming::None,
        Some(n) => BodyFraming::Length(n),
    })
}

/// Body framing of a response to a request with method `req_method` (None if
/// the request was not seen).
pub fn response_framing(
    req_method: Option<&str>,
    h: &ResponseHead,
) -> Result<BodyFraming, &'static str> {
    let s = h.status;
    if s == 101 {
        return Ok(BodyFraming::Tunnel);
    }
    if req_method == Some("CONNECT") && (200..300).contains(&s) {
        return Ok(BodyFraming::Tunnel);
    }
    if req_method == Some("HEAD") || (100..200).contains(&s) || s == 204 || s == 304 {
        return Ok(BodyFraming::None);
    }
    match te_chunked(&h.headers) {
        Some(true) => return Ok(BodyFraming::Chunked),
        Some(false) => return Ok(BodyFraming::CloseDelimited),
        None => {}
    }
    Ok(match content_length(&h.headers)? {
        Some(0) => BodyFraming::None,
        Some(n) => BodyFraming::Length(n),
        None => BodyFraming::CloseDelimited,
    })
}

// ---------------------------------------------------------------------------
// chunked decoder

/// CRLF ending a chunk's data, then the last chunk with no trailers.
const LAST_CHUNK: &[u8] = b"\r\n0\r\n\r\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CState {
    Size,
    Data(u64),
    DataEnd,
    Trailer(usize),
    Done,
}

/// Outcome of feeding bytes to a [`ChunkedDecoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkStep {
    /// Consumed this many bytes; the body is not finished, feed more (the
    /// unconsumed remainder must be fed again together with new bytes).
    Progress(usize),
    /// The body (including trailers) ended after this many bytes.
    Done(usize),
    Invalid(&'static str),
}

/// Incremental decoder for the chunked transfer coding, including chunk
/// extensions and trailer fields. Counts data bytes; does not keep them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: CState,
    /// Chunk-data bytes seen so far (captured or skipped).
    pub data_bytes: u64,
    /// Wire bytes of the body consumed so far (framing included).
    pub wire_bytes: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: CState::Size,
            data_bytes: 0,
            wire_bytes: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == CState::Done
    }

    /// Bytes left in the current chunk's data, if inside chunk data.
    pub fn data_remaining(&self) -> Option<u64> {
        match self.state {
            CState::Data(n) => Some(n),
            _ => None,
        }
    }

    /// Feed bytes. Returns how many were consumed; unconsumed bytes are an
    /// incomplete framing line and must be offered again with more input.
    pub fn feed(&mut self, buf: &[u8]) -> ChunkStep {
        let mut off = 0usize;
        let r = self.feed_inner(buf, &mut off);
        self.wire_bytes += off as u64;
        r
    }

    fn feed_inner(&mut self, buf: &[u8], off: &mut usize) -> ChunkStep {
        loop {
            let i = &buf[*off..];
            match self.state {
                CState::Done => return ChunkStep::Done(*off),
                CState::Size => match chunk_size_line(i) {
                    Ok((r, n)) => {
                        *off += i.len() - r.len();
                        self.state = if n == 0 {
                            CState::Trailer(0)
                        } else {
                            CState::Data(n)
                        };
                    }
                    Err(Stop::More) => {
                        if i.len() > MAX_CHUNK_LINE {
                            return ChunkStep::Invalid("chunk size line too long");
                        }
                        return ChunkStep::Progress(*off);
                    }
                    Err(Stop::Bad(m)) => return ChunkStep::Invalid(m),
                },
                CState::Data(rem) => {
                    let n = rem.min(i.len() as u64);
                    *off += n as usize;
                    self.data_bytes += n;
                    if n == rem {
                        self.state = CState::DataEnd;
                    } else {
                        self.state = CState::Data(rem - n);
                        return ChunkStep::Progress(*off);
                    }
                }
                CState::DataEnd => match eol(i) {
                    Ok((r, _)) => {
                        *off += i.len() - r.len();
                        self.state = CState::Size;
                    }
                    Err(nom::Err::Incomplete(_)) => return ChunkStep::Progress(*off),
                    Err(_) => return ChunkStep::Invalid("missing CRLF after chunk data"),
                },
                CState::Trailer(count) => {
                    match eol(i) {
                        Ok((r, _)) => {
                            *off += i.len() - r.len();
                            self.state = CState::Done;
                            continue;
                        }
                        Err(nom::Err::Incomplete(_)) => return ChunkStep::Progress(*off),
                        Err(_) => {}
                    }
                    if count >= MAX_HEADERS {
                        return ChunkStep::Invalid("too many trailer fields");
                    }
                    match trailer_line(i) {
                        Ok(r) => {
                            *off += i.len() - r.len();
                            self.state = CState::Trailer(count + 1);
                        }
                        Err(Stop::More) => {
                            if i.len() > MAX_HEAD_BYTES {
                                return ChunkStep::Invalid("trailer too large");
                            }
                            return ChunkStep::Progress(*off);
                        }
                        Err(Stop::Bad(m)) => return ChunkStep::Invalid(m),
                    }
                }
            }
        }
    }

    /// `n` body bytes went by without being captured. Succeeds (returns true)
    /// only when they lie within the current chunk's data (optionally plus its
    /// terminating CRLF), so framing is kept; otherwise the caller has lost
    /// sync.
    pub fn skip(&mut self, n: u64) -> bool {
        match self.state {
            CState::Data(rem) if n <= rem => {
                self.data_bytes += n;
                self.wire_bytes += n;
                self.state = if n == rem {
                    CState::DataEnd
                } else {
                    CState::Data(rem - n)
                };
                true
            }
            CState::Data(rem) if n == rem + 2 => {
                // The data and its CRLF were skipped; assume a CRLF.
                self.data_bytes += rem;
                self.wire_bytes += n;
                self.state = CState::Size;
                true
            }
            CState::Data(rem) if n == rem + LAST_CHUNK.len() as u64 => {
                // The data, its CRLF and exactly a trailer-less last chunk
                // were skipped: one large write of a whole chunked body
                // truncated by the capture cap (the usual shape of a
                // client's chunked upload). Assume "\r\n0\r\n\r\n".
                self.data_bytes += rem;
                self.wire_bytes += n;
                self.state = CState::Done;
                true
            }
            _ => n == 0,
        }
    }
}

fn chunk_size_line(i: &[u8]) -> Result<(&[u8], u64), Stop> {
    let (r, hex) = step!(
        take_while1(|c: u8| c.is_ascii_hexdigit())(i),
        "bad chunk size"
    );
    let digits = {
        let mut h = hex;
        while h.len() > 1 && h[0] == b'0' {
            h = &h[1..];
        }
        h
    };
    if digits.len() > 15 {
        return Err(Stop::Bad("chunk size overflow"));
    }
    let mut n: u64 = 0;
    for &c in digits {
        n = n * 16 + (c as char).to_digit(16).unwrap_or(0) as u64;
    }
    // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
    let (r2, ext) = step!(
        take_while(|c: u8| c != b'\r' && c != b'\n' && is_field_char(c))(r),
        "bad chunk extension"
    );
    let e = ext
        .iter()
        .position(|&c| !is_ows(c))
        .map(|p| &ext[p..])
        .unwrap_or(&[]);
    if !e.is_empty() && e[0] != b';' {
        return Err(Stop::Bad("bad chunk extension"));
    }
    let (r3, _) = step!(eol(r2), "bad chunk size line");
    Ok((r3, n))
}

fn trailer_line(i: &[u8]) -> Result<&[u8], Stop> {
    if is_ows(i[0]) {
        return Err(Stop::Bad("obsolete line folding"));
    }
    let (r, _) = step!(take_while1(is_tchar)(i), "bad trailer field");
    let (r, _) = step!(tag(":")(r), "bad trailer field");
    let (r, _) = step!(take_while(is_field_char)(r), "bad trailer field");
    let (r, _) = step!(eol(r), "bad trailer field");
    Ok(r)
}

/// Methods the resynchroniser accepts as the start of a request.
pub const KNOWN_METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
];

/// Is `buf` (possibly) the start of a request line with a well-known method?
/// Returns false as soon as it cannot be.
pub fn plausible_request_start(buf: &[u8]) -> bool {
    let starts = KNOWN_METHODS.iter().any(|m| {
        let m = m.as_bytes();
        let n = m.len().min(buf.len());
        buf[..n] == m[..n] && (buf.len() <= m.len() || buf[m.len()] == b' ')
    });
    starts && !parse_request(buf).is_invalid()
}

/// Is `buf` (possibly) the start of a status line?
pub fn plausible_response_start(buf: &[u8]) -> bool {
    let p = b"HTTP/1.";
    let n = p.len().min(buf.len());
    buf[..n] == p[..n] && !parse_response(buf).is_invalid()
}

#[cfg(test)]
mod find_tests {
    use super::find_byte;

    #[test]
    fn find_byte_as_position_at_every_offset_and_length() {
        for len in 0..140usize {
            for at in (0..len).map(Some).chain([None]) {
                for fill in [b'a', b'\n' + 1, b'\n' - 1, 0x80 | b'\n', 0xff, 0] {
                    let mut v = vec![fill; len];
                    if let Some(a) = at {
                        v[a] = b'\n';
                        // a second one after it must not be the answer
                        if a + 3 < len {
                            v[a + 3] = b'\n';
                        }
                    }
                    let want = v.iter().position(|&c| c == b'\n');
                    assert_eq!(
                        find_byte(b'\n', &v),
                        want,
                        "len {len} at {at:?} fill {fill:#x}"
                    );
                }
            }
        }
    }
}
