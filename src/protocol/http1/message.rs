// SPDX-License-Identifier: GPL-3.0-or-later
//! Whole HTTP/1.x messages (head and body accounting) in one buffer: for
//! tests, fuzzing and tools; the tracker frames incrementally instead.

use super::parser::{
    parse_request, parse_response, request_framing, response_framing, BodyFraming, ChunkStep,
    ChunkedDecoder, Parse, RequestHead, ResponseHead,
};

/// A whole parsed message (head plus body accounting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<H> {
    pub head: H,
    pub head_len: usize,
    pub framing: BodyFraming,
    /// Body payload bytes (chunk data for chunked bodies).
    pub body_bytes: u64,
}

fn body_len(buf: &[u8], framing: BodyFraming, eof: bool) -> Parse<u64> {
    match framing {
        BodyFraming::None | BodyFraming::Tunnel => Parse::Complete(0, 0),
        BodyFraming::Length(n) => {
            if (buf.len() as u64) >= n {
                Parse::Complete(n, n as usize)
            } else {
                Parse::NeedMore
            }
        }
        BodyFraming::CloseDelimited => {
            if eof {
                Parse::Complete(buf.len() as u64, buf.len())
            } else {
                Parse::NeedMore
            }
        }
        BodyFraming::Chunked => {
            let mut d = ChunkedDecoder::new();
            match d.feed(buf) {
                ChunkStep::Done(n) => Parse::Complete(d.data_bytes, n),
                ChunkStep::Progress(_) => Parse::NeedMore,
                ChunkStep::Invalid(m) => Parse::Invalid(m),
            }
        }
    }
}

/// Head, then a body framed by `framing(&head)`: the shared tail of
/// [`parse_full_request`] and [`parse_full_response`].
fn full_message<H>(
    buf: &[u8],
    head: Parse<H>,
    framing: impl FnOnce(&H) -> Result<BodyFraming, &'static str>,
    eof: bool,
) -> Parse<Message<H>> {
    let (head, hl) = match head {
        Parse::Complete(h, n) => (h, n),
        Parse::NeedMore => return Parse::NeedMore,
        Parse::Invalid(m) => return Parse::Invalid(m),
    };
    let framing = match framing(&head) {
        Ok(f) => f,
        Err(m) => return Parse::Invalid(m),
    };
    match body_len(&buf[hl..], framing, eof) {
        Parse::Complete(body_bytes, n) => Parse::Complete(
            Message {
                head,
                head_len: hl,
                framing,
                body_bytes,
            },
            hl + n,
        ),
        Parse::NeedMore => Parse::NeedMore,
        Parse::Invalid(m) => Parse::Invalid(m),
    }
}

/// Parse one whole request (head and body).
pub fn parse_full_request(buf: &[u8]) -> Parse<Message<RequestHead>> {
    full_message(buf, parse_request(buf), request_framing, false)
}

/// Parse one whole response (head and body) to a request with `req_method`.
/// `eof` says the connection ended after `buf` (completes close-delimited
/// bodies).
pub fn parse_full_response(
    buf: &[u8],
    req_method: Option<&str>,
    eof: bool,
) -> Parse<Message<ResponseHead>> {
    full_message(
        buf,
        parse_response(buf),
        |h| response_framing(req_method, h),
        eof,
    )
}
