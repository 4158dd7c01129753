// SPDX-License-Identifier: GPL-3.0-or-later
//! One HTTP/2 connection: per direction the framing ([`Framer`] over the
//! captured chunks, with a [`Buffered`] that only ever holds a frame
//! header or a non-DATA payload split across chunks: `input.rs`), an HPACK
//! decoder and the header block being assembled; per stream the request
//! and response halves (`streams.rs` holds the open ones, `record.rs`
//! turns them into records).

use crate::text::Text;
use std::collections::VecDeque;

use super::frame::{self, Frame, FrameHeader, Framer, Step};
use super::hpack;
use super::record::{Half, Stream};
use super::streams::Streams;
use crate::event::{Direction, Role};
use crate::protocol::buffer::Buffered;
use crate::protocol::{Chunk, Ctx, EndReason, PerDir, Session, Stamp, BOTH};
use crate::record::GapCauses;

/// Most streams tracked at once per connection; past it the oldest is
/// emitted as it is (gap) and counted. nginx allows 128 concurrent
/// streams, most clients 100.
pub const MAX_STREAMS: usize = 256;
/// Streams ended by RST_STREAM remembered per connection, so that frames
/// that crossed the reset (a server's answer to a cancelled call) are
/// ignored rather than opening a stream of their own.
const RESET_REMEMBERED: usize = 32;
/// A header list's decoded size past which fields are counted, not kept.
pub const MAX_HEADER_LIST: usize = 64 * 1024;

/// A header block being assembled from HEADERS/PUSH_PROMISE and
/// CONTINUATION frames.
#[derive(Debug)]
pub(super) struct BlockAcc {
    stream: u32,
    /// PUSH_PROMISE: the promised stream (the block is its request).
    promised: Option<u32>,
    end_stream: bool,
    bytes: Vec<u8>,
    /// Wire bytes of the block's frames (headers included).
    wire: u64,
    first: Stamp,
    lost: bool,
}

#[derive(Debug, Default)]
pub(super) struct Dir {
    pub(super) input: Buffered,
    pub(super) framer: Option<Framer>,
    hpack: Option<hpack::Decoder>,
    pub(super) block: Option<BlockAcc>,
    /// Reused: the last block's decoded fields, and the buffer a block's
    /// fragments are assembled in.
    decoded: hpack::Block,
    spare: Vec<u8>,
    /// Looking for a frame start after lost bytes.
    pub(super) resync: bool,
    /// The stamp of the current frame's first byte, and of the latest bytes.
    pub(super) frame_first: Stamp,
    pub(super) cur: Stamp,
    /// Bytes of the current DATA frame went by uncaptured.
    pub(super) data_uncaptured: bool,
    /// What the peer's SETTINGS said this direction may send
    /// (SETTINGS_MAX_FRAME_SIZE, SETTINGS_HEADER_TABLE_SIZE): kept for a
    /// direction whose first bytes come after them.
    max_frame: Option<u32>,
    table_limit: Option<u32>,
}

impl Dir {
    pub(super) fn framer(&mut self) -> &mut Framer {
        self.framer
            .get_or_insert_with(|| Framer::new(false, frame::MAX_MAX_FRAME, 256 * 1024))
    }
    pub(super) fn hpack(&mut self) -> &mut hpack::Decoder {
        self.hpack.get_or_insert_with(|| hpack::Decoder::new(false))
    }
}

/// One connection's HTTP/2 state.
#[derive(Default)]
pub(crate) struct Http2Session {
    pub(super) dirs: PerDir<Dir>,
    pub(super) streams: Streams,
    /// The direction requests go (the client's sending side), once known.
    client_dir: Option<Direction>,
    /// The error code of a GOAWAY seen: streams open at the end get it.
    goaway: Option<u32>,
    /// Why bytes were lost so far, either direction (a gapped stream with
    /// no cause of its own gets these; none at all: joined mid-stream).
    pub(super) lost: GapCauses,
    /// The latest streams ended by RST_STREAM (at most [`RESET_REMEMBERED`]).
    reset: VecDeque<u32>,
}

