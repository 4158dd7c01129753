// SPDX-License-Identifier: GPL-3.0-or-later
//! Connection tracker: the connection table (a bounded LRU), each
//! connection's two directions reassembled in stream order, and the
//! protocol session (`crate::protocol`) that turns their bytes into
//! [`Record`]s. Nothing here knows any protocol.
//!
//! Never invents data: when bytes are missing (ring-buffer drops, capture
//! truncation, attaching mid-stream) the session is told exactly which and
//! how many. Memory is bounded per direction, per connection and in the
//! number of connections. A session that panics loses its connection's
//! state, is counted (`parser_panics`) and the tracker goes on.

mod conn;
pub mod lru;
pub mod reassembly;

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::Serialize;

use crate::event::{ConnId, Event, Role};
use crate::protocol::{ConnInfo, EndReason, Protocol, BOTH, REGISTRY};
use crate::record::{Record, Source};
use conn::{Conn, Env};
use lru::Lru;

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
    /// What to redact: header values (with `headers`) and query
    /// parameter values in targets.
    pub redact: crate::redact::Redact,
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
    /// Where to say that bytes still to come are a body of known length
    /// (the probe's `skips` map; None: nowhere, e.g. `osprey wire`).
    pub body_skip: Option<std::sync::Arc<crate::skip::SkipHints>>,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            idle_timeout_ns: 60_000_000_000,
            max_conns: 16_384,
            max_buf_bytes: 256 * 1024,
            max_pending: 64,
            headers: false,
            redact: crate::redact::Redact::default(),
            emit_transactions: true,
            emit_messages: false,
            realtime_offset_ns: 0,
            reorder_window: 16,
            reorder_timeout_ns: 100_000_000,
            source: Source::Ebpf,
            body_skip: None,
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
    /// Bodies of known length the kernel was told to count, not copy
    /// (`crate::skip`).
    pub body_skips: u64,
    /// Heads or bodies that failed to parse.
    pub unparseable: u64,
    pub unanswered_requests: u64,
    /// Requests whose head or body was not complete when their connection
    /// ended (each gives a record with `incomplete`).
    pub incomplete_requests: u64,
    pub orphan_responses: u64,
    /// Events that arrived ahead of a missing position and were held.
    pub reordered_events: u64,
    pub duplicate_events: u64,
    pub upgrades: u64,
    /// Of `upgrades`, HTTP/1.1 connections that switched to HTTP/2
    /// (`Upgrade: h2c`, answered 101): parsed as HTTP/2 from then on.
    #[serde(skip_serializing_if = "is_zero")]
    pub h2c_upgrades: u64,
    /// Queued requests/responses dropped by the `max_pending` cap.
    pub pending_overflow: u64,
    /// Protocol sessions that panicked; their connection's state was dropped.
    pub parser_panics: u64,
    /// Connections that carried traffic and ended without a record, by
    /// what their first bytes were ([`crate::protocol::Blind`]): TLS, a
    /// protocol nothing recognised.
    pub blind_tls: u64,
    pub blind_unknown: u64,
    // HTTP/2's counters are written only when not zero (HTTP/1.x-only
    // summaries stay as they were).
    /// HTTP/2 streams given up on at the per-connection cap (emitted early).
    #[serde(skip_serializing_if = "is_zero")]
    pub h2_streams_over_cap: u64,
    /// HTTP/2 frames of a stream after its RST_STREAM (a response that
    /// crossed a client's cancel): ignored, the stream's record is out.
    #[serde(skip_serializing_if = "is_zero")]
    pub h2_frames_after_reset: u64,
    /// HTTP/2 header blocks HPACK could not decode (the table is unknown
    /// afterwards), or lost (bytes missing inside them).
    #[serde(skip_serializing_if = "is_zero")]
    pub hpack_errors: u64,
    /// Header fields absent because they referenced HPACK dynamic-table
    /// entries from before the probe joined (or lost with a block).
    #[serde(skip_serializing_if = "is_zero")]
    pub hpack_unknown_fields: u64,
    /// Header fields past the header list cap (HPACK bombs): decoded, not kept.
    #[serde(skip_serializing_if = "is_zero")]
    pub header_fields_over_cap: u64,
    /// Connections whose TLS plaintext was captured at the library: their
    /// records come from it.
    #[serde(skip_serializing_if = "is_zero")]
    pub tls_conns: u64,
    /// Ciphertext data events (and their bytes) of those connections:
    /// counted, not parsed.
    #[serde(skip_serializing_if = "is_zero")]
    pub tls_ciphertext_events: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub tls_ciphertext_bytes: u64,
    /// Records emitted with `gap`, per cause named in their `gap_cause`
    /// (a record with two causes counts in both).
    pub gap_ring_buffer_drop: u64,
    pub gap_capture_cap: u64,
    pub gap_midstream: u64,
    pub gap_buffer_cap: u64,
    pub gap_unparseable: u64,
    pub gap_incomplete: u64,
    pub gap_packets_missing: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub gap_not_seen: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub gap_read_fault: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TrackerStats {
    /// One more record naming the causes `causes` (each counted once).
    pub fn count_gap_causes(&mut self, causes: crate::record::GapCauses) {
        use crate::record::GapCauses as G;
        for (c, _) in G::NAMES {
            if !causes.contains(c) {
                continue;
            }
            *match c {
                G::RING_BUFFER_DROP => &mut self.gap_ring_buffer_drop,
                G::CAPTURE_CAP => &mut self.gap_capture_cap,
                G::MIDSTREAM => &mut self.gap_midstream,
                G::BUFFER_CAP => &mut self.gap_buffer_cap,
                G::UNPARSEABLE => &mut self.gap_unparseable,
                G::INCOMPLETE => &mut self.gap_incomplete,
                G::PACKETS_MISSING => &mut self.gap_packets_missing,
                G::NOT_SEEN => &mut self.gap_not_seen,
                G::READ_FAULT => &mut self.gap_read_fault,
                _ => continue,
            } += 1;
        }
    }
}

