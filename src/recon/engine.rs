// SPDX-License-Identifier: GPL-3.0-or-later
//! The matching engine of `osprey recon-diff`: records grouped by
//! connection and side, paired by start time, settled a window behind.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use crate::event::Role;
use crate::record::Transaction;

// ---------------------------------------------------------------------------
// Records

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Side {
    Client = 0,
    Server = 1,
}

impl Side {
    pub(super) fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// One usable transaction record, normalised to its connection's ends.
#[derive(Clone, Debug)]
pub(super) struct Rec {
    pub(super) t: Rc<Transaction>,
    pub(super) ts_start: i64,
    /// Never before `ts_start`.
    pub(super) ts_end: i64,
    /// None for role "unknown".
    pub(super) side: Option<Side>,
    conn: Ends,
    loopback: bool,
}

/// One field of a record, as shown in the differences.
type Field = fn(&Transaction) -> Value;

/// A gRPC record's gRPC fields.
fn grpc(t: &Transaction) -> Option<&crate::record::GrpcFields> {
    t.h2.as_ref().and_then(|h| h.grpc.as_ref())
}

/// The fields compared between paired records (gRPC's are null on both
/// sides of other records).
const COMPARED: [(&str, Field); 9] = [
    ("protocol", |t| json!(t.protocol)),
    ("method", |t| json!(t.method)),
    ("target", |t| json!(t.target)),
    ("status", |t| json!(t.status)),
    ("req_body_bytes", |t| json!(t.req_body_bytes)),
    ("resp_body_bytes", |t| json!(t.resp_body_bytes)),
    ("grpc_status", |t| json!(grpc(t).and_then(|g| g.status))),
    ("grpc_req_messages", |t| {
        json!(grpc(t).map(|g| g.req_messages))
    }),
    ("grpc_resp_messages", |t| {
        json!(grpc(t).map(|g| g.resp_messages))
    }),
];

fn norm_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    })
}

impl Rec {
    /// Err for records recon cannot use (no addresses).
    pub(super) fn new(mut t: Box<Transaction>) -> Result<Rec, &'static str> {
        // A window of records is held: drop what recon never reads.
        t.path = None;
        t.host = None;
        t.reason = None;
        t.req_content_type = None;
        t.resp_content_type = None;
        t.req_headers = None;
        t.resp_headers = None;
        let c = &t.conn;
        let ep = |a: &Option<Arc<str>>, p: Option<u16>| {
            Some(SocketAddr::new(norm_ip(a.as_deref()?)?, p?))
        };
        let local = ep(&c.local_addr, c.local_port).ok_or("no addresses")?;
        let remote = ep(&c.remote_addr, c.remote_port).ok_or("no addresses")?;
        let side = match c.role {
            Role::Client => Some(Side::Client),
            Role::Server => Some(Side::Server),
            Role::Unknown => None,
        };
        let (client, server) = match side {
            Some(Side::Client) => (local, remote),
            Some(Side::Server) => (remote, local),
            None if local.port() >= remote.port() => (local, remote),
            None => (remote, local),
        };
        // an HTTP/2 stream pairs only with the same stream
        let stream = t.h2.as_ref().map_or(0, |h| h.stream_id);
        Ok(Rec {
            ts_start: t.span.start_ns,
            ts_end: t.span.end_ns.max(t.span.start_ns),
            side,
            conn: (client, server, stream),
            loopback: client.ip().is_loopback() && server.ip().is_loopback(),
            t: Rc::from(t),
        })
    }

    /// `ts_start` as written in the differences.
    fn ts_start_iso(&self) -> String {
        self.t.span.start().to_string()
    }
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
    /// Matched pairs whose latencies differ beyond the tolerance in the
    /// direction each vantage predicts (server end shorter, client end
    /// longer than the wire's): not mismatches. See [`latency_vantage`].
    pub latency_vantage: u64,
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

/// A connection, client end first, as written in the differences (its
/// string order is the order differences of one flush are found in).
type Key = Rc<(String, String)>;

/// A connection's (client, server) ends.
/// An HTTP/2 stream's id (0 for HTTP/1.x): records pair within one
/// connection and stream.
type Ends = (SocketAddr, SocketAddr, u32);

/// `v` with the record's HTTP/2 stream id, when it has one.
fn with_stream(mut v: Value, r: &Rec) -> Value {
    if let (Some(h), Some(o)) = (&r.t.h2, v.as_object_mut()) {
        o.insert("stream_id".into(), json!(h.stream_id));
    }
    v
}

