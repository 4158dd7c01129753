// SPDX-License-Identifier: GPL-3.0-or-later
//! Entry points of the cargo-fuzz targets in `fuzz/fuzz_targets/` (built
//! only under `cfg(fuzzing)`, which `cargo fuzz` sets, and for the unit
//! tests). Each takes the fuzzer's bytes, runs one of Osprey's input paths
//! end to end and asserts its invariants; a panic is a finding. The unit
//! tests below run every committed corpus file (`fuzz/corpus/<target>/`)
//! through the same functions on every `cargo test`, so a crash once found
//! and added there stays fixed without a nightly toolchain.
//!
//! Targets (docs/testing.md, "Fuzzing"): `http_parser` and `tracker` (their
//! code is in their target files), and here
//! * [`wire_capture`]: a pcap/pcapng file → `osprey wire`'s whole path;
//! * [`tcp_reassembly`]: TCP segments described by the bytes → the
//!   reassembler → the tracker;
//! * [`ringbuf_records`]: ring-buffer records as the kernel would hand them
//!   over → the decoder → the tracker;
//! * [`recon_jsonl`]: two JSONL inputs → `osprey recon-diff`'s engine;
//! * [`http2_frames`]: HTTP/2 frames and HPACK blocks → the framer, the
//!   HPACK decoder, and an h2c connection through the tracker (gRPC too).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::decode;
use crate::event::{ConnId, Direction, Event};
use crate::record::{read_json_line, ReadLine, Record};
use crate::redact::Redact;
use crate::track::{Tracker, TrackerConfig};
use crate::wire::pcap::Segment;
use crate::wire::tcp::{ReasmConfig, Reassembler};
use crate::wire::{tracker_config, WireStream};

/// Every record serialises to one JSON line that reads back as a record
/// of the same kind (what `recon-diff` does with `osprey wire`'s output).
fn check_records(recs: &[Record]) {
    for r in recs {
        let line = r.to_json_line();
        assert!(!line.contains('\n'), "a record spans lines: {line}");
        match read_json_line(line.as_bytes()) {
            Ok(ReadLine::Record(back)) => assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(r),
                "{line}"
            ),
            // read_json_line reads HTTP/1.x (recon-diff's input); a record
            // of another protocol must say which
            Ok(ReadLine::OtherProtocol(p)) => assert!(
                matches!(r, Record::Transaction(t) if *t.protocol == *p && p != crate::record::HTTP1),
                "{line}"
            ),
            Ok(_) => panic!("a record reads back as something else: {line}"),
            Err(e) => panic!("a record does not read back ({e}): {line}"),
        }
    }
}

/// Small tracker bounds, so that eviction, overflow and expiry happen.
fn small_tracker(mut cfg: TrackerConfig) -> Tracker {
    cfg.max_conns = 4;
    cfg.max_buf_bytes = 8192;
    cfg.max_pending = 8;
    Tracker::new(cfg)
}

/// Feed events to a tracker, flush it, check its counters and records;
/// the number of records.
fn track(mut t: Tracker, events: &[Event]) -> usize {
    let mut out = Vec::new();
    for ev in events {
        t.on_event(ev, &mut out);
    }
    if let Some(last) = events.last() {
        t.expire(last.ts_ns().saturating_add(61_000_000_000), &mut out);
    }
    t.flush_all(&mut out);
    let st = t.stats();
    assert_eq!(st.records_emitted as usize, out.len());
    assert_eq!(st.conns_active, 0);
    check_records(&out);
    out.len()
}

/// `osprey wire` on `data` as a capture file: the reader, link/IP/TCP
/// decoding, reassembly, the tracker, the records. Returns the number of
/// records (as every entry point here: the tests require seeds to make some).
pub fn wire_capture(data: &[u8]) -> usize {
    let messages = data.len() % 2 == 1;
    let Ok(mut s) = WireStream::new(data, tracker_config(true, Redact::default(), messages)) else {
        return 0;
    };
    let mut recs = Vec::new();
    while let Some(r) = s.next_record() {
        recs.push(r);
        assert!(recs.len() <= 4 * data.len() + 16, "more records than bytes");
    }
    check_records(&recs);
    let sum = s.summary();
    assert_eq!(sum.tracker.records_emitted as usize, recs.len());
    assert_eq!(sum.tracker.conns_active, 0);
    let skipped = sum.skipped_non_ip
        + sum.skipped_non_tcp
        + sum.skipped_fragments
        + sum.skipped_malformed
        + sum.skipped_link_type;
    assert_eq!(sum.packets, sum.tcp_segments + skipped);
    assert_eq!(sum.reassembly.segments, sum.tcp_segments);
    let _ = sum.human();
    recs.len()
}

