// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/2 (RFC 9113) with prior knowledge (h2c): frames (`frame`), HPACK
//! header decoding (`hpack`, `huffman`), the connection and its streams
//! (`session`) and one `http_transaction` record per stream (`record`).
//!
//! A connection also becomes HTTP/2 by the HTTP/1.1 upgrade (RFC 7540
//! §3.2): the HTTP/1.x session sees `Upgrade: h2c` answered 101 and hands
//! the connection over to [`upgraded`]'s session, whose stream 1 is the
//! upgrade request.
//!
//! Detection: the client preface from the client, or a SETTINGS frame as
//! the first bytes (the server's side, whose first bytes are its SETTINGS:
//! a server that sends them without waiting, or a capture whose first
//! event is the server's), or — a connection joined mid-stream — whole
//! frames of known types chained to exactly the end of the first bytes.

pub mod frame;
pub mod grpc;
pub mod hpack;
pub mod huffman;
mod input;
mod record;
mod session;
mod streams;

use super::{Detect, Hint, Protocol, Session, Stamp};
use crate::event::Direction;
use crate::protocol::http1::Parse;
use crate::record::GapCauses;
use frame::FrameHeader;

/// The HTTP/2 protocol (`"http2"`).
pub struct Http2;

/// The records' `protocol` field.
pub const NAME: &str = crate::record::HTTP2;

/// A server's first frame: SETTINGS on stream 0, not an ACK.
fn is_settings(h: &FrameHeader) -> bool {
    h.ty == frame::SETTINGS && h.flags == 0
}

impl Protocol for Http2 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, first: &[u8], _hint: &Hint) -> Detect {
        // "PRI " at least: HTTP/1.x claims no such method
        if first.len() >= 4 && !frame::parse_preface(first).is_invalid() {
            return Detect::Bytes;
        }
        match frame::parse_header(first, frame::DEFAULT_MAX_FRAME) {
            Parse::Complete(h, _) if is_settings(&h) => Detect::Bytes,
            // joined mid-stream: whole frames, one after the other, to the
            // end of the first bytes (HTTP/1.x text never frames so)
            Parse::Complete(..)
                if frame::find_frame_start(first, frame::DEFAULT_MAX_FRAME) == Some(0)
                    && frame::frames_to_end(first, frame::DEFAULT_MAX_FRAME) =>
            {
                Detect::Bytes
            }
            _ => Detect::No,
        }
    }

    fn session(&self) -> Box<dyn Session> {
        Box::new(session::Http2Session::default())
    }
}

/// An HTTP/1.1 request that asked for h2c and was answered 101: it
/// becomes stream 1 of the HTTP/2 connection that follows, whose response
/// comes as HTTP/2 on stream 1.
#[derive(Debug, Default)]
pub struct Upgrade {
    /// The direction requests went (the client's sending side).
    pub client_dir: Option<Direction>,
    pub method: String,
    /// Origin form (`/path?query`).
    pub path: String,
    pub authority: Option<String>,
    pub content_type: Option<String>,
    /// The HTTP/1.1 request's head: fields and bytes.
    pub header_count: u32,
    pub header_bytes: u64,
    pub body_bytes: u64,
    /// With `--headers`.
    pub headers: Option<Vec<(String, String)>>,
    /// When the request's first byte moved, and its last.
    pub first: Stamp,
    pub last_ts: u64,
    /// When the 101's first byte moved.
    pub switched_ts: u64,
    /// The `HTTP2-Settings` header: the client's SETTINGS payload,
    /// base64url.
    pub settings: Option<String>,
    /// The request had lost bytes (and why).
    pub gap: bool,
    pub causes: GapCauses,
}

/// The session for a connection that switched to HTTP/2 after `u`.
pub fn upgraded(u: Upgrade) -> Box<dyn Session> {
    Box::new(session::Http2Session::upgraded(u))
}

/// base64url (RFC 4648 §5), padding optional; None if not.
fn base64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod upgrade_tests;
