// SPDX-License-Identifier: GPL-3.0-or-later
//! Connection tracker: reassembles each connection's two byte streams from
//! [`Event`]s, parses HTTP/1.x messages out of them and pairs requests with
//! responses into [`Record`]s.
//!
//! Never invents data: when bytes are missing (ring-buffer drops, capture
//! truncation, attaching mid-stream) it skips them if the body framing is
//! known (`truncated`), otherwise it marks the affected records `gap` and
//! resynchronises at the next plausible message start. Memory is bounded per
//! direction, per connection and in the number of connections.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;

use crate::event::{ConnId, Direction, Event, ProcInfo, Role, SockAddrs};
use crate::http::parser::{
    self, is_interim, parse_request, parse_response, request_framing, response_framing,
    BodyFraming, ChunkStep, ChunkedDecoder, Parse,
};
use crate::record::{
    epoch_ns, output_headers, ConnFields, MsgKind, MsgRecord, Record, Source, TimeSpan, Transaction, HTTP1, MSG_TYPE, TXN_TYPE,
};

/// Tracker settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackerConfig {
    /// A connection with no event for this long is flushed by [`Tracker::expire`].
    pub idle_timeout_ns: u64,
    /// Most connections tracked at once; the least recently used is evicted.
    pub max_conns: usize,
    /// Most unconsumed bytes buffered per direction (also bounds the reorder window).
    pub max_buf_bytes: usize,
    /// Most complete requests (or responses) waiting for pairing per connection.
    pub max_pending: usize,
    /// Include header lists in records.
    pub headers: bool,
    /// Redact credential headers when `headers` is set.
    pub redact: bool,
    pub emit_transactions: bool,
    pub emit_messages: bool,
    /// epoch_ns = monotonic_ns + realtime_offset_ns.
    pub realtime_offset_ns: i128,
    /// Most out-of-order events held per direction before declaring a gap.
    pub reorder_window: usize,
    /// A held out-of-order event older than this (relative to the newest
    /// event of its connection, or `now` in `expire`) forces a gap.
    pub reorder_timeout_ns: u64,
    /// Record source: `Wire` records carry no pid/tid/comm.
    pub source: Source,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            idle_timeout_ns: 60_000_000_000,
            max_conns: 16_384,
            max_buf_bytes: 256 * 1024,
            max_pending: 64,
            headers: false,
            redact: true,
            emit_transactions: true,
            emit_messages: false,
            realtime_offset_ns: 0,
            reorder_window: 16,
            reorder_timeout_ns: 100_000_000,
            source: Source::Ebpf,
        }
    }
}

/// Counters (all cumulative except `conns_active`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrackerStats {
    pub events: u64,
    pub conns_seen: u64,
    pub conns_active: u64,
    pub conns_closed: u64,
    pub conns_expired: u64,
    pub conns_evicted: u64,
    pub records_emitted: u64,
    pub transactions: u64,
    pub messages: u64,
    /// Position jumps (missing events).
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Bytes moved but not captured (orig_len > cap_len).
    pub truncated_bytes: u64,
    /// Captured bytes thrown away (resync, caps, partial heads at close).
    pub bytes_dropped: u64,
    /// Times a direction lost sync and had to look for a message start.
    pub resyncs: u64,
    /// Heads or bodies that failed to parse.
    pub unparseable: u64,
    pub unanswered_requests: u64,
    pub orphan_responses: u64,
    /// Events that arrived ahead of a missing position and were held.
    pub reordered_events: u64,
    pub duplicate_events: u64,
    pub upgrades: u64,
    /// Queued requests/responses dropped by the `max_pending` cap.
    pub pending_overflow: u64,
}

// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Carries {
    Unknown,
    Requests,
    Responses,
}

#[derive(Clone, Debug)]
enum Body {
    Length(u64),
    Chunked(ChunkedDecoder),
    Close,
}

#[derive(Clone, Debug)]
enum Mode {
    /// Expecting a message head.
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

#[derive(Clone, Copy, Debug, Default)]
struct Span {
    end: u64,
    ts: u64,
    start_ns: u64,
    tid: u32,
}

#[derive(Clone, Debug)]
struct Pend {
    orig_len: u32,
    payload: Vec<u8>,
    ts: u64,
    start_ns: u64,
    tid: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SkipKind {
    Gap,
    Truncated,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EndReason {
    Close,
    Expire,
    Evict,
    Flush,
}

#[derive(Clone, Debug, Default)]
struct Msg {
    is_req: bool,
    dir: usize,
    method: Option<Cow<'static, str>>,
    target: Option<String>,
    status: Option<u16>,
    reason: Option<String>,
    minor: u8,
    headers: parser::Headers,
    header_bytes: u64,
    body_bytes: u64,
    first_ts: u64,
    first_start_ns: u64,
    last_ts: u64,
    tid: u32,
    gap: bool,
    truncated: bool,
    upgrade_intent: bool,
    tunnel: bool,
    interim: Option<(u16, u64)>,
    after_gap: bool,
}

impl Msg {
    /// When the message's first byte moved: for one the process sent, the
    /// entry of the syscall that sent it; for one it received, that
    /// syscall's return -- a blocking read enters long before the bytes
    /// arrive (a keep-alive server waiting for the next request).
    fn start_mono(&self) -> u64 {
        if self.dir == EGRESS && self.first_start_ns != 0 {
            self.first_start_ns
        } else {
            self.first_ts
        }
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
    fn host(&self) -> Option<String> {
        if let Some(h) = self.header("host") {
            return Some(h.to_string());
        }
        let t = self.target.as_deref()?;
        let rest = t
            .strip_prefix("http://")
            .or_else(|| t.strip_prefix("https://"))?;
        Some(rest.split(['/', '?']).next().unwrap_or("").to_string())
    }
    fn path(&self) -> Option<String> {
        let t = self.target.as_deref()?;
        let t = match t
            .strip_prefix("http://")
            .or_else(|| t.strip_prefix("https://"))
        {
            Some(rest) => match rest.find('/') {
                Some(p) => &rest[p..],
                None => "/",
            },
            None => t,
        };
        Some(t.split('?').next().unwrap_or("").to_string())
    }
}

/// A direction's unconsumed bytes. Consuming from the front only moves an
/// offset (a head consumed in front of a 4 KiB body used to move the body);
/// the bytes are moved down when the consumed part is most of the
/// allocation, and dropped for free when everything is consumed.
#[derive(Debug, Default)]
struct StreamBuf {
    data: Vec<u8>,
    off: usize,
}

impl StreamBuf {
    fn extend_from_slice(&mut self, b: &[u8]) {
        if self.off > 0 && self.off >= self.data.len() / 2 {
            self.data.drain(..self.off);
            self.off = 0;
        }
        self.data.extend_from_slice(b);
    }

    /// Drop the first `n` unconsumed bytes (`n <= len()`).
    fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.off += n.min(self.len());
        if self.off == self.data.len() {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.data.clear();
        self.off = 0;
    }

    fn capacity(&self) -> usize {
        self.data.capacity()
    }
}

impl std::ops::Deref for StreamBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data[self.off..]
    }
}

#[derive(Debug)]
struct Dir {
    started: bool,
    next_pos: u64,
    pending: BTreeMap<u64, Pend>,
    pending_bytes: usize,
    /// Unconsumed captured bytes; `buf[0]` is at stream position `buf_pos`.
    buf: StreamBuf,
    buf_pos: u64,
    spans: VecDeque<Span>,
    mode: Mode,
    cur: Option<Msg>,
    gap_pending: bool,
    paused_gap: bool,
    resync_candidate: bool,
    interim: Option<(u16, u64)>,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            started: false,
            next_pos: 0,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            buf: StreamBuf::default(),
            buf_pos: 0,
            spans: VecDeque::new(),
            mode: Mode::Head,
            cur: None,
            gap_pending: false,
            paused_gap: false,
            resync_candidate: false,
            interim: None,
        }
    }

    fn span_at(&self, pos: u64) -> Span {
        self.spans
            .iter()
            .find(|s| s.end > pos)
            .or(self.spans.back())
            .copied()
            .unwrap_or_default()
    }

    /// Consume `n` buffered bytes; returns the spans of the first and last.
    fn consume(&mut self, n: usize) -> (Span, Span) {
        let first = self.span_at(self.buf_pos);
        let last = self.span_at(self.buf_pos + n.max(1) as u64 - 1);
        self.buf.consume(n);
        self.buf_pos += n as u64;
        while self.spans.len() > 1 && self.spans.front().is_some_and(|s| s.end <= self.buf_pos) {
            self.spans.pop_front();
        }
        (first, last)
    }

    /// Throw away all buffered bytes; returns how many.
    fn drop_buf(&mut self) -> u64 {
        let n = self.buf.len() as u64;
        self.buf.clear();
        self.buf_pos = self.next_pos;
        self.spans.clear();
        self.release_idle_buf();
        n
    }

    /// An idle keep-alive connection should not pin the capacity of its
    /// largest message: with thousands of connections open that is most
    /// of the memory. Empty buffers give their allocation back.
    fn release_idle_buf(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 512 {
            self.buf = StreamBuf::default();
        }
        if self.spans.is_empty() && self.spans.capacity() > 8 {
            self.spans = VecDeque::new();
        }
    }

    fn is_idle(&self) -> bool {
        self.cur.is_none()
            && self.buf.is_empty()
            && self.pending.is_empty()
            && matches!(self.mode, Mode::Head | Mode::Resync | Mode::Tunnel)
    }
}

struct Ctx<'a> {
    cfg: &'a TrackerConfig,
    stats: &'a mut TrackerStats,
    out: &'a mut Vec<Record>,
}

impl Ctx<'_> {
    fn emit(&mut self, r: Record) {
        self.stats.records_emitted += 1;
        match r {
            Record::Transaction(_) => self.stats.transactions += 1,
            Record::Message(_) => self.stats.messages += 1,
        }
        self.out.push(r);
    }
}

struct Conn {
    id: ConnId,
    role: Role,
    addrs: Option<SockAddrs>,
    proc: ProcInfo,
    known_start: bool,
    dirs: [Dir; 2],
    reqs: VecDeque<Msg>,
    resps: VecDeque<Msg>,
    /// Method and start time of requests whose final response head has not
    /// been parsed yet (response framing depends on the method).
    req_methods: VecDeque<(Cow<'static, str>, u64)>,
    last_ts: u64,
    touch: u64,
    dirty: [bool; 2],
    /// Output strings of this connection, made once (not per record).
    labels: Option<Labels>,
}

/// The per-connection strings every record repeats.
#[derive(Clone)]
struct Labels {
    conn_id: Arc<str>,
    comm: Arc<str>,
    local_addr: Option<Arc<str>>,
    remote_addr: Option<Arc<str>>,
}

impl Conn {
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
        for d in &mut self.dirs {
            d.release_idle_buf();
        }
    }
}

/// A parsed head as a message, its length and its framing; or Err(None) for
/// "need more", Err(Some(why)) for invalid.
type HeadResult = Result<(Msg, usize, Result<BodyFraming, &'static str>), Option<&'static str>>;

const EGRESS: usize = 0;
const INGRESS: usize = 1;

fn dir_of(i: usize) -> Direction {
    if i == EGRESS {
        Direction::Egress
    } else {
        Direction::Ingress
    }
}

fn version_str(minor: u8) -> &'static str {
    const V: [&str; 10] = ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9"];
    V.get(minor as usize).copied().unwrap_or("1.x")
}

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

impl Conn {
    fn new(
        id: ConnId,
        role: Role,
        addrs: Option<SockAddrs>,
        proc: ProcInfo,
        known_start: bool,
    ) -> Conn {
        Conn {
            id,
            role,
            addrs,
            proc,
            known_start,
            dirs: [Dir::new(), Dir::new()],
            reqs: VecDeque::new(),
            resps: VecDeque::new(),
            req_methods: VecDeque::new(),
            last_ts: 0,
            touch: 0,
            dirty: [false; 2],
            labels: None,
        }
    }

