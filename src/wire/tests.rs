// SPDX-License-Identifier: GPL-3.0-or-later
//! Capture parsing from hand-built bytes, and captures end to end.

use super::pcap::*;
use super::*;
use std::net::SocketAddr;

// ---- packet builders -------------------------------------------------------

fn tcp_hdr(sp: u16, dp: u16, seq: u32, ack: u32, flags: u8) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sp.to_be_bytes());
    t.extend_from_slice(&dp.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push(5 << 4);
    t.push(flags);
    t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    t
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn ipv4_tcp(
    src: [u8; 4],
    sp: u16,
    dst: [u8; 4],
    dp: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    let tcp = tcp_hdr(sp, dp, seq, ack, flags);
    let total = 20 + tcp.len() + data.len();
    let mut b = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ];
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.extend_from_slice(&tcp);
    b.extend_from_slice(data);
    b
}

fn ipv6_tcp(sp: u16, dp: u16, seq: u32, flags: u8, data: &[u8], with_ext: bool) -> Vec<u8> {
    let tcp = tcp_hdr(sp, dp, seq, 0, flags);
    let ext = if with_ext { 8 } else { 0 };
    let plen = ext + tcp.len() + data.len();
    let mut b = vec![
        0x60,
        0,
        0,
        0,
        (plen >> 8) as u8,
        plen as u8,
        if with_ext { 0 } else { 6 },
        64,
    ];
    let mut src = [0u8; 16];
    src[15] = 1;
    let mut dst = [0u8; 16];
    dst[0] = 0xfe;
    dst[1] = 0x80;
    dst[15] = 2;
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    if with_ext {
        // hop-by-hop: next=TCP, len 0 (8 bytes), PadN
        b.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    }
    b.extend_from_slice(&tcp);
    b.extend_from_slice(data);
    b
}

fn eth(et: u16, ip: &[u8], vlan: bool) -> Vec<u8> {
    let mut b = vec![0u8; 12];
    if vlan {
        b.extend_from_slice(&0x8100u16.to_be_bytes());
        b.extend_from_slice(&[0x00, 0x0a]);
    }
    b.extend_from_slice(&et.to_be_bytes());
    b.extend_from_slice(ip);
    b
}

fn sll(et: u16, ip: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 14];
    b.extend_from_slice(&et.to_be_bytes());
    b.extend_from_slice(ip);
    b
}

fn sll2(et: u16, ip: &[u8]) -> Vec<u8> {
    let mut b = et.to_be_bytes().to_vec();
    b.extend_from_slice(&[0u8; 18]);
    b.extend_from_slice(ip);
    b
}

pub(crate) fn pcap_file(linktype: u32, nanos: bool, pkts: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&(if nanos { 0xa1b23c4du32 } else { 0xa1b2c3d4u32 }).to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0u8; 8]);
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&linktype.to_le_bytes());
    for (ts, d) in pkts {
        let sec = (ts / 1_000_000_000) as u32;
        let frac = if nanos {
            (ts % 1_000_000_000) as u32
        } else {
            ((ts % 1_000_000_000) / 1000) as u32
        };
        f.extend_from_slice(&sec.to_le_bytes());
        f.extend_from_slice(&frac.to_le_bytes());
        f.extend_from_slice(&(d.len() as u32).to_le_bytes());
        f.extend_from_slice(&(d.len() as u32).to_le_bytes());
        f.extend_from_slice(d);
    }
    f
}

fn ng_block(be: bool, btype: u32, body: &[u8]) -> Vec<u8> {
    let u32b = |x: u32| if be { x.to_be_bytes() } else { x.to_le_bytes() };
    let mut body = body.to_vec();
    while body.len() & 3 != 0 {
        body.push(0);
    }
    let len = 12 + body.len() as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&u32b(btype));
    b.extend_from_slice(&u32b(len));
    b.extend_from_slice(&body);
    b.extend_from_slice(&u32b(len));
    b
}

