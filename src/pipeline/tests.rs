// SPDX-License-Identifier: GPL-3.0-or-later
//! Tests of [`crate::pipeline`] (a file of their own: `pipeline.rs` keeps the code).

use super::*;
use crate::event::*;
use crate::sink::VecSink;

pub(crate) fn data(fd: i32, pos: u64) -> Event {
    Event::Data(DataEvent {
        ts_ns: pos + 1,
        start_ns: 0,
        conn: ConnId {
            tgid: 1,
            proc_start_ns: 0,
            fd,
            gen: fd as u64,
        },
        proc: ProcInfo {
            tgid: 1,
            tid: 1,
            comm: "t".into(),
        },
        dir: Direction::Egress,
        pos,
        orig_len: 1,
        payload: vec![b'x'],
        syscall: Syscall::Write,
        fault: false,
    })
}

struct BrokenPipe;
impl Sink for BrokenPipe {
    fn emit(&mut self, _: &Output) -> std::io::Result<()> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }
}

#[test]
fn a_failing_sink_makes_the_pipeline_unhealthy() {
    for workers in [0, 2] {
        let p = Pipeline::start(
            workers,
            8,
            |_| Box::new(EventsWorker::new(0, crate::redact::Redact::default())),
            Box::new(BrokenPipe),
        );
        assert!(p.healthy());
        p.submit(data(1, 0));
        let t0 = Instant::now();
        while p.healthy() {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "workers {workers}: still healthy"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let s = p.finish();
        assert!(
            s.sink_error.is_some_and(|e| e.contains("roken pipe")),
            "workers {workers}"
        );
    }
}

/// A pipeline of `workers` event workers (0: inline) into a [`VecSink`],
/// and the sink's lines.
fn events_pipeline(workers: usize) -> (Pipeline, Arc<std::sync::Mutex<Vec<String>>>) {
    let sink = VecSink::default();
    let lines = sink.0.clone();
    let p = Pipeline::start(
        workers,
        8,
        |_| Box::new(EventsWorker::new(0, crate::redact::Redact::default())),
        Box::new(sink),
    );
    (p, lines)
}

#[test]
fn inline_mode_processes_in_the_callers_thread() {
    let (p, lines) = events_pipeline(0);
    let mut b = p.batcher();
    for pos in 0..100 {
        b.push(data(1, pos));
    }
    // no thread: the records are written before push returns
    assert_eq!(lines.lock().unwrap().len(), 100);
    b.flush();
    drop(b);
    p.submit(data(2, 0));
    let s = p.finish();
    assert_eq!((s.stats.events, s.stats.records), (101, 101));
    assert_eq!(s.workers.len(), 1);
}

#[test]
fn inline_counts_are_published_at_the_end_of_a_round_and_the_lock_let_go() {
    let (p, lines) = events_pipeline(0);
    let mut b = p.batcher();
    for pos in 0..10 {
        b.push_parts(data(1, pos), b"x");
    }
    assert_eq!(lines.lock().unwrap().len(), 10);
    // counted in the round, told at its end
    assert_eq!((p.stats().events, p.stats().records), (0, 0));
    b.flush();
    assert_eq!((p.stats().events, p.stats().records), (10, 10));
    // the batcher holds no lock between rounds: a submit in between goes through
    p.submit(data(2, 0));
    assert_eq!((p.stats().events, p.stats().records), (11, 11));
    b.push(data(1, 10));
    drop(b); // a dropped batcher ends its round
    let s = p.finish();
    assert_eq!((s.stats.events, s.stats.records), (12, 12));
}

#[test]
fn batched_submission_keeps_order_and_counts() {
    let (p, lines) = events_pipeline(2);
    {
        let mut b = p.batcher();
        for pos in 0..1000 {
            for fd in 0..5 {
                b.push(data(fd, pos));
            }
            if pos % 97 == 0 {
                b.flush();
            }
        }
    } // drop flushes the rest
    let s = p.finish();
    assert_eq!(s.stats.events, 5000);
    let lines = lines.lock().unwrap();
    assert_eq!(lines.len(), 5000);
    let mut next = [0u64; 5];
    for l in lines.iter() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let fd = v["fd"].as_u64().unwrap() as usize;
        assert_eq!(v["pos"].as_u64().unwrap(), next[fd]);
        next[fd] += 1;
    }
}

/// The poller's path (payload left in the ring record) gives the lines
/// of the owned path, inline and with workers, for every worker kind.
#[test]
fn payload_in_place_gives_the_same_lines() {
    use crate::track::{Tracker, TrackerConfig};
    let evs = crate::synthetic::Synthetic::new(512, 7).generate(6, 25);
    let raw: Vec<Vec<u8>> = evs.iter().map(crate::decode::encode).collect();
    let run = |workers: usize, parts: bool, transactions: bool| {
        let sink = VecSink::default();
        let lines = sink.0.clone();
        let p = Pipeline::start(
            workers,
            64,
            |_| -> Box<dyn Worker> {
                if transactions {
                    Box::new(TrackerWorker::new(TrackerConfig::default()))
                } else {
                    Box::new(EventsWorker::new(0, crate::redact::Redact::default()))
                }
            },
            Box::new(sink),
        );
        {
            let mut b = p.batcher();
            for r in &raw {
                if parts {
                    crate::decode::decode_each(r, |ev, payload| b.push_parts(ev, payload)).unwrap();
                } else {
                    crate::decode::decode_all(r)
                        .unwrap()
                        .into_iter()
                        .for_each(|ev| b.push(ev));
                }
            }
        }
        p.finish();
        let mut l = lines.lock().unwrap().clone();
        l.sort();
        l
    };
    let mut t = Tracker::new(TrackerConfig::default());
    let mut recs = Vec::new();
    evs.iter().for_each(|e| t.on_event(e, &mut recs));
    t.flush_all(&mut recs);
    assert!(
        recs.len() >= 100,
        "the synthetic traffic makes transactions"
    );
    assert!(t.stats().truncated_bytes > 0, "and truncated bodies");
    for transactions in [true, false] {
        let owned = run(0, false, transactions);
        assert!(!owned.is_empty());
        assert_eq!(
            run(0, true, transactions),
            owned,
            "inline, transactions {transactions}"
        );
        assert_eq!(
            run(2, true, transactions),
            owned,
            "workers, transactions {transactions}"
        );
    }
}

#[test]
fn per_connection_order_holds_and_nothing_is_lost() {
    let sink = VecSink::default();
    let lines = sink.0.clone();
    let p = Pipeline::start(
        3,
        4,
        |_| Box::new(EventsWorker::new(0, crate::redact::Redact::default())),
        Box::new(sink),
    );
    for pos in 0..500 {
        for fd in 0..7 {
            p.submit(data(fd, pos));
        }
    }
    let s = p.finish();
    assert_eq!(s.stats.events, 3500);
    assert_eq!(s.stats.records, 3500);
    let lines = lines.lock().unwrap();
    assert_eq!(lines.len(), 3500);
    let mut next = [0u64; 7];
    for l in lines.iter() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let fd = v["fd"].as_u64().unwrap() as usize;
        assert_eq!(
            v["pos"].as_u64().unwrap(),
            next[fd],
            "order broken for fd {fd}"
        );
        next[fd] += 1;
    }
}
