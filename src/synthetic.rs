// SPDX-License-Identifier: GPL-3.0-or-later
//! `--synthetic`: realistic probe events without BPF, through the same
//! encode → decode → pipeline → sink path as live capture.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use crate::clock::mono_now_ns;
use crate::decode;
use crate::event::*;

/// Deterministic generator of HTTP/1.1 traffic as the probe would see it:
/// each connection appears from both ends (curl-like client, nginx-like
/// server), keep-alive with several transactions, the odd 404, a large
/// response truncated by the capture cap, and one connection first seen
/// mid-stream.
#[derive(Clone)]
pub struct Synthetic {
    capture: usize,
    seed: u64,
    base_ns: u64,
    gen: u64,
}

const PATHS: [&str; 5] = [
    "/",
    "/index.html",
    "/api/v1/items?limit=10",
    "/static/app.js",
    "/missing",
];

impl Synthetic {
    pub fn new(capture: usize, seed: u64) -> Self {
        Synthetic {
            capture: capture.max(1),
            seed: seed | 1,
            base_ns: mono_now_ns(),
            gen: 1_000_000,
        }
    }

    fn rand(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    /// Events for `conns` connections with `txns` transactions each.
    /// Every event goes through `decode::encode` + `decode::decode_all`.
    pub fn generate(&mut self, conns: usize, txns: usize) -> Vec<Event> {
        self.stream(conns, txns).collect()
    }

    /// The events of [`Synthetic::generate`], in the same order, made as
    /// they are consumed: only the connections that overlap in time are
    /// held (connection `c` starts at `c` ms and lasts about `txns` ms), so
    /// memory does not grow with `conns`.
    pub fn stream(&mut self, conns: usize, txns: usize) -> Stream<'_> {
        Stream {
            gen: self,
            conns,
            txns,
            next: 0,
            live: BinaryHeap::new(),
            queues: HashMap::new(),
            out: VecDeque::new(),
        }
    }

    /// Timestamp of connection `c`'s first events (its opens): every event
    /// of `c` is at or after it.
    fn conn_start(&self, c: usize) -> u64 {
        self.base_ns
            .wrapping_add((c as u64).wrapping_mul(1_000_000))
    }

