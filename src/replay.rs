// SPDX-License-Identifier: GPL-3.0-or-later
//! Replaying ring-buffer records through the user-space pipeline, without
//! BPF: the input of the per-transaction cost measurements
//! (`benches/pipeline.rs`, `examples/replay.rs`, `scripts/bench-insns`).
//!
//! A stream is a sequence of raw records exactly as the kernel writes them
//! into the ring buffer ([`crate::decode::encode`] makes them from events).
//! [`nginx_records`] builds the stream of nginx's side of `wrk` keep-alive
//! traffic, [`nginx_h2_records`] that of `h2load` h2c traffic; [`write_stream`]/[`read_stream`] keep one in a file (`OSPREYRB1`,
//! then per record a little-endian `u32` length and the bytes) so that the
//! same input is replayed by every build compared.

use std::io::{self, Read, Write};

use crate::decode;
use crate::event::*;
use crate::output::Output;
use crate::pipeline::{TrackerWorker, Worker};
use crate::sink::{JsonlSink, Sink};
use crate::track::TrackerConfig;

const MAGIC: &[u8; 9] = b"OSPREYRB1";
/// A record longer than this in a stream file is refused (the kernel's
/// records are at most a capture buffer plus a header).
const MAX_RECORD: usize = 1 << 20;

/// nginx's side of `wrk -c<conns>` keep-alive traffic, `txns` requests per
/// connection: one OPEN per connection, then per request one `recvfrom`
/// record (the request) and one `writev` record (head + `body` bytes, the
/// first 4096 captured), as raw ring-buffer records.
pub fn nginx_records(conns: u32, txns: u64, body: usize) -> Vec<Vec<u8>> {
    let req = b"GET /r100 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
    let head = format!(
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 29 Nov 2026 15:35:40 GMT\r\n\
Content-Type: application/octet-stream\r\nContent-Length: {body}\r\nLast-Modified: Sun, 29 Nov 2026 15:00:00 GMT\r\n\
Connection: keep-alive\r\nETag: \"6a4b1c2d-64\"\r\nAccept-Ranges: bytes\r\n\r\n"
    );
    let mut resp = head.into_bytes();
    resp.extend(body_bytes(body));
    records(conns, txns, 8080, |_, _| req.to_vec(), |_, _| resp.clone())
}

/// nginx's side of `h2load -c<conns>` h2c traffic (prior knowledge), as
/// [`nginx_records`] for HTTP/1.1: per request one `recvfrom` record (its
/// HEADERS frame; the first also the client's preface, SETTINGS and
/// WINDOW_UPDATE) and one `writev` record (HEADERS + a DATA frame of
/// `body` bytes with END_STREAM; the first also nginx's SETTINGS,
/// WINDOW_UPDATE and SETTINGS ACK), the first 4096 bytes captured. The
/// header blocks are coded as nghttp2 and nginx code them: the request's
/// literals indexed once then referenced, the response's `:status`
/// indexed and its other fields Huffman-coded literals (five of them
/// inserted into the table each time, as nginx does).
pub fn nginx_h2_records(conns: u32, txns: u64, body: usize) -> Vec<Vec<u8>> {
    use crate::protocol::http2::frame::*;
    let req = |_: u32, t: u64| {
        let mut out = Vec::new();
        if t == 0 {
            out.extend_from_slice(PREFACE);
            // SETTINGS_MAX_CONCURRENT_STREAMS 100, SETTINGS_INITIAL_WINDOW_SIZE 2^30-1
            frame(&mut out, SETTINGS, 0, 0, &hex("000300000064 00043fffffff"));
            frame(&mut out, WINDOW_UPDATE, 0, 0, &hex("3fff0000"));
        }
        let block = if t == 0 {
            let mut b = vec![0x82, 0x86, 0x44];
            lit(&mut b, b"/r100");
            b.push(0x41);
            lit(&mut b, b"127.0.0.1:8081");
            b.push(0x7a);
            lit(&mut b, b"h2load nghttp2/1.52.0");
            b
        } else {
            // the three literals of the first, newest first in the table
            vec![0x82, 0x86, 0xc0, 0xbf, 0xbe]
        };
        let flags = FLAG_END_HEADERS | FLAG_END_STREAM;
        frame(&mut out, HEADERS, flags, 2 * t as u32 + 1, &block);
        out
    };
    let resp = |_: u32, t: u64| {
        let mut out = Vec::new();
        if t == 0 {
            // SETTINGS_MAX_CONCURRENT_STREAMS 128, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE
            frame(
                &mut out,
                SETTINGS,
                0,
                0,
                &hex("000300000080 000400010000 000500ffffff"),
            );
            frame(&mut out, WINDOW_UPDATE, 0, 0, &hex("7fff0000"));
            frame(&mut out, SETTINGS, FLAG_ACK, 0, &[]);
        }
        let mut b = vec![0x88];
        for (prefix, value) in [
            (0x76, "nginx/1.22.1"),
            (0x61, "Sun, 29 Nov 2026 15:35:40 GMT"),
            (0x5f, "application/octet-stream"),
            (0x5c, &body.to_string()),
            (0x6c, "Sun, 29 Nov 2026 15:00:00 GMT"),
        ] {
            b.push(prefix);
            lit(&mut b, value.as_bytes());
        }
        for (name, value) in [("etag", "\"6a4b1c2d-64\""), ("accept-ranges", "bytes")] {
            b.push(0);
            lit(&mut b, name.as_bytes());
            lit(&mut b, value.as_bytes());
        }
        let stream = 2 * t as u32 + 1;
        frame(&mut out, HEADERS, FLAG_END_HEADERS, stream, &b);
        let data: Vec<u8> = body_bytes(body).collect();
        frame(&mut out, DATA, FLAG_END_STREAM, stream, &data);
        out
    };
    records(conns, txns, 8081, req, resp)
}

