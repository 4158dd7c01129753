// SPDX-License-Identifier: GPL-3.0-or-later
//! Live tests of `--pid` following descendants (issue 17, item 5b), under
//! whichever hook set `OSPREY_TEST_HOOKS` names: nginx's master forked
//! its worker before the probe started (found in /proc), a shell forks
//! curl after it (sched:sched_process_fork); `--no-descendants` traces
//! the given processes alone.

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

/// A shell, waiting for `go` to exist, then fetching `url` twice with curl
/// (each curl a child forked after the probe started).
fn shell(dir: &std::path::Path, url: &str) -> Guard {
    let go = dir.join("go");
    let script = format!(
        "while [ ! -e '{go}' ]; do sleep 0.02; done; curl -sS -o /dev/null '{url}'; curl -sS -o /dev/null '{url}'; exit 0",
        go = go.display()
    );
    Guard(
        Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn run(follow: bool) -> (Vec<Value>, String) {
    require_root();
    let name = if follow { "follow" } else { "follow-off" };
    let site = Site::nginx(name, &[("f.txt", &body(500))]);
    let mut sh = shell(&site.dir, &site.url("/f.txt"));
    let master = site.server.0.id().to_string();
    let shell_pid = sh.0.id().to_string();
    let mut args = vec!["--pid", &master, "--pid", &shell_pid];
    if !follow {
        args.push("--no-descendants");
    }
    let probe = site.probe(&args);
    std::fs::write(site.dir.join("go"), b"").unwrap();
    let st = sh.0.wait().unwrap();
    assert!(st.success(), "the shell: {st:?}");
    if follow {
        probe.wait_for_records("2 curl and 2 nginx transactions", |r| {
            txns(r, "curl").len() >= 2 && txns(r, "nginx").len() >= 2
        });
    }
    probe.stop_ok()
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn pid_follows_a_masters_worker_and_a_shells_later_children() {
    let (recs, err) = run(true);
    for comm in ["curl", "nginx"] {
        let t = txns(&recs, comm);
        assert_eq!(t.len(), 2, "{comm}: {t:#?}\n{err}");
        for r in t {
            assert_eq!(r["path"], "/f.txt", "{r}");
            assert_eq!(r["status"], 200, "{r}");
            assert_eq!(r["resp_body_bytes"], 500, "{r}");
            assert_eq!(r["gap"], false, "{r}");
        }
    }
    let k = &summary(&err)["kernel"];
    // the two curls (forked after the start; nginx's worker was found in /proc)
    assert!(k["child_pids"].as_u64().unwrap() >= 2, "{err}");
    assert_eq!(k["child_pids_full"], 0, "{err}");
    // nginx's worker (and maybe the shell's `sleep` of the moment)
    let existing: u64 = err
        .split("--pid: following ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `--pid: following N existing descendants` line:\n{err}"));
    assert!(existing >= 1, "{err}");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn no_descendants_traces_the_given_processes_alone() {
    let (recs, err) = run(false);
    // the master and the shell move no HTTP bytes themselves
    let t: Vec<&Value> = recs
        .iter()
        .filter(|r| r["type"] == "http_transaction")
        .collect();
    assert!(t.is_empty(), "{t:#?}\n{err}");
    assert_eq!(summary(&err)["kernel"]["child_pids"], 0, "{err}");
}
