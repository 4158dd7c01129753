// SPDX-License-Identifier: GPL-3.0-or-later
//! [`Text`]: an immutable string kept inline when short, for the string
//! fields of a record (target, path, host, reason, content types). Most
//! of them are a few bytes ("/", "OK", "text/html", a host and port), and
//! a `String` for each cost an allocation and a free per record; inline
//! they cost a copy. Longer ones are one boxed `str`, as before.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest string kept inline: a [`Text`] is 32 bytes (the tag, the
/// length, the bytes), so `application/octet-stream` and
/// `text/html; charset=utf-8` fit.
pub const INLINE: usize = 30;

/// A string, inline up to [`INLINE`] bytes, boxed past that. Compares,
/// hashes, prints and serialises as the `str` it holds.
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    /// `buf[..len]` is UTF-8 (copied from a `str`).
    Inline {
        len: u8,
        buf: [u8; INLINE],
    },
    Heap(Box<str>),
}

impl Text {
    pub fn new(s: &str) -> Text {
        if s.len() <= INLINE {
            let buf = inline_buf(s.as_bytes());
            Text(Repr::Inline {
                len: s.len() as u8,
                buf,
            })
        } else {
            Text(Repr::Heap(s.into()))
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: `buf[..len]` was copied whole from a `str` (`new`),
            // so it is UTF-8
            Repr::Inline { len, buf } => unsafe {
                std::str::from_utf8_unchecked(buf.get_unchecked(..*len as usize))
            },
            Repr::Heap(s) => s,
        }
    }

    /// Kept inline (no allocation).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }
}

/// `b` (at most [`INLINE`] bytes) at the start of a zeroed buffer: two
/// overlapping word copies, not a `memcpy` call (most of a record's
/// strings are a few bytes, and the call cost more than the copy).
#[inline(always)]
fn inline_buf(b: &[u8]) -> [u8; INLINE] {
    let mut buf = [0u8; INLINE];
    let n = b.len();
    debug_assert!(n <= INLINE);
    if n >= 16 {
        buf[..16].copy_from_slice(&b[..16]);
        buf[n - 16..n].copy_from_slice(&b[n - 16..]);
    } else if n >= 8 {
        buf[..8].copy_from_slice(&b[..8]);
        buf[n - 8..n].copy_from_slice(&b[n - 8..]);
    } else if n >= 4 {
        buf[..4].copy_from_slice(&b[..4]);
        buf[n - 4..n].copy_from_slice(&b[n - 4..]);
    } else if n > 0 {
        buf[0] = b[0];
        buf[n / 2] = b[n / 2];
        buf[n - 1] = b[n - 1];
    }
    buf
}

impl Default for Text {
    fn default() -> Text {
        Text::new("")
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::new(s)
    }
}

impl From<String> for Text {
    /// Short strings are copied inline (and the `String` freed); longer
    /// ones keep their allocation when it is exactly as long.
    fn from(s: String) -> Text {
        if s.len() <= INLINE {
            Text::new(&s)
        } else {
            Text(Repr::Heap(s.into_boxed_str()))
        }
    }
}

impl From<Cow<'_, str>> for Text {
    fn from(s: Cow<'_, str>) -> Text {
        match s {
            Cow::Borrowed(b) => Text::new(b),
            Cow::Owned(o) => Text::from(o),
        }
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.as_str().to_string()
    }
}

impl PartialEq for Text {
    fn eq(&self, o: &Text) -> bool {
        self.as_str() == o.as_str()
    }
}
impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}
impl PartialEq<&str> for Text {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}
impl PartialEq<String> for Text {
    fn eq(&self, o: &String) -> bool {
        self.as_str() == o.as_str()
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, o: &Text) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Text {
    fn cmp(&self, o: &Text) -> std::cmp::Ordering {
        self.as_str().cmp(o.as_str())
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        Ok(Text::from(Cow::<str>::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_up_to_the_limit_boxed_past_it_the_same_str_either_way() {
        let long = "é".repeat(20);
        for s in [
            "",
            "/",
            "OK",
            &"x".repeat(INLINE),
            &"y".repeat(INLINE + 1),
            &long,
        ] {
            for t in [
                Text::new(s),
                Text::from(s.to_string()),
                Text::from(Cow::from(s)),
            ] {
                assert_eq!(t.as_str(), s);
                assert_eq!(t.is_inline(), s.len() <= INLINE, "{s:?}");
                assert_eq!(t, *s);
                assert_eq!(format!("{t:?}"), format!("{s:?}"));
                assert_eq!(t.to_string(), s);
                let j = serde_json::to_string(&t).unwrap();
                assert_eq!(j, serde_json::to_string(s).unwrap());
                assert_eq!(serde_json::from_str::<Text>(&j).unwrap(), t);
            }
        }
        // escaped input (not borrowable) reads back too
        assert_eq!(serde_json::from_str::<Text>(r#""a\"b""#).unwrap(), "a\"b");
        assert_eq!(std::mem::size_of::<Option<Text>>(), 32);
    }
}
