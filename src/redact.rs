// SPDX-License-Identifier: GPL-3.0-or-later
//! Redaction of credentials: header values and query parameter values.
//!
//! Records (`--headers` lists, `target`) get the value replaced by
//! [`REDACTED`]; raw event payloads (`--records events`) get each byte of
//! the value replaced by `*`, so that `orig_len`, `cap_len` and positions
//! stay true. What is redacted, and what cannot be, is in docs/security.md.

use std::borrow::Cow;
use std::sync::Arc;

/// What a redacted value is replaced by in records.
pub const REDACTED: &str = "[REDACTED]";

/// The byte a redacted value's bytes become in event payloads.
pub const MASK: u8 = b'*';

/// Header names redacted by default (compared ASCII-case-insensitively).
pub const DEFAULT_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-amz-security-token",
    "api-key",
];

/// Query parameter names redacted by default (compared after
/// percent-decoding, ASCII-case-insensitively).
pub const DEFAULT_PARAMS: &[&str] = &["token", "access_token", "api_key", "password", "sig"];

/// Which names are redacted; cheap to clone (shared).
#[derive(Clone, Debug, PartialEq)]
pub struct Redact(Option<Arc<Names>>);

#[derive(Debug, PartialEq)]
struct Names {
    headers: Vec<String>,
    params: Vec<String>,
    /// Length of the longest name in `headers`.
    longest_header: usize,
}

impl Default for Redact {
    /// The default lists.
    fn default() -> Self {
        Redact::with(&[], &[])
    }
}

impl Redact {
    /// Nothing redacted (`--no-redact`).
    pub fn off() -> Redact {
        Redact(None)
    }

    /// The default lists plus these header and parameter names.
    pub fn with(headers: &[String], params: &[String]) -> Redact {
        let lower = |d: &[&str], extra: &[String]| {
            let mut v: Vec<String> = d
                .iter()
                .map(|s| s.to_string())
                .chain(extra.iter().map(|s| s.to_ascii_lowercase()))
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let headers = lower(DEFAULT_HEADERS, headers);
        Redact(Some(Arc::new(Names {
            longest_header: headers.iter().map(|h| h.trim().len()).max().unwrap_or(0),
            headers,
            params: lower(DEFAULT_PARAMS, params),
        })))
    }

    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Is this header's value redacted?
    pub fn header(&self, name: &str) -> bool {
        self.0.as_ref().is_some_and(|n| {
            n.headers
                .iter()
                .any(|h| h.as_bytes().eq_ignore_ascii_case(name.trim().as_bytes()))
        })
    }

    fn param(&self, raw_name: &[u8]) -> bool {
        let Some(n) = &self.0 else { return false };
        let name = percent_decode(raw_name);
        n.params
            .iter()
            .any(|p| p.as_bytes().eq_ignore_ascii_case(&name))
    }

    /// Header pairs for output, values of redacted names replaced.
    pub fn headers(&self, h: &[(String, String)]) -> Vec<(String, String)> {
        h.iter()
            .map(|(n, v)| {
                if self.header(n) {
                    (n.clone(), REDACTED.to_string())
                } else {
                    (n.clone(), v.clone())
                }
            })
            .collect()
    }

    /// A request target with the values of redacted query parameters
    /// replaced by [`REDACTED`] (names, separators and empty values kept).
    pub fn target<'a>(&self, t: &'a str) -> Cow<'a, str> {
        if self.0.is_none() {
            return Cow::Borrowed(t);
        }
        let spans = self.param_values(t.as_bytes());
        if spans.is_empty() {
            return Cow::Borrowed(t);
        }
        let mut out = String::with_capacity(t.len() + spans.len() * REDACTED.len());
        let mut at = 0;
        for (s, e) in spans {
            out.push_str(&t[at..s]);
            out.push_str(REDACTED);
            at = e;
        }
        out.push_str(&t[at..]);
        Cow::Owned(out)
    }

    /// Byte ranges of the non-empty values of redacted parameters in the
    /// query of `t` (a target, possibly cut short). Ranges start after
    /// `=` and end at `&`, `;`, `#`, a space or the end: always on ASCII
    /// bytes, so they are char boundaries of a `str`.
    fn param_values(&self, t: &[u8]) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        let Some(q) = t.iter().position(|&b| b == b'?') else {
            return spans;
        };
        let end = t[q..]
            .iter()
            .position(|&b| b == b'#' || b == b' ')
            .map_or(t.len(), |p| q + p);
        let mut i = q + 1;
        while i <= end {
            let stop = t[i..end]
                .iter()
                .position(|&b| b == b'&' || b == b';')
                .map_or(end, |p| i + p);
            let pair = &t[i..stop];
            if let Some(eq) = pair.iter().position(|&b| b == b'=') {
                if eq + 1 < pair.len() && self.param(&pair[..eq]) {
                    spans.push((i + eq + 1, stop));
                }
            }
            i = stop + 1;
        }
        spans
    }

    /// A raw payload (one event's captured bytes, possibly cut anywhere)
    /// with the values of redacted headers and query parameters masked
    /// byte for byte ([`MASK`]): the length never changes. Recognised: a
    /// line `Name: value` whose name starts this payload or follows a
    /// line break in it (the value masked up to the line's end or the
    /// payload's end), and the query of a request line (`METHOD target`)
    /// that starts this payload or a line in it.
    pub fn payload<'a>(&self, p: &'a [u8]) -> Cow<'a, [u8]> {
        if self.0.is_none() {
            return Cow::Borrowed(p);
        }
        let mut out: Option<Vec<u8>> = None;
        let mut start = 0;
        while start < p.len() {
            let nl = p[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(p.len(), |k| start + k);
            let line = &p[start..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            for (s, e) in self.line_secrets(line) {
                let o = out.get_or_insert_with(|| p.to_vec());
                o[start + s..start + e].fill(MASK);
            }
            start = nl + 1;
        }
        match out {
            Some(v) => Cow::Owned(v),
            None => Cow::Borrowed(p),
        }
    }

    /// Ranges to mask in one line (without its line break). Only the
    /// start of a line is looked at to decide (a header name, a method):
    /// a long body line costs a few bytes' look, not a scan.
    fn line_secrets(&self, line: &[u8]) -> Vec<(usize, usize)> {
        let Some(n) = &self.0 else { return vec![] };
        if !line.first().is_some_and(u8::is_ascii_alphabetic) {
            return vec![];
        }
        // a header: token ':' OWS value (the name no longer than the
        // longest redacted one)
        let head = &line[..line.len().min(n.longest_header + 1)];
        if let Some(colon) = head.iter().position(|&b| b == b':') {
            let name = &line[..colon];
            if name.iter().all(|&b| is_tchar(b))
                && std::str::from_utf8(name).is_ok_and(|n| self.header(n))
            {
                let mut s = colon + 1;
                while s < line.len() && (line[s] == b' ' || line[s] == b'\t') {
                    s += 1;
                }
                return if s < line.len() {
                    vec![(s, line.len())]
                } else {
                    vec![]
                };
            }
        }
        // a request line: method SP target [SP version]; methods are short
        let Some(sp) = line[..line.len().min(MAX_METHOD + 1)]
            .iter()
            .position(|&b| b == b' ')
        else {
            return vec![];
        };
        if sp == 0
            || !line[..sp]
                .iter()
                .all(|&b| b.is_ascii_uppercase() || b == b'-')
        {
            return vec![];
        }
        let target = &line[sp + 1..];
        let target = &target[..target
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(target.len())];
        self.param_values(target)
            .into_iter()
            .map(|(s, e)| (sp + 1 + s, sp + 1 + e))
            .collect()
    }
}

