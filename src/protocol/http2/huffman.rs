// SPDX-License-Identifier: GPL-3.0-or-later
//! HPACK's Huffman code (RFC 7541 §5.2, Appendix B): decoding only. The
//! code table is the RFC's; a binary tree built from it once gives a
//! table that decodes four bits per lookup. An encoder for tests and the
//! benches' inputs.

use std::sync::OnceLock;

/// (code, length in bits) of each symbol 0..=255 and EOS (256), Appendix B.
#[rustfmt::skip]
const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28),
    (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24),
    (0x3ffffffc, 30), (0xfffffe9, 28), (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28),
    (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28),
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28), (0xffffff4, 28),
    (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28),
    (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12),
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), (0x3fa, 10), (0x3fb, 10), (0xf9, 8),
    (0x7fb, 11), (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6), (0x0, 5), (0x1, 5), (0x2, 5),
    (0x19, 6), (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6), (0x1e, 6), (0x1f, 6), (0x5c, 7),
    (0xfb, 8), (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13), (0x21, 6),
    (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7), (0x63, 7), (0x64, 7),
    (0x65, 7), (0x66, 7), (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7), (0x6b, 7), (0x6c, 7),
    (0x6d, 7), (0x6e, 7), (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7),
    (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6), (0x7ffd, 15),
    (0x3, 5), (0x23, 6), (0x4, 5), (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), (0x27, 6), (0x6, 5),
    (0x74, 7), (0x75, 7), (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7),
    (0x2c, 6), (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7), (0x79, 7), (0x7a, 7),
    (0x7b, 7), (0x7ffe, 15), (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28),
    (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20), (0x3fffd3, 22), (0x3fffd4, 22),
    (0x3fffd5, 22), (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23),
    (0x7fffdc, 23), (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23),
    (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), (0xffffee, 24),
    (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23), (0x7fffe4, 23), (0x1fffdc, 21),
    (0x3fffd8, 22), (0x7fffe5, 23), (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23),
    (0xffffef, 24), (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22), (0x3fffdc, 22),
    (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), (0x7fffea, 23), (0x3fffdd, 22),
    (0x3fffde, 22), (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23),
    (0x7fffec, 23), (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21),
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), (0xfffea, 20), (0x3fffe2, 22),
    (0x3fffe3, 22), (0x3fffe4, 22), (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22),
    (0x7ffff1, 23), (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19),
    (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25), (0x3ffffe2, 26),
    (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27), (0x7ffffdf, 27), (0x3ffffe5, 26),
    (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19), (0x1fffe3, 21), (0x3ffffe6, 26),
    (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24),
    (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), (0xffffffd, 28),
    (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27), (0xfffec, 20), (0xfffff3, 24),
    (0xfffed, 20), (0x1fffe6, 21), (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23),
    (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25), (0x1ffffef, 25), (0xfffff4, 24),
    (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23), (0x3ffffeb, 26), (0x7ffffe6, 27),
    (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27),
    (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27),
    (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26), (0x3fffffff, 30),
];

const EOS: u16 = 256;
/// A leaf's marker in a node's child slot.
const LEAF: u16 = 0x8000;

/// The decoding tree: node `n`'s children for bit 0 and 1; a child is
/// either another node's index or `LEAF | symbol`. The code is complete
/// (257 leaves), so it has 256 nodes, the root 0.
fn tree() -> Vec<[u16; 2]> {
    let mut t: Vec<[u16; 2]> = vec![[0, 0]];
    for (sym, &(code, len)) in CODES.iter().enumerate() {
        let mut n = 0usize;
        for i in (0..len).rev() {
            let bit = ((code >> i) & 1) as usize;
            if i == 0 {
                t[n][bit] = LEAF | sym as u16;
            } else {
                if t[n][bit] == 0 {
                    t.push([0, 0]);
                    t[n][bit] = (t.len() - 1) as u16;
                }
                n = t[n][bit] as usize;
            }
        }
    }
    t
}

/// A step emits its symbol (flags are a step's bits 24 and up).
const EMIT: u32 = 1 << 24;
/// A step reaches EOS.
const FAIL: u32 = 2 << 24;
/// A step ends where the string may end: at the root, or at most 7 bits
/// down the all-ones path (EOS's prefix, the only valid padding).
const ACCEPT: u32 = 4 << 24;

/// The decoding table: per node of [`tree`] (`node * 16`) and 4-bit
/// input, one step packed in a `u32`: the node reached (times 16, bits
/// 0–11), the symbol completed on the way if any (bits 16–23: every code
/// is at least 5 bits long, so at most one) and the flags. Decoding takes
/// two lookups per byte instead of eight tree steps.
fn table() -> &'static [u32; 4096] {
    static TABLE: OnceLock<Box<[u32; 4096]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let t = tree();
        assert_eq!(t.len(), 256, "the Huffman code is complete");
        // the nodes on the all-ones path at depth 1..=7 (the root is 0)
        let mut accept = [false; 256];
        accept[0] = true;
        let mut n = 0usize;
        for _ in 0..7 {
            n = t[n][1] as usize;
            accept[n] = true;
        }
        let mut out = Box::new([0u32; 4096]);
        for (i, step) in out.iter_mut().enumerate() {
            let (mut n, nib) = (i >> 4, i & 0xf);
            for b in (0..4).rev() {
                let c = t[n][(nib >> b) & 1];
                if c & LEAF == 0 {
                    n = c as usize;
                } else if c & !LEAF == EOS {
                    // on from the root: every symbol still takes 5 bits
                    // or more of input (the output's bound)
                    *step |= FAIL;
                    n = 0;
                    break;
                } else {
                    *step |= EMIT | ((c & !LEAF) as u32) << 16;
                    n = 0;
                }
            }
            *step |= (n as u32) << 4;
            if accept[n] {
                *step |= ACCEPT;
            }
        }
        out
    })
}