// ---------------------------------------------------------------------------

/// Above this many tracked connections an idle connection gives its
/// buffers back after every event (memory first); below it, once a tick
/// (fewer allocations per request). At or below it, too, a connection's
/// records share a memo of its connection fields for the JSON writer
/// (`ConnInfo::set_memo`); above it none is made and a connection's is
/// dropped at its next event or tick, so that at most this many are held.
pub(crate) const COMPACT_EAGER_CONNS: usize = 1024;

/// The connection tracker.
pub struct Tracker {
    cfg: TrackerConfig,
    // boxed: the table's slab stays small and a full table's memory goes
    // back with each connection
    conns: Lru<ConnId, Box<Conn>>,
    stats: TrackerStats,
    registry: &'static [&'static dyn Protocol],
}

/// Run `f`, containing a panic unless fuzzing (a fuzzer must see it).
fn contained(f: impl FnOnce()) -> bool {
    if cfg!(fuzzing) {
        f();
        return true;
    }
    catch_unwind(AssertUnwindSafe(f)).is_ok()
}

impl Tracker {
    pub fn new(cfg: TrackerConfig) -> Tracker {
        Tracker::with_protocols(cfg, REGISTRY)
    }

    /// A tracker parsing only `registry`'s protocols.
    pub fn with_protocols(
        cfg: TrackerConfig,
        registry: &'static [&'static dyn Protocol],
    ) -> Tracker {
        Tracker {
            cfg,
            conns: Lru::default(),
            stats: TrackerStats::default(),
            registry,
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
        let id = e.conn;
        let slot = match self.conns.touch_slot(&id) {
            Some(i) => Some(i),
            None => {
                self.make_room(out);
                let info = ConnInfo::new(id, Role::Unknown, None, e.proc.clone());
                self.conns.insert(id, Box::new(Conn::new(info, false)));
                self.stats.conns_seen += 1;
                self.conns.touch_slot(&id)
            }
        };
        let eager = self.conns.len() > COMPACT_EAGER_CONNS;
        let Some(c) = slot.and_then(|i| self.conns.slot_mut(i)) else {
            return;
        };
        let mut env = Env {
            cfg: &self.cfg,
            stats: &mut self.stats,
            out,
            registry: self.registry,
        };
        c.info.set_memo(!eager);
        let ok = contained(|| {
            c.on_data(e, payload, &mut env);
            if eager {
                c.compact();
            }
        });
        if !ok {
            self.drop_panicked(&id);
        }
    }

    /// A session panicked: its connection's state is gone, counted.
    fn drop_panicked(&mut self, id: &ConnId) {
        self.conns.remove(id);
        self.stats.parser_panics += 1;
    }

    fn on_open(&mut self, o: &crate::event::ConnOpen, out: &mut Vec<Record>) {
        self.stats.events += 1;
        if let Some(c) = self.conns.touch(&o.conn) {
            if c.info.role == Role::Unknown {
                c.info.role = o.role;
            }
            if c.info.addrs.is_none() {
                c.info.set_addrs(o.addrs);
            }
            if let Some(i) = &o.identity {
                c.info.ident = i.clone();
            }
            c.last_ts = c.last_ts.max(o.ts_ns);
            return;
        }
        self.make_room(out);
        let mut info = ConnInfo::new(o.conn, o.role, o.addrs, o.proc.clone());
        if let Some(i) = &o.identity {
            info.ident = i.clone();
        }
        let mut c = Conn::new(info, !o.midstream);
        c.last_ts = o.ts_ns;
        self.conns.insert(o.conn, Box::new(c));
        self.stats.conns_seen += 1;
    }

    fn on_close(&mut self, cl: &crate::event::CloseEvent, out: &mut Vec<Record>) {
        self.stats.events += 1;
        if let Some(c) = self.conns.remove(&cl.conn) {
            // the close record's positions are the socket's: a TLS
            // connection's records come from the plaintext stream
            let finals = (c.info.tls.is_none()).then_some((cl.tx_bytes, cl.rx_bytes));
            self.end(c, EndReason::Close, cl.ts_ns, finals, out);
            self.stats.conns_closed += 1;
        }
    }

    /// End a connection already taken out of the table.
    fn end(
        &mut self,
        mut c: Box<Conn>,
        reason: EndReason,
        ts: u64,
        finals: Option<(u64, u64)>,
        out: &mut Vec<Record>,
    ) {
        c.info.set_memo(self.conns.len() <= COMPACT_EAGER_CONNS);
        let mut env = Env {
            cfg: &self.cfg,
            stats: &mut self.stats,
            out,
            registry: self.registry,
        };
        if !contained(|| c.end(reason, ts, finals, &mut env)) {
            self.stats.parser_panics += 1;
        }
    }

    /// Evict the least recently used connections until one more fits.
    fn make_room(&mut self, out: &mut Vec<Record>) {
        while self.conns.len() >= self.cfg.max_conns.max(1) {
            let Some((_, c)) = self.conns.pop_lru() else {
                return;
            };
            let ts = c.last_ts;
            self.end(c, EndReason::Evict, ts, None, out);
            self.stats.conns_evicted += 1;
        }
    }

    /// Flush connections idle since before `now_mono_ns - idle_timeout_ns`,
    /// and give up on overdue reordered events.
    pub fn expire(&mut self, now_mono_ns: u64, out: &mut Vec<Record>) {
        // in connection id order, so that output does not depend on the
        // table's layout; the idle ones first
        let mut ids: Vec<ConnId> = self.conns.keys().copied().collect();
        ids.sort_unstable();
        let idle_timeout = self.cfg.idle_timeout_ns;
        let (idle, busy): (Vec<ConnId>, Vec<ConnId>) = ids.into_iter().partition(|id| {
            self.conns
                .get(id)
                .is_some_and(|c| now_mono_ns.saturating_sub(c.last_ts) >= idle_timeout)
        });
        for id in idle {
            if let Some(c) = self.conns.remove(&id) {
                self.end(c, EndReason::Expire, now_mono_ns, None, out);
                self.stats.conns_expired += 1;
            }
        }
        let eager = self.conns.len() > COMPACT_EAGER_CONNS;
        for id in busy {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            c.info.set_memo(!eager);
            let mut env = Env {
                cfg: &self.cfg,
                stats: &mut self.stats,
                out,
                registry: self.registry,
            };
            let ok = contained(|| {
                for d in BOTH {
                    c.give_up_overdue(d, now_mono_ns, &mut env);
                }
                c.settle(&mut env);
                // with few connections once a tick, not per event: a
                // keep-alive connection would free and re-allocate its
                // queues per request
                c.compact();
            });
            if !ok {
                self.drop_panicked(&id);
            }
        }
    }

    /// Flush every connection (end of input / shutdown), in id order.
    pub fn flush_all(&mut self, out: &mut Vec<Record>) {
        let mut conns: Vec<(ConnId, Box<Conn>)> = self.conns.drain().collect();
        conns.sort_unstable_by_key(|(id, _)| *id);
        for (_, c) in conns {
            let ts = c.last_ts;
            self.end(c, EndReason::Flush, ts, None, out);
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
        self.conns.values().map(|c| c.buffered_bytes()).sum()
    }
}

#[cfg(test)]
mod tests;