/// A Go `.gopclntab` (src/tls/gobin.rs): the header and every function
/// of the table, names and ranges, never a panic; the same bytes as an
/// ELF file (`gobin::inspect`) and as x86-64 code (the RET finder).
/// Returns the functions read.
pub fn go_pclntab(data: &[u8]) -> usize {
    use crate::tls::gobin;
    let _ = gobin::inspect(data);
    let _ = gobin::ret_offsets(data, 0x401000, 0);
    let Some(p) = gobin::Pclntab::parse(data, 0x401000) else {
        return 0;
    };
    assert!(
        p.len() <= data.len() / 8,
        "more functions than the table holds"
    );
    let mut n = 0;
    for i in 0..=p.len() {
        if let Some((name, start, end)) = p.func(i) {
            assert!(end > start);
            assert!(i < p.len());
            let _ = p.find(&String::from_utf8_lossy(name));
            n += 1;
        }
    }
    n
}

/// Check a stream of reassembled events: per flow and direction, data is
/// delivered in order, each stream byte at most once; a closed flow gets
/// no more data; captured bytes never exceed the wire's.
fn check_reassembled(events: &[Event]) {
    use std::collections::HashMap;
    let mut next: HashMap<(ConnId, Direction), u64> = HashMap::new();
    let mut open: HashMap<ConnId, bool> = HashMap::new();
    for ev in events {
        match ev {
            Event::Open(o) => {
                assert!(open.insert(o.conn, true).is_none(), "opened twice: {o:?}");
            }
            Event::Data(d) => {
                assert_eq!(open.get(&d.conn), Some(&true), "data outside a flow: {d:?}");
                assert!(d.payload.len() as u64 <= d.orig_len as u64, "{d:?}");
                assert!(d.orig_len > 0, "empty data event: {d:?}");
                let n = next.entry((d.conn, d.dir)).or_insert(0);
                assert!(
                    d.pos >= *n,
                    "bytes delivered twice: at {} after {}",
                    d.pos,
                    *n
                );
                *n = d.pos + d.orig_len as u64;
            }
            Event::Close(c) => {
                assert_eq!(open.insert(c.conn, false), Some(true), "close: {c:?}");
            }
        }
    }
}

