// SPDX-License-Identifier: GPL-3.0-or-later
//! The synchronous consumer: the poller (caller of [`Pipeline::submit`])
//! shards events by connection over bounded `crossbeam-channel`s to N worker
//! threads (per-connection order holds), which send output batches to one
//! writer thread that owns the [`Sink`].
//!
//! Back-pressure is deliberate: when workers or the sink fall behind the
//! channels fill, the poller blocks, the ring buffer fills and the kernel
//! counts drops. Nothing is discarded silently in user space.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use crate::clock::mono_now_ns;
use crate::event::Event;
use crate::health::Health;
use crate::output::Output;
use crate::sink::{Sink, SinkReport};

/// Per-shard processing of events into output (events, messages, transactions).
pub trait Worker: Send {
    fn on_event(&mut self, ev: Event, out: &mut Vec<Output>);
    /// `ev` with its captured bytes apart (a DATA event's own `payload` is
    /// empty; see [`crate::decode::decode_each`]). By default they are
    /// copied into the event.
    fn on_event_parts(&mut self, ev: Event, payload: &[u8], out: &mut Vec<Output>) {
        self.on_event(ev.with_payload(payload), out)
    }
    /// Called about once a second with CLOCK_MONOTONIC now (expiry).
    fn tick(&mut self, _now_mono_ns: u64, _out: &mut Vec<Output>) {}
    /// End of input: flush everything held.
    fn finish(&mut self, _out: &mut Vec<Output>) {}
    /// Counters for the final summary.
    fn stats(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// The pipeline's counters live in [`Health`], which the metrics endpoint
/// reads while the pipeline runs.
type Counters = Health;

/// Snapshot of the pipeline counters.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PipelineStats {
    pub events: u64,
    pub records: u64,
    pub decode_errors: u64,
    pub write_errors: u64,
}

type WriterHandle = JoinHandle<(
    std::io::Result<()>,
    Option<crate::sink::SinkLoss>,
    Vec<SinkReport>,
)>;

pub struct Pipeline {
    /// `--workers 0`: everything runs in the caller's (the poller's) thread.
    inline: Option<std::sync::Mutex<Inline>>,
    shards: Vec<Sender<Vec<Event>>>,
    workers: Vec<JoinHandle<serde_json::Value>>,
    writer: Option<WriterHandle>,
    counters: Arc<Counters>,
}

/// Inline mode state: the worker and the sink, driven by the poller.
struct Inline {
    worker: Box<dyn Worker>,
    sink: Box<dyn Sink>,
    out: Vec<Output>,
    last_tick: Instant,
    first_err: Option<std::io::Error>,
    /// Events taken and records written since the shared counters were
    /// last told ([`Inline::publish`]: once a poll round, not per event).
    events: u64,
    records: u64,
}

/// The inline state, also after a panic elsewhere while it was held (the
/// tracker contains its parsers' panics; nothing in it is left half-done).
fn lock(m: &std::sync::Mutex<Inline>) -> std::sync::MutexGuard<'_, Inline> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inline {
    /// Handle one event (`f`) and write what it made.
    #[inline(always)]
    fn feed(&mut self, counters: &Counters, f: impl FnOnce(&mut dyn Worker, &mut Vec<Output>)) {
        self.events += 1;
        f(self.worker.as_mut(), &mut self.out);
        self.write_out(counters);
    }

    fn write_out(&mut self, counters: &Counters) {
        for item in self.out.drain(..) {
            match self.sink.emit_owned(item) {
                Ok(()) => self.records += 1,
                Err(e) => {
                    counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    self.first_err.get_or_insert(e);
                }
            }
        }
    }

    /// Add the events and records counted since the last call to the
    /// shared counters (the metrics endpoint and the summary read those).
    fn publish(&mut self, counters: &Counters) {
        if self.events > 0 {
            counters.events.fetch_add(self.events, Ordering::Relaxed);
        }
        if self.records > 0 {
            counters.records.fetch_add(self.records, Ordering::Relaxed);
        }
        (self.events, self.records) = (0, 0);
    }

