// SPDX-License-Identifier: GPL-3.0-or-later
//! Helpers for live tests: run the real osprey binary as root against real
//! servers and clients on loopback.
//!
//! Every live test starts its probe through [`Osprey`]: it waits until the
//! probe says it is attached, stops it with SIGINT, and stops it on drop
//! too, so a failed assertion never leaves a probe loaded. Waits are for
//! conditions (attached, listening, a record written, a process gone),
//! each bounded, never a sleep standing in for one.
//!
//! Skipping: with `OSPREY_SKIP_LIVE=1` in the environment of the build,
//! `build.rs` sets `cfg(osprey_skip_live)` and every live test is compiled
//! `#[ignore]`d (`cfg_attr(osprey_skip_live, ignore = ...)` on each), so
//! the harness reports it as ignored, never as ok. `scripts/test.sh`
//! refuses OSPREY_SKIP_LIVE and fails when any test was ignored.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod tshark;

pub const BIN: &str = env!("CARGO_BIN_EXE_osprey");

/// How long any condition is waited for before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Live tests need root: without it they fail (to skip them, build with
/// OSPREY_SKIP_LIVE=1, which marks them ignored).
pub fn require_root() {
    // SAFETY: no arguments.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "live tests need root (or OSPREY_SKIP_LIVE=1 to report them ignored)"
    );
}

/// Poll `cond` every 20 ms until it holds; fail after [`PATIENCE`] saying
/// what was waited for (and `detail()` at that point).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool, detail: impl Fn() -> String) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < PATIENCE,
            "timed out after {PATIENCE:?} waiting for {what}\n{}",
            detail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_port(port: u16) {
    wait_until(
        &format!("a server accepting on {port}"),
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
        String::new,
    );
}

/// Wait until something listens on `port` (/proc/net/tcp, state LISTEN)
/// without connecting to it: some test servers accept exactly one connection.
pub fn wait_listening(port: u16) {
    let hex = format!(":{port:04X} ");
    let listening = || {
        std::fs::read_to_string("/proc/net/tcp")
            .unwrap()
            .lines()
            .any(|l| l.contains(&hex) && l.split_whitespace().nth(3) == Some("0A"))
    };
    wait_until(&format!("a listener on {port}"), listening, String::new);
}

/// A process's transaction records in request order (records of different
/// connections may be written in any order: workers are sharded).
pub fn txns<'a>(recs: &'a [Value], comm: &str) -> Vec<&'a Value> {
    let mut t: Vec<&Value> = recs
        .iter()
        .filter(|r| r["type"] == "http_transaction" && r["comm"] == comm)
        .collect();
    t.sort_by_key(|r| r["ts_start_ns"].as_i64());
    t
}

pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("osprey-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` bytes of a..z.
pub fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Send `sig` to `child` and wait for it to exit; SIGKILL after `grace`.
/// None if it had to be killed.
fn end(child: &mut Child, sig: i32, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(s)) = child.try_wait() {
        return Some(s);
    }
    // SAFETY: plain kill(2) on our child (not yet reaped: try_wait said so).
    unsafe { libc::kill(child.id() as i32, sig) };
    let t0 = Instant::now();
    while t0.elapsed() < grace {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A child stopped on drop (SIGTERM first so that servers such as nginx
/// take their workers down too, then SIGKILL).
pub struct Guard(pub Child);
impl Drop for Guard {
    fn drop(&mut self) {
        end(&mut self.0, libc::SIGTERM, Duration::from_secs(3));
    }
}

/// `python3 -c SCRIPT PORT`, a test server, once it listens on `port`.
pub fn py_server(script: &str, port: u16) -> Guard {
    let c = Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .spawn()
        .expect("python3");
    let g = Guard(c);
    wait_listening(port);
    g
}

/// A directory `www/` of files served on a free port by a real server.
pub struct Site {
    pub dir: PathBuf,
    pub port: u16,
    pub server: Guard,
}

impl Site {
    fn www(name: &str, files: &[(&str, &[u8])]) -> (PathBuf, u16) {
        let dir = tmpdir(name);
        std::fs::create_dir_all(dir.join("www")).unwrap();
        for (f, content) in files {
            std::fs::write(dir.join("www").join(f), content).unwrap();
        }
        (dir, free_port())
    }

    /// nginx (one worker, access log off).
    pub fn nginx(name: &str, files: &[(&str, &[u8])]) -> Site {
        Site::nginx_with(name, files, "")
    }

    /// nginx with extra `http {}` directives (e.g. "sendfile on;").
    pub fn nginx_with(name: &str, files: &[(&str, &[u8])], http_extra: &str) -> Site {
        let (dir, port) = Site::www(name, files);
        let server = nginx_server(&dir, port, http_extra, "", "");
        Site { dir, port, server }
    }

    /// nginx with extra `server {}` directives (e.g. a `location`).
    pub fn nginx_server_with(name: &str, files: &[(&str, &[u8])], server_extra: &str) -> Site {
        let (dir, port) = Site::www(name, files);
        let server = nginx_server(&dir, port, "", "", server_extra);
        Site { dir, port, server }
    }

    /// nginx speaking HTTP/2 over cleartext with prior knowledge (h2c).
    pub fn nginx_h2c(name: &str, files: &[(&str, &[u8])], server_extra: &str) -> Site {
        let (dir, port) = Site::www(name, files);
        let server = nginx_server(&dir, port, "", " http2", server_extra);
        Site { dir, port, server }
    }

    /// nginx also serving HTTPS, on a free port of its own: a certificate
    /// from [`make_cert`] in `dir`, `listen 127.0.0.1:PORT ssl` then
    /// `listen_extra` (e.g. " http2"), root `dir/www` holding `files`, then
    /// `server_extra` directives. The site and the HTTPS port, listening.
    pub fn nginx_https(
        name: &str,
        dir: &Path,
        listen_extra: &str,
        server_extra: &str,
        files: &[(&str, &[u8])],
    ) -> (Site, u16) {
        let tls_port = free_port();
        let (cert, key) = make_cert(dir);
        let www = dir.join("www");
        std::fs::create_dir_all(&www).unwrap();
        for (f, content) in files {
            std::fs::write(www.join(f), content).unwrap();
        }
        let extra = format!(
            "server {{ listen 127.0.0.1:{tls_port} ssl{listen_extra}; ssl_certificate {c}; \
             ssl_certificate_key {k}; root {w}; {server_extra} }}",
            c = cert.display(),
            k = key.display(),
            w = www.display(),
        );
        let site = Site::nginx_with(name, &[], &extra);
        wait_port(tls_port);
        (site, tls_port)
    }

    /// python3 -m http.server (HTTP/1.0).
    pub fn python(name: &str, files: &[(&str, &[u8])]) -> Site {
        let (dir, port) = Site::www(name, files);
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(dir.join("www"));
        let server = serving(cmd, port);
        Site { dir, port, server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A probe writing to `out.jsonl` in this site's directory.
    pub fn probe(&self, args: &[&str]) -> Osprey {
        Osprey::start(args, self.dir.join("out.jsonl"))
    }
}

/// `--hooks` for every probe the tests start: OSPREY_TEST_HOOKS (the test
/// script runs the live tests once per hook set), else the default.
pub fn hooks_args() -> Vec<String> {
    match std::env::var("OSPREY_TEST_HOOKS") {
        Ok(h) if !h.is_empty() => vec!["--hooks".into(), h],
        _ => vec![],
    }
}

/// A running osprey, attached. Stopped by [`Osprey::stop`], or on drop
/// (a panicking test included): SIGINT, then SIGKILL.
pub struct Osprey {
    pub child: Child,
    /// Where records go; None: on `child.stdout`.
    pub out: Option<PathBuf>,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    /// The hook set it attached: "socket" or "syscalls".
    pub hooks: String,
}

/// What a stopped probe left: exit status, records, everything on stderr.
pub type Stopped = (ExitStatus, Vec<Value>, String);

impl Osprey {
    /// `osprey -v -o OUT ARGS...`, once its probes are attached.
    pub fn start(args: &[&str], out: PathBuf) -> Osprey {
        let mut cmd = Command::new(BIN);
        cmd.arg("-v")
            .arg("-o")
            .arg(&out)
            .args(hooks_args())
            .args(args);
        Osprey::start_cmd(cmd, Some(out))
    }

    /// `osprey -v ARGS...` writing its records to a pipe (`child.stdout`).
    pub fn start_piped(args: &[&str]) -> (Osprey, ChildStdout) {
        let mut cmd = Command::new(BIN);
        cmd.arg("-v").args(hooks_args()).args(args);
        let mut o = Osprey::start_cmd(cmd, None);
        let stdout = o.child.stdout.take().unwrap();
        (o, stdout)
    }

    /// Osprey with kernel BTF hidden (a private mount namespace with an
    /// empty tmpfs over /sys/kernel/btf), as on a kernel without BTF.
    pub fn start_without_btf(args: &[&str], out: PathBuf) -> Osprey {
        let mut cmd = Command::new("unshare");
        cmd.args([
            "-m",
            "sh",
            "-c",
            "mount -t tmpfs none /sys/kernel/btf && exec \"$0\" \"$@\"",
            BIN,
            "-v",
            "-o",
        ])
        .arg(&out)
        .args(args);
        Osprey::start_cmd(cmd, Some(out))
    }

    /// Spawn, and return once stderr says "attached" (with -v osprey logs
    /// "attached N tracepoints (H hooks)" after the last attach).
    pub fn start_cmd(mut cmd: Command, out: Option<PathBuf>) -> Osprey {
        require_root();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn osprey");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let err = child.stderr.take().unwrap();
        let acc = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                {
                    let mut a = acc.lock().unwrap();
                    a.push_str(&line);
                    a.push('\n');
                }
                if line.contains("attached") {
                    let hooks = if line.contains("(socket hooks)") {
                        "socket"
                    } else {
                        "syscalls"
                    };
                    let _ = tx.send(hooks.to_string());
                }
            }
        });
        let mut o = Osprey {
            child,
            out,
            stderr,
            reader: Some(reader),
            hooks: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(h) => o.hooks = h,
            // the reader ended (osprey exited) or a minute passed: drop stops it
            Err(e) => panic!("osprey did not attach ({e}):\n{}", o.stderr.lock().unwrap()),
        }
        o
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The records written so far (complete lines of the output file; the
    /// writer flushes whenever it is idle).
    pub fn records_so_far(&self) -> Vec<Value> {
        let path = self.out.as_ref().expect("records go to a file");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
        complete
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }

    /// Wait until the records written so far satisfy `cond`: for what
    /// happens after the client is done (a server's close, its record).
    pub fn wait_for_records(&self, what: &str, cond: impl Fn(&[Value]) -> bool) {
        wait_until(
            what,
            || cond(&self.records_so_far()),
            || {
                format!(
                    "records: {:?}\nstderr:\n{}",
                    self.records_so_far(),
                    self.stderr()
                )
            },
        );
    }

    /// stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGINT, wait for the exit, and return what it left.
    pub fn stop(self) -> Stopped {
        self.stop_with(libc::SIGINT)
    }

    /// `stop`, asserting a clean exit: (records, stderr).
    pub fn stop_ok(self) -> (Vec<Value>, String) {
        let (status, recs, err) = self.stop();
        assert!(status.success(), "osprey exited with {status:?}\n{err}");
        (recs, err)
    }

    /// Send `sig`, wait for the exit (and for stderr to end), return what
    /// it left. The ring buffer is drained after detaching: every record
    /// of an event that happened before the signal is in the output.
    pub fn stop_with(mut self, sig: i32) -> Stopped {
        let status = end(&mut self.child, sig, PATIENCE).unwrap_or_else(|| {
            panic!(
                "osprey did not exit within {PATIENCE:?} of signal {sig}:\n{}",
                self.stderr()
            )
        });
        // stderr is complete once the reader saw its end (the process is gone)
        self.reader.take().unwrap().join().unwrap();
        let recs = match &self.out {
            Some(p) => std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(|l| {
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}"))
                })
                .collect(),
            None => Vec::new(),
        };
        (status, recs, self.stderr())
    }
}

/// A failed assertion must not leave a probe attached (it would trace, and
/// slow down, everything that runs after it).
impl Drop for Osprey {
    fn drop(&mut self) {
        end(&mut self.child, libc::SIGINT, Duration::from_secs(10));
    }
}

/// The `osprey: summary {...}` line (-v) as JSON; fails the test if absent.
pub fn summary(err: &str) -> Value {
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("osprey: summary "))
        .unwrap_or_else(|| panic!("no `osprey: summary` line on stderr:\n{err}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {line}"))
}

/// Ring-buffer drops as the final line says them ("N ring-buffer drops"),
/// checked against the JSON summary when there is one; fails the test if
/// they cannot be read.
pub fn ringbuf_drops(err: &str) -> u64 {
    let line = err
        .lines()
        .find(|l| l.starts_with("osprey: ") && l.contains(" ring-buffer drops"))
        .unwrap_or_else(|| {
            panic!("no final `osprey: ... ring-buffer drops` line on stderr:\n{err}")
        });
    let before = &line[..line.find(" ring-buffer drops").unwrap()];
    let n = before.rsplit(['(', ' ']).next().unwrap();
    let drops: u64 = n
        .parse()
        .unwrap_or_else(|e| panic!("ring-buffer drops {n:?} is not a number ({e}): {line}"));
    if err.contains("osprey: summary ") {
        assert_eq!(
            summary(err)["kernel"]["ringbuf_drops"].as_u64(),
            Some(drops),
            "summary line and JSON disagree:\n{err}"
        );
    }
    drops
}

pub fn run_ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `curl -sS ARGS...`, which must succeed; its stdout.
pub fn curl(args: &[&str]) -> String {
    run_ok(Command::new("curl").arg("-sS").args(args))
}

/// `curl -sS -k --http1.1 ARGS...` (HTTPS to a test server's self-signed
/// certificate, HTTP/1.1 only), which must succeed; its stdout. With
/// `keylog`, curl writes its TLS secrets there (`SSLKEYLOGFILE`) for
/// tshark to decrypt a capture.
pub fn curl_https(keylog: Option<&Path>, args: &[&str]) -> String {
    let mut cmd = Command::new("curl");
    if let Some(k) = keylog {
        cmd.env("SSLKEYLOGFILE", k);
    }
    run_ok(cmd.args(["-sS", "-k", "--http1.1"]).args(args))
}

/// An nginx `server {}` directive: `POST /post` answered "posted".
pub const NGINX_POST: &str = r#"location = /post { return 200 "posted\n"; }"#;

/// `https://127.0.0.1:PORT` then `path`: a test server's HTTPS URL.
pub fn https_url(port: u16, path: &str) -> String {
    format!("https://127.0.0.1:{port}{path}")
}

/// The start of a Python TLS test script, run by [`run_python_tls`] with
/// the arguments COMM CERT KEY PORT (then the script's own): the process
/// named COMM (its threads inherit it), the server's context `sctx`, the
/// client's `cctx` (no verification) and the listening socket `ls`,
/// SO_REUSEADDR, not bound yet.
pub const PY_TLS_PRELUDE: &str = r#"
import ctypes, socket, ssl, sys, threading
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
cert, key, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); sctx.load_cert_chain(cert, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); cctx.check_hostname = False; cctx.verify_mode = ssl.CERT_NONE
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
"#;

/// `python3 -c SCRIPT ARGS...`, a test script, which must succeed and
/// print `done` (and nothing else).
pub fn run_python(script: &str, args: &[&dyn AsRef<OsStr>]) {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]);
    for a in args {
        cmd.arg(a);
    }
    assert_eq!(run_ok(&mut cmd).trim(), "done");
}

