// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/2 decoding: Osprey's HPACK decoder side by side with the `hpack`
//! crate on the same header blocks (a gRPC call's and a browser's, a
//! connection's worth: the first blocks fill the dynamic table, the later
//! ones index it; each also with its string literals Huffman-coded), frame + HPACK decode of the same blocks as HEADERS
//! frames, and DATA-heavy framing (16 KiB DATA frames: framing only, the
//! payload is counted, never copied). `cargo bench --bench http2_decode`;
//! numbers go to docs/performance.md.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use osprey::protocol::http1::Parse;
use osprey::protocol::http2::frame::{Framer, Step, DATA};

#[path = "common/h2_inputs.rs"]
mod h2_inputs;
use h2_inputs::{framed, frames, ours, set, theirs, SETS};

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
    for name in SETS {
        let blocks = set(name).expect("a set");
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