    /// End of a poll round: expiry once a second, flush the sink, and
    /// publish the round's counts.
    fn round(&mut self, counters: &Counters) {
        if self.last_tick.elapsed() >= TICK {
            self.last_tick = Instant::now();
            self.worker.tick(mono_now_ns(), &mut self.out);
            self.write_out(counters);
            counters.set_worker(0, self.worker.stats());
        }
        if let Err(e) = self.sink.flush() {
            counters.write_errors.fetch_add(1, Ordering::Relaxed);
            self.first_err.get_or_insert(e);
        }
        self.publish(counters);
    }
}

/// Final summary of a pipeline run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PipelineSummary {
    pub stats: PipelineStats,
    pub workers: Vec<serde_json::Value>,
    pub sink_error: Option<String>,
    /// The queued sinks (metrics, ClickHouse): what each delivered and
    /// dropped.
    pub sinks: Vec<SinkReport>,
}

const TICK: Duration = Duration::from_secs(1);
/// The writer thread flushes its sink after this long without output
/// (with several sinks, the fanout hands its held batch over then:
/// [`crate::sink::fanout::HANDOFF`]).
const IDLE_FLUSH: Duration = crate::sink::fanout::HANDOFF;
/// Largest batch of events handed to a worker at once.
const BATCH: usize = 128;

/// See [`Pipeline::batcher`]. Per-connection order holds: one connection
/// always goes to the same shard, and batches are sent in order.
pub struct Batcher<'a> {
    p: &'a Pipeline,
    bufs: Vec<Vec<Event>>,
    /// Inline mode: the worker and the sink, locked from a round's first
    /// event to its [`Batcher::flush`] (one lock a round, not one an event).
    held: Option<std::sync::MutexGuard<'a, Inline>>,
}

impl Batcher<'_> {
    /// [`Batcher::push`] for an event decoded by
    /// [`crate::decode::decode_each`]: inline, the worker reads the
    /// captured bytes where they are (no copy of what it does not keep).
    pub fn push_parts(&mut self, ev: Event, payload: &[u8]) {
        let p = self.p;
        match self.inline() {
            Some(st) => st.feed(&p.counters, |w, out| w.on_event_parts(ev, payload, out)),
            None => self.push(ev.with_payload(payload)),
        }
    }

    pub fn push(&mut self, ev: Event) {
        let p = self.p;
        if let Some(st) = self.inline() {
            st.feed(&p.counters, |w, out| w.on_event(ev, out));
            return;
        }
        let i = self.p.shard_of(&ev);
        self.bufs[i].push(ev);
        if self.bufs[i].len() >= BATCH {
            self.send(i);
        }
    }

    fn send(&mut self, i: usize) {
        let batch = std::mem::replace(&mut self.bufs[i], Vec::with_capacity(BATCH));
        self.p
            .counters
            .events
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let _ = self.p.shards[i].send(batch);
    }

    /// Inline mode: the worker and sink, locked until the next flush.
    #[inline(always)]
    fn inline(&mut self) -> Option<&mut Inline> {
        if self.held.is_none() {
            self.held = Some(lock(self.p.inline.as_ref()?));
        }
        self.held.as_deref_mut()
    }

    /// Send everything held (inline mode: end of a poll round; the lock
    /// is let go).
    pub fn flush(&mut self) {
        if let Some(m) = &self.p.inline {
            let mut st = self.held.take().unwrap_or_else(|| lock(m));
            st.round(&self.p.counters);
            return;
        }
        for i in 0..self.bufs.len() {
            if !self.bufs[i].is_empty() {
                self.send(i);
            }
        }
    }
}

impl Drop for Batcher<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

