// SPDX-License-Identifier: GPL-3.0-or-later
//! Live tests of the TLS library paths and faults (root): the process
//! allowlist in the uprobes, one `SSL*` reused for new connections, a
//! libssl loaded with `dlopen` after the probe started and unloaded with
//! `dlclose`, a process that exits holding a session, OpenSSL 1.1.1 next
//! to 3.x, and BoringSSL. The peer is nginx over HTTPS on loopback with a
//! certificate made here (`openssl req`); the client is
//! `tests/tls/tlsclient.c`, built here with `cc` against each library and
//! driven step by step on its stdin, so that each step waits for what the
//! probe must have done first (a library attached), never for a time.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};

use common::*;
use serde_json::Value;

/// OpenSSL 1.1.1 from bullseye-security's libssl1.1, extracted here by
/// scripts/setup.sh (bookworm has no libssl1.1 package).
const OSSL11_DIR: &str = "/opt/osprey-test/openssl-1.1";
/// BoringSSL as Debian ships it for Android's tools (android-libboringssl).
const BORING_DIR: &str = "/usr/lib/x86_64-linux-gnu/android";

/// Response bodies: /cI.txt of a different size each.
const SIZES: [usize; 3] = [100, 2000, 30000];

/// nginx serving /c0.txt.. over HTTPS (TLS 1.2/1.3, a certificate for
/// localhost made by `openssl req`), on its own port.
fn https_nginx(name: &str) -> (Site, u16) {
    let dir = tmpdir(&format!("{name}-certs"));
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    for (i, n) in SIZES.iter().enumerate() {
        std::fs::write(www.join(format!("c{i}.txt")), body(*n)).unwrap();
    }
    Site::nginx_https(name, &dir, "", "", &[])
}

/// How the client finds its TLS library.
#[derive(Clone, Copy)]
enum Link {
    /// linked against bookworm's libssl3
    System,
    /// linked against OpenSSL 1.1.1 in OSSL11_DIR (-L, -rpath)
    Ossl11,
    /// linked against BoringSSL in BORING_DIR (-rpath)
    Boring,
    /// linked against no TLS library: it dlopens one
    None,
}

