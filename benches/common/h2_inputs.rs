// SPDX-License-Identifier: GPL-3.0-or-later
//! The HTTP/2 decoding inputs, shared by `benches/http2_decode.rs` (time)
//! and `examples/hpack_insns.rs` (instructions, `scripts/bench-hpack-insns`):
//! a connection's worth of header blocks, encoded once by the `hpack`
//! crate's encoder (the dynamic table in use, no Huffman), and the same
//! blocks as HEADERS frames.

#![allow(dead_code)]

use osprey::protocol::http1::Parse;
use osprey::protocol::http2::frame::{Frame, Framer, Step, FLAG_END_HEADERS, HEADERS};
use osprey::protocol::http2::hpack;

pub type Fields = Vec<(&'static str, String)>;

/// A grpcio unary call's request and response (headers and trailers),
/// `n` calls on one connection.
pub fn grpc(n: usize) -> Vec<Fields> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(vec![
            (":method", "POST".into()),
            (":scheme", "http".into()),
            (":path", format!("/osprey.test.Echo/Method{}", i % 4)),
            (":authority", "127.0.0.1:50051".into()),
            ("content-type", "application/grpc".into()),
            ("te", "trailers".into()),
            ("grpc-accept-encoding", "identity, deflate, gzip".into()),
            ("grpc-timeout", format!("{}m", 900 + i % 50)),
            (
                "user-agent",
                "grpc-python/1.85.3 grpc-c/52.0.0 (linux; chttp2)".into(),
            ),
        ]);
        v.push(vec![
            (":status", "200".into()),
            ("content-type", "application/grpc".into()),
            ("grpc-accept-encoding", "identity, deflate, gzip".into()),
        ]);
        v.push(vec![
            ("grpc-status", "0".into()),
            ("grpc-message", String::new()),
        ]);
    }
    v
}

/// A browser's page loads: big, mostly repeated request headers.
pub fn browser(n: usize) -> Vec<Fields> {
    (0..n)
        .map(|i| {
            vec![
                (":method", "GET".into()),
                (":scheme", "https".into()),
                (":authority", "www.example.com".into()),
                (":path", format!("/static/app/chunk-{i}.js?v=3f9a1c")),
                ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36".into()),
                ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8".into()),
                ("accept-language", "en-US,en;q=0.9,de;q=0.8".into()),
                ("accept-encoding", "gzip, deflate, br, zstd".into()),
                ("referer", "https://www.example.com/".into()),
                ("cookie", format!("session=8f7a6b5c4d3e2f1a{i:04}; _ga=GA1.2.1234567890.1700000000; theme=dark")),
                ("sec-fetch-dest", "script".into()),
                ("sec-fetch-mode", "no-cors".into()),
                ("sec-fetch-site", "same-origin".into()),
            ]
        })
        .collect()
}

/// The header blocks, encoded once by the `hpack` crate's encoder (with
/// the dynamic table; no Huffman).
pub fn encode(sets: &[Fields]) -> Vec<Vec<u8>> {
    let mut e = ::hpack::Encoder::new();
    sets.iter()
        .map(|f| e.encode(f.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))))
        .collect()
}

pub fn frames(blocks: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        v.extend_from_slice(&(b.len() as u32).to_be_bytes()[1..]);
        v.push(HEADERS);
        v.push(FLAG_END_HEADERS);
        v.extend_from_slice(&(2 * i as u32 + 1).to_be_bytes());
        v.extend_from_slice(b);
    }
    v
}

/// Osprey's decoder, as the tracker uses it (one `Block` reused): the
/// fields of every block.
pub fn ours(blocks: &[Vec<u8>]) -> usize {
    let mut d = hpack::Decoder::new(true);
    let mut out = hpack::Block::default();
    blocks
        .iter()
        .map(|b| {
            d.decode_into(b, 1 << 16, &mut out).expect("decodes");
            out.len()
        })
        .sum()
}

/// The `hpack` crate's decoder on the same blocks.
pub fn theirs(blocks: &[Vec<u8>]) -> usize {
    let mut d = ::hpack::Decoder::new();
    blocks
        .iter()
        .map(|b| d.decode(b).expect("decodes").len())
        .sum()
}

/// Frame the buffer and decode every HEADERS block.
pub fn framed(buf: &[u8]) -> usize {
    let mut f = Framer::new(false, 1 << 24, 1 << 20);
    let mut d = hpack::Decoder::new(true);
    let mut out = hpack::Block::default();
    let (mut at, mut n) = (0, 0);
    while at < buf.len() {
        match f.next(&buf[at..]) {
            Parse::Complete(step, k) => {
                if let Step::Frame(_, Frame::Headers { block, .. }) = step {
                    d.decode_into(block, 1 << 16, &mut out).expect("decodes");
                    n += out.len();
                }
                at += k;
            }
            _ => panic!("bench input must frame"),
        }
    }
    n
}

/// The same blocks with every string literal Huffman-coded, as grpc-c,
/// browsers and nginx send them: the same representations, so the same
/// fields and the same dynamic table.
pub fn huffman(blocks: &[Vec<u8>]) -> Vec<Vec<u8>> {
    blocks.iter().map(|b| rehuff(b)).collect()
}

fn rehuff(b: &[u8]) -> Vec<u8> {
    let (mut at, mut out) = (0, Vec::new());
    while at < b.len() {
        let first = b[at];
        let s = at;
        let prefix = match first {
            f if f & 0x80 != 0 => 7,
            f if f & 0xe0 == 0x20 => 5,
            f if f & 0x40 != 0 => 6,
            _ => 4,
        };
        let i = int(b, &mut at, prefix);
        out.extend_from_slice(&b[s..at]);
        if prefix == 7 || prefix == 5 {
            continue;
        }
        if i == 0 {
            huff_string(b, &mut at, &mut out);
        }
        huff_string(b, &mut at, &mut out);
    }
    out
}

/// An HPACK integer with an `n`-bit prefix at `b[*at]`.
fn int(b: &[u8], at: &mut usize, n: u32) -> usize {
    let mask = (1usize << n) - 1;
    let mut v = b[*at] as usize & mask;
    *at += 1;
    if v == mask {
        let mut shift = 0;
        loop {
            let c = b[*at];
            *at += 1;
            v += ((c & 0x7f) as usize) << shift;
            shift += 7;
            if c & 0x80 == 0 {
                break;
            }
        }
    }
    v
}

fn huff_string(b: &[u8], at: &mut usize, out: &mut Vec<u8>) {
    assert_eq!(b[*at] & 0x80, 0, "the hpack crate does not Huffman-code");
    let len = int(b, at, 7);
    let mut h = Vec::new();
    osprey::protocol::http2::huffman::encode(&b[*at..*at + len], &mut h);
    *at += len;
    // the length with a 7-bit prefix, the H bit set
    if h.len() < 127 {
        out.push(0x80 | h.len() as u8);
    } else {
        out.push(0xff);
        let mut v = h.len() - 127;
        while v >= 128 {
            out.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        out.push(v as u8);
    }
    out.extend_from_slice(&h);
}

/// The named input set's header blocks: `grpc`, `browser`, or either with
/// `-huff` (string literals Huffman-coded).
pub fn set(name: &str) -> Option<Vec<Vec<u8>>> {
    let (base, huff) = match name.strip_suffix("-huff") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let blocks = match base {
        "grpc" => encode(&grpc(100)),
        "browser" => encode(&browser(100)),
        _ => return None,
    };
    Some(if huff { huffman(&blocks) } else { blocks })
}

/// The input sets, by name.
pub const SETS: [&str; 4] = ["grpc", "browser", "grpc-huff", "browser-huff"];
