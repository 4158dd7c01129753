// SPDX-License-Identifier: GPL-3.0-or-later
//! The request metrics: a counter and a duration histogram per label set.
//! Transactions are observed in the thread that writes the records (the
//! fanout calls the metrics sink in place: no queue, no thread of its own);
//! the scrape endpoint copies a [`Snapshot`] under the lock and renders it
//! after letting go, so a scrape holds the writer up for a copy, not for
//! the text.
//!
//! Finding a transaction's series costs no hashing of strings: its label
//! values are shared strings (the connection's `Arc`s, the router's route
//! ids), so a [`PtrKey`] of their addresses and the small values finds the
//! series in a cache. Only a combination the cache has not seen is looked
//! up by value (the [`Key`]); the cache keeps clones of those `Arc`s, so an
//! address it holds cannot be reused for another string meanwhile.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::route::Router;
use super::{header, sample, simple, BUCKETS, BUCKET_TEXT};
use crate::event::Role;
use crate::record::Transaction;

/// A label set, kept as cheap shared values (the records' per-connection
/// strings are `Arc`s); made into text only when scraped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Key {
    protocol: &'static str,
    role: &'static str,
    method: &'static str,
    status_class: &'static str,
    status: Option<u32>,
    comm: Option<Arc<str>>,
    identity: [Option<Arc<str>>; 3],
    peer_addr: Option<Arc<str>>,
    /// None for a server's peer (the client's ephemeral port).
    peer_port: Option<u16>,
    route: Option<Arc<str>>,
}

pub(super) type Labels = [String; 11];

impl Key {
    fn labels(&self) -> Labels {
        let s = |o: &Option<Arc<str>>| o.as_deref().unwrap_or("").to_string();
        let peer = match (&self.peer_addr, self.peer_port) {
            (Some(a), Some(p)) if a.contains(':') => format!("[{a}]:{p}"),
            (Some(a), Some(p)) => format!("{a}:{p}"),
            (Some(a), None) => a.to_string(),
            _ => String::new(),
        };
        [
            self.protocol.to_string(),
            self.role.to_string(),
            self.method.to_string(),
            self.status_class.to_string(),
            self.status.map_or_else(String::new, |c| c.to_string()),
            s(&self.comm),
            s(&self.identity[0]),
            s(&self.identity[1]),
            s(&self.identity[2]),
            peer,
            s(&self.route),
        ]
    }
}

#[derive(Default, Clone)]
struct Series {
    requests: u64,
    /// Per bucket (not cumulative; summed when written).
    buckets: [u64; 17],
    /// Observations above the last bound.
    over: u64,
    sum: f64,
    observed: u64,
}

/// What identifies a label set by address: the `&'static str` protocol,
/// the connection's shared strings, the route id and the small values.
/// Two different keys may name the same label set (the same text in two
/// `Arc`s); one key never names two.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct PtrKey {
    protocol: (usize, usize),
    /// role, method index, and whether status / grpc status / peer port /
    /// route are present, in bits.
    small: u32,
    status: u16,
    grpc: u32,
    peer_port: u16,
    route: u32,
    comm: usize,
    ident: usize,
    peer_addr: usize,
}

/// The cache's value: the series (or [`OVER_CAP`]) and the strings whose
/// addresses the key holds, kept alive while it is cached.
struct Cached {
    slot: u32,
    _pins: (
        Option<Arc<str>>,
        Arc<crate::identity::Identity>,
        Option<Arc<str>>,
    ),
}

/// A label set past the series cap.
const OVER_CAP: u32 = u32::MAX;
/// Entries of the address cache at most (cleared when full: it is only a
/// cache; the label sets themselves are bounded by the series cap). About
/// 1 MiB with its table; 8192 cost 2.6 MiB more RSS at 10000 connections
/// (docs/performance.md).
const CACHE: usize = 4096;

/// Hashes the address keys: their values are addresses and small numbers
/// that a peer does not choose, so a multiply-and-rotate mix does (no
/// keyed hash needed, unlike strings from the traffic).
#[derive(Default)]
struct AddrHasher(u64);