/// pcapng with one interface; `tsresol` = Some(9) for ns timestamps.
pub(crate) fn pcapng_file(
    be: bool,
    linktype: u16,
    tsresol: Option<u8>,
    pkts: &[(u64, Vec<u8>)],
) -> Vec<u8> {
    let u16b = |x: u16| if be { x.to_be_bytes() } else { x.to_le_bytes() };
    let u32b = |x: u32| if be { x.to_be_bytes() } else { x.to_le_bytes() };
    let mut f = Vec::new();
    let mut shb = u32b(0x1a2b3c4d).to_vec();
    shb.extend_from_slice(&u16b(1));
    shb.extend_from_slice(&u16b(0));
    shb.extend_from_slice(&[0xff; 8]);
    f.extend(ng_block(be, 0x0a0d0d0a, &shb));
    let mut idb = u16b(linktype).to_vec();
    idb.extend_from_slice(&u16b(0));
    idb.extend_from_slice(&u32b(0));
    if let Some(r) = tsresol {
        idb.extend_from_slice(&u16b(9));
        idb.extend_from_slice(&u16b(1));
        idb.extend_from_slice(&[r, 0, 0, 0]);
        idb.extend_from_slice(&[0, 0, 0, 0]);
    }
    f.extend(ng_block(be, 1, &idb));
    // an unknown block type in between is skipped
    f.extend(ng_block(be, 0x0bad, &[1, 2, 3, 4]));
    let div = match tsresol {
        Some(9) => 1,
        _ => 1000,
    };
    for (ts, d) in pkts {
        let t = ts / div;
        let mut epb = u32b(0).to_vec();
        epb.extend_from_slice(&u32b((t >> 32) as u32));
        epb.extend_from_slice(&u32b(t as u32));
        epb.extend_from_slice(&u32b(d.len() as u32));
        epb.extend_from_slice(&u32b(d.len() as u32));
        epb.extend_from_slice(d);
        f.extend(ng_block(be, 6, &epb));
    }
    f
}

fn all_packets(bytes: &[u8]) -> (Vec<Packet>, Option<PcapError>) {
    let mut r = match Reader::new(bytes) {
        Ok(r) => r,
        Err(e) => return (vec![], Some(e)),
    };
    let mut v = Vec::new();
    loop {
        match r.next_packet() {
            Ok(Some(p)) => v.push(p),
            Ok(None) => return (v, None),
            Err(e) => return (v, Some(e)),
        }
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const C: [u8; 4] = [10, 0, 0, 1];
const S: [u8; 4] = [10, 0, 0, 2];

// ---- decoding ----------------------------------------------------------------

#[test]
fn decode_ethernet_vlan_sll_sll2_null_raw() {
    let ip = ipv4_tcp(C, 40000, S, 80, 7, 9, ACK, b"hi");
    let frames = [
        (LINKTYPE_ETHERNET, eth(0x0800, &ip, false)),
        (LINKTYPE_ETHERNET, eth(0x0800, &ip, true)),
        (LINKTYPE_LINUX_SLL, sll(0x0800, &ip)),
        (LINKTYPE_LINUX_SLL2, sll2(0x0800, &ip)),
        (
            LINKTYPE_NULL,
            [2u8, 0, 0, 0]
                .iter()
                .copied()
                .chain(ip.iter().copied())
                .collect(),
        ),
        (LINKTYPE_RAW, ip.clone()),
        (LINKTYPE_IPV4, ip.clone()),
    ];
    for (lt, f) in frames {
        let s = decode(lt, &f).unwrap_or_else(|e| panic!("linktype {lt}: {e:?}"));
        assert_eq!(s.src, sa("10.0.0.1:40000"));
        assert_eq!(s.dst, sa("10.0.0.2:80"));
        assert_eq!((s.seq, s.ack, s.flags, s.len), (7, 9, ACK, 2));
        assert_eq!(s.payload, b"hi");
    }
}

#[test]
fn decode_ipv6_with_extension_header() {
    for ext in [false, true] {
        let ip = ipv6_tcp(5555, 8080, 1, SYN, b"", ext);
        let fr = eth(0x86dd, &ip, true);
        let s = decode(LINKTYPE_ETHERNET, &fr).unwrap();
        assert_eq!(s.src, sa("[::1]:5555"));
        assert_eq!(s.dst, sa("[fe80::2]:8080"));
        assert_eq!(s.flags, SYN);
        let ip = ipv6_tcp(5555, 8080, 1, ACK, b"abc", ext);
        let s = decode(LINKTYPE_IPV6, &ip).unwrap();
        assert_eq!(s.payload, b"abc");
        let null: Vec<u8> = [30u8, 0, 0, 0]
            .iter()
            .copied()
            .chain(ip.iter().copied())
            .collect();
        assert_eq!(decode(LINKTYPE_NULL, &null).unwrap().payload, b"abc");
    }
}

#[test]
fn decode_trims_ethernet_padding_and_skips_non_tcp() {
    let ip = ipv4_tcp(C, 1, S, 2, 0, 0, ACK, b"");
    let mut f = eth(0x0800, &ip, false);
    f.extend_from_slice(&[0u8; 6]); // padding to 60 bytes
    assert_eq!(decode(LINKTYPE_ETHERNET, &f).unwrap().payload, b"");
    let mut udp = ip.clone();
    udp[9] = 17;
    assert_eq!(decode(LINKTYPE_RAW, &udp), Err(Skip::NotTcp));
    assert_eq!(
        decode(LINKTYPE_ETHERNET, &eth(0x0806, &[0u8; 28], false)),
        Err(Skip::NotIp)
    );
    let mut frag = ip.clone();
    frag[6] = 0x20; // MF
    assert_eq!(decode(LINKTYPE_RAW, &frag), Err(Skip::Fragment));
    assert_eq!(decode(999, &f), Err(Skip::LinkType));
}

#[test]
fn snaplen_cut_payload_keeps_wire_length() {
    let ip = ipv4_tcp(C, 1, S, 2, 0, 0, ACK, b"0123456789");
    let cut = &ip[..ip.len() - 4];
    let s = decode(LINKTYPE_RAW, cut).unwrap();
    assert_eq!(s.len, 10);
    assert_eq!(s.payload, b"012345");
}

#[test]
fn decode_never_panics_on_garbage() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in 0..3000 {
        let len = n % 90;
        let mut b = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.push(x as u8);
        }
        for lt in [0, 1, 101, 108, 113, 228, 229, 276] {
            let _ = decode(lt, &b);
        }
        let _ = all_packets(&b);
        // garbage after valid headers
        let mut f = pcap_file(1, false, &[]);
        f.extend_from_slice(&b);
        let _ = all_packets(&f);
        let mut g = pcapng_file(false, 1, None, &[]);
        g.extend_from_slice(&b);
        let _ = all_packets(&g);
    }
}

