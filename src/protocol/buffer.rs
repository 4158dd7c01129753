// SPDX-License-Identifier: GPL-3.0-or-later
//! A direction's bytes waiting to be framed, for any protocol: the bytes
//! themselves, their stream position, and which event each came in (so a
//! message knows when its first and last bytes moved and by which thread).

use std::collections::VecDeque;

use super::Stamp;

/// Unconsumed bytes. Consuming from the front only moves an offset (a head
/// consumed in front of a 4 KiB body used to move the body); the bytes are
/// moved down when the consumed part is most of the allocation, and
/// dropped for free when everything is consumed.
#[derive(Debug, Default)]
pub struct StreamBuf {
    data: Vec<u8>,
    off: usize,
}

impl StreamBuf {
    pub fn extend_from_slice(&mut self, b: &[u8]) {
        if self.off > 0 && self.off >= self.data.len() / 2 {
            self.data.drain(..self.off);
            self.off = 0;
        }
        self.data.extend_from_slice(b);
    }

    /// Drop the first `n` unconsumed bytes (`n <= len()`).
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.off += n.min(self.len());
        if self.off == self.data.len() {
            self.clear();
        }
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.off = 0;
    }

    pub fn capacity(&self) -> usize {
        self.data.capacity()
    }
}

impl std::ops::Deref for StreamBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data[self.off..]
    }
}

/// The bytes of one event, up to stream position `end`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub end: u64,
    pub stamp: Stamp,
}

/// Buffered bytes with their position and provenance.
#[derive(Debug, Default)]
pub struct Buffered {
    pub buf: StreamBuf,
    /// The stream position of `buf[0]`.
    pub pos: u64,
    spans: VecDeque<Span>,
}

impl Buffered {
    /// Append `b`, which ends at stream position `end` and came with `stamp`.
    pub fn push(&mut self, b: &[u8], end: u64, stamp: Stamp) {
        if self.buf.is_empty() {
            // the span of bytes already consumed (kept by `consume`), or of
            // the last bytes before a head parsed where it arrived: these
            // bytes are all that is buffered now
            self.spans.clear();
        }
        self.buf.extend_from_slice(b);
        self.spans.push_back(Span { end, stamp });
    }

    /// The stamp of the byte at `pos` (the last one known past the end).
    pub fn stamp_at(&self, pos: u64) -> Stamp {
        self.spans
            .iter()
            .find(|s| s.end > pos)
            .or(self.spans.back())
            .map(|s| s.stamp)
            .unwrap_or_default()
    }

    /// Consume `n` buffered bytes; returns the stamps of the first and last.
    pub fn consume(&mut self, n: usize) -> (Stamp, Stamp) {
        if self.spans.len() == 1 {
            // the bytes of one event (the common case): its stamp is both,
            // as `stamp_at` would find, and the span stays
            let s = self.spans[0].stamp;
            self.buf.consume(n);
            self.pos += n as u64;
            return (s, s);
        }
        let first = self.stamp_at(self.pos);
        let last = self.stamp_at(self.pos + n.max(1) as u64 - 1);
        self.buf.consume(n);
        self.pos += n as u64;
        while self.spans.len() > 1 && self.spans.front().is_some_and(|s| s.end <= self.pos) {
            self.spans.pop_front();
        }
        (first, last)
    }

    /// Throw away all buffered bytes, the stream going on at `next_pos`;
    /// returns how many.
    pub fn drop_all(&mut self, next_pos: u64) -> u64 {
        let n = self.buf.len() as u64;
        self.buf.clear();
        self.pos = next_pos;
        self.spans.clear();
        self.release_idle();
        n
    }

    /// An idle keep-alive connection should not pin the capacity of its
    /// largest message: with thousands of connections open that is most
    /// of the memory. Empty buffers give their allocation back.
    pub fn release_idle(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 512 {
            self.buf = StreamBuf::default();
        }
        if self.spans.is_empty() && self.spans.capacity() > 8 {
            self.spans = VecDeque::new();
        }
    }

    /// The buffered bytes as the events they came in: (bytes, stream
    /// position, stamp), in order.
    pub fn pieces(&self) -> Vec<(Vec<u8>, u64, super::Stamp)> {
        let mut out = Vec::new();
        let mut at = self.pos;
        let end = self.pos + self.buf.len() as u64;
        for s in &self.spans {
            let e = s.end.min(end);
            if e > at {
                let (a, b) = ((at - self.pos) as usize, (e - self.pos) as usize);
                out.push((self.buf[a..b].to_vec(), at, s.stamp));
                at = e;
            }
        }
        if at < end {
            // bytes past the last span (none, as pushed): the last stamp
            let st = self.stamp_at(at);
            out.push((self.buf[(at - self.pos) as usize..].to_vec(), at, st));
        }
        out
    }

    /// The stream goes on at `pos` with nothing buffered.
    pub fn reset_at(&mut self, pos: u64) {
        self.pos = pos;
        self.spans.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ts: u64) -> Stamp {
        Stamp {
            ts,
            ..Stamp::default()
        }
    }

    /// Spans describe the buffered bytes only: one consumed to the end is
    /// not kept past the next push (a head parsed where it arrived moves
    /// the position without a push), and stamps come from the right event.
    #[test]
    fn spans_of_consumed_bytes_do_not_outlive_them() {
        let mut b = Buffered::default();
        b.push(b"abc", 3, stamp(1));
        b.consume(3);
        // bytes 3..10 parsed elsewhere, never pushed
        b.pos = 10;
        b.push(b"de", 12, stamp(2));
        assert_eq!(b.spans.len(), 1);
        assert_eq!(b.stamp_at(10).ts, 2);
        b.push(b"f", 13, stamp(3));
        assert_eq!(b.consume(3).0.ts, 2);
        assert_eq!(b.spans.len(), 1);
        assert_eq!(b.pieces().len(), 0);
        b.push(b"g", 14, stamp(4));
        assert_eq!(b.pieces(), vec![(b"g".to_vec(), 13, stamp(4))]);
    }
}
