// SPDX-License-Identifier: GPL-3.0-or-later
//! The lexical pieces of the HTTP/1.x parser: character classes (RFC 9110
//! tchar, field and target characters), the line end, the `HTTP/1.x`
//! version, method names, lossy text and a fast byte search. Shared by the
//! head parser ([`super::head`]) and the chunked decoder
//! ([`super::chunked`]).
//!
//! Parsers here return `Result<_, Stop>`: [`Stop::More`] for a valid prefix
//! that needs more bytes, [`Stop::Bad`] for input that can never be valid;
//! the `step!` macro turns a streaming `nom` result into that.

use std::borrow::Cow;

use nom::branch::alt;
use nom::bytes::streaming::tag;
use nom::IResult;

use crate::text::Text;

/// RFC 9110 tchar, as a table (this runs for every byte of every name).
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        c += 1;
    }
    t
};

pub(super) fn is_tchar(c: u8) -> bool {
    TCHAR[c as usize]
}
pub(super) fn is_target_char(c: u8) -> bool {
    c > 0x20 && c != 0x7f
}
/// field-vchar / SP / HTAB / obs-text
pub(super) fn is_field_char(c: u8) -> bool {
    c == b'\t' || (c >= 0x20 && c != 0x7f)
}
pub(super) fn is_ows(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

// ---------------------------------------------------------------------------
// nom pieces

type R<'a> = IResult<&'a [u8], &'a [u8], ()>;

pub(super) fn eol(i: &[u8]) -> R<'_> {
    alt((tag("\r\n"), tag("\n")))(i)
}

/// [`eol`] without nom: `Some(n)` a line end of `n` bytes at the start of
/// `i`, None none there, [`Stop::More`] for a prefix of one.
pub(super) fn line_end(i: &[u8]) -> Result<Option<usize>, Stop> {
    match i {
        [] | [b'\r'] => Err(Stop::More),
        [b'\r', b'\n', ..] => Ok(Some(2)),
        [b'\n', ..] => Ok(Some(1)),
        _ => Ok(None),
    }
}

pub(super) enum Stop {
    More,
    Bad(&'static str),
}

macro_rules! step {
    ($e:expr, $msg:expr) => {
        match {
            let r: nom::IResult<&[u8], _, ()> = $e;
            r
        } {
            Ok(v) => v,
            Err(nom::Err::Incomplete(_)) => return Err(Stop::More),
            Err(_) => return Err(Stop::Bad($msg)),
        }
    };
}
pub(super) use step;

#[inline]
pub(super) fn version(i: &[u8]) -> Result<(&[u8], u8), Stop> {
    // the usual: all eight bytes there, tested as one word
    if let Some(w) = i.get(..8) {
        let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        if w == u64::from_le_bytes(*b"HTTP/1.1") {
            return Ok((&i[8..], 1));
        }
        if w == u64::from_le_bytes(*b"HTTP/1.0") {
            return Ok((&i[8..], 0));
        }
    }
    version_general(i)
}

/// [`version`] of any input: a prefix, another version, anything else.
fn version_general(i: &[u8]) -> Result<(&[u8], u8), Stop> {
    // "HTTP/1.x": compared directly, a prefix of it needs more bytes
    const V: &[u8] = b"HTTP/1.";
    let n = i.len().min(V.len());
    if i[..n] != V[..n] {
        return Err(Stop::Bad(
            if i[..n.min(5)] == V[..n.min(5)] && i.len() > 5 && i[5].is_ascii_digit() {
                "unsupported http version"
            } else {
                "bad http version"
            },
        ));
    }
    match i.get(V.len()) {
        None => Err(Stop::More),
        Some(b'0') => Ok((&i[V.len() + 1..], 0)),
        Some(b'1') => Ok((&i[V.len() + 1..], 1)),
        Some(c) if c.is_ascii_digit() => Err(Stop::Bad("unsupported http version")),
        Some(_) => Err(Stop::Bad("bad http version")),
    }
}

/// A request method: the registered ones as static strings.
pub(super) fn method_str(b: &[u8]) -> Cow<'static, str> {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    match KNOWN.iter().find(|m| m.as_bytes() == b) {
        Some(m) => Cow::Borrowed(m),
        None => Cow::Owned(lossy(b)),
    }
}

fn lossy(b: &[u8]) -> String {
    lossy_cow(b).into_owned()
}

/// [`lossy`] as a [`Text`]: a short one inline, not allocated.
pub(super) fn lossy_text(b: &[u8]) -> Text {
    if b.len() <= crate::text::INLINE && b.iter().fold(0, |or, &c| or | c) < 0x80 {
        // short and ASCII (a target like `/r100`, a reason like `OK`):
        // straight in
        // SAFETY: ASCII is UTF-8
        return Text::new(unsafe { std::str::from_utf8_unchecked(b) });
    }
    Text::from(lossy_cow(b))
}

