// SPDX-License-Identifier: GPL-3.0-or-later
//! The JSON writer's memo of a connection's fields (`ConnInfo::set_memo`):
//! made and held only while the table is at or below
//! `COMPACT_EAGER_CONNS`; above it dropped at the connection's next event
//! or tick and not made, the lines the same bytes either way.

use super::*;
use crate::jsonline::{write_transaction_as, RecordFormat};

/// A request/response pair on `s`'s (server side) connection.
fn exchange(s: Script, path: &str) -> Script {
    s.send(I, &req(path)).send(E, &resp("hello"))
}

/// `t`'s line in both record formats.
fn lines(t: &Transaction) -> [String; 2] {
    [RecordFormat::Full, RecordFormat::Compact].map(|f| {
        let mut o = Vec::new();
        write_transaction_as(t, f, &mut o);
        String::from_utf8(o).unwrap()
    })
}

/// The transactions in `out`, which is emptied.
fn take(out: &mut Vec<Record>) -> Vec<Transaction> {
    let t = txns(out);
    out.clear();
    t
}

fn feed(t: &mut Tracker, events: &[Event], out: &mut Vec<Record>) {
    for e in events {
        t.on_event(e, out);
    }
}

/// The lines of `events`' transactions on a tracker of their connection
/// alone: every one through its memo.
fn alone(events: &[Event]) -> Vec<[String; 2]> {
    let mut t = Tracker::new(TrackerConfig::default());
    let mut out = Vec::new();
    feed(&mut t, events, &mut out);
    let txns = take(&mut out);
    assert!(txns.iter().all(|x| x.conn.blocks.is_some()));
    txns.iter().map(lines).collect()
}

fn held(t: &Tracker, n: u64) -> bool {
    t.conns.get(&cid(n)).expect("tracked").info.has_memo()
}

fn memos_held(t: &Tracker) -> usize {
    t.conns.values().filter(|c| c.info.has_memo()).count()
}

/// Connections 0 and 1, each with a transaction through its memo, then
/// the table filled to `COMPACT_EAGER_CONNS` (others opened, silent):
/// connection 0's next transaction still has one; then one connection
/// more. Returns the tracker, the lines so far of connections 0 and 1,
/// and their scripts (events not yet fed past `fed`).
struct Past {
    t: Tracker,
    out: Vec<Record>,
    s: [Script; 2],
    fed: [usize; 2],
    got: [Vec<[String; 2]>; 2],
}

const OTHERS: std::ops::Range<u64> = 100..100 + COMPACT_EAGER_CONNS as u64 - 1;

fn past_the_threshold() -> Past {
    let s0 = exchange(Script::new(0).open(Role::Server), "/a");
    let a0 = s0.events.len();
    let s0 = exchange(s0, "/b");
    let b0 = s0.events.len();
    let s1 = exchange(Script::new(1).open(Role::Server), "/x");
    let a1 = s1.events.len();
    let mut t = Tracker::new(TrackerConfig::default());
    let mut out = Vec::new();
    let mut got: [Vec<[String; 2]>; 2] = Default::default();
    feed(&mut t, &s0.events[..a0], &mut out);
    feed(&mut t, &s1.events[..a1], &mut out);
    for x in take(&mut out) {
        assert!(x.conn.blocks.is_some());
        got[(*x.conn.conn_id == *cid(1).to_string()) as usize].push(lines(&x));
    }
    assert!(held(&t, 0) && held(&t, 1));
    // at the threshold: still memos
    for n in OTHERS.start..OTHERS.end - 1 {
        t.on_event(&open(cid(n), Role::Server, 1_000_000), &mut out);
    }
    assert_eq!(t.active(), COMPACT_EAGER_CONNS);
    feed(&mut t, &s0.events[a0..b0], &mut out);
    let x = take(&mut out);
    assert_eq!(x.len(), 1);
    assert!(x[0].conn.blocks.is_some() && held(&t, 0));
    got[0].push(lines(&x[0]));
    // one more: past it
    t.on_event(
        &open(cid(OTHERS.end - 1), Role::Server, 1_000_000),
        &mut out,
    );
    assert_eq!(t.active(), COMPACT_EAGER_CONNS + 1);
    assert!(
        held(&t, 0) && held(&t, 1),
        "held until their next event or tick"
    );
    assert!(out.is_empty());
    Past {
        t,
        out,
        s: [s0, s1],
        fed: [b0, a1],
        got,
    }
}

