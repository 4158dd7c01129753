// SPDX-License-Identifier: GPL-3.0-or-later
//! Request and response heads: the start line (request line or status
//! line), the header block up to the empty line, and the [`MAX_HEAD_BYTES`]
//! limit around them ([`parse_request`], [`parse_response`]).

use super::lex::{
    find_byte, is_field_char, is_ows, is_target_char, is_tchar, line_end, lossy_text, method_str,
    version, Stop,
};
use crate::protocol::http1::headers::Known;
use std::mem::MaybeUninit;

use super::{
    Headers, Parse, RequestHead, ResponseHead, MAX_HEADERS, MAX_HEAD_BYTES, MAX_METHOD_LEN,
};

/// The request target, up to (not including) the space before the version.
fn request_target(i: &[u8]) -> Result<(&[u8], &[u8]), Stop> {
    // the first byte that is no target char: the space after the target
    // (any other is a bad byte in it, before any space)
    match target_end(i) {
        None => Err(Stop::More),
        Some(0) => Err(Stop::Bad("bad request target")),
        Some(end) if i[end] == b' ' => Ok((&i[end..], &i[..end])),
        Some(_) => Err(Stop::Bad("bad request target")),
    }
}

/// [`request_target`] as it was: a search for the space, then a test of
/// the bytes before it (the reference of the tests).
#[cfg(test)]
fn request_target_by_space(i: &[u8]) -> Result<(&[u8], &[u8]), Stop> {
    let end = find_byte(b' ', i).unwrap_or(i.len());
    let t = &i[..end];
    if !t.iter().fold(true, |ok, &c| ok & is_target_char(c)) {
        return Err(Stop::Bad("bad request target"));
    }
    if end == i.len() {
        return Err(Stop::More);
    }
    if t.is_empty() {
        return Err(Stop::Bad("bad request target"));
    }
    Ok((&i[end..], t))
}