impl Pipeline {
    /// Start `n_workers` workers made by `make_worker(shard)` and the writer.
    /// With `n_workers == 0` nothing is started: events are processed and
    /// written in the thread that submits them (fewest thread hand-offs; for
    /// small machines).
    pub fn start<F>(
        n_workers: usize,
        channel_cap: usize,
        make_worker: F,
        sink: Box<dyn Sink>,
    ) -> Pipeline
    where
        F: Fn(usize) -> Box<dyn Worker>,
    {
        Self::start_with_health(n_workers, channel_cap, make_worker, sink, Arc::default())
    }

    /// [`Pipeline::start`] counting into `health` (read by the metrics
    /// endpoint while the pipeline runs).
    pub fn start_with_health<F>(
        n_workers: usize,
        channel_cap: usize,
        make_worker: F,
        mut sink: Box<dyn Sink>,
        health: Arc<Health>,
    ) -> Pipeline
    where
        F: Fn(usize) -> Box<dyn Worker>,
    {
        let counters = health;
        if n_workers == 0 {
            let st = Inline {
                worker: make_worker(0),
                sink,
                out: Vec::new(),
                last_tick: Instant::now(),
                first_err: None,
                events: 0,
                records: 0,
            };
            return Pipeline {
                inline: Some(std::sync::Mutex::new(st)),
                shards: Vec::new(),
                workers: Vec::new(),
                writer: None,
                counters,
            };
        }
        let n = n_workers;
        let (out_tx, out_rx): (Sender<Vec<Output>>, Receiver<Vec<Output>>) = bounded(1024);

        let wc = counters.clone();
        let writer = thread::Builder::new()
            .name("osprey-writer".into())
            .spawn(
                move || -> (std::io::Result<()>, Option<crate::sink::SinkLoss>, Vec<SinkReport>) {
                    let mut first_err = None;
                    // records emitted since the sink's last flush
                    let mut unflushed = false;
                    loop {
                        let batch = match out_rx.recv_timeout(IDLE_FLUSH) {
                            Ok(b) => b,
                            Err(RecvTimeoutError::Timeout) => {
                                // quiet: what the sink holds (the fanout's
                                // batch for its queued sinks) goes now
                                if std::mem::take(&mut unflushed) {
                                    if let Err(e) = sink.flush() {
                                        wc.write_errors.fetch_add(1, Ordering::Relaxed);
                                        first_err.get_or_insert(e);
                                    }
                                }
                                continue;
                            }
                            Err(RecvTimeoutError::Disconnected) => break,
                        };
                        unflushed = true;
                        let small = out_rx_is_idle(&batch);
                        for item in batch {
                            match sink.emit_owned(item) {
                                Ok(()) => {
                                    wc.records.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e) => {
                                    wc.write_errors.fetch_add(1, Ordering::Relaxed);
                                    if first_err.is_none() {
                                        first_err = Some(e);
                                    }
                                }
                            }
                        }
                        if small {
                            if let Err(e) = sink.flush() {
                                wc.write_errors.fetch_add(1, Ordering::Relaxed);
                                first_err.get_or_insert(e);
                            }
                        }
                    }
                    let flushed = sink.flush();
                    let r = match first_err {
                        Some(e) => Err(e),
                        None => flushed,
                    };
                    let reports = sink.reports();
                    (r, sink.loss(), reports)
                },
            )
            // no data involved: only a host out of threads or memory fails here
            .expect("spawning writer thread");

        let mut shards = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            // capacity in batches; a batch holds up to BATCH events
            let (tx, rx) = bounded::<Vec<Event>>((channel_cap / BATCH).max(4));
            shards.push(tx);
            let mut w = make_worker(i);
            let out_tx = out_tx.clone();
            let health = counters.clone();
            let h = thread::Builder::new()
                .name(format!("osprey-worker-{i}"))
                .spawn(move || {
                    let mut out = Vec::new();
                    let mut last_tick = Instant::now();
                    loop {
                        match rx.recv_timeout(TICK) {
                            Ok(batch) => {
                                for ev in batch {
                                    w.on_event(ev, &mut out);
                                }
                                // take whatever else is queued before sending output
                                while out.len() < 256 {
                                    match rx.try_recv() {
                                        Ok(batch) => batch
                                            .into_iter()
                                            .for_each(|ev| w.on_event(ev, &mut out)),
                                        Err(_) => break,
                                    }
                                }
                            }
                            Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                        if last_tick.elapsed() >= TICK {
                            last_tick = Instant::now();
                            w.tick(mono_now_ns(), &mut out);
                            health.set_worker(i, w.stats());
                        }
                        if !out.is_empty() && out_tx.send(std::mem::take(&mut out)).is_err() {
                            break;
                        }
                    }
                    w.finish(&mut out);
                    if !out.is_empty() {
                        let _ = out_tx.send(out);
                    }
                    w.stats()
                })
                // no data involved: only a host out of threads or memory fails here
                .expect("spawning worker thread");
            workers.push(h);
        }
        Pipeline {
            inline: None,
            shards,
            workers,
            writer: Some(writer),
            counters,
        }
    }

