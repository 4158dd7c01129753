// SPDX-License-Identifier: GPL-3.0-or-later
//! The JSON line of a [`Transaction`], written directly: the hot path of
//! every capture (one line per request/response pair).
//!
//! `#[derive(Serialize)]` on [`Transaction`] stays the definition of the
//! line; this writer produces the same bytes (the tests below compare the
//! two on every field shape and on random records) but skips what
//! serde_json spends most of its time on here: escaping the forty field
//! names byte by byte, and the generic map machinery around each field.
//! String values still go through serde_json whenever they contain a byte
//! JSON must escape.

use crate::record::{ConnFields, Transaction};

mod connblock;
mod writer;
pub(crate) use connblock::same as same_str;
pub use connblock::ConnBlocks;
use writer::W;

/// `,"name":` then the value, written by `W::$kind`. An `opt_*` kind
/// writes `,"name":null` for None (nothing in a compact line) and a `bool` `,"name":true` or false as
/// one constant (one copy instead of two).
macro_rules! field {
    ($w:ident, $name:literal, bool, $v:expr) => {
        $w.raw(if $v {
            concat!(",\"", $name, "\":true").as_bytes()
        } else {
            concat!(",\"", $name, "\":false").as_bytes()
        });
    };
    ($w:ident, $name:literal, opt_int, $v:expr) => {
        field!(@opt $w, $name, int, $v)
    };
    ($w:ident, $name:literal, opt_str, $v:expr) => {
        field!(@opt $w, $name, str, $v)
    };
    ($w:ident, $name:literal, opt_lit, $v:expr) => {
        field!(@opt $w, $name, lit, $v)
    };
    (@opt $w:ident, $name:literal, $kind:ident, $v:expr) => {
        match $v {
            Some(v) => {
                $w.raw(concat!(",\"", $name, "\":").as_bytes());
                $w.$kind(v);
            }
            // compact: a null field is left out
            None if $w.compact() => {}
            None => $w.raw(concat!(",\"", $name, "\":null").as_bytes()),
        }
    };
    ($w:ident, $name:literal, $kind:ident, $v:expr) => {
        $w.raw(concat!(",\"", $name, "\":").as_bytes());
        $w.$kind($v);
    };
}

/// Which fields a transaction line has (`--record-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordFormat {
    /// Every documented field, null ones included (docs/output.md).
    #[default]
    Full,
    /// The same record without its null fields and without the ISO-8601
    /// texts `ts_start`/`ts_end` (their `_ns` forms stay).
    Compact,
}

/// Appends `t` as one JSON object (no newline) to `out`.
pub fn write_transaction(t: &Transaction, out: &mut Vec<u8>) {
    write_transaction_node(t, out);
}

/// [`write_transaction`] in the given format.
pub fn write_transaction_as(t: &Transaction, format: RecordFormat, out: &mut Vec<u8>) {
    write_transaction_node_as(t, format, out);
}

/// [`write_transaction`], saying where in the line (an offset from its
/// first byte) the value of `node` begins (the ClickHouse sink fills in a
/// null one).
pub fn write_transaction_node(t: &Transaction, out: &mut Vec<u8>) -> usize {
    write_fields::<false>(t, out)
}

/// [`write_transaction_node`] in the given format. In a compact line a
/// null `node` is not written: the offset is then where `,"node":...`
/// would be (the `,` of the next field).
pub fn write_transaction_node_as(
    t: &Transaction,
    format: RecordFormat,
    out: &mut Vec<u8>,
) -> usize {
    match format {
        RecordFormat::Full => write_fields::<false>(t, out),
        RecordFormat::Compact => write_fields::<true>(t, out),
    }
}

