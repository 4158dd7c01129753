// SPDX-License-Identifier: GPL-3.0-or-later
//! Least privilege (root starts the test, Osprey runs as nobody): with
//! only CAP_BPF + CAP_PERFMON + CAP_DAC_READ_SEARCH (tracefs is root's,
//! mode 0700) a non-root Osprey captures a real curl → python transaction;
//! with less it refuses with a message that names what is missing.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

const NOBODY: u32 = 65534;

/// `setpriv` as nobody with exactly `caps` (e.g. "+bpf,+perfmon") in the
/// inheritable, ambient and bounding sets: they become Osprey's effective
/// set across the exec, and nothing else.
fn setpriv(caps: &str) -> Command {
    let all = if caps.is_empty() {
        "-all".to_string()
    } else {
        format!("-all,{caps}")
    };
    let mut cmd = Command::new("setpriv");
    cmd.args([
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".into(),
        format!("--inh-caps={all}"),
        format!("--ambient-caps={all}"),
        format!("--bounding-set={all}"),
    ]);
    cmd
}

/// A directory nobody can write the output to.
fn nobody_dir(name: &str) -> PathBuf {
    let d = tmpdir(name);
    std::os::unix::fs::chown(&d, Some(NOBODY), Some(NOBODY)).unwrap();
    d
}

/// One curl → python transaction; waits until the probe wrote both ends.
fn curl_python(name: &str, probe: &Osprey) {
    let site = Site::python(name, &[("a.txt", &[b'a'; 123])]);
    curl(&["-o", "/dev/null", &site.url("/a.txt")]);
    probe.wait_for_records("both ends of the transaction", |r| {
        txns(r, "curl").len() + txns(r, "python3").len() >= 2
    });
}

fn assert_captured(recs: &[serde_json::Value]) {
    for (comm, role) in [("curl", "client"), ("python3", "server")] {
        let t = txns(recs, comm);
        assert_eq!(t.len(), 1, "{comm}: {recs:?}");
        assert_eq!(t[0]["status"], 200);
        assert_eq!(t[0]["resp_body_bytes"], 123);
        assert_eq!(t[0]["role"], role);
    }
}