/// `i.iter().position(|&c| !is_target_char(c))`, eight bytes a test: in
/// a word, a lane below 0x21 (`- 0x21` borrows; `& !x` keeps lanes below
/// 0x80) or equal to 0x7f (`^ 0x7f` is zero) sets its high bit, the lowest
/// such lane exactly (a borrow runs upwards from a true one only).
fn target_end(i: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(w) = i.get(at..at + 8) {
        let x = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        let z = x ^ (LO * 0x7f);
        let out = ((x.wrapping_sub(LO * 0x21) & !x) | (z.wrapping_sub(LO) & !z)) & HI;
        if out != 0 {
            return Some(at + (out.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    i[at..]
        .iter()
        .position(|&c| !is_target_char(c))
        .map(|p| p + at)
}

/// A field value up to and including its line end (CRLF or LF), and
/// whether it is ASCII. Values are the bulk of a head, so this finds the
/// line end a word at a time and checks the bytes in one branch-free pass
/// instead of a per-byte combinator; the same pass tells ASCII text apart
/// (the header block then needs no UTF-8 validation of its own).
fn field_value(i: &[u8]) -> Result<(&[u8], &[u8], bool), Stop> {
    match printable_value(i) {
        Some((r, v)) => Ok((r, v, true)),
        None => field_value_bytes(i),
    }
}

/// [`field_value`] a byte at a time.
fn field_value_bytes(i: &[u8]) -> Result<(&[u8], &[u8], bool), Stop> {
    /// (all field chars, all ASCII)
    fn field_chars(b: &[u8]) -> (bool, bool) {
        let (ok, or) = b
            .iter()
            .fold((true, 0u8), |(ok, or), &c| (ok & is_field_char(c), or | c));
        (ok, or < 0x80)
    }
    match find_byte(b'\n', i) {
        Some(p) => {
            let line = &i[..p];
            let value = line.strip_suffix(b"\r").unwrap_or(line);
            match field_chars(value) {
                (true, ascii) => Ok((&i[p + 1..], value, ascii)),
                (false, _) => Err(Stop::Bad("bad header value")),
            }
        }
        None => {
            // a valid prefix so far, possibly ending in the CR of a CRLF
            let body = i.strip_suffix(b"\r").unwrap_or(i);
            if field_chars(body).0 {
                Err(Stop::More)
            } else {
                Err(Stop::Bad("bad header value"))
            }
        }
    }
}

/// [`field_value`] of the common line: printable ASCII (0x20..=0x7e) up
/// to its CRLF or LF, eight bytes a test. In a word, a lane below 0x20
/// (`- 0x20` borrows; `& !x` keeps lanes below 0x80), at 0x7f (`+ 1`
/// reaches 0x80) or at 0x80 and up (`| x`) sets its high bit; a borrow or
/// carry runs upwards from such a lane only, so the lowest flagged lane is
/// the first byte outside the range exactly. That byte must be the line
/// end; anything else (a tab, obs-text, a control, a line cut short) is
/// left to the byte-wise pass, whose results these are.
fn printable_value(i: &[u8]) -> Option<(&[u8], &[u8])> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(w) = i.get(at..at + 8) {
        let x = u64::from_le_bytes(w.try_into().ok()?);
        let out = ((x.wrapping_sub(LO * 0x20) & !x) | x.wrapping_add(LO) | x) & HI;
        if out != 0 {
            let q = at + (out.trailing_zeros() / 8) as usize;
            return match (i[q], i.get(q + 1)) {
                (b'\n', _) => Some((&i[q + 1..], &i[..q])),
                (b'\r', Some(b'\n')) => Some((&i[q + 2..], &i[..q])),
                _ => None,
            };
        }
        at += 8;
    }
    None
}

/// The length of the token at the start of `i` (None: it runs to the
/// end): `i.iter().position(|&c| !is_tchar(c))`. Names are mostly letters
/// and '-', tested eight bytes a word: a lane holds a letter when its byte
/// with the case bit set is in `a..=z` (`+ 0x1f` reaches 0x80 from `a`
/// on, `+ 0x05` from past `z` on: 7-bit lanes, nothing carries out), a
/// dash when it equals `-` (a nonzero lane's low seven bits `+ 0x7f`, or
/// its high bit, set its high bit). The first lane that is neither is
/// found exactly: the name's end when it is the ':' that follows a name;
/// otherwise (a digit, another tchar) the bytes are classified one at a
/// time from there.
fn name_end(i: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let mut at = 0;
    while let Some(w) = i.get(at..at + 8) {
        let x = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        let y = (x | (LO * 0x20)) & LOW7;
        let letter = (y + LO * 0x1f) & !(y + LO * 0x05) & !x;
        let z = x ^ (LO * b'-' as u64);
        let dash = !(((z & LOW7) + LOW7) | z);
        let other = !(letter | dash) & HI;
        if other != 0 {
            at += (other.trailing_zeros() / 8) as usize;
            if i[at] == b':' {
                // the usual end of a name (':' is no tchar)
                return Some(at);
            }
            break;
        }
        at += 8;
    }
    i[at..].iter().position(|&c| !is_tchar(c)).map(|p| p + at)
}

/// One header line of the common shape, sixteen bytes a test (SSE2, on
/// x86_64): a name of letters and '-' of at most 15 bytes, ':', a value of
/// printable ASCII (0x20..=0x7e), CRLF or LF. Returns [name end, value
/// start, value end, next line's start] (the value without the spaces
/// around it), the results the general code of [`header_block`] would
/// give; None for anything else (a digit or another tchar in the name, a
/// tab, obs-text, a control, a line cut short, fewer than 16 bytes left),
/// which that code then reads.
#[cfg(target_arch = "x86_64")]
fn field_line(i: &[u8]) -> Option<[usize; 4]> {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8,
    };
    if i.len() < 16 {
        return None;
    }
    // SAFETY: SSE2 is part of x86_64; every load reads 16 bytes inside
    // `i` (`at + 16 <= i.len()`, or the last 16 of its 16 or more)
    unsafe {
        let load = |at: usize| _mm_loadu_si128(i.as_ptr().add(at).cast::<__m128i>());
        // lanes outside 0x20..=0x7e: below 0x20 or at 0x80 and up (signed
        // below 0x20), or 0x7f
        let outside = |v: __m128i| {
            let lo = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            let del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
            _mm_movemask_epi8(_mm_or_si128(lo, del)) as u32
        };
        let v = load(0);
        let colon = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b':' as i8))) as u32;
        // a letter: with the case bit set in a..=z, which `+ 0x1f` moves
        // to 0x80..=0x99, signed below -102 (nothing else lands there)
        let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
        let letter = _mm_cmplt_epi8(
            _mm_add_epi8(lower, _mm_set1_epi8(0x1f)),
            _mm_set1_epi8(-102),
        );
        let dash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'-' as i8));
        let name = _mm_movemask_epi8(_mm_or_si128(letter, dash)) as u32;
        let space = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b' ' as i8))) as u32;
        let c = colon.trailing_zeros() as usize;
        // no ':' (c = 32), an empty name, or a byte before it not a letter or '-'
        if c >= 16 || c == 0 || !name & ((1 << c) - 1) != 0 {
            return None;
        }
        // the line end: the first byte outside the printable range (the
        // name and ':' are inside it)
        let mut out = outside(v);
        let mut at = 0;
        while out == 0 {
            at += 16;
            if at + 16 <= i.len() {
                out = outside(load(at));
            } else if at < i.len() {
                // the last 16 bytes, less those already tested
                let last = i.len() - 16;
                out = outside(load(last)) >> (at - last);
                if out == 0 {
                    return None;
                }
            } else {
                return None;
            }
        }
        let e = at + out.trailing_zeros() as usize;
        let next = match (i[e], i.get(e + 1)) {
            (b'\n', _) => e + 1,
            (b'\r', Some(b'\n')) => e + 2,
            _ => return None,
        };
        // OWS around the value: spaces only (a tab is outside the range);
        // those after the ':' in the first sixteen bytes from its mask
        // (the run stops at `e`, no space)
        let mut v0 = c + 1 + (space >> (c + 1)).trailing_ones() as usize;
        if v0 == 16 {
            // the run reaches past them
            while v0 < e && i[v0] == b' ' {
                v0 += 1;
            }
        }
        let mut v1 = e;
        if i[e - 1] == b' ' {
            // (`e - 1` is at least `c`, the ':')
            while v1 > v0 && i[v1 - 1] == b' ' {
                v1 -= 1;
            }
        }
        Some([c, v0, v1, next])
    }
}