#[derive(Default)]
struct Group {
    /// Pending records, each list in `ts_start` order (ties in arrival
    /// order).
    wire: VecDeque<Rec>,
    ebpf: VecDeque<Rec>,
    /// The probe (this side) / the wire had any record on this connection.
    probe_seen: bool,
    wire_seen: bool,
    last_end: i64,
}

impl Group {
    /// Insert keeping `ts_start` order; records arrive nearly in order, so
    /// the search from the back is short.
    fn insert(list: &mut VecDeque<Rec>, r: Rec) {
        let mut at = list.len();
        while at > 0 && list[at - 1].ts_start > r.ts_start {
            at -= 1;
        }
        list.insert(at, r);
    }
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

/// What the front of a group's merge settles next.
enum Step {
    Pair,
    Wire,
    Ebpf,
}

pub(super) struct Engine {
    cfg: MatchConfig,
    /// Connections with pending records, or seen within a window (their
    /// `probe_seen`/`wire_seen` explain later records).
    groups: [HashMap<Ends, (Key, Group)>; 2],
    /// When a group may have work: (time, side, connection). A record is
    /// due at its `ts_end` (settled once the settle line passes it), an
    /// emptied group at `last_end + window` (forgotten then). Stale entries
    /// cost one look. One entry per record at most, so the heap holds about
    /// a window's worth.
    due: BinaryHeap<Reverse<(i64, u8, Ends)>>,
    /// Records held in the groups.
    pending: usize,
    /// Groups visited and merge steps taken by [`Engine::flush`].
    pub(super) looks: u64,
    pub(super) summary: Summary,
    wire_loopback: u64,
    ebpf_loopback: u64,
    diffs: Vec<(i64, Value)>,
}

impl Engine {
    pub(super) fn new(cfg: MatchConfig) -> Engine {
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
            groups: [HashMap::new(), HashMap::new()],
            due: BinaryHeap::new(),
            pending: 0,
            looks: 0,
            summary,
            wire_loopback: 0,
            ebpf_loopback: 0,
            diffs: Vec::new(),
        }
    }

    /// The group of `r`'s connection on side `s`, made if new; the record is
    /// due at its `ts_end`.
    fn group(&mut self, s: Side, r: &Rec) -> &mut Group {
        self.due.push(Reverse((r.ts_end, s as u8, r.conn)));
        self.pending += 1;
        let (_, g) = self.groups[s as usize].entry(r.conn).or_insert_with(|| {
            let k = Rc::new((r.conn.0.to_string(), r.conn.1.to_string()));
            (k, Group::default())
        });
        g.last_end = g.last_end.max(r.ts_end);
        g
    }

    pub(super) fn add_wire(&mut self, r: Rec) {
        self.summary.wire_records += 1;
        self.wire_loopback += r.loopback as u64;
        for s in [Side::Client, Side::Server] {
            if self.cfg.sides[s as usize] {
                let g = self.group(s, &r);
                g.wire_seen = true;
                Group::insert(&mut g.wire, r.clone());
            }
        }
    }

    pub(super) fn add_ebpf(&mut self, r: Rec) {
        self.summary.ebpf_records += 1;
        self.ebpf_loopback += r.loopback as u64;
        let Some(s) = r.side else {
            self.summary.ebpf_unknown_role += 1;
            return;
        };
        if !self.cfg.sides[s as usize] {
            return;
        }
        let g = self.group(s, &r);
        g.probe_seen = true;
        Group::insert(&mut g.ebpf, r);
    }

