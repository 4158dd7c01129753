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

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde_json::{json, Value};

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
}

// ---------------------------------------------------------------------------
// Records

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Client = 0,
    Server = 1,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// The fields recon needs from one transaction record.
#[derive(Clone, Debug)]
struct Rec {
    ts_start: i64,
    ts_end: i64,
    ts_start_iso: Value,
    latency: Option<u64>,
    fields: [Value; 5],
    /// None for role "unknown".
    side: Option<Side>,
    client: String,
    server: String,
    loopback: bool,
    conn_id: Value,
    comm: Value,
    gap: bool,
    truncated: bool,
    no_response: bool,
}

const FIELDS: [&str; 5] = [
    "method",
    "target",
    "status",
    "req_body_bytes",
    "resp_body_bytes",
];

fn norm_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    })
}

/// Parse one transaction record; Err for records recon cannot use.
fn parse_rec(v: &Value) -> Result<Rec, &'static str> {
    let i64f = |k: &str| v.get(k).and_then(Value::as_i64);
    let ts_start = i64f("ts_start_ns").ok_or("no ts_start_ns")?;
    let ts_end = i64f("ts_end_ns").unwrap_or(ts_start);
    let ep = |a: &str, p: &str| -> Option<SocketAddr> {
        let ip = norm_ip(v.get(a)?.as_str()?)?;
        let port = u16::try_from(v.get(p)?.as_u64()?).ok()?;
        Some(SocketAddr::new(ip, port))
    };
    let local = ep("local_addr", "local_port").ok_or("no addresses")?;
    let remote = ep("remote_addr", "remote_port").ok_or("no addresses")?;
    let role = v.get("role").and_then(Value::as_str).unwrap_or("unknown");
    let side = match role {
        "client" => Some(Side::Client),
        "server" => Some(Side::Server),
        _ => None,
    };
    let (client, server) = match side {
        Some(Side::Client) => (local, remote),
        Some(Side::Server) => (remote, local),
        None if local.port() >= remote.port() => (local, remote),
        None => (remote, local),
    };
    let b = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    let g = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    Ok(Rec {
        ts_start,
        ts_end: ts_end.max(ts_start),
        ts_start_iso: g("ts_start"),
        latency: v.get("latency_ns").and_then(Value::as_u64),
        fields: FIELDS.map(g),
        side,
        client: client.to_string(),
        server: server.to_string(),
        loopback: client.ip().is_loopback() && server.ip().is_loopback(),
        conn_id: g("conn_id"),
        comm: g("comm"),
        gap: b("gap"),
        truncated: b("truncated"),
        no_response: b("no_response"),
    })
}

// ---------------------------------------------------------------------------
// Inputs

type RecIter = Box<dyn Iterator<Item = Result<Value, String>>>;

struct Input {
    name: &'static str,
    it: RecIter,
    done: bool,
    max_end: i64,
    records: u64,
    /// Transaction records without addresses or timestamps.
    unusable: u64,
    other_records: u64,
    bad_lines: u64,
    first_error: Option<String>,
}

impl Input {
    fn new(name: &'static str, it: RecIter) -> Input {
        Input {
            name,
            it,
            done: false,
            max_end: i64::MIN,
            records: 0,
            unusable: 0,
            other_records: 0,
            bad_lines: 0,
            first_error: None,
        }
    }

    /// Next usable transaction record.
    fn next(&mut self) -> Option<Rec> {
        loop {
            let v = match self.it.next() {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Err(e)) => {
                    self.bad_lines += 1;
                    self.first_error.get_or_insert(e);
                    continue;
                }
                Some(Ok(v)) => v,
            };
            if v.get("type").and_then(Value::as_str) != Some("http_transaction") {
                self.other_records += 1;
                continue;
            }
            self.records += 1;
            match parse_rec(&v) {
                Ok(r) => {
                    self.max_end = self.max_end.max(r.ts_end);
                    return Some(r);
                }
                Err(_) => self.unusable += 1,
            }
        }
    }
}

fn jsonl_iter(path: &Path) -> anyhow::Result<RecIter> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let r = BufReader::with_capacity(256 * 1024, f);
    let mut n = 0u64;
    Ok(Box::new(r.split(b'\n').filter_map(move |l| {
        n += 1;
        match l {
            Err(e) => Some(Err(format!("line {n}: {e}"))),
            Ok(l) if l.iter().all(u8::is_ascii_whitespace) => None,
            Ok(l) => {
                Some(serde_json::from_slice::<Value>(&l).map_err(|e| format!("line {n}: {e}")))
            }
        }
    })))
}

