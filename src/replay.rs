// SPDX-License-Identifier: GPL-3.0-or-later
//! Replaying ring-buffer records through the user-space pipeline, without
//! BPF: the input of the per-transaction cost measurements
//! (`benches/pipeline.rs`, `examples/replay.rs`, `scripts/bench-insns`).
//!
//! A stream is a sequence of raw records exactly as the kernel writes them
//! into the ring buffer ([`crate::decode::encode`] makes them from events).
//! [`nginx_records`] builds the stream of nginx's side of `wrk` keep-alive
//! traffic; [`write_stream`]/[`read_stream`] keep one in a file (`OSPREYRB1`,
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
    resp.extend((0..body).map(|i| b'a' + (i % 26) as u8));
    let resp_len = resp.len() as u64;
    resp.truncate(4096);
    let proc_ = ProcInfo {
        tgid: 3131,
        tid: 3131,
        comm: "nginx".into(),
    };
    let mut out = Vec::new();
    let mut ts = 1_000_000_000u64;
    let mut pos = vec![[0u64; 2]; conns as usize];
    for c in 0..conns {
        out.push(decode::encode(&Event::Open(ConnOpen {
            ts_ns: ts,
            conn: conn(c),
            proc: proc_.clone(),
            role: Role::Server,
            addrs: Some(SockAddrs {
                local: "127.0.0.1:8080".parse().unwrap(),
                remote: format!("127.0.0.1:{}", 40000 + c).parse().unwrap(),
            }),
            midstream: false,
            syscall: Syscall::Accept4,
            cgroup_id: 0,
            identity: None,
        })));
    }
    for _ in 0..txns {
        for c in 0..conns {
            let p = &mut pos[c as usize];
            let mut data = |dir: Direction, bytes: &[u8], len: u64, sys: Syscall, ts: u64| {
                let ev = Event::Data(DataEvent {
                    ts_ns: ts,
                    start_ns: ts - 2_000,
                    conn: conn(c),
                    proc: proc_.clone(),
                    dir,
                    pos: p[dir.index()],
                    orig_len: len as u32,
                    payload: bytes.to_vec(),
                    syscall: sys,
                });
                p[dir.index()] += len;
                decode::encode(&ev)
            };
            ts += 10_000;
            out.push(data(
                Direction::Ingress,
                req,
                req.len() as u64,
                Syscall::Recvfrom,
                ts,
            ));
            out.push(data(
                Direction::Egress,
                &resp,
                resp_len,
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
    let mut worker = TrackerWorker::new(TrackerConfig::default());
    let mut sink = JsonlSink::new(w);
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

    #[test]
    fn every_request_of_the_nginx_stream_is_one_record() {
        let recs = nginx_records(4, 10, 100);
        assert_eq!(recs.len(), 4 + 2 * 4 * 10);
        let mut buf = Vec::new();
        // 40 transactions; the connections stay open: nothing else flushed
        let n = run(&recs, &mut buf).unwrap();
        let lines: Vec<serde_json::Value> = buf
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(n, lines.len());
        let txns: Vec<_> = lines
            .iter()
            .filter(|l| l["type"] == "http_transaction")
            .collect();
        assert_eq!(txns.len(), 40);
        assert!(txns
            .iter()
            .all(|t| t["status"] == 200 && t["resp_body_bytes"] == 100 && t["gap"] == false));
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