// ---- containers --------------------------------------------------------------

#[test]
fn pcap_micro_and_nano_timestamps() {
    let p = eth(0x0800, &ipv4_tcp(C, 1, S, 2, 0, 0, ACK, b"x"), false);
    let ts = 1_795_966_200_123_456_789u64;
    let (v, e) = all_packets(&pcap_file(1, true, &[(ts, p.clone())]));
    assert!(e.is_none());
    assert_eq!(v[0].ts_ns, ts);
    assert_eq!(v[0].linktype, 1);
    assert_eq!(v[0].data, p);
    let (v, _) = all_packets(&pcap_file(1, false, &[(ts, p.clone())]));
    assert_eq!(v[0].ts_ns, ts / 1000 * 1000);
    // big-endian header
    let mut be = pcap_file(1, false, &[]);
    be[..4].copy_from_slice(&0xa1b2c3d4u32.to_be_bytes());
    be[20..24].copy_from_slice(&113u32.to_be_bytes());
    let r = Reader::new(&be[..]).unwrap();
    drop(r);
}

#[test]
fn pcapng_both_endians_and_resolutions() {
    let p = sll2(0x0800, &ipv4_tcp(C, 1, S, 2, 0, 0, ACK, b"x"));
    let ts = 1_795_966_200_123_456_789u64;
    for be in [false, true] {
        let (v, e) = all_packets(&pcapng_file(
            be,
            276,
            Some(9),
            &[(ts, p.clone()), (ts + 1, p.clone())],
        ));
        assert!(e.is_none(), "{e:?}");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].ts_ns, ts);
        assert_eq!(v[1].ts_ns, ts + 1);
        assert_eq!(v[0].linktype, 276);
        assert!(decode(v[0].linktype, &v[0].data).is_ok());
        let (v, _) = all_packets(&pcapng_file(be, 276, None, &[(ts, p.clone())]));
        assert_eq!(v[0].ts_ns, ts / 1000 * 1000);
    }
}

#[test]
fn truncated_files_report_and_keep_earlier_packets() {
    let p = eth(0x0800, &ipv4_tcp(C, 1, S, 2, 0, 0, ACK, b"hello"), false);
    for f in [
        pcap_file(1, false, &[(1, p.clone()), (2, p.clone())]),
        pcapng_file(false, 1, None, &[(1000, p.clone()), (2000, p.clone())]),
    ] {
        for cut in [f.len() - 1, f.len() - 10, f.len() - p.len() - 4] {
            let (v, e) = all_packets(&f[..cut]);
            assert_eq!(v.len(), 1, "cut {cut}");
            let e = e.expect("truncation reported");
            assert!(e.msg.contains("truncated"), "{e}");
        }
    }
    assert!(Reader::new(&b"\xd4\xc3\xb2\xa1\x02\x00"[..]).is_err());
    assert!(Reader::new(&b"GET / HTTP/1.1\r\n"[..]).is_err());
    assert!(Reader::new(&b""[..]).is_err());
}

// ---- end to end ----------------------------------------------------------------

