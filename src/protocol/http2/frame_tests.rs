// SPDX-License-Identifier: GPL-3.0-or-later
//! Frame parser tests: every frame type, limits, and a real frame sequence
//! fed in every prefix and split anywhere.

use super::*;

/// A frame's bytes.
pub(crate) fn fr(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    v.push(ty);
    v.push(flags);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A conversation's client side as curl sends it, with every frame type:
/// preface, SETTINGS, WINDOW_UPDATE, HEADERS split over CONTINUATION,
/// padded DATA, PRIORITY, PING, RST_STREAM, an unknown type, GOAWAY.
pub(crate) fn client_sequence() -> Vec<u8> {
    let mut v = PREFACE.to_vec();
    v.extend(fr(
        SETTINGS,
        0,
        0,
        &[0, 3, 0, 0, 0, 100, 0, 4, 0, 0xa0, 0, 0, 0, 2, 0, 0, 0, 0],
    ));
    v.extend(fr(WINDOW_UPDATE, 0, 0, &[0, 0x9f, 0, 1]));
    // HEADERS with PRIORITY and padding, then a CONTINUATION
    let mut h = vec![3, 0x80, 0, 0, 0, 15, 0x82, 0x86];
    h.extend_from_slice(&[0, 0, 0]);
    v.extend(fr(HEADERS, FLAG_PADDED | FLAG_PRIORITY, 1, &h));
    v.extend(fr(
        CONTINUATION,
        FLAG_END_HEADERS,
        1,
        &[0x84, 0x41, 1, b'h'],
    ));
    let mut d = vec![4];
    d.extend_from_slice(b"hello world");
    d.extend_from_slice(&[0; 4]);
    v.extend(fr(DATA, FLAG_PADDED, 1, &d));
    v.extend(fr(DATA, FLAG_END_STREAM, 1, b"!"));
    v.extend(fr(DATA, FLAG_END_STREAM, 7, b""));
    v.extend(fr(PRIORITY, 0, 3, &[0, 0, 0, 1, 200]));
    v.extend(fr(PING, 0, 0, b"12345678"));
    v.extend(fr(RST_STREAM, 0, 3, &[0, 0, 0, 8]));
    v.extend(fr(0xfa, 0xff, 5, b"whatever this is"));
    v.extend(fr(SETTINGS, FLAG_ACK, 0, b""));
    v.extend(fr(
        GOAWAY,
        0,
        0,
        &[0, 0, 0, 3, 0, 0, 0, 0, b'b', b'y', b'e'],
    ));
    v
}

pub(crate) fn server_sequence() -> Vec<u8> {
    let mut v = fr(SETTINGS, 0, 0, &[0, 5, 0, 0, 0x40, 0]);
    v.extend(fr(
        PUSH_PROMISE,
        FLAG_END_HEADERS | FLAG_PADDED,
        1,
        &[1, 0, 0, 0, 2, 0x82, 0],
    ));
    v.extend(fr(HEADERS, FLAG_END_HEADERS, 1, &[0x88]));
    v.extend(fr(DATA, 0, 1, &[b'x'; 40]));
    v.extend(fr(DATA, FLAG_END_STREAM, 1, &[b'y'; 3]));
    v
}

/// Steps as text, Skipped folded away (they depend on the splits).
fn drive(f: &mut Framer, pieces: &[&[u8]]) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    for p in pieces {
        let mut rest = *p;
        while !rest.is_empty() {
            let want = f.want(buf.len()).max(1);
            let n = want.min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            loop {
                match f.next(&buf) {
                    Parse::Complete(s, used) => {
                        if !matches!(s, Step::Skipped(_)) {
                            out.push(format!("{s:?}"));
                        } else if let Some(e) = f.ended() {
                            out.push(format!("{e:?}"));
                        }
                        buf.drain(..used);
                        if buf.is_empty() {
                            break;
                        }
                    }
                    Parse::NeedMore => break,
                    Parse::Invalid(e) => return Err(e),
                }
            }
        }
    }
    if !buf.is_empty() || !f.at_boundary() {
        out.push("incomplete".into());
    }
    Ok(out)
}

fn whole(b: &[u8], preface: bool) -> Vec<String> {
    drive(&mut Framer::new(preface, DEFAULT_MAX_FRAME, 65536), &[b]).unwrap()
}

