// SPDX-License-Identifier: GPL-3.0-or-later
//! One tracked connection: its identity, the reassembly of its two
//! directions, and the protocol session its bytes go to.

use super::reassembly::{Arrival, Reassembly};
use super::{TrackerConfig, TrackerStats};
use crate::event::{DataEvent, Direction, TlsLibrary};
use crate::protocol::{
    self, Blind, Chunk, ConnInfo, Ctx, EndReason, Hint, PerDir, Protocol, Session, Stamp,
    StreamView, BOTH,
};
use crate::record::Record;

/// The tracker's shared parts a connection works with during one call.
pub(crate) struct Env<'a> {
    pub cfg: &'a TrackerConfig,
    pub stats: &'a mut TrackerStats,
    pub out: &'a mut Vec<Record>,
    pub registry: &'a [&'static dyn Protocol],
}

/// Captured bytes an event needs for [`Blind::of`] to judge them.
const BLIND_MIN: usize = 2;

pub(crate) struct Conn {
    pub info: ConnInfo,
    /// The first byte seen is the connection's first (not mid-stream).
    known_start: bool,
    streams: PerDir<Reassembly>,
    /// Chosen at the first data event, from its bytes.
    session: Option<Box<dyn Session>>,
    /// Decided at the first event with at least [`BLIND_MIN`] captured
    /// bytes (None: not yet): what the connection is if no protocol
    /// parses it. Counted at its end if it gave no record.
    blind: Option<Option<Blind>>,
    /// Records the session emitted.
    records: u64,
    /// Times the session was replaced (a protocol switch).
    handovers: u32,
    pub last_ts: u64,
}

impl Conn {
    pub fn new(info: ConnInfo, known_start: bool) -> Conn {
        Conn {
            info,
            known_start,
            streams: PerDir::default(),
            session: None,
            blind: None,
            records: 0,
            handovers: 0,
            last_ts: 0,
        }
    }

    /// Run `f` on the session with a context that sees the streams as
    /// they are now; afterwards drop held events if the session asked,
    /// and replace the session if it handed the connection over.
    fn with_session<R>(
        &mut self,
        env: &mut Env,
        f: impl FnOnce(&mut dyn Session, &mut Ctx) -> R,
    ) -> Option<R> {
        self.with_session_at(env, None, f)
    }

    /// As [`Conn::with_session`]; `at`: direction `.0` is seen as going
    /// on at position `.1` (a new session started where the old one left).
    fn with_session_at<R>(
        &mut self,
        env: &mut Env,
        at: Option<(Direction, u64)>,
        f: impl FnOnce(&mut dyn Session, &mut Ctx) -> R,
    ) -> Option<R> {
        let session = self.session.as_deref_mut()?;
        let view = |r: &Reassembly| StreamView {
            next_pos: r.next_pos(),
            holds: r.holds(),
        };
        let mut streams = PerDir([view(&self.streams.0[0]), view(&self.streams.0[1])]);
        if let Some((d, pos)) = at {
            streams[d].next_pos = pos;
        }
        let before = env.out.len();
        let mut cx = Ctx::new(env.cfg, env.stats, &mut self.info, streams, env.out);
        let r = f(session, &mut cx);
        let drop_held = cx.wants_held_dropped();
        let handover = cx.wants_handover();
        self.records += env.out.len().saturating_sub(before) as u64;
        if drop_held {
            self.streams.iter_mut().for_each(Reassembly::drop_held);
        }
        if handover {
            self.switch(env);
        }
        Some(r)
    }

    /// The session handed the connection over to another protocol's
    /// (an HTTP/1.1 upgrade to h2c): the new one starts on each direction
    /// that has begun, where the old one stopped, with the bytes the old
    /// one took past that point.
    fn switch(&mut self, env: &mut Env) {
        let Some(h) = self.session.as_deref_mut().and_then(|s| s.take_handover()) else {
            return;
        };
        self.session = Some(h.session);
        self.handovers += 1;
        for d in BOTH {
            if !self.streams[d].started() {
                continue;
            }
            let rest = &h.rest[d];
            let next = self.streams[d].next_pos();
            let tail = next.saturating_sub(rest.uncaptured);
            let at = rest.pieces.first().map_or(tail, |p| p.1);
            self.with_session_at(env, Some((d, at)), |s, cx| s.start(d, true, cx));
            let mut last = Stamp {
                ts: self.last_ts,
                ..Stamp::default()
            };
            for (bytes, pos, stamp) in &rest.pieces {
                last = *stamp;
                let chunk = Chunk {
                    bytes,
                    at: *pos,
                    uncaptured: 0,
                    stamp: *stamp,
                    fault: false,
                };
                self.with_session(env, |s, cx| s.data(d, chunk, cx));
            }
            if rest.uncaptured > 0 {
                let chunk = Chunk {
                    bytes: &[],
                    at: tail,
                    uncaptured: rest.uncaptured,
                    stamp: last,
                    fault: rest.fault,
                };
                self.with_session(env, |s, cx| s.data(d, chunk, cx));
            }
        }
    }

