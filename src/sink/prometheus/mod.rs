// SPDX-License-Identifier: GPL-3.0-or-later
//! Prometheus RED metrics (`--metrics-addr`): a request counter and a
//! duration histogram per label set, made from the transactions as they
//! are written (in the writer's own thread: `registry.rs`), plus Osprey's
//! own health; served in the text exposition format by `server.rs`.
//! `route.rs` makes paths into bounded labels.
//!
//! Labels: `protocol`, `role`, `method` (the standard methods, else
//! `OTHER`), `status_class` (`2xx` … `5xx`, `none` without a response),
//! `status` (gRPC status codes once records carry them, else empty),
//! `comm`, `container`, `pod_namespace`, `pod` (empty until records carry
//! the identity fields), `peer` (the server's `address:port` seen from a
//! client; the client's address alone seen from a server: its port is
//! ephemeral and would make a series per connection) and `route`.
//! Series are capped ([`DEFAULT_MAX_SERIES`]); observations past the cap
//! are counted, not kept.

pub mod registry;
pub mod route;
pub mod server;

use std::fmt::Write as _;
use std::io;
use std::sync::{Arc, Mutex};

use crate::health::Health;
use crate::output::Output;
use crate::record::Record;
use registry::Labels;

pub use registry::{Registry, Snapshot};
pub use route::Router;

/// Histogram bucket bounds in seconds: 50 µs to 10 s.
pub const BUCKETS: [f64; 17] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];
const BUCKET_TEXT: [&str; 17] = [
    "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
];

/// Default cap on label sets (series per metric).
pub const DEFAULT_MAX_SERIES: usize = 10_000;

const LABEL_NAMES: [&str; 11] = [
    "protocol",
    "role",
    "method",
    "status_class",
    "status",
    "comm",
    "container",
    "pod_namespace",
    "pod",
    "peer",
    "route",
];

fn header(out: &mut String, name: &str, ty: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {ty}");
}

fn simple(out: &mut String, name: &str, ty: &str, help: &str, v: f64) {
    header(out, name, ty, help);
    let _ = writeln!(out, "{name} {}", num(v));
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A label value per the exposition format: `\`, `"` and newline escaped.
pub fn escape_label(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn sample(out: &mut String, name: &str, l: &Labels, le: Option<&str>, v: f64) {
    out.push_str(name);
    out.push('{');
    for (i, (n, val)) in LABEL_NAMES.iter().zip(l.iter()).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{n}=\"{}\"", escape_label(val));
    }
    if let Some(le) = le {
        let _ = write!(out, ",le=\"{le}\"");
    }
    out.push_str("} ");
    out.push_str(&num(v));
    out.push('\n');
}

/// Osprey's own health, in the text exposition format.
pub fn render_health(h: &Health, out: &mut String) {
    use std::sync::atomic::Ordering::Relaxed;
    let k = h.kernel();
    let kv = |f: fn(&crate::bpf::KernelCounters) -> u64| k.as_ref().map_or(0, f) as f64;
    simple(
        out,
        "osprey_kernel_events_total",
        "counter",
        "Records the BPF programs wrote to the ring buffer.",
        kv(|k| k.events),
    );
    simple(
        out,
        "osprey_ringbuf_drops_total",
        "counter",
        "Records lost because the ring buffer was full.",
        kv(|k| k.ringbuf_drops),
    );
    simple(
        out,
        "osprey_ringbuf_drop_bytes_total",
        "counter",
        "Payload bytes of the records lost to a full ring buffer.",
        kv(|k| k.ringbuf_drop_bytes),
    );
    simple(
        out,
        "osprey_scratch_busy_total",
        "counter",
        "Records lost because every scratch slot of a CPU was busy.",
        kv(|k| k.scratch_busy),
    );
    simple(
        out,
        "osprey_events_total",
        "counter",
        "Events decoded and handed to the workers.",
        h.events.load(Relaxed) as f64,
    );
    simple(
        out,
        "osprey_records_total",
        "counter",
        "Records written to the record stream.",
        h.records.load(Relaxed) as f64,
    );
    simple(
        out,
        "osprey_decode_errors_total",
        "counter",
        "Ring-buffer records that did not decode.",
        h.decode_errors.load(Relaxed) as f64,
    );
    simple(
        out,
        "osprey_write_errors_total",
        "counter",
        "Records the record stream failed to write.",
        h.write_errors.load(Relaxed) as f64,
    );
    simple(
        out,
        "osprey_gaps_total",
        "counter",
        "Gaps (missing bytes) met by the parsers.",
        h.worker_sum("gaps") as f64,
    );
    simple(
        out,
        "osprey_parser_panics_total",
        "counter",
        "Parser panics caught (the connection's state dropped).",
        h.worker_sum("parser_panics") as f64,
    );
    simple(
        out,
        "osprey_tracked_connections",
        "gauge",
        "Connections tracked now.",
        h.worker_sum("conns_active") as f64,
    );
    simple(
        out,
        "osprey_connections_total",
        "counter",
        "Connections seen.",
        h.worker_sum("conns_seen") as f64,
    );
    simple(
        out,
        "osprey_connections_evicted_total",
        "counter",
        "Connections evicted at the table's cap.",
        h.worker_sum("conns_evicted") as f64,
    );
    let (rss, cpu) = crate::health::process_usage();
    simple(
        out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        rss as f64,
    );
    simple(
        out,
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        cpu,
    );
}

