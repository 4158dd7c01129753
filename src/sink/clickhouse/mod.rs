// SPDX-License-Identifier: GPL-3.0-or-later
//! The ClickHouse sink (`--clickhouse URL`): transactions batched into
//! `INSERT INTO db.table FORMAT JSONEachRow` over ClickHouse's HTTP
//! interface. It runs in a thread of its own behind the fanout's bounded
//! queue, so the probe never waits for it.
//!
//! * Rows are the JSON lines of the record stream, made once by the fanout
//!   ([`Sink::emit_lines`]): the sink's thread appends their bytes to the
//!   batch body (a null `node` becomes `--node-name`'s), nothing more.
//! * Batches are sealed at `batch_rows` rows, `batch_bytes` bytes, or
//!   `interval` after their first row, whichever comes first.
//! * The inserts are made by a second thread (the sender), so building the
//!   next batch never waits for ClickHouse. Sealed batches wait for it in
//!   memory (at most `queue_rows` rows and `queue_bytes` bytes, plus the
//!   one being sent); past that the oldest go to the on-disk spool
//!   (`spool.rs`) when one is set, else they are dropped and counted.
//! * Delivery goes oldest first (the spool, then memory). A failure (no
//!   connection, a timeout, an error from the server) backs off, doubling
//!   from 100 ms to 10 s; a batch the server refused `max_refusals` times
//!   (a wrong type, a table dropped under us) is dropped and counted, the
//!   server's error logged.
//! * At the end, what cannot be delivered goes to the spool (replayed by
//!   the next run) or is counted as dropped: never silently lost.

pub mod schema;
pub mod spool;

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::http::{encode_query, request, Url};
use super::{LineBatch, Sink, SinkCounts};
use crate::output::Output;
use crate::record::Record;
use spool::Spool;

/// Default rows per insert.
pub const DEFAULT_BATCH_ROWS: usize = 2000;
/// Default longest wait of a row for its batch, in milliseconds.
pub const DEFAULT_BATCH_MS: u64 = 200;
/// Default bytes of sealed batches held in memory.
pub const DEFAULT_QUEUE_BYTES: u64 = 32 << 20;

#[derive(Clone, Debug)]
pub struct ChConfig {
    pub url: Url,
    pub database: String,
    pub table: String,
    pub create: bool,
    pub batch_rows: usize,
    pub batch_bytes: usize,
    pub interval: Duration,
    pub queue_rows: u64,
    pub queue_bytes: u64,
    pub spool: Option<PathBuf>,
    pub spool_max: u64,
    /// The `node` column.
    pub node: String,
    pub timeout: Duration,
    pub max_refusals: u32,
}

impl ChConfig {
    pub fn new(url: Url) -> ChConfig {
        ChConfig {
            url,
            database: "osprey".into(),
            table: "transactions".into(),
            create: false,
            batch_rows: DEFAULT_BATCH_ROWS,
            batch_bytes: 8 << 20,
            interval: Duration::from_millis(DEFAULT_BATCH_MS),
            queue_rows: 100_000,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            spool: None,
            spool_max: 1 << 30,
            node: String::new(),
            timeout: Duration::from_secs(10),
            max_refusals: 5,
        }
    }

    fn qualified(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }

    fn path_query(&self, query: &str, extra: &str) -> String {
        let base = self.url.path.trim_end_matches('/');
        format!("{base}/?query={}{extra}", encode_query(query))
    }
}

/// A database or table name: letters, digits, `_` (no quoting games).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

struct Batch {
    body: Vec<u8>,
    rows: u64,
    refusals: u32,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            body: Vec::new(),
            rows: 0,
            refusals: 0,
        }
    }
}

/// Why a delivery failed.
enum Fail {
    /// No answer (connection refused, timeout, reset): try again later.
    Down(String),
    /// The server answered with an error.
    Refused(String),
}