    fn shard_of(&self, ev: &Event) -> usize {
        if self.shards.len() == 1 {
            0
        } else {
            let mut h = DefaultHasher::new();
            ev.conn().hash(&mut h);
            (h.finish() % self.shards.len() as u64) as usize
        }
    }

    /// Let the inline worker handle one event (`f`) and write what it made,
    /// counted at once ([`Pipeline::submit`] has no poll round to end).
    fn feed_inline(
        &self,
        m: &std::sync::Mutex<Inline>,
        f: impl FnOnce(&mut dyn Worker, &mut Vec<Output>),
    ) {
        let mut st = lock(m);
        st.feed(&self.counters, f);
        st.publish(&self.counters);
    }

    /// Hand one event to its connection's shard (blocks when the shard is full).
    pub fn submit(&self, ev: Event) {
        if let Some(m) = &self.inline {
            self.feed_inline(m, |w, out| w.on_event(ev, out));
            return;
        }
        self.counters.events.fetch_add(1, Ordering::Relaxed);
        let idx = self.shard_of(&ev);
        // a send error means the worker died; its panic surfaces at finish()
        let _ = self.shards[idx].send(vec![ev]);
    }

    /// A batching front for the poller: events are sent to their shard in
    /// batches (at most BATCH, or whatever is held at `flush`), which keeps
    /// channel operations and thread wake-ups per event low.
    pub fn batcher(&self) -> Batcher<'_> {
        Batcher {
            p: self,
            bufs: vec![Vec::new(); self.shards.len().max(1)],
            held: None,
        }
    }

    /// The live counters (for the metrics endpoint; the poller adds the
    /// kernel's).
    pub fn health(&self) -> Arc<Health> {
        self.counters.clone()
    }

    pub fn add_decode_errors(&self, n: u64) {
        self.counters.decode_errors.fetch_add(n, Ordering::Relaxed);
    }

    /// False once the sink has failed (e.g. a closed pipe: `osprey | head`):
    /// the poller then stops instead of capturing into the void.
    pub fn healthy(&self) -> bool {
        self.counters.write_errors.load(Ordering::Relaxed) == 0
    }

    pub fn stats(&self) -> PipelineStats {
        PipelineStats {
            events: self.counters.events.load(Ordering::Relaxed),
            records: self.counters.records.load(Ordering::Relaxed),
            decode_errors: self.counters.decode_errors.load(Ordering::Relaxed),
            write_errors: self.counters.write_errors.load(Ordering::Relaxed),
        }
    }

    /// Close the input, drain workers and writer, and return the summary.
    pub fn finish(mut self) -> PipelineSummary {
        if let Some(m) = self.inline.take() {
            let mut st = m.into_inner().unwrap_or_else(|p| p.into_inner());
            st.worker.finish(&mut st.out);
            st.write_out(&self.counters);
            st.publish(&self.counters);
            let flushed = st.sink.flush();
            let sink_error = st
                .first_err
                .take()
                .map(|e| e.to_string())
                .or(flushed.err().map(|e| e.to_string()));
            let reports = st.sink.reports();
            return self.summary(vec![st.worker.stats()], sink_error, st.sink.loss(), reports);
        }
        self.shards.clear();
        let workers = std::mem::take(&mut self.workers)
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| serde_json::json!({"error": "worker panicked"}))
            })
            .collect();
        let (sink_error, loss, reports) = match self.writer.take().map(|h| h.join()) {
            Some(Ok((Ok(()), loss, r))) => (None, loss, r),
            None => (None, None, Vec::new()),
            Some(Ok((Err(e), loss, r))) => (Some(e.to_string()), loss, r),
            Some(Err(_)) => (Some("writer thread panicked".into()), None, Vec::new()),
        };
        self.summary(workers, sink_error, loss, reports)
    }

    /// After a write error `records` counts the records that reached the
    /// output whole, and the error says what was lost.
    fn summary(
        &self,
        workers: Vec<serde_json::Value>,
        sink_error: Option<String>,
        loss: Option<crate::sink::SinkLoss>,
        sinks: Vec<SinkReport>,
    ) -> PipelineSummary {
        let mut stats = self.stats();
        let sink_error = match (sink_error, loss) {
            (e, Some(l)) => {
                stats.records = l.written;
                Some(format!(
                    "{}: {l}",
                    e.unwrap_or_else(|| "write error".into())
                ))
            }
            (e, None) => e,
        };
        PipelineSummary {
            stats,
            workers,
            sink_error,
            sinks,
        }
    }
}

