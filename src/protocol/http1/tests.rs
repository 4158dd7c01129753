// SPDX-License-Identifier: GPL-3.0-or-later
//! Parser table tests. `cases()` is shared with the tracker tests.

use super::parser::*;

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Request,
    /// Response to a request with this method; `eof`: body ends at close.
    Response {
        method: &'static str,
        eof: bool,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Case {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub kind: Kind,
    pub framing: BodyFraming,
    pub body_bytes: u64,
    pub header_count: usize,
}

fn case(
    name: &'static str,
    s: &str,
    kind: Kind,
    framing: BodyFraming,
    body_bytes: u64,
    header_count: usize,
) -> Case {
    Case {
        name,
        bytes: s.as_bytes().to_vec(),
        kind,
        framing,
        body_bytes,
        header_count,
    }
}

fn resp(method: &'static str) -> Kind {
    Kind::Response { method, eof: false }
}

pub(crate) fn cases() -> Vec<Case> {
    use BodyFraming::*;
    vec![
        case(
            "get_with_headers",
            "GET /index.html?q=1&r=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nAuthorization: Bearer secret\r\n\r\n",
            Kind::Request,
            None,
            0,
            4,
        ),
        case(
            "post_content_length",
            "POST /api/items HTTP/1.1\r\nHost: api.local\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\":[1,2,3]}",
            Kind::Request,
            Length(13),
            13,
            3,
        ),
        case(
            "post_chunked",
            "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=1\r\n, world\r\n0\r\n\r\n",
            Kind::Request,
            Chunked,
            12,
            2,
        ),
        case(
            "response_content_length",
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 11\r\n\r\nhello world",
            resp("GET"),
            Length(11),
            11,
            2,
        ),
        case(
            "response_chunked_ext_trailers",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Expires\r\n\r\n4;name=value\r\nWiki\r\n6 ; ext=\"q\"\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nExpires: Wed, 21 Oct 2015 07:28:00 GMT\r\nX-Checksum: abc\r\n\r\n",
            resp("GET"),
            Chunked,
            24,
            2,
        ),
        case("response_204", "HTTP/1.1 204 No Content\r\nDate: Sun, 29 Nov 2026 15:30:00 GMT\r\n\r\n", resp("DELETE"), None, 0, 1),
        case(
            "response_304",
            "HTTP/1.1 304 Not Modified\r\nETag: \"abc\"\r\nContent-Length: 1234\r\n\r\n",
            resp("GET"),
            None,
            0,
            2,
        ),
        case(
            "response_to_head",
            "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 5000\r\n\r\n",
            resp("HEAD"),
            None,
            0,
            2,
        ),
        case("response_100_continue", "HTTP/1.1 100 Continue\r\n\r\n", resp("POST"), None, 0, 0),
        case(
            "response_101_upgrade",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
            resp("GET"),
            Tunnel,
            0,
            3,
        ),
        case(
            "response_http10_close_delimited",
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nthis body ends when the connection closes",
            Kind::Response { method: "GET", eof: true },
            CloseDelimited,
            41,
            1,
        ),
        case(
            "response_repeated_headers",
            "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nVary: Accept\r\nvary: Accept-Encoding\r\nContent-Length: 3, 3\r\n\r\nabc",
            resp("GET"),
            Length(3),
            3,
            5,
        ),
        case("request_lf_only", "GET /lf HTTP/1.1\nHost: x\nAccept: */*\n\n", Kind::Request, None, 0, 2),
        case("request_http10", "GET /old HTTP/1.0\r\nUser-Agent: ancient/1.0\r\n\r\n", Kind::Request, None, 0, 1),
        case("response_no_reason", "HTTP/1.1 404\r\nContent-Length: 3\r\n\r\nnop", resp("GET"), Length(3), 3, 1),
        case(
            "request_connect",
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            Kind::Request,
            None,
            0,
            1,
        ),
        case(
            "request_leading_crlf_obs_text",
            "\r\nPUT /caf\u{e9} HTTP/1.1\r\nHost: x\r\nX-Name: caf\u{e9}  \r\nContent-Length: 0\r\n\r\n",
            Kind::Request,
            None,
            0,
            3,
        ),
    ]
}

fn full(c: &Case, buf: &[u8], eof: bool) -> Parse<u64> {
    match &c.kind {
        Kind::Request => match parse_full_request(buf) {
            Parse::Complete(m, n) => {
                assert_eq!(m.framing, c.framing, "{}", c.name);
                assert_eq!(m.head.headers.len(), c.header_count, "{}", c.name);
                Parse::Complete(m.body_bytes, n)
            }
            Parse::NeedMore => Parse::NeedMore,
            Parse::Invalid(e) => Parse::Invalid(e),
        },
        Kind::Response { method, .. } => match parse_full_response(buf, Some(method), eof) {
            Parse::Complete(m, n) => {
                assert_eq!(m.framing, c.framing, "{}", c.name);
                assert_eq!(m.head.headers.len(), c.header_count, "{}", c.name);
                Parse::Complete(m.body_bytes, n)
            }
            Parse::NeedMore => Parse::NeedMore,
            Parse::Invalid(e) => Parse::Invalid(e),
        },
    }
}

#[test]
fn table_full_messages_complete() {
    for c in cases() {
        let eof = matches!(c.kind, Kind::Response { eof: true, .. });
        assert_eq!(
            full(&c, &c.bytes, eof),
            Parse::Complete(c.body_bytes, c.bytes.len()),
            "case {}",
            c.name
        );
        // Trailing bytes (the next message) are not consumed.
        if !eof {
            let mut more = c.bytes.clone();
            more.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
            assert_eq!(
                full(&c, &more, false),
                Parse::Complete(c.body_bytes, c.bytes.len()),
                "case {} with trailing bytes",
                c.name
            );
        }
    }
}

#[test]
fn table_every_strict_prefix_needs_more() {
    for c in cases() {
        for k in 0..c.bytes.len() {
            assert_eq!(
                full(&c, &c.bytes[..k], false),
                Parse::NeedMore,
                "case {} prefix {}",
                c.name,
                k
            );
        }
    }
}

#[test]
fn table_head_lengths_and_fields() {
    let r = parse_request(&cases()[0].bytes);
    let Parse::Complete(h, n) = r else {
        panic!("{r:?}")
    };
    assert_eq!(n, cases()[0].bytes.len());
    assert_eq!(h.method, "GET");
    assert_eq!(h.target, "/index.html?q=1&r=2");
    assert_eq!(h.minor, 1);
    assert_eq!(h.headers.get("HOST"), Some("example.com"));
    assert_eq!(h.headers.get("user-agent"), Some("curl/8.5.0"));

    let rep = cases()
        .into_iter()
        .find(|c| c.name == "response_repeated_headers")
        .unwrap();
    let Parse::Complete(h, n) = parse_response(&rep.bytes) else {
        panic!()
    };
    assert_eq!(n, rep.bytes.len() - 3);
    assert_eq!(h.status, 200);
    assert_eq!(h.reason, "OK");
    assert_eq!(
        h.headers.get_all("set-cookie").collect::<Vec<_>>(),
        vec!["a=1", "b=2"]
    );
    assert_eq!(
        h.headers.get_all("VARY").collect::<Vec<_>>(),
        vec!["Accept", "Accept-Encoding"]
    );
    assert_eq!(
        h.headers.iter().nth(3).unwrap().0,
        "vary",
        "original case kept"
    );

    let obs = cases()
        .into_iter()
        .find(|c| c.name == "request_leading_crlf_obs_text")
        .unwrap();
    let Parse::Complete(h, _) = parse_request(&obs.bytes) else {
        panic!()
    };
    assert_eq!(h.method, "PUT");
    assert_eq!(h.target, "/caf\u{e9}");
    assert_eq!(
        h.headers.get("x-name"),
        Some("caf\u{e9}"),
        "trailing OWS trimmed"
    );

    let nr = cases()
        .into_iter()
        .find(|c| c.name == "response_no_reason")
        .unwrap();
    let Parse::Complete(h, _) = parse_response(&nr.bytes) else {
        panic!()
    };
    assert_eq!((h.status, h.reason.as_str()), (404, ""));
}

#[test]
fn differential_against_httparse() {
    for c in cases() {
        match c.kind {
            Kind::Request => {
                let mut hs = [httparse::EMPTY_HEADER; 64];
                let mut r = httparse::Request::new(&mut hs);
                let st = r.parse(&c.bytes).expect("httparse accepts");
                let httparse::Status::Complete(n) = st else {
                    panic!("{}", c.name)
                };
                let Parse::Complete(h, m) = parse_request(&c.bytes) else {
                    panic!("{}", c.name)
                };
                assert_eq!(m, n, "{}", c.name);
                assert_eq!(Some(&*h.method), r.method, "{}", c.name);
                assert_eq!(r.headers.len(), h.headers.len(), "{}", c.name);
                assert_eq!(r.version, Some(h.minor), "{}", c.name);
            }
            Kind::Response { .. } => {
                let mut hs = [httparse::EMPTY_HEADER; 64];
                let mut r = httparse::Response::new(&mut hs);
                let st = r.parse(&c.bytes).expect("httparse accepts");
                let httparse::Status::Complete(n) = st else {
                    panic!("{}", c.name)
                };
                let Parse::Complete(h, m) = parse_response(&c.bytes) else {
                    panic!("{}", c.name)
                };
                assert_eq!(m, n, "{}", c.name);
                assert_eq!(r.code, Some(h.status), "{}", c.name);
                assert_eq!(r.headers.len(), h.headers.len(), "{}", c.name);
            }
        }
    }
}

fn invalid_req(b: &[u8]) -> bool {
    matches!(parse_full_request(b), Parse::Invalid(_))
}
fn invalid_resp(b: &[u8]) -> bool {
    matches!(
        parse_full_response(b, Some("GET"), false),
        Parse::Invalid(_)
    )
}

#[test]
fn malformed_inputs_are_invalid() {
    let reqs: Vec<Vec<u8>> = vec![
        b"G@T / HTTP/1.1\r\n\r\n".to_vec(),
        b"GET / HTTP/2.0\r\n\r\n".to_vec(),
        b"GET / HTTX/1.1\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1x\r\n\r\n".to_vec(),
        b"GET  / HTTP/1.1\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\n  folded\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n".to_vec(),
        b"GET /\x7f HTTP/1.1\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: \r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 junk\r\nabc\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n".to_vec(),
        [
            b"X".repeat(MAX_METHOD_LEN + 1),
            b" / HTTP/1.1\r\n\r\n".to_vec(),
        ]
        .concat(),
    ];
    for r in &reqs {
        assert!(
            invalid_req(r),
            "{:?} -> {:?}",
            String::from_utf8_lossy(r),
            parse_full_request(r)
        );
    }
    let resps: Vec<&[u8]> = vec![
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/3.0 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
        b"http/1.1 200 OK\r\n\r\n",
    ];
    for r in &resps {
        assert!(invalid_resp(r), "{:?}", String::from_utf8_lossy(r));
    }
}

#[test]
fn caps_are_enforced() {
    // Huge header: Invalid once the cap is reached, NeedMore before.
    let mut big = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES - big.len() - 1));
    assert_eq!(parse_request(&big), Parse::NeedMore);
    big.extend_from_slice(b"aaaa");
    assert_eq!(parse_request(&big), Parse::Invalid("head too large"));
    // A head that fits exactly is fine.
    let mut fits = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    fits.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES - fits.len() - 4));
    fits.extend_from_slice(b"\r\n\r\n");
    assert_eq!(fits.len(), MAX_HEAD_BYTES);
    assert!(matches!(parse_request(&fits), Parse::Complete(_, n) if n == MAX_HEAD_BYTES));
    // Header count.
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    let mut ok = many.clone();
    ok.extend_from_slice(b"\r\n");
    assert!(matches!(parse_request(&ok), Parse::Complete(h, _) if h.headers.len() == MAX_HEADERS));
    many.extend_from_slice(b"X-one-more: v\r\n\r\n");
    assert_eq!(parse_request(&many), Parse::Invalid("too many headers"));
    // Chunk line cap.
    let mut d = ChunkedDecoder::new();
    let mut line = b"1;".to_vec();
    line.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE + 10));
    assert!(matches!(d.feed(&line), ChunkStep::Invalid(_)));
}

