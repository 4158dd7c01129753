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
         0 captured bytes dropped (buffers capped at 262144 bytes per direction), 0 parser panics"
    );
}
