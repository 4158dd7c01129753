// SPDX-License-Identifier: GPL-3.0-or-later
//! Framing a direction's bytes: the [`Framer`]'s steps taken over the
//! captured chunk in place where a step's bytes are all in it, through the
//! direction's [`Buffered`](crate::protocol::buffer::Buffered) copy only
//! for a step split across chunks; bytes that went by unseen; finding
//! frames again after lost bytes.

use super::frame::{self, Framer, Step};
use super::session::Http2Session;
use crate::event::Direction;
use crate::protocol::http1::Parse;
use crate::protocol::{Ctx, Stamp};
use crate::record::{GapCauses, Source};

#[cfg(test)]
thread_local! {
    /// Tests: every step through the buffer, as before frames were read in
    /// place (what `inplace_tests` compares the in-place reading with).
    pub(super) static BUFFERED_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn in_place_allowed() -> bool {
    #[cfg(test)]
    return !BUFFERED_ONLY.with(|c| c.get());
    #[cfg(not(test))]
    true
}

impl Http2Session {
    /// Frame what direction `d` has: captured `bytes` at stream position `at`.
    pub(super) fn feed(
        &mut self,
        d: Direction,
        mut bytes: &[u8],
        mut at: u64,
        stamp: Stamp,
        cx: &mut Ctx,
    ) {
        self.dirs[d].cur = stamp;
        while !bytes.is_empty() {
            let dir = &mut self.dirs[d];
            if dir.resync {
                dir.input.push(bytes, at + bytes.len() as u64, stamp);
                self.try_resync(d, cx);
                self.run(d, cx);
                return;
            }
            if dir.input.buf.is_empty() && in_place_allowed() {
                // every step whose bytes are all in the chunk, read in place
                let n = self.in_place(d, bytes, stamp, cx);
                at += n as u64;
                bytes = &bytes[n..];
                let dir = &mut self.dirs[d];
                dir.input.reset_at(at);
                if bytes.is_empty() || dir.resync {
                    continue;
                }
            }
            // a step split across chunks (or one that failed: `run` takes
            // it from the buffer): buffered up to the bytes it needs
            let dir = &mut self.dirs[d];
            let have = dir.input.buf.len();
            let n = dir.framer().want(have).max(1).min(bytes.len());
            dir.input.push(&bytes[..n], at + n as u64, stamp);
            at += n as u64;
            bytes = &bytes[n..];
            self.run(d, cx);
        }
    }

    /// Take every step whose bytes are all in `bytes` (a chunk of `stamp`,
    /// nothing buffered before it); returns how many bytes they took. A
    /// step that needs more, or that fails, is left to the buffered path
    /// (the framer as it was before it), which then holds exactly the
    /// bytes it did before frames were read in place.
    fn in_place(&mut self, d: Direction, bytes: &[u8], stamp: Stamp, cx: &mut Ctx) -> usize {
        let mut used = 0;
        while used < bytes.len() && !self.dirs[d].resync {
            let rest = &bytes[used..];
            let framer = self.dirs[d].framer();
            let before = framer.clone();
            let starting = framer.at_boundary();
            let body = framer.data_body_left();
            match framer.next(rest) {
                Parse::Complete(step, n) => {
                    if starting {
                        self.dirs[d].frame_first = stamp;
                    }
                    if let Step::Skipped(k) = step {
                        if let Some((h, left)) = body {
                            let k = k.min(usize::try_from(left).unwrap_or(usize::MAX));
                            self.grpc_data(d, h.stream, &rest[..k], 0, false);
                        }
                        used += n;
                        if let Some(s) = self.dirs[d].framer().ended() {
                            self.on_step(d, s, stamp, cx);
                        }
                    } else {
                        self.on_step(d, step, stamp, cx);
                        used += n;
                    }
                }
                Parse::NeedMore => break,
                Parse::Invalid(_) => {
                    *self.dirs[d].framer() = before;
                    break;
                }
            }
        }
        used
    }

    /// Take every step the buffered bytes give.
    fn run(&mut self, d: Direction, cx: &mut Ctx) {
        loop {
            if self.dirs[d].resync {
                return;
            }
            let mut input = std::mem::take(&mut self.dirs[d].input);
            let starting = self.dirs[d].framer().at_boundary();
            let body = self.dirs[d].framer().data_body_left();
            let r = self.dirs[d].framer().next(&input.buf);
            let stop = match r {
                Parse::Complete(step, n) => {
                    if starting {
                        self.dirs[d].frame_first = input.stamp_at(input.pos);
                    }
                    let last = input.stamp_at(input.pos + n.max(1) as u64 - 1);
                    let skipped = matches!(step, Step::Skipped(_));
                    if let (Step::Skipped(k), Some((h, left))) = (&step, body) {
                        let k = (*k).min(usize::try_from(left).unwrap_or(usize::MAX));
                        self.grpc_data(d, h.stream, &input.buf[..k], 0, false);
                    }
                    if !skipped {
                        self.on_step(d, step, last, cx);
                    }
                    input.consume(n);
                    if skipped {
                        if let Some(s) = self.dirs[d].framer().ended() {
                            self.on_step(d, s, last, cx);
                        }
                    }
                    n == 0 && input.buf.is_empty()
                }
                Parse::NeedMore => true,
                Parse::Invalid(_) => {
                    self.dirs[d].input = input;
                    if starting && self.expecting_preface(d) {
                        // no preface (the peer's side): frames from here
                        self.dirs[d].framer().reset();
                        continue;
                    }
                    cx.stats.unparseable += 1;
                    self.lose_sync(d, GapCauses::UNPARSEABLE, cx);
                    // the search starts one byte into what failed: a header
                    // that looks right but does not frame must not be found
                    // again (a loop without end, found by the fuzzer)
                    let input = &mut self.dirs[d].input;
                    if !input.buf.is_empty() {
                        cx.stats.bytes_dropped += 1;
                        input.consume(1);
                    }
                    self.try_resync(d, cx);
                    continue;
                }
            };
            self.dirs[d].input = input;
            if stop {
                return;
            }
        }
    }

    fn expecting_preface(&self, d: Direction) -> bool {
        self.dirs[d]
            .framer
            .as_ref()
            .is_some_and(Framer::expects_preface)
    }

    /// Lost bytes (or an invalid frame): frames are looked for again, the
    /// HPACK table is unknown, the block in progress and the open streams
    /// may miss frames.
    fn lose_sync(&mut self, d: Direction, cause: GapCauses, cx: &mut Ctx) {
        cx.stats.resyncs += 1;
        self.lost |= cause;
        let dir = &mut self.dirs[d];
        dir.resync = true;
        dir.framer().reset();
        dir.hpack().forget();
        if dir.block.take().is_some() {
            cx.stats.hpack_errors += 1;
        }
        for s in self.streams.iter_mut() {
            s.gap = true;
            s.causes |= cause;
            for h in [&mut s.req, &mut s.resp] {
                if h.dir == Some(d) {
                    if let Some(m) = h.grpc.as_mut() {
                        m.lose();
                    }
                }
            }
        }
    }

    /// In resync: drop bytes up to a plausible frame start.
    fn try_resync(&mut self, d: Direction, cx: &mut Ctx) {
        let dir = &mut self.dirs[d];
        let max = dir.framer().max_frame;
        match frame::find_frame_start(&dir.input.buf, max) {
            Some(at) => {
                cx.stats.bytes_dropped += at as u64;
                dir.input.consume(at);
                dir.resync = false;
                dir.framer().reset();
            }
            None => {
                // keep a tail where a header may begin
                let keep = 64 * 1024;
                if dir.input.buf.len() > keep {
                    let n = dir.input.buf.len() - keep;
                    cx.stats.bytes_dropped += n as u64;
                    dir.input.consume(n);
                }
            }
        }
    }

    /// `n` bytes of direction `d` went by unseen; `uncaptured`: counted,
    /// not captured, for that cause (the capture cap, a failed read:
    /// [`Chunk::uncaptured_cause`](crate::protocol::Chunk::uncaptured_cause)),
    /// else lost.
    pub(super) fn skip(
        &mut self,
        d: Direction,
        n: u64,
        uncaptured: Option<GapCauses>,
        cx: &mut Ctx,
    ) {
        let truncated = uncaptured.is_some();
        let dir = &mut self.dirs[d];
        let buffered = dir.input.buf.len();
        let next = dir.input.pos + buffered as u64 + n;
        if !dir.resync {
            let in_data = dir.framer().skipping_data();
            let body = dir.framer().data_body_left();
            if truncated && dir.framer().skip(n, buffered) {
                if let Some((h, left)) = body {
                    let fault = uncaptured == Some(GapCauses::READ_FAULT);
                    self.grpc_data(d, h.stream, &[], n.min(left), fault);
                }
                let dir = &mut self.dirs[d];
                if buffered > 0 {
                    cx.stats.bytes_dropped += buffered as u64;
                }
                dir.input.drop_all(next);
                dir.data_uncaptured |= in_data;
                if let Some(s) = dir.framer().ended() {
                    let last = dir.cur;
                    self.on_step(d, s, last, cx);
                }
                return;
            }
        }
        cx.stats.bytes_dropped += dir.input.drop_all(next);
        if !self.dirs[d].resync {
            let cause = if let Some(c) = uncaptured {
                c
            } else if cx.cfg.source == Source::Wire {
                GapCauses::PACKETS_MISSING
            } else {
                GapCauses::RING_BUFFER_DROP
            };
            self.lose_sync(d, cause, cx);
        }
    }
}