/// The line; `COMPACT` is the flag each nullable field and each ISO time
/// checks (one copy of the code per format, so the full line pays nothing
/// for the compact one).
fn write_fields<const COMPACT: bool>(t: &Transaction, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    let mut w = W::<COMPACT>::new(out);
    w.raw(b"{\"type\":");
    w.lit(t.kind);
    field!(w, "protocol", lit, t.protocol);
    // compact: the ISO-8601 copies of the epoch-ns times are left out
    if !COMPACT {
        field!(w, "ts_start", time, t.span.start());
    }
    field!(w, "ts_start_ns", int, t.span.start_ns);
    if !COMPACT {
        field!(w, "ts_end", time, t.span.end());
    }
    field!(w, "ts_end_ns", int, t.span.end_ns);
    field!(w, "latency_ns", opt_int, t.latency_ns);
    field!(w, "ttfb_ns", opt_int, t.ttfb_ns);
    field!(w, "method", opt_str, t.method.as_deref());
    field!(w, "target", opt_str, t.target.as_deref());
    field!(w, "path", opt_str, t.path.as_deref());
    field!(w, "host", opt_str, t.host.as_deref());
    field!(w, "http_version", opt_lit, t.http_version);
    field!(w, "status", opt_int, t.status);
    field!(w, "reason", opt_str, t.reason.as_deref());
    field!(w, "req_header_count", opt_int, t.req_header_count);
    field!(w, "req_header_bytes", opt_int, t.req_header_bytes);
    field!(w, "resp_header_count", opt_int, t.resp_header_count);
    field!(w, "resp_header_bytes", opt_int, t.resp_header_bytes);
    field!(w, "req_body_bytes", opt_int, t.req_body_bytes);
    field!(w, "resp_body_bytes", opt_int, t.resp_body_bytes);
    field!(
        w,
        "req_content_type",
        opt_str,
        t.req_content_type.as_deref()
    );
    field!(
        w,
        "resp_content_type",
        opt_str,
        t.resp_content_type.as_deref()
    );
    let c = &t.conn;
    field!(w, "pid", opt_int, c.pid);
    field!(w, "tid", opt_int, c.tid);
    // the rest of the connection's fields: the same for every record of
    // a connection, copied from its memo when it has one (`connblock`)
    let node_at = w.len - start
        + match connblock::block::<COMPACT>(c) {
            Some(b) => {
                w.raw(&b.bytes);
                b.node_at
            }
            None => conn_span(&mut w, c),
        };
    field!(w, "gap", bool, t.gap);
    w.raw(b",\"gap_cause\":[");
    for (i, n) in t.gap_cause.names().enumerate() {
        if i > 0 {
            w.raw(b",");
        }
        w.raw(b"\"");
        w.raw(n.as_bytes());
        w.raw(b"\"");
    }
    w.raw(b"]");
    field!(w, "truncated", bool, t.truncated);
    field!(w, "no_response", bool, t.no_response);
    field!(w, "interim_status", opt_int, t.interim_status);
    field!(w, "upgraded", bool, t.upgraded);
    if t.incomplete {
        w.raw(b",\"incomplete\":true");
    }
    if let Some(h) = &t.h2 {
        field!(w, "stream_id", int, h.stream_id);
        field!(w, "scheme", opt_str, h.scheme.as_deref());
        field!(w, "end_stream", bool, h.end_stream);
        field!(w, "rst_error", opt_str, h.rst_error.as_deref());
        field!(w, "goaway_error", opt_str, h.goaway_error.as_deref());
        field!(w, "headers_unknown", int, h.headers_unknown);
        if let Some(g) = &h.grpc {
            field!(w, "grpc_service", opt_str, g.service.as_deref());
            field!(w, "grpc_method", opt_str, g.method.as_deref());
            field!(w, "grpc_status", opt_int, g.status);
            field!(w, "grpc_message", opt_str, g.message.as_deref());
            field!(w, "grpc_req_messages", int, g.req_messages);
            field!(w, "grpc_resp_messages", int, g.resp_messages);
            field!(w, "grpc_compressed", bool, g.compressed);
        }
    }
    if let Some(h) = &t.req_headers {
        w.raw(b",\"req_headers\":");
        w.headers(h);
    }
    if let Some(h) = &t.resp_headers {
        w.raw(b",\"resp_headers\":");
        w.headers(h);
    }
    w.raw(b"}");
    w.done();
    node_at
}

