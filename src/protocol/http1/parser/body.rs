// SPDX-License-Identifier: GPL-3.0-or-later
//! How a message's body is delimited (RFC 9112 §6.3): [`BodyFraming`] from
//! the head's Content-Length and Transfer-Encoding fields, the request
//! method and the response status.

use super::{Headers, RequestHead, ResponseHead};
use crate::protocol::http1::headers::{CONTENT_LENGTH, TRANSFER_ENCODING};

/// How the body of a message is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the connection closes (responses only).
    CloseDelimited,
    /// The connection stops being HTTP after this head (101, CONNECT 2xx).
    Tunnel,
}

/// One decimal number of up to 19 digits (which cannot overflow a u64).
fn plain_number(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &c in v.as_bytes() {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + d as u64;
    }
    Some(n)
}

fn content_length(h: &Headers) -> Result<Option<u64>, &'static str> {
    // the usual: no field, or one with one number
    match h.get_single_known(CONTENT_LENGTH) {
        Some(None) => Ok(None),
        Some(Some(v)) => match plain_number(v) {
            Some(n) => Ok(Some(n)),
            None => content_length_all(h),
        },
        None => content_length_all(h),
    }
}

/// [`content_length`] of any fields: repeated, lists, anything invalid
/// (out of line: the usual case above stays small).
#[cold]
#[inline(never)]
fn content_length_all(h: &Headers) -> Result<Option<u64>, &'static str> {
    let mut found: Option<u64> = None;
    for v in h.get_all_known(CONTENT_LENGTH) {
        // the usual: one number (19 digits cannot overflow a u64)
        if let Some(n) = plain_number(v) {
            match found {
                Some(prev) if prev != n => return Err("conflicting content-length"),
                _ => found = Some(n),
            }
            continue;
        }
        // A list of identical values ("42, 42") is allowed, anything else is not.
        for part in v.split(',') {
            let p = part.trim();
            if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err("bad content-length");
            }
            let n: u64 = p.parse().map_err(|_| "content-length overflow")?;
            match found {
                Some(prev) if prev != n => return Err("conflicting content-length"),
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// `Some(true)` if Transfer-Encoding is present and its final coding is
/// chunked, `Some(false)` if present otherwise, `None` if absent.
fn te_chunked(h: &Headers) -> Option<bool> {
    if h.get_single_known(TRANSFER_ENCODING) == Some(None) {
        return None;
    }
    te_chunked_all(h)
}

/// [`te_chunked`] when there is a Transfer-Encoding field (out of line).
#[inline(never)]
fn te_chunked_all(h: &Headers) -> Option<bool> {
    let mut last: Option<String> = None;
    let mut present = false;
    for v in h.get_all_known(TRANSFER_ENCODING) {
        present = true;
        for c in v.split(',') {
            let c = c.trim();
            if !c.is_empty() {
                last = Some(c.to_ascii_lowercase());
            }
        }
    }
    if !present {
        return None;
    }
    Some(
        last.as_deref()
            .map(|c| c.split(';').next().unwrap_or("").trim() == "chunked")
            .unwrap_or(false),
    )
}

/// Body framing of a request.
pub fn request_framing(h: &RequestHead) -> Result<BodyFraming, &'static str> {
    match te_chunked(&h.headers) {
        Some(true) => return Ok(BodyFraming::Chunked),
        // A request whose final coding is not chunked cannot be delimited.
        Some(false) => return Err("transfer-encoding without final chunked"),
        None => {}
    }
    Ok(match content_length(&h.headers)? {
        Some(0) | None => BodyFraming::None,
        Some(n) => BodyFraming::Length(n),
    })
}

/// Body framing of a response to a request with method `req_method` (None if
/// the request was not seen).
pub fn response_framing(
    req_method: Option<&str>,
    h: &ResponseHead,
) -> Result<BodyFraming, &'static str> {
    let s = h.status;
    if s == 101 {
        return Ok(BodyFraming::Tunnel);
    }
    if req_method == Some("CONNECT") && (200..300).contains(&s) {
        return Ok(BodyFraming::Tunnel);
    }
    if req_method == Some("HEAD") || (100..200).contains(&s) || s == 204 || s == 304 {
        return Ok(BodyFraming::None);
    }
    match te_chunked(&h.headers) {
        Some(true) => return Ok(BodyFraming::Chunked),
        Some(false) => return Ok(BodyFraming::CloseDelimited),
        None => {}
    }
    Ok(match content_length(&h.headers)? {
        Some(0) => BodyFraming::None,
        Some(n) => BodyFraming::Length(n),
        None => BodyFraming::CloseDelimited,
    })
}
