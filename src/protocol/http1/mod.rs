// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/1.x: the parser (`parser`), per-direction framing with gaps and
//! resynchronisation (`framing`), FIFO pairing of requests and responses
//! (`pairing`) and the `http_transaction` / `http_message` records
//! (`record`).

mod framing;
mod headers;
mod message;
mod pairing;
pub mod parser;
mod record;

use std::borrow::Cow;
use std::collections::VecDeque;

pub use parser::{
    is_interim, parse_full_request, parse_full_response, parse_request, parse_response,
    request_framing, response_framing, BodyFraming, ChunkStep, ChunkedDecoder, Headers, Message,
    Parse, RequestHead, ResponseHead,
};

use super::{Chunk, Ctx, Detect, EndReason, Handover, Hint, PerDir, Protocol, Rest, Session, BOTH};
use crate::event::Direction;
use framing::{DirState, SkipKind};
use record::MsgBox;

/// The HTTP/1.x protocol (`"http1"`).
pub struct Http1;

/// The records' `protocol` field.
pub const NAME: &str = crate::record::HTTP1;

/// Ports HTTP/1.x servers commonly listen on: a hint only.
const PORTS: [u16; 4] = [80, 8000, 8080, 8008];

impl Protocol for Http1 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, first: &[u8], hint: &Hint) -> Detect {
        if parser::plausible_request_start(first) || parser::plausible_response_start(first) {
            return Detect::Bytes;
        }
        let port = |p: Option<u16>| p.is_some_and(|p| PORTS.contains(&p));
        if port(hint.local_port) || port(hint.remote_port) {
            return Detect::Port;
        }
        Detect::No
    }

    fn session(&self) -> Box<dyn Session> {
        Box::new(Http1Session::default())
    }
}

/// One connection's HTTP/1.x state.
#[derive(Default)]
pub(crate) struct Http1Session {
    dirs: PerDir<DirState>,
    reqs: VecDeque<MsgBox>,
    resps: VecDeque<MsgBox>,
    /// Method and start time of requests whose final response head has not
    /// been parsed yet (response framing depends on the method).
    req_methods: VecDeque<(Cow<'static, str>, u64)>,
    /// Directions with buffered bytes to process again (an upgrade that
    /// did not happen releases a paused direction).
    dirty: PerDir<bool>,
    /// Every cause of lost bytes in either direction so far.
    lost: crate::record::GapCauses,
    /// The connection switched to HTTP/2 (`Upgrade: h2c`, 101): what
    /// stream 1 takes from the upgrade request, until the tracker takes
    /// the hand-over; meanwhile bytes are kept for the new session.
    h2c: Option<Box<crate::protocol::http2::Upgrade>>,
    /// Uncaptured bytes per direction after the switch point (kept for
    /// the new session, as the buffered bytes are).
    h2c_uncaptured: PerDir<u64>,
    /// Some of them went uncaptured for a failed read (`Chunk::fault`).
    h2c_fault: PerDir<bool>,
}

impl Session for Http1Session {
    fn start(&mut self, d: Direction, known_start: bool, cx: &mut Ctx) {
        let dir = &mut self.dirs[d];
        dir.input.pos = cx.streams[d].next_pos;
        if !known_start {
            dir.mode = framing::Mode::Resync;
            dir.lost |= crate::record::GapCauses::MIDSTREAM;
            self.lost |= crate::record::GapCauses::MIDSTREAM;
        }
    }

    fn data(&mut self, d: Direction, c: Chunk, cx: &mut Ctx) {
        if self.h2c.is_some() {
            // switched: everything is the new session's
            self.keep_for_h2c(d, c);
            return;
        }
        if c.bytes.is_empty() {
            self.process(d, cx);
        } else {
            self.feed(d, c.bytes, c.at, c.stamp, cx);
        }
        if self.h2c.is_some() {
            // switched inside this chunk: its tail is the new session's
            self.h2c_uncaptured[d] += c.uncaptured;
            self.h2c_fault[d] |= c.fault && c.uncaptured > 0;
            return;
        }
        if c.uncaptured > 0 {
            let kind = if c.fault {
                SkipKind::Faulted
            } else {
                SkipKind::Truncated
            };
            self.skip(d, c.uncaptured, kind, c.stamp.ts, cx);
        }
        self.enforce_buf_cap(d, cx);
    }

    fn gap(&mut self, d: Direction, n: u64, ts: u64, cx: &mut Ctx) {
        if self.h2c.is_some() {
            // (the tracker takes the hand-over right after the call that
            // asked for it: no bytes can be lost in between)
            return;
        }
        self.skip(d, n, SkipKind::Gap, ts, cx);
    }

    /// Process dirty directions and pair until nothing changes.
    fn settle(&mut self, cx: &mut Ctx) {
        if !self.dirty.iter().any(|&x| x) && self.resps.is_empty() {
            // (after every event) nothing to process again, nothing to pair
            return;
        }
        for _ in 0..8 {
            let mut any = false;
            for d in BOTH {
                if self.dirty[d] {
                    self.dirty[d] = false;
                    any = true;
                    self.process(d, cx);
                }
            }
            self.pair(cx);
            if !any && !self.dirty.iter().any(|&x| x) {
                break;
            }
        }
    }

    fn end(&mut self, reason: EndReason, cx: &mut Ctx) {
        self.settle(cx);
        self.end_conn(reason, cx);
    }

    /// Give back the allocations an idle keep-alive connection no longer
    /// needs (queues and buffers keep the capacity of their busiest moment
    /// otherwise): with 10k connections open that was most of the memory.
    fn compact(&mut self) {
        if self.reqs.is_empty() && self.reqs.capacity() > 0 {
            self.reqs = VecDeque::new();
        }
        if self.resps.is_empty() && self.resps.capacity() > 0 {
            self.resps = VecDeque::new();
        }
        if self.req_methods.is_empty() && self.req_methods.capacity() > 0 {
            self.req_methods = VecDeque::new();
        }
        for d in self.dirs.iter_mut() {
            d.input.release_idle();
        }
    }

    fn buffered(&self, d: Direction) -> usize {
        self.dirs[d].input.buf.len()
    }

    fn take_handover(&mut self) -> Option<Handover> {
        let up = self.h2c.take()?;
        let mut rest: PerDir<Rest> = PerDir::default();
        for d in BOTH {
            let dir = &mut self.dirs[d];
            rest[d] = Rest {
                pieces: dir.input.pieces(),
                uncaptured: std::mem::take(&mut self.h2c_uncaptured[d]),
                fault: std::mem::take(&mut self.h2c_fault[d]),
            };
            let end = dir.input.pos + dir.input.buf.len() as u64;
            dir.input.drop_all(end);
            dir.mode = framing::Mode::Tunnel;
        }
        Some(Handover {
            session: crate::protocol::http2::upgraded(*up),
            rest,
        })
    }
}

impl Http1Session {
    /// After the switch to h2c, before the hand-over: bytes for the new
    /// session.
    fn keep_for_h2c(&mut self, d: Direction, c: Chunk) {
        if !c.bytes.is_empty() {
            let input = &mut self.dirs[d].input;
            if input.buf.is_empty() {
                input.reset_at(c.at);
            }
            input.push(c.bytes, c.at + c.bytes.len() as u64, c.stamp);
        }
        self.h2c_uncaptured[d] += c.uncaptured;
        self.h2c_fault[d] |= c.fault && c.uncaptured > 0;
    }
}

#[cfg(test)]
pub(crate) mod tests;