fn conversation(with_syn: bool, lose_resp_middle: bool) -> Vec<(u64, Vec<u8>)> {
    let t0 = 1_795_966_200_000_000_000u64;
    let mut v = Vec::new();
    let pkt = |t: u64, c2s: bool, seq: u32, ack: u32, fl: u8, d: &[u8]| {
        let ip = if c2s {
            ipv4_tcp(C, 40000, S, 80, seq, ack, fl, d)
        } else {
            ipv4_tcp(S, 80, C, 40000, seq, ack, fl, d)
        };
        (t, eth(0x0800, &ip, false))
    };
    if with_syn {
        v.push(pkt(t0, true, 99, 0, SYN, b""));
        v.push(pkt(t0 + 10_000, false, 499, 100, SYN | ACK, b""));
        v.push(pkt(t0 + 20_000, true, 100, 500, ACK, b""));
    }
    let req = b"POST /upload?x=1 HTTP/1.1\r\nHost: s\r\nContent-Length: 4\r\n\r\nbody";
    v.push(pkt(t0 + 100_000, true, 100, 500, ACK, req));
    let r = req.len() as u32;
    let head = b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\n";
    v.push(pkt(t0 + 1_100_000, false, 500, 100 + r, ACK, head));
    let h = head.len() as u32;
    if !lose_resp_middle {
        v.push(pkt(t0 + 1_200_000, false, 500 + h, 100 + r, ACK, b"01234"));
    }
    v.push(pkt(
        t0 + 1_300_000,
        false,
        500 + h + 5,
        100 + r,
        ACK,
        b"56789",
    ));
    // retransmission of the head
    v.push(pkt(t0 + 1_400_000, false, 500, 100 + r, ACK, head));
    v.push(pkt(
        t0 + 2_000_000,
        true,
        100 + r,
        500 + h + 10,
        FIN | ACK,
        b"",
    ));
    v.push(pkt(
        t0 + 2_100_000,
        false,
        500 + h + 10,
        101 + r,
        FIN | ACK,
        b"",
    ));
    v
}

fn run(bytes: Vec<u8>) -> (Vec<serde_json::Value>, WireSummary) {
    let mut s = WireStream::new(
        std::io::Cursor::new(bytes),
        tracker_config(false, crate::redact::Redact::default(), false),
    )
    .unwrap();
    let recs: Vec<serde_json::Value> = s
        .by_ref()
        .map(|r| serde_json::from_str(&r.to_json_line()).unwrap())
        .collect();
    (recs, s.summary())
}

#[test]
fn capture_to_transaction_records() {
    let (recs, sum) = run(pcap_file(1, true, &conversation(true, false)));
    assert_eq!(recs.len(), 1, "{recs:?}");
    let t = &recs[0];
    assert_eq!(t["source"], "wire");
    assert!(t["pid"].is_null() && t["tid"].is_null() && t["comm"].is_null());
    assert_eq!(t["method"], "POST");
    assert_eq!(t["target"], "/upload?x=1");
    assert_eq!(t["status"], 201);
    assert_eq!(t["req_body_bytes"], 4);
    assert_eq!(t["resp_body_bytes"], 10);
    assert_eq!(t["role"], "client");
    assert_eq!(t["local_addr"], "10.0.0.1");
    assert_eq!(t["remote_port"], 80);
    assert_eq!(t["conn_id"], "0-0-1-1");
    assert_eq!(t["ts_start_ns"], 1_795_966_200_000_100_000i64);
    assert_eq!(t["latency_ns"], 1_200_000);
    assert_eq!(t["gap"], false);
    assert_eq!(sum.reassembly.flows, 1);
    assert_eq!(sum.reassembly.flows_closed, 1);
    assert!(sum.reassembly.retransmitted_bytes > 0);
    assert_eq!(sum.tracker.transactions, 1);
}

#[test]
fn capture_gap_is_flagged_not_invented() {
    let (recs, sum) = run(pcapng_file(false, 1, Some(9), &conversation(true, true)));
    assert_eq!(sum.reassembly.gaps, 1);
    assert_eq!(sum.reassembly.gap_bytes, 5);
    assert_eq!(recs.len(), 1);
    assert!(
        recs[0]["gap"] == true || recs[0]["truncated"] == true,
        "{}",
        recs[0]
    );
    assert_eq!(recs[0]["method"], "POST");
}

#[test]
fn midstream_capture_infers_role() {
    let (recs, sum) = run(pcap_file(1, false, &conversation(false, false)));
    assert_eq!(sum.reassembly.flows_midstream, 1);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["method"], "POST");
    assert_eq!(recs[0]["role"], "client");
    assert_eq!(recs[0]["local_port"], 40000);
}

#[test]
fn truncated_capture_processes_what_came_before() {
    let mut f = pcap_file(1, true, &conversation(true, false));
    f.truncate(f.len() - 7);
    let (recs, sum) = run(f);
    assert!(
        sum.error.as_deref().unwrap().contains("truncated"),
        "{:?}",
        sum.error
    );
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["status"], 201);
    assert!(sum.human().contains("WARNING"));
}
