// SPDX-License-Identifier: GPL-3.0-or-later
//! `osprey recon-diff`: reconcile wire-side transaction records (from a
//! capture, see [`crate::wire`]) with the probe's records.
//!
//! Matching rules (docs/recon.md has the user-facing version):
//! * Every record is normalised to (client ip:port, server ip:port) using its
//!   role: a client-side record's local end is the client, a server-side
//!   record's local end is the server. IPv4-mapped IPv6 addresses are
//!   unmapped. Records with role "unknown" guess the higher port is the client.
//! * Probe records are split into two sides: client-role and server-role. On
//!   loopback the probe reports both ends of an exchange while the wire sees
//!   it once, so the wire records are matched separately against each side.
//! * Within one connection of one side, records are paired in order of
//!   `ts_start_ns`, and a pair must start within `skew + latency tolerance`
//!   of each other; otherwise the earlier record is unmatched.
//! * Streaming: both inputs are read as time-ordered streams, the one that
//!   is further behind first. Records are assumed ordered by `ts_end_ns`
//!   within the window (default 10 s; the probe and `osprey wire` emit in
//!   completion order, which satisfies it). A record is settled once both
//!   inputs have moved a window past its `ts_end_ns`, so memory holds about
//!   a window's worth of records.
//!
//! Layout: this file has the command (arguments, driver, exit codes);
//! `input.rs` reads the inputs into typed [`crate::record::Transaction`]s
//! (the record types are the only list of fields); `engine.rs` pairs and
//! explains.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;

mod engine;
mod input;
#[cfg(test)]
mod tests;

use crate::record::{read_json_line, HTTP1};
use engine::Engine;
pub use engine::{MatchConfig, SideSummary, Summary};
#[cfg(any(fuzzing, test))]
use input::lines_iter;
use input::{capture_notes, jsonl_iter, roles_in, wire_input, Input, ItemError, RecIter};

/// Which probe sides to compare against the wire.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sides {
    /// Each side the probe input has records for.
    Auto,
    Client,
    Server,
    Both,
}

/// Arguments of `osprey recon-diff`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReconArgs {
    /// Wire-side records: JSONL from `osprey wire`, or a .pcap/.pcapng
    /// capture (detected by magic) which is run through `osprey wire` first.
    #[arg(long, value_name = "FILE")]
    pub wire: PathBuf,
    /// Probe records (JSONL from `osprey`).
    #[arg(long, value_name = "FILE")]
    pub ebpf: PathBuf,
    /// Largest clock difference between the two vantages, ms.
    #[arg(long, default_value_t = 50.0, value_name = "MS")]
    pub skew_ms: f64,
    /// Latency difference tolerated before it is a mismatch, ms (also
    /// widens the start-time window).
    #[arg(long, default_value_t = 5.0, value_name = "MS")]
    pub latency_tolerance_ms: f64,
    /// Most matched transactions with a field mismatch, percent, for exit 0.
    #[arg(long, default_value_t = 0.0, value_name = "PCT")]
    pub max_mismatch_pct: f64,
    /// Most unmatched (wire-only + probe-only) transactions, percent, for exit 0.
    #[arg(long, default_value_t = 0.0, value_name = "PCT")]
    pub max_unmatched_pct: f64,
    /// Write the differences (JSONL) here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Probe sides to compare with the wire.
    #[arg(long, value_enum, default_value_t = Sides::Auto)]
    pub sides: Sides,
    /// How far out of ts_end order the inputs may be, seconds.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    pub window_s: f64,
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Write output files (-o, --summary-json; created mode 0600) through a
    /// symbolic link at their path instead of refusing.
    #[arg(long)]
    pub force: bool,
}

// ---------------------------------------------------------------------------
// Driver