/// Run the probe `cmd` (writing to `out` in `dir`) over one curl → python
/// transaction; it must exit cleanly having captured both ends. Its stderr.
fn captures_as_nobody(cmd: Command, dir: PathBuf, out: PathBuf) -> String {
    let probe = Osprey::start_cmd(cmd, Some(out));
    curl_python("caps-site", &probe);
    let (status, recs, err) = probe.stop();
    assert!(status.success(), "{err}");
    assert_captured(&recs);
    let _ = std::fs::remove_dir_all(dir);
    err
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn non_root_with_bpf_perfmon_and_dac_read_search_captures() {
    require_root();
    let dir = nobody_dir("caps-ok");
    let out = dir.join("out.jsonl");
    let mut cmd = setpriv("+bpf,+perfmon,+dac_read_search");
    cmd.args([BIN, "-v", "-o"])
        .arg(&out)
        .args(hooks_args())
        .args(["--comm", "curl", "--comm", "python3"])
        // without CAP_SYS_NICE a thread cannot leave SCHED_IDLE: said, and
        // the probe runs at SCHED_BATCH instead
        .args(["--sched", "adaptive"]);
    let err = captures_as_nobody(cmd, dir, out);
    assert!(!err.contains("permission denied"), "{err}");
    assert!(
        err.contains("--sched adaptive: a thread cannot leave SCHED_IDLE here")
            && err.contains("needs CAP_SYS_NICE"),
        "{err}"
    );
    assert!(summary(&err)["kernel"]["sched_adaptive"].is_null(), "{err}");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn non_root_fallback_without_btf_captures() {
    require_root();
    let dir = nobody_dir("caps-nobtf");
    let out = dir.join("out.jsonl");
    // hide the kernel BTF (as root, in a private mount namespace), then drop to nobody
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-m",
        "sh",
        "-c",
        "mount -t tmpfs none /sys/kernel/btf && exec \"$0\" \"$@\"",
        "setpriv",
    ]);
    let sp = setpriv("+bpf,+perfmon,+dac_read_search,+sys_ptrace");
    cmd.args(sp.get_args());
    cmd.args([BIN, "-v", "-o"])
        .arg(&out)
        .args(["--comm", "curl", "--comm", "python3"]);
    let err = captures_as_nobody(cmd, dir, out);
    assert!(err.contains("BTF-less fallback"), "{err}");
    assert!(!err.contains("CAP_SYS_PTRACE"), "{err}");
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn missing_capabilities_are_named() {
    require_root();
    use std::os::unix::fs::PermissionsExt;
    let before = osprey_bpf_baseline();
    let mut cases = vec![
        ("", "lacks CAP_BPF and CAP_PERFMON"),
        ("+bpf", "lacks CAP_PERFMON"),
        ("+perfmon", "lacks CAP_BPF"),
    ];
    // tracefs as most distributions mount it: root's, mode 0700
    let tracefs_mode = std::fs::metadata("/sys/kernel/tracing")
        .map(|m| m.permissions().mode())
        .unwrap_or(0);
    if tracefs_mode & 0o005 == 0 {
        cases.push(("+bpf,+perfmon", "needs CAP_DAC_READ_SEARCH"));
    } else {
        eprintln!("tracefs is readable by others (mode {tracefs_mode:o}): CAP_DAC_READ_SEARCH case not checked");
    }
    for (caps, want) in cases {
        let out = setpriv(caps)
            .args([BIN, "--duration", "1", "-o", "/dev/null"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{caps}: {err}");
        assert!(err.contains(want), "{caps}: want {want:?} in:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    wait_unloaded(before, "no programs loaded after the refused starts");
}

/// deploy/kubernetes/capabilities.txt as `setpriv` wants them
/// ("+bpf,+perfmon,..."): the DaemonSet's capabilities (tests/deploy.rs
/// checks the manifest lists exactly these).
fn daemonset_caps() -> Vec<String> {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kubernetes/capabilities.txt"
    ))
    .unwrap()
    .lines()
    .map(str::trim)
    .filter(|l| !l.is_empty() && !l.starts_with('#'))
    .map(|c| format!("+{}", c.to_ascii_lowercase()))
    .collect()
}

/// As nobody with `caps`, one curl → python transaction (both run as
/// root): the records of both ends.
fn identity_as_nobody(name: &str, caps: &[String]) -> Vec<serde_json::Value> {
    let dir = nobody_dir(name);
    let out = dir.join("out.jsonl");
    let mut cmd = setpriv(&caps.join(","));
    cmd.args([BIN, "-v", "-o"])
        .arg(&out)
        .args(hooks_args())
        .args(["--comm", "curl", "--comm", "python3"]);
    let probe = Osprey::start_cmd(cmd, Some(out));
    // the site gets a directory of its own (tmpdir(name) would empty ours)
    curl_python(&format!("{name}-site"), &probe);
    let (status, recs, err) = probe.stop();
    assert!(status.success(), "{err}");
    assert_captured(&recs);
    let _ = std::fs::remove_dir_all(dir);
    recs
}

#[test]
#[cfg_attr(osprey_skip_live, ignore = "OSPREY_SKIP_LIVE=1")]
fn non_root_with_the_daemonset_capabilities_resolves_identity() {
    require_root();
    let caps = daemonset_caps();
    assert_eq!(
        caps,
        ["+bpf", "+perfmon", "+dac_read_search", "+sys_ptrace"]
    );
    let recs = identity_as_nobody("caps-ds", &caps);
    for comm in ["curl", "python3"] {
        let t = txns(&recs, comm)[0];
        // root's processes: their executables and cgroups
        assert!(
            t["exe"]
                .as_str()
                .is_some_and(|e| e.contains(comm.trim_end_matches('3'))),
            "{t}"
        );
        assert!(
            t["cgroup"].as_str().is_some_and(|c| c.starts_with('/')),
            "{t}"
        );
        assert!(t["cgroup_id"].is_u64(), "{t}");
    }
    // without CAP_SYS_PTRACE the capture works but root's executables are
    // unreadable: null, never guessed (why the DaemonSet has it)
    let fewer: Vec<String> = caps
        .iter()
        .filter(|c| *c != "+sys_ptrace")
        .cloned()
        .collect();
    let recs = identity_as_nobody("caps-noptrace", &fewer);
    for comm in ["curl", "python3"] {
        let t = txns(&recs, comm)[0];
        assert!(t["exe"].is_null(), "{t}");
        assert!(t["cgroup"].is_string(), "{t}");
    }
}