impl AddrHasher {
    #[inline]
    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.add(*b as u64);
        }
    }
    fn write_u8(&mut self, x: u8) {
        self.add(x as u64)
    }
    fn write_u16(&mut self, x: u16) {
        self.add(x as u64)
    }
    fn write_u32(&mut self, x: u32) {
        self.add(x as u64)
    }
    fn write_u64(&mut self, x: u64) {
        self.add(x)
    }
    fn write_usize(&mut self, x: usize) {
        self.add(x as u64)
    }
    fn finish(&self) -> u64 {
        // fold the high half in: the table takes bits from both ends
        let m = (self.0 as u128) * 0x9e37_79b9_7f4a_7c15;
        (m as u64) ^ ((m >> 64) as u64)
    }
}

/// Everything the metrics endpoint serves from records.
pub struct Registry {
    /// The label sets and their numbers, in the order first seen.
    series: Vec<(Key, Series)>,
    index: HashMap<Key, u32>,
    cache: HashMap<PtrKey, Cached, BuildHasherDefault<AddrHasher>>,
    max_series: usize,
    router: Router,
    /// Transactions not counted because the series cap was reached.
    pub series_overflow: u64,
    pub transactions: u64,
    /// Records by `gap_cause` name.
    gaps: HashMap<&'static str, u64>,
}

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];
/// [`METHODS`] indices past the list: another method, none.
const OTHER: u32 = 9;
const NO_METHOD: u32 = 10;

fn status_class(s: Option<u16>) -> &'static str {
    match s {
        None => "none",
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
    }
}

/// The gRPC status of a record, when it has one.
fn grpc_status(t: &Transaction) -> Option<u32> {
    t.h2.as_ref()?.grpc.as_ref()?.status
}

fn role_index(r: Role) -> u32 {
    match r {
        Role::Client => 0,
        Role::Server => 1,
        Role::Unknown => 2,
    }
}

const ROLES: [&str; 3] = ["client", "server", "unknown"];

fn addr(s: &Option<Arc<str>>) -> usize {
    s.as_ref()
        .map_or(0, |a| Arc::as_ptr(a) as *const u8 as usize)
}

impl Registry {
    pub fn new(router: Router, max_series: usize) -> Self {
        Registry {
            series: Vec::new(),
            index: HashMap::new(),
            cache: HashMap::default(),
            // slots below OVER_CAP
            max_series: max_series.min(OVER_CAP as usize),
            router,
            series_overflow: 0,
            transactions: 0,
            gaps: HashMap::new(),
        }
    }

    /// The label set by value (a cache miss).
    fn key(&self, t: &Transaction, method: u32, route: Option<u32>) -> Key {
        let i = &t.conn.ident;
        Key {
            protocol: t.protocol,
            role: ROLES[role_index(t.conn.role) as usize],
            method: match method {
                NO_METHOD => "",
                OTHER => "OTHER",
                m => METHODS[m as usize],
            },
            status_class: status_class(t.status),
            status: grpc_status(t),
            comm: t.conn.comm.clone(),
            identity: [
                i.container_id.clone(),
                i.pod_namespace.clone(),
                i.pod_name.clone(),
            ],
            peer_addr: t.conn.remote_addr.clone(),
            peer_port: peer_port(t),
            route: route.map(|r| self.router.name(r)),
        }
    }

    /// The series slot of a label set not in the cache (or [`OVER_CAP`]).
    fn slot_by_value(&mut self, key: Key) -> u32 {
        if let Some(&s) = self.index.get(&key) {
            return s;
        }
        if self.series.len() >= self.max_series {
            return OVER_CAP;
        }
        let s = self.series.len() as u32;
        self.index.insert(key.clone(), s);
        self.series.push((key, Series::default()));
        s
    }