// Flush after small batches so interactive use (`| jq`) sees lines promptly;
// big batches mean load, where the buffer is flushed when full.
fn out_rx_is_idle(batch: &[Output]) -> bool {
    batch.len() < 64
}

/// `--records events`: every probe event as one flattened line.
pub struct EventsWorker(crate::output::EventFormatter);

impl EventsWorker {
    /// Payloads redacted with `redact` (docs/security.md).
    pub fn new(realtime_offset_ns: i64, redact: crate::redact::Redact) -> Self {
        EventsWorker(crate::output::EventFormatter::new(realtime_offset_ns).redact(redact))
    }
}

impl Worker for EventsWorker {
    fn on_event(&mut self, ev: Event, out: &mut Vec<Output>) {
        out.push(Output::Event(Box::new(self.0.format(&ev))));
    }
}

/// `--records transactions|messages`: the connection tracker and HTTP parser.
pub struct TrackerWorker {
    tracker: crate::track::Tracker,
    buf: Vec<crate::record::Record>,
}

impl TrackerWorker {
    pub fn new(cfg: crate::track::TrackerConfig) -> Self {
        TrackerWorker {
            tracker: crate::track::Tracker::new(cfg),
            buf: Vec::new(),
        }
    }
    fn drain(&mut self, out: &mut Vec<Output>) {
        out.extend(self.buf.drain(..).map(Output::Record));
    }
}

impl Worker for TrackerWorker {
    fn on_event(&mut self, ev: Event, out: &mut Vec<Output>) {
        self.tracker.on_event(&ev, &mut self.buf);
        self.drain(out);
    }
    // not inlined into the decoder (the poller calls it through `dyn
    // Worker` anyway): scripts/bench-insns splits decode from track here
    #[inline(never)]
    fn on_event_parts(&mut self, ev: Event, payload: &[u8], out: &mut Vec<Output>) {
        match &ev {
            Event::Data(d) => self.tracker.on_data(d, payload, &mut self.buf),
            _ => self.tracker.on_event(&ev, &mut self.buf),
        }
        // most events (a request, a body's part) complete no record
        if !self.buf.is_empty() {
            self.drain(out);
        }
    }
    fn tick(&mut self, now_mono_ns: u64, out: &mut Vec<Output>) {
        self.tracker.expire(now_mono_ns, &mut self.buf);
        self.drain(out);
    }
    fn finish(&mut self, out: &mut Vec<Output>) {
        self.tracker.flush_all(&mut self.buf);
        self.drain(out);
    }
    fn stats(&self) -> serde_json::Value {
        serde_json::to_value(self.tracker.stats()).unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod tests;