/// Does the JSONL file contain records of each role? (cheap pre-pass)
fn roles_in(path: &Path) -> anyhow::Result<[bool; 2]> {
    let mut has = [false; 2];
    for v in jsonl_iter(path)?.flatten() {
        if v.get("type").and_then(Value::as_str) != Some("http_transaction") {
            continue;
        }
        match v.get("role").and_then(Value::as_str) {
            Some("client") => has[0] = true,
            Some("server") => has[1] = true,
            _ => {}
        }
        if has == [true, true] {
            break;
        }
    }
    Ok(has)
}

// ---------------------------------------------------------------------------
// Matching engine

/// Counters for one side.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SideSummary {
    pub matched: u64,
    /// Matched transactions with at least one field mismatch.
    pub mismatched: u64,
    pub wire_only: u64,
    pub probe_only: u64,
    /// Mismatches per field.
    pub fields: BTreeMap<String, u64>,
}

/// The whole comparison.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Summary {
    pub wire_records: u64,
    pub ebpf_records: u64,
    /// Probe records with role "unknown" (no request seen): not compared.
    pub ebpf_unknown_role: u64,
    /// Transaction records without addresses/timestamps (either input).
    pub unusable_records: u64,
    /// Lines that were not JSON (either input); they are skipped.
    pub bad_lines: u64,
    pub sides: BTreeMap<String, SideSummary>,
    pub mismatch_pct: f64,
    pub unmatched_pct: f64,
    pub max_mismatch_pct: f64,
    pub max_unmatched_pct: f64,
    pub ok: bool,
    pub notes: Vec<String>,
}

#[derive(Default)]
struct Group {
    wire: Vec<Rec>,
    ebpf: Vec<Rec>,
    /// The probe (this side) / the wire had any record on this connection.
    probe_seen: bool,
    wire_seen: bool,
    last_end: i64,
}

/// Matching settings.
#[derive(Clone, Debug)]
pub struct MatchConfig {
    pub skew_ns: i64,
    pub tol_ns: i64,
    pub window_ns: i64,
    /// Sides compared: [client, server].
    pub sides: [bool; 2],
}

struct Engine {
    cfg: MatchConfig,
    groups: [BTreeMap<(String, String), Group>; 2],
    summary: Summary,
    wire_loopback: u64,
    ebpf_loopback: u64,
    diffs: Vec<(i64, Value)>,
}

impl Engine {
    fn new(cfg: MatchConfig) -> Engine {
        let mut summary = Summary::default();
        for s in [Side::Client, Side::Server] {
            if cfg.sides[s as usize] {
                summary
                    .sides
                    .insert(s.name().into(), SideSummary::default());
            }
        }
        Engine {
            cfg,
            groups: [BTreeMap::new(), BTreeMap::new()],
            summary,
            wire_loopback: 0,
            ebpf_loopback: 0,
            diffs: Vec::new(),
        }
    }

    fn add_wire(&mut self, r: Rec) {
        self.summary.wire_records += 1;
        self.wire_loopback += r.loopback as u64;
        for s in [Side::Client, Side::Server] {
            if self.cfg.sides[s as usize] {
                let g = self.groups[s as usize]
                    .entry((r.client.clone(), r.server.clone()))
                    .or_default();
                g.wire_seen = true;
                g.last_end = g.last_end.max(r.ts_end);
                g.wire.push(r.clone());
            }
        }
    }

    fn add_ebpf(&mut self, r: Rec) {
        self.summary.ebpf_records += 1;
        self.ebpf_loopback += r.loopback as u64;
        let Some(s) = r.side else {
            self.summary.ebpf_unknown_role += 1;
            return;
        };
        if !self.cfg.sides[s as usize] {
            return;
        }
        let g = self.groups[s as usize]
            .entry((r.client.clone(), r.server.clone()))
            .or_default();
        g.probe_seen = true;
        g.last_end = g.last_end.max(r.ts_end);
        g.ebpf.push(r);
    }

