#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Convert a classic little-endian pcap to pcapng (SHB, IDB with
if_tsresol=9, one EPB per packet). Used to make tests/recon/*.pcapng."""
import struct, sys

def block(btype, body):
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
magic, = struct.unpack("<I", data[:4])
nanos = {0xa1b2c3d4: False, 0xa1b23c4d: True}[magic]
linktype, = struct.unpack("<I", data[20:24])
out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
opts = struct.pack("<HH", 9, 1) + bytes([9, 0, 0, 0]) + struct.pack("<HH", 0, 0)
out.append(block(1, struct.pack("<HHI", linktype & 0xFFFF, 0, 0) + opts))
off = 24
while off + 16 <= len(data):
    sec, frac, cap, orig = struct.unpack("<IIII", data[off:off + 16])
    pkt = data[off + 16:off + 16 + cap]
    off += 16 + cap
    ts = sec * 10**9 + (frac if nanos else frac * 1000)
    out.append(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, cap, orig) + pkt))
open(dst, "wb").write(b"".join(out))