/// An HTTP/2 frame.
fn frame(out: &mut Vec<u8>, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[ty, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// An HPACK string literal, Huffman-coded (shorter than 127 bytes).
fn lit(out: &mut Vec<u8>, s: &[u8]) {
    let mut h = Vec::new();
    crate::protocol::http2::huffman::encode(s, &mut h);
    assert!(h.len() < 127, "a short literal");
    out.push(0x80 | h.len() as u8);
    out.extend_from_slice(&h);
}

fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn body_bytes(body: usize) -> impl Iterator<Item = u8> {
    (0..body).map(|i| b'a' + (i % 26) as u8)
}

/// A server's side of `conns` connections to `port`, `txns` requests
/// each, the connections taking turns: one OPEN per connection, then per
/// request one `recvfrom` record (`req(conn, txn)`) and one `writev`
/// record (`resp(conn, txn)`, the first 4096 bytes captured).
fn records(
    conns: u32,
    txns: u64,
    port: u16,
    req: impl Fn(u32, u64) -> Vec<u8>,
    resp: impl Fn(u32, u64) -> Vec<u8>,
) -> Vec<Vec<u8>> {
    let proc_ = ProcInfo {
        tgid: 3131,
        tid: 3131,
        comm: "nginx".into(),
    };
    let mut out = Vec::new();
    let mut ts = 1_000_000_000u64;
    let mut pos = vec![[0u64; 2]; conns as usize];
    for c in 0..conns {
        out.push(decode::encode(&Event::open(ConnOpen {
            ts_ns: ts,
            conn: conn(c),
            proc: proc_.clone(),
            role: Role::Server,
            addrs: Some(SockAddrs {
                local: format!("127.0.0.1:{port}").parse().unwrap(),
                remote: format!("127.0.0.1:{}", 40000 + c).parse().unwrap(),
            }),
            midstream: false,
            syscall: Syscall::Accept4,
            cgroup_id: 0,
            identity: None,
        })));
    }
    for t in 0..txns {
        for c in 0..conns {
            let p = &mut pos[c as usize];
            let mut data = |dir: Direction, mut bytes: Vec<u8>, sys: Syscall, ts: u64| {
                let len = bytes.len() as u64;
                bytes.truncate(4096);
                let ev = Event::Data(DataEvent {
                    ts_ns: ts,
                    start_ns: ts - 2_000,
                    conn: conn(c),
                    proc: proc_.clone(),
                    dir,
                    pos: p[dir.index()],
                    orig_len: len as u32,
                    payload: bytes,
                    syscall: sys,
                    fault: false,
                });
                p[dir.index()] += len;
                decode::encode(&ev)
            };
            ts += 10_000;
            out.push(data(Direction::Ingress, req(c, t), Syscall::Recvfrom, ts));
            out.push(data(
                Direction::Egress,
                resp(c, t),
                Syscall::Writev,
                ts + 5_000,
            ));
        }
    }
    out
}

/// The connection id of the `c`-th connection of [`nginx_records`].
pub fn conn(c: u32) -> ConnId {
    ConnId {
        tgid: 3131,
        proc_start_ns: 5_000_000,
        fd: 10 + c as i32,
        gen: 100 + c as u64,
    }
}

/// Decode → tracker → JSON line into `w`, as the poller and a worker do
/// for every record; returns the number of output lines (records and
/// events), the held ones flushed at the end included.
pub fn run<W: Write + Send>(records: &[Vec<u8>], w: W) -> io::Result<usize> {
    run_as(records, w, crate::jsonline::RecordFormat::Full)
}

/// [`run`] with transaction lines in `format` (`--record-format`).
pub fn run_as<W: Write + Send>(
    records: &[Vec<u8>],
    w: W,
    format: crate::jsonline::RecordFormat,
) -> io::Result<usize> {
    let mut worker = TrackerWorker::new(TrackerConfig::default());
    let mut sink = JsonlSink::new(w).with_format(format);
    let mut out: Vec<Output> = Vec::new();
    let mut n = 0;
    for r in records {
        // as the poller does: the payload stays in the record
        decode::decode_each(r, |ev, payload| {
            worker.on_event_parts(ev, payload, &mut out)
        })
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))?;
        for o in out.drain(..) {
            sink.emit(&o)?;
            n += 1;
        }
    }
    worker.finish(&mut out);
    for o in out.drain(..) {
        sink.emit(&o)?;
        n += 1;
    }
    sink.flush()?;
    Ok(n)
}