    fn choose_session(&mut self, d: Direction, first: &[u8], registry: &[&'static dyn Protocol]) {
        // TLS gets no session (detect)
        let chosen = self.session.is_some() || matches!(self.blind, Some(Some(Blind::Tls)));
        if chosen && self.blind.is_some() {
            return;
        }
        let (local_port, remote_port) = self.info.ports();
        let hint = Hint {
            dir: d,
            role: self.info.role,
            local_port,
            remote_port,
        };
        // a 1-byte peek (nginx's MSG_PEEK on an ssl port) says too little
        if self.blind.is_none() && first.len() >= BLIND_MIN {
            self.blind = Some(Blind::of(registry, first, &hint));
        }
        if !chosen {
            self.session = protocol::detect(registry, first, &hint).map(|p| p.session());
        }
    }

    /// The first TLS plaintext event of the connection: from now on its
    /// records come from the plaintext stream (its own positions), which
    /// starts over with a new session; the ciphertext seen so far (the
    /// handshake, which no protocol parses) is dropped, what follows is
    /// counted and not parsed.
    fn start_tls(&mut self, lib: TlsLibrary, env: &mut Env) {
        self.session = None;
        self.blind = None;
        self.streams = PerDir::default();
        self.info.tls = Some(lib);
        env.stats.tls_conns += 1;
    }

    /// `payload`: the event's captured bytes (`ev.payload`, or the ring
    /// buffer's copy when the poller decoded without copying).
    pub fn on_data(&mut self, ev: &DataEvent, payload: &[u8], env: &mut Env) {
        let d = ev.dir;
        match (ev.syscall.tls_library(), self.info.tls) {
            (Some(lib), None) => self.start_tls(lib, env),
            (None, Some(_)) => {
                env.stats.tls_ciphertext_events += 1;
                env.stats.tls_ciphertext_bytes += ev.orig_len as u64;
                self.last_ts = self.last_ts.max(ev.ts_ns);
                return;
            }
            _ => {}
        }
        self.last_ts = self.last_ts.max(ev.ts_ns);
        self.choose_session(d, payload, env.registry);
        if !self.streams[d].started() {
            self.streams[d].start(ev.pos, self.known_start);
            let known = self.known_start;
            self.with_session(env, |s, cx| s.start(d, known, cx));
        }
        let stamp = Stamp {
            ts: ev.ts_ns,
            start_ns: ev.start_ns,
            tid: ev.proc.tid,
        };
        if self.streams[d].arrive(ev.pos, ev.orig_len, payload, stamp, ev.fault, env.stats)
            == Arrival::Duplicate
        {
            return;
        }
        if ev.pos <= self.streams[d].next_pos() {
            if !self.streams.iter().any(Reassembly::holds) {
                // nothing held either way: nothing to release or give up
                // on, so the session settles in the same call
                self.apply_settle(d, ev.pos, ev.orig_len, payload, stamp, ev.fault, env);
                return;
            }
            self.apply(d, ev.pos, ev.orig_len, payload, stamp, ev.fault, env);
            self.release_held(d, env);
        }
        let now = self.last_ts;
        for dd in BOTH {
            self.give_up_overdue(dd, now, env);
        }
        self.settle(env);
    }

    /// Hand the new part of an in-order event to the session; `fault`:
    /// its record was flagged `F_READ_FAULT`.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        d: Direction,
        pos: u64,
        orig_len: u32,
        payload: &[u8],
        stamp: Stamp,
        fault: bool,
        env: &mut Env,
    ) {
        let Some(chunk) = self.advance(d, pos, orig_len, payload, stamp, fault, env) else {
            return;
        };
        self.with_session(env, |s, cx| s.data(d, chunk, cx));
    }

