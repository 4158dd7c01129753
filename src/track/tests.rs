// SPDX-License-Identifier: GPL-3.0-or-later
//! Tracker tests driving `Event`s.
#![allow(clippy::field_reassign_with_default)]

use super::*;
use crate::event::{CloseEvent, ConnOpen, DataEvent, Direction, ProcInfo, SockAddrs, Syscall};
use crate::protocol::http1::tests::{cases, Kind};
use crate::protocol::http1::{parser, ChunkStep, ChunkedDecoder, Parse};
use crate::record::{MsgKind, Transaction};

fn cid(n: u64) -> ConnId {
    ConnId {
        tgid: 4242,
        proc_start_ns: 777,
        fd: 3 + n as i32,
        gen: n,
    }
}

fn pinfo() -> ProcInfo {
    ProcInfo {
        tgid: 4242,
        tid: 4243,
        comm: "curl".into(),
    }
}

fn addrs() -> SockAddrs {
    SockAddrs {
        local: "10.0.0.1:40000".parse().unwrap(),
        remote: "10.0.0.2:80".parse().unwrap(),
    }
}

fn open(conn: ConnId, role: Role, ts: u64) -> Event {
    Event::open(ConnOpen {
        ts_ns: ts,
        conn,
        proc: pinfo(),
        role,
        addrs: Some(addrs()),
        midstream: false,
        syscall: if role == Role::Server {
            Syscall::Accept4
        } else {
            Syscall::Connect
        },
        cgroup_id: 0,
        identity: None,
    })
}

fn data_ev(
    conn: ConnId,
    dir: Direction,
    pos: u64,
    ts: u64,
    orig_len: u32,
    payload: &[u8],
) -> Event {
    Event::Data(DataEvent {
        ts_ns: ts,
        start_ns: 0,
        conn,
        proc: pinfo(),
        dir,
        pos,
        orig_len,
        payload: payload.to_vec(),
        syscall: if dir == Direction::Egress {
            Syscall::Write
        } else {
            Syscall::Read
        },
        fault: false,
    })
}

fn close_ev(conn: ConnId, ts: u64, tx: u64, rx: u64) -> Event {
    Event::Close(CloseEvent {
        ts_ns: ts,
        conn,
        proc: pinfo(),
        tx_bytes: tx,
        rx_bytes: rx,
    })
}

/// Builds a conversation on one connection, tracking positions.
struct Script {
    conn: ConnId,
    pos: [u64; 2],
    ts: u64,
    events: Vec<Event>,
}

impl Script {
    fn new(n: u64) -> Script {
        Script {
            conn: cid(n),
            pos: [0, 0],
            ts: 1_000_000,
            events: Vec::new(),
        }
    }
    fn open(mut self, role: Role) -> Script {
        self.events.push(open(self.conn, role, self.ts));
        self
    }
    fn tick(&mut self) -> u64 {
        self.ts += 1_000;
        self.ts
    }
    fn send(mut self, dir: Direction, b: &[u8]) -> Script {
        let ts = self.tick();
        let p = self.pos[dir.index()];
        self.events
            .push(data_ev(self.conn, dir, p, ts, b.len() as u32, b));
        self.pos[dir.index()] += b.len() as u64;
        self
    }
    /// Bytes moved but only the first `cap` captured.
    fn send_trunc(mut self, dir: Direction, b: &[u8], orig_len: u32) -> Script {
        let ts = self.tick();
        let p = self.pos[dir.index()];
        self.events
            .push(data_ev(self.conn, dir, p, ts, orig_len, b));
        self.pos[dir.index()] += orig_len as u64;
        self
    }
    /// Bytes moved but their event was lost.
    fn lose(mut self, dir: Direction, n: u64) -> Script {
        self.tick();
        self.pos[dir.index()] += n;
        self
    }
    fn close(mut self) -> Script {
        let ts = self.tick();
        self.events
            .push(close_ev(self.conn, ts, self.pos[0], self.pos[1]));
        self
    }
}

const E: Direction = Direction::Egress;
const I: Direction = Direction::Ingress;

fn run_cfg(cfg: TrackerConfig, events: &[Event]) -> (Vec<Record>, TrackerStats) {
    let mut t = Tracker::new(cfg);
    let mut out = Vec::new();
    for e in events {
        t.on_event(e, &mut out);
    }
    t.flush_all(&mut out);
    (out, t.stats())
}

fn run(events: &[Event]) -> (Vec<Record>, TrackerStats) {
    run_cfg(TrackerConfig::default(), events)
}

fn txns(recs: &[Record]) -> Vec<Transaction> {
    recs.iter()
        .filter_map(|r| match r {
            Record::Transaction(t) => Some((**t).clone()),
            _ => None,
        })
        .collect()
}

fn json(recs: &[Record]) -> Vec<String> {
    recs.iter().map(Record::to_json_line).collect()
}

fn req(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\n\r\n").into_bytes()
}

fn resp(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------

/// A request starts at the entry of the syscall that sent it (client
/// side) or at the return of the one that received it (server side: a
/// blocking read enters long before the request arrives).
#[test]
fn request_start_is_send_entry_or_receive_return() {
    let with_start = |mut e: Event, start: u64| {
        if let Event::Data(d) = &mut e {
            d.start_ns = start;
        }
        e
    };
    let (q, r) = (req("/a"), resp("ok"));
    for (role, qdir, rdir) in [(Role::Client, E, I), (Role::Server, I, E)] {
        let c = cid(7);
        let events = [
            open(c, role, 1_000),
            // the request's syscall entered at 2_000 and returned at 500_000_000
            with_start(data_ev(c, qdir, 0, 500_000_000, q.len() as u32, &q), 2_000),
            with_start(
                data_ev(c, rdir, 0, 500_300_000, r.len() as u32, &r),
                500_100_000,
            ),
        ];
        let t = txns(&run(&events).0);
        assert_eq!(t.len(), 1, "{role:?}");
        let (start, latency) = if role == Role::Client {
            (2_000, 500_298_000)
        } else {
            (500_000_000, 300_000)
        };
        assert_eq!(t[0].latency_ns, Some(latency), "{role:?}");
        assert_eq!(t[0].ttfb_ns, Some(500_300_000 - start), "{role:?}");
    }
}

#[test]
fn keep_alive_three_transactions_client() {
    let s = Script::new(1)
        .open(Role::Client)
        .send(E, &req("/a?x=1"))
        .send(I, &resp("one"))
        .send(E, &req("/b"))
        .send(I, &resp("second"))
        .send(E, &req("/c"))
        .send(I, &resp("3"))
        .close();
    let (recs, st) = run(&s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 3);
    assert_eq!(
        t.iter()
            .map(|t| (
                t.target.as_deref().unwrap().to_string(),
                t.resp_body_bytes.unwrap()
            ))
            .collect::<Vec<_>>(),
        vec![
            ("/a?x=1".to_string(), 3),
            ("/b".to_string(), 6),
            ("/c".to_string(), 1)
        ]
    );
    let a = &t[0];
    assert_eq!(a.path.as_deref(), Some("/a"));
    assert_eq!(a.host.as_deref(), Some("example.com"));
    assert_eq!(a.method.as_deref(), Some("GET"));
    assert_eq!(a.status, Some(200));
    assert_eq!(a.reason.as_deref(), Some("OK"));
    assert_eq!(a.conn.role, Role::Client);
    assert_eq!(a.http_version, Some("1.1"));
    assert_eq!(a.req_header_count, Some(2));
    assert_eq!(a.req_header_bytes, Some(req("/a?x=1").len() as u64));
    assert_eq!(a.resp_header_count, Some(2));
    assert_eq!(a.resp_content_type.as_deref(), Some("text/plain"));
    assert_eq!(a.conn.local_addr.as_deref(), Some("10.0.0.1"));
    assert_eq!(a.conn.remote_port, Some(80));
    assert_eq!(&*a.conn.conn_id, "4242-777-4-1");
    // request written at +1us, response read at +2us
    assert_eq!(a.latency_ns, Some(1_000));
    assert_eq!(a.ttfb_ns, Some(1_000));
    assert_eq!(a.span.start_ns, 1_001_000);
    assert!(t
        .iter()
        .all(|t| !t.gap && !t.truncated && !t.no_response && !t.upgraded));
    assert_eq!(st.transactions, 3);
    assert_eq!(st.conns_closed, 1);
    assert_eq!(st.conns_active, 0);
    assert_eq!(st.unanswered_requests, 0);
}

#[test]
fn server_role_directions() {
    let s = Script::new(2)
        .open(Role::Server)
        .send(I, &req("/srv"))
        .send(E, &resp("hello"))
        .send(I, b"POST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody")
        .send(E, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        .close();
    let (recs, _) = run(&s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].conn.role, Role::Server);
    assert_eq!(
        (t[0].target.as_deref(), t[0].status, t[0].resp_body_bytes),
        (Some("/srv"), Some(200), Some(5))
    );
    assert_eq!(
        (t[1].method.as_deref(), t[1].req_body_bytes, t[1].status),
        (Some("POST"), Some(4), Some(201))
    );

    // The same bytes with the client role get no transactions: the requests
    // travel the wrong way for a client.
    let mut s2 = Script::new(3).open(Role::Client);
    s2 = s2.send(I, &req("/srv")).send(E, &resp("hello")).close();
    let (recs2, st2) = run(&s2.events);
    assert!(txns(&recs2)
        .iter()
        .all(|t| t.method.is_none() || t.status.is_none()));
    assert!(st2.unparseable > 0 || st2.orphan_responses > 0 || st2.unanswered_requests > 0);
}

#[test]
fn unknown_role_is_inferred() {
    // No Open: ingress carries a request -> server.
    let s = Script::new(4)
        .send(I, &req("/x"))
        .send(E, &resp("ok"))
        .close();
    let (recs, _) = run(&s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].conn.role, Role::Server);
    assert_eq!(t[0].conn.local_addr, None);
    assert_eq!(t[0].status, Some(200));
    // Open with Unknown role, egress carries a request -> client.
    let s = Script::new(5)
        .open(Role::Unknown)
        .send(E, &req("/y"))
        .send(I, &resp("ok"))
        .close();
    let t = txns(&run(&s.events).0);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].conn.role, Role::Client);
    assert_eq!(t[0].target.as_deref(), Some("/y"));
}

