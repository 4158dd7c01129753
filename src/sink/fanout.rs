// SPDX-License-Identifier: GPL-3.0-or-later
//! Several sinks at once. The record stream (`-o`/stdout, JSON lines) is
//! written where the pipeline writes it, with the pipeline's back-pressure
//! (a slow output blocks the poller, and the kernel counts what it then
//! drops). A sink whose work per record is small, bounded and never waits
//! (the metrics) is called in place, in the same thread
//! ([`Fanout::add_inline`]): no queue, no thread, no hand-off. Every other
//! sink (ClickHouse) runs in a thread of its own behind a bounded queue:
//! records go to it in shared batches (no copy per sink), offered without
//! waiting; what does not fit in its queue is counted (`queue_full`, part
//! of its `sink_dropped`), so a slow or dead sink never stalls the probe or
//! the other sinks. A batch goes when it is full or its first record has
//! waited [`HANDOFF`]: one hand-off (and one wake-up of the sink's thread)
//! per batch, not per poll round.
//!
//! A sink that takes lines ([`Sink::wants_lines`], ClickHouse) gets the
//! transactions as the JSON lines the record stream is written from: each
//! transaction is serialised once, here, its bytes handed to the JSON-lines
//! sink ([`Sink::emit_line`]) and kept in a [`LineBatch`] shared by `Arc`
//! with the line sinks, whose queue is bounded in bytes. The queued sinks'
//! threads run at a lower priority (nice 10), so the ring-buffer reader
//! wins the CPU when they compete for it.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};

use super::{LineBatch, LineRow, Sink, SinkCounts, SinkReport};
use crate::output::Output;
use crate::record::Record;

/// Records held before a batch goes to the queued sinks (sooner at a
/// flush once the oldest has waited [`HANDOFF`]).
const BATCH: usize = 256;

/// Longest a record waits in the fanout before its (not yet full) batch is
/// handed to the queued sinks, checked at every [`Sink::flush`].
pub const HANDOFF: Duration = Duration::from_millis(100);

/// Default bound of a queued sink's queue, in records.
pub const DEFAULT_QUEUE: usize = 16384;

/// Default bound of a line sink's queue, in bytes of lines.
pub const DEFAULT_QUEUE_BYTES: u64 = 16 << 20;

/// Bytes of lines held before a batch goes to the line sinks.
const BATCH_BYTES: usize = 256 * 1024;

/// The nice value of the queued sinks' threads.
pub const SINK_NICE: i32 = 10;

/// Lower the calling thread's priority to [`SINK_NICE`] (a failure changes
/// nothing but the priority: logged, not fatal).
pub fn lower_thread_priority() {
    // SAFETY: gettid and setpriority have no memory effects; PRIO_PROCESS
    // with a thread id sets that thread's nice value on Linux
    let r = unsafe {
        libc::setpriority(
            libc::PRIO_PROCESS as _,
            libc::gettid() as libc::id_t,
            SINK_NICE,
        )
    };
    if r != 0 {
        log::debug!(
            "sink thread: setpriority: {}",
            std::io::Error::last_os_error()
        );
    }
}

enum Msg {
    Records(Arc<Vec<Output>>),
    Lines(Arc<LineBatch>),
}

/// How often a queued sink's thread calls [`Sink::tick`].
const TICK: Duration = Duration::from_millis(100);

#[derive(Default)]
struct QueueCounters {
    /// Records (a line sink: bytes) in the queue now (the bound is on this).
    held: AtomicU64,
    queued: AtomicU64,
    queue_full: AtomicU64,
}

struct Queued {
    name: String,
    /// Records, or bytes for a line sink.
    cap: u64,
    lines: bool,
    tx: Option<Sender<Msg>>,
    handle: Option<JoinHandle<(SinkCounts, Option<String>)>>,
    c: Arc<QueueCounters>,
}

/// A sink called in the fanout's own thread.
struct InPlace {
    name: String,
    sink: Box<dyn Sink>,
    /// Records handed to it.
    given: u64,
    first_err: Option<String>,
    /// It panicked: it is called no more, and what it is then handed (and
    /// the record it panicked on) counts as dropped.
    panicked: bool,
    lost: u64,
}

