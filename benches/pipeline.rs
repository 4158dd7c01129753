// SPDX-License-Identifier: GPL-3.0-or-later
//! User-space cost per transaction: raw ring-buffer records (as the kernel
//! writes them) → decode → tracker → JSON line, the work the poller and a
//! worker do for every captured nginx request. `cargo bench --bench pipeline`;
//! numbers go to docs/performance.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use osprey::decode;
use osprey::event::*;
use osprey::output::Output;
use osprey::pipeline::{TrackerWorker, Worker};
use osprey::sink::{JsonlSink, Sink};
use osprey::track::{Tracker, TrackerConfig};

const CONNS: u32 = 32;
const TXNS: u64 = 200;

/// nginx's side of `wrk -c32` keep-alive traffic: per request one recvfrom
/// record and one writev record (head + body, the first 4096 bytes
/// captured), as raw ring records.
fn nginx_records(body: usize) -> Vec<Vec<u8>> {
    let req = b"GET /r100 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
    let head = format!(
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 29 Nov 2026 15:35:40 GMT\r\n\
Content-Type: application/octet-stream\r\nContent-Length: {body}\r\nLast-Modified: Sun, 29 Nov 2026 15:00:00 GMT\r\n\
Connection: keep-alive\r\nETag: \"6a4b1c2d-64\"\r\nAccept-Ranges: bytes\r\n\r\n"
    );
    let mut resp = head.into_bytes();
    resp.extend((0..body).map(|i| b'a' + (i % 26) as u8));
    let resp_len = resp.len() as u64;
    resp.truncate(4096);
    let proc_ = ProcInfo {
        tgid: 3131,
        tid: 3131,
        comm: "nginx".into(),
    };
    let mut out = Vec::new();
    let mut ts = 1_000_000_000u64;
    let mut pos = vec![[0u64; 2]; CONNS as usize];
    for c in 0..CONNS {
        out.push(decode::encode(&Event::Open(ConnOpen {
            ts_ns: ts,
            conn: conn(c),
            proc: proc_.clone(),
            role: Role::Server,
            addrs: Some(SockAddrs {
                local: "127.0.0.1:8080".parse().unwrap(),
                remote: format!("127.0.0.1:{}", 40000 + c).parse().unwrap(),
            }),
            midstream: false,
            syscall: Syscall::Accept4,
            cgroup_id: 0,
            identity: None,
        })));
    }
    for _ in 0..TXNS {
        for c in 0..CONNS {
            let p = &mut pos[c as usize];
            let mut data = |dir: Direction, bytes: &[u8], len: u64, sys: Syscall, ts: u64| {
                let ev = Event::Data(DataEvent {
                    ts_ns: ts,
                    start_ns: ts - 2_000,
                    conn: conn(c),
                    proc: proc_.clone(),
                    dir,
                    pos: p[dir.index()],
                    orig_len: len as u32,
                    payload: bytes.to_vec(),
                    syscall: sys,
                });
                p[dir.index()] += len;
                decode::encode(&ev)
            };
            ts += 10_000;
            out.push(data(
                Direction::Ingress,
                req,
                req.len() as u64,
                Syscall::Recvfrom,
                ts,
            ));
            out.push(data(
                Direction::Egress,
                &resp,
                resp_len,
                Syscall::Writev,
                ts + 5_000,
            ));
        }
    }
    out
}

fn conn(c: u32) -> ConnId {
    ConnId {
        tgid: 3131,
        proc_start_ns: 5_000_000,
        fd: 10 + c as i32,
        gen: 100 + c as u64,
    }
}

/// decode → tracker → JSON line into a discarding writer; returns records.
fn run(records: &[Vec<u8>]) -> usize {
    let mut w = TrackerWorker::new(TrackerConfig::default());
    let mut sink = JsonlSink::new(std::io::sink());
    let mut out: Vec<Output> = Vec::new();
    let mut n = 0;
    for r in records {
        // as the poller does: the payload stays in the record
        decode::decode_each(r, |ev, payload| w.on_event_parts(ev, payload, &mut out))
            .expect("bench records decode");
        for o in out.drain(..) {
            sink.emit(&o).unwrap();
            n += 1;
        }
    }
    n
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
