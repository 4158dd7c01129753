// SPDX-License-Identifier: GPL-3.0-or-later
//! The request target shared by the protocols: HTTP/1's request-target
//! and HTTP/2's `:path` give the records' `path` the same way.

/// The path of a request target: everything before the first `?` (the
/// query and the `?` left out). Nothing else is cut: a `#` stays (a
/// fragment is never sent on the wire, so one in a target is data), and
/// the authority of an absolute-form target is the caller's to strip.
pub fn without_query(target: &str) -> &str {
    // a byte scan: `?` is ASCII, so its index is a char boundary; for a
    // target of a few bytes the char searcher's set-up cost more
    match target.bytes().position(|b| b == b'?') {
        Some(q) => &target[..q],
        None => target,
    }
}

#[cfg(test)]
mod tests {
    use super::without_query;

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
