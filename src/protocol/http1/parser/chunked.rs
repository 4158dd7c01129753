// SPDX-License-Identifier: GPL-3.0-or-later
//! The chunked transfer coding (RFC 9112 §7.1): an incremental
//! [`ChunkedDecoder`] that counts data bytes, accepts chunk extensions and
//! trailer fields, and can keep its place across bytes that were not
//! captured.

use nom::bytes::streaming::{tag, take_while, take_while1};

use super::lex::{eol, is_field_char, is_ows, is_tchar, step, Stop};
use super::{MAX_CHUNK_LINE, MAX_HEADERS, MAX_HEAD_BYTES};

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
