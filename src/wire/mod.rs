// SPDX-License-Identifier: GPL-3.0-or-later
//! `osprey wire`: the wire-side vantage. Reads a pcap/pcapng capture,
//! reassembles TCP, turns every flow into the probe's event model (from the
//! client's point of view) and runs the same [`Tracker`] to produce the same
//! transaction records, with `"source": "wire"` and null pid/tid/comm.

pub mod pcap;
pub mod tcp;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use crate::event::Event;
use crate::record::{Record, Source};
use crate::track::{Tracker, TrackerConfig, TrackerStats};
use pcap::{Reader, Skip};
use tcp::{ReasmConfig, ReasmStats, Reassembler};

/// Arguments of `osprey wire`.
#[derive(clap::Args, Debug, Clone)]
pub struct WireArgs {
    /// Capture file (pcap or pcapng; link types Ethernet, Linux SLL/SLL2,
    /// NULL/loopback, raw IP), or `-` for stdin (`tcpdump -w - | osprey
    /// wire -`: records are written as they complete).
    #[arg(value_name = "FILE.pcap")]
    pub file: PathBuf,
    /// Write JSONL records here instead of stdout (created mode 0600; a
    /// symbolic link is refused unless --force).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the output file through a symbolic link at its path.
    #[arg(long)]
    pub force: bool,
    /// Include request/response header lists in records.
    #[arg(long)]
    pub headers: bool,
    /// Also redact the values of this header (repeatable; added to
    /// Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key,
    /// X-Auth-Token, X-Amz-Security-Token, Api-Key).
    #[arg(long, value_name = "NAME")]
    pub redact_header: Vec<String>,
    /// Also redact the values of this query parameter in targets
    /// (repeatable; added to token, access_token, api_key, password, sig).
    #[arg(long, value_name = "NAME")]
    pub redact_param: Vec<String>,
    /// DANGEROUS: write credentials (header values, query parameters) as
    /// they are, unredacted.
    #[arg(long, conflicts_with_all = ["redact_header", "redact_param"])]
    pub no_redact: bool,
    /// Emit one record per message instead of per transaction.
    #[arg(long)]
    pub messages: bool,
}

/// Counters for one capture.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WireSummary {
    pub packets: u64,
    pub tcp_segments: u64,
    pub skipped_non_ip: u64,
    pub skipped_non_tcp: u64,
    pub skipped_fragments: u64,
    pub skipped_malformed: u64,
    pub skipped_link_type: u64,
    pub reassembly: ReasmStats,
    pub tracker: TrackerStats,
    /// A file-structure error that ended reading early (e.g. truncated last packet).
    pub error: Option<String>,
}

impl WireSummary {
    /// Human summary (several lines, for stderr).
    pub fn human(&self) -> String {
        let r = &self.reassembly;
        let mut s = format!(
            "wire: {} packets ({} TCP segments; skipped: {} non-IP, {} non-TCP, {} IP fragments, {} malformed, {} unsupported link type)\n\
             wire: {} flows ({} mid-stream, {} closed, {} reset), {} payload bytes, {} retransmitted bytes, {} out-of-order segments\n\
             wire: {} gaps ({} bytes missing from the capture), {} bytes cut by snaplen\n\
             wire: {} transactions, {} messages, {} unanswered requests, {} incomplete requests, {} unparseable heads",
            self.packets,
            self.tcp_segments,
            self.skipped_non_ip,
            self.skipped_non_tcp,
            self.skipped_fragments,
            self.skipped_malformed,
            self.skipped_link_type,
            r.flows,
            r.flows_midstream,
            r.flows_closed,
            r.flows_reset,
            r.bytes,
            r.retransmitted_bytes,
            r.out_of_order_segments,
            r.gaps,
            r.gap_bytes,
            r.snaplen_cut_bytes,
            self.tracker.transactions,
            self.tracker.messages,
            self.tracker.unanswered_requests,
            self.tracker.incomplete_requests,
            self.tracker.unparseable,
        );
        if let Some(e) = &self.error {
            s.push_str(&format!(
                "\nwire: WARNING: stopped reading the capture {e}; everything before it was processed"
            ));
        }
        s
    }
}

/// A capture as a stream of records (pull-based, bounded memory).
pub struct WireStream<R: Read> {
    reader: Reader<R>,
    reasm: Reassembler,
    tracker: Tracker,
    events: Vec<Event>,
    recs: Vec<Record>,
    queue: VecDeque<Record>,
    last_expire: u64,
    finished: bool,
    summary: WireSummary,
}

/// Tracker settings for wire flows.
pub fn tracker_config(
    headers: bool,
    redact: crate::redact::Redact,
    messages: bool,
) -> TrackerConfig {
    TrackerConfig {
        headers,
        redact,
        emit_transactions: !messages,
        emit_messages: messages,
        realtime_offset_ns: 0,
        // Reassembly already reorders: a position jump is a real gap.
        reorder_window: 0,
        source: Source::Wire,
        ..TrackerConfig::default()
    }
}