    /// Settle every record whose ts_end is before `w`: the groups with
    /// something due, in (side, connection) order; in each, records are
    /// merged in `ts_start` order from the front and paired when they start
    /// within skew + tolerance of each other. The merge stops at the first
    /// step whose records are not all settled yet (a later record may still
    /// come before them), so each record is looked at about once.
    pub(super) fn flush(&mut self, w: i64) {
        let mut todo: BTreeSet<(u8, Key, Ends)> = BTreeSet::new();
        while let Some(Reverse((t, s, c))) = self.due.peek() {
            if *t >= w {
                break;
            }
            let (s, c) = (*s, *c);
            self.due.pop();
            if let Some((k, _)) = self.groups[s as usize].get(&c) {
                todo.insert((s, k.clone(), c));
            }
        }
        let win = self.cfg.skew_ns.saturating_add(self.cfg.tol_ns);
        for (s, k, c) in todo {
            let side = if s == 0 { Side::Client } else { Side::Server };
            let Some((_, mut g)) = self.groups[s as usize].remove(&c) else {
                continue;
            };
            self.looks += 1;
            loop {
                self.looks += 1;
                let step = match (g.wire.front(), g.ebpf.front()) {
                    (Some(a), Some(b)) if (b.ts_start - a.ts_start).abs() <= win => {
                        if a.ts_end >= w || b.ts_end >= w {
                            break;
                        }
                        Step::Pair
                    }
                    (Some(a), b) if b.is_none_or(|b| b.ts_start > a.ts_start) => {
                        if a.ts_end >= w {
                            break;
                        }
                        Step::Wire
                    }
                    (_, Some(b)) => {
                        if b.ts_end >= w {
                            break;
                        }
                        Step::Ebpf
                    }
                    _ => break,
                };
                match step {
                    Step::Pair => {
                        let (a, b) = (g.wire.pop_front(), g.ebpf.pop_front());
                        self.pending -= 2;
                        self.compare(side, &k, &a.expect("front"), &b.expect("front"));
                    }
                    Step::Wire => {
                        let a = g.wire.pop_front().expect("front");
                        self.pending -= 1;
                        self.unmatched_wire(side, &k, &a, &g);
                    }
                    Step::Ebpf => {
                        let b = g.ebpf.pop_front().expect("front");
                        self.pending -= 1;
                        self.unmatched_ebpf(side, &k, &b, &g);
                    }
                }
            }
            if g.wire.is_empty() && g.ebpf.is_empty() {
                let forget_at = g.last_end.saturating_add(self.cfg.window_ns);
                if w == i64::MAX || forget_at < w {
                    continue;
                }
                self.due.push(Reverse((forget_at, s, c)));
            }
            self.groups[s as usize].insert(c, (k, g));
        }
    }

    fn side_mut(&mut self, s: Side) -> &mut SideSummary {
        self.summary.sides.entry(s.name().into()).or_default()
    }

    fn conn(k: &Key) -> String {
        format!("{} -> {}", k.0, k.1)
    }

    fn compare(&mut self, s: Side, k: &Key, w: &Rec, e: &Rec) {
        let mut found = Vec::new();
        for (f, get) in COMPARED {
            let (a, b) = (get(&w.t), get(&e.t));
            if a != b {
                found.push((f, a, b));
            }
        }
        let mut vantage = false;
        if let (Some(a), Some(b)) = (w.t.latency_ns, e.t.latency_ns) {
            match latency_vantage(s, a, b, self.cfg.tol_ns) {
                Latency::Equal => {}
                Latency::Vantage => vantage = true,
                Latency::Mismatch => found.push(("latency_ns", json!(a), json!(b))),
            }
        }
        let sm = self.side_mut(s);
        sm.matched += 1;
        sm.latency_vantage += u64::from(vantage);
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
                with_stream(
                    json!({
                        "kind": "mismatch",
                        "side": s.name(),
                        "field": f,
                        "wire": a,
                        "ebpf": b,
                        "conn": Self::conn(k),
                        "ts_start": w.ts_start_iso(),
                        "method": w.t.method,
                        "target": w.t.target,
                        "wire_conn_id": w.t.conn.conn_id,
                        "ebpf_conn_id": e.t.conn.conn_id,
                        "comm": e.t.conn.comm,
                        "explanation": expl,
                    }),
                    w,
                ),
            ));
        }
    }

    fn unmatched_wire(&mut self, s: Side, k: &Key, w: &Rec, g: &Group) {
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
        if w.t.gap {
            why.push("the wire record itself has gap=true (bytes missing from the capture)".into());
        }
        self.diffs.push((
            w.ts_start,
            with_stream(
                json!({
                    "kind": "wire_only",
                    "side": s.name(),
                    "field": null,
                    "wire": summary_of(w),
                    "ebpf": null,
                    "conn": Self::conn(k),
                    "ts_start": w.ts_start_iso(),
                    "wire_conn_id": w.t.conn.conn_id,
                    "explanation": why.join("; "),
                }),
                w,
            ),
        ));
    }

    fn unmatched_ebpf(&mut self, s: Side, k: &Key, e: &Rec, g: &Group) {
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
        if e.t.gap {
            why.push("the probe record has gap=true (its fields may be incomplete)".into());
        }
        if e.t.no_response {
            why.push("the probe record has no_response=true".into());
        }
        self.diffs.push((
            e.ts_start,
            with_stream(
                json!({
                    "kind": "probe_only",
                    "side": s.name(),
                    "field": null,
                    "wire": null,
                    "ebpf": summary_of(e),
                    "conn": Self::conn(k),
                    "ts_start": e.ts_start_iso(),
                    "ebpf_conn_id": e.t.conn.conn_id,
                    "comm": e.t.conn.comm,
                    "explanation": why.join("; "),
                }),
                e,
            ),
        ));
    }

    pub(super) fn take_diffs(&mut self) -> Vec<Value> {
        let mut d = std::mem::take(&mut self.diffs);
        // Stable: ties keep the (deterministic) order they were found in.
        d.sort_by_key(|x| x.0);
        d.into_iter().map(|(_, v)| v).collect()
    }

    pub(super) fn pending(&self) -> usize {
        self.pending
    }

    pub(super) fn finish(&mut self, max_mismatch: f64, max_unmatched: f64) {
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
    let t = &r.t;
    json!({
        "method": t.method, "target": t.target, "status": t.status,
        "latency_ns": t.latency_ns, "gap": t.gap, "truncated": t.truncated, "no_response": t.no_response,
    })
}

