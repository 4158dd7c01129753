// SPDX-License-Identifier: GPL-3.0-or-later
//! Records per second through the whole pipeline with 0 (inline), 1, 2
//! and 4 workers: raw ring-buffer records of nginx's side of keep-alive
//! traffic (`osprey::replay::nginx_records`, 256 connections so that the
//! shards get even shares) decoded as the poller does, handed to the
//! workers through the batcher (a flush every 256 records: a poll round),
//! tracked and parsed there, serialised by the writer thread into a
//! discarding JSON-lines sink. Worker counts are interleaved over rounds
//! (the machine is noisy); per count: the median transactions per second
//! (wall clock, first record to the writer's last line) and the process's
//! CPU per transaction (all threads).
//!
//!   cargo bench --bench workers [-- ROUNDS [BODY]]
//!
//! docs/performance.md (*Workers*) has the numbers and what limits scaling.

use std::time::Instant;

use osprey::decode;
use osprey::pipeline::{Pipeline, TrackerWorker, Worker};
use osprey::replay;
use osprey::sink::JsonlSink;
use osprey::track::TrackerConfig;

const CONNS: u32 = 256;
const TXNS: u64 = 400;
const COUNTS: [usize; 4] = [0, 1, 2, 4];

fn cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// (transactions written, wall seconds, CPU seconds)
fn run(records: &[Vec<u8>], workers: usize) -> (u64, f64, f64) {
    let sink = Box::new(JsonlSink::new(std::io::sink()));
    let (c0, t0) = (cpu_s(), Instant::now());
    let p = Pipeline::start(
        workers,
        1024,
        |_| Box::new(TrackerWorker::new(TrackerConfig::default())) as Box<dyn Worker>,
        sink,
    );
    {
        let mut b = p.batcher();
        for (i, r) in records.iter().enumerate() {
            decode::decode_each(r, |ev, payload| b.push_parts(ev, payload))
                .expect("generated records decode");
            if i % 256 == 255 {
                b.flush();
            }
        }
    }
    let s = p.finish();
    assert!(s.sink_error.is_none(), "{:?}", s.sink_error);
    (s.stats.records, t0.elapsed().as_secs_f64(), cpu_s() - c0)
}

fn main() {
    // `cargo bench` passes --bench; numbers are the optional arguments
    let nums: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rounds = nums.first().copied().unwrap_or(5) as usize;
    let body = nums.get(1).copied().unwrap_or(100) as usize;
    let records = replay::nginx_records(CONNS, TXNS, body);
    let txns = CONNS as u64 * TXNS;
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); COUNTS.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); COUNTS.len()];
    run(&records, 0); // warm-up
    for r in 0..rounds {
        let order: Vec<usize> = if r % 2 == 0 {
            (0..COUNTS.len()).collect()
        } else {
            (0..COUNTS.len()).rev().collect()
        };
        for i in order {
            let (n, wall, cpu) = run(&records, COUNTS[i]);
            assert_eq!(n, txns, "every transaction written");
            rates[i].push(n as f64 / wall);
            cpus[i].push(cpu / n as f64 * 1e6);
        }
    }
    // the medians, each computed once (the rates' first is the inline one)
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rates: Vec<f64> = rates.into_iter().map(med).collect();
    let cpus: Vec<f64> = cpus.into_iter().map(med).collect();
    println!(
        "workers bench: {CONNS} connections x {TXNS} transactions, {body} B responses, \
         {rounds} rounds interleaved, {} CPUs; medians",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| workers | transactions/s | vs inline | CPU µs / txn (all threads) |");
    println!("|---|---|---|---|");
    let base = rates[0];
    for (i, w) in COUNTS.iter().enumerate() {
        println!(
            "| {} | {:.0} | {:.2}× | {:.2} |",
            if *w == 0 {
                "0 (inline)".to_string()
            } else {
                w.to_string()
            },
            rates[i],
            rates[i] / base,
            cpus[i]
        );
    }
}
