#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes the seed corpora under fuzz/corpus/<target>/ (committed; rerun
after changing a target's input layout or the ring-buffer ABI, and commit
the result). Needs a release build (`osprey wire` makes the recon seeds).

  fuzz/make_seeds.py

Seeds are small on purpose: a few real captures and records from tests/,
plus hand-made inputs in each target's own layout (src/fuzzing.rs and
fuzz/fuzz_targets/*.rs describe them). Files the fuzzer found (crashes
fixed since, named crash-*) are kept in the corpus by hand and not
rewritten here.
"""
import os, struct, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
RECON = os.path.join(ROOT, "tests", "recon")
BIN = os.path.join(ROOT, "target/x86_64-unknown-linux-gnu/release/osprey")

REQ = b"GET /index.html?x=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello"
POST = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nCookie: s=1\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
R304 = b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
R10 = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until close"


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def http_parser():
    for n, m in [("get", REQ), ("resp", RESP), ("post-chunked", POST), ("resp-chunked", CHUNKED),
                 ("304", R304), ("http10", R10), ("pipelined", REQ + REQ)]:
        write("http_parser", n, m)


def tracker():
    """fuzz_targets/tracker.rs: ops [op, conn, a, b, len, payload...]; op % 8:
    0 open (b % 3: role), 1 close, 2 expire, else data ((op >> 3) & 1: 0 egress, 1 ingress)."""
    def op(o, c=0, a=1, b=0, payload=b""):
        assert len(payload) < 256
        return bytes([o, c, a, b, len(payload)]) + payload

    client = op(0, b=1) + op(3, payload=REQ) + op(11, payload=RESP) + op(1)
    write("tracker", "client-txn", client)
    write("tracker", "server-txn", op(0, b=2) + op(11, payload=REQ) + op(3, payload=RESP) + op(1))
    write("tracker", "split-keepalive", op(0, b=1) + op(3, payload=REQ[:10]) + op(3, payload=REQ[10:])
          + op(11, payload=RESP) + op(3, payload=POST) + op(11, payload=CHUNKED) + op(2, b=200) + op(1))
    # h2c (prior knowledge): the preface, SETTINGS, two streams (the second
    # names its authority by the dynamic-table entry the first inserted)
    def frame(typ, flags, stream, payload):
        return struct.pack(">I", len(payload))[1:] + bytes([typ, flags]) + struct.pack(">I", stream) + payload
    settings = frame(4, 0, 0, b"")
    req1 = frame(1, 5, 1, b"\x82\x86\x84\x41\x0fwww.example.com")
    req3 = frame(1, 5, 3, b"\x82\x86\x84\xbe")
    resp1 = frame(1, 4, 1, b"\x88") + frame(0, 1, 1, b"hello")
    resp3 = frame(1, 5, 3, b"\x8d")
    write("tracker", "h2c-two-streams", op(0, b=1)
          + op(3, payload=b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings + req1)
          + op(11, payload=settings + frame(4, 1, 0, b"") + resp1)
          + op(3, payload=req3) + op(11, payload=resp3) + op(1))
    write("tracker", "gap-two-conns", op(0, 0, b=1) + op(0, 1, b=6) + op(3, 0, payload=REQ)
          + op(11, 1, b=0x83, payload=RESP) + op(11, 0, payload=R304) + op(3, 1, payload=REQ) + op(1, 0))


def tcp_reassembly():
    """src/fuzzing.rs tcp_reassembly: [flags, ports, seq_lo, seq_hi, step, ts, len % 64] + payload;
    ports: bits 0-1 the port pair, bit 2 the direction (1: server to client); seq is the last
    segment's end + the signed 16-bit delta (bit 7 of step: absolute, near the wrap)."""
    FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

    def seg(flags, d=0, delta=0, payload=b"", pair=0, step=0, ts=1):
        out = b""
        while True:  # payloads longer than 63 bytes go in several segments (step on the last)
            p, payload = payload[:63], payload[63:]
            st = 0 if payload else step
            out += bytes([flags, pair | (d << 2)]) + struct.pack("<h", delta) + bytes([st, ts, len(p)]) + p
            delta = 0
            if not payload:
                return out

    hs = seg(SYN, 0, 100, step=0) + seg(SYN | ACK, 1, 500) + seg(ACK, 0, 1)
    txn = seg(PSH | ACK, 0, 0, REQ) + seg(PSH | ACK, 1, 1, RESP)
    fin = seg(FIN | ACK, 0) + seg(FIN | ACK, 1) + seg(ACK, 0, 1)
    write("tcp_reassembly", "handshake-txn-fin", hs + txn + fin)
    write("tcp_reassembly", "midstream", seg(PSH | ACK, 0, 0, REQ, pair=1) + seg(PSH | ACK, 1, 0, RESP, pair=1)
          + seg(RST, 0, pair=1))
    # the second half of the request first, then the first half; a retransmission
    reorder = hs + seg(PSH | ACK, 0, 40, REQ[40:]) + seg(PSH | ACK, 0, -len(REQ), REQ[:40]) \
        + seg(PSH | ACK, 0, -20, REQ[-20:]) + seg(PSH | ACK, 1, 1, RESP) + fin
    write("tcp_reassembly", "reorder-retransmit", reorder)
    # a lost segment in a response body; a snaplen cut (wire length 20
    # more than captured) at the end of the next one
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n" + b"x" * 300
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n" + b"y" * 40
    write("tcp_reassembly", "hole-snaplen", hs + seg(PSH | ACK, 0, 0, REQ) + seg(PSH | ACK, 1, 1, big[:126])
          + seg(PSH | ACK, 1, 63, big[189:]) + seg(PSH | ACK, 0, 0, REQ) + seg(PSH | ACK, 1, 0, cut, step=0x40 | 20)
          + fin)
    write("tcp_reassembly", "two-flows", hs + seg(PSH | ACK, 0, 0, REQ, pair=2, ts=5) + txn
          + seg(PSH | ACK, 1, 0, RESP, pair=2) + seg(SYN, 0, 7, step=0x80) + fin)


def ringbuf_records():
    """src/fuzzing.rs ringbuf_records: [len u16 LE][record] ...; records laid out as
    include/osprey.h's structs (src/abi.rs)."""
    KIND_OPEN, KIND_DATA, KIND_CLOSE = 1, 2, 3
    F_MIDSTREAM, F_ADDRS, F_SEGMENTS = 1, 2, 4

    def hdr(kind, d=0, role=0, flags=0, sysc=0, ts=1000, comm=b"curl", fd=5, gen=1):
        return struct.pack("<BBBBB3xIIQ16sIiQQ", kind, d, role, flags, sysc, 42, 42, ts, comm, 42, fd, 7, gen)

    def open_(role=1, ts=1000, flags=F_ADDRS, **kw):
        addrs = struct.pack("<HHHH16s16s", 2, struct.unpack("<H", struct.pack(">H", 40000))[0],
                            struct.unpack("<H", struct.pack(">H", 80))[0], 0,
                            bytes([127, 0, 0, 1]) + bytes(12), bytes([127, 0, 0, 1]) + bytes(12))
        return hdr(KIND_OPEN, role=role, flags=flags, sysc=1, ts=ts, **kw) + addrs

    def data(payload, d=0, pos=0, ts=2000, orig=None, flags=0, segs=None, sysc=6, **kw):
        r = hdr(KIND_DATA, d=d, flags=flags, sysc=sysc, ts=ts, **kw) + struct.pack(
            "<QQII", ts - 10, pos, orig if orig is not None else len(payload), len(payload)) + payload
        if segs is not None:
            table = struct.pack("<II", len(segs), 0) + b"".join(struct.pack("<II", o, c) for o, c in segs)
            r += table + bytes(8 * (16 - len(segs)))
        return r

    def close(tx, rx, ts=9000, **kw):
        return hdr(KIND_CLOSE, sysc=4, ts=ts, **kw) + struct.pack("<QQ", tx, rx)

    def frame(*recs, sel=0):
        """sel: the first byte (bit 0 --headers, bit 1 message records)"""
        return bytes([sel]) + b"".join(struct.pack("<H", len(r)) + r for r in recs)

    write("ringbuf_records", "client-txn", frame(open_(), data(REQ), data(RESP, d=1, ts=3000),
                                                 close(len(REQ), len(RESP))))
    write("ringbuf_records", "server-midstream-truncated",
          frame(open_(role=2, flags=F_ADDRS | F_MIDSTREAM, comm=b"nginx"),
                          data(REQ, d=1, comm=b"nginx", sysc=5),
                          data(RESP[:20], orig=len(RESP) + 4000, comm=b"nginx", ts=3000),
                          close(len(RESP) + 4000, len(REQ), comm=b"nginx"), sel=1))
    # writev: head captured whole, body iovec's first bytes only (F_SEGMENTS)
    head, body = RESP[:-5], b"hello"
    write("ringbuf_records", "writev-segments",
          frame(open_(role=2), data(REQ, d=1, sysc=5),
                          data(head + body[:2], flags=F_SEGMENTS, sysc=8, ts=3000,
                               orig=len(head) + len(body), segs=[(len(head), len(head)), (len(body), 2)]),
                          close(len(RESP), len(REQ)), sel=2))
    write("ringbuf_records", "gap-and-reorder",
          frame(open_(), data(REQ[30:], pos=30, ts=2100), data(REQ[:30], ts=2000),
                data(RESP, d=1, pos=100, ts=3000), data(REQ, pos=len(REQ) + 7, ts=4000), close(0, 0)))


def wire_capture():
    for n in ["lo_python.pcap", "lo_python.pcapng", "any_nginx.pcap", "any_nginx_lossy.pcap", "lo_h2c.pcap"]:
        with open(os.path.join(RECON, n), "rb") as f:
            write("wire_capture", n, f.read())
    # the file header and the first packets of a classic pcap (one exchange)
    with open(os.path.join(RECON, "lo_python.pcap"), "rb") as f:
        data = f.read()
    le = data[:4] == b"\xd4\xc3\xb2\xa1"
    at, n = 24, 0
    while at + 16 <= len(data) and n < 10:
        incl = struct.unpack("<I" if le else ">I", data[at + 8:at + 12])[0]
        at += 16 + incl
        n += 1
    write("wire_capture", "lo_python-first10.pcap", data[:at])


def recon_jsonl():
    if not os.path.exists(BIN):
        sys.exit(f"make_seeds: build first (cargo build --release): {BIN} missing")

    def wire(pcap):
        return subprocess.run([BIN, "wire", os.path.join(RECON, pcap)], capture_output=True, check=True).stdout

    def probe(n):
        with open(os.path.join(RECON, n), "rb") as f:
            return f.read()

    def head(b, n):
        return b"".join(b.splitlines(keepends=True)[:n])

    w, p = wire("lo_python.pcap"), probe("lo_python.probe.jsonl")
    write("recon_jsonl", "lo_python", w + b"\0" + p)
    write("recon_jsonl", "lo_python-head", head(w, 2) + b"\0" + head(p, 4))
    wn = wire("any_nginx.pcap")
    write("recon_jsonl", "any_nginx-mutated", wn + b"\0" + probe("any_nginx.probe-mutated.jsonl"))
    write("recon_jsonl", "any_nginx-head-lossy", head(wire("any_nginx_lossy.pcap"), 3) + b"\0"
          + head(probe("any_nginx.probe.jsonl"), 5) + b"not json\n{\"type\":\"http_message\"}\n")


def pcap_streams(name, server_port):
    """The two byte streams of the one TCP connection in a loopback pcap
    (Ethernet link type, in order, no retransmissions): (to the server, from it)."""
    with open(os.path.join(RECON, name), "rb") as f:
        b = f.read()
    at, out = 24, [b"", b""]
    while at + 16 <= len(b):
        incl = struct.unpack_from("<I", b, at + 8)[0]
        pkt = b[at + 16:at + 16 + incl]
        at += 16 + incl
        ip = pkt[14:]
        if len(ip) < 20 or ip[9] != 6:
            continue
        tcp = ip[(ip[0] & 15) * 4:struct.unpack_from(">H", ip, 2)[0]]
        dport = struct.unpack_from(">H", tcp, 2)[0]
        out[0 if dport == server_port else 1] += tcp[(tcp[12] >> 4) * 4:]
    return out


def http2_frames():
    PRI = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    def seed(name, sel, c2s, s2c):
        if c2s.startswith(PRI):
            c2s = c2s[len(PRI):]
        write("http2_frames", name, bytes([sel]) + struct.pack(">H", len(c2s)) + c2s + s2c)

    q, r = pcap_streams("lo_grpc.pcap", 50552)
    seed("lo_grpc", 0, q, r)
    seed("lo_grpc-server-side", 2, q, r)
    seed("lo_grpc-capped-lossy", 0x80 | 0x20 | 0x18, q[:1500], r[:1500])
    q, r = pcap_streams("lo_h2c.pcap", pcap_port("lo_h2c.pcap"))
    seed("lo_h2c", 0, q, r)
    seed("lo_h2c-midstream", 4 | 0x40, q, r)


def pcap_port(name):
    """The server port of a loopback pcap: the destination of its first packet."""
    with open(os.path.join(RECON, name), "rb") as f:
        b = f.read()
    pkt = b[40:]
    ip = pkt[14:]
    tcp = ip[(ip[0] & 15) * 4:]
    return struct.unpack_from(">H", tcp, 2)[0]


def go_pclntab():
    """Go 1.18+ .gopclntab tables by hand (the layout src/tls/gobin.rs
    reads): header, function names, function table, _func records."""
    def table(magic, names, entries, ptr=8):
        hdr = bytearray(8 + 8 * ptr)
        struct.pack_into("<IBBBB", hdr, 0, magic, 0, 0, 1, ptr)
        blob = b"".join(n + b"\0" for n in names)
        funcname = len(hdr)
        pcln = funcname + len(blob)
        n = len(names)
        functab = b""
        funcs = b""
        off = 0
        for i, e in enumerate(entries[:-1]):
            functab += struct.pack("<II", e, (n + 1) * 8 + 8 * i)
            funcs += struct.pack("<Ii", e, off)
            off += len(names[i]) + 1
        functab += struct.pack("<II", entries[-1], 0)
        fmt = "<Q" if ptr == 8 else "<I"
        for i, v in ((0, n), (2, 0x401000), (3, funcname), (7, pcln)):
            struct.pack_into(fmt, hdr, 8 + i * ptr, v)
        return bytes(hdr) + blob + functab + funcs
    tls = [b"main.main", b"crypto/tls.(*Conn).Write", b"crypto/tls.(*Conn).Read", b"runtime.etext"]
    write("go_pclntab", "go118", table(0xFFFFFFF0, tls, [0, 0x40, 0x180, 0x300, 0x400]))
    write("go_pclntab", "go120", table(0xFFFFFFF1, tls[:2], [0, 0x10, 0x20]))
    write("go_pclntab", "go120_ptr4", table(0xFFFFFFF1, tls[1:3], [0, 0x10, 0x20], ptr=4))


if __name__ == "__main__":
    for f in (http_parser, tracker, tcp_reassembly, ringbuf_records, wire_capture, recon_jsonl, http2_frames, go_pclntab):
        f()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(CORPUS) for f in fs)
    print(f"make_seeds: {CORPUS}: {total} bytes", file=sys.stderr)