impl Http2Session {
    /// After an HTTP/1.1 upgrade: stream 1 holds the upgrade request, and
    /// the client's `HTTP2-Settings` bind what the server sends.
    pub(super) fn upgraded(u: super::Upgrade) -> Http2Session {
        let mut h = Http2Session {
            client_dir: u.client_dir,
            ..Http2Session::default()
        };
        let mut s = Stream::new(1);
        let q = &mut s.req;
        q.seen = true;
        q.dir = u.client_dir;
        q.method = Some(u.method.into());
        q.path = Some(u.path.into());
        q.authority = u.authority.map(Text::from);
        q.scheme = Some("http".into());
        q.content_type = u.content_type.map(Text::from);
        q.header_count = u.header_count;
        q.header_bytes = u.header_bytes;
        q.body_bytes = u.body_bytes;
        q.headers = u.headers;
        q.first = u.first;
        q.last_ts = u.last_ts;
        // the request is whole: its stream is half-closed (RFC 7540 §3.2)
        q.ended = true;
        s.interim = Some((101, u.switched_ts));
        s.gap = u.gap;
        s.causes = u.causes;
        s.touch(u.last_ts.max(u.switched_ts));
        h.streams.insert(s);
        let params = u
            .settings
            .as_deref()
            .and_then(super::base64url)
            .filter(|p| p.len() % 6 == 0);
        if let (Some(p), Some(c)) = (params, u.client_dir) {
            for kv in p.chunks_exact(6) {
                let id = u16::from_be_bytes([kv[0], kv[1]]);
                let v = u32::from_be_bytes([kv[2], kv[3], kv[4], kv[5]]);
                h.apply_setting(c.opposite(), id, v);
            }
        }
        h
    }

    /// A SETTINGS parameter the peer of direction `to` sent: it binds
    /// what `to` sends.
    fn apply_setting(&mut self, to: Direction, id: u16, v: u32) {
        let o = &mut self.dirs[to];
        match id {
            frame::SETTINGS_HEADER_TABLE_SIZE => {
                o.table_limit = Some(v);
                o.hpack().set_limit(v)
            }
            frame::SETTINGS_MAX_FRAME_SIZE => {
                let v = v.clamp(frame::DEFAULT_MAX_FRAME, frame::MAX_MAX_FRAME);
                o.max_frame = Some(v);
                o.framer().max_frame = v
            }
            _ => {}
        }
    }

    fn request_side(&self, d: Direction) -> Option<bool> {
        self.client_dir.map(|c| c == d)
    }

    /// DATA body bytes of `stream` went by in direction `d` (`bytes`, or
    /// `uncaptured` bytes not seen; `fault`: for a failed read): a gRPC
    /// call counts its messages.
    pub(super) fn grpc_data(
        &mut self,
        d: Direction,
        stream: u32,
        bytes: &[u8],
        uncaptured: u64,
        fault: bool,
    ) {
        let side = self.request_side(d);
        let Some(s) = self.streams.get_mut(stream) else {
            return;
        };
        if !s.is_grpc() {
            return;
        }
        let half = if is_request(side, s, d) {
            &mut s.req
        } else {
            &mut s.resp
        };
        let m = half.grpc.get_or_insert_with(Default::default);
        m.feed(bytes);
        m.skip(uncaptured, fault);
    }

    /// One framing step of direction `d`; `last`: when its last byte moved.
    pub(super) fn on_step(&mut self, d: Direction, step: Step, last: Stamp, cx: &mut Ctx) {
        let first = self.dirs[d].frame_first;
        match step {
            Step::Preface => {
                self.client_dir.get_or_insert(d);
            }
            Step::Data(h, body) => {
                let trunc = std::mem::take(&mut self.dirs[d].data_uncaptured);
                self.on_data(d, h, body, trunc, first, last, cx);
            }
            Step::Lost(h) => self.on_lost(d, h, first, last, cx),
            Step::Frame(h, f) => self.on_frame(d, h, f, first, last, cx),
            Step::Skipped(_) => {}
        }
    }