/// [`PY_TLS_PRELUDE`] then `script`, run by [`run_python`] as process
/// `comm` with the certificate and key from [`make_cert`], `port`, then
/// `args`.
pub fn run_python_tls(
    comm: &str,
    script: &str,
    (cert, key): &(PathBuf, PathBuf),
    port: u16,
    args: &[&dyn AsRef<OsStr>],
) {
    let port = port.to_string();
    let mut all: Vec<&dyn AsRef<OsStr>> = vec![&comm, cert, key, &port];
    all.extend_from_slice(args);
    run_python(&format!("{PY_TLS_PRELUDE}{script}"), &all);
}

/// One HTTP transaction as both an oracle (a decrypted capture, what a
/// client read) and Osprey give it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Txn {
    pub client_port: u16,
    pub method: String,
    pub target: String,
    pub status: u16,
    pub req_body: u64,
    pub resp_body: u64,
}

/// Osprey's transactions of `comm` in `role`, as [`Txn`]s, sorted; each
/// must say it was TLS plaintext of `lib` and have no gap.
pub fn probed_tls(recs: &[Value], comm: &str, role: &str, lib: &str) -> Vec<Txn> {
    let mut v: Vec<Txn> = txns(recs, comm)
        .into_iter()
        .filter(|r| r["role"] == role)
        .map(|r| {
            assert_eq!(r["tls"], true, "{r}");
            assert_eq!(r["tls_library"], lib, "{r}");
            assert_eq!(r["gap"], false, "{r}");
            let port = if role == "client" {
                &r["local_port"]
            } else {
                &r["remote_port"]
            };
            let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k}: {r}"));
            let s = |k: &str| {
                r[k].as_str()
                    .unwrap_or_else(|| panic!("{k}: {r}"))
                    .to_string()
            };
            Txn {
                client_port: port.as_u64().unwrap_or_else(|| panic!("port: {r}")) as u16,
                method: s("method"),
                target: s("target"),
                status: n("status") as u16,
                req_body: n("req_body_bytes"),
                resp_body: n("resp_body_bytes"),
            }
        })
        .collect();
    v.sort();
    v
}