/// What the sink's thread and the sender share.
struct State {
    /// Sealed batches, oldest first.
    ready: VecDeque<Batch>,
    ready_rows: u64,
    ready_bytes: u64,
    spool: Option<Spool>,
    counts: SinkCounts,
    /// The end: the sender makes one more attempt and stops.
    closing: bool,
    /// Rows that could not be delivered nor spooled at the end.
    lost_at_end: u64,
    /// Bodies of batches sent, emptied, for the next batches (their pages
    /// stay mapped: no page faults filling a new 2 MB body every batch).
    spare: Vec<Vec<u8>>,
}

/// Bodies kept for reuse at most, and the largest kept.
const SPARE: usize = 2;
const SPARE_MAX_BYTES: usize = 16 << 20;

struct Shared {
    st: Mutex<State>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // a panic while holding the lock leaves counters, still readable
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn give_back(&mut self, mut body: Vec<u8>) {
        if self.spare.len() < SPARE && body.capacity() <= SPARE_MAX_BYTES {
            body.clear();
            self.spare.push(body);
        }
    }

    fn spool_or_drop(&mut self, b: Batch) {
        let r = match &mut self.spool {
            Some(s) => s.put(&b.body, b.rows),
            None => Err(io::Error::other(
                "the in-memory queue is full and there is no --clickhouse-spool",
            )),
        };
        if let Err(e) = r {
            if self.counts.dropped == 0 {
                log::warn!(
                    "ClickHouse: {} rows dropped: {e} (counted as sink_dropped)",
                    b.rows
                );
            }
            self.counts.dropped += b.rows;
        }
    }
}

/// The sink: builds batches from the lines and hands them to the sender.
pub struct ClickHouseSink {
    cfg: ChConfig,
    cur: Batch,
    cur_started: Instant,
    /// `"NAME"`: the `node` value of a row whose own is null.
    node_value: Vec<u8>,
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
}

/// The sender thread: inserts, backoff, the spool.
struct Sender {
    cfg: ChConfig,
    insert_pq: String,
    shared: Arc<Shared>,
    next_try: Instant,
    backoff: Duration,
    /// Server is answering (for log messages once per change).
    up: bool,
    /// Refusals of the spool's oldest batch.
    spool_refusals: u32,
}

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

fn run_query(cfg: &ChConfig, q: &str) -> Result<String, Fail> {
    match request(
        &cfg.url,
        "POST",
        &cfg.path_query("", ""),
        &[q.as_bytes()],
        cfg.timeout,
    ) {
        Ok(r) if r.status == 200 => Ok(r.text()),
        Ok(r) => Err(Fail::Refused(format!("HTTP {}: {}", r.status, r.text()))),
        Err(e) => Err(Fail::Down(e.to_string())),
    }
}