    /// Settle every record whose ts_end is before `w`.
    fn flush(&mut self, w: i64) {
        let win = self.cfg.skew_ns.saturating_add(self.cfg.tol_ns);
        for s in [Side::Client, Side::Server] {
            let keys: Vec<(String, String)> = self.groups[s as usize].keys().cloned().collect();
            for k in keys {
                let mut g = self.groups[s as usize].remove(&k).unwrap_or_default();
                g.wire.sort_by_key(|r| r.ts_start);
                g.ebpf.sort_by_key(|r| r.ts_start);
                let (mut i, mut j) = (0, 0);
                let mut keep_w = Vec::new();
                let mut keep_e = Vec::new();
                let wire = std::mem::take(&mut g.wire);
                let ebpf = std::mem::take(&mut g.ebpf);
                while i < wire.len() || j < ebpf.len() {
                    let (wi, ej) = (wire.get(i), ebpf.get(j));
                    match (wi, ej) {
                        (Some(a), Some(b)) if (b.ts_start - a.ts_start).abs() <= win => {
                            if a.ts_end < w && b.ts_end < w {
                                self.compare(s, &k, a, b);
                            } else {
                                keep_w.push(a.clone());
                                keep_e.push(b.clone());
                            }
                            i += 1;
                            j += 1;
                        }
                        (Some(a), b) if b.is_none_or(|b| b.ts_start > a.ts_start) => {
                            if a.ts_end < w {
                                self.unmatched_wire(s, &k, a, &g);
                            } else {
                                keep_w.push(a.clone());
                            }
                            i += 1;
                        }
                        (_, Some(b)) => {
                            if b.ts_end < w {
                                self.unmatched_ebpf(s, &k, b, &g);
                            } else {
                                keep_e.push(b.clone());
                            }
                            j += 1;
                        }
                        _ => break,
                    }
                }
                g.wire = keep_w;
                g.ebpf = keep_e;
                let forget = g.wire.is_empty()
                    && g.ebpf.is_empty()
                    && (w == i64::MAX || g.last_end < w.saturating_sub(self.cfg.window_ns));
                if !forget {
                    self.groups[s as usize].insert(k, g);
                }
            }
        }
    }

    fn side_mut(&mut self, s: Side) -> &mut SideSummary {
        self.summary.sides.entry(s.name().into()).or_default()
    }

    fn conn(k: &(String, String)) -> String {
        format!("{} -> {}", k.0, k.1)
    }

    fn compare(&mut self, s: Side, k: &(String, String), w: &Rec, e: &Rec) {
        let mut found = Vec::new();
        for (n, f) in FIELDS.iter().enumerate() {
            if w.fields[n] != e.fields[n] {
                found.push((*f, w.fields[n].clone(), e.fields[n].clone()));
            }
        }
        if let (Some(a), Some(b)) = (w.latency, e.latency) {
            if (a as i128 - b as i128).unsigned_abs() > self.cfg.tol_ns.max(0) as u128 {
                found.push(("latency_ns", json!(a), json!(b)));
            }
        }
        let sm = self.side_mut(s);
        sm.matched += 1;
        if !found.is_empty() {
            sm.mismatched += 1;
        }
        for (f, _, _) in &found {
            *sm.fields.entry((*f).into()).or_default() += 1;
        }
        for (f, a, b) in found {
            let expl = explain_mismatch(s, f, w, e);
            self.diffs.push((
                w.ts_start,
                json!({
                    "kind": "mismatch",
                    "side": s.name(),
                    "field": f,
                    "wire": a,
                    "ebpf": b,
                    "conn": Self::conn(k),
                    "ts_start": w.ts_start_iso,
                    "method": w.fields[0],
                    "target": w.fields[1],
                    "wire_conn_id": w.conn_id,
                    "ebpf_conn_id": e.conn_id,
                    "comm": e.comm,
                    "explanation": expl,
                }),
            ));
        }
    }

    fn unmatched_wire(&mut self, s: Side, k: &(String, String), w: &Rec, g: &Group) {
        self.side_mut(s).wire_only += 1;
        let mut why = Vec::new();
        if !g.probe_seen {
            why.push(format!(
                "the probe reported nothing on this connection's {} side: that process was not traced \
                 (an allowlist such as --pid/--comm filters whole connections), the probe was not \
                 running yet, or the {} is on another host",
                s.name(),
                s.name()
            ));
        } else {
            why.push(format!(
                "the probe has other {}-side transactions on this connection: this one was lost \
                 (ring-buffer loss or a probe-side gap merging/splitting messages)",
                s.name()
            ));
        }
        if w.gap {
            why.push("the wire record itself has gap=true (bytes missing from the capture)".into());
        }
        self.diffs.push((
            w.ts_start,
            json!({
                "kind": "wire_only",
                "side": s.name(),
                "field": null,
                "wire": summary_of(w),
                "ebpf": null,
                "conn": Self::conn(k),
                "ts_start": w.ts_start_iso,
                "wire_conn_id": w.conn_id,
                "explanation": why.join("; "),
            }),
        ));
    }