/// [`field_line`] elsewhere: every line is read by the general code.
#[cfg(not(target_arch = "x86_64"))]
fn field_line(_: &[u8]) -> Option<[usize; 4]> {
    None
}

/// Header fields up to and including the empty line. Written out rather
/// than with combinators (this is most of the parsing work of a message);
/// the same results as `eol`, `take_while1(is_tchar)`, `tag(":")`,
/// `take_while(is_ows)` and [`field_value`] in streaming mode.
fn header_block(block: &[u8]) -> Result<(&[u8], Headers), Stop> {
    header_block_as(block, true)
}

/// The ranges (name start, name end, value start, value end) of a head's
/// fields, in order: on the stack for the first [`Ranges::INLINE`], all
/// copied to `spill` past that. Not zeroed first (256 bytes a head): entry
/// `k` is written before `n` passes `k`, so entries `..n.min(INLINE)` are
/// always initialised.
struct Ranges {
    inline: [MaybeUninit<[u32; 4]>; Ranges::INLINE],
    spill: Vec<[u32; 4]>,
    /// Fields pushed.
    n: usize,
}

impl Ranges {
    const INLINE: usize = 16;

    #[inline(always)]
    fn new() -> Ranges {
        Ranges {
            inline: [MaybeUninit::uninit(); Ranges::INLINE],
            spill: Vec::new(),
            n: 0,
        }
    }

    #[inline(always)]
    fn push(&mut self, f: [u32; 4]) {
        if self.n < Ranges::INLINE {
            self.inline[self.n].write(f);
        } else {
            if self.n == Ranges::INLINE {
                // SAFETY: all `INLINE` entries are initialised here
                let inline = self.inline.iter().map(|f| unsafe { f.assume_init() });
                self.spill.extend(inline);
            }
            self.spill.push(f);
        }
        self.n += 1;
    }

