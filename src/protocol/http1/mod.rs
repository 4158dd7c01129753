// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/1.x: the parser (`parser`), per-direction framing with gaps and
//! resynchronisation (`framing`), FIFO pairing of requests and responses
//! (`pairing`) and the `http_transaction` / `http_message` records
//! (`record`).

mod framing;
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

use super::{Chunk, Ctx, Detect, EndReason, Hint, PerDir, Protocol, Session, BOTH};
use crate::event::Direction;
use framing::{DirState, SkipKind};
use record::Msg;

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
    reqs: VecDeque<Msg>,
    resps: VecDeque<Msg>,
    /// Method and start time of requests whose final response head has not
    /// been parsed yet (response framing depends on the method).
    req_methods: VecDeque<(Cow<'static, str>, u64)>,
    /// Directions with buffered bytes to process again (an upgrade that
    /// did not happen releases a paused direction).
    dirty: PerDir<bool>,
    /// Every cause of lost bytes in either direction so far.
    lost: crate::record::GapCauses,
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
        if c.bytes.is_empty() {
            self.process(d, cx);
        } else {
            self.feed(d, c.bytes, c.at, c.stamp, cx);
        }
        if c.uncaptured > 0 {
            self.skip(d, c.uncaptured, SkipKind::Truncated, c.stamp.ts, cx);
        }
        self.enforce_buf_cap(d, cx);
    }

    fn gap(&mut self, d: Direction, n: u64, ts: u64, cx: &mut Ctx) {
        self.skip(d, n, SkipKind::Gap, ts, cx);
    }

    /// Process dirty directions and pair until nothing changes.
    fn settle(&mut self, cx: &mut Ctx) {
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
}

#[cfg(test)]
pub(crate) mod tests;
