// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/2 sessions driven through the tracker: streams, interleaving,
//! CONTINUATION, bodies over many frames and events, the capture cap,
//! RST_STREAM/GOAWAY, lost bytes, joining mid-stream, caps.

#![allow(clippy::field_reassign_with_default)]

use super::frame::tests::fr;
use super::frame::*;
use crate::event::{
    CloseEvent, ConnId, ConnOpen, DataEvent, Direction, Event, ProcInfo, Role, SockAddrs, Syscall,
};
use crate::protocol::{detect, Hint, REGISTRY};
use crate::record::{Record, Transaction};
use crate::track::{Tracker, TrackerConfig, TrackerStats};

const E: Direction = Direction::Egress;
const I: Direction = Direction::Ingress;

fn cid() -> ConnId {
    ConnId {
        tgid: 7,
        proc_start_ns: 1,
        fd: 5,
        gen: 1,
    }
}

fn pinfo() -> ProcInfo {
    ProcInfo {
        tgid: 7,
        tid: 8,
        comm: "curl".into(),
    }
}

/// A conversation's events, with positions.
struct Script {
    pos: [u64; 2],
    ts: u64,
    ev: Vec<Event>,
}

impl Script {
    fn new(role: Role, midstream: bool) -> Script {
        let mut s = Script {
            pos: [0; 2],
            ts: 1_000_000,
            ev: Vec::new(),
        };
        s.ev.push(Event::open(ConnOpen {
            ts_ns: s.ts,
            conn: cid(),
            proc: pinfo(),
            role,
            addrs: Some(SockAddrs {
                local: "127.0.0.1:40000".parse().unwrap(),
                remote: "127.0.0.1:8080".parse().unwrap(),
            }),
            midstream,
            syscall: Syscall::Connect,
            cgroup_id: 0,
            identity: None,
        }));
        s
    }
    /// `b` moved in `d`, of which the first `cap` bytes were captured.
    fn send_cap(&mut self, d: Direction, b: &[u8], cap: usize) -> &mut Script {
        self.ts += 1000;
        self.ev.push(Event::Data(DataEvent {
            ts_ns: self.ts,
            start_ns: 0,
            conn: cid(),
            proc: pinfo(),
            dir: d,
            pos: self.pos[d.index()],
            orig_len: b.len() as u32,
            payload: b[..cap.min(b.len())].to_vec(),
            syscall: Syscall::Write,
            fault: false,
        }));
        self.pos[d.index()] += b.len() as u64;
        self
    }
    fn send(&mut self, d: Direction, b: &[u8]) -> &mut Script {
        self.send_cap(d, b, b.len())
    }
    fn lose(&mut self, d: Direction, n: u64) -> &mut Script {
        self.pos[d.index()] += n;
        self
    }
    fn close(&mut self) -> Vec<Event> {
        self.ts += 1000;
        self.ev.push(Event::Close(CloseEvent {
            ts_ns: self.ts,
            conn: cid(),
            proc: pinfo(),
            tx_bytes: self.pos[0],
            rx_bytes: self.pos[1],
        }));
        self.ev.clone()
    }
}

fn run_cfg(cfg: TrackerConfig, events: &[Event]) -> (Vec<Transaction>, TrackerStats) {
    let mut t = Tracker::new(cfg);
    let mut out = Vec::new();
    for e in events {
        t.on_event(e, &mut out);
    }
    t.flush_all(&mut out);
    let txns = out
        .into_iter()
        .map(|r| match r {
            Record::Transaction(t) => *t,
            Record::Message(_) => panic!("no message records"),
        })
        .collect();
    (txns, t.stats())
}

fn run(events: &[Event]) -> (Vec<Transaction>, TrackerStats) {
    run_cfg(TrackerConfig::default(), events)
}

/// A header block: literal fields without indexing (new names).
fn lits(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (n, val) in fields {
        v.push(0);
        v.push(n.len() as u8);
        v.extend_from_slice(n.as_bytes());
        v.push(val.len() as u8);
        v.extend_from_slice(val.as_bytes());
    }
    v
}

/// A request block: `:method` and `:scheme` from the static table, the
/// path and authority literal, `extra` literal.
fn req_block(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut v = vec![match method {
        "GET" => 0x82,
        "POST" => 0x83,
        _ => panic!(),
    }];
    v.push(0x86); // :scheme http
    v.extend(lits(&[(":path", path), (":authority", "localhost:8080")]));
    v.extend(lits(extra));
    v
}