    pub fn observe(&mut self, t: &Transaction) {
        self.transactions += 1;
        if !t.gap_cause.is_empty() {
            for n in t.gap_cause.names() {
                *self.gaps.entry(n).or_default() += 1;
            }
        }
        let method = match t.method.as_deref() {
            Some(m) => METHODS
                .iter()
                .position(|k| *k == m)
                .map_or(OTHER, |i| i as u32),
            None => NO_METHOD,
        };
        let route = self.router.route_id(t.path.as_deref());
        let grpc = grpc_status(t);
        let port = peer_port(t);
        let small = role_index(t.conn.role)
            | method << 2
            | (t.status.is_some() as u32) << 6
            | (grpc.is_some() as u32) << 7
            | (port.is_some() as u32) << 8
            | (route.is_some() as u32) << 9;
        let pk = PtrKey {
            protocol: (t.protocol.as_ptr() as usize, t.protocol.len()),
            small,
            status: t.status.unwrap_or(0),
            grpc: grpc.unwrap_or(0),
            peer_port: port.unwrap_or(0),
            route: route.unwrap_or(0),
            comm: addr(&t.conn.comm),
            ident: Arc::as_ptr(&t.conn.ident) as usize,
            peer_addr: addr(&t.conn.remote_addr),
        };
        let slot = match self.cache.get(&pk) {
            Some(c) => c.slot,
            None => {
                let slot = self.slot_by_value(self.key(t, method, route));
                if self.cache.len() >= CACHE {
                    self.cache.clear();
                }
                self.cache.insert(
                    pk,
                    Cached {
                        slot,
                        _pins: (
                            t.conn.comm.clone(),
                            t.conn.ident.clone(),
                            t.conn.remote_addr.clone(),
                        ),
                    },
                );
                slot
            }
        };
        let Some((_, s)) = self.series.get_mut(slot as usize) else {
            self.series_overflow += 1;
            return;
        };
        s.requests += 1;
        if let Some(ns) = t.latency_ns {
            let secs = ns as f64 / 1e9;
            match BUCKETS.iter().position(|b| secs <= *b) {
                Some(i) => s.buckets[i] += 1,
                None => s.over += 1,
            }
            s.sum += secs;
            s.observed += 1;
        }
    }

    pub fn series(&self) -> usize {
        self.series.len()
    }

    /// A copy of what [`Registry::render`] writes (taken under the lock,
    /// written after).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            series: self.series.clone(),
            series_overflow: self.series_overflow,
            routes: self.router.distinct(),
            route_overflow: self.router.overflowed,
            gaps: self.gaps.clone(),
        }
    }

    /// The RED metrics in the text exposition format.
    pub fn render(&self, out: &mut String) {
        self.snapshot().render(out)
    }
}

/// The peer's port as a label: None for a server's peer (the client's
/// ephemeral port would make a series per connection).
fn peer_port(t: &Transaction) -> Option<u16> {
    if t.conn.role == Role::Server {
        None
    } else {
        t.conn.remote_port
    }
}

/// The registry's numbers at one moment (see [`Registry::snapshot`]).
pub struct Snapshot {
    series: Vec<(Key, Series)>,
    series_overflow: u64,
    routes: usize,
    route_overflow: u64,
    gaps: HashMap<&'static str, u64>,
}

