// SPDX-License-Identifier: GPL-3.0-or-later
//! TCP stream reassembly: captured segments → the probe's event model
//! (`ConnOpen` / `DataEvent` / `CloseEvent`) seen from the client's side.
//!
//! * Client→server bytes are `Egress`, server→client bytes `Ingress`; the
//!   role is `Client` when the handshake (SYN or SYN-ACK) was captured and
//!   `Unknown` for flows first seen mid-stream (the tracker then infers it;
//!   the side with the higher port is guessed as the client).
//! * Stream positions are sequence numbers relative to the ISN + 1 (or to the
//!   first captured byte mid-stream), unwrapped to 64 bits.
//! * Out-of-order segments are held (bounded by count, bytes and time);
//!   retransmitted and overlapping bytes are delivered once.
//! * Bytes never captured are never invented: the next delivered segment's
//!   `pos` simply jumps, which the tracker records as a gap.
//! * FIN from both sides (with no hole left) or RST → `CloseEvent`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Serialize;

use super::pcap::{Segment, ACK, FIN, RST, SYN};
use crate::event::{
    CloseEvent, ConnId, ConnOpen, DataEvent, Direction, Event, ProcInfo, Role, SockAddrs, Syscall,
};

/// Reassembly bounds.
#[derive(Clone, Debug)]
pub struct ReasmConfig {
    /// Most out-of-order segments held per direction before declaring a gap.
    pub max_ooo_segments: usize,
    /// Most out-of-order bytes held per direction before declaring a gap.
    pub max_ooo_bytes: usize,
    /// A held segment older than this (capture time) forces a gap.
    pub ooo_timeout_ns: u64,
    /// A flow with no packet for this long is forgotten (no close event).
    pub idle_timeout_ns: u64,
    /// Most flows tracked at once (least recently active evicted).
    pub max_flows: usize,
}

impl Default for ReasmConfig {
    fn default() -> Self {
        ReasmConfig {
            max_ooo_segments: 256,
            max_ooo_bytes: 1 << 20,
            ooo_timeout_ns: 1_000_000_000,
            idle_timeout_ns: 300_000_000_000,
            max_flows: 65_536,
        }
    }
}

/// Reassembly counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReasmStats {
    pub segments: u64,
    pub flows: u64,
    pub flows_midstream: u64,
    pub flows_closed: u64,
    pub flows_reset: u64,
    /// Holes in a stream that were never filled.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Payload bytes delivered (each stream byte once).
    pub bytes: u64,
    /// Payload bytes seen again (retransmission/overlap) and dropped.
    pub retransmitted_bytes: u64,
    pub out_of_order_segments: u64,
    /// Payload bytes on the wire but cut by the capture snaplen.
    pub snaplen_cut_bytes: u64,
    /// Segments for flows already closed/unknown that carried nothing useful.
    pub ignored_segments: u64,
}

type FlowKey = (SocketAddr, SocketAddr);