    fn labels(&mut self) -> Labels {
        let (id, proc_, addrs) = (&self.id, &self.proc, &self.addrs);
        self.labels
            .get_or_insert_with(|| Labels {
                conn_id: id.to_string().into(),
                comm: proc_.comm.as_str().into(),
                local_addr: addrs.map(|a| a.local.ip().to_string().into()),
                remote_addr: addrs.map(|a| a.remote.ip().to_string().into()),
            })
            .clone()
    }

    fn carries(&self, d: usize) -> Carries {
        match (self.role, d) {
            (Role::Client, EGRESS) | (Role::Server, INGRESS) => Carries::Requests,
            (Role::Client, _) | (Role::Server, _) => Carries::Responses,
            (Role::Unknown, _) => Carries::Unknown,
        }
    }

    fn req_dir(&self) -> Option<usize> {
        match self.role {
            Role::Client => Some(EGRESS),
            Role::Server => Some(INGRESS),
            Role::Unknown => None,
        }
    }

    // ---- event intake ----------------------------------------------------

    /// `payload`: the event's captured bytes (`ev.payload`, or the ring
    /// buffer's copy when the poller decoded without copying).
    fn on_data(&mut self, ev: &crate::event::DataEvent, payload: &[u8], ctx: &mut Ctx) {
        let d = ev.dir.index();
        self.last_ts = self.last_ts.max(ev.ts_ns);
        {
            let dir = &mut self.dirs[d];
            if !dir.started {
                dir.started = true;
                if self.known_start {
                    dir.next_pos = 0;
                } else {
                    dir.next_pos = ev.pos;
                    dir.mode = Mode::Resync;
                }
                dir.buf_pos = dir.next_pos;
            }
            let end = ev.pos.saturating_add(ev.orig_len as u64);
            if ev.pos < dir.next_pos && end <= dir.next_pos {
                if ev.orig_len > 0 {
                    ctx.stats.duplicate_events += 1;
                }
                return;
            }
            if ev.pos > dir.next_pos {
                ctx.stats.reordered_events += 1;
                let keep = dir
                    .pending
                    .get(&ev.pos)
                    .is_none_or(|p| p.orig_len < ev.orig_len);
                if keep {
                    if let Some(old) = dir.pending.insert(
                        ev.pos,
                        Pend {
                            orig_len: ev.orig_len,
                            payload: payload.to_vec(),
                            ts: ev.ts_ns,
                            start_ns: ev.start_ns,
                            tid: ev.proc.tid,
                        },
                    ) {
                        dir.pending_bytes -= old.payload.len();
                    }
                    dir.pending_bytes += payload.len();
                } else {
                    ctx.stats.duplicate_events += 1;
                }
            }
        }
        if ev.pos <= self.dirs[d].next_pos {
            self.apply(
                d,
                ev.pos,
                ev.orig_len,
                payload,
                ev.ts_ns,
                ev.start_ns,
                ev.proc.tid,
                ctx,
            );
            self.drain_pending(d, ctx);
        }
        let now = self.last_ts;
        for dd in 0..2 {
            self.check_pending(dd, now, ctx);
        }
        self.settle(ctx);
    }

    /// Process dirty directions and pair until nothing changes.
    fn settle(&mut self, ctx: &mut Ctx) {
        for _ in 0..8 {
            let mut any = false;
            for d in 0..2 {
                if self.dirty[d] {
                    self.dirty[d] = false;
                    any = true;
                    self.process(d, ctx);
                }
            }
            self.pair(ctx);
            if !any && !self.dirty.iter().any(|&x| x) {
                break;
            }
        }
    }

    fn drain_pending(&mut self, d: usize, ctx: &mut Ctx) {
        loop {
            let dir = &mut self.dirs[d];
            let key = match dir.pending.keys().next() {
                Some(&k) if k <= dir.next_pos => k,
                _ => return,
            };
            let p = dir.pending.remove(&key).expect("key exists");
            dir.pending_bytes -= p.payload.len();
            self.apply(d, key, p.orig_len, &p.payload, p.ts, p.start_ns, p.tid, ctx);
        }
    }

    /// Give up waiting for missing positions when the window overflows or the
    /// oldest held event is too old: declare a gap.
    fn check_pending(&mut self, d: usize, now: u64, ctx: &mut Ctx) {
        loop {
            let dir = &self.dirs[d];
            let Some((&key, first)) = dir.pending.iter().next() else {
                return;
            };
            let force = dir.pending.len() > ctx.cfg.reorder_window
                || dir.pending_bytes > ctx.cfg.max_buf_bytes
                || now.saturating_sub(first.ts) > ctx.cfg.reorder_timeout_ns;
            if !force {
                return;
            }
            self.force_first_pending(d, key, ctx);
        }
    }

    fn force_first_pending(&mut self, d: usize, key: u64, ctx: &mut Ctx) {
        let ts = self.dirs[d].pending[&key].ts;
        let missing = key - self.dirs[d].next_pos;
        self.dirs[d].next_pos = key;
        self.skip(d, missing, SkipKind::Gap, ts, ctx);
        self.drain_pending(d, ctx);
    }

    fn flush_pending(&mut self, d: usize, ctx: &mut Ctx) {
        while let Some(&key) = self.dirs[d].pending.keys().next() {
            self.force_first_pending(d, key, ctx);
        }
    }

