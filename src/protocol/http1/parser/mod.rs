// SPDX-License-Identifier: GPL-3.0-or-later
//! Streaming HTTP/1.0 and HTTP/1.1 parser: heads written out byte- and
//! word-wise (the results of the `nom` streaming combinators they
//! replaced), the chunked coding's lines with those combinators.
//!
//! Everything here is a pure function of its input bytes. Head parsers return a
//! three-way [`Parse`] result: a complete value with the number of bytes it
//! consumed, "need more bytes", or "this can never become a valid message".
//! Limits ([`MAX_HEAD_BYTES`], [`MAX_HEADERS`]) are enforced before bytes past
//! them are looked at, so a hostile peer cannot make the parser buffer without
//! bound.
//!
//! The pieces: [`lex`] (character classes, line ends, the version, text),
//! [`head`] (start lines and the header block), [`body`] (body framing) and
//! [`chunked`] (the chunked transfer coding); their public items are
//! re-exported here, so `http1::parser::…` paths stay as they were.

use std::borrow::Cow;

use crate::text::Text;

mod body;
mod chunked;
mod head;
mod lex;

pub use super::headers::Headers;
pub use super::message::{parse_full_request, parse_full_response, Message};
pub use body::{request_framing, response_framing, BodyFraming};
pub use chunked::{ChunkStep, ChunkedDecoder};
pub use head::{parse_request, parse_response};

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

/// 1xx responses other than 101 are interim: a final response follows.
pub fn is_interim(status: u16) -> bool {
    (100..200).contains(&status) && status != 101
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

/// For parser tests: each of `lines` with the byte at each position
/// replaced by every value, `suffix` appended, cut at every length.
#[cfg(test)]
pub(super) fn each_variant(lines: &[&[u8]], suffix: &[u8], mut f: impl FnMut(&[u8])) {
    for line in lines {
        for at in 0..line.len() {
            for b in 0..=255u8 {
                let mut v = line.to_vec();
                v[at] = b;
                v.extend_from_slice(suffix);
                for cut in 0..=v.len() {
                    f(&v[..cut]);
                }
            }
        }
    }
}