fn resp_block(status: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut v = lits(&[(":status", status)]);
    v.extend(lits(extra));
    v
}

fn client_start() -> Vec<u8> {
    let mut v = PREFACE.to_vec();
    v.extend(fr(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]));
    v
}

fn server_settings() -> Vec<u8> {
    fr(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 128, 0, 5, 0, 0, 0x40, 0])
}

/// Two interleaved streams on a client connection: GET /a and a POST /b
/// whose body spans frames and writes; the responses interleave too.
fn interleaved() -> Script {
    let mut s = Script::new(Role::Client, false);
    let mut first = client_start();
    first.extend(fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        &req_block("GET", "/a?x=1", &[]),
    ));
    s.send(E, &first);
    s.send(I, &server_settings());
    let post = req_block("POST", "/b", &[("content-type", "application/json")]);
    let mut w = fr(HEADERS, FLAG_END_HEADERS, 3, &post);
    w.extend(fr(DATA, 0, 3, &[b'x'; 100]));
    s.send(E, &w);
    s.send(
        E,
        &fr(
            DATA,
            FLAG_END_STREAM | FLAG_PADDED,
            3,
            &[{ 5 }, b'y', b'y', 0, 0, 0, 0, 0],
        ),
    );
    let mut r = fr(HEADERS, FLAG_END_HEADERS, 3, &resp_block("201", &[]));
    r.extend(fr(
        HEADERS,
        FLAG_END_HEADERS,
        1,
        &resp_block("200", &[("content-type", "text/html")]),
    ));
    r.extend(fr(DATA, 0, 1, &[b'a'; 300]));
    s.send(I, &r);
    let mut r = fr(DATA, FLAG_END_STREAM, 3, b"ok");
    r.extend(fr(DATA, FLAG_END_STREAM, 1, &[b'a'; 50]));
    s.send(I, &r);
    s
}

