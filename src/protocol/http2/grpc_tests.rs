// SPDX-License-Identifier: GPL-3.0-or-later
//! gRPC calls driven through the tracker: unary, trailers-only errors,
//! streaming both ways with messages split over frames and syscalls, the
//! capture cap inside and before a message, lost bytes.

use super::*;
use crate::record::GrpcFields;

/// A gRPC message: flag byte, 32-bit length, body.
fn msg(compressed: bool, n: usize) -> Vec<u8> {
    let mut v = vec![compressed as u8];
    v.extend_from_slice(&(n as u32).to_be_bytes());
    v.extend(std::iter::repeat_n(b'm', n));
    v
}

fn grpc_req(path: &str) -> Vec<u8> {
    req_block(
        "POST",
        path,
        &[
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", "1S"),
        ],
    )
}

fn grpc_resp() -> Vec<u8> {
    resp_block("200", &[("content-type", "application/grpc+proto")])
}

fn trailers(status: &str, message: Option<&str>) -> Vec<u8> {
    let mut f = vec![("grpc-status", status)];
    if let Some(m) = message {
        f.push(("grpc-message", m));
    }
    lits(&f)
}

fn g(t: &Transaction) -> &GrpcFields {
    assert_eq!(t.protocol, "grpc", "{t:?}");
    t.h2.as_ref().unwrap().grpc.as_ref().unwrap()
}

/// A client-side call on stream 1: `req` and `resp` DATA payloads (each
/// split into frames of `frame` bytes, each frame its own write).
fn call(path: &str, req: &[u8], resp: &[u8], frame: usize, status: &str) -> Script {
    let mut s = Script::new(Role::Client, false);
    let mut q = client_start();
    q.extend(fr(HEADERS, FLAG_END_HEADERS, 1, &grpc_req(path)));
    s.send(E, &q);
    s.send(I, &server_settings());
    let chunks: Vec<&[u8]> = req.chunks(frame.max(1)).collect();
    for (i, c) in chunks.iter().enumerate() {
        let fl = if i + 1 == chunks.len() {
            FLAG_END_STREAM
        } else {
            0
        };
        s.send(E, &fr(DATA, fl, 1, c));
    }
    if chunks.is_empty() {
        s.send(E, &fr(DATA, FLAG_END_STREAM, 1, &[]));
    }
    s.send(I, &fr(HEADERS, FLAG_END_HEADERS, 1, &grpc_resp()));
    for c in resp.chunks(frame.max(1)) {
        s.send(I, &fr(DATA, 0, 1, c));
    }
    s.send(
        I,
        &fr(
            HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            1,
            &trailers(status, None),
        ),
    );
    s
}

#[test]
fn unary_call() {
    let (t, st) = run(&call(
        "/helloworld.Greeter/SayHello",
        &msg(false, 7),
        &msg(false, 12),
        1000,
        "0",
    )
    .close());
    assert_eq!(t.len(), 1, "{st:?}");
    let gf = g(&t[0]);
    assert_eq!(gf.service.as_deref(), Some("helloworld.Greeter"));
    assert_eq!(gf.method.as_deref(), Some("SayHello"));
    assert_eq!((gf.status, gf.message.as_deref()), (Some(0), None));
    assert_eq!(
        (gf.req_messages, gf.resp_messages, gf.compressed),
        (1, 1, false)
    );
    assert_eq!(t[0].status, Some(200));
    assert_eq!(t[0].req_body_bytes, Some(12));
    assert_eq!(t[0].resp_body_bytes, Some(17));
    assert!(!t[0].gap && t[0].h2.as_ref().unwrap().end_stream);
}

#[test]
fn trailers_only_error_with_a_percent_encoded_message() {
    let mut s = Script::new(Role::Client, false);
    let mut q = client_start();
    q.extend(fr(HEADERS, FLAG_END_HEADERS, 1, &grpc_req("/a.B/C")));
    q.extend(fr(DATA, FLAG_END_STREAM, 1, &msg(false, 3)));
    s.send(E, &q);
    let mut r = resp_block(
        "200",
        &[
            ("content-type", "application/grpc"),
            ("grpc-status", "5"),
            ("grpc-message", "no%20such%20user%3A%20caf%C3%A9"),
        ],
    );
    r = fr(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 1, &r);
    s.send(I, &r);
    let (t, _) = run(&s.close());
    let gf = g(&t[0]);
    assert_eq!(gf.status, Some(5));
    assert_eq!(gf.message.as_deref(), Some("no such user: café"));
    assert_eq!((gf.req_messages, gf.resp_messages), (1, 0));
    assert!(!t[0].gap);
}