    /// Add one (in-order or overlapping) chunk of stream `d`.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        d: usize,
        pos: u64,
        orig_len: u32,
        payload: &[u8],
        ts: u64,
        start_ns: u64,
        tid: u32,
        ctx: &mut Ctx,
    ) {
        let dir = &mut self.dirs[d];
        let next = dir.next_pos;
        let end = pos.saturating_add(orig_len as u64);
        if end <= next {
            if orig_len > 0 {
                ctx.stats.duplicate_events += 1;
            }
            return;
        }
        let cap_end = pos.saturating_add((payload.len() as u64).min(orig_len as u64));
        let s = pos.max(next);
        dir.next_pos = end;
        if s < cap_end {
            self.feed(d, &payload[(s - pos) as usize..(cap_end - pos) as usize], s, ts, start_ns, tid, ctx);
        } else {
            self.process(d, ctx);
        }
        let unc = s.max(cap_end);
        if unc < end {
            self.skip(d, end - unc, SkipKind::Truncated, ts, ctx);
        }
        self.enforce_buf_cap(d, ctx);
    }

    /// `take` bytes of direction `d`'s body of known length (`rem` left)
    /// went by at `ts`: count them; the message ends with its last byte.
    /// Returns false while the body goes on.
    fn took_body(&mut self, d: usize, rem: u64, take: u64, ts: u64, ctx: &mut Ctx) -> bool {
        let dir = &mut self.dirs[d];
        let m = dir.cur.as_mut().expect("body has a message");
        m.body_bytes += take;
        m.last_ts = ts;
        if take < rem {
            dir.mode = Mode::Body(Body::Length(rem - take));
            return false;
        }
        let m = dir.cur.take().expect("body has a message");
        self.finish(d, m, ctx);
        true
    }

    /// Parse the captured bytes `bytes` (stream position `at` on) of
    /// direction `d`. They go through the buffer, except the bytes of a
    /// body of known length that start with the buffer empty: those are
    /// counted where they are. A head in front of its body is buffered up
    /// to its blank line first, so a 4 KiB response in one write copies
    /// its head and not its body. The result is what buffering every byte
    /// gives (the table tests split every input at every offset).
    #[allow(clippy::too_many_arguments)]
    fn feed(&mut self, d: usize, mut bytes: &[u8], mut at: u64, ts: u64, start_ns: u64, tid: u32, ctx: &mut Ctx) {
        let mut processed = false;
        loop {
            let dir = &mut self.dirs[d];
            if dir.buf.is_empty() {
                if let Mode::Body(Body::Length(rem)) = dir.mode {
                    if !bytes.is_empty() {
                        let take = rem.min(bytes.len() as u64);
                        bytes = &bytes[take as usize..];
                        at += take;
                        dir.buf_pos = at;
                        self.took_body(d, rem, take, ts, ctx);
                        continue;
                    }
                }
            }
            if bytes.is_empty() {
                break;
            }
            let n = match dir.mode {
                Mode::Head if dir.buf.is_empty() => {
                    memchr::memmem::find(bytes, b"\r\n\r\n").map_or(bytes.len(), |i| i + 4)
                }
                _ => bytes.len(),
            };
            dir.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            at += n as u64;
            dir.spans.push_back(Span {
                end: at,
                ts,
                start_ns,
                tid,
            });
            self.process(d, ctx);
            processed = true;
        }
        if !processed {
            self.process(d, ctx);
        }
    }

    fn enforce_buf_cap(&mut self, d: usize, ctx: &mut Ctx) {
        let dir = &mut self.dirs[d];
        if dir.buf.len() > ctx.cfg.max_buf_bytes {
            ctx.stats.bytes_dropped += dir.drop_buf();
            match dir.mode {
                Mode::Paused => dir.paused_gap = true,
                Mode::Tunnel => {}
                _ => {
                    dir.gap_pending = true;
                    dir.mode = Mode::Resync;
                    ctx.stats.resyncs += 1;
                    if let Some(mut m) = dir.cur.take() {
                        m.gap = true;
                        self.finish(d, m, ctx);
                    }
                }
            }
        }
    }

    /// `n` bytes ending at `next_pos` went by without being captured.
    fn skip(&mut self, d: usize, mut n: u64, kind: SkipKind, ts: u64, ctx: &mut Ctx) {
        match kind {
            SkipKind::Gap => {
                ctx.stats.gaps += 1;
                ctx.stats.gap_bytes += n;
            }
            SkipKind::Truncated => ctx.stats.truncated_bytes += n,
        }
        while n > 0 {
            let dir = &mut self.dirs[d];
            let mode = std::mem::replace(&mut dir.mode, Mode::Head);
            match mode {
                Mode::Tunnel => {
                    dir.mode = Mode::Tunnel;
                    break;
                }
                Mode::Paused => {
                    ctx.stats.bytes_dropped += dir.drop_buf();
                    dir.paused_gap = true;
                    dir.mode = Mode::Paused;
                    break;
                }
                Mode::Resync | Mode::Head => {
                    ctx.stats.bytes_dropped += dir.drop_buf();
                    if matches!(mode, Mode::Head) {
                        ctx.stats.resyncs += 1;
                    }
                    dir.gap_pending = true;
                    dir.resync_candidate = false;
                    dir.mode = Mode::Resync;
                    break;
                }
                Mode::Body(Body::Length(rem)) if dir.buf.is_empty() => {
                    let take = n.min(rem);
                    n -= take;
                    dir.cur.as_mut().expect("body has a message").truncated = true;
                    self.took_body(d, rem, take, ts, ctx);
                }
                Mode::Body(Body::Close) => {
                    let m = dir.cur.as_mut().expect("body has a message");
                    m.body_bytes += n;
                    m.truncated = true;
                    m.last_ts = ts;
                    dir.mode = Mode::Body(Body::Close);
                    break;
                }
                Mode::Body(Body::Chunked(mut dec)) => {
                    if dir.buf.is_empty() && dec.skip(n) {
                        let m = dir.cur.as_mut().expect("body has a message");
                        m.body_bytes = dec.data_bytes;
                        m.truncated = true;
                        m.last_ts = ts;
                        if dec.is_done() {
                            let m = dir.cur.take().expect("body has a message");
                            dir.mode = Mode::Head;
                            self.finish(d, m, ctx);
                        } else {
                            dir.mode = Mode::Body(Body::Chunked(dec));
                        }
                    } else {
                        self.lose_body(d, ctx);
                    }
                    break;
                }
                Mode::Body(Body::Length(_)) => {
                    self.lose_body(d, ctx);
                    break;
                }
            }
        }
        let dir = &mut self.dirs[d];
        if !dir.buf.is_empty() {
            ctx.stats.bytes_dropped += dir.drop_buf();
        }
        dir.buf_pos = dir.next_pos;
        dir.spans.clear();
    }

    /// Body framing lost in direction `d`: the current message ends here,
    /// incomplete, and the direction resynchronises.
    fn lose_body(&mut self, d: usize, ctx: &mut Ctx) {
        let dir = &mut self.dirs[d];
        ctx.stats.bytes_dropped += dir.drop_buf();
        ctx.stats.resyncs += 1;
        dir.gap_pending = true;
        dir.resync_candidate = false;
        dir.mode = Mode::Resync;
        if let Some(mut m) = dir.cur.take() {
            m.gap = true;
            self.finish(d, m, ctx);
        }
        // finish() may have paused the direction; otherwise resync.
        if matches!(self.dirs[d].mode, Mode::Head) {
            self.dirs[d].mode = Mode::Resync;
        }
    }

    // ---- parsing ---------------------------------------------------------

    fn process(&mut self, d: usize, ctx: &mut Ctx) {
        loop {
            let carries = self.carries(d);
            let dir = &mut self.dirs[d];
            let mode = std::mem::replace(&mut dir.mode, Mode::Head);
            match mode {
                Mode::Tunnel => {
                    dir.drop_buf();
                    dir.mode = Mode::Tunnel;
                    return;
                }
                Mode::Paused => {
                    dir.mode = Mode::Paused;
                    return;
                }
                Mode::Resync => match find_start(&dir.buf, carries) {
                    Some(o) => {
                        dir.consume(o);
                        ctx.stats.bytes_dropped += o as u64;
                        dir.resync_candidate = true;
                        dir.mode = Mode::Head;
                    }
                    None => {
                        ctx.stats.bytes_dropped += dir.drop_buf();
                        dir.mode = Mode::Resync;
                        return;
                    }
                },
                Mode::Head => {
                    if dir.buf.is_empty() {
                        return;
                    }
                    let as_req = match carries {
                        Carries::Requests => true,
                        Carries::Responses => false,
                        Carries::Unknown => {
                            let p = b"HTTP/";
                            let n = p.len().min(dir.buf.len());
                            if dir.buf[..n] == p[..n] {
                                if dir.buf.len() < p.len() {
                                    return; // could still be either
                                }
                                false
                            } else {
                                true
                            }
                        }
                    };
                    if !self.parse_head(d, as_req, ctx) {
                        return;
                    }
                }
                Mode::Body(Body::Length(rem)) => {
                    if dir.buf.is_empty() {
                        dir.mode = Mode::Body(Body::Length(rem));
                        return;
                    }
                    let take = rem.min(dir.buf.len() as u64);
                    let (_, last) = dir.consume(take as usize);
                    if !self.took_body(d, rem, take, last.ts, ctx) {
                        return;
                    }
                }
                Mode::Body(Body::Close) => {
                    if !dir.buf.is_empty() {
                        let n = dir.buf.len();
                        let (_, last) = dir.consume(n);
                        let m = dir.cur.as_mut().expect("body has a message");
                        m.body_bytes += n as u64;
                        m.last_ts = last.ts;
                    }
                    dir.mode = Mode::Body(Body::Close);
                    return;
                }
                Mode::Body(Body::Chunked(mut dec)) => {
                    if dir.buf.is_empty() {
                        dir.mode = Mode::Body(Body::Chunked(dec));
                        return;
                    }
                    match dec.feed(&dir.buf) {
                        ChunkStep::Progress(n) => {
                            if n > 0 {
                                let (_, last) = dir.consume(n);
                                let m = dir.cur.as_mut().expect("body has a message");
                                m.body_bytes = dec.data_bytes;
                                m.last_ts = last.ts;
                            }
                            dir.mode = Mode::Body(Body::Chunked(dec));
                            return;
                        }
                        ChunkStep::Done(n) => {
                            let (_, last) = dir.consume(n);
                            let mut m = dir.cur.take().expect("body has a message");
                            m.body_bytes = dec.data_bytes;
                            m.last_ts = last.ts;
                            self.finish(d, m, ctx);
                        }
                        ChunkStep::Invalid(_) => {
                            ctx.stats.unparseable += 1;
                            ctx.stats.resyncs += 1;
                            let mut m = dir.cur.take().expect("body has a message");
                            m.body_bytes = dec.data_bytes;
                            m.gap = true;
                            dir.gap_pending = true;
                            dir.resync_candidate = false;
                            self.finish(d, m, ctx);
                            if matches!(self.dirs[d].mode, Mode::Head) {
                                self.dirs[d].mode = Mode::Resync;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Parse a head at the start of the buffer. Returns true if the caller
    /// should keep processing, false if more bytes are needed.
    fn parse_head(&mut self, d: usize, as_req: bool, ctx: &mut Ctx) -> bool {
        let dir = &mut self.dirs[d];
        let res: HeadResult = if as_req {
            match parse_request(&dir.buf) {
                Parse::Complete(h, n) => {
                    let framing = request_framing(&h);
                    let upgrade_intent =
                        h.method == "CONNECT" || h.headers.get("upgrade").is_some();
                    Ok((
                        Msg {
                            is_req: true,
                            method: Some(h.method),
                            target: Some(h.target),
                            minor: h.minor,
                            headers: h.headers,
                            header_bytes: n as u64,
                            upgrade_intent,
                            ..Msg::default()
                        },
                        n,
                        framing,
                    ))
                }
                Parse::NeedMore => Err(None),
                Parse::Invalid(m) => Err(Some(m)),
            }
        } else {
            match parse_response(&dir.buf) {
                Parse::Complete(h, n) => {
                    // Method of the request this answers (first unanswered).
                    let first_ts = dir.span_at(dir.buf_pos).ts;
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
                    Ok((
                        Msg {
                            is_req: false,
                            status: Some(h.status),
                            reason: Some(h.reason),
                            minor: h.minor,
                            headers: h.headers,
                            header_bytes: n as u64,
                            tunnel: framing == Ok(BodyFraming::Tunnel),
                            ..Msg::default()
                        },
                        n,
                        framing,
                    ))
                }
                Parse::NeedMore => Err(None),
                Parse::Invalid(m) => Err(Some(m)),
            }
        };
        let dir = &mut self.dirs[d];
        match res {
            Err(None) => {
                dir.mode = Mode::Head;
                false
            }
            Err(Some(_)) => {
                if !dir.resync_candidate {
                    ctx.stats.unparseable += 1;
                    ctx.stats.resyncs += 1;
                }
                // Skip one byte so the resync search moves on.
                dir.consume(1);
                ctx.stats.bytes_dropped += 1;
                dir.resync_candidate = false;
                dir.mode = Mode::Resync;
                true
            }
            Ok((mut m, n, framing)) => {
                let framing = match framing {
                    Ok(f) => f,
                    Err(_) => {
                        ctx.stats.unparseable += 1;
                        ctx.stats.resyncs += 1;
                        dir.consume(n);
                        ctx.stats.bytes_dropped += n as u64;
                        dir.resync_candidate = false;
                        dir.gap_pending = true;
                        dir.mode = Mode::Resync;
                        return true;
                    }
                };
                let (first, last) = dir.consume(n);
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
                }
                if self.role == Role::Unknown {
                    self.role = match (m.is_req, d) {
                        (true, EGRESS) | (false, INGRESS) => Role::Client,
                        _ => Role::Server,
                    };
                }
                if m.is_req {
                    self.req_methods
                        .push_back((m.method.clone().unwrap_or_default(), m.start_mono()));
                    if self.req_methods.len() > ctx.cfg.max_pending.max(1) * 2 {
                        self.req_methods.pop_front();
                    }
                }
                let dir = &mut self.dirs[d];
                match framing {
                    BodyFraming::None => self.finish(d, m, ctx),
                    BodyFraming::Tunnel => {
                        dir.mode = Mode::Tunnel;
                        self.finish(d, m, ctx);
                    }
                    BodyFraming::Length(len) => {
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
                true
            }
        }
    }

    // ---- messages and pairing ---------------------------------------------

    /// A message in direction `d` is complete (or abandoned).
    fn finish(&mut self, d: usize, mut m: Msg, ctx: &mut Ctx) {
        {
            let dir = &mut self.dirs[d];
            if !matches!(dir.mode, Mode::Tunnel | Mode::Resync | Mode::Paused) {
                dir.mode = if m.is_req && m.upgrade_intent {
                    Mode::Paused
                } else {
                    Mode::Head
                };
            }
        }
        if m.is_req {
            self.emit_msg(&m, ctx);
            self.reqs.push_back(m);
            if self.reqs.len() > ctx.cfg.max_pending.max(1) {
                ctx.stats.pending_overflow += 1;
                ctx.stats.unanswered_requests += 1;
                let old = self.reqs.pop_front().expect("non-empty");
                self.emit_txn(Some(&old), None, ctx);
            }
        } else {
            let status = m.status.unwrap_or(0);
            if is_interim(status) {
                self.dirs[d].interim = Some((status, m.first_ts));
                self.emit_msg(&m, ctx);
                return;
            }
            m.interim = self.dirs[d].interim.take();
            self.emit_msg(&m, ctx);
            self.resps.push_back(m);
            if self.resps.len() > ctx.cfg.max_pending.max(1) {
                ctx.stats.pending_overflow += 1;
                ctx.stats.orphan_responses += 1;
                let old = self.resps.pop_front().expect("non-empty");
                self.emit_txn(None, Some(&old), ctx);
            }
        }
        self.pair(ctx);
    }

    fn pair(&mut self, ctx: &mut Ctx) {
        loop {
            let Some((resp_first_ts, resp_after_gap)) = self.resps.front().map(|r| (r.first_ts, r.after_gap)) else {
                return;
            };
            let too_early = self
                .reqs
                .front()
                .is_some_and(|q| q.start_mono() > resp_first_ts);
            if !self.reqs.is_empty() && !too_early {
                if resp_after_gap {
                    // Responses were lost: answer the newest request that
                    // started before this response; older ones got no answer.
                    while self.reqs.len() > 1 && self.reqs[1].first_ts <= resp_first_ts {
                        let mut old = self.reqs.pop_front().expect("len > 1");
                        old.gap = true;
                        ctx.stats.unanswered_requests += 1;
                        self.emit_txn(Some(&old), None, ctx);
                    }
                }
                let req = self.reqs.pop_front().expect("non-empty");
                let resp = self.resps.pop_front().expect("non-empty");
                self.emit_txn(Some(&req), Some(&resp), ctx);
                let rd = req.dir;
                let upgraded = resp.tunnel
                    || (req.method.as_deref() == Some("CONNECT")
                        && resp.status.is_some_and(|s| (200..300).contains(&s)));
                if upgraded {
                    ctx.stats.upgrades += 1;
                    for dir in self.dirs.iter_mut() {
                        dir.drop_buf();
                        dir.cur = None;
                        dir.pending.clear();
                        dir.pending_bytes = 0;
                        dir.mode = Mode::Tunnel;
                    }
                    self.reqs.clear();
                    self.resps.clear();
                } else if req.upgrade_intent && matches!(self.dirs[rd].mode, Mode::Paused) {
                    let dir = &mut self.dirs[rd];
                    dir.mode = if dir.paused_gap {
                        Mode::Resync
                    } else {
                        Mode::Head
                    };
                    dir.gap_pending |= dir.paused_gap;
                    dir.paused_gap = false;
                    self.dirty[rd] = true;
                }
                continue;
            }
            // A response that began before the oldest waiting request was
            // sent cannot answer it; nor can one arriving while no request
            // is waiting or in progress.
            let idle = too_early
                || match self.req_dir() {
                    Some(rd) => self.dirs[rd].is_idle(),
                    None => true,
                };
            if !idle {
                return;
            }
            let resp = self.resps.pop_front().expect("non-empty");
            ctx.stats.orphan_responses += 1;
            self.emit_txn(None, Some(&resp), ctx);
        }
    }

    // ---- end of connection -------------------------------------------------

    fn end(&mut self, reason: EndReason, ts: u64, finals: Option<(u64, u64)>, ctx: &mut Ctx) {
        for d in 0..2 {
            self.flush_pending(d, ctx);
        }
        if let Some((tx, rx)) = finals {
            for (d, fin) in [(EGRESS, tx), (INGRESS, rx)] {
                let dir = &mut self.dirs[d];
                if dir.started && fin > dir.next_pos {
                    let missing = fin - dir.next_pos;
                    dir.next_pos = fin;
                    self.skip(d, missing, SkipKind::Gap, ts, ctx);
                }
            }
        }
        self.settle(ctx);
        let order = match self.req_dir() {
            Some(INGRESS) => [INGRESS, EGRESS],
            _ => [EGRESS, INGRESS],
        };
        for d in order {
            let dir = &mut self.dirs[d];
            let mode = std::mem::replace(&mut dir.mode, Mode::Tunnel);
            ctx.stats.bytes_dropped += dir.drop_buf();
            if let Some(mut m) = dir.cur.take() {
                let clean = matches!(mode, Mode::Body(Body::Close)) && reason == EndReason::Close;
                if !clean {
                    m.gap = true;
                }
                self.finish(d, m, ctx);
            }
        }
        self.pair(ctx);
        // Requests left unanswered while their response stream had lost
        // bytes may well have been answered: flag them.
        let resp_lost = match self.req_dir() {
            Some(rd) => self.dirs[1 - rd].gap_pending,
            None => false,
        };
        while let Some(mut req) = self.reqs.pop_front() {
            req.gap |= resp_lost;
            ctx.stats.unanswered_requests += 1;
            self.emit_txn(Some(&req), None, ctx);
        }
        while let Some(resp) = self.resps.pop_front() {
            ctx.stats.orphan_responses += 1;
            self.emit_txn(None, Some(&resp), ctx);
        }
    }

    // ---- records ---------------------------------------------------------

    fn ports(&self) -> (Option<u16>, Option<u16>) {
        match &self.addrs {
            Some(a) => (Some(a.local.port()), Some(a.remote.port())),
            None => (None, None),
        }
    }

    fn emit_txn(&mut self, req: Option<&Msg>, resp: Option<&Msg>, ctx: &mut Ctx) {
        if !ctx.cfg.emit_transactions {
            // Still counted as processed, not emitted.
            return;
        }
        let Some(any) = req.or(resp) else { return };
        let start = any.start_mono();
        let end = resp.map(|r| r.last_ts).unwrap_or(any.last_ts).max(start);
        let off = ctx.cfg.realtime_offset_ns;
        let (latency_ns, ttfb_ns) = match (req, resp) {
            (Some(_), Some(r)) => {
                let first = r.interim.map(|(_, t)| t).unwrap_or(r.first_ts);
                (
                    Some(r.last_ts.saturating_sub(start)),
                    Some(first.saturating_sub(start)),
                )
            }
            _ => (None, None),
        };
        let (lp, rp) = self.ports();
        let l = self.labels();
        let hdrs = |m: Option<&Msg>| {
            if ctx.cfg.headers {
                m.map(|m| output_headers(&m.headers.to_pairs(), ctx.cfg.redact))
            } else {
                None
            }
        };
        let ebpf = ctx.cfg.source == Source::Ebpf;
        let t = Transaction {
            kind: TXN_TYPE,
            protocol: HTTP1,
            span: TimeSpan {
                start_ns: epoch_ns(start, off),
                end_ns: epoch_ns(end, off),
            },
            latency_ns,
            ttfb_ns,
            method: req.and_then(|m| m.method.clone()),
            target: req.and_then(|m| m.target.clone()),
            path: req.and_then(|m| m.path()),
            host: req.and_then(|m| m.host()),
            http_version: Some(version_str(any.minor)),
            status: resp.and_then(|m| m.status),
            reason: resp.and_then(|m| m.reason.clone()),
            req_header_count: req.map(|m| m.headers.len() as u32),
            req_header_bytes: req.map(|m| m.header_bytes),
            resp_header_count: resp.map(|m| m.headers.len() as u32),
            resp_header_bytes: resp.map(|m| m.header_bytes),
            req_body_bytes: req.map(|m| m.body_bytes),
            resp_body_bytes: resp.map(|m| m.body_bytes),
            req_content_type: req.and_then(|m| m.header("content-type").map(str::to_string)),
            resp_content_type: resp.and_then(|m| m.header("content-type").map(str::to_string)),
            conn: ConnFields {
                pid: ebpf.then_some(self.proc.tgid),
                tid: ebpf.then_some(any.tid),
                comm: ebpf.then_some(l.comm),
                conn_id: l.conn_id,
                role: self.role,
                local_addr: l.local_addr,
                local_port: lp,
                remote_addr: l.remote_addr,
                remote_port: rp,
                source: ctx.cfg.source,
            },
            gap: req.is_some_and(|m| m.gap) || resp.is_some_and(|m| m.gap) || req.is_none(),
            truncated: req.is_some_and(|m| m.truncated) || resp.is_some_and(|m| m.truncated),
            no_response: req.is_some() && resp.is_none(),
            interim_status: resp.and_then(|m| m.interim.map(|(s, _)| s)),
            upgraded: resp.is_some_and(|m| m.tunnel)
                || (req.and_then(|m| m.method.as_deref()) == Some("CONNECT")
                    && resp
                        .and_then(|m| m.status)
                        .is_some_and(|s| (200..300).contains(&s))),
            req_headers: hdrs(req),
            resp_headers: hdrs(resp),
        };
        ctx.emit(Record::Transaction(Box::new(t)));
    }

    fn emit_msg(&mut self, m: &Msg, ctx: &mut Ctx) {
        if !ctx.cfg.emit_messages {
            return;
        }
        let off = ctx.cfg.realtime_offset_ns;
        let start = m.start_mono();
        let end = m.last_ts.max(start);
        let (lp, rp) = self.ports();
        let l = self.labels();
        let ebpf = ctx.cfg.source == Source::Ebpf;
        let r = MsgRecord {
            kind: MSG_TYPE,
            protocol: HTTP1,
            message: if m.is_req {
                MsgKind::Request
            } else {
                MsgKind::Response
            },
            direction: dir_of(m.dir),
            span: TimeSpan {
                start_ns: epoch_ns(start, off),
                end_ns: epoch_ns(end, off),
            },
            method: m.method.clone(),
            target: m.target.clone(),
            path: m.path(),
            host: m.host(),
            http_version: version_str(m.minor),
            status: m.status,
            reason: m.reason.clone(),
            header_count: m.headers.len() as u32,
            header_bytes: m.header_bytes,
            body_bytes: m.body_bytes,
            content_type: m.header("content-type").map(str::to_string),
            conn: ConnFields {
                pid: ebpf.then_some(self.proc.tgid),
                tid: ebpf.then_some(m.tid),
                comm: ebpf.then_some(l.comm),
                conn_id: l.conn_id,
                role: self.role,
                local_addr: l.local_addr,
                local_port: lp,
                remote_addr: l.remote_addr,
                remote_port: rp,
                source: ctx.cfg.source,
            },
            gap: m.gap,
            truncated: m.truncated,
            interim: m.status.is_some_and(is_interim),
            upgraded: m.tunnel,
            headers: if ctx.cfg.headers {
                Some(output_headers(&m.headers.to_pairs(), ctx.cfg.redact))
            } else {
                None
            },
        };
        ctx.emit(Record::Message(Box::new(r)));
    }
}

// ---------------------------------------------------------------------------

/// Above this many tracked connections an idle connection gives its
/// buffers back after every event (memory first); below it, once a tick
/// (fewer allocations per request).
const COMPACT_EAGER_CONNS: usize = 1024;

/// The connection tracker.
pub struct Tracker {
    cfg: TrackerConfig,
    // boxed: B-tree nodes hold 11 entries inline, a large inline Conn wastes the empty slots
    conns: BTreeMap<ConnId, Box<Conn>>,
    stats: TrackerStats,
    tick: u64,
}

impl Tracker {
    pub fn new(cfg: TrackerConfig) -> Tracker {
        Tracker {
            cfg,
            conns: BTreeMap::new(),
            stats: TrackerStats::default(),
            tick: 0,
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// Feed one event; completed records are appended to `out`.
    pub fn on_event(&mut self, ev: &Event, out: &mut Vec<Record>) {
        match ev {
            Event::Data(e) => self.on_data(e, &e.payload, out),
            Event::Open(o) => self.on_open(o, out),
            Event::Close(c) => self.on_close(c, out),
        }
    }

    /// A DATA event whose captured bytes are `payload` (its own `payload`
    /// field is ignored): the poller's path, which decodes a ring-buffer
    /// record without copying it.
    pub fn on_data(&mut self, e: &crate::event::DataEvent, payload: &[u8], out: &mut Vec<Record>) {
        self.stats.events += 1;
        self.tick += 1;
        let id = e.conn;
        if !self.conns.contains_key(&id) {
            self.make_room(out);
            let c = Conn::new(id, Role::Unknown, None, e.proc.clone(), false);
            self.conns.insert(id, Box::new(c));
            self.stats.conns_seen += 1;
        }
        let tick = self.tick;
        let mut ctx = Ctx {
            cfg: &self.cfg,
            stats: &mut self.stats,
            out,
        };
        let eager = self.conns.len() > COMPACT_EAGER_CONNS;
        let c = self.conns.get_mut(&id).expect("inserted above");
        c.touch = tick;
        c.on_data(e, payload, &mut ctx);
        if eager {
            c.compact();
        }
    }

    fn on_open(&mut self, o: &crate::event::ConnOpen, out: &mut Vec<Record>) {
        self.stats.events += 1;
        self.tick += 1;
        let id = o.conn;
        if let Some(c) = self.conns.get_mut(&id) {
            if c.role == Role::Unknown {
                c.role = o.role;
            }
            if c.addrs.is_none() {
                c.addrs = o.addrs;
                c.labels = None;
            }
            c.touch = self.tick;
            c.last_ts = c.last_ts.max(o.ts_ns);
            return;
        }
        self.make_room(out);
        let mut c = Conn::new(id, o.role, o.addrs, o.proc.clone(), !o.midstream);
        c.touch = self.tick;
        c.last_ts = o.ts_ns;
        self.conns.insert(id, Box::new(c));
        self.stats.conns_seen += 1;
    }

    fn on_close(&mut self, cl: &crate::event::CloseEvent, out: &mut Vec<Record>) {
        self.stats.events += 1;
        self.tick += 1;
        if let Some(mut c) = self.conns.remove(&cl.conn) {
            let mut ctx = Ctx {
                cfg: &self.cfg,
                stats: &mut self.stats,
                out,
            };
            c.end(
                EndReason::Close,
                cl.ts_ns,
                Some((cl.tx_bytes, cl.rx_bytes)),
                &mut ctx,
            );
            self.stats.conns_closed += 1;
        }
    }

    fn make_room(&mut self, out: &mut Vec<Record>) {
        while self.conns.len() >= self.cfg.max_conns.max(1) {
            let victim = self
                .conns
                .iter()
                .min_by_key(|(_, c)| c.touch)
                .map(|(k, _)| *k)
                .expect("non-empty");
            let mut c = self.conns.remove(&victim).expect("exists");
            let ts = c.last_ts;
            let mut ctx = Ctx {
                cfg: &self.cfg,
                stats: &mut self.stats,
                out: &mut *out,
            };
            c.end(EndReason::Evict, ts, None, &mut ctx);
            self.stats.conns_evicted += 1;
        }
    }

    /// Flush connections idle since before `now_mono_ns - idle_timeout_ns`,
    /// and give up on overdue reordered events.
    pub fn expire(&mut self, now_mono_ns: u64, out: &mut Vec<Record>) {
        let idle: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| now_mono_ns.saturating_sub(c.last_ts) >= self.cfg.idle_timeout_ns)
            .map(|(k, _)| *k)
            .collect();
        let mut ctx = Ctx {
            cfg: &self.cfg,
            stats: &mut self.stats,
            out,
        };
        for id in idle {
            let mut c = self.conns.remove(&id).expect("exists");
            c.end(EndReason::Expire, now_mono_ns, None, &mut ctx);
            ctx.stats.conns_expired += 1;
        }
        for c in self.conns.values_mut() {
            for d in 0..2 {
                c.check_pending(d, now_mono_ns, &mut ctx);
            }
            c.settle(&mut ctx);
            // with few connections once a tick, not per event: a keep-alive
            // connection would free and re-allocate its queues per request
            c.compact();
        }
    }

    /// Flush every connection (end of input / shutdown).
    pub fn flush_all(&mut self, out: &mut Vec<Record>) {
        let conns = std::mem::take(&mut self.conns);
        let mut ctx = Ctx {
            cfg: &self.cfg,
            stats: &mut self.stats,
            out,
        };
        for (_, mut c) in conns {
            let ts = c.last_ts;
            c.end(EndReason::Flush, ts, None, &mut ctx);
        }
    }

    pub fn stats(&self) -> TrackerStats {
        let mut s = self.stats.clone();
        s.conns_active = self.conns.len() as u64;
        s
    }

    /// Number of connections currently tracked.
    pub fn active(&self) -> usize {
        self.conns.len()
    }

    /// Bytes currently buffered (unconsumed plus held out of order), for
    /// checking memory bounds.
    pub fn buffered_bytes(&self) -> usize {
        self.conns
            .values()
            .flat_map(|c| c.dirs.iter())
            .map(|d| d.buf.len() + d.pending_bytes)
            .sum()
    }
}

/// Tracker tests driving `Event`s.
#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {

    use super::*;
    use crate::event::{CloseEvent, ConnOpen, DataEvent, Syscall};
    use crate::http::tests::{cases, Kind};
    use crate::record::Transaction;

    fn cid(n: u64) -> ConnId {
        ConnId {
            tgid: 4242,
            proc_start_ns: 777,
            fd: 3 + n as i32,
            gen: n,
        }
    }

    fn pinfo() -> ProcInfo {
        ProcInfo {
            tgid: 4242,
            tid: 4243,
            comm: "curl".to_string(),
        }
    }

    fn addrs() -> SockAddrs {
        SockAddrs {
            local: "10.0.0.1:40000".parse().unwrap(),
            remote: "10.0.0.2:80".parse().unwrap(),
        }
    }

    fn open(conn: ConnId, role: Role, ts: u64) -> Event {
        Event::Open(ConnOpen {
            ts_ns: ts,
            conn,
            proc: pinfo(),
            role,
            addrs: Some(addrs()),
            midstream: false,
            syscall: if role == Role::Server {
                Syscall::Accept4
            } else {
                Syscall::Connect
            },
        })
    }

    fn data_ev(
        conn: ConnId,
        dir: Direction,
        pos: u64,
        ts: u64,
        orig_len: u32,
        payload: &[u8],
    ) -> Event {
        Event::Data(DataEvent {
            ts_ns: ts,
            start_ns: 0,
            conn,
            proc: pinfo(),
            dir,
            pos,
            orig_len,
            payload: payload.to_vec(),
            syscall: if dir == Direction::Egress {
                Syscall::Write
            } else {
                Syscall::Read
            },
        })
    }

    fn close_ev(conn: ConnId, ts: u64, tx: u64, rx: u64) -> Event {
        Event::Close(CloseEvent {
            ts_ns: ts,
            conn,
            proc: pinfo(),
            tx_bytes: tx,
            rx_bytes: rx,
        })
    }

    /// Builds a conversation on one connection, tracking positions.
    struct Script {
        conn: ConnId,
        pos: [u64; 2],
        ts: u64,
        events: Vec<Event>,
    }

    impl Script {
        fn new(n: u64) -> Script {
            Script {
                conn: cid(n),
                pos: [0, 0],
                ts: 1_000_000,
                events: Vec::new(),
            }
        }
        fn open(mut self, role: Role) -> Script {
            self.events.push(open(self.conn, role, self.ts));
            self
        }
        fn tick(&mut self) -> u64 {
            self.ts += 1_000;
            self.ts
        }
        fn send(mut self, dir: Direction, b: &[u8]) -> Script {
            let ts = self.tick();
            let p = self.pos[dir.index()];
            self.events
                .push(data_ev(self.conn, dir, p, ts, b.len() as u32, b));
            self.pos[dir.index()] += b.len() as u64;
            self
        }
        /// Bytes moved but only the first `cap` captured.
        fn send_trunc(mut self, dir: Direction, b: &[u8], orig_len: u32) -> Script {
            let ts = self.tick();
            let p = self.pos[dir.index()];
            self.events
                .push(data_ev(self.conn, dir, p, ts, orig_len, b));
            self.pos[dir.index()] += orig_len as u64;
            self
        }
        /// Bytes moved but their event was lost.
        fn lose(mut self, dir: Direction, n: u64) -> Script {
            self.tick();
            self.pos[dir.index()] += n;
            self
        }
        fn close(mut self) -> Script {
            let ts = self.tick();
            self.events
                .push(close_ev(self.conn, ts, self.pos[0], self.pos[1]));
            self
        }
    }

    const E: Direction = Direction::Egress;
    const I: Direction = Direction::Ingress;

    fn run_cfg(cfg: TrackerConfig, events: &[Event]) -> (Vec<Record>, TrackerStats) {
        let mut t = Tracker::new(cfg);
        let mut out = Vec::new();
        for e in events {
            t.on_event(e, &mut out);
        }
        t.flush_all(&mut out);
        (out, t.stats())
    }

    fn run(events: &[Event]) -> (Vec<Record>, TrackerStats) {
        run_cfg(TrackerConfig::default(), events)
    }

    fn txns(recs: &[Record]) -> Vec<Transaction> {
        recs.iter()
            .filter_map(|r| match r {
                Record::Transaction(t) => Some((**t).clone()),
                _ => None,
            })
            .collect()
    }

    fn json(recs: &[Record]) -> Vec<String> {
        recs.iter().map(Record::to_json_line).collect()
    }

    fn req(path: &str) -> Vec<u8> {
        format!("GET {path} HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\n\r\n").into_bytes()
    }

    fn resp(body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    // ---------------------------------------------------------------------------

    /// A request starts at the entry of the syscall that sent it (client
    /// side) or at the return of the one that received it (server side: a
    /// blocking read enters long before the request arrives).
    #[test]
    fn request_start_is_send_entry_or_receive_return() {
        let with_start = |mut e: Event, start: u64| {
            if let Event::Data(d) = &mut e {
                d.start_ns = start;
            }
            e
        };
        let (q, r) = (req("/a"), resp("ok"));
        for (role, qdir, rdir) in [(Role::Client, E, I), (Role::Server, I, E)] {
            let c = cid(7);
            let events = [
                open(c, role, 1_000),
                // the request's syscall entered at 2_000 and returned at 500_000_000
                with_start(data_ev(c, qdir, 0, 500_000_000, q.len() as u32, &q), 2_000),
                with_start(data_ev(c, rdir, 0, 500_300_000, r.len() as u32, &r), 500_100_000),
            ];
            let t = txns(&run(&events).0);
            assert_eq!(t.len(), 1, "{role:?}");
            let (start, latency) = if role == Role::Client { (2_000, 500_298_000) } else { (500_000_000, 300_000) };
            assert_eq!(t[0].latency_ns, Some(latency), "{role:?}");
            assert_eq!(t[0].ttfb_ns, Some(500_300_000 - start), "{role:?}");
        }
    }

    #[test]
    fn keep_alive_three_transactions_client() {
        let s = Script::new(1)
            .open(Role::Client)
            .send(E, &req("/a?x=1"))
            .send(I, &resp("one"))
            .send(E, &req("/b"))
            .send(I, &resp("second"))
            .send(E, &req("/c"))
            .send(I, &resp("3"))
            .close();
        let (recs, st) = run(&s.events);
        let t = txns(&recs);
        assert_eq!(t.len(), 3);
        assert_eq!(
            t.iter()
                .map(|t| (t.target.clone().unwrap(), t.resp_body_bytes.unwrap()))
                .collect::<Vec<_>>(),
            vec![
                ("/a?x=1".to_string(), 3),
                ("/b".to_string(), 6),
                ("/c".to_string(), 1)
            ]
        );
        let a = &t[0];
        assert_eq!(a.path.as_deref(), Some("/a"));
        assert_eq!(a.host.as_deref(), Some("example.com"));
        assert_eq!(a.method.as_deref(), Some("GET"));
        assert_eq!(a.status, Some(200));
        assert_eq!(a.reason.as_deref(), Some("OK"));
        assert_eq!(a.conn.role, Role::Client);
        assert_eq!(a.http_version, Some("1.1"));
        assert_eq!(a.req_header_count, Some(2));
        assert_eq!(a.req_header_bytes, Some(req("/a?x=1").len() as u64));
        assert_eq!(a.resp_header_count, Some(2));
        assert_eq!(a.resp_content_type.as_deref(), Some("text/plain"));
        assert_eq!(a.conn.local_addr.as_deref(), Some("10.0.0.1"));
        assert_eq!(a.conn.remote_port, Some(80));
        assert_eq!(&*a.conn.conn_id, "4242-777-4-1");
        // request written at +1us, response read at +2us
        assert_eq!(a.latency_ns, Some(1_000));
        assert_eq!(a.ttfb_ns, Some(1_000));
        assert_eq!(a.span.start_ns, 1_001_000);
        assert!(t
            .iter()
            .all(|t| !t.gap && !t.truncated && !t.no_response && !t.upgraded));
        assert_eq!(st.transactions, 3);
        assert_eq!(st.conns_closed, 1);
        assert_eq!(st.conns_active, 0);
        assert_eq!(st.unanswered_requests, 0);
    }

    #[test]
    fn server_role_directions() {
        let s = Script::new(2)
            .open(Role::Server)
            .send(I, &req("/srv"))
            .send(E, &resp("hello"))
            .send(I, b"POST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody")
            .send(E, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
            .close();
        let (recs, _) = run(&s.events);
        let t = txns(&recs);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].conn.role, Role::Server);
        assert_eq!(
            (t[0].target.as_deref(), t[0].status, t[0].resp_body_bytes),
            (Some("/srv"), Some(200), Some(5))
        );
        assert_eq!(
            (t[1].method.as_deref(), t[1].req_body_bytes, t[1].status),
            (Some("POST"), Some(4), Some(201))
        );

        // The same bytes with the client role get no transactions: the requests
        // travel the wrong way for a client.
        let mut s2 = Script::new(3).open(Role::Client);
        s2 = s2.send(I, &req("/srv")).send(E, &resp("hello")).close();
        let (recs2, st2) = run(&s2.events);
        assert!(txns(&recs2)
            .iter()
            .all(|t| t.method.is_none() || t.status.is_none()));
        assert!(st2.unparseable > 0 || st2.orphan_responses > 0 || st2.unanswered_requests > 0);
    }

    #[test]
    fn unknown_role_is_inferred() {
        // No Open: ingress carries a request -> server.
        let s = Script::new(4)
            .send(I, &req("/x"))
            .send(E, &resp("ok"))
            .close();
        let (recs, _) = run(&s.events);
        let t = txns(&recs);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].conn.role, Role::Server);
        assert_eq!(t[0].conn.local_addr, None);
        assert_eq!(t[0].status, Some(200));
        // Open with Unknown role, egress carries a request -> client.
        let s = Script::new(5)
            .open(Role::Unknown)
            .send(E, &req("/y"))
            .send(I, &resp("ok"))
            .close();
        let t = txns(&run(&s.events).0);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].conn.role, Role::Client);
        assert_eq!(t[0].target.as_deref(), Some("/y"));
    }

    /// Bodies of known length are counted in place, not buffered (feed());
    /// heads are cut at their blank line first. Bodies that look like
    /// heads, LF-only heads and several messages in one write must come
    /// out as if every byte had been buffered.
    #[test]
    fn bodies_in_place_keep_framing() {
        let lf_only = b"HTTP/1.1 200 OK\nContent-Length: 6\n\nxx\r\n\r\n".to_vec();
        let s = Script::new(7)
            .open(Role::Client)
            .send(E, &[req("/1"), req("/2"), req("/3"), req("/4")].concat())
            // a body holding a blank line and a status line, then a second
            // response, all in one write
            .send(I, &[resp("a\r\n\r\nHTTP/1.1 500 X\r\n\r\n"), resp("bb")].concat())
            .send(I, &lf_only)
            // a head split from its body, the body in two writes
            .send(I, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
            .send(I, b"cde")
            .close();
        let (recs, st) = run(&s.events);
        let got: Vec<_> = txns(&recs)
            .iter()
            .map(|t| (t.target.clone().unwrap(), t.status.unwrap(), t.resp_body_bytes.unwrap(), t.gap))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/1".to_string(), 200, 23, false),
                ("/2".to_string(), 200, 2, false),
                ("/3".to_string(), 200, 6, false),
                ("/4".to_string(), 200, 5, false),
            ]
        );
        assert_eq!(st.resyncs, 0);
        assert_eq!(st.bytes_dropped, 0);
    }

    #[test]
    fn pipelining_pairs_fifo() {
        let s = Script::new(6)
            .open(Role::Client)
            .send(E, &req("/1"))
            .send(E, &req("/2"))
            .send(
                E,
                &[req("/3"), b"HEAD /4 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()].concat(),
            )
            .send(I, &[resp("a"), resp("bb")].concat())
            .send(I, &resp("ccc"))
            .send(I, b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n")
            .send(E, &req("/5"))
            .send(I, &resp("eeeee"))
            .close();
        let (recs, st) = run(&s.events);
        let t = txns(&recs);
        let got: Vec<_> = t
            .iter()
            .map(|t| (t.target.clone().unwrap(), t.resp_body_bytes.unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/1".to_string(), 1),
                ("/2".to_string(), 2),
                ("/3".to_string(), 3),
                ("/4".to_string(), 0),
                ("/5".to_string(), 5)
            ]
        );
        assert!(t.iter().all(|t| !t.gap && !t.no_response));
        assert_eq!(st.unanswered_requests, 0);
    }

    #[test]
    fn midstream_start_resyncs_on_next_message() {
        // Probe attached in the middle of a response body: no Open, positions
        // start far from zero.
        let c = cid(7);
        let next_req = req("/next");
        let next_resp = resp("fresh");
        let events = vec![
            data_ev(c, I, 90_000, 10, 30, b"ody of an earlier response...."),
            data_ev(c, E, 5_000, 20, next_req.len() as u32, &next_req),
            data_ev(c, I, 90_030, 30, next_resp.len() as u32, &next_resp),
            close_ev(
                c,
                40,
                5_000 + next_req.len() as u64,
                90_030 + next_resp.len() as u64,
            ),
        ];
        let (recs, st) = run(&events);
        let t = txns(&recs);
        assert_eq!(t.len(), 1, "{recs:?}");
        assert_eq!(t[0].target.as_deref(), Some("/next"));
        assert_eq!(t[0].resp_body_bytes, Some(5));
        assert_eq!(t[0].conn.role, Role::Client);
        assert!(!t[0].gap);
        assert_eq!(st.bytes_dropped, 30);
        assert_eq!(st.gaps, 0);
    }

    #[test]
    fn truncated_big_body_counts_exact_bytes() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n";
        let total = head.len() + 1_000_000;
        let mut cap = head.to_vec();
        cap.resize(4096, b'z');
        let s = Script::new(8)
            .open(Role::Client)
            .send(E, &req("/big"))
            .send_trunc(I, &cap, total as u32)
            .send(E, &req("/after"))
            .send(I, &resp("small"))
            .close();
        let (recs, st) = run(&s.events);
        let t = txns(&recs);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].resp_body_bytes, Some(1_000_000));
        assert!(t[0].truncated);
        assert!(!t[0].gap);
        assert_eq!(t[1].target.as_deref(), Some("/after"));
        assert_eq!(t[1].resp_body_bytes, Some(5));
        assert!(!t[1].truncated && !t[1].gap);
        assert_eq!(st.truncated_bytes, (total - 4096) as u64);
        assert_eq!(st.gaps, 0);
    }

    #[test]
    fn truncated_single_chunk_body_keeps_sync() {
        let mut cap = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\n".to_vec(); // 100000
        let framing = cap.len();
        cap.resize(4096, b'q');
        let tail = b"\r\n0\r\n\r\n";
        let s = Script::new(9)
            .open(Role::Client)
            .send(E, &req("/chunky"))
            .send_trunc(I, &cap, (framing + 100_000) as u32)
            .send(I, tail)
            .send(E, &req("/after"))
            .send(I, &resp("ok"))
            .close();
        let t = txns(&run(&s.events).0);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].resp_body_bytes, Some(100_000));
        assert!(t[0].truncated && !t[0].gap);
        assert_eq!(t[1].status, Some(200));
        assert!(!t[1].gap);
    }

    #[test]
    fn chunked_body_in_one_truncated_write_ends_exactly() {
        // curl -H 'Transfer-Encoding: chunked' --data-binary @10k: head,
        // chunk size, data, CRLF and the last chunk in one 10 KB write.
        let mut w = b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2710\r\n".to_vec();
        let total = w.len() + 10_000 + 7;
        w.resize(4096, b'z');
        let s = Script::new(3)
            .open(Role::Client)
            .send_trunc(E, &w, total as u32)
            .send(I, &resp("no"))
            .send(E, &req("/after"))
            .send(I, &resp("ok"))
            .close();
        let t = txns(&run(&s.events).0);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].req_body_bytes, Some(10_000));
        assert!(t[0].truncated && !t[0].gap && !t[0].no_response);
        assert_eq!(t[1].path.as_deref(), Some("/after"));
        // one byte more or less is not the last-chunk shape: a gap, then resync
        for delta in [-1i64, 1] {
            let s = Script::new(3)
                .open(Role::Client)
                .send_trunc(E, &w, (total as i64 + delta) as u32)
                .send(I, &resp("no"))
                .send(E, &req("/after"))
                .send(I, &resp("ok"))
                .close();
            let t = txns(&run(&s.events).0);
            assert!(t[0].gap, "delta {delta}: {:?}", t[0]);
            assert!(t.iter().any(|x| x.path.as_deref() == Some("/after")), "delta {delta}: {t:?}");
        }
    }

    #[test]
    fn ring_buffer_drop_in_headers_is_a_gap_and_resyncs() {
        let r1 = req("/lost");
        let s = Script::new(10)
            .open(Role::Client)
            .send(E, &r1[..10])
            .lose(E, (r1.len() - 10) as u64)
            .send(I, &resp("first"))
            .send(E, &req("/second"))
            .send(I, &resp("second!"))
            .close();
        let (recs, st) = run(&s.events);
        let t = txns(&recs);
        assert_eq!(t.len(), 2, "{:#?}", t);
        // The response to the lost request has no request: orphan, gap.
        assert_eq!(t[0].method, None);
        assert_eq!(t[0].resp_body_bytes, Some(5));
        assert!(t[0].gap);
        // The next exchange pairs correctly and is flagged.
        assert_eq!(t[1].target.as_deref(), Some("/second"));
        assert_eq!(t[1].resp_body_bytes, Some(7));
        assert!(t[1].gap);
        assert_eq!(st.gaps, 1);
        assert_eq!(st.gap_bytes, (r1.len() - 10) as u64);
        assert_eq!(st.orphan_responses, 1);
    }

    #[test]
    fn gap_in_response_head_resyncs() {
        let r1 = resp("lost one");
        let s = Script::new(11)
            .open(Role::Client)
            .send(E, &req("/1"))
            .send(I, &r1[..12])
            .lose(I, (r1.len() - 12) as u64)
            .send(E, &req("/2"))
            .send(I, &resp("kept"))
            .close();
        let mut cfg = TrackerConfig::default();
        cfg.reorder_window = 0; // declare gaps immediately
        let (recs, st) = run_cfg(cfg, &s.events);
        let t = txns(&recs);
        assert_eq!(t.len(), 2, "{t:#?}");
        assert_eq!(
            (t[0].target.as_deref(), t[0].no_response, t[0].gap),
            (Some("/1"), true, true)
        );
        assert_eq!(
            (t[1].target.as_deref(), t[1].resp_body_bytes, t[1].gap),
            (Some("/2"), Some(4), true)
        );
        assert_eq!(st.gaps, 1);
    }

    #[test]
    fn lost_response_realigns_pairing_and_head_framing() {
        let lost = resp("never seen");
        let s = Script::new(28)
            .open(Role::Client)
            .send(E, &req("/a"))
            .send(E, b"HEAD /b HTTP/1.1\r\nHost: h\r\n\r\n")
            .lose(I, lost.len() as u64)
            .send(I, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            .send(E, &req("/c"))
            .send(I, &resp("cc"))
            .close();
        let mut cfg = TrackerConfig::default();
        cfg.reorder_window = 0;
        let (recs, st) = run_cfg(cfg, &s.events);
        let t = txns(&recs);
        let got: Vec<_> = t
            .iter()
            .map(|t| {
                (
                    t.target.clone().unwrap_or_default(),
                    t.status,
                    t.resp_body_bytes,
                    t.no_response,
                    t.gap,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("/a".to_string(), None, None, true, true),
                ("/b".to_string(), Some(200), Some(0), false, true),
                ("/c".to_string(), Some(200), Some(2), false, false),
            ]
        );
        assert_eq!(st.gaps, 1);
    }

    #[test]
    fn out_of_order_within_window_is_reassembled() {
        let r = resp("out of order body!");
        let build = |order: &[usize]| {
            let c = cid(12);
            let q = req("/ooo");
            let parts = [(0usize, 10usize), (10, 30), (30, r.len())];
            let mut ev = vec![
                open(c, Role::Client, 1),
                data_ev(c, E, 0, 10, q.len() as u32, &q),
            ];
            for &i in order {
                let (a, b) = parts[i];
                ev.push(data_ev(
                    c,
                    I,
                    a as u64,
                    20 + i as u64,
                    (b - a) as u32,
                    &r[a..b],
                ));
            }
            ev.push(close_ev(c, 100, q.len() as u64, r.len() as u64));
            ev
        };
        let (in_order, st0) = run(&build(&[0, 1, 2]));
        let (shuffled, st) = run(&build(&[0, 2, 1]));
        assert_eq!(json(&in_order), json(&shuffled));
        assert_eq!(txns(&shuffled)[0].resp_body_bytes, Some(18));
        assert_eq!(st0.reordered_events, 0);
        assert_eq!(st.reordered_events, 1);
        assert_eq!(st.gaps, 0);
        // Fully reversed, and a duplicate.
        let mut ev = build(&[2, 1, 0]);
        ev.insert(4, ev[3].clone());
        let (rev, st) = run(&ev);
        assert_eq!(json(&in_order), json(&rev));
        assert_eq!(st.duplicate_events, 1);
    }

    #[test]
    fn reorder_timeout_declares_gap_on_expire() {
        let c = cid(13);
        let q = req("/t");
        let r = resp("late");
        let events = vec![
            open(c, Role::Client, 1),
            data_ev(c, E, 0, 10, q.len() as u32, &q),
            // first 5 response bytes lost; the rest is held waiting for them
            data_ev(c, I, 5, 20, (r.len() - 5) as u32, &r[5..]),
        ];
        let mut t = Tracker::new(TrackerConfig::default());
        let mut out = Vec::new();
        for e in &events {
            t.on_event(e, &mut out);
        }
        assert_eq!(t.stats().gaps, 0);
        t.expire(20 + 50_000_000, &mut out);
        assert_eq!(t.stats().gaps, 0, "within the reorder timeout");
        t.expire(20 + 200_000_000, &mut out);
        assert_eq!(t.stats().gaps, 1);
        assert_eq!(t.stats().gap_bytes, 5);
        t.flush_all(&mut out);
        let tx = txns(&out);
        assert_eq!(tx.len(), 1);
        assert!(tx[0].no_response && tx[0].gap);
    }

    #[test]
    fn close_flushes_unanswered_requests() {
        let s = Script::new(14)
            .open(Role::Client)
            .send(E, &req("/1"))
            .send(I, &resp("x"))
            .send(E, &req("/2"))
            .send(E, &req("/3"))
            .close();
        let (recs, st) = run(&s.events);
        let t = txns(&recs);
        assert_eq!(t.len(), 3);
        assert!(!t[0].no_response);
        assert!(t[1].no_response && t[2].no_response);
        assert_eq!(t[1].status, None);
        assert_eq!(t[1].latency_ns, None);
        assert!(!t[1].gap);
        assert_eq!(st.unanswered_requests, 2);
    }

    #[test]
    fn http10_close_delimited_response_ends_at_close() {
        let body = "x".repeat(10_000);
        let head = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n";
        let s = Script::new(15)
            .open(Role::Client)
            .send(E, b"GET /old HTTP/1.0\r\n\r\n")
            .send(I, head.as_bytes())
            .send(I, &body.as_bytes()[..6000])
            .send(I, &body.as_bytes()[6000..]);
        let s = s.close();
        let (recs, _) = run(&s.events);
        let t = txns(&recs);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].resp_body_bytes, Some(10_000));
        assert_eq!(t[0].http_version, Some("1.0"));
        assert!(!t[0].gap && !t[0].truncated);
        // Before the close nothing is emitted.
        let mut tr = Tracker::new(TrackerConfig::default());
        let mut out = Vec::new();
        for e in &s.events[..s.events.len() - 1] {
            tr.on_event(e, &mut out);
        }
        assert!(txns(&out).is_empty());
        // Close reports more received bytes than were seen: the tail event was
        // lost, but the framing is known, so the count is still exact.
        let mut ev = s.events.clone();
        ev.remove(ev.len() - 2);
        let (recs, st) = run(&ev);
        let t = txns(&recs);
        assert_eq!(t[0].resp_body_bytes, Some(10_000));
        assert!(t[0].truncated && !t[0].gap);
        assert_eq!(st.gap_bytes, 4000);
    }

    #[test]
    fn expiry_flushes_idle_connections() {
        let s = Script::new(16).open(Role::Client).send(E, &req("/idle"));
        let mut cfg = TrackerConfig::default();
        cfg.idle_timeout_ns = 1_000_000_000;
        let mut t = Tracker::new(cfg);
        let mut out = Vec::new();
        for e in &s.events {
            t.on_event(e, &mut out);
        }
        t.expire(s.ts + 999_999_999, &mut out);
        assert!(out.is_empty());
        assert_eq!(t.active(), 1);
        t.expire(s.ts + 1_000_000_000, &mut out);
        assert_eq!(t.active(), 0);
        let st = t.stats();
        assert_eq!(st.conns_expired, 1);
        let tx = txns(&out);
        assert_eq!(tx.len(), 1);
        assert!(tx[0].no_response);
        assert_eq!(tx[0].target.as_deref(), Some("/idle"));
    }

    #[test]
    fn eviction_when_max_conns_exceeded() {
        let mut cfg = TrackerConfig::default();
        cfg.max_conns = 2;
        let mut t = Tracker::new(cfg);
        let mut out = Vec::new();
        for n in 0..3u64 {
            let s = Script::new(100 + n)
                .open(Role::Client)
                .send(E, &req(&format!("/{n}")));
            for e in &s.events {
                t.on_event(e, &mut out);
            }
            // touch conn 100 again so 101 becomes least recently used
            if n == 1 {
                let q = req("/0b");
                t.on_event(
                    &data_ev(cid(100), E, req("/0").len() as u64, 5, q.len() as u32, &q),
                    &mut out,
                );
            }
        }
        assert_eq!(t.active(), 2);
        let st = t.stats();
        assert_eq!(st.conns_evicted, 1);
        assert_eq!(st.conns_seen, 3);
        let tx = txns(&out);
        assert_eq!(tx.len(), 1);
        assert_eq!(tx[0].target.as_deref(), Some("/1"));
        assert!(tx[0].no_response);
    }

    #[test]
    fn caps_bound_memory_and_queues() {
        // max_pending: 5 pipelined requests, cap 2.
        let mut cfg = TrackerConfig::default();
        cfg.max_pending = 2;
        let mut s = Script::new(17).open(Role::Client);
        for i in 0..5 {
            s = s.send(E, &req(&format!("/{i}")));
        }
        let (recs, st) = run_cfg(cfg, &s.events);
        assert_eq!(st.pending_overflow, 3);
        assert_eq!(txns(&recs).len(), 5);

        // Garbage in a connection of unknown role: buffers stay bounded.
        let mut cfg = TrackerConfig::default();
        cfg.max_buf_bytes = 8192;
        let mut t = Tracker::new(cfg.clone());
        let mut out = Vec::new();
        let junk = vec![b'A'; 4096];
        for i in 0..256u64 {
            t.on_event(&data_ev(cid(18), I, i * 4096, i, 4096, &junk), &mut out);
            assert!(t.buffered_bytes() <= cfg.max_buf_bytes);
        }
        // A request head that never ends: Invalid at the head cap, then resync.
        let mut t = Tracker::new(TrackerConfig::default());
        let s = Script::new(19)
            .open(Role::Server)
            .send(I, b"GET / HTTP/1.1\r\nX-Long: ");
        for e in &s.events {
            t.on_event(e, &mut out);
        }
        let mut pos = s.pos[1];
        for i in 0..40u64 {
            let chunk = vec![b'v'; 4096];
            t.on_event(&data_ev(cid(19), I, pos, 100 + i, 4096, &chunk), &mut out);
            pos += 4096;
            assert!(t.buffered_bytes() <= parser::MAX_HEAD_BYTES + 4096);
        }
        assert_eq!(t.stats().unparseable, 1);
        // Out-of-order hold is bounded by the reorder window.
        let mut t = Tracker::new(TrackerConfig::default());
        t.on_event(&open(cid(20), Role::Client, 0), &mut out);
        for i in 0..100u64 {
            t.on_event(
                &data_ev(cid(20), E, 1 + i * 10, i, 10, b"0123456789"),
                &mut out,
            );
            assert!(t.buffered_bytes() <= 17 * 10);
        }
    }

    #[test]
    fn expect_100_continue() {
        let head =
            b"PUT /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 6\r\n\r\n";
        let r100 = b"HTTP/1.1 100 Continue\r\n\r\n";
        let fin = resp("stored");
        let s = Script::new(21)
            .open(Role::Client)
            .send(E, head)
            .send(I, r100)
            .send(E, b"abcdef")
            .send(I, &fin)
            .close();
        let mut cfg = TrackerConfig::default();
        cfg.emit_messages = true;
        let (recs, _) = run_cfg(cfg.clone(), &s.events);
        let t = txns(&recs);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].interim_status, Some(100));
        assert_eq!(t[0].status, Some(200));
        assert_eq!(t[0].req_body_bytes, Some(6));
        assert_eq!(t[0].resp_body_bytes, Some(6));
        // ttfb measured to the interim response, latency to the final byte
        assert_eq!(t[0].ttfb_ns, Some(1_000));
        assert_eq!(t[0].latency_ns, Some(3_000));
        let msgs = recs
            .iter()
            .filter(|r| matches!(r, Record::Message(_)))
            .count();
        assert_eq!(msgs, 3);
        // Ingress stream split at every position gives identical records.
        let whole = [&r100[..], &fin[..]].concat();
        for k in 1..whole.len() {
            let c = cid(21);
            let ev = vec![
                open(c, Role::Client, 1),
                data_ev(c, E, 0, 10, head.len() as u32, head),
                data_ev(c, I, 0, 20, k as u32, &whole[..k]),
                data_ev(c, E, head.len() as u64, 20, 6, b"abcdef"),
                data_ev(c, I, k as u64, 20, (whole.len() - k) as u32, &whole[k..]),
                close_ev(c, 30, head.len() as u64 + 6, whole.len() as u64),
            ];
            let t = txns(&run(&ev).0);
            assert_eq!(t.len(), 1, "split {k}");
            assert_eq!(
                (t[0].interim_status, t[0].status, t[0].req_body_bytes),
                (Some(100), Some(200), Some(6)),
                "split {k}"
            );
        }
    }

    #[test]
    fn upgrade_101_stops_http_parsing() {
        let s = Script::new(22)
            .open(Role::Client)
            .send(E, b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            .send(I, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello")
            .send(E, b"\x81\x85\x00\x00\x00\x00hello")
            .send(I, b"\x88\x00")
            .close();
        let (recs, st) = run(&s.events);
        let t = txns(&recs);
        assert_eq!(t.len(), 1);
        assert!(t[0].upgraded);
        assert_eq!(t[0].status, Some(101));
        assert_eq!(st.upgrades, 1);
        assert_eq!(st.unparseable, 0);
        assert_eq!(st.orphan_responses + st.unanswered_requests, 0);

        // Upgrade refused: parsing continues with the buffered next request.
        let s = Script::new(23)
            .open(Role::Client)
            .send(E, b"GET /ws HTTP/1.1\r\nUpgrade: h2c\r\n\r\n")
            .send(E, &req("/plain"))
            .send(I, &resp("no"))
            .send(I, &resp("yes"))
            .close();
        let (recs, st) = run(&s.events);
        let t = txns(&recs);
        assert_eq!(t.len(), 2);
        assert!(!t[0].upgraded);
        assert_eq!(
            (t[1].target.as_deref(), t[1].resp_body_bytes),
            (Some("/plain"), Some(3))
        );
        assert_eq!(st.upgrades, 0);
    }

    #[test]
    fn connect_tunnel() {
        let s = Script::new(24)
            .open(Role::Client)
            .send(
                E,
                b"CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n",
            )
            .send(I, b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .send(E, b"\x16\x03\x01\x02\x00 tls hello")
            .send(I, b"\x16\x03\x03 server hello")
            .close();
        let (recs, st) = run(&s.events);
        let t = txns(&recs);
        assert_eq!(t.len(), 1);
        assert!(t[0].upgraded);
        assert_eq!(t[0].method.as_deref(), Some("CONNECT"));
        assert_eq!(st.unparseable, 0);
    }

    #[test]
    fn headers_and_redaction() {
        let q = b"GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic Zm9vOmJhcg==\r\nCookie: s=1\r\n\r\n";
        let r = b"HTTP/1.1 200 OK\r\nSet-Cookie: s=2\r\nContent-Length: 0\r\n\r\n";
        let s = Script::new(25)
            .open(Role::Client)
            .send(E, q)
            .send(I, r)
            .close();
        let mut cfg = TrackerConfig::default();
        let (recs, _) = run_cfg(cfg.clone(), &s.events);
        assert!(!json(&recs)[0].contains("req_headers"));
        cfg.headers = true;
        let (recs, _) = run_cfg(cfg.clone(), &s.events);
        let t = &txns(&recs)[0];
        let rh = t.req_headers.as_ref().unwrap();
        assert_eq!(
            rh[1],
            ("Authorization".to_string(), "[REDACTED]".to_string())
        );
        assert_eq!(rh[2].1, "[REDACTED]");
        assert_eq!(rh[0].1, "h");
        assert_eq!(t.resp_headers.as_ref().unwrap()[0].1, "[REDACTED]");
        assert!(!json(&recs)[0].contains("Zm9v"));
        cfg.redact = false;
        let (recs, _) = run_cfg(cfg, &s.events);
        assert!(json(&recs)[0].contains("Basic Zm9vOmJhcg=="));
    }

    #[test]
    fn message_records_only() {
        let s = Script::new(26)
            .open(Role::Server)
            .send(I, &req("/m"))
            .send(E, &resp("body"))
            .close();
        let mut cfg = TrackerConfig::default();
        cfg.emit_messages = true;
        cfg.emit_transactions = false;
        let (recs, st) = run_cfg(cfg, &s.events);
        assert_eq!(recs.len(), 2);
        let Record::Message(a) = &recs[0] else {
            panic!()
        };
        let Record::Message(b) = &recs[1] else {
            panic!()
        };
        assert_eq!(
            (a.message, a.direction, a.method.as_deref()),
            (MsgKind::Request, Direction::Ingress, Some("GET"))
        );
        assert_eq!(
            (b.message, b.direction, b.status, b.body_bytes),
            (MsgKind::Response, Direction::Egress, Some(200), 4)
        );
        assert_eq!(st.messages, 2);
        assert_eq!(st.transactions, 0);
        let j = recs[0].to_json_line();
        assert!(j.starts_with("{\"type\":\"http_message\""), "{j}");
    }

    #[test]
    fn json_shape() {
        let s = Script::new(27)
            .open(Role::Client)
            .send(E, &req("/j"))
            .send(I, &resp("{}"))
            .close();
        let mut cfg = TrackerConfig::default();
        cfg.realtime_offset_ns = 1_795_966_200_123_456_789 - 1_001_000;
        let (recs, _) = run_cfg(cfg, &s.events);
        let v: serde_json::Value = serde_json::from_str(&recs[0].to_json_line()).unwrap();
        assert_eq!(v["type"], "http_transaction");
        assert_eq!(v["ts_start"], "2026-11-29T15:30:00.123456789Z");
        assert_eq!(v["ts_end"], "2026-11-29T15:30:00.123457789Z");
        assert_eq!(v["role"], "client");
        assert_eq!(v["remote_addr"], "10.0.0.2");
        assert!(v["interim_status"].is_null());
        for k in [
            "ts_start_ns",
            "ts_end_ns",
            "latency_ns",
            "ttfb_ns",
            "method",
            "target",
            "path",
            "host",
            "http_version",
            "status",
            "reason",
            "req_header_count",
            "req_header_bytes",
            "resp_header_count",
            "resp_header_bytes",
            "req_body_bytes",
            "resp_body_bytes",
            "req_content_type",
            "resp_content_type",
            "pid",
            "tid",
            "comm",
            "conn_id",
            "source",
            "local_addr",
            "local_port",
            "remote_port",
            "gap",
            "truncated",
            "no_response",
            "upgraded",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
    }

    // ---------------------------------------------------------------------------
    // Table messages through the tracker: every split gives identical records.

    fn conversation(c: &crate::http::tests::Case) -> (Vec<u8>, Vec<u8>) {
        match &c.kind {
            Kind::Request => (
                c.bytes.clone(),
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            ),
            Kind::Response { method, .. } => (
                format!("{method} /x HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes(),
                c.bytes.clone(),
            ),
        }
    }

    fn split_events(
        role: Role,
        q: &[u8],
        r: &[u8],
        qcuts: &[usize],
        rcuts: &[usize],
    ) -> Vec<Event> {
        let c = cid(50);
        let (qd, rd) = if role == Role::Server { (I, E) } else { (E, I) };
        let mut ev = vec![open(c, role, 1)];
        let pieces = |b: &[u8], cuts: &[usize], d: Direction, ts: u64, ev: &mut Vec<Event>| {
            let mut bounds = vec![0];
            bounds.extend(cuts.iter().copied().filter(|&k| k > 0 && k < b.len()));
            bounds.push(b.len());
            for w in bounds.windows(2) {
                ev.push(data_ev(
                    c,
                    d,
                    w[0] as u64,
                    ts,
                    (w[1] - w[0]) as u32,
                    &b[w[0]..w[1]],
                ));
            }
        };
        pieces(q, qcuts, qd, 1_000, &mut ev);
        pieces(r, rcuts, rd, 2_000, &mut ev);
        let (tx, rx) = if role == Role::Server {
            (r.len(), q.len())
        } else {
            (q.len(), r.len())
        };
        ev.push(close_ev(c, 3_000, tx as u64, rx as u64));
        ev
    }

    #[test]
    fn table_cases_split_anywhere_give_identical_records() {
        let mut cfg = TrackerConfig::default();
        cfg.emit_messages = true;
        cfg.headers = true;
        for case in cases() {
            let (q, r) = conversation(&case);
            for role in [Role::Client, Role::Server] {
                let base = json(&run_cfg(cfg.clone(), &split_events(role, &q, &r, &[], &[])).0);
                // sanity: the interesting message was parsed with the right body size
                let t = txns(&run_cfg(cfg.clone(), &split_events(role, &q, &r, &[], &[])).0);
                assert!(!t.is_empty(), "{}", case.name);
                match case.kind {
                    Kind::Request => {
                        assert_eq!(t[0].req_body_bytes, Some(case.body_bytes), "{}", case.name)
                    }
                    Kind::Response { .. } => {
                        if case.name != "response_100_continue" {
                            assert_eq!(
                                t[0].resp_body_bytes,
                                Some(case.body_bytes),
                                "{}",
                                case.name
                            );
                            assert!(!t[0].gap, "{}", case.name);
                        } else {
                            assert!(t[0].no_response);
                        }
                    }
                }
                for k in 1..q.len() {
                    let got = json(&run_cfg(cfg.clone(), &split_events(role, &q, &r, &[k], &[])).0);
                    assert_eq!(got, base, "{} req split {k}", case.name);
                }
                for k in 1..r.len() {
                    let got = json(&run_cfg(cfg.clone(), &split_events(role, &q, &r, &[], &[k])).0);
                    assert_eq!(got, base, "{} resp split {k}", case.name);
                }
                let all_q: Vec<usize> = (1..q.len()).collect();
                let all_r: Vec<usize> = (1..r.len()).collect();
                let got =
                    json(&run_cfg(cfg.clone(), &split_events(role, &q, &r, &all_q, &all_r)).0);
                assert_eq!(got, base, "{} byte by byte", case.name);
            }
        }
    }

    // ---------------------------------------------------------------------------
    // Deterministic mutation loop (stand-in for the cargo-fuzz targets).

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
    }

    fn mutate(rng: &mut XorShift, b: &mut Vec<u8>) {
        for _ in 0..1 + rng.below(4) {
            match rng.below(6) {
                0 if !b.is_empty() => {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
                1 if !b.is_empty() => {
                    let i = rng.below(b.len());
                    b[i] = b"\r\n :;0aF9-"[rng.below(10)];
                }
                2 => {
                    let i = rng.below(b.len() + 1);
                    b.insert(i, rng.next() as u8);
                }
                3 if !b.is_empty() => {
                    let i = rng.below(b.len());
                    b.remove(i);
                }
                4 => {
                    let i = rng.below(b.len() + 1);
                    b.truncate(i);
                }
                _ => {
                    let i = rng.below(b.len() + 1);
                    let j = rng.below(b.len() + 1);
                    let (lo, hi) = (i.min(j), i.max(j));
                    let dup = b[lo..hi].to_vec();
                    b.splice(hi..hi, dup);
                }
            }
        }
    }

    #[test]
    fn pseudo_random_mutations_never_panic() {
        let table = cases();
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut cfg = TrackerConfig::default();
        cfg.max_buf_bytes = 2048;
        cfg.max_pending = 4;
        cfg.max_conns = 3;
        cfg.reorder_window = 3;
        cfg.emit_messages = true;
        for iter in 0..20_000u32 {
            let c = &table[rng.below(table.len())];
            let mut b = c.bytes.clone();
            mutate(&mut rng, &mut b);
            // parser invariants
            for p in [
                parser::parse_request(&b).is_invalid(),
                parser::parse_response(&b).is_invalid(),
            ] {
                let _ = p;
            }
            if let Parse::Complete(_, n) = parser::parse_full_request(&b) {
                assert!(n <= b.len());
            }
            if let Parse::Complete(_, n) =
                parser::parse_full_response(&b, Some("GET"), rng.below(2) == 0)
            {
                assert!(n <= b.len());
            }
            let mut d = ChunkedDecoder::new();
            match d.feed(&b) {
                ChunkStep::Progress(n) | ChunkStep::Done(n) => assert!(n <= b.len()),
                ChunkStep::Invalid(_) => {}
            }
            // tracker: a few events with random splits, jumps, truncation, reordering
            if iter % 4 == 0 {
                let mut t = Tracker::new(cfg.clone());
                let mut out = Vec::new();
                let conn = cid(rng.below(5) as u64);
                let role = [Role::Client, Role::Server, Role::Unknown][rng.below(3)];
                if rng.below(3) > 0 {
                    t.on_event(&open(conn, role, 0), &mut out);
                }
                let mut pos = [rng.below(3) as u64 * 7, 0u64];
                let mut evs = Vec::new();
                for step in 0..1 + rng.below(12) {
                    let cc = &table[rng.below(table.len())];
                    let mut m = cc.bytes.clone();
                    if rng.below(3) == 0 {
                        mutate(&mut rng, &mut m);
                    }
                    let d = rng.below(2);
                    let cut = rng.below(m.len() + 1);
                    for part in [&m[..cut], &m[cut..]] {
                        let cap = if rng.below(5) == 0 {
                            rng.below(part.len() + 1)
                        } else {
                            part.len()
                        };
                        let orig = part.len()
                            + if rng.below(8) == 0 {
                                rng.below(100_000)
                            } else {
                                0
                            };
                        if rng.below(10) == 0 {
                            pos[d] += rng.below(50) as u64; // lost bytes
                        }
                        evs.push(data_ev(
                            conn,
                            dir_of(d),
                            pos[d],
                            step as u64 * 1000,
                            orig as u32,
                            &part[..cap],
                        ));
                        pos[d] += orig as u64;
                    }
                }
                if evs.len() > 1 && rng.below(3) == 0 {
                    let i = rng.below(evs.len() - 1);
                    evs.swap(i, i + 1);
                }
                for e in &evs {
                    t.on_event(e, &mut out);
                    assert!(t.buffered_bytes() <= 4 * (cfg.max_buf_bytes + 200_000));
                    for d in t.conns.values().flat_map(|c| c.dirs.iter()) {
                        assert!(d.buf.len() <= cfg.max_buf_bytes.max(parser::MAX_HEAD_BYTES));
                        assert!(d.pending.len() <= cfg.reorder_window);
                    }
                }
                if rng.below(2) == 0 {
                    t.on_event(
                        &close_ev(conn, 1 << 40, pos[0] + rng.below(10) as u64, pos[1]),
                        &mut out,
                    );
                } else {
                    t.expire(1 << 50, &mut out);
                }
                t.flush_all(&mut out);
                for r in &out {
                    if let Record::Transaction(tx) = r {
                        assert!(tx.span.end_ns >= tx.span.start_ns);
                        if tx.no_response {
                            assert!(tx.status.is_none());
                        }
                    }
                    let _ = r.to_json_line();
                }
                let st = t.stats();
                assert_eq!(st.records_emitted as usize, out.len());
                assert_eq!(st.conns_active, 0);
            }
        }
    }

    // ---------------------------------------------------------------------------
    // Golden file.

    fn golden_events() -> Vec<Event> {
        let mut ev = Vec::new();
        // 1. client keep-alive with an interim response and a chunked body
        ev.extend(
            Script::new(60)
                .open(Role::Client)
                .send(E, b"POST /api/v1/items?debug=1 HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\nAuthorization: Bearer abc\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
                .send(I, b"HTTP/1.1 100 Continue\r\n\r\n")
                .send(E, b"{}")
                .send(I, b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n7;x=y\r\n{\"id\":1\r\n1\r\n}\r\n0\r\nX-T: 1\r\n\r\n")
                .send(E, b"HEAD /health HTTP/1.1\r\nHost: api.example\r\n\r\n")
                .send(I, b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n")
                .close()
                .events,
        );
        // 2. server side, truncated capture of a large response
        let mut cap = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nSet-Cookie: sid=1\r\nContent-Length: 2000000\r\n\r\n".to_vec();
        let head_len = cap.len();
        cap.resize(4096, 0x89);
        ev.extend(
            Script::new(61)
                .open(Role::Server)
                .send(
                    I,
                    b"GET /img.png HTTP/1.1\r\nHost: cdn\r\nCookie: sid=1\r\n\r\n",
                )
                .send_trunc(E, &cap, (head_len + 2_000_000) as u32)
                .close()
                .events,
        );
        // 3. lost request bytes, then resync
        let lost = req("/lost");
        ev.extend(
            Script::new(62)
                .open(Role::Client)
                .send(E, &lost[..8])
                .lose(E, (lost.len() - 8) as u64)
                .send(I, &resp("a"))
                .send(E, &req("/found"))
                .send(I, &resp("bb"))
                .send(E, &req("/unanswered"))
                .close()
                .events,
        );
        ev
    }

    #[test]
    fn golden_jsonl() {
        let mut cfg = TrackerConfig::default();
        cfg.headers = true;
        cfg.emit_messages = true;
        cfg.realtime_offset_ns = 1_795_966_200_000_000_000;
        let (recs, st) = run_cfg(cfg, &golden_events());
        let mut text = String::new();
        for r in &recs {
            text.push_str(&r.to_json_line());
            text.push('\n');
        }
        text.push_str(&serde_json::to_string(&st).unwrap());
        text.push('\n');
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/tracker_scenario.jsonl");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
            return;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with UPDATE_GOLDEN=1 to create)",
                path.display()
            )
        });
        if want != text {
            for (i, (a, b)) in want.lines().zip(text.lines()).enumerate() {
                assert_eq!(
                    a,
                    b,
                    "golden line {} differs (UPDATE_GOLDEN=1 regenerates)",
                    i + 1
                );
            }
            assert_eq!(
                want.lines().count(),
                text.lines().count(),
                "golden line count differs"
            );
        }
    }
}