    fn unmatched_ebpf(&mut self, s: Side, k: &(String, String), e: &Rec, g: &Group) {
        self.side_mut(s).probe_only += 1;
        let mut why = Vec::new();
        if !g.wire_seen {
            if e.loopback && self.wire_loopback == 0 {
                why.push(
                    "loopback connection: a capture on a NIC (SPAN/TAP or -i eth0) never sees it; \
                     capture with -i lo (or -i any) to compare it"
                        .to_string(),
                );
            } else {
                why.push(
                    "the capture has no transaction on this connection: outside the capture filter or \
                     interface, before/after the capture ran, or dropped by the capturing kernel"
                        .into(),
                );
            }
        } else {
            why.push(
                "the capture has other transactions on this connection: this exchange was lost from \
                 the capture (packet drops leave a wire-side gap) or timed differently beyond the skew"
                    .into(),
            );
        }
        if e.gap {
            why.push("the probe record has gap=true (its fields may be incomplete)".into());
        }
        if e.no_response {
            why.push("the probe record has no_response=true".into());
        }
        self.diffs.push((
            e.ts_start,
            json!({
                "kind": "probe_only",
                "side": s.name(),
                "field": null,
                "wire": null,
                "ebpf": summary_of(e),
                "conn": Self::conn(k),
                "ts_start": e.ts_start_iso,
                "ebpf_conn_id": e.conn_id,
                "comm": e.comm,
                "explanation": why.join("; "),
            }),
        ));
    }

    fn take_diffs(&mut self) -> Vec<Value> {
        let mut d = std::mem::take(&mut self.diffs);
        // Stable: ties keep the (deterministic) order they were found in.
        d.sort_by_key(|x| x.0);
        d.into_iter().map(|(_, v)| v).collect()
    }

    fn pending(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|m| m.values())
            .map(|g| g.wire.len() + g.ebpf.len())
            .sum()
    }

    fn finish(&mut self, max_mismatch: f64, max_unmatched: f64) {
        let sm = &mut self.summary;
        let (mut m, mut mm, mut un) = (0u64, 0u64, 0u64);
        for s in sm.sides.values() {
            m += s.matched;
            mm += s.mismatched;
            un += s.wire_only + s.probe_only;
        }
        let pct = |a: u64, b: u64| {
            if b == 0 {
                0.0
            } else {
                (a as f64 * 10000.0 / b as f64).round() / 100.0
            }
        };
        sm.mismatch_pct = pct(mm, m);
        sm.unmatched_pct = pct(un, m + un);
        sm.max_mismatch_pct = max_mismatch;
        sm.max_unmatched_pct = max_unmatched;
        sm.ok = sm.mismatch_pct <= max_mismatch && sm.unmatched_pct <= max_unmatched;
        if self.wire_loopback > 0 && self.cfg.sides == [true, true] {
            sm.notes.push(format!(
                "{} wire transactions are on loopback: the capture sees each exchange once, the probe \
                 reports the client and the server end separately; each side is compared on its own",
                self.wire_loopback
            ));
        }
        if self.ebpf_loopback > 0 && self.wire_loopback == 0 {
            sm.notes.push(format!(
                "{} probe transactions are on loopback but the capture has none (NIC vantage): they \
                 show as probe_only",
                self.ebpf_loopback
            ));
        }
        for s in [Side::Client, Side::Server] {
            if !self.cfg.sides[s as usize] {
                sm.notes.push(format!(
                    "{} side not compared (the probe input has no {}-role records, or --sides excluded it)",
                    s.name(),
                    s.name()
                ));
            }
        }
        if sm.ebpf_unknown_role > 0 {
            sm.notes.push(format!(
                "{} probe records have role unknown (no request seen) and were not compared",
                sm.ebpf_unknown_role
            ));
        }
    }
}

fn summary_of(r: &Rec) -> Value {
    json!({
        "method": r.fields[0], "target": r.fields[1], "status": r.fields[2],
        "latency_ns": r.latency, "gap": r.gap, "truncated": r.truncated, "no_response": r.no_response,
    })
}

fn explain_mismatch(s: Side, field: &str, w: &Rec, e: &Rec) -> String {
    let mut why = Vec::new();
    if e.gap {
        why.push("probe record has gap=true: bytes were lost probe-side (ring buffer full, missed syscalls), fields may be incomplete");
    }
    if w.gap {
        why.push("wire record has gap=true: packets missing from the capture (capture drops, started mid-stream)");
    }
    if e.truncated && field.ends_with("body_bytes") {
        why.push("probe record is truncated (capture cap): body counts follow the framing");
    }
    if w.truncated && field.ends_with("body_bytes") {
        why.push("wire record is truncated: a missing body segment or snaplen cut");
    }
    if e.no_response != w.no_response {
        why.push(if e.no_response {
            "the probe saw no response (process exited/connection still open when the probe stopped, or response lost)"
        } else {
            "the capture saw no response (capture ended early, response packets dropped, or the snaplen cut the response head)"
        });
    }
    if field == "latency_ns" && why.is_empty() {
        why.push(match s {
            Side::Server => "server-side latency runs from the server's read of the request to its last write: it excludes network transit, client queuing and the final ACK-less flight",
            Side::Client => "client-side latency is measured at syscalls, the wire at packets: socket buffering, scheduling delays and TCP segmentation move either end",
        });
    }
    if why.is_empty() {
        why.push(
            "no recorded loss on either side: a parser or framing difference worth investigating",
        );
    }
    why.join("; ")
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
    peak_pending: &mut usize,
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
            *peak_pending = (*peak_pending).max(eng.pending());
            eng.flush(w);
            for d in eng.take_diffs() {
                writeln!(out, "{d}").context("writing differences")?;
            }
        }
    }
    eng.flush(i64::MAX);
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

