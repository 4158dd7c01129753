// SPDX-License-Identifier: GPL-3.0-or-later
//! HTTP/2 (RFC 9113): frames (`frame`), HPACK header decoding (`hpack`,
//! `huffman`).

pub mod frame;
pub mod hpack;
mod huffman;
