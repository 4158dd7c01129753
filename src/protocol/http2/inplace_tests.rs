// SPDX-License-Identifier: GPL-3.0-or-later
//! Frames read in place from a chunk against the same bytes taken through
//! the buffer (`input::BUFFERED_ONLY`, the way every step went before):
//! the same records to the byte, times included, and the same counters;
//! and a frame split at every offset across two records gives the records
//! of the unsplit stream.

use super::*;
use crate::protocol::http2::input::BUFFERED_ONLY;

/// The JSON lines and the counters of `events`, frames read in place
/// (`buffered_only` false) or every step through the buffer.
fn lines(events: &[Event], buffered_only: bool) -> (Vec<String>, TrackerStats) {
    BUFFERED_ONLY.with(|c| c.set(buffered_only));
    let (t, st) = run(events);
    BUFFERED_ONLY.with(|c| c.set(false));
    let l = t
        .iter()
        .map(|t| {
            let mut out = Vec::new();
            crate::jsonline::write_transaction(t, &mut out);
            String::from_utf8(out).unwrap()
        })
        .collect();
    (l, st)
}

/// In place and through the buffer agree on `events`; returns the lines.
fn same_both_ways(events: &[Event], what: &str) -> (Vec<String>, TrackerStats) {
    let inplace = lines(events, false);
    let buffered = lines(events, true);
    assert_eq!(inplace, buffered, "{what}");
    inplace
}

/// A record without its times (a split moves the second part later).
fn timeless(t: &Transaction) -> Transaction {
    let mut t = t.clone();
    (t.span.start_ns, t.span.end_ns) = (0, 0);
    (t.latency_ns, t.ttfb_ns) = (None, None);
    t
}

/// A gRPC call on stream 5: two request messages (one across two DATA
/// frames), a response message, trailers; then a PING and a
/// WINDOW_UPDATE, frames the session reads and ignores.
fn grpc_call(s: &mut Script) {
    let msg = |n: usize| {
        let mut v = vec![0u8];
        v.extend_from_slice(&(n as u32).to_be_bytes());
        v.extend(std::iter::repeat_n(b'm', n));
        v
    };
    let q = req_block(
        "POST",
        "/pkg.Svc/Call",
        &[("content-type", "application/grpc")],
    );
    let mut w = fr(HEADERS, FLAG_END_HEADERS, 5, &q);
    let (m1, m2) = (msg(20), msg(7));
    w.extend(fr(DATA, 0, 5, &m1[..11]));
    w.extend(fr(DATA, 0, 5, &m1[11..]));
    w.extend(fr(DATA, FLAG_END_STREAM, 5, &m2));
    w.extend(fr(PING, 0, 0, &[1; 8]));
    s.send(E, &w);
    let mut r = fr(
        HEADERS,
        FLAG_END_HEADERS,
        5,
        &resp_block("200", &[("content-type", "application/grpc")]),
    );
    r.extend(fr(DATA, 0, 5, &msg(33)));
    r.extend(fr(WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
    r.extend(fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        5,
        &lits(&[("grpc-status", "0")]),
    ));
    s.send(I, &r);
}

/// Each direction's bytes of [`interleaved`] and [`grpc_call`].
fn streams() -> [Vec<u8>; 2] {
    let mut s = interleaved();
    grpc_call(&mut s);
    let mut bytes = [Vec::new(), Vec::new()];
    for e in &s.close() {
        if let Event::Data(d) = e {
            bytes[d.dir.index()].extend_from_slice(&d.payload);
        }
    }
    bytes
}

#[test]
fn a_frame_split_at_every_offset_across_two_records() {
    let [q, r] = streams();
    let whole = |s: &mut Script| {
        s.send(E, &q).send(I, &r);
    };
    let mut s = Script::new(Role::Client, false);
    whole(&mut s);
    let (want, want_st) = run(&s.close());
    assert_eq!(want.len(), 3, "{want:?}");
    let want: Vec<Transaction> = want.iter().map(timeless).collect();
    let grpc = want[2].h2.as_ref().unwrap().grpc.as_ref().unwrap();
    assert_eq!((grpc.req_messages, grpc.resp_messages), (2, 1));
    // every offset of each direction: its bytes as two records, the other
    // direction's whole (the client's first record must hold "PRI ")
    for (d, bytes, from) in [(E, &q, 4), (I, &r, 1)] {
        for at in from..bytes.len() {
            let mut s = Script::new(Role::Client, false);
            if d == E {
                s.send(E, &q[..at]).send(E, &q[at..]).send(I, &r);
            } else {
                s.send(E, &q).send(I, &r[..at]).send(I, &r[at..]);
            }
            let ev = s.close();
            let what = format!("{d:?} split at {at}");
            let (_, mut st) = same_both_ways(&ev, &what);
            let (got, _) = run(&ev);
            let got: Vec<Transaction> = got.iter().map(timeless).collect();
            assert_eq!(got, want, "{what}");
            // the same counters, but for the one more event
            st.events -= 1;
            assert_eq!(st, want_st, "{what}");
        }
    }
}

#[test]
fn in_place_and_buffered_agree_on_splits_caps_losses_and_garbage() {
    let [q, r] = streams();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n.max(1) as u64) as usize
    };
    for round in 0..400 {
        let mut s = Script::new(Role::Client, false);
        for (d, bytes) in [(E, &q), (I, &r)] {
            let mut at = 0;
            let mut first = true;
            while at < bytes.len() {
                let n = if first && d == E {
                    4 + rnd(bytes.len())
                } else {
                    1 + rnd(80)
                };
                let n = n.min(bytes.len() - at);
                let mut chunk = bytes[at..at + n].to_vec();
                if round % 4 == 1 && !chunk.is_empty() && rnd(6) == 0 {
                    let i = rnd(chunk.len());
                    chunk[i] = rnd(256) as u8;
                }
                match (round % 4, rnd(8)) {
                    // the capture cap: part of the chunk moved uncaptured
                    (2, 0) => s.send_cap(d, &chunk, rnd(n)),
                    // bytes lost in between
                    (3, 0) if !first => s.lose(d, n as u64),
                    _ => s.send(d, &chunk),
                };
                first = false;
                at += n;
            }
        }
        same_both_ways(&s.close(), &format!("round {round}"));
    }
}

