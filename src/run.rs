// SPDX-License-Identifier: GPL-3.0-or-later
//! `osprey run`: open, configure, load and attach the probe, then poll the
//! ring buffer into the pipeline until Ctrl-C, SIGTERM or `--duration`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cli::validate::*;
use crate::cli::*;
use osprey::bpf::{self, ProbeConfig};
use osprey::pipeline::{EventsWorker, Pipeline, TrackerWorker, Worker};
use osprey::track::TrackerConfig;
use osprey::{clock, synthetic};

/// Smallest ring buffer `--sched auto` runs SCHED_BATCH with.
const SCHED_BATCH_MIN_RING: u32 = 2 << 20;

/// A scheduling policy for this thread and the threads it starts from now on (they
/// inherit it). Measured with nginx under wrk on 2 CPUs, where wrk and the
/// reader share a CPU: with SCHED_OTHER the reader, woken for a batch of
/// records, preempted wrk, and nginx ran out of requests (busy 95-97% of
/// the run against 98-99% without a probe); with SCHED_BATCH 98%
/// (docs/performance.md). Not being allowed to is no error.
fn set_sched(policy: libc::c_int, name: &str) {
    if let Err(e) = osprey::bpf::sched::set_policy(0, policy) {
        log::info!("{name} not set: {e}");
    }
}

