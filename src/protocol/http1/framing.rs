// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/1.x framing of one direction: heads, bodies (length, chunked,
//! close-delimited), what missing bytes do to them, and resynchronisation
//! on the next plausible message start.

use super::parser::{
    self, is_interim, parse_request, parse_response, request_framing, response_framing,
    BodyFraming, ChunkStep, ChunkedDecoder, Parse,
};
use super::record::{Msg, MsgBox};
use super::Http1Session;
use crate::event::{Direction, Role};
use crate::protocol::buffer::Buffered;
use crate::protocol::{Ctx, Stamp};
use crate::record::{GapCauses, Source};

/// Which messages a direction carries, from the connection's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Carries {
    Unknown,
    Requests,
    Responses,
}

#[derive(Clone, Debug)]
pub(super) enum Body {
    Length(u64),
    Chunked(ChunkedDecoder),
    Close,
}

#[derive(Clone, Debug, Default)]
pub(super) enum Mode {
    /// Expecting a message head.
    #[default]
    Head,
    Body(Body),
    /// Lost sync: discarding until a plausible message start.
    Resync,
    /// After a request asking to switch protocols: buffer until the response
    /// says whether the connection is still HTTP.
    Paused,
    /// No longer HTTP.
    Tunnel,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum SkipKind {
    /// Lost bytes (ring-buffer drop, packets missing).
    Gap,
    /// Counted, not captured: past the capture cap.
    Truncated,
    /// Counted, not captured: the kernel could not read them from the
    /// process's buffer (`F_READ_FAULT`).
    Faulted,
}

/// One direction's framing state.
#[derive(Debug, Default)]
pub(super) struct DirState {
    pub input: Buffered,
    pub mode: Mode,
    /// The message whose body is being read.
    pub cur: Option<MsgBox>,
    /// Bytes were lost since the last message head: the next one is flagged.
    pub gap_pending: bool,
    /// Bytes were lost while paused.
    pub paused_gap: bool,
    /// The buffer starts at a plausible message start found by resync.
    pub resync_candidate: bool,
    /// The last interim (1xx) status and when it came.
    pub interim: Option<(u16, u64)>,
    /// Why bytes were lost since the last message head.
    pub lost: GapCauses,
}

impl DirState {
    pub fn is_idle(&self, holds: bool) -> bool {
        self.cur.is_none()
            && self.input.buf.is_empty()
            && !holds
            && matches!(self.mode, Mode::Head | Mode::Resync | Mode::Tunnel)
    }
}

/// Why [`Http1Session::parse_head`] parsed no head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NoHead {
    /// Not whole: more bytes are needed.
    More,
    /// Not valid where it arrived (the buffered bytes decide).
    Bad,
}