impl ClickHouseSink {
    /// Check the server (or create the table with `create`): a server that
    /// answers but has no such table, or refuses, is an error now; one that
    /// does not answer is only a warning (records wait in the queue and the
    /// spool until it does). Starts the sender thread.
    pub fn connect(cfg: ChConfig) -> Result<ClickHouseSink, String> {
        for (what, n) in [
            ("--clickhouse-database", &cfg.database),
            ("--clickhouse-table", &cfg.table),
        ] {
            if !valid_name(n) {
                return Err(format!(
                    "{what} {n:?}: letters, digits and _ only, not starting with a digit"
                ));
            }
        }
        let at = format!("ClickHouse at http://{}", cfg.url.authority());
        let mut up = true;
        if cfg.create {
            for q in [
                format!("CREATE DATABASE IF NOT EXISTS {}", cfg.database),
                schema::create_table(&cfg.database, &cfg.table),
            ] {
                match run_query(&cfg, &q) {
                    Ok(_) => {}
                    Err(Fail::Down(e)) => {
                        return Err(format!("--clickhouse-create: {at} does not answer: {e}"))
                    }
                    Err(Fail::Refused(e)) => {
                        return Err(format!(
                            "--clickhouse-create: {at} refused {:?}: {e}",
                            q.lines().next().unwrap_or("")
                        ))
                    }
                }
            }
        } else {
            match run_query(&cfg, &format!("EXISTS TABLE {}", cfg.qualified())) {
                Ok(t) if t == "1" => {}
                Ok(_) => {
                    return Err(format!(
                        "{at}: table {} does not exist: create it with --clickhouse-create, or with docs/clickhouse/schema-18.16.sql",
                        cfg.qualified()
                    ))
                }
                Err(Fail::Refused(e)) => return Err(format!("{at}: {e}")),
                Err(Fail::Down(e)) => {
                    log::warn!(
                        "{at} does not answer ({e}): records wait in memory{} until it does",
                        if cfg.spool.is_some() { " and in the spool" } else { " (no --clickhouse-spool: dropped, counted, when the queue is full)" }
                    );
                    up = false;
                }
            }
        }
        let spool = match &cfg.spool {
            Some(d) => {
                let s = Spool::open(d, cfg.spool_max)
                    .map_err(|e| format!("--clickhouse-spool {}: {e}", d.display()))?;
                if !s.is_empty() {
                    log::info!(
                        "ClickHouse spool {}: {} rows from an earlier run to replay",
                        d.display(),
                        s.rows()
                    );
                }
                Some(s)
            }
            None => None,
        };
        let insert_pq = cfg.path_query(
            &format!("INSERT INTO {} FORMAT JSONEachRow", cfg.qualified()),
            "&input_format_skip_unknown_fields=1",
        );
        let mut node_value = Vec::new();
        let _ = serde_json::to_writer(&mut node_value, &cfg.node);
        let shared = Arc::new(Shared {
            st: Mutex::new(State {
                ready: VecDeque::new(),
                ready_rows: 0,
                ready_bytes: 0,
                spool,
                counts: SinkCounts::default(),
                closing: false,
                lost_at_end: 0,
                spare: Vec::new(),
            }),
            cv: Condvar::new(),
        });
        let sender = Sender {
            cfg: cfg.clone(),
            insert_pq,
            shared: shared.clone(),
            next_try: Instant::now(),
            backoff: MIN_BACKOFF,
            up,
            spool_refusals: 0,
        };
        let handle = std::thread::Builder::new()
            .name("osprey-ch-send".into())
            .spawn(move || {
                super::fanout::lower_thread_priority();
                sender.run()
            })
            .map_err(|e| format!("ClickHouse sink: starting its sender thread: {e}"))?;
        Ok(ClickHouseSink {
            cfg,
            cur: Batch::new(),
            cur_started: Instant::now(),
            node_value,
            shared,
            sender: Some(handle),
        })
    }

    /// Hand the batch being built to the sender; past the memory bounds the
    /// oldest waiting go to the spool or are dropped (counted).
    fn seal(&mut self) {
        if self.cur.rows == 0 {
            return;
        }
        let b = std::mem::replace(&mut self.cur, Batch::new());
        let mut st = self.shared.lock();
        st.ready_rows += b.rows;
        st.ready_bytes += b.body.len() as u64;
        st.ready.push_back(b);
        while st.ready_rows > self.cfg.queue_rows || st.ready_bytes > self.cfg.queue_bytes {
            let Some(old) = st.ready.pop_front() else {
                break;
            };
            st.ready_rows -= old.rows;
            st.ready_bytes -= old.body.len() as u64;
            st.spool_or_drop(old);
        }
        drop(st);
        self.shared.cv.notify_one();
    }

    /// One row: `line` (a JSON object and its newline), with `--node-name`
    /// as its `node` when the record's own is null.
    fn add_line(&mut self, line: &[u8], null_node_at: Option<usize>) {
        if self.cur.rows == 0 {
            self.cur_started = Instant::now();
        }
        if self.cur.body.capacity() == 0 {
            match self.shared.lock().spare.pop() {
                Some(b) => self.cur.body = b,
                None => self.cur.body.reserve(self.cfg.batch_bytes.min(1 << 20)),
            }
        }
        append_row(&mut self.cur.body, line, null_node_at, &self.node_value);
        self.cur.rows += 1;
        if self.cur.rows as usize >= self.cfg.batch_rows
            || self.cur.body.len() >= self.cfg.batch_bytes
        {
            self.seal();
        }
    }

