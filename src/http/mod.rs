// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/1.x parsing.

pub mod parser;

pub use parser::{
    is_interim, parse_full_request, parse_full_response, parse_request, parse_response,
    request_framing, response_framing, BodyFraming, ChunkStep, ChunkedDecoder, Headers, Message,
    Parse, RequestHead, ResponseHead,
};

#[cfg(test)]
pub(crate) mod tests;