/// TCP segments built from the bytes (two hosts, a few ports, any flags,
/// sequence numbers moving forward, backward, wrapping) through the
/// reassembler with small bounds, then the tracker.
///
/// Layout: per segment 7 bytes `[flags, ports, seq_lo, seq_hi, step, ts,
/// len]` then `len % 64` payload bytes (a snaplen cut when bit 6 of
/// `step` is set: the wire length is larger than the payload).
pub fn tcp_reassembly(data: &[u8]) -> usize {
    let cfg = ReasmConfig {
        max_ooo_segments: 4,
        max_ooo_bytes: 256,
        ooo_timeout_ns: 1_000_000,
        idle_timeout_ns: 50_000_000,
        max_flows: 3,
    };
    let mut r = Reassembler::new(cfg);
    let mut events = Vec::new();
    let (a, b) = (
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    );
    // last sequence number per (port pair, direction)
    let mut seqs = [[0u32; 2]; 4];
    let mut ts = 1u64;
    let mut i = 0;
    while i + 7 <= data.len() {
        let h = &data[i..i + 7];
        i += 7;
        let len = (h[6] % 64) as usize;
        let payload = &data[i..(i + len).min(data.len())];
        i += payload.len();
        let pair = (h[1] & 3) as usize;
        let dir = ((h[1] >> 2) & 1) as usize;
        let (cport, sport) = (40000 + pair as u16, 80 + (pair as u16 >> 1));
        let (src, dst) = if dir == 0 {
            (SocketAddr::new(a, cport), SocketAddr::new(b, sport))
        } else {
            (SocketAddr::new(b, sport), SocketAddr::new(a, cport))
        };
        let delta = u16::from_le_bytes([h[2], h[3]]) as i16 as i32;
        let seq = if h[4] & 0x80 != 0 {
            // an absolute sequence number near the wrap
            (delta as u32).wrapping_sub(1 << 15)
        } else {
            seqs[pair][dir].wrapping_add(delta as u32)
        };
        let wire_len = payload.len() as u32
            + if h[4] & 0x40 != 0 {
                h[4] as u32 & 0x3f
            } else {
                0
            };
        seqs[pair][dir] = seq.wrapping_add(wire_len);
        ts += h[5] as u64 * 100_000;
        let seg = Segment {
            src,
            dst,
            seq,
            ack: seqs[pair][1 - dir],
            flags: h[0],
            len: wire_len,
            payload,
        };
        r.on_segment(ts, &seg, &mut events);
    }
    r.finish(&mut events);
    check_reassembled(&events);
    let st = r.stats();
    let delivered: u64 = events
        .iter()
        .map(|e| match e {
            Event::Data(d) => d.payload.len() as u64,
            _ => 0,
        })
        .sum();
    assert!(delivered <= st.bytes, "{delivered} > {}", st.bytes);
    track(
        small_tracker(tracker_config(true, Redact::default(), false)),
        &events,
    )
}

/// Ring-buffer records as the poller gets them: the first byte picks the
/// tracker's settings (bit 0 headers, bit 1 message records), the rest is
/// a sequence of `[len: u16 LE][record]`. Each record is decoded both ways the
/// consumer does ([`decode::decode_each`] without copies, and
/// [`decode::decode_all`]), which must agree; a decoded event re-encodes
/// to itself; the events then go through the tracker, as in `osprey`.
pub fn ringbuf_records(data: &[u8]) -> usize {
    let mut events = Vec::new();
    let mut i = 1;
    while i + 2 <= data.len() {
        let len = u16::from_le_bytes([data[i], data[i + 1]]) as usize;
        i += 2;
        let rec = &data[i..(i + len).min(data.len())];
        i += rec.len();
        let all = decode::decode_all(rec);
        let mut each = Vec::new();
        let r = decode::decode_each(rec, |ev, payload| each.push(ev.with_payload(payload)));
        match (&all, r) {
            (Ok(v), Ok(())) => assert_eq!(v, &each),
            (Err(a), Err(b)) => {
                assert_eq!(a, &b);
                assert!(each.is_empty(), "decode_each called back before an error");
            }
            (a, b) => panic!("decode_all {a:?} vs decode_each {b:?}"),
        }
        for ev in all.unwrap_or_default() {
            if let Event::Data(d) = &ev {
                assert!(d.payload.len() <= crate::abi::MAX_PAYLOAD);
                assert!(d.payload.len() as u64 <= d.orig_len as u64, "{d:?}");
            }
            // the encoder (tests, --synthetic) and the decoder agree; a comm
            // that is not UTF-8 comes back lossily, so compare the rest
            let mut back = decode::decode_all(&decode::encode(&ev)).expect("re-decoding");
            assert_eq!(back.len(), 1);
            let mut want = ev.clone();
            set_comm(&mut back[0], "");
            set_comm(&mut want, "");
            assert_eq!(back[0], want);
            events.push(ev);
        }
    }
    let cfg = TrackerConfig {
        headers: data.first().is_some_and(|b| b & 1 != 0),
        emit_messages: data.first().is_some_and(|b| b & 2 != 0),
        ..TrackerConfig::default()
    };
    track(small_tracker(cfg), &events)
}

fn set_comm(ev: &mut Event, c: &str) {
    match ev {
        Event::Open(o) => o.proc.comm = c.into(),
        Event::Data(d) => d.proc.comm = c.into(),
        Event::Close(x) => x.proc.comm = c.into(),
    }
}