/// Bodies of known length are counted in place, not buffered (feed());
/// heads are cut at their blank line first. Bodies that look like
/// heads, LF-only heads and several messages in one write must come
/// out as if every byte had been buffered.
#[test]
fn bodies_in_place_keep_framing() {
    let lf_only = b"HTTP/1.1 200 OK\nContent-Length: 6\n\nxx\r\n\r\n".to_vec();
    let s = Script::new(7)
        .open(Role::Client)
        .send(E, &[req("/1"), req("/2"), req("/3"), req("/4")].concat())
        // a body holding a blank line and a status line, then a second
        // response, all in one write
        .send(
            I,
            &[resp("a\r\n\r\nHTTP/1.1 500 X\r\n\r\n"), resp("bb")].concat(),
        )
        .send(I, &lf_only)
        // a head split from its body, the body in two writes
        .send(I, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
        .send(I, b"cde")
        .close();
    let (recs, st) = run(&s.events);
    let got: Vec<_> = txns(&recs)
        .iter()
        .map(|t| {
            (
                t.target.as_deref().unwrap().to_string(),
                t.status.unwrap(),
                t.resp_body_bytes.unwrap(),
                t.gap,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("/1".to_string(), 200, 23, false),
            ("/2".to_string(), 200, 2, false),
            ("/3".to_string(), 200, 6, false),
            ("/4".to_string(), 200, 5, false),
        ]
    );
    assert_eq!(st.resyncs, 0);
    assert_eq!(st.bytes_dropped, 0);
}

#[test]
fn pipelining_pairs_fifo() {
    let s = Script::new(6)
        .open(Role::Client)
        .send(E, &req("/1"))
        .send(E, &req("/2"))
        .send(
            E,
            &[req("/3"), b"HEAD /4 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()].concat(),
        )
        .send(I, &[resp("a"), resp("bb")].concat())
        .send(I, &resp("ccc"))
        .send(I, b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n")
        .send(E, &req("/5"))
        .send(I, &resp("eeeee"))
        .close();
    let (recs, st) = run(&s.events);
    let t = txns(&recs);
    let got: Vec<_> = t
        .iter()
        .map(|t| {
            (
                t.target.as_deref().unwrap().to_string(),
                t.resp_body_bytes.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("/1".to_string(), 1),
            ("/2".to_string(), 2),
            ("/3".to_string(), 3),
            ("/4".to_string(), 0),
            ("/5".to_string(), 5)
        ]
    );
    assert!(t.iter().all(|t| !t.gap && !t.no_response));
    assert_eq!(st.unanswered_requests, 0);
}

#[test]
fn midstream_start_resyncs_on_next_message() {
    // Probe attached in the middle of a response body: no Open, positions
    // start far from zero.
    let c = cid(7);
    let next_req = req("/next");
    let next_resp = resp("fresh");
    let events = vec![
        data_ev(c, I, 90_000, 10, 30, b"ody of an earlier response...."),
        data_ev(c, E, 5_000, 20, next_req.len() as u32, &next_req),
        data_ev(c, I, 90_030, 30, next_resp.len() as u32, &next_resp),
        close_ev(
            c,
            40,
            5_000 + next_req.len() as u64,
            90_030 + next_resp.len() as u64,
        ),
    ];
    let (recs, st) = run(&events);
    let t = txns(&recs);
    assert_eq!(t.len(), 1, "{recs:?}");
    assert_eq!(t[0].target.as_deref(), Some("/next"));
    assert_eq!(t[0].resp_body_bytes, Some(5));
    assert_eq!(t[0].conn.role, Role::Client);
    assert!(!t[0].gap);
    assert_eq!(st.bytes_dropped, 30);
    assert_eq!(st.gaps, 0);
}

#[test]
fn truncated_big_body_counts_exact_bytes() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n";
    let total = head.len() + 1_000_000;
    let mut cap = head.to_vec();
    cap.resize(4096, b'z');
    let s = Script::new(8)
        .open(Role::Client)
        .send(E, &req("/big"))
        .send_trunc(I, &cap, total as u32)
        .send(E, &req("/after"))
        .send(I, &resp("small"))
        .close();
    let (recs, st) = run(&s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].resp_body_bytes, Some(1_000_000));
    assert!(t[0].truncated);
    assert!(!t[0].gap);
    assert_eq!(t[1].target.as_deref(), Some("/after"));
    assert_eq!(t[1].resp_body_bytes, Some(5));
    assert!(!t[1].truncated && !t[1].gap);
    assert_eq!(st.truncated_bytes, (total - 4096) as u64);
    assert_eq!(st.gaps, 0);
}

#[test]
fn truncated_single_chunk_body_keeps_sync() {
    let mut cap = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\n".to_vec(); // 100000
    let framing = cap.len();
    cap.resize(4096, b'q');
    let tail = b"\r\n0\r\n\r\n";
    let s = Script::new(9)
        .open(Role::Client)
        .send(E, &req("/chunky"))
        .send_trunc(I, &cap, (framing + 100_000) as u32)
        .send(I, tail)
        .send(E, &req("/after"))
        .send(I, &resp("ok"))
        .close();
    let t = txns(&run(&s.events).0);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].resp_body_bytes, Some(100_000));
    assert!(t[0].truncated && !t[0].gap);
    assert_eq!(t[1].status, Some(200));
    assert!(!t[1].gap);
}

#[test]
fn chunked_body_in_one_truncated_write_ends_exactly() {
    // curl -H 'Transfer-Encoding: chunked' --data-binary @10k: head,
    // chunk size, data, CRLF and the last chunk in one 10 KB write.
    let mut w =
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2710\r\n".to_vec();
    let total = w.len() + 10_000 + 7;
    w.resize(4096, b'z');
    let s = Script::new(3)
        .open(Role::Client)
        .send_trunc(E, &w, total as u32)
        .send(I, &resp("no"))
        .send(E, &req("/after"))
        .send(I, &resp("ok"))
        .close();
    let t = txns(&run(&s.events).0);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].req_body_bytes, Some(10_000));
    assert!(t[0].truncated && !t[0].gap && !t[0].no_response);
    assert_eq!(t[1].path.as_deref(), Some("/after"));
    // one byte more or less is not the last-chunk shape: a gap, then resync
    for delta in [-1i64, 1] {
        let s = Script::new(3)
            .open(Role::Client)
            .send_trunc(E, &w, (total as i64 + delta) as u32)
            .send(I, &resp("no"))
            .send(E, &req("/after"))
            .send(I, &resp("ok"))
            .close();
        let t = txns(&run(&s.events).0);
        assert!(t[0].gap, "delta {delta}: {:?}", t[0]);
        assert!(
            t.iter().any(|x| x.path.as_deref() == Some("/after")),
            "delta {delta}: {t:?}"
        );
    }
}

#[test]
fn ring_buffer_drop_in_headers_is_a_gap_and_resyncs() {
    let r1 = req("/lost");
    let s = Script::new(10)
        .open(Role::Client)
        .send(E, &r1[..10])
        .lose(E, (r1.len() - 10) as u64)
        .send(I, &resp("first"))
        .send(E, &req("/second"))
        .send(I, &resp("second!"))
        .close();
    let (recs, st) = run(&s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 2, "{:#?}", t);
    // The response to the lost request has no request: orphan, gap.
    assert_eq!(t[0].method, None);
    assert_eq!(t[0].resp_body_bytes, Some(5));
    assert!(t[0].gap);
    // The next exchange pairs correctly and is flagged.
    assert_eq!(t[1].target.as_deref(), Some("/second"));
    assert_eq!(t[1].resp_body_bytes, Some(7));
    assert!(t[1].gap);
    assert_eq!(st.gaps, 1);
    assert_eq!(st.gap_bytes, (r1.len() - 10) as u64);
    assert_eq!(st.orphan_responses, 1);
}