#[test]
fn above_the_eager_threshold_no_memo_is_made_or_held_and_lines_are_the_same() {
    let mut p = past_the_threshold();
    let s0 = exchange(std::mem::replace(&mut p.s[0], Script::new(0)), "/c");
    // connection 0's next events drop its memo; its record has none
    for e in &s0.events[p.fed[0]..] {
        p.t.on_event(e, &mut p.out);
        assert!(!held(&p.t, 0));
    }
    let x = take(&mut p.out);
    assert_eq!(x.len(), 1);
    assert!(!x[0].conn.blocks.is_some());
    p.got[0].push(lines(&x[0]));
    // connection 1's goes with the next tick
    assert!(held(&p.t, 1));
    p.t.expire(2_000_000, &mut p.out);
    assert_eq!(p.t.active(), COMPACT_EAGER_CONNS + 1, "none expired");
    assert_eq!(memos_held(&p.t), 0);
    let s1 = exchange(std::mem::replace(&mut p.s[1], Script::new(1)), "/y");
    feed(&mut p.t, &s1.events[p.fed[1]..], &mut p.out);
    // and a connection first seen now, and a silent one's first: none
    let s2 = exchange(Script::new(5000), "/new");
    feed(&mut p.t, &s2.events, &mut p.out);
    let s3 = exchange(
        Script {
            conn: cid(OTHERS.start),
            ..Script::new(0)
        },
        "/o",
    );
    feed(&mut p.t, &s3.events, &mut p.out);
    let x = take(&mut p.out);
    assert_eq!(x.len(), 3);
    assert!(x.iter().all(|x| !x.conn.blocks.is_some()));
    assert_eq!(memos_held(&p.t), 0);
    p.got[1].push(lines(&x[0]));
    // the same bytes as through a memo, both formats
    assert_eq!(p.got[0], alone(&s0.events));
    assert_eq!(p.got[1], alone(&s1.events));
    assert_eq!(lines(&x[1]), alone(&s2.events)[0]);
    let opened = [
        vec![open(cid(OTHERS.start), Role::Server, 1_000_000)],
        s3.events,
    ]
    .concat();
    assert_eq!(lines(&x[2]), alone(&opened)[0]);
    assert!(p.out.is_empty());
}

#[test]
fn back_at_the_eager_threshold_memos_are_made_again() {
    let mut p = past_the_threshold();
    // connection 0 loses its memo past the threshold
    let s0 = exchange(std::mem::replace(&mut p.s[0], Script::new(0)), "/c");
    let c0 = s0.events.len();
    feed(&mut p.t, &s0.events[p.fed[0]..], &mut p.out);
    assert!(!held(&p.t, 0));
    let x = take(&mut p.out);
    assert!(!x[0].conn.blocks.is_some());
    p.got[0].push(lines(&x[0]));
    // the silent ones close: back to the threshold (and below)
    for n in OTHERS.start..OTHERS.start + 1 {
        p.t.on_event(&close_ev(cid(n), 2_000_000, 0, 0), &mut p.out);
    }
    assert_eq!(p.t.active(), COMPACT_EAGER_CONNS);
    let s0 = exchange(s0, "/d");
    feed(&mut p.t, &s0.events[c0..], &mut p.out);
    assert!(held(&p.t, 0), "made again at the threshold");
    let x = take(&mut p.out);
    assert_eq!(x.len(), 1);
    assert!(x[0].conn.blocks.is_some());
    p.got[0].push(lines(&x[0]));
    // connection 1's, held from before, still there (no event since)
    assert!(held(&p.t, 1));
    for n in OTHERS.start + 1..OTHERS.end {
        p.t.on_event(&close_ev(cid(n), 2_000_000, 0, 0), &mut p.out);
    }
    assert_eq!(p.t.active(), 2);
    let s1 = exchange(std::mem::replace(&mut p.s[1], Script::new(1)), "/y");
    feed(&mut p.t, &s1.events[p.fed[1]..], &mut p.out);
    let x = take(&mut p.out);
    assert_eq!(x.len(), 1);
    assert!(x[0].conn.blocks.is_some());
    p.got[1].push(lines(&x[0]));
    assert_eq!(memos_held(&p.t), 2);
    assert_eq!(p.got[0], alone(&s0.events));
    assert_eq!(p.got[1], alone(&s1.events));
}