#[test]
fn interleaved_streams_give_one_record_each() {
    let (t, st) = run(&interleaved().close());
    assert_eq!(t.len(), 2, "{t:?}");
    let b = &t[0];
    assert_eq!(b.protocol, "http2");
    let h2 = b.h2.as_ref().unwrap();
    assert_eq!(
        (h2.stream_id, b.method.as_deref(), b.path.as_deref()),
        (3, Some("POST"), Some("/b"))
    );
    assert_eq!(
        (b.status, b.req_body_bytes, b.resp_body_bytes),
        (Some(201), Some(102), Some(2))
    );
    assert_eq!(b.req_content_type.as_deref(), Some("application/json"));
    assert_eq!(b.host.as_deref(), Some("localhost:8080"));
    assert_eq!(h2.scheme.as_deref(), Some("http"));
    assert_eq!(b.http_version, Some("2"));
    assert!(h2.end_stream && !b.gap && !b.truncated && !b.no_response);
    assert_eq!(b.req_header_count, Some(5));
    let a = &t[1];
    assert_eq!(a.h2.as_ref().unwrap().stream_id, 1);
    assert_eq!(
        (a.target.as_deref(), a.path.as_deref()),
        (Some("/a?x=1"), Some("/a"))
    );
    assert_eq!(
        (a.status, a.resp_body_bytes, a.req_body_bytes),
        (Some(200), Some(350), Some(0))
    );
    assert_eq!(a.resp_content_type.as_deref(), Some("text/html"));
    assert!(a.latency_ns.unwrap() >= a.ttfb_ns.unwrap());
    assert!(a.ts_ok());
    assert_eq!((st.unparseable, st.resyncs, st.hpack_errors), (0, 0, 0));
    // the same JSON through the fast writer
    let mut out = Vec::new();
    crate::jsonline::write_transaction(a, &mut out);
    let line = String::from_utf8(out).unwrap();
    assert!(line.contains(r#""upgraded":false,"stream_id":1,"scheme":"http","end_stream":true,"rst_error":null,"goaway_error":null,"headers_unknown":0}"#), "{line}");
}

trait TsOk {
    fn ts_ok(&self) -> bool;
}
impl TsOk for Transaction {
    fn ts_ok(&self) -> bool {
        self.span.end_ns >= self.span.start_ns
    }
}

/// Stable fields of a record, for comparing feedings.
fn key(t: &Transaction) -> String {
    let h2 = t.h2.as_ref().unwrap();
    format!(
        "{} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {} {} {}",
        h2.stream_id,
        t.method,
        t.target,
        t.status,
        t.req_body_bytes,
        t.resp_body_bytes,
        t.req_header_count,
        t.resp_header_bytes,
        t.gap,
        t.truncated,
        h2.end_stream
    )
}

/// Every write re-split at any point gives the same records.
#[test]
fn split_anywhere_gives_the_same_records() {
    let whole = interleaved().close();
    let (want, _) = run(&whole);
    let want: Vec<String> = want.iter().map(key).collect();
    // concatenate each direction and re-split at a and b
    let mut bytes = [Vec::new(), Vec::new()];
    for e in &whole {
        if let Event::Data(d) = e {
            bytes[d.dir.index()].extend_from_slice(&d.payload);
        }
    }
    let (q, r) = (&bytes[0], &bytes[1]);
    // (detection needs the first event to hold PRI at least)
    for a in (4..q.len()).step_by(3) {
        let rb = (a * 7) % r.len();
        let mut s = Script::new(Role::Client, false);
        // requests first, then responses, as the interleaving allows
        s.send(E, &q[..a]).send(E, &q[a..]);
        s.send(I, &r[..rb.max(1)]).send(I, &r[rb.max(1)..]);
        let (got, st) = run(&s.close());
        let got: Vec<String> = got.iter().map(key).collect();
        let mut g = got.clone();
        let mut w = want.clone();
        g.sort();
        w.sort();
        assert_eq!(g, w, "split at {a}/{rb}: {st:?}");
    }
    // a byte at a time
    let mut s = Script::new(Role::Client, false);
    s.send(E, &q[..4]);
    for c in q[4..].chunks(1) {
        s.send(E, c);
    }
    for c in r.chunks(1) {
        s.send(I, c);
    }
    let (got, _) = run(&s.close());
    let mut g: Vec<String> = got.iter().map(key).collect();
    let mut w = want.clone();
    g.sort();
    w.sort();
    assert_eq!(g, w);
}

#[test]
fn server_side_roles_and_detection() {
    // the server's view: requests arrive (ingress), responses leave
    let mut s = Script::new(Role::Server, false);
    let mut q = client_start();
    q.extend(fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        &req_block("GET", "/", &[]),
    ));
    s.send(I, &q);
    let mut r = server_settings();
    r.extend(fr(HEADERS, FLAG_END_HEADERS, 1, &resp_block("404", &[])));
    r.extend(fr(DATA, FLAG_END_STREAM, 1, &[b'n'; 153]));
    s.send(E, &r);
    let (t, _) = run(&s.close());
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].status, t[0].resp_body_bytes), (Some(404), Some(153)));
    assert_eq!(t[0].conn.role, Role::Server);
    // detection: preface, a server's SETTINGS first, frames mid-stream
    let hint = Hint {
        dir: I,
        role: Role::Unknown,
        local_port: None,
        remote_port: None,
    };
    let name = |b: &[u8]| detect(REGISTRY, b, &hint).map(|p| p.name());
    assert_eq!(name(&q), Some("http2"));
    assert_eq!(name(&q[..10]), Some("http2"));
    assert_eq!(name(&r), Some("http2"));
    assert_eq!(name(&fr(PING, 0, 0, b"12345678")), Some("http2"));
    assert_eq!(name(b"GET / HTTP/1.1\r\n\r\n"), Some("http1"));
    assert_eq!(name(b"HTTP/1.1 200 OK\r\n"), Some("http1"));
}