#[test]
fn gap_in_response_head_resyncs() {
    let r1 = resp("lost one");
    let s = Script::new(11)
        .open(Role::Client)
        .send(E, &req("/1"))
        .send(I, &r1[..12])
        .lose(I, (r1.len() - 12) as u64)
        .send(E, &req("/2"))
        .send(I, &resp("kept"))
        .close();
    let mut cfg = TrackerConfig::default();
    cfg.reorder_window = 0; // declare gaps immediately
    let (recs, st) = run_cfg(cfg, &s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 2, "{t:#?}");
    assert_eq!(
        (t[0].target.as_deref(), t[0].no_response, t[0].gap),
        (Some("/1"), true, true)
    );
    assert_eq!(
        (t[1].target.as_deref(), t[1].resp_body_bytes, t[1].gap),
        (Some("/2"), Some(4), true)
    );
    assert_eq!(st.gaps, 1);
}

#[test]
fn lost_response_realigns_pairing_and_head_framing() {
    let lost = resp("never seen");
    let s = Script::new(28)
        .open(Role::Client)
        .send(E, &req("/a"))
        .send(E, b"HEAD /b HTTP/1.1\r\nHost: h\r\n\r\n")
        .lose(I, lost.len() as u64)
        .send(I, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        .send(E, &req("/c"))
        .send(I, &resp("cc"))
        .close();
    let mut cfg = TrackerConfig::default();
    cfg.reorder_window = 0;
    let (recs, st) = run_cfg(cfg, &s.events);
    let t = txns(&recs);
    let got: Vec<_> = t
        .iter()
        .map(|t| {
            (
                t.target.as_deref().unwrap_or_default().to_string(),
                t.status,
                t.resp_body_bytes,
                t.no_response,
                t.gap,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("/a".to_string(), None, None, true, true),
            ("/b".to_string(), Some(200), Some(0), false, true),
            ("/c".to_string(), Some(200), Some(2), false, false),
        ]
    );
    assert_eq!(st.gaps, 1);
}

#[test]
fn out_of_order_within_window_is_reassembled() {
    let r = resp("out of order body!");
    let build = |order: &[usize]| {
        let c = cid(12);
        let q = req("/ooo");
        let parts = [(0usize, 10usize), (10, 30), (30, r.len())];
        let mut ev = vec![
            open(c, Role::Client, 1),
            data_ev(c, E, 0, 10, q.len() as u32, &q),
        ];
        for &i in order {
            let (a, b) = parts[i];
            ev.push(data_ev(
                c,
                I,
                a as u64,
                20 + i as u64,
                (b - a) as u32,
                &r[a..b],
            ));
        }
        ev.push(close_ev(c, 100, q.len() as u64, r.len() as u64));
        ev
    };
    let (in_order, st0) = run(&build(&[0, 1, 2]));
    let (shuffled, st) = run(&build(&[0, 2, 1]));
    assert_eq!(json(&in_order), json(&shuffled));
    assert_eq!(txns(&shuffled)[0].resp_body_bytes, Some(18));
    assert_eq!(st0.reordered_events, 0);
    assert_eq!(st.reordered_events, 1);
    assert_eq!(st.gaps, 0);
    // Fully reversed, and a duplicate.
    let mut ev = build(&[2, 1, 0]);
    ev.insert(4, ev[3].clone());
    let (rev, st) = run(&ev);
    assert_eq!(json(&in_order), json(&rev));
    assert_eq!(st.duplicate_events, 1);
}

#[test]
fn reorder_timeout_declares_gap_on_expire() {
    let c = cid(13);
    let q = req("/t");
    let r = resp("late");
    let events = vec![
        open(c, Role::Client, 1),
        data_ev(c, E, 0, 10, q.len() as u32, &q),
        // first 5 response bytes lost; the rest is held waiting for them
        data_ev(c, I, 5, 20, (r.len() - 5) as u32, &r[5..]),
    ];
    let mut t = Tracker::new(TrackerConfig::default());
    let mut out = Vec::new();
    for e in &events {
        t.on_event(e, &mut out);
    }
    assert_eq!(t.stats().gaps, 0);
    t.expire(20 + 50_000_000, &mut out);
    assert_eq!(t.stats().gaps, 0, "within the reorder timeout");
    t.expire(20 + 200_000_000, &mut out);
    assert_eq!(t.stats().gaps, 1);
    assert_eq!(t.stats().gap_bytes, 5);
    t.flush_all(&mut out);
    let tx = txns(&out);
    assert_eq!(tx.len(), 1);
    assert!(tx[0].no_response && tx[0].gap);
}

#[test]
fn close_flushes_unanswered_requests() {
    let s = Script::new(14)
        .open(Role::Client)
        .send(E, &req("/1"))
        .send(I, &resp("x"))
        .send(E, &req("/2"))
        .send(E, &req("/3"))
        .close();
    let (recs, st) = run(&s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 3);
    assert!(!t[0].no_response);
    assert!(t[1].no_response && t[2].no_response);
    assert_eq!(t[1].status, None);
    assert_eq!(t[1].latency_ns, None);
    assert!(!t[1].gap);
    assert_eq!(st.unanswered_requests, 2);
}

#[test]
fn http10_close_delimited_response_ends_at_close() {
    let body = "x".repeat(10_000);
    let head = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n";
    let s = Script::new(15)
        .open(Role::Client)
        .send(E, b"GET /old HTTP/1.0\r\n\r\n")
        .send(I, head.as_bytes())
        .send(I, &body.as_bytes()[..6000])
        .send(I, &body.as_bytes()[6000..]);
    let s = s.close();
    let (recs, _) = run(&s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].resp_body_bytes, Some(10_000));
    assert_eq!(t[0].http_version, Some("1.0"));
    assert!(!t[0].gap && !t[0].truncated);
    // Before the close nothing is emitted.
    let mut tr = Tracker::new(TrackerConfig::default());
    let mut out = Vec::new();
    for e in &s.events[..s.events.len() - 1] {
        tr.on_event(e, &mut out);
    }
    assert!(txns(&out).is_empty());
    // Close reports more received bytes than were seen: the tail event was
    // lost, but the framing is known, so the count is still exact.
    let mut ev = s.events.clone();
    ev.remove(ev.len() - 2);
    let (recs, st) = run(&ev);
    let t = txns(&recs);
    assert_eq!(t[0].resp_body_bytes, Some(10_000));
    assert!(t[0].truncated && !t[0].gap);
    assert_eq!(st.gap_bytes, 4000);
}

#[test]
fn expiry_flushes_idle_connections() {
    let s = Script::new(16).open(Role::Client).send(E, &req("/idle"));
    let mut cfg = TrackerConfig::default();
    cfg.idle_timeout_ns = 1_000_000_000;
    let mut t = Tracker::new(cfg);
    let mut out = Vec::new();
    for e in &s.events {
        t.on_event(e, &mut out);
    }
    t.expire(s.ts + 999_999_999, &mut out);
    assert!(out.is_empty());
    assert_eq!(t.active(), 1);
    t.expire(s.ts + 1_000_000_000, &mut out);
    assert_eq!(t.active(), 0);
    let st = t.stats();
    assert_eq!(st.conns_expired, 1);
    let tx = txns(&out);
    assert_eq!(tx.len(), 1);
    assert!(tx[0].no_response);
    assert_eq!(tx[0].target.as_deref(), Some("/idle"));
}

#[test]
fn eviction_when_max_conns_exceeded() {
    let mut cfg = TrackerConfig::default();
    cfg.max_conns = 2;
    let mut t = Tracker::new(cfg);
    let mut out = Vec::new();
    for n in 0..3u64 {
        let s = Script::new(100 + n)
            .open(Role::Client)
            .send(E, &req(&format!("/{n}")));
        for e in &s.events {
            t.on_event(e, &mut out);
        }
        // touch conn 100 again so 101 becomes least recently used
        if n == 1 {
            let q = req("/0b");
            t.on_event(
                &data_ev(cid(100), E, req("/0").len() as u64, 5, q.len() as u32, &q),
                &mut out,
            );
        }
    }
    assert_eq!(t.active(), 2);
    let st = t.stats();
    assert_eq!(st.conns_evicted, 1);
    assert_eq!(st.conns_seen, 3);
    let tx = txns(&out);
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].target.as_deref(), Some("/1"));
    assert!(tx[0].no_response);
}

