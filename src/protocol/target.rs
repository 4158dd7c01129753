// SPDX-License-Identifier: GPL-3.0-or-later
//! The request target shared by the protocols: HTTP/1's request-target
//! and HTTP/2's `:path` give the records' `path` the same way.

/// The path of a request target: everything before the first `?` (the
/// query and the `?` left out). Nothing else is cut: a `#` stays (a
/// fragment is never sent on the wire, so one in a target is data), and
/// the authority of an absolute-form target is the caller's to strip.
pub fn without_query(target: &str) -> &str {
    let b = target.as_bytes();
    // a short target (`/`, `/r100`) a byte at a time: cheaper than the
    // set-up of a `char` search or memchr; a long one with memchr
    let q = if b.len() <= 32 {
        b.iter().position(|&c| c == b'?')
    } else {
        memchr::memchr(b'?', b)
    };
    // (`?` is ASCII: at a char boundary)
    match q {
        Some(q) => &target[..q],
        None => target,
    }
}

#[cfg(test)]
mod tests {
    use super::without_query;

    /// Both searches (short and long targets) as `split`, with the `?`
    /// at every position of every length, none or two of them.
    #[test]
    fn without_query_at_every_length() {
        for len in 0..80usize {
            for at in (0..len).map(Some).chain([None]) {
                let mut t = vec![b'a'; len];
                if let Some(a) = at {
                    t[a] = b'?';
                    if a + 2 < len {
                        t[a + 2] = b'?';
                    }
                }
                let t = String::from_utf8(t).unwrap();
                assert_eq!(without_query(&t), t.split('?').next().unwrap(), "{t}");
            }
        }
    }

    #[test]
    fn without_query_edge_cases() {
        for (target, want) in [
            ("", ""),
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("*", "*"),
            // an empty query
            ("/a?", "/a"),
            ("/a?b=1", "/a"),
            // `?` first: no path at all
            ("?", ""),
            ("?a=1", ""),
            // only the first `?` cuts
            ("/a?b?c", "/a"),
            ("/a??", "/a"),
            // a `#` is not a cut, before or after the query
            ("/a#f", "/a#f"),
            ("/a#f?q", "/a#f"),
            ("/a?q#f", "/a"),
            // multi-byte characters on either side
            ("/é?ü", "/é"),
            ("/é", "/é"),
            // long ones (the memchr search)
            (
                "/0123456789abcdef0123456789abcdef",
                "/0123456789abcdef0123456789abcdef",
            ),
            (
                "/0123456789abcdef0123456789abcdef?",
                "/0123456789abcdef0123456789abcdef",
            ),
            (
                "/0123456789abcdef0123456789abcdé?q?",
                "/0123456789abcdef0123456789abcdé",
            ),
            (
                "/0123456789abcdef0123456789abcdef0123456789?q",
                "/0123456789abcdef0123456789abcdef0123456789",
            ),
        ] {
            assert_eq!(without_query(target), want, "{target:?}");
            // what the protocols did before this function
            assert_eq!(
                without_query(target),
                target.split('?').next().unwrap_or(""),
                "{target:?}"
            );
        }
    }
}
