// SPDX-License-Identifier: GPL-3.0-or-later
//! Checks of the parsed flags, before anything is loaded: each refusal
//! names the flag and the accepted range.

use std::time::Duration;

use anyhow::{bail, Result};

use super::*;
use osprey::{abi, bpf};

/// Smallest `--capture-bytes` but 0: a request line with a short target
/// and the start of its head (docs/output.md, `--capture-bytes`).
pub const MIN_CAPTURE: usize = 64;

/// Longest `--poll-ms`: the poller notices Ctrl-C, SIGTERM and the end of
/// `--duration` only between polls (a signal need not interrupt it).
pub const MAX_POLL_MS: u64 = 1000;

/// Most transactions `--synthetic` may hold at once: connection `c` starts
/// at `c` ms and lasts about `txns` ms, so about `min(conns, txns)`
/// connections of `txns` transactions overlap and are held until their
/// events are due (~3 KB a transaction: 40,000 are ~120 MB).
pub const MAX_SYNTHETIC_HELD: u128 = 40_000;

/// The command name the kernel keeps of `name`, for messages: its first 15
/// bytes (the kernel cuts comm by bytes, so a longer `--comm` matches a
/// process by those), cut on a character boundary, with the bytes of a
/// character cut in two shown as `\xNN`.
pub fn kept_comm(name: &str) -> String {
    let b = name.as_bytes();
    let kept = &b[..b.len().min(abi::COMM_LEN - 1)];
    let whole = match std::str::from_utf8(kept) {
        Ok(s) => s,
        // valid_up_to() is a character boundary of `name`: never panics
        Err(e) => &name[..e.valid_up_to()],
    };
    let mut out = whole.to_string();
    for c in &kept[whole.len()..] {
        out.push_str(&format!("\\x{c:02x}"));
    }
    out
}

/// `--cgroup`, `--container`, `--pod` as a selection.
pub fn cgroup_selection(
    a: &RunArgs,
    root: Option<&std::path::Path>,
) -> Result<osprey::identity::filter::Selection> {
    use osprey::identity::filter;
    let e = |m: String| anyhow::anyhow!(m);
    Ok(filter::Selection {
        cgroups: a
            .cgroups
            .iter()
            .map(|c| filter::normalize_cgroup(c, root).map_err(e))
            .collect::<Result<_>>()?,
        containers: a
            .containers
            .iter()
            .map(|c| filter::check_container(c).map_err(e))
            .collect::<Result<_>>()?,
        pods: a
            .pods
            .iter()
            .map(|p| filter::parse_pod(p).map_err(e))
            .collect::<Result<_>>()?,
    })
}