    /// Stop the sender (after its last attempt); idempotent.
    fn close(&mut self) {
        self.seal();
        if let Some(h) = self.sender.take() {
            self.shared.lock().closing = true;
            self.shared.cv.notify_one();
            if h.join().is_err() {
                log::warn!("ClickHouse sink: the sender thread panicked");
            }
        }
    }
}

/// Append `line` to `body`; with `null_node_at` (the record's `node` is
/// null, its value at that offset of the line) that null becomes
/// `node_value`. A compact line (`--record-format compact`) has no null
/// `node`: the offset is then where the field was left out (the `,` of the
/// next field), and `,"node":` and `node_value` are put in there.
fn append_row(body: &mut Vec<u8>, line: &[u8], null_node_at: Option<usize>, node_value: &[u8]) {
    if let Some(at) = null_node_at {
        if line.get(at.saturating_sub(8)..at + 4) == Some(b",\"node\":null") {
            body.extend_from_slice(&line[..at]);
            body.extend_from_slice(node_value);
            body.extend_from_slice(&line[at + 4..]);
            return;
        }
        if at > 0 && line.get(at) == Some(&b',') {
            body.extend_from_slice(&line[..at]);
            body.extend_from_slice(b",\"node\":");
            body.extend_from_slice(node_value);
            body.extend_from_slice(&line[at..]);
            return;
        }
        debug_assert!(false, "no null node at {at}");
    }
    body.extend_from_slice(line);
}