    #[inline(always)]
    fn as_slice(&self) -> &[[u32; 4]] {
        if self.n <= Ranges::INLINE {
            // SAFETY: entries `..n` (n <= INLINE) are initialised (see
            // `Ranges`); `MaybeUninit<T>` has the layout of `T`
            unsafe { std::slice::from_raw_parts(self.inline.as_ptr().cast::<[u32; 4]>(), self.n) }
        } else {
            &self.spill
        }
    }
}

/// [`header_block`], `fast`: with [`field_line`] (false: the general
/// code only, for the tests).
#[inline(always)]
fn header_block_as(block: &[u8], fast: bool) -> Result<(&[u8], Headers), Stop> {
    let mut i = block;
    let off = |s: &[u8]| (s.as_ptr() as usize - block.as_ptr() as usize) as u32;
    let mut ranges = Ranges::new();
    // every byte of the block outside the values is ASCII (names are
    // tokens, then ':', OWS, CR, LF): the values tell whether it all is
    let mut ascii = true;
    // where host, content-length, ... are: noted with each name read
    let mut known = Known::default();
    loop {
        // the empty line: CRLF or LF
        let end = match i {
            [] | [b'\r'] => return Err(Stop::More),
            [b'\r', b'\n', ..] => Some(2),
            [b'\n', ..] => Some(1),
            _ => None,
        };
        if let Some(n) = end {
            let at = off(i) as usize;
            return Ok((
                &i[n..],
                Headers::from_block(&block[..at], ranges.as_slice(), ascii, known),
            ));
        }
        if ranges.n >= MAX_HEADERS {
            return Err(Stop::Bad("too many headers"));
        }
        if let Some([name_len, v0, v1, next]) = fast.then(|| field_line(i)).flatten() {
            // the common line, found at once: the same ranges as below
            known.note(&i[..name_len], ranges.n);
            let n0 = off(i);
            ranges.push([n0, n0 + name_len as u32, n0 + v0 as u32, n0 + v1 as u32]);
            i = &i[next..];
            continue;
        }
        if is_ows(i[0]) {
            return Err(Stop::Bad("obsolete line folding"));
        }
        let name_len = match name_end(i) {
            None => return Err(Stop::More),
            Some(0) => return Err(Stop::Bad("bad header name")),
            Some(n) => n,
        };
        let (name, r) = i.split_at(name_len);
        if r[0] != b':' {
            return Err(Stop::Bad("bad header name"));
        }
        known.note(name, ranges.n);
        let r = &r[1..];
        let r = match r.iter().position(|&c| !is_ows(c)) {
            None => return Err(Stop::More),
            Some(n) => &r[n..],
        };
        let (r, value, value_ascii) = field_value(r)?;
        ascii &= value_ascii;
        let v = value.trim_ascii_end();
        let (n0, v0) = (off(name), off(v));
        ranges.push([n0, n0 + name.len() as u32, v0, v0 + v.len() as u32]);
        i = r;
    }
}

fn request_head(i: &[u8]) -> Result<(&[u8], RequestHead), Stop> {
    // Written out rather than with combinators: the same results as
    // `eol`, `take_while1(is_tchar)`, `tag(" ")`, ... in streaming mode.
    // RFC 9112 §2.2: ignore at least one empty line before the request line.
    let mut i = i;
    for _ in 0..2 {
        match line_end(i)? {
            Some(n) => i = &i[n..],
            None => break,
        }
    }
    let m = match i.iter().position(|&c| !is_tchar(c)) {
        None => return Err(Stop::More),
        Some(0) => return Err(Stop::Bad("bad method")),
        Some(m) => m,
    };
    if m > MAX_METHOD_LEN {
        return Err(Stop::Bad("method too long"));
    }
    let (method, r) = i.split_at(m);
    if r[0] != b' ' {
        return Err(Stop::Bad("bad method"));
    }
    // (it stops at a space)
    let (r, target) = request_target(&r[1..])?;
    let (r, minor) = version(&r[1..])?;
    let r = match line_end(r)? {
        Some(n) => &r[n..],
        None => return Err(Stop::Bad("bad request line")),
    };
    let (r, headers) = header_block(r)?;
    Ok((
        r,
        RequestHead {
            method: method_str(method),
            target: lossy_text(target),
            minor,
            headers,
        },
    ))
}

