// SPDX-License-Identifier: GPL-3.0-or-later
//! Fuzz the HTTP/1.x head parsers, body framing and the chunked decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey::protocol::http1::parser::{
    parse_full_request, parse_full_response, parse_request, parse_response, request_framing,
    response_framing, ChunkStep, ChunkedDecoder, Parse,
};

fuzz_target!(|data: &[u8]| {
    if let Parse::Complete(h, n) = parse_request(data) {
        assert!(n <= data.len());
        let _ = request_framing(&h);
        // A complete head stays complete (same length) with more bytes after it.
        let mut more = data[..n].to_vec();
        more.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert!(matches!(parse_request(&more), Parse::Complete(_, m) if m == n));
    }
    if let Parse::Complete(h, n) = parse_response(data) {
        assert!(n <= data.len());
        let _ = response_framing(Some("GET"), &h);
        let _ = response_framing(Some("HEAD"), &h);
        let _ = response_framing(None, &h);
    }
    if let Parse::Complete(_, n) = parse_full_request(data) {
        assert!(n <= data.len());
    }
    for eof in [false, true] {
        if let Parse::Complete(_, n) = parse_full_response(data, Some("GET"), eof) {
            assert!(n <= data.len());
        }
    }
    // Chunked decoder: one shot versus fed in two pieces must agree.
    let mut whole = ChunkedDecoder::new();
    let r1 = whole.feed(data);
    let cut = data
        .first()
        .map(|&b| b as usize % (data.len() + 1))
        .unwrap_or(0);
    let mut split = ChunkedDecoder::new();
    let mut buf = data[..cut].to_vec();
    let mut r2 = split.feed(&buf);
    if let ChunkStep::Progress(n) = r2 {
        buf.drain(..n);
        buf.extend_from_slice(&data[cut..]);
        r2 = split.feed(&buf);
    }
    match (r1, r2) {
        (ChunkStep::Done(_), ChunkStep::Done(_)) => assert_eq!(whole.data_bytes, split.data_bytes),
        (ChunkStep::Invalid(_), ChunkStep::Invalid(_)) => {}
        (ChunkStep::Progress(_), ChunkStep::Progress(_)) => {}
        (a, b) => panic!("whole {a:?} vs split {b:?}"),
    }
});
