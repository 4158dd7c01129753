// SPDX-License-Identifier: GPL-3.0-or-later
//! Several sinks at once. The record stream (`-o`/stdout, JSON lines) is
//! written where the pipeline writes it, with the pipeline's back-pressure
//! (a slow output blocks the poller, and the kernel counts what it then
//! drops). Every other sink (metrics, ClickHouse) runs in a thread of its
//! own behind a bounded queue: records go to it in shared batches (no copy
//! per sink), offered without waiting; what does not fit in its queue is
//! counted (`queue_full`, part of its `sink_dropped`), so a slow or dead
//! sink never stalls the probe or the other sinks.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};

use super::{Sink, SinkCounts, SinkReport};
use crate::output::Output;

/// Records held before a batch goes to the queued sinks (also sent at
/// every flush, i.e. every poll round).
const BATCH: usize = 256;

/// Default bound of a queued sink's queue, in records.
pub const DEFAULT_QUEUE: usize = 16384;

/// How often a queued sink's thread calls [`Sink::tick`].
const TICK: Duration = Duration::from_millis(100);

#[derive(Default)]
struct QueueCounters {
    /// Records in the queue now (the bound is on this).
    held: AtomicU64,
    queued: AtomicU64,
    queue_full: AtomicU64,
}

struct Queued {
    name: String,
    cap: u64,
    tx: Option<Sender<Arc<Vec<Output>>>>,
    handle: Option<JoinHandle<(SinkCounts, Option<String>)>>,
    c: Arc<QueueCounters>,
}

/// The record stream plus queued sinks (see the module documentation).
pub struct Fanout {
    primary: Option<Box<dyn Sink>>,
    queued: Vec<Queued>,
    pending: Vec<Output>,
}

impl Fanout {
    /// `primary`: the JSON lines (None: `--no-output`).
    pub fn new(primary: Option<Box<dyn Sink>>) -> Self {
        Fanout {
            primary,
            queued: Vec::new(),
            pending: Vec::with_capacity(BATCH),
        }
    }