#[test]
fn framing_rules() {
    let rq = |s: &str| match parse_request(s.as_bytes()) {
        Parse::Complete(h, _) => request_framing(&h),
        p => panic!("{p:?}"),
    };
    let rs = |m: Option<&str>, s: &str| match parse_response(s.as_bytes()) {
        Parse::Complete(h, _) => response_framing(m, &h),
        p => panic!("{p:?}"),
    };
    assert_eq!(rq("GET / HTTP/1.1\r\n\r\n"), Ok(BodyFraming::None));
    assert_eq!(
        rq("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n"),
        Ok(BodyFraming::Chunked),
        "TE overrides CL"
    );
    assert_eq!(
        rs(
            Some("GET"),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"
        ),
        Ok(BodyFraming::CloseDelimited)
    );
    assert_eq!(
        rs(
            Some("CONNECT"),
            "HTTP/1.1 200 Connection Established\r\n\r\n"
        ),
        Ok(BodyFraming::Tunnel)
    );
    assert_eq!(
        rs(
            Some("CONNECT"),
            "HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\n"
        ),
        Ok(BodyFraming::Length(2))
    );
    assert_eq!(
        rs(None, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Ok(BodyFraming::None)
    );
    assert_eq!(
        rs(
            Some("GET"),
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        ),
        Ok(BodyFraming::None)
    );
    assert!(is_interim(100) && is_interim(103) && !is_interim(101) && !is_interim(200));
}

#[test]
fn chunked_decoder_incremental_and_skip() {
    let body = b"4;a=b\r\nWiki\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\nNEXT";
    // Feed byte by byte, keeping unconsumed bytes like the tracker does.
    let mut d = ChunkedDecoder::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut consumed_total = 0;
    let mut done_at = None;
    for (i, &b) in body.iter().enumerate() {
        pending.push(b);
        match d.feed(&pending) {
            ChunkStep::Progress(n) => {
                consumed_total += n;
                pending.drain(..n);
            }
            ChunkStep::Done(n) => {
                consumed_total += n;
                done_at = Some(i);
                break;
            }
            ChunkStep::Invalid(e) => panic!("{e}"),
        }
    }
    assert_eq!(done_at, Some(body.len() - 5));
    assert_eq!(consumed_total, body.len() - 4);
    assert_eq!(d.data_bytes, 20);
    assert_eq!(d.wire_bytes as usize, body.len() - 4);

    // Skip inside chunk data keeps sync.
    let mut d = ChunkedDecoder::new();
    assert_eq!(d.feed(b"10\r\n0123"), ChunkStep::Progress(8));
    assert_eq!(d.data_remaining(), Some(12));
    assert!(d.skip(10));
    assert_eq!(d.feed(b"ef\r\n0\r\n\r\n"), ChunkStep::Done(9));
    assert_eq!(d.data_bytes, 16);
    // Skipping data plus its CRLF is accepted; beyond is not.
    let mut d = ChunkedDecoder::new();
    assert_eq!(d.feed(b"3\r\n"), ChunkStep::Progress(3));
    assert!(d.skip(5));
    assert_eq!(d.feed(b"0\r\n\r\n"), ChunkStep::Done(5));
    let mut d = ChunkedDecoder::new();
    assert_eq!(d.feed(b"3\r\n"), ChunkStep::Progress(3));
    assert!(!d.skip(6));
    // Skipping in the size line is refused.
    let mut d = ChunkedDecoder::new();
    assert!(!d.skip(1));
}

#[test]
fn plausible_starts() {
    assert!(plausible_request_start(b"GET / HTTP/1.1\r\n"));
    assert!(plausible_request_start(b"GE"));
    assert!(plausible_request_start(b"OPTIONS * HTTP/1.1\r\n\r\n"));
    assert!(!plausible_request_start(b"GETX / HTTP/1.1\r\n"));
    assert!(!plausible_request_start(b"get / HTTP/1.1\r\n"));
    assert!(!plausible_request_start(b"GET / HTTP/1.1 garbage"));
    assert!(!plausible_request_start(b"BREW / HTTP/1.1\r\n"));
    assert!(plausible_response_start(b"HTTP/1.1 200 OK\r\n"));
    assert!(plausible_response_start(b"HTT"));
    assert!(!plausible_response_start(b"HTTP/1.1 2x"));
    assert!(!plausible_response_start(b"HTTP/2 200"));
}