fn response_head(i: &[u8]) -> Result<(&[u8], ResponseHead), Stop> {
    let (r, minor) = version(i)?;
    let r = match r {
        [] => return Err(Stop::More),
        [b' ', r @ ..] => r,
        _ => return Err(Stop::Bad("bad status line")),
    };
    // three digits
    if !r[..r.len().min(3)].iter().all(u8::is_ascii_digit) {
        return Err(Stop::Bad("bad status code"));
    }
    let (code, r) = match r {
        [a, b, c, r @ ..] => ([a, b, c].map(|&d| (d - b'0') as u16), r),
        _ => return Err(Stop::More),
    };
    let status = code[0] * 100 + code[1] * 10 + code[2];
    if status < 100 {
        return Err(Stop::Bad("bad status code"));
    }
    let (r, reason) = match line_end(r)? {
        Some(n) => (&r[n..], &b""[..]),
        None => {
            let r = match r {
                [b' ', r @ ..] => r,
                _ => return Err(Stop::Bad("bad status line")),
            };
            let n = match r.iter().position(|&c| !is_field_char(c)) {
                None => return Err(Stop::More),
                Some(n) => n,
            };
            let (reason, r) = r.split_at(n);
            match line_end(r)? {
                Some(n) => (&r[n..], reason),
                None => return Err(Stop::Bad("bad reason phrase")),
            }
        }
    };
    let (r, headers) = header_block(r)?;
    Ok((
        r,
        ResponseHead {
            minor,
            status,
            reason: lossy_text(reason.trim_ascii_end()),
            headers,
        },
    ))
}

type HeadFn<T> = fn(&[u8]) -> Result<(&[u8], T), Stop>;

fn run_head<T>(buf: &[u8], f: HeadFn<T>) -> Parse<T> {
    let lim = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    match f(lim) {
        Ok((rest, v)) => Parse::Complete(v, lim.len() - rest.len()),
        Err(Stop::More) if buf.len() >= MAX_HEAD_BYTES => Parse::Invalid("head too large"),
        Err(Stop::More) => Parse::NeedMore,
        Err(Stop::Bad(m)) => Parse::Invalid(m),
    }
}

/// Parse a request head (request line, header fields, empty line).
pub fn parse_request(buf: &[u8]) -> Parse<RequestHead> {
    run_head(buf, request_head)
}

/// Parse a response head (status line, header fields, empty line).
pub fn parse_response(buf: &[u8]) -> Parse<ResponseHead> {
    run_head(buf, response_head)
}

#[cfg(test)]
mod tests {
    use super::super::each_variant;
    use super::*;

    fn same(a: Result<(&[u8], &[u8], bool), Stop>, b: Result<(&[u8], &[u8], bool), Stop>) -> bool {
        match (a, b) {
            (Ok(x), Ok(y)) => x == y,
            (Err(Stop::More), Err(Stop::More)) => true,
            (Err(Stop::Bad(x)), Err(Stop::Bad(y))) => x == y,
            _ => false,
        }
    }

    fn same_block(a: Result<(&[u8], Headers), Stop>, b: Result<(&[u8], Headers), Stop>) -> bool {
        match (a, b) {
            (Ok(x), Ok(y)) => x == y,
            (Err(Stop::More), Err(Stop::More)) => true,
            (Err(Stop::Bad(x)), Err(Stop::Bad(y))) => x == y,
            _ => false,
        }
    }

    /// The sixteen-byte line reader gives what the general code gives,
    /// for every byte value at every position of lines of many shapes
    /// (names to 16 bytes, values across several tests, spaces around
    /// them, LF, CR without LF), cut short at every length.
    #[test]
    fn field_line_as_the_general_code() {
        let lines: [&[u8]; 10] = [
            b"Content-Type: text/html\r\n",
            b"X:                 v \r\n",
            b"X: y\r\n",
            b"Server:nginx  \r\n",
            b"abcdefghijklmno: v\r\n",
            b"abcdefghijklmnop: v\r\n",
            b"A:  \n",
            b"Ab:\r\n",
            b"Date: Sun, 29 Nov 2026 15:35:40 GMT\r\n",
            b"Last-Modified: Sun, 29 Nov 2026 15:00:00 GMTxxxxxxxxxxxx\n",
        ];
        let mut n = 0;
        each_variant(&lines, b"Host: h\r\n\r\n", |i| {
            assert!(
                same_block(header_block_as(i, true), header_block_as(i, false)),
                "{:?}",
                String::from_utf8_lossy(i)
            );
            n += field_line(i).is_some() as usize;
        });
        // the fast path was taken (on x86_64)
        assert!(n > 0 || cfg!(not(target_arch = "x86_64")));
    }