    /// Run `sink` in a thread of its own behind a queue of at most `cap`
    /// records.
    pub fn add(&mut self, name: &str, mut sink: Box<dyn Sink>, cap: usize) {
        let (tx, rx): (Sender<Arc<Vec<Output>>>, Receiver<Arc<Vec<Output>>>) = unbounded();
        let c = Arc::new(QueueCounters::default());
        let cc = c.clone();
        let handle = std::thread::Builder::new()
            .name(format!("osprey-sink-{name}"))
            .spawn(move || {
                let mut first_err: Option<String> = None;
                let mut note = |r: io::Result<()>| {
                    if let Err(e) = r {
                        first_err.get_or_insert_with(|| e.to_string());
                    }
                };
                loop {
                    match rx.recv_timeout(TICK) {
                        Ok(batch) => {
                            cc.held.fetch_sub(batch.len() as u64, Ordering::Relaxed);
                            for item in batch.iter() {
                                note(sink.emit(item));
                            }
                            note(sink.tick());
                        }
                        Err(RecvTimeoutError::Timeout) => note(sink.tick()),
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                note(sink.flush());
                (sink.counts().unwrap_or_default(), first_err)
            })
            // no data involved: only a host out of threads or memory fails here
            .expect("spawning a sink thread");
        self.queued.push(Queued {
            name: name.to_string(),
            cap: cap.max(1) as u64,
            tx: Some(tx),
            handle: Some(handle),
            c,
        });
    }

    pub fn has_primary(&self) -> bool {
        self.primary.is_some()
    }

    /// Offer what is pending to every queued sink, without waiting.
    fn send_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = Arc::new(std::mem::replace(
            &mut self.pending,
            Vec::with_capacity(BATCH),
        ));
        let n = batch.len() as u64;
        for q in &self.queued {
            q.c.queued.fetch_add(n, Ordering::Relaxed);
            let held = q.c.held.load(Ordering::Relaxed);
            let sent = held + n <= q.cap
                && q.tx.as_ref().is_some_and(|tx| {
                    q.c.held.fetch_add(n, Ordering::Relaxed);
                    tx.send(batch.clone()).is_ok()
                });
            if !sent {
                q.c.queue_full.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Stop the queued sinks (after they took what is queued) and say what
    /// each did.
    fn close(&mut self) -> Vec<SinkReport> {
        self.send_pending();
        for q in &mut self.queued {
            q.tx = None;
        }
        self.queued
            .iter_mut()
            .map(|q| {
                let (counts, error) = match q.handle.take().map(|h| h.join()) {
                    Some(Ok(r)) => r,
                    Some(Err(_)) => (SinkCounts::default(), Some("sink thread panicked".into())),
                    None => (SinkCounts::default(), None),
                };
                let queue_full = q.c.queue_full.load(Ordering::Relaxed);
                let queued = q.c.queued.load(Ordering::Relaxed);
                // a sink that panicked delivered what it counted, no more
                let undelivered = queued
                    .saturating_sub(queue_full)
                    .saturating_sub(counts.written + counts.dropped + counts.spooled);
                let lost_in_panic = if error.as_deref() == Some("sink thread panicked") {
                    undelivered
                } else {
                    0
                };
                SinkReport {
                    name: q.name.clone(),
                    queued,
                    sink_dropped: queue_full + counts.dropped + lost_in_panic,
                    queue_full,
                    counts,
                    error,
                }
            })
            .collect()
    }
}

impl Sink for Fanout {
    fn emit(&mut self, item: &Output) -> io::Result<()> {
        self.emit_owned(item.clone())
    }

    fn emit_owned(&mut self, item: Output) -> io::Result<()> {
        let r = match &mut self.primary {
            Some(p) => p.emit(&item),
            None => Ok(()),
        };
        if !self.queued.is_empty() {
            self.pending.push(item);
            if self.pending.len() >= BATCH {
                self.send_pending();
            }
        }
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending();
        match &mut self.primary {
            Some(p) => p.flush(),
            None => Ok(()),
        }
    }

    fn loss(&self) -> Option<super::SinkLoss> {
        self.primary.as_ref().and_then(|p| p.loss())
    }

    fn reports(&mut self) -> Vec<SinkReport> {
        self.close()
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        if self.queued.iter().any(|q| q.handle.is_some()) {
            self.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::sink::VecSink;

    fn txn(i: u16) -> Output {
        let mut t = crate::jsonline::tests::base();
        t.status = Some(i);
        Output::Record(crate::record::Record::Transaction(Box::new(t)))
    }

    /// A sink that blocks until the test lets it go.
    struct Stuck(Arc<Mutex<()>>, Arc<AtomicU64>);
    impl Sink for Stuck {
        fn emit(&mut self, _: &Output) -> io::Result<()> {
            let _g = self.0.lock().unwrap();
            self.1.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn counts(&self) -> Option<SinkCounts> {
            Some(SinkCounts {
                written: self.1.load(Ordering::Relaxed),
                ..Default::default()
            })
        }
    }

    #[test]
    fn every_sink_gets_every_record() {
        let (a, b) = (VecSink::default(), VecSink::default());
        let (la, lb) = (a.0.clone(), b.0.clone());
        let mut f = Fanout::new(Some(Box::new(a)));
        f.add("b", Box::new(b), 100_000);
        for i in 0..1000 {
            f.emit_owned(txn(i)).unwrap();
        }
        f.flush().unwrap();
        let r = f.reports();
        assert_eq!(la.lock().unwrap().len(), 1000);
        assert_eq!(*lb.lock().unwrap(), *la.lock().unwrap());
        assert_eq!((r[0].queued, r[0].sink_dropped), (1000, 0));
    }

    #[test]
    fn a_stuck_sink_stalls_nothing_and_its_drops_are_counted() {
        let gate = Arc::new(Mutex::new(()));
        let written = Arc::new(AtomicU64::new(0));
        let hold = gate.lock().unwrap();
        let main = VecSink::default();
        let lines = main.0.clone();
        let mut f = Fanout::new(Some(Box::new(main)));
        f.add(
            "stuck",
            Box::new(Stuck(gate.clone(), written.clone())),
            1000,
        );
        let fast = VecSink::default();
        let fast_lines = fast.0.clone();
        f.add("fast", Box::new(fast), 100_000);
        let t0 = std::time::Instant::now();
        for i in 0..20_000u32 {
            f.emit_owned(txn(i as u16)).unwrap();
            if i % 100 == 0 {
                f.flush().unwrap();
            }
        }
        f.flush().unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the stuck sink stalled the others"
        );
        assert_eq!(lines.lock().unwrap().len(), 20_000);
        drop(hold);
        let r = f.reports();
        assert_eq!(r[0].name, "stuck");
        assert_eq!(r[0].queued, 20_000);
        // what the stuck sink took plus what it was refused is everything
        assert_eq!(r[0].counts.written + r[0].sink_dropped, 20_000);
        assert!(r[0].sink_dropped >= 20_000 - 1000 - 256, "{:?}", r[0]);
        assert_eq!(r[1].sink_dropped, 0, "{:?}", r[1]);
        assert_eq!(fast_lines.lock().unwrap().len(), 20_000);
        assert!(r[0].to_string().contains("sink_dropped"));
    }
}