pub fn run(a: RunArgs) -> Result<()> {
    validate(&a)?;
    for pid in &a.pids {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            log::warn!("--pid {pid}: no such process (yet); it is traced if it appears");
        }
    }
    // SCHED_BATCH delays the reader by up to a scheduler slice (1-3 ms):
    // 2 MiB hold that at 300 MB/s of records (4 KiB captures at 70k
    // requests/s) four times over. With a 64 KiB ring it lost 17% of the
    // records at 16 wrk connections, against 0.6% under SCHED_OTHER.
    match a.sched {
        SchedArg::Auto if a.ringbuf_size >= SCHED_BATCH_MIN_RING => {
            set_sched(libc::SCHED_BATCH, "SCHED_BATCH")
        }
        // adaptive: batch until the watchdog starts (osprey::bpf::sched)
        SchedArg::Batch | SchedArg::Adaptive => set_sched(libc::SCHED_BATCH, "SCHED_BATCH"),
        SchedArg::Idle => set_sched(libc::SCHED_IDLE, "SCHED_IDLE"),
        SchedArg::Auto | SchedArg::Normal => {}
    }
    let stop = Arc::new(AtomicBool::new(false));
    // SIGHUP (the terminal went away) stops like SIGTERM, with the summary
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    if let Some(d) = a.duration {
        let stop = stop.clone();
        // validate() checked that d fits a Duration
        let d = Duration::try_from_secs_f64(d).unwrap_or(Duration::MAX);
        std::thread::spawn(move || {
            std::thread::sleep(d);
            stop.store(true, Ordering::Relaxed);
        });
    }

    let offset = clock::realtime_offset_ns();
    let health = std::sync::Arc::new(osprey::health::Health::default());
    let sink = a.sinks.build(
        a.output.as_deref(),
        a.force,
        health.clone(),
        a.node_name.as_deref(),
    )?;
    let records = a.records;
    if a.sinks.clickhouse.is_some() && records != Records::Transactions {
        log::warn!(
            "--clickhouse takes transactions only: with --records {records:?} nothing is inserted"
        );
    }
    let redact = if a.no_redact {
        log::warn!("--no-redact: credentials (header values, query parameters, payloads) are written as captured");
        osprey::redact::Redact::off()
    } else {
        osprey::redact::Redact::with(&a.redact_header, &a.redact_param)
    };
    let body_skip = (a.body_skip == OnOff::On && !a.synthetic && records != Records::Events)
        .then(osprey::skip::SkipHints::new);
    let tcfg = TrackerConfig {
        body_skip: body_skip.clone(),
        idle_timeout_ns: a.idle_timeout.saturating_mul(1_000_000_000),
        headers: a.headers,
        redact: redact.clone(),
        emit_transactions: records == Records::Transactions,
        emit_messages: records == Records::Messages,
        realtime_offset_ns: offset as i128,
        ..TrackerConfig::default()
    };
    let (tcfg_max_conns, tcfg_max_buf) = (tcfg.max_conns, tcfg.max_buf_bytes);
    let make = move |_shard: usize| -> Box<dyn Worker> {
        match records {
            Records::Events => Box::new(EventsWorker::new(offset, redact.clone())),
            Records::Transactions | Records::Messages => Box::new(TrackerWorker::new(tcfg.clone())),
        }
    };
    let workers = a.workers.unwrap_or_else(default_workers);
    log::debug!("{workers} worker threads");
    let pipeline = Pipeline::start_with_health(workers, 1024, make, sink, health);
    let started = Instant::now();

    let kernel = if a.synthetic {
        let mut g = synthetic::Synthetic::new(a.capture_bytes as usize, 0x05b2e7);
        for ev in g.stream(a.synthetic_conns, a.synthetic_txns) {
            if stop.load(Ordering::Relaxed) || !pipeline.healthy() {
                break;
            }
            pipeline.submit(ev);
        }
        None
    } else {
        let want_filter = !(a.cgroups.is_empty() && a.containers.is_empty() && a.pods.is_empty());
        let identity = (want_filter || !a.no_identity).then(|| {
            osprey::identity::Shared::new(osprey::identity::IdentityConfig {
                cgroup_root: a.cgroup_root.clone(),
                pods_log_dir: a.pods_log_dir.clone(),
                node: osprey::identity::node_name(a.node_name.as_deref()),
                ..Default::default()
            })
        });
        let root = identity.as_ref().and_then(|s| s.root.clone());
        if want_filter && root.is_none() {
            bail!(
                "--cgroup/--container/--pod: no cgroup v2 hierarchy found (give --cgroup-root DIR)"
            );
        }
        let cgroup_filter = cgroup_selection(&a, root.as_deref())?;
        for c in &cgroup_filter.cgroups {
            if let Some(r) = &root {
                if !r.join(c.trim_start_matches('/')).is_dir() {
                    log::warn!(
                        "--cgroup {c}: no such cgroup (yet) under {}; it is traced if it appears",
                        r.display()
                    );
                }
            }
        }
        let cfg = ProbeConfig {
            identity,
            resolve_identity: !a.no_identity,
            cgroup_filter,
            cgroup_rescan: Duration::from_millis(a.cgroup_rescan_ms),
            pids: a.pids.clone(),
            comms: a.comms.clone(),
            capture_bytes: a.capture_bytes,
            capture_max_per_call: a.capture_max_per_call,
            follow_children: !a.no_descendants,
            iov_whole: a.iov_whole,
            ringbuf_bytes: a.ringbuf_size,
            wakeup_bytes: a.wakeup_bytes,
            wakeup_records: a.wakeup_records,
            poll_interval: poll_interval(&a),
            btf: a.btf.clone(),
            hooks: match a.hooks {
                HooksArg::Auto => bpf::Hooks::Auto,
                HooksArg::Socket => bpf::Hooks::Socket,
                HooksArg::Syscalls => bpf::Hooks::Syscalls,
            },
            tls: a.tls == OnOff::On,
            body_skip,
            sched_adaptive: a.sched == SchedArg::Adaptive,
            verbose: a.verbose > 0,
            progress: (a.verbose > 0).then_some(Duration::from_secs(5)),
        };
        match bpf::run(&cfg, &pipeline, &stop) {
            Ok(k) => Some(k),
            Err(e) => {
                pipeline.finish();
                return Err(e);
            }
        }
    };

    let summary = pipeline.finish();
    // stderr may be gone (closed pipe): the summary must not turn into a panic
    macro_rules! say {
        ($($t:tt)*) => {{
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), $($t)*);
        }};
    }
    let secs = started.elapsed().as_secs_f64();
    let s = &summary.stats;
    match &kernel {
        Some(k) => say!(
            "osprey: {:.1}s, {} events ({} ring-buffer drops, {} bytes lost, {} lost to busy scratch slots, {} program runs skipped by the kernel; {} bytes past the capture cap, {} moved by paths no hook sees, {} of bodies skipped, counted; {} further records of large reads and writes), {} records written, {} decode errors",
            secs, k.events, k.ringbuf_drops, k.ringbuf_drop_bytes, k.scratch_busy, k.prog_misses, k.truncated_bytes, k.unseen_bytes, k.skipped_body_bytes, k.cont_records, s.records, s.decode_errors
        ),
        None => say!("osprey: synthetic, {} events, {} records written", s.events, s.records),
    }
    if let Some(a) = kernel.as_ref().and_then(|k| k.sched_adaptive) {
        say!(
            "osprey: --sched adaptive: raised to SCHED_BATCH {} times, {:.1}% of the run ({} of {} watchdog checks)",
            a.raised, 100.0 * a.checks_raised as f64 / a.checks.max(1) as f64, a.checks_raised, a.checks
        );
    }
    if records != Records::Events {
        // the connection tables' bounds and what they cost, summed over workers
        let sum = |k: &str| {
            summary
                .workers
                .iter()
                .filter_map(|w| w.get(k)?.as_u64())
                .sum::<u64>()
        };
        say!(
            "osprey: tracker: {} connections ({} evicted at the cap of {} per worker, {} expired idle), {} captured bytes dropped (buffers capped at {} bytes per direction), {} incomplete requests, {} parser panics",
            sum("conns_seen"), sum("conns_evicted"), tcfg_max_conns, sum("conns_expired"), sum("bytes_dropped"), tcfg_max_buf, sum("incomplete_requests"), sum("parser_panics")
        );
        // what is not seen: always said, so that a quiet run is not mistaken
        // for one with nothing to see (docs/output.md)
        let not_tcp = match &kernel {
            // counted only where user space sees them (the BTF-less fallback)
            Some(k) if k.non_tcp_dropped > 0 => format!("{} not TCP (not traced)", k.non_tcp_dropped),
            Some(_) => "not TCP: not traced (unix-domain and UDP sockets are left out in the kernel, uncounted)".into(),
            None => "not TCP: none (synthetic)".into(),
        };
        say!(
            "osprey: connections with traffic but no records: {} TLS (encrypted at the syscalls), {} unknown protocol, {}",
            sum("blind_tls"), sum("blind_unknown"), not_tcp
        );
        if let Some(k) = kernel.as_ref().filter(|k| {
            k.tls.tls_libraries > 0
                || k.tls.tls_no_symbols > 0
                || k.tls_records > 0
                || k.tls.tls_go_binaries > 0
                || k.tls.tls_go_unsupported > 0
                || k.tls_reentry_dropped > 0
        }) {
            say!(
                "osprey: TLS: uprobes on {} library files ({} failed to attach, {} executables with TLS linked in but no symbols), {} plaintext records on {} connections ({} ciphertext events of them not parsed), {} calls on sockets never seen, {} calls that moved no bytes (end of stream, error, would block; or a short Go write), {} calls of processes outside the allowlist dropped, {} uprobe runs dropped (they preempted runs of the same program on their CPU)",
                k.tls.tls_libraries, k.tls.tls_attach_failed, k.tls.tls_no_symbols, k.tls_records, sum("tls_conns"), sum("tls_ciphertext_events"), k.tls_no_conn, k.tls_failed, k.tls_filtered, k.tls_reentry_dropped
            );
            if k.tls_no_conn > 0 {
                say!("osprey: TLS: {}", no_conn_whose(k.tls_no_conn_pid));
            }
            if k.tls.tls_go_binaries > 0 || k.tls.tls_go_unsupported > 0 {
                say!(
                    "osprey: TLS: Go crypto/tls: uprobes on {} executables, {} not supported, {} returns whose call was not seen",
                    k.tls.tls_go_binaries, k.tls.tls_go_unsupported, k.tls_go_no_call
                );
            }
        }
        // why records have gap: true, per cause (docs/output.md, gap_cause)
        let causes: Vec<String> = osprey::record::GapCauses::NAMES
            .iter()
            .map(|(_, n)| (n, sum(&format!("gap_{n}"))))
            .filter(|(_, v)| *v > 0)
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        say!(
            "osprey: records with gap by cause: {}",
            if causes.is_empty() {
                "none".to_string()
            } else {
                causes.join(", ")
            }
        );
    }
    // every sink besides the record stream: what it delivered and dropped
    for r in &summary.sinks {
        say!("osprey: {r}");
        if r.sink_dropped > 0 {
            log::warn!(
                "sink {}: {} records not delivered (sink_dropped)",
                r.name,
                r.sink_dropped
            );
        }
    }
    if let Some(i) = kernel.as_ref().and_then(|k| k.identity.as_ref()) {
        say!(
            "osprey: identity: {} connections looked up, unresolved: {} cgroup ids, {} Pods without namespace/name, {} container names, {} executables; pods dir unreadable {} times{}",
            i.lookups, i.cgroup_unresolved, i.pod_unresolved, i.container_name_unresolved, i.exe_unresolved, i.pods_dir_errors,
            if i.filter_cgroups > 0 || i.filter_map_errors > 0 {
                format!("; cgroup filter: {} cgroups, {} not added (map full)", i.filter_cgroups, i.filter_map_errors)
            } else {
                String::new()
            }
        );
    }
    if a.verbose > 0 {
        let full = serde_json::json!({"kernel": kernel, "pipeline": summary.stats, "workers": summary.workers, "sinks": summary.sinks});
        say!("osprey: summary {full}");
    }
    if let Some(k) = &kernel {
        if k.prog_misses > 0 {
            log::warn!(
                "the kernel skipped {} runs of Osprey's programs because another BPF program was active on \
                 the same CPU (a preempted program on PREEMPT_FULL/LAZY kernels, or other BPF tools): \
                 the syscalls they would have seen are missing, and their records may be marked gap",
                k.prog_misses
            );
        }
        if k.ringbuf_drops > 0 {
            log::warn!(
                "{} records were dropped because the ring buffer was full: raise --ringbuf-size or filter with --pid/--comm",
                k.ringbuf_drops
            );
        }
    }
    if let Some(e) = summary.sink_error {
        if !e.contains("Broken pipe") {
            bail!("writing records failed: {e}");
        }
    }
    Ok(())
}