/// The record stream plus queued sinks (see the module documentation).
pub struct Fanout {
    primary: Option<Box<dyn Sink>>,
    in_place: Vec<InPlace>,
    queued: Vec<Queued>,
    /// When the oldest record not yet handed to the queued sinks came.
    pending_since: Option<Instant>,
    pending: Vec<Output>,
    /// Transaction lines for the line sinks (made only when one exists).
    lines: LineBatch,
    /// Queued sinks taking records / lines.
    record_sinks: usize,
    line_sinks: usize,
    /// The fields of the transaction lines it makes (`--record-format`).
    format: crate::jsonline::RecordFormat,
    /// Line batches the line sinks are done with, back for the next batch
    /// (their memory stays warm and is freed by the thread that made it).
    spare_tx: Sender<LineBatch>,
    spare_rx: Receiver<LineBatch>,
}

/// Line batches kept for reuse at most.
const SPARE: usize = 4;

impl Fanout {
    /// `primary`: the JSON lines (None: `--no-output`).
    pub fn new(primary: Option<Box<dyn Sink>>) -> Self {
        let (spare_tx, spare_rx) = bounded(SPARE);
        Fanout {
            primary,
            in_place: Vec::new(),
            queued: Vec::new(),
            pending_since: None,
            pending: Vec::with_capacity(BATCH),
            lines: LineBatch::default(),
            record_sinks: 0,
            line_sinks: 0,
            format: Default::default(),
            spare_tx,
            spare_rx,
        }
    }

    /// Transaction lines made in `format` (`--record-format`): those the
    /// primary writes (give it the same format) and the line sinks get.
    pub fn with_format(mut self, format: crate::jsonline::RecordFormat) -> Self {
        self.format = format;
        self
    }

    /// Call `sink` in place, in the thread that writes the record stream,
    /// for every record: only for a sink whose work is small and never
    /// waits (it holds up the record stream while it works).
    pub fn add_inline(&mut self, name: &str, sink: Box<dyn Sink>) {
        self.in_place.push(InPlace {
            name: name.to_string(),
            sink,
            given: 0,
            first_err: None,
            panicked: false,
            lost: 0,
        });
    }

