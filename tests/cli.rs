// SPDX-License-Identifier: GPL-3.0-or-later
//! The command line without root: bad flags are clear errors (never a
//! panic), `--synthetic` runs stay bounded, and `-o` files are private.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_osprey");

fn osprey(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running osprey")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails with `want` in its message, exit status 1 (ours) or 2 (clap's).
fn refused(args: &[&str], want: &str) {
    let o = osprey(args);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert!(
        matches!(o.status.code(), Some(1 | 2)),
        "{args:?}: {:?}\n{err}",
        o.status
    );
    assert!(err.contains(want), "{args:?}: {want:?} not in: {err}");
    assert!(o.stdout.is_empty(), "{args:?} wrote records");
}

#[test]
fn numeric_flags_out_of_range_are_clear_errors() {
    refused(
        &["--synthetic", "--duration", "1e300"],
        "--duration 1e300: too long",
    );
    refused(
        &["--synthetic", "--duration", "inf"],
        "--duration inf: must be a positive number",
    );
    refused(
        &["--synthetic", "--duration", "-1"],
        "--duration -1: must be a positive number",
    );
    refused(
        &["--synthetic", "--duration", "0"],
        "--duration 0: must be a positive number",
    );
    refused(
        &["--synthetic", "--poll-ms", "1001"],
        "--poll-ms 1001: at most 1000",
    );
    refused(
        &["--synthetic", "--poll-ms", "18446744073709551615"],
        "--poll-ms 18446744073709551615: at most 1000",
    );
    refused(
        &["--synthetic", "--poll-ms", "18446744073709551616"],
        "invalid value '18446744073709551616' for '--poll-ms",
    );
    refused(
        &["--synthetic", "--synthetic-txns", "18446744073709551615"],
        "--synthetic-txns 18446744073709551615",
    );
    refused(
        &[
            "--synthetic",
            "--synthetic-conns",
            "1000",
            "--synthetic-txns",
            "1000",
        ],
        "at most 40000",
    );
    refused(
        &["--capture-bytes", "16385"],
        "--capture-bytes 16385: at most 16384",
    );
    refused(
        &["--capture-bytes", "99999999999"],
        "invalid value '99999999999' for '--capture-bytes",
    );
    refused(
        &["--iov-whole", "16385"],
        "--iov-whole 16385: at most 16384",
    );
    refused(
        &["--capture-max-per-call", "1052673"],
        "--capture-max-per-call 1052673: at most 1052672",
    );
    refused(
        &["--capture-bytes", "64", "--capture-max-per-call", "1048641"],
        "--capture-max-per-call 1048641: at most 1048640",
    );
    refused(
        &["--no-descendants"],
        "the following required arguments were not provided",
    );
    refused(
        &["--ringbuf-size", "5000"],
        "--ringbuf-size 5000: must be a power of two",
    );
    refused(&["--workers", "65"], "--workers 65: at most 64");
    refused(&["--workers", "-1"], "invalid value '-1' for '--workers");
    refused(&["--pid", "-1"], "invalid value '-1' for '--pid");
    refused(
        &["--idle-timeout", "-5"],
        "invalid value '-5' for '--idle-timeout",
    );
    refused(&["--comm", ""], "--comm: empty name");
    refused(&["--bogus"], "unexpected argument '--bogus'");
}

#[test]
fn a_long_multibyte_comm_is_cut_where_the_kernel_cuts_it() {
    // 18 bytes: the kernel keeps 15, the 8th 'é' cut in two
    let o = osprey(&[
        "--synthetic",
        "--synthetic-conns",
        "1",
        "--synthetic-txns",
        "1",
        "--comm",
        "ééééééééé",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(r#"first 15 bytes of a command name; matching "ééééééé\xc3""#),
        "{err}"
    );
}

#[test]
fn a_huge_synthetic_run_ends_with_duration_in_bounded_memory() {
    let t = Instant::now();
    let o = osprey(&[
        "--synthetic",
        "--synthetic-conns",
        "18446744073709551615",
        "--duration",
        "1.5",
    ]);
    let took = t.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        took < Duration::from_secs(30),
        "ran {took:?} for --duration 1.5"
    );
    assert!(o.stdout.len() > 1000, "no records");
    // SAFETY: getrusage with a valid out-pointer
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    // the largest of this binary's children so far (all small runs but this one)
    assert!(ru.ru_maxrss < 200 * 1024, "peak RSS {} KiB", ru.ru_maxrss);
}

#[test]
fn output_files_are_private_whatever_the_umask() {
    let dir = std::env::temp_dir().join(format!("osprey-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("records.jsonl");
    let mut cmd = Command::new(BIN);
    cmd.args(["--synthetic", "--synthetic-conns", "1", "-o"])
        .arg(&out);
    // SAFETY: umask is async-signal-safe; it runs in the child before exec
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let m = std::fs::metadata(&out).unwrap();
    assert!(m.len() > 0);
    assert_eq!(m.permissions().mode() & 0o7777, 0o600);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_has_examples() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["check", "--help"],
        &["wire", "--help"],
        &["recon-diff", "--help"],
    ] {
        let o = osprey(args);
        assert!(o.status.success());
        let h = String::from_utf8_lossy(&o.stdout);
        assert!(h.contains("Examples:\n  "), "{args:?}: no examples:\n{h}");
    }
}

#[test]
fn the_readme_names_the_rust_version_of_cargo_toml() {
    let root = env!("CARGO_MANIFEST_DIR");
    let toml = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let v = toml
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap();
    assert!(
        readme.contains(&format!("A Rust toolchain, {v} or newer")),
        "README does not ask for Rust {v}"
    );
    assert!(readme.contains("`scripts/setup.sh` stops a running nginx"));
}

#[test]
fn the_summary_reports_the_connection_tables_bounds_and_parser_panics() {
    let o = osprey(&[
        "--synthetic",
        "--synthetic-conns",
        "3",
        "--synthetic-txns",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let line = e
        .lines()
        .find(|l| l.starts_with("osprey: tracker: "))
        .unwrap_or_else(|| panic!("no tracker line in {e}"));
    // each synthetic connection is traced at both ends: 3 x 2
    assert_eq!(
        line,
        "osprey: tracker: 6 connections (0 evicted at the cap of 16384 per worker, 0 expired idle), \
         0 captured bytes dropped (buffers capped at 262144 bytes per direction), 0 incomplete requests, 0 parser panics"
    );
}

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("osprey-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sample(name: &str) -> String {
    format!("{}/tests/recon/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs osprey with umask 0.
fn osprey_umask0(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("RUST_LOG");
    // SAFETY: umask is async-signal-safe; it runs in the child before exec
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    cmd.output().unwrap()
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn wire_and_recon_outputs_are_private_whatever_the_umask() {
    let dir = tmp_dir("private");
    let (w, d, s) = (
        dir.join("wire.jsonl"),
        dir.join("diff.jsonl"),
        dir.join("summary.json"),
    );
    let o = osprey_umask0(&["wire", &sample("lo_python.pcap"), "-o", w.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = osprey_umask0(&[
        "recon-diff",
        "--wire",
        &sample("lo_python.pcap"),
        "--ebpf",
        &sample("lo_python.probe.jsonl"),
        "-o",
        d.to_str().unwrap(),
        "--summary-json",
        s.to_str().unwrap(),
    ]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    for p in [&w, &d, &s] {
        assert_eq!(mode(p), 0o600, "{}", p.display());
    }
    assert!(std::fs::metadata(&w).unwrap().len() > 0);
    assert!(std::fs::metadata(&s).unwrap().len() > 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_output_path_that_is_a_symlink_is_refused_unless_forced() {
    let dir = tmp_dir("symlink");
    let target = dir.join("precious");
    let link = dir.join("out.jsonl");
    std::fs::write(&target, "keep").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let l = link.to_str().unwrap();
    let pcap = sample("lo_python.pcap");
    let probe = sample("lo_python.probe.jsonl");
    let want = format!("{l} is a symbolic link");
    for args in [
        vec!["--synthetic", "--synthetic-conns", "1", "-o", l],
        vec!["wire", &pcap, "-o", l],
        vec!["recon-diff", "--wire", &pcap, "--ebpf", &probe, "-o", l],
        vec![
            "recon-diff",
            "--wire",
            &pcap,
            "--ebpf",
            &probe,
            "--summary-json",
            l,
        ],
    ] {
        let o = osprey(&args);
        let err = stderr(&o);
        assert!(
            matches!(o.status.code(), Some(1 | 2)),
            "{args:?}: {:?} {err}",
            o.status
        );
        assert!(err.contains(&want), "{args:?}: {err}");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "keep",
            "{args:?}"
        );
    }
    let o = osprey(&["wire", &pcap, "-o", l, "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&target)
        .unwrap()
        .contains("http_transaction"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wire_exits_3_after_writing_what_it_could_of_a_truncated_capture() {
    let dir = tmp_dir("truncated");
    let whole = std::fs::read(sample("lo_python.pcap")).unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &whole[..3000]).unwrap();
    let o = osprey(&["wire", cut.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("stopped reading the capture at byte"), "{err}");
    let recs = String::from_utf8_lossy(&o.stdout).lines().count();
    assert_eq!(recs, 2, "records before the damage");
    // the whole capture: 0
    let o = osprey(&["wire", &sample("lo_python.pcap")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wire_reads_a_live_capture_from_stdin_and_writes_records_as_they_complete() {
    use std::io::{BufRead, Write};
    use std::process::Stdio;
    let pcap = std::fs::read(sample("lo_python.pcap")).unwrap();
    let mut child = Command::new(BIN)
        .args(["wire", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&pcap).unwrap();
    stdin.flush().unwrap();
    // stdin stays open: the records must come before its end
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines() {
            if tx.send(l.unwrap()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    while lines.len() < 6 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    assert_eq!(lines.len(), 6, "records before the end of stdin: {lines:?}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited before stdin ended"
    );
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(lines.iter().all(|l| l.contains("\"source\":\"wire\"")));
    assert!(
        rx.recv_timeout(Duration::from_secs(5)).is_err(),
        "records after the end"
    );
}

#[test]
fn a_btf_file_that_is_not_btf_is_named_as_such() {
    let dir = tmp_dir("btf");
    let f = dir.join("not-btf");
    std::fs::write(&f, "hello, this is text\n").unwrap();
    refused(
        &["--btf", f.to_str().unwrap()],
        &format!("--btf {}: not a BTF file", f.display()),
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn capture_bytes_below_a_request_line_are_refused() {
    refused(
        &["--synthetic", "--capture-bytes", "10"],
        "--capture-bytes 10: at least 64",
    );
    refused(
        &["--synthetic", "--capture-bytes", "63"],
        "--capture-bytes 63: at least 64",
    );
    let o = osprey(&[
        "--synthetic",
        "--synthetic-conns",
        "1",
        "--capture-bytes",
        "64",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn the_comm_truncation_warning_is_printed_once() {
    let o = osprey(&[
        "--synthetic",
        "--synthetic-conns",
        "1",
        "--comm",
        "a-very-long-process-name",
        "--comm",
        "a-very-long-process-name",
        "--comm",
        "another-long-process-name",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        err.matches("the kernel keeps only the first 15 bytes")
            .count(),
        1,
        "{err}"
    );
    assert_eq!(err.matches("\"a-very-long-pro\"").count(), 1, "{err}");
    assert!(err.contains("\"another-long-pr\""), "{err}");
}

#[test]
fn sighup_stops_with_the_same_summary_as_sigterm() {
    use std::process::Stdio;
    let mut summaries = Vec::new();
    for sig in [libc::SIGTERM, libc::SIGHUP] {
        let mut child = Command::new(BIN)
            .args(["--synthetic", "--synthetic-conns", "18446744073709551615"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // running once records flow
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 1];
        std::io::Read::read_exact(&mut out, &mut first).unwrap();
        // SAFETY: a signal to our own child
        unsafe { libc::kill(child.id() as i32, sig) };
        let reader = std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let o = child.wait_with_output().unwrap();
        reader.join().unwrap().unwrap();
        let err = stderr(&o);
        assert!(o.status.success(), "signal {sig}: {:?} {err}", o.status);
        let lines: Vec<&str> = err
            .lines()
            .map(|l| l.split(',').next().unwrap_or(""))
            .collect();
        summaries.push(lines.join("\n"));
    }
    assert!(
        summaries[0].contains("osprey: synthetic"),
        "{}",
        summaries[0]
    );
    assert!(
        summaries[0].contains("osprey: tracker: "),
        "{}",
        summaries[0]
    );
    assert_eq!(summaries[0].lines().count(), summaries[1].lines().count());
    for (a, b) in summaries[0].lines().zip(summaries[1].lines()) {
        assert_eq!(a.split(' ').next(), b.split(' ').next());
        assert_eq!(a.split(' ').nth(1), b.split(' ').nth(1));
    }
}

#[test]
fn recon_diff_of_a_directory_is_an_error_not_a_spin() {
    let dir = tmp_dir("recon-dir");
    let t = Instant::now();
    for sides in ["auto", "client"] {
        let o = osprey(&[
            "recon-diff",
            "--wire",
            &sample("lo_python.pcap"),
            "--ebpf",
            dir.to_str().unwrap(),
            "--sides",
            sides,
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("Is a directory"), "{}", stderr(&o));
    }
    assert!(t.elapsed() < Duration::from_secs(30));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cgroup_container_and_pod_filters_refuse_bad_values() {
    refused(
        &["--synthetic", "--pod", "cart-0"],
        "--pod \"cart-0\": give NAMESPACE/NAME",
    );
    refused(
        &["--synthetic", "--pod", "shop/cart/0"],
        "give NAMESPACE/NAME",
    );
    refused(
        &["--synthetic", "--container", "3f4b1c"],
        "at least 12 hex digits",
    );
    refused(
        &["--synthetic", "--container", "a/b"],
        "give a container id",
    );
    refused(
        &["--synthetic", "--cgroup", "/a/../b"],
        "'..' is not allowed",
    );
    refused(&["--synthetic", "--cgroup", ""], "--cgroup: empty path");
    refused(
        &["--synthetic", "--cgroup-rescan-ms", "0"],
        "--cgroup-rescan-ms 0",
    );
    // good values pass validation (the synthetic run has no cgroups)
    let o = osprey(&[
        "--synthetic",
        "--synthetic-conns",
        "1",
        "--pod",
        "shop/cart-0",
        "--container",
        "3f4b1c2d5e6f",
        "--cgroup",
        "/system.slice",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // synthetic records carry the identity fields, null
    let line = String::from_utf8_lossy(&o.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    for k in [
        "cgroup_id",
        "cgroup",
        "container_id",
        "pod_name",
        "node",
        "exe",
    ] {
        assert!(v[k].is_null(), "{k}: {line}");
    }
}

#[test]
fn record_format_compact_leaves_out_nulls_and_iso_times_of_transactions_only() {
    let run = |extra: &[&str]| {
        let mut args = vec!["--synthetic", "--synthetic-conns", "2"];
        args.extend_from_slice(extra);
        let o = osprey(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let full = run(&[]);
    let compact = run(&["--record-format", "compact"]);
    assert_eq!(full.len(), compact.len());
    assert!(!full.is_empty());
    for f in &full {
        assert!(
            f["ts_start"].is_string() && f["ts_end"].is_string(),
            "{f:?}"
        );
        assert!(
            f.values().any(|v| v.is_null()),
            "synthetic records have nulls: {f:?}"
        );
    }
    for c in &compact {
        assert_eq!(c["type"], "http_transaction");
        assert!(
            c["ts_start_ns"].is_i64() && c["ts_end_ns"].is_i64(),
            "{c:?}"
        );
        assert!(
            !c.contains_key("ts_start") && !c.contains_key("ts_end"),
            "{c:?}"
        );
        assert!(c.values().all(|v| !v.is_null()), "{c:?}");
    }
    // the same records, less those keys (the times differ run to run)
    let keys = |m: &serde_json::Map<String, serde_json::Value>| {
        let mut k: Vec<String> = m
            .iter()
            .filter(|(k, v)| !v.is_null() && *k != "ts_start" && *k != "ts_end")
            .map(|(k, _)| k.clone())
            .collect();
        k.sort();
        k
    };
    let mut a: Vec<_> = full.iter().map(keys).collect();
    let mut b: Vec<_> = compact.iter().map(keys).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // other record kinds go through serde_json, whole: refused, not ignored
    for records in ["messages", "events"] {
        refused(
            &[
                "--synthetic",
                "--records",
                records,
                "--record-format",
                "compact",
            ],
            "--record-format compact applies to transaction lines",
        );
    }
    refused(
        &["--synthetic", "--record-format", "short"],
        "invalid value 'short'",
    );
    let h = String::from_utf8(osprey(&["--help"]).stdout).unwrap();
    assert!(
        h.contains("--record-format <FORMAT>") && h.contains("--record-format compact"),
        "{h}"
    );
}

#[test]
fn drop_page_cache_writes_every_record_whole_and_needs_an_output() {
    let d = tmp_dir("drop-page-cache");
    let out = d.join("o.jsonl");
    let o = osprey(&[
        "--synthetic",
        "--synthetic-conns",
        "5000",
        "--synthetic-txns",
        "4",
        "-o",
        out.to_str().unwrap(),
        "--drop-page-cache",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    // well past the 8 MiB it keeps cached: windows were advised on the way
    assert!(text.len() > 16 << 20, "only {} bytes written", text.len());
    assert!(text.ends_with('\n'));
    let mut n = 0;
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["type"], "http_transaction");
        n += 1;
    }
    // each synthetic exchange is seen from both ends (curl and nginx)
    assert_eq!(n, 2 * 5000 * 4);
    refused(
        &[
            "--synthetic",
            "--no-output",
            "--metrics-addr",
            "127.0.0.1:0",
            "--drop-page-cache",
        ],
        "--drop-page-cache applies to the JSON-lines output",
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// `osprey --drop-page-cache >> FILE`: stdout appending to a file that
/// already holds lines; they are kept, and every new record follows them
/// whole. (Where the advice starts, the end of the file: the unit test
/// `an_append_descriptor_counts_from_the_end_of_the_file`.)
#[test]
fn drop_page_cache_on_stdout_appended_to_a_file_keeps_what_was_there() {
    let d = tmp_dir("drop-page-cache-append");
    let out = d.join("o.jsonl");
    let before = "{\"earlier\":1}\n".repeat(200_000);
    std::fs::write(&out, &before).unwrap();
    let f = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
    let o = Command::new(BIN)
        .args([
            "--synthetic",
            "--synthetic-conns",
            "5000",
            "--synthetic-txns",
            "2",
            "--drop-page-cache",
        ])
        .env_remove("RUST_LOG")
        .stdout(f)
        .output()
        .expect("running osprey");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with(&before),
        "the file's earlier lines changed"
    );
    let new = &text[before.len()..];
    assert!(new.len() > 9 << 20, "only {} bytes appended", new.len());
    let mut n = 0;
    for l in new.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["type"], "http_transaction");
        n += 1;
    }
    assert_eq!(n, 2 * 5000 * 2);
    std::fs::remove_dir_all(&d).unwrap();
}