/// Many messages each way, split over frames of 7 bytes (a prefix spans
/// frames), the compressed flag on one.
#[test]
fn streaming_counts_messages_not_frames() {
    let mut req = Vec::new();
    for n in [0, 1, 30, 5] {
        req.extend(msg(false, n));
    }
    let mut resp = Vec::new();
    for i in 0..9 {
        resp.extend(msg(i == 4, i * 11));
    }
    for frame in [1, 4, 5, 7, 64, 10_000] {
        let (t, st) = run(&call("/s.S/Bidi", &req, &resp, frame, "0").close());
        assert_eq!(t.len(), 1, "{frame}: {st:?}");
        let gf = g(&t[0]);
        assert_eq!(
            (gf.req_messages, gf.resp_messages, gf.compressed),
            (4, 9, true),
            "frame {frame}"
        );
        assert!(!t[0].gap, "{frame}");
    }
}

/// The same bytes however the writes are split (prefixes cut anywhere).
#[test]
fn messages_split_anywhere() {
    let mut resp = Vec::new();
    for i in 0..5 {
        resp.extend(msg(false, i * 3));
    }
    let whole = call("/s.S/M", &msg(false, 2), &resp, 6, "0").close();
    let mut bytes = [Vec::new(), Vec::new()];
    for e in &whole {
        if let Event::Data(d) = e {
            bytes[d.dir.index()].extend_from_slice(&d.payload);
        }
    }
    let (q, r) = (&bytes[0], &bytes[1]);
    for a in 1..r.len() {
        let mut s = Script::new(Role::Client, false);
        s.send(E, q);
        s.send(I, &r[..a]).send(I, &r[a..]);
        let (t, st) = run(&s.close());
        assert_eq!(t.len(), 1, "{a}: {st:?}");
        let gf = g(&t[0]);
        assert_eq!((gf.req_messages, gf.resp_messages), (1, 5), "{a}");
    }
}

/// A large message whose body lies past the capture cap is counted
/// exactly; a prefix past the cap makes the counts a lower bound (gap,
/// capture_cap).
#[test]
fn capture_cap_inside_a_message_and_over_a_prefix() {
    let mut s = Script::new(Role::Client, false);
    let mut q = client_start();
    q.extend(fr(HEADERS, FLAG_END_HEADERS, 1, &grpc_req("/s.S/Down")));
    q.extend(fr(DATA, FLAG_END_STREAM, 1, &msg(false, 1)));
    s.send(E, &q);
    s.send(I, &fr(HEADERS, FLAG_END_HEADERS, 1, &grpc_resp()));
    // a 40 000-byte message in 16 KiB frames, 64 bytes of each captured
    let big = msg(false, 40_000);
    for c in big.chunks(16_384) {
        let f = fr(DATA, 0, 1, c);
        s.send(I, &f[..9]);
        s.send_cap(I, &f[9..], 64);
    }
    s.send(I, &fr(DATA, 0, 1, &msg(false, 3)));
    s.send(
        I,
        &fr(
            HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            1,
            &trailers("0", None),
        ),
    );
    let (t, st) = run(&s.close());
    assert_eq!(t.len(), 1, "{st:?}");
    let gf = g(&t[0]);
    assert_eq!((gf.req_messages, gf.resp_messages), (1, 2));
    assert!(t[0].truncated && !t[0].gap);
    assert_eq!(t[0].resp_body_bytes, Some(big.len() as u64 + 8));

    // two messages in one frame, only the first 4 bytes captured
    let mut s = Script::new(Role::Client, false);
    let mut q = client_start();
    q.extend(fr(HEADERS, FLAG_END_HEADERS, 1, &grpc_req("/s.S/Down")));
    q.extend(fr(DATA, FLAG_END_STREAM, 1, &msg(false, 1)));
    s.send(E, &q);
    s.send(I, &fr(HEADERS, FLAG_END_HEADERS, 1, &grpc_resp()));
    let mut two = msg(false, 10);
    two.extend(msg(false, 10));
    let f = fr(DATA, 0, 1, &two);
    s.send_cap(I, &f, 9 + 4);
    s.send(
        I,
        &fr(
            HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            1,
            &trailers("0", None),
        ),
    );
    let (t, _) = run(&s.close());
    let gf = g(&t[0]);
    assert_eq!(gf.resp_messages, 0, "a lower bound");
    assert!(t[0].gap && t[0].truncated);
    assert!(t[0]
        .gap_cause
        .contains(crate::record::GapCauses::CAPTURE_CAP));
    assert_eq!(t[0].resp_body_bytes, Some(30), "still exact");
}