#[test]
fn headers_with_continuation_and_trailers() {
    let mut s = Script::new(Role::Client, false);
    let block = req_block("GET", "/long", &[("x-a", &"v".repeat(100)), ("x-b", "w")]);
    let mut q = client_start();
    q.extend(fr(HEADERS, 0, 1, &block[..20]));
    q.extend(fr(CONTINUATION, 0, 1, &block[20..60]));
    q.extend(fr(
        CONTINUATION,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        &block[60..],
    ));
    s.send(E, &q[..50]).send(E, &q[50..]);
    let mut r = fr(
        HEADERS,
        FLAG_END_HEADERS,
        1,
        &resp_block("200", &[("content-type", "application/grpc")]),
    );
    r.extend(fr(DATA, 0, 1, b"12345"));
    r.extend(fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        &lits(&[("grpc-status", "0")]),
    ));
    s.send(I, &r);
    let mut cfg = TrackerConfig::default();
    cfg.headers = true;
    let (t, _) = run_cfg(cfg, &s.close());
    assert_eq!(t.len(), 1);
    let t = &t[0];
    assert_eq!(t.req_header_count, Some(6));
    assert_eq!(t.req_header_bytes, Some(block.len() as u64 + 27));
    assert_eq!(t.resp_header_count, Some(3), "trailers count");
    assert_eq!(t.resp_body_bytes, Some(5));
    let rh = t.resp_headers.as_ref().unwrap();
    assert_eq!(
        rh.last().unwrap(),
        &("grpc-status".to_string(), "0".to_string())
    );
    assert!(t
        .req_headers
        .as_ref()
        .unwrap()
        .iter()
        .any(|(n, v)| n == "x-b" && v == "w"));
}

#[test]
fn headers_are_redacted() {
    let mut s = Script::new(Role::Client, false);
    let mut q = client_start();
    q.extend(fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        &req_block(
            "GET",
            "/",
            &[("authorization", "Bearer s3cret"), ("cookie", "a=b")],
        ),
    ));
    s.send(E, &q);
    s.send(
        I,
        &fr(
            HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            1,
            &resp_block("204", &[("set-cookie", "x=y")]),
        ),
    );
    let mut cfg = TrackerConfig::default();
    cfg.headers = true;
    let (t, _) = run_cfg(cfg.clone(), &s.close());
    let line = Record::Transaction(Box::new(t[0].clone())).to_json_line();
    assert!(
        !line.contains("s3cret") && !line.contains("a=b") && !line.contains("x=y"),
        "{line}"
    );
    assert_eq!(line.matches("[REDACTED]").count(), 3);
    cfg.redact = crate::redact::Redact::off();
    let (t, _) = run_cfg(cfg, &s.close());
    assert!(Record::Transaction(Box::new(t[0].clone()))
        .to_json_line()
        .contains("s3cret"));
}

#[test]
fn big_body_past_the_capture_cap_is_exact() {
    let mut s = Script::new(Role::Client, false);
    let mut q = client_start();
    q.extend(fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        &req_block("GET", "/big", &[]),
    ));
    s.send(E, &q);
    s.send(I, &server_settings());
    s.send(
        I,
        &fr(HEADERS, FLAG_END_HEADERS, 1, &resp_block("200", &[])),
    );
    // 2 MiB in 16 KiB frames, written as nginx does (a writev of frame
    // header and payload iovecs: the probe captures each header whole and
    // 64 bytes of each payload, one event per iovec)
    let frame_body = vec![b'z'; 16_384];
    for i in 0..128 {
        let flags = if i == 127 { FLAG_END_STREAM } else { 0 };
        let f = fr(DATA, flags, 1, &frame_body);
        s.send(I, &f[..9]);
        s.send_cap(I, &f[9..], 64);
    }
    let (t, st) = run(&s.close());
    assert_eq!(t.len(), 1, "{st:?}");
    assert_eq!(t[0].resp_body_bytes, Some(2 * 1024 * 1024));
    assert!(t[0].truncated && !t[0].gap);
    assert_eq!((st.resyncs, st.unparseable), (0, 0));
}

#[test]
fn uncaptured_frame_headers_are_a_gap_then_resync() {
    uncaptured_frame_headers(false);
}

#[test]
fn frame_headers_in_bytes_the_kernel_could_not_read_are_a_read_fault_gap() {
    uncaptured_frame_headers(true);
}