/// Write `records` as a stream file.
pub fn write_stream(mut w: impl Write, records: &[Vec<u8>]) -> io::Result<()> {
    w.write_all(MAGIC)?;
    for r in records {
        let len = u32::try_from(r.len())
            .ok()
            .filter(|&l| l as usize <= MAX_RECORD)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "record too long"))?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(r)?;
    }
    w.flush()
}

/// Read a stream file written by [`write_stream`].
pub fn read_stream(mut r: impl Read) -> io::Result<Vec<Vec<u8>>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut magic = [0u8; 9];
    r.read_exact(&mut magic)
        .map_err(|_| bad("not an Osprey record stream (too short)"))?;
    if &magic != MAGIC {
        return Err(bad("not an Osprey record stream (no OSPREYRB1 header)"));
    }
    let mut out = Vec::new();
    loop {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(out),
            Err(e) => return Err(e),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_RECORD {
            return Err(bad("a record longer than 1 MiB: not a stream file"));
        }
        let mut rec = vec![0u8; len];
        r.read_exact(&mut rec)
            .map_err(|_| bad("the stream ends inside a record"))?;
        out.push(rec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON lines `run` writes of `recs` (as many as it says it
    /// wrote), and the transactions among them.
    fn replayed(recs: &[Vec<u8>]) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        let mut buf = Vec::new();
        let n = run(recs, &mut buf).unwrap();
        let lines: Vec<serde_json::Value> = buf
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(n, lines.len());
        let txns = lines
            .iter()
            .filter(|l| l["type"] == "http_transaction")
            .cloned()
            .collect();
        (lines, txns)
    }

    #[test]
    fn every_request_of_the_nginx_stream_is_one_record() {
        let recs = nginx_records(4, 10, 100);
        assert_eq!(recs.len(), 4 + 2 * 4 * 10);
        // 40 transactions; the connections stay open: nothing else flushed
        let (_, txns) = replayed(&recs);
        assert_eq!(txns.len(), 40);
        assert!(txns
            .iter()
            .all(|t| t["status"] == 200 && t["resp_body_bytes"] == 100 && t["gap"] == false));
    }

    #[test]
    fn every_request_of_the_h2_stream_is_one_whole_record() {
        for body in [100, 4096] {
            let recs = nginx_h2_records(3, 20, body);
            assert_eq!(recs.len(), 3 + 2 * 3 * 20);
            let (lines, txns) = replayed(&recs);
            // the streams end with their responses, the connections stay open
            assert_eq!(txns.len(), 60, "{lines:?}");
            for t in txns {
                assert_eq!(t["protocol"], "http2");
                assert_eq!(t["method"], "GET");
                assert_eq!(t["target"], "/r100");
                assert_eq!(t["host"], "127.0.0.1:8081");
                assert_eq!(t["status"], 200);
                assert_eq!(t["resp_content_type"], "application/octet-stream");
                assert_eq!(t["resp_header_count"], 8);
                assert_eq!(t["resp_body_bytes"], body);
                assert_eq!(t["gap"], false, "{t}");
                assert_eq!(t["truncated"], body > 4000, "{t}");
            }
        }
    }

    #[test]
    fn a_stream_file_reads_back_the_same_records() {
        let recs = nginx_records(2, 3, 4096);
        let mut file = Vec::new();
        write_stream(&mut file, &recs).unwrap();
        assert_eq!(read_stream(&file[..]).unwrap(), recs);
    }

    #[test]
    fn a_damaged_stream_file_is_an_error_not_a_panic() {
        let recs = nginx_records(1, 1, 10);
        let mut file = Vec::new();
        write_stream(&mut file, &recs).unwrap();
        for cut in 0..file.len() {
            let r = read_stream(&file[..cut]);
            // a cut at a record boundary is a shorter valid stream
            if let Ok(got) = r {
                assert!(got.len() < recs.len() && cut >= 9);
            }
        }
        assert!(read_stream(&b"OSPREYRB0"[..]).is_err());
        let mut huge = MAGIC.to_vec();
        huge.extend(u32::MAX.to_le_bytes());
        assert!(read_stream(&huge[..]).is_err());
    }
}