    /// Account for an in-order event in direction `d`'s stream: its new
    /// part as the session's chunk, or None when it adds nothing new.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn advance<'p>(
        &mut self,
        d: Direction,
        pos: u64,
        orig_len: u32,
        payload: &'p [u8],
        stamp: Stamp,
        fault: bool,
        env: &mut Env,
    ) -> Option<Chunk<'p>> {
        let a = self.streams[d].advance(pos, orig_len, payload.len(), env.stats)?;
        let bytes = if a.from < a.cap_end {
            &payload[(a.from - pos) as usize..(a.cap_end - pos) as usize]
        } else {
            &[]
        };
        Some(Chunk {
            bytes,
            at: a.from,
            uncaptured: a.end - a.from.max(a.cap_end),
            stamp,
            fault,
        })
    }

    /// [`Conn::apply`] then [`Conn::settle`] in one session call (one
    /// context), when no event is held: what runs between them otherwise
    /// (releasing held events, giving up on overdue ones) has nothing to
    /// do then. A session that hands the connection over settles apart,
    /// after the switch, as before.
    #[allow(clippy::too_many_arguments)]
    fn apply_settle(
        &mut self,
        d: Direction,
        pos: u64,
        orig_len: u32,
        payload: &[u8],
        stamp: Stamp,
        fault: bool,
        env: &mut Env,
    ) {
        let Some(chunk) = self.advance(d, pos, orig_len, payload, stamp, fault, env) else {
            self.settle(env);
            return;
        };
        let settled = self.with_session(env, |s, cx| {
            s.data(d, chunk, cx);
            let go_on = !cx.wants_handover();
            if go_on {
                s.settle(cx);
            }
            go_on
        });
        if settled == Some(false) {
            self.settle(env);
        }
    }

    fn release_held(&mut self, d: Direction, env: &mut Env) {
        while let Some(h) = self.streams[d].release() {
            self.apply(d, h.pos, h.orig_len, &h.payload, h.stamp, h.fault, env);
        }
    }

    /// Give up waiting for missing positions when the window overflows or
    /// the oldest held event is too old: declare a gap.
    pub fn give_up_overdue(&mut self, d: Direction, now: u64, env: &mut Env) {
        while let Some(pos) = self.streams[d].overdue(env.cfg, now) {
            self.skip_to_held(d, pos, env);
        }
    }

    fn skip_to_held(&mut self, d: Direction, pos: u64, env: &mut Env) {
        if let Some((missing, ts)) = self.streams[d].skip_to_held(pos) {
            self.gap(d, missing, ts, env);
        }
        self.release_held(d, env);
    }

    fn gap(&mut self, d: Direction, missing: u64, ts: u64, env: &mut Env) {
        env.stats.gaps += 1;
        // positions come from the kernel: a bogus close record must not overflow it
        env.stats.gap_bytes = env.stats.gap_bytes.saturating_add(missing);
        self.with_session(env, |s, cx| s.gap(d, missing, ts, cx));
    }

    pub fn settle(&mut self, env: &mut Env) {
        self.with_session(env, |s, cx| s.settle(cx));
    }

    /// The connection ends; `finals`: the close record's final positions
    /// (egress, ingress), bytes short of them are missing.
    pub fn end(&mut self, reason: EndReason, ts: u64, finals: Option<(u64, u64)>, env: &mut Env) {
        for d in BOTH {
            while let Some(pos) = self.streams[d].first_held() {
                self.skip_to_held(d, pos, env);
            }
        }
        if let Some((tx, rx)) = finals {
            for (d, fin) in [(Direction::Egress, tx), (Direction::Ingress, rx)] {
                if let Some(missing) = self.streams[d].skip_to_end(fin) {
                    self.gap(d, missing, ts, env);
                }
            }
        }
        // a switch while ending (an upgrade paired only now): the new
        // session ends too
        for _ in 0..4 {
            let before = self.handovers;
            self.with_session(env, |s, cx| s.end(reason, cx));
            if self.handovers == before {
                break;
            }
        }
        if self.records == 0 {
            if let Some(Some(b)) = self.blind {
                b.count(env.stats);
            }
        }
    }

    pub fn compact(&mut self) {
        if let Some(s) = self.session.as_deref_mut() {
            s.compact();
        }
    }

    /// Bytes buffered by the session plus events held out of order.
    pub fn buffered_bytes(&self) -> usize {
        BOTH.iter()
            .map(|&d| self.streams[d].held_bytes() + self.session_buffered(d))
            .sum()
    }

    /// Bytes direction `d`'s session has buffered.
    pub fn session_buffered(&self, d: Direction) -> usize {
        self.session.as_deref().map_or(0, |s| s.buffered(d))
    }

    /// Events of direction `d` held waiting for missing positions.
    #[cfg(test)]
    pub fn held_events(&self, d: Direction) -> usize {
        self.streams[d].held_events()
    }
}
