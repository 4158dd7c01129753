// SPDX-License-Identifier: GPL-3.0-or-later
//! The HTTP/1.1 upgrade to h2c (RFC 7540 §3.2) through the tracker: a
//! recorded exchange (curl 7.88 `--http2` against tests/h2c/server.py: a
//! POST /echo with an 11-byte body as the upgrade request, then GET
//! /small and GET /nope as streams 3 and 5), fed whole, split anywhere,
//! a byte at a time, from both sides.

use crate::event::{
    CloseEvent, ConnId, ConnOpen, DataEvent, Direction, Event, ProcInfo, Role, SockAddrs, Syscall,
};
use crate::record::{Record, Transaction};
use crate::track::{Tracker, TrackerConfig, TrackerStats};

/// The recorded exchange: (client sent?, bytes) in the order they moved.
fn recorded() -> Vec<(bool, Vec<u8>)> {
    include_str!("testdata/h2c_upgrade.hex")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (who, hex) = l.split_once(' ').unwrap();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (who == "C", bytes)
        })
        .collect()
}

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

/// Events of `segs` (client sent?, bytes) seen from `role`, the first
/// `cap` bytes of each the server sent captured.
fn events(role: Role, segs: &[(bool, Vec<u8>)], cap: usize) -> Vec<Event> {
    let mut ts = 1_000_000u64;
    let mut pos = [0u64; 2];
    let mut ev = vec![Event::open(ConnOpen {
        ts_ns: ts,
        conn: cid(),
        proc: pinfo(),
        role,
        addrs: Some(SockAddrs {
            local: "127.0.0.1:40000".parse().unwrap(),
            remote: "127.0.0.1:8080".parse().unwrap(),
        }),
        midstream: false,
        syscall: Syscall::Connect,
        cgroup_id: 0,
        identity: None,
    })];
    for (client, b) in segs {
        if b.is_empty() {
            continue;
        }
        let d = match (role, client) {
            (Role::Server, true) | (Role::Client, false) => Direction::Ingress,
            _ => Direction::Egress,
        };
        ts += 1000;
        ev.push(Event::Data(DataEvent {
            ts_ns: ts,
            start_ns: 0,
            conn: cid(),
            proc: pinfo(),
            dir: d,
            pos: pos[d.index()],
            orig_len: b.len() as u32,
            payload: b[..if *client { b.len() } else { cap.min(b.len()) }].to_vec(),
            syscall: Syscall::Write,
            fault: false,
        }));
        pos[d.index()] += b.len() as u64;
    }
    ts += 1000;
    ev.push(Event::Close(CloseEvent {
        ts_ns: ts,
        conn: cid(),
        proc: pinfo(),
        tx_bytes: pos[0],
        rx_bytes: pos[1],
    }));
    ev
}

fn run(events: &[Event]) -> (Vec<Transaction>, TrackerStats) {
    let mut t = Tracker::new(TrackerConfig::default());
    let mut out = Vec::new();
    for e in events {
        t.on_event(e, &mut out);
    }
    t.flush_all(&mut out);
    let mut txns: Vec<Transaction> = out
        .into_iter()
        .filter_map(|r| match r {
            Record::Transaction(t) => Some(*t),
            Record::Message(_) => None,
        })
        .collect();
    txns.sort_by_key(|t| t.h2.as_ref().map(|h| h.stream_id));
    (txns, t.stats())
}

/// What a record must say, as one line.
fn key(t: &Transaction) -> String {
    let h2 = t.h2.as_ref().map(|h| (h.stream_id, h.end_stream));
    format!(
        "{} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} gap={} {:?}",
        t.protocol,
        h2,
        t.method,
        t.target,
        t.host,
        t.status,
        t.interim_status,
        t.req_body_bytes,
        t.resp_body_bytes,
        t.req_content_type,
        t.resp_content_type,
        t.gap,
        t.req_header_count,
    )
}

fn want() -> Vec<String> {
    let host = Some("127.0.0.1:18431".to_string());
    let txt = Some("text/plain".to_string());
    let form = Some("application/x-www-form-urlencoded".to_string());
    [
        // stream 1: the HTTP/1.1 request's 8 header fields
        (1, "POST", "/echo", 200, Some(101), 11, 12, form, 8),
        (3, "GET", "/small", 200, None, 0, 123, None, 6),
        (5, "GET", "/nope", 404, None, 0, 13, None, 6),
    ]
    .into_iter()
    .map(|(id, m, p, st, interim, qb, rb, qct, qhc)| {
        format!(
            "http2 {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} gap=false {:?}",
            Some((id, true)),
            Some(m),
            Some(p),
            host,
            Some(st as u16),
            interim.map(|s: u16| s),
            Some(qb as u64),
            Some(rb as u64),
            qct,
            txt,
            Some(qhc as u32),
        )
    })
    .collect()
}

fn check(role: Role, segs: &[(bool, Vec<u8>)], what: &str) {
    let (got, st) = run(&events(role, segs, usize::MAX));
    let got: Vec<String> = got.iter().map(key).collect();
    assert_eq!(got, want(), "{what} ({role:?}): {st:?}");
    assert_eq!((st.upgrades, st.h2c_upgrades), (1, 1), "{what}: {st:?}");
    assert_eq!(
        (
            st.unparseable,
            st.resyncs,
            st.hpack_errors,
            st.bytes_dropped
        ),
        (0, 0, 0, 0),
        "{what}: {st:?}"
    );
    assert_eq!(
        (st.unanswered_requests, st.orphan_responses),
        (0, 0),
        "{what}"
    );
}