#[test]
fn caps_bound_memory_and_queues() {
    // max_pending: 5 pipelined requests, cap 2.
    let mut cfg = TrackerConfig::default();
    cfg.max_pending = 2;
    let mut s = Script::new(17).open(Role::Client);
    for i in 0..5 {
        s = s.send(E, &req(&format!("/{i}")));
    }
    let (recs, st) = run_cfg(cfg, &s.events);
    assert_eq!(st.pending_overflow, 3);
    assert_eq!(txns(&recs).len(), 5);

    // Garbage in a connection of unknown role: buffers stay bounded.
    let mut cfg = TrackerConfig::default();
    cfg.max_buf_bytes = 8192;
    let mut t = Tracker::new(cfg.clone());
    let mut out = Vec::new();
    let junk = vec![b'A'; 4096];
    for i in 0..256u64 {
        t.on_event(&data_ev(cid(18), I, i * 4096, i, 4096, &junk), &mut out);
        assert!(t.buffered_bytes() <= cfg.max_buf_bytes);
    }
    // A request head that never ends: Invalid at the head cap, then resync.
    let mut t = Tracker::new(TrackerConfig::default());
    let s = Script::new(19)
        .open(Role::Server)
        .send(I, b"GET / HTTP/1.1\r\nX-Long: ");
    for e in &s.events {
        t.on_event(e, &mut out);
    }
    let mut pos = s.pos[1];
    for i in 0..40u64 {
        let chunk = vec![b'v'; 4096];
        t.on_event(&data_ev(cid(19), I, pos, 100 + i, 4096, &chunk), &mut out);
        pos += 4096;
        assert!(t.buffered_bytes() <= parser::MAX_HEAD_BYTES + 4096);
    }
    assert_eq!(t.stats().unparseable, 1);
    // Out-of-order hold is bounded by the reorder window.
    let mut t = Tracker::new(TrackerConfig::default());
    t.on_event(&open(cid(20), Role::Client, 0), &mut out);
    for i in 0..100u64 {
        t.on_event(
            &data_ev(cid(20), E, 1 + i * 10, i, 10, b"0123456789"),
            &mut out,
        );
        assert!(t.buffered_bytes() <= 17 * 10);
    }
}

#[test]
fn expect_100_continue() {
    let head = b"PUT /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 6\r\n\r\n";
    let r100 = b"HTTP/1.1 100 Continue\r\n\r\n";
    let fin = resp("stored");
    let s = Script::new(21)
        .open(Role::Client)
        .send(E, head)
        .send(I, r100)
        .send(E, b"abcdef")
        .send(I, &fin)
        .close();
    let mut cfg = TrackerConfig::default();
    cfg.emit_messages = true;
    let (recs, _) = run_cfg(cfg.clone(), &s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].interim_status, Some(100));
    assert_eq!(t[0].status, Some(200));
    assert_eq!(t[0].req_body_bytes, Some(6));
    assert_eq!(t[0].resp_body_bytes, Some(6));
    // ttfb measured to the interim response, latency to the final byte
    assert_eq!(t[0].ttfb_ns, Some(1_000));
    assert_eq!(t[0].latency_ns, Some(3_000));
    let msgs = recs
        .iter()
        .filter(|r| matches!(r, Record::Message(_)))
        .count();
    assert_eq!(msgs, 3);
    // Ingress stream split at every position gives identical records.
    let whole = [&r100[..], &fin[..]].concat();
    for k in 1..whole.len() {
        let c = cid(21);
        let ev = vec![
            open(c, Role::Client, 1),
            data_ev(c, E, 0, 10, head.len() as u32, head),
            data_ev(c, I, 0, 20, k as u32, &whole[..k]),
            data_ev(c, E, head.len() as u64, 20, 6, b"abcdef"),
            data_ev(c, I, k as u64, 20, (whole.len() - k) as u32, &whole[k..]),
            close_ev(c, 30, head.len() as u64 + 6, whole.len() as u64),
        ];
        let t = txns(&run(&ev).0);
        assert_eq!(t.len(), 1, "split {k}");
        assert_eq!(
            (t[0].interim_status, t[0].status, t[0].req_body_bytes),
            (Some(100), Some(200), Some(6)),
            "split {k}"
        );
    }
}