/// A parsed head as a message, its length and its framing; or Err(None) for
/// "need more", Err(Some(why)) for invalid.
type HeadResult = Result<(MsgBox, usize, Result<BodyFraming, &'static str>), Option<&'static str>>;

/// First offset in `buf` where a message of the wanted kind plausibly starts.
fn find_start(buf: &[u8], carries: Carries) -> Option<usize> {
    (0..buf.len()).find(|&i| {
        let b = &buf[i..];
        match carries {
            Carries::Requests => parser::plausible_request_start(b),
            Carries::Responses => parser::plausible_response_start(b),
            Carries::Unknown => {
                parser::plausible_response_start(b) || parser::plausible_request_start(b)
            }
        }
    })
}

fn carries(role: Role, d: Direction) -> Carries {
    match (role, d) {
        (Role::Client, Direction::Egress) | (Role::Server, Direction::Ingress) => Carries::Requests,
        (Role::Client, _) | (Role::Server, _) => Carries::Responses,
        (Role::Unknown, _) => Carries::Unknown,
    }
}

impl SkipKind {
    fn cause(self, cx: &Ctx) -> GapCauses {
        match (self, cx.cfg.source) {
            (SkipKind::Truncated, _) => GapCauses::CAPTURE_CAP,
            (SkipKind::Faulted, _) => GapCauses::READ_FAULT,
            (SkipKind::Gap, Source::Wire) => GapCauses::PACKETS_MISSING,
            (SkipKind::Gap, Source::Ebpf) => GapCauses::RING_BUFFER_DROP,
        }
    }
}

/// Most header lines of an unfinished head kept for its record.
const PARTIAL_HEADERS_MAX: usize = 100;

/// Whether the head at the start of `buf` is parsed as a request, from
/// what the direction carries; None while it could still be either (a
/// prefix of `HTTP/`).
fn head_is_request(carries: Carries, buf: &[u8]) -> Option<bool> {
    match carries {
        Carries::Requests => Some(true),
        Carries::Responses => Some(false),
        Carries::Unknown => {
            let p = b"HTTP/";
            let n = p.len().min(buf.len());
            if buf[..n] == p[..n] {
                (buf.len() >= p.len()).then_some(false)
            } else {
                Some(true)
            }
        }
    }
}

impl Http1Session {
    /// The start of a request that direction `d` holds unfinished (its
    /// head not complete) as a message: method, target and version when
    /// its request line is complete, the header lines that are,
    /// `header_bytes` the head bytes seen. None when the buffer holds no
    /// plausible request start (nothing, or not a request: a connection
    /// that closes with 0 bytes sent is no request). Built from what is
    /// buffered already (bounded by `max_buf_bytes`), nothing more kept.
    pub(super) fn partial_request(&self, d: Direction, cx: &Ctx) -> Option<Msg> {
        let dir = &self.dirs[d];
        if !matches!(dir.mode, Mode::Head) || carries(cx.conn.role, d) == Carries::Responses {
            return None;
        }
        let buf: &[u8] = &dir.input.buf;
        if buf.is_empty() || !parser::plausible_request_start(buf) {
            return None;
        }
        let mut lines = buf.split_inclusive(|&b| b == b'\n');
        let mut m = Msg {
            is_req: true,
            dir: d,
            header_bytes: buf.len() as u64,
            gap: dir.gap_pending,
            causes: if dir.gap_pending {
                dir.lost
            } else {
                GapCauses::NONE
            },
            incomplete: true,
            ..Msg::default()
        };
        let trim = |l: &[u8]| -> String {
            let l = l.strip_suffix(b"\n").unwrap_or(l);
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            String::from_utf8_lossy(l).into_owned()
        };
        if let Some(first) = lines.next().filter(|l| l.ends_with(b"\n")) {
            let line = trim(first);
            let mut parts = line.split(' ');
            if let (Some(method), Some(target), Some(version), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            {
                if let Some(minor) = version.strip_prefix("HTTP/1.") {
                    m.method = Some(method.to_string().into());
                    m.target = Some(target.into());
                    m.minor = minor.parse().unwrap_or(1);
                }
            }
            if m.method.is_some() {
                let pairs: Vec<(String, String)> = lines
                    .filter(|l| l.ends_with(b"\n"))
                    .map(trim)
                    .take_while(|l| !l.is_empty())
                    .take(PARTIAL_HEADERS_MAX)
                    .filter_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        Some((n.to_string(), v.trim().to_string()))
                    })
                    .collect();
                m.headers = parser::Headers::from_pairs(&pairs);
            }
        }
        let first = dir.input.stamp_at(dir.input.pos);
        let last = dir.input.stamp_at(dir.input.pos + buf.len() as u64 - 1);
        m.first_ts = first.ts;
        m.first_start_ns = first.start_ns;
        m.last_ts = last.ts;
        m.tid = first.tid;
        Some(m)
    }

    /// Bytes of direction `d` were lost for cause `c`: the next head and
    /// the message in progress (if it is flagged) name it.
    pub(super) fn note_loss(&mut self, d: Direction, c: GapCauses) {
        let dir = &mut self.dirs[d];
        dir.lost |= c;
        if let Some(m) = dir.cur.as_mut() {
            m.causes |= c;
        }
        self.lost |= c;
    }

    /// Throw away direction `d`'s buffered bytes; returns how many.
    pub(super) fn drop_buf(&mut self, d: Direction, cx: &Ctx) -> u64 {
        self.dirs[d].input.drop_all(cx.streams[d].next_pos)
    }

    /// `take` bytes of direction `d`'s body of known length (`rem` left)
    /// went by at `ts`: count them; the message ends with its last byte.
    /// Returns false while the body goes on.
    fn took_body(&mut self, d: Direction, rem: u64, take: u64, ts: u64, cx: &mut Ctx) -> bool {
        let dir = &mut self.dirs[d];
        if let Some(m) = dir.cur.as_mut() {
            m.body_bytes += take;
            m.last_ts = ts;
        }
        if take < rem {
            dir.mode = Mode::Body(Body::Length(rem - take));
            return false;
        }
        if let Some(m) = dir.cur.take() {
            self.finish(d, m, cx);
        } else {
            dir.mode = Mode::Head;
        }
        true
    }

    /// Parse the captured bytes `bytes` (stream position `at` on) of
    /// direction `d`. They go through the buffer, except where it is empty:
    /// a head complete in `bytes` is parsed where it is (the buffer then
    /// takes only what follows it, if anything needs buffering), and the
    /// bytes of a body of known length are counted where they are. So a
    /// request or a response in one write is copied nowhere. The result is
    /// what buffering every byte gives (the table tests split every input
    /// at every offset).
    pub(super) fn feed(
        &mut self,
        d: Direction,
        mut bytes: &[u8],
        mut at: u64,
        stamp: Stamp,
        cx: &mut Ctx,
    ) {
        let mut processed = false;
        // the head at the start of `bytes` is not whole there: buffered,
        // it would parse the same, so the buffer is not parsed again
        let mut head_short = false;
        loop {
            if self.h2c.is_some() {
                // switched to HTTP/2 inside these bytes: the rest is kept
                // for the new session
                if !bytes.is_empty() {
                    let input = &mut self.dirs[d].input;
                    if input.buf.is_empty() {
                        input.reset_at(at);
                    }
                    input.push(bytes, at + bytes.len() as u64, stamp);
                }
                return;
            }
            let dir = &mut self.dirs[d];
            if dir.input.buf.is_empty() && !bytes.is_empty() {
                match dir.mode {
                    Mode::Body(Body::Length(rem)) => {
                        let take = rem.min(bytes.len() as u64);
                        bytes = &bytes[take as usize..];
                        at += take;
                        dir.input.pos = at;
                        self.took_body(d, rem, take, stamp.ts, cx);
                        continue;
                    }
                    Mode::Head => {
                        debug_assert_eq!(dir.input.pos, at);
                        let carries = carries(cx.conn.role, d);
                        let parsed = match head_is_request(carries, bytes) {
                            Some(as_req) => self.parse_head(d, as_req, Some((bytes, stamp)), cx),
                            None => Err(NoHead::More),
                        };
                        match parsed {
                            Ok(n) => {
                                bytes = &bytes[n..];
                                at += n as u64;
                                processed = true;
                                continue;
                            }
                            Err(NoHead::More) => head_short = true,
                            Err(NoHead::Bad) => {}
                        }
                    }
                    _ => {}
                }
            }
            if bytes.is_empty() {
                break;
            }
            let dir = &mut self.dirs[d];
            at += bytes.len() as u64;
            dir.input.push(bytes, at, stamp);
            bytes = &[];
            if !head_short {
                self.process(d, cx);
            }
            processed = true;
        }
        if !processed {
            self.process(d, cx);
        }
    }

    pub(super) fn enforce_buf_cap(&mut self, d: Direction, cx: &mut Ctx) {
        if self.dirs[d].input.buf.len() <= cx.cfg.max_buf_bytes {
            return;
        }
        cx.stats.bytes_dropped += self.drop_buf(d, cx);
        self.note_loss(d, GapCauses::BUFFER_CAP);
        let dir = &mut self.dirs[d];
        match dir.mode {
            Mode::Paused => dir.paused_gap = true,
            Mode::Tunnel => {}
            _ => {
                dir.gap_pending = true;
                dir.mode = Mode::Resync;
                cx.stats.resyncs += 1;
                if let Some(mut m) = dir.cur.take() {
                    m.gap = true;
                    self.finish(d, m, cx);
                }
            }
        }
    }

    /// `n` bytes ending at the stream's next position went by without
    /// being captured.
    pub(super) fn skip(&mut self, d: Direction, mut n: u64, kind: SkipKind, ts: u64, cx: &mut Ctx) {
        if kind != SkipKind::Gap {
            cx.stats.truncated_bytes += n;
        }
        while n > 0 {
            let mode = std::mem::replace(&mut self.dirs[d].mode, Mode::Head);
            match mode {
                Mode::Tunnel => {
                    self.dirs[d].mode = Mode::Tunnel;
                    break;
                }
                Mode::Paused => {
                    cx.stats.bytes_dropped += self.drop_buf(d, cx);
                    self.note_loss(d, kind.cause(cx));
                    let dir = &mut self.dirs[d];
                    dir.paused_gap = true;
                    dir.mode = Mode::Paused;
                    break;
                }
                Mode::Resync | Mode::Head => {
                    cx.stats.bytes_dropped += self.drop_buf(d, cx);
                    self.note_loss(d, kind.cause(cx));
                    if matches!(mode, Mode::Head) {
                        cx.stats.resyncs += 1;
                    }
                    let dir = &mut self.dirs[d];
                    dir.gap_pending = true;
                    dir.resync_candidate = false;
                    dir.mode = Mode::Resync;
                    break;
                }
                Mode::Body(Body::Length(rem)) if self.dirs[d].input.buf.is_empty() => {
                    let take = n.min(rem);
                    n -= take;
                    if let Some(m) = self.dirs[d].cur.as_mut() {
                        m.truncated = true;
                    }
                    self.took_body(d, rem, take, ts, cx);
                }
                Mode::Body(Body::Close) => {
                    let dir = &mut self.dirs[d];
                    if let Some(m) = dir.cur.as_mut() {
                        m.body_bytes += n;
                        m.truncated = true;
                        m.last_ts = ts;
                    }
                    dir.mode = Mode::Body(Body::Close);
                    break;
                }
                Mode::Body(Body::Chunked(mut dec)) => {
                    let dir = &mut self.dirs[d];
                    if dir.input.buf.is_empty() && dec.skip(n) {
                        if let Some(m) = dir.cur.as_mut() {
                            m.body_bytes = dec.data_bytes;
                            m.truncated = true;
                            m.last_ts = ts;
                        }
                        if dec.is_done() {
                            dir.mode = Mode::Head;
                            if let Some(m) = dir.cur.take() {
                                self.finish(d, m, cx);
                            }
                        } else {
                            dir.mode = Mode::Body(Body::Chunked(dec));
                        }
                    } else {
                        self.dirs[d].mode = Mode::Body(Body::Chunked(dec));
                        self.note_loss(d, kind.cause(cx));
                        self.lose_body(d, cx);
                    }
                    break;
                }
                Mode::Body(Body::Length(rem)) => {
                    self.dirs[d].mode = Mode::Body(Body::Length(rem));
                    self.note_loss(d, kind.cause(cx));
                    self.lose_body(d, cx);
                    break;
                }
            }
        }
        if !self.dirs[d].input.buf.is_empty() {
            cx.stats.bytes_dropped += self.drop_buf(d, cx);
        }
        self.dirs[d].input.reset_at(cx.streams[d].next_pos);
    }

    /// Body framing lost in direction `d`: the current message ends here,
    /// incomplete, and the direction resynchronises.
    fn lose_body(&mut self, d: Direction, cx: &mut Ctx) {
        cx.stats.bytes_dropped += self.drop_buf(d, cx);
        cx.stats.resyncs += 1;
        let dir = &mut self.dirs[d];
        dir.gap_pending = true;
        dir.resync_candidate = false;
        dir.mode = Mode::Resync;
        if let Some(mut m) = dir.cur.take() {
            m.gap = true;
            self.finish(d, m, cx);
        }
        // finish() may have paused the direction; otherwise resync.
        if matches!(self.dirs[d].mode, Mode::Head) {
            self.dirs[d].mode = Mode::Resync;
        }
    }

    /// Frame what direction `d` has buffered.
    pub(super) fn process(&mut self, d: Direction, cx: &mut Ctx) {
        loop {
            let carries = carries(cx.conn.role, d);
            let dir = &mut self.dirs[d];
            let mode = std::mem::replace(&mut dir.mode, Mode::Head);
            match mode {
                Mode::Tunnel => {
                    self.drop_buf(d, cx);
                    self.dirs[d].mode = Mode::Tunnel;
                    return;
                }
                Mode::Paused => {
                    dir.mode = Mode::Paused;
                    return;
                }
                Mode::Resync => match find_start(&dir.input.buf, carries) {
                    Some(o) => {
                        dir.input.consume(o);
                        cx.stats.bytes_dropped += o as u64;
                        dir.resync_candidate = true;
                        dir.mode = Mode::Head;
                    }
                    None => {
                        cx.stats.bytes_dropped += self.drop_buf(d, cx);
                        self.dirs[d].mode = Mode::Resync;
                        return;
                    }
                },
                Mode::Head => {
                    let buf = &dir.input.buf;
                    if buf.is_empty() {
                        return;
                    }
                    // None: could still be either
                    let Some(as_req) = head_is_request(carries, buf) else {
                        return;
                    };
                    if self.parse_head(d, as_req, None, cx).is_err() {
                        return;
                    }
                }
                Mode::Body(Body::Length(rem)) => {
                    if dir.input.buf.is_empty() {
                        dir.mode = Mode::Body(Body::Length(rem));
                        return;
                    }
                    let take = rem.min(dir.input.buf.len() as u64);
                    let (_, last) = dir.input.consume(take as usize);
                    if !self.took_body(d, rem, take, last.ts, cx) {
                        return;
                    }
                }
                Mode::Body(Body::Close) => {
                    if !dir.input.buf.is_empty() {
                        let n = dir.input.buf.len();
                        let (_, last) = dir.input.consume(n);
                        if let Some(m) = dir.cur.as_mut() {
                            m.body_bytes += n as u64;
                            m.last_ts = last.ts;
                        }
                    }
                    dir.mode = Mode::Body(Body::Close);
                    return;
                }
                Mode::Body(Body::Chunked(mut dec)) => {
                    if dir.input.buf.is_empty() {
                        dir.mode = Mode::Body(Body::Chunked(dec));
                        return;
                    }
                    match dec.feed(&dir.input.buf) {
                        ChunkStep::Progress(n) => {
                            if n > 0 {
                                let (_, last) = dir.input.consume(n);
                                if let Some(m) = dir.cur.as_mut() {
                                    m.body_bytes = dec.data_bytes;
                                    m.last_ts = last.ts;
                                }
                            }
                            dir.mode = Mode::Body(Body::Chunked(dec));
                            return;
                        }
                        ChunkStep::Done(n) => {
                            let (_, last) = dir.input.consume(n);
                            if let Some(mut m) = dir.cur.take() {
                                m.body_bytes = dec.data_bytes;
                                m.last_ts = last.ts;
                                self.finish(d, m, cx);
                            }
                        }
                        ChunkStep::Invalid(_) => {
                            cx.stats.unparseable += 1;
                            cx.stats.resyncs += 1;
                            dir.lost |= GapCauses::UNPARSEABLE;
                            self.lost |= GapCauses::UNPARSEABLE;
                            let dir = &mut self.dirs[d];
                            if let Some(m) = dir.cur.as_mut() {
                                m.causes |= GapCauses::UNPARSEABLE;
                            }
                            dir.gap_pending = true;
                            dir.resync_candidate = false;
                            if let Some(mut m) = dir.cur.take() {
                                m.body_bytes = dec.data_bytes;
                                m.gap = true;
                                self.finish(d, m, cx);
                            }
                            if matches!(self.dirs[d].mode, Mode::Head) {
                                self.dirs[d].mode = Mode::Resync;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Parse a head at the start of the buffer, or with `chunk` (an
    /// event's bytes and stamp, the buffer empty) at the start of those.
    /// Returns how many bytes it consumed (a head, or one byte of an
    /// invalid one): the caller keeps processing. Err: nothing happened;
    /// `More`: more bytes are needed; `Bad` (from `chunk` only): a head
    /// not valid there (the caller buffers the bytes: parsed from the
    /// buffer, they give what they give).
    fn parse_head(
        &mut self,
        d: Direction,
        as_req: bool,
        chunk: Option<(&[u8], Stamp)>,
        cx: &mut Ctx,
    ) -> Result<usize, NoHead> {
        let res: HeadResult = if as_req {
            self.request_head(d, chunk)
        } else {
            self.response_head(d, chunk)
        };
        let dir = &mut self.dirs[d];
        let (mut m, n, framing) = match res {
            Err(None) => return Err(NoHead::More),
            Err(Some(_)) if chunk.is_some() => return Err(NoHead::Bad),
            Err(Some(_)) => {
                if !dir.resync_candidate {
                    cx.stats.unparseable += 1;
                    cx.stats.resyncs += 1;
                }
                // Skip one byte so the resync search moves on.
                dir.input.consume(1);
                cx.stats.bytes_dropped += 1;
                dir.resync_candidate = false;
                dir.mode = Mode::Resync;
                return Ok(1);
            }
            Ok(head) => head,
        };
        // the stamps of the head's first and last bytes
        let (first, last) = match chunk {
            Some((_, stamp)) => {
                dir.input.pos += n as u64;
                (stamp, stamp)
            }
            None => dir.input.consume(n),
        };
        let Ok(framing) = framing else {
            cx.stats.unparseable += 1;
            cx.stats.resyncs += 1;
            dir.lost |= GapCauses::UNPARSEABLE;
            self.lost |= GapCauses::UNPARSEABLE;
            let dir = &mut self.dirs[d];
            cx.stats.bytes_dropped += n as u64;
            dir.resync_candidate = false;
            dir.gap_pending = true;
            dir.mode = Mode::Resync;
            return Ok(n);
        };
        dir.resync_candidate = false;
        m.dir = d;
        m.first_ts = first.ts;
        m.first_start_ns = first.start_ns;
        m.last_ts = last.ts;
        m.tid = first.tid;
        if dir.gap_pending {
            dir.gap_pending = false;
            m.gap = true;
            m.after_gap = true;
            m.causes = dir.lost;
        }
        dir.lost = GapCauses::NONE;
        if cx.conn.role == Role::Unknown {
            cx.conn.role = match (m.is_req, d) {
                (true, Direction::Egress) | (false, Direction::Ingress) => Role::Client,
                _ => Role::Server,
            };
        }
        if m.is_req {
            self.req_methods
                .push_back((m.method.clone().unwrap_or_default(), m.start_mono()));
            if self.req_methods.len() > cx.cfg.max_pending.max(1) * 2 {
                self.req_methods.pop_front();
            }
        }
        let dir = &mut self.dirs[d];
        match framing {
            BodyFraming::None => self.finish(d, m, cx),
            BodyFraming::Tunnel => {
                dir.mode = Mode::Tunnel;
                self.finish(d, m, cx);
            }
            BodyFraming::Length(len) => {
                skip_body(d, dir.input.pos.saturating_add(len), cx);
                dir.cur = Some(m);
                dir.mode = Mode::Body(Body::Length(len));
            }
            BodyFraming::Chunked => {
                dir.cur = Some(m);
                dir.mode = Mode::Body(Body::Chunked(ChunkedDecoder::new()));
            }
            BodyFraming::CloseDelimited => {
                dir.cur = Some(m);
                dir.mode = Mode::Body(Body::Close);
            }
        }
        Ok(n)
    }

    fn request_head(&self, d: Direction, chunk: Option<(&[u8], Stamp)>) -> HeadResult {
        let buf = chunk.map_or(&self.dirs[d].input.buf[..], |(b, _)| b);
        match parse_request(buf) {
            Parse::Complete(h, n) => {
                let framing = request_framing(&h);
                let upgrade_intent =
                    h.method == "CONNECT" || h.headers.get_known(super::headers::UPGRADE).is_some();
                // filled in where it lies (the rest as Msg::default())
                let mut m = MsgBox::blank();
                m.is_req = true;
                m.method = Some(h.method);
                m.target = Some(h.target);
                m.minor = h.minor;
                m.headers = h.headers;
                m.header_bytes = n as u64;
                m.upgrade_intent = upgrade_intent;
                Ok((m, n, framing))
            }
            Parse::NeedMore => Err(None),
            Parse::Invalid(m) => Err(Some(m)),
        }
    }

    fn response_head(&mut self, d: Direction, chunk: Option<(&[u8], Stamp)>) -> HeadResult {
        let dir = &self.dirs[d];
        let parsed = match chunk {
            Some((b, _)) => parse_response(b),
            None => parse_response(&dir.input.buf),
        };
        match parsed {
            Parse::Complete(h, n) => {
                // Method of the request this answers (first unanswered).
                let first_ts = match chunk {
                    Some((_, stamp)) => stamp.ts,
                    None => dir.input.stamp_at(dir.input.pos).ts,
                };
                if dir.gap_pending {
                    // Responses may have been lost: this one answers
                    // the newest request that started before it.
                    while self.req_methods.len() > 1 && self.req_methods[1].1 <= first_ts {
                        self.req_methods.pop_front();
                    }
                }
                // A response that began before the request was sent
                // does not answer it.
                let method = match self.req_methods.front() {
                    Some((m, ts)) if *ts <= first_ts => Some(m.clone()),
                    _ => None,
                };
                let framing = response_framing(method.as_deref(), &h);
                if !is_interim(h.status) && method.is_some() {
                    self.req_methods.pop_front();
                }
                let mut m = MsgBox::blank();
                m.status = Some(h.status);
                m.reason = Some(h.reason);
                m.minor = h.minor;
                m.headers = h.headers;
                m.header_bytes = n as u64;
                m.tunnel = framing == Ok(BodyFraming::Tunnel);
                Ok((m, n, framing))
            }
            Parse::NeedMore => Err(None),
            Parse::Invalid(m) => Err(Some(m)),
        }
    }
}

/// A body of known length ends at stream position `until` of direction
/// `d`: if much of it is still to come, the kernel is told to count those
/// bytes rather than copy them (`crate::skip`). Not for TLS plaintext: its
/// records name the socket's connection, whose kernel positions count
/// ciphertext.
fn skip_body(d: Direction, until: u64, cx: &mut Ctx) {
    let Some(h) = cx.cfg.body_skip.as_deref() else {
        return;
    };
    if cx.conn.tls.is_some() {
        return;
    }
    let seen = cx.streams[d].next_pos;
    if until > seen && until - seen >= crate::skip::MIN_SKIP {
        h.body_until(&cx.conn.id, d, until);
        cx.stats.body_skips += 1;
    }
}