    /// Run `sink` in a thread of its own behind a queue of at most `cap`
    /// records; a sink that takes lines: at most `cap_bytes` bytes of them.
    pub fn add(&mut self, name: &str, mut sink: Box<dyn Sink>, cap: usize, cap_bytes: u64) {
        let (tx, rx): (Sender<Msg>, Receiver<Msg>) = unbounded();
        let lines = sink.wants_lines();
        let c = Arc::new(QueueCounters::default());
        let cc = c.clone();
        let spare = self.spare_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("osprey-sink-{name}"))
            .spawn(move || {
                lower_thread_priority();
                let mut first_err: Option<String> = None;
                let mut note = |r: io::Result<()>| {
                    if let Err(e) = r {
                        first_err.get_or_insert_with(|| e.to_string());
                    }
                };
                loop {
                    match rx.recv_timeout(TICK) {
                        Ok(Msg::Records(batch)) => {
                            cc.held.fetch_sub(batch.len() as u64, Ordering::Relaxed);
                            for item in batch.iter() {
                                note(sink.emit(item));
                            }
                            note(sink.tick());
                        }
                        Ok(Msg::Lines(batch)) => {
                            cc.held
                                .fetch_sub(batch.bytes.len() as u64, Ordering::Relaxed);
                            note(sink.emit_lines(&batch));
                            // the last sink done with it sends it back
                            if let Ok(mut b) = Arc::try_unwrap(batch) {
                                b.clear();
                                let _ = spare.try_send(b);
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
        if lines {
            self.line_sinks += 1;
        } else {
            self.record_sinks += 1;
        }
        self.queued.push(Queued {
            name: name.to_string(),
            cap: if lines {
                cap_bytes.max(1)
            } else {
                cap.max(1) as u64
            },
            lines,
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
        self.pending_since = None;
        if !self.pending.is_empty() {
            let batch = Arc::new(std::mem::replace(
                &mut self.pending,
                Vec::with_capacity(BATCH),
            ));
            let n = batch.len() as u64;
            for q in self.queued.iter().filter(|q| !q.lines) {
                q.offer(n, n, || Msg::Records(batch.clone()));
            }
        }
        if !self.lines.is_empty() {
            let next = self.spare_rx.try_recv().unwrap_or_else(|_| LineBatch {
                bytes: Vec::with_capacity(BATCH_BYTES + 4096),
                rows: Vec::with_capacity(BATCH),
            });
            let batch = Arc::new(std::mem::replace(&mut self.lines, next));
            let (n, bytes) = (batch.rows.len() as u64, batch.bytes.len() as u64);
            for q in self.queued.iter().filter(|q| q.lines) {
                q.offer(n, bytes, || Msg::Lines(batch.clone()));
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
        let in_place = self.in_place.drain(..).map(|mut s| {
            if !s.panicked {
                if let Err(e) = s.sink.flush() {
                    s.first_err.get_or_insert_with(|| e.to_string());
                }
            }
            let counts = s.sink.counts().unwrap_or_default();
            SinkReport {
                name: s.name,
                queued: s.given,
                sink_dropped: counts.dropped + s.lost,
                queue_full: 0,
                counts,
                error: s.first_err,
            }
        });
        let in_place: Vec<SinkReport> = in_place.collect();
        let queued = self.queued.iter_mut().map(|q| {
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
        });
        in_place.into_iter().chain(queued).collect()
    }
}

impl Queued {
    /// Queue `n` records (`size` in the queue's unit) unless that passes
    /// the bound; else count them as dropped at a full queue.
    fn offer(&self, n: u64, size: u64, msg: impl FnOnce() -> Msg) {
        self.c.queued.fetch_add(n, Ordering::Relaxed);
        let held = self.c.held.load(Ordering::Relaxed);
        let sent = held + size <= self.cap
            && self.tx.as_ref().is_some_and(|tx| {
                self.c.held.fetch_add(size, Ordering::Relaxed);
                tx.send(msg()).is_ok()
            });
        if !sent {
            self.c.queue_full.fetch_add(n, Ordering::Relaxed);
        }
    }
}

impl Sink for Fanout {
    fn emit(&mut self, item: &Output) -> io::Result<()> {
        self.emit_owned(item.clone())
    }

    fn emit_owned(&mut self, item: Output) -> io::Result<()> {
        for s in &mut self.in_place {
            s.given += 1;
            if s.panicked {
                s.lost += 1;
                continue;
            }
            // a bug in that sink must not take the record stream down
            let sink = &mut s.sink;
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.emit(&item))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    s.first_err.get_or_insert_with(|| e.to_string());
                }
                Err(_) => {
                    s.panicked = true;
                    s.lost += 1;
                    s.first_err = Some("sink panicked".into());
                    log::warn!(
                        "sink {}: panicked; its records are counted as dropped",
                        s.name
                    );
                }
            }
        }
        let r = match &item {
            // serialised once: the same bytes for the file and the line sinks
            Output::Record(Record::Transaction(t)) if self.line_sinks > 0 => {
                let start = self.lines.bytes.len();
                let node_at = crate::jsonline::write_transaction_node_as(
                    t,
                    self.format,
                    &mut self.lines.bytes,
                );
                self.lines.bytes.push(b'\n');
                self.lines.rows.push(LineRow {
                    end: self.lines.bytes.len() as u32,
                    node_null: t.conn.ident.node.is_none(),
                    node_at: node_at as u32,
                });
                match &mut self.primary {
                    Some(p) => p.emit_line(&item, &self.lines.bytes[start..]),
                    None => Ok(()),
                }
            }
            _ => match &mut self.primary {
                Some(p) => p.emit(&item),
                None => Ok(()),
            },
        };
        if self.record_sinks > 0 {
            self.pending.push(item);
        }
        if self.pending_since.is_none() && (!self.pending.is_empty() || !self.lines.is_empty()) {
            self.pending_since = Some(Instant::now());
        }
        if self.pending.len() >= BATCH
            || self.lines.rows.len() >= BATCH
            || self.lines.bytes.len() >= BATCH_BYTES
        {
            self.send_pending();
        }
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending_since.is_some_and(|t| t.elapsed() >= HANDOFF) {
            self.send_pending();
        }
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
        if self.queued.iter().any(|q| q.handle.is_some()) || !self.in_place.is_empty() {
            self.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::sink::jsonl::tests::{txn, Shared};
    use crate::sink::VecSink;

    /// A sink that counts the records it takes (its `written`); with a
    /// `gate`, each waits until the test lets it go; with `panic_on`, it
    /// panics on the record of that status.
    #[derive(Default)]
    struct Counting {
        n: Arc<AtomicU64>,
        gate: Option<Arc<Mutex<()>>>,
        panic_on: Option<u16>,
    }
    impl Sink for Counting {
        fn emit(&mut self, item: &Output) -> io::Result<()> {
            let _g = self.gate.as_ref().map(|g| g.lock().unwrap());
            if let Output::Record(crate::record::Record::Transaction(t)) = item {
                if self.panic_on.is_some() {
                    assert_ne!(t.status, self.panic_on, "a bug in the sink");
                }
            }
            self.n.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn counts(&self) -> Option<SinkCounts> {
            Some(SinkCounts {
                written: self.n.load(Ordering::Relaxed),
                ..Default::default()
            })
        }
    }

    #[test]
    fn every_sink_gets_every_record() {
        let (a, b) = (VecSink::default(), VecSink::default());
        let (la, lb) = (a.0.clone(), b.0.clone());
        let mut f = Fanout::new(Some(Box::new(a)));
        f.add("b", Box::new(b), 100_000, DEFAULT_QUEUE_BYTES);
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
            Box::new(Counting {
                n: written.clone(),
                gate: Some(gate.clone()),
                ..Default::default()
            }),
            1000,
            DEFAULT_QUEUE_BYTES,
        );
        let fast = VecSink::default();
        let fast_lines = fast.0.clone();
        f.add("fast", Box::new(fast), 100_000, DEFAULT_QUEUE_BYTES);
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
        // taken at most: the batch it blocked on, its queue's bound, and
        // the last part-batch (20,000 = 78 × 256 + 32) that `reports`
        // offers after the gate opened, by which time the thread may have
        // emptied its queue (it did once, under load: 1,312 written)
        assert!(
            r[0].sink_dropped >= 20_000 - 1000 - 2 * BATCH as u64,
            "{:?}",
            r[0]
        );
        assert_eq!(r[1].sink_dropped, 0, "{:?}", r[1]);
        assert_eq!(fast_lines.lock().unwrap().len(), 20_000);
        assert!(r[0].to_string().contains("sink_dropped"));
    }

    /// Takes lines; keeps their bytes.
    struct Lines(Arc<Mutex<Vec<u8>>>, Arc<Mutex<()>>);
    impl Sink for Lines {
        fn emit(&mut self, _: &Output) -> io::Result<()> {
            panic!("a line sink gets lines")
        }
        fn wants_lines(&self) -> bool {
            true
        }
        fn emit_lines(&mut self, b: &LineBatch) -> io::Result<()> {
            let _g = self.1.lock().unwrap();
            let mut all = self.0.lock().unwrap();
            for (l, _) in b.lines() {
                all.extend_from_slice(l);
            }
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_sink_gets_the_files_bytes_and_its_queue_is_bounded_in_bytes() {
        let file = Shared::default();
        let jsonl = crate::sink::JsonlSink::new(file.clone());
        let mut f = Fanout::new(Some(Box::new(jsonl)));
        let got = Arc::new(Mutex::new(Vec::new()));
        f.add(
            "lines",
            Box::new(Lines(got.clone(), Arc::new(Mutex::new(())))),
            1,
            DEFAULT_QUEUE_BYTES,
        );
        for i in 0..1000 {
            f.emit_owned(txn(i)).unwrap();
        }
        f.flush().unwrap();
        let r = f.reports();
        assert_eq!((r[0].queued, r[0].sink_dropped), (1000, 0), "{:?}", r[0]);
        let file = file.0.lock().unwrap().clone();
        assert_eq!(memchr::memchr_iter(b'\n', &file).count(), 1000);
        assert_eq!(*got.lock().unwrap(), file, "the same bytes");
        // a line sink held up: its queue is bounded by bytes, the rest counted
        let gate = Arc::new(Mutex::new(()));
        let hold = gate.lock().unwrap();
        let mut f = Fanout::new(None);
        let got = Arc::new(Mutex::new(Vec::new()));
        let one = {
            let mut v = Vec::new();
            crate::jsonline::write_transaction(&crate::jsonline::tests::base(), &mut v);
            v.len() as u64 + 1
        };
        f.add("lines", Box::new(Lines(got, gate.clone())), 1, one * 1000);
        for i in 0..10_000 {
            f.emit_owned(txn(i)).unwrap();
        }
        f.flush().unwrap();
        drop(hold);
        let r = f.reports();
        assert_eq!(r[0].queued, 10_000);
        // at most the bound, the batch the sink held when it stopped and
        // the last part-batch, offered by `reports` after the gate opened
        assert!(
            r[0].queue_full >= 10_000 - 1000 - 2 * BATCH as u64,
            "{:?}",
            r[0]
        );
        assert!(r[0].queue_full > 0 && r[0].sink_dropped == r[0].queue_full);
    }

    /// `--record-format compact` with a line sink: the file and the line
    /// sink get the same compact lines (each the full one less its nulls
    /// and ISO times, its row saying where a null node goes), while a sink
    /// in place (the metrics) gets the records themselves.
    #[test]
    fn compact_lines_go_to_the_file_and_the_line_sinks_records_in_place() {
        use crate::jsonline::RecordFormat;
        let file = Shared::default();
        let jsonl = crate::sink::JsonlSink::new(file.clone()).with_format(RecordFormat::Compact);
        let mut f = Fanout::new(Some(Box::new(jsonl))).with_format(RecordFormat::Compact);
        let inline = VecSink::default();
        let records = inline.0.clone();
        f.add_inline("records", Box::new(inline));
        let got = Arc::new(Mutex::new(Vec::new()));
        f.add(
            "lines",
            Box::new(Lines(got.clone(), Arc::new(Mutex::new(())))),
            1,
            DEFAULT_QUEUE_BYTES,
        );
        for i in 0..300 {
            f.emit_owned(txn(i)).unwrap();
        }
        f.flush().unwrap();
        let r = f.reports();
        assert_eq!((r[0].queued, r[0].sink_dropped), (300, 0), "{:?}", r[0]);
        let file = String::from_utf8(file.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            got.lock().unwrap().as_slice(),
            file.as_bytes(),
            "the same bytes"
        );
        let records = records.lock().unwrap();
        assert_eq!(file.lines().count(), 300);
        for (line, full) in file.lines().zip(records.iter()) {
            assert!(full.contains("\"ts_start\":\""), "{full}");
            let got: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).unwrap();
            assert_eq!(got, crate::jsonline::tests::compacted(full), "{line}");
        }
    }

    #[test]
    fn an_inline_sink_gets_every_record_in_place_and_its_panic_is_contained() {
        let main = VecSink::default();
        let lines = main.0.clone();
        let n = Arc::new(AtomicU64::new(0));
        let mut f = Fanout::new(Some(Box::new(main)));
        // it panics on the record with status 13
        let counting = Counting {
            n: n.clone(),
            panic_on: Some(13),
            ..Default::default()
        };
        f.add_inline("count", Box::new(counting));
        for i in 0..10 {
            f.emit_owned(txn(i)).unwrap();
            // no queue: counted before emit returns
            assert_eq!(n.load(Ordering::Relaxed), i as u64 + 1);
        }
        for i in 10..20 {
            f.emit_owned(txn(i)).unwrap();
        }
        f.flush().unwrap();
        let r = f.reports();
        assert_eq!(lines.lock().unwrap().len(), 20, "the record stream goes on");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].name, "count");
        assert_eq!((r[0].queued, r[0].counts.written), (20, 13));
        // the record it panicked on and the six after it
        assert_eq!(r[0].sink_dropped, 7, "{:?}", r[0]);
        assert_eq!(r[0].error.as_deref(), Some("sink panicked"));
    }

    #[test]
    fn a_partial_batch_is_handed_over_after_handoff_not_at_every_flush() {
        let got = VecSink::default();
        let mut f = Fanout::new(None);
        f.add("q", Box::new(got), 100_000, DEFAULT_QUEUE_BYTES);
        let queued = |f: &Fanout| f.queued[0].c.queued.load(Ordering::Relaxed);
        for i in 0..10 {
            f.emit_owned(txn(i)).unwrap();
            f.flush().unwrap();
        }
        assert_eq!(queued(&f), 0, "held: one hand-off per batch");
        std::thread::sleep(HANDOFF);
        f.flush().unwrap();
        assert_eq!(queued(&f), 10);
        // a full batch goes at once
        for i in 0..BATCH as u16 {
            f.emit_owned(txn(i)).unwrap();
        }
        assert_eq!(queued(&f), 10 + BATCH as u64);
        assert_eq!(f.reports()[0].counts.written, 0, "VecSink counts nothing");
    }

    #[test]
    fn the_writer_thread_hands_a_held_batch_over_when_output_stops() {
        use crate::pipeline::{EventsWorker, Pipeline};
        let got = VecSink::default();
        let lines = got.0.clone();
        let mut f = Fanout::new(None);
        f.add("q", Box::new(got), 100_000, DEFAULT_QUEUE_BYTES);
        let p = Pipeline::start(
            2,
            64,
            |_| Box::new(EventsWorker::new(0, crate::redact::Redact::default())),
            Box::new(f),
        );
        {
            let mut b = p.batcher();
            for fd in 0..40 {
                b.push(crate::pipeline::tests::data(fd, 0));
            }
        }
        // fewer than a batch, then nothing more: still delivered while
        // the pipeline runs
        let t0 = std::time::Instant::now();
        while lines.lock().unwrap().len() < 40 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{} of 40",
                lines.lock().unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        p.finish();
    }
}