/// Compare two record streams; differences go to `out`. Returns the summary.
fn run_engine(
    cfg: MatchConfig,
    wire: &mut Input,
    ebpf: &mut Input,
    out: &mut dyn Write,
    max_mismatch: f64,
    max_unmatched: f64,
    stats: &mut RunStats,
) -> anyhow::Result<Summary> {
    let mut eng = Engine::new(cfg.clone());
    let mut since_flush = 0u32;
    loop {
        // Read from the input that is further behind in time.
        let pick_wire = match (wire.done, ebpf.done) {
            (true, true) => break,
            (false, true) => true,
            (true, false) => false,
            (false, false) => wire.max_end <= ebpf.max_end,
        };
        if pick_wire {
            if let Some(r) = wire.next() {
                eng.add_wire(r);
            }
        } else if let Some(r) = ebpf.next() {
            eng.add_ebpf(r);
        }
        since_flush += 1;
        if since_flush >= 256 {
            since_flush = 0;
            let lag = |i: &Input| {
                if i.done {
                    i64::MAX
                } else {
                    i.max_end.saturating_sub(cfg.window_ns)
                }
            };
            let w = lag(wire).min(lag(ebpf));
            stats.peak_pending = stats.peak_pending.max(eng.pending());
            eng.flush(w);
            for d in eng.take_diffs() {
                writeln!(out, "{d}").context("writing differences")?;
            }
        }
    }
    eng.flush(i64::MAX);
    stats.looks = eng.looks;
    for d in eng.take_diffs() {
        writeln!(out, "{d}").context("writing differences")?;
    }
    eng.summary.unusable_records = wire.unusable + ebpf.unusable;
    eng.summary.bad_lines = wire.bad_lines + ebpf.bad_lines;
    eng.finish(max_mismatch, max_unmatched);
    for i in [&*wire, &*ebpf] {
        if let Some(e) = &i.first_error {
            eng.summary.notes.push(format!(
                "{} input: {} lines were not JSON (first: {e})",
                i.name, i.bad_lines
            ));
        }
        if let Some(e) = &i.first_unusable {
            eng.summary.notes.push(format!(
                "{} input: {} transaction records were skipped because a field is missing, of the wrong \
                 type or out of range, or they have no addresses (first: {e})",
                i.name, i.unusable
            ));
        }
        if i.other_protocol > 0 {
            eng.summary.notes.push(format!(
                "{} input: {} records of another protocol than {HTTP1} were skipped (recon compares HTTP/1.x)",
                i.name, i.other_protocol
            ));
        }
    }
    Ok(eng.summary)
}

/// Human summary table.
pub fn human(s: &Summary) -> String {
    let mut t = format!(
        "recon: {} wire records, {} probe records\n{:<8} {:>9} {:>11} {:>10} {:>11}\n",
        s.wire_records, s.ebpf_records, "side", "matched", "mismatched", "wire_only", "probe_only"
    );
    for (n, x) in &s.sides {
        t.push_str(&format!(
            "{:<8} {:>9} {:>11} {:>10} {:>11}\n",
            n, x.matched, x.mismatched, x.wire_only, x.probe_only
        ));
        if !x.fields.is_empty() {
            let f: Vec<String> = x.fields.iter().map(|(k, v)| format!("{k} {v}")).collect();
            t.push_str(&format!("         field mismatches: {}\n", f.join(", ")));
        }
        if x.latency_vantage > 0 {
            t.push_str(&format!(
                "         latency beyond tolerance where the vantage predicts it (not a mismatch): {}\n",
                x.latency_vantage
            ));
        }
    }
    t.push_str(&format!(
        "mismatch {:.2}% (max {}%), unmatched {:.2}% (max {}%): {}",
        s.mismatch_pct,
        s.max_mismatch_pct,
        s.unmatched_pct,
        s.max_unmatched_pct,
        if s.ok { "OK" } else { "OVER THRESHOLD" }
    ));
    for n in &s.notes {
        t.push_str(&format!("\nnote: {n}"));
    }
    t
}