    /// The start lines as they were read with nom combinators (before
    /// the written-out [`request_head`] and [`response_head`]), up to the
    /// header block: the rest and (method, target, minor) or (minor,
    /// status, reason).
    mod by_nom {
        use super::super::super::lex::{eol, is_field_char, is_tchar, step, version, Stop};
        use super::super::{request_target_by_space as request_target, MAX_METHOD_LEN};
        use nom::bytes::streaming::{tag, take_while, take_while1, take_while_m_n};

        pub type Req<'a> = (&'a [u8], &'a [u8], &'a [u8], u8);
        pub type Resp<'a> = (&'a [u8], u8, u16, &'a [u8]);

        pub fn request_line(i: &[u8]) -> Result<Req<'_>, Stop> {
            let mut i = i;
            for _ in 0..2 {
                match eol(i) {
                    Ok((r, _)) => i = r,
                    Err(nom::Err::Incomplete(_)) => return Err(Stop::More),
                    Err(_) => break,
                }
            }
            let (r, method) = step!(take_while1(is_tchar)(i), "bad method");
            if method.len() > MAX_METHOD_LEN {
                return Err(Stop::Bad("method too long"));
            }
            let (r, _) = step!(tag(" ")(r), "bad method");
            let (r, target) = request_target(r)?;
            let (r, _) = step!(tag(" ")(r), "bad request target");
            let (r, minor) = version(r)?;
            let (r, _) = step!(eol(r), "bad request line");
            Ok((r, method, target, minor))
        }

        pub fn status_line(i: &[u8]) -> Result<Resp<'_>, Stop> {
            let (r, minor) = version(i)?;
            let (r, _) = step!(tag(" ")(r), "bad status line");
            let (r, code) = step!(
                take_while_m_n(3, 3, |c: u8| c.is_ascii_digit())(r),
                "bad status code"
            );
            let status = (code[0] - b'0') as u16 * 100
                + (code[1] - b'0') as u16 * 10
                + (code[2] - b'0') as u16;
            if status < 100 {
                return Err(Stop::Bad("bad status code"));
            }
            let (r, reason) = match eol(r) {
                Ok((r, _)) => (r, &b""[..]),
                Err(nom::Err::Incomplete(_)) => return Err(Stop::More),
                Err(_) => {
                    let (r, _) = step!(tag(" ")(r), "bad status line");
                    let (r, reason) = step!(take_while(is_field_char)(r), "bad reason phrase");
                    let (r, _) = step!(eol(r), "bad reason phrase");
                    (r, reason)
                }
            };
            Ok((r, minor, status, reason))
        }
    }

    /// What a head parser says of `i` whose start line `by_nom` read as
    /// `line` (the start line's values, its length): the header block
    /// after it decides the rest.
    fn as_nom<T: PartialEq + std::fmt::Debug>(
        got: Result<(&[u8], T), Stop>,
        line: Result<(&[u8], T), Stop>,
        i: &[u8],
    ) {
        let show = |r: &Result<(&[u8], T), Stop>| match r {
            Ok((r, v)) => format!("ok {} {v:?}", r.len()),
            Err(Stop::More) => "more".into(),
            Err(Stop::Bad(m)) => format!("bad {m}"),
        };
        let want = match line {
            Ok((r, v)) => match header_block(r) {
                Ok((r, _)) => Ok((r, v)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        assert_eq!(show(&got), show(&want), "{:?}", String::from_utf8_lossy(i));
    }

    /// The written-out start lines read what the combinators read, for
    /// every byte value at every position, cut short at every length.
    #[test]
    fn start_lines_as_by_nom() {
        let reqs: [&[u8]; 4] = [
            b"GET /r100 HTTP/1.1\r\nHost: h\r\n\r\n",
            b"\r\nPOST / HTTP/1.0\n\n",
            b"\n\r\nM /x HTTP/1.1\r\n\r\n",
            b"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        ];
        each_variant(&reqs, b"", |i| {
            let got = request_head(i)
                .map(|(r, h)| (r, (h.method.to_string(), h.target.to_string(), h.minor)));
            let line = by_nom::request_line(i).map(|(r, m, t, minor)| {
                (
                    r,
                    (method_str(m).to_string(), lossy_text(t).to_string(), minor),
                )
            });
            as_nom(got, line, i);
        });
        let long = [&b"X"[..]; MAX_METHOD_LEN + 1].concat();
        for m in [&long[..], &long[1..]] {
            let i = [m, b" / HTTP/1.1\r\n\r\n"].concat();
            for cut in 0..=i.len() {
                let i = &i[..cut];
                let got = request_head(i).map(|(r, h)| (r, h.minor));
                as_nom(got, by_nom::request_line(i).map(|(r, _, _, m)| (r, m)), i);
            }
        }
        let resps: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n",
            b"HTTP/1.0 404\n\n",
            b"HTTP/1.1 101 \r\n\r\n",
            b"HTTP/1.1 599 A\tb \n\r\n",
        ];
        each_variant(&resps, b"", |i| {
            let got = response_head(i).map(|(r, h)| (r, (h.minor, h.status, h.reason.to_string())));
            let line = by_nom::status_line(i).map(|(r, minor, s, reason)| {
                (
                    r,
                    (minor, s, lossy_text(reason.trim_ascii_end()).to_string()),
                )
            });
            as_nom(got, line, i);
        });
    }

    /// The word-at-a-time target scan reads what the search for the space
    /// read, for every byte value at every position, cut at every length.
    #[test]
    fn request_target_as_by_space() {
        for len in 0..20usize {
            for at in 0..len + 2 {
                for b in 0..=255u8 {
                    let mut v = vec![b'a'; len];
                    v.extend_from_slice(b" H");
                    v[at] = b;
                    for cut in 0..=v.len() {
                        let i = &v[..cut];
                        let show = |r: Result<(&[u8], &[u8]), Stop>| match r {
                            Ok(x) => format!("{x:?}"),
                            Err(Stop::More) => "more".into(),
                            Err(Stop::Bad(m)) => m.into(),
                        };
                        assert_eq!(
                            show(request_target(i)),
                            show(request_target_by_space(i)),
                            "{i:?}"
                        );
                    }
                }
            }
        }
    }

    /// The word-at-a-time name scan agrees with the byte-wise one for
    /// every byte value at every lane, in names of every length.
    #[test]
    fn name_end_as_the_byte_wise_scan() {
        for len in 0..20usize {
            for at in 0..=len {
                for b in 0..=255u8 {
                    for fill in [b'a', b'Z', b'-', b'0'] {
                        let mut v = vec![fill; len];
                        if at < len {
                            v[at] = b;
                        }
                        v.extend_from_slice(b": v\r\n");
                        for cut in 0..=v.len() {
                            let i = &v[..cut];
                            assert_eq!(
                                name_end(i),
                                i.iter().position(|&c| !is_tchar(c)),
                                "{:?}",
                                String::from_utf8_lossy(i)
                            );
                        }
                    }
                }
            }
        }
    }

    /// The word-at-a-time value agrees with the byte-wise pass for every
    /// byte value at every lane, before every line end and cut short.
    #[test]
    fn field_value_as_the_byte_wise_pass() {
        for len in 0..20usize {
            for at in 0..len {
                for b in 0..=255u8 {
                    for end in [
                        &b"\r\nX: y\r\n\r\n"[..],
                        b"\nX",
                        b"\r\n",
                        b"\r",
                        b"",
                        b" \t\r\n\r\n",
                    ] {
                        let mut v = vec![b'a'; len];
                        v[at] = b;
                        if at + 1 < len {
                            v[len - 1] = 0x7e;
                        }
                        let i = [&v[..], end].concat();
                        for cut in 0..=i.len() {
                            let i = &i[..cut];
                            assert!(
                                same(field_value(i), field_value_bytes(i)),
                                "{:?}",
                                String::from_utf8_lossy(i)
                            );
                        }
                    }
                }
            }
        }
    }
}
