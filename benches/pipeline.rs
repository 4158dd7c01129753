// SPDX-License-Identifier: GPL-3.0-or-later
//! User-space cost per transaction: raw ring-buffer records (as the kernel
//! writes them) → decode → tracker → JSON line, the work the poller and a
//! worker do for every captured nginx request. `cargo bench --bench pipeline`;
//! numbers go to docs/performance.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use osprey::event::*;
use osprey::replay::{self, conn};
use osprey::track::{Tracker, TrackerConfig};

const CONNS: u32 = 32;
const TXNS: u64 = 200;

fn nginx_records(body: usize) -> Vec<Vec<u8>> {
    replay::nginx_records(CONNS, TXNS, body)
}

/// decode → tracker → JSON line into a discarding writer; returns records.
fn run(records: &[Vec<u8>]) -> usize {
    replay::run(records, std::io::sink()).expect("bench records decode")
}

/// Events of `n` new connections, one request each, on a tracker whose
/// table is already full: every new connection evicts the least recently
/// used one (the old table scanned all of them for it).
fn full_table_events(n: u32) -> Vec<Event> {
    let proc_ = ProcInfo {
        tgid: 3131,
        tid: 3131,
        comm: "nginx".into(),
    };
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    (0..n)
        .map(|c| {
            Event::Data(DataEvent {
                ts_ns: 1_000_000 + c as u64,
                start_ns: 0,
                conn: conn(c),
                proc: proc_.clone(),
                dir: Direction::Ingress,
                pos: 0,
                orig_len: req.len() as u32,
                payload: req.to_vec(),
                syscall: Syscall::Recvfrom,
                fault: false,
            })
        })
        .collect()
}

fn bench_full_table(c: &mut Criterion) {
    let cfg = TrackerConfig::default();
    let cap = cfg.max_conns as u32;
    let fill = full_table_events(cap);
    let churn: Vec<Event> = full_table_events(cap + 2_000).split_off(cap as usize);
    let mut g = c.benchmark_group("conn_table");
    g.throughput(Throughput::Elements(churn.len() as u64));
    g.bench_function("new_conns_at_the_cap", |b| {
        b.iter_batched(
            || {
                let mut t = Tracker::new(cfg.clone());
                let mut out = Vec::new();
                fill.iter().for_each(|e| t.on_event(e, &mut out));
                t
            },
            |mut t| {
                let mut out = Vec::new();
                churn.iter().for_each(|e| t.on_event(e, &mut out));
                t
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    for body in [100usize, 4096] {
        let recs = nginx_records(body);
        assert_eq!(
            run(&recs),
            (CONNS as u64 * TXNS) as usize,
            "one record per transaction"
        );
        g.throughput(Throughput::Elements(CONNS as u64 * TXNS));
        g.bench_function(format!("nginx_{body}B_per_txn"), |b| b.iter(|| run(&recs)));
    }
    g.finish();
}

criterion_group!(benches, bench, bench_full_table);
criterion_main!(benches);
