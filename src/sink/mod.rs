// SPDX-License-Identifier: GPL-3.0-or-later
//! Output sinks. The pipeline's writer (or the poller, inline) owns one
//! `Sink`: the JSON lines alone, or a [`Fanout`] that also feeds sinks
//! running in threads of their own (Prometheus metrics, ClickHouse), each
//! behind its own bounded queue.
//!
//! * `jsonl.rs` — JSON lines to stdout or a file (`create_private`);
//! * `rotate.rs` — the file of `-o` rotated by size and time;
//! * `pagecache.rs` — a written file's pages let go of behind the writer;
//! * `fanout.rs` — several sinks at once, a queue and a thread each;
//! * `prometheus/` — RED metrics and Osprey's health, served over HTTP;
//! * `clickhouse/` — batched inserts over ClickHouse's HTTP interface,
//!   with an on-disk spool;
//! * `http.rs` — the minimal HTTP/1.1 client both servers' tests and the
//!   ClickHouse sink use (std::net, no async runtime).

use std::io;

use crate::output::Output;

pub mod cli;
pub mod clickhouse;
pub mod fanout;
pub mod http;
pub mod jsonl;
pub mod pagecache;
pub mod prometheus;
pub mod rotate;

pub use fanout::Fanout;
pub use jsonl::{create_private, JsonlSink};

/// Where records go. Implementations must not write anything but records.
pub trait Sink: Send {
    fn emit(&mut self, item: &Output) -> io::Result<()>;
    /// [`Sink::emit`] of a record the caller no longer needs (the pipeline
    /// hands records over this way: [`Fanout`] queues them without a copy).
    fn emit_owned(&mut self, item: Output) -> io::Result<()> {
        self.emit(&item)
    }
    /// [`Sink::emit`] of a transaction whose JSON line the caller already
    /// made (`line`: the bytes [`crate::jsonline::write_transaction`] gives,
    /// plus the newline). [`Fanout`] serialises a transaction once and hands
    /// the same bytes to the JSON-lines sink and to the sinks that take
    /// lines ([`Sink::wants_lines`]).
    fn emit_line(&mut self, item: &Output, _line: &[u8]) -> io::Result<()> {
        self.emit(item)
    }
    /// A sink behind a [`Fanout`] queue that takes the transactions as
    /// their JSON lines ([`Sink::emit_lines`]) instead of records.
    fn wants_lines(&self) -> bool {
        false
    }
    /// A batch of transaction lines (sinks that [`Sink::wants_lines`]).
    fn emit_lines(&mut self, _batch: &LineBatch) -> io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()>;
    /// Called about every 100 ms by a sink's own thread ([`Fanout`]):
    /// time-based batches, retries.
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// After a write error: what reached the output and what did not.
    fn loss(&self) -> Option<SinkLoss> {
        None
    }
    /// At the end (after the last flush): one report per sink behind this
    /// one (a [`Fanout`]'s queued sinks; a sink of its own says nothing).
    fn reports(&mut self) -> Vec<SinkReport> {
        Vec::new()
    }
    /// This sink's own counters for its [`SinkReport`] (written, dropped
    /// in the sink itself, errors); None: counted by the caller alone.
    fn counts(&self) -> Option<SinkCounts> {
        None
    }
}

/// Transactions as JSON lines, made once by the [`Fanout`] and shared
/// (`Arc`) by every sink that takes lines: `bytes` holds the lines one
/// after another, each ending in a newline; `rows` says where each ends.
#[derive(Debug, Default, Clone)]
pub struct LineBatch {
    pub bytes: Vec<u8>,
    pub rows: Vec<LineRow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRow {
    /// Offset in `bytes` just past this line's newline.
    pub end: u32,
    /// The record's `node` is null (no identity gave one).
    pub node_null: bool,
    /// Where in the line the value of `node` begins.
    pub node_at: u32,
}

impl LineBatch {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.rows.clear();
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    /// The lines, each with its row entry.
    pub fn lines(&self) -> impl Iterator<Item = (&[u8], LineRow)> + '_ {
        let mut start = 0usize;
        self.rows.iter().map(move |r| {
            let l = &self.bytes[start..r.end as usize];
            start = r.end as usize;
            (l, *r)
        })
    }
}

/// What a failed output holds (see [`JsonlSink`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkLoss {
    /// Records written whole before the first write error.
    pub written: u64,
    /// Records handed to the sink that are not in the output.
    pub lost: u64,
    /// Bytes of a record the error cut, left at the end of the output
    /// (0 when none was cut, or the cut part was removed from the file).
    pub cut_bytes: u64,
    /// A cut record's bytes were removed (the file truncated to its last
    /// whole line).
    pub cut_removed: bool,
}

impl std::fmt::Display for SinkLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records written whole, {} records not written",
            self.written, self.lost
        )?;
        if self.cut_removed {
            write!(f, "; the record the error cut was removed from the file")
        } else if self.cut_bytes > 0 {
            write!(
                f,
                "; the output ends with {} bytes of a cut record (no newline)",
                self.cut_bytes
            )
        } else {
            Ok(())
        }
    }
}

/// Collects records in memory (tests).
#[derive(Default)]
pub struct VecSink(pub std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Sink for VecSink {
    fn emit(&mut self, item: &Output) -> io::Result<()> {
        let s = serde_json::to_string(item).map_err(io::Error::other)?;
        self.0.lock().unwrap().push(s);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sink's own counters (see [`Sink::counts`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkCounts {
    /// Records delivered (rows inserted, observations made).
    pub written: u64,
    /// Records the sink took but could not deliver (a full spool, a batch
    /// the server refused for good).
    pub dropped: u64,
    /// Failed attempts (each retried or ending in a drop).
    pub errors: u64,
    /// Records still waiting (in a spool kept for the next run).
    pub spooled: u64,
}

/// One queued sink at the end of a run (the summary's per-sink line).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkReport {
    pub name: String,
    /// Records handed to the sink's queue.
    pub queued: u64,
    /// `sink_dropped`: records this sink never delivered: its queue was
    /// full (`queue_full`), or the sink itself dropped them.
    pub sink_dropped: u64,
    pub queue_full: u64,
    #[serde(flatten)]
    pub counts: SinkCounts,
    /// The first error the sink returned, if any.
    pub error: Option<String>,
}

impl std::fmt::Display for SinkReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sink {}: {} records queued, {} written, sink_dropped {} ({} at a full queue), {} errors",
            self.name,
            self.queued,
            self.counts.written,
            self.sink_dropped,
            self.queue_full,
            self.counts.errors
        )?;
        if self.counts.spooled > 0 {
            write!(
                f,
                ", {} left in the spool for the next run",
                self.counts.spooled
            )?;
        }
        if let Some(e) = &self.error {
            write!(f, "; first error: {e}")?;
        }
        Ok(())
    }
}