type WireSummaryCell = std::rc::Rc<std::cell::RefCell<Option<crate::wire::WireSummary>>>;

/// The wire input: JSONL, or a capture run through `osprey wire` (its
/// summary lands in the returned cell once the capture is exhausted).
fn wire_input(path: &Path) -> anyhow::Result<(RecIter, WireSummaryCell)> {
    let cell = WireSummaryCell::default();
    if crate::wire::is_capture(path).with_context(|| format!("opening {}", path.display()))? {
        let stream = crate::wire::open(path, crate::wire::tracker_config(false, true, false))?;
        let mut stream = Some(stream);
        let out = cell.clone();
        let it = std::iter::from_fn(move || {
            let s = stream.as_mut()?;
            match s.next_record() {
                Some(r) => Some(serde_json::to_value(&r).map_err(|e| e.to_string())),
                None => {
                    *out.borrow_mut() = Some(s.summary());
                    stream = None;
                    None
                }
            }
        });
        Ok((Box::new(it), cell))
    } else {
        Ok((jsonl_iter(path)?, cell))
    }
}

/// Notes about the capture that explain differences.
fn capture_notes(w: &crate::wire::WireSummary, notes: &mut Vec<String>) {
    let r = &w.reassembly;
    if r.snaplen_cut_bytes > 0 {
        notes.push(format!(
            "the capture's snaplen cut {} payload bytes: message heads longer than the snaplen cannot be \
             parsed (wire records then lack the response or request); capture with -s 0",
            r.snaplen_cut_bytes
        ));
    }
    if r.gaps > 0 {
        notes.push(format!(
            "the capture is missing {} bytes in {} places (packets dropped by the capturing host or the \
             SPAN/TAP); wire records around them carry gap/truncated",
            r.gap_bytes, r.gaps
        ));
    }
    if r.flows_midstream > 0 {
        notes.push(format!(
            "{} capture flows were first seen mid-stream (capture started after the connection)",
            r.flows_midstream
        ));
    }
    if let Some(e) = &w.error {
        notes.push(format!("the capture ended early: {e}"));
    }
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
        Some(p) => match File::create(p) {
            Ok(f) => Box::new(BufWriter::new(f)),
            Err(e) => return bad(format!("creating {}: {e}", p.display())),
        },
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
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
        &mut 0,
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
        std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    let inputs_empty = wire.records == 0 && ebpf.records == 0;
    if inputs_empty && (wire.bad_lines > 0 || ebpf.bad_lines > 0) {
        eprintln!("osprey recon-diff: no transaction records could be read");
        return Ok(2);
    }
    Ok(if summary.ok { 0 } else { 1 })
}

