// SPDX-License-Identifier: GPL-3.0-or-later
//! The writer of [`super`]'s lines: bytes into the output `Vec` with its
//! pointer, length and capacity held as locals, and the escape check of
//! string values.

use crate::record::IsoTime;

/// `b` holds a byte JSON must escape ('"', '\\', a control below 0x20),
/// what serde_json escapes. Eight bytes at a time: a byte below 0x20 or
/// equal to '"' or '\\' sets the high bit of its lane below (bytes of 0x80
/// and up cannot: `& !x`); a borrow between lanes starts only at such a
/// byte, so the answer is exact.
#[inline(always)]
pub(super) fn needs_escape(b: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    fn lanes(x: u64) -> u64 {
        let q = x ^ (LO * b'"' as u64);
        let bs = x ^ (LO * b'\\' as u64);
        (x.wrapping_sub(LO * 0x20) | q.wrapping_sub(LO) & !q | bs.wrapping_sub(LO) & !bs) & !x & HI
    }
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
    let half = |c: &[u8]| u32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as u64;
    let n = b.len();
    if n < 8 {
        // a short one in one word: two overlapping halves, or its first,
        // middle and last byte over bytes that need nothing
        let x = match n {
            0 => return false,
            1..=3 => {
                (LO * b'a' as u64) & !0xff_ffff
                    | b[0] as u64
                    | (b[n / 2] as u64) << 8
                    | (b[n - 1] as u64) << 16
            }
            _ => half(&b[..4]) | half(&b[n - 4..]) << 32,
        };
        return lanes(x) != 0;
    }
    let mut chunks = b.chunks_exact(8);
    let mut acc = 0;
    for c in &mut chunks {
        acc |= lanes(word(c));
    }
    // the tail: the last eight bytes, overlapping the words before
    acc | lanes(word(&b[n - 8..])) != 0
}

/// The line's writer. The output's pointer, length and capacity are
/// locals (registers, once inlined) rather than read and written through
/// the `Vec` at every write; the `Vec`'s length is set by [`W::done`] (and
/// before anything else writes to it). Short copies are word moves, not
/// `memcpy` calls.
pub(super) struct W<'a, const COMPACT: bool> {
    out: &'a mut Vec<u8>,
    ptr: *mut u8,
    /// Bytes in the output so far.
    pub(super) len: usize,
    cap: usize,
}

/// `out` with room for `n` more bytes past `len` (its length set to `len`
/// first): its new pointer and capacity.
#[cold]
#[inline(never)]
fn grow(out: &mut Vec<u8>, len: usize, n: usize) -> (*mut u8, usize) {
    // SAFETY: the bytes up to `len` were written by `W`, within capacity
    unsafe { out.set_len(len) };
    out.reserve(n);
    (out.as_mut_ptr(), out.capacity())
}

/// `s` escaped by serde_json after the first `len` bytes of `out`: the
/// new pointer, length and capacity.
#[cold]
#[inline(never)]
fn escaped(out: &mut Vec<u8>, len: usize, s: &str) -> (*mut u8, usize, usize) {
    // SAFETY: as in `grow`
    unsafe { out.set_len(len) };
    // a &str always serialises; Vec<u8> as a writer cannot fail
    let _ = serde_json::to_writer(&mut *out, s);
    (out.as_mut_ptr(), out.len(), out.capacity())
}

/// Copy `src` to `dst` (room for `src.len()` bytes): up to 32 bytes as
/// overlapping word moves.
///
/// # Safety
/// `dst` is valid for `src.len()` bytes of writes and does not overlap `src`.
#[inline(always)]
unsafe fn copy_short(src: &[u8], dst: *mut u8) {
    use std::ptr::{read_unaligned as rd, write_unaligned as wr};
    let n = src.len();
    let s = src.as_ptr();
    // SAFETY (each arm): every offset read is below n, in `src`; every
    // one written below n, in `dst`
    unsafe {
        match n {
            0 => {}
            1..=3 => {
                *dst = *s;
                *dst.add(n / 2) = *s.add(n / 2);
                *dst.add(n - 1) = *s.add(n - 1);
            }
            4..=7 => {
                let (a, b) = (rd(s.cast::<u32>()), rd(s.add(n - 4).cast::<u32>()));
                wr(dst.cast::<u32>(), a);
                wr(dst.add(n - 4).cast::<u32>(), b);
            }
            8..=16 => {
                let (a, b) = (rd(s.cast::<u64>()), rd(s.add(n - 8).cast::<u64>()));
                wr(dst.cast::<u64>(), a);
                wr(dst.add(n - 8).cast::<u64>(), b);
            }
            17..=32 => {
                let (a, b) = (rd(s.cast::<u128>()), rd(s.add(n - 16).cast::<u128>()));
                wr(dst.cast::<u128>(), a);
                wr(dst.add(n - 16).cast::<u128>(), b);
            }
            _ => std::ptr::copy_nonoverlapping(s, dst, n),
        }
    }
}

impl<'a, const COMPACT: bool> W<'a, COMPACT> {
    pub(super) fn new(out: &'a mut Vec<u8>) -> Self {
        let (ptr, len, cap) = (out.as_mut_ptr(), out.len(), out.capacity());
        W { out, ptr, len, cap }
    }