/// The metrics sink: observes every transaction into the shared registry.
/// It is cheap and never waits on anything but a scrape's copy of the
/// registry, so the fanout calls it in place ([`super::Fanout::add_inline`])
/// rather than through a queue and a thread.
pub struct MetricsSink {
    reg: Arc<Mutex<Registry>>,
    observed: u64,
}

impl MetricsSink {
    pub fn new(reg: Arc<Mutex<Registry>>) -> Self {
        MetricsSink { reg, observed: 0 }
    }
}

impl super::Sink for MetricsSink {
    fn emit(&mut self, item: &Output) -> io::Result<()> {
        if let Output::Record(Record::Transaction(t)) = item {
            if let Ok(mut r) = self.reg.lock() {
                r.observe(t);
                self.observed += 1;
            }
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn counts(&self) -> Option<super::SinkCounts> {
        Some(super::SinkCounts {
            written: self.observed,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Transaction;

    fn txn(path: &str, status: Option<u16>, latency_ns: Option<u64>) -> Transaction {
        let mut t = crate::jsonline::tests::base();
        t.path = Some(path.into());
        t.status = status;
        t.latency_ns = latency_ns;
        t
    }

    /// One sample of the exposition text: name, labels, value.
    pub(crate) type Sample = (String, Vec<(String, String)>, f64);

    /// Parse the exposition text back: (name, labels, value) per sample;
    /// checks the line grammar on the way.
    pub(crate) fn parse(text: &str) -> Vec<Sample> {
        let mut out = Vec::new();
        for l in text.lines() {
            if l.starts_with('#') {
                let p: Vec<&str> = l.splitn(4, ' ').collect();
                assert!(p[1] == "HELP" || p[1] == "TYPE", "{l}");
                continue;
            }
            let (name, rest) = match l.find('{') {
                Some(i) => (&l[..i], &l[i..]),
                None => l.split_at(l.find(' ').unwrap()),
            };
            assert!(
                name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'),
                "{l}"
            );
            let mut labels = Vec::new();
            let mut r = rest;
            if let Some(body) = r.strip_prefix('{') {
                let mut s = body;
                loop {
                    if let Some(x) = s.strip_prefix('}') {
                        r = x;
                        break;
                    }
                    let eq = s.find("=\"").unwrap();
                    let k = s[..eq].to_string();
                    s = &s[eq + 2..];
                    let mut v = String::new();
                    let mut chars = s.char_indices();
                    let end = loop {
                        let (i, c) = chars.next().expect("unterminated value");
                        match c {
                            '\\' => match chars.next().unwrap().1 {
                                'n' => v.push('\n'),
                                c => v.push(c),
                            },
                            '"' => break i,
                            c => v.push(c),
                        }
                    };
                    labels.push((k, v));
                    s = &s[end + 1..];
                    s = s.strip_prefix(',').unwrap_or(s);
                }
            }
            let v: f64 = match r.trim() {
                "+Inf" => f64::INFINITY,
                x => x.parse().unwrap_or_else(|_| panic!("value in {l}")),
            };
            out.push((name.to_string(), labels, v));
        }
        out
    }

    #[test]
    fn counts_and_histograms_add_up() {
        let mut r = Registry::new(Router::new(&[], 100).unwrap(), 100);
        r.observe(&txn("/users/1", Some(200), Some(30_000)));
        r.observe(&txn("/users/2", Some(200), Some(2_000_000)));
        r.observe(&txn("/users/3", Some(503), Some(20_000_000_000)));
        r.observe(&txn("/users/4", None, None));
        let mut s = String::new();
        r.render(&mut s);
        let samples = parse(&s);
        let get = |name: &str, class: &str, le: Option<&str>| {
            samples
                .iter()
                .find(|(n, l, _)| {
                    n == name
                        && l.iter().any(|(k, v)| k == "status_class" && v == class)
                        && le.is_none_or(|le| l.iter().any(|(k, v)| k == "le" && v == le))
                })
                .map(|x| x.2)
        };
        assert_eq!(get("osprey_requests_total", "2xx", None), Some(2.0));
        assert_eq!(get("osprey_requests_total", "none", None), Some(1.0));
        assert_eq!(
            get(
                "osprey_request_duration_seconds_bucket",
                "2xx",
                Some("5e-05")
            ),
            Some(1.0)
        );
        assert_eq!(
            get(
                "osprey_request_duration_seconds_bucket",
                "2xx",
                Some("0.0025")
            ),
            Some(2.0)
        );
        assert_eq!(
            get("osprey_request_duration_seconds_bucket", "5xx", Some("10")),
            Some(0.0)
        );
        assert_eq!(
            get(
                "osprey_request_duration_seconds_bucket",
                "5xx",
                Some("+Inf")
            ),
            Some(1.0)
        );
        assert_eq!(
            get("osprey_request_duration_seconds_count", "none", None),
            Some(0.0)
        );
        let sum = get("osprey_request_duration_seconds_sum", "2xx", None).unwrap();
        assert!((sum - 0.00203).abs() < 1e-9, "{sum}");
        assert!(samples.iter().any(|(n, l, _)| n == "osprey_requests_total"
            && l.contains(&("route".into(), "/users/{num}".into()))));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut r = Registry::new(Router::new(&[], 100).unwrap(), 100);
        let mut t = txn("/a\"b\\c\nd", Some(200), Some(1));
        t.method = Some("BREW".into());
        t.conn_mut().comm = Some("we\"ird\\".into());
        r.observe(&t);
        let mut s = String::new();
        r.render(&mut s);
        let samples = parse(&s);
        let (_, l, _) = samples
            .iter()
            .find(|x| x.0 == "osprey_requests_total")
            .unwrap();
        let get = |k: &str| l.iter().find(|x| x.0 == k).unwrap().1.clone();
        assert_eq!(get("route"), "/a\"b\\c\nd");
        assert_eq!(get("comm"), "we\"ird\\");
        assert_eq!(get("method"), "OTHER");
    }

    #[test]
    fn container_pod_and_grpc_status_labels_come_from_the_record() {
        let mut r = Registry::new(Router::new(&[], 100).unwrap(), 100);
        let mut t = txn("/shop.Cart/Add", Some(200), Some(1));
        let id = crate::identity::Identity {
            container_id: Some("abc123".into()),
            pod_namespace: Some("shop".into()),
            pod_name: Some("cart-0".into()),
            ..Default::default()
        };
        t.conn_mut().ident = std::sync::Arc::new(id);
        t.h2 = Some(crate::record::Http2Fields {
            stream_id: 1,
            grpc: Some(crate::record::GrpcFields {
                status: Some(5),
                ..Default::default()
            }),
            ..Default::default()
        });
        r.observe(&t);
        let mut s = String::new();
        r.render(&mut s);
        let samples = parse(&s);
        let (_, l, _) = samples
            .iter()
            .find(|x| x.0 == "osprey_requests_total")
            .unwrap();
        let get = |k: &str| l.iter().find(|x| x.0 == k).unwrap().1.clone();
        assert_eq!(get("container"), "abc123");
        assert_eq!(get("pod_namespace"), "shop");
        assert_eq!(get("pod"), "cart-0");
        assert_eq!(get("status"), "5");
    }

    #[test]
    fn the_series_cap_holds() {
        let mut r = Registry::new(Router::new(&[], 1000).unwrap(), 5);
        for i in 0..50 {
            r.observe(&txn(&format!("/p{i}"), Some(200), Some(1)));
        }
        assert_eq!((r.series(), r.series_overflow, r.transactions), (5, 45, 50));
    }

    #[test]
    fn health_renders_without_a_kernel() {
        let h = Health::default();
        h.set_worker(
            1,
            serde_json::json!({"conns_active": 3, "parser_panics": 1}),
        );
        let mut s = String::new();
        render_health(&h, &mut s);
        let samples = parse(&s);
        let v = |n: &str| samples.iter().find(|x| x.0 == n).unwrap().2;
        assert_eq!(v("osprey_tracked_connections"), 3.0);
        assert_eq!(v("osprey_parser_panics_total"), 1.0);
        assert!(v("process_resident_memory_bytes") > 0.0);
    }
}
