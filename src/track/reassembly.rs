// SPDX-License-Identifier: GPL-3.0-or-later
//! One direction of a connection as an ordered byte stream. Events carry
//! the stream position of their first byte; this puts them in order,
//! holds the ones that arrive early (two threads of one process can write
//! records out of order) in a small window, drops duplicates, and says
//! exactly which bytes are missing when a hole is given up on. It knows
//! nothing of what the bytes mean.

use std::collections::BTreeMap;

use super::{TrackerConfig, TrackerStats};
use crate::protocol::Stamp;

/// An event that arrived ahead of a missing position.
struct Held {
    orig_len: u32,
    payload: Vec<u8>,
    stamp: Stamp,
    fault: bool,
}

/// What became of an arriving event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Every byte of it was seen already.
    Duplicate,
    /// It starts past the next expected position: held.
    Held,
    /// It starts at or before the next expected position.
    InOrder,
}

/// What an in-order event adds: captured bytes `[from, cap_end)` and, up to
/// `end`, bytes that moved without being captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advance {
    pub from: u64,
    pub cap_end: u64,
    pub end: u64,
}

/// A held event released in order.
pub struct Released {
    pub pos: u64,
    pub orig_len: u32,
    pub payload: Vec<u8>,
    pub stamp: Stamp,
    /// The record was flagged `F_READ_FAULT`.
    pub fault: bool,
}

#[derive(Default)]
pub struct Reassembly {
    started: bool,
    next_pos: u64,
    held: BTreeMap<u64, Held>,
    held_bytes: usize,
}

impl Reassembly {
    pub fn started(&self) -> bool {
        self.started
    }

    /// The position just past the last byte accounted for.
    pub fn next_pos(&self) -> u64 {
        self.next_pos
    }

    pub fn holds(&self) -> bool {
        !self.held.is_empty()
    }

    pub fn held_events(&self) -> usize {
        self.held.len()
    }

    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// The direction's first event, at `pos`: with `known_start` the stream
    /// starts at 0 (bytes before `pos` were lost), else at `pos`.
    pub fn start(&mut self, pos: u64, known_start: bool) {
        self.started = true;
        self.next_pos = if known_start { 0 } else { pos };
    }

    /// Sort an arriving event: a duplicate, held for later, or in order.
    /// `fault`: its record was flagged `F_READ_FAULT` (kept with it).
    #[inline]
    pub fn arrive(
        &mut self,
        pos: u64,
        orig_len: u32,
        payload: &[u8],
        stamp: Stamp,
        fault: bool,
        stats: &mut TrackerStats,
    ) -> Arrival {
        let end = pos.saturating_add(orig_len as u64);
        if pos < self.next_pos && end <= self.next_pos {
            if orig_len > 0 {
                stats.duplicate_events += 1;
            }
            return Arrival::Duplicate;
        }
        if pos <= self.next_pos {
            return Arrival::InOrder;
        }
        self.hold(pos, orig_len, payload, stamp, fault, stats)
    }

    /// [`Reassembly::arrive`]'s event ahead of a missing position: held.
    fn hold(
        &mut self,
        pos: u64,
        orig_len: u32,
        payload: &[u8],
        stamp: Stamp,
        fault: bool,
        stats: &mut TrackerStats,
    ) -> Arrival {
        stats.reordered_events += 1;
        let keep = self.held.get(&pos).is_none_or(|h| h.orig_len < orig_len);
        if keep {
            let h = Held {
                orig_len,
                payload: payload.to_vec(),
                stamp,
                fault,
            };
            if let Some(old) = self.held.insert(pos, h) {
                self.held_bytes -= old.payload.len();
            }
            self.held_bytes += payload.len();
        } else {
            stats.duplicate_events += 1;
        }
        Arrival::Held
    }

    /// Account for an in-order event of `orig_len` bytes at `pos` of which
    /// `captured` were copied; `None` when it adds nothing new.
    pub fn advance(
        &mut self,
        pos: u64,
        orig_len: u32,
        captured: usize,
        stats: &mut TrackerStats,
    ) -> Option<Advance> {
        let end = pos.saturating_add(orig_len as u64);
        if end <= self.next_pos {
            if orig_len > 0 {
                stats.duplicate_events += 1;
            }
            return None;
        }
        let cap_end = pos.saturating_add((captured as u64).min(orig_len as u64));
        let from = pos.max(self.next_pos);
        self.next_pos = end;
        Some(Advance { from, cap_end, end })
    }

    /// The first held event that is now in order.
    pub fn release(&mut self) -> Option<Released> {
        let (&pos, _) = self
            .held
            .iter()
            .next()
            .filter(|(&k, _)| k <= self.next_pos)?;
        let h = self.held.remove(&pos)?;
        self.held_bytes -= h.payload.len();
        Some(Released {
            pos,
            orig_len: h.orig_len,
            payload: h.payload,
            stamp: h.stamp,
            fault: h.fault,
        })
    }