    fn connection(&mut self, c: usize, txns: usize, evs: &mut Vec<Event>) {
        // wraps past 65535 connections, as ports do
        let cport = 40000u16.wrapping_add(c as u16);
        let midstream = c % 5 == 4;
        let mut t = self.conn_start(c);
        self.gen += 2;
        let client = Side::new(
            4242,
            "curl",
            5,
            self.gen,
            Role::Client,
            ("127.0.0.1", cport),
            ("127.0.0.1", 8080),
        );
        let server = Side::new(
            3131,
            "nginx",
            12,
            self.gen + 1,
            Role::Server,
            ("127.0.0.1", 8080),
            ("127.0.0.1", cport),
        );
        for s in [&client, &server] {
            evs.push(Event::open(ConnOpen {
                ts_ns: t,
                conn: s.conn,
                proc: s.proc.clone(),
                role: if midstream { Role::Unknown } else { s.role },
                addrs: Some(s.addrs),
                midstream,
                syscall: match (midstream, s.role) {
                    (true, _) => Syscall::Unknown,
                    (_, Role::Client) => Syscall::Connect,
                    _ => Syscall::Accept4,
                },
                cgroup_id: 0,
                identity: None,
            }));
        }
        let mut pos = [0u64; 2]; // client→server, server→client stream offsets
        if midstream {
            pos = [10_000, 250_000];
        }
        for i in 0..txns {
            let path = PATHS[(self.rand() % PATHS.len() as u64) as usize];
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"
            );
            let (status, body_len) = if path == "/missing" {
                (404, 153)
            } else if i % 7 == 3 {
                (200, 1_000_000)
            } else {
                (200, 200 + self.rand() % 3000)
            };
            let reason = if status == 404 { "Not Found" } else { "OK" };
            let head = format!(
                "HTTP/1.1 {status} {reason}\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\nContent-Length: {body_len}\r\nConnection: keep-alive\r\n\r\n"
            );
            let mut resp = head.into_bytes();
            let body_start = resp.len();
            resp.extend((0..body_len.min(self.capture as u64 * 2)).map(|i| b'a' + (i % 26) as u8));
            let resp_total = body_start as u64 + body_len;

            let lat = 50_000 + self.rand() % 400_000;
            t += 100_000 + self.rand() % 1_000_000;
            // client writes, server reads
            self.data(
                evs,
                &client,
                Direction::Egress,
                t,
                pos[0],
                req.as_bytes(),
                req.len() as u64,
                Syscall::Write,
            );
            self.data(
                evs,
                &server,
                Direction::Ingress,
                t + 20_000,
                pos[0],
                req.as_bytes(),
                req.len() as u64,
                Syscall::Recvfrom,
            );
            pos[0] += req.len() as u64;
            // server writes, client reads (in chunks of at most 64 KiB)
            let mut off = 0u64;
            let mut ts = t + lat;
            while off < resp_total {
                let n = (resp_total - off).min(65536);
                let cap =
                    &resp[(off as usize).min(resp.len())..((off + n) as usize).min(resp.len())];
                self.data(
                    evs,
                    &server,
                    Direction::Egress,
                    ts,
                    pos[1] + off,
                    cap,
                    n,
                    Syscall::Writev,
                );
                self.data(
                    evs,
                    &client,
                    Direction::Ingress,
                    ts + 15_000,
                    pos[1] + off,
                    cap,
                    n,
                    Syscall::Read,
                );
                off += n;
                ts += 30_000;
            }
            pos[1] += resp_total;
            t = ts;
        }
        t += 200_000;
        for (s, tx, rx) in [(&client, pos[0], pos[1]), (&server, pos[1], pos[0])] {
            evs.push(Event::Close(CloseEvent {
                ts_ns: t,
                conn: s.conn,
                proc: s.proc.clone(),
                tx_bytes: tx,
                rx_bytes: rx,
            }));
            t += 10_000;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn data(
        &self,
        evs: &mut Vec<Event>,
        s: &Side,
        dir: Direction,
        ts: u64,
        pos: u64,
        bytes: &[u8],
        len: u64,
        sys: Syscall,
    ) {
        let cap = bytes.len().min(self.capture).min(len as usize);
        evs.push(Event::Data(DataEvent {
            ts_ns: ts,
            start_ns: ts - 3_000,
            conn: s.conn,
            proc: s.proc.clone(),
            dir,
            pos,
            orig_len: len as u32,
            payload: bytes[..cap].to_vec(),
            syscall: sys,
            fault: false,
        }));
    }
}

/// Iterator of [`Synthetic::stream`]. The order is that of a stable sort
/// of all connections' events by timestamp: per connection the events are
/// made in timestamp order, so a merge by (timestamp, connection index)
/// gives it, once no connection not yet made can start before the head.
pub struct Stream<'a> {
    gen: &'a mut Synthetic,
    conns: usize,
    txns: usize,
    /// Next connection to make.
    next: usize,
    /// (timestamp of its first pending event, connection) of every
    /// connection with events pending, smallest first.
    live: BinaryHeap<Reverse<(u64, usize)>>,
    queues: HashMap<usize, VecDeque<Event>>,
    /// Decoded events of the last record, not yet returned.
    out: VecDeque<Event>,
}

impl Stream<'_> {
    /// The next event in timestamp order, before its round trip.
    fn next_raw(&mut self) -> Option<Event> {
        loop {
            let head = self.live.peek().map(|Reverse(k)| *k);
            let ready = match head {
                None => false,
                // ties go to the connection made first, as in a stable sort
                Some((ts, _)) => self.next >= self.conns || ts <= self.gen.conn_start(self.next),
            };
            if !ready {
                if self.next >= self.conns {
                    return None;
                }
                let mut evs = Vec::new();
                self.gen.connection(self.next, self.txns, &mut evs);
                if let Some(first) = evs.first() {
                    self.live.push(Reverse((first.ts_ns(), self.next)));
                    self.queues.insert(self.next, evs.into());
                }
                self.next += 1;
                continue;
            }
            let Reverse((_, c)) = self.live.pop()?;
            let q = self.queues.get_mut(&c)?;
            let ev = q.pop_front();
            match q.front() {
                Some(e) => self.live.push(Reverse((e.ts_ns(), c))),
                None => {
                    self.queues.remove(&c);
                }
            }
            return ev;
        }
    }
}

