// SPDX-License-Identifier: GPL-3.0-or-later
//! RFC 7541 Appendix C, joining mid-stream, bounds.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn pairs(b: &Block) -> Vec<(&str, &str)> {
    b.fields().collect()
}

/// Decode `block` and check the list and the table's size after it.
fn step(d: &mut Decoder, block: &str, want: &[(&str, &str)], table_size: usize) {
    let b = d.decode(&hex(block), 1 << 20).unwrap();
    assert_eq!(pairs(&b), want);
    assert_eq!(b.unknown, 0);
    assert_eq!(d.known().1, table_size);
}

// C.2: one representation each, fresh decoders where the RFC uses them.

#[test]
fn c_2_1_literal_with_indexing() {
    let mut d = Decoder::new(true);
    step(
        &mut d,
        "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        &[("custom-key", "custom-header")],
        55,
    );
}

#[test]
fn c_2_2_literal_without_indexing() {
    let mut d = Decoder::new(true);
    step(
        &mut d,
        "040c 2f73 616d 706c 652f 7061 7468",
        &[(":path", "/sample/path")],
        0,
    );
}

#[test]
fn c_2_3_literal_never_indexed() {
    let mut d = Decoder::new(true);
    step(
        &mut d,
        "1008 7061 7373 776f 7264 0673 6563 7265 74",
        &[("password", "secret")],
        0,
    );
}

#[test]
fn c_2_4_indexed() {
    let mut d = Decoder::new(true);
    step(&mut d, "82", &[(":method", "GET")], 0);
}

const REQ1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQ2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQ3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];

#[test]
fn c_3_requests_without_huffman() {
    let mut d = Decoder::new(true);
    // C.3.1
    step(
        &mut d,
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        REQ1,
        57,
    );
    // C.3.2
    step(&mut d, "8286 84be 5808 6e6f 2d63 6163 6865", REQ2, 110);
    // C.3.3
    step(
        &mut d,
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        REQ3,
        164,
    );
    assert_eq!(d.known().0, 3);
}

#[test]
fn c_4_requests_with_huffman() {
    let mut d = Decoder::new(true);
    // C.4.1
    step(
        &mut d,
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        REQ1,
        57,
    );
    // C.4.2
    step(&mut d, "8286 84be 5886 a8eb 1064 9cbf", REQ2, 110);
    // C.4.3
    step(
        &mut d,
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        REQ3,
        164,
    );
}

const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const LOC: &str = "https://www.example.com";

fn resp1() -> Vec<(&'static str, &'static str)> {
    vec![
        (":status", "302"),
        ("cache-control", "private"),
        ("date", DATE1),
        ("location", LOC),
    ]
}

fn resp2() -> Vec<(&'static str, &'static str)> {
    vec![
        (":status", "307"),
        ("cache-control", "private"),
        ("date", DATE1),
        ("location", LOC),
    ]
}