impl Sender {
    fn run(mut self) {
        loop {
            let mut st = self.shared.lock();
            loop {
                if st.closing {
                    break;
                }
                let has = !st.ready.is_empty() || st.spool.as_ref().is_some_and(|s| !s.is_empty());
                let now = Instant::now();
                if has && now >= self.next_try {
                    break;
                }
                let wait = if has {
                    self.next_try - now
                } else {
                    Duration::from_secs(1)
                };
                st = self
                    .shared
                    .cv
                    .wait_timeout(st, wait)
                    .map(|r| r.0)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            let closing = st.closing;
            drop(st);
            if closing {
                self.finish();
                return;
            }
            self.deliver();
        }
    }

    /// The end: one more attempt for everything, then the rest to the
    /// spool or counted as dropped.
    fn finish(&mut self) {
        self.next_try = Instant::now();
        self.deliver();
        let mut st = self.shared.lock();
        let left: Vec<Batch> = st.ready.drain(..).collect();
        st.ready_rows = 0;
        st.ready_bytes = 0;
        for b in left {
            let before = st.counts.dropped;
            st.spool_or_drop(b);
            st.lost_at_end += st.counts.dropped - before;
        }
    }

    fn send(&self, body: &[u8]) -> Result<(), Fail> {
        match request(
            &self.cfg.url,
            "POST",
            &self.insert_pq,
            &[body],
            self.cfg.timeout,
        ) {
            Ok(r) if r.status == 200 => Ok(()),
            Ok(r) => Err(Fail::Refused(format!("HTTP {}: {}", r.status, r.text()))),
            Err(e) => Err(Fail::Down(e.to_string())),
        }
    }

    fn failed(&mut self, f: &Fail) {
        self.shared.lock().counts.errors += 1;
        let msg = match f {
            Fail::Down(e) | Fail::Refused(e) => e,
        };
        if self.up {
            log::warn!(
                "ClickHouse at http://{}: insert failed: {msg}; retrying with backoff",
                self.cfg.url.authority()
            );
            self.up = false;
        }
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn ok(&mut self, rows: u64) {
        self.shared.lock().counts.written += rows;
        self.backoff = MIN_BACKOFF;
        if !self.up {
            log::info!(
                "ClickHouse at http://{}: inserting again",
                self.cfg.url.authority()
            );
            self.up = true;
        }
    }

    /// Deliver what waits, oldest first, until done or a failure.
    fn deliver(&mut self) {
        if Instant::now() < self.next_try {
            return;
        }
        // the spool holds the oldest rows
        loop {
            let next = match &self.shared.lock().spool {
                Some(s) => match s.oldest() {
                    Ok(n) => n,
                    Err(e) => {
                        log::warn!("ClickHouse spool: {e}");
                        None
                    }
                },
                None => None,
            };
            let Some((body, rows)) = next else { break };
            // only this thread removes from the spool: its oldest is still
            // this batch after the send
            match self.send(&body) {
                Ok(()) => {
                    self.ok(rows);
                    self.spool_refusals = 0;
                    if let Some(s) = &mut self.shared.lock().spool {
                        if let Err(e) = s.remove_oldest() {
                            log::warn!("ClickHouse spool: {e}");
                        }
                    }
                }
                Err(f) => {
                    self.failed(&f);
                    if let Fail::Refused(e) = &f {
                        self.spool_refusals += 1;
                        if self.spool_refusals >= self.cfg.max_refusals {
                            self.spool_refusals = 0;
                            log::warn!("ClickHouse refused a spooled batch of {rows} rows {} times, dropped (counted): {e}", self.cfg.max_refusals);
                            let mut st = self.shared.lock();
                            st.counts.dropped += rows;
                            if let Some(s) = &mut st.spool {
                                if let Err(e) = s.remove_oldest() {
                                    log::warn!("ClickHouse spool: {e}");
                                }
                            }
                        }
                    }
                    return;
                }
            }
        }
        loop {
            // taken out while it is sent (the memory bound holds the rest)
            let b = {
                let mut st = self.shared.lock();
                let b = st.ready.pop_front();
                if let Some(b) = &b {
                    st.ready_rows -= b.rows;
                    st.ready_bytes -= b.body.len() as u64;
                }
                b
            };
            let Some(mut b) = b else { return };
            match self.send(&b.body) {
                Ok(()) => {
                    self.ok(b.rows);
                    self.shared.lock().give_back(b.body);
                }
                Err(f) => {
                    self.failed(&f);
                    let mut st = self.shared.lock();
                    if let Fail::Refused(e) = &f {
                        b.refusals += 1;
                        if b.refusals >= self.cfg.max_refusals {
                            log::warn!("ClickHouse refused a batch of {} rows {} times, dropped (counted): {e}", b.rows, b.refusals);
                            st.counts.dropped += b.rows;
                            return;
                        }
                    }
                    // back at the front: it is the oldest in memory
                    st.ready_rows += b.rows;
                    st.ready_bytes += b.body.len() as u64;
                    st.ready.push_front(b);
                    return;
                }
            }
        }
    }
}

impl Sink for ClickHouseSink {
    fn emit(&mut self, item: &Output) -> io::Result<()> {
        if let Output::Record(Record::Transaction(t)) = item {
            let mut line = Vec::with_capacity(1024);
            let at = crate::jsonline::write_transaction_node(t, &mut line);
            line.push(b'\n');
            self.add_line(&line, t.conn.ident.node.is_none().then_some(at));
        }
        Ok(())
    }

    fn wants_lines(&self) -> bool {
        true
    }

    fn emit_lines(&mut self, batch: &LineBatch) -> io::Result<()> {
        for (line, row) in batch.lines() {
            self.add_line(line, row.node_null.then_some(row.node_at as usize));
        }
        Ok(())
    }

    fn tick(&mut self) -> io::Result<()> {
        if self.cur.rows > 0 && self.cur_started.elapsed() >= self.cfg.interval {
            self.seal();
        }
        Ok(())
    }

    /// The end: the sender's last attempt, then the rest to the spool or
    /// counted as dropped.
    fn flush(&mut self) -> io::Result<()> {
        self.close();
        let lost = std::mem::take(&mut self.shared.lock().lost_at_end);
        if lost > 0 {
            return Err(io::Error::other(format!(
                "ClickHouse at http://{}: {lost} rows could not be delivered",
                self.cfg.url.authority()
            )));
        }
        Ok(())
    }

    fn counts(&self) -> Option<SinkCounts> {
        let st = self.shared.lock();
        let mut c = st.counts.clone();
        c.spooled = st.spool.as_ref().map_or(0, |s| s.rows());
        Some(c)
    }
}

impl Drop for ClickHouseSink {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests;