    /// The line is written: the `Vec` holds it.
    pub(super) fn done(self) {
        debug_assert!(self.len <= self.cap);
        // SAFETY: every byte up to `len` was written, within capacity
        unsafe { self.out.set_len(self.len) };
    }

    /// Null fields are left out.
    pub(super) fn compact(&self) -> bool {
        COMPACT
    }

    #[inline(always)]
    fn room(&mut self, n: usize) {
        if self.cap - self.len < n {
            (self.ptr, self.cap) = grow(self.out, self.len, n);
        }
    }

    #[inline(always)]
    pub(super) fn raw(&mut self, b: &[u8]) {
        self.room(b.len());
        // SAFETY: room for b.len() bytes past len
        unsafe { copy_short(b, self.ptr.add(self.len)) };
        self.len += b.len();
    }

    #[inline(always)]
    pub(super) fn str(&mut self, s: &str) {
        if needs_escape(s.as_bytes()) {
            (self.ptr, self.len, self.cap) = escaped(self.out, self.len, s);
        } else {
            self.quoted(s.as_bytes());
        }
    }

    /// `"s"` without looking for bytes to escape: the names Osprey itself
    /// gives (`type`, `protocol`, `role`, ...), never anything it captured.
    pub(super) fn lit(&mut self, s: &'static str) {
        debug_assert!(!needs_escape(s.as_bytes()), "{s:?}");
        self.quoted(s.as_bytes());
    }

    #[inline(always)]
    pub(super) fn quoted(&mut self, b: &[u8]) {
        self.room(b.len() + 2);
        // SAFETY: room for b.len() + 2 bytes past len
        unsafe {
            let at = self.ptr.add(self.len);
            *at = b'"';
            copy_short(b, at.add(1));
            *at.add(b.len() + 1) = b'"';
        }
        self.len += b.len() + 2;
    }

    #[inline(always)]
    pub(super) fn int<I: itoa::Integer>(&mut self, v: I) {
        self.raw(itoa::Buffer::new().format(v).as_bytes());
    }

    pub(super) fn time(&mut self, t: IsoTime) {
        // digits, '-', ':', '.', 'T' and 'Z' only: nothing to escape
        const N: usize = crate::clock::ISO_LEN;
        let mut b = [0u8; N];
        let mut q = [b'"'; N + 2];
        q[1..N + 1].copy_from_slice(crate::clock::format_iso8601_bytes(t.0, &mut b));
        self.raw(&q);
    }

    pub(super) fn headers(&mut self, h: &[(String, String)]) {
        self.raw(b"[");
        for (i, (k, v)) in h.iter().enumerate() {
            if i > 0 {
                self.raw(b",");
            }
            self.raw(b"[");
            self.str(k);
            self.raw(b",");
            self.str(v);
            self.raw(b"]");
        }
        self.raw(b"]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_every_length_as_itoa_writes_them() {
        let mut vs: Vec<u64> = vec![0, u64::MAX];
        let mut p = 1u64;
        while let Some(q) = p.checked_mul(10) {
            vs.extend([p - 1, p, p + 1, q - 1]);
            p = q;
        }
        for v in vs {
            let mut out = b"x".to_vec();
            let mut w = W::<false>::new(&mut out);
            w.int(v);
            w.done();
            assert_eq!(&out[1..], itoa::Buffer::new().format(v).as_bytes());
            let i = v as i64;
            let mut out = Vec::new();
            let mut w = W::<false>::new(&mut out);
            w.int(i);
            w.done();
            assert_eq!(out, itoa::Buffer::new().format(i).as_bytes());
        }
        let mut out = Vec::new();
        let mut w = W::<false>::new(&mut out);
        w.int(i64::MIN);
        w.done();
        assert_eq!(out, i64::MIN.to_string().as_bytes());
    }

    /// Raw writes of every length up to past the word moves, into a
    /// buffer that grows under them, keep every byte.
    #[test]
    fn raw_writes_of_every_length() {
        let src: Vec<u8> = (0..80u8).collect();
        let mut want = b"x".to_vec();
        let mut out = b"x".to_vec();
        let mut w = W::<false>::new(&mut out);
        for n in 0..80 {
            w.raw(&src[..n]);
            w.quoted(&src[80 - n..]);
            want.extend_from_slice(&src[..n]);
            want.push(b'"');
            want.extend_from_slice(&src[80 - n..]);
            want.push(b'"');
        }
        w.done();
        assert_eq!(out, want);
    }

    #[test]
    fn needs_escape_is_exact_for_every_byte_at_every_lane() {
        for len in [1usize, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'a'; len];
                    v[at] = b;
                    let want = b < 0x20 || b == b'"' || b == b'\\';
                    assert_eq!(needs_escape(&v), want, "byte {b:#x} at {at} of {len}");
                    // next to bytes of 0x80 and up (UTF-8), and to 0x7f
                    v.iter_mut().filter(|x| **x == b'a').for_each(|x| *x = 0xff);
                    assert_eq!(
                        needs_escape(&v),
                        want,
                        "byte {b:#x} at {at} of {len}, 0xff around"
                    );
                    v.iter_mut().filter(|x| **x == 0xff).for_each(|x| *x = 0x20);
                    assert_eq!(
                        needs_escape(&v),
                        want,
                        "byte {b:#x} at {at} of {len}, 0x20 around"
                    );
                }
            }
        }
        assert!(!needs_escape(b""));
    }
}