/// `recon-diff` on two JSONL inputs: the bytes are the wire side's lines,
/// a NUL byte, the probe's lines (all probe lines when there is no NUL).
/// The first byte also picks the sides and the matching window. Returns
/// the number of records compared.
pub fn recon_jsonl(data: &[u8]) -> usize {
    let (wire, ebpf) = match data.iter().position(|&b| b == 0) {
        Some(n) => (&data[..n], &data[n + 1..]),
        None => (&[][..], data),
    };
    let sel = data.first().copied().unwrap_or(0);
    let cfg = crate::recon::MatchConfig {
        skew_ns: 50_000_000,
        tol_ns: 5_000_000,
        window_ns: if sel & 4 != 0 { 1 } else { 10_000_000_000 },
        sides: [sel & 1 == 0, sel & 2 == 0],
    };
    let (s, diffs) = crate::recon::recon_jsonl(wire, ebpf, cfg);
    for d in &diffs {
        assert!(!d.contains('\n'));
        serde_json::from_str::<serde_json::Value>(d).expect("a difference is JSON");
    }
    for side in s.sides.values() {
        assert!(side.mismatched <= side.matched, "{s:?}");
        assert!(side.matched + side.wire_only <= s.wire_records, "{s:?}");
        assert!(side.matched + side.probe_only <= s.ebpf_records, "{s:?}");
    }
    assert!(
        s.mismatch_pct.is_finite() && s.unmatched_pct.is_finite(),
        "{s:?}"
    );
    let _ = crate::recon::human(&s);
    serde_json::to_string(&s).expect("the summary serialises");
    (s.wire_records + s.ebpf_records) as usize
}