#[test]
fn upgrade_101_stops_http_parsing() {
    let s = Script::new(22)
        .open(Role::Client)
        .send(E, b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        .send(I, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello")
        .send(E, b"\x81\x85\x00\x00\x00\x00hello")
        .send(I, b"\x88\x00")
        .close();
    let (recs, st) = run(&s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 1);
    assert!(t[0].upgraded);
    assert_eq!(t[0].status, Some(101));
    assert_eq!(st.upgrades, 1);
    assert_eq!(st.unparseable, 0);
    assert_eq!(st.orphan_responses + st.unanswered_requests, 0);

    // Upgrade refused: parsing continues with the buffered next request.
    let s = Script::new(23)
        .open(Role::Client)
        .send(E, b"GET /ws HTTP/1.1\r\nUpgrade: h2c\r\n\r\n")
        .send(E, &req("/plain"))
        .send(I, &resp("no"))
        .send(I, &resp("yes"))
        .close();
    let (recs, st) = run(&s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 2);
    assert!(!t[0].upgraded);
    assert_eq!(
        (t[1].target.as_deref(), t[1].resp_body_bytes),
        (Some("/plain"), Some(3))
    );
    assert_eq!(st.upgrades, 0);
}

#[test]
fn connect_tunnel() {
    let s = Script::new(24)
        .open(Role::Client)
        .send(
            E,
            b"CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n",
        )
        .send(I, b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .send(E, b"\x16\x03\x01\x02\x00 tls hello")
        .send(I, b"\x16\x03\x03 server hello")
        .close();
    let (recs, st) = run(&s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 1);
    assert!(t[0].upgraded);
    assert_eq!(t[0].method.as_deref(), Some("CONNECT"));
    assert_eq!(st.unparseable, 0);
}

#[test]
fn headers_and_redaction() {
    let q =
        b"GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic Zm9vOmJhcg==\r\nCookie: s=1\r\n\r\n";
    let r = b"HTTP/1.1 200 OK\r\nSet-Cookie: s=2\r\nContent-Length: 0\r\n\r\n";
    let s = Script::new(25)
        .open(Role::Client)
        .send(E, q)
        .send(I, r)
        .close();
    let mut cfg = TrackerConfig::default();
    let (recs, _) = run_cfg(cfg.clone(), &s.events);
    assert!(!json(&recs)[0].contains("req_headers"));
    cfg.headers = true;
    let (recs, _) = run_cfg(cfg.clone(), &s.events);
    let t = &txns(&recs)[0];
    let rh = t.req_headers.as_ref().unwrap();
    assert_eq!(
        rh[1],
        ("Authorization".to_string(), "[REDACTED]".to_string())
    );
    assert_eq!(rh[2].1, "[REDACTED]");
    assert_eq!(rh[0].1, "h");
    assert_eq!(t.resp_headers.as_ref().unwrap()[0].1, "[REDACTED]");
    assert!(!json(&recs)[0].contains("Zm9v"));
    cfg.redact = crate::redact::Redact::off();
    let (recs, _) = run_cfg(cfg, &s.events);
    assert!(json(&recs)[0].contains("Basic Zm9vOmJhcg=="));
}

#[test]
fn query_secrets_are_redacted_in_target_of_transactions_and_messages() {
    let q = b"GET /login?user=bob&password=hunter2&token=t0k HTTP/1.1\r\nHost: h\r\nX-Api-Key: k3y\r\n\r\n";
    let r = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let s = Script::new(27)
        .open(Role::Client)
        .send(E, q)
        .send(I, r)
        .close();
    let mut cfg = TrackerConfig::default();
    cfg.headers = true;
    cfg.emit_messages = true;
    let (recs, _) = run_cfg(cfg.clone(), &s.events);
    let t = &txns(&recs)[0];
    assert_eq!(
        t.target.as_deref(),
        Some("/login?user=bob&password=[REDACTED]&token=[REDACTED]")
    );
    assert_eq!(t.path.as_deref(), Some("/login"));
    assert_eq!(t.req_headers.as_ref().unwrap()[1].1, "[REDACTED]");
    let all = json(&recs).join("\n");
    for secret in ["hunter2", "t0k", "k3y"] {
        assert!(!all.contains(secret), "{secret} in {all}");
    }
    cfg.redact = crate::redact::Redact::off();
    let (recs, _) = run_cfg(cfg, &s.events);
    assert!(json(&recs)
        .join("\n")
        .contains("password=hunter2&token=t0k"));
}

#[test]
fn message_records_only() {
    let s = Script::new(26)
        .open(Role::Server)
        .send(I, &req("/m"))
        .send(E, &resp("body"))
        .close();
    let mut cfg = TrackerConfig::default();
    cfg.emit_messages = true;
    cfg.emit_transactions = false;
    let (recs, st) = run_cfg(cfg, &s.events);
    assert_eq!(recs.len(), 2);
    let Record::Message(a) = &recs[0] else {
        panic!()
    };
    let Record::Message(b) = &recs[1] else {
        panic!()
    };
    assert_eq!(
        (a.message, a.direction, a.method.as_deref()),
        (MsgKind::Request, Direction::Ingress, Some("GET"))
    );
    assert_eq!(
        (b.message, b.direction, b.status, b.body_bytes),
        (MsgKind::Response, Direction::Egress, Some(200), 4)
    );
    assert_eq!(st.messages, 2);
    assert_eq!(st.transactions, 0);
    let j = recs[0].to_json_line();
    assert!(j.starts_with("{\"type\":\"http_message\""), "{j}");
}

#[test]
fn json_shape() {
    let s = Script::new(27)
        .open(Role::Client)
        .send(E, &req("/j"))
        .send(I, &resp("{}"))
        .close();
    let mut cfg = TrackerConfig::default();
    cfg.realtime_offset_ns = 1_795_966_200_123_456_789 - 1_001_000;
    let (recs, _) = run_cfg(cfg, &s.events);
    let v: serde_json::Value = serde_json::from_str(&recs[0].to_json_line()).unwrap();
    assert_eq!(v["type"], "http_transaction");
    assert_eq!(v["ts_start"], "2026-11-29T15:30:00.123456789Z");
    assert_eq!(v["ts_end"], "2026-11-29T15:30:00.123457789Z");
    assert_eq!(v["role"], "client");
    assert_eq!(v["remote_addr"], "10.0.0.2");
    assert!(v["interim_status"].is_null());
    for k in [
        "ts_start_ns",
        "ts_end_ns",
        "latency_ns",
        "ttfb_ns",
        "method",
        "target",
        "path",
        "host",
        "http_version",
        "status",
        "reason",
        "req_header_count",
        "req_header_bytes",
        "resp_header_count",
        "resp_header_bytes",
        "req_body_bytes",
        "resp_body_bytes",
        "req_content_type",
        "resp_content_type",
        "pid",
        "tid",
        "comm",
        "conn_id",
        "source",
        "local_addr",
        "local_port",
        "remote_port",
        "gap",
        "truncated",
        "no_response",
        "upgraded",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
}

// ---------------------------------------------------------------------------
// Table messages through the tracker: every split gives identical records.

fn conversation(c: &crate::protocol::http1::tests::Case) -> (Vec<u8>, Vec<u8>) {
    match &c.kind {
        Kind::Request => (
            c.bytes.clone(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        ),
        Kind::Response { method, .. } => (
            format!("{method} /x HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes(),
            c.bytes.clone(),
        ),
    }
}

fn split_events(role: Role, q: &[u8], r: &[u8], qcuts: &[usize], rcuts: &[usize]) -> Vec<Event> {
    let c = cid(50);
    let (qd, rd) = if role == Role::Server { (I, E) } else { (E, I) };
    let mut ev = vec![open(c, role, 1)];
    let pieces = |b: &[u8], cuts: &[usize], d: Direction, ts: u64, ev: &mut Vec<Event>| {
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|&k| k > 0 && k < b.len()));
        bounds.push(b.len());
        for w in bounds.windows(2) {
            ev.push(data_ev(
                c,
                d,
                w[0] as u64,
                ts,
                (w[1] - w[0]) as u32,
                &b[w[0]..w[1]],
            ));
        }
    };
    pieces(q, qcuts, qd, 1_000, &mut ev);
    pieces(r, rcuts, rd, 2_000, &mut ev);
    let (tx, rx) = if role == Role::Server {
        (r.len(), q.len())
    } else {
        (q.len(), r.len())
    };
    ev.push(close_ev(c, 3_000, tx as u64, rx as u64));
    ev
}

#[test]
fn table_cases_split_anywhere_give_identical_records() {
    let mut cfg = TrackerConfig::default();
    cfg.emit_messages = true;
    cfg.headers = true;
    for case in cases() {
        let (q, r) = conversation(&case);
        for role in [Role::Client, Role::Server] {
            let base = json(&run_cfg(cfg.clone(), &split_events(role, &q, &r, &[], &[])).0);
            // sanity: the interesting message was parsed with the right body size
            let t = txns(&run_cfg(cfg.clone(), &split_events(role, &q, &r, &[], &[])).0);
            assert!(!t.is_empty(), "{}", case.name);
            match case.kind {
                Kind::Request => {
                    assert_eq!(t[0].req_body_bytes, Some(case.body_bytes), "{}", case.name)
                }
                Kind::Response { .. } => {
                    if case.name != "response_100_continue" {
                        assert_eq!(t[0].resp_body_bytes, Some(case.body_bytes), "{}", case.name);
                        assert!(!t[0].gap, "{}", case.name);
                    } else {
                        assert!(t[0].no_response);
                    }
                }
            }
            for k in 1..q.len() {
                let got = json(&run_cfg(cfg.clone(), &split_events(role, &q, &r, &[k], &[])).0);
                assert_eq!(got, base, "{} req split {k}", case.name);
            }
            for k in 1..r.len() {
                let got = json(&run_cfg(cfg.clone(), &split_events(role, &q, &r, &[], &[k])).0);
                assert_eq!(got, base, "{} resp split {k}", case.name);
            }
            let all_q: Vec<usize> = (1..q.len()).collect();
            let all_r: Vec<usize> = (1..r.len()).collect();
            let got = json(&run_cfg(cfg.clone(), &split_events(role, &q, &r, &all_q, &all_r)).0);
            assert_eq!(got, base, "{} byte by byte", case.name);
        }
    }
}

// ---------------------------------------------------------------------------
// Deterministic mutation loop (stand-in for the cargo-fuzz targets).

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut XorShift, b: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = b"\r\n :;0aF9-"[rng.below(10)];
            }
            2 => {
                let i = rng.below(b.len() + 1);
                b.insert(i, rng.next() as u8);
            }
            3 if !b.is_empty() => {
                let i = rng.below(b.len());
                b.remove(i);
            }
            4 => {
                let i = rng.below(b.len() + 1);
                b.truncate(i);
            }
            _ => {
                let i = rng.below(b.len() + 1);
                let j = rng.below(b.len() + 1);
                let (lo, hi) = (i.min(j), i.max(j));
                let dup = b[lo..hi].to_vec();
                b.splice(hi..hi, dup);
            }
        }
    }
}

#[test]
fn pseudo_random_mutations_never_panic() {
    let table = cases();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut cfg = TrackerConfig::default();
    cfg.max_buf_bytes = 2048;
    cfg.max_pending = 4;
    cfg.max_conns = 3;
    cfg.reorder_window = 3;
    cfg.emit_messages = true;
    for iter in 0..20_000u32 {
        let c = &table[rng.below(table.len())];
        let mut b = c.bytes.clone();
        mutate(&mut rng, &mut b);
        // parser invariants
        for p in [
            parser::parse_request(&b).is_invalid(),
            parser::parse_response(&b).is_invalid(),
        ] {
            let _ = p;
        }
        if let Parse::Complete(_, n) = parser::parse_full_request(&b) {
            assert!(n <= b.len());
        }
        if let Parse::Complete(_, n) =
            parser::parse_full_response(&b, Some("GET"), rng.below(2) == 0)
        {
            assert!(n <= b.len());
        }
        let mut d = ChunkedDecoder::new();
        match d.feed(&b) {
            ChunkStep::Progress(n) | ChunkStep::Done(n) => assert!(n <= b.len()),
            ChunkStep::Invalid(_) => {}
        }
        // tracker: a few events with random splits, jumps, truncation, reordering
        if iter % 4 == 0 {
            let mut t = Tracker::new(cfg.clone());
            let mut out = Vec::new();
            let conn = cid(rng.below(5) as u64);
            let role = [Role::Client, Role::Server, Role::Unknown][rng.below(3)];
            if rng.below(3) > 0 {
                t.on_event(&open(conn, role, 0), &mut out);
            }
            let mut pos = [rng.below(3) as u64 * 7, 0u64];
            let mut evs = Vec::new();
            for step in 0..1 + rng.below(12) {
                let cc = &table[rng.below(table.len())];
                let mut m = cc.bytes.clone();
                if rng.below(3) == 0 {
                    mutate(&mut rng, &mut m);
                }
                let d = rng.below(2);
                let cut = rng.below(m.len() + 1);
                for part in [&m[..cut], &m[cut..]] {
                    let cap = if rng.below(5) == 0 {
                        rng.below(part.len() + 1)
                    } else {
                        part.len()
                    };
                    let orig = part.len()
                        + if rng.below(8) == 0 {
                            rng.below(100_000)
                        } else {
                            0
                        };
                    if rng.below(10) == 0 {
                        pos[d] += rng.below(50) as u64; // lost bytes
                    }
                    evs.push(data_ev(
                        conn,
                        crate::protocol::BOTH[d],
                        pos[d],
                        step as u64 * 1000,
                        orig as u32,
                        &part[..cap],
                    ));
                    pos[d] += orig as u64;
                }
            }
            if evs.len() > 1 && rng.below(3) == 0 {
                let i = rng.below(evs.len() - 1);
                evs.swap(i, i + 1);
            }
            for e in &evs {
                t.on_event(e, &mut out);
                assert!(t.buffered_bytes() <= 4 * (cfg.max_buf_bytes + 200_000));
                for c in t.conns.values() {
                    for d in crate::protocol::BOTH {
                        assert!(
                            c.session_buffered(d) <= cfg.max_buf_bytes.max(parser::MAX_HEAD_BYTES)
                        );
                        assert!(c.held_events(d) <= cfg.reorder_window);
                    }
                }
            }
            if rng.below(2) == 0 {
                t.on_event(
                    &close_ev(conn, 1 << 40, pos[0] + rng.below(10) as u64, pos[1]),
                    &mut out,
                );
            } else {
                t.expire(1 << 50, &mut out);
            }
            t.flush_all(&mut out);
            for r in &out {
                if let Record::Transaction(tx) = r {
                    assert!(tx.span.end_ns >= tx.span.start_ns);
                    if tx.no_response {
                        assert!(tx.status.is_none());
                    }
                }
                let _ = r.to_json_line();
            }
            let st = t.stats();
            assert_eq!(st.records_emitted as usize, out.len());
            assert_eq!(st.conns_active, 0);
        }
    }
}