/// The summary's counter `k` summed over its `workers`.
pub fn sum_workers(s: &Value, k: &str) -> u64 {
    s["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w[k].as_u64().unwrap_or(0))
        .sum()
}

/// Osprey's programs (by the names in its BPF object) and the links to
/// them that are loaded now, as (programs, links).
pub fn loaded_osprey_bpf() -> (usize, usize) {
    let names: Vec<String> = osprey::bpf::program_sections()
        .expect("reading the embedded object")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.len() > 20, "program names from the object: {names:?}");
    // the kernel keeps the first 15 bytes of a name
    let ours = |n: &str| {
        names
            .iter()
            .any(|m| m == n || (n.len() == 15 && m.starts_with(n)))
    };
    let list = |what: &str| -> Vec<Value> {
        let out = run_ok(Command::new("bpftool").args(["-j", what, "list"]));
        serde_json::from_str::<Value>(&out)
            .unwrap_or_else(|e| panic!("bpftool -j {what} list: {e}\n{out}"))
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let progs: Vec<u64> = list("prog")
        .iter()
        .filter(|p| p["name"].as_str().is_some_and(ours))
        .filter_map(|p| p["id"].as_u64())
        .collect();
    let links = list("link")
        .iter()
        .filter(|l| l["prog_id"].as_u64().is_some_and(|id| progs.contains(&id)))
        .count();
    (progs.len(), links)
}

/// Osprey's programs and links loaded before a test starts one, once none
/// is on its way out (a program of an earlier probe that has lost its link
/// is being freed; counted now it would vanish during the test).
pub fn osprey_bpf_baseline() -> (usize, usize) {
    wait_until(
        "no Osprey program left unlinked (being freed)",
        || {
            let (p, l) = loaded_osprey_bpf();
            p == l
        },
        || format!("loaded now {:?}", loaded_osprey_bpf()),
    );
    loaded_osprey_bpf()
}

/// Wait until Osprey's programs and links are back to `before`: the kernel
/// frees a program whose last fd closed after an RCU grace period, not at
/// the process's exit, so a check right after exit can still list it.
pub fn wait_unloaded(before: (usize, usize), what: &str) {
    wait_until(
        what,
        || loaded_osprey_bpf() == before,
        || format!("loaded now {:?}, before {before:?}", loaded_osprey_bpf()),
    );
}

/// nginx (one worker, access log off, `http_extra` in `http {}`) serving
/// `dir/www` on `port`.
/// `listen`: what follows the listen address (" http2"); `server_extra`:
/// directives in `server {}`.
fn nginx_server(
    dir: &Path,
    port: u16,
    http_extra: &str,
    listen: &str,
    server_extra: &str,
) -> Guard {
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  include /etc/nginx/mime.types;\n  access_log off;\n  keepalive_requests 100000;\n\
               client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  {http_extra}\n\
               server {{ listen 127.0.0.1:{port}{listen}; root {d}/www; {server_extra} }}\n}}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("nginx");
    cmd.arg("-c").arg(&conf).arg("-p").arg(dir);
    serving(cmd, port)
}

/// A quiet server, once it accepts connections on `port`.
fn serving(mut cmd: Command, port: u16) -> Guard {
    let c = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    let g =
        Guard(c.unwrap_or_else(|e| {
            panic!("{cmd:?}: {e} (scripts/setup.sh installs the test servers)")
        }));
    wait_port(port);
    g
}

/// `openssl req`: a self-signed certificate for localhost in `dir`.
pub fn make_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    (cert, key)
}
