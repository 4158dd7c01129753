// SPDX-License-Identifier: GPL-3.0-or-later
//! The ClickHouse sink (`--clickhouse URL`): transactions batched into
//! `INSERT INTO db.table FORMAT JSONEachRow` over ClickHouse's HTTP
//! interface. It runs in a thread of its own behind the fanout's bounded
//! queue, so the probe never waits for it.
//!
//! * Batches are sealed at `batch_rows` rows, `batch_bytes` bytes, or
//!   `interval` after their first row, whichever comes first.
//! * Sealed batches wait in memory (at most `queue_rows` rows); past that
//!   the oldest go to the on-disk spool (`spool.rs`) when one is set, else
//!   they are dropped and counted.
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
use std::time::{Duration, Instant};

use super::http::{encode_query, request, Url};
use super::{Sink, SinkCounts};
use crate::output::Output;
use crate::record::Record;
use spool::Spool;

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
            batch_rows: 10_000,
            batch_bytes: 8 << 20,
            interval: Duration::from_secs(1),
            queue_rows: 100_000,
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

pub struct ClickHouseSink {
    cfg: ChConfig,
    insert_pq: String,
    cur: Batch,
    cur_started: Instant,
    ready: VecDeque<Batch>,
    ready_rows: u64,
    spool: Option<Spool>,
    next_try: Instant,
    backoff: Duration,
    counts: SinkCounts,
    /// Server is answering (for log messages once per change).
    up: bool,
    node_json: Vec<u8>,
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
    /// spool until it does).
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
        let mut node_json = b",\"node\":".to_vec();
        let _ = serde_json::to_writer(&mut node_json, &cfg.node);
        node_json.push(b'}');
        Ok(ClickHouseSink {
            cfg,
            insert_pq,
            cur: Batch::new(),
            cur_started: Instant::now(),
            ready: VecDeque::new(),
            ready_rows: 0,
            spool,
            next_try: Instant::now(),
            backoff: MIN_BACKOFF,
            counts: SinkCounts::default(),
            up,
            node_json,
            spool_refusals: 0,
        })
    }

    fn seal(&mut self) {
        if self.cur.rows == 0 {
            return;
        }
        let b = std::mem::replace(&mut self.cur, Batch::new());
        self.ready_rows += b.rows;
        self.ready.push_back(b);
        while self.ready_rows > self.cfg.queue_rows {
            let Some(old) = self.ready.pop_front() else {
                break;
            };
            self.ready_rows -= old.rows;
            self.to_spool_or_drop(old);
        }
    }

    fn to_spool_or_drop(&mut self, b: Batch) {
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
        self.counts.errors += 1;
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
        self.counts.written += rows;
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
            let next = match &self.spool {
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
            match self.send(&body) {
                Ok(()) => {
                    self.ok(rows);
                    self.spool_refusals = 0;
                    if let Some(s) = &mut self.spool {
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
                            self.counts.dropped += rows;
                            if let Some(s) = &mut self.spool {
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
        while let Some(b) = self.ready.front() {
            match self.send(&b.body) {
                Ok(()) => {
                    let b = self.ready.pop_front().expect("front exists");
                    self.ready_rows -= b.rows;
                    self.ok(b.rows);
                }
                Err(f) => {
                    self.failed(&f);
                    if let Fail::Refused(e) = &f {
                        let b = self.ready.front_mut().expect("front exists");
                        b.refusals += 1;
                        if b.refusals >= self.cfg.max_refusals {
                            let b = self.ready.pop_front().expect("front exists");
                            self.ready_rows -= b.rows;
                            log::warn!("ClickHouse refused a batch of {} rows {} times, dropped (counted): {e}", b.rows, b.refusals);
                            self.counts.dropped += b.rows;
                        }
                    }
                    return;
                }
            }
        }
    }

    fn add_row(&mut self, t: &crate::record::Transaction) {
        if self.cur.rows == 0 {
            self.cur_started = Instant::now();
        }
        let start = self.cur.body.len();
        crate::jsonline::write_transaction(t, &mut self.cur.body);
        set_node(&mut self.cur.body, start, &self.node_json);
        self.cur.body.push(b'\n');
        self.cur.rows += 1;
        if self.cur.rows as usize >= self.cfg.batch_rows
            || self.cur.body.len() >= self.cfg.batch_bytes
        {
            self.seal();
        }
    }
}

/// The `node` column of the JSON line at `body[start..]` (one object,
/// no newline yet): a record's own non-null `node` (identity fields) is
/// kept; a null one, or none, becomes `node_json`'s (`,"node":"NAME"}`). A
/// key can appear only once in a JSONEachRow row; inside a string value a
/// quote is escaped, so `,"node":` is always the key.
fn set_node(body: &mut Vec<u8>, start: usize, node_json: &[u8]) {
    let line = &body[start..];
    match memchr::memmem::find(line, b",\"node\":") {
        Some(i) if line[i + 8..].starts_with(b"null") => {
            let at = start + i + 8;
            let value = node_json[8..node_json.len() - 1].to_vec();
            body.splice(at..at + 4, value);
        }
        Some(_) => {}
        None if body.last() == Some(&b'}') => {
            body.pop();
            body.extend_from_slice(node_json);
        }
        None => {}
    }
}

impl Sink for ClickHouseSink {
    fn emit(&mut self, item: &Output) -> io::Result<()> {
        if let Output::Record(Record::Transaction(t)) = item {
            self.add_row(t);
        }
        Ok(())
    }

    fn tick(&mut self) -> io::Result<()> {
        if self.cur.rows > 0 && self.cur_started.elapsed() >= self.cfg.interval {
            self.seal();
        }
        if !self.ready.is_empty() || self.spool.as_ref().is_some_and(|s| !s.is_empty()) {
            self.deliver();
        }
        Ok(())
    }

    /// The end: one more attempt for everything, then the rest to the
    /// spool or counted as dropped.
    fn flush(&mut self) -> io::Result<()> {
        self.seal();
        self.next_try = Instant::now();
        self.deliver();
        let left: Vec<Batch> = self.ready.drain(..).collect();
        self.ready_rows = 0;
        let mut lost = 0;
        for b in left {
            let before = self.counts.dropped;
            self.to_spool_or_drop(b);
            lost += self.counts.dropped - before;
        }
        self.counts.spooled = self.spool.as_ref().map_or(0, |s| s.rows());
        if lost > 0 {
            return Err(io::Error::other(format!(
                "ClickHouse at http://{}: {lost} rows could not be delivered",
                self.cfg.url.authority()
            )));
        }
        Ok(())
    }

    fn counts(&self) -> Option<SinkCounts> {
        let mut c = self.counts.clone();
        c.spooled = self.spool.as_ref().map_or(0, |s| s.rows());
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A fake ClickHouse: counts rows of inserts; answers 200, or `fail`
    /// (a status) while `fail` is not 0; `EXISTS` answers "1".
    struct Fake {
        port: u16,
        rows: Arc<AtomicU64>,
        inserts: Arc<AtomicU64>,
        fail: Arc<AtomicU32>,
    }

    fn fake() -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (rows, inserts, fail) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU32::new(0)),
        );
        let (r, i, f) = (rows.clone(), inserts.clone(), fail.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                let mut buf = Vec::new();
                let mut tmp = [0u8; 65536];
                // head, then Content-Length bytes
                let (head_end, clen) = loop {
                    let n = s.read(&mut tmp).unwrap();
                    if n == 0 {
                        break (0, 0);
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(e) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..e]).to_lowercase();
                        let cl = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length: ")?
                                    .trim()
                                    .parse::<usize>()
                                    .ok()
                            })
                            .unwrap_or(0);
                        break (e + 4, cl);
                    }
                };
                while buf.len() < head_end + clen {
                    let n = s.read(&mut tmp).unwrap();
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let body = &buf[head_end..];
                let code = f.load(Ordering::SeqCst);
                let (status, text) = if code != 0 {
                    (
                        code,
                        "Code: 1000, e.displayText() = DB::Exception: fake".to_string(),
                    )
                } else if head.contains("INSERT") {
                    r.fetch_add(
                        memchr::memchr_iter(b'\n', body).count() as u64,
                        Ordering::SeqCst,
                    );
                    i.fetch_add(1, Ordering::SeqCst);
                    (200, String::new())
                } else {
                    (200, "1\n".to_string())
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Fake {
            port,
            rows,
            inserts,
            fail,
        }
    }

    fn txn() -> Output {
        Output::Record(Record::Transaction(
            Box::new(crate::jsonline::tests::base()),
        ))
    }

    fn cfg(port: u16) -> ChConfig {
        let mut c = ChConfig::new(Url::parse(&format!("http://127.0.0.1:{port}")).unwrap());
        c.batch_rows = 100;
        c.node = "n1".into();
        c
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("osprey-ch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn batches_by_size_and_time_and_rows_carry_the_node() {
        let f = fake();
        let mut c = cfg(f.port);
        c.interval = Duration::from_millis(50);
        let mut s = ClickHouseSink::connect(c).unwrap();
        for _ in 0..250 {
            s.emit(&txn()).unwrap();
        }
        s.tick().unwrap();
        assert_eq!(
            f.inserts.load(Ordering::SeqCst),
            2,
            "two full batches of 100"
        );
        assert_eq!(s.cur.rows, 50);
        assert!(String::from_utf8_lossy(&s.cur.body).lines().all(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["node"] == "n1" && v["type"] == "http_transaction"
        }));
        std::thread::sleep(Duration::from_millis(60));
        s.tick().unwrap();
        assert_eq!(
            f.rows.load(Ordering::SeqCst),
            250,
            "the last batch went by time"
        );
        s.flush().unwrap();
        assert_eq!(s.counts().unwrap().written, 250);
    }

    #[test]
    fn an_outage_spools_and_replays_and_a_full_spool_is_counted() {
        let f = fake();
        let mut c = cfg(f.port);
        c.queue_rows = 100;
        let dir = tmp("spool");
        c.spool = Some(dir.clone());
        let mut s = ClickHouseSink::connect(c.clone()).unwrap();
        f.fail.store(503, Ordering::SeqCst);
        for _ in 0..500 {
            s.emit(&txn()).unwrap();
            s.tick().unwrap();
        }
        assert!(s.counts.errors > 0);
        assert!(
            s.spool.as_ref().unwrap().rows() >= 300,
            "{}",
            s.spool.as_ref().unwrap().rows()
        );
        f.fail.store(0, Ordering::SeqCst);
        s.next_try = Instant::now();
        s.tick().unwrap();
        s.flush().unwrap();
        assert_eq!(f.rows.load(Ordering::SeqCst), 500);
        assert_eq!(
            s.counts().unwrap(),
            SinkCounts {
                written: 500,
                dropped: 0,
                errors: s.counts.errors,
                spooled: 0
            }
        );
        // a spool too small: what does not fit is counted, the rest kept
        // for the next run when the server never comes back
        let mut c2 = c.clone();
        let mut one = Vec::new();
        crate::jsonline::write_transaction(&crate::jsonline::tests::base(), &mut one);
        let line = one.len() as u64 + 13;
        c2.spool_max = 150 * line;
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = ClickHouseSink::connect(c2.clone()).unwrap();
        f.fail.store(503, Ordering::SeqCst);
        for _ in 0..500 {
            s.emit(&txn()).unwrap();
            s.tick().unwrap();
        }
        assert!(
            s.flush().is_err(),
            "undelivered rows are an error at the end"
        );
        let k = s.counts().unwrap();
        assert_eq!(k.written, 0);
        assert_eq!(k.spooled, 100);
        assert_eq!(k.dropped, 400);
        // the next run replays the spool
        f.fail.store(0, Ordering::SeqCst);
        let before = f.rows.load(Ordering::SeqCst);
        let mut s = ClickHouseSink::connect(c2).unwrap();
        s.tick().unwrap();
        s.flush().unwrap();
        assert_eq!(f.rows.load(Ordering::SeqCst) - before, 100);
        assert_eq!(s.counts().unwrap().spooled, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_refused_batch_is_dropped_after_retries_and_counted() {
        let f = fake();
        let mut c = cfg(f.port);
        c.max_refusals = 3;
        let mut s = ClickHouseSink::connect(c).unwrap();
        f.fail.store(500, Ordering::SeqCst);
        for _ in 0..100 {
            s.emit(&txn()).unwrap();
        }
        for _ in 0..3 {
            s.next_try = Instant::now();
            s.tick().unwrap();
        }
        assert_eq!(s.counts().unwrap().dropped, 100);
        assert_eq!(s.counts().unwrap().errors, 3);
    }

    #[test]
    fn a_records_own_node_is_kept_a_null_one_replaced() {
        let f = fake();
        let mut s = ClickHouseSink::connect(cfg(f.port)).unwrap();
        let mut t = crate::jsonline::tests::base();
        t.path = Some(",\"node\":null".into()); // inside a string: escaped
        s.add_row(&t);
        let v: serde_json::Value = serde_json::from_slice(&s.cur.body).unwrap();
        assert_eq!(
            (v["node"].as_str(), v["path"].as_str()),
            (Some("n1"), Some(",\"node\":null"))
        );
        // a record with a node key of its own (the identity fields)
        for (own, want) in [("null", "n1"), ("\"k8s-node-3\"", "k8s-node-3")] {
            let mut b = b"xx".to_vec();
            b.extend_from_slice(format!("{{\"a\":1,\"node\":{own},\"exe\":null}}").as_bytes());
            set_node(&mut b, 2, &s.node_json);
            let v: serde_json::Value = serde_json::from_slice(&b[2..]).unwrap();
            assert_eq!((v["node"].as_str(), v["exe"].is_null()), (Some(want), true));
        }
    }

    #[test]
    fn bad_configuration_is_an_error_at_start() {
        // nothing listens: only a warning, the sink runs
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(ClickHouseSink::connect(cfg(port)).is_ok());
        let mut c = cfg(port);
        c.create = true;
        assert!(ClickHouseSink::connect(c)
            .err()
            .unwrap()
            .contains("does not answer"));
        let mut c = cfg(port);
        c.table = "x; DROP TABLE y".into();
        assert!(ClickHouseSink::connect(c)
            .err()
            .unwrap()
            .contains("--clickhouse-table"));
        let f = fake();
        f.fail.store(404, Ordering::SeqCst);
        let e = ClickHouseSink::connect(cfg(f.port)).err().unwrap();
        assert!(e.contains("HTTP 404"), "{e}");
    }
}