/// Longest request method looked for at a line's start in payloads
/// (`UPDATEREDIRECTREF`, the longest registered, has 17 letters).
const MAX_METHOD: usize = 24;

/// RFC 9110 token characters (header names).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `%XX` decoded (an invalid escape kept as it is), `+` as a space.
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> Redact {
        Redact::default()
    }

    fn pairs(h: &[(&str, &str)]) -> Vec<(String, String)> {
        h.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_headers_are_redacted_case_insensitively() {
        let h = pairs(&[
            ("Authorization", "Bearer x"),
            ("cookie", "a=b"),
            ("X-API-KEY", "k"),
            ("x-auth-token", "t"),
            ("X-Amz-Security-Token", "s"),
            ("Api-Key", "a"),
            ("Proxy-Authorization", "p"),
            ("Set-Cookie", "c"),
            ("Accept", "*/*"),
        ]);
        let r = on().headers(&h);
        for (n, v) in &r[..8] {
            assert_eq!(v, REDACTED, "{n}");
        }
        assert_eq!(r[8].1, "*/*");
    }

    #[test]
    fn no_redact_keeps_everything() {
        let h = pairs(&[("Authorization", "Bearer x")]);
        assert_eq!(Redact::off().headers(&h), h);
        assert_eq!(Redact::off().target("/a?token=x"), "/a?token=x");
        assert_eq!(&*Redact::off().payload(b"Cookie: a\r\n"), b"Cookie: a\r\n");
    }

    #[test]
    fn added_header_names_are_redacted() {
        let r = Redact::with(&["X-Secret".to_string()], &[]);
        let h = pairs(&[("x-secret", "s"), ("Authorization", "a"), ("X-Other", "o")]);
        let out = r.headers(&h);
        assert_eq!(
            out.iter().map(|p| p.1.as_str()).collect::<Vec<_>>(),
            [REDACTED, REDACTED, "o"]
        );
    }

    #[test]
    fn query_values_are_replaced_names_kept() {
        assert_eq!(
            on().target("/a?token=abc&limit=10"),
            "/a?token=[REDACTED]&limit=10"
        );
        assert_eq!(
            on().target("/a?limit=10&access_token=x.y.z"),
            "/a?limit=10&access_token=[REDACTED]"
        );
        assert_eq!(on().target("/a?q=1"), "/a?q=1");
        assert_eq!(on().target("/a/token=1"), "/a/token=1", "not a query");
    }

    #[test]
    fn semicolons_separate_params_too() {
        assert_eq!(
            on().target("/a?password=hunter2;user=bob"),
            "/a?password=[REDACTED];user=bob"
        );
    }

    #[test]
    fn repeated_params_are_each_redacted() {
        assert_eq!(
            on().target("/a?sig=1&sig=2&x=3&SIG=4"),
            "/a?sig=[REDACTED]&sig=[REDACTED]&x=3&SIG=[REDACTED]"
        );
    }

    #[test]
    fn percent_encoded_names_are_recognised() {
        assert_eq!(
            on().target("/a?api%5Fkey=k&acc%65ss_token=t"),
            "/a?api%5Fkey=[REDACTED]&acc%65ss_token=[REDACTED]"
        );
    }

    #[test]
    fn empty_and_valueless_params_stay_as_they_are() {
        assert_eq!(on().target("/a?token=&token"), "/a?token=&token");
        assert_eq!(on().target("/a?&&token=x&"), "/a?&&token=[REDACTED]&");
    }

    #[test]
    fn a_fragment_ends_the_query_and_absolute_targets_work() {
        assert_eq!(
            on().target("http://h/a?token=x#token=y"),
            "http://h/a?token=[REDACTED]#token=y"
        );
    }

    #[test]
    fn added_param_names_are_redacted() {
        let r = Redact::with(&[], &["Session".to_string()]);
        assert_eq!(
            r.target("/a?session=s&token=t"),
            "/a?session=[REDACTED]&token=[REDACTED]"
        );
    }

    #[test]
    fn payload_header_values_are_masked_with_the_same_length() {
        let p = b"GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer abc\r\nX-Api-Key:k1\r\n\r\n";
        let r = on().payload(p);
        assert_eq!(r.len(), p.len());
        assert_eq!(
            &*r,
            &b"GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: **********\r\nX-Api-Key:**\r\n\r\n"[..]
        );
    }

    #[test]
    fn payload_request_line_params_are_masked() {
        let p = b"GET /x?token=abc&q=1&password=pw HTTP/1.1\r\nHost: h\r\n\r\n";
        let r = on().payload(p);
        assert_eq!(
            &*r,
            &b"GET /x?token=***&q=1&password=** HTTP/1.1\r\nHost: h\r\n\r\n"[..]
        );
    }

    #[test]
    fn payload_cut_inside_a_value_masks_what_is_there() {
        // the capture cap cut the header value, then the request line
        assert_eq!(&*on().payload(b"Cookie: sess=abcd"), b"Cookie: *********");
        assert_eq!(
            &*on().payload(b"POST /login?password=hun"),
            b"POST /login?password=***"
        );
    }

    #[test]
    fn payload_lines_of_a_pipelined_second_request_are_masked() {
        let p = b"GET /a HTTP/1.1\r\n\r\nGET /b?sig=s HTTP/1.1\r\nCookie: c\r\n\r\n";
        assert_eq!(
            &*on().payload(p),
            &b"GET /a HTTP/1.1\r\n\r\nGET /b?sig=* HTTP/1.1\r\nCookie: *\r\n\r\n"[..]
        );
    }

    #[test]
    fn payload_long_added_header_names_and_long_targets_are_masked() {
        let r = Redact::with(
            &["X-A-Very-Long-Credential-Header-Name".to_string()],
            &["k".to_string()],
        );
        let long = "a".repeat(5000);
        let p = format!(
            "GET /{long}?k=v&sig=12 HTTP/1.1\r\nx-a-very-long-credential-header-name: s3\r\n\r\n"
        );
        let want = format!(
            "GET /{long}?k=*&sig=** HTTP/1.1\r\nx-a-very-long-credential-header-name: **\r\n\r\n"
        );
        assert_eq!(&*r.payload(p.as_bytes()), want.as_bytes());
    }

    #[test]
    fn payload_without_secrets_is_not_copied() {
        let p = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert!(matches!(on().payload(p), Cow::Borrowed(_)));
    }

    #[test]
    fn payload_binary_garbage_never_panics_and_keeps_its_length() {
        let mut p: Vec<u8> = (0..=255u8).collect();
        p.extend_from_slice(b"\ncookie:\n:\n?\nA ?=&;%\nGET ?token=%\xff");
        let r = on().payload(&p);
        assert_eq!(r.len(), p.len());
        assert_eq!(on().target("?%"), "?%");
        assert_eq!(on().target("?%4"), "?%4");
    }
}
