// SPDX-License-Identifier: GPL-3.0-or-later
//! The smallest HTTP/1.1 client that ClickHouse's HTTP interface needs:
//! one request per connection (`Connection: close`), std::net with
//! timeouts, Content-Length, chunked or read-to-close response bodies
//! (capped). Plain `http://` only.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// `http://[user[:password]@]host[:port][/path]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Without the leading `/`'s query part (`/` when none).
    pub path: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, String> {
        // messages never show a password: user info is masked in them
        let shown = match (url.find("://"), url.rfind('@')) {
            (Some(i), Some(j)) if j > i => format!("{}***{}", &url[..i + 3], &url[j..]),
            _ => url.to_string(),
        };
        let s = shown.as_str();
        let rest = match url.strip_prefix("http://") {
            Some(r) => r,
            None if s.starts_with("https://") => {
                return Err(format!(
                    "{s}: https is not supported; use http:// (a local ClickHouse, or a TLS proxy such as stunnel on this host)"
                ))
            }
            None => return Err(format!("{s}: expected http://HOST[:PORT]")),
        };
        let (auth_host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (auth, hostport) = match auth_host.rfind('@') {
            Some(i) => (Some(&auth_host[..i]), &auth_host[i + 1..]),
            None => (None, auth_host),
        };
        let (user, password) = match auth {
            Some(a) => match a.split_once(':') {
                Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
                None => (Some(a.to_string()), None),
            },
            None => (None, None),
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            // [v6]:port
            let end = h.find(']').ok_or_else(|| format!("{s}: unclosed ["))?;
            let port = match &h[end + 1..] {
                "" => 80,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| format!("{s}: bad port"))?,
            };
            (h[..end].to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("{s}: bad port {p:?}"))?,
                ),
                None => (hostport.to_string(), 80),
            }
        };
        if host.is_empty() {
            return Err(format!("{s}: no host"));
        }
        Ok(Url {
            host,
            port,
            user,
            password,
            path: path.to_string(),
        })
    }

    /// `host:port` as written (for messages).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_string()
    }
}

/// Longest response body kept (ClickHouse's answers to inserts are short;
/// an error text is cut here).
const MAX_BODY: usize = 1 << 20;

/// Percent-encode a query-string value.
pub fn encode_query(s: &str) -> String {
    let mut o = String::with_capacity(s.len() * 3 / 2);
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(b as char)
            }
            _ => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                o.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// One request: `POST` with `body` (or `GET` with none) to `url`'s host,
/// `path_query` as the request target. Connection errors, timeouts and a
/// malformed response are `Err`; any HTTP status is `Ok`.
pub fn request(
    url: &Url,
    method: &str,
    path_query: &str,
    body: &[&[u8]],
    timeout: Duration,
) -> io::Result<Response> {
    let addrs: Vec<_> = (url.host.as_str(), url.port).to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{}: no address", url.host));
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout.min(Duration::from_secs(5))) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut s = stream.ok_or(last)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let _ = s.set_nodelay(true);
    let len: usize = body.iter().map(|b| b.len()).sum();
    let mut head = format!(
        "{method} {path_query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {len}\r\n",
        url.authority()
    );
    if let Some(u) = &url.user {
        let cred = format!("{u}:{}", url.password.as_deref().unwrap_or(""));
        head.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64(cred.as_bytes())
        ));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    for b in body {
        s.write_all(b)?;
    }
    s.flush()?;
    let mut raw = Vec::new();
    s.take((MAX_BODY + 64 * 1024) as u64)
        .read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed HTTP response: {what}"),
    )
}

/// A whole response read to the connection's close.
pub fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let end = memchr::memmem::find(raw, b"\r\n\r\n").ok_or_else(|| bad("no end of head"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("status line"))?;
    let (mut chunked, mut clen) = (false, None);
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            } else if k.eq_ignore_ascii_case("content-length") {
                clen = v.parse::<usize>().ok();
            }
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = clen {
        rest[..n.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    let mut body = body;
    body.truncate(MAX_BODY);
    Ok(Response { status, body })
}

fn dechunk(mut b: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = memchr::memmem::find(b, b"\r\n").ok_or_else(|| bad("chunk size"))?;
        let size_txt = std::str::from_utf8(&b[..eol]).map_err(|_| bad("chunk size"))?;
        let size_txt = size_txt.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(size_txt, 16).map_err(|_| bad("chunk size"))?;
        b = &b[eol + 2..];
        if n == 0 {
            return Ok(out);
        }
        if b.len() < n {
            // cut by the close: keep what came
            out.extend_from_slice(b);
            return Ok(out);
        }
        out.extend_from_slice(&b[..n]);
        if out.len() > MAX_BODY {
            return Ok(out);
        }
        b = b.get(n + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:8123").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8123, "/")
        );
        let u = Url::parse("http://me:s3:cr@ch.local/").unwrap();
        assert_eq!(
            (u.user.as_deref(), u.password.as_deref(), u.port),
            (Some("me"), Some("s3:cr"), 80)
        );
        let u = Url::parse("http://[::1]:9/x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.authority()),
            ("::1", 9, "[::1]:9".into())
        );
        assert!(Url::parse("https://x").unwrap_err().contains("https"));
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http://x:99999").is_err());
        assert!(Url::parse("http://:1").is_err());
        let e = Url::parse("http://me:secret@h:99999").unwrap_err();
        assert!(!e.contains("secret") && e.contains("***@h"), "{e}");
    }

    #[test]
    fn responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nOk.xx").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"Ok."[..]));
        let r = parse_response(
            b"HTTP/1.1 500 Internal\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nCode\r\n3;x=1\r\n: 6\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.text().as_str()), (500, "Code: 6"));
        let r = parse_response(b"HTTP/1.0 404 Not Found\r\n\r\nno").unwrap();
        assert_eq!((r.status, r.text().as_str()), (404, "no"));
        for bad in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"HTTP/2 200\r\n\r\n",
            b"garbage\r\n\r\n",
            b"",
        ] {
            assert!(parse_response(bad).is_err(), "{bad:?}");
        }
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }

    #[test]
    fn encodings() {
        assert_eq!(encode_query("INSERT INTO a.b"), "INSERT%20INTO%20a.b");
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