/// Not gRPC: no gRPC fields, protocol http2, even with a body that looks
/// like length prefixes.
#[test]
fn other_content_types_stay_http2() {
    let (t, _) = run(&interleaved().close());
    for t in &t {
        assert_eq!(t.protocol, "http2");
        assert!(t.h2.as_ref().unwrap().grpc.is_none());
    }
}

/// Lost bytes on the response side: the stream has a gap, and its counts
/// stop (a lower bound) rather than guessing from bytes out of frame.
#[test]
fn lost_bytes_stop_the_count() {
    let mut s = Script::new(Role::Client, false);
    let mut q = client_start();
    q.extend(fr(HEADERS, FLAG_END_HEADERS, 1, &grpc_req("/s.S/Down")));
    q.extend(fr(DATA, FLAG_END_STREAM, 1, &msg(false, 1)));
    s.send(E, &q);
    s.send(I, &fr(HEADERS, FLAG_END_HEADERS, 1, &grpc_resp()));
    s.send(I, &fr(DATA, 0, 1, &msg(false, 4)));
    s.lose(I, 30);
    s.send(I, &fr(DATA, 0, 1, &msg(false, 4)));
    s.send(
        I,
        &fr(
            HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            1,
            &trailers("0", None),
        ),
    );
    let (t, _) = run(&s.close());
    let t = t
        .iter()
        .find(|t| t.h2.as_ref().unwrap().stream_id == 1)
        .unwrap();
    assert!(t.gap);
    assert_eq!(g(t).resp_messages, 1);
}

/// The client's SETTINGS (a 4 MiB SETTINGS_MAX_FRAME_SIZE, as grpcio
/// sends) come before the server's first bytes: they still bind the
/// server's frames (a 70 005-byte DATA frame is not an invalid frame).
#[test]
fn settings_before_the_peer_speaks_bind_its_frames() {
    let mut s = Script::new(Role::Client, false);
    let mut q = PREFACE.to_vec();
    q.extend(fr(SETTINGS, 0, 0, &[0, 5, 0, 0x40, 0, 0]));
    q.extend(fr(HEADERS, FLAG_END_HEADERS, 1, &grpc_req("/s.S/Big")));
    q.extend(fr(DATA, FLAG_END_STREAM, 1, &msg(false, 1)));
    s.send(E, &q);
    let mut r = fr(SETTINGS, 0, 0, &[]);
    r.extend(fr(HEADERS, FLAG_END_HEADERS, 1, &grpc_resp()));
    r.extend(fr(DATA, 0, 1, &msg(false, 70_000)));
    r.extend(fr(
        HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        &trailers("0", None),
    ));
    s.send(I, &r);
    let (t, st) = run(&s.close());
    assert_eq!((t.len(), st.unparseable), (1, 0), "{st:?}");
    assert_eq!(g(&t[0]).resp_messages, 1);
    assert!(!t[0].gap);
}

/// A deadline the client enforces: it resets the stream (CANCEL) while
/// the server's DEADLINE_EXCEEDED answer is on its way. One record (the
/// reset), the late answer counted, not a second, orphan record.
#[test]
fn an_answer_that_crossed_the_reset_is_not_a_second_record() {
    let mut s = Script::new(Role::Client, false);
    let mut q = client_start();
    q.extend(fr(HEADERS, FLAG_END_HEADERS, 1, &grpc_req("/s.S/Slow")));
    q.extend(fr(DATA, FLAG_END_STREAM, 1, &msg(false, 1)));
    s.send(E, &q);
    s.send(E, &fr(RST_STREAM, 0, 1, &8u32.to_be_bytes()));
    let mut r = resp_block(
        "200",
        &[
            ("content-type", "application/grpc"),
            ("grpc-status", "4"),
            ("grpc-message", "Deadline Exceeded"),
        ],
    );
    r = fr(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 1, &r);
    s.send(I, &r);
    let (t, st) = run(&s.close());
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(st.h2_frames_after_reset, 1);
    let h2 = t[0].h2.as_ref().unwrap();
    assert_eq!(h2.rst_error.as_deref(), Some("CANCEL"));
    assert_eq!(g(&t[0]).status, None);
    assert!(t[0].no_response);
}