fn key_of(a: SocketAddr, b: SocketAddr) -> FlowKey {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

#[derive(Debug)]
struct Held {
    len: u32,
    data: Vec<u8>,
    ts: u64,
}

#[derive(Debug, Default)]
struct Half {
    /// Sequence number of stream position 0.
    base: Option<u32>,
    /// Next expected stream position.
    next: u64,
    ooo: BTreeMap<u64, Held>,
    ooo_bytes: usize,
    fin_pos: Option<u64>,
}

impl Half {
    /// 32-bit sequence number → 64-bit stream position (nearest to `next`);
    /// None when it lies before the stream start.
    fn pos_of(&self, seq: u32) -> Option<u64> {
        let base = self.base?;
        let rel = seq.wrapping_sub(base) as u64;
        let hi = self.next & !0xffff_ffff;
        let mut best: Option<u64> = None;
        for cand in [hi.checked_sub(1 << 32), Some(hi), hi.checked_add(1 << 32)]
            .into_iter()
            .flatten()
        {
            let c = cand | rel;
            if best.is_none_or(|b| c.abs_diff(self.next) < b.abs_diff(self.next)) {
                best = Some(c);
            }
        }
        // A "position" more than 2 GiB behind is really a sequence before the start.
        best.filter(|&b| !(b < self.next && self.next - b > (1 << 31)))
    }
}

#[derive(Debug)]
struct Flow {
    id: u64,
    client: SocketAddr,
    server: SocketAddr,
    dirs: [Half; 2],
    last_ts: u64,
    /// Both FINs seen at this time, waiting for holes to fill.
    closing_since: Option<u64>,
}

/// The reassembler: feed segments in capture order, collect events.
pub struct Reassembler {
    cfg: ReasmConfig,
    flows: BTreeMap<FlowKey, Flow>,
    /// Recently closed flows: late packets for them are ignored.
    closed: BTreeMap<FlowKey, u64>,
    next_id: u64,
    last_sweep: u64,
    stats: ReasmStats,
}

fn proc_info() -> ProcInfo {
    ProcInfo {
        tgid: 0,
        tid: 0,
        comm: "".into(),
    }
}

impl Flow {
    fn conn(&self) -> ConnId {
        ConnId {
            tgid: 0,
            proc_start_ns: 0,
            fd: (self.id % i32::MAX as u64) as i32,
            gen: self.id,
        }
    }
}

impl Reassembler {
    pub fn new(cfg: ReasmConfig) -> Reassembler {
        Reassembler {
            cfg,
            flows: BTreeMap::new(),
            closed: BTreeMap::new(),
            next_id: 1,
            last_sweep: 0,
            stats: ReasmStats::default(),
        }
    }

    pub fn stats(&self) -> &ReasmStats {
        &self.stats
    }

    fn new_flow(
        &mut self,
        ts: u64,
        client: SocketAddr,
        server: SocketAddr,
        known: bool,
        out: &mut Vec<Event>,
    ) -> FlowKey {
        if self.flows.len() >= self.cfg.max_flows.max(1) {
            if let Some(k) = self
                .flows
                .iter()
                .min_by_key(|(_, f)| f.last_ts)
                .map(|(k, _)| *k)
            {
                self.drop_flow(k, false, out);
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.stats.flows += 1;
        if !known {
            self.stats.flows_midstream += 1;
        }
        let f = Flow {
            id,
            client,
            server,
            dirs: [Half::default(), Half::default()],
            last_ts: ts,
            closing_since: None,
        };
        out.push(Event::open(ConnOpen {
            ts_ns: ts,
            conn: f.conn(),
            proc: proc_info(),
            role: if known { Role::Client } else { Role::Unknown },
            addrs: Some(SockAddrs {
                local: client,
                remote: server,
            }),
            midstream: !known,
            syscall: if known {
                Syscall::Connect
            } else {
                Syscall::Unknown
            },
            cgroup_id: 0,
            identity: None,
        }));
        let k = key_of(client, server);
        self.closed.remove(&k);
        self.flows.insert(k, f);
        k
    }

    /// Feed one segment captured at `ts` (ns).
    pub fn on_segment(&mut self, ts: u64, seg: &Segment, out: &mut Vec<Event>) {
        self.stats.segments += 1;
        let k = key_of(seg.src, seg.dst);
        let syn = seg.flags & SYN != 0;
        let ack = seg.flags & ACK != 0;
        if syn && !ack {
            // A new connection unless it's a retransmitted SYN of this one.
            if let Some(f) = self.flows.get(&k) {
                let same = f.client == seg.src && f.dirs[0].base == Some(seg.seq.wrapping_add(1));
                if !same {
                    self.drop_flow(k, true, out);
                }
            }
            if !self.flows.contains_key(&k) {
                self.new_flow(ts, seg.src, seg.dst, true, out);
            }
            if let Some(f) = self.flows.get_mut(&k) {
                f.dirs[0].base.get_or_insert(seg.seq.wrapping_add(1));
            }
        } else if syn && ack {
            if !self.flows.contains_key(&k) {
                self.new_flow(ts, seg.dst, seg.src, true, out);
            }
            if let Some(f) = self.flows.get_mut(&k) {
                if f.server == seg.src {
                    f.dirs[1].base.get_or_insert(seg.seq.wrapping_add(1));
                    f.dirs[0].base.get_or_insert(seg.ack);
                }
            }
        } else if !self.flows.contains_key(&k) {
            if seg.len == 0 || self.closed.contains_key(&k) {
                self.stats.ignored_segments += 1;
                self.sweep(ts, out);
                return;
            }
            // First seen mid-stream: guess the ephemeral (higher) port is the client.
            let (c, s) = if seg.src.port() >= seg.dst.port() {
                (seg.src, seg.dst)
            } else {
                (seg.dst, seg.src)
            };
            self.new_flow(ts, c, s, false, out);
        }
        let Some(f) = self.flows.get_mut(&k) else {
            return;
        };
        f.last_ts = f.last_ts.max(ts);
        let d = if seg.src == f.client { 0 } else { 1 };
        let seq = if syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        if seg.len > 0 {
            f.dirs[d].base.get_or_insert(seq);
            match f.dirs[d].pos_of(seq) {
                Some(pos) => {
                    let cut = (seg.len as usize).saturating_sub(seg.payload.len());
                    self.stats.snaplen_cut_bytes += cut as u64;
                    deliver(
                        &self.cfg,
                        &mut self.stats,
                        f,
                        d,
                        pos,
                        seg.len,
                        seg.payload,
                        ts,
                        out,
                    );
                }
                None => self.stats.retransmitted_bytes += seg.len as u64,
            }
        }
        if seg.flags & FIN != 0 {
            if let Some(p) = f.dirs[d].base.and_then(|_| f.dirs[d].pos_of(seq)) {
                f.dirs[d].fin_pos = Some(p + seg.len as u64);
            } else {
                f.dirs[d].fin_pos = Some(f.dirs[d].next);
            }
        }
        if ack && f.dirs.iter().all(|h| h.fin_pos.is_some()) {
            // Both sides closed and the peer acknowledged bytes we hold no
            // segment for: the sender will not resend them, so the hole is
            // capture loss. (Only at close: captures may reorder an ACK ahead
            // of the data it covers, e.g. on SPAN ports.)
            let o = 1 - d;
            if let Some(ap) = f.dirs[o].pos_of(seg.ack) {
                while let Some((&p, _)) = f.dirs[o].ooo.iter().next() {
                    if p > ap {
                        break;
                    }
                    force_gap(&mut self.stats, f, o, p, out);
                }
            }
        }
        if seg.flags & RST != 0 {
            self.stats.flows_reset += 1;
            self.drop_flow(k, true, out);
        } else if let Some(f) = self.flows.get_mut(&k) {
            if f.dirs.iter().all(|h| h.fin_pos.is_some()) {
                f.closing_since.get_or_insert(ts);
                if f.dirs
                    .iter()
                    .all(|h| h.ooo.is_empty() && h.fin_pos.is_some_and(|p| h.next >= p))
                {
                    self.drop_flow(k, true, out);
                }
            }
        }
        self.sweep(ts, out);
    }

    /// Flush held data (as gaps) and forget the flow; emit a close if asked.
    fn drop_flow(&mut self, k: FlowKey, close: bool, out: &mut Vec<Event>) {
        let Some(mut f) = self.flows.remove(&k) else {
            return;
        };
        for d in 0..2 {
            while let Some((&p, _)) = f.dirs[d].ooo.iter().next() {
                force_gap(&mut self.stats, &mut f, d, p, out);
            }
        }
        if close {
            self.stats.flows_closed += 1;
            let fin = |h: &Half| h.fin_pos.map_or(h.next, |p| p.max(h.next));
            out.push(Event::Close(CloseEvent {
                ts_ns: f.last_ts,
                conn: f.conn(),
                proc: proc_info(),
                tx_bytes: fin(&f.dirs[0]),
                rx_bytes: fin(&f.dirs[1]),
            }));
            self.closed.insert(k, f.last_ts);
        }
    }

    /// Time-based bounds: overdue out-of-order data, closing and idle flows.
    fn sweep(&mut self, now: u64, out: &mut Vec<Event>) {
        if now < self.last_sweep.saturating_add(100_000_000) {
            return;
        }
        self.last_sweep = now;
        let tmo = self.cfg.ooo_timeout_ns;
        let mut to_close = Vec::new();
        let mut to_drop = Vec::new();
        for (k, f) in self.flows.iter_mut() {
            for d in 0..2 {
                while let Some((&p, h)) = f.dirs[d].ooo.iter().next() {
                    if now.saturating_sub(h.ts) <= tmo {
                        break;
                    }
                    force_gap(&mut self.stats, f, d, p, out);
                }
            }
            if f.closing_since.is_some_and(|t| now.saturating_sub(t) > tmo) {
                to_close.push(*k);
            } else if now.saturating_sub(f.last_ts) > self.cfg.idle_timeout_ns {
                to_drop.push(*k);
            }
        }
        for k in to_close {
            self.drop_flow(k, true, out);
        }
        for k in to_drop {
            self.drop_flow(k, false, out);
        }
        self.closed
            .retain(|_, t| now.saturating_sub(*t) < 60_000_000_000);
    }

    /// End of capture: flush held data; flows that saw a FIN get a close,
    /// the rest are left to the tracker's end-of-input flush.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        for k in keys {
            let fin = self.flows[&k].dirs.iter().any(|h| h.fin_pos.is_some());
            self.drop_flow(k, fin, out);
        }
    }
}

fn data_event(f: &Flow, d: usize, pos: u64, len: u32, payload: &[u8], ts: u64) -> Event {
    Event::Data(DataEvent {
        ts_ns: ts,
        start_ns: ts,
        conn: f.conn(),
        proc: proc_info(),
        dir: if d == 0 {
            Direction::Egress
        } else {
            Direction::Ingress
        },
        pos,
        orig_len: len,
        payload: payload[..payload.len().min(len as usize)].to_vec(),
        syscall: Syscall::Unknown,
        fault: false,
    })
}

/// Deliver a segment at `pos`: in order → emit (then drain held ones);
/// ahead → hold; behind → trim the already-delivered part.
#[allow(clippy::too_many_arguments)]
fn deliver(
    cfg: &ReasmConfig,
    st: &mut ReasmStats,
    f: &mut Flow,
    d: usize,
    mut pos: u64,
    mut len: u32,
    mut payload: &[u8],
    ts: u64,
    out: &mut Vec<Event>,
) {
    let next = f.dirs[d].next;
    let end = pos + len as u64;
    if end <= next {
        st.retransmitted_bytes += len as u64;
        return;
    }
    if pos < next {
        let skip = (next - pos) as usize;
        st.retransmitted_bytes += skip as u64;
        payload = payload.get(skip..).unwrap_or(&[]);
        len -= skip as u32;
        pos = next;
    }
    if pos > next {
        st.out_of_order_segments += 1;
        let h = &mut f.dirs[d];
        let replace = h.ooo.get(&pos).is_none_or(|o| o.len < len);
        if replace {
            let old = h.ooo.insert(
                pos,
                Held {
                    len,
                    data: payload.to_vec(),
                    ts,
                },
            );
            if let Some(o) = old {
                st.retransmitted_bytes += o.len as u64;
                h.ooo_bytes -= o.data.len();
            }
            h.ooo_bytes += payload.len();
        } else {
            st.retransmitted_bytes += len as u64;
        }
        while f.dirs[d].ooo.len() > cfg.max_ooo_segments || f.dirs[d].ooo_bytes > cfg.max_ooo_bytes
        {
            let Some((&p, _)) = f.dirs[d].ooo.iter().next() else {
                break;
            };
            force_gap(st, f, d, p, out);
        }
        return;
    }
    st.bytes += len as u64;
    out.push(data_event(f, d, pos, len, payload, ts));
    f.dirs[d].next = end;
    drain(st, f, d, out);
}

/// Emit held segments that are now in order.
fn drain(st: &mut ReasmStats, f: &mut Flow, d: usize, out: &mut Vec<Event>) {
    loop {
        let next = f.dirs[d].next;
        let Some((&p, _)) = f.dirs[d].ooo.iter().next() else {
            return;
        };
        if p > next {
            return;
        }
        let Some(h) = f.dirs[d].ooo.remove(&p) else {
            return;
        };
        f.dirs[d].ooo_bytes -= h.data.len();
        let end = p + h.len as u64;
        if end <= next {
            st.retransmitted_bytes += h.len as u64;
            continue;
        }
        let skip = (next - p) as usize;
        st.retransmitted_bytes += skip as u64;
        let data = h.data.get(skip..).unwrap_or(&[]);
        let len = h.len - skip as u32;
        st.bytes += len as u64;
        out.push(data_event(f, d, next, len, data, h.ts));
        f.dirs[d].next = end;
    }
}

/// Give up on the hole before held position `p`: deliver from `p` on (the
/// event's position jumps; the tracker records the gap).
fn force_gap(st: &mut ReasmStats, f: &mut Flow, d: usize, p: u64, out: &mut Vec<Event>) {
    let next = f.dirs[d].next;
    if p > next {
        st.gaps += 1;
        st.gap_bytes += p - next;
        f.dirs[d].next = p;
    }
    drain(st, f, d, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    struct T {
        r: Reassembler,
        out: Vec<Event>,
        c: SocketAddr,
        s: SocketAddr,
    }

    impl T {
        fn new() -> T {
            T {
                r: Reassembler::new(ReasmConfig::default()),
                out: Vec::new(),
                c: a("10.0.0.1:40000"),
                s: a("10.0.0.2:80"),
            }
        }
        fn seg(&mut self, ts: u64, from_client: bool, seq: u32, ack: u32, flags: u8, data: &[u8]) {
            let (src, dst) = if from_client {
                (self.c, self.s)
            } else {
                (self.s, self.c)
            };
            let seg = Segment {
                src,
                dst,
                seq,
                ack,
                flags,
                len: data.len() as u32,
                payload: data,
            };
            self.r.on_segment(ts, &seg, &mut self.out);
        }
        fn handshake(&mut self) {
            self.seg(1, true, 999, 0, SYN, b"");
            self.seg(2, false, 4999, 1000, SYN | ACK, b"");
            self.seg(3, true, 1000, 5000, ACK, b"");
        }
        /// (dir, pos, bytes) of data events.
        fn data(&self) -> Vec<(Direction, u64, Vec<u8>)> {
            self.out
                .iter()
                .filter_map(|e| match e {
                    Event::Data(d) => Some((d.dir, d.pos, d.payload.clone())),
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn in_order_with_handshake_and_close() {
        let mut t = T::new();
        t.handshake();
        t.seg(4, true, 1000, 5000, ACK, b"GET / HTTP/1.1\r\n\r\n");
        t.seg(5, false, 5000, 1018, ACK, b"HTTP/1.1 200 OK\r\n");
        t.seg(6, true, 1018, 5017, FIN | ACK, b"");
        t.seg(7, false, 5017, 1019, FIN | ACK, b"");
        match &t.out[0] {
            Event::Open(o) => {
                assert_eq!(o.role, Role::Client);
                assert!(!o.midstream);
                assert_eq!(o.addrs.unwrap().local, t.c);
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(
            t.data(),
            vec![
                (Direction::Egress, 0, b"GET / HTTP/1.1\r\n\r\n".to_vec()),
                (Direction::Ingress, 0, b"HTTP/1.1 200 OK\r\n".to_vec()),
            ]
        );
        match t.out.last().unwrap() {
            Event::Close(c) => {
                assert_eq!((c.tx_bytes, c.rx_bytes), (18, 17));
            }
            e => panic!("{e:?}"),
        }
        // Late final ACK does not resurrect the flow.
        t.seg(8, true, 1019, 5018, ACK, b"");
        assert_eq!(t.r.stats().flows, 1);
    }

    #[test]
    fn out_of_order_is_reordered() {
        let mut t = T::new();
        t.handshake();
        t.seg(4, true, 1005, 5000, ACK, b"world");
        t.seg(5, true, 1000, 5000, ACK, b"hello");
        assert_eq!(
            t.data(),
            vec![
                (Direction::Egress, 0, b"hello".to_vec()),
                (Direction::Egress, 5, b"world".to_vec())
            ]
        );
        assert_eq!(t.r.stats().out_of_order_segments, 1);
        assert_eq!(t.r.stats().gaps, 0);
    }

    #[test]
    fn retransmission_and_overlap_deduplicated() {
        let mut t = T::new();
        t.handshake();
        t.seg(4, true, 1000, 5000, ACK, b"hello");
        t.seg(5, true, 1000, 5000, ACK, b"hello");
        t.seg(6, true, 1003, 5000, ACK, b"lo wor");
        t.seg(7, true, 1009, 5000, ACK, b"ld");
        let d = t.data();
        let joined: Vec<u8> = d.iter().flat_map(|x| x.2.clone()).collect();
        assert_eq!(joined, b"hello world");
        assert_eq!(d[1].1, 5);
        assert_eq!(t.r.stats().retransmitted_bytes, 5 + 2);
    }

    #[test]
    fn missing_segment_becomes_gap_without_invented_bytes() {
        let mut t = T::new();
        t.handshake();
        t.seg(4, true, 1000, 5000, ACK, b"aaaa");
        // 1004..1008 never captured
        t.seg(5, true, 1008, 5000, ACK, b"cccc");
        t.seg(6, true, 1012, 5000, FIN | ACK, b"");
        t.seg(7, false, 5000, 1013, FIN | ACK, b"");
        let d = t.data();
        assert_eq!(
            d,
            vec![
                (Direction::Egress, 0, b"aaaa".to_vec()),
                (Direction::Egress, 8, b"cccc".to_vec())
            ]
        );
        assert_eq!(t.r.stats().gaps, 1);
        assert_eq!(t.r.stats().gap_bytes, 4);
    }

    #[test]
    fn gap_forced_by_time() {
        let mut t = T::new();
        t.handshake();
        t.seg(4, true, 1004, 5000, ACK, b"bbbb");
        assert!(t.data().is_empty());
        t.seg(2_000_000_000, false, 5000, 1000, ACK, b"x");
        let d = t.data();
        assert!(
            d.contains(&(Direction::Egress, 4, b"bbbb".to_vec())),
            "{d:?}"
        );
        assert_eq!(t.r.stats().gaps, 1);
    }

    #[test]
    fn midstream_flow_role_unknown_higher_port_is_client() {
        let mut t = T::new();
        t.seg(10, false, 777_777, 1, ACK, b"HTTP/1.1 200 OK\r\n");
        t.seg(11, true, 1, 777_794, ACK, b"GET / HTTP/1.1\r\n");
        match &t.out[0] {
            Event::Open(o) => {
                assert_eq!(o.role, Role::Unknown);
                assert!(o.midstream);
                assert_eq!(o.addrs.unwrap().local, t.c);
            }
            e => panic!("{e:?}"),
        }
        let d = t.data();
        assert_eq!(d[0].0, Direction::Ingress);
        assert_eq!(d[0].1, 0);
        assert_eq!(d[1].0, Direction::Egress);
    }

    #[test]
    fn sequence_wraparound() {
        let mut t = T::new();
        t.seg(1, true, u32::MAX - 2, 0, SYN, b"");
        t.seg(2, true, u32::MAX - 1, 0, ACK, b"abcd");
        t.seg(3, true, 2, 0, ACK, b"efgh");
        assert_eq!(
            t.data(),
            vec![
                (Direction::Egress, 0, b"abcd".to_vec()),
                (Direction::Egress, 4, b"efgh".to_vec())
            ]
        );
    }

    #[test]
    fn rst_closes_and_new_syn_is_new_flow() {
        let mut t = T::new();
        t.handshake();
        t.seg(4, true, 1000, 5000, RST, b"");
        assert!(matches!(t.out.last(), Some(Event::Close(_))));
        t.seg(5, true, 88, 0, SYN, b"");
        assert_eq!(t.r.stats().flows, 2);
        let ids: Vec<u64> = t
            .out
            .iter()
            .filter_map(|e| match e {
                Event::Open(o) => Some(o.conn.gen),
                _ => None,
            })
            .collect();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn ooo_bound_forces_gap() {
        let mut t = T::new();
        t.r.cfg.max_ooo_segments = 2;
        t.handshake();
        for i in 0..3u32 {
            t.seg(4 + i as u64, true, 1010 + i * 2, 5000, ACK, b"zz");
        }
        assert_eq!(t.r.stats().gaps, 1);
        assert_eq!(t.data().len(), 3);
        assert_eq!(t.data()[0].1, 10);
    }
}
