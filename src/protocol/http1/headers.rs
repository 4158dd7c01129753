// SPDX-License-Identifier: GPL-3.0-or-later
//! The header fields of one head, and where the few fields Osprey itself
//! consults are (found once while the head is parsed, not by a scan of
//! every field per look-up).

/// The fields looked up for every message: framing (`content-length`,
/// `transfer-encoding`), records (`host`, `content-type`), upgrades.
const KNOWN: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "content-type",
    "upgrade",
];
pub(super) const HOST: usize = 0;
pub(super) const CONTENT_LENGTH: usize = 1;
pub(super) const TRANSFER_ENCODING: usize = 2;
pub(super) const CONTENT_TYPE: usize = 3;
pub(super) const UPGRADE: usize = 4;

/// The index in [`KNOWN`] of `name` (case-insensitive). Length, first and
/// last letter rule out almost every other name before the comparison.
#[inline(always)]
fn known(name: &[u8]) -> Option<usize> {
    let (first, last) = match name {
        [f, .., l] => (f | 0x20, l | 0x20),
        _ => return None,
    };
    let k = match (name.len(), first, last) {
        (4, b'h', b't') => HOST,
        (14, b'c', b'h') => CONTENT_LENGTH,
        (17, b't', b'g') => TRANSFER_ENCODING,
        (12, b'c', b'e') => CONTENT_TYPE,
        (7, b'u', b'e') => UPGRADE,
        _ => return None,
    };
    eq_lower(name, KNOWN[k].as_bytes()).then_some(k)
}

/// `name.eq_ignore_ascii_case(want)` for a `want` of lowercase letters and
/// '-' only, of 4 bytes or more, as long as `name`: words at a time (the
/// last one overlapping), a letter's case bit masked in `name`.
fn eq_lower(name: &[u8], want: &[u8]) -> bool {
    // 0x20 where `want` has a letter (0x40 set), not at '-'
    const CASE64: u64 = 0x4040_4040_4040_4040;
    const CASE32: u32 = 0x4040_4040;
    fn w64(b: &[u8], at: usize) -> u64 {
        b.get(at..at + 8)
            .and_then(|s| s.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    }
    fn w32(b: &[u8], at: usize) -> u32 {
        b.get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    }
    let n = want.len();
    if name.len() != n || n < 4 {
        return name.eq_ignore_ascii_case(want);
    }
    if n < 8 {
        // two words of four, overlapping
        return [0, n - 4].iter().all(|&at| {
            let x = w32(want, at);
            w32(name, at) | ((x & CASE32) >> 1) == x
        });
    }
    let mut at = 0;
    loop {
        let x = w64(want, at);
        if w64(name, at) | ((x & CASE64) >> 1) != x {
            return false;
        }
        if at + 8 == n {
            return true;
        }
        // the last word overlaps the one before
        at = (at + 8).min(n - 8);
    }
}

/// Header fields in wire order. Names keep their original case; look-ups are
/// case-insensitive; repeated fields are all kept.
///
/// One allocation holds the text of every field and, after it, the name
/// and value of each field as byte ranges into the text: parsing a head
/// costs one allocation, not two per field (nor one for the text and
/// another for the ranges).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// The text (`text_len` bytes of UTF-8), then per field [name start,
    /// name end, value start, value end] into it as four native-endian
    /// `u32`s.
    buf: Vec<u8>,
    text_len: u32,
    known: Known,
}

/// Where the [`KNOWN`] names are among a head's fields: noted by the
/// parser as it reads each name ([`Known::note`]), not by a second pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Known {
    /// Per [`KNOWN`] name: 1 + the index of its first field (0: none).
    first: [u16; KNOWN.len()],
    /// Bit k: the [`KNOWN`] name k has more than one field.
    repeated: u8,
}

impl Known {
    /// Field `i` is called `name`.
    #[inline(always)]
    pub(super) fn note(&mut self, name: &[u8], i: usize) {
        if let Some(k) = known(name) {
            if self.first[k] != 0 {
                self.repeated |= 1 << k;
            } else if let Ok(v) = u16::try_from(i + 1) {
                self.first[k] = v;
            } else {
                // past 65534 fields (built from pairs only): scan them all
                self.first[k] = 1;
                self.repeated |= 1 << k;
            }
        }
    }
}