pub fn validate(a: &RunArgs) -> Result<()> {
    a.sinks.validate(a.output.as_deref())?;
    if a.sinks.record_format != osprey::jsonline::RecordFormat::Full
        && a.records != Records::Transactions
    {
        bail!(
            "--record-format compact applies to transaction lines: with --records {} the lines \
             would be the full ones (drop --record-format, or use --records transactions)",
            a.records
                .to_possible_value()
                .map_or("?".into(), |v| v.get_name().to_string())
        );
    }
    cgroup_selection(a, None)?;
    if a.cgroup_rescan_ms == 0 || a.cgroup_rescan_ms > 3_600_000 {
        bail!("--cgroup-rescan-ms {}: 1 to 3600000", a.cgroup_rescan_ms);
    }
    if a.capture_bytes as usize > abi::MAX_PAYLOAD {
        bail!(
            "--capture-bytes {}: at most {} (OSPREY_MAX_PAYLOAD)",
            a.capture_bytes,
            abi::MAX_PAYLOAD
        );
    }
    let most = a.capture_bytes as usize + abi::MAX_CONT * abi::MAX_PAYLOAD;
    if a.capture_max_per_call as usize > most {
        bail!(
            "--capture-max-per-call {}: at most {most} (--capture-bytes + {} further records of {} bytes)",
            a.capture_max_per_call,
            abi::MAX_CONT,
            abi::MAX_PAYLOAD
        );
    }
    if a.iov_whole as usize > abi::MAX_PAYLOAD {
        bail!(
            "--iov-whole {}: at most {} (OSPREY_MAX_PAYLOAD: every iovec captured whole)",
            a.iov_whole,
            abi::MAX_PAYLOAD
        );
    }
    if !a.ringbuf_size.is_power_of_two() || a.ringbuf_size < 4096 {
        bail!(
            "--ringbuf-size {}: must be a power of two and at least 4096",
            a.ringbuf_size
        );
    }
    if a.pids.len() > abi::MAX_FILTER_PIDS {
        bail!(
            "--pid given {} times: at most {}",
            a.pids.len(),
            abi::MAX_FILTER_PIDS
        );
    }
    if a.comms.len() > abi::MAX_FILTER_COMMS {
        bail!(
            "--comm given {} times: at most {}",
            a.comms.len(),
            abi::MAX_FILTER_COMMS
        );
    }
    if a.comms.iter().any(|c| c.is_empty()) {
        bail!("--comm: empty name");
    }
    // one warning for every name cut, each named once
    let mut cut: Vec<&String> = a
        .comms
        .iter()
        .filter(|c| c.len() >= abi::COMM_LEN)
        .collect();
    cut.sort();
    cut.dedup();
    if !cut.is_empty() {
        let given: Vec<String> = cut.iter().map(|c| format!("--comm {c}")).collect();
        let kept: Vec<String> = cut
            .iter()
            .map(|c| format!("\"{}\"", kept_comm(c)))
            .collect();
        log::warn!(
            "{}: the kernel keeps only the first {} bytes of a command name; matching {}",
            given.join(", "),
            abi::COMM_LEN - 1,
            kept.join(", ")
        );
    }
    if a.capture_bytes != 0 && (a.capture_bytes as usize) < MIN_CAPTURE {
        bail!(
            "--capture-bytes {}: at least {MIN_CAPTURE} (a request line, e.g. \"GET /path HTTP/1.1\", and the \
             start of a head must fit in one capture), or 0 to capture no payload",
            a.capture_bytes
        );
    }
    if a.capture_bytes == 0 && !a.synthetic && a.records != Records::Events {
        log::warn!(
            "--capture-bytes 0: no payload is captured, so no HTTP message can be parsed and no transaction \
             is recorded (only the probe's counters and --records events are meaningful)"
        );
    }
    if let Some(p) = &a.btf {
        bpf::check_btf_file(p)?;
    }
    if let Some(w) = a.workers.filter(|&w| w > 64) {
        bail!("--workers {w}: at most 64");
    }
    if let Some(d) = a.duration {
        if !(d > 0.0 && d.is_finite()) {
            bail!("--duration {d}: must be a positive number of seconds");
        }
        if Duration::try_from_secs_f64(d).is_err() {
            bail!(
                "--duration {d:e}: too long (at most {:e} seconds)",
                Duration::MAX.as_secs() as f64
            );
        }
    }
    if a.poll_ms > MAX_POLL_MS {
        bail!(
            "--poll-ms {}: at most {MAX_POLL_MS} (Ctrl-C and the end of --duration are noticed between polls)",
            a.poll_ms
        );
    }
    if a.synthetic {
        let held = a.synthetic_conns.min(a.synthetic_txns) as u128 * a.synthetic_txns as u128;
        if held > MAX_SYNTHETIC_HELD {
            bail!(
                "--synthetic-txns {} with --synthetic-conns {}: connections overlap in time, about {held} \
                 transactions would be held in memory; at most {MAX_SYNTHETIC_HELD} (min(conns, txns) x txns): \
                 fewer transactions per connection (--synthetic-conns has no limit)",
                a.synthetic_txns,
                a.synthetic_conns
            );
        }
    }
    Ok(())
}

/// How long one ring-buffer poll may block: `--poll-ms` (0: 1 ms), and
/// not longer than `--duration`, which is noticed only between polls.
pub fn poll_interval(a: &RunArgs) -> Duration {
    let poll = Duration::from_millis(a.poll_ms.clamp(1, MAX_POLL_MS));
    match a.duration.and_then(|d| Duration::try_from_secs_f64(d).ok()) {
        Some(d) => poll.min(d.max(Duration::from_millis(1))),
        None => poll,
    }
}
