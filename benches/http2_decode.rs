// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/2 decoding: Osprey's HPACK decoder side by side with the `hpack`
//! crate on the same header blocks (a gRPC call's and a browser's, a
//! connection's worth: the first blocks fill the dynamic table, the later
//! ones index it), frame + HPACK decode of the same blocks as HEADERS
//! frames, and DATA-heavy framing (16 KiB DATA frames: framing only, the
//! payload is counted, never copied). `cargo bench --bench http2_decode`;
//! numbers go to docs/performance.md.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use osprey::protocol::http1::Parse;
use osprey::protocol::http2::frame::{Frame, Framer, Step, DATA, FLAG_END_HEADERS, HEADERS};
use osprey::protocol::http2::hpack;

type Fields = Vec<(&'static str, String)>;

/// A grpcio unary call's request and response (headers and trailers),
/// `n` calls on one connection.
fn grpc(n: usize) -> Vec<Fields> {
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
fn browser(n: usize) -> Vec<Fields> {
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
fn encode(sets: &[Fields]) -> Vec<Vec<u8>> {
    let mut e = ::hpack::Encoder::new();
    sets.iter()
        .map(|f| e.encode(f.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))))
        .collect()
}

fn frames(blocks: &[Vec<u8>]) -> Vec<u8> {
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

fn ours(blocks: &[Vec<u8>]) -> usize {
    let mut d = hpack::Decoder::new(true);
    blocks
        .iter()
        .map(|b| d.decode(b, 1 << 16).expect("decodes").fields.len())
        .sum()
}

fn theirs(blocks: &[Vec<u8>]) -> usize {
    let mut d = ::hpack::Decoder::new();
    blocks
        .iter()
        .map(|b| d.decode(b).expect("decodes").len())
        .sum()
}

/// Frame the buffer and decode every HEADERS block.
fn framed(buf: &[u8]) -> usize {
    let mut f = Framer::new(false, 1 << 24, 1 << 20);
    let mut d = hpack::Decoder::new(true);
    let (mut at, mut n) = (0, 0);
    while at < buf.len() {
        match f.next(&buf[at..]) {
            Parse::Complete(step, k) => {
                if let Step::Frame(_, Frame::Headers { block, .. }) = step {
                    n += d.decode(block, 1 << 16).expect("decodes").fields.len();
                }
                at += k;
            }
            _ => panic!("bench input must frame"),
        }
    }
    n
}

/// Frame DATA frames: their payload goes by counted.
fn data_framing(buf: &[u8]) -> u64 {
    let mut f = Framer::new(false, 1 << 24, 1 << 20);
    let (mut at, mut body) = (0, 0);
    while at < buf.len() {
        match f.next(&buf[at..]) {
            Parse::Complete(step, k) => {
                at += k;
                if let Some(Step::Data(_, b)) = f.ended() {
                    body += b;
                }
                if let Step::Data(_, b) = step {
                    body += b;
                }
            }
            _ => panic!("bench input must frame"),
        }
    }
    body
}

fn bench(c: &mut Criterion) {
    for (name, sets) in [("grpc", grpc(100)), ("browser", browser(100))] {
        let blocks = encode(&sets);
        let bytes: usize = blocks.iter().map(Vec::len).sum();
        assert_eq!(ours(&blocks), theirs(&blocks));
        let mut g = c.benchmark_group(format!("hpack_{name}"));
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function("osprey", |b| b.iter(|| ours(black_box(&blocks))));
        g.bench_function("hpack_crate", |b| b.iter(|| theirs(black_box(&blocks))));
        let buf = frames(&blocks);
        g.bench_function("osprey_frames_and_hpack", |b| {
            b.iter(|| framed(black_box(&buf)))
        });
        g.finish();
    }
    // 4 MiB of DATA in 16 KiB frames
    let mut buf = Vec::new();
    let payload = vec![b'x'; 16_384];
    for i in 0..256u32 {
        buf.extend_from_slice(&16_384u32.to_be_bytes()[1..]);
        buf.push(DATA);
        buf.push(0);
        buf.extend_from_slice(&(i % 7 * 2 + 1).to_be_bytes());
        buf.extend_from_slice(&payload);
    }
    assert_eq!(data_framing(&buf), 256 * 16_384);
    let mut g = c.benchmark_group("h2_data_framing");
    g.throughput(Throughput::Bytes(buf.len() as u64));
    g.bench_function("osprey_16k_frames", |b| {
        b.iter(|| data_framing(black_box(&buf)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