/// Bytes of one field's ranges in [`Headers::buf`].
const RANGES: usize = 16;

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Headers {
    /// From (name, value) pairs (tests, synthetic input).
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> Headers {
        let mut text = String::new();
        let mut fields = Vec::with_capacity(pairs.len());
        for (n, v) in pairs {
            push(&mut text, &mut fields, n.as_ref(), v.as_ref());
        }
        let mut known = Known::default();
        for (i, f) in fields.iter().enumerate() {
            known.note(&text.as_bytes()[f[0] as usize..f[1] as usize], i);
        }
        Headers::assemble(&text, &fields, known)
    }

    /// `text` and the ranges of its fields in one allocation, with where
    /// the [`KNOWN`] names are among them.
    fn assemble(text: &str, fields: &[[u32; 4]], known: Known) -> Headers {
        let mut buf = spare::take(text.len() + fields.len() * RANGES);
        buf.extend_from_slice(text.as_bytes());
        // SAFETY: `[u32; 4]` is 16 bytes without padding: the fields are
        // `fields.len() * RANGES` initialised bytes, read as bytes once
        let ranges = unsafe {
            std::slice::from_raw_parts(fields.as_ptr().cast::<u8>(), fields.len() * RANGES)
        };
        buf.extend_from_slice(ranges);
        Headers {
            buf,
            text_len: text.len() as u32,
            known,
        }
    }

    /// From the raw header block and field ranges found in it, and where
    /// the parser found the [`KNOWN`] names (names are tokens, ASCII: a
    /// lossy conversion leaves them as they are). Valid UTF-8
    /// (the normal case) is kept as it is; otherwise each field is
    /// converted lossily. `ascii`: the parser saw that every byte of
    /// `block` is below 0x80 (so it is UTF-8 without a check here).
    pub(super) fn from_block(
        block: &[u8],
        fields: &[[u32; 4]],
        ascii: bool,
        known: Known,
    ) -> Headers {
        let text = if ascii {
            debug_assert!(block.is_ascii());
            // SAFETY: ASCII is UTF-8
            Ok(unsafe { std::str::from_utf8_unchecked(block) })
        } else {
            std::str::from_utf8(block)
        };
        match text {
            Ok(text) => Headers::assemble(text, fields, known),
            Err(_) => {
                let mut text = String::new();
                let mut lossy = Vec::with_capacity(fields.len());
                for &[a, b, c, d] in fields {
                    let n = String::from_utf8_lossy(&block[a as usize..b as usize]);
                    let v = String::from_utf8_lossy(&block[c as usize..d as usize]);
                    push(&mut text, &mut lossy, &n, &v);
                }
                Headers::assemble(&text, &lossy, known)
            }
        }
    }

    fn text(&self) -> &str {
        // SAFETY: the first `text_len` bytes of `buf` were copied from a
        // `str` (`assemble`) and are never changed
        unsafe { std::str::from_utf8_unchecked(self.buf.get_unchecked(..self.text_len as usize)) }
    }

    /// The ranges of field `i` (< `len()`).
    fn range(&self, i: usize) -> [u32; 4] {
        let at = self.text_len as usize + i * RANGES;
        let r = &self.buf[at..at + RANGES];
        let w = |k: usize| u32::from_ne_bytes([r[k], r[k + 1], r[k + 2], r[k + 3]]);
        [w(0), w(4), w(8), w(12)]
    }

    /// The ranges of the fields from the `from`th on, in wire order.
    fn fields(&self, from: usize) -> impl Iterator<Item = [u32; 4]> + '_ {
        (from..self.len()).map(|i| self.range(i))
    }

    pub fn len(&self) -> usize {
        (self.buf.len() - self.text_len as usize) / RANGES
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn name(&self, f: &[u32; 4]) -> &[u8] {
        &self.text().as_bytes()[f[0] as usize..f[1] as usize]
    }
    fn value(&self, f: &[u32; 4]) -> &str {
        &self.text()[f[2] as usize..f[3] as usize]
    }
    /// (name, value) pairs in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let text = self.text();
        self.fields(0)
            .map(move |[a, b, c, d]| (&text[a as usize..b as usize], &text[c as usize..d as usize]))
    }
    /// Owned (name, value) pairs, for output.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }
    /// First value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        let (from, most) = self.span(name);
        let f = self
            .fields(from)
            .take(most)
            .find(|f| self.name(f).eq_ignore_ascii_case(name.as_bytes()))?;
        Some(self.value(&f))
    }
    /// All values of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let (from, most) = self.span(name);
        self.fields(from)
            .filter(move |f| self.name(f).eq_ignore_ascii_case(name.as_bytes()))
            .take(most)
            .map(|f| self.value(&f))
    }
    /// Where the fields called `name` can be: (the first field to look
    /// at, how many of them match at most). A known name: from its first
    /// field, and only that one unless it is repeated; else all of them.
    fn span(&self, name: &str) -> (usize, usize) {
        match known(name.as_bytes()) {
            Some(k) => self.known_span(k),
            None => (0, usize::MAX),
        }
    }
    fn known_span(&self, k: usize) -> (usize, usize) {
        match self.known.first[k] {
            0 => (self.len(), 0),
            i if self.known.repeated & (1 << k) == 0 => (i as usize - 1, 1),
            i => (i as usize - 1, usize::MAX),
        }
    }
    /// [`Headers::get`] of the [`KNOWN`] name `k` (`HOST`, ...), with no
    /// name to compare: where it is was found while parsing.
    pub(super) fn get_known(&self, k: usize) -> Option<&str> {
        match self.known.first[k] {
            0 => None,
            i => {
                let [_, _, a, b] = self.range(i as usize - 1);
                Some(&self.text()[a as usize..b as usize])
            }
        }
    }
    /// The [`KNOWN`] name `k`'s value when it has at most one field
    /// (`Some(None)`: none), None when it is repeated.
    pub(super) fn get_single_known(&self, k: usize) -> Option<Option<&str>> {
        (self.known.repeated & (1 << k) == 0).then(|| self.get_known(k))
    }
    /// [`Headers::get_all`] of the [`KNOWN`] name `k`.
    pub(super) fn get_all_known(&self, k: usize) -> impl Iterator<Item = &str> + '_ {
        let (from, most) = self.known_span(k);
        let single = most == 1;
        self.fields(from)
            .filter(move |f| single || self.name(f).eq_ignore_ascii_case(KNOWN[k].as_bytes()))
            .take(most)
            .map(|f| self.value(&f))
    }
    /// True if any comma-separated element of any `name` field equals `token`
    /// (case-insensitive), e.g. `has_token("connection", "close")`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