/// The summary's note on `tls_no_conn`: whose TLS calls were on sessions
/// never tied to a socket (the last such process the kernel saw, and its
/// name while it still runs).
fn no_conn_whose(pid: u64) -> String {
    let name = u32::try_from(pid)
        .ok()
        .filter(|&p| p > 0)
        .and_then(osprey::procnet::comm);
    no_conn_note(pid, name.as_deref())
}

fn no_conn_note(pid: u64, name: Option<&str>) -> String {
    let who = match (pid, name) {
        (0, _) => "a process the kernel did not name".to_string(),
        (p, Some(n)) => format!("process {p} ({n})"),
        (p, None) => format!("process {p} (exited)"),
    };
    format!(
        "the calls on sockets never seen came last from {who}: TLS over something Osprey does \
         not trace as a TCP connection (a Unix socket or a pipe; in Go, a net.Conn that is not a \
         *net.TCPConn), its plaintext not recorded"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_conn_note_names_the_process_or_says_it_is_gone() {
        assert!(no_conn_note(1234, Some("curl")).contains("process 1234 (curl)"));
        assert!(no_conn_note(1234, None).contains("process 1234 (exited)"));
        assert!(no_conn_note(0, None).contains("did not name"));
        // pid 1 runs while the tests do: its name is read
        assert!(no_conn_whose(1).contains("process 1 ("));
        assert!(!no_conn_whose(1).contains("exited"));
    }
}
