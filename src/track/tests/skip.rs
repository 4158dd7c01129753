// SPDX-License-Identifier: GPL-3.0-or-later
//! Body skips (`crate::skip`) through the tracker: the kernel simulated
//! read by read, consulting the hint table the tracker writes as it goes.

use super::*;
use crate::skip::SkipHints;

/// The ingress stream `b` of `s`'s connection read `read` bytes at a time
/// by a simulated kernel: each read first counts (no payload) what the
/// hint table says is body, then copies the rest as emit_data does
/// (`cap`, further records of 16 KiB up to `budget`). The tracker takes
/// each read's records before the next read happens, as when the reader
/// keeps up.
fn read_through(
    t: &mut Tracker,
    hints: &SkipHints,
    s: &mut Script,
    b: &[u8],
    read: usize,
    out: &mut Vec<Record>,
) -> u64 {
    let mut skipped = 0;
    let mut o = 0;
    while o < b.len() {
        let n = read.min(b.len() - o);
        let pos = s.pos[I.index()];
        let ts = s.tick();
        let k = hints.skip_ahead(&s.conn, I, pos, n as u64) as usize;
        if k > 0 {
            t.on_event(&data_ev(s.conn, I, pos, ts, k as u32, &[]), out);
            skipped += k as u64;
        }
        if k < n {
            for e in kernel_records(
                s.conn,
                I,
                pos + k as u64,
                ts,
                &b[o + k..o + n],
                4096,
                16384,
                65536,
            ) {
                t.on_event(&e, out);
            }
        }
        s.pos[I.index()] += n as u64;
        o += n;
    }
    skipped
}

/// A 1,000,000-byte body of known length, then the next response's head,
/// read 300,000 bytes at a time: the head lies ~100 KB into the fourth
/// read, past a 64 KiB copy budget. With hints the kernel counts the body
/// and copies from the head on: both records exact. Without, the second
/// response is lost to the cap (gap, named).
#[test]
fn a_hinted_body_is_counted_and_the_head_after_it_is_copied() {
    let mut stream = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".to_vec();
    stream.extend(vec![b'x'; 1_000_000]);
    stream.extend(resp("tail"));
    for hinted in [true, false] {
        let hints = SkipHints::new();
        hints.attach_heap();
        let cfg = TrackerConfig {
            body_skip: hinted.then(|| hints.clone()),
            ..TrackerConfig::default()
        };
        let mut t = Tracker::new(cfg);
        let mut out = Vec::new();
        let mut s = Script::new(70)
            .open(Role::Client)
            .send(E, &req("/big"))
            .send(E, &req("/next"));
        for e in std::mem::take(&mut s.events) {
            t.on_event(&e, &mut out);
        }
        let skipped = read_through(&mut t, &hints, &mut s, &stream, 300_000, &mut out);
        for e in s.close().events {
            t.on_event(&e, &mut out);
        }
        t.flush_all(&mut out);
        let got: Vec<_> = txns(&out)
            .iter()
            .map(|t| {
                (
                    t.path.as_deref().unwrap().to_string(),
                    t.status,
                    t.resp_body_bytes,
                    t.gap,
                )
            })
            .collect();
        if hinted {
            assert_eq!(
                got,
                [
                    ("/big".to_string(), Some(200), Some(1_000_000), false),
                    ("/next".to_string(), Some(200), Some(4), false)
                ]
            );
            assert_eq!(t.stats().body_skips, 1);
            // the body from the second read on: all of it past the first
            // read's 300,000 bytes, up to its end
            assert_eq!(skipped, 1_000_000 + 44 - 300_000);
        } else {
            assert_eq!(skipped, 0);
            assert_eq!(t.stats().body_skips, 0);
            assert_eq!(
                got[0],
                ("/big".to_string(), Some(200), Some(1_000_000), false)
            );
            let next = &txns(&out)[1];
            assert!(next.gap && next.status.is_none(), "{next:#?}");
            assert_eq!(next.gap_cause.names().collect::<Vec<_>>(), ["capture_cap"]);
        }
    }
}

/// Short bodies, TLS plaintext, and bodies already seen give no hint.
#[test]
fn no_hint_for_short_bodies() {
    let hints = SkipHints::new();
    hints.attach_heap();
    let cfg = TrackerConfig {
        body_skip: Some(hints.clone()),
        ..TrackerConfig::default()
    };
    // a 60,000-byte body (under MIN_SKIP), and a 200,000-byte one that
    // arrives with its head in one read
    let mut big = b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n".to_vec();
    big.extend(vec![b'y'; 200_000]);
    let mut short = b"HTTP/1.1 200 OK\r\nContent-Length: 60000\r\n\r\n".to_vec();
    short.extend(vec![b'z'; 60_000]);
    let s = Script::new(71)
        .open(Role::Client)
        .send(E, &req("/s"))
        .send_trunc(I, &short[..4096], short.len() as u32)
        .send(E, &req("/b"))
        .send_trunc(I, &big[..4096], big.len() as u32)
        .close();
    let (recs, stats) = run_cfg(cfg, &s.events);
    assert_eq!(stats.body_skips, 0);
    assert_eq!(hints.written.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(txns(&recs).len(), 2);
}