/// The connection's fields from `comm` to `tls_library` (all but `pid`
/// and `tid`): written into a record's line, or once into a connection's
/// memo ([`connblock`]). Returns where `node`'s value begins (or, null in
/// a compact line, where it would), from the first byte written.
#[inline(always)]
fn conn_span<const COMPACT: bool>(w: &mut W<COMPACT>, c: &ConnFields) -> usize {
    let start = w.len;
    field!(w, "comm", opt_str, c.comm.as_deref());
    field!(w, "conn_id", str, &c.conn_id);
    field!(w, "role", lit, c.role.as_str());
    field!(w, "local_addr", opt_str, c.local_addr.as_deref());
    field!(w, "local_port", opt_int, c.local_port);
    field!(w, "remote_addr", opt_str, c.remote_addr.as_deref());
    field!(w, "remote_port", opt_int, c.remote_port);
    field!(w, "source", lit, c.source.as_str());
    let i = &*c.ident;
    field!(w, "cgroup_id", opt_int, i.cgroup_id);
    field!(w, "cgroup", opt_str, i.cgroup.as_deref());
    if i.container_id.is_none()
        && i.container_runtime.is_none()
        && i.pod_uid.is_none()
        && i.pod_qos.is_none()
        && i.pod_namespace.is_none()
        && i.pod_name.is_none()
        && i.container_name.is_none()
        && i.workload.is_none()
    {
        // outside containers (the common case): eight nulls as one constant
        // (none in a compact line)
        if !COMPACT {
            w.raw(
                concat!(
                    ",\"container_id\":null,\"container_runtime\":null,\"pod_uid\":null",
                    ",\"pod_qos\":null,\"pod_namespace\":null,\"pod_name\":null",
                    ",\"container_name\":null,\"workload\":null"
                )
                .as_bytes(),
            );
        }
    } else {
        field!(w, "container_id", opt_str, i.container_id.as_deref());
        field!(
            w,
            "container_runtime",
            opt_str,
            i.container_runtime.as_deref()
        );
        field!(w, "pod_uid", opt_str, i.pod_uid.as_deref());
        field!(w, "pod_qos", opt_str, i.pod_qos.as_deref());
        field!(w, "pod_namespace", opt_str, i.pod_namespace.as_deref());
        field!(w, "pod_name", opt_str, i.pod_name.as_deref());
        field!(w, "container_name", opt_str, i.container_name.as_deref());
        field!(w, "workload", opt_str, i.workload.as_deref());
    }
    let node_at = w.len - start
        + if COMPACT && i.node.is_none() {
            0
        } else {
            ",\"node\":".len()
        };
    field!(w, "node", opt_str, i.node.as_deref());
    field!(w, "exe", opt_str, c.exe.as_deref());
    if c.tls {
        w.raw(b",\"tls\":true");
    }
    if let Some(l) = c.tls_library {
        field!(w, "tls_library", lit, l);
    }
    node_at
}