    /// The position of the first held event once waiting for the bytes
    /// before it must stop: the window or its bytes overflow, or it was
    /// held longer than the reorder timeout by `now`.
    pub fn overdue(&self, cfg: &TrackerConfig, now: u64) -> Option<u64> {
        let (&pos, first) = self.held.iter().next()?;
        let give_up = self.held.len() > cfg.reorder_window
            || self.held_bytes > cfg.max_buf_bytes
            || now.saturating_sub(first.stamp.ts) > cfg.reorder_timeout_ns;
        give_up.then_some(pos)
    }

    /// The first held event's position if any.
    pub fn first_held(&self) -> Option<u64> {
        self.held.keys().next().copied()
    }

    /// Give up on the bytes before the held event at `pos`: returns how
    /// many are missing and when that event moved.
    pub fn skip_to_held(&mut self, pos: u64) -> Option<(u64, u64)> {
        let ts = self.held.get(&pos)?.stamp.ts;
        let missing = pos.saturating_sub(self.next_pos);
        self.next_pos = self.next_pos.max(pos);
        Some((missing, ts))
    }

    /// The stream is known to end at `fin` (the close record's final
    /// position): returns how many bytes are missing before it.
    pub fn skip_to_end(&mut self, fin: u64) -> Option<u64> {
        if !self.started || fin <= self.next_pos {
            return None;
        }
        let missing = fin - self.next_pos;
        self.next_pos = fin;
        Some(missing)
    }

    pub fn drop_held(&mut self) {
        self.held.clear();
        self.held_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(ts: u64) -> Stamp {
        Stamp {
            ts,
            start_ns: 0,
            tid: 1,
        }
    }

    #[test]
    fn in_order_duplicate_and_held() {
        let mut s = TrackerStats::default();
        let mut r = Reassembly::default();
        r.start(0, true);
        assert_eq!(
            r.arrive(0, 10, b"0123456789", st(1), false, &mut s),
            Arrival::InOrder
        );
        assert_eq!(
            r.advance(0, 10, 10, &mut s),
            Some(Advance {
                from: 0,
                cap_end: 10,
                end: 10
            })
        );
        assert_eq!(
            r.arrive(0, 10, b"0123456789", st(2), false, &mut s),
            Arrival::Duplicate
        );
        assert_eq!(s.duplicate_events, 1);
        assert_eq!(
            r.arrive(20, 5, b"abcde", st(3), false, &mut s),
            Arrival::Held
        );
        assert_eq!(s.reordered_events, 1);
        assert!(r.holds());
        assert_eq!(r.held_bytes(), 5);
        assert!(r.release().is_none());
        // overlapping in-order event: only the new bytes count
        assert_eq!(
            r.advance(5, 15, 15, &mut s),
            Some(Advance {
                from: 10,
                cap_end: 20,
                end: 20
            })
        );
        let h = r.release().expect("now in order");
        assert_eq!((h.pos, h.orig_len, &h.payload[..]), (20, 5, &b"abcde"[..]));
        assert!(!r.holds());
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn truncated_capture_is_exact() {
        let mut s = TrackerStats::default();
        let mut r = Reassembly::default();
        r.start(100, false);
        assert_eq!(r.next_pos(), 100);
        assert_eq!(
            r.advance(100, 5000, 4096, &mut s),
            Some(Advance {
                from: 100,
                cap_end: 4196,
                end: 5100
            })
        );
    }

    #[test]
    fn overdue_by_window_and_time_then_skip() {
        let cfg = TrackerConfig {
            reorder_window: 2,
            reorder_timeout_ns: 100,
            ..TrackerConfig::default()
        };
        let mut s = TrackerStats::default();
        let mut r = Reassembly::default();
        r.start(0, true);
        r.arrive(10, 1, b"a", st(1000), false, &mut s);
        r.arrive(20, 1, b"b", st(1000), false, &mut s);
        assert_eq!(r.overdue(&cfg, 1050), None);
        assert_eq!(r.overdue(&cfg, 1101), Some(10));
        r.arrive(30, 1, b"c", st(1000), false, &mut s);
        assert_eq!(r.overdue(&cfg, 1000), Some(10), "window of 2 overflowed");
        assert_eq!(r.skip_to_held(10), Some((10, 1000)));
        assert_eq!(r.next_pos(), 10);
        assert_eq!(r.release().map(|h| h.pos), Some(10));
        assert_eq!(r.skip_to_end(40), Some(30));
        assert_eq!(r.skip_to_end(40), None);
        r.drop_held();
        assert!(!r.holds());
    }
}
