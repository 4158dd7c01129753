#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""any_nginx.pcap -> any_nginx_lossy.pcap: drop packet 11 (a response:
capture loss), split packet 30 (a 4208-byte POST) into three segments sent
1,3,2 plus a retransmission of 2 (reordering + retransmission)."""
import struct
d = open("any_nginx.pcap", "rb").read()
hdr, off, pk = d[:24], 24, []
while off < len(d):
    cap = struct.unpack("<I", d[off + 8:off + 12])[0]
    pk.append(d[off:off + 16 + cap]); off += 16 + cap

def split(rec, cuts):
    ts, frame = rec[:8], rec[16:]
    link, ip = frame[:20], frame[20:]          # SLL2 header is 20 bytes
    ihl = (ip[0] & 15) * 4
    tcp = ip[ihl:]
    doff = (tcp[12] >> 4) * 4
    seq = struct.unpack(">I", tcp[4:8])[0]
    payload = tcp[doff:]
    out, start = [], 0
    for end in cuts + [len(payload)]:
        part = payload[start:end]
        iph = bytearray(ip[:ihl]); iph[2:4] = struct.pack(">H", ihl + doff + len(part))
        th = bytearray(tcp[:doff]); th[4:8] = struct.pack(">I", (seq + start) & 0xffffffff)
        f = link + bytes(iph) + bytes(th) + part
        out.append(ts + struct.pack("<II", len(f), len(f)) + f)
        start = end
    return out

a, b, c = split(pk[29], [1400, 2800])
new = []
for i, p in enumerate(pk, 1):
    if i == 11:
        continue
    if i == 30:
        new += [a, c, b, b]
        continue
    new.append(p)
open("any_nginx_lossy.pcap", "wb").write(hdr + b"".join(new))
