// SPDX-License-Identifier: GPL-3.0-or-later
//! Osprey: host-side eBPF transaction probe.
//!
//! Everything past the ring buffer (decode, pipeline, tracker, parsers,
//! sinks) is plain Rust and testable without root; `bpf` is the thin loader.
pub mod abi;
pub mod bpf;
pub mod check;
pub mod clock;
pub mod decode;
pub mod event;
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
pub mod health;
pub mod identity;
pub mod jsonline;
pub mod output;
pub mod pipeline;
pub mod procnet;
pub mod proctree;
pub mod protocol;
pub mod recon;
pub mod record;
pub mod redact;
pub mod replay;
pub mod sink;
pub mod skip;
pub mod synthetic;
pub mod text;
pub mod tls;
pub mod tracefs;
pub mod track;
pub mod wire;