#[test]
fn every_frame_type_parses() {
    let got = whole(&client_sequence(), true);
    let want = [
        "Preface",
        "Frame(FrameHeader { len: 18, ty: 4, flags: 0, stream: 0 }, Settings { params: [(3, 100), (4, 10485760), (2, 0)] })",
        "Frame(FrameHeader { len: 4, ty: 8, flags: 0, stream: 0 }, WindowUpdate { increment: 10420225 })",
        "Frame(FrameHeader { len: 11, ty: 1, flags: 40, stream: 1 }, Headers { priority: Some(Priority { exclusive: true, depends_on: 0, weight: 15 }), block: [130, 134] })",
        "Frame(FrameHeader { len: 4, ty: 9, flags: 4, stream: 1 }, Continuation { block: [132, 65, 1, 104] })",
        "Data(FrameHeader { len: 16, ty: 0, flags: 8, stream: 1 }, 11)",
        "Data(FrameHeader { len: 1, ty: 0, flags: 1, stream: 1 }, 1)",
        "Data(FrameHeader { len: 0, ty: 0, flags: 1, stream: 7 }, 0)",
        "Frame(FrameHeader { len: 5, ty: 2, flags: 0, stream: 3 }, Priority(Priority { exclusive: false, depends_on: 1, weight: 200 }))",
        "Frame(FrameHeader { len: 8, ty: 6, flags: 0, stream: 0 }, Ping { data: [49, 50, 51, 52, 53, 54, 55, 56] })",
        "Frame(FrameHeader { len: 4, ty: 3, flags: 0, stream: 3 }, RstStream { error: 8 })",
        "Frame(FrameHeader { len: 16, ty: 250, flags: 255, stream: 5 }, Unknown)",
        "Frame(FrameHeader { len: 0, ty: 4, flags: 1, stream: 0 }, Settings { params: [] })",
        "Frame(FrameHeader { len: 11, ty: 7, flags: 0, stream: 0 }, GoAway { last_stream: 3, error: 0, debug: [98, 121, 101] })",
    ];
    assert_eq!(got, want);
    let got = whole(&server_sequence(), false);
    assert_eq!(got.len(), 5);
    assert!(
        got[1].contains("PushPromise { promised: 2, block: [130] }"),
        "{}",
        got[1]
    );
    assert!(
        got[3].ends_with(", 40)") && got[4].ends_with(", 3)"),
        "{got:?}"
    );
}

#[test]
fn every_prefix_needs_more_never_invalid() {
    for (seq, preface) in [(client_sequence(), true), (server_sequence(), false)] {
        let full = whole(&seq, preface);
        for n in 0..seq.len() {
            let got = drive(
                &mut Framer::new(preface, DEFAULT_MAX_FRAME, 65536),
                &[&seq[..n]],
            )
            .unwrap_or_else(|e| panic!("prefix {n}: {e}"));
            let complete = got.iter().filter(|s| *s != "incomplete").count();
            assert_eq!(got[..complete], full[..complete], "prefix {n}");
        }
    }
}

#[test]
fn split_anywhere_gives_the_same_frames() {
    for (seq, preface) in [(client_sequence(), true), (server_sequence(), false)] {
        let full = whole(&seq, preface);
        for a in 0..seq.len() {
            for b in (a..seq.len()).step_by(7) {
                let got = drive(
                    &mut Framer::new(preface, DEFAULT_MAX_FRAME, 65536),
                    &[&seq[..a], &seq[a..b], &seq[b..]],
                )
                .unwrap();
                assert_eq!(got, full, "split at {a}, {b}");
            }
        }
        // one byte at a time
        let bytes: Vec<&[u8]> = seq.chunks(1).collect();
        let got = drive(&mut Framer::new(preface, DEFAULT_MAX_FRAME, 65536), &bytes).unwrap();
        assert_eq!(got, full);
    }
}

#[test]
fn invalid_frames() {
    let inv = |b: &[u8]| drive(&mut Framer::new(false, DEFAULT_MAX_FRAME, 65536), &[b]);
    assert!(drive(
        &mut Framer::new(true, DEFAULT_MAX_FRAME, 65536),
        &[b"GET / HTTP/1.1\r\n"]
    )
    .is_err());
    // too large for SETTINGS_MAX_FRAME_SIZE, and fine once it is raised
    let big = fr(DATA, 0, 1, &vec![0; 16_385]);
    assert_eq!(inv(&big), Err("frame larger than SETTINGS_MAX_FRAME_SIZE"));
    assert_eq!(
        drive(&mut Framer::new(false, 32_768, 65536), &[&big]).unwrap(),
        ["Data(FrameHeader { len: 16385, ty: 0, flags: 0, stream: 1 }, 16385)"]
    );
    assert!(inv(&fr(DATA, 0, 0, b"x")).is_err(), "DATA on stream 0");
    assert!(inv(&fr(HEADERS, 4, 0, b"x")).is_err());
    assert!(
        inv(&fr(SETTINGS, 0, 1, b"")).is_err(),
        "SETTINGS on a stream"
    );
    assert!(
        inv(&fr(SETTINGS, 0, 0, b"12345")).is_err(),
        "not a multiple of 6"
    );
    assert!(
        inv(&fr(SETTINGS, FLAG_ACK, 0, b"123456")).is_err(),
        "ACK with payload"
    );
    assert!(inv(&fr(PING, 0, 0, b"1234")).is_err());
    assert!(inv(&fr(PRIORITY, 0, 1, b"1234")).is_err());
    assert!(inv(&fr(RST_STREAM, 0, 1, b"12345")).is_err());
    assert!(inv(&fr(WINDOW_UPDATE, 0, 0, b"123")).is_err());
    assert!(inv(&fr(GOAWAY, 0, 0, b"1234567")).is_err());
    assert!(
        inv(&fr(DATA, FLAG_PADDED, 1, &[5, 1, 2])).is_err(),
        "padding too long"
    );
    assert!(
        inv(&fr(DATA, FLAG_PADDED, 1, &[])).is_err(),
        "no pad length"
    );
    assert!(inv(&fr(HEADERS, FLAG_PADDED, 1, &[9])).is_err());
    assert!(inv(&fr(HEADERS, FLAG_PRIORITY, 1, &[0, 0])).is_err());
}