impl Drop for Headers {
    /// The allocation goes back to [`spare`] for the next head.
    fn drop(&mut self) {
        spare::put(std::mem::take(&mut self.buf));
    }
}

/// The allocations of the last two [`Headers`] dropped on this thread,
/// for the next two heads parsed: a request's and its response's fields
/// are dropped when their record is made, and the next exchange's heads
/// take their allocations instead of a `malloc` and a `free` each. At
/// most two of at most [`spare::MAX`] bytes a thread; semantics are
/// those of a fresh `Vec`.
mod spare {
    use std::cell::Cell;

    /// The largest allocation kept (larger ones are freed).
    pub(super) const MAX: usize = 4096;

    thread_local! {
        static SLOTS: [Cell<Vec<u8>>; 2] = const { [Cell::new(Vec::new()), Cell::new(Vec::new())] };
    }

    /// The most a kept allocation may exceed the head it is given to by:
    /// a head can be held long (a request waiting for its response, on
    /// each of thousands of connections), and a small one should not pin
    /// a large head's allocation meanwhile.
    pub(super) fn fits(cap: usize, need: usize) -> bool {
        cap >= need && cap <= 2 * need + 256
    }

    /// An empty `Vec` of at least `need` bytes' capacity (a kept one only
    /// if it [`fits`]).
    pub(super) fn take(need: usize) -> Vec<u8> {
        if need == 0 {
            return Vec::new();
        }
        SLOTS
            .try_with(|slots| {
                for slot in slots {
                    let v = slot.take();
                    if fits(v.capacity(), need) {
                        return Some(v);
                    }
                    slot.set(v);
                }
                None
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| Vec::with_capacity(need))
    }

    /// Keep `v`'s allocation (the older of the two kept is freed).
    pub(super) fn put(mut v: Vec<u8>) {
        if v.capacity() == 0 || v.capacity() > MAX {
            return;
        }
        v.clear();
        // (on a thread being torn down `v` is just freed)
        let _ = SLOTS.try_with(|slots| {
            for slot in slots {
                v = slot.replace(v);
                if v.capacity() == 0 {
                    return;
                }
            }
        });
    }
}

/// One (name, value) field appended to `text`, its ranges to `fields`.
fn push(text: &mut String, fields: &mut Vec<[u32; 4]>, name: &str, value: &str) {
    let a = text.len() as u32;
    text.push_str(name);
    let b = text.len() as u32;
    text.push_str(value);
    let c = text.len() as u32;
    fields.push([a, b, b, c]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index agrees with a scan of every field, for known names and
    /// others, repeated or not, in any case, parsed or built from pairs.
    #[test]
    fn known_fields_found_as_a_scan_finds_them() {
        let pairs = [
            ("Host", "a"),
            ("X-Other", "1"),
            ("content-LENGTH", "5"),
            ("Upgrade", "h2c"),
            ("Content-Length", "5"),
            ("Transfer-Encoding", "gzip"),
            ("hosT", "b"),
            ("X-Other", "2"),
        ];
        let block: String = pairs.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        let parsed = match super::super::parser::parse_request(
            format!("GET / HTTP/1.1\r\n{block}\r\n").as_bytes(),
        ) {
            super::super::parser::Parse::Complete(h, _) => h.headers,
            p => panic!("{p:?}"),
        };
        for h in [Headers::from_pairs(&pairs), parsed] {
            for name in KNOWN
                .iter()
                .chain(&["x-other", "X-OTHER", "HOST", "accept", "hos"])
            {
                let scan: Vec<&str> = h
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
                    .collect();
                assert_eq!(h.get_all(name).collect::<Vec<_>>(), scan, "{name}");
                assert_eq!(h.get(name), scan.first().copied(), "{name}");
                if let Some(k) = KNOWN.iter().position(|n| n.eq_ignore_ascii_case(name)) {
                    assert_eq!(h.get_all_known(k).collect::<Vec<_>>(), scan, "{name}");
                    assert_eq!(h.get_known(k), scan.first().copied(), "{name}");
                    let single = (scan.len() <= 1).then(|| scan.first().copied());
                    assert_eq!(h.get_single_known(k), single, "{name}");
                }
            }
        }
        assert_eq!(Headers::default().get("host"), None);
    }

    /// ASCII heads skip the UTF-8 check; other UTF-8 is kept as it is;
    /// invalid bytes are replaced per field.
    #[test]
    fn non_ascii_header_text_kept_or_replaced() {
        for (value, want) in [
            (&b"plain"[..], "plain"),
            ("caf\u{e9} \u{1f600}".as_bytes(), "caf\u{e9} \u{1f600}"),
            (&b"a\xffb"[..], "a\u{fffd}b"),
        ] {
            let head = [
                &b"GET / HTTP/1.1\r\nHost: h\r\nX-V: "[..],
                value,
                b"\r\nContent-Type: t\r\n\r\n",
            ]
            .concat();
            let h = match super::super::parser::parse_request(&head) {
                super::super::parser::Parse::Complete(h, n) => {
                    assert_eq!(n, head.len());
                    h.headers
                }
                p => panic!("{p:?}"),
            };
            assert_eq!(
                h.iter().collect::<Vec<_>>(),
                [("Host", "h"), ("X-V", want), ("Content-Type", "t")]
            );
            assert_eq!(h.get_known(CONTENT_TYPE), Some("t"));
            assert_eq!(h.get_known(HOST), Some("h"));
        }
    }

    /// A dropped head's allocation is the next one's, its fields its own.
    #[test]
    fn allocations_reused_fields_fresh() {
        let big = Headers::from_pairs(&[("Server", "nginx"), ("Content-Length", "100")]);
        let at = big.buf.as_ptr();
        drop(big);
        let small = Headers::from_pairs(&[("Host", "h")]);
        assert_eq!(small.buf.as_ptr(), at);
        assert_eq!(small.iter().collect::<Vec<_>>(), [("Host", "h")]);
        assert_eq!(small.get_known(HOST), Some("h"));
        assert_eq!(small.get_known(CONTENT_LENGTH), None);
        // too small for the next: a new allocation, the spare kept
        drop(small);
        let long = "x".repeat(300);
        let next = Headers::from_pairs(&[("X-Long", long.as_str())]);
        assert_ne!(next.buf.as_ptr(), at);
        assert_eq!(next.get("x-long"), Some(long.as_str()));
        assert_eq!(Headers::from_pairs::<&str, &str>(&[]).len(), 0);
    }

    /// A small head does not get (and then hold) a large head's
    /// allocation: its capacity stays within twice its need and 256 bytes.
    #[test]
    fn small_head_does_not_take_a_large_allocation() {
        let long = "x".repeat(3000);
        let big = Headers::from_pairs(&[("X-Long", long.as_str())]);
        let at = big.buf.as_ptr();
        assert!(big.buf.capacity() <= spare::MAX);
        drop(big);
        let small = Headers::from_pairs(&[("Host", "h")]);
        assert_ne!(small.buf.as_ptr(), at);
        assert!(small.buf.capacity() <= 2 * small.buf.len() + 256);
        // a head as large takes it
        let again = Headers::from_pairs(&[("X-Long", long.as_str())]);
        assert_eq!(again.buf.as_ptr(), at);
        assert!(!spare::fits(4096, 60) && spare::fits(300, 60) && !spare::fits(59, 60));
    }

    #[test]
    fn eq_lower_is_eq_ignore_ascii_case() {
        for want in KNOWN {
            let w = want.as_bytes();
            let mut names = vec![w.to_vec(), want.to_ascii_uppercase().into_bytes()];
            // every byte value at every position
            for i in 0..w.len() {
                for b in 0..=255u8 {
                    let mut v = w.to_vec();
                    v[i] = b;
                    names.push(v);
                }
            }
            names.push(w[1..].to_vec());
            names.push([w, b"x"].concat());
            for n in names {
                assert_eq!(eq_lower(&n, w), n.eq_ignore_ascii_case(w), "{n:?} {want}");
            }
        }
    }
}