/// Why a Huffman string is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HuffmanError {
    /// The EOS symbol inside the string (§5.2).
    Eos,
    /// Padding longer than 7 bits, or not the most significant bits of EOS.
    Padding,
}

/// Decode `src` (appending to `out`).
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let t = table();
    // at most 8 symbols per 5 bytes (codes are 5 bits or more): room for
    // them, written without a check per symbol, the rest cut off after
    let start = out.len();
    out.resize(start + src.len() * 8 / 5 + 1, 0);
    let buf = &mut out[start..];
    // `at`: the node times 16; `last`: the latest step
    let (mut at, mut last, mut seen, mut k) = (0usize, ACCEPT, 0u32, 0usize);
    for &byte in src {
        for nib in [byte >> 4, byte & 0xf] {
            let e = t[(at | nib as usize) & 0xfff];
            // a symbol is always written, kept only when emitted
            buf[k] = (e >> 16) as u8;
            k += (e >> 24) as usize & 1;
            at = (e & 0xfff) as usize;
            last = e;
            seen |= e;
        }
    }
    out.truncate(start + k);
    if seen & FAIL != 0 {
        return Err(HuffmanError::Eos);
    }
    if last & ACCEPT == 0 {
        return Err(HuffmanError::Padding);
    }
    Ok(())
}

/// Encode `src` (appending to `out`), padded with ones: for tests and the
/// benches' inputs (an observer only decodes).
pub fn encode(src: &[u8], out: &mut Vec<u8>) {
    let (mut acc, mut bits) = (0u64, 0u32);
    for &b in src {
        let (code, len) = CODES[b as usize];
        acc = (acc << len) | code as u64;
        bits += len as u32;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(b: &[u8]) -> Result<Vec<u8>, HuffmanError> {
        let mut v = Vec::new();
        decode(b, &mut v).map(|()| v)
    }

    #[test]
    fn rfc_examples() {
        // RFC 7541 C.4.1, C.4.2, C.6.1
        assert_eq!(
            dec(&[0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff]).unwrap(),
            b"www.example.com"
        );
        assert_eq!(
            dec(&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf]).unwrap(),
            b"no-cache"
        );
        assert_eq!(dec(&[0x64, 0x02]).unwrap(), b"302");
        assert_eq!(dec(&[]).unwrap(), b"");
    }

    #[test]
    fn every_byte_round_trips() {
        // encode each symbol alone, padded with ones
        for sym in 0..=255u8 {
            let (code, len) = CODES[sym as usize];
            let bits = len as u32;
            let pad = (8 - bits % 8) % 8;
            let v = ((code as u64) << pad) | ((1u64 << pad) - 1);
            let nbytes = ((bits + pad) / 8) as usize;
            let bytes = v.to_be_bytes();
            assert_eq!(dec(&bytes[8 - nbytes..]).unwrap(), [sym], "{sym}");
        }
    }

    #[test]
    fn encode_round_trips_every_string() {
        let mut s: Vec<u8> = (0..=255u8).collect();
        s.extend(b"www.example.com custom-key: custom-value");
        for end in 0..s.len() {
            for start in [0, end / 2, end] {
                let mut h = Vec::new();
                encode(&s[start..end], &mut h);
                assert_eq!(dec(&h).unwrap(), &s[start..end]);
            }
        }
        let mut h = Vec::new();
        encode(b"www.example.com", &mut h);
        assert_eq!(
            h,
            [0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff]
        );
    }

    #[test]
    fn every_padding_and_truncation_agrees_with_the_bit_walk() {
        // the table against a bit-at-a-time walk of the tree, on every
        // string of 1 and 2 bytes and on the codes of each symbol cut short
        let t = tree();
        let walk = |src: &[u8]| -> Result<Vec<u8>, HuffmanError> {
            let (mut n, mut depth, mut ones, mut v) = (0usize, 0, true, Vec::new());
            for &byte in src {
                for i in (0..8).rev() {
                    let bit = (byte >> i) & 1;
                    let c = t[n][bit as usize];
                    depth += 1;
                    ones &= bit == 1;
                    if c & LEAF != 0 {
                        if c & !LEAF == EOS {
                            return Err(HuffmanError::Eos);
                        }
                        v.push((c & !LEAF) as u8);
                        (n, depth, ones) = (0, 0, true);
                    } else {
                        n = c as usize;
                    }
                }
            }
            if depth > 7 || !ones {
                return Err(HuffmanError::Padding);
            }
            Ok(v)
        };
        for a in 0..=255u8 {
            assert_eq!(dec(&[a]), walk(&[a]), "{a:#x}");
            for b in 0..=255u8 {
                assert_eq!(dec(&[a, b]), walk(&[a, b]), "{a:#x} {b:#x}");
            }
        }
        for sym in 0..=255u8 {
            let mut h = Vec::new();
            encode(&[sym, sym, b'a'], &mut h);
            for cut in 0..=h.len() {
                assert_eq!(dec(&h[..cut]), walk(&h[..cut]));
            }
        }
    }

    #[test]
    fn invalid_padding_and_eos() {
        // 'a' is 00011 (5 bits): padded with zeros is invalid
        assert_eq!(dec(&[0b0001_1000]), Err(HuffmanError::Padding));
        assert_eq!(dec(&[0b0001_1111]).unwrap(), b"a");
        // a whole byte of ones is padding longer than 7 bits
        assert_eq!(dec(&[0b0001_1111, 0xff]), Err(HuffmanError::Padding));
        // EOS (30 ones) inside the string
        assert_eq!(dec(&[0xff, 0xff, 0xff, 0xfc]), Err(HuffmanError::Eos));
    }
}