#[test]
fn uncaptured_bytes_inside_data_are_counted() {
    let mut f = Framer::new(false, DEFAULT_MAX_FRAME, 65536);
    let frame = fr(DATA, FLAG_END_STREAM, 3, &[7; 1000]);
    // 100 bytes captured, 909 went by uncaptured
    let got = drive(&mut f, &[&frame[..100]]).unwrap();
    assert_eq!(got, ["incomplete"]);
    assert!(f.skip(909, 0));
    assert_eq!(
        f.ended(),
        Some(Step::Data(
            FrameHeader {
                len: 1000,
                ty: DATA,
                flags: 1,
                stream: 3
            },
            1000
        ))
    );
    assert!(f.at_boundary());
    // past the end of the frame: framing is lost
    let mut f = Framer::new(false, DEFAULT_MAX_FRAME, 65536);
    drive(&mut f, &[&frame[..100]]).unwrap();
    assert!(!f.skip(910, 0));
    // inside a HEADERS frame: the frame is lost, skipped by length
    let mut f = Framer::new(false, DEFAULT_MAX_FRAME, 65536);
    let h = fr(HEADERS, FLAG_END_HEADERS, 1, &[0x82; 50]);
    drive(&mut f, &[&h[..20]]).unwrap();
    assert!(f.skip(39, 11));
    assert_eq!(
        f.ended().map(|s| format!("{s:?}")).as_deref(),
        Some("Lost(FrameHeader { len: 50, ty: 1, flags: 4, stream: 1 })")
    );
    // a frame larger than the buffer cap is skipped, not buffered
    let mut f = Framer::new(false, DEFAULT_MAX_FRAME, 16);
    assert_eq!(
        drive(&mut f, &[&h]).unwrap(),
        ["Lost(FrameHeader { len: 50, ty: 1, flags: 4, stream: 1 })"]
    );
}

#[test]
fn resync_finds_frame_starts() {
    let seq = client_sequence();
    let body = &seq[PREFACE.len()..];
    assert_eq!(find_frame_start(body, DEFAULT_MAX_FRAME), Some(0));
    // from inside a DATA frame's text, the next header is found
    let text = body.windows(5).position(|w| w == b"hello").unwrap();
    let at = find_frame_start(&body[text..], DEFAULT_MAX_FRAME).unwrap();
    assert_eq!(
        &body[text + at..text + at + 10],
        &fr(DATA, FLAG_END_STREAM, 1, b"!")[..10]
    );
    assert_eq!(
        find_frame_start(
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            DEFAULT_MAX_FRAME
        ),
        None
    );
}

#[test]
fn error_names() {
    assert_eq!(error_name(8), "CANCEL");
    assert_eq!(error_name(0), "NO_ERROR");
    assert_eq!(error_name(0x77), "0x77");
}

/// Found by the `tracker` fuzz target: a buffer of empty frames chained
/// to its end made each start walk the whole buffer (quadratic, a hang
/// at 64 KiB). Chains are memoised: each header is looked at once.
#[test]
fn fuzz_tracker_resync_over_empty_frames_is_linear() {
    let mut buf = Vec::new();
    for _ in 0..(64 * 1024 / HEADER_LEN) {
        // empty SETTINGS acks: type 4, flag ACK, stream 0
        buf.extend_from_slice(&[0, 0, 0, 4, 1, 0, 0, 0, 0]);
    }
    assert_eq!(find_frame_start(&buf, 16_384), Some(0));
    // an invalid header (past the frame-size limit) at the very end spoils
    // the chain that reaches it
    buf.extend_from_slice(&[0xff, 0xff, 0xff, 4, 1, 0, 0, 0, 0]);
    assert_ne!(find_frame_start(&buf, 16_384), Some(0));
}