fn resp3() -> Vec<(&'static str, &'static str)> {
    vec![
        (":status", "200"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
        ("location", LOC),
        ("content-encoding", "gzip"),
        (
            "set-cookie",
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        ),
    ]
}

/// A decoder whose encoder set a 256-byte table (C.5, C.6).
fn small_table() -> Decoder {
    let mut d = Decoder::new(true);
    d.set_limit(256);
    d.size_update(256).unwrap();
    d
}

#[test]
fn c_5_responses_without_huffman() {
    let mut d = small_table();
    // C.5.1
    step(&mut d, "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", &resp1(), 222);
    // C.5.2: evicts (:status, 302)
    step(&mut d, "4803 3330 37c1 c0bf", &resp2(), 222);
    // C.5.3: evicts several
    step(&mut d, "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31", &resp3(), 215);
    assert_eq!(d.known().0, 3);
}

#[test]
fn c_6_responses_with_huffman() {
    let mut d = small_table();
    // C.6.1
    step(&mut d, "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3", &resp1(), 222);
    // C.6.2
    step(&mut d, "4883 640e ffc1 c0bf", &resp2(), 222);
    // C.6.3
    step(&mut d, "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07", &resp3(), 215);
}

#[test]
fn joining_mid_stream_flags_unknown_entries_and_keeps_new_ones() {
    // The probe sees C.3.2 and C.3.3 but not C.3.1: (:authority,
    // www.example.com) was inserted before it joined.
    let mut d = Decoder::new(false);
    let b = d
        .decode(&hex("8286 84be 5808 6e6f 2d63 6163 6865"), 1 << 20)
        .unwrap();
    assert_eq!(
        pairs(&b),
        [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("cache-control", "no-cache")
        ]
    );
    assert_eq!(b.unknown, 1, "index 62 is the unknown :authority");
    // C.3.3: 62 is now cache-control (seen), 63 the unknown authority
    let b = d
        .decode(
            &hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"),
            1 << 20,
        )
        .unwrap();
    assert_eq!(
        pairs(&b),
        [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            ("custom-key", "custom-value")
        ]
    );
    assert_eq!(b.unknown, 1);
    // the fields inserted after the join are referenced by index
    let b = d.decode(&hex("be bf c0"), 1 << 20).unwrap();
    assert_eq!(
        pairs(&b),
        [
            ("custom-key", "custom-value"),
            ("cache-control", "no-cache")
        ]
    );
    assert_eq!(b.unknown, 1);
    // a literal with its name from an unknown entry, indexed: the field is
    // absent, and the entry (value known, name not) keeps indices aligned
    let b = d.decode(&hex("7f02 0378 7978 be"), 1 << 20).unwrap();
    assert_eq!(b.unknown, 2);
    assert_eq!(pairs(&b), []);
    let b = d.decode(&hex("bf"), 1 << 20).unwrap();
    assert_eq!(pairs(&b), [("custom-key", "custom-value")]);
    // a size update to 0 empties the table: afterwards nothing is unknown
    let b = d.decode(&hex("20 3f e1 1f 82"), 1 << 20).unwrap();
    assert_eq!(pairs(&b), [(":method", "GET")]);
    assert!(!d.tail_unknown());
    assert_eq!(d.decode(&hex("be"), 1 << 20), Err(Error::BadIndex));
}

#[test]
fn entries_seen_after_the_join_survive_while_they_fit() {
    // C.5 responses, joined after C.5.1: the entries of C.5.2 on are known
    // and evicting the unknown older ones first keeps them valid.
    let mut d = Decoder::new(false);
    d.size_update(256).unwrap();
    let b = d.decode(&hex("4803 3330 37c1 c0bf"), 1 << 20).unwrap();
    assert_eq!(pairs(&b), [(":status", "307")]);
    assert_eq!(b.unknown, 3);
    let b = d.decode(&hex("88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31"), 1 << 20).unwrap();
    let got = pairs(&b);
    assert_eq!(
        b.unknown, 2,
        "cache-control and location were inserted before the join"
    );
    assert_eq!(
        got,
        [
            (":status", "200"),
            ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
            ("content-encoding", "gzip"),
            (
                "set-cookie",
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
            )
        ]
    );
    // what C.5.3 left, all known now: set-cookie, content-encoding, date
    let b = d.decode(&hex("be bf c0"), 1 << 20).unwrap();
    assert_eq!(b.unknown, 0);
    assert_eq!(b.len(), 3);
}

#[test]
fn header_list_cap_counts_without_losing_the_table() {
    let mut d = Decoder::new(true);
    // a 1000-byte value inserted, then referenced 100 times: 100 KB decoded
    let mut block = vec![0x40, 1, b'x', 0x7f, 0x80 + 0x69, 0x06];
    block.extend(std::iter::repeat_n(b'v', 1000));
    block.extend(std::iter::repeat_n(0xbe, 100));
    let b = d.decode(&block, 16 * 1024).unwrap();
    assert_eq!(b.len() + b.over_cap as usize, 101);
    assert!(b.len() < 20);
    assert!(b.list_size > 100_000);
    // the table is still followed
    let b = d.decode(&[0xbe], 16 * 1024).unwrap();
    assert_eq!(b.field(0).0, "x");
}

#[test]
fn table_size_is_capped_and_limited() {
    let mut d = Decoder::new(true);
    d.set_limit(4096);
    assert_eq!(d.decode(&hex("3fe1 1f"), 1000), Ok(Block::default()));
    assert_eq!(
        d.decode(&hex("3fe2 1f"), 1000),
        Err(Error::SizeUpdate),
        "above the setting"
    );
    let mut d = Decoder::new(true);
    // 2^20 with no setting known: followed up to the cap, counted
    d.decode(&hex("3fe1 ff3f"), 1000).unwrap();
    assert_eq!(d.capped, 1);
    assert_eq!(d.max, MAX_TABLE);
    // a size update after a field
    assert_eq!(d.decode(&hex("8220"), 1000), Err(Error::SizeUpdate));
}

#[test]
fn malformed_blocks_are_errors() {
    let err = |h: &str| Decoder::new(true).decode(&hex(h), 1000).map(|_| ());
    assert_eq!(err("80"), Err(Error::BadIndex));
    assert_eq!(err("be"), Err(Error::BadIndex));
    assert_eq!(err("40"), Err(Error::Truncated));
    assert_eq!(err("400a 6375"), Err(Error::Truncated));
    assert_eq!(err("ff ff ff ff ff 7f"), Err(Error::IntegerOverflow));
    assert_eq!(
        err("4001 6181 00"),
        Err(Error::Huffman(huffman::HuffmanError::Padding))
    );
    // after an error the table is unknown: references are flagged
    let mut d = Decoder::new(true);
    assert!(d.decode(&hex("4001 6181 00"), 1000).is_err());
    assert!(d.tail_unknown());
    assert_eq!(d.decode(&hex("be"), 1000).unwrap().unknown, 1);
}

#[test]
fn no_panic_on_any_input() {
    // a cheap deterministic fuzz: random blocks and mutations of real ones
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let real = hex("88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b");
    for round in 0..20_000 {
        let mut d = Decoder::new(round % 2 == 0);
        let mut b = if round % 3 == 0 {
            (0..rnd() % 64).map(|_| rnd() as u8).collect::<Vec<u8>>()
        } else {
            real.clone()
        };
        for _ in 0..rnd() % 4 {
            let i = rnd() as usize % b.len().max(1);
            if let Some(c) = b.get_mut(i) {
                *c = rnd() as u8;
            }
        }
        for _ in 0..3 {
            let _ = d.decode(&b, 4096);
        }
        assert!(d.known().1 <= MAX_TABLE);
    }
}

#[test]
fn a_reused_block_holds_only_the_latest_fields() {
    let mut d = Decoder::new(true);
    let mut b = Block::default();
    // C.3.1 then C.3.2: the second block indexes what the first inserted
    d.decode_into(
        &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
        1 << 20,
        &mut b,
    )
    .unwrap();
    assert_eq!(b.len(), 4);
    d.decode_into(&hex("8286 84be 5808 6e6f 2d63 6163 6865"), 1 << 20, &mut b)
        .unwrap();
    assert_eq!(
        pairs(&b),
        [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
            ("cache-control", "no-cache")
        ]
    );
    assert_eq!(b.get(":authority"), Some("www.example.com"));
    assert_eq!(b.get("cookie"), None);
    assert_eq!((b.unknown, b.over_cap), (0, 0));
    // an error leaves nothing of the earlier block
    assert!(d.decode_into(&[0x80], 1 << 20, &mut b).is_err());
    assert!(b.is_empty() && b.list_size == 0);
}

#[test]
fn text_that_is_not_utf8_is_replaced_and_sized_by_its_octets() {
    let mut d = Decoder::new(true);
    // literal with indexing, new name "x\xff", value "a\xfeb"; then the
    // same entry indexed and a plain field after it
    let blk = [0x40, 2, b'x', 0xff, 3, b'a', 0xfe, b'b', 0xbe, 0x82];
    let b = d.decode(&blk, 1 << 20).unwrap();
    assert_eq!(
        pairs(&b),
        [
            ("x\u{fffd}", "a\u{fffd}b"),
            ("x\u{fffd}", "a\u{fffd}b"),
            (":method", "GET")
        ]
    );
    // RFC 7541 §4.1 sizes count octets: 2 + 3 + 32
    assert_eq!(d.known(), (1, 37));
    assert_eq!(b.list_size, 2 * 37 + 7 + 3 + 32);
}

#[test]
fn an_integer_of_zero_continuations_is_an_overflow_not_a_panic() {
    let mut d = Decoder::new(true);
    let mut blk = vec![0xff];
    blk.extend(std::iter::repeat_n(0x80, 20));
    blk.push(0);
    assert_eq!(d.decode(&blk, 1 << 20), Err(Error::IntegerOverflow));
}