/// HTTP/2 and HPACK on arbitrary bytes. Layout: a selector byte, a
/// 16-bit big-endian length L, then L bytes the client sends after its
/// preface and the rest the server sends; the selector picks the chunk
/// size events are cut into, capture caps, a lost range and the role.
/// Also: every byte string as one HPACK block (both start modes, a table
/// limit), and the framer directly. Returns records + frames + fields.
pub fn http2_frames(data: &[u8]) -> usize {
    use crate::event::{CloseEvent, ConnOpen, DataEvent, ProcInfo, Role, SockAddrs, Syscall};
    use crate::protocol::http1::Parse;
    use crate::protocol::http2::{frame, hpack};
    let Some((&sel, rest)) = data.split_first() else {
        return 0;
    };
    let (split, body) = match rest {
        [a, b, body @ ..] => (u16::from_be_bytes([*a, *b]) as usize, body),
        _ => (0, rest),
    };
    let split = split.min(body.len());
    let mut n = 0;
    // HPACK alone: a bounded table, fields bounded by the list cap
    for known in [false, true] {
        let mut d = hpack::Decoder::new(known);
        if sel & 0x40 != 0 {
            d.set_limit(sel as u32 * 16);
        }
        for blk in [body, &body[split..]] {
            if let Ok(b) = d.decode(blk, 4096) {
                n += b.len();
                let size: usize = b.fields().map(|(k, v)| k.len() + v.len()).sum();
                assert!(size <= 4096 + 64 * 1024, "header list past its cap");
            }
            assert!(d.known().1 <= hpack::MAX_TABLE, "table past its cap");
        }
    }
    // the framer alone, a byte at a time against whole
    let mut f = frame::Framer::new(sel & 1 == 0, frame::DEFAULT_MAX_FRAME, 8192);
    let mut buf = if sel & 1 == 0 {
        frame::PREFACE.to_vec()
    } else {
        Vec::new()
    };
    buf.extend_from_slice(body);
    let mut at = 0;
    let mut steps = 0;
    while at < buf.len() && steps < 4 * buf.len() + 16 {
        steps += 1;
        match f.next(&buf[at..]) {
            Parse::Complete(_, k) => at += k,
            Parse::NeedMore => break,
            Parse::Invalid(_) => {
                f.reset();
                at += 1;
            }
        }
    }
    n += steps;
    // through the tracker: an h2c connection, client side or server side
    let role = if sel & 2 == 0 {
        Role::Client
    } else {
        Role::Server
    };
    let (c2s, s2c) = (&body[..split], &body[split..]);
    let mut client = frame::PREFACE.to_vec();
    client.extend_from_slice(c2s);
    let conn = ConnId {
        tgid: 7,
        proc_start_ns: 1,
        fd: 5,
        gen: 1,
    };
    let proc_ = ProcInfo {
        tgid: 7,
        tid: 7,
        comm: "grpc".into(),
    };
    let mut ev = vec![Event::open(ConnOpen {
        ts_ns: 1,
        conn,
        proc: proc_.clone(),
        role,
        addrs: Some(SockAddrs {
            local: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000),
            remote: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50051),
        }),
        midstream: sel & 4 != 0,
        syscall: Syscall::Connect,
        cgroup_id: 0,
        identity: None,
    })];
    let chunk = 1 + (sel >> 3 & 7) as usize * 13;
    let cap = if sel & 0x80 != 0 { 16 } else { usize::MAX };
    let (out_dir, in_dir) = match role {
        Role::Server => (Direction::Ingress, Direction::Egress),
        _ => (Direction::Egress, Direction::Ingress),
    };
    let mut pos = [0u64; 2];
    let mut ts = 1;
    let (mut i, mut j) = (0, 0);
    // alternate the two directions, chunk by chunk; one chunk is lost
    // when the selector says so
    while i < client.len() || j < s2c.len() {
        for (bytes, k, d) in [(&client, &mut i, out_dir), (&s2c.to_vec(), &mut j, in_dir)] {
            if *k >= bytes.len() {
                continue;
            }
            let end = (*k + chunk).min(bytes.len());
            let b = &bytes[*k..end];
            ts += 1000;
            let lost = sel & 0x20 != 0 && *k > 0 && *k / chunk == 3;
            if !lost {
                ev.push(Event::Data(DataEvent {
                    ts_ns: ts,
                    start_ns: 0,
                    conn,
                    proc: proc_.clone(),
                    dir: d,
                    pos: pos[d.index()],
                    orig_len: b.len() as u32,
                    payload: b[..b.len().min(cap)].to_vec(),
                    syscall: Syscall::Write,
                    // the uncaptured bytes for a failed read (read_fault)
                    fault: sel & 0x40 != 0,
                }));
            }
            pos[d.index()] += b.len() as u64;
            *k = end;
        }
    }
    ev.push(Event::Close(CloseEvent {
        ts_ns: ts + 1000,
        conn,
        proc: proc_,
        tx_bytes: pos[0],
        rx_bytes: pos[1],
    }));
    n + track(small_tracker(TrackerConfig::default()), &ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every committed corpus file of `target` through `f` (the fuzzer's
    /// seeds, and the inputs of crashes it found once).
    /// Seeds (not crash inputs, named `crash-*`) must produce records:
    /// one that does not exercises nothing past the first check.
    fn corpus(target: &str, f: fn(&[u8]) -> usize) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            match std::panic::catch_unwind(|| f(&data)) {
                Err(e) => panic!("{} fails: {e:?}", p.display()),
                Ok(0)
                    if !p
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("crash-") =>
                {
                    panic!("{}: a seed that makes no record", p.display())
                }
                Ok(_) => {}
            }
            n += 1;
        }
        assert!(n >= 3, "{}: {n} corpus files, want a few", dir.display());
    }

    #[test]
    fn wire_capture_corpus() {
        corpus("wire_capture", wire_capture);
    }

    #[test]
    fn tcp_reassembly_corpus() {
        corpus("tcp_reassembly", tcp_reassembly);
    }

    #[test]
    fn ringbuf_records_corpus() {
        corpus("ringbuf_records", ringbuf_records);
    }

    #[test]
    fn recon_jsonl_corpus() {
        corpus("recon_jsonl", recon_jsonl);
    }

    #[test]
    fn http2_frames_corpus() {
        corpus("http2_frames", http2_frames);
    }

    #[test]
    fn go_pclntab_corpus() {
        corpus("go_pclntab", go_pclntab);
    }

    #[test]
    fn empty_and_tiny_inputs() {
        for f in [
            wire_capture,
            tcp_reassembly,
            ringbuf_records,
            recon_jsonl,
            http2_frames,
            go_pclntab,
        ] {
            assert_eq!(f(b""), 0);
            f(b"\0");
            f(&[0xff; 9]);
        }
    }
}