/// How a probe latency `ebpf` compares with the wire's `wire` (ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Latency {
    /// Within the tolerance.
    Equal,
    /// Beyond the tolerance in the direction the vantage predicts.
    Vantage,
    /// Beyond the tolerance against it.
    Mismatch,
}

/// Each end's probe timestamps sit on a known side of the wire's packets.
/// The server reads the request after its first packet arrived and its
/// last write returns once the kernel took the bytes, which the wire may
/// carry much later (a send buffer draining at the receiver's pace, a Nagle
/// hold): its interval lies inside the wire's, so a server latency shorter
/// than the wire's is a vantage effect and only a longer one is a
/// mismatch. The client writes the request as it goes out and reads the
/// response after its last packet arrived (waking up, large reads from the
/// receive buffer): its interval holds the wire's, so only a client latency
/// shorter than the wire's is a mismatch.
pub(super) fn latency_vantage(side: Side, wire: u64, ebpf: u64, tol_ns: i64) -> Latency {
    let d = ebpf as i128 - wire as i128;
    if d.unsigned_abs() <= tol_ns.max(0) as u128 {
        Latency::Equal
    } else if (side == Side::Server) == (d < 0) {
        Latency::Vantage
    } else {
        Latency::Mismatch
    }
}

fn explain_mismatch(s: Side, field: &str, w: &Rec, e: &Rec) -> String {
    let (w, e) = (&*w.t, &*e.t);
    let mut why: Vec<&str> = Vec::new();
    if e.gap {
        // the probe says why in the record (gap_cause)
        use crate::record::GapCauses as G;
        let c = e.gap_cause;
        if c.contains(G::RING_BUFFER_DROP) {
            why.push("probe record has gap=true: records were lost in the kernel (ring buffer full; the probe's summary counts ringbuf_drops, scratch_busy, prog_misses), fields may be incomplete");
        }
        if c.contains(G::CAPTURE_CAP) {
            why.push("probe record has gap=true: message framing lay past the capture cap (--capture-bytes) or in bytes counted without a payload; nothing was dropped");
        }
        if c.contains(G::READ_FAULT) {
            why.push("probe record has gap=true: message framing lay in bytes the kernel could not read from the process's buffer (a page not resident at the hook; the probe's summary counts read_errors); nothing was dropped");
        }
        if c.contains(G::MIDSTREAM) {
            why.push("probe record has gap=true: the connection is older than the probe, whose stream starts mid-way (a request sent before it started is not lost)");
        }
        if c.contains(G::BUFFER_CAP) {
            why.push(
                "probe record has gap=true: a message outgrew the parser's per-direction buffer",
            );
        }
        if c.contains(G::UNPARSEABLE) {
            why.push("probe record has gap=true: bytes that did not parse as HTTP/1.x");
        }
        if c.contains(G::INCOMPLETE) {
            why.push("probe record has gap=true: the connection ended, or the probe stopped, in the middle of a message");
        }
        if c.contains(G::PACKETS_MISSING) {
            why.push("probe-side record has gap=true: packets missing from its capture");
        }
        if c.is_empty() {
            why.push("probe record has gap=true with no cause recorded (written before gap_cause existed), fields may be incomplete");
        }
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
            Side::Server => "the server end took longer than the wire carried the exchange: its last write returned well after the last packet went out (the writer descheduled inside the syscall), or the pairing is off",
            Side::Client => "the client end took less time than the wire carried the exchange: its request write returned well after the first packet went out (the writer descheduled inside the syscall), or the pairing is off",
        });
    }
    if why.is_empty() {
        why.push(
            "no recorded loss on either side: a parser or framing difference worth investigating",
        );
    }
    why.join("; ")
}