impl<R: Read> WireStream<R> {
    /// Read the capture's file header; Err if it is not a capture at all.
    pub fn new(r: R, cfg: TrackerConfig) -> Result<WireStream<R>, pcap::PcapError> {
        Ok(WireStream {
            reader: Reader::new(r)?,
            reasm: Reassembler::new(ReasmConfig::default()),
            tracker: Tracker::new(cfg),
            events: Vec::new(),
            recs: Vec::new(),
            queue: VecDeque::new(),
            last_expire: 0,
            finished: false,
            summary: WireSummary::default(),
        })
    }

    fn feed_events(&mut self) {
        for ev in self.events.drain(..) {
            self.tracker.on_event(&ev, &mut self.recs);
        }
        self.queue.extend(self.recs.drain(..));
    }

    fn finish(&mut self) {
        self.finished = true;
        self.reasm.finish(&mut self.events);
        self.feed_events();
        self.tracker.flush_all(&mut self.recs);
        self.queue.extend(self.recs.drain(..));
    }

    /// The next record, or None at the end of the capture.
    pub fn next_record(&mut self) -> Option<Record> {
        loop {
            if let Some(r) = self.queue.pop_front() {
                return Some(r);
            }
            if self.finished {
                return None;
            }
            match self.reader.next_packet() {
                Ok(Some(p)) => {
                    self.summary.packets += 1;
                    match pcap::decode(p.linktype, &p.data) {
                        Ok(seg) => {
                            self.summary.tcp_segments += 1;
                            self.reasm.on_segment(p.ts_ns, &seg, &mut self.events);
                        }
                        Err(Skip::NotIp) => self.summary.skipped_non_ip += 1,
                        Err(Skip::NotTcp) => self.summary.skipped_non_tcp += 1,
                        Err(Skip::Fragment) => self.summary.skipped_fragments += 1,
                        Err(Skip::Malformed) => self.summary.skipped_malformed += 1,
                        Err(Skip::LinkType) => self.summary.skipped_link_type += 1,
                    }
                    self.feed_events();
                    if p.ts_ns >= self.last_expire.saturating_add(1_000_000_000) {
                        self.last_expire = p.ts_ns;
                        self.tracker.expire(p.ts_ns, &mut self.recs);
                        self.queue.extend(self.recs.drain(..));
                    }
                }
                Ok(None) => self.finish(),
                Err(e) => {
                    self.summary.error = Some(e.to_string());
                    self.finish();
                }
            }
        }
    }

    /// Counters so far (complete once `next_record` returned None).
    pub fn summary(&self) -> WireSummary {
        let mut s = self.summary.clone();
        s.reassembly = self.reasm.stats().clone();
        s.tracker = self.tracker.stats();
        s
    }
}

impl<R: Read> Iterator for WireStream<R> {
    type Item = Record;
    fn next(&mut self) -> Option<Record> {
        self.next_record()
    }
}

/// Open a capture file as a record stream.
pub fn open(
    path: &std::path::Path,
    cfg: TrackerConfig,
) -> anyhow::Result<WireStream<BufReader<File>>> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    WireStream::new(BufReader::with_capacity(256 * 1024, f), cfg)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// True when the file starts with a pcap or pcapng magic number.
pub fn is_capture(path: &std::path::Path) -> std::io::Result<bool> {
    let mut head = [0u8; 4];
    let mut f = File::open(path)?;
    let mut n = 0;
    while n < 4 {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(pcap::sniff(&head[..n]).is_some())
}

/// Exit status of `osprey wire` when the capture could not be read to its
/// end (corrupt or truncated): the records before the damage were written.
pub const EXIT_CAPTURE_ENDED_EARLY: u8 = 3;

/// `osprey wire FILE` (or `-`: stdin): capture → JSONL records; summary on
/// stderr. Returns the exit status: 0, or [`EXIT_CAPTURE_ENDED_EARLY`].
pub fn wire_cmd(args: &WireArgs) -> anyhow::Result<u8> {
    let redact = if args.no_redact {
        crate::redact::Redact::off()
    } else {
        crate::redact::Redact::with(&args.redact_header, &args.redact_param)
    };
    let cfg = tracker_config(args.headers, redact, args.messages);
    let out: Box<dyn Write> = match &args.output {
        Some(p) if p.as_os_str() != "-" => Box::new(BufWriter::new(
            crate::sink::create_private(p, args.force)
                .with_context(|| format!("creating {}", p.display()))?,
        )),
        _ => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let summary = if args.file.as_os_str() == "-" {
        // a live pipe (`tcpdump -w - | osprey wire -`): each record goes
        // out as soon as it is complete
        let stream = WireStream::new(std::io::stdin().lock(), cfg)
            .map_err(|e| anyhow::anyhow!("stdin: {e}"))?;
        write_records(stream, out, true)?
    } else {
        write_records(open(&args.file, cfg)?, out, false)?
    };
    eprintln!("{}", summary.human());
    Ok(if summary.error.is_some() {
        EXIT_CAPTURE_ENDED_EARLY
    } else {
        0
    })
}

fn write_records<R: Read>(
    mut stream: WireStream<R>,
    mut out: Box<dyn Write>,
    live: bool,
) -> anyhow::Result<WireSummary> {
    for rec in stream.by_ref() {
        writeln!(out, "{}", rec.to_json_line()).context("writing records")?;
        if live {
            out.flush().context("writing records")?;
        }
    }
    out.flush().context("writing records")?;
    Ok(stream.summary())
}

#[cfg(test)]
mod tests;