/// `b` as text, borrowed when it is valid UTF-8 (the normal case: checked
/// once, not chunk by chunk as `String::from_utf8_lossy` does).
fn lossy_cow(b: &[u8]) -> Cow<'_, str> {
    if b.len() <= 16 && b.iter().fold(0, |or, &c| or | c) < 0x80 {
        // short and ASCII (a target like `/r100`, a reason like `OK`):
        // cheaper told so than validated
        // SAFETY: ASCII is UTF-8
        return Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(b) });
    }
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(String::from_utf8_lossy(b).into_owned()),
    }
}

/// The first `b` in `hay`. Lines of a head are short: a word at a time
/// for their first 64 bytes (memchr's set-up costs more than the search
/// there), memchr past that. In the word, a lane equal to `b` becomes 0,
/// and the lowest zero lane is found exactly (a borrow only runs upwards
/// from a true one).
pub(super) fn find_byte(b: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(w) = hay.get(at..at + 8) {
        let x = u64::from_le_bytes(w.try_into().unwrap_or([0; 8])) ^ (LO * b as u64);
        let z = x.wrapping_sub(LO) & !x & HI;
        if z != 0 {
            return Some(at + (z.trailing_zeros() / 8) as usize);
        }
        at += 8;
        if at >= 64 {
            return memchr::memchr(b, &hay[at..]).map(|p| p + at);
        }
    }
    hay[at..].iter().position(|&c| c == b).map(|p| p + at)
}

#[cfg(test)]
mod find_tests {
    use super::{eol, find_byte, line_end, Stop};

    /// The short-ASCII shortcut gives what the general conversion gives,
    /// every byte value at every position, lengths around the inline limit.
    #[test]
    fn lossy_text_as_lossy_cow() {
        use super::{lossy_cow, lossy_text};
        use crate::text::Text;
        for len in 0..40usize {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'a'; len];
                    v[at] = b;
                    let (got, want) = (lossy_text(&v), Text::from(lossy_cow(&v)));
                    assert_eq!(got, want, "{v:?}");
                    assert_eq!(got.is_inline(), want.is_inline(), "{v:?}");
                }
            }
        }
    }

    /// The one-word test of `HTTP/1.x` as the general comparison, every
    /// byte value at every position, cut at every length.
    #[test]
    fn version_as_the_general_comparison() {
        use super::super::each_variant;
        use super::{version, version_general};
        let show = |r: Result<(&[u8], u8), Stop>| match r {
            Ok((r, m)) => format!("{} {m}", r.len()),
            Err(Stop::More) => "more".into(),
            Err(Stop::Bad(m)) => m.into(),
        };
        each_variant(&[b"HTTP/1.1\r\n", b"HTTP/1.0 200"], b"", |i| {
            assert_eq!(show(version(i)), show(version_general(i)), "{i:?}");
        });
    }

    #[test]
    fn line_end_as_eol() {
        let bytes = [b'\r', b'\n', b'a', b' ', 0];
        for len in 0..4 {
            for k in 0..bytes.len().pow(len) {
                let i: Vec<u8> = (0..len)
                    .map(|d| bytes[k / bytes.len().pow(d) % bytes.len()])
                    .collect();
                let want = match eol(&i) {
                    Ok((r, _)) => Some(Some(i.len() - r.len())),
                    Err(nom::Err::Incomplete(_)) => None,
                    Err(_) => Some(None),
                };
                let got = match line_end(&i) {
                    Ok(n) => Some(n),
                    Err(Stop::More) => None,
                    Err(Stop::Bad(_)) => panic!(),
                };
                assert_eq!(got, want, "{i:?}");
            }
        }
    }

    #[test]
    fn find_byte_as_position_at_every_offset_and_length() {
        for len in 0..140usize {
            for at in (0..len).map(Some).chain([None]) {
                for fill in [b'a', b'\n' + 1, b'\n' - 1, 0x80 | b'\n', 0xff, 0] {
                    let mut v = vec![fill; len];
                    if let Some(a) = at {
                        v[a] = b'\n';
                        // a second one after it must not be the answer
                        if a + 3 < len {
                            v[a + 3] = b'\n';
                        }
                    }
                    let want = v.iter().position(|&c| c == b'\n');
                    assert_eq!(
                        find_byte(b'\n', &v),
                        want,
                        "len {len} at {at:?} fill {fill:#x}"
                    );
                }
            }
        }
    }
}
