// SPDX-License-Identifier: GPL-3.0-or-later
//! Live tests of the scheduling policies of Osprey's threads (`--sched`):
//! what each choice sets, and that `adaptive` raises a reader starved at
//! SCHED_IDLE before its ring buffer overflows.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;

/// Scheduling policy (field 41 of /proc/PID/task/TID/stat) of each thread.
fn thread_policies(pid: u32) -> Vec<u32> {
    named_policies(pid).into_iter().map(|(_, p)| p).collect()
}

/// (thread name, scheduling policy) of each thread.
fn named_policies(pid: u32) -> Vec<(String, u32)> {
    let mut v = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let stat = std::fs::read_to_string(t.unwrap().path().join("stat")).unwrap_or_default();
        if let (Some((head, rest)), Some(open)) = (stat.rsplit_once(')'), stat.find('(')) {
            // fields from 3 on follow the command name; policy is field 41
            if let Some(p) = rest.split_whitespace().nth(41 - 3) {
                v.push((head[open + 1..].to_string(), p.parse().unwrap()));
            }
        }
    }
    v
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn threads_run_as_sched_batch_with_a_large_ring() {
    let dir = tmpdir("sched");
    for (args, want) in [
        (vec![], libc::SCHED_BATCH),
        (vec!["--sched", "normal"], libc::SCHED_OTHER),
        // auto: a small ring cannot wait for a batch-scheduled reader
        (vec!["--ringbuf-size", "1048576"], libc::SCHED_OTHER),
        (
            vec!["--ringbuf-size", "1048576", "--sched", "batch"],
            libc::SCHED_BATCH,
        ),
    ] {
        // --workers 2: the worker and writer threads too
        let mut a = vec!["--comm", "nothing-matches", "--workers", "2"];
        a.extend(args.iter().copied());
        let probe = Osprey::start(&a, dir.join("out.jsonl"));
        let pols = thread_policies(probe.pid());
        assert!(pols.len() >= 4, "threads: {pols:?}");
        assert!(
            pols.iter().all(|&p| p == want as u32),
            "{args:?}: policies {pols:?}, want {want}"
        );
        probe.stop_ok();
    }
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn idle_and_adaptive_lower_every_thread_but_the_watchdog() {
    let dir = tmpdir("sched-idle");
    // idle: every thread, from the start
    let probe = Osprey::start(
        &[
            "--comm",
            "nothing-matches",
            "--workers",
            "2",
            "--sched",
            "idle",
        ],
        dir.join("out.jsonl"),
    );
    let pols = thread_policies(probe.pid());
    assert!(pols.len() >= 4, "threads: {pols:?}");
    assert!(
        pols.iter().all(|&p| p == libc::SCHED_IDLE as u32),
        "--sched idle: policies {pols:?}"
    );
    probe.stop_ok();

    // adaptive: the watchdog lowers the others once the ring is polled;
    // it stays SCHED_BATCH itself
    let probe = Osprey::start(
        &[
            "--comm",
            "nothing-matches",
            "--workers",
            "2",
            "--sched",
            "adaptive",
        ],
        dir.join("out.jsonl"),
    );
    let pid = probe.pid();
    let settled = |p: &[(String, u32)]| {
        p.len() >= 5
            && p.iter().all(|(name, pol)| {
                let want = if name == "osprey-sched" {
                    libc::SCHED_BATCH
                } else {
                    libc::SCHED_IDLE
                };
                *pol == want as u32
            })
            && p.iter().filter(|(n, _)| n == "osprey-sched").count() == 1
    };
    wait_until(
        "--sched adaptive: the watchdog at SCHED_BATCH, every other thread at SCHED_IDLE",
        || settled(&named_policies(pid)),
        || format!("{:?}", named_policies(pid)),
    );
    let (_, err) = probe.stop_ok();
    let s = &summary(&err)["kernel"]["sched_adaptive"];
    assert_eq!(s["raised"], 0, "nothing to read, nothing raised: {err}");
    assert!(s["checks"].as_u64() > Some(0), "{err}");
}

/// With every CPU kept busy at the normal policy, a SCHED_IDLE reader gets
/// next to nothing; `adaptive`'s watchdog must see the ring fill and raise
/// it, and every transaction must still be recorded.
#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn adaptive_raises_a_starved_reader_and_loses_nothing() {
    const N: usize = 20_000;
    let b = body(100);
    let site = Site::nginx("sched-adaptive", &[("f.txt", b.as_slice())]);
    let out = site.dir.join("out.jsonl");
    let probe = site.probe(&["--comm", "nginx", "--sched", "adaptive"]);
    // one spinning thread per CPU, at the normal policy
    let stop = Arc::new(AtomicBool::new(false));
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hogs: Vec<_> = (0..cpus)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    // N keep-alive GETs from one curl (URL globbing)
    let status = Command::new("curl")
        .args(["-s", "--http1.1", "--fail"])
        .arg(site.url(&format!("/f.txt?[1-{N}]")))
        .stdout(Stdio::null())
        .status()
        .expect("curl");
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    assert!(status.success(), "curl: {status:?}");
    let lines = || {
        std::fs::read(&out)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0)
    };
    wait_until(
        &format!("{N} transaction records"),
        || lines() >= N,
        || format!("{} records so far\n{}", lines(), probe.stderr()),
    );
    let (recs, err) = probe.stop_ok();
    assert_eq!(ringbuf_drops(&err), 0, "{err}");
    assert_eq!(txns(&recs, "nginx").len(), N, "{err}");
    let s = &summary(&err)["kernel"]["sched_adaptive"];
    assert!(
        s["raised"].as_u64() >= Some(1),
        "the reader was never raised while the CPUs were busy: {s}\n{err}"
    );
}