    fn on_frame(
        &mut self,
        d: Direction,
        h: FrameHeader,
        f: Frame,
        first: Stamp,
        last: Stamp,
        cx: &mut Ctx,
    ) {
        // a header block must continue with its CONTINUATION frames
        if self.dirs[d].block.is_some() && h.ty != frame::CONTINUATION {
            self.dirs[d].block = None;
            cx.stats.hpack_errors += 1;
            self.dirs[d].hpack().forget();
        }
        match f {
            // a block in one frame (the rule): decoded from the frame
            Frame::Headers { block, .. } if h.has(frame::FLAG_END_HEADERS) => {
                self.whole_block(d, h, None, block, first, last, cx)
            }
            Frame::PushPromise { promised, block } if h.has(frame::FLAG_END_HEADERS) => {
                self.whole_block(d, h, Some(promised), block, first, last, cx)
            }
            Frame::Headers { block, .. } => {
                self.start_block(d, h, None, block, first);
                self.continue_block(d, &h, &[], last, cx);
            }
            Frame::PushPromise { promised, block } => {
                self.start_block(d, h, Some(promised), block, first);
                self.continue_block(d, &h, &[], last, cx);
            }
            Frame::Continuation { block } => {
                if self.dirs[d]
                    .block
                    .as_ref()
                    .is_some_and(|b| b.stream == h.stream)
                {
                    self.continue_block(d, &h, block, last, cx);
                } else {
                    // its HEADERS was not seen: the block is lost
                    cx.stats.hpack_errors += 1;
                    self.dirs[d].hpack().forget();
                }
            }
            Frame::RstStream { error } => {
                if let Some(s) = self.streams.get_mut(h.stream) {
                    s.rst = Some(error);
                    s.touch(last.ts);
                    self.finish_stream(h.stream, cx);
                    if self.reset.len() == RESET_REMEMBERED {
                        self.reset.pop_front();
                    }
                    self.reset.push_back(h.stream);
                } else if self.reset.contains(&h.stream) {
                    cx.stats.h2_frames_after_reset += 1;
                }
            }
            Frame::Settings { params } => {
                if h.has(frame::FLAG_ACK) {
                    return;
                }
                // the sender's settings bind what the other direction sends
                for (id, v) in params {
                    self.apply_setting(d.opposite(), id, v);
                }
            }
            Frame::GoAway {
                last_stream, error, ..
            } => self.on_goaway(d, last_stream, error, cx),
            Frame::Data { .. }
            | Frame::Priority(_)
            | Frame::Ping { .. }
            | Frame::WindowUpdate { .. }
            | Frame::Unknown => {}
        }
    }

    fn start_block(
        &mut self,
        d: Direction,
        h: FrameHeader,
        promised: Option<u32>,
        block: &[u8],
        first: Stamp,
    ) {
        let mut bytes = std::mem::take(&mut self.dirs[d].spare);
        bytes.clear();
        bytes.extend_from_slice(block);
        self.dirs[d].block = Some(BlockAcc {
            stream: h.stream,
            promised,
            end_stream: h.ty == frame::HEADERS && h.has(frame::FLAG_END_STREAM),
            bytes,
            wire: 0,
            first,
            lost: false,
        });
    }

    /// Add a fragment; at END_HEADERS decode the block.
    fn continue_block(
        &mut self,
        d: Direction,
        h: &FrameHeader,
        frag: &[u8],
        last: Stamp,
        cx: &mut Ctx,
    ) {
        let cap = cx.cfg.max_buf_bytes;
        let Some(b) = self.dirs[d].block.as_mut() else {
            return;
        };
        b.wire += frame::HEADER_LEN as u64 + h.len as u64;
        if b.bytes.len() + frag.len() > cap {
            b.lost = true;
            b.bytes = Vec::new();
        } else if !b.lost {
            b.bytes.extend_from_slice(frag);
        }
        if !h.has(frame::FLAG_END_HEADERS) {
            return;
        }
        let Some(mut b) = self.dirs[d].block.take() else {
            return;
        };
        let bytes = std::mem::take(&mut b.bytes);
        let lost = b.lost;
        self.decode_block(d, b, (!lost).then_some(&bytes[..]), last, cx);
        if bytes.capacity() <= 64 * 1024 {
            // kept for the next block (a larger one is let go)
            self.dirs[d].spare = bytes;
        }
    }