/// `cc tests/tls/tlsclient.c` into `dir/name` (the name is its comm).
fn build_client(dir: &Path, name: &str, link: Link) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls/tlsclient.c");
    let out = dir.join(name);
    let mut cc = Command::new("cc");
    cc.args(["-O1", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(&src);
    // --no-as-needed: the client names no libssl symbol at link time (it
    // looks them up with dlsym), the library must be loaded all the same
    let lib_in = |d: &str| {
        vec![
            "-Wl,--no-as-needed".to_string(),
            format!(
                "{d}/libssl.so.{}",
                if d == OSSL11_DIR { "1.1" } else { "0" }
            ),
            format!(
                "{d}/libcrypto.so.{}",
                if d == OSSL11_DIR { "1.1" } else { "0" }
            ),
            format!("-Wl,-rpath,{d}"),
        ]
    };
    match link {
        Link::System => {
            cc.args(["-Wl,--no-as-needed", "-lssl", "-lcrypto"]);
        }
        Link::Ossl11 => {
            assert!(
                Path::new(OSSL11_DIR).join("libssl.so.1.1").exists(),
                "{OSSL11_DIR}/libssl.so.1.1 missing: scripts/setup.sh extracts it"
            );
            cc.args(lib_in(OSSL11_DIR));
        }
        Link::Boring => {
            assert!(
                Path::new(BORING_DIR).join("libssl.so.0").exists(),
                "{BORING_DIR}/libssl.so.0 missing: scripts/setup.sh installs android-libboringssl"
            );
            cc.args(lib_in(BORING_DIR));
        }
        Link::None => {}
    }
    cc.arg("-ldl");
    run_ok(&mut cc);
    out
}

/// A running tlsclient: its stdout lines arrive on a channel (read by a
/// thread), so that waiting for one is bounded.
struct Client {
    guard: Guard,
    stdin: ChildStdin,
    lines: Receiver<String>,
    pid: u32,
    /// "conn I PORT BYTES" lines: (port, bytes) per connection.
    conns: Vec<(u16, u64)>,
}

impl Client {
    fn start(bin: &Path, lib: &str, port: u16, mode: &str, n: usize) -> Client {
        let mut child = Command::new(bin)
            .args([lib, &port.to_string(), mode, &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut c = Client {
            guard: Guard(child),
            stdin,
            lines: rx,
            pid: 0,
            conns: Vec::new(),
        };
        let first = c.line();
        c.pid = first
            .strip_prefix("pid ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("tlsclient said {first:?}"));
        c
    }

    /// The next line of its stdout (fails after PATIENCE, or at its exit).
    fn line(&mut self) -> String {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(l) => l,
            Err(e) => panic!(
                "tlsclient {}: no line ({e}); exit: {:?}",
                self.pid,
                self.guard.0.try_wait()
            ),
        }
    }

    /// Let it take its next step; wait for the line that says it is done
    /// (`until`), keeping the connection lines on the way.
    fn step(&mut self, until: &str) {
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
        loop {
            let l = self.line();
            if l == until {
                return;
            }
            let f: Vec<&str> = l.split(' ').collect();
            assert!(f.len() == 4 && f[0] == "conn", "tlsclient said {l:?}");
            assert_eq!(f[1].parse::<usize>().unwrap(), self.conns.len(), "{l}");
            self.conns
                .push((f[2].parse().unwrap(), f[3].parse().unwrap()));
        }
    }

    /// Its last step: exit, with status 0.
    fn finish(&mut self) {
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
        wait_until(
            "tlsclient to exit",
            || matches!(self.guard.0.try_wait(), Ok(Some(_))),
            String::new,
        );
        let st = self.guard.0.wait().unwrap();
        assert!(st.success(), "tlsclient exited with {st:?}");
    }
}

/// Wait until the probe's log says it put the uprobes of `lib` on the
/// file at `path` (as seen through a process's root, or directly).
fn wait_attached(probe: &Osprey, path: &str, lib: &str) {
    let want = format!("{path} ({lib})");
    wait_until(
        &format!("uprobes on {want}"),
        || {
            probe
                .stderr()
                .lines()
                .any(|l| l.contains(" uprobes on ") && l.ends_with(&want))
        },
        || probe.stderr(),
    );
}

/// The tgids that have an entry in the BPF map `name` (`tls_sessions`,
/// keyed {tgid, pad, SSL*}; `tls_calls`, keyed pid_tgid), by bpftool.
fn map_tgids(name: &str) -> Vec<u32> {
    let out = run_ok(Command::new("bpftool").args(["-j", "map", "dump", "name", name]));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let mut tgids = Vec::new();
    // one array of entries, or (several maps of that name) one per map
    let mut entries: Vec<Value> = Vec::new();
    for e in v.as_array().cloned().unwrap_or_default() {
        match e.get("elements") {
            Some(Value::Array(a)) => entries.extend(a.iter().cloned()),
            _ => entries.push(e),
        }
    }
    for e in entries {
        // raw key bytes: "0x12" strings, native (little) endian
        let bytes: Vec<u8> = e["key"]
            .as_array()
            .unwrap_or_else(|| panic!("bpftool entry without a raw key: {e}"))
            .iter()
            .map(|b| u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
            .collect();
        let at = if name == "tls_calls" { 4 } else { 0 };
        tgids.push(u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()));
    }
    tgids
}

/// A process's HTTP transactions by pid, in request order.
fn txns_of(recs: &[Value], pid: u32) -> Vec<&Value> {
    let mut t: Vec<&Value> = recs
        .iter()
        .filter(|r| r["type"] == "http_transaction" && r["pid"] == pid)
        .collect();
    t.sort_by_key(|r| r["ts_start_ns"].as_i64());
    t
}

/// The client's transactions are exactly its connections: one per
/// connection, on that connection (its local port, a conn_id of its own),
/// for /cI.txt with that file's size, from plaintext of `lib`.
fn assert_per_connection(recs: &[Value], c: &Client, lib: &str, err: &str) {
    let t = txns_of(recs, c.pid);
    assert_eq!(t.len(), c.conns.len(), "{t:#?}\n{err}");
    let mut ids = std::collections::BTreeSet::new();
    for (i, (r, (port, bytes))) in t.iter().zip(&c.conns).enumerate() {
        assert_eq!(r["target"], format!("/c{i}.txt"), "{r}");
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(
            r["local_port"], *port,
            "connection {i} on its own socket: {r}"
        );
        assert_eq!(r["resp_body_bytes"], SIZES[i], "{r}");
        assert!(
            *bytes > SIZES[i] as u64,
            "the client read the whole response"
        );
        assert_eq!(r["role"], "client", "{r}");
        assert_eq!(r["tls"], true, "{r}");
        assert_eq!(r["tls_library"], lib, "{r}");
        assert_eq!(r["gap"], false, "{r}");
        assert!(ids.insert(r["conn_id"].to_string()), "conn_id reused: {r}");
    }
}

/// The allowlist in the uprobes: two processes of one binary (same comm,
/// same libssl file, so the same uprobes fire for both), `--pid` names one:
/// only its plaintext becomes records; the other's TLS calls are dropped
/// at entry and counted (`tls_filtered`), and so are nginx's.
#[test]
#[cfg_attr(osprey_skip_live, ignore = "live test: needs root and BPF")]
fn pid_allowlist_applies_to_the_uprobes_of_a_shared_libssl() {
    require_root();
    let (site, port) = https_nginx("tlsp-pid");
    let bin = build_client(&site.dir, "tlspid", Link::System);
    let mut a = Client::start(&bin, "linked", port, "fresh", 2);
    let mut b = Client::start(&bin, "linked", port, "fresh", 2);
    let probe = site.probe(&["--pid", &a.pid.to_string()]);
    for c in [&mut a, &mut b] {
        c.step("loaded");
        c.step("unloaded");
    }
    probe.wait_for_records("the allowed client's two transactions", |r| {
        txns_of(r, a.pid).len() >= 2
    });
    b.finish();
    let a_pid = a.pid;
    let b_pid = b.pid;
    let (recs, err) = probe.stop_ok();
    assert_per_connection(&recs, &a, "openssl", &err);
    a.finish();
    assert!(
        recs.iter().all(|r| r["pid"] == a_pid),
        "only --pid {a_pid} (not {b_pid}, not nginx): {recs:#?}"
    );
    let k = &summary(&err)["kernel"];
    // b: 2 SSL_write + at least 2 SSL_read; nginx's calls come on top
    assert!(k["tls_filtered"].as_u64().unwrap() >= 4, "{err}");
    assert_eq!(k["tls_no_conn"], 0, "{err}");
}

/// The same with `--comm`: two binaries (two comms) on the same libssl.
#[test]
#[cfg_attr(osprey_skip_live, ignore = "live test: needs root and BPF")]
fn comm_allowlist_applies_to_the_uprobes_of_a_shared_libssl() {
    require_root();
    let (site, port) = https_nginx("tlsp-comm");
    let yes = build_client(&site.dir, "tlsyes", Link::System);
    let no = build_client(&site.dir, "tlsno", Link::System);
    let probe = site.probe(&["--comm", "tlsyes"]);
    let mut a = Client::start(&yes, "linked", port, "fresh", 2);
    let mut b = Client::start(&no, "linked", port, "fresh", 2);
    for c in [&mut a, &mut b] {
        c.step("loaded");
        c.step("unloaded");
    }
    probe.wait_for_records("tlsyes's two transactions", |r| {
        txns_of(r, a.pid).len() >= 2
    });
    let (recs, err) = probe.stop_ok();
    assert_per_connection(&recs, &a, "openssl", &err);
    assert!(
        recs.iter().all(|r| r["comm"] == "tlsyes"),
        "only --comm tlsyes: {recs:#?}"
    );
    let k = &summary(&err)["kernel"];
    assert!(k["tls_filtered"].as_u64().unwrap() >= 4, "{err}");
    assert_eq!(k["tls_no_conn"], 0, "{err}");
    a.finish();
    b.finish();
}

/// One `SSL*` for three connections (SSL_clear, SSL_set_fd on a new
/// socket each time): each connection's plaintext on its own conn_id,
/// none on another's; the session is re-tied each time (`tls_rebound`).
#[test]
#[cfg_attr(osprey_skip_live, ignore = "live test: needs root and BPF")]
fn one_ssl_reused_for_three_connections_keeps_each_on_its_own_connection() {
    require_root();
    let (site, port) = https_nginx("tlsp-reuse");
    let bin = build_client(&site.dir, "tlsreuse", Link::System);
    let probe = site.probe(&["--comm", "tlsreuse"]);
    let mut c = Client::start(&bin, "linked", port, "reuse", 3);
    c.step("loaded");
    c.step("unloaded");
    probe.wait_for_records("three transactions", |r| txns_of(r, c.pid).len() >= 3);
    let (recs, err) = probe.stop_ok();
    assert_per_connection(&recs, &c, "openssl", &err);
    let k = &summary(&err)["kernel"];
    assert!(k["tls_rebound"].as_u64().unwrap() >= 2, "{err}");
    assert_eq!(k["tls_no_conn"], 0, "{err}");
    c.finish();
}

/// libssl loaded with dlopen after the probe started, from a file the
/// probe cannot know in advance (a copy in the test's directory): found by
/// the rescan of the process's mappings, its plaintext captured; after
/// SSL_free and dlclose nothing of the process is left in the TLS maps,
/// and no error is logged. A second process exits holding a session (no
/// SSL_free): the sweep removes it (`tls_swept`).
fn late_library(name: &str, src_dir: &str, file: &str, lib: &str, unmaps: bool) {
    require_root();
    let (site, port) = https_nginx(name);
    let bin = build_client(&site.dir, "tlslate", Link::None);
    let copy = site.dir.join(file);
    std::fs::copy(Path::new(src_dir).join(file), &copy).unwrap();
    let copy_s = copy.to_str().unwrap().to_string();
    let probe = site.probe(&["--comm", "tlslate"]);
    let mut c = Client::start(&bin, &copy_s, port, "fresh", 2);
    c.step("loaded");
    wait_attached(&probe, &format!("/proc/{}/root{copy_s}", c.pid), lib);
    c.step("unloaded");
    probe.wait_for_records("the late client's two transactions", |r| {
        txns_of(r, c.pid).len() >= 2
    });
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", c.pid)).unwrap();
    if unmaps {
        assert!(!maps.contains(&copy_s), "dlclose unmapped it:\n{maps}");
    }
    // SSL_free ran, every call returned: nothing of it in the maps
    assert!(!map_tgids("tls_sessions").contains(&c.pid), "tls_sessions");
    assert!(!map_tgids("tls_calls").contains(&c.pid), "tls_calls");
    // a process that exits holding its session: swept
    let mut d = Client::start(&bin, &copy_s, port, "nofree", 1);
    d.step("loaded");
    d.step("holding");
    let d_pid = d.pid;
    // alive, its session is in the map (and this reading of it works)
    assert!(map_tgids("tls_sessions").contains(&d_pid), "tls_sessions");
    d.stdin.write_all(b"\n").unwrap();
    d.stdin.flush().unwrap();
    wait_until(
        "tlsclient (nofree) to exit",
        || matches!(d.guard.0.try_wait(), Ok(Some(_))),
        String::new,
    );
    wait_until(
        "the exited process's session to be swept from tls_sessions",
        || !map_tgids("tls_sessions").contains(&d_pid),
        || format!("{:?}\n{}", map_tgids("tls_sessions"), probe.stderr()),
    );
    probe.wait_for_records("the nofree client's transaction", |r| {
        !txns_of(r, d_pid).is_empty()
    });
    c.finish();
    let (recs, err) = probe.stop_ok();
    assert_per_connection(&recs, &c, lib, &err);
    assert_eq!(txns_of(&recs, d_pid).len(), 1, "{err}");
    let k = &summary(&err)["kernel"];
    assert!(k["tls_swept"].as_u64().unwrap() >= 1, "{err}");
    assert_eq!(k["tls_attach_failed"], 0, "{err}");
    assert_eq!(k["tls_no_conn"], 0, "{err}");
    assert_eq!(k["tls_table_full"], 0, "{err}");
    assert!(
        !err.lines()
            .any(|l| (l.contains("WARN") || l.contains("ERROR")) && l.contains("TLS")),
        "{err}"
    );
}

/// OpenSSL 3 loaded late. OpenSSL pins its libraries in the process
/// (`dlclose` leaves them mapped), so only the maps are checked after it.
#[test]
#[cfg_attr(osprey_skip_live, ignore = "live test: needs root and BPF")]
fn openssl_loaded_with_dlopen_after_start_is_captured_and_leaves_no_entries() {
    late_library(
        "tlsp-late3",
        "/usr/lib/x86_64-linux-gnu",
        "libssl.so.3",
        "openssl",
        false,
    );
}

/// BoringSSL loaded late and really unloaded by `dlclose`.
#[test]
#[cfg_attr(osprey_skip_live, ignore = "live test: needs root and BPF")]
fn boringssl_loaded_with_dlopen_and_unloaded_with_dlclose_leaves_nothing() {
    late_library("tlsp-lateb", BORING_DIR, "libssl.so.0", "boringssl", true);
}

/// A client of OpenSSL 1.1.1 (bullseye's libssl1.1, extracted by
/// scripts/setup.sh), one SSL* for two connections: found at exec in the
/// process's mappings (the directory is not one of the library
/// directories looked at on start).
#[test]
#[cfg_attr(osprey_skip_live, ignore = "live test: needs root and BPF")]
fn openssl_1_1_1_client_is_captured() {
    require_root();
    let (site, port) = https_nginx("tlsp-11");
    let bin = build_client(&site.dir, "tls11", Link::Ossl11);
    let probe = site.probe(&["--comm", "tls11"]);
    let mut c = Client::start(&bin, "linked", port, "reuse", 2);
    wait_attached(
        &probe,
        &format!("/proc/{}/root{OSSL11_DIR}/libssl.so.1.1", c.pid),
        "openssl",
    );
    c.step("loaded");
    c.step("unloaded");
    probe.wait_for_records("two transactions", |r| txns_of(r, c.pid).len() >= 2);
    let (recs, err) = probe.stop_ok();
    assert_per_connection(&recs, &c, "openssl", &err);
    c.finish();
}

/// A client of BoringSSL (Debian's android-libboringssl: libssl.so.0):
/// recognised as BoringSSL by its bytes, records say so; `osprey check
/// --comm` lists it for that process.
#[test]
#[cfg_attr(osprey_skip_live, ignore = "live test: needs root and BPF")]
fn boringssl_client_is_captured_as_boringssl() {
    require_root();
    let (site, port) = https_nginx("tlsp-boring");
    let bin = build_client(&site.dir, "tlsboring", Link::Boring);
    let probe = site.probe(&["--comm", "tlsboring"]);
    let mut c = Client::start(&bin, "linked", port, "reuse", 2);
    wait_attached(
        &probe,
        &format!("/proc/{}/root{BORING_DIR}/libssl.so.0", c.pid),
        "boringssl",
    );
    // `osprey check --comm` names the library of that process, and says
    // uprobes work (it creates one)
    let out = Command::new(BIN)
        .args(["check", "--comm", "tlsboring"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok ") && l.contains("uprobes (TLS plaintext)")),
        "{text}"
    );
    let libs = text
        .lines()
        .find(|l| l.contains("TLS libraries (--pid/--comm)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        libs.contains(&format!(
            "{BORING_DIR}/libssl.so.0 (boringssl, mapped by 1 selected"
        )),
        "{libs}"
    );
    c.step("loaded");
    c.step("unloaded");
    probe.wait_for_records("two transactions", |r| txns_of(r, c.pid).len() >= 2);
    let (recs, err) = probe.stop_ok();
    assert_per_connection(&recs, &c, "boringssl", &err);
    c.finish();
}