/// Frames that fail in the payload (padding longer than the frame, a
/// PRIORITY block cut short, a PUSH_PROMISE without its stream id) or in
/// the header (too large, a DATA frame on stream 0), each followed by good
/// frames: the resynchronisation after them starts from the same bytes in
/// place as through the buffer.
#[test]
fn invalid_frames_in_place_resync_as_through_the_buffer() {
    let good = |id: u32| {
        let mut v = fr(
            HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            id,
            &req_block("GET", "/g", &[]),
        );
        v.extend(fr(PING, 0, 0, &[7; 8]));
        v
    };
    let bad: [Vec<u8>; 5] = [
        fr(
            HEADERS,
            FLAG_END_HEADERS | FLAG_PADDED,
            3,
            &[200, 0x82, 0x86],
        ),
        fr(HEADERS, FLAG_END_HEADERS | FLAG_PRIORITY, 3, &[0, 0, 1]),
        fr(PUSH_PROMISE, FLAG_END_HEADERS, 3, &[0, 0]),
        {
            let mut v = fr(DATA, 0, 3, b"x");
            v[..3].copy_from_slice(&[0xff, 0xff, 0xff]);
            v
        },
        fr(DATA, 0, 0, b"zz"),
    ];
    let mut rounds = 0;
    for (i, b) in bad.iter().enumerate() {
        let mut q = client_start();
        q.extend(good(1));
        q.extend(b);
        q.extend(good(5));
        q.extend(good(7));
        // whole, and split at every offset
        for at in std::iter::once(q.len()).chain(4..q.len()) {
            let mut s = Script::new(Role::Client, false);
            s.send(E, &q[..at]);
            if at < q.len() {
                s.send(E, &q[at..]);
            }
            let (l, st) = same_both_ways(&s.close(), &format!("bad frame {i}, split at {at}"));
            assert!(st.unparseable >= 1, "bad frame {i}: {st:?}");
            assert!(!l.is_empty());
            rounds += 1;
        }
    }
    assert!(rounds > 100);
}