// ---------------------------------------------------------------------------
// Golden file.

fn golden_events() -> Vec<Event> {
    let mut ev = Vec::new();
    // 1. client keep-alive with an interim response and a chunked body
    ev.extend(
        Script::new(60)
            .open(Role::Client)
            .send(E, b"POST /api/v1/items?debug=1 HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\nAuthorization: Bearer abc\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
            .send(I, b"HTTP/1.1 100 Continue\r\n\r\n")
            .send(E, b"{}")
            .send(I, b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n7;x=y\r\n{\"id\":1\r\n1\r\n}\r\n0\r\nX-T: 1\r\n\r\n")
            .send(E, b"HEAD /health HTTP/1.1\r\nHost: api.example\r\n\r\n")
            .send(I, b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n")
            .close()
            .events,
    );
    // 2. server side, truncated capture of a large response
    let mut cap = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nSet-Cookie: sid=1\r\nContent-Length: 2000000\r\n\r\n".to_vec();
    let head_len = cap.len();
    cap.resize(4096, 0x89);
    ev.extend(
        Script::new(61)
            .open(Role::Server)
            .send(
                I,
                b"GET /img.png HTTP/1.1\r\nHost: cdn\r\nCookie: sid=1\r\n\r\n",
            )
            .send_trunc(E, &cap, (head_len + 2_000_000) as u32)
            .close()
            .events,
    );
    // 3. lost request bytes, then resync
    let lost = req("/lost");
    ev.extend(
        Script::new(62)
            .open(Role::Client)
            .send(E, &lost[..8])
            .lose(E, (lost.len() - 8) as u64)
            .send(I, &resp("a"))
            .send(E, &req("/found"))
            .send(I, &resp("bb"))
            .send(E, &req("/unanswered"))
            .close()
            .events,
    );
    ev
}

#[test]
fn golden_jsonl() {
    let mut cfg = TrackerConfig::default();
    cfg.headers = true;
    cfg.emit_messages = true;
    cfg.realtime_offset_ns = 1_795_966_200_000_000_000;
    let (recs, st) = run_cfg(cfg, &golden_events());
    let mut text = String::new();
    for r in &recs {
        text.push_str(&r.to_json_line());
        text.push('\n');
    }
    text.push_str(&serde_json::to_string(&st).unwrap());
    text.push('\n');
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/tracker_scenario.jsonl");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create)",
            path.display()
        )
    });
    if want != text {
        for (i, (a, b)) in want.lines().zip(text.lines()).enumerate() {
            assert_eq!(
                a,
                b,
                "golden line {} differs (UPDATE_GOLDEN=1 regenerates)",
                i + 1
            );
        }
        assert_eq!(
            want.lines().count(),
            text.lines().count(),
            "golden line count differs"
        );
    }
}

/// A protocol whose session panics on `BOOM`: stands for a parser bug.
struct Panicky;
struct PanickySession;

impl crate::protocol::Protocol for Panicky {
    fn name(&self) -> &'static str {
        "panicky"
    }
    fn detect(&self, first: &[u8], _: &crate::protocol::Hint) -> crate::protocol::Detect {
        if first.starts_with(b"BOOM") {
            crate::protocol::Detect::Bytes
        } else {
            crate::protocol::Detect::No
        }
    }
    fn session(&self) -> Box<dyn crate::protocol::Session> {
        Box::new(PanickySession)
    }
}

impl crate::protocol::Session for PanickySession {
    fn start(&mut self, _: Direction, _: bool, _: &mut crate::protocol::Ctx) {}
    fn data(&mut self, _: Direction, c: crate::protocol::Chunk, _: &mut crate::protocol::Ctx) {
        if c.bytes.ends_with(b"panic") {
            panic!("a parser bug");
        }
    }
    fn gap(&mut self, _: Direction, _: u64, _: u64, _: &mut crate::protocol::Ctx) {}
    fn settle(&mut self, _: &mut crate::protocol::Ctx) {}
    fn end(&mut self, _: crate::protocol::EndReason, _: &mut crate::protocol::Ctx) {
        panic!("a bug at the end too");
    }
    fn buffered(&self, _: Direction) -> usize {
        0
    }
}

static WITH_PANICKY: &[&dyn crate::protocol::Protocol] =
    &[&crate::protocol::http1::Http1, &Panicky];

#[test]
fn a_panicking_parser_loses_its_connection_not_the_tracker() {
    let mut t = Tracker::with_protocols(TrackerConfig::default(), WITH_PANICKY);
    let mut out = Vec::new();
    let bad = Script::new(70)
        .open(Role::Client)
        .send(E, b"BOOM panic")
        .events;
    let good = Script::new(71)
        .open(Role::Client)
        .send(E, &req("/ok"))
        .send(I, &resp("fine"))
        .close()
        .events;
    for e in bad.iter().chain(&good) {
        t.on_event(e, &mut out);
    }
    assert_eq!(t.stats().parser_panics, 1, "the data event's panic");
    assert_eq!(t.active(), 0, "the panicking connection's state is gone");
    let tx = txns(&out);
    assert_eq!(tx.len(), 1);
    assert_eq!(
        (tx[0].path.as_deref(), tx[0].status),
        (Some("/ok"), Some(200))
    );
    // a panic while ending a connection is contained and counted too
    let mut t = Tracker::with_protocols(TrackerConfig::default(), WITH_PANICKY);
    for e in Script::new(72)
        .open(Role::Client)
        .send(E, b"BOOM quiet")
        .events
    {
        t.on_event(&e, &mut out);
    }
    assert_eq!(t.stats().parser_panics, 0);
    t.flush_all(&mut out); // the session panics in end
    assert_eq!(t.stats().parser_panics, 1);
}

#[test]
fn detection_takes_the_surest_protocol_and_falls_back_to_the_first() {
    use crate::protocol::{detect, Hint};
    let hint = Hint {
        dir: E,
        role: Role::Unknown,
        local_port: Some(40000),
        remote_port: Some(5432),
    };
    assert_eq!(
        detect(WITH_PANICKY, b"BOOM", &hint).map(|p| p.name()),
        Some("panicky")
    );
    assert_eq!(
        detect(WITH_PANICKY, b"GET / HTTP/1.1\r\n", &hint).map(|p| p.name()),
        Some("http1")
    );
    assert_eq!(
        detect(WITH_PANICKY, b"\x00\x01binary", &hint).map(|p| p.name()),
        Some("http1"),
        "fallback"
    );
    let port80 = Hint {
        remote_port: Some(80),
        ..hint
    };
    assert_eq!(
        crate::protocol::http1::Http1.detect(b"\x00", &port80),
        crate::protocol::Detect::Port
    );
    assert!(detect(&[], b"GET", &hint).is_none());
}