impl Iterator for Stream<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.out.pop_front() {
                return Some(ev);
            }
            let ev = self.next_raw()?;
            // the generator's own events: they always decode (the unit
            // tests hold it), so a failure here is a bug in encode/decode
            let evs =
                decode::decode_all(&decode::encode(&ev)).expect("synthetic event round-trips");
            self.out.extend(evs);
        }
    }
}

struct Side {
    conn: ConnId,
    proc: ProcInfo,
    role: Role,
    addrs: SockAddrs,
}

impl Side {
    fn new(
        tgid: u32,
        comm: &str,
        fd: i32,
        gen: u64,
        role: Role,
        l: (&str, u16),
        r: (&str, u16),
    ) -> Side {
        // the addresses are the callers' literals ("127.0.0.1", a u16 port)
        Side {
            conn: ConnId {
                tgid,
                proc_start_ns: 1_000_000_000,
                fd,
                gen,
            },
            proc: ProcInfo {
                tgid,
                tid: tgid,
                comm: comm.into(),
            },
            role,
            addrs: SockAddrs {
                local: format!("{}:{}", l.0, l.1).parse().expect("valid addr"),
                remote: format!("{}:{}", r.0, r.1).parse().expect("valid addr"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_contiguous_and_closed() {
        let evs = Synthetic::new(4096, 7).generate(5, 8);
        let mut next = std::collections::HashMap::new();
        let mut opens = 0;
        let mut closes = 0;
        for e in &evs {
            match e {
                Event::Open(_) => opens += 1,
                Event::Close(_) => closes += 1,
                Event::Data(d) => {
                    assert!(d.payload.len() <= 4096);
                    let p = next.entry((d.conn, d.dir)).or_insert(d.pos);
                    assert_eq!(*p, d.pos, "gap in synthetic stream");
                    *p += d.orig_len as u64;
                }
            }
        }
        assert_eq!(opens, 10);
        assert_eq!(closes, 10);
        assert!(evs.windows(2).all(|w| w[0].ts_ns() <= w[1].ts_ns()));
    }

    /// The generator before streaming: every connection made, then one
    /// stable sort. The stream must give the same events in the same order.
    fn all_at_once(g: &mut Synthetic, conns: usize, txns: usize) -> Vec<Event> {
        let mut evs = Vec::new();
        for c in 0..conns {
            g.connection(c, txns, &mut evs);
        }
        evs.sort_by_key(|e| e.ts_ns());
        evs.into_iter()
            .flat_map(|e| decode::decode_all(&decode::encode(&e)).unwrap())
            .collect()
    }

    #[test]
    fn the_stream_is_the_sorted_whole() {
        for (conns, txns, capture) in [
            (0, 4, 4096),
            (1, 0, 4096),
            (5, 4, 4096),
            (7, 1, 100),
            (30, 25, 512),
            (12, 60, 4096),
        ] {
            let g = Synthetic::new(capture, 0x05b2e7);
            let want = all_at_once(&mut g.clone(), conns, txns);
            let got = g.clone().generate(conns, txns);
            assert_eq!(got.len(), want.len(), "{conns}x{txns}");
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    format!("{a:?}"),
                    format!("{b:?}"),
                    "{conns}x{txns}: event {i}"
                );
            }
        }
    }

    #[test]
    fn the_stream_holds_only_overlapping_connections() {
        let mut g = Synthetic::new(4096, 3);
        let mut s = g.stream(usize::MAX, 4);
        let mut most = 0;
        for _ in 0..100_000 {
            s.next().unwrap();
            most = most.max(s.queues.len());
        }
        assert!(most < 16, "{most} connections held at once");
    }
}