/// `fault`: the read's record was flagged `F_READ_FAULT` (its buffer
/// unreadable past the captured bytes) instead of cut by the capture cap.
fn uncaptured_frame_headers(fault: bool) {
    // a read of several frames, captured only in part: the frame headers
    // after the cut are unseen, so the body size is unknown (gap), and the
    // next stream is parsed again
    let mut s = Script::new(Role::Client, false);
    let mut q = client_start();
    q.extend(fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        &req_block("GET", "/big", &[]),
    ));
    s.send(E, &q);
    let mut r = fr(HEADERS, FLAG_END_HEADERS, 1, &resp_block("200", &[]));
    for _ in 0..4 {
        r.extend(fr(DATA, 0, 1, &[b'z'; 16_384]));
    }
    s.send_cap(I, &r, 4096);
    if let Some(Event::Data(d)) = s.ev.last_mut() {
        d.fault = fault;
    }
    s.send(I, &fr(DATA, FLAG_END_STREAM, 1, b"end"));
    s.send(
        E,
        &fr(
            HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            3,
            &req_block("GET", "/next", &[]),
        ),
    );
    s.send(
        I,
        &fr(
            HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            3,
            &resp_block("200", &[]),
        ),
    );
    let (t, st) = run(&s.close());
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(t[0].gap && t[0].status == Some(200));
    // the frame headers lay past the capture cap, or in bytes the kernel
    // could not read: that is the cause
    let cause = if fault { "read_fault" } else { "capture_cap" };
    assert_eq!(t[0].gap_cause.names().collect::<Vec<_>>(), [cause]);
    assert!(!t[1].gap && t[1].gap_cause.is_empty());
    assert_eq!(t[1].path.as_deref(), Some("/next"));
    assert!(st.resyncs >= 1);
    assert_eq!(
        (st.gap_capture_cap, st.gap_read_fault),
        if fault { (0, 1) } else { (1, 0) }
    );
}

#[test]
fn uncaptured_headers_are_a_gap_for_that_block_only() {
    let mut s = Script::new(Role::Client, false);
    let mut q = client_start();
    q.extend(fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        &req_block("GET", "/x", &[("x-pad", &"p".repeat(200))]),
    ));
    // the HEADERS frame's end went uncaptured
    s.send_cap(E, &q, 60);
    s.send(
        E,
        &fr(
            HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            3,
            &req_block("GET", "/y", &[]),
        ),
    );
    let mut r = fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        &resp_block("200", &[]),
    );
    r.extend(fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        3,
        &resp_block("200", &[]),
    ));
    s.send(I, &r);
    let (t, st) = run(&s.close());
    assert_eq!(t.len(), 2);
    assert!(
        t[0].gap && t[0].method.is_none() && t[0].status == Some(200),
        "{:?}",
        t[0]
    );
    assert!(!t[1].gap && t[1].path.as_deref() == Some("/y"));
    assert_eq!(st.hpack_errors, 1);
}

#[test]
fn rst_stream_and_goaway_end_streams() {
    let mut s = Script::new(Role::Client, false);
    let mut q = client_start();
    for id in [1, 3, 5] {
        q.extend(fr(
            HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            id,
            &req_block("GET", "/s", &[]),
        ));
    }
    s.send(E, &q);
    s.send(E, &fr(RST_STREAM, 0, 1, &[0, 0, 0, 8]));
    // the server processed up to stream 3 and goes away
    let mut r = fr(HEADERS, FLAG_END_HEADERS, 3, &resp_block("200", &[]));
    r.extend(fr(GOAWAY, 0, 0, &[0, 0, 0, 3, 0, 0, 0, 0]));
    s.send(I, &r);
    let (t, _) = run(&s.close());
    let by: std::collections::HashMap<u32, &Transaction> = t
        .iter()
        .map(|t| (t.h2.as_ref().unwrap().stream_id, t))
        .collect();
    assert_eq!(by.len(), 3);
    assert_eq!(
        by[&1].h2.as_ref().unwrap().rst_error.as_deref(),
        Some("CANCEL")
    );
    assert!(by[&1].no_response);
    assert_eq!(
        by[&5].h2.as_ref().unwrap().goaway_error.as_deref(),
        Some("NO_ERROR")
    );
    assert!(by[&5].no_response && !by[&5].gap);
    // stream 3 got its response head but was open at the close: GOAWAY
    assert_eq!(by[&3].status, Some(200));
    assert_eq!(
        by[&3].h2.as_ref().unwrap().goaway_error.as_deref(),
        Some("NO_ERROR")
    );
}