    /// A HEADERS or PUSH_PROMISE frame with END_HEADERS: its fragment is
    /// the whole block, decoded where it is (as [`Self::start_block`] and
    /// [`Self::continue_block`] would, without assembling it).
    #[allow(clippy::too_many_arguments)]
    fn whole_block(
        &mut self,
        d: Direction,
        h: FrameHeader,
        promised: Option<u32>,
        block: &[u8],
        first: Stamp,
        last: Stamp,
        cx: &mut Ctx,
    ) {
        let b = BlockAcc {
            stream: h.stream,
            promised,
            end_stream: h.ty == frame::HEADERS && h.has(frame::FLAG_END_STREAM),
            bytes: Vec::new(),
            wire: frame::HEADER_LEN as u64 + h.len as u64,
            first,
            lost: block.len() > cx.cfg.max_buf_bytes,
        };
        let lost = b.lost;
        self.decode_block(d, b, (!lost).then_some(block), last, cx);
    }

    /// A whole header block: decode `bytes` (None: the block was lost) and
    /// hand it on.
    fn decode_block(
        &mut self,
        d: Direction,
        b: BlockAcc,
        bytes: Option<&[u8]>,
        last: Stamp,
        cx: &mut Ctx,
    ) {
        let mut blk = std::mem::take(&mut self.dirs[d].decoded);
        let decoded = match bytes {
            None => {
                cx.stats.hpack_errors += 1;
                self.dirs[d].hpack().forget();
                false
            }
            Some(bytes) => {
                let r = self.dirs[d]
                    .hpack()
                    .decode_into(bytes, MAX_HEADER_LIST, &mut blk);
                if r.is_err() {
                    cx.stats.hpack_errors += 1;
                }
                r.is_ok()
            }
        };
        self.on_block(d, b, decoded.then_some(&blk), last, cx);
        self.dirs[d].decoded = blk;
    }

    /// A HEADERS or PUSH_PROMISE frame whose bytes went by unseen.
    fn on_lost(&mut self, d: Direction, h: FrameHeader, first: Stamp, last: Stamp, cx: &mut Ctx) {
        match h.ty {
            frame::HEADERS | frame::PUSH_PROMISE => {
                self.start_block(d, h, None, &[], first);
                if let Some(b) = self.dirs[d].block.as_mut() {
                    b.lost = true;
                    b.promised = (h.ty == frame::PUSH_PROMISE).then_some(0);
                }
                self.continue_block(d, &h, &[], last, cx);
            }
            frame::CONTINUATION => {
                if let Some(b) = self.dirs[d].block.as_mut() {
                    b.lost = true;
                }
                self.continue_block(d, &h, &[], last, cx);
            }
            _ => {}
        }
    }