/// Compare in-memory JSON records (tests and library use). Also returns the
/// most records held pending at once.
pub fn recon_values(
    wire: impl IntoIterator<Item = Value> + 'static,
    ebpf: impl IntoIterator<Item = Value> + 'static,
    cfg: MatchConfig,
    max_mismatch: f64,
    max_unmatched: f64,
) -> (Summary, Vec<Value>, usize) {
    let mut w = Input::new("wire", Box::new(wire.into_iter().map(Ok)));
    let mut e = Input::new("ebpf", Box::new(ebpf.into_iter().map(Ok)));
    let mut buf = Vec::new();
    let mut peak = 0;
    let s = run_engine(
        cfg,
        &mut w,
        &mut e,
        &mut buf,
        max_mismatch,
        max_unmatched,
        &mut peak,
    )
    .expect("writing to memory");
    let diffs = String::from_utf8_lossy(&buf)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (s, diffs, peak)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn rec(
        role: &str,
        local: &str,
        remote: &str,
        t_ms: i64,
        target: &str,
        status: u16,
        lat_ms: u64,
        source: &str,
    ) -> Value {
        let l: SocketAddr = local.parse().unwrap();
        let r: SocketAddr = remote.parse().unwrap();
        let t0 = 1_795_966_200_000_000_000i64 + t_ms * 1_000_000;
        json!({
            "type": "http_transaction", "ts_start": format!("t+{t_ms}ms"), "ts_start_ns": t0,
            "ts_end_ns": t0 + lat_ms as i64 * 1_000_000, "latency_ns": lat_ms * 1_000_000,
            "method": "GET", "target": target, "status": status, "req_body_bytes": 0, "resp_body_bytes": 10,
            "pid": if source == "wire" { Value::Null } else { json!(42) },
            "comm": if source == "wire" { Value::Null } else { json!(if role == "client" { "curl" } else { "nginx" }) },
            "conn_id": format!("{source}-{}", l.port()), "role": role,
            "local_addr": l.ip().to_string(), "local_port": l.port(),
            "remote_addr": r.ip().to_string(), "remote_port": r.port(),
            "source": source, "gap": false, "truncated": false, "no_response": false,
        })
    }

    const C: &str = "10.0.0.1:40000";
    const S: &str = "10.0.0.2:80";

    fn cfg(sides: [bool; 2]) -> MatchConfig {
        MatchConfig {
            skew_ns: 50_000_000,
            tol_ns: 5_000_000,
            window_ns: 10_000_000_000,
            sides,
        }
    }

    fn run(w: Vec<Value>, e: Vec<Value>, sides: [bool; 2]) -> (Summary, Vec<Value>) {
        let (s, d, _) = recon_values(w, e, cfg(sides), 0.0, 0.0);
        (s, d)
    }

    #[test]
    fn exact_match_is_clean() {
        let w = vec![
            rec("client", C, S, 0, "/a", 200, 3, "wire"),
            rec("client", C, S, 10, "/b", 200, 3, "wire"),
        ];
        let e = vec![
            rec("client", C, S, 1, "/a", 200, 3, "ebpf"),
            rec("client", C, S, 11, "/b", 200, 4, "ebpf"),
        ];
        let (s, d) = run(w, e, [true, false]);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(s.sides["client"].matched, 2);
        assert!(s.ok);
        assert_eq!(s.mismatch_pct, 0.0);
    }

    #[test]
    fn field_mismatch_reported_per_field() {
        let w = vec![rec("client", C, S, 0, "/a", 200, 3, "wire")];
        let mut p = rec("client", C, S, 0, "/a", 503, 30, "ebpf");
        p["resp_body_bytes"] = json!(11);
        let (s, d) = run(w, vec![p], [true, false]);
        let fields: Vec<&str> = d.iter().map(|x| x["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["status", "resp_body_bytes", "latency_ns"]);
        assert!(d
            .iter()
            .all(|x| x["kind"] == "mismatch" && x["conn"] == "10.0.0.1:40000 -> 10.0.0.2:80"));
        let st = d.iter().find(|x| x["field"] == "status").unwrap();
        assert_eq!(
            (st["wire"].as_u64(), st["ebpf"].as_u64()),
            (Some(200), Some(503))
        );
        assert_eq!(s.sides["client"].mismatched, 1);
        assert_eq!(s.sides["client"].fields["status"], 1);
        assert_eq!(s.mismatch_pct, 100.0);
        assert!(!s.ok);
        // within a 100 % threshold it passes
        let (s, _, _) = recon_values(
            vec![rec("client", C, S, 0, "/a", 200, 3, "wire")],
            vec![rec("client", C, S, 0, "/a", 503, 3, "ebpf")],
            cfg([true, false]),
            100.0,
            0.0,
        );
        assert!(s.ok);
    }

    #[test]
    fn wire_only_and_probe_only_with_explanations() {
        // second wire transaction lost by the probe; a probe-only connection elsewhere
        let w = vec![
            rec("client", C, S, 0, "/a", 200, 3, "wire"),
            rec("client", C, S, 20, "/b", 200, 3, "wire"),
        ];
        let e = vec![
            rec("client", C, S, 0, "/a", 200, 3, "ebpf"),
            rec("client", "10.0.0.1:40001", S, 5, "/x", 200, 3, "ebpf"),
        ];
        let (s, d) = run(w, e, [true, false]);
        let sc = &s.sides["client"];
        assert_eq!((sc.matched, sc.wire_only, sc.probe_only), (1, 1, 1));
        let wo = d.iter().find(|x| x["kind"] == "wire_only").unwrap();
        assert_eq!(wo["wire"]["target"], "/b");
        assert!(wo["explanation"]
            .as_str()
            .unwrap()
            .contains("other client-side transactions"));
        let po = d.iter().find(|x| x["kind"] == "probe_only").unwrap();
        assert!(po["explanation"]
            .as_str()
            .unwrap()
            .contains("no transaction on this connection"));
        assert_eq!(s.unmatched_pct, 66.67);
    }

    #[test]
    fn allowlisted_connection_is_explained() {
        let w = vec![rec("client", C, S, 0, "/a", 200, 3, "wire")];
        let (s, d) = run(w, vec![], [true, false]);
        assert_eq!(s.sides["client"].wire_only, 1);
        assert!(d[0]["explanation"].as_str().unwrap().contains("allowlist"));
    }

    #[test]
    fn clock_skew_within_and_beyond_window() {
        let w = vec![rec("client", C, S, 0, "/a", 200, 3, "wire")];
        let (s, _) = run(
            w.clone(),
            vec![rec("client", C, S, 40, "/a", 200, 3, "ebpf")],
            [true, false],
        );
        assert_eq!(s.sides["client"].matched, 1);
        let (s, _) = run(
            w.clone(),
            vec![rec("client", C, S, -54, "/a", 200, 3, "ebpf")],
            [true, false],
        );
        assert_eq!(s.sides["client"].matched, 1);
        let (s, d) = run(
            w,
            vec![rec("client", C, S, 100, "/a", 200, 3, "ebpf")],
            [true, false],
        );
        assert_eq!(
            (s.sides["client"].wire_only, s.sides["client"].probe_only),
            (1, 1)
        );
        assert_eq!(d[0]["kind"], "wire_only");
    }

    #[test]
    fn both_roles_on_loopback_matched_separately() {
        let c = "127.0.0.1:51000";
        let sv = "127.0.0.1:8080";
        let w = vec![rec("client", c, sv, 0, "/a", 200, 3, "wire")];
        let e = vec![
            rec("client", c, sv, 0, "/a", 200, 3, "ebpf"),
            rec("server", sv, c, 1, "/a", 200, 1, "ebpf"),
        ];
        let (s, d) = run(w, e, [true, true]);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(s.sides["client"].matched, 1);
        assert_eq!(s.sides["server"].matched, 1);
        assert!(s.notes.iter().any(|n| n.contains("loopback")));
        // a server-side latency difference gets the vantage explanation
        let w = vec![rec("client", c, sv, 0, "/a", 200, 30, "wire")];
        let e = vec![rec("server", sv, c, 1, "/a", 200, 1, "ebpf")];
        let (_, d) = run(w, e, [false, true]);
        assert_eq!(d[0]["field"], "latency_ns");
        assert!(d[0]["explanation"]
            .as_str()
            .unwrap()
            .contains("server-side latency"));
    }

    #[test]
    fn mapped_ipv6_and_wire_server_role_normalise() {
        let w = vec![rec("server", S, C, 0, "/a", 200, 3, "wire")];
        let e = vec![rec(
            "client",
            "[::ffff:10.0.0.1]:40000",
            "[::ffff:10.0.0.2]:80",
            0,
            "/a",
            200,
            3,
            "ebpf",
        )];
        let (s, d) = run(w, e, [true, false]);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(s.sides["client"].matched, 1);
    }

    #[test]
    fn unusable_and_foreign_records_are_counted_not_fatal() {
        let mut noaddr = rec("client", C, S, 0, "/a", 200, 3, "ebpf");
        noaddr["local_addr"] = Value::Null;
        let msg = json!({"type": "http_message"});
        let (s, _) = run(vec![], vec![noaddr, msg, json!(5)], [true, false]);
        assert_eq!(s.unusable_records, 1);
        assert!(s.ok);
    }

    #[test]
    fn memory_is_bounded_by_the_window() {
        // 20 000 transactions, 100 ms apart, on 50 connections: both streams
        // are consumed in lockstep and settled a window behind.
        let n = 20_000i64;
        let mk = |src: &'static str| {
            (0..n).map(move |i| {
                let port = 40000 + (i % 50) as u16;
                rec(
                    "client",
                    &format!("10.0.0.1:{port}"),
                    S,
                    i * 100,
                    "/a",
                    200,
                    3,
                    src,
                )
            })
        };
        let (s, d, peak) = recon_values(mk("wire"), mk("ebpf"), cfg([true, false]), 0.0, 0.0);
        assert!(d.is_empty());
        assert_eq!(s.sides["client"].matched, n as u64);
        // 10 s window at 10 records/s per input, plus a flush interval.
        assert!(peak < 1000, "peak pending {peak}");
    }

    // ---- golden: real captures against real probe records ------------------

    fn sample(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/recon")
            .join(name)
    }

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("osprey-recon-{}-{name}", std::process::id()))
    }

    /// Run the whole command; returns (exit code, summary, diffs) as one JSON.
    fn run_cmd(wire: PathBuf, ebpf: PathBuf, tag: &str) -> Value {
        let out = tmp(&format!("{tag}.diffs"));
        let sum = tmp(&format!("{tag}.summary"));
        let args = ReconArgs {
            wire,
            ebpf,
            skew_ms: 50.0,
            latency_tolerance_ms: 5.0,
            max_mismatch_pct: 0.0,
            max_unmatched_pct: 0.0,
            output: Some(out.clone()),
            sides: Sides::Auto,
            window_s: 10.0,
            summary_json: Some(sum.clone()),
        };
        let code = recon_cmd(&args).unwrap();
        let diffs: Vec<Value> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let summary: Value = serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
        let _ = std::fs::remove_file(out);
        let _ = std::fs::remove_file(sum);
        json!({"exit": code, "summary": summary, "diffs": diffs})
    }

    fn golden(name: &str, got: &Value) {
        let path = sample(&format!("{name}.golden"));
        let text = serde_json::to_string_pretty(got).unwrap() + "\n";
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &text).unwrap();
            return;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
        assert_eq!(
            want,
            text,
            "{} differs (UPDATE_GOLDEN=1 regenerates)",
            path.display()
        );
    }

    #[test]
    fn golden_python_loopback_pcap_and_pcapng() {
        let got = run_cmd(
            sample("lo_python.pcap"),
            sample("lo_python.probe.jsonl"),
            "py",
        );
        assert_eq!(got["exit"], 0);
        assert_eq!(got["summary"]["sides"]["client"]["matched"], 6);
        assert_eq!(got["summary"]["sides"]["server"]["matched"], 6);
        golden("lo_python", &got);
        let ng = run_cmd(
            sample("lo_python.pcapng"),
            sample("lo_python.probe.jsonl"),
            "pyng",
        );
        assert_eq!(
            ng, got,
            "pcapng and pcap of the same capture reconcile identically"
        );
    }

    #[test]
    fn golden_nginx_sll2_ipv6_keepalive() {
        let got = run_cmd(
            sample("any_nginx.pcap"),
            sample("any_nginx.probe.jsonl"),
            "ng",
        );
        assert_eq!(got["exit"], 0);
        assert_eq!(got["summary"]["sides"]["server"]["matched"], 7);
        golden("any_nginx", &got);
    }

    #[test]
    fn golden_nginx_mutated_probe() {
        let got = run_cmd(
            sample("any_nginx.pcap"),
            sample("any_nginx.probe-mutated.jsonl"),
            "mut",
        );
        assert_eq!(got["exit"], 1);
        let c = &got["summary"]["sides"]["client"];
        assert_eq!(
            (
                c["matched"].as_u64(),
                c["mismatched"].as_u64(),
                c["probe_only"].as_u64()
            ),
            (Some(7), Some(1), Some(1))
        );
        assert_eq!(got["summary"]["sides"]["server"]["wire_only"], 1);
        golden("any_nginx_mutated", &got);
    }

    #[test]
    fn golden_lossy_capture() {
        let got = run_cmd(
            sample("any_nginx_lossy.pcap"),
            sample("any_nginx.probe.jsonl"),
            "lossy",
        );
        assert_eq!(got["exit"], 1);
        assert!(got["diffs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["explanation"]
                .as_str()
                .unwrap()
                .contains("wire record has gap=true")));
        golden("any_nginx_lossy", &got);
    }

    #[test]
    fn truncated_capture_still_reconciles() {
        let mut bytes = std::fs::read(sample("lo_python.pcap")).unwrap();
        bytes.truncate(bytes.len() - 10);
        let cut = tmp("cut.pcap");
        std::fs::write(&cut, &bytes).unwrap();
        let got = run_cmd(cut.clone(), sample("lo_python.probe.jsonl"), "cut");
        let _ = std::fs::remove_file(cut);
        assert_eq!(got["summary"]["sides"]["client"]["matched"], 6);
        let notes = got["summary"]["notes"].to_string();
        assert!(
            notes.contains("ended early") && notes.contains("truncated"),
            "{notes}"
        );
    }

    #[test]
    fn input_errors_exit_2() {
        let mut args = ReconArgs {
            wire: sample("missing.pcap"),
            ebpf: sample("lo_python.probe.jsonl"),
            skew_ms: 50.0,
            latency_tolerance_ms: 5.0,
            max_mismatch_pct: 0.0,
            max_unmatched_pct: 0.0,
            output: Some(tmp("err.out")),
            sides: Sides::Auto,
            window_s: 10.0,
            summary_json: None,
        };
        assert_eq!(recon_cmd(&args).unwrap(), 2);
        args.wire = sample("lo_python.pcap");
        args.skew_ms = -1.0;
        assert_eq!(recon_cmd(&args).unwrap(), 2);
        args.skew_ms = 50.0;
        let garbage = tmp("garbage.jsonl");
        std::fs::write(&garbage, "not json\n{\n").unwrap();
        args.ebpf = garbage.clone();
        args.wire = garbage.clone();
        assert_eq!(recon_cmd(&args).unwrap(), 2);
        let _ = std::fs::remove_file(garbage);
        let _ = std::fs::remove_file(tmp("err.out"));
    }
}
