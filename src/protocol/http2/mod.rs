// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/2 (RFC 9113) with prior knowledge (h2c): frames (`frame`), HPACK
//! header decoding (`hpack`, `huffman`), the connection and its streams
//! (`session`) and one `http_transaction` record per stream (`record`).
//!
//! Detection: the client preface from the client, or a SETTINGS frame as
//! the first bytes (the server's side, whose first bytes are its SETTINGS:
//! a server that sends them without waiting, or a capture whose first
//! event is the server's), or — a connection joined mid-stream — whole
//! frames of known types chained to exactly the end of the first bytes.

pub mod frame;
pub mod grpc;
pub mod hpack;
mod huffman;
mod record;
mod session;

use super::{Detect, Hint, Protocol, Session};
use crate::protocol::http1::Parse;
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

#[cfg(test)]
mod tests;