#[cfg(test)]
pub(crate) mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use super::*;
    use crate::event::Role;
    use crate::record::{ConnFields, Record, Source, TimeSpan, HTTP1, TXN_TYPE};

    /// Every identity field set, one value needing escapes (also used by
    /// connblock's tests).
    pub(crate) fn full_identity() -> Arc<crate::identity::Identity> {
        Arc::new(crate::identity::Identity {
            cgroup_id: Some(u64::MAX),
            cgroup: Some("/kubepods.slice/a\\x2db.slice".into()),
            container_id: Some("3f4b".repeat(16).into()),
            container_runtime: Some("containerd".into()),
            pod_uid: Some("1b3e5f7a-9c2d-4e6f-8a1b-3c5d7e9f1a2b".into()),
            pod_qos: Some("Burstable".into()),
            pod_namespace: Some("shop".into()),
            pod_name: Some("cart-0".into()),
            container_name: Some("app\"x".into()),
            workload: Some("Deployment/cart".into()),
            node: Some("node-1".into()),
        })
    }

    /// A realistic transaction (also used by the sink's tests).
    pub(crate) fn base() -> Transaction {
        Transaction {
            kind: TXN_TYPE,
            protocol: HTTP1,
            span: TimeSpan {
                start_ns: 1_795_982_212_733_060_693,
                end_ns: 1_795_982_212_733_076_717,
            },
            latency_ns: Some(16_024),
            ttfb_ns: Some(16_000),
            method: Some(Cow::Borrowed("GET")),
            target: Some("/r?q=1".into()),
            path: Some("/r".into()),
            host: Some("example.com:8080".into()),
            http_version: Some("1.1"),
            status: Some(200),
            reason: Some("OK".into()),
            req_header_count: Some(3),
            req_header_bytes: Some(78),
            resp_header_count: Some(5),
            resp_header_bytes: Some(140),
            req_body_bytes: Some(0),
            resp_body_bytes: Some(100),
            req_content_type: None,
            resp_content_type: Some("text/html; charset=utf-8".into()),
            conn: ConnFields {
                pid: Some(28889),
                tid: Some(28890),
                comm: Some(Arc::from("nginx")),
                conn_id: Arc::from("28889-16368822068290-5-2"),
                role: Role::Server,
                local_addr: Some(Arc::from("127.0.0.1")),
                local_port: Some(38705),
                remote_addr: Some(Arc::from("::1")),
                remote_port: Some(50888),
                source: Source::Ebpf,
                ident: Default::default(),
                exe: None,
                tls: false,
                tls_library: None,
                blocks: Default::default(),
            }
            .into(),
            gap: false,
            gap_cause: Default::default(),
            truncated: true,
            no_response: false,
            interim_status: Some(100),
            upgraded: false,
            incomplete: false,
            h2: None,
            req_headers: None,
            resp_headers: None,
        }
    }

    /// The reference: what serde_json makes of the derived Serialize (and
    /// the compact line: that, less its nulls and ISO times).
    fn check(t: &Transaction) {
        let want = serde_json::to_string(&Record::Transaction(Box::new(t.clone()))).unwrap();
        let mut got = Vec::new();
        write_transaction(t, &mut got);
        assert_eq!(String::from_utf8(got).unwrap(), want);
        check_compact(t, &want);
    }

    /// `full` less its null fields and its ISO-8601 `ts_start`/`ts_end`.
    pub(crate) fn compacted(full: &str) -> serde_json::Map<String, serde_json::Value> {
        let serde_json::Value::Object(mut m) = serde_json::from_str(full).unwrap() else {
            panic!("not an object: {full}")
        };
        m.retain(|k, v| !v.is_null() && k != "ts_start" && k != "ts_end");
        m
    }

    /// The compact line of `t` parses to [`compacted`] of its full line
    /// (`want`), and says where a null `node` would be.
    fn check_compact(t: &Transaction, want: &str) {
        let mut line = b"prefix".to_vec();
        let at = write_transaction_node_as(t, RecordFormat::Compact, &mut line);
        let line = std::str::from_utf8(&line[6..]).unwrap();
        let got: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        let want = compacted(want);
        assert_eq!(got, want, "{line}");
        // no key twice (serde_json keeps the last of two): written again
        // from the parsed map, the line is as long as it was
        assert_eq!(
            serde_json::to_string(&got).unwrap().len(),
            line.len(),
            "{line}"
        );
        if t.conn.ident.node.is_none() {
            assert!(matches!(line.as_bytes()[at], b','), "{at} in {line}");
        } else {
            assert_eq!(&line[at - 8..at], ",\"node\":", "{line}");
        }
        // and the full line still says where its node's value is
        let mut full = Vec::new();
        let at = write_transaction_node(t, &mut full);
        assert_eq!(&full[at - 8..at], b",\"node\":");
        // read back (`osprey recon-diff`): a missing field is a null one
        let back = |l: &[u8]| match crate::record::read_json_line(l).unwrap() {
            crate::record::ReadLine::Record(r) => r,
            other => panic!("{other:?}: {}", String::from_utf8_lossy(l)),
        };
        assert_eq!(back(line.as_bytes()), back(&full), "{line}");
    }

    #[test]
    fn same_bytes_as_serde_on_every_field_shape() {
        let t = base();
        check(&t);
        // the identity fields, all set (one needing escapes)
        let mut i = base();
        i.conn_mut().ident = full_identity();
        i.conn_mut().exe = Some("/usr/bin/app".into());
        check(&i);
        // each identity field set alone (the all-null run is one constant)
        for k in 0..11 {
            let mut id = crate::identity::Identity::default();
            let v: Option<Arc<str>> = Some("v".into());
            match k {
                0 => id.cgroup_id = Some(7),
                1 => id.cgroup = v,
                2 => id.container_id = v,
                3 => id.container_runtime = v,
                4 => id.pod_uid = v,
                5 => id.pod_qos = v,
                6 => id.pod_namespace = v,
                7 => id.pod_name = v,
                8 => id.container_name = v,
                9 => id.workload = v,
                _ => id.node = v,
            }
            let mut one = base();
            one.conn_mut().ident = Arc::new(id);
            check(&one);
        }
        // every Option as None, every enum variant, every bool flipped
        let mut n = base();
        n.latency_ns = None;
        n.ttfb_ns = None;
        n.method = None;
        n.target = None;
        n.path = None;
        n.host = None;
        n.http_version = None;
        n.status = None;
        n.reason = None;
        n.req_header_count = None;
        n.req_header_bytes = None;
        n.resp_header_count = None;
        n.resp_header_bytes = None;
        n.req_body_bytes = None;
        n.resp_body_bytes = None;
        n.resp_content_type = None;
        n.conn_mut().pid = None;
        n.conn_mut().tid = None;
        n.conn_mut().comm = None;
        n.conn_mut().local_addr = None;
        n.conn_mut().local_port = None;
        n.conn_mut().remote_addr = None;
        n.conn_mut().remote_port = None;
        n.interim_status = None;
        n.conn_mut().source = Source::Wire;
        n.conn_mut().role = Role::Unknown;
        n.gap = true;
        n.truncated = false;
        n.no_response = true;
        n.upgraded = true;
        n.incomplete = true;
        check(&n);
        n.conn_mut().role = Role::Client;
        n.method = Some(Cow::Owned("PROPFIND".into()));
        n.span = TimeSpan {
            start_ns: i64::MIN,
            end_ns: i64::MAX,
        };
        check(&n);
        n.span = TimeSpan {
            start_ns: -1,
            end_ns: 0,
        };
        n.latency_ns = Some(u64::MAX);
        n.status = Some(u16::MAX);
        n.req_body_bytes = Some(0);
        check(&n);
        // headers: absent, empty, present
        n.req_headers = Some(vec![]);
        n.resp_headers = Some(vec![
            ("Content-Type".into(), "a\"b".into()),
            ("X".into(), String::new()),
        ]);
        check(&n);
        // an HTTP/2 record: its fields, with and without values
        n.protocol = crate::record::HTTP2;
        n.h2 = Some(crate::record::Http2Fields {
            stream_id: 2_147_483_647,
            scheme: Some("https".into()),
            end_stream: true,
            rst_error: Some("CANCEL".into()),
            goaway_error: Some("0x\"1".into()),
            headers_unknown: 3,
            grpc: None,
        });
        check(&n);
        n.h2 = Some(crate::record::Http2Fields::default());
        check(&n);
        // a gRPC record: its fields, with and without values
        n.protocol = crate::record::GRPC;
        n.h2 = Some(crate::record::Http2Fields {
            stream_id: 3,
            grpc: Some(crate::record::GrpcFields {
                service: Some("pkg.Svc".into()),
                method: Some("M\"x".into()),
                status: Some(u32::MAX),
                message: Some("é\n".into()),
                req_messages: 1,
                resp_messages: u32::MAX,
                compressed: true,
            }),
            ..Default::default()
        });
        check(&n);
        n.h2.as_mut().unwrap().grpc = Some(Default::default());
        check(&n);
        // TLS plaintext
        n.conn_mut().tls = true;
        n.conn_mut().tls_library = Some("openssl");
        check(&n);
        n.conn_mut().tls_library = Some("go");
        check(&n);
    }

    #[test]
    fn strings_that_need_escaping_match_serde() {
        let tricky = [
            "",
            "plain",
            "q\"uote",
            "back\\slash",
            "nul\0",
            "\u{1f}unit",
            "tab\tcr\rlf\n",
            "\u{7f}del",
            "é",
            "日本",
            "🦅",
            "</script>",
            "\\\"",
            "a\u{0}b\"c\\d\u{1}",
        ];
        for s in tricky {
            let mut t = base();
            t.target = Some(s.into());
            t.host = Some(format!("{s}{s}").into());
            t.reason = Some(s.into());
            t.conn_mut().comm = Some(Arc::from(s));
            t.conn_mut().conn_id = Arc::from(s);
            t.method = Some(Cow::Owned(s.into()));
            t.req_headers = Some(vec![(s.into(), s.into())]);
            check(&t);
        }
    }

    #[test]
    fn random_records_match_serde() {
        // xorshift: repeatable without a dependency
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet: Vec<char> = "aZ09 /?=&%\"\\\t\n\u{0}\u{1f}\u{7f}é日🦅".chars().collect();
        let s = |n: u64| -> String {
            let len = (n % 12) as usize;
            (0..len)
                .map(|i| alphabet[((n >> (i * 5)) as usize + i) % alphabet.len()])
                .collect()
        };
        for _ in 0..5000 {
            let r = next();
            let mut t = base();
            let some = |bit: u32| r >> bit & 1 == 1;
            t.span = TimeSpan {
                start_ns: next() as i64,
                end_ns: next() as i64,
            };
            t.latency_ns = some(0).then(&mut next);
            t.status = some(1).then(|| next() as u16);
            t.target = some(2).then(|| s(next()).into());
            t.host = some(3).then(|| s(next()).into());
            t.reason = some(4).then(|| s(next()).into());
            t.req_content_type = some(5).then(|| s(next()).into());
            t.conn_mut().comm = some(6).then(|| Arc::from(s(next())));
            t.conn_mut().local_port = some(7).then(|| next() as u16);
            t.conn_mut().pid = some(8).then(|| next() as u32);
            t.req_header_count = some(9).then(|| next() as u32);
            t.gap = some(10);
            t.upgraded = some(11);
            t.conn_mut().role = [Role::Unknown, Role::Client, Role::Server][(r >> 12) as usize % 3];
            t.resp_headers =
                some(14).then(|| (0..(r >> 15) % 4).map(|_| (s(next()), s(next()))).collect());
            check(&t);
        }
    }
}