/// `segs` with direction `client`'s bytes cut at `at` (of that
/// direction's whole stream) besides where they were cut.
fn cut(segs: &[(bool, Vec<u8>)], client: bool, at: usize) -> Vec<(bool, Vec<u8>)> {
    let mut out = Vec::new();
    let mut seen = 0;
    for (c, b) in segs {
        if *c == client && seen < at && at < seen + b.len() {
            let k = at - seen;
            out.push((*c, b[..k].to_vec()));
            out.push((*c, b[k..].to_vec()));
        } else {
            out.push((*c, b.clone()));
        }
        if *c == client {
            seen += b.len();
        }
    }
    out
}

/// Consecutive segments of one direction as one (reads that took several
/// writes at once).
fn coalesced(segs: &[(bool, Vec<u8>)]) -> Vec<(bool, Vec<u8>)> {
    let mut out: Vec<(bool, Vec<u8>)> = Vec::new();
    for (c, b) in segs {
        match out.last_mut() {
            Some((lc, lb)) if lc == c => lb.extend_from_slice(b),
            _ => out.push((*c, b.clone())),
        }
    }
    out
}

#[test]
fn recorded_upgrade_whole_from_both_sides() {
    let segs = recorded();
    for role in [Role::Client, Role::Server] {
        check(role, &segs, "as recorded");
        check(role, &coalesced(&segs), "coalesced");
    }
}

#[test]
fn recorded_upgrade_split_anywhere() {
    let segs = recorded();
    let len = |client: bool| -> usize {
        segs.iter()
            .filter(|(c, _)| *c == client)
            .map(|(_, b)| b.len())
            .sum()
    };
    let (nc, ns) = (len(true), len(false));
    for role in [Role::Client, Role::Server] {
        for a in 1..nc {
            let s = cut(&segs, true, a);
            check(role, &s, &format!("client cut at {a}"));
            // and the server's stream cut somewhere too
            let b = 1 + (a * 7) % (ns - 1);
            check(role, &cut(&s, false, b), &format!("cut at {a}/{b}"));
        }
        for b in 1..ns {
            check(role, &cut(&segs, false, b), &format!("server cut at {b}"));
            check(
                role,
                &cut(&coalesced(&segs), false, b),
                &format!("coalesced, server cut at {b}"),
            );
        }
    }
}

#[test]
fn recorded_upgrade_a_byte_at_a_time() {
    let segs = recorded();
    let bytes: Vec<(bool, Vec<u8>)> = segs
        .iter()
        .flat_map(|(c, b)| b.iter().map(move |x| (*c, vec![*x])))
        .collect();
    check(Role::Client, &bytes, "a byte at a time");
    check(Role::Server, &bytes, "a byte at a time");
}

#[test]
fn upgrade_with_the_frames_past_the_capture_cap() {
    // the 101 and the server's first frames in one read, captured only up
    // to the 101's head and the SETTINGS frame's header: the frames after
    // it are lost to the cap, the 101 is still seen and the connection
    // still switches
    let segs = coalesced(&recorded());
    let (got, st) = run(&events(Role::Client, &segs, 80));
    assert_eq!(st.h2c_upgrades, 1, "{st:?}");
    let s1 = got
        .iter()
        .find(|t| t.h2.as_ref().is_some_and(|h| h.stream_id == 1))
        .unwrap_or_else(|| panic!("{got:#?}"));
    assert_eq!(s1.method.as_deref(), Some("POST"));
    assert_eq!(s1.interim_status, Some(101));
    assert!(got.iter().all(|t| t.protocol == "http2"), "{got:#?}");
}

#[test]
fn a_websocket_upgrade_still_leaves_http() {
    let req = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let resp = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello";
    let segs = vec![(true, req.to_vec()), (false, resp.to_vec())];
    let (got, st) = run(&events(Role::Client, &segs, usize::MAX));
    assert_eq!((st.upgrades, st.h2c_upgrades), (1, 0));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].protocol, "http1");
    assert!(got[0].upgraded);
}

#[test]
fn h2c_asked_for_but_refused_stays_http1() {
    let req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let again = b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n";
    let segs = vec![
        (true, req.to_vec()),
        (false, resp.to_vec()),
        (true, again.to_vec()),
        (false, resp.to_vec()),
    ];
    let (got, st) = run(&events(Role::Client, &segs, usize::MAX));
    assert_eq!((st.upgrades, st.h2c_upgrades), (0, 0));
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got
        .iter()
        .all(|t| t.protocol == "http1" && t.status == Some(200)));
}

#[test]
fn http2_settings_header_is_base64url() {
    // curl's: MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 33554432,
    // ENABLE_PUSH 0
    let p = super::base64url("AAMAAABkAAQCAAAAAAIAAAAA").unwrap();
    assert_eq!(p, [0, 3, 0, 0, 0, 100, 0, 4, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0]);
    assert_eq!(super::base64url("AA=="), Some(vec![0]));
    assert_eq!(super::base64url("A*"), None);
}