    /// A whole header block (`decoded` None: it could not be decoded).
    fn on_block(
        &mut self,
        d: Direction,
        b: BlockAcc,
        decoded: Option<&hpack::Block>,
        last: Stamp,
        cx: &mut Ctx,
    ) {
        if let Some(blk) = decoded {
            cx.stats.hpack_unknown_fields += blk.unknown as u64;
            cx.stats.header_fields_over_cap += blk.over_cap as u64;
        }
        let has = |name: &str| decoded.is_some_and(|k| k.get(name).is_some());
        let (is_req, stream_id) = match b.promised {
            // a promise is the request of the promised stream
            Some(p) if p != 0 => (true, p),
            Some(_) => return,
            None => {
                let side = if has(":method") {
                    Some(true)
                } else if has(":status") {
                    Some(false)
                } else {
                    self.request_side(d)
                };
                match side {
                    Some(r) => (r, b.stream),
                    // neither the content nor the role says which: the
                    // client opens streams, and odd ids are the client's
                    None => (
                        b.stream % 2 == 1 && !self.streams.contains(b.stream),
                        b.stream,
                    ),
                }
            }
        };
        if !self.streams.contains(stream_id) && self.reset.contains(&stream_id) {
            // it crossed the RST_STREAM that ended the stream
            cx.stats.h2_frames_after_reset += 1;
            return;
        }
        if b.promised.is_none() && self.client_dir.is_none() {
            self.client_dir = Some(if is_req { d } else { d.opposite() });
        }
        if !self.streams.contains(stream_id) {
            self.open_stream(stream_id, cx);
        }
        let headers = cx.cfg.headers;
        let Some(s) = self.streams.get_mut(stream_id) else {
            return;
        };
        s.touch(last.ts);
        let half: &mut Half = if is_req { &mut s.req } else { &mut s.resp };
        let interim = half.add_block(d, decoded, b.wire, b.first, last, b.end_stream, headers);
        if let Some(code) = interim {
            s.interim.get_or_insert((code, b.first.ts));
        }
        // a block that did not decode, or fields from before the join:
        // what was lost so far, else the probe joined mid-stream
        let earlier = if self.lost.is_empty() {
            GapCauses::MIDSTREAM
        } else {
            self.lost
        };
        if decoded.is_none() {
            s.gap = true;
            s.causes |= if self.lost.is_empty() {
                GapCauses::UNPARSEABLE
            } else {
                self.lost
            };
        }
        if let Some(k) = decoded {
            s.unknown += k.unknown;
            if k.unknown > 0 {
                s.gap = true;
                s.causes |= earlier;
            }
        }
        if b.promised.is_none() && b.end_stream && !is_req {
            self.finish_stream(stream_id, cx);
        }
    }

    fn open_stream(&mut self, id: u32, cx: &mut Ctx) {
        if self.streams.len() >= MAX_STREAMS {
            cx.stats.h2_streams_over_cap += 1;
            if let Some(old) = self.streams.lowest() {
                if let Some(mut s) = self.streams.remove(old) {
                    s.gap = true;
                    s.causes |= GapCauses::BUFFER_CAP;
                    self.emit(s, cx);
                }
            }
        }
        self.streams.insert(Stream::new(id));
    }

    #[allow(clippy::too_many_arguments)]
    fn on_data(
        &mut self,
        d: Direction,
        h: FrameHeader,
        body: u64,
        truncated: bool,
        first: Stamp,
        last: Stamp,
        cx: &mut Ctx,
    ) {
        let side = self.request_side(d);
        let Some(s) = self.streams.get_mut(h.stream) else {
            // DATA of a stream whose HEADERS was not seen (joined
            // mid-stream), or that crossed its RST_STREAM
            if self.reset.contains(&h.stream) {
                cx.stats.h2_frames_after_reset += 1;
            }
            return;
        };
        let is_req = is_request(side, s, d);
        let half = if is_req { &mut s.req } else { &mut s.resp };
        half.add_data(d, body, first, last, h.has(frame::FLAG_END_STREAM));
        s.truncated |= truncated;
        s.touch(last.ts);
        if !is_req && h.has(frame::FLAG_END_STREAM) {
            self.finish_stream(h.stream, cx);
        }
    }

    fn on_goaway(&mut self, d: Direction, last_stream: u32, error: u32, cx: &mut Ctx) {
        // streams the GOAWAY's sender will not process: the peer's streams
        // above last_stream (the client's odd ids when the server sends it)
        let peer_odd = self.request_side(d) == Some(false);
        let ended = self
            .streams
            .ids(|id| id > last_stream && (id % 2 == 1) == peer_odd);
        self.goaway = Some(error);
        for id in ended {
            if let Some(s) = self.streams.get_mut(id) {
                s.goaway = Some(error);
            }
            self.finish_stream(id, cx);
        }
    }