/// `osprey recon-diff`: returns the exit code (0 within thresholds, 1 over,
/// 2 for usage/input errors, which are printed to stderr). Err only when
/// writing the output fails.
pub fn recon_cmd(args: &ReconArgs) -> anyhow::Result<i32> {
    let bad = |m: String| {
        eprintln!("osprey recon-diff: {m}");
        Ok(2)
    };
    for (n, v) in [
        ("--skew-ms", args.skew_ms),
        ("--latency-tolerance-ms", args.latency_tolerance_ms),
        ("--max-mismatch-pct", args.max_mismatch_pct),
        ("--max-unmatched-pct", args.max_unmatched_pct),
        ("--window-s", args.window_s),
    ] {
        if !v.is_finite() || v < 0.0 {
            return bad(format!("{n} must be a non-negative number"));
        }
    }
    let sides = match args.sides {
        Sides::Client => [true, false],
        Sides::Server => [false, true],
        Sides::Both => [true, true],
        Sides::Auto => match roles_in(&args.ebpf) {
            Ok([false, false]) => [true, true],
            Ok(h) => h,
            Err(e) => return bad(format!("{e:#}")),
        },
    };
    let (wit, wire_summary) = match wire_input(&args.wire) {
        Ok(x) => x,
        Err(e) => return bad(format!("--wire: {e:#}")),
    };
    let eit = match jsonl_iter(&args.ebpf) {
        Ok(x) => x,
        Err(e) => return bad(format!("--ebpf: {e:#}")),
    };
    let ms = |x: f64| (x * 1e6).round().min(i64::MAX as f64) as i64;
    let cfg = MatchConfig {
        skew_ns: ms(args.skew_ms),
        tol_ns: ms(args.latency_tolerance_ms),
        window_ns: ms(args.window_s * 1000.0),
        sides,
    };
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => match crate::sink::create_private(p, args.force) {
            Ok(f) => Box::new(BufWriter::new(f)),
            Err(e) => return bad(format!("creating {}: {e}", p.display())),
        },
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    // created before the comparison, so that a refused path is said first
    let mut summary_file = match &args.summary_json {
        Some(p) => match crate::sink::create_private(p, args.force) {
            Ok(f) => Some(f),
            Err(e) => return bad(format!("creating {}: {e}", p.display())),
        },
        None => None,
    };
    let mut wire = Input::new("wire", wit);
    let mut ebpf = Input::new("ebpf", eit);
    let summary = run_engine(
        cfg,
        &mut wire,
        &mut ebpf,
        &mut out,
        args.max_mismatch_pct,
        args.max_unmatched_pct,
        &mut RunStats::default(),
    )?;
    out.flush().context("writing differences")?;
    let mut summary = summary;
    if let Some(ws) = wire_summary.borrow().as_ref() {
        eprintln!("{}", ws.human());
        capture_notes(ws, &mut summary.notes);
    }
    eprintln!("{}", human(&summary));
    if let Some(p) = &args.summary_json {
        let text = serde_json::to_string_pretty(&summary)? + "\n";
        if let Some(f) = summary_file.as_mut() {
            f.write_all(text.as_bytes())
                .with_context(|| format!("writing {}", p.display()))?;
        }
    }
    for (i, path) in [(&wire, &args.wire), (&ebpf, &args.ebpf)] {
        if let Some(e) = &i.io_error {
            return bad(format!("--{}: reading {}: {e}", i.name, path.display()));
        }
    }
    let inputs_empty = wire.records == 0 && ebpf.records == 0;
    if inputs_empty && (wire.bad_lines > 0 || ebpf.bad_lines > 0) {
        eprintln!("osprey recon-diff: no transaction records could be read");
        return Ok(2);
    }
    Ok(if summary.ok { 0 } else { 1 })
}

/// How much a comparison held and did, for tests of its bounds.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunStats {
    /// The most records held pending at once (sampled at each flush).
    pub peak_pending: usize,
    /// Groups and records the settling looked at, in all: linear in the
    /// input when the matching is.
    pub looks: u64,
}

/// Compare in-memory JSON records (tests and library use). Also returns
/// what the run held and did ([`RunStats`]).
pub fn recon_values(
    wire: impl IntoIterator<Item = Value> + 'static,
    ebpf: impl IntoIterator<Item = Value> + 'static,
    cfg: MatchConfig,
    max_mismatch: f64,
    max_unmatched: f64,
) -> (Summary, Vec<Value>, RunStats) {
    // through the same reader as a file's lines
    fn lines(v: impl IntoIterator<Item = Value> + 'static) -> RecIter {
        Box::new(v.into_iter().map(|v| {
            read_json_line(v.to_string().as_bytes()).map_err(|e| ItemError::NotJson(e.to_string()))
        }))
    }
    let mut w = Input::new("wire", lines(wire));
    let mut e = Input::new("ebpf", lines(ebpf));
    let mut buf = Vec::new();
    let mut stats = RunStats::default();
    let s = run_engine(
        cfg,
        &mut w,
        &mut e,
        &mut buf,
        max_mismatch,
        max_unmatched,
        &mut stats,
    )
    .expect("writing to memory");
    let diffs = String::from_utf8_lossy(&buf)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (s, diffs, stats)
}

/// Compare two JSONL inputs held in memory, read as files are (the fuzz
/// target `recon_jsonl`, [`crate::fuzzing`]): the summary and the
/// differences' lines.
#[cfg(any(fuzzing, test))]
pub fn recon_jsonl(wire: &[u8], ebpf: &[u8], cfg: MatchConfig) -> (Summary, Vec<String>) {
    let cursor = |b: &[u8]| lines_iter(std::io::Cursor::new(b.to_vec()));
    let mut w = Input::new("wire", cursor(wire));
    let mut e = Input::new("ebpf", cursor(ebpf));
    let mut buf = Vec::new();
    let s = run_engine(
        cfg,
        &mut w,
        &mut e,
        &mut buf,
        0.0,
        0.0,
        &mut RunStats::default(),
    )
    .expect("writing to memory");
    let diffs = String::from_utf8(buf)
        .expect("differences are UTF-8")
        .lines()
        .map(String::from)
        .collect();
    (s, diffs)
}
