// SPDX-License-Identifier: GPL-3.0-or-later
//! Decode one of `benches/http2_decode.rs`'s header block sets `--iters`
//! times with one decoder: the workload `scripts/bench-hpack-insns` counts
//! instructions of (two iteration counts subtracted, so the inputs'
//! generation and start-up cancel out).
//!
//!   hpack_insns --decoder osprey|hpack|framed --set grpc|browser|grpc-huff|browser-huff --iters N
//!
//! `framed`: Osprey's framer and decoder on the same blocks as HEADERS
//! frames. Prints the fields decoded (the same for every decoder).
use std::hint::black_box;
use std::process::ExitCode;

#[path = "../benches/common/h2_inputs.rs"]
mod h2_inputs;

fn main() -> ExitCode {
    let (mut decoder, mut set, mut iters) = (String::new(), String::new(), 1u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--decoder" => decoder = v,
            "--set" => set = v,
            "--iters" => iters = v.parse().unwrap_or(0),
            _ => {
                eprintln!("hpack_insns --decoder osprey|hpack|framed --set SET --iters N");
                return ExitCode::from(2);
            }
        }
    }
    let Some(blocks) = h2_inputs::set(&set) else {
        eprintln!("hpack_insns: --set one of {:?}", h2_inputs::SETS);
        return ExitCode::from(2);
    };
    let buf = h2_inputs::frames(&blocks);
    let mut n = 0;
    for _ in 0..iters {
        n += match decoder.as_str() {
            "osprey" => h2_inputs::ours(black_box(&blocks)),
            "hpack" => h2_inputs::theirs(black_box(&blocks)),
            "framed" => h2_inputs::framed(black_box(&buf)),
            _ => {
                eprintln!("hpack_insns: --decoder osprey, hpack or framed");
                return ExitCode::from(2);
            }
        };
    }
    println!("fields {n}");
    ExitCode::SUCCESS
}