impl Snapshot {
    /// The RED metrics in the text exposition format.
    pub fn render(mut self, out: &mut String) {
        self.series.sort_by(|a, b| a.0.cmp(&b.0));
        let labels: Vec<Labels> = self.series.iter().map(|(k, _)| k.labels()).collect();
        header(
            out,
            "osprey_requests_total",
            "counter",
            "Transactions seen (requests, with or without a response).",
        );
        for ((_, s), l) in self.series.iter().zip(&labels) {
            sample(out, "osprey_requests_total", l, None, s.requests as f64);
        }
        header(
            out,
            "osprey_request_duration_seconds",
            "histogram",
            "Request first byte to response last byte, transactions with a response.",
        );
        for ((_, s), l) in self.series.iter().zip(&labels) {
            let mut cum = 0;
            for (i, le) in BUCKET_TEXT.iter().enumerate() {
                cum += s.buckets[i];
                sample(
                    out,
                    "osprey_request_duration_seconds_bucket",
                    l,
                    Some(le),
                    cum as f64,
                );
            }
            sample(
                out,
                "osprey_request_duration_seconds_bucket",
                l,
                Some("+Inf"),
                (cum + s.over) as f64,
            );
            sample(out, "osprey_request_duration_seconds_sum", l, None, s.sum);
            sample(
                out,
                "osprey_request_duration_seconds_count",
                l,
                None,
                s.observed as f64,
            );
        }
        simple(
            out,
            "osprey_metrics_series",
            "gauge",
            "Label sets kept for the request metrics.",
            self.series.len() as f64,
        );
        simple(
            out,
            "osprey_metrics_series_overflow_total",
            "counter",
            "Transactions not counted in the request metrics: the label-set cap was reached.",
            self.series_overflow as f64,
        );
        simple(
            out,
            "osprey_metrics_routes",
            "gauge",
            "Distinct route labels (capped).",
            self.routes as f64,
        );
        simple(
            out,
            "osprey_metrics_route_overflow_total",
            "counter",
            "Transactions whose route was past the cap (route=\"__overflow__\").",
            self.route_overflow as f64,
        );
        header(
            out,
            "osprey_records_with_gap_total",
            "counter",
            "Transactions with gap: true, by cause (docs/output.md, gap_cause).",
        );
        for (_, n) in crate::record::GapCauses::NAMES {
            let v = self.gaps.get(n).copied().unwrap_or(0);
            out.push_str(&format!(
                "osprey_records_with_gap_total{{cause=\"{n}\"}} {v}\n"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(comm: &str, status: u16) -> Transaction {
        let mut t = crate::jsonline::tests::base();
        t.path = Some("/users/7".into());
        t.status = Some(status);
        t.latency_ns = Some(1_000);
        t.conn_mut().comm = Some(Arc::from(comm));
        t.conn_mut().remote_addr = Some(Arc::from("10.0.0.1"));
        t
    }

    fn requests(r: &Registry) -> Vec<(Key, u64)> {
        let mut v: Vec<_> = r
            .series
            .iter()
            .map(|(k, s)| (k.clone(), s.requests))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_same_labels_in_other_strings_are_one_series() {
        let mut r = Registry::new(Router::new(&[], 10).unwrap(), 100);
        // each record its own Arcs (as from different connections)
        for _ in 0..3 {
            r.observe(&txn("nginx", 200));
        }
        r.observe(&txn("nginx", 404));
        let t = txn("nginx", 201);
        r.observe(&t);
        r.observe(&t);
        let v = requests(&r);
        assert_eq!(v.len(), 2, "2xx and 4xx");
        assert_eq!(v.iter().map(|x| x.1).sum::<u64>(), 6);
        assert_eq!(v[0].0.status_class, "2xx");
        assert_eq!(v[0].1, 5);
        assert_eq!(r.transactions, 6);
    }

    #[test]
    fn an_address_cached_is_never_another_string() {
        let mut r = Registry::new(Router::new(&[], 10).unwrap(), 100);
        // the allocator tends to hand a freed block of the same size out
        // again: the cache holds its strings, so it cannot
        for name in ["aaaa", "bbbb", "cccc", "dddd"] {
            let t = txn(name, 200);
            r.observe(&t);
            drop(t);
        }
        let v = requests(&r);
        let comms: Vec<_> = v.iter().map(|x| x.0.comm.as_deref().unwrap()).collect();
        assert_eq!(comms, ["aaaa", "bbbb", "cccc", "dddd"]);
    }

    #[test]
    fn a_cache_cleared_when_full_loses_nothing_and_the_cap_holds() {
        let mut r = Registry::new(Router::new(&[], 10).unwrap(), 3);
        let n = CACHE as u64 * 2 + 5;
        for i in 0..n {
            r.observe(&txn(["a", "b", "c", "d", "e"][i as usize % 5], 200));
        }
        assert!(r.cache.len() <= CACHE);
        let v = requests(&r);
        assert_eq!(v.len(), 3);
        // a, b, c kept; d and e past the cap: counted every time
        assert_eq!(v.iter().map(|x| x.1).sum::<u64>() + r.series_overflow, n);
        assert_eq!(
            r.series_overflow,
            (0..n).filter(|i| i % 5 >= 3).count() as u64
        );
    }
}