#[test]
fn lost_bytes_resync_and_dynamic_fields_are_flagged() {
    // requests use incremental indexing: after a loss, a reference to an
    // entry from before it is unknown, static and literal fields are not
    let indexed = |path: &str| {
        let mut v = vec![0x82, 0x86];
        v.extend(lits(&[(":path", path)]));
        // :authority with incremental indexing (name index 1)
        v.extend([0x41, 14]);
        v.extend_from_slice(b"localhost:8080");
        v
    };
    let mut s = Script::new(Role::Client, false);
    let mut q = client_start();
    q.extend(fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        &indexed("/1"),
    ));
    s.send(E, &q);
    s.send(
        I,
        &fr(
            HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            1,
            &resp_block("200", &[]),
        ),
    );
    // stream 3's HEADERS is lost (it inserted another authority entry)
    s.lose(E, 40);
    // stream 5 references index 62 (from stream 3's lost block)
    let mut b5 = vec![0x82, 0x86, 0xbe];
    b5.extend(lits(&[(":path", "/5")]));
    s.send(E, &fr(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 5, &b5));
    let mut r = fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        3,
        &resp_block("200", &[]),
    );
    r.extend(fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        5,
        &resp_block("200", &[]),
    ));
    s.send(I, &r);
    let (t, st) = run(&s.close());
    let by: std::collections::HashMap<u32, &Transaction> = t
        .iter()
        .map(|t| (t.h2.as_ref().unwrap().stream_id, t))
        .collect();
    assert_eq!(by[&1].host.as_deref(), Some("localhost:8080"));
    assert!(!by[&1].gap);
    let five = by[&5];
    assert_eq!(
        (five.method.as_deref(), five.path.as_deref()),
        (Some("GET"), Some("/5"))
    );
    assert_eq!(five.host, None, "never guessed");
    assert!(five.gap);
    assert_eq!(five.h2.as_ref().unwrap().headers_unknown, 1);
    assert!(by[&3].gap && by[&3].method.is_none());
    assert!(st.resyncs >= 1);
    assert_eq!(st.hpack_unknown_fields, 1);
}

#[test]
fn joined_mid_stream() {
    // the probe starts on a live connection: no preface, no SETTINGS
    let mut s = Script::new(Role::Unknown, true);
    let mut q = fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        7,
        &[0x82, 0x86, 0xbf, 0x04, 2, b'/', b'm'],
    );
    q.extend(fr(WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
    s.send(E, &q);
    let mut r = fr(HEADERS, FLAG_END_HEADERS, 7, &[0x88]);
    r.extend(fr(DATA, FLAG_END_STREAM, 7, b"hi"));
    s.send(I, &r);
    let (t, _) = run(&s.close());
    assert_eq!(t.len(), 1, "{t:?}");
    let t = &t[0];
    assert_eq!(
        (t.method.as_deref(), t.path.as_deref(), t.status),
        (Some("GET"), Some("/m"), Some(200))
    );
    assert_eq!(t.h2.as_ref().unwrap().headers_unknown, 1);
    assert!(t.gap);
    // the fields referenced a table from before the probe joined
    assert_eq!(t.gap_cause.names().collect::<Vec<_>>(), ["midstream"]);
    assert_eq!(t.conn.role, Role::Unknown);
}

#[test]
fn streams_are_capped_per_connection() {
    let mut s = Script::new(Role::Client, false);
    s.send(E, &client_start());
    for i in 0..300u32 {
        s.send(
            E,
            &fr(
                HEADERS,
                FLAG_END_HEADERS | FLAG_END_STREAM,
                2 * i + 1,
                &req_block("GET", "/", &[]),
            ),
        );
    }
    let (t, st) = run(&s.close());
    assert_eq!(t.len(), 300);
    assert_eq!(st.h2_streams_over_cap, 300 - 256);
    assert!(t.iter().all(|t| t.no_response));
}

#[test]
fn garbage_never_panics() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let good = interleaved().close();
    for round in 0..300 {
        let mut ev = good.clone();
        for e in ev.iter_mut() {
            if let Event::Data(d) = e {
                for _ in 0..(rnd() % 3) {
                    if !d.payload.is_empty() {
                        let i = rnd() as usize % d.payload.len();
                        d.payload[i] = rnd() as u8;
                    }
                }
                if round % 5 == 0 {
                    let n = rnd() as usize % (d.payload.len() + 1);
                    d.payload.truncate(n);
                }
            }
        }
        let (_, st) = run(&ev);
        assert_eq!(st.parser_panics, 0);
    }
}

#[path = "grpc_tests.rs"]
mod grpc_tests;
#[path = "inplace_tests.rs"]
mod inplace_tests;