    fn finish_stream(&mut self, id: u32, cx: &mut Ctx) {
        if let Some(s) = self.streams.remove(id) {
            self.emit(s, cx);
        }
    }

    fn emit(&mut self, s: Stream, cx: &mut Ctx) {
        if !s.req.seen {
            cx.stats.orphan_responses += 1;
        } else if !s.resp.seen {
            cx.stats.unanswered_requests += 1;
        }
        let lost = self.lost;
        s.emit(lost, cx);
    }
}

/// Does DATA of `s` in direction `d` belong to its request? `side`: what
/// the connection's roles say, else the direction its halves went.
fn is_request(side: Option<bool>, s: &Stream, d: Direction) -> bool {
    side.unwrap_or(s.req.dir == Some(d) || (!s.req.seen && s.resp.dir != Some(d)))
}

impl Session for Http2Session {
    fn start(&mut self, d: Direction, known_start: bool, cx: &mut Ctx) {
        let preface = known_start
            && match cx.conn.role {
                Role::Unknown => true,
                _ => cx.conn.request_dir() == Some(d),
            };
        if self.client_dir.is_none() {
            self.client_dir = cx.conn.request_dir();
        }
        let dir = &mut self.dirs[d];
        // the peer's SETTINGS may have come first (a client's, before the
        // server's first bytes): they bind this direction from the start
        let max_frame = match (dir.max_frame, known_start) {
            (Some(m), _) => m,
            (None, true) => frame::DEFAULT_MAX_FRAME,
            (None, false) => frame::MAX_MAX_FRAME,
        };
        dir.input.reset_at(cx.streams[d].next_pos);
        dir.framer = Some(Framer::new(preface, max_frame, cx.cfg.max_buf_bytes));
        let mut hp = hpack::Decoder::new(known_start);
        if let Some(l) = dir.table_limit {
            hp.set_limit(l);
        }
        dir.hpack = Some(hp);
        dir.resync = !known_start;
    }

    fn data(&mut self, d: Direction, c: Chunk, cx: &mut Ctx) {
        if !c.bytes.is_empty() {
            self.feed(d, c.bytes, c.at, c.stamp, cx);
        }
        if c.uncaptured > 0 {
            self.dirs[d].cur = c.stamp;
            self.skip(d, c.uncaptured, Some(c.uncaptured_cause()), cx);
        }
    }

    fn gap(&mut self, d: Direction, n: u64, ts: u64, cx: &mut Ctx) {
        self.dirs[d].cur.ts = ts;
        self.skip(d, n, None, cx);
    }

    fn settle(&mut self, _cx: &mut Ctx) {}

    fn end(&mut self, _reason: EndReason, cx: &mut Ctx) {
        for d in BOTH {
            let dir = &mut self.dirs[d];
            cx.stats.bytes_dropped += dir.input.buf.len() as u64;
            let next = dir.input.pos + dir.input.buf.len() as u64;
            dir.input.drop_all(next);
        }
        for mut s in self.streams.take_all() {
            // a stream still open at the end did not end cleanly
            if !(s.req.ended && s.resp.ended) {
                s.goaway = s.goaway.or(self.goaway);
                if s.rst.is_none() && s.goaway.is_none() {
                    s.gap = true;
                    s.causes |= GapCauses::INCOMPLETE;
                }
            }
            self.emit(s, cx);
        }
    }

    fn compact(&mut self) {
        for d in self.dirs.iter_mut() {
            d.input.release_idle();
            // the reused block buffers: a large block's are let go
            if d.spare.capacity() > 2048 || d.decoded.capacity() > 2048 {
                (d.spare, d.decoded) = Default::default();
            }
        }
    }

    fn buffered(&self, d: Direction) -> usize {
        self.dirs[d].input.buf.len()
    }
}