#[test]
fn a_head_cut_short_by_close_gives_an_incomplete_record() {
    // a slowloris: request line and one header, then the client gives up
    let s = Script::new(80)
        .open(Role::Server)
        .send(
            I,
            b"GET /slow?token=t HTTP/1.1\r\nHost: h\r\nX-Api-Key: k\r\nX-Pa",
        )
        .close();
    let mut cfg = TrackerConfig::default();
    cfg.headers = true;
    let (recs, st) = run_cfg(cfg, &s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 1, "{recs:?}");
    let r = &t[0];
    assert!(r.incomplete && r.no_response && !r.gap);
    assert_eq!(r.method.as_deref(), Some("GET"));
    assert_eq!(r.target.as_deref(), Some("/slow?token=[REDACTED]"));
    assert_eq!(r.host.as_deref(), Some("h"));
    assert_eq!(r.http_version, Some("1.1"));
    assert_eq!(r.req_header_count, Some(2));
    assert_eq!(r.req_header_bytes, Some(55));
    assert_eq!(r.req_body_bytes, Some(0));
    assert_eq!(
        r.req_headers.as_ref().unwrap()[1],
        ("X-Api-Key".to_string(), "[REDACTED]".to_string())
    );
    assert_eq!(st.incomplete_requests, 1);
    assert_eq!(st.unanswered_requests, 0);
    assert!(json(&recs)[0].contains(r#""upgraded":false,"incomplete":true"#));
}

#[test]
fn a_request_line_cut_short_gives_an_incomplete_record_without_method() {
    let s = Script::new(81)
        .open(Role::Server)
        .send(I, b"POST /upl")
        .close();
    let (recs, st) = run(&s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 1, "{recs:?}");
    assert!(t[0].incomplete);
    assert_eq!(t[0].method, None);
    assert_eq!(t[0].target, None);
    assert_eq!(t[0].req_header_bytes, Some(9));
    assert_eq!(st.incomplete_requests, 1);
}

#[test]
fn a_body_cut_short_by_close_gives_an_incomplete_record() {
    let s = Script::new(82)
        .open(Role::Server)
        .send(
            I,
            b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n0123456789",
        )
        .close();
    let (recs, st) = run(&s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 1, "{recs:?}");
    assert!(t[0].incomplete && t[0].no_response);
    assert_eq!(t[0].method.as_deref(), Some("POST"));
    assert_eq!(t[0].req_body_bytes, Some(10));
    assert_eq!(st.incomplete_requests, 1);
}

#[test]
fn a_connection_closed_without_bytes_or_with_non_http_is_no_request() {
    let empty = Script::new(83).open(Role::Server).close();
    let (recs, st) = run(&empty.events);
    assert!(recs.is_empty(), "{recs:?}");
    assert_eq!(st.incomplete_requests, 0);
    let junk = Script::new(84)
        .open(Role::Server)
        .send(I, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        .close();
    let (recs, st) = run(&junk.events);
    assert!(txns(&recs).iter().all(|t| !t.incomplete), "{recs:?}");
    assert_eq!(st.incomplete_requests, 0);
}

#[test]
fn a_complete_exchange_is_not_incomplete_and_writes_no_field() {
    let s = Script::new(85)
        .open(Role::Client)
        .send(E, &req("/ok"))
        .send(I, &resp("fine"))
        .close();
    let (recs, st) = run(&s.events);
    assert_eq!(st.incomplete_requests, 0);
    assert!(!json(&recs)[0].contains("incomplete"));
}

#[test]
fn incomplete_heads_of_many_connections_are_bounded_by_the_table() {
    // 2,000 half-sent heads: one record each once they end, memory held
    // only in each connection's (capped) buffer, the table capped
    let mut cfg = TrackerConfig::default();
    cfg.max_conns = 100;
    let mut t = Tracker::new(cfg);
    let mut out = Vec::new();
    for n in 0..2000 {
        let s = Script::new(1000 + n)
            .open(Role::Server)
            .send(I, b"GET / HTTP/1.1\r\nHost: h\r\n");
        for e in &s.events {
            t.on_event(e, &mut out);
        }
    }
    assert!(t.stats().conns_active <= 100);
    t.flush_all(&mut out);
    let st = t.stats();
    assert_eq!(st.incomplete_requests, 2000);
    assert_eq!(txns(&out).iter().filter(|t| t.incomplete).count(), 2000);
}

/// Found by the `ringbuf_records` fuzz target: a close record whose final
/// positions are far past what was seen (a bogus or corrupt record) gave
/// gaps of nearly 2^64 bytes in each direction, and summing them into
/// `gap_bytes` overflowed (a panic with overflow checks, a wrapped counter
/// without). The counter saturates.
#[test]
fn fuzz_ringbuf_records_huge_close_positions_do_not_overflow_gap_bytes() {
    let c = cid(1);
    let events = [
        open(c, Role::Client, 1),
        data_ev(c, E, 0, 2, 5, b"GET /"),
        data_ev(c, I, 0, 3, 5, b"HTTP/"),
        close_ev(c, 4, u64::MAX, u64::MAX),
    ];
    let (recs, st) = run(&events);
    assert_eq!(st.gaps, 2);
    assert_eq!(st.gap_bytes, u64::MAX);
    assert_eq!(st.records_emitted as usize, recs.len());
}

#[test]
fn connections_without_records_are_counted_by_what_they_carried() {
    let conn = |n: u64, req: &[u8], resp: &[u8]| {
        Script::new(n)
            .open(Role::Client)
            .send(E, req)
            .send(I, resp)
            .close()
            .events
    };
    let mut evs = Vec::new();
    // a TLS handshake (HTTPS), twice
    evs.extend(conn(
        31,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"\x16\x03\x03\x00\x7a\x02",
    ));
    evs.extend(conn(
        32,
        b"\x16\x03\x01\x00\x10hello",
        b"\x15\x03\x03\x00\x02\x02\x28",
    ));
    // h2c with prior knowledge: the preface, then frames
    evs.extend(conn(
        33,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00",
        b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x80",
    ));
    // the server end of HTTPS under the syscall hooks: nginx peeks one
    // byte first, too little to judge; the next event decides
    evs.extend(
        Script::new(37)
            .open(Role::Server)
            .send(I, b"\x16")
            .send(I, b"\x16\x03\x01\x02\x00\x01")
            .send(E, b"\x16\x03\x03\x00\x7a\x02")
            .close()
            .events,
    );
    // a binary protocol nothing recognises
    evs.extend(conn(34, b"\x00\x01\x02binary", b"\x03\x04"));
    // HTTP/1.1 gives its record and is not counted
    evs.extend(conn(
        35,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ));
    // an HTTP/1.1 request whose response never came still gives a record
    evs.extend(
        Script::new(36)
            .open(Role::Client)
            .send(E, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .close()
            .events,
    );
    let (recs, st) = run(&evs);
    let t = txns(&recs);
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(t.iter().all(|t| t.method.as_deref() == Some("GET")));
    // h2c is parsed (protocol http2): a preface and SETTINGS alone make no
    // record, and are no blind spot either
    assert_eq!((st.blind_tls, st.blind_unknown), (3, 1));
    // only the unknown protocol and the peeked TLS went to the HTTP/1
    // fallback (one unparseable start per direction): the others got no
    // session
    assert_eq!(st.unparseable, 4);
}

#[test]
fn unparsed_protocols_by_their_first_bytes() {
    use crate::protocol::{detect, Blind, Hint};
    let hint = Hint {
        dir: E,
        role: Role::Client,
        local_port: Some(40000),
        remote_port: Some(80),
    };
    let of = |b: &[u8]| Blind::of(crate::protocol::REGISTRY, b, &hint);
    assert_eq!(of(b"\x16\x03\x01\x00\x05"), Some(Blind::Tls));
    // mid-stream: application data
    assert_eq!(of(b"\x17\x03\x03\x00\x20"), Some(Blind::Tls));
    // h2c has a parser
    assert_eq!(of(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), None);
    // port 80 alone does not make bytes HTTP/1
    assert_eq!(of(b"\x00\x00binary"), Some(Blind::Unknown));
    assert_eq!(of(b"GET / HTTP/1.1\r\n"), None);
    assert_eq!(of(b"HTTP/1.1 200 OK\r\n"), None);
    assert_eq!(of(b""), None);
    // detection gives TLS no session, even on an HTTP port; h2c its own
    assert!(detect(crate::protocol::REGISTRY, b"\x16\x03\x01", &hint).is_none());
    let h2 = detect(
        crate::protocol::REGISTRY,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        &hint,
    );
    assert_eq!(h2.map(|p| p.name()), Some(crate::record::HTTP2));
}

/// Every gapped record says why (`gap_cause`), from what the tracker saw:
/// a position jump is a kernel drop, framing past the capture cap is the
/// cap, a connection older than the probe is mid-stream; the summary
/// counts records per cause.
#[test]
fn gap_cause_follows_the_evidence() {
    use crate::record::GapCauses as G;
    let causes = |t: &Transaction| t.gap_cause.names().collect::<Vec<_>>();

    // records lost in the kernel: the second request's events never came
    let s = Script::new(1)
        .open(Role::Client)
        .send(E, &req("/a"))
        .send(I, &resp("x"))
        .lose(E, req("/b").len() as u64)
        .lose(I, resp("y").len() as u64)
        .send(E, &req("/c"))
        .send(I, &resp("z"))
        .close();
    let (recs, st) = run(&s.events);
    let t = txns(&recs);
    assert!(t.iter().all(|t| t.gap != t.gap_cause.is_empty()), "{t:#?}");
    let gapped: Vec<_> = t.iter().filter(|t| t.gap).collect();
    assert!(!gapped.is_empty(), "{t:#?}");
    for g in &gapped {
        assert_eq!(causes(g), ["ring_buffer_drop"], "{g:#?}");
    }
    assert_eq!(st.gap_ring_buffer_drop, gapped.len() as u64);
    assert_eq!(st.gap_capture_cap, 0);

    // two pipelined requests in one write, the second past the cap of 40
    let two = [req("/a"), req("/b")].concat();
    let s = Script::new(2)
        .open(Role::Client)
        .send_trunc(E, &two[..40], two.len() as u32)
        .send(I, &[resp("1"), resp("2")].concat())
        .close();
    let (recs, st) = run(&s.events);
    let t = txns(&recs);
    let gapped: Vec<_> = t.iter().filter(|t| t.gap).collect();
    assert!(!gapped.is_empty(), "{t:#?}");
    for g in &gapped {
        assert!(g.gap_cause.contains(G::CAPTURE_CAP), "{g:#?}");
        assert!(!g.gap_cause.contains(G::RING_BUFFER_DROP), "{g:#?}");
    }
    assert!(
        st.gap_capture_cap > 0 && st.gap_ring_buffer_drop == 0,
        "{st:?}"
    );

    // a connection older than the probe: the response's request was sent
    // before it started
    let mut s = Script::new(3);
    s.pos = [500, 700];
    let s = s
        .send(I, &resp("late"))
        .send(E, &req("/next"))
        .send(I, &resp("n"));
    let (recs, _) = run(&s.events);
    let t = txns(&recs);
    let orphan = t
        .iter()
        .find(|t| t.method.is_none())
        .expect("orphan response");
    assert!(orphan.gap, "{orphan:#?}");
    assert_eq!(causes(orphan), ["midstream"], "{orphan:#?}");
    let next = t
        .iter()
        .find(|t| t.path.as_deref() == Some("/next"))
        .unwrap();
    assert!(!next.gap && next.gap_cause.is_empty(), "{next:#?}");

    // a connection seen from its start whose first bytes are a response:
    // its request never came and no position shows a loss (a TLS call the
    // uprobes could not tie to the connection): not_seen, never empty
    let s = Script::new(4)
        .open(Role::Client)
        .send(I, &resp("unasked"))
        .send(E, &req("/next"))
        .send(I, &resp("n"))
        .close();
    let (recs, st) = run(&s.events);
    let t = txns(&recs);
    let orphan = t
        .iter()
        .find(|t| t.method.is_none())
        .expect("orphan response");
    assert_eq!(causes(orphan), ["not_seen"], "{orphan:#?}");
    assert_eq!(st.gap_not_seen, 1, "{st:?}");
    let next = t
        .iter()
        .find(|t| t.path.as_deref() == Some("/next"))
        .unwrap();
    assert!(!next.gap && next.gap_cause.is_empty(), "{next:#?}");
}

/// The records the kernel makes of one plain-buffer syscall that moved
/// `b`: the first `cap` bytes, then further records (`OSPREY_F_CONT`) of
/// up to `per` bytes until `budget` bytes are copied; the last record
/// counts the rest uncaptured (records.bpf.h, emit_more).
#[allow(clippy::too_many_arguments)]
fn kernel_records(
    conn: ConnId,
    dir: Direction,
    pos: u64,
    ts: u64,
    b: &[u8],
    cap: usize,
    per: usize,
    budget: usize,
) -> Vec<Event> {
    let end = budget.max(cap).min(b.len());
    let mut out = Vec::new();
    let mut o = 0;
    let mut first = true;
    while o < b.len() {
        let n = if first { cap } else { per }.min(end.saturating_sub(o));
        let moved = if o + n >= end { b.len() - o } else { n };
        out.push(data_ev(
            conn,
            dir,
            pos + o as u64,
            ts,
            moved as u32,
            &b[o..o + n],
        ));
        o += moved;
        first = false;
    }
    out
}

/// One read holding a chunked response (a 70,000-byte chunk, then 1,008)
/// and the head of a second response behind it, as the kernel copies it
/// now: whatever the first record's size, the chunk-size lines and the
/// second head lie in further records and frame exactly; with a budget
/// that ends before them, the record says `gap`, cause the capture cap.
#[test]
fn further_records_of_one_syscall_frame_what_lies_past_the_cap() {
    let mut read = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    read.extend(format!("{:x}\r\n", 70_000).as_bytes());
    read.extend(vec![b'c'; 70_000]);
    read.extend(format!("\r\n{:x}\r\n", 1008).as_bytes());
    read.extend(vec![b'd'; 1008]);
    read.extend(b"\r\n0\r\n\r\n");
    read.extend(resp("tail"));
    for cap in [64, 100, 4096, 4099, 16384] {
        for (budget, exact) in [(256 * 1024, true), (read.len(), true), (60_000, false)] {
            let mut s = Script::new(40)
                .open(Role::Client)
                .send(E, &req("/c"))
                .send(E, &req("/t"));
            let ts = s.tick();
            s.events
                .extend(kernel_records(s.conn, I, 0, ts, &read, cap, 16384, budget));
            s.pos[I.index()] += read.len() as u64;
            let (recs, _) = run(&s.close().events);
            let t = txns(&recs);
            assert_eq!(t.len(), 2, "cap {cap} budget {budget}: {t:#?}");
            if exact {
                let got: Vec<_> = t
                    .iter()
                    .map(|t| (t.status, t.resp_body_bytes, t.gap))
                    .collect();
                assert_eq!(
                    got,
                    [
                        (Some(200), Some(71_008), false),
                        (Some(200), Some(4), false)
                    ],
                    "cap {cap} budget {budget}"
                );
            } else {
                assert!(t.iter().any(|t| t.gap), "cap {cap} budget {budget}: {t:#?}");
                for t in t.iter().filter(|t| t.gap) {
                    let j = serde_json::to_string(t).unwrap();
                    assert!(j.contains("capture_cap"), "{j}");
                    assert!(!j.contains("ring_buffer_drop"), "{j}");
                }
            }
        }
    }
}

// ---- TLS plaintext (uprobes): the socket's conn id, its own stream --------

/// A data event of TLS plaintext (an OpenSSL call) on `conn`.
fn tls_ev(conn: ConnId, dir: Direction, pos: u64, ts: u64, payload: &[u8]) -> Event {
    let mut e = data_ev(conn, dir, pos, ts, payload.len() as u32, payload);
    if let Event::Data(d) = &mut e {
        d.syscall = if dir == Direction::Egress {
            Syscall::OpensslWrite
        } else {
            Syscall::OpensslReadEx
        };
    }
    e
}

#[test]
fn tls_plaintext_gives_the_records_and_the_ciphertext_is_counted_not_parsed() {
    let c = cid(1);
    let req = b"GET /secret HTTP/1.1\r\nHost: h\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    let hello = b"\x16\x03\x01\x00\x30 client hello and more bytes";
    let mut ev = vec![
        open(c, Role::Client, 1_000),
        // the handshake: ciphertext, before any plaintext
        data_ev(c, Direction::Egress, 0, 2_000, hello.len() as u32, hello),
        data_ev(
            c,
            Direction::Ingress,
            0,
            3_000,
            90,
            &[0x16, 0x03, 0x03, 0, 85],
        ),
        // SSL_write: its ciphertext first (the syscall inside), then the plaintext
        data_ev(
            c,
            Direction::Egress,
            hello.len() as u64,
            4_000,
            60,
            &[0x17, 0x03, 0x03, 0, 55],
        ),
        tls_ev(c, Direction::Egress, 0, 4_100, req),
        data_ev(
            c,
            Direction::Ingress,
            90,
            5_000,
            80,
            &[0x17, 0x03, 0x03, 0, 75],
        ),
        tls_ev(c, Direction::Ingress, 0, 5_100, resp),
    ];
    // the close record's positions are the ciphertext's: not the plaintext's
    ev.push(close_ev(c, 6_000, hello.len() as u64 + 60, 170));
    let (recs, st) = run(&ev);
    let t = txns(&recs);
    assert_eq!(t.len(), 1, "{recs:?}");
    assert_eq!(t[0].target.as_deref(), Some("/secret"));
    assert_eq!(t[0].status, Some(200));
    assert_eq!(t[0].resp_body_bytes, Some(5));
    assert!(!t[0].gap, "{:?}", t[0]);
    assert!(t[0].conn.tls);
    assert_eq!(t[0].conn.tls_library, Some("openssl"));
    assert_eq!(t[0].conn.local_port, Some(40000));
    assert_eq!(st.tls_conns, 1);
    // counted from the first plaintext on (the handshake before it went to
    // no session: TLS is never parsed)
    assert_eq!((st.tls_ciphertext_events, st.tls_ciphertext_bytes), (1, 80));
    // not blind: it gave a record
    assert_eq!(st.blind_tls, 0);
    assert_eq!(st.gaps, 0);
}

#[test]
fn a_connection_without_plaintext_stays_plain_and_blind_tls_is_counted() {
    let c = cid(2);
    let hello = b"\x16\x03\x01\x00\x30 client hello";
    let ev = vec![
        open(c, Role::Client, 1_000),
        data_ev(c, Direction::Egress, 0, 2_000, hello.len() as u32, hello),
        close_ev(c, 3_000, hello.len() as u64, 0),
    ];
    let (recs, st) = run(&ev);
    assert!(txns(&recs).is_empty());
    assert_eq!((st.tls_conns, st.blind_tls), (0, 1));
}

#[test]
fn plain_records_carry_no_tls_fields() {
    let s = Script::new(3)
        .open(Role::Client)
        .send(Direction::Egress, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .send(Direction::Ingress, b"HTTP/1.1 204 No Content\r\n\r\n")
        .close();
    let (recs, _) = run(&s.events);
    let t = txns(&recs);
    assert_eq!(t.len(), 1);
    assert!(!t[0].conn.tls && t[0].conn.tls_library.is_none());
    let line = serde_json::to_string(&Record::Transaction(Box::new(t[0].clone()))).unwrap();
    assert!(!line.contains("\"tls"), "{line}");
}

mod fault;
mod memo;
mod skip;
